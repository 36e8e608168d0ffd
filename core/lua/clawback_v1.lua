-- clawback_v1: a refunded payment takes back its share of the credits it bought, once per event.
-- The payment's marker (written by credit_v2 as "<key id>|<credited mc>") names the key and the
-- amount; refunds are cumulative (Stripe's amount_refunded), so the share taken so far is kept
-- beside the marker and only the difference is taken. Credits already spent cannot be taken: the
-- balance stops at zero and the shortfall is recorded. Decoded by scripts::ClawbackReply::decode.
--
-- ARGV: 1 payment marker key, 2 refunded cents so far, 3 paid cents, 4 now_ms,
--       5 ledger JSON fragment, 6 event dedupe key
local marker, refunded, paid, now, frag, dedupe = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5], ARGV[6]
if redis.call('EXISTS', dedupe) == 1 then return {'duplicate'} end
local rec = redis.call('GET', marker)
local bar = rec and string.find(rec, '|', 1, true)
if not bar or paid <= 0 then return {'unknown_payment'} end
local id, credited = string.sub(rec, 1, bar - 1), tonumber(string.sub(rec, bar + 1))
local kkey = 'abk:key:' .. id
if redis.call('EXISTS', kkey) == 0 then return {'unknown_payment'} end
if refunded > paid then refunded = paid end
local target = math.ceil(credited * refunded / paid)
local taken_key = marker .. ':clawed'
local delta = target - (tonumber(redis.call('GET', taken_key)) or 0)
redis.call('SET', dedupe, id, 'EX', 7776000)
if delta <= 0 then return {'ok', id, 0, 0, tonumber(redis.call('HGET', kkey, 'balance')) or 0} end
redis.call('SET', taken_key, string.format('%d', target), 'EX', 7776000)
local bal = tonumber(redis.call('HGET', kkey, 'balance')) or 0
local eff = delta
if eff > bal then eff = bal end
if eff < 0 then eff = 0 end
bal = redis.call('HINCRBY', kkey, 'balance', -eff)
local sep = ''
if frag ~= '' then sep = ',' end
redis.call('LPUSH', 'abk:ledger:' .. id, string.format('{"ts":%d,"type":"refund","amount":%d,"balance":%d,"shortfall":%d%s%s}',
  now, -eff, bal, delta - eff, sep, frag))
return {'ok', id, eff, delta - eff, bal}
