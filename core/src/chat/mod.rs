//! Inbound chat requests: the three customer formats parsed into one `ChatRequest`.
//!
//! - `/v1/chat`: the gateway's own shape `{provider, model, messages, max_tokens?, temperature?, stream?}`.
//! - `/v1/chat/completions`: OpenAI's shape; `model` is bare (OpenAI) or `provider/model`.
//! - `/v1/messages`: Anthropic's shape (Anthropic models only).
//!
//! **Only what is priced is forwarded.** Each route has an allowlist of top-level fields. A field
//! outside it is refused (400) rather than forwarded or dropped: an unknown field may change the
//! price (Anthropic `inference_geo`), store customer data (OpenAI `store`) or change the answer.
//! Where a provider cannot honour a field of the OpenAI shape, the call is refused too; only
//! fields that change neither the answer nor the price (`user`, `metadata`, ...) are dropped.
//!
//! Only text is accepted: the worst-case hold bounds prompt tokens by request bytes, which holds
//! for text but not for images or audio, so those are refused rather than under-held.

use crate::error::ApiError;
use crate::provider::Provider;
use serde_json::{Map, Value};

/// Which customer API a request came through; decides the response and error shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Native,
    OpenAiCompatible,
    AnthropicCompatible,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub role: String,
    pub content: String,
}

/// Sampling settings the gateway translates between providers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sampling {
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub stop: Vec<String>,
    pub seed: Option<i64>,
    pub presence_penalty: Option<f64>,
    pub frequency_penalty: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    pub route: Route,
    pub provider: Provider,
    /// Bare provider model name.
    pub model: String,
    pub system: Option<String>,
    pub messages: Vec<Message>,
    /// What the client asked for; `None` means the gateway picks what the balance covers.
    pub max_tokens: Option<u64>,
    pub sampling: Sampling,
    pub stream: bool,
    /// OpenAI route: did the client ask for the usage chunk?
    pub include_usage: bool,
    /// The client's body, allowlisted, forwarded (with adjustments) when the client speaks the
    /// provider's own format.
    pub raw: Map<String, Value>,
    /// Request body size, the basis of the prompt-token upper bound.
    pub body_bytes: u64,
}

/// Tokens of overhead a provider may add to a prompt beyond its bytes (tool-use system prompts).
pub const PROMPT_OVERHEAD_TOKENS: u64 = 1024;

impl ChatRequest {
    /// An upper bound on prompt tokens: a token of text is at least one byte.
    pub fn prompt_upper_tokens(&self) -> u64 {
        self.body_bytes + PROMPT_OVERHEAD_TOKENS
    }

    /// Whether the client speaks the provider's own format (its body is forwarded).
    pub fn is_passthrough(&self) -> bool {
        matches!((self.provider, self.route), (Provider::OpenAi, Route::OpenAiCompatible) | (Provider::Anthropic, Route::AnthropicCompatible))
    }

    /// The model as the client sees it in answers.
    pub fn model_label(&self) -> String {
        match (self.route, self.provider) {
            (Route::OpenAiCompatible, Provider::OpenAi) | (Route::Native, _) | (Route::AnthropicCompatible, _) => self.model.clone(),
            (Route::OpenAiCompatible, p) => format!("{}/{}", p.as_str(), self.model),
        }
    }
}

fn obj(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ApiError::invalid("request body must be a JSON object")),
        Err(e) => Err(ApiError::invalid(format!("request body is not valid JSON: {e}"))),
    }
}

fn present<'a>(m: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    m.get(key).filter(|v| !v.is_null())
}

fn opt_u64(m: &Map<String, Value>, key: &str) -> Result<Option<u64>, ApiError> {
    match present(m, key) {
        None => Ok(None),
        Some(v) => match v.as_u64() {
            Some(0) | None => Err(ApiError::invalid(format!("`{key}` must be a positive integer"))),
            Some(n) => Ok(Some(n)),
        },
    }
}

fn opt_f64(m: &Map<String, Value>, key: &str) -> Result<Option<f64>, ApiError> {
    match present(m, key) {
        None => Ok(None),
        Some(v) => v.as_f64().map(Some).ok_or_else(|| ApiError::invalid(format!("`{key}` must be a number"))),
    }
}

fn opt_bool(m: &Map<String, Value>, key: &str) -> Result<bool, ApiError> {
    match present(m, key) {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(ApiError::invalid(format!("`{key}` must be a boolean"))),
    }
}

fn req_str<'a>(m: &'a Map<String, Value>, key: &str) -> Result<&'a str, ApiError> {
    match m.get(key) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s),
        _ => Err(ApiError::invalid(format!("`{key}` is required and must be a non-empty string"))),
    }
}

/// `stop`: a string or an array of up to 4 strings (OpenAI's rule; the strictest of the three).
fn stop_list(m: &Map<String, Value>, key: &str) -> Result<Vec<String>, ApiError> {
    let bad = || ApiError::invalid(format!("`{key}` must be a string or an array of at most 4 strings"));
    match present(m, key) {
        None => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(a)) if a.len() <= 4 => a.iter().map(|v| v.as_str().map(str::to_string).ok_or_else(bad)).collect(),
        Some(_) => Err(bad()),
    }
}

/// Refuses any top-level field outside `allowed`.
fn allow_only(m: &Map<String, Value>, allowed: &[&str], route: &str) -> Result<(), ApiError> {
    match m.keys().find(|k| !allowed.contains(&k.as_str())) {
        None => Ok(()),
        Some(k) => Err(ApiError::invalid(format!(
            "`{k}` is not supported on {route}: the gateway forwards only the fields it can price (see the README's field table)"
        ))),
    }
}

/// Text of an OpenAI/Anthropic content value: a string or an array of text parts.
fn content_text(v: &Value, ctx: &str) -> Result<String, ApiError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Null => Ok(String::new()),
        Value::Array(parts) => {
            let mut out = String::new();
            for p in parts {
                let ty = p.get("type").and_then(Value::as_str).unwrap_or("text");
                if ty != "text" {
                    return Err(ApiError::invalid(format!("{ctx}: content part type `{ty}` is not supported; only text is accepted")));
                }
                match p.get("text").and_then(Value::as_str) {
                    Some(t) => out.push_str(t),
                    None => return Err(ApiError::invalid(format!("{ctx}: a text part needs `text`"))),
                }
            }
            Ok(out)
        }
        _ => Err(ApiError::invalid(format!("{ctx}: `content` must be a string or an array of text parts"))),
    }
}

/// OpenAI-style messages (also the native route): system/developer go to `system`.
fn openai_messages(m: &Map<String, Value>) -> Result<(Option<String>, Vec<Message>), ApiError> {
    let Some(Value::Array(list)) = m.get("messages") else {
        return Err(ApiError::invalid("`messages` is required and must be an array"));
    };
    if list.is_empty() {
        return Err(ApiError::invalid("`messages` must not be empty"));
    }
    let mut system: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for (i, msg) in list.iter().enumerate() {
        let ctx = format!("messages[{i}]");
        let role = msg.get("role").and_then(Value::as_str).ok_or_else(|| ApiError::invalid(format!("{ctx}: `role` is required")))?;
        let content = content_text(msg.get("content").unwrap_or(&Value::Null), &ctx)?;
        match role {
            "system" | "developer" => system.push(content),
            "user" | "assistant" => out.push(Message { role: role.to_string(), content }),
            other => return Err(ApiError::invalid(format!("{ctx}: role `{other}` is not supported here (use system, developer, user or assistant)"))),
        }
    }
    if out.is_empty() {
        return Err(ApiError::invalid("`messages` needs at least one user message"));
    }
    Ok(((!system.is_empty()).then(|| system.join("\n\n")), out))
}

/// Fields of OpenAI's Chat Completions request the gateway accepts.
const OPENAI_FIELDS: &[&str] = &[
    "model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "stop", "stream", "stream_options", "n",
    "service_tier", "seed", "presence_penalty", "frequency_penalty", "logit_bias", "logprobs", "top_logprobs", "user", "metadata",
    "safety_identifier", "prompt_cache_key", "store", "modalities", "tools", "tool_choice", "parallel_tool_calls", "response_format",
    "reasoning_effort", "verbosity",
];

/// OpenAI fields that change neither the answer nor the price: dropped for other providers.
const OPENAI_HINTS: &[&str] = &["user", "metadata", "safety_identifier", "prompt_cache_key", "store", "service_tier", "n", "modalities", "stream_options"];

/// OpenAI fields translated for other providers (by provider); the rest are refused for them.
fn translated_openai_fields(p: Provider) -> &'static [&'static str] {
    match p {
        Provider::Google => &["temperature", "top_p", "stop", "seed", "presence_penalty", "frequency_penalty"],
        _ => &["temperature", "top_p", "stop"],
    }
}

fn refuse_unbilled_openai_features(m: &Map<String, Value>, provider: Provider) -> Result<(), ApiError> {
    // `n` multiplies the output the hold bounds: only 1 (in any spelling JSON allows) passes.
    match present(m, "n") {
        None => {}
        Some(v) if v.as_f64() == Some(1.0) => {}
        Some(_) => return Err(ApiError::invalid("`n` must be 1 (several choices per call are not supported)")),
    }
    // Priority and flex tiers are priced differently from the list prices the table holds.
    match present(m, "service_tier") {
        None => {}
        Some(Value::String(t)) if t == "auto" || t == "default" => {}
        Some(_) => return Err(ApiError::invalid("`service_tier` may only be `auto` or `default`")),
    }
    // Stored completions keep customer data at the provider under the gateway's account.
    if present(m, "store").is_some_and(|v| v != &Value::Bool(false)) {
        return Err(ApiError::invalid("`store` may only be false: the gateway does not store completions at the provider"));
    }
    if let Some(mods) = present(m, "modalities") {
        if !mods.as_array().is_some_and(|a| a.iter().all(|v| v == "text")) {
            return Err(ApiError::invalid("only the text modality is supported"));
        }
    }
    if provider != Provider::OpenAi {
        let translated = translated_openai_fields(provider);
        if let Some(k) = m.keys().find(|k| {
            !["model", "messages", "max_tokens", "max_completion_tokens", "stream"].contains(&k.as_str())
                && !OPENAI_HINTS.contains(&k.as_str())
                && !translated.contains(&k.as_str())
                && present(m, k).is_some()
        }) {
            return Err(ApiError::invalid(format!("`{k}` is not supported for {} models on this route", provider.as_str())));
        }
    }
    Ok(())
}

fn sampling(m: &Map<String, Value>, stop_key: &str) -> Result<Sampling, ApiError> {
    let seed = match present(m, "seed") {
        None => None,
        Some(v) => Some(v.as_i64().ok_or_else(|| ApiError::invalid("`seed` must be an integer"))?),
    };
    Ok(Sampling {
        temperature: opt_f64(m, "temperature")?,
        top_p: opt_f64(m, "top_p")?,
        stop: stop_list(m, stop_key)?,
        seed,
        presence_penalty: opt_f64(m, "presence_penalty")?,
        frequency_penalty: opt_f64(m, "frequency_penalty")?,
    })
}

/// `POST /v1/chat`.
pub fn parse_native(body: &[u8]) -> Result<ChatRequest, ApiError> {
    let m = obj(body)?;
    allow_only(&m, &["provider", "model", "messages", "max_tokens", "temperature", "top_p", "stop", "stream"], "/v1/chat")?;
    let provider_s = req_str(&m, "provider")?;
    let provider = Provider::parse_chat(provider_s).ok_or_else(|| ApiError::invalid(format!("unknown provider `{provider_s}`; use openai, anthropic or google")))?;
    let model = req_str(&m, "model")?.to_string();
    let (system, messages) = openai_messages(&m)?;
    Ok(ChatRequest {
        route: Route::Native,
        provider,
        model,
        system,
        messages,
        max_tokens: opt_u64(&m, "max_tokens")?,
        sampling: sampling(&m, "stop")?,
        stream: opt_bool(&m, "stream")?,
        include_usage: true,
        body_bytes: body.len() as u64,
        raw: m,
    })
}

/// Splits `anthropic/claude-x` into provider and bare model; a bare name is OpenAI's.
pub fn split_model(model: &str) -> Result<(Provider, String), ApiError> {
    match model.split_once('/') {
        Some((p, rest)) => {
            let provider = Provider::parse_chat(p).ok_or_else(|| ApiError::invalid(format!("unknown provider prefix `{p}/`; use openai/, anthropic/ or google/")))?;
            if rest.is_empty() {
                return Err(ApiError::invalid("`model` names no model after the provider prefix"));
            }
            Ok((provider, rest.to_string()))
        }
        None => Ok((Provider::OpenAi, model.to_string())),
    }
}

/// `POST /v1/chat/completions`.
pub fn parse_openai(body: &[u8]) -> Result<ChatRequest, ApiError> {
    let m = obj(body)?;
    allow_only(&m, OPENAI_FIELDS, "/v1/chat/completions")?;
    let (provider, model) = split_model(req_str(&m, "model")?)?;
    let (system, messages) = openai_messages(&m)?;
    refuse_unbilled_openai_features(&m, provider)?;
    let max_tokens = match opt_u64(&m, "max_completion_tokens")? {
        Some(n) => Some(n),
        None => opt_u64(&m, "max_tokens")?,
    };
    let include_usage = m.get("stream_options").and_then(|o| o.get("include_usage")).and_then(Value::as_bool).unwrap_or(false);
    Ok(ChatRequest {
        route: Route::OpenAiCompatible,
        provider,
        model,
        system,
        messages,
        max_tokens,
        sampling: sampling(&m, "stop")?,
        stream: opt_bool(&m, "stream")?,
        include_usage,
        body_bytes: body.len() as u64,
        raw: m,
    })
}

/// Fields of Anthropic's Messages request the gateway accepts. Refused on purpose: server tools
/// and MCP servers (billed per use), `container`, `inference_geo` (priced above the list rate).
const ANTHROPIC_FIELDS: &[&str] =
    &["model", "messages", "max_tokens", "system", "stop_sequences", "stream", "temperature", "top_p", "top_k", "metadata", "tools", "tool_choice", "thinking", "service_tier"];

/// `POST /v1/messages`.
pub fn parse_anthropic(body: &[u8]) -> Result<ChatRequest, ApiError> {
    let m = obj(body)?;
    allow_only(&m, ANTHROPIC_FIELDS, "/v1/messages")?;
    let model = req_str(&m, "model")?;
    let model = model.strip_prefix("anthropic/").unwrap_or(model).to_string();
    let Some(Value::Array(list)) = m.get("messages") else {
        return Err(ApiError::invalid("`messages` is required and must be an array"));
    };
    if list.is_empty() {
        return Err(ApiError::invalid("`messages` must not be empty"));
    }
    let mut messages = Vec::new();
    for (i, msg) in list.iter().enumerate() {
        let ctx = format!("messages[{i}]");
        let role = msg.get("role").and_then(Value::as_str).unwrap_or("");
        if role != "user" && role != "assistant" {
            return Err(ApiError::invalid(format!("{ctx}: `role` must be user or assistant")));
        }
        messages.push(Message { role: role.into(), content: content_text(msg.get("content").unwrap_or(&Value::Null), &ctx)? });
    }
    let system = match present(&m, "system") {
        None => None,
        Some(v) => Some(content_text(v, "system")?),
    };
    match present(&m, "service_tier") {
        None => {}
        Some(Value::String(t)) if t == "auto" || t == "standard_only" => {}
        Some(_) => return Err(ApiError::invalid("`service_tier` may only be `auto` or `standard_only`")),
    }
    if let Some(Value::Array(tools)) = m.get("tools") {
        // Server tools (web search, code execution) are billed per use, outside token usage.
        if tools.iter().any(|t| t.get("type").and_then(Value::as_str).is_some_and(|ty| ty != "custom")) {
            return Err(ApiError::invalid("server tools are not supported; only custom tools are"));
        }
    }
    let max_tokens = opt_u64(&m, "max_tokens")?;
    if max_tokens.is_none() {
        return Err(ApiError::invalid("`max_tokens` is required"));
    }
    Ok(ChatRequest {
        route: Route::AnthropicCompatible,
        provider: Provider::Anthropic,
        model,
        system,
        messages,
        max_tokens,
        sampling: sampling(&m, "stop_sequences")?,
        stream: opt_bool(&m, "stream")?,
        include_usage: true,
        body_bytes: body.len() as u64,
        raw: m,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_request_parses() {
        let r = parse_native(br#"{"provider":"openai","model":"gpt-4o-mini","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hi"}],"max_tokens":50}"#).unwrap();
        assert_eq!(r.provider, Provider::OpenAi);
        assert_eq!(r.system.as_deref(), Some("be brief"));
        assert_eq!(r.messages.len(), 1);
        assert_eq!(r.max_tokens, Some(50));
        assert!(!r.stream);
    }

    #[test]
    fn bad_inputs_get_clear_errors() {
        for (body, needle) in [
            (&b"not json"[..], "not valid JSON"),
            (b"[1]", "JSON object"),
            (br#"{"provider":"mistral","model":"x","messages":[{"role":"user","content":"a"}]}"#, "unknown provider"),
            (br#"{"provider":"openai","messages":[{"role":"user","content":"a"}]}"#, "`model`"),
            (br#"{"provider":"openai","model":"m","messages":[]}"#, "must not be empty"),
            (br#"{"provider":"openai","model":"m","messages":[{"role":"user","content":"a"}],"max_tokens":-1}"#, "positive integer"),
            (br#"{"provider":"openai","model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]}"#, "only text"),
            (br#"{"provider":"openai","model":"m","messages":[{"role":"user","content":"a"}],"logit_bias":{}}"#, "`logit_bias` is not supported"),
        ] {
            let e = parse_native(body).unwrap_err();
            assert_eq!(e.status(), 400);
            assert!(e.message.contains(needle), "{} missing {needle}", e.message);
        }
    }

    #[test]
    fn openai_route_splits_provider_prefix() {
        let r = parse_openai(br#"{"model":"anthropic/claude-haiku-4-5","messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":true}}"#).unwrap();
        assert_eq!(r.provider, Provider::Anthropic);
        assert_eq!(r.model, "claude-haiku-4-5");
        assert!(r.stream && r.include_usage);
        let r = parse_openai(br#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"max_completion_tokens":7}"#).unwrap();
        assert_eq!((r.provider, r.max_tokens), (Provider::OpenAi, Some(7)));
        for bad in [r#""n":2"#, r#""n":2.0"#, r#""n":"2""#, r#""service_tier":"priority""#, r#""service_tier":"flex""#] {
            let body = format!(r#"{{"model":"gpt-4o",{bad},"messages":[{{"role":"user","content":"hi"}}]}}"#);
            assert_eq!(parse_openai(body.as_bytes()).unwrap_err().status(), 400, "{bad}");
        }
        for ok in [r#""n":1"#, r#""n":1.0"#, r#""n":null"#, r#""service_tier":"auto""#, r#""service_tier":null"#, r#""store":false"#] {
            let body = format!(r#"{{"model":"gpt-4o",{ok},"messages":[{{"role":"user","content":"hi"}}]}}"#);
            assert!(parse_openai(body.as_bytes()).is_ok(), "{ok}");
        }
    }

    #[test]
    fn only_priced_fields_are_accepted() {
        let openai = |extra: &str, model: &str| parse_openai(format!(r#"{{"model":"{model}",{extra},"messages":[{{"role":"user","content":"hi"}}]}}"#).as_bytes());
        let e = openai(r#""store":true"#, "gpt-4o").unwrap_err();
        assert!(e.message.contains("`store`"), "{}", e.message);
        let e = openai(r#""prompt_magic":1"#, "gpt-4o").unwrap_err();
        assert!(e.message.contains("`prompt_magic` is not supported"), "{}", e.message);
        // What a provider cannot honour is refused for it, not dropped.
        let e = openai(r#""logit_bias":{"1":2}"#, "anthropic/claude-haiku-4-5").unwrap_err();
        assert!(e.message.contains("`logit_bias` is not supported for anthropic"), "{}", e.message);
        assert!(openai(r#""seed":7"#, "google/gemini-2.5-flash").is_ok());
        assert!(openai(r#""seed":7"#, "anthropic/claude-haiku-4-5").is_err());
        assert!(openai(r#""user":"u1","metadata":{"a":"b"}"#, "anthropic/claude-haiku-4-5").is_ok(), "hints are dropped");
        let anthropic = |extra: &str| parse_anthropic(format!(r#"{{"model":"claude-haiku-4-5","max_tokens":5,{extra},"messages":[{{"role":"user","content":"hi"}}]}}"#).as_bytes());
        for bad in [r#""inference_geo":"us""#, r#""mcp_servers":[]"#, r#""container":"c""#, r#""betas_x":1"#] {
            assert_eq!(anthropic(bad).unwrap_err().status(), 400, "{bad}");
        }
        let r = anthropic(r#""stop_sequences":["END"],"top_k":5"#).unwrap();
        assert_eq!(r.sampling.stop, vec!["END".to_string()]);
    }

    #[test]
    fn anthropic_route_requires_max_tokens_and_refuses_server_tools() {
        assert!(parse_anthropic(br#"{"model":"claude-haiku-4-5","messages":[{"role":"user","content":"hi"}]}"#).is_err());
        let e = parse_anthropic(br#"{"model":"claude-haiku-4-5","max_tokens":5,"tools":[{"type":"web_search_20250305","name":"web_search"}],"messages":[{"role":"user","content":"hi"}]}"#).unwrap_err();
        assert!(e.message.contains("server tools"));
        let r = parse_anthropic(br#"{"model":"claude-haiku-4-5","max_tokens":5,"system":[{"type":"text","text":"sys"}],"messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}]}"#).unwrap();
        assert_eq!(r.system.as_deref(), Some("sys"));
    }

    #[test]
    fn the_prompt_bound_is_the_body_plus_the_overhead() {
        let body = br#"{"provider":"openai","model":"gpt-4o-mini","messages":[{"role":"user","content":"hello there"}]}"#;
        let r = parse_native(body).unwrap();
        assert_eq!(r.prompt_upper_tokens(), body.len() as u64 + PROMPT_OVERHEAD_TOKENS);
    }
}
