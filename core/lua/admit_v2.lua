-- admit_v2: the one blocking Redis round trip of a metered call.
-- Validates the key, applies the sliding-window rate limit of its plan and route, and reserves
-- the worst-case cost; calls with an unknown or revoked key count against the client IP.
-- Decoded by broker_core::scripts::AdmitReply::decode. Amounts are integer millicredits.
--
-- ARGV: 1 key_hash, 2 now_ms, 3 request_id, 4 route, 5 client_ip, 6 anon_limit, 7 anon_window_ms,
--       8 plan limits "plan:limit:window_ms,...", 9 fixed hold (input, or input+output when
--       max_tokens is given), 10 output nano-mc per token (0 = max_tokens given),
--       11 max_tokens cap, 12 minimum max_tokens, 13 ledger JSON fragment
local key_hash, now, rid, route, ip = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4], ARGV[5]
local anon_limit, anon_window = tonumber(ARGV[6]), tonumber(ARGV[7])
local fixed, out_nano = tonumber(ARGV[9]), tonumber(ARGV[10])
local cap, min_tokens, frag = tonumber(ARGV[11]), tonumber(ARGV[12]), ARGV[13]

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

local hold, max_tokens = fixed, cap
if out_nano > 0 then
  -- The client set no max_tokens: pick the largest the balance covers, up to the model cap.
  local full = fixed + math.ceil(cap * out_nano / 1000000)
  if balance >= full then
    hold = full
  else
    local afford = math.floor((balance - fixed) * 1000000 / out_nano)
    if afford < min_tokens then
      return {'insufficient', fixed + math.ceil(min_tokens * out_nano / 1000000), balance, limit, limit - n, reset}
    end
    max_tokens = afford
    hold = fixed + math.ceil(afford * out_nano / 1000000)
  end
end
if hold > balance then
  return {'insufficient', hold, balance, limit, limit - n, reset}
end

record(rkey, win, now, rid)
local after = redis.call('HINCRBY', kkey, 'balance', -hold)
redis.call('HSET', kkey, 'last_used_ms', now)
redis.call('SET', 'abk:hold:' .. rid, id .. '|' .. string.format('%d', hold), 'EX', 604800)
redis.call('ZADD', 'abk:open_holds', now, rid)
local sep = ''
if frag ~= '' then sep = ',' end
-- %d, not concatenation: Lua prints large numbers as 1e+14.
redis.call('LPUSH', 'abk:ledger:' .. id, string.format('{"ts":%d,"type":"hold","amount":%d,"balance":%d,"ref":"%s"%s%s}',
  now, -hold, after, rid, sep, frag))
return {'ok', id, plan, hold, after, max_tokens, limit, limit - n - 1, reset}
