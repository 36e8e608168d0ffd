//! Anthropic's token count: `POST /anthropic/v1/messages/count_tokens` (same auth and headers as
//! Messages). Answers `{"input_tokens": N}` with N the input tokens the same prompt costs on
//! `/v1/messages` (the rules of [`crate::common`]; thinking and output settings do not count).
//! Anthropic does not charge for it; its errors are Messages' errors.

use serde_json::{json, Value};

use crate::anthropic::{error, request_id};
use crate::anthropic_beta::missing_beta;
use crate::common;
use crate::control::State;
use crate::http::{Request, Response};

pub fn handle(state: &State, req: &Request) -> Response {
    let seq = state.next_seq();
    if req.method != "POST" {
        return error(405, "invalid_request_error", &format!("Method {} not allowed", req.method), seq);
    }
    match req.header("x-api-key").or_else(|| req.header("authorization").and_then(|v| v.strip_prefix("Bearer "))) {
        None => return error(401, "authentication_error", "x-api-key header is required", seq),
        Some(k) if k.trim() != state.config.anthropic_key => return error(401, "authentication_error", "invalid x-api-key", seq),
        Some(_) => {}
    }
    if req.header("anthropic-version").is_none_or(str::is_empty) {
        return error(400, "invalid_request_error", "anthropic-version: header is required", seq);
    }
    let script = state.take_script("anthropic-count");
    if let Some(s) = script.as_ref().filter(|s| s.is_override()) {
        return s.override_response(|status| crate::anthropic::error_for_status(status, seq));
    }
    if let Some(msg) = missing_beta(req) {
        return error(400, "invalid_request_error", &msg, seq);
    }
    // Messages' parser, with the one field count_tokens does not take.
    let mut v: Value = match serde_json::from_slice(&req.body) {
        Ok(v @ Value::Object(_)) => v,
        _ => return error(400, "invalid_request_error", "Invalid JSON body", seq),
    };
    if v.get("max_tokens").is_some() {
        return error(400, "invalid_request_error", "max_tokens: Extra inputs are not permitted", seq);
    }
    v["max_tokens"] = json!(1);
    let p = match crate::anthropic::parse(v.to_string().as_bytes()) {
        Ok(p) => p,
        Err((kind, msg)) => return error(400, kind, &msg, seq),
    };
    let mut resp = Response::json(200, &json!({ "input_tokens": common::input_tokens(&p.texts) + p.images })).header("request-id", request_id(seq));
    if let Some(s) = &script {
        s.apply_timing(&mut resp);
    }
    resp
}
