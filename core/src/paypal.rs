//! PayPal webhooks: what a verified event means for credits, and the verification request.
//! PayPal verifies its own signatures (`POST /v1/notifications/verify-webhook-signature`); the
//! event must be spliced into that request byte for byte, since re-serializing it could change
//! what PayPal checks.
//!
//! A capture (`PAYMENT.CAPTURE.COMPLETED`) credits `USD_PER_CREDIT`'s worth of its USD amount; a
//! refund or reversal (`PAYMENT.CAPTURE.REFUNDED` / `REVERSED`, whose resource is a refund that
//! links `rel: up` to its capture) takes back the credits of everything refunded so far
//! (`seller_payable_breakdown.total_refunded_amount`, cumulative), at the same rate, so the share
//! is computed here in integers and the clawback script only applies it.

use crate::keys;
use crate::money::CreditRate;
use serde_json::{json, Value};

/// The event that credits.
pub const CAPTURE_COMPLETED: &str = "PAYMENT.CAPTURE.COMPLETED";
/// The events that take credits back (a refund by the merchant; a reversal by PayPal, e.g. a
/// chargeback). Both carry a refund resource.
pub const CAPTURE_REFUNDED: &str = "PAYMENT.CAPTURE.REFUNDED";
pub const CAPTURE_REVERSED: &str = "PAYMENT.CAPTURE.REVERSED";

/// Whether an event type changes balances (and so is worth PayPal's verification calls).
pub fn is_handled(event_type: &str) -> bool {
    [CAPTURE_COMPLETED, CAPTURE_REFUNDED, CAPTURE_REVERSED].contains(&event_type)
}

pub use crate::money::usd_cents;

/// A refund or reversal of `capture_id`: `refunded_cents` is everything refunded from the capture
/// so far, `target_mc` the credits that buys back (what is taken, once, in total).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refund {
    pub event_id: String,
    pub capture_id: String,
    pub refund_id: String,
    pub refunded_cents: u64,
    pub target_mc: i64,
    pub reversal: bool,
}

/// A verified PayPal event, and what it means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaypalAction {
    Credit { event_id: String, capture_id: String, key_id: String, amount_mc: i64, cents: u64 },
    /// A refund or reversal of a capture.
    TakeBack(Refund),
    /// A refund that names no capture or no USD amount: recorded for an admin.
    UntraceableRefund { event_id: String, details: Value },
    /// Acknowledge and log; nothing changes.
    Ignore { event_id: String, reason: String },
    /// Money was received but names no usable key or amount: recorded for an admin.
    Unmatched { event_id: String, capture_id: String, details: Value },
}

/// The event's type (checked before the verification call: other events need none).
pub fn event_type(event: &Value) -> &str {
    event.get("event_type").and_then(Value::as_str).unwrap_or("")
}

/// The capture a refund belongs to: the id at the end of its `rel: up` link
/// (`…/v2/payments/captures/<id>`).
pub fn refunded_capture(resource: &Value) -> Option<String> {
    let links = resource.get("links").and_then(Value::as_array)?;
    let up = links.iter().find(|l| l.get("rel").and_then(Value::as_str) == Some("up"))?;
    let href = up.get("href").and_then(Value::as_str)?;
    let (path, id) = href.trim_end_matches('/').rsplit_once('/')?;
    (path.ends_with("/payments/captures") && !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')).then(|| id.to_string())
}

fn take_back(event_id: String, resource: &Value, rate: &CreditRate, reversal: bool) -> PaypalAction {
    let refund_id = resource.get("id").and_then(Value::as_str).unwrap_or("").to_string();
    // Cumulative when PayPal says so (every refund event carries it); else this refund's amount.
    let total = resource.pointer("/seller_payable_breakdown/total_refunded_amount").or_else(|| resource.get("amount"));
    let currency = total.and_then(|t| t.get("currency_code")).and_then(Value::as_str).unwrap_or("");
    let cents = total.and_then(|t| t.get("value")).and_then(Value::as_str).and_then(usd_cents);
    match (refunded_capture(resource), cents.filter(|_| currency == "USD")) {
        (Some(capture_id), Some(refunded_cents)) => {
            PaypalAction::TakeBack(Refund { event_id, capture_id, refund_id, refunded_cents, target_mc: rate.millicredits_for_usd_cents(refunded_cents), reversal })
        }
        (capture, _) => {
            let details = json!({ "refund": refund_id, "capture": capture, "amount": total, "reason": "refund names no capture (links rel=up) or no USD amount" });
            PaypalAction::UntraceableRefund { event_id, details }
        }
    }
}

pub fn interpret(event: &Value, rate: &CreditRate) -> PaypalAction {
    let event_id = event.get("id").and_then(Value::as_str).unwrap_or("").to_string();
    let ty = event_type(event);
    let resource = event.get("resource").cloned().unwrap_or(Value::Null);
    if !is_handled(ty) || event_id.is_empty() {
        return PaypalAction::Ignore { event_id, reason: format!("event type `{ty}` is not handled") };
    }
    if ty != CAPTURE_COMPLETED {
        return take_back(event_id, &resource, rate, ty == CAPTURE_REVERSED);
    }
    let capture_id = resource.get("id").and_then(Value::as_str).unwrap_or("").to_string();
    let custom = resource.get("custom_id").and_then(Value::as_str).unwrap_or("");
    // `key_…`, optionally followed by `:anything` (a pack name, an order reference).
    let key = custom.split(':').next().unwrap_or("");
    let currency = resource.pointer("/amount/currency_code").and_then(Value::as_str).unwrap_or("");
    let cents = resource.pointer("/amount/value").and_then(Value::as_str).and_then(usd_cents);
    match (cents, currency == "USD", keys::is_key_id(key)) {
        (Some(cents), true, true) => PaypalAction::Credit { event_id, capture_id, key_id: key.to_string(), amount_mc: rate.millicredits_for_usd_cents(cents), cents },
        _ => {
            let details = json!({ "capture": capture_id, "amount": resource.get("amount"), "custom_id": custom, "reason": "custom_id names no key id, or the amount is not USD" });
            PaypalAction::Unmatched { event_id, capture_id, details }
        }
    }
}

/// The body of `verify-webhook-signature`: the transmission fields, then the raw event.
pub fn verify_body(fields: &[(&str, String)], raw_event: &str) -> String {
    let mut body = String::from("{");
    for (k, v) in fields {
        body.push_str(&format!("{}:{},", json!(k), json!(v)));
    }
    body.push_str(&format!("\"webhook_event\":{raw_event}}}"));
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = include_str!("../../fixtures/paypal/payment.capture.completed.json");

    #[test]
    fn cents_are_exact() {
        assert_eq!(usd_cents("20.00"), Some(2000));
        assert_eq!(usd_cents("0.5"), Some(50));
        assert_eq!(usd_cents("1.005"), None);
        assert_eq!(usd_cents("-1"), None);
    }

    #[test]
    fn a_capture_naming_a_key_credits_its_usd_amount() {
        let mut event: Value = serde_json::from_str(FIXTURE).unwrap();
        event["resource"]["custom_id"] = json!("key_0123456789abcdef:pack_2000");
        let PaypalAction::Credit { key_id, amount_mc, cents, .. } = interpret(&event, &CreditRate::default_rate()) else { panic!("not a credit") };
        assert_eq!((key_id.as_str(), amount_mc, cents), ("key_0123456789abcdef", 2_000_000, 2000));
    }

    #[test]
    fn the_fixtures_custom_id_names_no_key_and_is_kept_for_an_admin() {
        let event: Value = serde_json::from_str(FIXTURE).unwrap();
        let PaypalAction::Unmatched { details, .. } = interpret(&event, &CreditRate::default_rate()) else { panic!("should be unmatched") };
        assert_eq!(details["custom_id"], "usr_7f3a9c21:pack_2000");
        assert!(matches!(interpret(&json!({"id": "WH-1", "event_type": "PAYMENT.CAPTURE.DENIED"}), &CreditRate::default_rate()), PaypalAction::Ignore { .. }));
    }

    const REFUNDED: &str = include_str!("../../fixtures/paypal/payment.capture.refunded.json");
    const REVERSED: &str = include_str!("../../fixtures/paypal/payment.capture.reversed.json");

    #[test]
    fn a_refund_takes_back_the_credits_of_everything_refunded_so_far() {
        let event: Value = serde_json::from_str(REFUNDED).unwrap();
        let action = interpret(&event, &CreditRate::default_rate());
        // The fixture: a second partial refund of $5.00; $15.00 refunded from the capture in all.
        let PaypalAction::TakeBack(Refund { capture_id, refunded_cents, target_mc, reversal, .. }) = action else { panic!("{action:?}") };
        assert_eq!((capture_id.as_str(), refunded_cents, target_mc, reversal), ("8RS55491BX2280731", 1500, 1_500_000, false));
        let event: Value = serde_json::from_str(REVERSED).unwrap();
        let PaypalAction::TakeBack(Refund { capture_id, refunded_cents, reversal, .. }) = interpret(&event, &CreditRate::default_rate()) else { panic!() };
        assert_eq!((capture_id.as_str(), refunded_cents, reversal), ("8RS55491BX2280731", 2000, true));
    }

    #[test]
    fn a_refund_without_its_capture_or_in_another_currency_is_kept_for_an_admin() {
        let mut event: Value = serde_json::from_str(REFUNDED).unwrap();
        event["resource"]["links"] = json!([{"rel": "self", "href": "https://api.paypal.com/v2/payments/refunds/1"}]);
        assert!(matches!(interpret(&event, &CreditRate::default_rate()), PaypalAction::UntraceableRefund { .. }));
        let mut event: Value = serde_json::from_str(REFUNDED).unwrap();
        event["resource"]["seller_payable_breakdown"]["total_refunded_amount"]["currency_code"] = json!("EUR");
        assert!(matches!(interpret(&event, &CreditRate::default_rate()), PaypalAction::UntraceableRefund { .. }));
        // Without the cumulative total, the refund's own amount.
        let mut event: Value = serde_json::from_str(REFUNDED).unwrap();
        event["resource"]["seller_payable_breakdown"].as_object_mut().unwrap().remove("total_refunded_amount");
        assert!(matches!(interpret(&event, &CreditRate::default_rate()), PaypalAction::TakeBack(Refund { refunded_cents: 500, .. })));
        assert_eq!(refunded_capture(&json!({"links": [{"rel": "up", "href": "https://api.paypal.com/v2/checkout/orders/5LK8"}]})), None, "an order is not a capture");
    }

    #[test]
    fn the_event_is_spliced_byte_for_byte() {
        let raw = "{\"id\":\"WH-1\",  \"x\": 1.50}";
        let body = verify_body(&[("auth_algo", "SHA256withRSA".into()), ("webhook_id", "WH-MOCK".into())], raw);
        assert!(body.ends_with(&format!("\"webhook_event\":{raw}}}")));
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["auth_algo"], "SHA256withRSA");
    }
}
