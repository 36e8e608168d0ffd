-- keys_v3: create, rotate and revoke API keys, and move them between plans with their Stripe
-- subscription, atomically. Arguments owned by broker_core::store::KeyOp::argv; decoded by
-- scripts::KeyOpReply::decode.
--
-- ARGV: 1 op (create|rotate|revoke|subscribe|unsubscribe), 2 key id, 3 now_ms, then
--   create: 4 key hash, 5 name, 6 plan, 7 initial credits (mc), 8 ledger JSON fragment, 9 ledger keep
--   rotate: 4 new key hash, 5 the hash the caller authenticated with ('' for an admin): the
--           rotation happens only if that hash is still the key's current one
--   subscribe: 4 plan ('' = keep), 5 subscription id, 6 Stripe customer ('' = keep)
--   unsubscribe: 4 the plan to return to, 5 subscription id (only that subscription ends)
local op, id, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
local kkey = 'abk:key:' .. id
if op == 'create' then
  if redis.call('EXISTS', kkey) == 1 then return {'exists'} end
  if not redis.call('SET', 'abk:keyhash:' .. ARGV[4], id, 'NX') then return {'exists'} end
  local initial = tonumber(ARGV[7])
  redis.call('HSET', kkey, 'name', ARGV[5], 'plan', ARGV[6], 'status', 'active', 'balance', initial, 'held', 0,
    'created_ms', now, 'key_hash', ARGV[4], 'charged_total', 0, 'ledger_carried', 0)
  if initial ~= 0 then
    ledger_push(id, string.format('{"ts":%d,"type":"grant","amount":%d,"balance":%d%s}',
      now, initial, initial, more(ARGV[8])), tonumber(ARGV[9]))
  end
  return {'ok', initial}
end
local status = redis.call('HGET', kkey, 'status')
if not status then return {'missing'} end
if op == 'revoke' then
  redis.call('HSET', kkey, 'status', 'revoked', 'revoked_ms', now)
  return {'ok'}
end
if op == 'rotate' then
  if status ~= 'active' then return {'revoked'} end
  local old = redis.call('HGET', kkey, 'key_hash')
  -- A customer's rotation is checked against the key it authenticated with, in this same step:
  -- a leaked old key that races the owner's rotation gets nothing.
  if ARGV[5] and ARGV[5] ~= '' and ARGV[5] ~= old then return {'stale'} end
  if not redis.call('SET', 'abk:keyhash:' .. ARGV[4], id, 'NX') then return {'exists'} end
  -- The old hash stays taken (a tombstone no lookup resolves), so a rotated-away key, perhaps
  -- leaked, can never be created again by an admin who types it.
  if old then redis.call('SET', 'abk:keyhash:' .. old, 'retired:' .. id) end
  redis.call('HSET', kkey, 'key_hash', ARGV[4], 'rotated_ms', now)
  return {'ok'}
end
if op == 'subscribe' then
  redis.call('HSET', kkey, 'subscription', ARGV[5])
  if ARGV[4] ~= '' then redis.call('HSET', kkey, 'plan', ARGV[4]) end
  if ARGV[6] ~= '' then redis.call('HSET', kkey, 'stripe_customer', ARGV[6]) end
  return {'ok'}
end
if op == 'unsubscribe' then
  -- A late deletion of an older subscription must not end the current one.
  if redis.call('HGET', kkey, 'subscription') ~= ARGV[5] then return {'other'} end
  redis.call('HSET', kkey, 'plan', ARGV[4])
  redis.call('HDEL', kkey, 'subscription')
  return {'ok'}
end
return {'bad_op'}
