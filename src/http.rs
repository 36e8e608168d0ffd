//! Response rendering: JSON bodies, the one error shape per route family, rate-limit headers.

use broker_core::error::{ApiError, ErrorKind, ErrorShape};
use broker_core::scripts::RateState;
use serde_json::Value;
use worker::{console_error, Response};

/// An error on its way out, with any headers it must carry (rate limits, Retry-After).
pub struct Reply {
    pub error: ApiError,
    pub headers: Vec<(String, String)>,
}

impl From<ApiError> for Reply {
    fn from(error: ApiError) -> Self {
        Reply { error, headers: Vec::new() }
    }
}

impl Reply {
    pub fn with_headers(error: ApiError, headers: Vec<(String, String)>) -> Self {
        Reply { error, headers }
    }
}

pub type HandlerResult = Result<Response, Reply>;

pub fn json(status: u16, body: &Value, headers: &[(String, String)]) -> Response {
    let mut resp = match Response::from_bytes(body.to_string().into_bytes()) {
        Ok(r) => r.with_status(status),
        Err(_) => Response::empty().map(|r| r.with_status(500)).unwrap_or_else(|_| unreachable_response()),
    };
    let h = resp.headers_mut();
    let _ = h.set("content-type", "application/json");
    for (k, v) in headers {
        let _ = h.set(k, v);
    }
    resp
}

fn unreachable_response() -> Response {
    // Response::empty() cannot fail in practice; keep a total function anyway.
    Response::error("internal error", 500).unwrap_or_else(|_| unreachable_response())
}

pub fn render_error(reply: Reply, shape: ErrorShape, request_id: &str) -> Response {
    let e = &reply.error;
    if e.status() >= 500 {
        console_error!("{request_id} {} {}: {}", e.status(), e.kind.type_name(), e.message);
    }
    let mut headers = reply.headers;
    if let ErrorKind::RateLimited { retry_after_secs } = e.kind {
        headers.push(("retry-after".into(), retry_after_secs.to_string()));
    }
    json(e.status(), &e.to_json(shape, request_id), &headers)
}

/// `RateLimit`/`RateLimit-Policy` (IETF draft) and the older `X-RateLimit-*` set.
pub fn rate_headers(policy: &str, s: &RateState) -> Vec<(String, String)> {
    let window_secs_reset = s.reset_secs();
    vec![
        ("ratelimit-policy".into(), format!("\"{policy}\";q={}", s.limit)),
        ("ratelimit".into(), format!("\"{policy}\";r={};t={window_secs_reset}", s.remaining.max(0))),
        ("x-ratelimit-limit".into(), s.limit.to_string()),
        ("x-ratelimit-remaining".into(), s.remaining.max(0).to_string()),
        ("x-ratelimit-reset".into(), window_secs_reset.to_string()),
    ]
}
