-- settle_v5: after a call, charge what it cost and release the rest of its hold, once per
-- request, writing the call's one ledger entry (with the hold it had).
-- The charge is decided by broker_core::metering::Billing; this script applies it as given. An
-- exact usage above the hold is charged in full: the balance may become a debt, which
-- admission refuses to spend; such a call is counted per model in the rollups (`exceeded`,
-- `exceeded_hold_mc`, `exceeded_charged_mc`) for /admin/stats.
-- Mode `sweep` (the scheduled sweeper, for a call whose settlement never came) charges the whole
-- hold, the proven upper bound, and leaves abk:swept:<rid>: an exact settlement arriving later
-- corrects the difference once (a `correction` entry: a refund, or a charge when the exact
-- usage came to more than the hold).
-- Arguments owned by broker_core::metering::Settlement::argv; decoded by
-- broker_core::scripts::SettleReply::decode.
--
-- The same step keeps the daily analytics rollups (calls, units, provider cost, credits charged,
-- corrections) per model, for all keys and per key, so they always agree with the ledger.
--
-- ARGV: 1 request_id, 2 charge (mc), 3 now_ms, 4 mode (settle|sweep), 5 ledger fields (JSON
--       fragment), 6 ledger entries kept per key, 7 day (YYYY-MM-DD), 8 units, 9 provider cost
--       (micro-USD), 10 analytics ttl (s), 11 the Idempotency-Key record's closing ('' the call
--       has none, `release`, `done`), 12 the answer kept for replays ('' none)
-- v5 (issue 24): the closing of the call's Idempotency-Key record, in its own block below.
local rid, charge, now, mode, frag, keep = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4], ARGV[5], tonumber(ARGV[6])
local day, units, cost, ttl = ARGV[7], tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10])
local idem_close, idem_answer = ARGV[11], ARGV[12]

-- Idempotency-Key (issue 24): close the call's record (broker_core::idempotency), if it has one
-- and still owns it. Released (not served): removed, so a retry runs. Served: the charge, and
-- the answer when kept. The sweeper's charge closes it too (`done` with the hold).
local function close_idem(how, charged)
  if how == '' then return end
  local ikey = redis.call('GET', 'abk:idem_of:' .. rid)
  if not ikey or redis.call('HGET', ikey, 'rid') ~= rid then return end
  if how == 'release' then
    redis.call('DEL', ikey, 'abk:idem_of:' .. rid)
    return
  end
  redis.call('HSET', ikey, 'charged', charged)
  if idem_answer ~= '' then redis.call('HSET', ikey, 'answer', idem_answer) end
end
-- ---------------------------------------------------------------------------------------------
local rec = redis.call('GET', 'abk:hold:' .. rid)
if rec then
  local id, hold_s, label, meta = split4(rec)
  local hold = tonumber(hold_s)
  if mode == 'sweep' then charge = hold end
  if charge < 0 then return redis.error_reply('ERR settle_v5: negative charge') end
  local admitted = tonumber(redis.call('ZSCORE', 'abk:open_holds', rid)) or 0
  redis.call('DEL', 'abk:hold:' .. rid)
  redis.call('ZREM', 'abk:open_holds', rid)
  local kkey = 'abk:key:' .. id
  redis.call('HINCRBY', kkey, 'held', -hold)
  local bal = redis.call('HINCRBY', kkey, 'balance', hold - charge)
  if charge > 0 then redis.call('HINCRBY', kkey, 'charged_total', charge) end
  ledger_push(id, string.format('{"ts":%d,"type":"call","amount":%d,"balance":%d,"hold":%d,"ref":"%s","admitted_ts":%d%s%s}',
    now, -charge, ledger_balance(kkey), hold, rid, admitted, more(meta), more(frag)), keep)
  call_stats(day, id, label, {calls = 1, units = units, cost_micro = cost, charged_mc = charge}, ttl)
  if charge > hold then
    call_stats(day, id, label, {exceeded = 1, exceeded_hold_mc = hold, exceeded_charged_mc = charge}, ttl)
  end
  close_idem(mode == 'sweep' and 'done' or idem_close, charge)
  if mode == 'sweep' then
    redis.call('SET', 'abk:swept:' .. rid, rec, 'EX', 2592000)
    return {'swept', charge, bal}
  end
  return {'ok', charge, bal}
end
if mode == 'settle' then
  local swept = redis.call('GET', 'abk:swept:' .. rid)
  if swept then
    local id, hold_s, label, meta = split4(swept)
    local refund = tonumber(hold_s) - charge
    redis.call('DEL', 'abk:swept:' .. rid)
    local kkey = 'abk:key:' .. id
    local bal = tonumber(redis.call('HGET', kkey, 'balance')) or 0
    if refund ~= 0 then
      bal = redis.call('HINCRBY', kkey, 'balance', refund)
      redis.call('HINCRBY', kkey, 'charged_total', -refund)
      ledger_push(id, string.format('{"ts":%d,"type":"correction","amount":%d,"balance":%d,"ref":"%s"%s%s}',
        now, refund, ledger_balance(kkey), rid, more(meta), more(frag)), keep)
    end
    -- The sweep counted the call and charged its hold; the exact settlement brings what it used.
    call_stats(day, id, label, {units = units, cost_micro = cost, charged_mc = -refund, corrected_mc = refund}, ttl)
    if refund < 0 then
      call_stats(day, id, label, {exceeded = 1, exceeded_hold_mc = tonumber(hold_s), exceeded_charged_mc = charge}, ttl)
    end
    close_idem(idem_close, charge)
    return {'corrected', refund, bal}
  end
end
return {'missing'}
