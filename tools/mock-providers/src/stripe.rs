//! Stripe's API, the parts the gateway calls: `POST /stripe/v1/checkout/sessions` and
//! `POST /stripe/v1/billing_portal/sessions` (also without the `/stripe` prefix, as Stripe's own
//! paths, so the official `stripe` library can be pointed at the mock's host and port), as Stripe
//! answers them (checked against that library in tests/mock-providers.test.mjs).
//!
//! - Auth: `Authorization: Bearer <MOCK_STRIPE_SECRET_KEY>` (default `sk_test_local_stripe`),
//!   else 401 with Stripe's error body. Bodies are `application/x-www-form-urlencoded` with
//!   bracketed keys (`line_items[0][price_data][unit_amount]=2000`).
//! - Checkout: `mode` (`payment` or `subscription`), `success_url` and `line_items` are required
//!   (400 `parameter_missing` naming the param); the session is `open`/`unpaid` with a
//!   `cs_test_…` id, a `url`, the amounts (a `price_…` costs 2000 cents unless the id ends in
//!   `_<cents>`), `client_reference_id` and `metadata` as sent.
//! - `Idempotency-Key`: a repeat with the same body answers the first answer again (with
//!   `Idempotent-Replayed: true`); with another body, 400 `idempotency_error`.
//! - Billing Portal: `customer` required; answers a `bps_…` session with a `url`.
//! - `GET /stripe/checkout/<id>`, `/stripe/billing/<id>`: the hosted pages those `url`s name.
//! - Scripts (provider `stripe`): `status`/`body` override as for the other providers.
//! - What happens next (the buyer pays, refunds, disputes, plan switches in the portal, renewals)
//!   is sent as webhook events by [`crate::stripe_events`].

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, OnceLock};

use serde_json::{json, Map, Value};

use crate::common;
use crate::control::State;
use crate::http::{url_decode, Request, Response};

/// Idempotency keys remembered (oldest dropped first past this).
const IDEMPOTENCY_KEPT: usize = 10_000;

/// Idempotency key → (the body sent, the answer's status, the answer's body), and their order.
#[derive(Default)]
struct Replays {
    answers: HashMap<String, (String, u16, String)>,
    order: Vec<String>,
}

fn replays() -> &'static Mutex<Replays> {
    static CACHE: OnceLock<Mutex<Replays>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

use crate::common::stripe_error as error;

pub fn error_for_status(status: u16) -> Response {
    match status {
        401 => error(401, "invalid_request_error", "Invalid API Key provided", None, None),
        402 => error(402, "card_error", "Your card was declined.", None, Some("card_declined")),
        429 => error(429, "rate_limit_error", "Too many requests hit the API too quickly.", None, Some("rate_limit")),
        s if s >= 500 => error(s, "api_error", "An unknown error occurred", None, None),
        s => error(s, "invalid_request_error", "Invalid request", None, None),
    }
}

/// `a[b][0][c]=v` pairs → nested JSON (numeric keys stay object keys: enough to read them back).
fn form(body: &str) -> Map<String, Value> {
    let mut root = Map::new();
    for pair in body.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (k, v) = (url_decode(&k.replace('+', " ")), url_decode(&v.replace('+', " ")));
        let mut path: Vec<String> = Vec::new();
        let (head, rest) = k.split_once('[').map_or((k.as_str(), ""), |(h, r)| (h, r));
        path.push(head.to_string());
        path.extend(rest.split('[').filter(|s| !s.is_empty()).map(|s| s.trim_end_matches(']').to_string()));
        let mut node = &mut root;
        for (i, seg) in path.iter().enumerate() {
            if i + 1 == path.len() {
                node.insert(seg.clone(), Value::String(v.clone()));
            } else {
                let next = node.entry(seg.clone()).or_insert_with(|| Value::Object(Map::new()));
                if !next.is_object() {
                    *next = Value::Object(Map::new());
                }
                let Some(obj) = next.as_object_mut() else { break };
                node = obj;
            }
        }
    }
    root
}

fn id(prefix: &str, seq: u64) -> String {
    format!("{prefix}_test_{}", common::alnum(common::fnv1a(&seq.to_le_bytes()), 24))
}

fn price_cents(price_id: &str) -> u64 {
    price_id.rsplit_once('_').and_then(|(_, n)| n.parse().ok()).unwrap_or(2000)
}

fn checkout(state: &State, f: &Map<String, Value>, seq: u64) -> Response {
    let s = |k: &str| f.get(k).and_then(Value::as_str).map(str::to_string);
    let Some(mode) = s("mode") else { return error(400, "invalid_request_error", "Missing required param: mode.", Some("mode"), Some("parameter_missing")) };
    if !["payment", "subscription", "setup"].contains(&mode.as_str()) {
        return error(400, "invalid_request_error", &format!("Invalid mode: {mode}"), Some("mode"), Some("parameter_invalid_string"));
    }
    let Some(success_url) = s("success_url") else {
        return error(400, "invalid_request_error", "Missing required param: success_url.", Some("success_url"), Some("parameter_missing"))
    };
    let items: BTreeMap<String, Value> = f.get("line_items").and_then(Value::as_object).map(|m| m.clone().into_iter().collect()).unwrap_or_default();
    if mode == "setup" && !items.is_empty() {
        return error(400, "invalid_request_error", "You cannot pass `line_items` in `setup` mode.", Some("line_items"), Some("parameter_unknown"));
    }
    if mode == "setup" && s("currency").is_none() {
        return error(400, "invalid_request_error", "Missing required param: currency.", Some("currency"), Some("parameter_missing"));
    }
    if items.is_empty() && mode != "setup" {
        return error(400, "invalid_request_error", "Missing required param: line_items.", Some("line_items"), Some("parameter_missing"));
    }
    let mut total = 0u64;
    for item in items.values() {
        let qty: u64 = item.get("quantity").and_then(Value::as_str).and_then(|q| q.parse().ok()).unwrap_or(1);
        let unit = match (item.pointer("/price_data/unit_amount").and_then(Value::as_str), item.get("price").and_then(Value::as_str)) {
            (Some(a), _) => a.parse::<u64>().ok(),
            (None, Some(p)) if p.starts_with("price_") => Some(price_cents(p)),
            _ => None,
        };
        let Some(unit) = unit else {
            return error(400, "invalid_request_error", "You must specify either `price` or `price_data` for each line item.", Some("line_items"), Some("parameter_missing"));
        };
        total += unit * qty;
    }
    let session_id = id("cs", seq);
    let body = json!({
        "id": session_id,
        "object": "checkout.session",
        "amount_subtotal": total,
        "amount_total": total,
        "cancel_url": s("cancel_url"),
        "client_reference_id": s("client_reference_id"),
        "currency": s("currency").unwrap_or_else(|| "usd".into()),
        "customer": s("customer"),
        "livemode": false,
        "metadata": f.get("metadata").cloned().unwrap_or(json!({})),
        "mode": mode,
        "payment_intent": null,
        "payment_status": if mode == "setup" { "no_payment_required" } else { "unpaid" },
        "status": "open",
        "subscription": null,
        "success_url": success_url,
        "url": format!("http://127.0.0.1:{}/stripe/checkout/{session_id}", state.config.port),
    });
    crate::stripe_events::remember_session(&body, f);
    Response::json(200, &body)
}

fn portal(state: &State, f: &Map<String, Value>, seq: u64) -> Response {
    let Some(customer) = f.get("customer").and_then(Value::as_str) else {
        return error(400, "invalid_request_error", "Missing required param: customer.", Some("customer"), Some("parameter_missing"));
    };
    let sid = id("bps", seq);
    crate::stripe_events::remember_portal(&sid, customer);
    Response::json(
        200,
        &json!({
            "id": sid, "object": "billing_portal.session", "customer": customer, "livemode": false,
            "return_url": f.get("return_url"), "url": format!("http://127.0.0.1:{}/stripe/billing/{sid}", state.config.port),
        }),
    )
}

pub fn handle(state: &State, req: &Request) -> Response {
    let seq = state.next_seq();
    // The hosted pages a session's `url` points at (Stripe's are on checkout.stripe.com and
    // billing.stripe.com): a browser following it lands on a page, as with Stripe.
    if req.method == "GET" && (req.path.starts_with("/stripe/checkout/") || req.path.starts_with("/stripe/billing/")) {
        let what = if req.path.starts_with("/stripe/checkout/") { "Checkout" } else { "Billing Portal" };
        let page = format!("<!doctype html><title>Stripe {what} (mock)</title><link rel=\"icon\" href=\"data:,\"><h1>Stripe {what} (mock)</h1><p>{}</p>", req.path);
        return Response::new(200, "text/html; charset=utf-8", page.into_bytes());
    }
    let key = req.header("authorization").and_then(|a| a.strip_prefix("Bearer ")).unwrap_or("");
    if key != state.config.stripe_secret_key {
        let shown = if key.len() > 8 { format!("{}****{}", &key[..8], &key[key.len() - 4..]) } else { "****".into() };
        return error(401, "invalid_request_error", &format!("Invalid API Key provided: {shown}"), None, None);
    }
    if let Some(s) = state.take_script("stripe").filter(|s| s.is_override()) {
        return s.override_response(error_for_status);
    }
    let body = req.body_str();
    let idem = req.header("idempotency-key").map(|k| format!("{} {}", req.path, k));
    if let Some(k) = &idem {
        let cache = replays().lock().unwrap_or_else(|e| e.into_inner());
        if let Some((sent, status, answer)) = cache.answers.get(k) {
            if *sent != body {
                return error(400, "idempotency_error", "Keys for idempotent requests can only be used with the same parameters they were first used with.", None, None);
            }
            return Response::json_bytes(*status, answer.clone().into_bytes()).header("idempotent-replayed", "true");
        }
    }
    let f = form(&body);
    let resp = match (req.method.as_str(), req.path.strip_prefix("/stripe").unwrap_or(&req.path)) {
        ("POST", "/v1/checkout/sessions") => checkout(state, &f, seq),
        ("POST", "/v1/billing_portal/sessions") => portal(state, &f, seq),
        ("POST", "/v1/customers") => crate::stripe_offsession::customer(&f, &crate::stripe_events::new_id),
        ("POST", "/v1/payment_intents") => {
            let made = crate::stripe_offsession::payment_intent(&f, req.header("idempotency-key"), &crate::stripe_events::new_id);
            if let Some((pi, charge, cents)) = &made.paid {
                crate::stripe_events::remember_payment(pi, charge, *cents);
            }
            if let Some((ty, object, (to, secret))) = made.event {
                crate::stripe_events::emit_later(ty, object, to, secret);
            }
            made.response
        }
        _ => return error(404, "invalid_request_error", &format!("Unrecognized request URL ({} {}).", req.method, req.path), None, None),
    };
    if let (Some(k), crate::http::Body::Full(bytes)) = (idem, &resp.body) {
        let mut cache = replays().lock().unwrap_or_else(|e| e.into_inner());
        cache.answers.insert(k.clone(), (body, resp.status, String::from_utf8_lossy(bytes).into_owned()));
        cache.order.push(k);
        if cache.order.len() > IDEMPOTENCY_KEPT {
            let old = cache.order.remove(0);
            cache.answers.remove(&old);
        }
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bracketed_forms_nest() {
        let f = form("mode=payment&line_items%5B0%5D%5Bprice_data%5D%5Bunit_amount%5D=2000&metadata[key_id]=key_1&a+b=c+d");
        assert_eq!(f["mode"], "payment");
        assert_eq!(f["line_items"]["0"]["price_data"]["unit_amount"], "2000");
        assert_eq!(f["metadata"]["key_id"], "key_1");
        assert_eq!(f["a b"], "c d");
    }

    #[test]
    fn prices_carry_their_cents() {
        assert_eq!(price_cents("price_pro_monthly"), 2000);
        assert_eq!(price_cents("price_pro_4900"), 4900);
    }
}
