//! Auto top-up: what a customer sets (`PUT /v1/auto-topup {threshold, amount, max_per_day}`),
//! the Stripe calls it makes (a Checkout Session in setup mode to save a card; an off-session
//! PaymentIntent when the balance crosses below the threshold), what Stripe's answers and events
//! mean for it.
//!
//! Money rules: the credits of an auto top-up arrive only through the Stripe webhook
//! (`payment_intent.succeeded`, credited once by `credit_v4` like any purchase), never from the
//! create answer; the PaymentIntent's `Idempotency-Key` is derived from (key, day, the day's
//! counter), so a retried create never charges twice; a decline turns auto top-up off.
//!
//! Leaves out: the calls to Stripe (the worker), the store steps (`crate::lowbal`).

use crate::alerts::{field_error, only_fields, threshold_mc};
use crate::error::ApiError;
use crate::money::{credits_json, credits_string, parse_credits, CreditRate};
use crate::stripe_billing::PackBounds;
use serde_json::{json, Map, Value};

/// The default and largest `max_per_day`.
pub const DEFAULT_MAX_PER_DAY: u64 = 3;
pub const MAX_PER_DAY: u64 = 20;
/// The metadata value that marks a PaymentIntent as an auto top-up of this gateway.
pub const MARK: &str = "auto_topup";

/// What a customer sets: below `threshold_mc`, buy `amount_mc` for `cents`, at most `max_per_day`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopupSetting {
    pub threshold_mc: i64,
    /// What the payment buys (the credits of `cents` at `USD_PER_CREDIT`).
    pub amount_mc: i64,
    pub cents: u64,
    pub max_per_day: u64,
}

/// `PUT /v1/auto-topup {threshold, amount, max_per_day?}`: `amount` in credits, priced as a
/// credit pack (within the pack's bounds).
pub fn parse_setting(body: &Map<String, Value>, rate: &CreditRate, bounds: PackBounds) -> Result<TopupSetting, ApiError> {
    only_fields(body, &["threshold", "amount", "max_per_day"])?;
    let threshold_mc = threshold_mc(body, "threshold")?;
    let amount = body.get("amount").filter(|v| v.is_number()).ok_or_else(|| field_error("amount", "required: the credits to buy each time (a number)"))?;
    let asked = parse_credits(amount).map_err(|e| field_error("amount", e))?;
    if asked <= 0 {
        return Err(field_error("amount", "must be positive"));
    }
    let cents = rate.cents_for_millicredits(asked);
    if cents < bounds.min_cents || cents > bounds.max_cents {
        return Err(field_error(
            "amount",
            format!("a top-up costs between ${:.2} and ${:.2}; this one would cost ${:.2}", bounds.min_cents as f64 / 100.0, bounds.max_cents as f64 / 100.0, cents as f64 / 100.0),
        ));
    }
    let max_per_day = match body.get("max_per_day") {
        None | Some(Value::Null) => DEFAULT_MAX_PER_DAY,
        Some(v) => v.as_u64().filter(|n| (1..=MAX_PER_DAY).contains(n)).ok_or_else(|| field_error("max_per_day", format!("must be a whole number from 1 to {MAX_PER_DAY}")))?,
    };
    Ok(TopupSetting { threshold_mc, amount_mc: rate.millicredits_for_usd_cents(cents), cents, max_per_day })
}

/// The `Idempotency-Key` of the day's `n`-th auto top-up of a key: a retry of the same create
/// (a lost answer, a replayed settlement) is the same payment at Stripe.
pub fn idempotency_key(key_id: &str, day: &str, n: u64) -> String {
    format!("auto-topup:{key_id}:{day}:{n}")
}

/// The form of `POST /v1/payment_intents`: confirmed now, off-session, on the saved card.
pub fn payment_intent_form(key_id: &str, customer: &str, payment_method: &str, cents: u64, amount_mc: i64, day: &str, n: u64) -> Vec<(String, String)> {
    let credits = credits_string(amount_mc);
    [
        ("amount", cents.to_string()),
        ("currency", "usd".into()),
        ("customer", customer.into()),
        ("payment_method", payment_method.into()),
        ("off_session", "true".into()),
        ("confirm", "true".into()),
        ("description", format!("Auto top-up: {credits} API credits")),
        ("metadata[key_id]", key_id.into()),
        ("metadata[credits]", credits),
        ("metadata[broker]", MARK.into()),
        ("metadata[topup]", format!("{day}#{n}")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// The form of a Checkout Session that saves a card for later off-session payments.
pub fn setup_session_form(key_id: &str, customer: &str, success_url: &str, cancel_url: &str) -> Vec<(String, String)> {
    [
        ("mode", "setup"),
        ("currency", "usd"),
        ("customer", customer),
        ("success_url", success_url),
        ("cancel_url", cancel_url),
        ("client_reference_id", key_id),
        ("metadata[key_id]", key_id),
        ("metadata[broker]", MARK),
        ("setup_intent_data[metadata][key_id]", key_id),
        ("setup_intent_data[metadata][broker]", MARK),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// The form of `POST /v1/customers` for a key with no Stripe customer yet.
pub fn customer_form(key_id: &str) -> Vec<(String, String)> {
    vec![("metadata[key_id]".into(), key_id.into()), ("description".into(), format!("API key {key_id}"))]
}

/// What Stripe answered to the PaymentIntent create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    /// Accepted (`succeeded` or `processing`): the credits come with the webhook.
    Accepted { payment_intent: String, status: String },
    /// The card was declined or needs its holder (`card_declined`, `authentication_required`,
    /// …): auto top-up turns off.
    Declined { code: String, message: String, payment_intent: Option<String> },
    /// Anything else (Stripe down, a bad request): nothing was charged; the watcher is re-armed
    /// so a later call tries again (bounded by the day's maximum).
    Failed { status: u16, message: String },
}

/// Reads Stripe's answer to `POST /v1/payment_intents` (Stripe's error shape: `{"error":
/// {"type":"card_error","code","decline_code","message","payment_intent":{…}}}` with 402).
pub fn created(status: u16, v: &Value) -> Created {
    let s = |p: &str| v.pointer(p).and_then(Value::as_str).map(str::to_string);
    if status == 200 {
        return match (s("/id"), s("/status")) {
            (Some(id), Some(st)) if st == "succeeded" || st == "processing" => Created::Accepted { payment_intent: id, status: st },
            (id, st) => {
                let st = st.unwrap_or_default();
                Created::Declined { code: st.clone(), message: format!("the payment needs the card holder (status {st})"), payment_intent: id }
            }
        };
    }
    if s("/error/type").as_deref() == Some("card_error") {
        let code = s("/error/code").or_else(|| s("/error/decline_code")).unwrap_or_else(|| "card_declined".into());
        let message = s("/error/message").unwrap_or_else(|| "the card was declined".into());
        return Created::Declined { code, message, payment_intent: s("/error/payment_intent/id") };
    }
    Created::Failed { status, message: s("/error/message").unwrap_or_else(|| format!("Stripe answered {status}")) }
}

/// A Stripe event that concerns auto top-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopupEvent {
    /// `setup_intent.succeeded` of a session made for a key: its saved card.
    CardSaved { event_id: String, key_id: String, customer: String, payment_method: String },
    /// `payment_intent.succeeded` of an auto top-up: credit it (once).
    Paid { event_id: String, key_id: String, payment_intent: String, amount_mc: i64, cents: u64 },
    /// `payment_intent.payment_failed` of an auto top-up: turn it off and say so.
    Failed { event_id: String, key_id: String, payment_intent: String, code: String, message: String },
    /// An event of these types that is not ours (no key, not marked): acknowledged, nothing done.
    Ignore { event_id: String, reason: String },
}

/// The event types this module reads (others go to `crate::payments`).
pub fn handles(event_type: &str) -> bool {
    matches!(event_type, "setup_intent.succeeded" | "payment_intent.succeeded" | "payment_intent.payment_failed")
}

/// What a verified Stripe event of a [`handles`] type means.
pub fn interpret(event: &Value, rate: &CreditRate) -> TopupEvent {
    let event_id = event.get("id").and_then(Value::as_str).unwrap_or("").to_string();
    let ty = event.get("type").and_then(Value::as_str).unwrap_or("");
    let o = event.pointer("/data/object").cloned().unwrap_or(Value::Null);
    let s = |p: &str| o.pointer(p).and_then(Value::as_str).filter(|x| !x.is_empty()).map(str::to_string);
    let ignore = |reason: &str| TopupEvent::Ignore { event_id: event_id.clone(), reason: reason.to_string() };
    let Some(key_id) = s("/metadata/key_id").filter(|k| crate::keys::is_key_id(k)) else {
        return ignore("names no key of this gateway (metadata.key_id)");
    };
    if s("/metadata/broker").as_deref() != Some(MARK) {
        return ignore("not made by this gateway's auto top-up");
    }
    match ty {
        "setup_intent.succeeded" => match (s("/customer"), s("/payment_method")) {
            (Some(customer), Some(payment_method)) => TopupEvent::CardSaved { event_id, key_id, customer, payment_method },
            _ => ignore("the setup intent has no customer or payment method"),
        },
        "payment_intent.succeeded" => {
            let Some(pi) = s("/id") else { return ignore("no payment intent id") };
            let cents = o.get("amount_received").or_else(|| o.get("amount")).and_then(Value::as_u64).unwrap_or(0);
            if s("/currency").as_deref() != Some("usd") || cents == 0 {
                return ignore("not a USD payment");
            }
            // What the payment bought, at USD_PER_CREDIT: the same figure the create was sent with.
            TopupEvent::Paid { event_id, key_id, payment_intent: pi, amount_mc: rate.millicredits_for_usd_cents(cents), cents }
        }
        "payment_intent.payment_failed" => {
            let code = s("/last_payment_error/code").or_else(|| s("/last_payment_error/decline_code")).unwrap_or_else(|| "payment_failed".into());
            let message = s("/last_payment_error/message").unwrap_or_else(|| "the payment failed".into());
            TopupEvent::Failed { event_id, key_id, payment_intent: s("/id").unwrap_or_default(), code, message }
        }
        _ => ignore("event type not handled"),
    }
}

/// The auto top-up as `GET /v1/auto-topup` shows it, from the store's fields.
pub fn setting_json(f: &std::collections::HashMap<String, String>) -> Value {
    let int = |k: &str| f.get(k).and_then(|v| v.parse::<i64>().ok());
    let card = f.get("pm").map(|pm| json!({ "saved": true, "payment_method": pm, "customer": f.get("customer") })).unwrap_or(json!({ "saved": false }));
    let enabled = f.get("t_on").map(String::as_str) == Some("1");
    let mut v = json!({ "enabled": enabled, "card": card });
    if let (Some(t), Some(a)) = (int("t_thr"), int("t_amount")) {
        v["threshold"] = credits_json(t);
        v["amount"] = credits_json(a);
        v["amount_usd"] = json!(int("t_cents").unwrap_or(0) as f64 / 100.0);
        v["max_per_day"] = json!(int("t_max").unwrap_or(0));
    }
    if let Some(status) = f.get("t_status").filter(|s| !s.is_empty()) {
        v["status"] = json!(status);
    }
    if let Some(e) = f.get("t_error").filter(|s| !s.is_empty()) {
        v["last_error"] = json!(e);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }
    const BOUNDS: PackBounds = PackBounds { min_cents: 100, max_cents: 100_000 };

    #[test]
    fn a_setting_is_priced_as_a_pack_and_bad_fields_are_named() {
        let r = CreditRate::default_rate();
        let s = parse_setting(&body(json!({"threshold": 50, "amount": 1000, "max_per_day": 2})), &r, BOUNDS).unwrap();
        assert_eq!(s, TopupSetting { threshold_mc: 50_000, amount_mc: 1_000_000, cents: 1000, max_per_day: 2 });
        assert_eq!(parse_setting(&body(json!({"threshold": 0, "amount": 500})), &r, BOUNDS).unwrap().max_per_day, DEFAULT_MAX_PER_DAY);
        for (b, field) in [
            (json!({"threshold": 50, "amount": 1000, "card": "x"}), "card"),
            (json!({"threshold": -1, "amount": 1000}), "threshold"),
            (json!({"threshold": 5, "amount": 10}), "amount"),
            (json!({"threshold": 5, "amount": 200000}), "amount"),
            (json!({"threshold": 5, "amount": "1000"}), "amount"),
            (json!({"threshold": 5, "amount": 1000, "max_per_day": 0}), "max_per_day"),
            (json!({"threshold": 5, "amount": 1000, "max_per_day": 21}), "max_per_day"),
        ] {
            let e = parse_setting(&body(b.clone()), &r, BOUNDS).unwrap_err();
            assert_eq!(e.details.as_ref().and_then(|d| d["param"].as_str()), Some(field), "{b}");
        }
    }

    #[test]
    fn the_payment_is_off_session_confirmed_and_keyed_by_day_and_count() {
        assert_eq!(idempotency_key("key_0123456789abcdef", "2026-11-16", 2), "auto-topup:key_0123456789abcdef:2026-11-16:2");
        let f: std::collections::HashMap<_, _> = payment_intent_form("key_0123456789abcdef", "cus_1", "pm_1", 1000, 1_000_000, "2026-11-16", 1).into_iter().collect();
        for (k, v) in [("amount", "1000"), ("currency", "usd"), ("customer", "cus_1"), ("payment_method", "pm_1"), ("off_session", "true"), ("confirm", "true"), ("metadata[key_id]", "key_0123456789abcdef"), ("metadata[broker]", MARK)] {
            assert_eq!(f.get(k).map(String::as_str), Some(v), "{k}");
        }
    }

    #[test]
    fn stripe_answers_a_decline_with_a_card_error() {
        let declined = json!({"error": {"type": "card_error", "code": "card_declined", "decline_code": "generic_decline", "message": "Your card was declined.", "payment_intent": {"id": "pi_1", "status": "requires_payment_method"}}});
        assert_eq!(created(402, &declined), Created::Declined { code: "card_declined".into(), message: "Your card was declined.".into(), payment_intent: Some("pi_1".into()) });
        let auth = json!({"error": {"type": "card_error", "code": "authentication_required", "message": "This payment requires authentication."}});
        assert!(matches!(created(402, &auth), Created::Declined { code, .. } if code == "authentication_required"));
        assert!(matches!(created(200, &json!({"id": "pi_2", "status": "succeeded"})), Created::Accepted { .. }));
        assert!(matches!(created(500, &json!({"error": {"type": "api_error"}})), Created::Failed { status: 500, .. }));
    }

    #[test]
    fn events_are_ours_only_when_marked_and_naming_a_key() {
        let r = CreditRate::default_rate();
        let meta = json!({"key_id": "key_0123456789abcdef", "broker": MARK});
        let paid = json!({"id": "evt_1", "type": "payment_intent.succeeded", "data": {"object": {"id": "pi_1", "object": "payment_intent", "amount": 1000, "amount_received": 1000, "currency": "usd", "status": "succeeded", "metadata": meta}}});
        assert_eq!(interpret(&paid, &r), TopupEvent::Paid { event_id: "evt_1".into(), key_id: "key_0123456789abcdef".into(), payment_intent: "pi_1".into(), amount_mc: 1_000_000, cents: 1000 });
        let mut checkout_pi = paid.clone();
        checkout_pi["data"]["object"]["metadata"] = json!({"key_id": "key_0123456789abcdef"});
        assert!(matches!(interpret(&checkout_pi, &r), TopupEvent::Ignore { .. }), "a Checkout purchase's payment intent is credited by its session");
        let failed = json!({"id": "evt_2", "type": "payment_intent.payment_failed", "data": {"object": {"id": "pi_2", "metadata": meta, "last_payment_error": {"type": "card_error", "code": "card_declined", "message": "Your card was declined."}}}});
        assert!(matches!(interpret(&failed, &r), TopupEvent::Failed { code, .. } if code == "card_declined"));
        let saved = json!({"id": "evt_3", "type": "setup_intent.succeeded", "data": {"object": {"id": "seti_1", "customer": "cus_1", "payment_method": "pm_1", "metadata": meta, "status": "succeeded"}}});
        assert!(matches!(interpret(&saved, &r), TopupEvent::CardSaved { payment_method, .. } if payment_method == "pm_1"));
    }
}
