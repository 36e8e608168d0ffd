//! Customer read routes (`/v1/balance`, `/v1/usage`, `/v1/models`) and `/health`.

use crate::context::Ctx;
use crate::http::{self, json, HandlerResult};
use broker_core::accounts;
use broker_core::error::ApiError;
use broker_core::scripts::KeyView;
use broker_core::store::Store;
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
    let data = catalogue(ctx);
    let body = json!({ "object": "list", "price_table": broker_core::pricing::table_version(), "data": data }).to_string().into_bytes();
    MODELS.with(|m| *m.borrow_mut() = Some((today, body.clone())));
    http::bytes(200, "application/json", body, &[])
}

/// Every model and its prices in credits, as `/v1/models` lists them.
pub fn catalogue(ctx: &Ctx) -> Vec<Value> {
    let today = ctx.price_day();
    let rate = &ctx.settings().rate;
    let mut data: Vec<Value> = broker_core::pricing::catalogue(&today).iter().map(|m| m.to_public_json(rate)).collect();
    data.extend(broker_core::media_prices::catalogue(&today, rate, ctx.settings().elevenlabs_pico_per_credit));
    data.extend(broker_core::embedding_prices::catalogue(rate));
    data
}

/// The calling key's record (active keys only; `broker_core::accounts::read_caller`).
pub async fn caller(ctx: &Ctx, req: &Request, offset: u64, count: u64) -> Result<KeyView, ApiError> {
    caller_key(ctx, &crate::payer::api_key(ctx, req, false)?, offset, count).await
}

/// [`caller`] for a key already read from the request (routes that take it in another header).
pub async fn caller_key(ctx: &Ctx, key: &str, offset: u64, count: u64) -> Result<KeyView, ApiError> {
    accounts::read_caller(&ctx.store()?, ctx, key, offset, count).await
}

pub async fn balance(ctx: &Ctx, req: &Request) -> HandlerResult {
    let k = caller(ctx, req, 0, 0).await?;
    let mut v = accounts::balance_json(&k, &ctx.settings().usd_per_credit);
    // A sub-key sees its account's balance and its own caps (issue 25).
    if let Some(sub) = broker_core::subkeys::balance_fields(&k, &broker_core::call::Call::today(ctx)) {
        v["sub_key"] = sub;
    }
    Ok(json(200, &v, &[]))
}

pub async fn usage(ctx: &Ctx, req: &Request) -> HandlerResult {
    let (offset, limit) = accounts::page(&Ctx::query(req)?)?;
    let k = caller(ctx, req, offset, limit).await?;
    Ok(json(200, &accounts::ledger_json(&k, offset, limit), &[]))
}

/// `GET /v1/requests/{request_id}`: one call's bill, for the key that made it.
pub async fn request_bill(ctx: &Ctx, req: &Request, request_id: &str) -> HandlerResult {
    let key = crate::payer::api_key(ctx, req, false)?;
    Ok(json(200, &accounts::bill(&ctx.store()?, ctx, &key, request_id).await?, &[]))
}
