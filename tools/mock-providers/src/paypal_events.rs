//! PayPal's side of a payment: the webhook events a real account sends for a capture and what
//! later takes it back, in PayPal's documented shapes (fixtures/paypal/), signed the way this
//! mock's verify-webhook-signature checks (`paypal::expected_sig`) and posted to the URL the test
//! names, with PayPal's five `paypal-*` transmission headers.
//!
//! `POST /__control/paypal/<action>` with a JSON body; every action takes `to` (the webhook URL)
//! and `deliver` (default true; false only builds and remembers the event). Answers
//! `{"deliveries": [{event, delivered, status, body}], …ids}`.
//!
//! - `capture {custom_id, value}`: `PAYMENT.CAPTURE.COMPLETED` (resource: a capture).
//! - `refund {capture, value}`: `PAYMENT.CAPTURE.REFUNDED` (resource: a refund of `value`, its
//!   `seller_payable_breakdown.total_refunded_amount` everything refunded from the capture so
//!   far, linked to the capture by `rel: up`).
//! - `reverse {capture}`: `PAYMENT.CAPTURE.REVERSED` (a refund resource for the rest).
//! - `resend {event}`: delivers a made event again (as PayPal retries).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use serde_json::{json, Value};

use crate::common;
use crate::control::State;
use crate::deliver;
use crate::http::Response;

/// Capture id → (amount in cents, refunded so far).
fn captures() -> std::sync::MutexGuard<'static, HashMap<String, (u64, u64)>> {
    static C: OnceLock<Mutex<HashMap<String, (u64, u64)>>> = OnceLock::new();
    C.get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

fn new_id(len: usize) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let n =
        N.fetch_add(1, Ordering::Relaxed) ^ crate::request_log::now_ms().wrapping_mul(0x9e37_79b9);
    common::alnum(common::fnv1a(&n.to_le_bytes()), len).to_uppercase()
}

/// `"20.00"` → 2000.
fn cents(value: &str) -> Option<u64> {
    let (whole, frac) = value.split_once('.').unwrap_or((value, "0"));
    let frac = format!("{frac:0<2}");
    (frac.len() == 2).then_some(())?;
    Some(whole.parse::<u64>().ok()? * 100 + frac.parse::<u64>().ok()?)
}

fn usd(cents: u64) -> Value {
    json!({ "currency_code": "USD", "value": format!("{}.{:02}", cents / 100, cents % 100) })
}

fn event(ty: &str, resource_type: &str, summary: String, resource: Value) -> Value {
    let id = format!("WH-{}-{}", new_id(17), new_id(17));
    let href = format!("https://api.sandbox.paypal.com/v1/notifications/webhooks-events/{id}");
    let e = json!({
        "id": id, "event_version": "1.0", "create_time": common::rfc3339(common::now_secs()), "resource_type": resource_type,
        "resource_version": "2.0", "event_type": ty, "summary": summary, "resource": resource,
        "links": [{ "href": href, "rel": "self", "method": "GET" }, { "href": format!("{href}/resend"), "rel": "resend", "method": "POST" }],
    });
    deliver::remember(&id, &e);
    e
}

fn capture_resource(id: &str, cents_: u64, custom_id: &str) -> Value {
    let now = common::rfc3339(common::now_secs());
    let order = new_id(17);
    let fee = cents_ * 349 / 10_000 + 49;
    json!({
        "amount": usd(cents_), "seller_protection": { "dispute_categories": ["ITEM_NOT_RECEIVED", "UNAUTHORIZED_TRANSACTION"], "status": "ELIGIBLE" },
        "create_time": now, "custom_id": custom_id, "payee": { "email_address": "sb-merchant@business.example.com", "merchant_id": "QX7PLM2KD8R4J" },
        "supplementary_data": { "related_ids": { "order_id": order } }, "update_time": now, "final_capture": true,
        "seller_receivable_breakdown": { "paypal_fee": usd(fee), "gross_amount": usd(cents_), "net_amount": usd(cents_.saturating_sub(fee)) },
        "invoice_id": format!("inv_{}", new_id(8)),
        "links": [
            { "method": "GET", "rel": "self", "href": format!("https://api.sandbox.paypal.com/v2/payments/captures/{id}") },
            { "method": "POST", "rel": "refund", "href": format!("https://api.sandbox.paypal.com/v2/payments/captures/{id}/refund") },
            { "method": "GET", "rel": "up", "href": format!("https://api.sandbox.paypal.com/v2/checkout/orders/{order}") }
        ],
        "id": id, "status": "COMPLETED",
    })
}

fn refund_resource(capture: &str, amount: u64, total: u64, note: Option<&str>) -> Value {
    let now = common::rfc3339(common::now_secs());
    let id = new_id(17);
    let fee = amount * 3 / 100;
    let mut r = json!({
        "seller_payable_breakdown": { "gross_amount": usd(amount), "paypal_fee": usd(fee), "net_amount": usd(amount - fee), "total_refunded_amount": usd(total) },
        "amount": usd(amount), "update_time": now, "create_time": now,
        "links": [
            { "href": format!("https://api.sandbox.paypal.com/v2/payments/refunds/{id}"), "rel": "self", "method": "GET" },
            { "href": format!("https://api.sandbox.paypal.com/v2/payments/captures/{capture}"), "rel": "up", "method": "GET" }
        ],
        "id": id, "status": "COMPLETED",
    });
    if let Some(n) = note {
        r["note_to_payer"] = json!(n);
    }
    r
}

fn send(state: &State, body: &Value, events: Vec<Value>) -> Value {
    let to = body.get("to").and_then(Value::as_str).unwrap_or("");
    let go = body.get("deliver").and_then(Value::as_bool).unwrap_or(true);
    let out: Vec<Value> = events
        .iter()
        .map(|e| {
            let raw = e.to_string();
            let (tid, time) = (format!("{}-{}", new_id(8), new_id(12)).to_lowercase(), common::rfc3339(common::now_secs()));
            let sig = crate::paypal::expected_sig(&state.config.paypal_signing_secret, &tid, &time, &state.config.paypal_webhook_id, raw.as_bytes());
            let headers: Vec<(String, String)> = [
                ("content-type", "application/json".to_string()),
                ("paypal-auth-algo", "SHA256withRSA".to_string()),
                ("paypal-cert-url", "https://api.sandbox.paypal.com/v1/notifications/certs/CERT-360caa42-fca2a594-1d93a270".to_string()),
                ("paypal-transmission-id", tid),
                ("paypal-transmission-sig", sig),
                ("paypal-transmission-time", time),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
            deliver::report(e, go.then(|| deliver::post(to, &headers, raw.as_bytes())))
        })
        .collect();
    Value::Array(out)
}

fn bad(msg: &str) -> Response {
    Response::json(400, &json!({ "error": msg }))
}

/// `POST /__control/paypal/<action>`.
pub fn control(state: &State, action: &str, body: &Value) -> Response {
    let s = |k: &str| {
        body.get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let (events, extra) = match action {
        "capture" => {
            let Some(c) = cents(&s("value")) else {
                return bad("`value`: a USD amount like \"20.00\"");
            };
            let id = new_id(17);
            captures().insert(id.clone(), (c, 0));
            let e = event(
                "PAYMENT.CAPTURE.COMPLETED",
                "capture",
                format!("Payment completed for $ {}.{:02} USD", c / 100, c % 100),
                capture_resource(&id, c, &s("custom_id")),
            );
            (vec![e], json!({ "capture": id }))
        }
        "refund" | "reverse" => {
            let capture = s("capture");
            let mut all = captures();
            let Some(entry) = all.get_mut(&capture) else {
                return bad("no such capture");
            };
            let amount = if action == "reverse" {
                entry.0 - entry.1
            } else {
                cents(&s("value")).unwrap_or(0).min(entry.0 - entry.1)
            };
            if amount == 0 {
                return bad("nothing left to refund");
            }
            entry.1 += amount;
            let total = entry.1;
            drop(all);
            let e = if action == "reverse" {
                event(
                    "PAYMENT.CAPTURE.REVERSED",
                    "refund",
                    format!(
                        "A $ {}.{:02} USD capture payment was reversed",
                        amount / 100,
                        amount % 100
                    ),
                    refund_resource(&capture, amount, total, Some("Payment reversed")),
                )
            } else {
                event(
                    "PAYMENT.CAPTURE.REFUNDED",
                    "refund",
                    format!(
                        "A $ {}.{:02} USD capture payment was refunded",
                        amount / 100,
                        amount % 100
                    ),
                    refund_resource(&capture, amount, total, None),
                )
            };
            (vec![e], json!({ "refunded_cents": total }))
        }
        "resend" => match deliver::recall(&s("event")) {
            Some(e) => (vec![e], json!({})),
            None => return bad("no such event"),
        },
        _ => return Response::json(404, &json!({ "error": "unknown paypal action" })),
    };
    let mut answer = extra;
    answer["deliveries"] = send(state, body, events);
    Response::json(200, &answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys_of(want: &Value, got: &Value, at: &str) {
        if let (Some(w), Some(g)) = (
            want.as_array().and_then(|a| a.first()),
            got.as_array().and_then(|a| a.first()),
        ) {
            keys_of(w, g, &format!("{at}[0]"));
        }
        if let (Some(w), Some(g)) = (want.as_object(), got.as_object()) {
            for (k, v) in w {
                assert!(g.contains_key(k), "{at}.{k} missing");
                keys_of(v, &g[k], &format!("{at}.{k}"));
            }
        }
    }

    #[test]
    fn events_have_the_fixtures_shapes() {
        let fx = |s: &str| serde_json::from_str::<Value>(s).unwrap_or_default();
        keys_of(
            &fx(include_str!(
                "../../../fixtures/paypal/payment.capture.completed.json"
            )),
            &event(
                "PAYMENT.CAPTURE.COMPLETED",
                "capture",
                String::new(),
                capture_resource("C1", 2000, "key_1"),
            ),
            "completed",
        );
        keys_of(
            &fx(include_str!(
                "../../../fixtures/paypal/payment.capture.refunded.json"
            )),
            &event(
                "PAYMENT.CAPTURE.REFUNDED",
                "refund",
                String::new(),
                refund_resource("C1", 500, 1500, None),
            ),
            "refunded",
        );
        keys_of(
            &fx(include_str!(
                "../../../fixtures/paypal/payment.capture.reversed.json"
            )),
            &event(
                "PAYMENT.CAPTURE.REVERSED",
                "refund",
                String::new(),
                refund_resource("C1", 2000, 2000, Some("x")),
            ),
            "reversed",
        );
        assert_eq!(
            (cents("20.00"), cents("5"), cents("0.5"), cents("1.005")),
            (Some(2000), Some(500), Some(50), None)
        );
        assert_eq!(usd(1505)["value"], "15.05");
    }
}
