-- credit_v3: add (or, for admin adjustments, remove) credits, exactly once per dedupe key.
-- Used by Stripe and PayPal top-ups and admin grants. Every dedupe key is checked and set in the
-- same atomic step as the credit, so a replayed event or a second event for the same checkout
-- session changes nothing. Markers keep "<key id>|<amount>": clawback_v2 reads a payment's marker
-- to take back a refunded share. Event markers expire after 90 days (Stripe retries for 3);
-- payment, session and capture markers never do (refunds and disputes come months later).
-- A refund that arrived before this purchase (recorded by clawback_v2 under the pending key as
-- "<refunded cents>|<paid cents>"; paid 0: the credits to take back) is taken back here, at once.
-- Decoded by broker_core::scripts::CreditReply::decode.
--
-- ARGV: 1 target ("id:<key id>" or "hash:<sha256 of the key>"), 2 amount, 3 now_ms,
--       4 entry type (topup|grant|adjustment|import), 5 ledger JSON fragment, 6 ledger keep,
--       7 the payment's marker key ('' = none), 8 its pending-refund key ('' = none),
--       9 day (YYYY-MM-DD), 10 analytics ttl (s), 11.. other dedupe keys
local target, amount, now, kind, frag = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4], ARGV[5]
local keep, payment, pending = tonumber(ARGV[6]), ARGV[7], ARGV[8]
local payments, ttl = 'abk:stats:' .. ARGV[9] .. ':payments', tonumber(ARGV[10])
local dedupe = {}
if payment ~= '' then dedupe[#dedupe + 1] = payment end
for i = 11, #ARGV do dedupe[#dedupe + 1] = ARGV[i] end
for _, k in ipairs(dedupe) do
  local seen = redis.call('GET', k)
  if seen then return {'duplicate', k, seen} end
end
local id = key_id_of(target)
if not id or redis.call('EXISTS', 'abk:key:' .. id) == 0 then return {'unknown_key'} end
local kkey = 'abk:key:' .. id
local bal = tonumber(redis.call('HGET', kkey, 'balance')) or 0
if bal + amount < 0 then return {'insufficient', bal} end
bal = redis.call('HINCRBY', kkey, 'balance', amount)
-- %d, not concatenation: Lua prints large numbers as 1e+14.
ledger_push(id, string.format('{"ts":%d,"type":"%s","amount":%d,"balance":%d%s}',
  now, kind, amount, ledger_balance(kkey), more(frag)), keep)
stat(payments, kind .. ':count', 1, ttl)
stat(payments, kind .. ':mc', amount, ttl)
local marker = string.format('%s|%d', id, amount)
for _, k in ipairs(dedupe) do
  if string.find(k, ':event:', 1, true) then
    redis.call('SET', k, marker, 'EX', 7776000)
  else
    redis.call('SET', k, marker)
  end
end
local taken = 0
local early = pending ~= '' and redis.call('GET', pending)
if early and payment ~= '' then
  local bar = string.find(early, '|', 1, true)
  local refunded, paid = tonumber(string.sub(early, 1, bar - 1)), tonumber(string.sub(early, bar + 1))
  if paid == 0 then taken = math.min(refunded, amount)
  elseif paid then taken = math.ceil(amount * math.min(refunded, paid) / paid) end
  if taken > 0 then
    bal = redis.call('HINCRBY', kkey, 'balance', -taken)
    redis.call('SET', payment .. ':clawed', string.format('%d', taken))
    ledger_push(id, string.format('{"ts":%d,"type":"refund","amount":%d,"balance":%d,"note":"refunded before the purchase was credited"%s}',
      now, -taken, ledger_balance(kkey), more(frag)), keep)
    stat(payments, 'refund:count', 1, ttl)
    stat(payments, 'refund:mc', -taken, ttl)
  end
  redis.call('DEL', pending)
end
return {'ok', id, bal, taken}
