-- credit_v2: add (or, for admin adjustments, remove) credits, exactly once per dedupe key.
-- Used by Stripe and PayPal top-ups and admin grants. Every dedupe key is checked and set in the
-- same atomic step as the credit, so a replayed event or a second event for the same checkout
-- session changes nothing. Each marker keeps "<key id>|<amount>": clawback_v1 reads the payment's
-- marker to take back a refunded share. Decoded by scripts::CreditReply::decode.
--
-- ARGV: 1 target ("id:<key id>" or "hash:<sha256 of the key>"), 2 amount, 3 now_ms,
--       4 entry type (topup|grant|adjustment), 5 ledger JSON fragment, 6.. dedupe keys
local target, amount, now, kind, frag = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4], ARGV[5]
for i = 6, #ARGV do
  local seen = redis.call('GET', ARGV[i])
  if seen then return {'duplicate', ARGV[i], seen} end
end
local id = key_id_of(target)
if not id or redis.call('EXISTS', 'abk:key:' .. id) == 0 then return {'unknown_key'} end
local kkey = 'abk:key:' .. id
local bal = tonumber(redis.call('HGET', kkey, 'balance')) or 0
if bal + amount < 0 then return {'insufficient', bal} end
bal = redis.call('HINCRBY', kkey, 'balance', amount)
local sep = ''
if frag ~= '' then sep = ',' end
-- %d, not concatenation: Lua prints large numbers as 1e+14.
redis.call('LPUSH', 'abk:ledger:' .. id, string.format('{"ts":%d,"type":"%s","amount":%d,"balance":%d%s%s}',
  tonumber(now), kind, amount, bal, sep, frag))
for i = 6, #ARGV do
  -- Stripe retries for up to 3 days; keep the markers for 90.
  redis.call('SET', ARGV[i], id .. '|' .. string.format('%d', amount), 'EX', 7776000)
end
return {'ok', id, bal}
