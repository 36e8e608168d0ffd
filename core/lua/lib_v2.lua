-- lib_v2: helpers shared by every script (prepended by broker_core::scripts; Redis runs each
-- script alone, so shared Lua has to travel with it). Key names: broker_core::redis_keys.

-- Sliding-window log: entries of the last `win` ms before `now`. Returns the count and the ms
-- until the oldest entry leaves the window.
local function window(zkey, win, now)
  redis.call('ZREMRANGEBYSCORE', zkey, '-inf', now - win)
  local n = redis.call('ZCARD', zkey)
  local reset = win
  local oldest = redis.call('ZRANGE', zkey, 0, 0, 'WITHSCORES')
  if oldest[2] then reset = tonumber(oldest[2]) + win - now end
  return n, reset
end

local function record(zkey, win, now, member)
  redis.call('ZADD', zkey, now, member)
  redis.call('PEXPIRE', zkey, win)
end

-- "id:<key id>" or "hash:<sha256 of the key>" → key id, or nil.
local function key_id_of(target)
  if string.sub(target, 1, 3) == 'id:' then return string.sub(target, 4) end
  return redis.call('GET', 'abk:keyhash:' .. string.sub(target, 6))
end

-- ",<fragment>" or "" (ledger entries are built as JSON text).
local function more(fragment)
  if fragment == nil or fragment == '' then return '' end
  return ',' .. fragment
end

-- The key's ledger balance: spendable plus held by open calls. A ledger entry's "balance" is
-- this figure, so the entries (and the carried total) always sum to it.
local function ledger_balance(kkey)
  local v = redis.call('HMGET', kkey, 'balance', 'held')
  return (tonumber(v[1]) or 0) + (tonumber(v[2]) or 0)
end

-- Appends a ledger entry (JSON text with an integer "amount") and keeps the newest `keep`:
-- older entries fold into the key's `ledger_carried`, so storage per key stays bounded and
-- balance + held == ledger_carried + the sum of the entries still holds.
local function ledger_push(id, entry, keep)
  local lkey = 'abk:ledger:' .. id
  local n = redis.call('LPUSH', lkey, entry)
  while n > keep do
    local old = redis.call('RPOP', lkey)
    local amount = tonumber(string.match(old, '"amount":(%-?%d+)')) or 0
    redis.call('HINCRBY', 'abk:key:' .. id, 'ledger_carried', amount)
    n = n - 1
  end
end

-- Splits "a|b|c|rest" (hold records) at the first three bars.
local function split4(s)
  local b1 = string.find(s, '|', 1, true)
  local b2 = string.find(s, '|', b1 + 1, true)
  local b3 = string.find(s, '|', b2 + 1, true)
  return string.sub(s, 1, b1 - 1), string.sub(s, b1 + 1, b2 - 1), string.sub(s, b2 + 1, b3 - 1), string.sub(s, b3 + 1)
end

-- Daily analytics: adds `n` to `<label>:<metric>` of the day's rollup `hkey` (kept `ttl` s).
-- Keys: abk:stats:<day> (all keys), abk:stats:<day>:<key id> (one key), abk:stats:<day>:payments.
local function stat(hkey, field, n, ttl)
  if n ~= 0 then
    redis.call('HINCRBY', hkey, field, n)
    redis.call('EXPIRE', hkey, ttl)
  end
end

-- A call's rollups, for all keys and for its key.
local function call_stats(day, id, label, metrics, ttl)
  for _, hkey in ipairs({'abk:stats:' .. day, 'abk:stats:' .. day .. ':' .. id}) do
    for metric, n in pairs(metrics) do stat(hkey, label .. ':' .. metric, n, ttl) end
  end
end

