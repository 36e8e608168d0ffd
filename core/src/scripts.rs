//! The Redis scripts (files under `core/lua/`, versioned in their names) and the decoding of
//! their replies. Replies arrive as Upstash JSON (`{"result": [...]}`): strings and integers.
//! Each script's arguments are built by one type (see each script's header for its owner).

use crate::error::ApiError;
use crate::idempotency::{Found, StoredAnswer};
use crate::ratelimit::RateState;
use serde_json::Value;
use sha1::{Digest, Sha1};
use std::sync::OnceLock;

/// How long what a money step writes is kept: ledger entries per key, and the daily analytics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// `LEDGER_KEEP`: ledger entries kept per key (older ones fold into a carried total).
    pub ledger_keep: u64,
    /// `STATS_KEEP_DAYS`, in seconds: the lifetime of a day's analytics rollups.
    pub stats_ttl_secs: u64,
}

impl Retention {
    /// The arguments every writing script ends its fixed part with: day, keep, ttl.
    pub fn argv(&self, now_ms: u64) -> [String; 3] {
        [crate::pricing::utc_date(now_ms), self.ledger_keep.to_string(), self.stats_ttl_secs.to_string()]
    }
}

pub struct Script {
    pub name: &'static str,
    /// `lua/lib_v2.lua` followed by the script's own file.
    pub source: &'static str,
    /// The SHA-1, computed once per isolate (it showed up in CPU profiles when computed per call).
    sha1: OnceLock<String>,
}

/// A script from `core/lua/<name>.lua`, with the shared helpers of `lib_v2.lua` before it.
macro_rules! script {
    ($name:literal) => {
        Script { name: $name, source: concat!(include_str!("../lua/lib_v2.lua"), include_str!(concat!("../lua/", $name, ".lua"))), sha1: OnceLock::new() }
    };
}

impl Script {
    /// The SHA-1 Redis knows the script by (for `EVALSHA`).
    pub fn sha1(&self) -> &str {
        self.sha1.get_or_init(|| hex::encode(Sha1::digest(self.source.as_bytes())))
    }
}

pub static ADMIT: Script = script!("admit_v6");
pub static SETTLE: Script = script!("settle_v6");
pub static CREDIT: Script = script!("credit_v5");
pub static CLAWBACK: Script = script!("clawback_v3");
pub static KEYS: Script = script!("keys_v3");
pub static READ: Script = script!("read_v3");
pub static RAPID: Script = script!("rapid_v1");
pub static DISPUTE: Script = script!("dispute_v1");
pub static BILL: Script = script!("bill_v2");
/// Sub-keys (issue 25): `broker_core::subkeys`.
pub static SUBKEYS: Script = script!("subkeys_v1");
pub static LOWBAL: Script = script!("lowbal_v1");
pub static ALL: [&Script; 11] = [&ADMIT, &SETTLE, &CREDIT, &CLAWBACK, &KEYS, &READ, &RAPID, &DISPUTE, &BILL, &SUBKEYS, &LOWBAL];

pub(crate) fn bad_reply(script: &str, v: &Value) -> ApiError {
    ApiError::unavailable(format!("unexpected reply from {script}: {v}"))
}

fn int(v: &Value, i: usize) -> Option<i64> {
    match v.get(i)? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn text(v: &Value, i: usize) -> Option<String> {
    match v.get(i)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

pub(crate) fn rate_at(v: &Value, a: usize) -> Option<RateState> {
    Some(RateState { limit: int(v, a)?, remaining: int(v, a + 1)?, reset_ms: int(v, a + 2)? })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdmitReply {
    /// `sub_key`: the sub-key that made the call (`key_id` is its account's).
    Admitted { key_id: String, plan: String, hold_mc: i64, balance_after_mc: i64, max_tokens: u64, rate: RateState, sub_key: Option<String> },
    /// Unknown or revoked key (`reason`), counted against the client IP.
    Unauthorized { reason: String, rate: RateState },
    IpLimited { rate: RateState },
    RateLimited { plan: String, rate: RateState },
    NoPlan { plan: String },
    Insufficient { needed_mc: i64, balance_mc: i64, rate: RateState },
    /// A sub-key's cap (`cap`: `daily_cap`, `monthly_cap` or `total_cap`) leaves `room_mc`, less
    /// than the smallest hold (issue 25).
    SubKeyCap { needed_mc: i64, room_mc: i64, cap: String, rate: RateState },
    /// A sub-key whose allowed models do not include `model` (`<provider>/<model>`).
    ModelNotAllowed { model: String },
    /// The call's `Idempotency-Key` is known: it is not run (issue 24).
    Idempotent(Found),
}

impl AdmitReply {
    pub fn decode(v: &Value) -> Result<AdmitReply, ApiError> {
        let tag = text(v, 0).unwrap_or_default();
        let r = match tag.as_str() {
            "ok" => (|| {
                let (hold_mc, max_tokens) = (int(v, 3)?, u64::try_from(int(v, 5)?).ok()?);
                (hold_mc > 0 && max_tokens > 0).then_some(())?;
                let sub_key = text(v, 9).filter(|s| !s.is_empty());
                Some(AdmitReply::Admitted { key_id: text(v, 1)?, plan: text(v, 2)?, hold_mc, balance_after_mc: int(v, 4)?, max_tokens, rate: rate_at(v, 6)?, sub_key })
            })(),
            "unauthorized" => rate_at(v, 2).map(|rate| AdmitReply::Unauthorized { reason: text(v, 1).unwrap_or_default(), rate }),
            "ip_limited" => rate_at(v, 1).map(|rate| AdmitReply::IpLimited { rate }),
            "rate_limited" => rate_at(v, 1).map(|rate| AdmitReply::RateLimited { plan: text(v, 4).unwrap_or_default(), rate }),
            "no_plan" => Some(AdmitReply::NoPlan { plan: text(v, 1).unwrap_or_default() }),
            "insufficient" => (|| Some(AdmitReply::Insufficient { needed_mc: int(v, 1)?, balance_mc: int(v, 2)?, rate: rate_at(v, 3)? }))(),
            "sub_key_cap" => (|| Some(AdmitReply::SubKeyCap { needed_mc: int(v, 1)?, room_mc: int(v, 2)?, cap: text(v, 3)?, rate: rate_at(v, 4)? }))(),
            "model_not_allowed" => text(v, 1).map(|model| AdmitReply::ModelNotAllowed { model }),
            "idem_busy" => text(v, 1).map(|request_id| AdmitReply::Idempotent(Found::InFlight { request_id })),
            "idem_reused" => text(v, 1).map(|request_id| AdmitReply::Idempotent(Found::Reused { request_id })),
            "idem_done" => (|| {
                let answer = match text(v, 3).unwrap_or_default() {
                    a if a.is_empty() => None,
                    a => Some(StoredAnswer::decode(&a)?),
                };
                Some(AdmitReply::Idempotent(Found::Done { request_id: text(v, 1)?, charged_mc: int(v, 2)?, answer }))
            })(),
            _ => None,
        };
        r.ok_or_else(|| bad_reply(ADMIT.name, v))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettleReply {
    /// `watching`: a low-balance watcher of the account is armed (lowbal_v1 is read only then).
    Settled { charged_mc: i64, balance_mc: i64, watching: bool },
    /// Charged the whole hold by the sweeper; a late settlement corrects it.
    Swept { charged_mc: i64, balance_mc: i64 },
    /// A late exact settlement after a sweep: `refunded_mc` went back to the balance (negative:
    /// the exact usage came to more than the hold, and the difference was charged).
    Corrected { refunded_mc: i64, balance_mc: i64, watching: bool },
    /// No open hold for this request (already settled, or never admitted).
    Missing,
}

/// The settle script's fourth element: 1 when a low-balance watcher is armed.
fn watching(v: &Value) -> bool {
    int(v, 3) == Some(1)
}

impl SettleReply {
    pub fn decode(v: &Value) -> Result<SettleReply, ApiError> {
        let (a, b, watching) = (int(v, 1), int(v, 2), watching(v));
        let r = match (text(v, 0).as_deref(), a, b) {
            (Some("ok"), Some(charged_mc), Some(balance_mc)) => Some(SettleReply::Settled { charged_mc, balance_mc, watching }),
            (Some("swept"), Some(charged_mc), Some(balance_mc)) => Some(SettleReply::Swept { charged_mc, balance_mc }),
            (Some("corrected"), Some(refunded_mc), Some(balance_mc)) => Some(SettleReply::Corrected { refunded_mc, balance_mc, watching }),
            (Some("missing"), _, _) => Some(SettleReply::Missing),
            _ => None,
        };
        r.ok_or_else(|| bad_reply(SETTLE.name, v))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreditReply {
    /// `early_refund_mc`: taken back at once for a refund that came before the purchase.
    Credited { key_id: String, balance_mc: i64, early_refund_mc: i64 },
    /// The dedupe key that was already set.
    Duplicate { marker: String },
    UnknownKey,
    Insufficient { balance_mc: i64 },
}

/// A payment script's answer when a refund share must be computed first: the scripts do no
/// money arithmetic, so they name what they found and the caller computes the share in Rust
/// (`money::refund_share_mc`) and calls again with that view (`store::Store::credit`,
/// `store::Store::clawback`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShareNeeded {
    /// `credit_v5`: a refund came before this purchase: the pending record,
    /// `<refunded cents>|<paid cents>`.
    EarlyRefund { pending: String },
    /// `clawback_v3`: the payment's marker (`<key id>|<credited mc>`) and the share taken so far.
    Clawback { marker: String, taken_mc: String },
}

impl CreditReply {
    pub fn decode(v: &Value) -> Result<CreditReply, ApiError> {
        CreditReply::decode_step(v)?.map_err(|_| bad_reply(CREDIT.name, v))
    }

    /// The reply, or the refund share the script needs first.
    pub fn decode_step(v: &Value) -> Result<Result<CreditReply, ShareNeeded>, ApiError> {
        if text(v, 0).as_deref() == Some("refund_share") {
            return text(v, 1).map(|pending| Err(ShareNeeded::EarlyRefund { pending })).ok_or_else(|| bad_reply(CREDIT.name, v));
        }
        let r = match text(v, 0).as_deref() {
            Some("ok") => (|| Some(CreditReply::Credited { key_id: text(v, 1)?, balance_mc: int(v, 2)?, early_refund_mc: int(v, 3)? }))(),
            Some("duplicate") => Some(CreditReply::Duplicate { marker: text(v, 1).unwrap_or_default() }),
            Some("unknown_key") => Some(CreditReply::UnknownKey),
            Some("insufficient") => int(v, 1).map(|balance_mc| CreditReply::Insufficient { balance_mc }),
            _ => None,
        };
        r.map(Ok).ok_or_else(|| bad_reply(CREDIT.name, v))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClawbackReply {
    /// `taken_mc` left the balance (which may now be negative: a debt).
    Taken { key_id: String, taken_mc: i64, balance_mc: i64 },
    Duplicate,
    /// The purchase is not known yet: the refund is remembered and taken when it is credited.
    Pending,
}

impl ClawbackReply {
    pub fn decode(v: &Value) -> Result<ClawbackReply, ApiError> {
        ClawbackReply::decode_step(v)?.map_err(|_| bad_reply(CLAWBACK.name, v))
    }

    /// The reply, or the view the script needs the share computed from first.
    pub fn decode_step(v: &Value) -> Result<Result<ClawbackReply, ShareNeeded>, ApiError> {
        if text(v, 0).as_deref() == Some("share") {
            let need = (|| Some(ShareNeeded::Clawback { marker: text(v, 1)?, taken_mc: text(v, 2)? }))();
            return need.map(Err).ok_or_else(|| bad_reply(CLAWBACK.name, v));
        }
        let r = match text(v, 0).as_deref() {
            Some("ok") => (|| Some(ClawbackReply::Taken { key_id: text(v, 1)?, taken_mc: int(v, 2)?, balance_mc: int(v, 3)? }))(),
            Some("duplicate") => Some(ClawbackReply::Duplicate),
            Some("pending") => Some(ClawbackReply::Pending),
            _ => None,
        };
        r.map(Ok).ok_or_else(|| bad_reply(CLAWBACK.name, v))
    }
}

/// Where a dispute step left the disputed credits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisputeState {
    /// Out of the spendable balance until the dispute closes.
    Frozen,
    /// Back (a won dispute), or never frozen.
    Released,
    /// Gone for good.
    Lost,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DisputeReply {
    /// `moved_mc` changed the balance (negative: frozen or taken; positive: released).
    Applied { state: DisputeState, key_id: String, moved_mc: i64, balance_mc: i64 },
    /// The purchase is not credited yet: the step is remembered and applied with it.
    Pending,
    /// The payment was credited between the caller's read and the script: read again.
    Retry,
    /// This step changes nothing (a replay, or the dispute is already closed).
    Duplicate { state: String },
}

impl DisputeReply {
    pub fn decode(v: &Value) -> Result<DisputeReply, ApiError> {
        let applied = |state| Some(DisputeReply::Applied { state, key_id: text(v, 1)?, moved_mc: int(v, 2)?, balance_mc: int(v, 3)? });
        let r = match text(v, 0).as_deref() {
            Some("frozen") => applied(DisputeState::Frozen),
            Some("released") => applied(DisputeState::Released),
            Some("lost") => applied(DisputeState::Lost),
            Some("pending") => Some(DisputeReply::Pending),
            Some("retry") => Some(DisputeReply::Retry),
            Some("duplicate") => Some(DisputeReply::Duplicate { state: text(v, 1).unwrap_or_default() }),
            _ => None,
        };
        r.ok_or_else(|| bad_reply(DISPUTE.name, v))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOpReply {
    Ok,
    Exists,
    Missing,
    Revoked,
    /// `unsubscribe` of a subscription that is not the key's current one: nothing changed.
    OtherSubscription,
    /// `rotate` by a caller whose key is no longer the current one (another rotation won).
    Stale,
}

impl KeyOpReply {
    pub fn decode(v: &Value) -> Result<KeyOpReply, ApiError> {
        match text(v, 0).as_deref() {
            Some("ok") => Ok(KeyOpReply::Ok),
            Some("exists") => Ok(KeyOpReply::Exists),
            Some("missing") => Ok(KeyOpReply::Missing),
            Some("revoked") => Ok(KeyOpReply::Revoked),
            Some("other") => Ok(KeyOpReply::OtherSubscription),
            Some("stale") => Ok(KeyOpReply::Stale),
            _ => Err(bad_reply(KEYS.name, v)),
        }
    }
}

/// A JSON fragment (`"k":v,...` without braces) for a ledger entry built inside a script.
pub fn ledger_fragment(fields: &[(&str, Value)]) -> String {
    fields.iter().map(|(k, v)| format!("{}:{}", Value::String((*k).to_string()), v)).collect::<Vec<_>>().join(",")
}

/// A key's record and a page of its ledger (raw entries, newest first).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeyView {
    pub key_id: String,
    pub status: String,
    pub plan: String,
    /// Spendable millicredits (negative: a debt).
    pub balance_mc: i64,
    /// Millicredits held by open calls.
    pub held_mc: i64,
    /// The sum of ledger entries no longer kept.
    pub carried_mc: i64,
    /// The Stripe customer and subscription of a subscribed key (empty: none).
    pub stripe_customer: String,
    pub subscription: String,
    pub name: String,
    pub created_ms: Option<i64>,
    pub last_used_ms: Option<i64>,
    pub charged_total_mc: i64,
    pub rotated_ms: Option<i64>,
    pub revoked_ms: Option<i64>,
    pub ledger_len: i64,
    pub entries: Vec<String>,
    /// A sub-key's own fields (issue 25); `None` for an account key.
    pub sub: Option<crate::sub_key_fields::SubKeyFields>,
}

/// What `read_v3` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadReply {
    Found(Box<KeyView>),
    /// Unknown, or (for customer reads) revoked: `status`; `limited` when the client IP is over
    /// its unknown-key limit, with `reset_ms` until a slot frees.
    Unknown { status: String, limited: bool, reset_ms: i64 },
}

impl ReadReply {
    pub fn decode(v: &Value) -> Result<ReadReply, ApiError> {
        match text(v, 0).as_deref() {
            Some("unknown") => Ok(ReadReply::Unknown {
                status: text(v, 1).unwrap_or_else(|| "unknown".into()),
                limited: int(v, 2) == Some(1),
                reset_ms: int(v, 3).unwrap_or(0),
            }),
            Some("ok") => KeyView::decode(v).map(|k| ReadReply::Found(Box::new(k))).ok_or_else(|| bad_reply(READ.name, v)),
            _ => Err(bad_reply(READ.name, v)),
        }
    }
}

impl KeyView {
    fn decode(v: &Value) -> Option<KeyView> {
        let opt = |i| int(v, i);
        let entries = v.as_array()?.iter().skip(16 + crate::sub_key_fields::READ_FIELDS).filter_map(|e| e.as_str().map(str::to_string)).collect();
        Some(KeyView {
            key_id: text(v, 1)?,
            status: text(v, 2)?,
            plan: text(v, 3).unwrap_or_default(),
            balance_mc: opt(4).unwrap_or(0),
            name: text(v, 5).unwrap_or_default(),
            created_ms: opt(6),
            last_used_ms: opt(7),
            charged_total_mc: opt(8).unwrap_or(0),
            rotated_ms: opt(9),
            revoked_ms: opt(10),
            ledger_len: opt(11).unwrap_or(0),
            held_mc: opt(12).unwrap_or(0),
            carried_mc: opt(13).unwrap_or(0),
            stripe_customer: text(v, 14).unwrap_or_default(),
            subscription: text(v, 15).unwrap_or_default(),
            entries,
            sub: crate::sub_key_fields::SubKeyFields::decode_read(v, 16),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn admit_replies_decode() {
        let v = json!(["ok", "key_1", "pro", 500, 9500, 256, 100, 99, 3600000]);
        assert_eq!(
            AdmitReply::decode(&v).unwrap(),
            AdmitReply::Admitted {
                key_id: "key_1".into(),
                plan: "pro".into(),
                hold_mc: 500,
                balance_after_mc: 9500,
                max_tokens: 256,
                rate: RateState { limit: 100, remaining: 99, reset_ms: 3_600_000 },
                sub_key: None,
            }
        );
        // A sub-key's call: the reply's last field names it.
        let sub = json!(["ok", "key_1", "pro", 500, 9500, 256, 100, 99, 3600000, "key_000000000000000b"]);
        assert!(matches!(AdmitReply::decode(&sub).unwrap(), AdmitReply::Admitted { sub_key: Some(s), .. } if s == "key_000000000000000b"));
        assert!(matches!(AdmitReply::decode(&json!(["insufficient", 900, 10, 100, 50, 1000])).unwrap(), AdmitReply::Insufficient { needed_mc: 900, .. }));
        assert!(matches!(AdmitReply::decode(&json!(["unauthorized", "revoked", 5, 4, 900000])).unwrap(), AdmitReply::Unauthorized { .. }));
        // A truncated or nonsensical "ok" is a broken store, never an admission.
        for bad in [json!(["ok", "key_1"]), json!(["ok", "key_1", "pro", 0, 9500, 256, 1, 1, 1]), json!("garbage"), json!(["insufficient", 1])] {
            assert_eq!(AdmitReply::decode(&bad).unwrap_err().status(), 503, "{bad}");
        }
    }

    #[test]
    fn a_script_is_named_by_the_sha1_of_its_source() {
        // RFC 3174's test vectors; that Redis agrees for every real script is checked against
        // Redis itself (core/tests/store.rs, SCRIPT LOAD).
        let empty = Script { name: "empty", source: "", sha1: OnceLock::new() };
        assert_eq!(empty.sha1(), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        let abc = Script { name: "abc", source: "abc", sha1: OnceLock::new() };
        assert_eq!(abc.sha1(), "a9993e364706816aba3e25717850c26c9cd0d89d");
    }

    #[test]
    fn settle_and_payment_replies_decode() {
        assert_eq!(SettleReply::decode(&json!(["ok", 18, 982, 0])).unwrap(), SettleReply::Settled { charged_mc: 18, balance_mc: 982, watching: false });
        assert_eq!(SettleReply::decode(&json!(["ok", 18, 982, 1])).unwrap(), SettleReply::Settled { charged_mc: 18, balance_mc: 982, watching: true });
        assert_eq!(SettleReply::decode(&json!(["corrected", 82, 1000, 0])).unwrap(), SettleReply::Corrected { refunded_mc: 82, balance_mc: 1000, watching: false });
        assert!(SettleReply::decode(&json!(["ok"])).is_err());
        assert_eq!(ClawbackReply::decode(&json!(["pending"])).unwrap(), ClawbackReply::Pending);
        assert_eq!(ClawbackReply::decode(&json!(["ok", "key_1", 500, -200])).unwrap(), ClawbackReply::Taken { key_id: "key_1".into(), taken_mc: 500, balance_mc: -200 });
        assert_eq!(CreditReply::decode(&json!(["ok", "key_1", 100, 0])).unwrap(), CreditReply::Credited { key_id: "key_1".into(), balance_mc: 100, early_refund_mc: 0 });
        assert_eq!(CreditReply::decode_step(&json!(["refund_share", "500|2000"])).unwrap(), Err(ShareNeeded::EarlyRefund { pending: "500|2000".into() }));
        assert_eq!(ClawbackReply::decode_step(&json!(["share", "key_1|2000000", "0"])).unwrap(), Err(ShareNeeded::Clawback { marker: "key_1|2000000".into(), taken_mc: "0".into() }));
        assert!(ClawbackReply::decode(&json!(["share", "key_1|2000000", "0"])).is_err(), "a share request is not a reply");
        assert_eq!(
            DisputeReply::decode(&json!(["frozen", "key_1", -500, 1500])).unwrap(),
            DisputeReply::Applied { state: DisputeState::Frozen, key_id: "key_1".into(), moved_mc: -500, balance_mc: 1500 }
        );
        assert_eq!(DisputeReply::decode(&json!(["retry"])).unwrap(), DisputeReply::Retry);
        assert!(DisputeReply::decode(&json!(["lost", "key_1"])).is_err());
    }

    #[test]
    fn ledger_fragments_escape_strings() {
        let f = ledger_fragment(&[("model", json!("gpt\"4")), ("usage", json!({"in": 1}))]);
        assert_eq!(f, r#""model":"gpt\"4","usage":{"in":1}"#);
        let whole: Value = serde_json::from_str(&format!("{{{f}}}")).unwrap();
        assert_eq!(whole["model"], "gpt\"4");
    }

    #[test]
    fn key_view_decodes_with_entries() {
        let none = ["", "", "", "", "", "", "0", "", "0", "", "0", "0"];
        let mut v = json!(["ok", "key_1", "active", "free", "1500", "demo", "10", "", "0", "", "", 2, "300", "-5", "cus_1", ""]);
        v.as_array_mut().unwrap().extend(none.iter().map(|s| json!(s)).chain([json!("{\"amount\":1}"), json!("{\"amount\":2}")]));
        let ReadReply::Found(k) = ReadReply::decode(&v).unwrap() else { panic!("not found") };
        assert_eq!(k.sub, None, "an account key has no sub-key fields");
        assert_eq!((k.balance_mc, k.held_mc, k.carried_mc), (1500, 300, -5));
        assert_eq!(k.last_used_ms, None);
        assert_eq!((k.stripe_customer.as_str(), k.subscription.as_str()), ("cus_1", ""));
        assert_eq!(k.entries.len(), 2);
        assert_eq!(
            ReadReply::decode(&json!(["unknown", "revoked", 1, 5000])).unwrap(),
            ReadReply::Unknown { status: "revoked".into(), limited: true, reset_ms: 5000 }
        );
    }
}
