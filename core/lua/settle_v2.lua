-- settle_v2: after a call, release its hold and charge the real cost, once per request.
-- The hold (key id and amount) is read from abk:hold:<rid>, written by admit_v2, and deleted here:
-- a second settlement finds nothing. The charge may exceed the hold (a provider overran); it is
-- then taken from the balance but never below zero, and the shortfall is recorded.
-- Mode `sweep` (the scheduled sweeper, for holds whose settlement was lost) only releases, and
-- leaves abk:swept:<rid> so a settlement that arrives late can still charge the real usage once.
-- Decoded by broker_core::scripts::SettleReply::decode.
--
-- ARGV: 1 request_id, 2 charge (mc), 3 now_ms, 4 ledger JSON fragment (usage, model), 5 mode
--       (settle|sweep), 6 JSON fragment for every entry written (e.g. a note; may be empty)
local rid, charge, now, frag, mode, note = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4], ARGV[5], ARGV[6]
redis.call('ZREM', 'abk:open_holds', rid)
local id, hold
local rec = redis.call('GET', 'abk:hold:' .. rid)
if rec then
  local bar = string.find(rec, '|', 1, true)
  id, hold = string.sub(rec, 1, bar - 1), tonumber(string.sub(rec, bar + 1))
  redis.call('DEL', 'abk:hold:' .. rid)
elseif mode == 'settle' then
  id = redis.call('GET', 'abk:swept:' .. rid)
  if not id then return {'missing'} end
  redis.call('DEL', 'abk:swept:' .. rid)
  hold = 0
else
  return {'missing'}
end
local kkey = 'abk:key:' .. id
if redis.call('EXISTS', kkey) == 0 then return {'missing'} end
local ledger = 'abk:ledger:' .. id
local extra = ''
if note ~= '' then extra = ',' .. note end
-- %d, not concatenation: Lua prints large numbers as 1e+14.
local function entry(kind, amount, bal, more)
  return string.format('{"ts":%d,"type":"%s","amount":%d,"balance":%d,"ref":"%s"%s}', now, kind, amount, bal, rid, more)
end
local bal = tonumber(redis.call('HGET', kkey, 'balance')) or 0
if hold > 0 then
  bal = redis.call('HINCRBY', kkey, 'balance', hold)
  redis.call('LPUSH', ledger, entry('release', hold, bal, extra))
end
if mode == 'sweep' then
  redis.call('SET', 'abk:swept:' .. rid, id, 'EX', 604800)
  return {'swept', 0, bal}
end
local eff = charge
if eff > bal then eff = bal end
if eff < 0 then eff = 0 end
if charge > 0 then
  bal = redis.call('HINCRBY', kkey, 'balance', -eff)
  redis.call('HINCRBY', kkey, 'charged_total', eff)
  local sep = ''
  if frag ~= '' then sep = ',' end
  redis.call('LPUSH', ledger, entry('charge', -eff, bal, string.format(',"shortfall":%d', charge - eff) .. extra .. sep .. frag))
end
return {'ok', eff, bal}
