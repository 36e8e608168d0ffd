//! OpenAI's Responses API (`POST /v1/responses`): the request parsed into what the gateway prices
//! and sends, for every provider.
//!
//! - **OpenAI models**: the client's body, allowlisted, is forwarded to OpenAI's own
//!   `/v1/responses` (with `stream: true`, `store: false` and the granted `max_output_tokens`);
//!   its events pass through byte for byte (`products::responses`).
//! - **Anthropic and Gemini models**: `input` items, `instructions`, tools, `tool_choice`,
//!   `text.format` and `reasoning.effort` become a [`ChatRequest`] that the chat wires translate,
//!   and the provider's stream is rendered back as Responses events ([`events`]).
//!
//! **No conversation state.** The gateway stores nothing at the provider and nothing itself:
//! `store: true`, `previous_response_id`, `conversation`, `background` and `prompt` (a stored
//! template) are 400s naming the field. An absent `store` is sent as `false` (OpenAI's default,
//! true, would keep the customer's data under the gateway's account).
//!
//! **Only what is priced is served.** Built-in tools that OpenAI bills per call (web search, file
//! search, code interpreter, computer use, image generation) and remote MCP servers are 400s naming
//! the tool; an unknown field is a 400 naming it. `docs/responses.md` has the field table.

pub mod events;
pub mod input;
pub mod tools;

use crate::chat::fields::{allow_only, obj, opt_bool, opt_f64, opt_u64, present, req_str};
use crate::chat::options::{self, Agent};
use crate::chat::{split_model, ChatRequest, Route, Sampling};
use crate::error::ApiError;
use crate::provider::Provider;
use serde_json::{json, Map, Value};

/// Fields of the Responses request the gateway accepts (some only to refuse them by name).
const FIELDS: &[&str] = &[
    "model", "input", "instructions", "stream", "store", "include", "reasoning", "text", "tools", "tool_choice", "parallel_tool_calls",
    "max_output_tokens", "temperature", "top_p", "metadata", "user", "safety_identifier", "prompt_cache_key", "client_metadata", "service_tier",
    "truncation", "stream_options", "top_logprobs", "max_tool_calls", "previous_response_id", "conversation", "background", "prompt",
];

// Fields that change neither the answer nor the price (`metadata`, `user`, `safety_identifier`,
// `prompt_cache_key`, `client_metadata`, `stream_options`, `truncation`, `max_tool_calls`,
// `text.verbosity`, `include`, `reasoning.summary`) are forwarded to OpenAI and dropped for the
// other providers, which have no such field: the translation reads only what it translates.

/// Fields only OpenAI can honour: refused for the other providers.
const OPENAI_ONLY: &[&str] = &["top_logprobs"];

/// `include` values the gateway accepts (the others return built-in tools' outputs).
const INCLUDES: &[&str] = &["reasoning.encrypted_content", "message.output_text.logprobs"];

/// A parsed Responses request.
#[derive(Debug, Clone, PartialEq)]
pub struct ResponsesRequest {
    /// The conversation and options as the chat engine knows them: the prompt bound and images
    /// for every provider, the translation for Anthropic and Gemini.
    pub chat: ChatRequest,
    /// The model as the client wrote it (translated answers echo it).
    pub model_label: String,
    /// The client's body, allowlisted (forwarded to OpenAI; echoed fields for the others).
    pub raw: Map<String, Value>,
}

impl ResponsesRequest {
    pub fn provider(&self) -> Provider {
        self.chat.provider
    }

    pub fn stream(&self) -> bool {
        self.chat.stream
    }

    /// OpenAI's body: the client's, with the model bare, a stream, nothing stored, and the output
    /// cap admission granted.
    pub fn openai_body(&self, max_output_tokens: u64) -> Value {
        let mut m = self.raw.clone();
        m.insert("model".into(), json!(self.chat.model));
        m.insert("stream".into(), json!(true));
        m.insert("store".into(), json!(false));
        m.insert("max_output_tokens".into(), json!(max_output_tokens));
        Value::Object(m)
    }
}

fn stateful(field: &str, why: &str) -> ApiError {
    ApiError::invalid(format!("`{field}` is not supported: {why}; the gateway keeps no conversation state, so send the whole conversation in `input`"))
}

/// What needs state or storage at the provider, refused by name.
fn refuse_state(m: &Map<String, Value>) -> Result<(), ApiError> {
    if present(m, "store").is_some_and(|v| v != &Value::Bool(false)) {
        return Err(stateful("store: true", "responses are not stored at the provider (an absent `store` is sent as false)"));
    }
    if present(m, "previous_response_id").is_some() {
        return Err(stateful("previous_response_id", "no earlier response is stored to continue from"));
    }
    if present(m, "conversation").is_some() {
        return Err(stateful("conversation", "no conversation is stored at the provider"));
    }
    if opt_bool(m, "background")? == Some(true) {
        return Err(stateful("background", "a background response must be stored to be polled"));
    }
    if present(m, "prompt").is_some() {
        return Err(ApiError::invalid("`prompt` is not supported: stored prompt templates live in the provider account; send `instructions` and `input`"));
    }
    Ok(())
}

fn check_include(m: &Map<String, Value>) -> Result<(), ApiError> {
    let Some(v) = present(m, "include") else { return Ok(()) };
    let list = v.as_array().ok_or_else(|| ApiError::invalid("`include` must be an array of strings"))?;
    for item in list {
        match item.as_str() {
            Some(s) if INCLUDES.contains(&s) => {}
            Some(s) => return Err(ApiError::invalid(format!("`include` value `{s}` is not supported (only {} are)", INCLUDES.join(" and ")))),
            None => return Err(ApiError::invalid("`include` must be an array of strings")),
        }
    }
    Ok(())
}

/// `tools`: function tools for every provider; OpenAI's client-run tools for OpenAI; the
/// per-call priced built-ins refused by name. Returns the function tools in the chat shape.
fn check_tools(m: &Map<String, Value>, translated: bool) -> Result<Vec<Value>, ApiError> {
    let Some(v) = present(m, "tools") else { return Ok(Vec::new()) };
    let list = v.as_array().ok_or_else(|| ApiError::invalid("`tools` must be an array"))?;
    tools::check_tool_list(list, "tools", translated)
}

/// `tool_choice` in the chat shape (for the translation).
fn tool_choice_chat(v: &Value) -> Result<Value, ApiError> {
    match v {
        Value::String(_) => Ok(v.clone()),
        Value::Object(o) if o.get("type").and_then(Value::as_str) == Some("function") => {
            allow_only(o, &["type", "name"], "`tool_choice`")?;
            Ok(json!({"type": "function", "function": {"name": o.get("name").cloned().unwrap_or(Value::Null)}}))
        }
        _ => Err(ApiError::invalid("`tool_choice` must be \"auto\", \"none\", \"required\" or {\"type\": \"function\", \"name\": ...} for this model")),
    }
}

/// `tool_choice` naming a built-in tool (priced per call) is refused like the tool itself.
fn check_tool_choice(m: &Map<String, Value>) -> Result<(), ApiError> {
    if let Some(ty) = present(m, "tool_choice").and_then(|v| v.get("type")).and_then(Value::as_str) {
        if tools::PRICED_TOOLS.contains(&ty) || ty == "mcp" {
            return Err(ApiError::invalid(format!("`tool_choice` names the built-in tool `{ty}`, which is not supported")));
        }
    }
    Ok(())
}

/// `text`: `format` (text, json_object, json_schema) and `verbosity`; returns the chat shape's
/// `response_format` when a format is given.
fn text_format(m: &Map<String, Value>) -> Result<Option<Value>, ApiError> {
    let Some(t) = present(m, "text") else { return Ok(None) };
    let o = t.as_object().ok_or_else(|| ApiError::invalid("`text` must be an object"))?;
    allow_only(o, &["format", "verbosity"], "`text`")?;
    if let Some(v) = o.get("verbosity").filter(|v| !v.is_null()) {
        if !matches!(v.as_str(), Some("low" | "medium" | "high")) {
            return Err(ApiError::invalid("`text.verbosity` must be low, medium or high"));
        }
    }
    let Some(f) = o.get("format").filter(|v| !v.is_null()) else { return Ok(None) };
    let fo = f.as_object().ok_or_else(|| ApiError::invalid("`text.format` must be an object"))?;
    match fo.get("type").and_then(Value::as_str) {
        Some("text") | Some("json_object") => {
            allow_only(fo, &["type"], "`text.format`")?;
            Ok(Some(json!({"type": fo["type"]})))
        }
        Some("json_schema") => {
            allow_only(fo, &["type", "name", "schema", "strict", "description"], "`text.format`")?;
            let mut js = Map::new();
            for k in ["name", "schema", "strict", "description"] {
                if let Some(x) = fo.get(k) {
                    js.insert(k.into(), x.clone());
                }
            }
            Ok(Some(json!({"type": "json_schema", "json_schema": js})))
        }
        _ => Err(ApiError::invalid("`text.format.type` must be text, json_object or json_schema")),
    }
}

/// `reasoning`: `effort` and `summary` (`generate_summary`, its old name); returns the effort.
fn reasoning_effort(m: &Map<String, Value>) -> Result<Option<Value>, ApiError> {
    let Some(r) = present(m, "reasoning") else { return Ok(None) };
    let o = r.as_object().ok_or_else(|| ApiError::invalid("`reasoning` must be an object"))?;
    // `context` (which turns' reasoning the model keeps, Codex's `all_turns`): forwarded to
    // OpenAI, billed as the usage it reports; nothing to translate for the others.
    allow_only(o, &["effort", "summary", "generate_summary", "context"], "`reasoning`")?;
    for k in ["summary", "generate_summary"] {
        if let Some(v) = o.get(k).filter(|v| !v.is_null()) {
            if !matches!(v.as_str(), Some("auto" | "concise" | "detailed")) {
                return Err(ApiError::invalid(format!("`reasoning.{k}` must be auto, concise or detailed")));
            }
        }
    }
    Ok(o.get("effort").filter(|v| !v.is_null()).cloned())
}

fn check_service_tier(m: &Map<String, Value>) -> Result<(), ApiError> {
    // Priority and flex tiers are priced differently from the list prices the table holds.
    match present(m, "service_tier") {
        None => Ok(()),
        Some(Value::String(t)) if t == "auto" || t == "default" => Ok(()),
        Some(_) => Err(ApiError::invalid("`service_tier` may only be `auto` or `default`")),
    }
}

/// The agent options translated for Anthropic and Gemini, through the chat route's own checks.
fn translated_agent(m: &Map<String, Value>, tools: Vec<Value>, response_format: Option<Value>, effort: Option<Value>, provider: Provider) -> Result<Agent, ApiError> {
    let mut chat = Map::new();
    if !tools.is_empty() {
        chat.insert("tools".into(), Value::Array(tools));
    }
    if let Some(tc) = present(m, "tool_choice") {
        chat.insert("tool_choice".into(), tool_choice_chat(tc)?);
    }
    if let Some(p) = present(m, "parallel_tool_calls") {
        chat.insert("parallel_tool_calls".into(), p.clone());
    }
    if let Some(rf) = response_format {
        chat.insert("response_format".into(), rf);
    }
    // Claude's signed thinking comes back to it through `reasoning` items (`events`, `input`).
    if let Some(e) = effort {
        chat.insert("reasoning_effort".into(), e);
    }
    let agent = options::parse_openai(&chat, true)?;
    if provider == Provider::Google && agent.parallel_tool_calls == Some(false) {
        return Err(ApiError::invalid("`parallel_tool_calls: false` cannot be honoured for google models (Gemini has no such switch)"));
    }
    if provider == Provider::Anthropic && agent.response_format == Some(options::ResponseFormat::JsonObject) {
        return Err(ApiError::invalid("`text.format: json_object` cannot be honoured for anthropic models (Claude's structured output needs a schema); use `json_schema`"));
    }
    Ok(agent)
}

/// `POST /v1/responses`.
pub fn parse(body: &[u8]) -> Result<ResponsesRequest, ApiError> {
    let m = obj(body)?;
    allow_only(&m, FIELDS, "/v1/responses")?;
    let model_label = req_str(&m, "model")?.to_string();
    let (provider, model) = split_model(&model_label)?;
    let translated = provider != Provider::OpenAi;
    refuse_state(&m)?;
    check_include(&m)?;
    check_service_tier(&m)?;
    check_tool_choice(&m)?;
    let tools = check_tools(&m, translated)?;
    let response_format = text_format(&m)?;
    let effort = reasoning_effort(&m)?;
    if translated {
        if let Some(k) = OPENAI_ONLY.iter().find(|k| present(&m, k).is_some()) {
            return Err(ApiError::invalid(format!("`{k}` is not supported for {} models on this route", provider.as_str())));
        }
    }
    let (system, messages) = input::parse(&m, translated)?;
    let agent = if translated { translated_agent(&m, tools, response_format, effort, provider)? } else { Agent::default() };
    let max_tokens = opt_u64(&m, "max_output_tokens")?;
    let thinks = agent.effort.is_some_and(|e| e != options::Effort::None);
    if provider == Provider::Anthropic && thinks && options::anthropic_budget_thinking(&model) && max_tokens.is_some_and(|n| n <= options::MIN_THINKING_BUDGET) {
        return Err(ApiError::invalid(format!(
            "`reasoning.effort` on anthropic/{model} needs `max_output_tokens` above {} (its thinking budget counts toward it)",
            options::MIN_THINKING_BUDGET
        )));
    }
    let chat = ChatRequest {
        route: Route::OpenAiCompatible,
        provider,
        model,
        system,
        messages,
        max_tokens,
        sampling: Sampling { temperature: opt_f64(&m, "temperature")?, top_p: opt_f64(&m, "top_p")?, ..Sampling::default() },
        agent,
        thinking_budget: None,
        stream: opt_bool(&m, "stream")?.unwrap_or(false),
        include_usage: true,
        raw: Map::new(),
        body_bytes: body.len() as u64,
        // Anthropic betas come as a header of /v1/messages; this route forwards none.
        betas: crate::chat::betas::Betas::default(),
    };
    chat.check_images()?;
    Ok(ResponsesRequest { chat, model_label, raw: m })
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
