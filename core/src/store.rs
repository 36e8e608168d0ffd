//! The store: every operation the product needs from Redis, typed, over one small transport
//! ([`Store::eval`], [`Store::command`], [`Store::pipeline`]). The worker implements the
//! transport with Upstash's REST API; the host tests implement it with a real `redis-server`, so
//! the money rules of the scripts are checked without the worker stack. Every failure is an
//! `ApiError` (an outage is a 503: the gateway fails closed).

use crate::error::ApiError;
use crate::idempotency::Replay;
use crate::metering::{Admission, Admitted, Settlement};
use crate::rapidapi::{RapidAdmission, RapidSettlement};
use crate::ratelimit::RateState;
use crate::redis_keys as rk;
use crate::scripts::{self, ClawbackReply, Retention, CreditReply, DisputeReply, KeyOpReply, ReadReply, Script, SettleReply, ShareNeeded};
use serde_json::{json, Value};

/// Whose balance a credit changes: a key by its id, or by the SHA-256 of its plaintext (the
/// original product named keys by plaintext; only the hash reaches Redis).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreditTarget {
    KeyId(String),
    KeyHash(String),
}

impl CreditTarget {
    /// A key id (`key_<16 hex>`), checked before it reaches a Redis key name.
    pub fn key_id(id: &str) -> Option<CreditTarget> {
        crate::keys::is_key_id(id).then(|| CreditTarget::KeyId(id.to_string()))
    }

    /// A plaintext key, by its hash.
    pub fn plaintext(key: &str) -> CreditTarget {
        CreditTarget::KeyHash(crate::keys::hash_key(key))
    }

    /// The scripts' encoding (`id:<key id>` or `hash:<sha256>`), written only here.
    pub fn arg(&self) -> String {
        match self {
            CreditTarget::KeyId(id) => format!("id:{id}"),
            CreditTarget::KeyHash(h) => format!("hash:{h}"),
        }
    }
}

/// A top-up, grant, adjustment or import: `credit_v5`'s arguments.
#[derive(Debug, Clone)]
pub struct Credit {
    pub target: CreditTarget,
    pub amount_mc: i64,
    pub now_ms: u64,
    /// Ledger entry type: `topup`, `grant`, `adjustment` or `import`.
    pub kind: &'static str,
    pub fragment: String,
    pub retention: Retention,
    /// The payment's own marker (a refund finds the credits through it) and its early-refund key.
    pub payment: Option<(String, String)>,
    /// Every other key that must credit only once (event ids, session ids).
    pub dedupe: Vec<String>,
}

impl Credit {
    pub fn argv(&self) -> Vec<String> {
        self.argv_with_share(None)
    }

    /// The arguments with the share of an early refund computed from its pending record
    /// (`<refunded cents>|<paid cents>`, as `credit_v5` answered it).
    pub fn argv_with_share(&self, early: Option<(&str, i64)>) -> Vec<String> {
        let (payment, early_key) = self.payment.clone().unwrap_or_default();
        let [day, keep, ttl] = self.retention.argv(self.now_ms);
        let (seen, share) = early.map_or((String::new(), 0), |(p, s)| (p.to_string(), s));
        let mut v = vec![self.target.arg(), self.amount_mc.to_string(), self.now_ms.to_string(), self.kind.to_string(), self.fragment.clone(), keep, payment, early_key, day, ttl, seen, share.to_string()];
        v.extend(self.dedupe.iter().cloned());
        v
    }

    /// The share of this purchase an earlier refund takes back, from its pending record.
    pub fn early_refund_share(&self, pending: &str) -> i64 {
        let (refunded, paid) = pending.split_once('|').unwrap_or(("0", "0"));
        crate::money::refund_share_mc(self.amount_mc, refunded.parse().unwrap_or(0), paid.parse().unwrap_or(0))
    }
}

/// How many times a payment script is asked again after the record its share was computed
/// from changed in between (another event for the same payment): more is an outage (503).
const SHARE_ATTEMPTS: usize = 4;

/// A refund taking back a payment's share: `clawback_v3`'s arguments.
#[derive(Debug, Clone)]
pub struct Clawback {
    pub payment_marker: String,
    pub early_refund_key: String,
    pub refunded_cents: u64,
    pub paid_cents: u64,
    pub now_ms: u64,
    pub fragment: String,
    pub event_marker: String,
    pub retention: Retention,
}

impl Clawback {
    pub fn argv(&self) -> Vec<String> {
        self.argv_with_share(None)
    }

    /// The arguments with the share computed from what `clawback_v3` found: the payment's marker
    /// (`<key id>|<credited mc>`) and the share taken so far. Every figure is computed here.
    pub fn argv_with_share(&self, seen: Option<(&str, &str)>) -> Vec<String> {
        let [day, keep, ttl] = self.retention.argv(self.now_ms);
        let (view, delta, target) = match seen {
            None => (String::new(), 0, 0),
            Some((marker, taken)) => {
                let credited = marker.rsplit_once('|').and_then(|(_, c)| c.parse::<i64>().ok()).unwrap_or(0);
                let target = crate::money::refund_share_mc(credited, self.refunded_cents, self.paid_cents);
                let taken_mc = taken.parse::<i64>().unwrap_or(0);
                (format!("{marker}#{taken}"), target - taken_mc, target.max(taken_mc))
            }
        };
        vec![
            self.payment_marker.clone(),
            // Paid 0: the refunded figure is the millicredits themselves (PayPal), never clamped.
            if self.paid_cents > 0 { self.refunded_cents.min(self.paid_cents) } else { self.refunded_cents }.to_string(),
            self.paid_cents.to_string(),
            self.now_ms.to_string(),
            self.fragment.clone(),
            self.event_marker.clone(),
            keep,
            self.early_refund_key.clone(),
            day,
            ttl,
            view,
            delta.to_string(),
            target.to_string(),
        ]
    }
}

/// A step of a Stripe dispute (what the event means; `crate::stripe::interpret` decides it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisputeStep {
    /// `charge.dispute.created` / `funds_withdrawn`: the disputed credits cannot be spent.
    Freeze,
    /// Closed `won` (or an inquiry closed, or the funds reinstated): they come back.
    Release,
    /// Closed `lost`: they are gone for good.
    Lose,
}

impl DisputeStep {
    pub fn as_str(self) -> &'static str {
        match self {
            DisputeStep::Freeze => "freeze",
            DisputeStep::Release => "release",
            DisputeStep::Lose => "lose",
        }
    }

    pub fn parse(s: &str) -> Option<DisputeStep> {
        [DisputeStep::Freeze, DisputeStep::Release, DisputeStep::Lose].into_iter().find(|d| d.as_str() == s)
    }
}

/// A dispute step: `dispute_v1`'s arguments. `amount_mc` (the disputed share of what the payment
/// bought) is computed by `crate::disputes` from the marker it read, `expected_marker`.
#[derive(Debug, Clone)]
pub struct Dispute {
    pub dispute_id: String,
    pub payment_intent: String,
    /// The payment marker as read before this step (`""`: not credited yet).
    pub expected_marker: String,
    pub step: DisputeStep,
    pub amount_mc: i64,
    pub disputed_cents: u64,
    pub now_ms: u64,
    pub fragment: String,
    pub retention: Retention,
}

impl Dispute {
    pub fn argv(&self) -> Vec<String> {
        let [day, keep, ttl] = self.retention.argv(self.now_ms);
        vec![
            rk::stripe_dispute(&self.dispute_id),
            rk::stripe_payment(&self.payment_intent),
            self.expected_marker.clone(),
            self.step.as_str().to_string(),
            self.amount_mc.to_string(),
            rk::stripe_pending_disputes(&self.payment_intent),
            self.dispute_id.clone(),
            self.disputed_cents.to_string(),
            self.now_ms.to_string(),
            self.fragment.clone(),
            keep,
            day,
            ttl,
        ]
    }
}

/// Who reads a key record: an admin by id, or a customer by key hash (counted per address when
/// the key is unknown, as admission does).
#[derive(Debug, Clone)]
pub enum Reader<'a> {
    Admin { key_id: &'a str },
    Customer { key_hash: String, client_ip: &'a str, anonymous: crate::ratelimit::RateLimit, now_ms: u64, request_id: &'a str },
}

/// `read_v3`'s arguments: whom, and which page of the ledger (count 0: none).
#[derive(Debug, Clone)]
pub struct Read<'a> {
    pub who: Reader<'a>,
    pub offset: u64,
    pub count: u64,
}

impl Read<'_> {
    pub fn argv(&self) -> Vec<String> {
        match &self.who {
            Reader::Admin { key_id } => vec![CreditTarget::KeyId(key_id.to_string()).arg(), self.offset.to_string(), self.count.to_string()],
            Reader::Customer { key_hash, client_ip, anonymous, now_ms, request_id } => vec![
                CreditTarget::KeyHash(key_hash.clone()).arg(),
                self.offset.to_string(),
                self.count.to_string(),
                client_ip.to_string(),
                anonymous.limit.to_string(),
                anonymous.window_ms.to_string(),
                now_ms.to_string(),
                request_id.to_string(),
            ],
        }
    }
}

/// `keys_v3`'s operations.
#[derive(Debug, Clone)]
pub enum KeyOp<'a> {
    Create { key_id: &'a str, key_hash: String, name: &'a str, plan: &'a str, initial_mc: i64, fragment: String, keep: u64 },
    /// A new key hash; with `current_hash`, only if that is still the key's hash (a customer
    /// rotating the key it called with), `None` for an admin.
    Rotate { key_id: &'a str, new_hash: String, current_hash: Option<String> },
    Revoke { key_id: &'a str },
    /// The key remembers its subscription (and Stripe customer: `""` keeps it) and moves to its
    /// rate plan (`""` keeps the plan).
    Subscribe { key_id: &'a str, plan: &'a str, subscription_id: &'a str, customer: &'a str },
    /// The key returns to `plan`, if `subscription_id` is still its subscription.
    Unsubscribe { key_id: &'a str, plan: &'a str, subscription_id: &'a str },
}

impl KeyOp<'_> {
    pub fn argv(&self, now_ms: u64) -> Vec<String> {
        match self {
            KeyOp::Create { key_id, key_hash, name, plan, initial_mc, fragment, keep } => vec![
                "create".into(),
                key_id.to_string(),
                now_ms.to_string(),
                key_hash.clone(),
                name.to_string(),
                plan.to_string(),
                initial_mc.to_string(),
                fragment.clone(),
                keep.to_string(),
            ],
            KeyOp::Rotate { key_id, new_hash, current_hash } => {
                vec!["rotate".into(), key_id.to_string(), now_ms.to_string(), new_hash.clone(), current_hash.clone().unwrap_or_default()]
            }
            KeyOp::Revoke { key_id } => vec!["revoke".into(), key_id.to_string(), now_ms.to_string()],
            KeyOp::Subscribe { key_id, plan, subscription_id, customer } => {
                vec!["subscribe".into(), key_id.to_string(), now_ms.to_string(), plan.to_string(), subscription_id.to_string(), customer.to_string()]
            }
            KeyOp::Unsubscribe { key_id, plan, subscription_id } => vec!["unsubscribe".into(), key_id.to_string(), now_ms.to_string(), plan.to_string(), subscription_id.to_string()],
        }
    }
}

/// A page of [`Store::legacy_balances`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyPage {
    pub next_cursor: Option<String>,
    pub balances: Vec<LegacyBalance>,
}

/// One balance of the original product: the plaintext key its name carries, and its stored value
/// (`None`: gone meanwhile).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyBalance {
    pub key: String,
    pub value: Option<String>,
}

/// The product's operations on Redis. Implementors provide the transport; the operations are
/// provided here, once.
#[allow(async_fn_in_trait)] // single-threaded (wasm) callers; no Send bound wanted
pub trait Store {
    /// Runs a script (by SHA-1, sending the source only when Redis does not know it).
    async fn eval(&self, script: &Script, args: Vec<String>) -> Result<Value, ApiError>;
    /// One command.
    async fn command(&self, args: Vec<Value>) -> Result<Value, ApiError>;
    /// Several commands in one round trip (not atomic).
    async fn pipeline(&self, commands: Vec<Vec<Value>>) -> Result<Vec<Value>, ApiError>;

    /// Key, rate limit and hold, atomically: the one blocking round trip of a metered call.
    /// A known `Idempotency-Key` is answered from the same round trip: `Ok(Err(replay))` when
    /// the first call's answer is kept, its 409/422 otherwise.
    async fn admit_call(&self, a: &Admission<'_>) -> Result<Result<Admitted, Replay>, ApiError> {
        match scripts::AdmitReply::decode(&self.eval(&scripts::ADMIT, a.argv()).await?)? {
            scripts::AdmitReply::Idempotent(found) => found.replay().map(Err),
            reply => Admitted::from_reply(reply, a.class, a.limits).map(Ok),
        }
    }

    /// [`Store::admit_call`] for a caller that expects a call admitted or refused (the host
    /// tests): a replay is an error there.
    async fn admit(&self, a: &Admission<'_>) -> Result<Admitted, ApiError> {
        self.admit_call(a).await?.map_err(|r| ApiError::internal(format!("a replay of {} where an admission was expected", r.request_id)))
    }

    /// A RapidAPI call's admission: the rate limit of its RapidAPI plan (nothing is held).
    async fn rapid_admit(&self, a: &RapidAdmission<'_>) -> Result<RateState, ApiError> {
        a.decode(&self.eval(&scripts::RAPID, a.argv()).await?)
    }

    /// A served RapidAPI call, into the analytics.
    async fn rapid_settle(&self, s: &RapidSettlement) -> Result<(), ApiError> {
        self.eval(&scripts::RAPID, s.argv()).await.map(|_| ())
    }

    async fn settle(&self, s: &Settlement) -> Result<SettleReply, ApiError> {
        SettleReply::decode(&self.eval(&scripts::SETTLE, s.argv()).await?)
    }

    /// A credit; an early refund's share is computed here and the script called again with it.
    async fn credit(&self, c: &Credit) -> Result<CreditReply, ApiError> {
        let mut args = c.argv();
        for _ in 0..SHARE_ATTEMPTS {
            match CreditReply::decode_step(&self.eval(&scripts::CREDIT, args).await?)? {
                Ok(reply) => return Ok(reply),
                Err(ShareNeeded::EarlyRefund { pending }) => args = c.argv_with_share(Some((&pending, c.early_refund_share(&pending)))),
                Err(other) => return Err(ApiError::unavailable(format!("{}: unexpected share request {other:?}", scripts::CREDIT.name))),
            }
        }
        Err(ApiError::unavailable(format!("{}: the early refund kept changing", scripts::CREDIT.name)))
    }

    /// A refund's clawback: the script names the payment's marker and what was taken so far, the
    /// share is computed here, and the script is called again with it.
    async fn clawback(&self, c: &Clawback) -> Result<ClawbackReply, ApiError> {
        let mut args = c.argv();
        for _ in 0..SHARE_ATTEMPTS {
            match ClawbackReply::decode_step(&self.eval(&scripts::CLAWBACK, args).await?)? {
                Ok(reply) => return Ok(reply),
                Err(ShareNeeded::Clawback { marker, taken_mc }) => args = c.argv_with_share(Some((&marker, &taken_mc))),
                Err(other) => return Err(ApiError::unavailable(format!("{}: unexpected share request {other:?}", scripts::CLAWBACK.name))),
            }
        }
        Err(ApiError::unavailable(format!("{}: the payment's refunds kept changing", scripts::CLAWBACK.name)))
    }

    async fn dispute(&self, d: &Dispute) -> Result<DisputeReply, ApiError> {
        DisputeReply::decode(&self.eval(&scripts::DISPUTE, d.argv()).await?)
    }

    /// A Stripe payment's marker (`<key id>|<credited mc>`, once credited) and the cents it paid.
    async fn stripe_payment(&self, payment_intent: &str) -> Result<(Option<String>, Option<u64>), ApiError> {
        let v = self.pipeline(vec![vec![json!("GET"), json!(rk::stripe_payment(payment_intent))], vec![json!("GET"), json!(rk::stripe_paid(payment_intent))]]).await?;
        let marker = v.first().and_then(Value::as_str).map(str::to_string);
        let paid = v.get(1).and_then(Value::as_str).and_then(|s| s.parse().ok());
        Ok((marker, paid))
    }

    /// What a Stripe payment paid, kept for its disputes (a fact of the payment: set before it is
    /// credited, harmless if the credit then turns out a duplicate).
    async fn remember_stripe_paid(&self, payment_intent: &str, cents: u64) -> Result<(), ApiError> {
        self.command(vec![json!("SET"), json!(rk::stripe_paid(payment_intent)), json!(cents)]).await.map(|_| ())
    }

    /// Disputes remembered before their payment was credited: (dispute id, its record).
    async fn pending_disputes(&self, payment_intent: &str) -> Result<Vec<(String, String)>, ApiError> {
        let ids: Vec<String> = match self.command(vec![json!("SMEMBERS"), json!(rk::stripe_pending_disputes(payment_intent))]).await? {
            Value::Array(a) => a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect(),
            _ => Vec::new(),
        };
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let records = self.pipeline(ids.iter().map(|id| vec![json!("GET"), json!(rk::stripe_dispute(id))]).collect()).await?;
        Ok(ids.into_iter().zip(records).filter_map(|(id, r)| r.as_str().map(|r| (id, r.to_string()))).collect())
    }

    /// Counts a webhook delivery of `source` from `ip` in a sliding window (before anything else
    /// is done for it); returns the deliveries in the window, this one included, and the ms until
    /// the oldest leaves it.
    async fn webhook_attempt(&self, source: &str, ip: &str, now_ms: u64, request_id: &str, window_ms: u64) -> Result<(u64, u64), ApiError> {
        let zkey = rk::webhook_attempts(source, ip);
        let r = self
            .pipeline(vec![
                vec![json!("ZREMRANGEBYSCORE"), json!(zkey), json!("-inf"), json!(now_ms.saturating_sub(window_ms))],
                vec![json!("ZADD"), json!(zkey), json!(now_ms), json!(request_id)],
                vec![json!("PEXPIRE"), json!(zkey), json!(window_ms)],
                vec![json!("ZCARD"), json!(zkey)],
                vec![json!("ZRANGE"), json!(zkey), json!(0), json!(0), json!("WITHSCORES")],
            ])
            .await?;
        let count = r.get(3).and_then(Value::as_u64).unwrap_or(u64::MAX);
        let oldest = r.get(4).and_then(|v| v.get(1)).and_then(|s| s.as_str().and_then(|s| s.parse::<u64>().ok()).or_else(|| s.as_u64())).unwrap_or(now_ms);
        Ok((count, (oldest + window_ms).saturating_sub(now_ms)))
    }

    async fn read(&self, r: &Read<'_>) -> Result<ReadReply, ApiError> {
        ReadReply::decode(&self.eval(&scripts::READ, r.argv()).await?)
    }

    /// `bill_v2`: one call of a key (its open hold, or its ledger entries).
    async fn bill(&self, key_id: &str, request_id: &str) -> Result<crate::bills::BillReply, ApiError> {
        crate::bills::BillReply::decode(&self.eval(&scripts::BILL, vec![key_id.to_string(), request_id.to_string()]).await?)
    }
    async fn key_op(&self, op: &KeyOp<'_>, now_ms: u64) -> Result<KeyOpReply, ApiError> {
        KeyOpReply::decode(&self.eval(&scripts::KEYS, op.argv(now_ms)).await?)
    }

    /// Request ids of holds opened before `cutoff_ms`, oldest first.
    async fn open_holds_before(&self, cutoff_ms: u64, limit: usize) -> Result<Vec<String>, ApiError> {
        let v = self.command(vec![json!("ZRANGEBYSCORE"), json!(rk::OPEN_HOLDS), json!("-inf"), json!(cutoff_ms), json!("LIMIT"), json!(0), json!(limit)]).await?;
        Ok(v.as_array().map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect()).unwrap_or_default())
    }

    async fn ping(&self) -> bool {
        matches!(self.command(vec![json!("PING")]).await, Ok(Value::String(s)) if s == "PONG")
    }

    /// Records a payment nobody could be credited with (one field per source event).
    async fn record_unmatched(&self, field: &str, entry: &Value) -> Result<(), ApiError> {
        self.command(vec![json!("HSET"), json!(rk::UNMATCHED_PAYMENTS), json!(field), json!(entry.to_string())]).await.map(|_| ())
    }

    /// Every unmatched payment, newest first.
    async fn unmatched(&self) -> Result<Vec<Value>, ApiError> {
        let v = self.command(vec![json!("HGETALL"), json!(rk::UNMATCHED_PAYMENTS)]).await?;
        let mut entries: Vec<Value> = v
            .as_array()
            .map(|a| a.iter().skip(1).step_by(2).filter_map(|e| e.as_str().and_then(|s| serde_json::from_str(s).ok())).collect())
            .unwrap_or_default();
        entries.sort_by_key(|e| std::cmp::Reverse(e.get("ts").and_then(Value::as_u64).unwrap_or(0)));
        Ok(entries)
    }

    /// Counts an admin attempt from `ip` (before the secret is compared, so parallel guesses
    /// cannot all slip under the limit); returns the attempts in the window, this one included.
    async fn admin_attempt(&self, ip: &str, now_ms: u64, request_id: &str, window_ms: u64) -> Result<u64, ApiError> {
        let zkey = rk::admin_failures(ip);
        let counts = self
            .pipeline(vec![
                vec![json!("ZREMRANGEBYSCORE"), json!(zkey), json!("-inf"), json!(now_ms.saturating_sub(window_ms))],
                vec![json!("ZADD"), json!(zkey), json!(now_ms), json!(request_id)],
                vec![json!("PEXPIRE"), json!(zkey), json!(window_ms)],
                vec![json!("ZCARD"), json!(zkey)],
            ])
            .await?;
        Ok(counts.get(3).and_then(Value::as_u64).unwrap_or(u64::MAX))
    }

    /// A right secret takes its attempt back.
    async fn admin_attempt_succeeded(&self, ip: &str, request_id: &str) -> Result<(), ApiError> {
        self.command(vec![json!("ZREM"), json!(rk::admin_failures(ip)), json!(request_id)]).await.map(|_| ())
    }

    /// Each day's call rollup (of `scope`) and payments rollup, in one round trip.
    async fn stats_rollups(&self, days: &[String], scope: &rk::StatsScope) -> Result<(Vec<Value>, Vec<Value>), ApiError> {
        let mut cmds: Vec<Vec<Value>> = days.iter().map(|d| vec![json!("HGETALL"), json!(rk::stats_calls(d, scope))]).collect();
        cmds.extend(days.iter().map(|d| vec![json!("HGETALL"), json!(rk::stats_payments(d))]));
        let mut replies = self.pipeline(cmds).await?;
        let payments = replies.split_off(days.len().min(replies.len()));
        Ok((replies, payments))
    }

    /// A page of the original product's balances (`user:<key>:credits`): Redis's next `SCAN`
    /// cursor (`None`: done) and each key named on the page with its stored value.
    async fn legacy_balances(&self, cursor: &str, count: u64) -> Result<LegacyPage, ApiError> {
        let page = self.command(vec![json!("SCAN"), json!(cursor), json!("MATCH"), json!(rk::LEGACY_PATTERN), json!("COUNT"), json!(count)]).await?;
        let next = page.get(0).and_then(Value::as_str).unwrap_or("0");
        let names: Vec<&str> = page.get(1).and_then(Value::as_array).map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
        let values = if names.is_empty() { Vec::new() } else { self.pipeline(names.iter().map(|n| vec![json!("GET"), json!(n)]).collect()).await? };
        let balances = names.iter().zip(values.iter().map(Some).chain(std::iter::repeat(None))).map(|(n, v)| LegacyBalance { key: rk::legacy_key(n).to_string(), value: v.and_then(Value::as_str).map(str::to_string) }).collect();
        Ok(LegacyPage { next_cursor: (next != "0").then(|| next.to_string()), balances })
    }

    async fn cached_paypal_token(&self) -> Result<Option<String>, ApiError> {
        Ok(self.command(vec![json!("GET"), json!(rk::PAYPAL_TOKEN)]).await?.as_str().map(str::to_string))
    }

    async fn cache_paypal_token(&self, token: &str, ttl_secs: u64) -> Result<(), ApiError> {
        self.command(vec![json!("SET"), json!(rk::PAYPAL_TOKEN), json!(token), json!("EX"), json!(ttl_secs)]).await.map(|_| ())
    }
}
