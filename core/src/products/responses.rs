//! The Responses API on the metering engine: the priced request ([`ResponsesProduct`], held like
//! chat) and the meter of its provider stream ([`ResponsesMeter`]).
//!
//! - OpenAI models: OpenAI's own `/v1/responses` stream. Streamed to the client byte for byte
//!   (the engine hands it over as the runtime's own pipe: `Meter::byte_exact_stream`); only the
//!   terminal event (`response.completed`, `.incomplete`, `.failed`) is parsed, for its usage.
//!   The charge is the call's bill (`GET /v1/requests/{id}`). A whole answer is that event's
//!   response object, with the gateway's `x_broker` credit figures.
//! - Anthropic and Gemini models: each provider event is decoded once (the chat wires) and
//!   written as Responses events ([`ResponsesWriter`]).
//!
//! Billing is chat's: the usage of the final event, or the upper bound when it never came.

use super::chat::{incomplete_error, token_metered, ChatProduct, Told};
use crate::chat::ChatRequest;
use crate::error::{ApiError, ErrorShape};
use crate::metering::{CallMeta, Charge, HoldPlan, Metered, Units};
use crate::money::CreditRate;
use crate::payer::Bill;
use crate::product::{End, Finish, Meter, Product, ProviderHead, StreamHead, UpstreamRequest, WholeAnswer};
use crate::provider::Provider;
use crate::providers::decoded::Decoded;
use crate::providers::{self, join, wire, ChatWire, Endpoint};
use crate::responses::ResponsesRequest;
use crate::responses::events::{usage_json, Ending, ResponsesWriter};
use crate::sse::{encode_event, SseEvent, SseParser};
use crate::usage::{u, Usage};
use serde_json::{json, Value};

/// A Responses request, priced: its model is in the table and its provider configured.
pub struct ResponsesProduct {
    pub chat: ChatProduct,
    pub req: ResponsesRequest,
}

impl ResponsesProduct {
    pub fn price(req: ResponsesRequest, today: &str, endpoint: Endpoint, created: u64) -> Result<ResponsesProduct, ApiError> {
        let chat = ChatProduct::price(req.chat.clone(), today, endpoint, created).map_err(|e| {
            // Chat names the cap `max_tokens`; this route calls it `max_output_tokens`.
            let message = e.message.replace("max_tokens", "max_output_tokens");
            ApiError { message, ..e }
        })?;
        Ok(ResponsesProduct { chat, req })
    }
}

impl Product for ResponsesProduct {
    fn class(&self) -> &'static str {
        self.chat.class()
    }

    fn meta(&self) -> CallMeta {
        CallMeta { product: "responses", ..self.chat.meta() }
    }

    fn error_shape(&self) -> ErrorShape {
        ErrorShape::OpenAi
    }

    fn hold(&self, rate: &CreditRate) -> (HoldPlan, u64) {
        self.chat.hold(rate)
    }

    fn upstream(&self, granted_units: u64) -> UpstreamRequest {
        let ep = &self.chat.endpoint;
        match self.req.provider() {
            Provider::OpenAi => {
                let auth = vec![("authorization".into(), format!("Bearer {}", ep.api_key.expose()))];
                UpstreamRequest::json(join(&ep.base_url, "/v1/responses"), auth, &self.req.openai_body(granted_units))
            }
            // The Responses writer renders the translated providers' streams (a whole answer is
            // assembled from one): asked for a stream whatever the client asked.
            p => wire(p).build_request(&ChatRequest { stream: true, ..self.req.chat.clone() }, granted_units, ep),
        }
    }

    fn upstream_error(&self, status: u16, body: &[u8]) -> ApiError {
        providers::upstream_error(self.req.provider(), status, body)
    }

    fn meter(self: Box<Self>, billing: Bill, granted_units: u64) -> Box<dyn Meter> {
        Box::new(ResponsesMeter::new(*self, billing, granted_units))
    }
}

/// OpenAI's Responses usage: `input_tokens` includes the cached ones (and cache writes where
/// reported); `output_tokens` includes reasoning.
pub fn usage_from(v: &Value) -> Usage {
    let input = u(v, "input_tokens");
    let details = v.get("input_tokens_details").cloned().unwrap_or(Value::Null);
    let cached = u(&details, "cached_tokens");
    let write = u(&details, "cache_write_tokens");
    Usage { input: input.saturating_sub(cached).saturating_sub(write), cached_input: cached, cache_write_5m: write, cache_write_1h: 0, output: u(v, "output_tokens") }
}

/// The terminal events of OpenAI's Responses stream (each carries the response object).
const TERMINAL: &[&str] = &["response.completed", "response.incomplete", "response.failed"];

/// OpenAI's own events: passed through, the terminal one parsed.
struct Native {
    /// OpenAI's response id (from `response.created`), for an event the gateway adds.
    id: Option<String>,
    /// The terminal event's response object (a whole answer returns it).
    response: Option<Value>,
}

enum Mode {
    Native(Native),
    Translated { wire: &'static dyn ChatWire, writer: Box<ResponsesWriter> },
}

pub struct ResponsesMeter {
    product: ResponsesProduct,
    billing: Bill,
    max_tokens: u64,
    stream: bool,
    parser: SseParser,
    usage: Option<Usage>,
    final_usage: bool,
    finish_reason: Option<String>,
    valid_events: u64,
    provider_error: Option<String>,
    /// The service tier and the model the answer says served the call, when it says.
    served_tier: Option<String>,
    served_model: Option<String>,
    mode: Mode,
}

/// The event's `type`: its SSE name, else (cheaply) whether the data names a terminal type.
fn event_type(ev: &SseEvent) -> Option<&str> {
    if let Some(n) = ev.event.as_deref() {
        return Some(n);
    }
    ["response.created", "response.completed", "response.incomplete", "response.failed", "error"]
        .into_iter()
        .find(|t| ev.data.contains(&format!("\"type\":\"{t}\"")) || ev.data.contains(&format!("\"type\": \"{t}\"")))
}

impl ResponsesMeter {
    pub fn new(product: ResponsesProduct, billing: Bill, max_tokens: u64) -> ResponsesMeter {
        let stream = product.req.stream();
        let mode = match product.req.provider() {
            Provider::OpenAi => Mode::Native(Native { id: None, response: None }),
            p => Mode::Translated { wire: wire(p), writer: Box::new(ResponsesWriter::new(stream, billing.clone(), product.chat.created, &product.req.model_label, &product.req.raw)) },
        };
        ResponsesMeter { product, billing, max_tokens, stream, parser: SseParser::new(), usage: None, final_usage: false, finish_reason: None, valid_events: 0, provider_error: None, served_tier: None, served_model: None, mode }
    }

    fn metered(&self, end: &End) -> Metered {
        let c = &self.product.chat;
        let told = Told {
            model: c.model,
            prompt_upper: c.req.prompt_upper_tokens(),
            max_tokens: self.max_tokens,
            usage: self.usage,
            final_usage: self.final_usage,
            other_tier: self.served_tier.as_deref().filter(|t| !wire(self.product.req.provider()).is_standard_tier(t)),
            served_model: self.served_model.as_deref(),
            created: c.created,
            provider_error: self.provider_error.as_deref(),
        };
        token_metered(&told, end)
    }

    fn usage_of(metered: &Metered) -> Usage {
        match metered.units {
            Units::Tokens(u) => u,
            _ => Usage::default(),
        }
    }

    fn native_event(&mut self, ev: SseEvent, out: &mut Vec<u8>) {
        let Mode::Native(native) = &mut self.mode else { return };
        let kind = event_type(&ev).map(str::to_string);
        let Some(kind) = kind else {
            // Keep-alives and events the gateway does not read: passed on untouched.
            if self.stream {
                out.extend_from_slice(&ev.raw);
            }
            return;
        };
        if kind.starts_with("response.") || kind == "error" {
            self.valid_events += 1;
        }
        let needs_parse = kind == "response.created" || kind == "error" || TERMINAL.contains(&kind.as_str());
        let parsed = if needs_parse { serde_json::from_str::<Value>(&ev.data).ok().filter(Value::is_object) } else { None };
        let Some(v) = parsed else {
            if self.stream {
                out.extend_from_slice(&ev.raw);
            }
            return;
        };
        match kind.as_str() {
            "response.created" => native.id = v.pointer("/response/id").and_then(Value::as_str).map(str::to_string),
            "error" => self.provider_error = Some(v.get("message").and_then(Value::as_str).unwrap_or("provider error").to_string()),
            _ => {
                // OpenAI's tier is in the response object (`default` is the standard one).
                if let Some(t) = v.pointer("/response/service_tier").and_then(Value::as_str) {
                    self.served_tier = Some(t.to_string());
                }
                if let Some(uv) = v.pointer("/response/usage").filter(|x| x.is_object()) {
                    self.usage = Some(usage_from(uv));
                    self.final_usage = true;
                }
                if kind == "response.failed" {
                    let msg = v.pointer("/response/error/message").and_then(Value::as_str).unwrap_or("the response failed");
                    self.provider_error = Some(msg.to_string());
                }
                let Mode::Native(native) = &mut self.mode else { return };
                native.response = v.get("response").cloned();
                if self.stream {
                    out.extend_from_slice(&ev.raw);
                }
                return;
            }
        }
        if self.stream {
            out.extend_from_slice(&ev.raw);
        }
    }

    fn translated_event(&mut self, ev: SseEvent, out: &mut Vec<u8>) {
        let Mode::Translated { wire, writer } = &mut self.mode else { return };
        let data = ev.data.trim();
        if data.is_empty() || data == "[DONE]" {
            return;
        }
        // Whatever a provider sends, nothing here may panic: a payload that is not a JSON object
        // is not a provider event.
        let Ok(v @ Value::Object(_)) = serde_json::from_str::<Value>(data) else { return };
        if let Some(t) = wire.served_tier(&v) {
            self.served_tier = Some(t);
        }
        if let Some(m) = wire.served_model(&v) {
            self.served_model = Some(m);
        }
        let decoded = wire.decode(ev.event.as_deref(), &v, &mut self.usage);
        self.valid_events += 1;
        for d in &decoded {
            match d {
                Decoded::Finish(r) => {
                    self.finish_reason = Some(r.clone());
                    if wire.final_usage_on_finish() && self.usage.is_some() {
                        self.final_usage = true;
                    }
                }
                Decoded::FinalUsage => self.final_usage = true,
                Decoded::Error(e) => self.provider_error = Some(e.pointer("/error/message").and_then(Value::as_str).unwrap_or("provider error").to_string()),
                _ => {}
            }
            writer.event(d, out);
        }
    }

}

impl Meter for ResponsesMeter {
    fn byte_exact_stream(&self) -> bool {
        self.stream && matches!(self.mode, Mode::Native(_))
    }

    fn stream_head(&self) -> Option<StreamHead> {
        self.stream.then(|| StreamHead { content_type: "text/event-stream".into(), headers: vec![("cache-control".into(), "no-cache".into())] })
    }

    fn start(&mut self, head: &ProviderHead) -> Result<(), ApiError> {
        head.expect_content_type("text/event-stream", "an event stream")
    }

    fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for ev in self.parser.push(chunk) {
            match self.mode {
                Mode::Native(_) => self.native_event(ev, &mut out),
                Mode::Translated { .. } => self.translated_event(ev, &mut out),
            }
        }
        out
    }

    fn finish(&mut self, end: End) -> Finish {
        let mut tail = Vec::new();
        if let Some(ev) = self.parser.finish() {
            match self.mode {
                Mode::Native(_) => self.native_event(ev, &mut tail),
                Mode::Translated { .. } => self.translated_event(ev, &mut tail),
            }
        }
        if self.valid_events == 0 && end == End::Complete {
            let e = ApiError::upstream("the provider's answer was not a stream the gateway can read; nothing was charged").public();
            return Finish { tail, answer: Err(e), metered: None };
        }
        let metered = self.metered(&end);
        let usage = Self::usage_of(&metered);
        let charge = self.billing.charge(metered.cost_pico_usd);
        let complete = metered.exact && end == End::Complete && self.provider_error.is_none();
        let failed = || incomplete_error(&self.billing, &end, self.provider_error.as_deref(), &charge);
        let answer = match &mut self.mode {
            Mode::Native(native) => {
                // A terminal event came: it is already in the stream, or it is the whole answer.
                if self.stream && native.response.is_none() {
                    let message = failed().public_message();
                    tail.extend(native_failure(native.id.as_deref(), &self.product.req.model_label, &self.billing, &usage, &charge, &message));
                }
                match native.response.take() {
                    Some(mut body) if !self.stream && complete => {
                        body["x_broker"] = self.billing.broker_json(&charge);
                        Ok(body)
                    }
                    _ => Err(failed()),
                }
            }
            Mode::Translated { writer, .. } => {
                let ending = Ending { finish_reason: self.finish_reason.as_deref(), usage, charge, failure: (!complete).then(|| failed().public_message()) };
                if self.stream {
                    writer.finish(&ending, &mut tail);
                    Err(failed())
                } else if complete {
                    Ok(writer.whole(&ending))
                } else {
                    Err(failed())
                }
            }
        };
        let answer = answer.map(|body| WholeAnswer { status: 200, content_type: "application/json".into(), headers: self.billing.credit_headers(&charge), body: body.to_string().into_bytes() });
        Finish { tail, answer, metered: Some(metered) }
    }
}

/// The terminal event a cut OpenAI stream never sent, so clients see the failure in-band.
fn native_failure(id: Option<&str>, model: &str, billing: &Bill, usage: &Usage, charge: &Charge, message: &str) -> Vec<u8> {
    let id = id.map(str::to_string).unwrap_or_else(|| format!("resp_{}", billing.request_id));
    let response = json!({
        "id": id, "object": "response", "status": "failed", "model": model, "output": [],
        "error": {"code": "server_error", "message": message}, "usage": usage_json(usage),
    });
    let v = json!({"type": "response.failed", "response": response, "x_broker": billing.broker_json(charge)});
    encode_event("response.failed", &v.to_string())
}

#[cfg(test)]
#[path = "responses_tests.rs"]
mod tests;
