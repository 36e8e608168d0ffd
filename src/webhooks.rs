//! Payment webhooks. Stripe: signature checked in core, credit once per event id and per
//! checkout session id in one atomic script. PayPal: verified by PayPal's own
//! verify-webhook-signature API, credited once per event id and per capture id.

use crate::app::App;
use crate::fetch::{self, Outbound};
use crate::http::{json, HandlerResult};
use broker_core::error::{ApiError, ErrorKind};
use broker_core::keys;
use broker_core::money::{credits_json, Decimal};
use broker_core::scripts::{self, ledger_fragment, ClawbackReply, CreditReply};
use broker_core::stripe::{self, KeyRef, StripeAction};
use serde_json::{json, Value};
use worker::{console_log, Request};

fn ack(extra: Value) -> HandlerResult {
    let mut v = json!({ "received": true });
    if let (Some(o), Value::Object(e)) = (v.as_object_mut(), extra) {
        o.extend(e);
    }
    Ok(json(200, &v, &[]))
}

/// A payment that was received but could not be credited (no known key, no conversion): kept in
/// `abk:unmatched_payments` (one field per source event, so replays do not repeat it) for admins
/// (`GET /admin/unmatched-payments`), since Stripe and PayPal will not retry an acknowledged event.
async fn record_unmatched(app: &App, source: &str, event_id: &str, details: Value) -> HandlerResult {
    let reason = details.get("reason").cloned().unwrap_or(Value::Null);
    note_unmatched(app, source, event_id, details).await?;
    ack(json!({ "credited": false, "unmatched": true, "reason": reason }))
}

async fn note_unmatched(app: &App, source: &str, event_id: &str, details: Value) -> Result<(), ApiError> {
    let mut entry = json!({ "ts": app.now_ms, "source": source, "event_id": event_id, "request_id": app.request_id });
    if let (Some(o), Value::Object(d)) = (entry.as_object_mut(), details) {
        o.extend(d);
    }
    console_log!("{} UNMATCHED {source} payment {event_id}: {entry}", app.request_id);
    app.redis()?
        .command(&[json!("HSET"), json!("abk:unmatched_payments"), json!(format!("{source}:{event_id}")), json!(entry.to_string())])
        .await?;
    Ok(())
}

/// A refund takes back the refunded share of the credits the payment bought.
async fn refund(app: &App, event_id: &str, payment_intent: &str, paid_cents: u64, refunded_cents: u64) -> HandlerResult {
    let fragment = ledger_fragment(&[
        ("source", json!("stripe")),
        ("ref", json!(event_id)),
        ("payment_intent", json!(payment_intent)),
        ("refunded_cents", json!(refunded_cents)),
        ("paid_cents", json!(paid_cents)),
    ]);
    let args = vec![
        format!("abk:dedupe:stripe:pi:{payment_intent}"),
        refunded_cents.to_string(),
        paid_cents.to_string(),
        app.now_ms.to_string(),
        fragment,
        format!("abk:dedupe:stripe:event:{event_id}"),
    ];
    match ClawbackReply::decode(&app.redis()?.eval(&scripts::CLAWBACK, args).await?)? {
        ClawbackReply::Taken { key_id, taken_mc, shortfall_mc, balance_mc } => {
            console_log!("{} stripe refund {event_id}: took {taken_mc} mc from {key_id} (shortfall {shortfall_mc}) -> {balance_mc}", app.request_id);
            if shortfall_mc > 0 {
                // The credits were already spent: money is owed; an admin decides what to do.
                let details = json!({ "payment_intent": payment_intent, "key_id": key_id, "reason": "refund larger than the remaining balance",
                    "credits_short": credits_json(shortfall_mc) });
                note_unmatched(app, "stripe-refund", event_id, details).await?;
            }
            ack(json!({ "credited": false, "key_id": key_id, "credits_taken_back": credits_json(taken_mc), "credits_short": credits_json(shortfall_mc) }))
        }
        ClawbackReply::Duplicate => ack(json!({ "credited": false, "duplicate": true })),
        ClawbackReply::UnknownPayment => {
            console_log!("{} stripe refund {event_id}: no credited payment {payment_intent}; ignored", app.request_id);
            ack(json!({ "credited": false, "reason": "no credited payment for this refund" }))
        }
    }
}

/// Runs the credit script; every outcome except an outage is an acknowledgement (200), so the
/// provider stops retrying what can never succeed.
async fn credit(app: &App, target: String, amount_mc: i64, source: &str, event_id: &str, fragment: String, dedupe: Vec<String>) -> HandlerResult {
    let mut args = vec![target, amount_mc.to_string(), app.now_ms.to_string(), "topup".into(), fragment.clone()];
    args.extend(dedupe);
    match CreditReply::decode(&app.redis()?.eval(&scripts::CREDIT, args).await?)? {
        CreditReply::Credited { key_id, balance_mc } => {
            console_log!("{} {source} credited {key_id} +{amount_mc} mc -> {balance_mc}", app.request_id);
            ack(json!({ "credited": true, "key_id": key_id, "credits_added": credits_json(amount_mc) }))
        }
        CreditReply::Duplicate { marker } => {
            console_log!("{} {source} duplicate ({marker}): nothing changed", app.request_id);
            ack(json!({ "credited": false, "duplicate": true }))
        }
        CreditReply::UnknownKey => {
            let mut details: Value = serde_json::from_str(&format!("{{{fragment}}}")).unwrap_or_else(|_| json!({}));
            details["reason"] = json!("no known API key in the payment");
            details["credits"] = credits_json(amount_mc);
            record_unmatched(app, source, event_id, details).await
        }
        CreditReply::Insufficient { .. } => Err(ApiError::new(ErrorKind::Internal, "negative top-up").into()),
    }
}

fn key_target(key: &KeyRef) -> Option<String> {
    match key {
        KeyRef::Id(id) if keys::is_key_id(id) => Some(format!("id:{id}")),
        KeyRef::Id(_) => None,
        KeyRef::Plaintext(k) => Some(format!("hash:{}", keys::hash_key(k))),
    }
}

pub async fn stripe(app: &App, mut req: Request) -> HandlerResult {
    let secret = app.required("STRIPE_WEBHOOK_SECRET")?;
    // The exact raw bytes are signed: read them before any JSON parsing.
    let body = req.bytes().await.map_err(|e| ApiError::invalid(format!("could not read body: {e}")))?;
    let header = req.headers().get("stripe-signature").ok().flatten();
    let tolerance = app.settings.stripe_tolerance_secs as i64;
    if let Err(e) = stripe::verify(header.as_deref(), &body, &secret, (app.now_ms / 1000) as i64, tolerance) {
        console_log!("{} stripe webhook refused: {}", app.request_id, e.message());
        return Err(ApiError::invalid(format!("invalid Stripe signature: {}", e.message())).into());
    }
    let event: Value = serde_json::from_slice(&body).map_err(|_| ApiError::invalid("signed body is not JSON"))?;
    match stripe::interpret(&event, &app.settings.rate) {
        StripeAction::Ignore { event_id, reason } => {
            console_log!("{} stripe event {event_id} ignored: {reason}", app.request_id);
            ack(json!({ "credited": false, "reason": reason }))
        }
        StripeAction::Unmatched { event_id, session_id, amount_total_cents, reason } => {
            record_unmatched(app, "stripe", &event_id, json!({ "session": session_id, "amount_total_cents": amount_total_cents, "reason": reason })).await
        }
        StripeAction::Refund { event_id, payment_intent, paid_cents, refunded_cents } => {
            refund(app, &event_id, &payment_intent, paid_cents, refunded_cents).await
        }
        StripeAction::Credit { event_id, session_id, payment_intent, key, amount_mc, amount_total_cents } => {
            let Some(target) = key_target(&key) else {
                return record_unmatched(app, "stripe", &event_id, json!({ "session": session_id, "amount_total_cents": amount_total_cents, "reason": "malformed key id" })).await;
            };
            let fragment = ledger_fragment(&[
                ("source", json!("stripe")),
                ("ref", json!(event_id)),
                ("session", json!(session_id)),
                ("amount_total_cents", json!(amount_total_cents)),
            ]);
            let mut dedupe = vec![format!("abk:dedupe:stripe:event:{event_id}"), format!("abk:dedupe:stripe:session:{session_id}")];
            if let Some(pi) = payment_intent {
                // Also the payment's own marker: a refund of it finds the key and the amount here.
                dedupe.push(format!("abk:dedupe:stripe:pi:{pi}"));
            }
            credit(app, target, amount_mc, "stripe", &event_id, fragment, dedupe).await
        }
    }
}

fn header(req: &Request, name: &str) -> Result<String, ApiError> {
    req.headers().get(name).ok().flatten().filter(|v| !v.is_empty()).ok_or_else(|| ApiError::invalid(format!("missing {name} header")))
}

/// Where the OAuth token is cached between deliveries (PayPal tokens live ~9 h).
const PAYPAL_TOKEN_KEY: &str = "abk:paypal:token";

/// A PayPal access token: the cached one unless `fresh`, else a new one (then cached until
/// shortly before it expires).
async fn paypal_token(app: &App, base: &str, fresh: bool) -> Result<String, ApiError> {
    let redis = app.redis()?;
    if !fresh {
        if let Value::String(t) = redis.command(&[json!("GET"), json!(PAYPAL_TOKEN_KEY)]).await? {
            return Ok(t);
        }
    }
    let (token, expires_in) = paypal_new_token(app, base).await?;
    let ttl = expires_in.saturating_sub(300);
    if ttl > 0 {
        redis.command(&[json!("SET"), json!(PAYPAL_TOKEN_KEY), json!(token), json!("EX"), json!(ttl)]).await?;
    }
    Ok(token)
}

async fn paypal_new_token(app: &App, base: &str) -> Result<(String, u64), ApiError> {
    let id = app.required("PAYPAL_CLIENT_ID")?;
    let secret = app.required("PAYPAL_CLIENT_SECRET")?;
    let out = Outbound {
        method: "POST",
        url: format!("{base}/v1/oauth2/token"),
        headers: vec![
            ("authorization".into(), format!("Basic {}", keys::base64(format!("{id}:{secret}").as_bytes()))),
            ("content-type".into(), "application/x-www-form-urlencoded".into()),
            ("accept".into(), "application/json".into()),
        ],
        body: Some(b"grant_type=client_credentials".to_vec()),
    };
    let mut resp = fetch::send(&out, 15_000).await?;
    let status = resp.status_code();
    let v: Value = resp.json().await.unwrap_or(Value::Null);
    match v.get("access_token").and_then(Value::as_str) {
        Some(t) if status == 200 => Ok((t.to_string(), v.get("expires_in").and_then(Value::as_u64).unwrap_or(0))),
        _ => Err(ApiError::new(ErrorKind::UpstreamError, format!("PayPal token request failed (status {status})"))),
    }
}

/// `"20.00"` USD → 2000 cents, exactly.
fn usd_cents(value: &str) -> Option<u64> {
    let d = Decimal::parse(value).ok()?;
    let cents = d.num.checked_mul(100)?;
    (cents % d.den == 0).then(|| u64::try_from(cents / d.den).ok()).flatten()
}

pub async fn paypal(app: &App, mut req: Request) -> HandlerResult {
    let webhook_id = app.required("PAYPAL_WEBHOOK_ID")?;
    let base = app.required("PAYPAL_BASE_URL")?.trim_end_matches('/').to_string();
    let body = req.bytes().await.map_err(|e| ApiError::invalid(format!("could not read body: {e}")))?;
    if body.len() as u64 > app.settings.max_body_bytes {
        return Err(ApiError::new(ErrorKind::PayloadTooLarge, "webhook body too large").into());
    }
    let event: Value = serde_json::from_slice(&body).map_err(|_| ApiError::invalid("body is not JSON"))?;
    let raw_event = String::from_utf8(body).map_err(|_| ApiError::invalid("body is not UTF-8"))?;
    let event_type = event.get("event_type").and_then(Value::as_str).unwrap_or("");
    if event_type != "PAYMENT.CAPTURE.COMPLETED" {
        // Nothing would change whoever sent it: acknowledge without spending two PayPal calls.
        console_log!("{} paypal event type `{event_type}` ignored", app.request_id);
        return ack(json!({ "credited": false, "reason": format!("event type `{event_type}` is not handled") }));
    }
    let fields = [
        ("auth_algo", header(&req, "paypal-auth-algo")?),
        ("cert_url", header(&req, "paypal-cert-url")?),
        ("transmission_id", header(&req, "paypal-transmission-id")?),
        ("transmission_sig", header(&req, "paypal-transmission-sig")?),
        ("transmission_time", header(&req, "paypal-transmission-time")?),
        ("webhook_id", webhook_id),
    ];
    // The event is spliced in byte for byte: re-serializing could break PayPal's check.
    let mut verify_body = String::from("{");
    for (k, v) in &fields {
        verify_body.push_str(&format!("{}:{},", json!(k), json!(v)));
    }
    verify_body.push_str(&format!("\"webhook_event\":{raw_event}}}"));
    let verify = |token: String| Outbound {
        method: "POST",
        url: format!("{base}/v1/notifications/verify-webhook-signature"),
        headers: vec![("authorization".into(), format!("Bearer {token}")), ("content-type".into(), "application/json".into())],
        body: Some(verify_body.clone().into_bytes()),
    };
    let mut resp = fetch::send(&verify(paypal_token(app, &base, false).await?), 15_000).await?;
    if resp.status_code() == 401 {
        // The cached token expired or was revoked early: once more with a new one.
        resp = fetch::send(&verify(paypal_token(app, &base, true).await?), 15_000).await?;
    }
    let status = resp.status_code();
    let verdict: Value = resp.json().await.unwrap_or(Value::Null);
    let verification = verdict.get("verification_status").and_then(Value::as_str).unwrap_or("");
    if status != 200 {
        return Err(ApiError::new(ErrorKind::UpstreamError, format!("PayPal verification call failed (status {status})")).into());
    }
    if verification != "SUCCESS" {
        console_log!("{} paypal webhook refused: verification {verification}", app.request_id);
        return Err(ApiError::invalid(format!("PayPal signature verification failed ({verification})")).into());
    }
    let event_id = event.get("id").and_then(Value::as_str).unwrap_or("").to_string();
    let ty = event.get("event_type").and_then(Value::as_str).unwrap_or("");
    if ty != "PAYMENT.CAPTURE.COMPLETED" || event_id.is_empty() {
        console_log!("{} paypal event {event_id} of type {ty} ignored", app.request_id);
        return ack(json!({ "credited": false, "reason": format!("event type `{ty}` is not handled") }));
    }
    let resource = event.get("resource").cloned().unwrap_or(Value::Null);
    let capture_id = resource.get("id").and_then(Value::as_str).unwrap_or("").to_string();
    let custom = resource.get("custom_id").and_then(Value::as_str).unwrap_or("");
    let key = custom.split(':').next().unwrap_or("");
    let currency = resource.pointer("/amount/currency_code").and_then(Value::as_str).unwrap_or("");
    let cents = resource.pointer("/amount/value").and_then(Value::as_str).and_then(usd_cents);
    let (Some(cents), true, true) = (cents, currency == "USD", keys::is_key_id(key)) else {
        let amount = resource.get("amount").cloned().unwrap_or(Value::Null);
        return record_unmatched(app, "paypal", &event_id, json!({ "capture": capture_id, "amount": amount, "custom_id": custom, "reason": "custom_id names no key id, or the amount is not USD" })).await;
    };
    let amount_mc = app.settings.rate.millicredits_for_usd_cents(cents);
    let fragment = ledger_fragment(&[("source", json!("paypal")), ("ref", json!(event_id)), ("capture", json!(capture_id)), ("amount_cents", json!(cents))]);
    let mut dedupe = vec![format!("abk:dedupe:paypal:event:{event_id}")];
    if !capture_id.is_empty() {
        dedupe.push(format!("abk:dedupe:paypal:capture:{capture_id}"));
    }
    credit(app, format!("id:{key}"), amount_mc, "paypal", &event_id, fragment, dedupe).await
}
