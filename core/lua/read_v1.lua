-- read_v1: a key's record and a page of its ledger, in one round trip, by key hash or key id.
-- Decoded by the worker's account and admin handlers (scripts::KeyView::decode).
--
-- ARGV: 1 "hash:<sha256>" or "id:<key id>", 2 ledger offset, 3 ledger count (0 = none)
local target, offset, count = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local id
if string.sub(target, 1, 3) == 'id:' then
  id = string.sub(target, 4)
else
  id = redis.call('GET', 'abk:keyhash:' .. string.sub(target, 6))
end
if not id then return {'unknown'} end
local kkey = 'abk:key:' .. id
local f = redis.call('HMGET', kkey, 'status', 'plan', 'balance', 'name', 'created_ms', 'last_used_ms',
  'charged_total', 'rotated_ms', 'revoked_ms')
if not f[1] then return {'unknown'} end
local lkey = 'abk:ledger:' .. id
local len = redis.call('LLEN', lkey)
local out = {'ok', id, f[1], f[2] or '', f[3] or '0', f[4] or '', f[5] or '', f[6] or '', f[7] or '0',
  f[8] or '', f[9] or '', len}
if count > 0 then
  local entries = redis.call('LRANGE', lkey, offset, offset + count - 1)
  for i = 1, #entries do out[#out + 1] = entries[i] end
end
return out
