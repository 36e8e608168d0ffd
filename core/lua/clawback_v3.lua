-- clawback_v3: a refunded payment takes back its share of the credits it bought, once per event.
-- The payment's marker (written by credit_v5 as "<key id>|<credited mc>") names the key and the
-- amount; refunds are cumulative (Stripe's amount_refunded), so the share taken so far is kept
-- beside the marker and only the difference is taken.
-- The share is computed in Rust (broker_core::money::refund_share_mc), never here: a call without
-- it (or with a stale view) changes nothing and answers {'share', marker, taken so far}; the
-- caller (broker_core::store::Store::clawback) computes the share and calls again with that view. The whole share is taken even when open
-- calls hold those credits or they were spent: the balance may become a debt, which admission
-- refuses to spend. A refund whose purchase is not known yet is remembered under the pending
-- key ("<largest cumulative refunded cents>|<paid cents>") and taken when the purchase is credited.
-- Paid cents 0: the refunded figure is already the credits to take back in all (PayPal, whose
-- credits are USD_PER_CREDIT's worth of the cents: broker_core::paypal computes it).
-- Decoded by broker_core::scripts::ClawbackReply::decode.
--
-- ARGV: 1 payment marker key, 2 refunded cents so far (at most the paid cents), 3 paid cents,
--       4 now_ms, 5 ledger JSON fragment, 6 event dedupe key, 7 ledger keep, 8 pending-refund
--       key, 9 day (YYYY-MM-DD), 10 analytics ttl (s), 11 the view the share was computed from
--       ("<marker>#<taken so far>", '' = none yet), 12 the share to take now (mc), 13 the total
--       taken once it is
local marker, refunded, paid, now, frag, dedupe = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5], ARGV[6]
local keep, pending = tonumber(ARGV[7]), ARGV[8]
local payments, ttl = 'abk:stats:' .. ARGV[9] .. ':payments', tonumber(ARGV[10])
local seen_view, delta, target = ARGV[11] or '', ARGV[12] or '0', ARGV[13] or '0'
if redis.call('EXISTS', dedupe) == 1 then return {'duplicate'} end
local rec = redis.call('GET', marker)
local bar = rec and string.find(rec, '|', 1, true)
if not bar then
  local before = redis.call('GET', pending)
  local seen = before and tonumber(string.match(before, '^(%d+)|')) or -1
  if refunded > seen then redis.call('SET', pending, string.format('%d|%d', refunded, paid)) end
  redis.call('SET', dedupe, 'pending', 'EX', 7776000)
  return {'pending'}
end
local id = string.sub(rec, 1, bar - 1)
local kkey = 'abk:key:' .. id
local taken_key = marker .. ':clawed'
local taken = redis.call('GET', taken_key) or '0'
if seen_view ~= rec .. '#' .. taken then return {'share', rec, taken} end
redis.call('SET', dedupe, id, 'EX', 7776000)
if tonumber(delta) <= 0 then return {'ok', id, 0, tonumber(redis.call('HGET', kkey, 'balance')) or 0} end
redis.call('SET', taken_key, target)
local bal = redis.call('HINCRBY', kkey, 'balance', '-' .. delta)
ledger_push(id, '{"ts":' .. string.format('%d', now) .. ',"type":"refund","amount":-' .. delta .. ',"balance":'
  .. string.format('%d', ledger_balance(kkey)) .. more(frag) .. '}', keep)
stat(payments, 'refund:count', 1, ttl)
stat(payments, 'refund:mc', '-' .. delta, ttl)
return {'ok', id, delta, bal}
