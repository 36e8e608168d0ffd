//! The admin flows behind `/admin/*`: the secret check, credit grants and adjustments, creating,
//! rotating and revoking keys, importing the original product's balances, and the cost/revenue
//! report. Every one takes parsed inputs and the store, and returns the answer's body.
//!
//! Leaves out: reading the request and rendering the answer (the worker), the secret's value
//! (the worker's secrets; its strength rule is `crate::config`'s).

use crate::accounts::{balance_json, ledger_json, read_by_id};
use crate::call::Call;
use crate::config::Secret;
use crate::error::{ApiError, ErrorKind};
use crate::keys;
use crate::money::{credits_json, parse_credits};
use crate::redis_keys::{self as rk, StatsScope};
use crate::scripts::{ledger_fragment, CreditReply, KeyOpReply, KeyView};
use crate::store::{Credit, CreditTarget, KeyOp, Store};
use serde_json::{json, Map, Value};

/// Checks `X-Admin-Secret` (`given`). A configured secret too short to guard the surface turns it
/// off (503 naming the setting). Each attempt is counted before the compare, in one step, so that
/// parallel guesses cannot all slip in under the limit; a right secret takes its attempt back.
pub async fn guard<S: Store>(store: &S, call: &impl Call, secret: &Secret, given: &str) -> Result<(), ApiError> {
    crate::config::check_admin_secret_strength(secret.expose())?;
    let limit = call.settings().admin_failure_limit;
    let attempts = store.admin_attempt(call.client_ip(), call.now_ms(), call.request_id(), limit.window_ms).await?;
    if attempts > limit.limit {
        return Err(ApiError::new(ErrorKind::RateLimited { retry_after_secs: limit.window_secs() }, "too many failed admin attempts from this address"));
    }
    if keys::constant_time_eq(given.as_bytes(), secret.expose().as_bytes()) {
        store.admin_attempt_succeeded(call.client_ip(), call.request_id()).await?;
        return Ok(());
    }
    Err(ApiError::unauthorized("missing or wrong X-Admin-Secret"))
}

/// A key id from the path; anything else names no key (404).
pub fn key_id(id: &str) -> Result<&str, ApiError> {
    if keys::is_key_id(id) {
        Ok(id)
    } else {
        Err(ApiError::not_found(format!("`{id}` is not a key id (key_ + 16 hex)")))
    }
}

fn reason(body: &Map<String, Value>) -> Result<String, ApiError> {
    match body.get("reason").and_then(Value::as_str).map(str::trim) {
        Some(r) if !r.is_empty() && r.len() <= 500 => Ok(r.to_string()),
        _ => Err(ApiError::invalid("`reason` is required (1-500 characters): every grant lands in the ledger with it")),
    }
}

fn nonzero_credits(body: &Map<String, Value>) -> Result<i64, ApiError> {
    match parse_credits(body.get("credits").unwrap_or(&Value::Null)).map_err(ApiError::invalid)? {
        0 => Err(ApiError::invalid("`credits` must not be zero")),
        n => Ok(n),
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

/// The ledger fields of everything an admin does: why, which request, by whom.
fn admin_fragment(call: &impl Call, why: &str) -> String {
    ledger_fragment(&[("reason", json!(why)), ("ref", json!(call.request_id())), ("by", json!("admin"))])
}

/// A credit (or adjustment) by an admin, with its reason.
fn admin_credit(call: &impl Call, target: CreditTarget, amount_mc: i64, kind: &'static str, why: &str, dedupe: Vec<String>) -> Credit {
    Credit { target, amount_mc, now_ms: call.now_ms(), kind, fragment: admin_fragment(call, why), retention: call.settings().retention(), payment: None, dedupe }
}

/// A grant (positive) or adjustment (negative) of `amount` to an existing key: the answer, or
/// `None` when no key is the target.
async fn grant_to<S: Store>(store: &S, call: &impl Call, target: CreditTarget, amount: i64, why: &str) -> Result<Option<Value>, ApiError> {
    let kind = if amount > 0 { "grant" } else { "adjustment" };
    match store.credit(&admin_credit(call, target, amount, kind, why, Vec::new())).await? {
        CreditReply::Credited { key_id, balance_mc, .. } => {
            if amount > 0 {
                // A grant arms the key's low-balance watchers again, as a top-up does.
                crate::lowbal::rearm(store, &key_id).await?;
            }
            Ok(Some(json!({ "key_id": key_id, "credits_added": credits_json(amount), "credits": credits_json(balance_mc), "reason": why })))
        }
        CreditReply::UnknownKey => Ok(None),
        CreditReply::Insufficient { balance_mc } => {
            Err(ApiError::invalid(format!("an adjustment of {} would take the balance ({}) below zero", credits_json(amount), credits_json(balance_mc))))
        }
        CreditReply::Duplicate { .. } => Err(ApiError::internal("unexpected duplicate")),
    }
}

fn no_such_key() -> ApiError {
    ApiError::not_found("no such API key")
}

/// `POST /admin/keys/{id}/credits {credits, reason}`.
pub async fn grant<S: Store>(store: &S, call: &impl Call, id: &str, body: &Map<String, Value>) -> Result<Value, ApiError> {
    let target = CreditTarget::KeyId(key_id(id)?.to_string());
    let (amount, why) = (nonzero_credits(body)?, reason(body)?);
    grant_to(store, call, target, amount, &why).await?.ok_or_else(no_such_key)
}

/// Whether a new key could be made: its hash may belong to a key already (a plaintext chosen
/// twice, or a rotated-away key, whose hash is never reused).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Creation {
    Created,
    Taken,
}

/// A key to create: its id, its plaintext (stored hashed only), name, plan, first credits and why.
struct NewKey<'a> {
    id: &'a str,
    plaintext: &'a str,
    name: &'a str,
    plan: &'a str,
    initial_mc: i64,
    why: &'a str,
}

async fn create_key<S: Store>(store: &S, call: &impl Call, k: NewKey<'_>) -> Result<Creation, ApiError> {
    let op = KeyOp::Create { key_id: k.id, key_hash: keys::hash_key(k.plaintext), name: k.name, plan: k.plan, initial_mc: k.initial_mc, fragment: admin_fragment(call, k.why), keep: call.settings().ledger_keep };
    match store.key_op(&op, call.now_ms()).await? {
        KeyOpReply::Ok => Ok(Creation::Created),
        KeyOpReply::Exists => Ok(Creation::Taken),
        other => Err(ApiError::internal(format!("key creation failed: {other:?}"))),
    }
}

fn key_taken() -> ApiError {
    ApiError::invalid("that key exists already")
}

/// `POST /admin/add-credits {apiKey, credits, reason?}`, as the original guide calls it. `apiKey`
/// is a key id or a plaintext key; a plaintext key the gateway does not know yet is created
/// (stored hashed, on `DEFAULT_PLAN`) holding the credits: `"created": true`.
pub async fn add_credits<S: Store>(store: &S, call: &impl Call, body: &Map<String, Value>) -> Result<Value, ApiError> {
    let who = body.get("apiKey").or_else(|| body.get("key_id")).and_then(Value::as_str).unwrap_or("");
    let amount = nonzero_credits(body)?;
    let why = reason(body).unwrap_or_else(|_| "credits added with /admin/add-credits".into());
    if let Some(target) = CreditTarget::key_id(who) {
        return grant_to(store, call, target, amount, &why).await?.ok_or_else(no_such_key);
    }
    if who.is_empty() {
        return Err(ApiError::invalid("`apiKey` (a key or a key id) is required"));
    }
    let plaintext = chosen_key(who)?;
    call.keep_secret(plaintext);
    if let Some(granted) = grant_to(store, call, CreditTarget::plaintext(plaintext), amount, &why).await? {
        return Ok(granted);
    }
    if amount < 0 {
        return Err(no_such_key());
    }
    let plan = call.settings().default_plan.clone();
    let id = call.new_key_id()?;
    match create_key(store, call, NewKey { id: &id, plaintext, name: "added with /admin/add-credits", plan: &plan, initial_mc: amount, why: &why }).await? {
        Creation::Created => Ok(json!({ "key_id": id, "created": true, "plan": plan, "credits_added": credits_json(amount), "credits": credits_json(amount), "reason": why })),
        Creation::Taken => Err(ApiError::not_found("no active key has that plaintext (a rotated-away key is never reused); use the key id")),
    }
}

/// `POST /admin/import-keys {cursor?, count?}`: imports a page of the original product's balances
/// (`user:<key>:credits`), once each: every key becomes a hashed key on `DEFAULT_PLAN` with its
/// balance and an `import` ledger entry. Run it until `next_cursor` is null (`npm run
/// import-keys` does); running it again changes nothing.
pub async fn import_keys<S: Store>(store: &S, call: &impl Call, body: &Map<String, Value>) -> Result<Value, ApiError> {
    let (cursor, count) = keys::import_page(body.get("cursor"), body.get("count")).map_err(ApiError::invalid)?;
    let page = store.legacy_balances(&cursor, count).await?;
    let (mut imported, mut skipped) = (Vec::new(), Vec::new());
    for b in &page.balances {
        let Ok(plaintext) = chosen_key(&b.key) else {
            skipped.push(json!({ "redis_key": "(not a key name)", "reason": "the key in the name is not 8 to 200 visible characters" }));
            continue;
        };
        call.keep_secret(plaintext);
        let hash = keys::hash_key(plaintext);
        let amount = match b.value.as_deref().map(|v| parse_credits(&json!(v))) {
            Some(Ok(mc)) if mc > 0 => mc,
            _ => {
                skipped.push(json!({ "key_hash": hash, "reason": "no positive credit balance" }));
                continue;
            }
        };
        let credit = admin_credit(call, CreditTarget::KeyHash(hash.clone()), amount, "import", "imported from the original product (user:<key>:credits)", vec![rk::legacy_import(&hash)]);
        let mut reply = store.credit(&credit).await?;
        let mut created = false;
        if reply == CreditReply::UnknownKey {
            let id = call.new_key_id()?;
            if create_key(store, call, NewKey { id: &id, plaintext, name: "imported from the original product", plan: &call.settings().default_plan, initial_mc: 0, why: "" }).await? == Creation::Taken {
                return Err(key_taken());
            }
            created = true;
            reply = store.credit(&credit).await?;
        }
        match reply {
            CreditReply::Credited { key_id, .. } => imported.push(json!({ "key_id": key_id, "credits": credits_json(amount), "created": created })),
            _ => skipped.push(json!({ "key_hash": hash, "reason": "imported already" })),
        }
    }
    Ok(json!({ "imported": imported, "skipped": skipped, "next_cursor": page.next_cursor }))
}

/// `POST /admin/keys {name, plan?, credits?, reason?}`: a new 256-bit key, shown once.
pub async fn create<S: Store>(store: &S, call: &impl Call, body: &Map<String, Value>) -> Result<Value, ApiError> {
    let name = body.get("name").and_then(Value::as_str).unwrap_or("").trim().to_string();
    if name.is_empty() || name.len() > 200 {
        return Err(ApiError::invalid("`name` is required (1-200 characters)"));
    }
    let settings = call.settings();
    let plan = body.get("plan").and_then(Value::as_str).unwrap_or(&settings.default_plan).to_string();
    if !settings.limits.has_plan(&plan) {
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
    let (plaintext, id) = (call.new_plaintext_key()?, call.new_key_id()?);
    if create_key(store, call, NewKey { id: &id, plaintext: &plaintext, name: &name, plan: &plan, initial_mc: initial, why: &why }).await? == Creation::Taken {
        return Err(key_taken());
    }
    Ok(json!({
        "id": id, "api_key": plaintext, "name": name, "plan": plan, "credits": credits_json(initial),
        "note": "the api_key is shown only once; it is stored as a SHA-256 hash",
    }))
}

fn key_op_failed(reply: KeyOpReply) -> ApiError {
    match reply {
        KeyOpReply::Missing => no_such_key(),
        KeyOpReply::Revoked => ApiError::invalid("a revoked key cannot be rotated"),
        _ => ApiError::internal("key collision; retry"),
    }
}

/// `POST /admin/keys/{id}/rotate`: a new key for the same balance and ledger.
pub async fn rotate<S: Store>(store: &S, call: &impl Call, id: &str) -> Result<Value, ApiError> {
    let id = key_id(id)?;
    let new_key = call.new_plaintext_key()?;
    match store.key_op(&KeyOp::Rotate { key_id: id, new_hash: keys::hash_key(&new_key), current_hash: None }, call.now_ms()).await? {
        KeyOpReply::Ok => Ok(json!({"id": id, "api_key": new_key, "note": "the old key stops working now; balance and ledger are kept"})),
        other => Err(key_op_failed(other)),
    }
}

/// `POST /admin/keys/{id}/revoke`.
pub async fn revoke<S: Store>(store: &S, call: &impl Call, id: &str) -> Result<Value, ApiError> {
    let id = key_id(id)?;
    match store.key_op(&KeyOp::Revoke { key_id: id }, call.now_ms()).await? {
        KeyOpReply::Ok => Ok(json!({"id": id, "status": "revoked"})),
        other => Err(key_op_failed(other)),
    }
}

/// `GET /admin/keys/{id}`: the record with its balance.
pub async fn get_key<S: Store>(store: &S, call: &impl Call, id: &str) -> Result<Value, ApiError> {
    let k = read_by_id(store, key_id(id)?, 0, 0).await?.ok_or_else(no_such_key)?;
    let mut v = key_json(&k, &call.settings().usd_per_credit);
    for (f, x) in crate::subkeys::admin_fields(store, &k, &call.today(), call.now_ms()).await? {
        v[f] = x;
    }
    Ok(v)
}

/// `GET /admin/keys/{id}/ledger?limit=&offset=`.
pub async fn key_ledger<S: Store>(store: &S, id: &str, query: &[(String, String)]) -> Result<Value, ApiError> {
    let id = key_id(id)?;
    let (offset, limit) = crate::accounts::page(query)?;
    let k = read_by_id(store, id, offset, limit).await?.ok_or_else(no_such_key)?;
    Ok(ledger_json(&k, offset, limit))
}

fn key_json(k: &KeyView, usd_per_credit: &str) -> Value {
    let mut v = balance_json(k, usd_per_credit);
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

/// `GET /admin/unmatched-payments`.
pub async fn unmatched<S: Store>(store: &S) -> Result<Value, ApiError> {
    let entries = store.unmatched().await?;
    Ok(json!({ "count": entries.len(), "entries": entries }))
}

/// The report's dates and scope from `?from=&to=` (both default to today) and at most one of
/// `key_id`, `rapidapi_user`, `rapidapi_plan`.
pub fn stats_query(call: &impl Call, query: &[(String, String)]) -> Result<(String, String, StatsScope), ApiError> {
    let today = call.today();
    let (mut from, mut to, mut scope) = (today.clone(), today, StatsScope::All);
    for (k, v) in query {
        let (k, v) = (k.as_str(), v.as_str());
        let one_scope = |s: StatsScope| if scope != StatsScope::All { Err(ApiError::invalid("name one of key_id, rapidapi_user, rapidapi_plan")) } else { Ok(s) };
        match k {
            "from" => from = v.to_string(),
            "to" => to = v.to_string(),
            "key_id" => scope = one_scope(StatsScope::Key(key_id(v).map_err(|_| ApiError::invalid(format!("`key_id` {v} is not a key id")))?.to_string()))?,
            "rapidapi_user" => scope = one_scope(StatsScope::RapidUser(crate::rapidapi::user_id(v)?))?,
            "rapidapi_plan" => {
                let plan = crate::rapidapi::plan_of(&call.settings().rapidapi_plans, v).map_err(|_| ApiError::invalid(format!("`rapidapi_plan` {v} is not in RAPIDAPI_PLANS")))?.0;
                scope = one_scope(StatsScope::RapidPlan(plan.to_string()))?
            }
            _ => {}
        }
    }
    Ok((from, to, scope))
}

/// `GET /admin/stats`: cost versus revenue per day and model, and the days' payments (none for a
/// RapidAPI scope: RapidAPI's customers pay RapidAPI).
pub async fn stats<S: Store>(store: &S, call: &impl Call, (from, to, scope): (String, String, StatsScope)) -> Result<Value, ApiError> {
    let days = crate::stats::days(&from, &to)?;
    let (calls, payments) = store.stats_rollups(&days, &scope).await?;
    let usd_per_credit = &call.settings().usd_per_credit;
    let upc = crate::money::Decimal::parse(usd_per_credit).map_err(ApiError::invalid)?;
    let rapid = scope.is_rapidapi();
    let payments = if rapid { Vec::new() } else { payments };
    let key = match &scope {
        StatsScope::Key(id) => Some(id.as_str()),
        _ => None,
    };
    let mut report = crate::stats::report(&days, &calls, &payments, &upc, key, crate::stats::View::Admin);
    report["usd_per_credit"] = json!(usd_per_credit);
    if rapid {
        report["scope"] = json!(scope.suffix());
    }
    Ok(report)
}
