//! Stripe webhooks: signature verification exactly as Stripe specifies, and what a verified
//! event means for credits.
//!
//! `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>...][,v0=...]`; the signed payload is
//! `"{t}.{raw body bytes}"`, HMAC-SHA256 keyed with the whole `whsec_...` secret; any `v1` may
//! match; compared in constant time; `t` older than the tolerance is refused.

use crate::money::CreditRate;
use crate::scripts::Retention;
use crate::redis_keys as rk;
use crate::scripts::ledger_fragment;
use crate::store::{Clawback, CreditTarget, DisputeStep};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureError {
    Missing,
    Malformed,
    NoMatch,
    TooOld { age_secs: i64 },
    FromFuture,
}

impl SignatureError {
    pub fn message(&self) -> String {
        match self {
            SignatureError::Missing => "missing Stripe-Signature header".into(),
            SignatureError::Malformed => "malformed Stripe-Signature header".into(),
            SignatureError::NoMatch => "no v1 signature matches the payload".into(),
            SignatureError::TooOld { age_secs } => format!("signature timestamp is {age_secs}s old, outside the tolerance"),
            SignatureError::FromFuture => "signature timestamp is in the future".into(),
        }
    }
}

pub fn sign(secret: &str, timestamp: i64, payload: &[u8]) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(), // HMAC takes keys of any length; unreachable
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload);
    hex::encode(mac.finalize().into_bytes())
}

pub fn verify(header: Option<&str>, payload: &[u8], secret: &str, now: i64, tolerance_secs: i64) -> Result<i64, SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut t: Option<i64> = None;
    let mut v1: Vec<Vec<u8>> = Vec::new();
    for part in header.split(',') {
        let Some((k, v)) = part.trim().split_once('=') else { continue };
        match k {
            "t" => t = Some(v.parse().map_err(|_| SignatureError::Malformed)?),
            "v1" => {
                if let Ok(bytes) = hex::decode(v) {
                    v1.push(bytes);
                }
            }
            _ => {}
        }
    }
    let t = t.ok_or(SignatureError::Malformed)?;
    if v1.is_empty() {
        return Err(SignatureError::NoMatch);
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).map_err(|_| SignatureError::Malformed)?;
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload);
    // `verify_slice` compares in constant time; every candidate is checked.
    let matched = v1.iter().fold(false, |acc, sig| mac.clone().verify_slice(sig).is_ok() | acc);
    if !matched {
        return Err(SignatureError::NoMatch);
    }
    let age = now - t;
    if age > tolerance_secs {
        return Err(SignatureError::TooOld { age_secs: age });
    }
    if age < -tolerance_secs {
        return Err(SignatureError::FromFuture);
    }
    Ok(t)
}

/// Whom to credit, as named by a checkout session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyRef {
    Id(String),
    /// A plaintext key (the original product's `metadata.apiKey`); only its hash is used.
    Plaintext(String),
}

impl KeyRef {
    /// The key to credit; `None` for a malformed key id.
    pub fn target(&self) -> Option<CreditTarget> {
        match self {
            KeyRef::Id(id) => CreditTarget::key_id(id),
            KeyRef::Plaintext(k) => Some(CreditTarget::plaintext(k)),
        }
    }
}

/// A verified event that should credit, or why it does not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StripeAction {
    Credit {
        event_id: String,
        session_id: String,
        /// The payment behind the session: a later refund of it finds the credits through this.
        payment_intent: Option<String>,
        key: KeyRef,
        amount_mc: i64,
        amount_total_cents: u64,
    },
    /// `charge.refunded`: take back the refunded share of what the payment bought.
    Refund { event_id: String, payment_intent: String, paid_cents: u64, refunded_cents: u64 },
    /// A refund that names no payment intent (or no amounts): it cannot be matched to credits,
    /// so it is recorded for an admin instead of dropped.
    UntraceableRefund { event_id: String, charge_id: String, reason: String },
    /// `charge.dispute.*`: a step of a dispute of the charge behind `payment_intent`.
    Dispute { event_id: String, dispute_id: String, payment_intent: String, disputed_cents: u64, step: DisputeStep },
    /// Acknowledge with 200 and log; nothing changes.
    Ignore { event_id: String, reason: String },
    /// Money was received but the session names no usable key or amount: acknowledge (Stripe
    /// cannot fix it by retrying) and record it for an admin, so the payment is not lost.
    Unmatched { event_id: String, session_id: String, amount_total_cents: u64, reason: String },
}

/// The clawback of `charge.refunded`: the refunded share (cumulative `amount_refunded` of
/// `amount_captured`) of what the payment bought, once per event.
pub fn clawback(event_id: &str, payment_intent: &str, paid_cents: u64, refunded_cents: u64, now_ms: u64, retention: Retention) -> Clawback {
    let fragment = ledger_fragment(&[
        ("source", json!("stripe")),
        ("ref", json!(event_id)),
        ("payment_intent", json!(payment_intent)),
        ("refunded_cents", json!(refunded_cents)),
        ("paid_cents", json!(paid_cents)),
    ]);
    Clawback {
        payment_marker: rk::stripe_payment(payment_intent),
        early_refund_key: rk::stripe_early_refund(payment_intent),
        refunded_cents,
        paid_cents,
        now_ms,
        fragment,
        event_marker: rk::stripe_event(event_id),
        retention,
    }
}

/// A dispute event (`charge.dispute.<kind>`, its object a Dispute: `id`, `amount`, `charge`,
/// `payment_intent`, `status`). Created or funds withdrawn: freeze; closed won (or an inquiry
/// closed, a prevented or refunded charge) or funds reinstated: release; closed lost: lose.
/// `updated` changes nothing.
fn dispute(event_id: String, kind: &str, d: &Value) -> StripeAction {
    let status = d.get("status").and_then(Value::as_str).unwrap_or("");
    let step = match (kind, status) {
        ("created" | "funds_withdrawn", _) => DisputeStep::Freeze,
        ("funds_reinstated", _) | ("closed", "won" | "warning_closed" | "prevented" | "charge_refunded") => DisputeStep::Release,
        ("closed", "lost") => DisputeStep::Lose,
        _ => return StripeAction::Ignore { event_id, reason: format!("charge.dispute.{kind} (status `{status}`) changes no credits") },
    };
    let dispute_id = d.get("id").and_then(Value::as_str).filter(|x| !x.is_empty());
    let pi = d.get("payment_intent").and_then(Value::as_str).filter(|x| !x.is_empty());
    match (dispute_id, pi, d.get("amount").and_then(Value::as_u64)) {
        (Some(id), Some(pi), Some(cents)) => StripeAction::Dispute { event_id, dispute_id: id.into(), payment_intent: pi.into(), disputed_cents: cents, step },
        _ => {
            let charge_id = d.get("charge").and_then(Value::as_str).unwrap_or("").to_string();
            StripeAction::UntraceableRefund { event_id, charge_id, reason: format!("charge.dispute.{kind} without an id, payment_intent or amount") }
        }
    }
}

pub fn interpret(event: &Value, rate: &CreditRate) -> StripeAction {
    let event_id = event.get("id").and_then(Value::as_str).unwrap_or("").to_string();
    let ty = event.get("type").and_then(Value::as_str).unwrap_or("");
    let ignore = |reason: String| StripeAction::Ignore { event_id: event_id.clone(), reason };
    if event_id.is_empty() {
        return ignore("event has no id".into());
    }
    let Some(s) = event.pointer("/data/object") else { return ignore("event has no data.object".into()) };
    if let Some(kind) = ty.strip_prefix("charge.dispute.") {
        return dispute(event_id, kind, s);
    }
    if ty == "charge.refunded" {
        let (Some(pi), Some(paid), Some(refunded)) = (
            s.get("payment_intent").and_then(Value::as_str).filter(|p| !p.is_empty()),
            s.get("amount_captured").or_else(|| s.get("amount")).and_then(Value::as_u64).filter(|c| *c > 0),
            s.get("amount_refunded").and_then(Value::as_u64),
        ) else {
            let charge_id = s.get("id").and_then(Value::as_str).unwrap_or("").to_string();
            return StripeAction::UntraceableRefund { event_id, charge_id, reason: "charge.refunded without payment_intent, amount or amount_refunded".into() };
        };
        return StripeAction::Refund { event_id, payment_intent: pi.to_string(), paid_cents: paid, refunded_cents: refunded };
    }
    if ty != "checkout.session.completed" && ty != "checkout.session.async_payment_succeeded" {
        return ignore(format!("event type `{ty}` is not handled"));
    }
    let session_id = s.get("id").and_then(Value::as_str).unwrap_or("").to_string();
    if session_id.is_empty() {
        return ignore("session has no id".into());
    }
    // Only money actually received buys credits (not `no_payment_required`, e.g. 100 % coupons).
    let paid = s.get("payment_status").and_then(Value::as_str);
    if paid != Some("paid") {
        return ignore(format!("payment_status is {}", paid.unwrap_or("missing")));
    }
    let cents = s.get("amount_total").and_then(Value::as_u64).unwrap_or(0);
    // Tax and shipping are collected for others: only the rest buys credits.
    let passed_on = |k: &str| s.pointer(&format!("/total_details/{k}")).and_then(Value::as_u64).unwrap_or(0);
    let creditable_cents = cents.saturating_sub(passed_on("amount_tax")).saturating_sub(passed_on("amount_shipping"));
    if cents == 0 {
        return ignore("session amount is zero".into());
    }
    let unmatched = |reason: &str| StripeAction::Unmatched {
        event_id: event_id.clone(),
        session_id: session_id.clone(),
        amount_total_cents: cents,
        reason: reason.to_string(),
    };
    let meta = s.get("metadata").cloned().unwrap_or(Value::Null);
    let meta_str = |k: &str| meta.get(k).and_then(Value::as_str).filter(|x| !x.is_empty()).map(str::to_string);
    let key = if let Some(id) = meta_str("key_id") {
        KeyRef::Id(id)
    } else if let Some(k) = meta_str("apiKey").or_else(|| meta_str("api_key")) {
        KeyRef::Plaintext(k)
    } else if let Some(id) = s.get("client_reference_id").and_then(Value::as_str).filter(|x| x.starts_with("key_")) {
        KeyRef::Id(id.to_string())
    } else {
        return unmatched("session names no API key (metadata.key_id, metadata.apiKey or client_reference_id)");
    };
    let amount_mc = match meta.get("credits") {
        Some(c) if !c.is_null() => match crate::money::parse_credits(c) {
            Ok(mc) if mc > 0 => mc,
            _ => return unmatched("metadata.credits is not a positive amount"),
        },
        _ => {
            let currency = s.get("currency").and_then(Value::as_str).unwrap_or("");
            if currency != "usd" {
                return unmatched(&format!("currency `{currency}` has no credit conversion; set metadata.credits"));
            }
            rate.millicredits_for_usd_cents(creditable_cents)
        }
    };
    if amount_mc <= 0 {
        return ignore("session amount is zero".into());
    }
    let payment_intent = s.get("payment_intent").and_then(Value::as_str).filter(|p| !p.is_empty()).map(str::to_string);
    StripeAction::Credit { event_id, session_id, payment_intent, key, amount_mc, amount_total_cents: cents }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test_5f3c9a1e7b2d4c6e8a0f1b3d5c7e9a2b";
    const PAYLOAD: &[u8] = br#"{"id":"evt_test_webhook","object":"event","type":"checkout.session.completed"}"#;

    #[test]
    fn stripe_test_vector_1() {
        assert_eq!(sign(SECRET, 1756200312, PAYLOAD), "8ad6181404f5de11e9f84a23e5a971ccbd8971de67f7208e92601299c7e7fe67");
        let h = "t=1756200312,v1=8ad6181404f5de11e9f84a23e5a971ccbd8971de67f7208e92601299c7e7fe67";
        assert_eq!(verify(Some(h), PAYLOAD, SECRET, 1756200312 + 10, 300), Ok(1756200312));
    }

    #[test]
    fn stripe_test_vector_2_fixture_body() {
        let body = include_bytes!("../../fixtures/stripe/checkout.session.completed.json");
        assert_eq!(sign(SECRET, 1756200312, body), "9055059d1e49a4a7a35141cbf406a16938124442220eabcdab07b81344038c9e");
    }

    #[test]
    fn the_secret_prefix_is_part_of_the_key() {
        assert_ne!(sign(SECRET.trim_start_matches("whsec_"), 1756200312, PAYLOAD), sign(SECRET, 1756200312, PAYLOAD));
    }

    #[test]
    fn any_v1_may_match_and_v0_is_ignored() {
        let good = sign(SECRET, 100, PAYLOAD);
        let h = format!("t=100,v1={},v1={good},v0=abc", "00".repeat(32));
        assert!(verify(Some(&h), PAYLOAD, SECRET, 100, 300).is_ok());
    }

    #[test]
    fn refusals() {
        let good = sign(SECRET, 100, PAYLOAD);
        assert_eq!(verify(None, PAYLOAD, SECRET, 100, 300), Err(SignatureError::Missing));
        assert_eq!(verify(Some("garbage"), PAYLOAD, SECRET, 100, 300), Err(SignatureError::Malformed));
        assert_eq!(verify(Some(&format!("t=100,v1={good}")), b"tampered", SECRET, 100, 300), Err(SignatureError::NoMatch));
        assert_eq!(verify(Some(&format!("t=100,v1={good}")), PAYLOAD, "whsec_wrong", 100, 300), Err(SignatureError::NoMatch));
        assert_eq!(verify(Some(&format!("t=100,v1={good}")), PAYLOAD, SECRET, 401, 300), Err(SignatureError::TooOld { age_secs: 301 }));
        assert!(verify(Some(&format!("t=100,v1={good}")), PAYLOAD, SECRET, 400, 300).is_ok());
    }

    #[test]
    fn fixture_session_without_a_key_is_recorded_as_unmatched_not_credited() {
        let ev: Value = serde_json::from_slice(include_bytes!("../../fixtures/stripe/checkout.session.completed.json")).unwrap();
        assert!(matches!(
            interpret(&ev, &CreditRate::default_rate()),
            StripeAction::Unmatched { amount_total_cents: 2000, .. }
        ));
    }

    #[test]
    fn paid_session_credits_amount_total_at_usd_per_credit() {
        let ev = json!({"id":"evt_1","type":"checkout.session.completed","data":{"object":{
            "id":"cs_1","payment_status":"paid","amount_total":2000,"currency":"usd","client_reference_id":"key_0123456789abcdef","metadata":{}}}});
        assert_eq!(
            interpret(&ev, &CreditRate::default_rate()),
            StripeAction::Credit {
                event_id: "evt_1".into(),
                session_id: "cs_1".into(),
                payment_intent: None,
                key: KeyRef::Id("key_0123456789abcdef".into()),
                amount_mc: 2_000_000,
                amount_total_cents: 2000
            }
        );
        let unpaid = json!({"id":"evt_2","type":"checkout.session.completed","data":{"object":{"id":"cs_2","payment_status":"unpaid","amount_total":2000,"currency":"usd","metadata":{"key_id":"key_0123456789abcdef"}}}});
        assert!(matches!(interpret(&unpaid, &CreditRate::default_rate()), StripeAction::Ignore { .. }));
        let explicit = json!({"id":"evt_3","type":"checkout.session.async_payment_succeeded","data":{"object":{"id":"cs_3","payment_status":"paid","amount_total":999,"currency":"eur","metadata":{"apiKey":"sk-broker-x","credits":"5000"}}}});
        assert!(matches!(interpret(&explicit, &CreditRate::default_rate()), StripeAction::Credit { amount_mc: 5_000_000, key: KeyRef::Plaintext(_), .. }));
        let taxed = json!({"id":"evt_5","type":"checkout.session.completed","data":{"object":{
            "id":"cs_5","payment_status":"paid","amount_total":2400,"currency":"usd","metadata":{"key_id":"key_0123456789abcdef"},
            "total_details":{"amount_discount":0,"amount_shipping":100,"amount_tax":300}}}});
        assert!(matches!(interpret(&taxed, &CreditRate::default_rate()), StripeAction::Credit { amount_mc: 2_000_000, .. }));
        let free = json!({"id":"evt_6","type":"checkout.session.completed","data":{"object":{
            "id":"cs_6","payment_status":"no_payment_required","amount_total":0,"currency":"usd","metadata":{"key_id":"key_0123456789abcdef","credits":"5000"}}}});
        assert!(matches!(interpret(&free, &CreditRate::default_rate()), StripeAction::Ignore { .. }));
        let refund = json!({"id":"evt_7","type":"charge.refunded","data":{"object":{
            "id":"ch_1","object":"charge","payment_intent":"pi_1","amount":2000,"amount_captured":2000,"amount_refunded":500,"refunded":false}}});
        assert_eq!(
            interpret(&refund, &CreditRate::default_rate()),
            StripeAction::Refund { event_id: "evt_7".into(), payment_intent: "pi_1".into(), paid_cents: 2000, refunded_cents: 500 }
        );
        let uncaptured = json!({"id":"evt_8","type":"charge.refunded","data":{"object":{"id":"ch_2","payment_intent":"pi_2","amount":0,"amount_captured":0,"amount_refunded":0}}});
        assert!(matches!(interpret(&uncaptured, &CreditRate::default_rate()), StripeAction::UntraceableRefund { .. }));
        let other = json!({"id":"evt_4","type":"invoice.paid","data":{"object":{}}});
        assert!(matches!(interpret(&other, &CreditRate::default_rate()), StripeAction::Ignore { .. }));
    }

    #[test]
    fn dispute_events_freeze_then_release_or_lose() {
        let created: Value = serde_json::from_slice(include_bytes!("../../fixtures/stripe/charge.dispute.created.json")).unwrap();
        assert_eq!(
            interpret(&created, &CreditRate::default_rate()),
            StripeAction::Dispute {
                event_id: "evt_1S3kQ2LmN8pRtUvWYd0vE9rT".into(),
                dispute_id: "dp_1S3kQ1LmN8pRtUvW4yF2cXwA".into(),
                payment_intent: "pi_3S0kPzLmN8pRtUvW0a1B2c3D".into(),
                disputed_cents: 2000,
                step: DisputeStep::Freeze
            }
        );
        let mut closed: Value = serde_json::from_slice(include_bytes!("../../fixtures/stripe/charge.dispute.closed.json")).unwrap();
        assert!(matches!(interpret(&closed, &CreditRate::default_rate()), StripeAction::Dispute { step: DisputeStep::Lose, .. }));
        for (status, step) in [("won", Some(DisputeStep::Release)), ("warning_closed", Some(DisputeStep::Release)), ("needs_response", None)] {
            closed["data"]["object"]["status"] = json!(status);
            let got = match interpret(&closed, &CreditRate::default_rate()) {
                StripeAction::Dispute { step, .. } => Some(step),
                _ => None,
            };
            assert_eq!(got, step, "{status}");
        }
        for (kind, step) in [("funds_withdrawn", DisputeStep::Freeze), ("funds_reinstated", DisputeStep::Release)] {
            let mut e = created.clone();
            e["type"] = json!(format!("charge.dispute.{kind}"));
            assert!(matches!(interpret(&e, &CreditRate::default_rate()), StripeAction::Dispute { step: s, .. } if s == step), "{kind}");
        }
        let mut updated = created.clone();
        updated["type"] = json!("charge.dispute.updated");
        assert!(matches!(interpret(&updated, &CreditRate::default_rate()), StripeAction::Ignore { .. }));
        let mut legacy = created;
        legacy["data"]["object"]["payment_intent"] = Value::Null;
        assert!(matches!(interpret(&legacy, &CreditRate::default_rate()), StripeAction::UntraceableRefund { .. }), "kept for an admin");
    }
}
