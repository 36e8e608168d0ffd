//! Chat on the metering engine: the priced request ([`ChatProduct`]) and the meter of its
//! provider answer ([`ChatMeter`]), which bills the provider's reported usage, or an upper bound
//! when the usage never came, and renders the customer's answer (streamed or whole).
//!
//! A stream in the provider's own format passes through as it came: only the events that may
//! matter to billing ([`ChatWire::billing_event`]) are parsed. A whole answer is asked for whole
//! and read once; on the provider's own route it is forwarded with `x_broker` spliced in.

use super::chat_render::{self as render, ChatOutput, ToolCallOut};
use crate::chat::{ChatRequest, Route};
use crate::error::{ApiError, ErrorKind, ErrorShape};
use crate::metering::{CallMeta, Charge, FlexibleOutput, HoldPlan, Metered, Units, CHAT_CLASS};
use crate::money::{credits_json, credits_string, CreditRate};
use crate::payer::Bill;
use crate::pricing::PricedModel;
use crate::product::{End, Finish, Meter, Product, ProviderHead, StreamHead, UpstreamRequest, WholeAnswer};
use crate::providers::decoded::{Decoded, ToolCalls};
use crate::providers::stream::{StreamTranslator, Tally};
use crate::providers::{self, wire, ChatWire, Endpoint};
use crate::sse::{SseParser, SseRef};
use std::borrow::Cow;
use crate::usage::Usage;
use serde_json::{json, Value};

/// A chat request, priced: its model is in the table and its provider configured.
pub struct ChatProduct {
    pub req: ChatRequest,
    pub model: PricedModel,
    pub endpoint: Endpoint,
    /// Unix seconds, for the `created` field of OpenAI-shaped answers.
    pub created: u64,
}

impl ChatProduct {
    /// Prices a parsed request: the model must be servable today and `max_tokens` within its limit.
    pub fn price(req: ChatRequest, today: &str, endpoint: Endpoint, created: u64) -> Result<ChatProduct, ApiError> {
        let model = crate::pricing::lookup(req.provider, &req.model, today)?;
        if let Some(m) = req.max_tokens {
            if m > model.max_output() {
                return Err(ApiError::invalid(format!("max_tokens {m} exceeds {}'s limit of {}", model.name(), model.max_output())));
            }
        }
        Ok(ChatProduct { req, model, endpoint, created })
    }
}

pub fn error_shape(route: Route) -> ErrorShape {
    match route {
        Route::Native => ErrorShape::Native,
        Route::OpenAiCompatible => ErrorShape::OpenAi,
        Route::AnthropicCompatible => ErrorShape::Anthropic,
    }
}

impl Product for ChatProduct {
    fn class(&self) -> &'static str {
        CHAT_CLASS
    }

    fn meta(&self) -> CallMeta {
        CallMeta { provider: self.req.provider, model: self.model.name().to_string(), product: "chat" }
    }

    fn error_shape(&self) -> ErrorShape {
        error_shape(self.req.route)
    }

    fn hold(&self, rate: &CreditRate) -> (HoldPlan, u64) {
        let prompt = self.req.prompt_upper_tokens();
        match self.req.max_tokens {
            Some(m) => HoldPlan::fixed(rate.millicredits_for_pico_usd(self.model.bound_pico(prompt, m, None)), m),
            None => {
                let flexible = FlexibleOutput {
                    per_unit_micro_mc: rate.millicredits_for_pico_usd(self.model.output_pico_per_token(prompt) * 1_000_000),
                    max_units: self.model.max_output(),
                    // A thinking budget must fit below the output cap admission picks.
                    min_units: self.req.min_output_tokens(),
                };
                (HoldPlan { fixed_mc: rate.millicredits_for_pico_usd(self.model.input_bound_pico(prompt)).max(1), flexible: Some(flexible) }, self.model.max_output())
            }
        }
    }

    fn upstream(&self, granted_units: u64) -> UpstreamRequest {
        wire(self.req.provider).build_request(&self.req, granted_units, &self.endpoint)
    }

    fn upstream_error(&self, status: u16, body: &[u8]) -> ApiError {
        providers::upstream_error(self.req.provider, status, body)
    }

    fn meter(self: Box<Self>, billing: Bill, granted_units: u64) -> Box<dyn Meter> {
        Box::new(ChatMeter::new(*self, billing, granted_units))
    }
}

/// How the customer gets the answer.
enum Sink {
    Stream(Box<StreamTranslator>),
    /// A whole answer: the provider's body, read to its end.
    Whole(Vec<u8>),
}

pub struct ChatMeter {
    product: ChatProduct,
    billing: Bill,
    max_tokens: u64,
    wire: &'static dyn ChatWire,
    parser: SseParser,
    usage: Option<Usage>,
    final_usage: bool,
    finish_reason: Option<String>,
    /// Provider events recognised so far (0 at the end: the body was not a provider stream).
    valid_events: u64,
    provider_error: Option<String>,
    /// The service tier and the model the answer says served the call, when it says.
    served_tier: Option<String>,
    served_model: Option<String>,
    sink: Sink,
}

impl ChatMeter {
    pub fn new(product: ChatProduct, billing: Bill, max_tokens: u64) -> ChatMeter {
        let req = &product.req;
        let wire = wire(req.provider);
        let sink = if req.stream {
            Sink::Stream(Box::new(StreamTranslator::new(req.provider, req.route, req.include_usage, billing.clone(), product.created, req.model_label())))
        } else {
            Sink::Whole(Vec::new())
        };
        ChatMeter { product, billing, max_tokens, wire, parser: SseParser::new(), usage: None, final_usage: false, finish_reason: None, valid_events: 0, provider_error: None, served_tier: None, served_model: None, sink }
    }

    /// What the call cost as far as the stream told (`token_metered`).
    fn metered(&self, end: &End) -> Metered {
        let told = Told {
            model: self.product.model,
            prompt_upper: self.product.req.prompt_upper_tokens(),
            max_tokens: self.max_tokens,
            usage: self.usage,
            final_usage: self.final_usage,
            other_tier: self.served_tier.as_deref().filter(|t| !self.wire.is_standard_tier(t)),
            served_model: self.served_model.as_deref(),
            created: self.product.created,
            provider_error: self.provider_error.as_deref(),
        };
        token_metered(&told, end)
    }

    fn tally(&self, metered: &Metered) -> Tally {
        let usage = match metered.units {
            Units::Tokens(u) => u,
            _ => Usage::default(),
        };
        Tally { usage, charge: self.billing.charge(metered.cost_pico_usd) }
    }

    fn handle(&mut self, ev: SseRef<'_>, out: &mut Vec<u8>) {
        let data = ev.data.trim();
        let Sink::Stream(t) = &mut self.sink else { return };
        if data.is_empty() {
            t.blank(ev.raw, out);
            return;
        }
        // A passed-through event that cannot matter to billing goes on unparsed, once the
        // stream has shown it is the provider's (its first event parsed); a translated text
        // delta is decoded straight into the client's format.
        if self.valid_events > 0 {
            if t.passthrough() {
                if !self.wire.billing_event(ev.event, data) {
                    self.valid_events += 1;
                    t.forward(ev.raw, out);
                    return;
                }
            } else if let Some(text) = self.wire.text_delta(ev.event, data) {
                self.valid_events += 1;
                t.text(&text, out);
                return;
            }
        }
        let value = if data == "[DONE]" {
            None
        } else {
            // Whatever a provider sends, nothing here may panic: a payload that is not a JSON
            // object is not a provider event.
            match serde_json::from_str::<Value>(data) {
                Ok(v @ Value::Object(_)) => Some(v),
                _ => return,
            }
        };
        let decoded = match &value {
            None => vec![Decoded::Done],
            Some(v) => self.wire.decode(ev.event, v, &mut self.usage),
        };
        self.absorb(value.as_ref(), &decoded);
        let final_usage = self.final_usage && decoded.contains(&Decoded::FinalUsage);
        if let Sink::Stream(t) = &mut self.sink {
            t.event(ev.raw, &decoded, final_usage, out);
        }
    }

    /// What a decoded event or answer says about billing: the served tier and model, the finish,
    /// the final usage, a provider error.
    fn absorb(&mut self, value: Option<&Value>, decoded: &[Decoded]) {
        if let Some(v) = value {
            if let Some(t) = self.wire.served_tier(v) {
                self.served_tier = Some(t);
            }
            if let Some(m) = self.wire.served_model(v) {
                self.served_model = Some(m);
            }
        }
        self.valid_events += 1;
        for d in decoded {
            match d {
                Decoded::Finish(r) => {
                    self.finish_reason = Some(r.clone());
                    if self.wire.final_usage_on_finish() && self.usage.is_some() {
                        self.final_usage = true;
                    }
                }
                Decoded::FinalUsage => self.final_usage = true,
                Decoded::Error(v) => {
                    self.provider_error = Some(v.pointer("/error/message").and_then(Value::as_str).unwrap_or("provider error").to_string());
                }
                _ => {}
            }
        }
    }

    /// A whole answer, read to its end: parsed once, its usage billed. On the provider's own
    /// route the client gets the provider's bytes with `x_broker` spliced in; otherwise the
    /// answer is rendered in the client's format.
    fn whole(&mut self, body: &[u8], end: &End) -> Option<Vec<u8>> {
        if *end != End::Complete {
            return None;
        }
        let v = match serde_json::from_slice::<Value>(body) {
            Ok(v @ Value::Object(_)) => v,
            _ => return None,
        };
        let decoded = self.wire.decode_whole(&v, &mut self.usage);
        self.absorb(Some(&v), &decoded);
        if !self.final_usage || self.usage.is_none() {
            return None;
        }
        let tally = self.tally(&self.metered(end));
        if self.product.req.is_passthrough() {
            let broker = self.billing.broker_json(&tally.charge).to_string();
            return render::splice_broker(body, &broker);
        }
        let mut calls = ToolCalls::default();
        let mut text = String::new();
        for d in &decoded {
            match d {
                Decoded::Text(t) => text.push_str(t),
                Decoded::ToolCallStart { slot, id, name, signature } => {
                    calls.start(*slot, id.as_deref(), name, signature.as_deref(), &self.billing.request_id);
                }
                Decoded::ToolCallArgs { slot, fragment } => {
                    calls.args(*slot, fragment);
                }
                _ => {}
            }
        }
        let finish_reason = self.finish_reason.as_deref().map(|r| calls.finish_reason(r));
        let tool_calls = calls.calls().iter().map(|c| ToolCallOut { id: c.id.clone(), name: c.name.clone(), arguments: c.arguments.clone() }).collect();
        let out = ChatOutput { content: text, tool_calls, usage: tally.usage, finish_reason };
        Some(render::translated(&self.product.req, &out, &self.billing, &tally.charge, self.product.created).to_string().into_bytes())
    }
}

impl Meter for ChatMeter {
    fn stream_head(&self) -> Option<StreamHead> {
        let content_type = if self.product.req.route == Route::AnthropicCompatible { "text/event-stream; charset=utf-8" } else { "text/event-stream" };
        let mut headers = vec![("cache-control".to_string(), "no-cache".to_string())];
        headers.extend(self.product.req.betas.dropped_header());
        self.product.req.stream.then(|| StreamHead { content_type: content_type.into(), headers })
    }

    fn whole_body(&self) -> bool {
        !self.product.req.stream
    }

    fn byte_exact_stream(&self) -> bool {
        matches!(&self.sink, Sink::Stream(t) if t.byte_exact())
    }

    fn start(&mut self, head: &ProviderHead) -> Result<(), ApiError> {
        let (want, what) = if self.product.req.stream { ("text/event-stream", "an event stream") } else { ("application/json", "a JSON answer") };
        head.expect_content_type(want, what)
    }

    fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        match &mut self.sink {
            Sink::Whole(body) => body.extend_from_slice(chunk),
            Sink::Stream(_) => {
                let mut parser = std::mem::take(&mut self.parser);
                parser.feed(chunk, |ev| self.handle(ev, &mut out));
                self.parser = parser;
            }
        }
        out
    }

    fn finish(&mut self, end: End) -> Finish {
        let mut tail = Vec::new();
        if let Some(ev) = self.parser.finish() {
            let data = Cow::Owned(ev.data);
            self.handle(SseRef { raw: &ev.raw, event: ev.event.as_deref(), data }, &mut tail);
        }
        let whole = match &mut self.sink {
            Sink::Whole(body) => Some(std::mem::take(body)),
            Sink::Stream(_) => None,
        };
        let rendered = whole.and_then(|body| self.whole(&body, &end));
        if self.valid_events == 0 && end == End::Complete {
            // Nothing recognisable came: not a provider's answer (a wrong base URL, garbage).
            let e = ApiError::upstream("the provider's answer was not one the gateway can read; nothing was charged").public();
            return Finish { tail, answer: Err(e), metered: None };
        }
        let metered = self.metered(&end);
        let tally = self.tally(&metered);
        // Complete when the provider reported its final usage (even one priced at the bound: an
        // unlisted tier or model is a whole answer, billed the hold).
        let complete = self.final_usage && self.usage.is_some() && end == End::Complete && self.provider_error.is_none();
        let answer = match (&mut self.sink, rendered) {
            (Sink::Stream(t), _) => {
                t.finish(self.finish_reason.as_deref(), tally, complete, &mut tail);
                Err(incomplete_error(&self.billing, &end, self.provider_error.as_deref(), &tally.charge))
            }
            (_, Some(body)) if complete => Ok(body),
            _ => Err(incomplete_error(&self.billing, &end, self.provider_error.as_deref(), &tally.charge)),
        };
        let answer = answer.map(|body| WholeAnswer {
            status: 200,
            content_type: "application/json".into(),
            headers: self.billing.credit_headers(&tally.charge).into_iter().chain(self.product.req.betas.dropped_header()).collect(),
            body,
        });
        Finish { tail, answer, metered: Some(metered) }
    }
}

/// What a token-metered stream told by its end (chat and the Responses API meter alike).
pub struct Told<'a> {
    pub model: PricedModel,
    /// The prompt's upper bound in tokens.
    pub prompt_upper: u64,
    /// The output tokens the call was allowed.
    pub max_tokens: u64,
    pub usage: Option<Usage>,
    /// Whether `usage` is the final (billable) one.
    pub final_usage: bool,
    /// The service tier the answer says served it, when it is not the standard one.
    pub other_tier: Option<&'a str>,
    /// The model the answer says served it, when it says.
    pub served_model: Option<&'a str>,
    /// Unix seconds of the call (the day of a served model's price entry).
    pub created: u64,
    pub provider_error: Option<&'a str>,
}

/// The hold's bound: what a call is billed when its usage cannot be priced.
fn hold_bound(t: &Told, why: String) -> Metered {
    let cost = t.model.bound_pico(t.prompt_upper, t.max_tokens, None);
    let units = Units::Tokens(t.usage.unwrap_or(Usage { input: t.prompt_upper, output: t.max_tokens, ..Usage::default() }));
    Metered { cost_pico_usd: cost, units, exact: false, note: Some(format!("{why}: billed the hold's bound (the most the call could cost at list price)")), warning: None }
}

/// What the call cost as far as the stream told: the reported usage (at the served model's list
/// prices; the hold's bound for a tier or model the table does not price), or (never reported)
/// the upper bound: the prompt's reported input, or its bound, plus every output token allowed.
pub fn token_metered(t: &Told, end: &End) -> Metered {
    let model = &t.model;
    if let Some(u) = t.usage.filter(|_| t.final_usage) {
        // Another tier has other prices, which the table does not hold: the hold, and a warning.
        if let Some(tier) = t.other_tier {
            return Metered { warning: Some(format!("served at the `{tier}` service tier, which has no list price here")), ..hold_bound(t, format!("the provider served the call at its `{tier}` tier, not the standard one")) };
        }
        let today = crate::pricing::utc_date(t.created.saturating_mul(1000));
        return match crate::pricing::served_model(t.model, t.served_model, &today) {
            Ok(served) if served.name() == model.name() => Metered::exact(model.cost_pico(&u), Units::Tokens(u)),
            Ok(served) => Metered {
                note: Some(format!("requested {}, served by {} (the answer's model): billed at {}'s list prices", model.name(), served.name(), served.name())),
                ..Metered::exact(served.cost_pico(&u), Units::Tokens(u))
            },
            Err(unknown) => Metered {
                warning: Some(format!("served by `{unknown}`, which has no list price here")),
                ..hold_bound(t, format!("requested {}, served by {unknown}, which the price table does not list", model.name()))
            },
        };
    }
    let known = t.usage.filter(|u| u.prompt_total() > 0);
    let cost = model.bound_pico(t.prompt_upper, t.max_tokens, known.as_ref());
    let bound = match known {
        Some(u) => Usage { output: t.max_tokens.max(u.output), ..u },
        None => Usage { input: t.prompt_upper, output: t.max_tokens, ..Usage::default() },
    };
    let why = t.provider_error.map(|e| format!("the provider reported an error ({e})")).unwrap_or_else(|| end.describe());
    Metered { cost_pico_usd: cost, units: Units::Tokens(bound), exact: false, note: Some(format!("{why}; usage never reported: billed the upper bound ({} output tokens allowed)", t.max_tokens)), warning: None }
}

/// The error a whole answer gets when the provider's stream did not complete.
pub fn incomplete_error(billing: &Bill, end: &End, provider_error: Option<&str>, charge: &Charge) -> ApiError {
    let billed = format!("billed {} credits, the most this call could cost, since the provider reported no usage", credits_string(charge.charged_mc));
    let (kind, what) = match end {
        End::IdleTimeout => (ErrorKind::UpstreamTimeout, "the provider stalled and the call was cut".to_string()),
        _ => (ErrorKind::UpstreamError, match provider_error {
            Some(e) => format!("the provider failed mid-answer ({e})"),
            None => "the provider's answer broke off".to_string(),
        }),
    };
    if billing.credits().is_none() {
        // RapidAPI bills its own user: no credit figures.
        return ApiError::new(kind, what).public();
    }
    ApiError::new(kind, format!("{what}; {billed}")).public().with_details(json!({ "credits_charged": credits_json(charge.charged_mc) }))
}

#[cfg(test)]
#[path = "chat_tests.rs"]
mod tests;
