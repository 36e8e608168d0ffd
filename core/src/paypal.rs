//! PayPal webhooks: what a verified event means for credits, and the verification request.
//! PayPal verifies its own signatures (`POST /v1/notifications/verify-webhook-signature`); the
//! event must be spliced into that request byte for byte, since re-serializing it could change
//! what PayPal checks.

use crate::keys;
use crate::money::{CreditRate, Decimal};
use serde_json::{json, Value};

/// The only event that credits.
pub const CAPTURE_COMPLETED: &str = "PAYMENT.CAPTURE.COMPLETED";

/// `"20.00"` USD → 2000 cents, exactly (more than two decimals is not an amount).
pub fn usd_cents(value: &str) -> Option<u64> {
    let d = Decimal::parse(value).ok()?;
    let cents = d.num.checked_mul(100)?;
    (cents % d.den == 0).then(|| u64::try_from(cents / d.den).ok()).flatten()
}

/// A verified PayPal event, and what it means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaypalAction {
    Credit { event_id: String, capture_id: String, key_id: String, amount_mc: i64, cents: u64 },
    /// Acknowledge and log; nothing changes.
    Ignore { event_id: String, reason: String },
    /// Money was received but names no usable key or amount: recorded for an admin.
    Unmatched { event_id: String, capture_id: String, details: Value },
}

/// The event's type (checked before the verification call: other events need none).
pub fn event_type(event: &Value) -> &str {
    event.get("event_type").and_then(Value::as_str).unwrap_or("")
}

pub fn interpret(event: &Value, rate: &CreditRate) -> PaypalAction {
    let event_id = event.get("id").and_then(Value::as_str).unwrap_or("").to_string();
    let ty = event_type(event);
    if ty != CAPTURE_COMPLETED || event_id.is_empty() {
        return PaypalAction::Ignore { event_id, reason: format!("event type `{ty}` is not handled") };
    }
    let resource = event.get("resource").cloned().unwrap_or(Value::Null);
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
        assert!(matches!(interpret(&json!({"id": "WH-1", "event_type": "PAYMENT.CAPTURE.REFUNDED"}), &CreditRate::default_rate()), PaypalAction::Ignore { .. }));
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
