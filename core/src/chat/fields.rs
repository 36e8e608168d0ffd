//! Reading a request's JSON fields with clear 400s: the helpers every route parser shares.

use crate::error::ApiError;
use serde_json::{Map, Value};

pub fn obj(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ApiError::invalid("request body must be a JSON object")),
        Err(e) => Err(ApiError::invalid(format!("request body is not valid JSON: {e}"))),
    }
}

/// A field that is there and not `null` (clients send `null` for "unset").
pub fn present<'a>(m: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    m.get(key).filter(|v| !v.is_null())
}

pub fn opt_u64(m: &Map<String, Value>, key: &str) -> Result<Option<u64>, ApiError> {
    match present(m, key) {
        None => Ok(None),
        Some(v) => match v.as_u64() {
            Some(0) | None => Err(ApiError::invalid(format!("`{key}` must be a positive integer"))),
            Some(n) => Ok(Some(n)),
        },
    }
}

pub fn opt_f64(m: &Map<String, Value>, key: &str) -> Result<Option<f64>, ApiError> {
    match present(m, key) {
        None => Ok(None),
        Some(v) => v.as_f64().map(Some).ok_or_else(|| ApiError::invalid(format!("`{key}` must be a number"))),
    }
}

pub fn opt_bool(m: &Map<String, Value>, key: &str) -> Result<Option<bool>, ApiError> {
    match present(m, key) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(ApiError::invalid(format!("`{key}` must be a boolean"))),
    }
}

pub fn opt_str<'a>(m: &'a Map<String, Value>, key: &str, ctx: &str) -> Result<Option<&'a str>, ApiError> {
    match present(m, key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ApiError::invalid(format!("{ctx}`{key}` must be a string"))),
    }
}

pub fn req_str<'a>(m: &'a Map<String, Value>, key: &str) -> Result<&'a str, ApiError> {
    match m.get(key) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s),
        _ => Err(ApiError::invalid(format!("`{key}` is required and must be a non-empty string"))),
    }
}

/// Refuses any key of `m` outside `allowed`; `what` names the object in the message.
pub fn allow_only(m: &Map<String, Value>, allowed: &[&str], what: &str) -> Result<(), ApiError> {
    match m.keys().find(|k| !allowed.contains(&k.as_str())) {
        None => Ok(()),
        Some(k) => Err(ApiError::invalid(format!(
            "`{k}` is not supported on {what}: the gateway forwards only the fields it can price (the accepted fields are in the API reference, /docs/)"
        ))),
    }
}

/// `stop`: a string or an array of up to 4 strings (OpenAI's rule; the strictest of the three).
pub fn stop_list(m: &Map<String, Value>, key: &str) -> Result<Vec<String>, ApiError> {
    let bad = || ApiError::invalid(format!("`{key}` must be a string or an array of at most 4 strings"));
    match present(m, key) {
        None => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(a)) if a.len() <= 4 => a.iter().map(|v| v.as_str().map(str::to_string).ok_or_else(bad)).collect(),
        Some(_) => Err(bad()),
    }
}
