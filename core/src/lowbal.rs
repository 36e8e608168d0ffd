//! The low-balance watchers on the store (`lowbal_v1.lua`, one hash per key): reading and
//! setting the alert and the auto top-up, saving a card, and the step after a settlement that
//! decides (with `crate::alerts::crossed`) which watcher fires, clearing its flag atomically.
//!
//! Cost: keys with no watcher pay one extra Redis round trip per settled call, after the
//! response (in `waitUntil`), never before the provider call; a crossing costs one more.
//!
//! Leaves out: the POST of an alert and the PaymentIntent create (the worker).

use crate::alerts::{crossed, AlertSetting};
use crate::auto_topup::TopupSetting;
use crate::error::ApiError;
use crate::redis_keys as rk;
use crate::scripts::{bad_reply, LOWBAL};
use crate::store::Store;
use serde_json::{json, Value};
use std::collections::HashMap;

/// Auto top-up counters live two days (the day's, read until its end).
const DAY_COUNTER_TTL_SECS: u64 = 172_800;

fn text(v: &Value, i: usize) -> String {
    match v.get(i) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

fn int(v: &Value, i: usize) -> i64 {
    text(v, i).parse().unwrap_or(0)
}

async fn run<S: Store>(store: &S, args: Vec<String>) -> Result<Value, ApiError> {
    store.eval(&LOWBAL, args).await
}

/// The alert that fires: where, with which secret, and the threshold crossed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertTarget {
    pub url: String,
    pub secret: String,
}

/// The auto top-up step after a settlement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopupStep {
    /// Nothing to do (not set, not armed, not below).
    Nothing,
    /// Below the threshold, but the day's maximum is reached.
    Limit { today: u64 },
    /// Start the day's `n`-th top-up on the saved card.
    Charge { n: u64, customer: String, payment_method: String, amount_mc: i64, cents: u64 },
}

/// What a settlement set off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AfterSettlement {
    pub balance_mc: i64,
    pub alert: Option<(AlertTarget, i64)>,
    pub topup: TopupStep,
}

/// After a call of `key_id` settled: reads the watchers (one round trip), decides whether the
/// balance crossed below a threshold, and clears the flag of each that did (one more each).
pub async fn after_settlement<S: Store>(store: &S, key_id: &str, day: &str) -> Result<Option<AfterSettlement>, ApiError> {
    let v = run(store, vec!["check".into(), key_id.into()]).await?;
    match v.get(0).and_then(Value::as_str) {
        Some("none") => return Ok(None),
        Some("state") => {}
        _ => return Err(bad_reply(LOWBAL.name, &v)),
    }
    let balance_mc = int(&v, 1);
    let threshold = |i: usize| Some(text(&v, i)).filter(|t| !t.is_empty()).and_then(|t| t.parse::<i64>().ok());
    let mut out = AfterSettlement { balance_mc, alert: None, topup: TopupStep::Nothing };
    if let Some(t) = threshold(2).filter(|t| crossed(balance_mc, *t, text(&v, 3) == "1")) {
        let r = run(store, vec!["fire_alert".into(), key_id.into()]).await?;
        if r.get(0).and_then(Value::as_str) == Some("fire") {
            out.alert = Some((AlertTarget { url: text(&r, 1), secret: text(&r, 2) }, t));
        }
    }
    if threshold(4).is_some_and(|t| text(&v, 6) == "1" && crossed(balance_mc, t, text(&v, 5) == "1")) {
        let args = vec!["fire_topup".into(), key_id.into(), rk::topup_day(key_id, day), DAY_COUNTER_TTL_SECS.to_string()];
        let r = run(store, args).await?;
        out.topup = match r.get(0).and_then(Value::as_str) {
            Some("fire") => TopupStep::Charge { n: int(&r, 1) as u64, customer: text(&r, 2), payment_method: text(&r, 3), amount_mc: int(&r, 4), cents: int(&r, 5) as u64 },
            Some("limit") => TopupStep::Limit { today: int(&r, 1) as u64 },
            _ => TopupStep::Nothing,
        };
    }
    Ok(Some(out))
}

/// A credit landed: both watchers are armed again (a no-op for a key without any).
pub async fn rearm<S: Store>(store: &S, key_id: &str) -> Result<(), ApiError> {
    run(store, vec!["rearm".into(), key_id.into()]).await.map(|_| ())
}

/// A top-up that cannot go on (a declined card) turns auto top-up off with its reason. Returns
/// whether it was on (only that caller tells the customer) and the alert to tell, if set.
pub async fn topup_off<S: Store>(store: &S, key_id: &str, status: &str, error: &str) -> Result<(bool, Option<AlertTarget>), ApiError> {
    let r = run(store, vec!["topup_off".into(), key_id.into(), status.into(), error.into()]).await?;
    let url = text(&r, 1);
    Ok((int(&r, 0) == 1, (!url.is_empty()).then(|| AlertTarget { url, secret: text(&r, 2) })))
}

/// A top-up that could not be started for a passing reason (Stripe unreachable): armed again,
/// so a later call tries once more (within the day's maximum).
pub async fn topup_retry_later<S: Store>(store: &S, key_id: &str) -> Result<(), ApiError> {
    store.command(vec![json!("HSET"), json!(rk::lowbal(key_id)), json!("t_armed"), json!("1")]).await.map(|_| ())
}

/// The card a setup session saved. `false`: no such key.
pub async fn save_card<S: Store>(store: &S, key_id: &str, customer: &str, payment_method: &str) -> Result<bool, ApiError> {
    let r = run(store, vec!["save_card".into(), key_id.into(), customer.into(), payment_method.into()]).await?;
    Ok(r.get(0).and_then(Value::as_str) == Some("ok"))
}

/// Every field of the key's watchers.
pub async fn fields<S: Store>(store: &S, key_id: &str) -> Result<HashMap<String, String>, ApiError> {
    let v = store.command(vec![json!("HGETALL"), json!(rk::lowbal(key_id))]).await?;
    let items: Vec<String> = v.as_array().map(|a| a.iter().map(|x| x.as_str().map(str::to_string).unwrap_or_else(|| x.to_string())).collect()).unwrap_or_default();
    Ok(items.chunks(2).filter(|c| c.len() == 2).map(|c| (c[0].clone(), c[1].clone())).collect())
}

/// Sets the alert (armed). The signing secret is made once per key (`new_secret` is kept only
/// when there was none) and returned only then: it is shown once.
pub async fn put_alert<S: Store>(store: &S, key_id: &str, a: &AlertSetting, new_secret: &str) -> Result<Option<String>, ApiError> {
    let h = rk::lowbal(key_id);
    let r = store
        .pipeline(vec![
            vec![json!("HSETNX"), json!(h), json!("a_secret"), json!(new_secret)],
            vec![json!("HSET"), json!(h), json!("a_thr"), json!(a.threshold_mc), json!("a_url"), json!(a.url), json!("a_armed"), json!("1")],
        ])
        .await?;
    Ok((r.first().and_then(Value::as_i64) == Some(1)).then(|| new_secret.to_string()))
}

/// Removes the alert and its secret (a new alert gets a new secret).
pub async fn delete_alert<S: Store>(store: &S, key_id: &str) -> Result<(), ApiError> {
    store.command(vec![json!("HDEL"), json!(rk::lowbal(key_id)), json!("a_thr"), json!("a_url"), json!("a_armed"), json!("a_secret")]).await.map(|_| ())
}

/// Sets auto top-up (on, armed). Needs a saved card: `Err` naming `card` when there is none.
pub async fn put_topup<S: Store>(store: &S, key_id: &str, t: &TopupSetting) -> Result<(), ApiError> {
    let f = fields(store, key_id).await?;
    if !f.contains_key("pm") {
        return Err(crate::alerts::field_error("card", "no saved card: save one first (POST /v1/auto-topup/card opens Stripe Checkout in setup mode)"));
    }
    let h = rk::lowbal(key_id);
    store
        .command(vec![
            json!("HSET"), json!(h),
            json!("t_thr"), json!(t.threshold_mc), json!("t_amount"), json!(t.amount_mc), json!("t_cents"), json!(t.cents), json!("t_max"), json!(t.max_per_day),
            json!("t_on"), json!("1"), json!("t_armed"), json!("1"), json!("t_status"), json!("on"), json!("t_error"), json!(""),
        ])
        .await
        .map(|_| ())
}

/// Turns auto top-up off (the saved card stays).
pub async fn delete_topup<S: Store>(store: &S, key_id: &str) -> Result<(), ApiError> {
    store.command(vec![json!("HSET"), json!(rk::lowbal(key_id)), json!("t_on"), json!("0"), json!("t_armed"), json!("0"), json!("t_status"), json!("off")]).await.map(|_| ())
}

/// Alerts whose delivery failed every attempt wait here for the cron sweeper (newest first),
/// each `{"key_id", "body", "tries"}`: at most [`QUEUE_KEEP`] kept, each tried at most
/// [`QUEUE_TRIES`] more times (once per sweeper run, every 10 minutes). The URL and secret are
/// read again when it is sent: a removed alert drops its queued events.
pub const QUEUE_KEEP: usize = 1000;
pub const QUEUE_TRIES: u64 = 3;

/// Queues an undelivered alert (`tries`: sweeper attempts made so far).
pub async fn queue_alert<S: Store>(store: &S, key_id: &str, body: &str, tries: u64) -> Result<(), ApiError> {
    let entry = json!({ "key_id": key_id, "body": body, "tries": tries }).to_string();
    store
        .pipeline(vec![vec![json!("LPUSH"), json!(rk::ALERT_QUEUE), json!(entry)], vec![json!("LTRIM"), json!(rk::ALERT_QUEUE), json!(0), json!(QUEUE_KEEP - 1)]])
        .await
        .map(|_| ())
}

/// A queued alert, taken off the queue: its key, body, tries so far, and where to send it now
/// (`None`: the alert was removed meanwhile).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queued {
    pub key_id: String,
    pub body: String,
    pub tries: u64,
    pub target: Option<AlertTarget>,
}

/// Takes up to `n` of the oldest queued alerts.
pub async fn take_queued<S: Store>(store: &S, n: usize) -> Result<Vec<Queued>, ApiError> {
    let mut out = Vec::new();
    for _ in 0..n {
        let Some(raw) = store.command(vec![json!("RPOP"), json!(rk::ALERT_QUEUE)]).await?.as_str().map(str::to_string) else { break };
        let Ok(v) = serde_json::from_str::<Value>(&raw) else { continue };
        let (Some(key_id), Some(body)) = (v["key_id"].as_str(), v["body"].as_str()) else { continue };
        let f = fields(store, key_id).await?;
        let target = match (f.get("a_url"), f.get("a_secret")) {
            (Some(url), Some(secret)) => Some(AlertTarget { url: url.clone(), secret: secret.clone() }),
            _ => None,
        };
        out.push(Queued { key_id: key_id.to_string(), body: body.to_string(), tries: v["tries"].as_u64().unwrap_or(0), target });
    }
    Ok(out)
}
