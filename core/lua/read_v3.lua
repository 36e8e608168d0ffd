-- read_v3: a key's record and a page of its ledger, in one round trip, by key hash or key id.
-- Decoded by broker_core::scripts::ReadReply::decode.
--
-- v3 (issue 25): a sub-key's reply carries, from position 16 on, its account and its own
-- fields (parent, the account's status, allowed models, caps, spend, open holds); its balance
-- and held are the account's (the balance it spends), its ledger its own calls. Entries start
-- at position 28.
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
  'charged_total', 'rotated_ms', 'revoked_ms', 'held', 'ledger_carried', 'stripe_customer', 'subscription', 'parent')
if not f[1] then return unknown('unknown') end
if f[1] ~= 'active' and string.sub(target, 1, 5) == 'hash:' then return unknown(f[1]) end
-- ---- sub-keys (issue 25) ----
local sub = {'', '', '', '', '', '', '', '', '', '', '', ''}
if f[14] then
  local a = redis.call('HMGET', 'abk:key:' .. f[14], 'status', 'balance', 'held')
  if a[1] ~= 'active' and string.sub(target, 1, 5) == 'hash:' then return unknown('revoked') end
  local s = redis.call('HMGET', kkey, 'models', 'cap_day', 'cap_month', 'cap_total', 'spent_day', 'spent_day_at',
    'spent_month', 'spent_month_at', 'spent_total')
  sub = {f[14], a[1] or '', s[1] or '', s[2] or '', s[3] or '', s[4] or '', s[5] or '0', s[6] or '', s[7] or '0',
    s[8] or '', s[9] or '0', f[10] or '0'}
  f[3], f[10], f[11] = a[2], a[3], '0'
  f[7] = s[9]
end
-- ---- end of sub-keys ----
local lkey = 'abk:ledger:' .. id
local len = redis.call('LLEN', lkey)
local out = {'ok', id, f[1], f[2] or '', f[3] or '0', f[4] or '', f[5] or '', f[6] or '', f[7] or '0',
  f[8] or '', f[9] or '', len, f[10] or '0', f[11] or '0', f[12] or '', f[13] or ''}
for i = 1, #sub do out[#out + 1] = sub[i] end
if count > 0 then
  local entries = redis.call('LRANGE', lkey, offset, offset + count - 1)
  for i = 1, #entries do out[#out + 1] = entries[i] end
end
return out
