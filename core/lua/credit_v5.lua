-- credit_v5: add (or, for admin adjustments, remove) credits, exactly once per dedupe key.
-- Used by Stripe and PayPal top-ups and admin grants. Every dedupe key is checked and set in the
-- same atomic step as the credit, so a replayed event or a second event for the same checkout
-- session changes nothing. Markers keep "<key id>|<amount>": clawback_v3 reads a payment's marker
-- to take back a refunded share. Event markers expire after 90 days (Stripe retries for 3);
-- payment, session and capture markers never do (refunds and disputes come months later).
-- A refund that arrived before this purchase (recorded by clawback_v3 under the pending key as
-- "<refunded cents>|<paid cents>"; paid 0: the credits to take back) is taken back here, at once.
-- Its share is computed in Rust (broker_core::money::refund_share_mc), never here: a call
-- without it (or computed from another pending record) changes nothing and answers
-- {'refund_share', pending record}; the caller (broker_core::store::Store::credit) computes the
-- share and calls again.
-- Decoded by broker_core::scripts::CreditReply::decode.
--
-- ARGV: 1 target ("id:<key id>" or "hash:<sha256 of the key>"), 2 amount, 3 now_ms,
--       4 entry type (topup|grant|adjustment|import), 5 ledger JSON fragment, 6 ledger keep,
--       7 the payment's marker key ('' = none), 8 its pending-refund key ('' = none),
--       9 day (YYYY-MM-DD), 10 analytics ttl (s), 11 the pending record the share was computed
--       from ('' = none), 12 that share (mc), 13.. other dedupe keys
local target, amount, now, kind, frag = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4], ARGV[5]
local keep, payment, pending = tonumber(ARGV[6]), ARGV[7], ARGV[8]
local payments, ttl = 'abk:stats:' .. ARGV[9] .. ':payments', tonumber(ARGV[10])
local dedupe = {}
if payment ~= '' then dedupe[#dedupe + 1] = payment end
local seen_pending, share = ARGV[11], ARGV[12]
for i = 13, #ARGV do dedupe[#dedupe + 1] = ARGV[i] end
for _, k in ipairs(dedupe) do
  local seen = redis.call('GET', k)
  if seen then return {'duplicate', k, seen} end
end
local id = key_id_of(target)
if not id or redis.call('EXISTS', 'abk:key:' .. id) == 0 then return {'unknown_key'} end
-- v5 (issue 25): a sub-key holds no credits (it spends its account's): it is no credit target.
if redis.call('HEXISTS', 'abk:key:' .. id, 'parent') == 1 then return {'unknown_key'} end
local kkey = 'abk:key:' .. id
local early = pending ~= '' and payment ~= '' and redis.call('GET', pending)
if early and early ~= seen_pending then return {'refund_share', early} end
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
local taken = '0'
if early then
  if tonumber(share) > 0 then
    taken = share
    bal = redis.call('HINCRBY', kkey, 'balance', '-' .. share)
    redis.call('SET', payment .. ':clawed', share)
    ledger_push(id, '{"ts":' .. string.format('%d', now) .. ',"type":"refund","amount":-' .. share .. ',"balance":'
      .. string.format('%d', ledger_balance(kkey)) .. ',"note":"refunded before the purchase was credited"' .. more(frag) .. '}', keep)
    stat(payments, 'refund:count', 1, ttl)
    stat(payments, 'refund:mc', '-' .. share, ttl)
  end
  redis.call('DEL', pending)
end
return {'ok', id, bal, taken}
