-- read_v2: a key's record and a page of its ledger, in one round trip, by key hash or key id.
-- Decoded by broker_core::scripts::ReadReply::decode.
--
-- A customer read (by hash) with an unknown or revoked key counts against the client IP, in
-- the same window as admit_v4's, so these routes cannot be used to guess keys either.
--
-- ARGV: 1 "hash:<sha256>" or "id:<key id>", 2 ledger offset, 3 ledger count (0 = none),
--       4 client ip, 5 anon limit, 6 anon window ms, 7 now ms, 8 request id (4-8: hash reads only)
local target, offset, count = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local function unknown(status)
  if string.sub(target, 1, 5) ~= 'hash:' then return {'unknown', status, 0, 0} end
  local zkey, limit, win, now = 'abk:rl:ip:' .. ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
  local n, reset = window(zkey, win, now)
  if n >= limit then return {'unknown', status, 1, reset} end
  record(zkey, win, now, ARGV[8])
  return {'unknown', status, 0, reset}
end
local id = key_id_of(target)
if not id then return unknown('unknown') end
local kkey = 'abk:key:' .. id
local f = redis.call('HMGET', kkey, 'status', 'plan', 'balance', 'name', 'created_ms', 'last_used_ms',
  'charged_total', 'rotated_ms', 'revoked_ms', 'held', 'ledger_carried', 'stripe_customer', 'subscription')
if not f[1] then return unknown('unknown') end
if f[1] ~= 'active' and string.sub(target, 1, 5) == 'hash:' then return unknown(f[1]) end
local lkey = 'abk:ledger:' .. id
local len = redis.call('LLEN', lkey)
local out = {'ok', id, f[1], f[2] or '', f[3] or '0', f[4] or '', f[5] or '', f[6] or '', f[7] or '0',
  f[8] or '', f[9] or '', len, f[10] or '0', f[11] or '0', f[12] or '', f[13] or ''}
if count > 0 then
  local entries = redis.call('LRANGE', lkey, offset, offset + count - 1)
  for i = 1, #entries do out[#out + 1] = entries[i] end
end
return out
