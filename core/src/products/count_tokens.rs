//! `POST /v1/messages/count_tokens`: Anthropic's token count of a Messages request, answered by
//! Anthropic and passed on unchanged. Anthropic does not charge for it, so neither does the
//! gateway: nothing is held, settled or written to the ledger. It is not a free model call
//! either: the body is checked as `/v1/messages` checks it (the fields it can price, a model of
//! the price table), and the caller must hold an active key (the route is rate limited like the
//! account reads).

use crate::chat::betas::Betas;
use crate::chat::fields::{allow_only, obj, present, req_str};
use crate::chat::{anthropic_context_management, anthropic_tools, messages};
use crate::error::ApiError;
use crate::product::UpstreamRequest;
use crate::provider::Provider;
use crate::providers::anthropic::API_VERSION;
use crate::providers::{join, Endpoint};
use serde_json::{Map, Value};

/// Fields of Anthropic's count_tokens request the gateway accepts (those of `/v1/messages` that
/// are part of the prompt; the output settings have no count).
const FIELDS: &[&str] = &["model", "messages", "system", "tools", "tool_choice", "thinking", "context_management", "output_config"];

/// A checked count request.
#[derive(Debug, Clone, PartialEq)]
pub struct CountTokens {
    /// Bare model name (a priced Anthropic model).
    pub model: String,
    pub body: Map<String, Value>,
    pub betas: Betas,
}

/// Parses and checks the body; the model must be one the gateway sells today.
pub fn parse(body: &[u8], betas: Betas, today: &str) -> Result<CountTokens, ApiError> {
    let mut m = obj(body)?;
    allow_only(&m, FIELDS, "/v1/messages/count_tokens")?;
    let model = req_str(&m, "model")?;
    let model = model.strip_prefix("anthropic/").unwrap_or(model).to_string();
    crate::pricing::lookup(Provider::Anthropic, &model, today)?;
    match m.get("messages") {
        Some(Value::Array(list)) => messages::parse_anthropic(list)?,
        _ => return Err(ApiError::invalid("`messages` is required and must be an array")),
    };
    if let Some(s) = present(&m, "system") {
        messages::content_text(s, "system")?;
    }
    anthropic_tools(&m)?;
    anthropic_context_management(&m)?;
    betas.check_fields(&m)?;
    m.insert("model".into(), Value::String(model.clone()));
    Ok(CountTokens { model, body: m, betas })
}

impl CountTokens {
    /// Anthropic's count_tokens request.
    pub fn upstream(&self, ep: &Endpoint) -> UpstreamRequest {
        let mut headers = vec![("x-api-key".to_string(), ep.api_key.expose().to_string()), ("anthropic-version".to_string(), API_VERSION.to_string())];
        headers.extend(self.betas.header());
        UpstreamRequest::json(join(&ep.base_url, "/v1/messages/count_tokens"), headers, &Value::Object(self.body.clone()))
    }

    /// The client's answer to Anthropic's: a 2xx body is passed on when it is a count
    /// (`input_tokens`), any other status mapped as on `/v1/messages`.
    pub fn answer(&self, status: u16, body: &[u8]) -> Result<Vec<u8>, ApiError> {
        if !(200..300).contains(&status) {
            return Err(crate::providers::upstream_error(Provider::Anthropic, status, body));
        }
        match serde_json::from_slice::<Value>(body) {
            Ok(v) if v.get("input_tokens").and_then(Value::as_u64).is_some() => Ok(body.to_vec()),
            _ => Err(ApiError::upstream("anthropic's count_tokens answer was not a token count").public()),
        }
    }

    /// Headers of the answer (the betas that were not forwarded).
    pub fn headers(&self) -> Vec<(String, String)> {
        self.betas.dropped_header().into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    const TODAY: &str = "2026-11-23";

    fn ep() -> Endpoint {
        Endpoint { base_url: "http://mock/anthropic/".into(), api_key: Secret::new("sk-ant") }
    }

    #[test]
    fn a_claude_code_style_body_is_forwarded_with_its_betas() {
        let betas = crate::chat::betas::parse(Some("context-management-2025-06-27,thinking-token-count-2026-05-13")).unwrap();
        let body = br#"{"model":"anthropic/claude-sonnet-4-6","system":[{"type":"text","text":"be brief","cache_control":{"type":"ephemeral"}}],
            "messages":[{"role":"user","content":"hi"}],"tools":[{"name":"Read","input_schema":{"type":"object"},"defer_loading":true}],
            "thinking":{"type":"adaptive","display":"omitted"},"context_management":{"edits":[{"type":"clear_thinking_20251015","keep":"all"}]}}"#;
        let c = parse(body, betas, TODAY).unwrap();
        let up = c.upstream(&ep());
        assert_eq!(up.url, "http://mock/anthropic/v1/messages/count_tokens");
        assert!(up.headers.contains(&("anthropic-beta".into(), "context-management-2025-06-27".into())));
        assert!(up.headers.contains(&("anthropic-version".into(), API_VERSION.into())));
        let sent: Value = serde_json::from_slice(&up.body).unwrap();
        assert_eq!(sent["model"], "claude-sonnet-4-6");
        assert_eq!(c.headers(), vec![("x-broker-dropped-betas".to_string(), "thinking-token-count-2026-05-13".to_string())]);
        assert_eq!(c.answer(200, br#"{"input_tokens":14}"#).unwrap(), br#"{"input_tokens":14}"#);
    }

    #[test]
    fn bad_bodies_are_400s_naming_the_field_and_unpriced_models_are_refused() {
        let b = Betas::default;
        let e = parse(br#"{"model":"claude-sonnet-4-6","messages":[],"max_tokens":5}"#, b(), TODAY).unwrap_err();
        assert!(e.message.contains("`max_tokens`"), "{}", e.message);
        let e = parse(br#"{"model":"claude-9","messages":[]}"#, b(), TODAY).unwrap_err();
        assert_eq!(e.status(), 400);
        let e = parse(br#"{"model":"claude-sonnet-4-6","messages":[{"role":"user","content":"x"}],"tools":[{"type":"web_search_20250305","name":"web_search"}]}"#, b(), TODAY).unwrap_err();
        assert!(e.message.contains("server tools"), "{}", e.message);
        let e = parse(br#"{"model":"claude-sonnet-4-6","messages":[{"role":"user","content":"x"}],"context_management":{"edits":[{"type":"compact_20260112"}]}}"#, b(), TODAY).unwrap_err();
        assert!(e.message.contains("compact_20260112"), "{}", e.message);
        assert!(parse(b"[]", b(), TODAY).is_err());
    }

    #[test]
    fn provider_errors_are_mapped_and_garbage_is_a_502() {
        let c = parse(br#"{"model":"claude-sonnet-4-6","messages":[{"role":"user","content":"x"}]}"#, Betas::default(), TODAY).unwrap();
        assert_eq!(c.answer(400, br#"{"type":"error","error":{"type":"invalid_request_error","message":"messages: bad"}}"#).unwrap_err().status(), 400);
        assert_eq!(c.answer(401, br#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#).unwrap_err().status(), 502);
        assert_eq!(c.answer(200, b"<html>").unwrap_err().status(), 502);
    }
}
