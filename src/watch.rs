//! The low-balance watchers on the platform, after a call's settlement (in `waitUntil`, never
//! before the provider call): `broker_core::lowbal` decides which fired; here a fired alert is
//! posted, signed, with retries (`broker_core::alerts::RETRY_MS`), and a fired auto top-up
//! creates its off-session PaymentIntent at Stripe. Each outcome is one log line (`alert`,
//! `auto_topup`), without the URL's secret or the signing secret.

use crate::fetch;
use crate::fields;
use crate::log::{Level, Redactor};
use crate::upstash::Upstash;
use broker_core::alerts::{self, AlertEvent};
use broker_core::auto_topup::{self, Created};
use broker_core::config::Secret;
use broker_core::lowbal::{self, AlertTarget, TopupStep};
use broker_core::product::UpstreamRequest;
use broker_core::stripe_billing::form_encode;
use serde_json::{Map, Value};
use std::time::Duration;
use worker::Delay;

/// What the step after a settlement needs of its request (owned: it runs in `waitUntil`).
pub struct Watch {
    pub key_id: String,
    pub request_id: String,
    pub redactor: Redactor,
    /// `STRIPE_SECRET_KEY` (auto top-up is skipped, and logged, without it) and Stripe's URL.
    pub stripe: Option<(Secret, String)>,
}

fn now_ms() -> u64 {
    worker::Date::now().as_millis()
}

fn random_id() -> String {
    crate::context::random_hex(12).unwrap_or_else(|_| format!("{:x}", now_ms()))
}

impl Watch {
    pub fn for_call(ctx: &crate::context::Ctx, key_id: &str) -> Watch {
        Watch {
            key_id: key_id.to_string(),
            request_id: ctx.request_id().to_string(),
            redactor: ctx.redactor().clone(),
            stripe: ctx.optional_secret("STRIPE_SECRET_KEY").map(|s| (s, ctx.settings().stripe_base_url.clone())),
        }
    }

    fn line(&self, level: Level, msg: &str, mut f: Map<String, Value>) {
        f.insert("request_id".into(), self.request_id.clone().into());
        f.insert("key_id".into(), self.key_id.clone().into());
        self.redactor.line(level, msg, f);
    }
}

/// After a settlement of `w.key_id`: the watchers that fired, carried out.
pub async fn after_settlement(store: &Upstash, w: &Watch) {
    let day = broker_core::pricing::utc_date(now_ms());
    let fired = match lowbal::after_settlement(store, &w.key_id, &day).await {
        Ok(Some(f)) => f,
        Ok(None) => return,
        Err(e) => return w.line(Level::Warn, "low_balance", fields! {"outcome" => "check failed", "error" => e.message}),
    };
    if let Some((target, threshold_mc)) = fired.alert {
        let event = AlertEvent::balance_low(format!("evt_{}", random_id()), &w.key_id, now_ms() / 1000, fired.balance_mc, threshold_mc);
        deliver(store, &target, &event, &w.redactor, &w.request_id).await;
    }
    match fired.topup {
        TopupStep::Nothing => {}
        TopupStep::Limit { today } => w.line(Level::Info, "auto_topup", fields! {"outcome" => "daily maximum reached", "today" => today}),
        TopupStep::Charge { n, customer, payment_method, amount_mc, cents } => charge(store, w, &day, n, &customer, &payment_method, amount_mc, cents).await,
    }
}

/// Posts a signed alert, retrying a refused or failed delivery (`alerts::RETRY_MS`); logs the
/// outcome. An alert no attempt delivered is queued for the cron sweeper.
pub async fn deliver(store: &Upstash, target: &AlertTarget, event: &AlertEvent, redactor: &Redactor, request_id: &str) {
    let body = event.body();
    if !post(target, &body, &alerts::RETRY_MS, redactor, request_id).await {
        if let Err(e) = lowbal::queue_alert(store, &event.key_id, &body, 0).await {
            redactor.line(Level::Error, "alert", fields! {"outcome" => "not queued", "event_id" => event.id, "error" => e.message, "request_id" => request_id});
        }
    }
}

/// The sweeper's turn: one more attempt for each queued alert (at most `n`), queued again
/// until it has had `lowbal::QUEUE_TRIES`.
pub async fn retry_queued(store: &Upstash, redactor: &Redactor, n: usize) -> Result<usize, broker_core::error::ApiError> {
    let mut delivered = 0;
    for q in lowbal::take_queued(store, n).await? {
        let Some(target) = q.target else {
            redactor.line(Level::Info, "alert", fields! {"outcome" => "dropped: the alert was removed", "key_id" => q.key_id});
            continue;
        };
        if post(&target, &q.body, &[0], redactor, "sweeper").await {
            delivered += 1;
        } else if q.tries + 1 < lowbal::QUEUE_TRIES {
            lowbal::queue_alert(store, &q.key_id, &q.body, q.tries + 1).await?;
        } else {
            redactor.line(Level::Error, "alert", fields! {"outcome" => "given up", "key_id" => q.key_id, "sweeper_tries" => q.tries + 1});
        }
    }
    Ok(delivered)
}

/// Sends `body` signed to `target`, waiting `waits` before each attempt; whether it arrived.
async fn post(target: &AlertTarget, body: &str, waits: &[u64], redactor: &Redactor, request_id: &str) -> bool {
    redactor.add(&target.secret);
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let (kind, id, key_id) = (v["type"].clone(), v["id"].clone(), v["key_id"].clone());
    for (i, wait) in waits.iter().enumerate() {
        if *wait > 0 {
            Delay::from(Duration::from_millis(*wait)).await;
        }
        let t = (now_ms() / 1000) as i64;
        let req = UpstreamRequest {
            url: target.url.clone(),
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("user-agent".into(), "ai-api-broker-alerts/1".into()),
                (alerts::SIGNATURE_HEADER.to_ascii_lowercase(), alerts::signature_header(&target.secret, t, body.as_bytes())),
            ],
            body: body.as_bytes().to_vec(),
        };
        let last = match fetch::send(&req, alerts::DELIVERY_TIMEOUT_MS).await {
            Ok(sent) if alerts::delivered(sent.response.status_code()) => {
                let f = fields! {"outcome" => "delivered", "event" => kind, "event_id" => id, "key_id" => key_id, "attempts" => i + 1, "request_id" => request_id};
                redactor.line(Level::Info, "alert", f);
                return true;
            }
            Ok(sent) => format!("the receiver answered {}", sent.response.status_code()),
            Err(e) => e.message,
        };
        let outcome = if i + 1 < waits.len() { "retrying" } else { "failed" };
        let level = if i + 1 < waits.len() { Level::Warn } else { Level::Error };
        let f = fields! {"outcome" => outcome, "event" => kind.clone(), "event_id" => id.clone(), "key_id" => key_id.clone(), "attempt" => i + 1, "error" => last, "request_id" => request_id};
        redactor.line(level, "alert", f);
    }
    false
}

/// Creates the day's `n`-th auto top-up. The credits come with `payment_intent.succeeded`
/// (`broker_core::payments::stripe_topup`); a decline turns auto top-up off and is alerted.
#[allow(clippy::too_many_arguments)]
async fn charge(store: &Upstash, w: &Watch, day: &str, n: u64, customer: &str, payment_method: &str, amount_mc: i64, cents: u64) {
    let Some((secret, base)) = &w.stripe else {
        return w.line(Level::Error, "auto_topup", fields! {"outcome" => "not started: STRIPE_SECRET_KEY is not set"});
    };
    let form = auto_topup::payment_intent_form(&w.key_id, customer, payment_method, cents, amount_mc, day, n);
    let idem = auto_topup::idempotency_key(&w.key_id, day, n);
    let req = UpstreamRequest {
        url: format!("{base}/v1/payment_intents"),
        headers: vec![
            ("authorization".into(), format!("Bearer {}", secret.expose())),
            ("content-type".into(), "application/x-www-form-urlencoded".into()),
            ("idempotency-key".into(), idem.clone()),
        ],
        body: form_encode(&form).into_bytes(),
    };
    // One retry of the same create (same key: Stripe answers the first answer again).
    let mut answer = None;
    for attempt in 0..2 {
        if attempt > 0 {
            Delay::from(Duration::from_millis(1_000)).await;
        }
        if let Ok(mut sent) = fetch::send(&req, 20_000).await {
            let status = sent.response.status_code();
            let v = sent.json().await;
            answer = Some(auto_topup::created(status, &v));
            if !matches!(answer, Some(Created::Failed { status: 500.., .. })) {
                break;
            }
        }
    }
    let created = answer.unwrap_or(Created::Failed { status: 0, message: "Stripe could not be reached".into() });
    match created {
        Created::Accepted { payment_intent, status } => {
            w.line(Level::Info, "auto_topup", fields! {"outcome" => "payment created", "payment_intent" => payment_intent, "status" => status, "n" => n, "cents" => cents, "idempotency_key" => idem})
        }
        Created::Declined { code, message, payment_intent } => {
            let off = lowbal::topup_off(store, &w.key_id, &format!("off: the card was declined ({code})"), &message).await;
            w.line(Level::Warn, "auto_topup", fields! {"outcome" => "declined: turned off", "code" => code, "payment_intent" => payment_intent.unwrap_or_default(), "n" => n});
            if let Ok((true, Some(target))) = off {
                let event = AlertEvent::topup_failed(format!("evt_{}", random_id()), &w.key_id, now_ms() / 1000, &code, &message);
                deliver(store, &target, &event, &w.redactor, &w.request_id).await;
            }
        }
        Created::Failed { status, message } => {
            // Stripe refused it (4xx): nothing was charged, a later call may try again. Any other
            // failure may have reached Stripe: the watcher stays off until the next credit, so a
            // payment whose answer was lost is never made twice under another key.
            let definite = (400..500).contains(&status);
            if definite {
                let _ = lowbal::topup_retry_later(store, &w.key_id).await;
            }
            let outcome = if definite { "refused by Stripe: armed again" } else { "outcome unknown: armed again by the next credit" };
            w.line(Level::Error, "auto_topup", fields! {"outcome" => outcome, "status" => status, "error" => message, "n" => n});
        }
    }
}
