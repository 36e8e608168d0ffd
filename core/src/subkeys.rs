//! Sub-keys (issue 25): keys an account key makes that spend the account's balance, each with
//! its own name, caps (credits per UTC day, per UTC month, in total), allowed models and a rate
//! plan no higher than the account's. A sub-key is a key record with `parent` = the account's key
//! id; admission (`admit_v6`) checks its status, its account's, its models, its plan's window and
//! the account's, and keeps `spend in the period + open holds + this hold` within every cap in the
//! same round trip as the balance; settlement (`settle_v6`) moves the hold to its spend and names
//! it in the call's ledger entry. A sub-key manages no keys and buys nothing (403).
//!
//! This module: the inputs (`POST /v1/keys`), the `subkeys_v1` script's arguments and replies, the
//! sub-key views (`GET /v1/keys`, `/v1/balance` of a sub-key) and the flows the worker calls.
//! The rules and the API: `docs/accounts.md#sub-keys`.

use crate::accounts::read_caller;
use crate::call::Call;
use crate::error::{ApiError, ErrorKind};
use crate::keys::{hash_key, is_key_id};
use crate::money::parse_credits;
use crate::ratelimit::RateLimits;
use crate::scripts::{self, bad_reply, KeyView};
use crate::store::Store;
use serde_json::{json, Map, Value};

pub use crate::sub_key_fields::{cap_reached, model_not_allowed, Caps, Spend, SubKeyFields, READ_FIELDS};
use crate::sub_key_fields::{int, models_of, text};

/// The most sub-keys an account may have at once (revoked ones leave the count).
pub const MAX_SUB_KEYS: u64 = 100;
/// The most models a sub-key may be limited to.
const MAX_MODELS: usize = 100;
/// The fields `POST /v1/keys` accepts; any other is a 400 naming it.
const CREATE_FIELDS: [&str; 6] = ["name", "plan", "daily_cap", "monthly_cap", "total_cap", "models"];

/// A sub-key to create, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSubKey {
    pub name: String,
    pub plan: String,
    pub caps: Caps,
    pub models: Vec<String>,
}

fn field_error(field: &str, why: impl std::fmt::Display) -> ApiError {
    ApiError::invalid(format!("`{field}` {why}")).with_details(json!({ "param": field }))
}

/// Whether plan `sub` allows no more than plan `account` on every route class: a class `sub` has
/// and `account` lacks, or a higher rate (limit per window), is higher.
pub fn plan_at_most(limits: &RateLimits, sub: &str, account: &str) -> bool {
    limits.rules.iter().filter(|(p, _, _)| p == sub).all(|(_, class, s)| match limits.get(account, class) {
        None => false,
        Some(a) => u128::from(s.limit) * u128::from(a.window_ms) <= u128::from(a.limit) * u128::from(s.window_ms),
    })
}

fn cap(body: &Map<String, Value>, field: &str) -> Result<Option<i64>, ApiError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match parse_credits(v) {
            Ok(mc) if mc < 0 => Err(field_error(field, "must not be below zero (credits; omit it for no cap)")),
            Ok(mc) => Ok(Some(mc)),
            Err(e) => Err(field_error(field, format!("must be a number of credits: {e}"))),
        },
    }
}

/// Checks `POST /v1/keys`'s body: every field known, a name, caps of zero or more credits, models
/// the gateway sells (`sold`), a plan configured and no higher than the account's (default: the
/// account's). A 400 names the field.
pub fn parse_create(body: &Map<String, Value>, account_plan: &str, limits: &RateLimits, sold: &dyn Fn(&str) -> bool) -> Result<NewSubKey, ApiError> {
    if let Some(unknown) = body.keys().find(|k| !CREATE_FIELDS.contains(&k.as_str())) {
        return Err(field_error(unknown, format!("is not a field of a sub-key (fields: {})", CREATE_FIELDS.join(", "))));
    }
    let name = match body.get("name") {
        Some(Value::String(s)) if !s.trim().is_empty() && s.trim().chars().count() <= 100 && !s.chars().any(char::is_control) => s.trim().to_string(),
        _ => return Err(field_error("name", "is required: 1 to 100 characters, no control characters")),
    };
    let plan = match body.get("plan") {
        None | Some(Value::Null) => account_plan.to_string(),
        Some(Value::String(p)) if limits.has_plan(p) => p.clone(),
        Some(p) => return Err(field_error("plan", format!("{p} is not a plan of RATE_LIMITS"))),
    };
    if !plan_at_most(limits, &plan, account_plan) {
        return Err(field_error("plan", format!("`{plan}` allows more than the account's plan `{account_plan}`")));
    }
    let caps = Caps { daily: cap(body, "daily_cap")?, monthly: cap(body, "monthly_cap")?, total: cap(body, "total_cap")? };
    let models = match body.get("models") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) if !a.is_empty() && a.len() <= MAX_MODELS => {
            let mut out: Vec<String> = Vec::new();
            for m in a {
                match m.as_str() {
                    Some(id) if sold(id) => {
                        if !out.iter().any(|x| x == id) {
                            out.push(id.to_string());
                        }
                    }
                    _ => return Err(field_error("models", format!("{m} is not a model sold here (ids as /v1/models lists them: `<provider>/<model>`)"))),
                }
            }
            out
        }
        Some(_) => return Err(field_error("models", format!("must be a list of 1 to {MAX_MODELS} model ids as /v1/models lists them, or omitted for every model"))),
    };
    Ok(NewSubKey { name, plan, caps, models })
}

/// The ledger fields that lead every call of a sub-key (`admit_v6` prepends them; `settle_v6`
/// finds the sub-key by the first).
pub fn ledger_tag(sub_id: &str, name: &str) -> String {
    scripts::ledger_fragment(&[("sub_key", json!(sub_id)), ("sub_key_name", json!(name))])
}

/// `subkeys_v1`'s operations; `account` is the account key's id.
#[derive(Debug, Clone)]
pub enum SubKeyOp<'a> {
    Create { account: &'a str, sub_id: &'a str, key_hash: String, new: &'a NewSubKey },
    List { account: &'a str },
    Revoke { account: &'a str, sub_id: &'a str },
    Rotate { account: &'a str, sub_id: &'a str, new_hash: String },
}

impl SubKeyOp<'_> {
    pub fn argv(&self, now_ms: u64) -> Vec<String> {
        let head = |op: &str, account: &str| vec![op.to_string(), account.to_string(), now_ms.to_string()];
        let opt = |c: Option<i64>| c.map(|c| c.to_string()).unwrap_or_default();
        match self {
            SubKeyOp::Create { account, sub_id, key_hash, new } => {
                let models = if new.models.is_empty() { String::new() } else { format!(",{},", new.models.join(",")) };
                let mut v = head("create", account);
                v.extend([
                    sub_id.to_string(),
                    key_hash.clone(),
                    new.name.clone(),
                    new.plan.clone(),
                    opt(new.caps.daily),
                    opt(new.caps.monthly),
                    opt(new.caps.total),
                    models,
                    ledger_tag(sub_id, &new.name),
                    MAX_SUB_KEYS.to_string(),
                ]);
                v
            }
            SubKeyOp::List { account } => head("list", account),
            SubKeyOp::Revoke { account, sub_id } => {
                let mut v = head("revoke", account);
                v.push(sub_id.to_string());
                v
            }
            SubKeyOp::Rotate { account, sub_id, new_hash } => {
                let mut v = head("rotate", account);
                v.extend([sub_id.to_string(), new_hash.clone()]);
                v
            }
        }
    }
}

/// A sub-key as `subkeys_v1 list` returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedSubKey {
    pub id: String,
    pub name: String,
    pub status: String,
    pub plan: String,
    pub created_ms: Option<i64>,
    pub last_used_ms: Option<i64>,
    pub rotated_ms: Option<i64>,
    pub fields: SubKeyFields,
}

impl ListedSubKey {
    /// One row: id, name, status, plan, created, last used, rotated, revoked, the three caps,
    /// models, day spend and day, month spend and month, total spend, held.
    fn decode(row: &Value, account: &str) -> Option<ListedSubKey> {
        let id = text(row, 0);
        is_key_id(&id).then_some(())?;
        Some(ListedSubKey {
            name: text(row, 1),
            status: text(row, 2),
            plan: text(row, 3),
            created_ms: int(row, 4),
            last_used_ms: int(row, 5),
            rotated_ms: int(row, 6),
            fields: SubKeyFields {
                parent: account.to_string(),
                parent_status: "active".into(),
                models: models_of(&text(row, 11)),
                caps: Caps { daily: int(row, 8), monthly: int(row, 9), total: int(row, 10) },
                spend: Spend {
                    day_mc: int(row, 12).unwrap_or(0),
                    day_at: text(row, 13),
                    month_mc: int(row, 14).unwrap_or(0),
                    month_at: text(row, 15),
                    total_mc: int(row, 16).unwrap_or(0),
                    held_mc: int(row, 17).unwrap_or(0),
                },
            },
            id,
        })
    }

    pub fn json(&self, today: &str) -> Value {
        let mut v = json!({
            "id": self.id, "name": self.name, "status": self.status, "plan": self.plan,
            "created_ms": self.created_ms, "last_used_ms": self.last_used_ms, "rotated_ms": self.rotated_ms,
        });
        if let (Some(o), Value::Object(more)) = (v.as_object_mut(), self.fields.json(today)) {
            o.extend(more);
        }
        v
    }
}

/// What `subkeys_v1` answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubKeyReply {
    /// Done (`create`: the account's sub-key count after it).
    Ok(u64),
    Listed(Vec<ListedSubKey>),
    /// No such sub-key of this account.
    Missing,
    /// The caller is a sub-key.
    Forbidden,
    /// The account (or, for `rotate`, the sub-key) is revoked.
    Revoked,
    /// The id or the key hash is taken (a random collision: retry).
    Exists,
    TooMany(u64),
}

impl SubKeyReply {
    pub fn decode(v: &Value, account: &str) -> Result<SubKeyReply, ApiError> {
        let r = match text(v, 0).as_str() {
            "ok" => Some(SubKeyReply::Ok(int(v, 1).unwrap_or(0).max(0) as u64)),
            "list" => v.as_array().and_then(|a| a.iter().skip(1).map(|row| ListedSubKey::decode(row, account)).collect::<Option<Vec<_>>>()).map(SubKeyReply::Listed),
            "missing" => Some(SubKeyReply::Missing),
            "forbidden" => Some(SubKeyReply::Forbidden),
            "revoked" => Some(SubKeyReply::Revoked),
            "exists" => Some(SubKeyReply::Exists),
            "too_many" => int(v, 1).map(|n| SubKeyReply::TooMany(n.max(0) as u64)),
            _ => None,
        };
        r.ok_or_else(|| bad_reply(scripts::SUBKEYS.name, v))
    }
}

async fn run<S: Store>(store: &S, op: &SubKeyOp<'_>, account: &str, now_ms: u64) -> Result<SubKeyReply, ApiError> {
    SubKeyReply::decode(&store.eval(&scripts::SUBKEYS, op.argv(now_ms)).await?, account)
}

/// 403 for a sub-key on what only its account may do (`what`: "manage keys", "buy credits"…).
pub fn forbid_sub_key(k: &KeyView, what: &str) -> Result<(), ApiError> {
    crate::sub_key_fields::forbid(k.sub.as_ref(), what)
}

/// The calling key, which must be an account key.
async fn account<S: Store>(store: &S, call: &impl Call, key: &str) -> Result<KeyView, ApiError> {
    let k = read_caller(store, call, key, 0, 0).await?;
    forbid_sub_key(&k, "manage keys")?;
    Ok(k)
}

fn sub_id(id: &str) -> Result<&str, ApiError> {
    if is_key_id(id) {
        Ok(id)
    } else {
        Err(ApiError::not_found(format!("`{id}` is not a key id (key_ + 16 hex)")))
    }
}

fn unexpected(reply: SubKeyReply) -> ApiError {
    match reply {
        SubKeyReply::Missing => ApiError::not_found("this account has no such sub-key"),
        SubKeyReply::Forbidden => ApiError::new(ErrorKind::Forbidden, "a sub-key cannot manage keys: use its account key"),
        SubKeyReply::Revoked => ApiError::invalid("a revoked sub-key cannot be rotated"),
        SubKeyReply::TooMany(n) => ApiError::invalid(format!("this account has {n} sub-keys, the most it may have ({MAX_SUB_KEYS}): revoke one first")).with_details(json!({ "code": "too_many_sub_keys" })),
        other => ApiError::internal(format!("{}: unexpected {other:?}", scripts::SUBKEYS.name)),
    }
}

/// `POST /v1/keys`: a new sub-key of the caller's account, its plaintext shown once.
pub async fn create<S: Store>(store: &S, call: &impl Call, key: &str, body: &Map<String, Value>, sold: &dyn Fn(&str) -> bool) -> Result<Value, ApiError> {
    let k = account(store, call, key).await?;
    let new = parse_create(body, &k.plan, &call.settings().limits, sold)?;
    let (plaintext, id) = (call.new_plaintext_key()?, call.new_key_id()?);
    let op = SubKeyOp::Create { account: &k.key_id, sub_id: &id, key_hash: hash_key(&plaintext), new: &new };
    match run(store, &op, &k.key_id, call.now_ms()).await? {
        SubKeyReply::Ok(_) => {
            let listed = ListedSubKey {
                id: id.clone(),
                name: new.name.clone(),
                status: "active".into(),
                plan: new.plan.clone(),
                created_ms: i64::try_from(call.now_ms()).ok(),
                last_used_ms: None,
                rotated_ms: None,
                fields: SubKeyFields { parent: k.key_id.clone(), parent_status: "active".into(), models: new.models.clone(), caps: new.caps, spend: Spend::default() },
            };
            let mut v = listed.json(&call.today());
            v["api_key"] = json!(plaintext);
            v["account_key_id"] = json!(k.key_id);
            v["note"] = json!("the api_key is shown only once; it is stored as a SHA-256 hash. It spends this account's balance within its caps");
            Ok(v)
        }
        SubKeyReply::Exists => Err(ApiError::unavailable("key collision; retry")),
        other => Err(unexpected(other)),
    }
}

/// `GET /v1/keys`: the account's active sub-keys with their caps and spend.
pub async fn list<S: Store>(store: &S, call: &impl Call, key: &str) -> Result<Value, ApiError> {
    let k = account(store, call, key).await?;
    match run(store, &SubKeyOp::List { account: &k.key_id }, &k.key_id, call.now_ms()).await? {
        SubKeyReply::Listed(keys) => {
            let today = call.today();
            Ok(json!({ "account_key_id": k.key_id, "max_sub_keys": MAX_SUB_KEYS, "count": keys.len(), "keys": keys.iter().map(|s| s.json(&today)).collect::<Vec<_>>() }))
        }
        other => Err(unexpected(other)),
    }
}

/// `POST /v1/keys/{id}/revoke`: the sub-key stops working now; the account is untouched.
pub async fn revoke<S: Store>(store: &S, call: &impl Call, key: &str, id: &str) -> Result<Value, ApiError> {
    let k = account(store, call, key).await?;
    let id = sub_id(id)?;
    match run(store, &SubKeyOp::Revoke { account: &k.key_id, sub_id: id }, &k.key_id, call.now_ms()).await? {
        SubKeyReply::Ok(_) => Ok(json!({ "id": id, "status": "revoked" })),
        other => Err(unexpected(other)),
    }
}

/// `POST /v1/keys/{id}/rotate`: a new plaintext for the sub-key; caps, spend and ledger stay.
pub async fn rotate<S: Store>(store: &S, call: &impl Call, key: &str, id: &str) -> Result<Value, ApiError> {
    let k = account(store, call, key).await?;
    let id = sub_id(id)?;
    let plaintext = call.new_plaintext_key()?;
    match run(store, &SubKeyOp::Rotate { account: &k.key_id, sub_id: id, new_hash: hash_key(&plaintext) }, &k.key_id, call.now_ms()).await? {
        SubKeyReply::Ok(_) => Ok(json!({ "id": id, "api_key": plaintext, "note": "shown only once; the old sub-key stops working now; caps and spend are kept" })),
        SubKeyReply::Exists => Err(ApiError::unavailable("key collision; retry")),
        other => Err(unexpected(other)),
    }
}

/// What `GET /admin/keys/{id}` adds: a sub-key's account (`parent`), caps and spend; an account
/// key's sub-keys with their spend.
pub async fn admin_fields<S: Store>(store: &S, k: &KeyView, today: &str, now_ms: u64) -> Result<Vec<(&'static str, Value)>, ApiError> {
    if let Some(s) = &k.sub {
        return Ok(vec![("parent", json!(s.parent)), ("sub_key", s.json(today))]);
    }
    match run(store, &SubKeyOp::List { account: &k.key_id }, &k.key_id, now_ms).await? {
        SubKeyReply::Listed(keys) => Ok(vec![("sub_keys", json!(keys.iter().map(|s| s.json(today)).collect::<Vec<_>>()))]),
        other => Err(unexpected(other)),
    }
}

/// The `sub_key` object of a sub-key's `/v1/balance`: its account, caps, spend and what is left.
pub fn balance_fields(k: &KeyView, today: &str) -> Option<Value> {
    let s = k.sub.as_ref()?;
    let mut v = s.json(today);
    v["id"] = json!(k.key_id);
    v["name"] = json!(k.name);
    v["account_key_id"] = json!(s.parent);
    Some(v)
}

#[cfg(test)]
#[path = "subkeys_tests.rs"]
mod tests;
