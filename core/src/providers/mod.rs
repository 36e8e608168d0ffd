//! Chat providers' wire formats: one module per provider, each implementing [`ChatWire`] the same
//! way (build the streamed request, decode stream events and their usage, assemble the provider's
//! own whole answer for clients that speak its format), dispatched by one table ([`wire`]).
//!
//! The gateway always asks a provider for a stream, also when the client wants one whole answer:
//! the usage so far is then always known, a stalled provider is noticed by its silence rather
//! than by the length of the call, and the whole answer is assembled in the worker.

pub mod anthropic;
pub mod decoded;
pub mod gemini;
pub mod openai;
pub mod stream;

use crate::chat::ChatRequest;
use crate::config::Secret;
use crate::error::{ApiError, ErrorKind};
use crate::product::UpstreamRequest;
use crate::provider::Provider;
use crate::usage::Usage;
use decoded::Decoded;
use serde_json::Value;

/// Where and how to reach a provider (base URL and secret come from configuration).
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub base_url: String,
    pub api_key: Secret,
}

/// Builds a provider's own whole answer from its stream events (clients speaking its format).
pub trait Assembler {
    /// One stream event, parsed (`name` is the SSE `event:` field).
    fn event(&mut self, name: Option<&str>, v: &Value);
    /// The answer as the provider would have sent it unstreamed; `None` if nothing came.
    fn body(&self) -> Option<Value>;
}

/// One chat provider's wire format.
pub trait ChatWire: Sync {
    /// The streamed upstream request for `max_tokens` output tokens.
    fn build_request(&self, req: &ChatRequest, max_tokens: u64, ep: &Endpoint) -> UpstreamRequest;
    /// Decodes one parsed stream event (`name`: its `event:` field), updating the usage seen.
    fn decode(&self, name: Option<&str>, v: &Value, usage: &mut Option<Usage>) -> Vec<Decoded>;
    /// True when the stream has no terminator and ends after the chunk with a finish reason
    /// carrying the final usage (Gemini).
    fn final_usage_on_finish(&self) -> bool {
        false
    }
    /// Assembles the provider's own whole answer (for the route that speaks its format).
    fn assembler(&self) -> Option<Box<dyn Assembler>> {
        None
    }
    /// The service tier an event says the call was served at, if it says (the request pins the
    /// standard tier; the answer is checked, since another tier has other prices).
    fn served_tier(&self, _v: &Value) -> Option<String> {
        None
    }
    /// Whether a served tier is the standard one, at the list prices of the table.
    fn is_standard_tier(&self, _tier: &str) -> bool {
        true
    }
    /// The model an event says served the call, when the provider says (Gemini's `modelVersion`).
    fn served_model(&self, _v: &Value) -> Option<String> {
        None
    }
}

/// The wire format of a chat provider.
pub fn wire(p: Provider) -> &'static dyn ChatWire {
    match p {
        Provider::Anthropic => &anthropic::Anthropic,
        Provider::Google => &gemini::Gemini,
        _ => &openai::OpenAi,
    }
}

/// Words of a provider's message that reveal the gateway's own account at the provider (its
/// balance, quota, keys, billing): such messages are replaced by a neutral one (logged in full).
const ACCOUNT_WORDS: &[&str] = &["credit balance", "billing", "quota", "api key", "api_key", "organization", "account", "plan ", "payment", "purchase credits"];

fn reveals_account(message: &str) -> bool {
    let m = message.to_lowercase();
    ACCOUNT_WORDS.iter().any(|w| m.contains(w))
}

/// Maps a provider's non-2xx answer to what the customer sees. The provider's own message is
/// passed on only for request errors that explain the customer's mistake; errors about the
/// gateway's account, auth and server errors get a generic message.
pub fn upstream_error(provider: Provider, status: u16, body: &[u8]) -> ApiError {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let message = v.pointer("/error/message").or_else(|| v.pointer("/detail/message")).and_then(Value::as_str).unwrap_or("").to_string();
    let key_invalid = v.to_string().contains("API_KEY_INVALID");
    let name = provider.as_str();
    match status {
        400 | 404 | 413 | 422 if !key_invalid && !reveals_account(&message) => {
            ApiError::invalid(format!("{name} rejected the request: {message}")).with_details(serde_json::json!({ "provider_status": status }))
        }
        400 | 402 | 403 | 429 if !key_invalid && reveals_account(&message) => ApiError::unavailable(format!("{name} is unavailable to the gateway right now; retry later")).public(),
        429 | 503 | 529 => ApiError::new(ErrorKind::Unavailable, format!("{name} is overloaded or rate limited; retry later")).public(),
        _ => ApiError::new(ErrorKind::UpstreamError, format!("{name} failed (status {status})")).public(),
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

/// `{base}/<path>` without a doubled slash.
pub(crate) fn join(base: &str, path: &str) -> String {
    format!("{}{path}", base.trim_end_matches('/'))
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

    #[test]
    fn messages_about_the_gateways_account_never_reach_the_client() {
        for (p, status, body) in [
            (Provider::Anthropic, 400, r#"{"type":"error","error":{"type":"invalid_request_error","message":"Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits."}}"#),
            (Provider::OpenAi, 429, r#"{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota"}}"#),
        ] {
            let e = upstream_error(p, status, body.as_bytes());
            assert_eq!(e.status(), 503, "{body}");
            let shown = e.public_message();
            assert!(!shown.contains("credit") && !shown.contains("quota") && !shown.contains("billing"), "{shown}");
        }
    }
}
