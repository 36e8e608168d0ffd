-- bill_v2: what the gateway keeps about one call of a key, for GET /v1/requests/{id}: its open
-- hold (with its admission time) if it is still held, else its ledger entries (the call's, and
-- a correction of a sweep). Only the key's own: another key's hold or ledger is never read.
-- Reads only; decoded by broker_core::bills::BillReply::decode.
-- v2: a sub-key's call in flight is its own too (its hold is held by its account, and the hold's
-- ledger fields start with the sub-key's tag, as admit_v6 writes them).
--
-- ARGV: 1 key id, 2 request id
local id, rid = ARGV[1], ARGV[2]
local rec = redis.call('GET', 'abk:hold:' .. rid)
if rec then
  local owner, hold, _, meta = split4(rec)
  meta = meta or ''
  local mine = owner == id
  if not mine and string.sub(meta, 1, #id + 12) == '"sub_key":"' .. id .. '"' then
    mine = redis.call('HGET', 'abk:key:' .. id, 'parent') == owner
  end
  if mine then
    return {'held', hold, redis.call('ZSCORE', 'abk:open_holds', rid) or '0', meta}
  end
end
-- The ledger is newest first; a call has one `call` entry and at most one later correction.
local lkey, needle, out = 'abk:ledger:' .. id, '"ref":"' .. rid .. '"', {'ledger'}
local len, step = redis.call('LLEN', lkey), 1000
for start = 0, len - 1, step do
  local chunk = redis.call('LRANGE', lkey, start, start + step - 1)
  for i = 1, #chunk do
    if string.find(chunk[i], needle, 1, true) then
      out[#out + 1] = chunk[i]
      if string.find(chunk[i], '"type":"call"', 1, true) then return out end
    end
  end
end
return out
