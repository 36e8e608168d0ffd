//! `/admin/*`: key management and credit grants, behind `X-Admin-Secret` (constant-time compare;
//! repeated wrong secrets from one address are rate limited).

use crate::account::{balance_json, ledger_json, page, read_key};
use crate::context::{random_hex, Ctx};
use crate::http::{json, read_body, HandlerResult};
use broker_core::error::{ApiError, ErrorKind};
use broker_core::keys;
use broker_core::money::{credits_json, parse_credits};
use broker_core::scripts::{ledger_fragment, CreditReply, KeyOpReply, KeyView};
use broker_core::store::{Credit, KeyOp, Store};
use serde_json::{json, Map, Value};
use worker::{Method, Request};

async fn guard(ctx: &Ctx, req: &Request) -> Result<(), ApiError> {
    let secret = ctx.secret("ADMIN_SECRET")?;
    let limit = ctx.settings().admin_failure_limit;
    let store = ctx.store()?;
    // Count this attempt before comparing, in one step, so parallel guesses cannot all slip in
    // under the limit; a right secret takes its attempt back.
    let attempts = store.admin_attempt(ctx.client_ip(), ctx.now_ms(), ctx.request_id(), limit.window_ms).await?;
    if attempts > limit.limit {
        return Err(ApiError::new(ErrorKind::RateLimited { retry_after_secs: limit.window_secs() }, "too many failed admin attempts from this address"));
    }
    let given = req.headers().get("x-admin-secret").ok().flatten().unwrap_or_default();
    if keys::constant_time_eq(given.as_bytes(), secret.expose().as_bytes()) {
        return store.admin_attempt_succeeded(ctx.client_ip(), ctx.request_id()).await;
    }
    Err(ApiError::unauthorized("missing or wrong X-Admin-Secret"))
}

async fn body_object(ctx: &Ctx, req: &mut Request) -> Result<Map<String, Value>, ApiError> {
    let bytes = read_body(req, ctx.settings().max_body_bytes).await?;
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
        Err(ApiError::not_found(format!("`{id}` is not a key id (key_ + 16 hex)")))
    }
}

fn key_json(ctx: &Ctx, k: &KeyView) -> Value {
    let mut v = balance_json(ctx, k);
    for (f, x) in [
        ("id", json!(k.key_id)),
        ("name", json!(k.name)),
        ("status", json!(k.status)),
        ("charged_total_credits", credits_json(k.charged_total_mc)),
        ("created_ms", json!(k.created_ms)),
        ("last_used_ms", json!(k.last_used_ms)),
        ("rotated_ms", json!(k.rotated_ms)),
        ("revoked_ms", json!(k.revoked_ms)),
        ("ledger_entries", json!(k.ledger_len)),
    ] {
        v[f] = x;
    }
    v
}

async fn grant(ctx: &Ctx, target: String, body: &Map<String, Value>) -> HandlerResult {
    let amount = parse_credits(body.get("credits").unwrap_or(&Value::Null)).map_err(ApiError::invalid)?;
    if amount == 0 {
        return Err(ApiError::invalid("`credits` must not be zero"));
    }
    let why = reason(body)?;
    let c = Credit {
        target,
        amount_mc: amount,
        now_ms: ctx.now_ms(),
        kind: if amount > 0 { "grant" } else { "adjustment" },
        fragment: ledger_fragment(&[("reason", json!(why)), ("ref", json!(ctx.request_id())), ("by", json!("admin"))]),
        keep: ctx.settings().ledger_keep,
        payment: None,
        dedupe: Vec::new(),
    };
    match ctx.store()?.credit(&c).await? {
        CreditReply::Credited { key_id, balance_mc, .. } => {
            Ok(json(200, &json!({ "key_id": key_id, "credits_added": credits_json(amount), "credits": credits_json(balance_mc), "reason": why }), &[]))
        }
        CreditReply::UnknownKey => Err(ApiError::not_found("no such API key")),
        CreditReply::Insufficient { balance_mc } => {
            Err(ApiError::invalid(format!("an adjustment of {} would take the balance ({}) below zero", credits_json(amount), credits_json(balance_mc))))
        }
        CreditReply::Duplicate { .. } => Err(ApiError::internal("unexpected duplicate")),
    }
}

async fn create(ctx: &Ctx, body: &Map<String, Value>) -> HandlerResult {
    let name = body.get("name").and_then(Value::as_str).unwrap_or("").trim().to_string();
    if name.is_empty() || name.len() > 200 {
        return Err(ApiError::invalid("`name` is required (1-200 characters)"));
    }
    let plan = body.get("plan").and_then(Value::as_str).unwrap_or(&ctx.settings().default_plan).to_string();
    if !ctx.settings().limits.has_plan(&plan) {
        return Err(ApiError::invalid(format!("plan `{plan}` is not configured in RATE_LIMITS")));
    }
    let initial = match body.get("credits") {
        None | Some(Value::Null) => 0,
        Some(c) => parse_credits(c).map_err(ApiError::invalid)?,
    };
    if initial < 0 {
        return Err(ApiError::invalid("`credits` must not be negative"));
    }
    let why = if initial > 0 { reason(body).unwrap_or_else(|_| "initial credits".into()) } else { String::new() };
    let plaintext = format!("{}{}", keys::KEY_PREFIX, random_hex(32)?);
    let id = format!("key_{}", random_hex(8)?);
    let op = KeyOp::Create {
        key_id: &id,
        key_hash: keys::hash_key(&plaintext),
        name: &name,
        plan: &plan,
        initial_mc: initial,
        fragment: ledger_fragment(&[("reason", json!(why)), ("ref", json!(ctx.request_id())), ("by", json!("admin"))]),
        keep: ctx.settings().ledger_keep,
    };
    match ctx.store()?.key_op(&op, ctx.now_ms()).await? {
        KeyOpReply::Ok => Ok(json(
            201,
            &json!({
                "id": id, "api_key": plaintext, "name": name, "plan": plan, "credits": credits_json(initial),
                "note": "the api_key is shown only once; it is stored as a SHA-256 hash",
            }),
            &[],
        )),
        other => Err(ApiError::internal(format!("key creation failed: {other:?}"))),
    }
}

async fn key_op(ctx: &Ctx, op: &str, id: &str) -> HandlerResult {
    let new_key = (op == "rotate").then(|| random_hex(32).map(|h| format!("{}{h}", keys::KEY_PREFIX))).transpose()?;
    let op = match &new_key {
        Some(k) => KeyOp::Rotate { key_id: id, new_hash: keys::hash_key(k) },
        None => KeyOp::Revoke { key_id: id },
    };
    match ctx.store()?.key_op(&op, ctx.now_ms()).await? {
        KeyOpReply::Ok => Ok(json(
            200,
            &match new_key {
                Some(k) => json!({"id": id, "api_key": k, "note": "the old key stops working now; balance and ledger are kept"}),
                None => json!({"id": id, "status": "revoked"}),
            },
            &[],
        )),
        KeyOpReply::Missing => Err(ApiError::not_found("no such API key")),
        KeyOpReply::Revoked => Err(ApiError::invalid("a revoked key cannot be rotated")),
        KeyOpReply::Exists => Err(ApiError::internal("key collision; retry")),
    }
}

pub async fn handle(ctx: &Ctx, mut req: Request, rest: &[&str]) -> HandlerResult {
    guard(ctx, &req).await?;
    match (req.method(), rest) {
        (Method::Post, ["add-credits"]) => {
            let body = body_object(ctx, &mut req).await?;
            let who = body.get("apiKey").or_else(|| body.get("key_id")).and_then(Value::as_str).unwrap_or("");
            let target = if keys::is_key_id(who) {
                format!("id:{who}")
            } else if !who.is_empty() {
                format!("hash:{}", keys::hash_key(who))
            } else {
                return Err(ApiError::invalid("`apiKey` (a key or a key id) is required"));
            };
            grant(ctx, target, &body).await
        }
        (Method::Post, ["keys"]) => create(ctx, &body_object(ctx, &mut req).await?).await,
        (Method::Get, ["unmatched-payments"]) => {
            let entries = ctx.store()?.unmatched().await?;
            Ok(json(200, &json!({ "count": entries.len(), "entries": entries }), &[]))
        }
        (Method::Get, ["keys", id]) => match read_key(ctx, &key_id(id)?, 0, 0).await? {
            Some(k) => Ok(json(200, &key_json(ctx, &k), &[])),
            None => Err(ApiError::not_found("no such API key")),
        },
        (Method::Get, ["keys", id, "ledger"]) => {
            let id = key_id(id)?;
            let (offset, limit) = page(&req)?;
            match read_key(ctx, &id, offset, limit).await? {
                Some(k) => Ok(json(200, &ledger_json(&k, offset, limit), &[])),
                None => Err(ApiError::not_found("no such API key")),
            }
        }
        (Method::Post, ["keys", id, "credits"]) => {
            let id = key_id(id)?;
            let body = body_object(ctx, &mut req).await?;
            grant(ctx, format!("id:{id}"), &body).await
        }
        (Method::Post, ["keys", id, op]) if *op == "revoke" || *op == "rotate" => key_op(ctx, op, &key_id(id)?).await,
        _ => Err(ApiError::not_found(format!("no admin route {}", rest.join("/")))),
    }
}
