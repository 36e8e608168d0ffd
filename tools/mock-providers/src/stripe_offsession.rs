//! Stripe's saved cards and off-session payments, as the API reference documents them:
//!
//! - `POST /v1/customers` (`metadata`, `description`): a `cus_…` Customer.
//! - A Checkout Session in `mode=setup` (no line items; `currency`, `customer`,
//!   `setup_intent_data[metadata]`), completed by `POST /__control/stripe/complete {session,
//!   card?}`: a `pm_…` PaymentMethod attached to the customer (`card: "declined"` makes one that
//!   every payment declines, as Stripe's `pm_card_chargeDeclined`; `"authentication_required"`
//!   one that needs its holder, as `pm_card_authenticationRequired`), then
//!   `checkout.session.completed` (`setup_intent`, `payment_status: no_payment_required`) and
//!   `setup_intent.succeeded` (`customer`, `payment_method`, `usage: off_session`, the metadata).
//! - `POST /v1/payment_intents` with `amount`, `currency`, `customer`, `payment_method`,
//!   `confirm=true`, `off_session=true`: a `succeeded` PaymentIntent (200), or Stripe's 402
//!   `card_error` (`code: card_declined` / `authentication_required`, the failed
//!   `payment_intent` in the error); `payment_intent.succeeded` or
//!   `payment_intent.payment_failed` follows, posted to the endpoint registered with
//!   `POST /__control/stripe/endpoint {to, secret}` (as a Dashboard webhook endpoint), shortly
//!   after the answer, as Stripe does. `GET /__control/stripe/payment_intents` lists them.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use serde_json::{json, Map, Value};

use crate::common;
use crate::http::Response;

#[derive(Default)]
pub struct Cards {
    /// PaymentMethod → (customer, behaviour: "ok", "declined", "authentication_required").
    methods: HashMap<String, (String, String)>,
    /// Where events of API calls go (Stripe's endpoint): URL and its `whsec_…`.
    endpoint: Option<(String, String)>,
    /// PaymentIntents made, in order.
    intents: Vec<Value>,
}

pub fn cards() -> std::sync::MutexGuard<'static, Cards> {
    static CARDS: OnceLock<Mutex<Cards>> = OnceLock::new();
    CARDS.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner())
}

use crate::common::stripe_error as err;

fn missing(p: &str) -> Response {
    err(400, "invalid_request_error", &format!("Missing required param: {p}."), Some(p), Some("parameter_missing"))
}

/// `POST /v1/customers`.
pub fn customer(f: &Map<String, Value>, new_id: &dyn Fn(&str) -> String) -> Response {
    let id = new_id("cus");
    Response::json(
        200,
        &json!({ "id": id, "object": "customer", "created": common::now_secs(), "description": f.get("description"), "email": null,
            "invoice_settings": { "default_payment_method": null }, "livemode": false, "metadata": f.get("metadata").cloned().unwrap_or(json!({})) }),
    )
}

/// The events (type, object) of a completed setup-mode session, and the card it saved.
pub fn complete_setup(mut session: Value, form: &Map<String, Value>, card: &str, new_id: &dyn Fn(&str) -> String) -> (Vec<(&'static str, Value)>, Value) {
    let customer = session["customer"].as_str().map(str::to_string).unwrap_or_else(|| new_id("cus"));
    let pm = new_id("pm");
    let seti = new_id("seti");
    let behaviour = if card.is_empty() { "ok" } else { card };
    cards().methods.insert(pm.clone(), (customer.clone(), behaviour.to_string()));
    session["status"] = json!("complete");
    session["payment_status"] = json!("no_payment_required");
    session["customer"] = json!(customer);
    session["setup_intent"] = json!(seti);
    let metadata = form.get("setup_intent_data").and_then(|d| d.get("metadata")).cloned().unwrap_or(json!({}));
    let intent = json!({
        "id": seti, "object": "setup_intent", "application": null, "cancellation_reason": null, "client_secret": format!("{seti}_secret_mock"),
        "created": common::now_secs(), "customer": customer, "description": null, "last_setup_error": null, "livemode": false, "mandate": null,
        "metadata": metadata, "next_action": null, "payment_method": pm, "payment_method_types": ["card"], "status": "succeeded", "usage": "off_session",
    });
    (vec![("checkout.session.completed", session), ("setup_intent.succeeded", intent)], json!({ "customer": customer, "payment_method": pm, "setup_intent": seti }))
}

/// What `POST /v1/payment_intents` made: the answer, and the event Stripe sends after it
/// (type, object; with the endpoint to send it to, when one is registered).
pub struct Made {
    pub response: Response,
    pub event: Option<(&'static str, Value, (String, String))>,
    /// A paid intent: (id, charge, cents), for refunds and disputes.
    pub paid: Option<(String, String, u64)>,
}

/// `POST /v1/payment_intents`.
pub fn payment_intent(f: &Map<String, Value>, idempotency_key: Option<&str>, new_id: &dyn Fn(&str) -> String) -> Made {
    let plain = |response: Response| Made { response, event: None, paid: None };
    let s = |k: &str| f.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let Some(amount) = f.get("amount").and_then(Value::as_str).and_then(|a| a.parse::<u64>().ok()) else { return plain(missing("amount")) };
    if s("currency").is_empty() {
        return plain(missing("currency"));
    }
    let (customer, pm) = (s("customer"), s("payment_method"));
    let behaviour = {
        let c = cards();
        match c.methods.get(&pm) {
            Some((owner, b)) if *owner == customer => b.clone(),
            Some(_) => return plain(err(400, "invalid_request_error", &format!("The provided PaymentMethod {pm} does not belong to the Customer {customer}."), Some("payment_method"), Some("resource_missing"))),
            None => return plain(err(400, "invalid_request_error", &format!("No such PaymentMethod: '{pm}'"), Some("payment_method"), Some("resource_missing"))),
        }
    };
    if s("confirm") != "true" || s("off_session") != "true" {
        return plain(err(400, "invalid_request_error", "This mock makes off-session payments only: confirm=true and off_session=true.", Some("off_session"), None));
    }
    let id = new_id("pi");
    let charge = new_id("ch");
    let mut pi = json!({
        "id": id, "object": "payment_intent", "amount": amount, "amount_capturable": 0, "amount_received": 0, "capture_method": "automatic",
        "confirmation_method": "automatic", "created": common::now_secs(), "currency": s("currency"), "customer": customer, "description": f.get("description"),
        "last_payment_error": null, "latest_charge": charge, "livemode": false, "metadata": f.get("metadata").cloned().unwrap_or(json!({})),
        "payment_method": pm, "payment_method_types": ["card"], "status": "succeeded",
    });
    let declined = behaviour != "ok";
    let mut paid = None;
    let (status, body, ty) = if declined {
        let (code, message) = if behaviour == "authentication_required" {
            ("authentication_required", "Your card was declined. This transaction requires authentication.")
        } else {
            ("card_declined", "Your card was declined.")
        };
        let error = json!({ "charge": charge, "code": code, "decline_code": if code == "card_declined" { "generic_decline" } else { "authentication_required" },
            "doc_url": format!("https://stripe.com/docs/error-codes/{}", code.replace('_', "-")), "message": message, "payment_method": { "id": pm, "object": "payment_method", "type": "card" }, "type": "card_error" });
        pi["status"] = json!("requires_payment_method");
        pi["last_payment_error"] = error.clone();
        let mut e = error;
        e["payment_intent"] = pi.clone();
        (402, json!({ "error": e }), "payment_intent.payment_failed")
    } else {
        pi["amount_received"] = json!(amount);
        paid = Some((id.clone(), charge.clone(), amount));
        (200, pi.clone(), "payment_intent.succeeded")
    };
    let mut record = pi.clone();
    record["idempotency_key"] = json!(idempotency_key);
    let mut c = cards();
    c.intents.push(record);
    let event = c.endpoint.clone().map(|to| (ty, pi, to));
    Made { response: Response::json(status, &body), event, paid }
}

/// `POST /__control/stripe/endpoint {to, secret}`.
pub fn set_endpoint(body: &Value) -> Response {
    let to = body.get("to").and_then(Value::as_str).unwrap_or("").to_string();
    let secret = body.get("secret").and_then(Value::as_str).unwrap_or("").to_string();
    cards().endpoint = (!to.is_empty()).then_some((to, secret));
    Response::json(200, &json!({ "ok": true }))
}

/// `GET /__control/stripe/payment_intents`.
pub fn intents() -> Response {
    Response::json(200, &json!({ "data": cards().intents.clone() }))
}
