-- admit_v6: the one blocking Redis round trip of a metered call.
-- Validates the key, applies the sliding-window rate limit of its plan and the route's class,
-- and reserves the worst-case cost: the hold moves from `balance` (spendable) to `held` and is
-- recorded under the request id with the call's ledger fields, for settle_v6 and the sweeper.
-- v5 (issue 24): the `Idempotency-Key` check and claim, in its own blocks below.
-- Every hold is computed in Rust (broker_core::metering::HoldPlan::ladder): the script only
-- picks the first rung the balance covers and compares integers; its only arithmetic is a
-- sub-key's cap room (cap − spent − held, integers far below 2^53).
-- No ledger entry here: the call's one entry is written when it settles.
-- Calls with an unknown or revoked key count against the client IP.
-- Decoded by broker_core::scripts::AdmitReply::decode; arguments owned by
-- broker_core::metering::Admission::argv. Amounts are integer millicredits.
--
-- ARGV: 1 key_hash, 2 now_ms, 3 request_id, 4 route class, 5 client_ip, 6 anon_limit,
--       7 anon_window_ms, 8 plan limits "plan:limit:window_ms,...", 9 the hold ladder
--       "hold_mc:units,..." (dearest first; one rung when the hold is fixed), 10 the call's
--       ledger fields (JSON fragment), 11 its analytics label (`<provider>/<model>`),
--       12 the Idempotency-Key's SHA-256 ('' without one), 13 the call's fingerprint (SHA-256
--       of route and body), 14 the key record's lifetime (s), 15 today (YYYY-MM-DD, UTC: a
--       sub-key's day and month caps)
--
-- v6 (issue 25): a sub-key (a key record with `parent`) is admitted on its account's balance,
-- within its own caps, models and plan; see the sub-key block below (broker_core::subkeys).
local key_hash, now, rid, route, ip = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4], ARGV[5]
local anon_limit, anon_window = tonumber(ARGV[6]), tonumber(ARGV[7])
local ladder, meta, label = ARGV[9], ARGV[10], ARGV[11]
local idem, idem_fp, idem_ttl, today = ARGV[12], ARGV[13], ARGV[14], ARGV[15]

local function anonymous(reason)
  local zkey = 'abk:rl:ip:' .. ip
  local n, reset = window(zkey, anon_window, now)
  if n >= anon_limit then
    return {'ip_limited', anon_limit, 0, reset}
  end
  record(zkey, anon_window, now, rid)
  return {'unauthorized', reason, anon_limit, anon_limit - n - 1, reset}
end

local id = redis.call('GET', 'abk:keyhash:' .. key_hash)
if not id then return anonymous('unknown') end
local kkey = 'abk:key:' .. id
local rec = redis.call('HMGET', kkey, 'status', 'plan', 'balance', 'parent')
if not rec[1] then return anonymous('unknown') end
if rec[1] ~= 'active' then return anonymous(rec[1]) end
local plan, balance = rec[2], tonumber(rec[3]) or 0

-- Idempotency-Key (issue 24): check. ---------------------------------------------------------
-- Before the rate limit and the hold: a retry of a known call never runs, holds or counts.
-- Records: broker_core::idempotency (`fp`, `rid`; `charged` once closed; `answer` when kept).
-- A sub-key's records are its own (`id` is the calling key's here).
local ikey
if idem ~= '' then
  ikey = 'abk:idem:' .. id .. ':' .. idem
  local r = redis.call('HMGET', ikey, 'fp', 'rid', 'charged', 'answer')
  if r[1] then
    if r[1] ~= idem_fp then return {'idem_reused', r[2]} end
    if not r[3] then return {'idem_busy', r[2]} end
    return {'idem_done', r[2], r[3], r[4] or ''}
  end
end
-- ---------------------------------------------------------------------------------------------

local function plan_limit(p)
  for name, l, w in string.gmatch(ARGV[8], '([^:,]+):(%d+):(%d+)') do
    if name == p then return tonumber(l), tonumber(w) end
  end
end

local limit, win = plan_limit(plan)
if not limit then return {'no_plan', plan} end

local rkey = 'abk:rl:' .. id .. ':' .. route
local n, reset = window(rkey, win, now)
if n >= limit then return {'rate_limited', limit, 0, reset, plan} end

-- ---- sub-keys (issue 25) -----------------------------------------------------------------
-- A sub-key spends its account's balance: the account must be active, the model allowed, the
-- account's own rate window open too, and every cap (day, month: UTC calendar periods; total)
-- must cover its spend in the period + its open holds + this hold. `room` is the least any cap
-- leaves; the ladder's rung must fit it (a call without max_tokens gets a smaller output cap).
local sub, sub_tag, room, room_cap, akey, awin
if rec[4] then
  sub = id
  local s = redis.call('HMGET', kkey, 'models', 'cap_day', 'cap_month', 'cap_total', 'spent_day', 'spent_day_at',
    'spent_month', 'spent_month_at', 'spent_total', 'held', 'ledger_tag')
  if s[1] and s[1] ~= '' and not string.find(s[1], ',' .. label .. ',', 1, true) then
    return {'model_not_allowed', label, sub}
  end
  local held_sub = tonumber(s[10]) or 0
  local periods = {
    {'daily_cap', s[2], s[6] == today and s[5] or 0},
    {'monthly_cap', s[3], s[8] == string.sub(today, 1, 7) and s[7] or 0},
    {'total_cap', s[4], s[9] or 0},
  }
  for _, p in ipairs(periods) do
    if p[2] and p[2] ~= '' then
      local left = tonumber(p[2]) - (tonumber(p[3]) or 0) - held_sub
      if not room or left < room then room, room_cap = left, p[1] end
    end
  end
  sub_tag = s[11] or ''
  id = rec[4]
  kkey = 'abk:key:' .. id
  local acct = redis.call('HMGET', kkey, 'status', 'plan', 'balance')
  if acct[1] ~= 'active' then return anonymous('account_' .. (acct[1] or 'unknown')) end
  balance = tonumber(acct[3]) or 0
  local alimit
  alimit, awin = plan_limit(acct[2])
  if not alimit then return {'no_plan', acct[2]} end
  akey = 'abk:rl:' .. id .. ':' .. route
  local an, areset = window(akey, awin, now)
  if an >= alimit then return {'rate_limited', alimit, 0, areset, acct[2]} end
end
-- ---- end of sub-keys ---------------------------------------------------------------------

-- The first rung the balance (and a sub-key's caps) covers (holds stay strings: they are
-- applied exactly as given). A negative balance is a debt (a refund, or a usage above its
-- hold): nothing is spendable.
local hold, units, smallest
for h, u in string.gmatch(ladder, '(%d+):(%d+)') do
  smallest = h
  if not hold and tonumber(h) <= balance and (not room or tonumber(h) <= room) then hold, units = h, u end
end
if not smallest then return redis.error_reply('ERR admit_v6: empty hold ladder') end
if not hold then
  if room and tonumber(smallest) > room and room < balance then
    return {'sub_key_cap', smallest, room, room_cap, limit, limit - n, reset}
  end
  return {'insufficient', smallest, balance, limit, limit - n, reset}
end

record(rkey, win, now, rid)
local after = redis.call('HINCRBY', kkey, 'balance', '-' .. hold)
redis.call('HINCRBY', kkey, 'held', hold)
redis.call('HSET', kkey, 'last_used_ms', now)
if sub then
  record(akey, awin, now, rid)
  -- The sub-key's open holds count against its caps until settle_v6 moves them to its spend;
  -- its tag (`"sub_key":…,"sub_key_name":…`) leads the call's ledger fields.
  redis.call('HINCRBY', 'abk:key:' .. sub, 'held', hold)
  redis.call('HSET', 'abk:key:' .. sub, 'last_used_ms', now)
  meta = sub_tag .. more(meta)
end
redis.call('SET', 'abk:hold:' .. rid, id .. '|' .. hold .. '|' .. label .. '|' .. meta)
redis.call('ZADD', 'abk:open_holds', now, rid)

-- Idempotency-Key (issue 24): claim, only for an admitted call (a refused one leaves the key
-- unused). settle_v6 closes it through abk:idem_of:<rid>. -----------------------------------
if ikey then
  redis.call('HSET', ikey, 'fp', idem_fp, 'rid', rid)
  redis.call('EXPIRE', ikey, idem_ttl)
  redis.call('SET', 'abk:idem_of:' .. rid, ikey, 'EX', idem_ttl)
end
-- ---------------------------------------------------------------------------------------------
return {'ok', id, plan, hold, after, units, limit, limit - n - 1, reset, sub or ''}
