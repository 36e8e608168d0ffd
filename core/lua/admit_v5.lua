-- admit_v5: the one blocking Redis round trip of a metered call.
-- Validates the key, applies the sliding-window rate limit of its plan and the route's class,
-- and reserves the worst-case cost: the hold moves from `balance` (spendable) to `held` and is
-- recorded under the request id with the call's ledger fields, for settle_v5 and the sweeper.
-- v5 (issue 24): the `Idempotency-Key` check and claim, in its own blocks below.
-- Every hold is computed in Rust (broker_core::metering::HoldPlan::ladder): the script only
-- picks the first rung the balance covers and compares integers; it does no money arithmetic.
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
--       of route and body), 14 the key record's lifetime (s)
local key_hash, now, rid, route, ip = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4], ARGV[5]
local anon_limit, anon_window = tonumber(ARGV[6]), tonumber(ARGV[7])
local ladder, meta, label = ARGV[9], ARGV[10], ARGV[11]
local idem, idem_fp, idem_ttl = ARGV[12], ARGV[13], ARGV[14]

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
local rec = redis.call('HMGET', kkey, 'status', 'plan', 'balance')
if not rec[1] then return anonymous('unknown') end
if rec[1] ~= 'active' then return anonymous(rec[1]) end
local plan, balance = rec[2], tonumber(rec[3]) or 0

-- Idempotency-Key (issue 24): check. ---------------------------------------------------------
-- Before the rate limit and the hold: a retry of a known call never runs, holds or counts.
-- Records: broker_core::idempotency (`fp`, `rid`; `charged` once closed; `answer` when kept).
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

local limit, win
for p, l, w in string.gmatch(ARGV[8], '([^:,]+):(%d+):(%d+)') do
  if p == plan then limit, win = tonumber(l), tonumber(w) end
end
if not limit then return {'no_plan', plan} end

local rkey = 'abk:rl:' .. id .. ':' .. route
local n, reset = window(rkey, win, now)
if n >= limit then return {'rate_limited', limit, 0, reset, plan} end

-- The first rung the balance covers (holds stay strings: they are applied exactly as given).
-- A negative balance is a debt (a refund, or a usage above its hold): nothing is spendable.
local hold, units, smallest
for h, u in string.gmatch(ladder, '(%d+):(%d+)') do
  smallest = h
  if not hold and tonumber(h) <= balance then hold, units = h, u end
end
if not smallest then return redis.error_reply('ERR admit_v5: empty hold ladder') end
if not hold then
  return {'insufficient', smallest, balance, limit, limit - n, reset}
end

record(rkey, win, now, rid)
local after = redis.call('HINCRBY', kkey, 'balance', '-' .. hold)
redis.call('HINCRBY', kkey, 'held', hold)
redis.call('HSET', kkey, 'last_used_ms', now)
redis.call('SET', 'abk:hold:' .. rid, id .. '|' .. hold .. '|' .. label .. '|' .. meta)
redis.call('ZADD', 'abk:open_holds', now, rid)

-- Idempotency-Key (issue 24): claim, only for an admitted call (a refused one leaves the key
-- unused). settle_v5 closes it through abk:idem_of:<rid>. -----------------------------------
if ikey then
  redis.call('HSET', ikey, 'fp', idem_fp, 'rid', rid)
  redis.call('EXPIRE', ikey, idem_ttl)
  redis.call('SET', 'abk:idem_of:' .. rid, ikey, 'EX', idem_ttl)
end
-- ---------------------------------------------------------------------------------------------
return {'ok', id, plan, hold, after, units, limit, limit - n - 1, reset}
