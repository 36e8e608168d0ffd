-- subkeys_v1 (issue 25): an account key's sub-keys: create, list, revoke, rotate, atomically.
-- A sub-key is a key record (hashed like every key) with `parent` = the account's key id; it
-- spends the account's balance within its own caps (admit_v6, settle_v6). The account lists its
-- active sub-keys in abk:subkeys:<account id>; a revoked one leaves the list (its record and its
-- ledger entries stay). Every input is checked in Rust first (broker_core::subkeys), which owns
-- the arguments (SubKeyOp::argv) and decodes the replies (SubKeyReply::decode).
--
-- ARGV: 1 op (create|list|revoke|rotate), 2 account key id, 3 now_ms, then
--   create: 4 sub-key id, 5 key hash, 6 name, 7 plan, 8 daily cap, 9 monthly cap, 10 total cap
--           (mc, '' = none), 11 allowed models (",<provider>/<model>,...," or '' = all), 12 its
--           ledger tag (JSON fragment), 13 the most sub-keys an account may have
--   revoke: 4 sub-key id
--   rotate: 4 sub-key id, 5 new key hash
local op, acct, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
local set = 'abk:subkeys:' .. acct
local a = redis.call('HMGET', 'abk:key:' .. acct, 'status', 'parent')
if not a[1] then return {'missing'} end
-- Only an account key manages sub-keys (a sub-key has a parent).
if a[2] then return {'forbidden'} end

local FIELDS = {'name', 'status', 'plan', 'created_ms', 'last_used_ms', 'rotated_ms', 'revoked_ms', 'cap_day', 'cap_month',
  'cap_total', 'models', 'spent_day', 'spent_day_at', 'spent_month', 'spent_month_at', 'spent_total', 'held'}

-- The sub-key's record key, if `sub` is one of this account's.
local function own(sub)
  local skey = 'abk:key:' .. sub
  if redis.call('HGET', skey, 'parent') ~= acct then return nil end
  return skey
end

if op == 'list' then
  local ids = redis.call('SMEMBERS', set)
  table.sort(ids)
  local out = {'list'}
  for _, sub in ipairs(ids) do
    local row = redis.call('HMGET', 'abk:key:' .. sub, unpack(FIELDS))
    local item = {sub}
    for i = 1, #FIELDS do item[#item + 1] = row[i] or '' end
    out[#out + 1] = item
  end
  return out
end
-- Only an active account changes its sub-keys (listing works for admins on any account).
if a[1] ~= 'active' then return {'revoked'} end
if op == 'create' then
  local n, max = redis.call('SCARD', set), tonumber(ARGV[13])
  if n >= max then
    -- A sub-key an admin revoked by id (keys_v3) is still listed: it frees its place now.
    for _, m in ipairs(redis.call('SMEMBERS', set)) do
      if redis.call('HGET', 'abk:key:' .. m, 'status') ~= 'active' then redis.call('SREM', set, m) end
    end
    n = redis.call('SCARD', set)
    if n >= max then return {'too_many', n} end
  end
  local sub, hash = ARGV[4], ARGV[5]
  local skey = 'abk:key:' .. sub
  if redis.call('EXISTS', skey) == 1 then return {'exists'} end
  if not redis.call('SET', 'abk:keyhash:' .. hash, sub, 'NX') then return {'exists'} end
  redis.call('HSET', skey, 'name', ARGV[6], 'plan', ARGV[7], 'status', 'active', 'parent', acct, 'created_ms', now,
    'key_hash', hash, 'held', 0, 'spent_total', 0, 'models', ARGV[11], 'ledger_tag', ARGV[12])
  for i, cap in ipairs({'cap_day', 'cap_month', 'cap_total'}) do
    if ARGV[7 + i] ~= '' then redis.call('HSET', skey, cap, ARGV[7 + i]) end
  end
  redis.call('SADD', set, sub)
  return {'ok', n + 1}
end
if op == 'revoke' then
  local skey = own(ARGV[4])
  if not skey then return {'missing'} end
  redis.call('HSET', skey, 'status', 'revoked', 'revoked_ms', now)
  redis.call('SREM', set, ARGV[4])
  return {'ok'}
end
if op == 'rotate' then
  local skey = own(ARGV[4])
  if not skey then return {'missing'} end
  if redis.call('HGET', skey, 'status') ~= 'active' then return {'revoked'} end
  if not redis.call('SET', 'abk:keyhash:' .. ARGV[5], ARGV[4], 'NX') then return {'exists'} end
  -- The old hash stays taken (a tombstone no lookup resolves), as keys_v3 does.
  local old = redis.call('HGET', skey, 'key_hash')
  if old then redis.call('SET', 'abk:keyhash:' .. old, 'retired:' .. ARGV[4]) end
  -- Caps, spend, holds and ledger stay: only the key changes.
  redis.call('HSET', skey, 'key_hash', ARGV[5], 'rotated_ms', now)
  return {'ok'}
end
return {'bad_op'}
