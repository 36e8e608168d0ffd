-- settle_v1: after a call, release its hold and charge the real cost, once per request.
-- The charge may exceed the hold (e.g. a provider overran); it is then taken from the balance
-- but never below zero, and the shortfall is recorded. Decoded by scripts::SettleReply::decode.
--
-- ARGV: 1 key id, 2 request_id, 3 hold, 4 charge, 5 now_ms, 6 ledger JSON fragment (usage, model)
local id, rid, hold, charge, now, frag = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5], ARGV[6]
if not redis.call('SET', 'abk:settled:' .. rid, '1', 'NX', 'EX', 604800) then
  return {'duplicate'}
end
local kkey = 'abk:key:' .. id
if redis.call('EXISTS', kkey) == 0 then return {'missing'} end
local ledger = 'abk:ledger:' .. id
local sep = ''
if frag ~= '' then sep = ',' end
local bal = redis.call('HINCRBY', kkey, 'balance', hold)
redis.call('LPUSH', ledger, '{"ts":' .. now .. ',"type":"release","amount":' .. hold .. ',"balance":' .. bal ..
  ',"ref":"' .. rid .. '"}')
local eff = charge
if eff > bal then eff = bal end
if eff < 0 then eff = 0 end
if charge > 0 then
  bal = redis.call('HINCRBY', kkey, 'balance', -eff)
  redis.call('HINCRBY', kkey, 'charged_total', eff)
  redis.call('LPUSH', ledger, '{"ts":' .. now .. ',"type":"charge","amount":' .. -eff .. ',"balance":' .. bal ..
    ',"ref":"' .. rid .. '","shortfall":' .. (charge - eff) .. sep .. frag .. '}')
end
return {'ok', eff, bal}
