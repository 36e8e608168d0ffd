//! Stripe's side of a payment after Checkout: the events a real account would send, built in
//! Stripe's documented shapes (API version 2025-06-30.basil, as fixtures/stripe/), signed with
//! the endpoint's secret (`Stripe-Signature: t=…,v1=…`) and posted to the URL the test names.
//!
//! `POST /__control/stripe/<action>` with a JSON body; every action takes `to` (the webhook URL),
//! `secret` (its `whsec_…`) and `deliver` (default true; false only builds and remembers the
//! events, for deliveries out of order). Answers `{"deliveries": [{event, delivered, status,
//! body}], …ids}`.
//!
//! - `complete {session}`: the buyer paid a session made by `POST /v1/checkout/sessions`.
//!   Payment mode: `checkout.session.completed` (`payment_status: paid`, a `pi_…`). Subscription
//!   mode: `checkout.session.completed` (with `customer`, `subscription`), then `invoice.paid`
//!   (`billing_reason: subscription_create`, a line billing the session's price).
//!   Setup mode: `crate::stripe_offsession` (`card`: `declined`, `authentication_required`).
//! - `refund {payment_intent, amount}`: `charge.refunded` (`amount_refunded` cumulative).
//! - `dispute {payment_intent, type, status?, amount?}`: `charge.dispute.<type>` (created,
//!   updated, closed, funds_withdrawn, funds_reinstated) of the payment's one dispute.
//! - `portal_switch {portal_session, price}`: the customer of a Billing Portal session switches
//!   their subscription to `price` half-way through the period, with the portal set to invoice
//!   prorations at once (`always_invoice`): `customer.subscription.updated`, then `invoice.paid`
//!   (`billing_reason: subscription_update`; a credit line for the unused half of the old price,
//!   a debit line for the new one's; a negative total goes to the customer's balance, paid 0).
//! - `cycle {subscription}`: the next period: `invoice.paid` (`subscription_cycle`, the current
//!   price, paid first from the customer's balance).
//! - `resend {event}`: delivers a made event again (as Stripe retries).
//!
//! Prices cost what `stripe::price_cents` says (`price_…_<cents>`, else 2000).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use hmac::{Hmac, Mac};
use serde_json::{json, Map, Value};
use sha2::Sha256;

use crate::common;
use crate::deliver;
use crate::http::Response;

#[derive(Default)]
struct Account {
    /// Checkout sessions as answered, and the form they were made from.
    sessions: HashMap<String, (Value, Map<String, Value>)>,
    /// Payment intent → (charge, amount paid, refunded so far, dispute id).
    payments: HashMap<String, (String, u64, u64, Option<String>)>,
    /// Subscription → (customer, price, metadata).
    subs: HashMap<String, (String, String, Value)>,
    /// Billing Portal session → customer.
    portals: HashMap<String, String>,
    /// Customer → Stripe balance in cents (negative: credit towards the next invoices).
    balances: HashMap<String, i64>,
}

fn account() -> std::sync::MutexGuard<'static, Account> {
    static ACCOUNT: OnceLock<Mutex<Account>> = OnceLock::new();
    ACCOUNT
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

pub fn new_id(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let n =
        N.fetch_add(1, Ordering::Relaxed) ^ crate::request_log::now_ms().wrapping_mul(0x9e37_79b9);
    format!(
        "{prefix}_{}",
        common::alnum(common::fnv1a(&n.to_le_bytes()), 24)
    )
}

/// Called by `POST /v1/checkout/sessions`: the session, for `complete`.
pub fn remember_session(session: &Value, form: &Map<String, Value>) {
    if let Some(id) = session.get("id").and_then(Value::as_str) {
        account()
            .sessions
            .insert(id.to_string(), (session.clone(), form.clone()));
    }
}

/// Called by `POST /v1/payment_intents` (`crate::stripe_offsession`): a paid intent, for `refund`
/// and `dispute`.
pub fn remember_payment(payment_intent: &str, charge: &str, cents: u64) {
    account().payments.insert(payment_intent.to_string(), (charge.to_string(), cents, 0, None));
}

/// The event an API call leads to (`payment_intent.*`), posted signed to the registered
/// endpoint shortly after the call is answered, as Stripe does.
pub fn emit_later(ty: &str, object: Value, to: String, secret: String) {
    let e = event(ty, object);
    std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(150));
        send(&json!({ "to": to, "secret": secret }), vec![e]);
    });
}

/// Called by `POST /v1/billing_portal/sessions`.
pub fn remember_portal(portal_session: &str, customer: &str) {
    account()
        .portals
        .insert(portal_session.to_string(), customer.to_string());
}

/// Stripe's `Stripe-Signature` for `payload` at `t`.
pub fn signature(secret: &str, t: u64, payload: &[u8]) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(format!("{t}.").as_bytes());
    mac.update(payload);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

pub fn event(ty: &str, object: Value) -> Value {
    let e = json!({
        "id": new_id("evt"), "object": "event", "api_version": "2025-06-30.basil", "created": common::now_secs(),
        "data": { "object": object }, "livemode": false, "pending_webhooks": 1,
        "request": { "id": null, "idempotency_key": null }, "type": ty,
    });
    deliver::remember(e["id"].as_str().unwrap_or(""), &e);
    e
}

fn send(body: &Value, events: Vec<Value>) -> Value {
    let to = body.get("to").and_then(Value::as_str).unwrap_or("");
    let secret = body.get("secret").and_then(Value::as_str).unwrap_or("");
    let go = body.get("deliver").and_then(Value::as_bool).unwrap_or(true);
    let out: Vec<Value> = events
        .iter()
        .map(|e| {
            let payload = e.to_string();
            let headers = vec![
                (
                    "content-type".to_string(),
                    "application/json; charset=utf-8".to_string(),
                ),
                (
                    "user-agent".to_string(),
                    "Stripe/1.0 (+https://stripe.com/docs/webhooks)".to_string(),
                ),
                (
                    "stripe-signature".to_string(),
                    signature(secret, common::now_secs(), payload.as_bytes()),
                ),
            ];
            deliver::report(
                e,
                go.then(|| deliver::post(to, &headers, payload.as_bytes())),
            )
        })
        .collect();
    Value::Array(out)
}

fn price_cents(price: &str) -> u64 {
    price
        .rsplit_once('_')
        .and_then(|(_, n)| n.parse().ok())
        .unwrap_or(2000)
}

fn line(sub: &str, price: &str, amount: i64, proration: bool) -> Value {
    let now = common::now_secs();
    json!({
        "id": new_id("il"), "object": "line_item", "amount": amount, "currency": "usd",
        "description": if proration { format!("{} time on {price}", if amount < 0 { "Unused" } else { "Remaining" }) } else { format!("1 × {price}") },
        "discount_amounts": [], "discountable": !proration, "discounts": [], "livemode": false, "metadata": {},
        "parent": { "invoice_item_details": null, "subscription_item_details": { "invoice_item": null, "proration": proration,
            "proration_details": { "credited_items": null }, "subscription": sub, "subscription_item": "si_mock" }, "type": "subscription_item_details" },
        "period": { "end": now + 2_592_000, "start": now },
        "pretax_credit_amounts": [],
        "pricing": { "price_details": { "price": price, "product": "prod_mock" }, "type": "price_details", "unit_amount_decimal": amount.to_string() },
        "quantity": 1, "taxes": [],
    })
}

/// An `invoice.paid` of `lines`, paid first from the customer's balance.
fn invoice(a: &mut Account, sub: &str, reason: &str, lines: Vec<Value>) -> Value {
    let (customer, _, metadata) = a.subs.get(sub).cloned().unwrap_or_default();
    let total: i64 = lines.iter().filter_map(|l| l["amount"].as_i64()).sum();
    let starting = a.balances.get(&customer).copied().unwrap_or(0);
    let due = (total + starting).max(0);
    a.balances
        .insert(customer.clone(), (starting + total).min(0));
    let pi = (due > 0).then(|| new_id("pi"));
    if let Some(pi) = &pi {
        a.payments
            .insert(pi.clone(), (new_id("ch"), due as u64, 0, None));
    }
    let id = new_id("in");
    let now = common::now_secs();
    let payments: Vec<Value> = pi
        .iter()
        .map(|pi| json!({ "id": new_id("inpay"), "object": "invoice_payment", "amount_paid": due, "amount_requested": due, "created": now, "currency": "usd", "invoice": id,
            "is_default": true, "livemode": false, "payment": { "payment_intent": pi, "type": "payment_intent" }, "status": "paid",
            "status_transitions": { "canceled_at": null, "paid_at": now } }))
        .collect();
    let lines: Vec<Value> = lines
        .into_iter()
        .map(|mut l| {
            l["invoice"] = json!(id);
            l
        })
        .collect();
    let (n_lines, n_payments) = (lines.len(), payments.len());
    json!({
        "id": id, "object": "invoice", "amount_due": due, "amount_paid": due, "amount_remaining": 0, "attempt_count": 1, "attempted": true,
        "billing_reason": reason, "collection_method": "charge_automatically", "created": common::now_secs(), "currency": "usd", "customer": customer,
        "ending_balance": (starting + total).min(0), "starting_balance": starting,
        "lines": { "object": "list", "data": lines, "has_more": false, "total_count": n_lines, "url": format!("/v1/invoices/{id}/lines") },
        "livemode": false, "metadata": {},
        "parent": { "quote_details": null, "subscription_details": { "metadata": metadata, "subscription": sub }, "type": "subscription_details" },
        "payments": { "object": "list", "data": payments, "has_more": false, "total_count": n_payments, "url": "/v1/invoice_payments" },
        "status": "paid", "subtotal": total, "total": total, "total_taxes": [],
    })
}

fn subscription_object(a: &Account, sub: &str) -> Value {
    let (customer, price, metadata) = a.subs.get(sub).cloned().unwrap_or_default();
    json!({
        "id": sub, "object": "subscription", "customer": customer, "status": "active", "metadata": metadata, "livemode": false,
        "items": { "object": "list", "data": [{ "id": "si_mock", "object": "subscription_item", "quantity": 1,
            "price": { "id": price, "object": "price", "currency": "usd", "unit_amount": price_cents(&price), "recurring": { "interval": "month", "interval_count": 1 } } }] },
    })
}

fn dispute_object(pi: &str, dispute: &str, charge: &str, amount: u64, status: &str) -> Value {
    json!({
        "id": dispute, "object": "dispute", "amount": amount, "balance_transactions": [], "charge": charge, "created": common::now_secs(), "currency": "usd",
        "enhanced_eligibility_types": [], "evidence": {},
        "evidence_details": { "due_by": common::now_secs() + 864_000, "enhanced_eligibility": {}, "has_evidence": false, "past_due": false, "submission_count": 0 },
        "is_charge_refundable": false, "livemode": false, "metadata": {}, "payment_intent": pi,
        "payment_method_details": { "card": { "brand": "visa", "case_type": "chargeback", "network_reason_code": "10.4" }, "type": "card" },
        "reason": "fraudulent", "status": status,
    })
}

fn bad(msg: &str) -> Response {
    Response::json(400, &json!({ "error": msg }))
}

fn s<'a>(body: &'a Value, k: &str) -> &'a str {
    body.get(k).and_then(Value::as_str).unwrap_or("")
}

/// `POST /__control/stripe/<action>`.
pub fn control(action: &str, body: &Value) -> Response {
    let mut a = account();
    let (events, extra) = match action {
        "complete" => {
            let Some((mut session, form)) = a.sessions.get(s(body, "session")).cloned() else {
                return bad("no such checkout session");
            };
            if session["mode"] == "setup" {
                drop(a);
                let (made, extra) = crate::stripe_offsession::complete_setup(session, &form, s(body, "card"), &new_id);
                let events = made.into_iter().map(|(ty, o)| event(ty, o)).collect();
                let mut answer = extra;
                answer["deliveries"] = send(body, events);
                return Response::json(200, &answer);
            }
            let customer = new_id("cus");
            session["status"] = json!("complete");
            session["payment_status"] = json!("paid");
            session["customer"] = json!(customer);
            if session["mode"] == "subscription" {
                let sub = new_id("sub");
                let price = form
                    .get("line_items")
                    .and_then(|l| l.pointer("/0/price"))
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                let metadata = form
                    .get("subscription_data")
                    .and_then(|d| d.get("metadata"))
                    .cloned()
                    .unwrap_or(json!({}));
                a.subs
                    .insert(sub.clone(), (customer.clone(), price.clone(), metadata));
                session["subscription"] = json!(sub);
                let first = invoice(
                    &mut a,
                    &sub,
                    "subscription_create",
                    vec![line(&sub, &price, price_cents(&price) as i64, false)],
                );
                (
                    vec![
                        event("checkout.session.completed", session),
                        event("invoice.paid", first),
                    ],
                    json!({ "subscription": sub, "customer": customer }),
                )
            } else {
                let pi = new_id("pi");
                let amount = session["amount_total"].as_u64().unwrap_or(0);
                a.payments
                    .insert(pi.clone(), (new_id("ch"), amount, 0, None));
                session["payment_intent"] = json!(pi);
                (
                    vec![event("checkout.session.completed", session)],
                    json!({ "payment_intent": pi, "customer": customer }),
                )
            }
        }
        "refund" => {
            let pi = s(body, "payment_intent").to_string();
            let Some(p) = a.payments.get_mut(&pi) else {
                return bad("no such payment intent");
            };
            p.2 = (p.2 + body.get("amount").and_then(Value::as_u64).unwrap_or(p.1)).min(p.1);
            let charge = json!({ "id": p.0, "object": "charge", "amount": p.1, "amount_captured": p.1, "amount_refunded": p.2, "captured": true, "currency": "usd",
                "livemode": false, "paid": true, "payment_intent": pi, "refunded": p.2 == p.1, "status": "succeeded" });
            (vec![event("charge.refunded", charge)], json!({}))
        }
        "dispute" => {
            let pi = s(body, "payment_intent").to_string();
            let Some(p) = a.payments.get_mut(&pi) else {
                return bad("no such payment intent");
            };
            let dispute = p.3.get_or_insert_with(|| new_id("dp")).clone();
            let ty = s(body, "type");
            let default = match ty {
                "funds_reinstated" => "won",
                "created" | "funds_withdrawn" | "updated" => "needs_response",
                "closed" => "",
                _ => return bad("`type`: created, updated, closed (with `status`), funds_withdrawn or funds_reinstated"),
            };
            let status = body.get("status").and_then(Value::as_str).unwrap_or(default);
            if status.is_empty() {
                return bad("a closed dispute needs its `status` (won, lost, warning_closed, …)");
            }
            let amount = body.get("amount").and_then(Value::as_u64).unwrap_or(p.1);
            (
                vec![event(
                    &format!("charge.dispute.{ty}"),
                    dispute_object(&pi, &dispute, &p.0, amount, status),
                )],
                json!({ "dispute": dispute }),
            )
        }
        "portal_switch" => {
            let Some(customer) = a.portals.get(s(body, "portal_session")).cloned() else {
                return bad("no such billing portal session");
            };
            let Some((sub, (_, old, _))) = a
                .subs
                .iter()
                .find(|(_, (c, _, _))| *c == customer)
                .map(|(k, v)| (k.clone(), v.clone()))
            else {
                return bad("the customer has no subscription");
            };
            let new = s(body, "price").to_string();
            if let Some(entry) = a.subs.get_mut(&sub) {
                entry.1 = new.clone();
            }
            let lines = vec![
                line(&sub, &old, -(price_cents(&old) as i64) / 2, true),
                line(&sub, &new, price_cents(&new) as i64 / 2, true),
            ];
            let updated = event(
                "customer.subscription.updated",
                subscription_object(&a, &sub),
            );
            let proration = invoice(&mut a, &sub, "subscription_update", lines);
            (
                vec![updated, event("invoice.paid", proration)],
                json!({ "subscription": sub }),
            )
        }
        "cycle" => {
            let sub = s(body, "subscription").to_string();
            let Some((_, price, _)) = a.subs.get(&sub).cloned() else {
                return bad("no such subscription");
            };
            let renewal = invoice(
                &mut a,
                &sub,
                "subscription_cycle",
                vec![line(&sub, &price, price_cents(&price) as i64, false)],
            );
            (vec![event("invoice.paid", renewal)], json!({}))
        }
        "resend" => match deliver::recall(s(body, "event")) {
            Some(e) => (vec![e], json!({})),
            None => return bad("no such event"),
        },
        _ => return Response::json(404, &json!({ "error": "unknown stripe action" })),
    };
    drop(a);
    let mut answer = extra;
    answer["deliveries"] = send(body, events);
    Response::json(200, &answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every key of `want` (a fixture) is in `got`, recursively into objects.
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
                if ![
                    "evidence",
                    "evidence_details",
                    "metadata",
                    "payment_method_details",
                    "balance_transactions",
                ]
                .contains(&k.as_str())
                {
                    keys_of(v, &g[k], &format!("{at}.{k}"));
                }
            }
        }
    }

    #[test]
    fn dispute_events_have_the_fixtures_shape() {
        let fixture: Value = serde_json::from_str(include_str!(
            "../../../fixtures/stripe/charge.dispute.created.json"
        ))
        .unwrap_or_default();
        let made = event(
            "charge.dispute.created",
            dispute_object("pi_1", "dp_1", "ch_1", 2000, "needs_response"),
        );
        keys_of(&fixture, &made, "event");
    }

    #[test]
    fn renewals_have_the_fixtures_shape_and_use_the_customer_balance_first() {
        let mut a = Account::default();
        a.subs.insert(
            "sub_1".into(),
            (
                "cus_1".into(),
                "price_pro_2000".into(),
                json!({"key_id": "key_1"}),
            ),
        );
        a.balances.insert("cus_1".into(), -1500);
        let inv = invoice(
            &mut a,
            "sub_1",
            "subscription_cycle",
            vec![line("sub_1", "price_pro_2000", 2000, false)],
        );
        assert_eq!(
            (
                inv["total"].as_i64(),
                inv["amount_paid"].as_i64(),
                inv["starting_balance"].as_i64()
            ),
            (Some(2000), Some(500), Some(-1500))
        );
        assert_eq!(a.balances["cus_1"], 0);
        let fixture: Value = serde_json::from_str(include_str!(
            "../../../fixtures/stripe/invoice.paid.subscription_cycle.json"
        ))
        .unwrap_or_default();
        let made = event("invoice.paid", inv);
        let mut want = fixture.clone();
        // Fields of the fixture the mock leaves out: display and document fields.
        if let Some(o) = want["data"]["object"].as_object_mut() {
            for k in [
                "account_country",
                "account_name",
                "amount_overpaid",
                "amount_shipping",
                "auto_advance",
                "automatic_tax",
                "customer_email",
                "default_payment_method",
                "description",
                "discounts",
                "hosted_invoice_url",
                "invoice_pdf",
                "number",
                "period_end",
                "period_start",
                "status_transitions",
                "subtotal_excluding_tax",
                "total_discount_amounts",
                "total_excluding_tax",
            ] {
                o.remove(k);
            }
        }
        keys_of(&want, &made, "event");
        assert_eq!(signature("whsec_x", 1, b"{}").len(), "t=1,v1=".len() + 64);
    }
}
