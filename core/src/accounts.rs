//! A key's account as its owner and admins see it: reading the record (customers by key, counted
//! against their address when the key is unknown; admins by id), the balance and ledger pages,
//! the daily usage, and a customer rotating their own key.
//!
//! Leaves out: where the key comes from (headers: the worker), admin-only flows (`crate::admin`).

use crate::call::Call;
use crate::error::ApiError;
use crate::keys::hash_key;
use crate::ledger::public_entry;
use crate::money::credits_json;
use crate::ratelimit::ip_limited_error;
use crate::redis_keys::StatsScope;
use crate::scripts::{KeyOpReply, KeyView, ReadReply};
use crate::store::{KeyOp, Read, Reader, Store};
use serde_json::{json, Map, Value};

/// A request body that must be a JSON object.
pub fn json_object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(ApiError::invalid("body must be a JSON object")),
    }
}

/// An admin read of a key by id and, optionally, a page of its ledger. `None`: no such key.
pub async fn read_by_id<S: Store>(store: &S, key_id: &str, offset: u64, count: u64) -> Result<Option<KeyView>, ApiError> {
    Ok(match store.read(&Read { who: Reader::Admin { key_id }, offset, count }).await? {
        ReadReply::Found(k) => Some(*k),
        ReadReply::Unknown { .. } => None,
    })
}

/// The calling key's record (active keys only). Unknown and revoked keys count against the
/// client address, as on the metered routes.
pub async fn read_caller<S: Store>(store: &S, call: &impl Call, key: &str, offset: u64, count: u64) -> Result<KeyView, ApiError> {
    let who = Reader::Customer { key_hash: hash_key(key), client_ip: call.client_ip(), anonymous: call.settings().limits.anonymous, now_ms: call.now_ms(), request_id: call.request_id() };
    match store.read(&Read { who, offset, count }).await? {
        ReadReply::Found(k) => Ok(*k),
        ReadReply::Unknown { limited: true, reset_ms, .. } => Err(ip_limited_error(reset_ms)),
        ReadReply::Unknown { status, .. } if status == "revoked" => Err(ApiError::unauthorized("this API key has been revoked")),
        ReadReply::Unknown { .. } => Err(ApiError::unauthorized("invalid API key")),
    }
}

/// The balance as customers and admins see it: spendable (negative: a debt), held by open calls.
pub fn balance_json(k: &KeyView, usd_per_credit: &str) -> Value {
    let mut v = json!({
        "credits": credits_json(k.balance_mc),
        "millicredits": k.balance_mc,
        "held_credits": credits_json(k.held_mc),
        "held_millicredits": k.held_mc,
        "key_id": k.key_id,
        "plan": k.plan,
        "usd_per_credit": usd_per_credit,
    });
    if k.balance_mc < 0 {
        v["debt_credits"] = credits_json(-k.balance_mc);
        v["note"] = json!("a refund took back credits that were spent or held: calls are refused until a top-up covers the debt");
    }
    v
}

/// Pagination of ledger pages from the query: `limit` (1..=200, default 50) and `offset`; other
/// parameters (cache busters) are ignored. Returns `(offset, limit)`.
pub fn page(query: &[(String, String)]) -> Result<(u64, u64), ApiError> {
    let (mut offset, mut limit) = (0, 50);
    for (k, v) in query {
        let k = k.as_str();
        if k != "limit" && k != "offset" {
            continue;
        }
        let n: u64 = v.parse().map_err(|_| ApiError::invalid(format!("`{k}` must be a non-negative integer")))?;
        match k {
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

/// `POST /v1/keys/rotate`: a new key for the same balance and ledger, only if `key` (the one the
/// caller sent) is still the key's: of two rotations at once, one wins.
pub async fn rotate_own<S: Store>(store: &S, call: &impl Call, key: &str) -> Result<Value, ApiError> {
    let k = read_caller(store, call, key, 0, 0).await?;
    crate::sub_key_fields::forbid(k.sub.as_ref(), "rotate itself (its account key rotates it: POST /v1/keys/{id}/rotate)")?;
    let new_key = call.new_plaintext_key()?;
    let op = KeyOp::Rotate { key_id: &k.key_id, new_hash: hash_key(&new_key), current_hash: Some(hash_key(key)) };
    match store.key_op(&op, call.now_ms()).await? {
        KeyOpReply::Ok => Ok(json!({ "key_id": k.key_id, "api_key": new_key, "note": "shown only once; the old key stops working now" })),
        // Another rotation won while this one was on its way: this caller's key is already dead.
        KeyOpReply::Stale | KeyOpReply::Revoked => Err(ApiError::unauthorized("this API key was rotated or revoked meanwhile; it cannot rotate again")),
        other => Err(ApiError::internal(format!("rotation failed: {other:?}"))),
    }
}

/// `GET /v1/usage/daily?from=&to=`: the key's calls, units and credits per day and model (31 days
/// up to today by default); the gateway's costs and margins are not the customer's business.
pub async fn daily<S: Store>(store: &S, call: &impl Call, key: &str, from: Option<&str>, to: Option<&str>) -> Result<Value, ApiError> {
    let k = read_caller(store, call, key, 0, 0).await?;
    let to = to.map_or_else(|| call.today(), str::to_string);
    let from = from.map_or_else(|| crate::pricing::utc_date(call.now_ms().saturating_sub(30 * 86_400_000)), str::to_string);
    let days = crate::stats::days(&from, &to)?;
    let (calls, _) = store.stats_rollups(&days, &StatsScope::Key(k.key_id.clone())).await?;
    let upc = crate::money::Decimal::parse(&call.settings().usd_per_credit).map_err(ApiError::invalid)?;
    Ok(crate::stats::report(&days, &calls, &[], &upc, Some(&k.key_id), crate::stats::View::Customer))
}

/// `GET /v1/requests/{request_id}` for the caller's `key` (an account read: unknown keys count
/// against the client address as on `/v1/balance`).
pub async fn bill<S: Store>(store: &S, call: &impl Call, key: &str, request_id: &str) -> Result<Value, ApiError> {
    let k = read_caller(store, call, key, 0, 0).await?;
    if !crate::bills::valid_request_id(request_id) {
        return crate::bills::bill_json(request_id, &crate::bills::BillReply::Ledger(vec![]));
    }
    crate::bills::bill_json(request_id, &store.bill(&k.key_id, request_id).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn pages_default_to_fifty_and_refuse_what_redis_would_misread() {
        assert_eq!(page(&[]).unwrap(), (0, 50));
        assert_eq!(page(&q(&[("limit", "10"), ("offset", "30"), ("_", "123")])).unwrap(), (30, 10));
        for bad in [("limit", "0"), ("limit", "201"), ("offset", "-1"), ("offset", "1000000001"), ("limit", "ten")] {
            assert!(page(&q(&[bad])).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_debt_is_shown_as_such() {
        let k = KeyView { key_id: "key_0123456789abcdef".into(), balance_mc: -1_500, held_mc: 250, ..KeyView::default() };
        let v = balance_json(&k, "0.01");
        assert_eq!((v["credits"].clone(), v["debt_credits"].clone(), v["held_credits"].clone()), (json!(-1.5), json!(1.5), json!(0.25)));
        assert!(balance_json(&KeyView { balance_mc: 0, ..k }, "0.01").get("debt_credits").is_none());
    }
}
