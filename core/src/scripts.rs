//! The Redis scripts (files under `core/lua/`, versioned in their names) and the decoding of
//! their replies. Replies arrive as Upstash JSON (`{"result": [...]}`): strings and integers.

use crate::error::{ApiError, ErrorKind};
use serde_json::Value;

pub struct Script {
    pub name: &'static str,
    /// `lua/lib_v1.lua` followed by the script's own file.
    pub source: &'static str,
}

/// A script from `core/lua/<name>.lua`, with the shared helpers of `lib_v1.lua` before it.
macro_rules! script {
    ($name:literal) => {
        Script { name: $name, source: concat!(include_str!("../lua/lib_v1.lua"), include_str!(concat!("../lua/", $name, ".lua"))) }
    };
}

impl Script {
    /// The SHA-1 Redis knows the script by (for `EVALSHA`).
    pub fn sha1(&self) -> String {
        crate::sha1::sha1_hex(self.source.as_bytes())
    }
}

pub const ADMIT: Script = script!("admit_v2");
pub const SETTLE: Script = script!("settle_v2");
pub const CREDIT: Script = script!("credit_v2");
pub const CLAWBACK: Script = script!("clawback_v1");
pub const KEYS: Script = script!("keys_v1");

fn bad_reply(script: &str, v: &Value) -> ApiError {
    ApiError::new(ErrorKind::Unavailable, format!("unexpected reply from {script}: {v}"))
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

/// Rate-limit state to report in headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateState {
    pub limit: i64,
    pub remaining: i64,
    pub reset_ms: i64,
}

impl RateState {
    /// Whole seconds until a slot frees (the `t` of `RateLimit`, `X-RateLimit-Reset`).
    pub fn reset_secs(&self) -> u64 {
        reset_secs(self.reset_ms)
    }
}

fn reset_secs(reset_ms: i64) -> u64 {
    (reset_ms.max(0) as u64).div_ceil(1000)
}

/// 429 for an address over its unknown-key limit (admission and customer reads alike).
pub fn ip_limited_error(reset_ms: i64) -> ApiError {
    ApiError::new(
        ErrorKind::RateLimited { retry_after_secs: reset_secs(reset_ms).max(1) },
        "too many requests with invalid API keys from this address; slow down",
    )
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdmitReply {
    Admitted { key_id: String, plan: String, hold_mc: i64, balance_after_mc: i64, max_tokens: u64, rate: RateState },
    /// Unknown or revoked key (`reason`), counted against the client IP.
    Unauthorized { reason: String, rate: RateState },
    IpLimited { rate: RateState },
    RateLimited { plan: String, rate: RateState },
    NoPlan { plan: String },
    Insufficient { needed_mc: i64, balance_mc: i64, rate: RateState },
}

impl AdmitReply {
    pub fn decode(v: &Value) -> Result<AdmitReply, ApiError> {
        let tag = text(v, 0).unwrap_or_default();
        let rate = |a: usize| -> Option<RateState> {
            Some(RateState { limit: int(v, a)?, remaining: int(v, a + 1)?, reset_ms: int(v, a + 2)? })
        };
        let r = match tag.as_str() {
            "ok" => Some(AdmitReply::Admitted {
                key_id: text(v, 1).unwrap_or_default(),
                plan: text(v, 2).unwrap_or_default(),
                hold_mc: int(v, 3).unwrap_or(-1),
                balance_after_mc: int(v, 4).unwrap_or(-1),
                max_tokens: int(v, 5).and_then(|x| u64::try_from(x).ok()).unwrap_or(0),
                rate: rate(6).unwrap_or(RateState { limit: 0, remaining: 0, reset_ms: 0 }),
            })
            .filter(|a| matches!(a, AdmitReply::Admitted { hold_mc, max_tokens, .. } if *hold_mc >= 0 && *max_tokens > 0)),
            "unauthorized" => rate(2).map(|rate| AdmitReply::Unauthorized { reason: text(v, 1).unwrap_or_default(), rate }),
            "ip_limited" => rate(1).map(|rate| AdmitReply::IpLimited { rate }),
            "rate_limited" => rate(1).map(|rate| AdmitReply::RateLimited { plan: text(v, 4).unwrap_or_default(), rate }),
            "no_plan" => Some(AdmitReply::NoPlan { plan: text(v, 1).unwrap_or_default() }),
            "insufficient" => Some(AdmitReply::Insufficient {
                needed_mc: int(v, 1).unwrap_or(0),
                balance_mc: int(v, 2).unwrap_or(0),
                rate: rate(3).unwrap_or(RateState { limit: 0, remaining: 0, reset_ms: 0 }),
            }),
            _ => None,
        };
        r.ok_or_else(|| bad_reply(ADMIT.name, v))
    }
}

/// How `settle_v2` runs: a call's own settlement, or the sweeper releasing a lost one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettleMode {
    Settle,
    Sweep,
}

impl SettleMode {
    pub fn as_str(&self) -> &'static str {
        match self {
            SettleMode::Settle => "settle",
            SettleMode::Sweep => "sweep",
        }
    }
}

/// `settle_v2`'s arguments.
pub fn settle_args(request_id: &str, charge_mc: i64, now_ms: u64, fragment: String, mode: SettleMode, note: &str) -> Vec<String> {
    let note = if note.is_empty() { String::new() } else { ledger_fragment(&[("note", Value::String(note.to_string()))]) };
    vec![request_id.to_string(), charge_mc.to_string(), now_ms.to_string(), fragment, mode.as_str().to_string(), note]
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettleReply {
    Settled { charged_mc: i64, balance_mc: i64 },
    /// Released by the sweeper; a late settlement may still charge.
    Swept { balance_mc: i64 },
    /// No open hold for this request (already settled, or never admitted).
    Missing,
}

impl SettleReply {
    pub fn decode(v: &Value) -> Result<SettleReply, ApiError> {
        match text(v, 0).as_deref() {
            Some("ok") => Ok(SettleReply::Settled { charged_mc: int(v, 1).unwrap_or(0), balance_mc: int(v, 2).unwrap_or(0) }),
            Some("swept") => Ok(SettleReply::Swept { balance_mc: int(v, 2).unwrap_or(0) }),
            Some("missing") => Ok(SettleReply::Missing),
            _ => Err(bad_reply(SETTLE.name, v)),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreditReply {
    Credited { key_id: String, balance_mc: i64 },
    /// The dedupe key that was already set.
    Duplicate { marker: String },
    UnknownKey,
    Insufficient { balance_mc: i64 },
}

impl CreditReply {
    pub fn decode(v: &Value) -> Result<CreditReply, ApiError> {
        match text(v, 0).as_deref() {
            Some("ok") => Ok(CreditReply::Credited { key_id: text(v, 1).unwrap_or_default(), balance_mc: int(v, 2).unwrap_or(0) }),
            Some("duplicate") => Ok(CreditReply::Duplicate { marker: text(v, 1).unwrap_or_default() }),
            Some("unknown_key") => Ok(CreditReply::UnknownKey),
            Some("insufficient") => Ok(CreditReply::Insufficient { balance_mc: int(v, 1).unwrap_or(0) }),
            _ => Err(bad_reply(CREDIT.name, v)),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClawbackReply {
    /// `taken_mc` left the balance; `shortfall_mc` was already spent and could not be taken.
    Taken { key_id: String, taken_mc: i64, shortfall_mc: i64, balance_mc: i64 },
    Duplicate,
    /// No credited payment is known under that marker.
    UnknownPayment,
}

impl ClawbackReply {
    pub fn decode(v: &Value) -> Result<ClawbackReply, ApiError> {
        match text(v, 0).as_deref() {
            Some("ok") => Ok(ClawbackReply::Taken {
                key_id: text(v, 1).unwrap_or_default(),
                taken_mc: int(v, 2).unwrap_or(0),
                shortfall_mc: int(v, 3).unwrap_or(0),
                balance_mc: int(v, 4).unwrap_or(0),
            }),
            Some("duplicate") => Ok(ClawbackReply::Duplicate),
            Some("unknown_payment") => Ok(ClawbackReply::UnknownPayment),
            _ => Err(bad_reply(CLAWBACK.name, v)),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOpReply {
    Ok,
    Exists,
    Missing,
    Revoked,
}

impl KeyOpReply {
    pub fn decode(v: &Value) -> Result<KeyOpReply, ApiError> {
        match text(v, 0).as_deref() {
            Some("ok") => Ok(KeyOpReply::Ok),
            Some("exists") => Ok(KeyOpReply::Exists),
            Some("missing") => Ok(KeyOpReply::Missing),
            Some("revoked") => Ok(KeyOpReply::Revoked),
            _ => Err(bad_reply(KEYS.name, v)),
        }
    }
}

/// A JSON fragment (`"k":v,...` without braces) for a ledger entry built inside a script.
pub fn ledger_fragment(fields: &[(&str, Value)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{}:{}", Value::String((*k).to_string()), v))
        .collect::<Vec<_>>()
        .join(",")
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
                rate: RateState { limit: 100, remaining: 99, reset_ms: 3_600_000 }
            }
        );
        assert!(matches!(AdmitReply::decode(&json!(["insufficient", 900, 10, 100, 50, 1000])).unwrap(), AdmitReply::Insufficient { needed_mc: 900, .. }));
        assert!(matches!(AdmitReply::decode(&json!(["unauthorized", "revoked", 5, 4, 900000])).unwrap(), AdmitReply::Unauthorized { .. }));
        assert!(AdmitReply::decode(&json!(["ok", "key_1"])).is_err());
        assert!(AdmitReply::decode(&json!("garbage")).is_err());
    }

    #[test]
    fn script_shas_are_stable_and_distinct() {
        assert_eq!(ADMIT.sha1().len(), 40);
        assert_ne!(ADMIT.sha1(), SETTLE.sha1());
    }

    #[test]
    fn ledger_fragments_escape_strings() {
        let f = ledger_fragment(&[("model", json!("gpt\"4")), ("usage", json!({"in": 1}))]);
        assert_eq!(f, r#""model":"gpt\"4","usage":{"in":1}"#);
        let whole: Value = serde_json::from_str(&format!("{{{f}}}")).unwrap();
        assert_eq!(whole["model"], "gpt\"4");
    }
}

pub const READ: Script = script!("read_v1");

/// A key's record and a page of its ledger (raw entries, newest first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyView {
    pub key_id: String,
    pub status: String,
    pub plan: String,
    pub balance_mc: i64,
    pub name: String,
    pub created_ms: Option<i64>,
    pub last_used_ms: Option<i64>,
    pub charged_total_mc: i64,
    pub rotated_ms: Option<i64>,
    pub revoked_ms: Option<i64>,
    pub ledger_len: i64,
    pub entries: Vec<String>,
}

/// What `read_v1` found.
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
            Some("ok") => KeyView::decode(v).map(|k| ReadReply::Found(Box::new(k))),
            _ => Err(bad_reply(READ.name, v)),
        }
    }
}

impl KeyView {
    fn decode(v: &Value) -> Result<KeyView, ApiError> {
        let opt = |i| int(v, i);
        let entries = v.as_array().map(|a| a.iter().skip(12).filter_map(|e| e.as_str().map(str::to_string)).collect()).unwrap_or_default();
        Ok(KeyView {
            key_id: text(v, 1).unwrap_or_default(),
            status: text(v, 2).unwrap_or_default(),
            plan: text(v, 3).unwrap_or_default(),
            balance_mc: opt(4).unwrap_or(0),
            name: text(v, 5).unwrap_or_default(),
            created_ms: opt(6),
            last_used_ms: opt(7),
            charged_total_mc: opt(8).unwrap_or(0),
            rotated_ms: opt(9),
            revoked_ms: opt(10),
            ledger_len: opt(11).unwrap_or(0),
            entries,
        })
    }
}

#[cfg(test)]
mod key_view_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn key_view_decodes_with_entries() {
        let v = json!(["ok", "key_1", "active", "free", "1500", "demo", "10", "", "0", "", "", 2, "{\"amount\":1}", "{\"amount\":2}"]);
        let ReadReply::Found(k) = ReadReply::decode(&v).unwrap() else { panic!("not found") };
        assert_eq!(k.balance_mc, 1500);
        assert_eq!(k.last_used_ms, None);
        assert_eq!(k.entries.len(), 2);
        assert_eq!(
            ReadReply::decode(&json!(["unknown", "revoked", 1, 5000])).unwrap(),
            ReadReply::Unknown { status: "revoked".into(), limited: true, reset_ms: 5000 }
        );
    }
}
