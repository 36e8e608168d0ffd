//! `/admin/*`: key management and credit grants, behind `X-Admin-Secret` (constant-time compare;
//! repeated wrong secrets from one address are rate limited).

use crate::account::{balance_json, ledger_json, page, read_key};
use crate::context::{random_hex, Ctx};
use crate::http::{json, read_body, HandlerResult};
use broker_core::error::{ApiError, ErrorKind};
use broker_core::keys;
use broker_core::money::{credits_json, parse_credits};
use broker_core::scripts::{ledger_fragment, CreditReply, KeyOpReply, KeyView};
use broker_core::redis_keys as rk;
use broker_core::store::{Credit, KeyOp, Store};
use serde_json::{json, Map, Value};
use broker_core::routes::Endpoint;
use worker::Request;

/// Proof that this request passed [`guard`]: the admin handlers take one, and only `guard` makes
/// it (its field is private), so no dispatch path can reach them without the secret.
pub struct AdminPass(());

/// Checks `X-Admin-Secret`. A configured secret shorter than [`broker_core::config::MIN_ADMIN_SECRET_LEN`]
/// characters turns the admin surface off (503 naming the setting) rather than guard it weakly.
pub async fn guard(ctx: &Ctx, req: &Request) -> Result<AdminPass, ApiError> {
    let secret = ctx.secret("ADMIN_SECRET")?;
    broker_core::config::check_admin_secret_strength(secret.expose())?;
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
        store.admin_attempt_succeeded(ctx.client_ip(), ctx.request_id()).await?;
        return Ok(AdminPass(()));
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

/// A credit (or adjustment) by an admin, with its reason.
fn admin_credit(ctx: &Ctx, target: String, amount_mc: i64, kind: &'static str, why: &str, dedupe: Vec<String>) -> Credit {
    Credit {
        target,
        amount_mc,
        now_ms: ctx.now_ms(),
        kind,
        fragment: ledger_fragment(&[("reason", json!(why)), ("ref", json!(ctx.request_id())), ("by", json!("admin"))]),
        retention: ctx.settings().retention(),
        payment: None,
        dedupe,
    }
}

fn credits(body: &Map<String, Value>) -> Result<i64, ApiError> {
    match parse_credits(body.get("credits").unwrap_or(&Value::Null)).map_err(ApiError::invalid)? {
        0 => Err(ApiError::invalid("`credits` must not be zero")),
        n => Ok(n),
    }
}

fn granted(key_id: &str, amount: i64, balance_mc: i64, why: &str) -> HandlerResult {
    Ok(json(200, &json!({ "key_id": key_id, "credits_added": credits_json(amount), "credits": credits_json(balance_mc), "reason": why }), &[]))
}

async fn grant(ctx: &Ctx, target: String, amount: i64, why: &str) -> HandlerResult {
    let kind = if amount > 0 { "grant" } else { "adjustment" };
    match ctx.store()?.credit(&admin_credit(ctx, target, amount, kind, why, Vec::new())).await? {
        CreditReply::Credited { key_id, balance_mc, .. } => granted(&key_id, amount, balance_mc, why),
        CreditReply::UnknownKey => Err(ApiError::not_found("no such API key")),
        CreditReply::Insufficient { balance_mc } => {
            Err(ApiError::invalid(format!("an adjustment of {} would take the balance ({}) below zero", credits_json(amount), credits_json(balance_mc))))
        }
        CreditReply::Duplicate { .. } => Err(ApiError::internal("unexpected duplicate")),
    }
}

const KEY_TAKEN: &str = "that key exists already";

/// Creates a key for `plaintext` (hashed; the plaintext is not stored). Returns its id.
async fn create_key(ctx: &Ctx, plaintext: &str, name: &str, plan: &str, initial_mc: i64, why: &str) -> Result<String, ApiError> {
    let id = format!("key_{}", random_hex(8)?);
    let op = KeyOp::Create {
        key_id: &id,
        key_hash: keys::hash_key(plaintext),
        name,
        plan,
        initial_mc,
        fragment: ledger_fragment(&[("reason", json!(why)), ("ref", json!(ctx.request_id())), ("by", json!("admin"))]),
        keep: ctx.settings().ledger_keep,
    };
    match ctx.store()?.key_op(&op, ctx.now_ms()).await? {
        KeyOpReply::Ok => Ok(id),
        KeyOpReply::Exists => Err(ApiError::invalid(KEY_TAKEN)),
        other => Err(ApiError::internal(format!("key creation failed: {other:?}"))),
    }
}

/// A plaintext key chosen by an admin (the original guide's `test-key-123`): at least 8 visible
/// characters. Short keys are easy to guess; `POST /admin/keys` makes 256-bit ones.
fn chosen_key(k: &str) -> Result<&str, ApiError> {
    if k.len() >= 8 && k.len() <= 200 && k.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(k)
    } else {
        Err(ApiError::invalid("`apiKey` must be a key id (key_…) or a key of 8 to 200 visible characters"))
    }
}

/// `POST /admin/add-credits {apiKey, credits, reason?}`, as the original guide calls it. `apiKey`
/// is a key id or a plaintext key; a plaintext key the gateway does not know yet is created
/// (stored hashed, on `DEFAULT_PLAN`) holding the credits: `"created": true`.
async fn add_credits(ctx: &Ctx, body: &Map<String, Value>) -> HandlerResult {
    let who = body.get("apiKey").or_else(|| body.get("key_id")).and_then(Value::as_str).unwrap_or("");
    let amount = credits(body)?;
    let why = reason(body).unwrap_or_else(|_| "credits added with /admin/add-credits".into());
    if keys::is_key_id(who) {
        return grant(ctx, format!("id:{who}"), amount, &why).await;
    }
    if who.is_empty() {
        return Err(ApiError::invalid("`apiKey` (a key or a key id) is required"));
    }
    let plaintext = chosen_key(who)?;
    ctx.keep_secret(plaintext);
    match grant(ctx, format!("hash:{}", keys::hash_key(plaintext)), amount, &why).await {
        Err(e) if e.kind == ErrorKind::NotFound && amount > 0 => {
            let plan = ctx.settings().default_plan.clone();
            let id = match create_key(ctx, plaintext, "added with /admin/add-credits", &plan, amount, &why).await {
                Err(e) if e.message == KEY_TAKEN => return Err(ApiError::not_found("no active key has that plaintext (a rotated-away key is never reused); use the key id")),
                other => other?,
            };
            let body = json!({ "key_id": id, "created": true, "plan": plan, "credits_added": credits_json(amount), "credits": credits_json(amount), "reason": why });
            Ok(json(200, &body, &[]))
        }
        other => other,
    }
}

/// `POST /admin/import-keys {cursor?, count?}`: imports the original product's balances
/// (`user:<key>:credits`), once each: every key becomes a hashed key on `DEFAULT_PLAN` with its
/// balance and an `import` ledger entry. Pages through Redis with `SCAN`; run it until
/// `next_cursor` is null (`npm run import-keys` does). Running it again changes nothing.
async fn import_keys(ctx: &Ctx, body: &Map<String, Value>) -> HandlerResult {
    let (cursor, count) = keys::import_page(body.get("cursor"), body.get("count")).map_err(ApiError::invalid)?;
    let store = ctx.store()?;
    let page = store.command(vec![json!("SCAN"), json!(cursor), json!("MATCH"), json!(rk::LEGACY_PATTERN), json!("COUNT"), json!(count)]).await?;
    let next = page.get(0).and_then(Value::as_str).unwrap_or("0").to_string();
    let names: Vec<String> = page.get(1).and_then(Value::as_array).map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect()).unwrap_or_default();
    let (mut imported, mut skipped) = (Vec::new(), Vec::new());
    for name in names {
        let Some(plaintext) = name.strip_prefix("user:").and_then(|r| r.strip_suffix(":credits")).filter(|k| chosen_key(k).is_ok()) else {
            skipped.push(json!({ "redis_key": "(not a key name)", "reason": "the key in the name is not 8 to 200 visible characters" }));
            continue;
        };
        ctx.keep_secret(plaintext);
        let value = store.command(vec![json!("GET"), json!(name)]).await?;
        let amount = match value.as_str().map(|v| parse_credits(&json!(v))) {
            Some(Ok(mc)) if mc > 0 => mc,
            _ => {
                skipped.push(json!({ "key_hash": keys::hash_key(plaintext), "reason": "no positive credit balance" }));
                continue;
            }
        };
        let hash = keys::hash_key(plaintext);
        let credit = admin_credit(ctx, format!("hash:{hash}"), amount, "import", "imported from the original product (user:<key>:credits)", vec![rk::legacy_import(&hash)]);
        let mut reply = store.credit(&credit).await?;
        let mut created = None;
        if reply == CreditReply::UnknownKey {
            created = Some(create_key(ctx, plaintext, "imported from the original product", &ctx.settings().default_plan, 0, "").await?);
            reply = store.credit(&credit).await?;
        }
        match reply {
            CreditReply::Credited { key_id, .. } => imported.push(json!({ "key_id": key_id, "credits": credits_json(amount), "created": created.is_some() })),
            _ => skipped.push(json!({ "key_hash": hash, "reason": "imported already" })),
        }
    }
    let done = next == "0";
    Ok(json(200, &json!({ "imported": imported, "skipped": skipped, "next_cursor": if done { Value::Null } else { json!(next) } }), &[]))
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
    let id = create_key(ctx, &plaintext, &name, &plan, initial, &why).await?;
    let body = json!({
        "id": id, "api_key": plaintext, "name": name, "plan": plan, "credits": credits_json(initial),
        "note": "the api_key is shown only once; it is stored as a SHA-256 hash",
    });
    Ok(json(201, &body, &[]))
}

async fn key_op(ctx: &Ctx, op: &str, id: &str) -> HandlerResult {
    let new_key = (op == "rotate").then(|| random_hex(32).map(|h| format!("{}{h}", keys::KEY_PREFIX))).transpose()?;
    let op = match &new_key {
        Some(k) => KeyOp::Rotate { key_id: id, new_hash: keys::hash_key(k), current_hash: None },
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
        KeyOpReply::Exists | KeyOpReply::OtherSubscription | KeyOpReply::Stale => Err(ApiError::internal("key collision; retry")),
    }
}

/// `GET /admin/stats?from=YYYY-MM-DD&to=YYYY-MM-DD[&key_id=…]`: cost versus revenue per day and
/// model, and the day's payments (both dates default to today).
async fn stats(ctx: &Ctx, req: &Request) -> HandlerResult {
    let url = req.url().map_err(|e| ApiError::invalid(format!("bad url: {e}")))?;
    let today = ctx.today();
    // The rollup read: all calls, one key's, one RapidAPI user's or one RapidAPI subscription's.
    let (mut from, mut to, mut scope) = (today.clone(), today, None);
    for (k, v) in url.query_pairs() {
        let one_scope = |s: String| if scope.is_some() { Err(ApiError::invalid("name one of key_id, rapidapi_user, rapidapi_plan")) } else { Ok(Some(s)) };
        match k.as_ref() {
            "from" => from = v.to_string(),
            "to" => to = v.to_string(),
            "key_id" => scope = one_scope(key_id(&v).map_err(|_| ApiError::invalid(format!("`key_id` {v} is not a key id")))?)?,
            "rapidapi_user" => scope = one_scope(format!("rapidapi:{}", broker_core::rapidapi::user_id(&v)?))?,
            "rapidapi_plan" => scope = one_scope(format!("rapidapi-plan:{}", broker_core::rapidapi::plan_of(&ctx.settings().rapidapi_plans, &v).map_err(|_| ApiError::invalid(format!("`rapidapi_plan` {v} is not in RAPIDAPI_PLANS")))?.0))?,
            _ => {}
        }
    }
    let days = broker_core::stats::days(&from, &to)?;
    let (calls, payments) = ctx.store()?.stats_rollups(&days, scope.as_deref()).await?;
    let upc = broker_core::money::Decimal::parse(&ctx.settings().usd_per_credit).map_err(ApiError::invalid)?;
    let rapid = scope.as_deref().is_some_and(|s| s.starts_with("rapidapi"));
    // RapidAPI pays through RapidAPI: the gateway's own payments are not this scope's.
    let payments = if rapid { Vec::new() } else { payments };
    let key = scope.as_deref().filter(|_| !rapid);
    let mut report = broker_core::stats::report(&days, &calls, &payments, &upc, key, broker_core::stats::View::Admin);
    report["usd_per_credit"] = json!(ctx.settings().usd_per_credit);
    if rapid {
        report["scope"] = json!(scope);
    }
    Ok(json(200, &report, &[]))
}

/// An admin endpoint; `_pass` proves that [`guard`] accepted the secret.
pub async fn handle(ctx: &Ctx, mut req: Request, endpoint: Endpoint, id: &str, _pass: AdminPass) -> HandlerResult {
    match endpoint {
        Endpoint::AdminAddCredits => add_credits(ctx, &body_object(ctx, &mut req).await?).await,
        Endpoint::AdminImportKeys => import_keys(ctx, &body_object(ctx, &mut req).await?).await,
        Endpoint::AdminCreateKey => create(ctx, &body_object(ctx, &mut req).await?).await,
        Endpoint::AdminStats => stats(ctx, &req).await,
        Endpoint::AdminUnmatchedPayments => {
            let entries = ctx.store()?.unmatched().await?;
            Ok(json(200, &json!({ "count": entries.len(), "entries": entries }), &[]))
        }
        Endpoint::AdminGetKey => match read_key(ctx, &key_id(id)?, 0, 0).await? {
            Some(k) => Ok(json(200, &key_json(ctx, &k), &[])),
            None => Err(ApiError::not_found("no such API key")),
        },
        Endpoint::AdminKeyLedger => {
            let id = key_id(id)?;
            let (offset, limit) = page(&req)?;
            match read_key(ctx, &id, offset, limit).await? {
                Some(k) => Ok(json(200, &ledger_json(&k, offset, limit), &[])),
                None => Err(ApiError::not_found("no such API key")),
            }
        }
        Endpoint::AdminGrantCredits => {
            let id = key_id(id)?;
            let body = body_object(ctx, &mut req).await?;
            grant(ctx, format!("id:{id}"), credits(&body)?, &reason(&body)?).await
        }
        Endpoint::AdminRevokeKey => key_op(ctx, "revoke", &key_id(id)?).await,
        Endpoint::AdminRotateKey => key_op(ctx, "rotate", &key_id(id)?).await,
        other => Err(ApiError::internal(format!("{other:?} is not an admin endpoint"))),
    }
}
