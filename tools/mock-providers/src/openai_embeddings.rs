//! OpenAI embeddings: `POST /openai/v1/embeddings` (auth and error shape as chat).
//!
//! Request: `model` (text-embedding-3-small, -3-large, ada-002), `input` (a string, an array of
//! strings, an array of token ids or an array of such arrays), `encoding_format` (`float`
//! default, or `base64`: little-endian float32s), `dimensions` (text-embedding-3 only, up to the
//! model's size), `user`. Answer: `{"object":"list","data":[{"object":"embedding","index",
//! "embedding"}],"model","usage":{"prompt_tokens","total_tokens"}}` (fixtures/openai/embeddings.*).
//!
//! Deterministic usage: a string input costs `max(1, ceil(chars/4))` tokens (never more than its
//! UTF-8 bytes), a token-id input its length; `prompt_tokens = total_tokens` = the sum. A
//! script's `usage: {"prompt_tokens": N}` overrides it. Vectors are deterministic per input text.

use serde_json::{json, Value};

use crate::common;
use crate::control::State;
use crate::http::{Request, Response};
use crate::openai::{check_auth, error, error_for_status, invalid_url, with_headers};

const MODELS: &[(&str, u64, bool)] = &[("text-embedding-3-small", 1536, true), ("text-embedding-3-large", 3072, true), ("text-embedding-ada-002", 1536, false)];

fn bad(msg: String, param: Option<&str>) -> Response {
    error(400, msg, "invalid_request_error", param, None)
}

/// Each input as (text of it, or its token ids) and its token count.
fn inputs(v: &Value) -> Result<Vec<(String, u64)>, Response> {
    let one = |x: &Value| -> Option<(String, u64)> {
        match x {
            Value::String(s) if !s.is_empty() => Some((s.clone(), (s.chars().count() as u64).div_ceil(4).max(1))),
            Value::Array(a) if !a.is_empty() && a.iter().all(Value::is_u64) => Some((x.to_string(), a.len() as u64)),
            _ => None,
        }
    };
    let invalid = || bad("'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.".into(), Some("input"));
    match v {
        Value::Array(a) if !a.is_empty() && a.iter().all(Value::is_u64) => Ok(vec![one(v).ok_or_else(invalid)?]),
        Value::Array(a) if !a.is_empty() && a.len() <= 2048 => a.iter().map(|x| one(x).ok_or_else(invalid)).collect(),
        Value::String(_) => Ok(vec![one(v).ok_or_else(invalid)?]),
        _ => Err(invalid()),
    }
}

/// A deterministic unit-ish vector of `dims` floats for an input.
fn vector(text: &str, dims: u64) -> Vec<f32> {
    let mut x = common::fnv1a(text.as_bytes()) | 1;
    (0..dims)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ((x % 2001) as f32 - 1000.0) / 40_000.0
        })
        .collect()
}

pub fn handle(state: &State, req: &Request) -> Response {
    let seq = state.next_seq();
    if req.path != "/openai/v1/embeddings" {
        return invalid_url(req, seq);
    }
    if let Err(r) = check_auth(state, req) {
        return with_headers(r, seq, 0);
    }
    let script = state.take_script("openai-embeddings");
    if let Some(s) = script.as_ref().filter(|s| s.is_override()) {
        return with_headers(s.override_response(|status| error_for_status(status, "text-embedding-3-small")), seq, 0);
    }
    let Ok(v) = serde_json::from_slice::<Value>(&req.body) else {
        return with_headers(bad("We could not parse the JSON body of your request.".into(), None), seq, 0);
    };
    let model = v.get("model").and_then(Value::as_str).unwrap_or("");
    let Some(&(model, full, shortens)) = MODELS.iter().find(|(m, _, _)| *m == model) else {
        let msg = format!("The model `{model}` does not exist or you do not have access to it.");
        return with_headers(error(404, msg, "invalid_request_error", None, Some("model_not_found")), seq, 0);
    };
    let items = match v.get("input") {
        None | Some(Value::Null) => return with_headers(bad("'input' is a required property".into(), Some("input")), seq, 0),
        Some(i) => match inputs(i) {
            Ok(items) => items,
            Err(r) => return with_headers(r, seq, 0),
        },
    };
    let dims = match v.get("dimensions").filter(|d| !d.is_null()) {
        None => full,
        Some(_) if !shortens => return with_headers(bad("This model does not support specifying dimensions.".into(), Some("dimensions")), seq, 0),
        Some(d) => match d.as_u64().filter(|d| (1..=full).contains(d)) {
            Some(d) => d,
            None => return with_headers(bad(format!("Invalid value for 'dimensions' = {d}. Must be between 1 and {full}."), Some("dimensions")), seq, 0),
        },
    };
    let base64 = match v.get("encoding_format").and_then(Value::as_str) {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => return with_headers(bad(format!("Invalid value for 'encoding_format' = {other}. Supported values are: 'float' and 'base64'."), Some("encoding_format")), seq, 0),
    };
    let data: Vec<Value> = items
        .iter()
        .enumerate()
        .map(|(i, (text, _))| {
            let vec = vector(text, dims);
            let embedding = if base64 { json!(common::b64_encode(&vec.iter().flat_map(|f| f.to_le_bytes()).collect::<Vec<u8>>())) } else { json!(vec) };
            json!({ "object": "embedding", "index": i, "embedding": embedding })
        })
        .collect();
    let tokens = script.as_ref().and_then(|s| s.usage.as_ref()).and_then(|u| u.get("prompt_tokens")).and_then(Value::as_u64).unwrap_or_else(|| items.iter().map(|(_, n)| n).sum());
    let body = json!({ "object": "list", "data": data, "model": model, "usage": { "prompt_tokens": tokens, "total_tokens": tokens } });
    let mut out = serde_json::to_vec_pretty(&body).unwrap_or_default();
    out.push(b'\n');
    let mut resp = with_headers(Response::json_bytes(200, out), seq, tokens);
    if let Some(s) = &script {
        s.apply_timing(&mut resp);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_forms_and_their_tokens() {
        let t = |v: Value| inputs(&v).ok().map(|i| i.iter().map(|(_, n)| *n).collect::<Vec<_>>());
        assert_eq!(t(json!("hello world")), Some(vec![3]));
        assert_eq!(t(json!(["a", "abcdefgh"])), Some(vec![1, 2]));
        assert_eq!(t(json!([1, 2, 3])), Some(vec![3]));
        assert_eq!(t(json!([[1], [2, 3]])), Some(vec![1, 2]));
        assert_eq!(t(json!("")), None);
        assert_eq!(t(json!([])), None);
        assert_eq!(vector("x", 4).len(), 4);
        assert_eq!(vector("x", 4), vector("x", 4));
    }
}
