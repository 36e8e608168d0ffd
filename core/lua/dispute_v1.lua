-- dispute_v1: one step of a Stripe dispute of a credited payment: `freeze` (charge.dispute.created
-- or funds_withdrawn), `release` (closed won, funds_reinstated) or `lose` (closed lost).
-- The frozen credits leave the spendable balance with a `dispute` ledger entry (the balance may
-- become a debt, as after a refund); a won dispute brings them back (`dispute_won`); a lost one
-- keeps them gone (`dispute_lost`, amount 0 when they were frozen already). The figure to freeze
-- is computed by broker_core::disputes (never here); this script applies it once per dispute:
-- the dispute's record ("<state>|<key id>|<mc>") makes every replay and any later step of a
-- closed dispute a no-op. A dispute whose purchase is not credited yet is remembered
-- ("pending|<step>|<disputed cents>", its id in the payment's pending set) and applied by
-- broker_core::disputes once the purchase is credited. The caller passes the payment marker it
-- read; if the marker changed meanwhile (the purchase was just credited) the answer is `retry`.
-- Decoded by broker_core::scripts::DisputeReply::decode; arguments owned by
-- broker_core::store::Dispute::argv.
--
-- ARGV: 1 dispute record key, 2 payment marker key, 3 the marker as read ('' = none), 4 step,
--       5 credits to freeze (mc), 6 pending set key, 7 dispute id, 8 disputed cents, 9 now_ms,
--       10 ledger JSON fragment, 11 ledger keep, 12 day (YYYY-MM-DD), 13 analytics ttl (s)
local rkey, mkey, expected, step = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local amount, pending, dispute, cents = tonumber(ARGV[5]), ARGV[6], ARGV[7], tonumber(ARGV[8])
local now, frag, keep = tonumber(ARGV[9]), ARGV[10], tonumber(ARGV[11])
local payments, ttl = 'abk:stats:' .. ARGV[12] .. ':payments', tonumber(ARGV[13])
local state, who, figure = string.match(redis.call('GET', rkey) or '', '^(%a+)|([^|]*)|(%-?%d+)$')
if state == 'released' or state == 'lost' then return {'duplicate', state} end
local marker = redis.call('GET', mkey) or ''
if marker ~= expected then return {'retry'} end
if marker == '' then
  -- Not credited yet: remember the newest step; a closing step is never undone by a late freeze.
  if not (state == 'pending' and who ~= 'freeze' and step == 'freeze') then
    redis.call('SET', rkey, string.format('pending|%s|%d', step, cents))
  end
  redis.call('SADD', pending, dispute)
  return {'pending'}
end
local id = string.sub(marker, 1, string.find(marker, '|', 1, true) - 1)
local kkey = 'abk:key:' .. id
redis.call('SREM', pending, dispute)

local function entry(kind, delta, note)
  local bal = redis.call('HINCRBY', kkey, 'balance', delta)
  ledger_push(id, string.format('{"ts":%d,"type":"%s","amount":%d,"balance":%d,"note":"%s"%s}',
    now, kind, delta, ledger_balance(kkey), note, more(frag)), keep)
  stat(payments, kind .. ':count', 1, ttl)
  stat(payments, kind .. ':mc', delta, ttl)
  return bal
end

if state == 'frozen' then
  local frozen = tonumber(figure)
  if step == 'freeze' then return {'duplicate', 'frozen'} end
  if step == 'release' then
    redis.call('SET', rkey, string.format('released|%s|%d', id, frozen))
    return {'released', id, frozen, entry('dispute_won', frozen, 'dispute won: the frozen credits are back')}
  end
  redis.call('SET', rkey, string.format('lost|%s|%d', id, frozen))
  return {'lost', id, 0, entry('dispute_lost', 0, 'dispute lost: the frozen credits are gone for good')}
end
-- Nothing frozen yet (no record, or a step remembered before the purchase).
if step == 'release' then
  redis.call('SET', rkey, string.format('released|%s|0', id))
  return {'released', id, 0, tonumber(redis.call('HGET', kkey, 'balance')) or 0}
end
if step == 'freeze' then
  redis.call('SET', rkey, string.format('frozen|%s|%d', id, amount))
  return {'frozen', id, -amount, entry('dispute', -amount, 'disputed: frozen until the dispute closes')}
end
redis.call('SET', rkey, string.format('lost|%s|%d', id, amount))
return {'lost', id, -amount, entry('dispute_lost', -amount, 'dispute lost')}
