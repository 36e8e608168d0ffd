//! Inbound chat requests: the three customer formats parsed into one `ChatRequest`.
//!
//! - `/v1/chat`: the gateway's own shape `{provider, model, messages, max_tokens?, temperature?, stream?}`.
//! - `/v1/chat/completions`: OpenAI's shape; `model` is bare (OpenAI) or `provider/model`.
//! - `/v1/messages`: Anthropic's shape (Anthropic models only).
//!
//! **Only what is priced is forwarded.** Each route has an allowlist of top-level fields (and of
//! message fields and content part types). A field outside it is refused (400) rather than
//! forwarded or dropped: an unknown field may change the price (Anthropic `inference_geo`), store
//! customer data (OpenAI `store`) or change the answer. Where a provider cannot honour a field of
//! the OpenAI shape, the call is refused too; only fields that change neither the answer nor the
//! price (`user`, `metadata`, ...) are dropped.
//!
//! Conversations carry text, images (`images`), tool calls and tool results (`messages`); agent
//! options (tools, `tool_choice`, structured output, reasoning) are in `options`. The prompt's
//! upper bound (for the hold) is its text bytes plus each image's token bound (`image_tokens`):
//! a token of text is at least one byte, and an image costs what its provider's sizing rule says,
//! whatever the size of its base64 text.

pub mod betas;
pub mod fields;
pub mod image_tokens;
pub mod images;
pub mod messages;
pub mod options;

use crate::error::ApiError;
use crate::provider::Provider;
use fields::{allow_only, obj, opt_bool, opt_f64, opt_u64, present, req_str, stop_list};
use image_tokens::{image_tokens, MediaResolution};
use messages::{Message, OpenAiRules};
use options::{Agent, Effort, ResponseFormat, MIN_THINKING_BUDGET};
use serde_json::{Map, Value};

/// Which customer API a request came through; decides the response and error shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Native,
    OpenAiCompatible,
    AnthropicCompatible,
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
    /// Tools, tool choice, structured output, reasoning effort (OpenAI route).
    pub agent: Agent,
    /// Anthropic route: the `thinking.budget_tokens` asked for.
    pub thinking_budget: Option<u64>,
    pub stream: bool,
    /// OpenAI route: did the client ask for the usage chunk?
    pub include_usage: bool,
    /// The client's body, allowlisted, forwarded (with adjustments) when the client speaks the
    /// provider's own format.
    pub raw: Map<String, Value>,
    /// Request body size, the basis of the prompt-token upper bound.
    pub body_bytes: u64,
    /// Anthropic route: the `anthropic-beta` values forwarded and dropped (set by the handler
    /// from the header; empty elsewhere).
    pub betas: betas::Betas,
}

/// Tokens of overhead a provider may add to a prompt beyond its bytes (tool-use system prompts).
pub const PROMPT_OVERHEAD_TOKENS: u64 = 1024;

impl ChatRequest {
    /// Gemini's media resolution for this request's images.
    pub fn media_resolution(&self) -> MediaResolution {
        MediaResolution::of(messages::images(&self.messages).map(|i| i.detail))
    }

    /// The most tokens the images of this request can cost the model.
    pub fn image_tokens(&self) -> u64 {
        let res = self.media_resolution();
        messages::images(&self.messages).map(|i| image_tokens(self.provider, &self.model, i, res)).sum()
    }

    /// An upper bound on prompt tokens: a token of text is at least one byte of the body, and an
    /// image costs at most its token bound (its base64 bytes are not text and are not counted).
    pub fn prompt_upper_tokens(&self) -> u64 {
        let inline: u64 = messages::images(&self.messages).map(|i| i.inline_len()).sum();
        self.body_bytes.saturating_sub(inline) + self.image_tokens() + PROMPT_OVERHEAD_TOKENS
    }

    /// The fewest output tokens the call needs: a thinking budget must fit below `max_tokens`.
    pub fn min_output_tokens(&self) -> u64 {
        let translated_budget = self.provider == Provider::Anthropic
            && self.route != Route::AnthropicCompatible
            && options::anthropic_budget_thinking(&self.model)
            && self.agent.effort.is_some_and(|e| e != Effort::None);
        match self.thinking_budget {
            Some(b) => b + 1,
            None if translated_budget => MIN_THINKING_BUDGET + 1,
            None => 1,
        }
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

    /// Images the model's provider refuses for their size, said before anything is held.
    pub(crate) fn check_images(&self) -> Result<(), ApiError> {
        for i in messages::images(&self.messages) {
            if let Some(why) = image_tokens::refusal(self.provider, &self.model, i) {
                return Err(ApiError::invalid(why));
            }
            // Gemini's `fileData` needs the image's type, and the gateway does not fetch to learn it.
            if let (Provider::Google, images::ImageSource::Url(u)) = (self.provider, &i.source) {
                if images::media_type_from_url(u).is_none() {
                    return Err(ApiError::invalid(format!(
                        "image URL `{u}` names no image type (.png, .jpg, .jpeg, .gif or .webp), which google models need; send the image as a data: URL"
                    )));
                }
            }
        }
        Ok(())
    }
}

fn messages_list(m: &Map<String, Value>) -> Result<&[Value], ApiError> {
    match m.get("messages") {
        Some(Value::Array(list)) => Ok(list),
        _ => Err(ApiError::invalid("`messages` is required and must be an array")),
    }
}

/// OpenAI-style messages without the response-only keys agents carry back (the forwarded body too).
fn sanitized_openai_messages(m: &mut Map<String, Value>) {
    if let Some(Value::Array(list)) = m.get_mut("messages") {
        messages::sanitize_openai(list);
    }
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
/// The agent options (`options`) are translated for both.
fn translated_openai_fields(p: Provider) -> &'static [&'static str] {
    match p {
        Provider::Google => &[
            "temperature", "top_p", "stop", "seed", "presence_penalty", "frequency_penalty", "tools", "tool_choice", "parallel_tool_calls", "response_format",
            "reasoning_effort",
        ],
        _ => &["temperature", "top_p", "stop", "tools", "tool_choice", "parallel_tool_calls", "response_format", "reasoning_effort"],
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

/// What Anthropic or Gemini cannot honour of the OpenAI agent options, refused by name.
fn refuse_untranslatable(agent: &Agent, provider: Provider, model: &str, max_tokens: Option<u64>) -> Result<(), ApiError> {
    let name = provider.as_str();
    if provider == Provider::Google && agent.parallel_tool_calls == Some(false) {
        return Err(ApiError::invalid("`parallel_tool_calls: false` cannot be honoured for google models (Gemini has no such switch)"));
    }
    if provider == Provider::Anthropic && agent.response_format == Some(ResponseFormat::JsonObject) {
        return Err(ApiError::invalid(
            "`response_format: json_object` cannot be honoured for anthropic models (Claude's structured output needs a schema); use `json_schema`",
        ));
    }
    let thinks = agent.effort.is_some_and(|e| e != Effort::None);
    if provider == Provider::Anthropic && thinks && options::anthropic_budget_thinking(model) && max_tokens.is_some_and(|m| m <= MIN_THINKING_BUDGET) {
        return Err(ApiError::invalid(format!(
            "`reasoning_effort` on {name}/{model} needs `max_tokens` above {MIN_THINKING_BUDGET} (its thinking budget counts toward it)"
        )));
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
    let mut m = obj(body)?;
    sanitized_openai_messages(&mut m);
    allow_only(&m, &["provider", "model", "messages", "max_tokens", "temperature", "top_p", "stop", "stream"], "/v1/chat")?;
    let provider_s = req_str(&m, "provider")?;
    let provider = Provider::parse_chat(provider_s).ok_or_else(|| ApiError::invalid(format!("unknown provider `{provider_s}`; use openai, anthropic or google")))?;
    let model = req_str(&m, "model")?.to_string();
    let (system, messages) = messages::parse_openai(messages_list(&m)?, OpenAiRules { tools: false, object_arguments: true })?;
    let req = ChatRequest {
        route: Route::Native,
        provider,
        model,
        system,
        messages,
        max_tokens: opt_u64(&m, "max_tokens")?,
        sampling: sampling(&m, "stop")?,
        agent: Agent::default(),
        thinking_budget: None,
        stream: opt_bool(&m, "stream")?.unwrap_or(false),
        include_usage: true,
        body_bytes: body.len() as u64,
        raw: m,
        betas: betas::Betas::default(),
    };
    req.check_images()?;
    Ok(req)
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
    let mut m = obj(body)?;
    sanitized_openai_messages(&mut m);
    allow_only(&m, OPENAI_FIELDS, "/v1/chat/completions")?;
    let (provider, model) = split_model(req_str(&m, "model")?)?;
    let translated = provider != Provider::OpenAi;
    refuse_unbilled_openai_features(&m, provider)?;
    let (system, messages) = messages::parse_openai(messages_list(&m)?, OpenAiRules { tools: true, object_arguments: translated })?;
    let max_tokens = match opt_u64(&m, "max_completion_tokens")? {
        Some(n) => Some(n),
        None => opt_u64(&m, "max_tokens")?,
    };
    let agent = options::parse_openai(&m, translated)?;
    if translated {
        refuse_untranslatable(&agent, provider, &model, max_tokens)?;
    }
    let include_usage = m.get("stream_options").and_then(|o| o.get("include_usage")).and_then(Value::as_bool).unwrap_or(false);
    let req = ChatRequest {
        route: Route::OpenAiCompatible,
        provider,
        model,
        system,
        messages,
        max_tokens,
        sampling: sampling(&m, "stop")?,
        agent,
        thinking_budget: None,
        stream: opt_bool(&m, "stream")?.unwrap_or(false),
        include_usage,
        body_bytes: body.len() as u64,
        raw: m,
        betas: betas::Betas::default(),
    };
    req.check_images()?;
    Ok(req)
}

/// Fields of Anthropic's Messages request the gateway accepts. Refused on purpose: server tools
/// and MCP servers (billed per use), `container`, `inference_geo` (priced above the list rate).
const ANTHROPIC_FIELDS: &[&str] = &[
    "model", "messages", "max_tokens", "system", "stop_sequences", "stream", "temperature", "top_p", "top_k", "metadata", "tools", "tool_choice",
    "thinking", "service_tier", "output_config", "context_management",
];

/// Anthropic's `tools`: custom tools only. Server tools (web search, code execution) are billed
/// per use, outside token usage.
pub fn anthropic_tools(m: &Map<String, Value>) -> Result<(), ApiError> {
    let Some(tools) = present(m, "tools") else { return Ok(()) };
    let Value::Array(tools) = tools else {
        return Err(ApiError::invalid("`tools` must be an array"));
    };
    if tools.iter().any(|t| t.get("type").and_then(Value::as_str).is_some_and(|ty| ty != "custom")) {
        return Err(ApiError::invalid("server tools are not supported; only custom tools are"));
    }
    Ok(())
}

/// Context editing strategies forwarded: they only clear earlier content from the prompt before
/// the model reads it, so the reported usage is smaller and the byte bound still holds.
pub const CONTEXT_EDITS: &[&str] = &["clear_thinking_20251015", "clear_tool_uses_20250919"];

/// Anthropic's `context_management` (the `context-management-2025-06-27` beta): `edits` of the
/// clearing strategies only. Compaction (`compact_*`) runs a second model call billed apart from
/// the answer's usage, so it is refused by name.
pub fn anthropic_context_management(m: &Map<String, Value>) -> Result<(), ApiError> {
    let Some(cm) = present(m, "context_management") else { return Ok(()) };
    let o = cm.as_object().ok_or_else(|| ApiError::invalid("`context_management` must be an object"))?;
    allow_only(o, &["edits"], "`context_management`")?;
    let edits = match present(o, "edits") {
        None => return Ok(()),
        Some(Value::Array(e)) => e,
        Some(_) => return Err(ApiError::invalid("`context_management.edits` must be an array")),
    };
    for e in edits {
        match e.get("type").and_then(Value::as_str) {
            Some(t) if CONTEXT_EDITS.contains(&t) => {}
            Some(t) => {
                return Err(ApiError::invalid(format!(
                    "`context_management.edits` type `{t}` is not supported; use {} (compaction is a second model call billed apart)",
                    CONTEXT_EDITS.join(" or ")
                )))
            }
            None => return Err(ApiError::invalid("each `context_management.edits` item needs a `type`")),
        }
    }
    Ok(())
}

/// Anthropic's `thinking`: enabled with a budget below `max_tokens`, adaptive, or disabled.
fn anthropic_thinking(m: &Map<String, Value>, max_tokens: u64) -> Result<Option<u64>, ApiError> {
    let Some(t) = present(m, "thinking") else { return Ok(None) };
    let o = t.as_object().ok_or_else(|| ApiError::invalid("`thinking` must be an object"))?;
    allow_only(o, &["type", "budget_tokens", "display"], "`thinking`")?;
    match o.get("type").and_then(Value::as_str) {
        Some("enabled") => {
            let b = o.get("budget_tokens").and_then(Value::as_u64).ok_or_else(|| ApiError::invalid("`thinking.budget_tokens` is required with `type: enabled`"))?;
            if b < MIN_THINKING_BUDGET || b >= max_tokens {
                return Err(ApiError::invalid(format!("`thinking.budget_tokens` must be at least {MIN_THINKING_BUDGET} and below `max_tokens` ({max_tokens}), which counts thinking too")));
            }
            Ok(Some(b))
        }
        Some("adaptive" | "disabled") => Ok(None),
        _ => Err(ApiError::invalid("`thinking.type` must be enabled, adaptive or disabled")),
    }
}

/// `POST /v1/messages`.
pub fn parse_anthropic(body: &[u8]) -> Result<ChatRequest, ApiError> {
    let m = obj(body)?;
    allow_only(&m, ANTHROPIC_FIELDS, "/v1/messages")?;
    let model = req_str(&m, "model")?;
    let model = model.strip_prefix("anthropic/").unwrap_or(model).to_string();
    let messages = messages::parse_anthropic(messages_list(&m)?)?;
    let system = match present(&m, "system") {
        None => None,
        Some(v) => Some(messages::content_text(v, "system")?),
    };
    match present(&m, "service_tier") {
        None => {}
        Some(Value::String(t)) if t == "auto" || t == "standard_only" => {}
        Some(_) => return Err(ApiError::invalid("`service_tier` may only be `auto` or `standard_only`")),
    }
    anthropic_tools(&m)?;
    anthropic_context_management(&m)?;
    if let Some(oc) = present(&m, "output_config") {
        let o = oc.as_object().ok_or_else(|| ApiError::invalid("`output_config` must be an object"))?;
        allow_only(o, &["effort", "format"], "`output_config`")?;
    }
    let max_tokens = opt_u64(&m, "max_tokens")?.ok_or_else(|| ApiError::invalid("`max_tokens` is required"))?;
    let thinking_budget = anthropic_thinking(&m, max_tokens)?;
    let req = ChatRequest {
        route: Route::AnthropicCompatible,
        provider: Provider::Anthropic,
        model,
        system,
        messages,
        max_tokens: Some(max_tokens),
        sampling: sampling(&m, "stop_sequences")?,
        agent: Agent::default(),
        thinking_budget,
        stream: opt_bool(&m, "stream")?.unwrap_or(false),
        include_usage: true,
        body_bytes: body.len() as u64,
        raw: m,
        betas: betas::Betas::default(),
    };
    req.check_images()?;
    Ok(req)
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
