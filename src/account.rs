//! Customer read routes (`/v1/balance`, `/v1/usage`, `/v1/models`) and `/health`.

use crate::context::Ctx;
use crate::http::{self, json, HandlerResult};
use broker_core::error::ApiError;
use broker_core::keys::hash_key;
use broker_core::ledger::public_entry;
use broker_core::money::credits_json;
use broker_core::ratelimit::ip_limited_error;
use broker_core::scripts::{KeyView, ReadReply};
use broker_core::store::{Read, Reader, Store};
use serde_json::{json, Value};
use worker::{Request, Response};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub async fn health(ctx: &Ctx) -> HandlerResult {
    let redis_ok = match ctx.store() {
        Ok(s) => s.ping().await,
        Err(_) => false,
    };
    let (status, code) = if redis_ok { ("ok", 200) } else { ("degraded", 503) };
    Ok(json(
        code,
        &json!({
            "status": status,
            "services": { "redis": if redis_ok { "ok" } else { "unreachable" } },
            "version": VERSION,
            "price_table": broker_core::pricing::table_version(),
        }),
        &[("cache-control".into(), "no-store".into())],
    ))
}

thread_local! {
    /// `/v1/models` of the day: the catalogue changes only with the date (prices take effect and
    /// models retire by day) and the isolate's settings, so it is rendered once a day.
    static MODELS: std::cell::RefCell<Option<(String, Vec<u8>)>> = const { std::cell::RefCell::new(None) };
}

pub fn models(ctx: &Ctx) -> Response {
    let today = ctx.price_day();
    if let Some(body) = MODELS.with(|m| m.borrow().as_ref().filter(|(day, _)| *day == today).map(|(_, b)| b.clone())) {
        return http::bytes(200, "application/json", body, &[]);
    }
    let rate = &ctx.settings().rate;
    let mut data: Vec<Value> = broker_core::pricing::catalogue(&today).iter().map(|m| m.to_public_json(rate)).collect();
    data.extend(broker_core::media_prices::catalogue(&today, rate, ctx.settings().elevenlabs_pico_per_credit));
    data.extend(broker_core::embedding_prices::catalogue(rate));
    let body = json!({ "object": "list", "price_table": broker_core::pricing::table_version(), "data": data }).to_string().into_bytes();
    MODELS.with(|m| *m.borrow_mut() = Some((today, body.clone())));
    http::bytes(200, "application/json", body, &[])
}

/// An admin read of a key by id and, optionally, a page of its ledger. `None`: no such key.
pub async fn read_key(ctx: &Ctx, key_id: &str, offset: u64, count: u64) -> Result<Option<KeyView>, ApiError> {
    Ok(match ctx.store()?.read(&Read { who: Reader::Admin { key_id }, offset, count }).await? {
        ReadReply::Found(k) => Some(*k),
        ReadReply::Unknown { .. } => None,
    })
}

/// The calling key's record (active keys only). Unknown and revoked keys count against the
/// client IP, as on the metered routes.
pub async fn caller(ctx: &Ctx, req: &Request, offset: u64, count: u64) -> Result<KeyView, ApiError> {
    caller_key(ctx, &crate::payer::api_key(ctx, req, false)?, offset, count).await
}

/// [`caller`] for a key already read from the request (routes that take it in another header).
pub async fn caller_key(ctx: &Ctx, key: &str, offset: u64, count: u64) -> Result<KeyView, ApiError> {
    let who = Reader::Customer { key_hash: hash_key(key), client_ip: ctx.client_ip(), anonymous: ctx.settings().limits.anonymous, now_ms: ctx.now_ms(), request_id: ctx.request_id() };
    match ctx.store()?.read(&Read { who, offset, count }).await? {
        ReadReply::Found(k) => Ok(*k),
        ReadReply::Unknown { limited: true, reset_ms, .. } => Err(ip_limited_error(reset_ms)),
        ReadReply::Unknown { status, .. } if status == "revoked" => Err(ApiError::unauthorized("this API key has been revoked")),
        ReadReply::Unknown { .. } => Err(ApiError::unauthorized("invalid API key")),
    }
}

/// The balance as customers and admins see it: spendable (negative: a debt), held by open calls.
pub fn balance_json(ctx: &Ctx, k: &KeyView) -> Value {
    let mut v = json!({
        "credits": credits_json(k.balance_mc),
        "millicredits": k.balance_mc,
        "held_credits": credits_json(k.held_mc),
        "held_millicredits": k.held_mc,
        "key_id": k.key_id,
        "plan": k.plan,
        "usd_per_credit": ctx.settings().usd_per_credit,
    });
    if k.balance_mc < 0 {
        v["debt_credits"] = credits_json(-k.balance_mc);
        v["note"] = json!("a refund took back credits that were spent or held: calls are refused until a top-up covers the debt");
    }
    v
}

pub async fn balance(ctx: &Ctx, req: &Request) -> HandlerResult {
    let k = caller(ctx, req, 0, 0).await?;
    Ok(json(200, &balance_json(ctx, &k), &[]))
}

/// Pagination of ledger pages: `?limit=` (1..=200, default 50) and `?offset=`.
pub fn page(req: &Request) -> Result<(u64, u64), ApiError> {
    let url = req.url().map_err(|e| ApiError::invalid(format!("bad url: {e}")))?;
    let mut limit = 50;
    let mut offset = 0;
    for (k, v) in url.query_pairs() {
        if k != "limit" && k != "offset" {
            continue; // e.g. cache busters
        }
        let n: u64 = v.parse().map_err(|_| ApiError::invalid(format!("`{k}` must be a non-negative integer")))?;
        match k.as_ref() {
            "limit" if (1..=200).contains(&n) => limit = n,
            "limit" => return Err(ApiError::invalid("`limit` must be between 1 and 200")),
            // Redis list indexes past ~1e15 would reach the script as floats.
            _ if n > 1_000_000_000 => return Err(ApiError::invalid("`offset` must be at most 1000000000")),
            _ => offset = n,
        }
    }
    Ok((offset, limit))
}

/// A page of the ledger. `carried_credits` is the sum of entries older than the kept ones, so
/// `credits + held_credits == carried_credits + Σ entries` always holds.
pub fn ledger_json(k: &KeyView, offset: u64, limit: u64) -> Value {
    let entries: Vec<Value> = k.entries.iter().map(|e| public_entry(e)).collect();
    let next = offset + entries.len() as u64;
    json!({
        "key_id": k.key_id,
        "credits": credits_json(k.balance_mc),
        "held_credits": credits_json(k.held_mc),
        "carried_credits": credits_json(k.carried_mc),
        "carried_mc": k.carried_mc,
        "total": k.ledger_len,
        "offset": offset,
        "limit": limit,
        "next_offset": if (next as i64) < k.ledger_len { json!(next) } else { Value::Null },
        "entries": entries,
    })
}

pub async fn usage(ctx: &Ctx, req: &Request) -> HandlerResult {
    let (offset, limit) = page(req)?;
    let k = caller(ctx, req, offset, limit).await?;
    Ok(json(200, &ledger_json(&k, offset, limit), &[]))
}
