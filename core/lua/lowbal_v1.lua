-- lowbal_v1: the low-balance watchers of a key (the alert and the auto top-up), in its hash
-- abk:lowbal:<key id>. Each watcher has an armed flag: the first settlement that leaves the
-- balance below its threshold clears it (here, atomically: of two settlements at once, one
-- fires), a credit sets it again. Whether a balance crossed is decided in Rust
-- (broker_core::alerts::crossed); this script only reads the state and clears a flag that is
-- still set. Built and decoded by broker_core::lowbal.
--
-- Hash fields: a_thr, a_url, a_secret, a_armed (the alert); t_thr, t_amount (mc), t_cents,
-- t_max, t_on, t_armed, t_status, t_error (the auto top-up); customer, pm (the saved card).
--
-- ARGV: 1 mode, 2 key id, then per mode:
--   check                      → {'none'} | {'state', balance, a_thr, a_armed, t_thr, t_armed, t_on}
--   fire_alert                 → {'no'} | {'fire', url, secret, threshold}
--   fire_topup  3 day counter key, 4 its ttl (s)
--                              → {'no'} | {'limit', n} | {'fire', n, customer, pm, amount mc, cents}
--   rearm                      → {'ok'}
--   topup_off   3 status, 4 error
--                              → {1 if it was on, alert url, alert secret}
--   save_card   3 customer, 4 payment method → {'ok'} | {'unknown_key'}
local mode, id = ARGV[1], ARGV[2]
local h = 'abk:lowbal:' .. id
if mode == 'check' then
  local v = redis.call('HMGET', h, 'a_thr', 'a_armed', 't_thr', 't_armed', 't_on')
  if not v[1] and not (v[3] and v[5] == '1') then return {'none'} end
  local bal = redis.call('HGET', 'abk:key:' .. id, 'balance') or '0'
  return {'state', bal, v[1] or '', v[2] or '0', v[3] or '', v[4] or '0', v[5] or '0'}
elseif mode == 'fire_alert' then
  local v = redis.call('HMGET', h, 'a_armed', 'a_url', 'a_secret', 'a_thr')
  if v[1] ~= '1' or not v[2] then return {'no'} end
  redis.call('HSET', h, 'a_armed', '0')
  return {'fire', v[2], v[3] or '', v[4] or '0'}
elseif mode == 'fire_topup' then
  local v = redis.call('HMGET', h, 't_on', 't_armed', 't_max', 'customer', 'pm', 't_amount', 't_cents')
  if v[1] ~= '1' or v[2] ~= '1' or not v[5] then return {'no'} end
  local n = tonumber(redis.call('GET', ARGV[3]) or '0')
  if n >= tonumber(v[3] or '0') then return {'limit', n} end
  n = redis.call('INCR', ARGV[3])
  redis.call('EXPIRE', ARGV[3], tonumber(ARGV[4]))
  redis.call('HSET', h, 't_armed', '0')
  return {'fire', n, v[4] or '', v[5], v[6] or '0', v[7] or '0'}
elseif mode == 'rearm' then
  local v = redis.call('HMGET', h, 'a_thr', 't_thr')
  if v[1] then redis.call('HSET', h, 'a_armed', '1') end
  if v[2] then redis.call('HSET', h, 't_armed', '1') end
  return {'ok'}
elseif mode == 'topup_off' then
  local was = redis.call('HGET', h, 't_on')
  redis.call('HSET', h, 't_on', '0', 't_armed', '0', 't_status', ARGV[3], 't_error', ARGV[4])
  local a = redis.call('HMGET', h, 'a_url', 'a_secret')
  return {was == '1' and 1 or 0, a[1] or '', a[2] or ''}
elseif mode == 'save_card' then
  if redis.call('EXISTS', 'abk:key:' .. id) == 0 then return {'unknown_key'} end
  redis.call('HSET', h, 'customer', ARGV[3], 'pm', ARGV[4])
  return {'ok'}
end
return redis.error_reply('ERR lowbal_v1: unknown mode')
