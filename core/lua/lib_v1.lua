-- lib_v1: helpers shared by every script (prepended by broker_core::scripts; Redis runs each
-- script alone, so shared Lua has to travel with it).

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

