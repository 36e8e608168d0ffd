//! Customer read routes (`/v1/balance`, `/v1/usage`, `/v1/models`) and `/health`.

use crate::app::App;
use crate::http::{json, HandlerResult, Reply};
use broker_core::error::ApiError;
use broker_core::ledger::public_entry;
use broker_core::money::credits_json;
use broker_core::scripts::{self, KeyView, ReadReply};
use serde_json::{json, Value};
use worker::{Request, Response};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub async fn health(app: &App) -> HandlerResult {
    let redis_ok = match app.redis() {
        Ok(r) => matches!(r.command(&[json!("PING")]).await, Ok(Value::String(s)) if s == "PONG"),
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

pub fn models(app: &App) -> Response {
    let data: Vec<Value> = broker_core::pricing::catalogue(&app.today()).iter().map(|m| m.to_public_json(&app.settings.rate)).collect();
    json(200, &json!({ "object": "list", "price_table": broker_core::pricing::table_version(), "data": data }), &[])
}

/// An admin read of a key by id and, optionally, a page of its ledger. `None`: no such key.
pub async fn read_key(app: &App, key_id: &str, offset: u64, count: u64) -> Result<Option<KeyView>, ApiError> {
    let v = app.redis()?.eval(&scripts::READ, vec![format!("id:{key_id}"), offset.to_string(), count.to_string()]).await?;
    Ok(match ReadReply::decode(&v)? {
        ReadReply::Found(k) => Some(*k),
        ReadReply::Unknown { .. } => None,
    })
}

/// The calling key's record (active keys only). Unknown and revoked keys count against the
/// client IP, as on the metered routes.
async fn caller(app: &App, req: &Request, offset: u64, count: u64) -> Result<KeyView, Reply> {
    let auth = req.headers().get("authorization").ok().flatten();
    let key = broker_core::keys::bearer(auth.as_deref()).ok_or_else(|| ApiError::unauthorized("missing API key: send Authorization: Bearer <key>"))?;
    let anon = app.settings.limits.anonymous;
    let args = vec![
        format!("hash:{}", broker_core::keys::hash_key(key)),
        offset.to_string(),
        count.to_string(),
        app.client_ip.clone(),
        anon.limit.to_string(),
        anon.window_ms.to_string(),
        app.now_ms.to_string(),
        app.request_id.clone(),
    ];
    match ReadReply::decode(&app.redis()?.eval(&scripts::READ, args).await?)? {
        ReadReply::Found(k) => Ok(*k),
        ReadReply::Unknown { limited: true, reset_ms, .. } => Err(scripts::ip_limited_error(reset_ms).into()),
        ReadReply::Unknown { status, .. } if status == "revoked" => Err(ApiError::unauthorized("this API key has been revoked").into()),
        ReadReply::Unknown { .. } => Err(ApiError::unauthorized("invalid API key").into()),
    }
}

pub async fn balance(app: &App, req: &Request) -> HandlerResult {
    let k = caller(app, req, 0, 0).await?;
    Ok(json(
        200,
        &json!({
            "credits": credits_json(k.balance_mc),
            "millicredits": k.balance_mc,
            "key_id": k.key_id,
            "plan": k.plan,
            "usd_per_credit": app.var("USD_PER_CREDIT").unwrap_or_else(|| "0.01".into()),
        }),
        &[],
    ))
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

pub fn ledger_json(k: &KeyView, offset: u64, limit: u64) -> Value {
    let entries: Vec<Value> = k.entries.iter().map(|e| public_entry(e)).collect();
    let next = offset + entries.len() as u64;
    json!({
        "key_id": k.key_id,
        "credits": credits_json(k.balance_mc),
        "total": k.ledger_len,
        "offset": offset,
        "limit": limit,
        "next_offset": if (next as i64) < k.ledger_len { json!(next) } else { Value::Null },
        "entries": entries,
    })
}

pub async fn usage(app: &App, req: &Request) -> HandlerResult {
    let (offset, limit) = page(req)?;
    let k = caller(app, req, offset, limit).await?;
    Ok(json(200, &ledger_json(&k, offset, limit), &[]))
}
