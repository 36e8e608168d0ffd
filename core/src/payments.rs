//! What a verified payment event does to the store, and the acknowledgement it gets: Stripe
//! checkouts, refunds and disputes, Stripe subscriptions, PayPal captures and refunds. Each event
//! is read first (`stripe::interpret`, `stripe_billing::interpret`, `paypal::interpret`); here its
//! action is applied, logged (one `webhook` line per outcome) and answered.
//!
//! Every outcome except an outage is acknowledged (200), so the provider stops retrying what can
//! never succeed; a payment no key can take is kept for admins (`GET /admin/unmatched-payments`).
//!
//! Leaves out: reading the request and PayPal's verification call (the worker).

use crate::call::Call;
use crate::disputes::{self, DisputeEvent};
use crate::error::ApiError;
use crate::money::credits_json;
use crate::paypal::PaypalAction;
use crate::paypal_credits;
use crate::redis_keys as rk;
use crate::scripts::{ledger_fragment, ClawbackReply, CreditReply, DisputeReply, DisputeState, KeyOpReply};
use crate::store::{Clawback, Credit, CreditTarget, KeyOp, Store};
use crate::stripe::{self, StripeAction};
use crate::stripe_billing::SubscriptionAction;
use serde_json::{json, Map, Value};

/// The fields of a JSON object (anything else: none).
fn fields(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// The one log line of a webhook outcome: its source, event and outcome.
fn outcome(call: &impl Call, source: &str, event_id: &str, what: &str, mut extra: Map<String, Value>) {
    extra.extend(fields(json!({ "source": source, "event_id": event_id, "outcome": what })));
    call.log("webhook", extra);
}

/// `{"received": true, ...extra}`.
fn ack(extra: Value) -> Value {
    let mut v = fields(json!({ "received": true }));
    v.extend(fields(extra));
    Value::Object(v)
}

/// The log line of a delivery refused before it was read (`reason`), e.g. a bad signature.
pub fn refused(call: &impl Call, source: &str, reason: &str) {
    outcome(call, source, "", "refused", fields(json!({ "reason": reason })));
}

/// The log line of a delivery over its address's limit.
pub fn rate_limited(call: &impl Call, source: &str, deliveries: u64) {
    outcome(call, source, "", "rate_limited", fields(json!({ "deliveries": deliveries })));
}

/// An event of a type that changes nothing: acknowledged without further work.
pub fn ignored_type(call: &impl Call, source: &str, event_type: &str) -> Value {
    let reason = format!("event type `{event_type}` is not handled");
    outcome(call, source, "", "ignored", fields(json!({ "reason": reason })));
    ack(json!({ "credited": false, "reason": reason }))
}

fn ignore(call: &impl Call, source: &str, event_id: &str, reason: String) -> Value {
    outcome(call, source, event_id, "ignored", fields(json!({ "reason": reason })));
    ack(json!({ "credited": false, "reason": reason }))
}

/// Keeps a payment that was received but could not be credited (no known key, no conversion, an
/// untraceable refund) for admins: Stripe and PayPal will not retry an acknowledged event. One
/// field per source event, so replays do not repeat it.
async fn note_unmatched<S: Store>(store: &S, call: &impl Call, source: &str, event_id: &str, details: Value) -> Result<(), ApiError> {
    let mut entry = fields(json!({ "ts": call.now_ms(), "source": source, "event_id": event_id, "request_id": call.request_id() }));
    entry.extend(fields(details));
    let entry = Value::Object(entry);
    outcome(call, source, event_id, "unmatched", fields(json!({ "details": entry })));
    store.record_unmatched(&format!("{source}:{event_id}"), &entry).await
}

async fn unmatched<S: Store>(store: &S, call: &impl Call, source: &str, event_id: &str, details: Value) -> Result<Value, ApiError> {
    let reason = details.get("reason").cloned().unwrap_or(Value::Null);
    note_unmatched(store, call, source, event_id, details).await?;
    Ok(ack(json!({ "credited": false, "unmatched": true, "reason": reason })))
}

/// A refund (or reversal) takes back the refunded share of the credits the payment bought (the
/// balance may become a debt, noted for an admin); a refund of a purchase not credited yet is
/// remembered and taken with it.
async fn take_back<S: Store>(store: &S, call: &impl Call, source: &str, event_id: &str, c: &Clawback, payment: Value) -> Result<Value, ApiError> {
    match store.clawback(c).await? {
        ClawbackReply::Taken { key_id, taken_mc, balance_mc } => {
            outcome(call, source, event_id, "refunded", fields(json!({ "key_id": key_id, "credits_taken_back": credits_json(taken_mc), "credits_after": credits_json(balance_mc) })));
            if balance_mc < 0 {
                // The credits were spent or are held by open calls: the key owes them now.
                let mut details = fields(json!({ "key_id": key_id, "reason": "refund larger than the spendable balance: the key is in debt", "debt_credits": credits_json(-balance_mc) }));
                details.extend(fields(payment));
                note_unmatched(store, call, &format!("{source}-refund"), event_id, Value::Object(details)).await?;
            }
            Ok(ack(json!({ "credited": false, "key_id": key_id, "credits_taken_back": credits_json(taken_mc), "credits_after": credits_json(balance_mc) })))
        }
        ClawbackReply::Duplicate => {
            outcome(call, source, event_id, "duplicate", Map::new());
            Ok(ack(json!({ "credited": false, "duplicate": true })))
        }
        ClawbackReply::Pending => {
            outcome(call, source, event_id, "refund_pending", fields(payment));
            Ok(ack(json!({ "credited": false, "pending": true, "reason": "the refunded payment is not credited yet; its credits will be taken when it is" })))
        }
    }
}

/// Logs what a dispute step did; a frozen or lost share that leaves the key in debt is noted for
/// an admin, as a refund's is.
async fn disputed<S: Store>(store: &S, call: &impl Call, event_id: &str, dispute_id: &str, reply: &DisputeReply) -> Result<(), ApiError> {
    let what = match reply {
        DisputeReply::Applied { state: DisputeState::Frozen, .. } => "dispute_frozen",
        DisputeReply::Applied { state: DisputeState::Released, .. } => "dispute_released",
        DisputeReply::Applied { state: DisputeState::Lost, .. } => "dispute_lost",
        DisputeReply::Pending => "dispute_pending",
        DisputeReply::Duplicate { .. } | DisputeReply::Retry => "duplicate",
    };
    outcome(call, "stripe", event_id, what, fields(json!({ "dispute": dispute_id, "reply": format!("{reply:?}") })));
    if let DisputeReply::Applied { key_id, moved_mc, balance_mc, .. } = reply {
        if *balance_mc < 0 && *moved_mc < 0 {
            let details = json!({ "dispute": dispute_id, "key_id": key_id, "reason": "disputed credits were spent: the key is in debt", "debt_credits": credits_json(-balance_mc) });
            note_unmatched(store, call, "stripe-dispute", event_id, details).await?;
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
async fn credit_stripe<S: Store>(store: &S, call: &impl Call, c: &Credit, payment_intent: Option<&str>, paid_cents: u64, event_id: &str) -> Result<CreditReply, ApiError> {
    let (reply, early) = disputes::credit_payment(store, c, payment_intent, paid_cents, event_id).await?;
    for (dispute_id, d) in &early {
        disputed(store, call, event_id, dispute_id, d).await?;
    }
    Ok(reply)
}

/// The answer to a credit script's reply.
async fn credited<S: Store>(store: &S, call: &impl Call, reply: CreditReply, c: &Credit, source: &str, event_id: &str) -> Result<Value, ApiError> {
    match reply {
        CreditReply::Credited { key_id, balance_mc, early_refund_mc } => {
            // A top-up arms the key's low-balance watchers again (the alert, the auto top-up).
            crate::lowbal::rearm(store, &key_id).await?;
            let log = json!({ "key_id": key_id, "credits_added": credits_json(c.amount_mc), "credits_taken_back": credits_json(early_refund_mc), "credits_after": credits_json(balance_mc) });
            outcome(call, source, event_id, "credited", fields(log));
            Ok(ack(json!({ "credited": true, "key_id": key_id, "credits_added": credits_json(c.amount_mc), "credits_taken_back": credits_json(early_refund_mc) })))
        }
        CreditReply::Duplicate { marker } => {
            outcome(call, source, event_id, "duplicate", fields(json!({ "marker": marker })));
            Ok(ack(json!({ "credited": false, "duplicate": true })))
        }
        CreditReply::UnknownKey => {
            let mut details: Value = serde_json::from_str(&format!("{{{}}}", c.fragment)).unwrap_or_else(|_| json!({}));
            details["reason"] = json!("no known API key in the payment");
            details["credits"] = credits_json(c.amount_mc);
            unmatched(store, call, source, event_id, details).await
        }
        CreditReply::Insufficient { .. } => Err(ApiError::internal("a top-up cannot be negative")),
    }
}

/// A Stripe payment's marker (a refund finds the credits through it) and its early-refund key.
fn stripe_payment_markers(payment_intent: &str) -> (String, String) {
    (rk::stripe_payment(payment_intent), rk::stripe_early_refund(payment_intent))
}

/// A Stripe delivery's event, if its `Stripe-Signature` is right (the raw bytes are what is
/// signed: nothing is parsed before).
pub fn stripe_verified(call: &impl Call, header: Option<&str>, body: &[u8], secret: &str) -> Result<Value, ApiError> {
    let tolerance = call.settings().stripe_tolerance_secs as i64;
    if let Err(e) = stripe::verify(header, body, secret, (call.now_ms() / 1000) as i64, tolerance) {
        refused(call, "stripe", &e.message());
        return Err(ApiError::invalid(format!(
            "invalid Stripe signature: {}. Only events signed with this endpoint's secret are accepted; to send a signed test event, run `stripe listen --forward-to <this worker>/webhooks/stripe` (its whsec_… secret goes in STRIPE_WEBHOOK_SECRET) and `stripe trigger checkout.session.completed`",
            e.message()
        )));
    }
    serde_json::from_slice(body).map_err(|_| ApiError::invalid("signed body is not JSON"))
}

/// A verified Stripe event: a subscription's, or a payment's.
pub async fn stripe_event<S: Store>(store: &S, call: &impl Call, event: &Value) -> Result<Value, ApiError> {
    let (event_id, ty) = (event.get("id").and_then(Value::as_str).unwrap_or(""), event.get("type").and_then(Value::as_str).unwrap_or(""));
    let plans = &call.settings().subscription_plans;
    if let Some(action) = event.pointer("/data/object").and_then(|o| crate::stripe_billing::interpret(event_id, ty, o, plans)) {
        return subscription(store, call, action).await;
    }
    stripe(store, call, stripe::interpret(event, &call.settings().rate)).await
}

/// A verified Stripe payment event (checkout, refund, dispute).
pub async fn stripe<S: Store>(store: &S, call: &impl Call, action: StripeAction) -> Result<Value, ApiError> {
    let retention = call.settings().retention();
    match action {
        StripeAction::Ignore { event_id, reason } => Ok(ignore(call, "stripe", &event_id, reason)),
        StripeAction::Unmatched { event_id, session_id, amount_total_cents, reason } => {
            unmatched(store, call, "stripe", &event_id, json!({ "session": session_id, "amount_total_cents": amount_total_cents, "reason": reason })).await
        }
        StripeAction::UntraceableRefund { event_id, charge_id, reason } => unmatched(store, call, "stripe-refund", &event_id, json!({ "charge": charge_id, "reason": reason })).await,
        StripeAction::Refund { event_id, payment_intent, paid_cents, refunded_cents } => {
            let c = stripe::clawback(&event_id, &payment_intent, paid_cents, refunded_cents, call.now_ms(), retention);
            take_back(store, call, "stripe", &event_id, &c, json!({ "payment_intent": payment_intent })).await
        }
        StripeAction::Dispute { event_id, dispute_id, payment_intent, disputed_cents, step } => {
            let ev = DisputeEvent { event_id: &event_id, dispute_id: &dispute_id, payment_intent: &payment_intent, disputed_cents, step, now_ms: call.now_ms(), retention };
            let reply = disputes::apply(store, &ev).await?;
            disputed(store, call, &event_id, &dispute_id, &reply).await?;
            Ok(dispute_ack(&reply))
        }
        StripeAction::Credit { event_id, session_id, payment_intent, key, amount_mc, amount_total_cents } => {
            let Some(target) = key.target() else {
                return unmatched(store, call, "stripe", &event_id, json!({ "session": session_id, "amount_total_cents": amount_total_cents, "reason": "malformed key id" })).await;
            };
            let fragment = ledger_fragment(&[("source", json!("stripe")), ("ref", json!(event_id)), ("session", json!(session_id)), ("amount_total_cents", json!(amount_total_cents))]);
            let c = Credit {
                target,
                amount_mc,
                now_ms: call.now_ms(),
                kind: "topup",
                fragment,
                retention,
                // The payment's own marker: a refund of it finds the key and the amount here.
                payment: payment_intent.as_deref().map(stripe_payment_markers),
                dedupe: vec![rk::stripe_event(&event_id), rk::stripe_session(&session_id)],
            };
            let reply = credit_stripe(store, call, &c, payment_intent.as_deref(), amount_total_cents, &event_id).await?;
            credited(store, call, reply, &c, "stripe", &event_id).await
        }
    }
}

/// Subscription events: a paid invoice credits its allowance once and moves the key to the plan;
/// the end of the subscription returns it to `DEFAULT_PLAN`; a failed payment changes nothing.
pub async fn subscription<S: Store>(store: &S, call: &impl Call, action: SubscriptionAction) -> Result<Value, ApiError> {
    let now = call.now_ms();
    match action {
        SubscriptionAction::Ignore { event_id, reason } => Ok(ignore(call, "stripe", &event_id, reason)),
        SubscriptionAction::Started { event_id, key_id, customer, subscription_id } => {
            let reply = store.key_op(&KeyOp::Subscribe { key_id: &key_id, plan: "", subscription_id: &subscription_id, customer: &customer }, now).await?;
            outcome(call, "stripe", &event_id, "subscription_started", fields(json!({ "key_id": key_id, "subscription": subscription_id, "reply": format!("{reply:?}") })));
            Ok(ack(json!({ "credited": false, "subscription": subscription_id })))
        }
        SubscriptionAction::Ended { event_id, subscription_id, key_id } => {
            let plan = call.settings().default_plan.clone();
            let reply = store.key_op(&KeyOp::Unsubscribe { key_id: &key_id, plan: &plan, subscription_id: &subscription_id }, now).await?;
            let ended = reply == KeyOpReply::Ok;
            outcome(call, "stripe", &event_id, if ended { "subscription_ended" } else { "ignored" }, fields(json!({ "key_id": key_id, "plan": plan, "reply": format!("{reply:?}") })));
            Ok(ack(json!({ "credited": false, "plan": if ended { json!(plan) } else { Value::Null } })))
        }
        SubscriptionAction::Unmatched { event_id, invoice_id, key_id, paid_cents, reason } => {
            unmatched(store, call, "stripe", &event_id, json!({ "invoice": invoice_id, "key_id": key_id, "amount_paid_cents": paid_cents, "reason": reason })).await
        }
        SubscriptionAction::PlanChanged { event_id, subscription_id, key_id, plan } => {
            let reply = store.key_op(&KeyOp::Subscribe { key_id: &key_id, plan: &plan.rate_plan, subscription_id: &subscription_id, customer: "" }, now).await?;
            outcome(call, "stripe", &event_id, "plan_changed", fields(json!({ "key_id": key_id, "plan": plan.name, "rate_plan": plan.rate_plan, "reply": format!("{reply:?}") })));
            Ok(ack(json!({ "credited": false, "plan": plan.rate_plan })))
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
                target: CreditTarget::KeyId(key_id.clone()),
                amount_mc,
                now_ms: now,
                kind: "topup",
                fragment,
                retention: call.settings().retention(),
                payment: payment_intent.as_deref().map(stripe_payment_markers),
                dedupe: vec![rk::stripe_event(&event_id), rk::stripe_invoice(&invoice_id)],
            };
            let reply = credit_stripe(store, call, &c, payment_intent.as_deref(), paid_cents, &event_id).await?;
            if matches!(reply, CreditReply::Credited { .. }) {
                // The period's allowance came: the key is on the rate limits of the plan paid for.
                store.key_op(&KeyOp::Subscribe { key_id: &key_id, plan: &plan.rate_plan, subscription_id: &subscription_id, customer: "" }, now).await?;
            }
            credited(store, call, reply, &c, "stripe", &event_id).await
        }
    }
}

/// Counts a PayPal delivery from the client's address before anything is read or sent: anyone
/// can post one, and each costs two calls to PayPal (token and verification).
pub async fn paypal_delivery<S: Store>(store: &S, call: &impl Call) -> Result<(), ApiError> {
    let limit = call.settings().paypal_webhook_limit;
    let (count, reset_ms) = store.webhook_attempt("paypal", call.client_ip(), call.now_ms(), call.request_id(), limit.window_ms).await?;
    match crate::ratelimit::over_limit(count, limit.limit, reset_ms, "PayPal webhook deliveries") {
        Some(e) => {
            rate_limited(call, "paypal", count);
            Err(e)
        }
        None => Ok(()),
    }
}

/// A PayPal delivery, read: worth verifying (the event and its raw text, spliced into the
/// verification request byte for byte), or answered at once.
pub enum PaypalDelivery {
    Verify { event: Value, raw: String },
    /// An event type that changes nothing: acknowledged without spending PayPal's calls.
    Answered(Value),
}

pub fn paypal_delivery_body(call: &impl Call, body: Vec<u8>) -> Result<PaypalDelivery, ApiError> {
    let event: Value = serde_json::from_slice(&body).map_err(|_| ApiError::invalid("body is not JSON"))?;
    let raw = String::from_utf8(body).map_err(|_| ApiError::invalid("body is not UTF-8"))?;
    let event_type = crate::paypal::event_type(&event);
    if !crate::paypal::is_handled(event_type) {
        return Ok(PaypalDelivery::Answered(ignored_type(call, "paypal", event_type)));
    }
    Ok(PaypalDelivery::Verify { event, raw })
}

/// PayPal's answer to the verification call: only `SUCCESS` is a signed event.
pub fn paypal_verdict(call: &impl Call, status: u16, verdict: &Value) -> Result<(), ApiError> {
    if status != 200 {
        return Err(ApiError::upstream(format!("PayPal verification call failed (status {status})")).public());
    }
    let verification = verdict.get("verification_status").and_then(Value::as_str).unwrap_or("");
    if verification != "SUCCESS" {
        refused(call, "paypal", &format!("verification {verification}"));
        return Err(ApiError::invalid(format!("PayPal signature verification failed ({verification})")));
    }
    Ok(())
}

/// A verified PayPal event (capture, refund, reversal).
pub async fn paypal_event<S: Store>(store: &S, call: &impl Call, event: &Value) -> Result<Value, ApiError> {
    let (now, retention) = (call.now_ms(), call.settings().retention());
    match crate::paypal::interpret(event, &call.settings().rate) {
        PaypalAction::Ignore { event_id, reason } => Ok(ignore(call, "paypal", &event_id, reason)),
        PaypalAction::Unmatched { event_id, details, .. } => unmatched(store, call, "paypal", &event_id, details).await,
        PaypalAction::UntraceableRefund { event_id, details } => unmatched(store, call, "paypal-refund", &event_id, details).await,
        PaypalAction::TakeBack(refund) => {
            let c = paypal_credits::clawback(&refund, now, retention);
            take_back(store, call, "paypal", &refund.event_id, &c, json!({ "capture": refund.capture_id, "refund": refund.refund_id })).await
        }
        PaypalAction::Credit { event_id, capture_id, key_id, amount_mc, cents } => {
            let c = paypal_credits::credit(&event_id, &capture_id, &key_id, amount_mc, cents, now, retention);
            let reply = store.credit(&c).await?;
            credited(store, call, reply, &c, "paypal", &event_id).await
        }
    }
}

/// A verified Stripe event of auto top-up (`crate::auto_topup::interpret`): a saved card is kept,
/// a paid top-up credited once (as any purchase: the event and the payment intent dedupe it), a
/// failed one turns auto top-up off. The answer, and the alert to post (a failure, when the key
/// has an alert URL and auto top-up was on until now).
pub async fn stripe_topup<S: Store>(store: &S, call: &impl Call, ev: crate::auto_topup::TopupEvent) -> Result<(Value, Option<TopupAlert>), ApiError> {
    use crate::auto_topup::TopupEvent;
    match ev {
        TopupEvent::Ignore { event_id, reason } => Ok((ignore(call, "stripe", &event_id, reason), None)),
        TopupEvent::CardSaved { event_id, key_id, customer, payment_method } => {
            let saved = crate::lowbal::save_card(store, &key_id, &customer, &payment_method).await?;
            outcome(call, "stripe", &event_id, if saved { "card_saved" } else { "unknown_key" }, fields(json!({ "key_id": key_id })));
            Ok((ack(json!({ "credited": false, "card_saved": saved })), None))
        }
        TopupEvent::Paid { event_id, key_id, payment_intent, amount_mc, cents } => {
            let Some(target) = CreditTarget::key_id(&key_id) else { return Ok((ignore(call, "stripe", &event_id, "malformed key id".into()), None)) };
            let fragment = ledger_fragment(&[("source", json!("stripe")), ("ref", json!(event_id)), ("payment_intent", json!(payment_intent)), ("auto_topup", json!(true)), ("amount_total_cents", json!(cents))]);
            let c = Credit {
                target,
                amount_mc,
                now_ms: call.now_ms(),
                kind: "topup",
                fragment,
                retention: call.settings().retention(),
                payment: Some(stripe_payment_markers(&payment_intent)),
                dedupe: vec![rk::stripe_event(&event_id)],
            };
            let reply = credit_stripe(store, call, &c, Some(&payment_intent), cents, &event_id).await?;
            Ok((credited(store, call, reply, &c, "stripe", &event_id).await?, None))
        }
        TopupEvent::Failed { event_id, key_id, payment_intent, code, message } => {
            let (was_on, target) = crate::lowbal::topup_off(store, &key_id, &format!("off: the card was declined ({code})"), &message).await?;
            outcome(call, "stripe", &event_id, "auto_topup_failed", fields(json!({ "key_id": key_id, "payment_intent": payment_intent, "code": code, "turned_off": was_on })));
            let alert = match (was_on, target) {
                (true, Some(t)) => {
                    let id = format!("evt_{}", call.random_hex(12)?);
                    Some(TopupAlert { target: t, event: crate::alerts::AlertEvent::topup_failed(id, &key_id, call.now_ms() / 1000, &code, &message) })
                }
                _ => None,
            };
            Ok((ack(json!({ "credited": false, "auto_topup": "off" })), alert))
        }
    }
}

/// An alert a payment event asks to post.
#[derive(Debug, Clone)]
pub struct TopupAlert {
    pub target: crate::lowbal::AlertTarget,
    pub event: crate::alerts::AlertEvent,
}
