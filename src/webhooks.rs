//! Payment webhooks. Stripe: signature checked in core, credit once per event id and per
//! checkout session id in one atomic script; refunds take back their share, even before the
//! purchase is known. PayPal: verified by PayPal's own verify-webhook-signature API, credited
//! once per event id and per capture id. Bodies are read with a limit.

use crate::context::Ctx;
use crate::fetch;
use crate::http::{json, read_body, HandlerResult};
use broker_core::disputes::{self, DisputeEvent};
use broker_core::ratelimit;
use broker_core::error::ApiError;
use broker_core::keys;
use broker_core::money::credits_json;
use broker_core::paypal::{self, PaypalAction};
use broker_core::paypal_credits;
use broker_core::product::UpstreamRequest;
use broker_core::redis_keys as rk;
use broker_core::scripts::{ledger_fragment, ClawbackReply, CreditReply, DisputeReply, DisputeState, KeyOpReply};
use broker_core::store::{Clawback, Credit, KeyOp, Store};
use broker_core::stripe_billing::{self, SubscriptionAction};
use broker_core::stripe::{self, KeyRef, StripeAction};
use serde_json::{json, Value};
use crate::fields;
use crate::log::Level;
use serde_json::Map;
use worker::Request;

/// The one log line of a webhook delivery: its source, event and outcome.
fn outcome(ctx: &Ctx, source: &str, event_id: &str, outcome: &str, mut extra: Map<String, Value>) {
    extra.extend(fields! {"source" => source, "event_id" => event_id, "outcome" => outcome});
    ctx.log(Level::Info, "webhook", extra);
}

fn ack(extra: Value) -> HandlerResult {
    let mut v = json!({ "received": true });
    if let (Some(o), Value::Object(e)) = (v.as_object_mut(), extra) {
        o.extend(e);
    }
    Ok(json(200, &v, &[]))
}

/// Keeps a payment that was received but could not be credited (no known key, no conversion, an
/// untraceable refund) for admins (`GET /admin/unmatched-payments`): Stripe and PayPal will not
/// retry an acknowledged event. One field per source event, so replays do not repeat it.
async fn note_unmatched(ctx: &Ctx, source: &str, event_id: &str, details: Value) -> Result<(), ApiError> {
    let mut entry = json!({ "ts": ctx.now_ms(), "source": source, "event_id": event_id, "request_id": ctx.request_id() });
    if let (Some(o), Value::Object(d)) = (entry.as_object_mut(), details) {
        o.extend(d);
    }
    outcome(ctx, source, event_id, "unmatched", fields! {"details" => entry});
    ctx.store()?.record_unmatched(&format!("{source}:{event_id}"), &entry).await
}

async fn record_unmatched(ctx: &Ctx, source: &str, event_id: &str, details: Value) -> HandlerResult {
    let reason = details.get("reason").cloned().unwrap_or(Value::Null);
    note_unmatched(ctx, source, event_id, details).await?;
    ack(json!({ "credited": false, "unmatched": true, "reason": reason }))
}

/// A refund (or reversal) takes back the refunded share of the credits the payment bought (the
/// balance may become a debt); a refund of a purchase not credited yet is remembered and taken
/// with it. The clawback itself is built in core (`stripe::clawback`, `paypal::clawback`).
async fn take_back(ctx: &Ctx, source: &str, event_id: &str, c: &Clawback, payment: Value) -> HandlerResult {
    match ctx.store()?.clawback(c).await? {
        ClawbackReply::Taken { key_id, taken_mc, balance_mc } => {
            outcome(ctx, source, event_id, "refunded", fields! {"key_id" => key_id, "credits_taken_back" => credits_json(taken_mc), "credits_after" => credits_json(balance_mc)});
            if balance_mc < 0 {
                // The credits were spent or are held by open calls: the key owes them now.
                let mut details = json!({ "key_id": key_id, "reason": "refund larger than the spendable balance: the key is in debt", "debt_credits": credits_json(-balance_mc) });
                if let (Some(d), Value::Object(p)) = (details.as_object_mut(), payment) {
                    d.extend(p);
                }
                note_unmatched(ctx, &format!("{source}-refund"), event_id, details).await?;
            }
            ack(json!({ "credited": false, "key_id": key_id, "credits_taken_back": credits_json(taken_mc), "credits_after": credits_json(balance_mc) }))
        }
        ClawbackReply::Duplicate => {
            outcome(ctx, source, event_id, "duplicate", Map::new());
            ack(json!({ "credited": false, "duplicate": true }))
        }
        ClawbackReply::Pending => {
            outcome(ctx, source, event_id, "refund_pending", payment.as_object().cloned().unwrap_or_default());
            ack(json!({ "credited": false, "pending": true, "reason": "the refunded payment is not credited yet; its credits will be taken when it is" }))
        }
    }
}

/// A step of a dispute: freeze, release or lose the disputed credits (`disputes::apply`).
async fn dispute(ctx: &Ctx, ev: &DisputeEvent<'_>) -> HandlerResult {
    let reply = disputes::apply(&ctx.store()?, ev).await?;
    disputed(ctx, ev.event_id, ev.dispute_id, &reply).await?;
    Ok(json(200, &dispute_ack(&reply), &[]))
}

/// Logs what a dispute step did; a frozen or lost share that leaves the key in debt is noted for
/// an admin, as a refund's is.
async fn disputed(ctx: &Ctx, event_id: &str, dispute_id: &str, reply: &DisputeReply) -> Result<(), ApiError> {
    let what = match reply {
        DisputeReply::Applied { state: DisputeState::Frozen, .. } => "dispute_frozen",
        DisputeReply::Applied { state: DisputeState::Released, .. } => "dispute_released",
        DisputeReply::Applied { state: DisputeState::Lost, .. } => "dispute_lost",
        DisputeReply::Pending => "dispute_pending",
        DisputeReply::Duplicate { .. } | DisputeReply::Retry => "duplicate",
    };
    outcome(ctx, "stripe", event_id, what, fields! {"dispute" => dispute_id, "reply" => format!("{reply:?}")});
    if let DisputeReply::Applied { key_id, moved_mc, balance_mc, .. } = reply {
        if *balance_mc < 0 && *moved_mc < 0 {
            let details = json!({ "dispute": dispute_id, "key_id": key_id, "reason": "disputed credits were spent: the key is in debt", "debt_credits": credits_json(-balance_mc) });
            note_unmatched(ctx, "stripe-dispute", event_id, details).await?;
        }
    }
    Ok(())
}

fn dispute_ack(reply: &DisputeReply) -> Value {
    match reply {
        DisputeReply::Applied { state, key_id, moved_mc, balance_mc } => json!({ "received": true, "credited": false, "dispute": format!("{state:?}").to_lowercase(), "key_id": key_id,
            "credits_moved": credits_json(*moved_mc), "credits_after": credits_json(*balance_mc) }),
        DisputeReply::Pending => json!({ "received": true, "credited": false, "pending": true, "reason": "the disputed payment is not credited yet; the dispute applies when it is" }),
        DisputeReply::Duplicate { state } => json!({ "received": true, "credited": false, "duplicate": true, "dispute": state }),
        DisputeReply::Retry => json!({ "received": true, "credited": false }),
    }
}

/// Credits a Stripe payment, then applies the disputes that came before it.
async fn credit_stripe(ctx: &Ctx, c: Credit, payment_intent: Option<&str>, paid_cents: u64, event_id: &str) -> Result<CreditReply, ApiError> {
    let (reply, early) = disputes::credit_payment(&ctx.store()?, &c, payment_intent, paid_cents, event_id).await?;
    for (dispute_id, d) in &early {
        disputed(ctx, event_id, dispute_id, d).await?;
    }
    Ok(reply)
}

/// Runs the credit script; every outcome except an outage is an acknowledgement (200), so the
/// provider stops retrying what can never succeed.
async fn credit(ctx: &Ctx, c: Credit, source: &str, event_id: &str) -> HandlerResult {
    let reply = ctx.store()?.credit(&c).await?;
    credited(ctx, reply, &c, source, event_id).await
}

/// The answer to a credit script's reply.
async fn credited(ctx: &Ctx, reply: CreditReply, c: &Credit, source: &str, event_id: &str) -> HandlerResult {
    match reply {
        CreditReply::Credited { key_id, balance_mc, early_refund_mc } => {
            outcome(ctx, source, event_id, "credited", fields! {"key_id" => key_id, "credits_added" => credits_json(c.amount_mc), "credits_taken_back" => credits_json(early_refund_mc), "credits_after" => credits_json(balance_mc)});
            ack(json!({ "credited": true, "key_id": key_id, "credits_added": credits_json(c.amount_mc), "credits_taken_back": credits_json(early_refund_mc) }))
        }
        CreditReply::Duplicate { marker } => {
            outcome(ctx, source, event_id, "duplicate", fields! {"marker" => marker});
            ack(json!({ "credited": false, "duplicate": true }))
        }
        CreditReply::UnknownKey => {
            let mut details: Value = serde_json::from_str(&format!("{{{}}}", c.fragment)).unwrap_or_else(|_| json!({}));
            details["reason"] = json!("no known API key in the payment");
            details["credits"] = credits_json(c.amount_mc);
            record_unmatched(ctx, source, event_id, details).await
        }
        CreditReply::Insufficient { .. } => Err(ApiError::internal("a top-up cannot be negative")),
    }
}

/// A Stripe payment's marker (a refund finds the credits through it) and its early-refund key.
fn stripe_payment_markers(payment_intent: &str) -> (String, String) {
    (rk::stripe_payment(payment_intent), rk::stripe_early_refund(payment_intent))
}

fn key_target(key: &KeyRef) -> Option<String> {
    match key {
        KeyRef::Id(id) if keys::is_key_id(id) => Some(format!("id:{id}")),
        KeyRef::Id(_) => None,
        KeyRef::Plaintext(k) => Some(format!("hash:{}", keys::hash_key(k))),
    }
}

pub async fn stripe(ctx: &Ctx, mut req: Request) -> HandlerResult {
    let secret = ctx.secret("STRIPE_WEBHOOK_SECRET")?;
    // The exact raw bytes are signed: read them before any JSON parsing.
    let body = read_body(&mut req, ctx.settings().max_webhook_bytes).await?;
    let header = req.headers().get("stripe-signature").ok().flatten();
    let tolerance = ctx.settings().stripe_tolerance_secs as i64;
    if let Err(e) = stripe::verify(header.as_deref(), &body, secret.expose(), (ctx.now_ms() / 1000) as i64, tolerance) {
        outcome(ctx, "stripe", "", "refused", fields! {"reason" => e.message()});
        return Err(ApiError::invalid(format!(
            "invalid Stripe signature: {}. Only events signed with this endpoint's secret are accepted; to send a signed test event, run `stripe listen --forward-to <this worker>/webhooks/stripe` (its whsec_… secret goes in STRIPE_WEBHOOK_SECRET) and `stripe trigger checkout.session.completed`",
            e.message()
        )));
    }
    let event: Value = serde_json::from_slice(&body).map_err(|_| ApiError::invalid("signed body is not JSON"))?;
    let (event_id, ty) = (event.get("id").and_then(Value::as_str).unwrap_or(""), event.get("type").and_then(Value::as_str).unwrap_or(""));
    if let Some(action) = event.pointer("/data/object").and_then(|o| stripe_billing::interpret(event_id, ty, o, &ctx.settings().subscription_plans)) {
        return subscription(ctx, action).await;
    }
    match stripe::interpret(&event, &ctx.settings().rate) {
        StripeAction::Ignore { event_id, reason } => {
            outcome(ctx, "stripe", &event_id, "ignored", fields! {"reason" => reason});
            ack(json!({ "credited": false, "reason": reason }))
        }
        StripeAction::Unmatched { event_id, session_id, amount_total_cents, reason } => {
            record_unmatched(ctx, "stripe", &event_id, json!({ "session": session_id, "amount_total_cents": amount_total_cents, "reason": reason })).await
        }
        StripeAction::UntraceableRefund { event_id, charge_id, reason } => record_unmatched(ctx, "stripe-refund", &event_id, json!({ "charge": charge_id, "reason": reason })).await,
        StripeAction::Refund { event_id, payment_intent, paid_cents, refunded_cents } => {
            let c = stripe::clawback(&event_id, &payment_intent, paid_cents, refunded_cents, ctx.now_ms(), ctx.settings().retention());
            take_back(ctx, "stripe", &event_id, &c, json!({ "payment_intent": payment_intent })).await
        }
        StripeAction::Dispute { event_id, dispute_id, payment_intent, disputed_cents, step } => {
            let ev = DisputeEvent { event_id: &event_id, dispute_id: &dispute_id, payment_intent: &payment_intent, disputed_cents, step, now_ms: ctx.now_ms(), retention: ctx.settings().retention() };
            dispute(ctx, &ev).await
        }
        StripeAction::Credit { event_id, session_id, payment_intent, key, amount_mc, amount_total_cents } => {
            let Some(target) = key_target(&key) else {
                return record_unmatched(ctx, "stripe", &event_id, json!({ "session": session_id, "amount_total_cents": amount_total_cents, "reason": "malformed key id" })).await;
            };
            let fragment = ledger_fragment(&[("source", json!("stripe")), ("ref", json!(event_id)), ("session", json!(session_id)), ("amount_total_cents", json!(amount_total_cents))]);
            let c = Credit {
                target,
                amount_mc,
                now_ms: ctx.now_ms(),
                kind: "topup",
                fragment,
                retention: ctx.settings().retention(),
                // The payment's own marker: a refund of it finds the key and the amount here.
                payment: payment_intent.as_deref().map(stripe_payment_markers),
                dedupe: vec![rk::stripe_event(&event_id), rk::stripe_session(&session_id)],
            };
            let reply = credit_stripe(ctx, c.clone(), payment_intent.as_deref(), amount_total_cents, &event_id).await?;
            credited(ctx, reply, &c, "stripe", &event_id).await
        }
    }
}

/// Subscription events: a paid invoice credits its allowance once and moves the key to the plan;
/// the end of the subscription returns it to `DEFAULT_PLAN`; a failed payment changes nothing.
async fn subscription(ctx: &Ctx, action: SubscriptionAction) -> HandlerResult {
    let store = ctx.store()?;
    match action {
        SubscriptionAction::Ignore { event_id, reason } => {
            outcome(ctx, "stripe", &event_id, "ignored", fields! {"reason" => reason});
            ack(json!({ "credited": false, "reason": reason }))
        }
        SubscriptionAction::Started { event_id, key_id, customer, subscription_id } => {
            let op = KeyOp::Subscribe { key_id: &key_id, plan: "", subscription_id: &subscription_id, customer: &customer };
            let reply = store.key_op(&op, ctx.now_ms()).await?;
            outcome(ctx, "stripe", &event_id, "subscription_started", fields! {"key_id" => key_id, "subscription" => subscription_id, "reply" => format!("{reply:?}")});
            ack(json!({ "credited": false, "subscription": subscription_id }))
        }
        SubscriptionAction::Ended { event_id, subscription_id, key_id } => {
            let plan = ctx.settings().default_plan.clone();
            let reply = store.key_op(&KeyOp::Unsubscribe { key_id: &key_id, plan: &plan, subscription_id: &subscription_id }, ctx.now_ms()).await?;
            let ended = reply == KeyOpReply::Ok;
            outcome(ctx, "stripe", &event_id, if ended { "subscription_ended" } else { "ignored" }, fields! {"key_id" => key_id, "plan" => plan, "reply" => format!("{reply:?}")});
            ack(json!({ "credited": false, "plan": if ended { json!(plan) } else { Value::Null } }))
        }
        SubscriptionAction::Unmatched { event_id, invoice_id, key_id, paid_cents, reason } => {
            record_unmatched(ctx, "stripe", &event_id, json!({ "invoice": invoice_id, "key_id": key_id, "amount_paid_cents": paid_cents, "reason": reason })).await
        }
        SubscriptionAction::PlanChanged { event_id, subscription_id, key_id, plan } => {
            let reply = store.key_op(&KeyOp::Subscribe { key_id: &key_id, plan: &plan.rate_plan, subscription_id: &subscription_id, customer: "" }, ctx.now_ms()).await?;
            outcome(ctx, "stripe", &event_id, "plan_changed", fields! {"key_id" => key_id, "plan" => plan.name, "rate_plan" => plan.rate_plan.clone(), "reply" => format!("{reply:?}")});
            ack(json!({ "credited": false, "plan": plan.rate_plan }))
        }
        SubscriptionAction::InvoicePaid { event_id, invoice_id, subscription_id, key_id, plan, amount_mc, paid_cents, payment_intent } => {
            let fragment = ledger_fragment(&[
                ("source", json!("stripe")),
                ("ref", json!(event_id)),
                ("invoice", json!(invoice_id)),
                ("subscription", json!(subscription_id)),
                ("plan", json!(plan.name)),
                ("amount_paid_cents", json!(paid_cents)),
            ]);
            let c = Credit {
                target: format!("id:{key_id}"),
                amount_mc,
                now_ms: ctx.now_ms(),
                kind: "topup",
                fragment,
                retention: ctx.settings().retention(),
                payment: payment_intent.as_deref().map(stripe_payment_markers),
                dedupe: vec![rk::stripe_event(&event_id), rk::stripe_invoice(&invoice_id)],
            };
            let reply = credit_stripe(ctx, c.clone(), payment_intent.as_deref(), paid_cents, &event_id).await?;
            if matches!(reply, CreditReply::Credited { .. }) {
                // The period's allowance came: the key is on the rate limits of the plan paid for.
                let op = KeyOp::Subscribe { key_id: &key_id, plan: &plan.rate_plan, subscription_id: &subscription_id, customer: "" };
                store.key_op(&op, ctx.now_ms()).await?;
            }
            credited(ctx, reply, &c, "stripe", &event_id).await
        }
    }
}

fn header(req: &Request, name: &str) -> Result<String, ApiError> {
    req.headers().get(name).ok().flatten().filter(|v| !v.is_empty()).ok_or_else(|| ApiError::invalid(format!("missing {name} header")))
}

/// A PayPal access token: the cached one unless `fresh`, else a new one (then cached until
/// shortly before it expires; PayPal tokens live ~9 h).
async fn paypal_token(ctx: &Ctx, fresh: bool) -> Result<String, ApiError> {
    let store = ctx.store()?;
    if !fresh {
        if let Some(t) = store.cached_paypal_token().await? {
            return Ok(t);
        }
    }
    let id = ctx.secret("PAYPAL_CLIENT_ID")?;
    let secret = ctx.secret("PAYPAL_CLIENT_SECRET")?;
    let req = UpstreamRequest {
        url: format!("{}/v1/oauth2/token", ctx.settings().paypal_base_url),
        headers: vec![
            ("authorization".into(), format!("Basic {}", keys::base64(format!("{}:{}", id.expose(), secret.expose()).as_bytes()))),
            ("content-type".into(), "application/x-www-form-urlencoded".into()),
            ("accept".into(), "application/json".into()),
        ],
        body: b"grant_type=client_credentials".to_vec(),
    };
    let mut sent = fetch::send(&req, 15_000).await?;
    let status = sent.response.status_code();
    let v: Value = sent.json().await;
    let (Some(token), 200) = (v.get("access_token").and_then(Value::as_str), status) else {
        return Err(ApiError::upstream(format!("PayPal token request failed (status {status})")).public());
    };
    let ttl = v.get("expires_in").and_then(Value::as_u64).unwrap_or(0).saturating_sub(300);
    if ttl > 0 {
        store.cache_paypal_token(token, ttl).await?;
    }
    Ok(token.to_string())
}

pub async fn paypal(ctx: &Ctx, mut req: Request) -> HandlerResult {
    let webhook_id = ctx.secret("PAYPAL_WEBHOOK_ID")?;
    // Anyone can post here and each delivery costs two calls to PayPal (token + verify): count
    // deliveries per client address first, before anything is read or sent.
    let limit = ctx.settings().paypal_webhook_limit;
    let (count, reset_ms) = ctx.store()?.webhook_attempt("paypal", ctx.client_ip(), ctx.now_ms(), ctx.request_id(), limit.window_ms).await?;
    if let Some(e) = ratelimit::over_limit(count, limit.limit, reset_ms, "PayPal webhook deliveries") {
        outcome(ctx, "paypal", "", "rate_limited", fields! {"deliveries" => count});
        return Err(e);
    }
    let body = read_body(&mut req, ctx.settings().max_webhook_bytes).await?;
    let event: Value = serde_json::from_slice(&body).map_err(|_| ApiError::invalid("body is not JSON"))?;
    let raw_event = String::from_utf8(body).map_err(|_| ApiError::invalid("body is not UTF-8"))?;
    let event_type = paypal::event_type(&event);
    if !paypal::is_handled(event_type) {
        // Nothing would change whoever sent it: acknowledge without spending two PayPal calls.
        outcome(ctx, "paypal", "", "ignored", fields! {"reason" => format!("event type `{event_type}` is not handled")});
        return ack(json!({ "credited": false, "reason": format!("event type `{event_type}` is not handled") }));
    }
    let fields = [
        ("auth_algo", header(&req, "paypal-auth-algo")?),
        ("cert_url", header(&req, "paypal-cert-url")?),
        ("transmission_id", header(&req, "paypal-transmission-id")?),
        ("transmission_sig", header(&req, "paypal-transmission-sig")?),
        ("transmission_time", header(&req, "paypal-transmission-time")?),
        ("webhook_id", webhook_id.expose().to_string()),
    ];
    let verify_body = paypal::verify_body(&fields, &raw_event);
    let verify = |token: String| UpstreamRequest {
        url: format!("{}/v1/notifications/verify-webhook-signature", ctx.settings().paypal_base_url),
        headers: vec![("authorization".into(), format!("Bearer {token}")), ("content-type".into(), "application/json".into())],
        body: verify_body.clone().into_bytes(),
    };
    let mut sent = fetch::send(&verify(paypal_token(ctx, false).await?), 15_000).await?;
    if sent.response.status_code() == 401 {
        // The cached token expired or was revoked early: once more with a new one.
        sent = fetch::send(&verify(paypal_token(ctx, true).await?), 15_000).await?;
    }
    let status = sent.response.status_code();
    let verdict: Value = sent.json().await;
    if status != 200 {
        return Err(ApiError::upstream(format!("PayPal verification call failed (status {status})")).public());
    }
    let verification = verdict.get("verification_status").and_then(Value::as_str).unwrap_or("");
    if verification != "SUCCESS" {
        outcome(ctx, "paypal", "", "refused", fields! {"reason" => format!("verification {verification}")});
        return Err(ApiError::invalid(format!("PayPal signature verification failed ({verification})")));
    }
    match paypal::interpret(&event, &ctx.settings().rate) {
        PaypalAction::Ignore { event_id, reason } => {
            outcome(ctx, "paypal", &event_id, "ignored", fields! {"reason" => reason});
            ack(json!({ "credited": false, "reason": reason }))
        }
        PaypalAction::Unmatched { event_id, details, .. } => record_unmatched(ctx, "paypal", &event_id, details).await,
        PaypalAction::UntraceableRefund { event_id, details } => record_unmatched(ctx, "paypal-refund", &event_id, details).await,
        PaypalAction::TakeBack(refund) => {
            let c = paypal_credits::clawback(&refund, ctx.now_ms(), ctx.settings().retention());
            take_back(ctx, "paypal", &refund.event_id, &c, json!({ "capture": refund.capture_id, "refund": refund.refund_id })).await
        }
        PaypalAction::Credit { event_id, capture_id, key_id, amount_mc, cents } => {
            let c = paypal_credits::credit(&event_id, &capture_id, &key_id, amount_mc, cents, ctx.now_ms(), ctx.settings().retention());
            credit(ctx, c, "paypal", &event_id).await
        }
    }
}
