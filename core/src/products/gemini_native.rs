//! Gemini's own API on the metering engine: `POST /v1beta/models/{model}:generateContent` and
//! `:streamGenerateContent?alt=sse`, so the google-genai SDKs and the Gemini CLI work with only
//! their base URL changed. Parse → price ([`GeminiProduct::price`]) → run → render
//! ([`GeminiMeter`]).
//!
//! - **Only what is priced is forwarded**: the body is Gemini's own (camelCase, or the REST
//!   docs' snake_case, normalized), checked against allowlists at each level; text, images and
//!   function calls pass; other media (audio is priced apart), `fileData` (files under the
//!   gateway's account), `cachedContent` (storage billed by the hour), built-in tools (billed per
//!   use: Google Search, code execution, ...), several candidates and non-text output are 400s
//!   naming the field.
//! - **Hold**: the prompt's bytes (images counted at their token bound, at the dearest media
//!   resolution) plus `maxOutputTokens` (thoughts count toward it) at list price; without
//!   `maxOutputTokens`, admission picks the cap the balance covers and it is sent.
//! - **Run**: the provider is always asked for an SSE stream. A streamed answer passes through
//!   byte for byte (only its first chunk and the one that ends it are parsed, for
//!   `usageMetadata`); a whole answer is assembled from the chunks as
//!   `generateContent` would have answered. No gateway field is added to Gemini's body (the SDKs
//!   parse it strictly): the charge is in the `x-credits-*` headers of a whole answer and in the
//!   ledger.

use crate::chat::image_tokens::{image_tokens, MediaResolution};
use crate::chat::images::{self, MAX_IMAGES};
use crate::error::{ApiError, ErrorKind, ErrorShape};
use crate::metering::{CallMeta, FlexibleOutput, HoldPlan, Metered, Units, CHAT_CLASS};
use crate::money::{credits_json, credits_string, CreditRate};
use crate::payer::Bill;
use crate::pricing::PricedModel;
use crate::product::{End, Finish, Meter, Product, ProviderHead, StreamHead, UpstreamRequest, WholeAnswer};
use crate::provider::Provider;
use crate::providers::gemini::usage_from;
use crate::providers::{join, Endpoint};
use crate::sse::{encode_data, SseParser};
use crate::usage::Usage;
use serde_json::{json, Map, Value};

const TOP_FIELDS: &[&str] = &["contents", "systemInstruction", "generationConfig", "tools", "toolConfig", "safetySettings"];
const GENERATION_FIELDS: &[&str] = &[
    "temperature", "topP", "topK", "candidateCount", "maxOutputTokens", "stopSequences", "presencePenalty", "frequencyPenalty", "seed",
    "responseMimeType", "responseSchema", "responseJsonSchema", "responseModalities", "thinkingConfig", "mediaResolution", "responseLogprobs",
    "logprobs",
];
const CONTENT_FIELDS: &[&str] = &["role", "parts"];
const PART_FIELDS: &[&str] = &["text", "inlineData", "functionCall", "functionResponse", "thought", "thoughtSignature", "mediaResolution"];
/// Tools Google bills per use (or by storage), outside token usage: refused by name.
const PER_USE_TOOLS: &[&str] = &["googleSearch", "googleSearchRetrieval", "codeExecution", "urlContext", "fileSearch", "googleMaps", "computerUse", "retrieval", "enterpriseWebSearch", "mcpServers"];
/// Why fields outside the allowlists are refused, where the reason is not "unknown".
const REASONS: &[(&str, &str)] = &[
    ("cachedContent", "explicit caches are billed for storage by the hour, which the price table does not hold"),
    ("fileData", "files live under the gateway's own Google account; send images inline (`inlineData`)"),
    ("speechConfig", "audio output is priced apart from text"),
    ("imageConfig", "image output is priced apart from text"),
];

/// Tokens of overhead beyond the prompt's bytes (as on the chat routes).
pub const PROMPT_OVERHEAD_TOKENS: u64 = 1024;

/// `camelCase` of a `snake_case` key (Gemini's REST API takes both spellings).
fn camel(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut upper = false;
    for c in key.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// The object's keys in camelCase (values untouched).
fn camel_keys(m: Map<String, Value>) -> Map<String, Value> {
    m.into_iter().map(|(k, v)| (camel(&k), v)).collect()
}

fn refuse(field: &str, at: &str) -> ApiError {
    let name = if at.is_empty() { field.to_string() } else { format!("{at}.{field}") };
    match REASONS.iter().find(|(f, _)| *f == field) {
        Some((_, why)) => ApiError::invalid(format!("`{name}` is not supported: {why}")),
        None => ApiError::invalid(format!("`{name}` is not supported on Gemini's API here: the gateway forwards only the fields it can price (see the field table)")),
    }
}

fn allow(m: &Map<String, Value>, allowed: &[&str], at: &str) -> Result<(), ApiError> {
    match m.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(refuse(k, at)),
        None => Ok(()),
    }
}

fn object_at(v: Value, at: &str) -> Result<Map<String, Value>, ApiError> {
    match v {
        Value::Object(m) => Ok(camel_keys(m)),
        _ => Err(ApiError::invalid(format!("`{at}` must be an object"))),
    }
}

/// A checked request of Gemini's own API.
#[derive(Debug, Clone, PartialEq)]
pub struct GeminiRequest {
    pub model: String,
    pub stream: bool,
    /// The body to forward (camelCase, checked).
    pub body: Map<String, Value>,
    pub max_output_tokens: Option<u64>,
    /// The inline images, checked (their bytes are counted by their token bound).
    pub images: Vec<images::Image>,
    pub body_bytes: u64,
}

/// Parts of one content: text, images inline, function calls and responses.
fn check_parts(parts: Value, at: &str, found: &mut Vec<images::Image>) -> Result<Value, ApiError> {
    let Value::Array(parts) = parts else { return Err(ApiError::invalid(format!("`{at}.parts` must be an array"))) };
    let mut out = Vec::with_capacity(parts.len());
    for (j, p) in parts.into_iter().enumerate() {
        let here = format!("{at}.parts[{j}]");
        let mut p = object_at(p, &here)?;
        allow(&p, PART_FIELDS, &here)?;
        if let Some(d) = p.remove("inlineData") {
            let d = object_at(d, &format!("{here}.inlineData"))?;
            allow(&d, &["mimeType", "data"], &format!("{here}.inlineData"))?;
            let (Some(mime), Some(data)) = (d.get("mimeType").and_then(Value::as_str), d.get("data").and_then(Value::as_str)) else {
                return Err(ApiError::invalid(format!("`{here}.inlineData` needs `mimeType` and `data`")));
            };
            if !images::MEDIA_TYPES.contains(&mime) {
                return Err(ApiError::invalid(format!("`{here}.inlineData.mimeType` `{mime}` is not supported: only images ({}) are priced here", images::MEDIA_TYPES.join(", "))));
            }
            found.push(images::from_base64(mime, data, None, &here)?);
            p.insert("inlineData".into(), Value::Object(d));
        }
        out.push(Value::Object(p));
    }
    Ok(Value::Array(out))
}

/// `POST /v1beta/models/{model}:generateContent` (`stream` false) or
/// `:streamGenerateContent` (`stream` true, `alt` must be `sse`).
pub fn parse(model: &str, stream: bool, alt: Option<&str>, body: &[u8]) -> Result<GeminiRequest, ApiError> {
    if stream && alt != Some("sse") {
        return Err(ApiError::invalid("`:streamGenerateContent` is served as server-sent events only: add `?alt=sse` (the google-genai SDKs do)"));
    }
    let model = model.strip_prefix("models/").unwrap_or(model).to_string();
    let m = match serde_json::from_slice::<Value>(body) {
        Ok(v @ Value::Object(_)) => object_at(v, "body")?,
        Ok(_) => return Err(ApiError::invalid("request body must be a JSON object")),
        Err(e) => return Err(ApiError::invalid(format!("request body is not valid JSON: {e}"))),
    };
    allow(&m, TOP_FIELDS, "")?;
    let mut m = m;
    let mut found = Vec::new();
    let contents = match m.remove("contents") {
        Some(Value::Array(c)) if !c.is_empty() => c,
        _ => return Err(ApiError::invalid("`contents` is required and must be a non-empty array")),
    };
    let mut checked = Vec::with_capacity(contents.len());
    for (i, c) in contents.into_iter().enumerate() {
        let at = format!("contents[{i}]");
        let mut c = object_at(c, &at)?;
        allow(&c, CONTENT_FIELDS, &at)?;
        if let Some(role) = c.get("role").filter(|r| !r.is_null()) {
            if !matches!(role.as_str(), Some("user" | "model")) {
                return Err(ApiError::invalid(format!("`{at}.role` must be user or model")));
            }
        }
        let parts = c.remove("parts").ok_or_else(|| ApiError::invalid(format!("`{at}.parts` is required")))?;
        c.insert("parts".into(), check_parts(parts, &at, &mut found)?);
        checked.push(Value::Object(c));
    }
    m.insert("contents".into(), Value::Array(checked));
    if let Some(s) = m.remove("systemInstruction") {
        let mut s = object_at(s, "systemInstruction")?;
        allow(&s, CONTENT_FIELDS, "systemInstruction")?;
        let parts = s.remove("parts").ok_or_else(|| ApiError::invalid("`systemInstruction.parts` is required"))?;
        s.insert("parts".into(), check_parts(parts, "systemInstruction", &mut found)?);
        m.insert("systemInstruction".into(), Value::Object(s));
    }
    if found.len() > MAX_IMAGES {
        return Err(ApiError::invalid(format!("{} images in one request; at most {MAX_IMAGES}", found.len())));
    }
    if let Some(Value::Array(tools)) = m.get("tools") {
        for (i, t) in tools.iter().enumerate() {
            let t = t.as_object().ok_or_else(|| ApiError::invalid(format!("`tools[{i}]` must be an object")))?;
            for k in t.keys() {
                match camel(k).as_str() {
                    "functionDeclarations" => {}
                    name if PER_USE_TOOLS.contains(&name) => {
                        return Err(ApiError::invalid(format!("the `{name}` tool is not supported: Google bills it per use, which the price table does not hold; only `functionDeclarations` are")))
                    }
                    name => return Err(refuse(name, &format!("tools[{i}]"))),
                }
            }
        }
    } else if m.get("tools").is_some_and(|t| !t.is_null()) {
        return Err(ApiError::invalid("`tools` must be an array"));
    }
    let mut max_output_tokens = None;
    if let Some(g) = m.remove("generationConfig") {
        let g = object_at(g, "generationConfig")?;
        allow(&g, GENERATION_FIELDS, "generationConfig")?;
        if g.get("candidateCount").is_some_and(|c| !c.is_null() && c.as_u64() != Some(1)) {
            return Err(ApiError::invalid("`generationConfig.candidateCount` must be 1 (several candidates per call are not supported)"));
        }
        if let Some(mods) = g.get("responseModalities").filter(|v| !v.is_null()) {
            if !mods.as_array().is_some_and(|a| a.iter().all(|v| v.as_str().is_some_and(|s| s.eq_ignore_ascii_case("text")))) {
                return Err(ApiError::invalid("`generationConfig.responseModalities` may only be [\"TEXT\"]: image and audio output are priced apart"));
            }
        }
        max_output_tokens = match g.get("maxOutputTokens").filter(|v| !v.is_null()) {
            None => None,
            Some(v) => Some(v.as_u64().filter(|n| *n > 0).ok_or_else(|| ApiError::invalid("`generationConfig.maxOutputTokens` must be a positive integer"))?),
        };
        m.insert("generationConfig".into(), Value::Object(g));
    }
    Ok(GeminiRequest { model, stream, body: m, max_output_tokens, images: found, body_bytes: body.len() as u64 })
}

/// A Gemini request, priced: its model is servable today.
pub struct GeminiProduct {
    pub req: GeminiRequest,
    pub model: PricedModel,
    pub endpoint: Endpoint,
    /// The day it was priced (`YYYY-MM-DD`): a served model other than the requested one is
    /// priced on it.
    pub today: String,
}

impl GeminiProduct {
    pub fn price(req: GeminiRequest, today: &str, endpoint: Endpoint) -> Result<GeminiProduct, ApiError> {
        let model = crate::pricing::lookup(Provider::Google, &req.model, today)?;
        if let Some(m) = req.max_output_tokens {
            if m > model.max_output() {
                return Err(ApiError::invalid(format!("`generationConfig.maxOutputTokens` {m} exceeds {}'s limit of {}", model.name(), model.max_output())));
            }
        }
        Ok(GeminiProduct { req, model, endpoint, today: today.to_string() })
    }

    /// An upper bound on the prompt's tokens: its bytes but the images' base64, each image at its
    /// largest token count over every media resolution, and an overhead.
    pub fn prompt_upper_tokens(&self) -> u64 {
        let inline: u64 = self.req.images.iter().map(|i| i.inline_len()).sum();
        let resolutions = [MediaResolution::Default, MediaResolution::Low, MediaResolution::Medium, MediaResolution::High];
        let image_tokens: u64 = self.req.images.iter().map(|i| resolutions.iter().map(|r| image_tokens(Provider::Google, self.model.name(), i, *r)).max().unwrap_or(0)).sum();
        self.req.body_bytes.saturating_sub(inline) + image_tokens + PROMPT_OVERHEAD_TOKENS
    }
}

impl Product for GeminiProduct {
    fn class(&self) -> &'static str {
        CHAT_CLASS
    }

    fn meta(&self) -> CallMeta {
        CallMeta { provider: Provider::Google, model: self.model.name().to_string(), product: "chat" }
    }

    fn error_shape(&self) -> ErrorShape {
        ErrorShape::Gemini
    }

    fn hold(&self, rate: &CreditRate) -> (HoldPlan, u64) {
        let prompt = self.prompt_upper_tokens();
        match self.req.max_output_tokens {
            Some(m) => HoldPlan::fixed(rate.millicredits_for_pico_usd(self.model.bound_pico(prompt, m, None)), m),
            None => {
                let flexible = FlexibleOutput { per_unit_micro_mc: rate.millicredits_for_pico_usd(self.model.output_pico_per_token(prompt) * 1_000_000), max_units: self.model.max_output(), min_units: 1 };
                (HoldPlan { fixed_mc: rate.millicredits_for_pico_usd(self.model.input_bound_pico(prompt)).max(1), flexible: Some(flexible) }, self.model.max_output())
            }
        }
    }

    fn upstream(&self, granted_units: u64) -> UpstreamRequest {
        let mut body = self.req.body.clone();
        let g = body.entry("generationConfig").or_insert_with(|| json!({}));
        if let Some(g) = g.as_object_mut() {
            g.insert("maxOutputTokens".into(), json!(granted_units));
        }
        let url = join(&self.endpoint.base_url, &format!("/v1beta/models/{}:streamGenerateContent?alt=sse", self.model.name()));
        UpstreamRequest::json(url, vec![("x-goog-api-key".into(), self.endpoint.api_key.expose().to_string())], &Value::Object(body))
    }

    fn upstream_error(&self, status: u16, body: &[u8]) -> ApiError {
        crate::providers::upstream_error(Provider::Google, status, body)
    }

    fn meter(self: Box<Self>, billing: Bill, granted_units: u64) -> Box<dyn Meter> {
        Box::new(GeminiMeter {
            product: *self,
            billing,
            max_tokens: granted_units,
            parser: SseParser::new(),
            usage: None,
            finished: false,
            valid_events: 0,
            provider_error: None,
            served_model: None,
            served_tier: None,
            whole: Assembled::default(),
        })
    }
}

/// `generateContent`'s answer built from the stream's chunks: the parts in order (adjacent text
/// of the same kind joined), the last chunk's usage, finish reason and metadata.
#[derive(Default)]
struct Assembled {
    parts: Vec<Value>,
    last: Option<Value>,
}

impl Assembled {
    fn add(&mut self, v: &Value) {
        for p in v.pointer("/candidates/0/content/parts").and_then(Value::as_array).into_iter().flatten() {
            let joinable = |q: &Value| q.get("text").is_some() && q.get("thoughtSignature").is_none() && q.as_object().is_some_and(|o| o.keys().all(|k| k == "text" || k == "thought"));
            match self.parts.last_mut() {
                Some(prev) if joinable(prev) && joinable(p) && prev.get("thought") == p.get("thought") => {
                    let more = p.get("text").and_then(Value::as_str).unwrap_or("");
                    if let Some(Value::String(t)) = prev.get_mut("text") {
                        t.push_str(more);
                    }
                }
                _ => self.parts.push(p.clone()),
            }
        }
        self.last = Some(v.clone());
    }

    fn body(&mut self) -> Option<Value> {
        let mut out = self.last.take()?;
        if let Some(c) = out.pointer_mut("/candidates/0") {
            c["content"] = json!({ "parts": std::mem::take(&mut self.parts), "role": "model" });
        }
        Some(out)
    }
}

pub struct GeminiMeter {
    product: GeminiProduct,
    billing: Bill,
    max_tokens: u64,
    parser: SseParser,
    usage: Option<Usage>,
    finished: bool,
    valid_events: u64,
    provider_error: Option<String>,
    /// The answer's `modelVersion` and `usageMetadata.serviceTier`, when it says.
    served_model: Option<String>,
    served_tier: Option<String>,
    whole: Assembled,
}

impl GeminiMeter {
    fn metered(&self, end: &End) -> Metered {
        let model = &self.product.model;
        if let Some(u) = self.usage.filter(|_| self.finished) {
            // As on the chat routes (docs/billing.md): another tier or an unlisted model is billed
            // the hold with a warning; a listed model that served the call at its own rates.
            if let Some(t) = self.served_tier.as_deref().filter(|t| !t.eq_ignore_ascii_case("standard")) {
                return self.hold_bound(format!("the provider served the call at its `{t}` tier, not the standard one"), format!("served at the `{t}` service tier, which has no list price here"));
            }
            return match crate::pricing::served_model(*model, self.served_model.as_deref(), &self.product.today) {
                Ok(served) if served.name() == model.name() => Metered::exact(model.cost_pico(&u), Units::Tokens(u)),
                Ok(served) => Metered {
                    note: Some(format!("requested {}, served by {} (the answer's model): billed at {}'s list prices", model.name(), served.name(), served.name())),
                    ..Metered::exact(served.cost_pico(&u), Units::Tokens(u))
                },
                Err(unknown) => self.hold_bound(
                    format!("requested {}, served by {unknown}, which the price table does not list", model.name()),
                    format!("served by `{unknown}`, which has no list price here"),
                ),
            };
        }
        let prompt = self.product.prompt_upper_tokens();
        let known = self.usage.filter(|u| u.prompt_total() > 0);
        let cost = model.bound_pico(prompt, self.max_tokens, known.as_ref());
        let bound = match known {
            Some(u) => Usage { output: self.max_tokens.max(u.output), ..u },
            None => Usage { input: prompt, output: self.max_tokens, ..Usage::default() },
        };
        let why = self.provider_error.as_ref().map(|e| format!("the provider reported an error ({e})")).unwrap_or_else(|| end.describe());
        Metered { cost_pico_usd: cost, units: Units::Tokens(bound), exact: false, note: Some(format!("{why}; usage never reported: billed the upper bound ({} output tokens allowed)", self.max_tokens)), warning: None }
    }

    /// The hold's bound, with a warning: a usage the table cannot price.
    fn hold_bound(&self, why: String, warning: String) -> Metered {
        let prompt = self.product.prompt_upper_tokens();
        let cost = self.product.model.bound_pico(prompt, self.max_tokens, None);
        let units = Units::Tokens(self.usage.unwrap_or(Usage { input: prompt, output: self.max_tokens, ..Usage::default() }));
        Metered { cost_pico_usd: cost, units, exact: false, note: Some(format!("{why}: billed the hold's bound")), warning: Some(warning) }
    }

    fn handle(&mut self, data: &str, raw: &[u8], out: &mut Vec<u8>) {
        // A streamed chunk passes through unparsed once the stream has shown it is Gemini's (its
        // first chunk, with the prompt's usage, parsed), unless it may end the answer: its
        // cumulative usage is read from the last chunk (a finish or block reason) or an error.
        let data = data.trim();
        let ends = |d: &str| ["\"finishReason\"", "\"blockReason\"", "\"error\""].iter().any(|k| crate::providers::has_key(d, k));
        if self.product.req.stream && self.valid_events > 0 && !data.is_empty() && !ends(data) {
            self.valid_events += 1;
            out.extend_from_slice(raw);
            return;
        }
        let Ok(v @ Value::Object(_)) = serde_json::from_str::<Value>(data) else { return };
        self.valid_events += 1;
        if let Some(m) = v.get("modelVersion").and_then(Value::as_str) {
            self.served_model = Some(m.strip_prefix("models/").unwrap_or(m).to_string());
        }
        if let Some(t) = v.pointer("/usageMetadata/serviceTier").and_then(Value::as_str) {
            self.served_tier = Some(t.to_string());
        }
        if let Some(e) = v.get("error") {
            self.provider_error = Some(e.get("message").and_then(Value::as_str).unwrap_or("provider error").to_string());
        }
        if let Some(um) = v.get("usageMetadata") {
            self.usage = Some(usage_from(um));
        }
        // The last chunk: a finish reason, or a prompt Gemini blocked (no candidates at all).
        let last = v.pointer("/candidates/0/finishReason").and_then(Value::as_str).is_some() || v.pointer("/promptFeedback/blockReason").and_then(Value::as_str).is_some();
        if last && self.usage.is_some() {
            self.finished = true;
        }
        if self.product.req.stream {
            out.extend_from_slice(raw);
        } else {
            self.whole.add(&v);
        }
    }

    fn incomplete(&self, end: &End, charged_mc: i64) -> ApiError {
        let what = match (end, &self.provider_error) {
            (End::IdleTimeout, _) => "the provider stalled and the call was cut".to_string(),
            (_, Some(e)) => format!("the provider failed mid-answer ({e})"),
            _ => "the provider's answer broke off".to_string(),
        };
        let kind = if *end == End::IdleTimeout { ErrorKind::UpstreamTimeout } else { ErrorKind::UpstreamError };
        ApiError::new(kind, format!("{what}; billed {} credits, the most this call could cost, since the provider reported no usage", credits_string(charged_mc)))
            .public()
            .with_details(json!({ "credits_charged": credits_json(charged_mc) }))
    }
}

impl Meter for GeminiMeter {
    fn stream_head(&self) -> Option<StreamHead> {
        self.product.req.stream.then(|| StreamHead { content_type: "text/event-stream".into(), headers: vec![("cache-control".into(), "no-cache".into())] })
    }

    /// A streamed answer is Gemini's bytes (the engine may pipe it; the few events `push` would
    /// drop, ones that are not JSON, then reach the client as Gemini sent them).
    fn byte_exact_stream(&self) -> bool {
        self.product.req.stream
    }

    fn start(&mut self, head: &ProviderHead) -> Result<(), ApiError> {
        head.expect_content_type("text/event-stream", "an event stream")
    }

    fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut parser = std::mem::take(&mut self.parser);
        parser.feed(chunk, |ev| self.handle(&ev.data, ev.raw, &mut out));
        self.parser = parser;
        out
    }

    fn finish(&mut self, end: End) -> Finish {
        let mut tail = Vec::new();
        if let Some(ev) = self.parser.finish() {
            self.handle(&ev.data, &ev.raw, &mut tail);
        }
        if self.valid_events == 0 && end == End::Complete {
            let e = ApiError::upstream("the provider's answer was not a stream the gateway can read; nothing was charged").public();
            return Finish { tail, answer: Err(e), metered: None };
        }
        let metered = self.metered(&end);
        let charge = self.billing.charge(metered.cost_pico_usd);
        // Complete when the final usage came (even one billed the hold: a whole answer).
        let complete = self.finished && end == End::Complete && self.provider_error.is_none();
        if !complete {
            let e = self.incomplete(&end, charge.charged_mc);
            if self.product.req.stream {
                // Gemini's own in-stream error: a chunk holding a google.rpc.Status.
                let status = if end == End::IdleTimeout { "DEADLINE_EXCEEDED" } else { "UNAVAILABLE" };
                tail.extend(encode_data(&json!({"error": {"code": e.status(), "message": e.public_message(), "status": status}}).to_string()));
            }
            return Finish { tail, answer: Err(e), metered: Some(metered) };
        }
        let answer = match self.whole.body() {
            _ if self.product.req.stream => Err(ApiError::upstream("streamed")),
            Some(body) => Ok(WholeAnswer { status: 200, content_type: "application/json; charset=UTF-8".into(), headers: self.billing.credit_headers(&charge), body: body.to_string().into_bytes() }),
            None => Err(self.incomplete(&end, charge.charged_mc)),
        };
        Finish { tail, answer, metered: Some(metered) }
    }
}

#[cfg(test)]
#[path = "gemini_native_tests.rs"]
mod tests;
