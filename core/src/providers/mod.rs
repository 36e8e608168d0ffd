//! Provider mapping: one module per provider, each with the same shape — build the upstream
//! request, parse a whole response, decode stream events — plus `stream`, which turns any
//! provider's stream into the customer's format while tracking usage.

pub mod anthropic;
pub mod gemini;
pub mod openai;
pub mod stream;

use crate::chat::ChatRequest;
use crate::error::{ApiError, ErrorKind};
use crate::pricing::Provider;
use crate::usage::Usage;
use serde_json::Value;

/// Where and how to reach a provider (base URL and secret come from configuration).
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub base_url: String,
    pub api_key: String,
}

/// A request ready for `fetch`.
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamRequest {
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// A whole (non-streamed) answer, decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatOutput {
    pub content: String,
    pub usage: Usage,
    /// Normalized to OpenAI's vocabulary: stop, length, tool_calls, content_filter.
    pub finish_reason: Option<String>,
    /// The model the provider says it ran.
    pub model: String,
    /// The provider's body, forwarded unchanged when the customer speaks the same format.
    pub raw: Value,
}

pub fn build_request(req: &ChatRequest, max_tokens: u64, ep: &Endpoint) -> UpstreamRequest {
    match req.provider {
        Provider::OpenAi => openai::build_request(req, max_tokens, ep),
        Provider::Anthropic => anthropic::build_request(req, max_tokens, ep),
        Provider::Google => gemini::build_request(req, max_tokens, ep),
    }
}

pub fn parse_response(provider: Provider, body: &[u8]) -> Result<ChatOutput, ApiError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::new(ErrorKind::UpstreamError, format!("provider answered invalid JSON: {e}")))?;
    let out = match provider {
        Provider::OpenAi => openai::parse_response(v),
        Provider::Anthropic => anthropic::parse_response(v),
        Provider::Google => gemini::parse_response(v),
    };
    out.ok_or_else(|| ApiError::new(ErrorKind::UpstreamError, "provider answered an unexpected body"))
}

/// Maps a provider's non-2xx answer to what the customer sees. The provider's own message is
/// passed on only for request errors (it explains the customer's mistake); auth and server
/// errors are the gateway's problem and get a generic message.
pub fn upstream_error(provider: Provider, status: u16, body: &[u8]) -> ApiError {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let message = v
        .pointer("/error/message")
        .or_else(|| v.pointer("/detail/message"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let key_invalid = v.to_string().contains("API_KEY_INVALID");
    let name = provider.as_str();
    match status {
        400 | 404 | 413 | 422 if !key_invalid => {
            ApiError::invalid(format!("{name} rejected the request: {message}")).with_details(serde_json::json!({ "provider_status": status }))
        }
        429 | 503 | 529 => ApiError::new(ErrorKind::Unavailable, format!("{name} is overloaded or rate limited; retry later")),
        _ => ApiError::new(ErrorKind::UpstreamError, format!("{name} failed (status {status})")),
    }
}

pub(crate) fn finish_reason_from_anthropic(stop: &str) -> &'static str {
    match stop {
        "max_tokens" => "length",
        "tool_use" => "tool_calls",
        "refusal" => "content_filter",
        _ => "stop",
    }
}

pub(crate) fn finish_reason_from_gemini(reason: &str) -> &'static str {
    match reason {
        "MAX_TOKENS" => "length",
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" => "content_filter",
        _ => "stop",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_errors_pass_the_provider_message_auth_errors_do_not() {
        let e = upstream_error(Provider::OpenAi, 400, br#"{"error":{"message":"Invalid 'max_tokens'","type":"invalid_request_error"}}"#);
        assert_eq!(e.status(), 400);
        assert!(e.message.contains("Invalid 'max_tokens'"));
        let e = upstream_error(Provider::Anthropic, 401, br#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#);
        assert_eq!(e.status(), 502);
        assert!(!e.message.contains("x-api-key"));
        let e = upstream_error(Provider::Google, 400, br#"{"error":{"code":400,"message":"API key not valid.","details":[{"reason":"API_KEY_INVALID"}]}}"#);
        assert_eq!(e.status(), 502);
        assert_eq!(upstream_error(Provider::Anthropic, 529, b"").status(), 503);
        assert_eq!(upstream_error(Provider::OpenAi, 500, b"oops").status(), 502);
    }
}
