-- rapid_v1: the RapidAPI channel. RapidAPI bills its own customers, so a call has no key, no
-- balance and no hold here: `admit` applies the sliding window of the RapidAPI user's plan in the
-- route's class; `settle` puts the call in the daily analytics (per model for all callers, per
-- RapidAPI user and per RapidAPI plan) with its provider cost and no credits charged.
-- Arguments owned by broker_core::rapidapi::{RapidAdmission, RapidSettlement}::argv; replies
-- decoded by broker_core::rapidapi::RapidAdmission::decode.
--
-- ARGV admit:  1 'admit', 2 user, 3 now_ms, 4 request_id, 5 class, 6 plan, 7 plan limits
--              "plan:limit:window_ms,..."
-- ARGV settle: 1 'settle', 2 user, 3 plan, 4 day, 5 label, 6 units, 7 cost micro-USD, 8 ttl
local op, user = ARGV[1], ARGV[2]
if op == 'admit' then
  local now, rid, class, plan = tonumber(ARGV[3]), ARGV[4], ARGV[5], ARGV[6]
  local limit, win
  for p, l, w in string.gmatch(ARGV[7], '([^:,]+):(%d+):(%d+)') do
    if p == plan then limit, win = tonumber(l), tonumber(w) end
  end
  if not limit then return {'no_plan'} end
  local rkey = 'abk:rl:rapid:' .. user .. ':' .. class
  local n, reset = window(rkey, win, now)
  if n >= limit then return {'rate_limited', limit, 0, reset} end
  record(rkey, win, now, rid)
  return {'ok', limit, limit - n - 1, reset}
end
if op == 'settle' then
  local plan, day, label, ttl = ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[8])
  local metrics = {calls = 1, units = tonumber(ARGV[6]), cost_micro = tonumber(ARGV[7])}
  call_stats(day, 'rapidapi:' .. user, label, metrics, ttl)
  for metric, n in pairs(metrics) do stat('abk:stats:' .. day .. ':rapidapi-plan:' .. plan, label .. ':' .. metric, n, ttl) end
  return {'ok'}
end
return redis.error_reply('ERR rapid_v1: unknown op')
