-- admit_v3: the one blocking Redis round trip of a metered call.
-- Validates the key, applies the sliding-window rate limit of its plan and the route's class,
-- and reserves the worst-case cost: the hold moves from `balance` (spendable) to `held` and is
-- recorded under the request id with the call's ledger fields, for settle_v3 and the sweeper.
-- No ledger entry here: the call's one entry is written when it settles.
-- Calls with an unknown or revoked key count against the client IP.
-- Decoded by broker_core::scripts::AdmitReply::decode; arguments owned by
-- broker_core::metering::Admission::argv. Amounts are integer millicredits.
--
-- ARGV: 1 key_hash, 2 now_ms, 3 request_id, 4 route class, 5 client_ip, 6 anon_limit,
--       7 anon_window_ms, 8 plan limits "plan:limit:window_ms,...", 9 fixed hold,
--       10 per-unit nano-mc of a flexible output (0 = the hold is fixed), 11 max units,
--       12 minimum units, 13 the call's ledger fields (JSON fragment), 14 its analytics label
--       (`<provider>/<model>`)
local key_hash, now, rid, route, ip = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4], ARGV[5]
local anon_limit, anon_window = tonumber(ARGV[6]), tonumber(ARGV[7])
local fixed, per_unit = tonumber(ARGV[9]), tonumber(ARGV[10])
local cap, min_units, meta, label = tonumber(ARGV[11]), tonumber(ARGV[12]), ARGV[13], ARGV[14]

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

local limit, win
for p, l, w in string.gmatch(ARGV[8], '([^:,]+):(%d+):(%d+)') do
  if p == plan then limit, win = tonumber(l), tonumber(w) end
end
if not limit then return {'no_plan', plan} end

local rkey = 'abk:rl:' .. id .. ':' .. route
local n, reset = window(rkey, win, now)
if n >= limit then return {'rate_limited', limit, 0, reset, plan} end

local hold, units = fixed, cap
if per_unit > 0 then
  -- The client set no output cap: pick the largest the balance covers, up to the model's.
  local full = fixed + math.ceil(cap * per_unit / 1000000)
  if balance >= full then
    hold = full
  else
    local afford = math.floor((balance - fixed) * 1000000 / per_unit)
    if afford < min_units then
      return {'insufficient', fixed + math.ceil(min_units * per_unit / 1000000), balance, limit, limit - n, reset}
    end
    units = afford
    hold = fixed + math.ceil(afford * per_unit / 1000000)
  end
end
-- A negative balance is a debt (a refund took back spent credits): nothing is spendable.
if hold > balance then
  return {'insufficient', hold, balance, limit, limit - n, reset}
end

record(rkey, win, now, rid)
local after = redis.call('HINCRBY', kkey, 'balance', -hold)
redis.call('HINCRBY', kkey, 'held', hold)
redis.call('HSET', kkey, 'last_used_ms', now)
-- %d, not concatenation: Lua prints large numbers as 1e+14.
redis.call('SET', 'abk:hold:' .. rid, id .. '|' .. string.format('%d', hold) .. '|' .. label .. '|' .. meta)
redis.call('ZADD', 'abk:open_holds', now, rid)
return {'ok', id, plan, hold, after, units, limit, limit - n - 1, reset}
