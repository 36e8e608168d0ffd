//! `/admin/*`: key management and credit grants, behind `X-Admin-Secret` (constant-time compare;
//! repeated wrong secrets from one address are rate limited).

use crate::account::{ledger_json, page, read_key};
use crate::app::App;
use crate::http::{json, HandlerResult, Reply};
use broker_core::error::{ApiError, ErrorKind};
use broker_core::keys;
use broker_core::money::{credits_json, parse_credits};
use broker_core::scripts::{self, ledger_fragment, CreditReply, KeyOpReply, KeyView};
use serde_json::{json, Map, Value};
use worker::{Method, Request};

async fn guard(app: &App, req: &Request) -> Result<(), Reply> {
    let secret = app.required("ADMIN_SECRET")?;
    let (limit, window_secs) = app
        .var("ADMIN_FAILURE_LIMIT")
        .and_then(|v| v.split_once('/').and_then(|(a, b)| Some((a.trim().parse::<u64>().ok()?, b.trim().parse::<u64>().ok()?))))
        .unwrap_or((10, 900));
    let redis = app.redis()?;
    let zkey = format!("abk:adminfail:{}", app.client_ip);
    let window_ms = window_secs * 1000;
    let since = app.now_ms.saturating_sub(window_ms);
    // Count this attempt before comparing, in one step, so parallel guesses cannot all slip in
    // under the limit; a right secret takes its attempt back.
    let counts = redis
        .pipeline(vec![
            vec![json!("ZREMRANGEBYSCORE"), json!(zkey), json!("-inf"), json!(since)],
            vec![json!("ZADD"), json!(zkey), json!(app.now_ms), json!(app.request_id)],
            vec![json!("PEXPIRE"), json!(zkey), json!(window_ms)],
            vec![json!("ZCARD"), json!(zkey)],
        ])
        .await?;
    let attempts = counts.get(3).and_then(Value::as_u64).unwrap_or(u64::MAX);
    if attempts > limit {
        return Err(ApiError::new(ErrorKind::RateLimited { retry_after_secs: window_secs }, "too many failed admin attempts from this address").into());
    }
    let given = req.headers().get("x-admin-secret").ok().flatten().unwrap_or_default();
    if keys::constant_time_eq(given.as_bytes(), secret.as_bytes()) {
        redis.command(&[json!("ZREM"), json!(zkey), json!(app.request_id)]).await?;
        return Ok(());
    }
    Err(ApiError::unauthorized("missing or wrong X-Admin-Secret").into())
}

async fn body_object(req: &mut Request) -> Result<Map<String, Value>, ApiError> {
    let bytes = req.bytes().await.map_err(|e| ApiError::invalid(format!("could not read body: {e}")))?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(ApiError::invalid("body must be a JSON object")),
    }
}

fn reason(body: &Map<String, Value>) -> Result<String, ApiError> {
    match body.get("reason").and_then(Value::as_str).map(str::trim) {
        Some(r) if !r.is_empty() && r.len() <= 500 => Ok(r.to_string()),
        _ => Err(ApiError::invalid("`reason` is required (1-500 characters): every grant lands in the ledger with it")),
    }
}

fn key_id(id: &str) -> Result<String, ApiError> {
    if keys::is_key_id(id) {
        Ok(id.to_string())
    } else {
        Err(ApiError::new(ErrorKind::NotFound, format!("`{id}` is not a key id (key_ + 16 hex)")))
    }
}

fn key_json(k: &KeyView) -> Value {
    json!({
        "id": k.key_id,
        "name": k.name,
        "plan": k.plan,
        "status": k.status,
        "credits": credits_json(k.balance_mc),
        "millicredits": k.balance_mc,
        "charged_total_credits": credits_json(k.charged_total_mc),
        "created_ms": k.created_ms,
        "last_used_ms": k.last_used_ms,
        "rotated_ms": k.rotated_ms,
        "revoked_ms": k.revoked_ms,
        "ledger_entries": k.ledger_len,
    })
}

async fn grant(app: &App, target: String, body: &Map<String, Value>) -> HandlerResult {
    let amount = parse_credits(body.get("credits").unwrap_or(&Value::Null)).map_err(ApiError::invalid)?;
    if amount == 0 {
        return Err(ApiError::invalid("`credits` must not be zero").into());
    }
    let why = reason(body)?;
    let kind = if amount > 0 { "grant" } else { "adjustment" };
    let fragment = ledger_fragment(&[("reason", json!(why)), ("ref", json!(app.request_id)), ("by", json!("admin"))]);
    let v = app.redis()?.eval(&scripts::CREDIT, vec![target, amount.to_string(), app.now_ms.to_string(), kind.into(), fragment]).await?;
    match CreditReply::decode(&v)? {
        CreditReply::Credited { key_id, balance_mc } => Ok(json(
            200,
            &json!({ "key_id": key_id, "credits_added": credits_json(amount), "credits": credits_json(balance_mc), "reason": why }),
            &[],
        )),
        CreditReply::UnknownKey => Err(ApiError::new(ErrorKind::NotFound, "no such API key").into()),
        CreditReply::Insufficient { balance_mc } => Err(ApiError::invalid(format!(
            "an adjustment of {} would take the balance ({}) below zero",
            credits_json(amount),
            credits_json(balance_mc)
        ))
        .into()),
        CreditReply::Duplicate { .. } => Err(ApiError::new(ErrorKind::Internal, "unexpected duplicate").into()),
    }
}

async fn create(app: &App, body: &Map<String, Value>) -> HandlerResult {
    let name = body.get("name").and_then(Value::as_str).unwrap_or("").trim().to_string();
    if name.is_empty() || name.len() > 200 {
        return Err(ApiError::invalid("`name` is required (1-200 characters)").into());
    }
    let plan = body.get("plan").and_then(Value::as_str).map(str::to_string).or_else(|| app.var("DEFAULT_PLAN")).unwrap_or_else(|| "free".into());
    if !app.settings.limits.has_plan(&plan) {
        return Err(ApiError::invalid(format!("plan `{plan}` is not configured in RATE_LIMITS")).into());
    }
    let initial = match body.get("credits") {
        None | Some(Value::Null) => 0,
        Some(c) => parse_credits(c).map_err(ApiError::invalid)?,
    };
    if initial < 0 {
        return Err(ApiError::invalid("`credits` must not be negative").into());
    }
    let why = if initial > 0 { reason(body).unwrap_or_else(|_| "initial credits".into()) } else { String::new() };
    let mut random = [0u8; 40];
    getrandom::getrandom(&mut random).map_err(|e| ApiError::new(ErrorKind::Internal, format!("getrandom: {e}")))?;
    let mut key_bytes = [0u8; 32];
    key_bytes.copy_from_slice(&random[..32]);
    let mut id_bytes = [0u8; 8];
    id_bytes.copy_from_slice(&random[32..]);
    let plaintext = keys::format_key(&key_bytes);
    let id = keys::format_key_id(&id_bytes);
    let fragment = ledger_fragment(&[("reason", json!(why)), ("ref", json!(app.request_id)), ("by", json!("admin"))]);
    let args = vec!["create".into(), id.clone(), app.now_ms.to_string(), keys::hash_key(&plaintext), name.clone(), plan.clone(), initial.to_string(), fragment];
    match KeyOpReply::decode(&app.redis()?.eval(&scripts::KEYS, args).await?)? {
        KeyOpReply::Ok => Ok(json(
            201,
            &json!({
                "id": id, "api_key": plaintext, "name": name, "plan": plan, "credits": credits_json(initial),
                "note": "the api_key is shown only once; it is stored as a SHA-256 hash",
            }),
            &[],
        )),
        other => Err(ApiError::new(ErrorKind::Internal, format!("key creation failed: {other:?}")).into()),
    }
}

async fn key_op(app: &App, op: &str, id: &str) -> HandlerResult {
    let mut args = vec![op.to_string(), id.to_string(), app.now_ms.to_string()];
    let new_key = if op == "rotate" {
        let mut b = [0u8; 32];
        getrandom::getrandom(&mut b).map_err(|e| ApiError::new(ErrorKind::Internal, format!("getrandom: {e}")))?;
        let k = keys::format_key(&b);
        args.push(keys::hash_key(&k));
        Some(k)
    } else {
        None
    };
    match KeyOpReply::decode(&app.redis()?.eval(&scripts::KEYS, args).await?)? {
        KeyOpReply::Ok => Ok(json(
            200,
            &match new_key {
                Some(k) => json!({"id": id, "api_key": k, "note": "the old key stops working now; balance and ledger are kept"}),
                None => json!({"id": id, "status": "revoked"}),
            },
            &[],
        )),
        KeyOpReply::Missing => Err(ApiError::new(ErrorKind::NotFound, "no such API key").into()),
        KeyOpReply::Revoked => Err(ApiError::invalid("a revoked key cannot be rotated").into()),
        KeyOpReply::Exists => Err(ApiError::new(ErrorKind::Internal, "key collision; retry").into()),
    }
}

/// Payments that were received but credited to nobody, newest first.
async fn unmatched_payments(app: &App) -> HandlerResult {
    let v = app.redis()?.command(&[json!("HGETALL"), json!("abk:unmatched_payments")]).await?;
    let mut entries: Vec<Value> = v
        .as_array()
        .map(|a| a.iter().skip(1).step_by(2).filter_map(|e| e.as_str().and_then(|s| serde_json::from_str(s).ok())).collect())
        .unwrap_or_default();
    entries.sort_by_key(|e| std::cmp::Reverse(e.get("ts").and_then(Value::as_u64).unwrap_or(0)));
    Ok(json(200, &json!({ "count": entries.len(), "entries": entries }), &[]))
}

pub async fn handle(app: &App, mut req: Request, rest: &[&str]) -> HandlerResult {
    guard(app, &req).await?;
    let method = req.method();
    match (method, rest) {
        (Method::Post, ["add-credits"]) => {
            let body = body_object(&mut req).await?;
            let who = body.get("apiKey").or_else(|| body.get("key_id")).and_then(Value::as_str).unwrap_or("");
            let target = if keys::is_key_id(who) {
                format!("id:{who}")
            } else if !who.is_empty() {
                format!("hash:{}", keys::hash_key(who))
            } else {
                return Err(ApiError::invalid("`apiKey` (a key or a key id) is required").into());
            };
            grant(app, target, &body).await
        }
        (Method::Post, ["keys"]) => create(app, &body_object(&mut req).await?).await,
        (Method::Get, ["unmatched-payments"]) => unmatched_payments(app).await,
        (Method::Get, ["keys", id]) => {
            let id = key_id(id)?;
            match read_key(app, &id, 0, 0).await? {
                Some(k) => Ok(json(200, &key_json(&k), &[])),
                None => Err(ApiError::new(ErrorKind::NotFound, "no such API key").into()),
            }
        }
        (Method::Get, ["keys", id, "ledger"]) => {
            let id = key_id(id)?;
            let (offset, limit) = page(&req)?;
            match read_key(app, &id, offset, limit).await? {
                Some(k) => Ok(json(200, &ledger_json(&k, offset, limit), &[])),
                None => Err(ApiError::new(ErrorKind::NotFound, "no such API key").into()),
            }
        }
        (Method::Post, ["keys", id, "credits"]) => {
            let id = key_id(id)?;
            let body = body_object(&mut req).await?;
            grant(app, format!("id:{id}"), &body).await
        }
        (Method::Post, ["keys", id, op]) if *op == "revoke" || *op == "rotate" => key_op(app, op, &key_id(id)?).await,
        _ => Err(ApiError::new(ErrorKind::NotFound, format!("no admin route {}", rest.join("/"))).into()),
    }
}
