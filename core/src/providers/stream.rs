//! Streams: any provider's SSE in, the customer's format out, usage tracked on the way.
//!
//! When the customer speaks the provider's own format (OpenAI→OpenAI, Anthropic→Anthropic) the
//! bytes pass through unchanged, except the one event that carries the final usage, which gets
//! an extra `x_broker` object (credits charged and remaining; the official SDKs ignore unknown
//! fields). Otherwise events are translated. The translator never blocks and never buffers more
//! than one incomplete event.

use super::{anthropic, gemini, openai};
use crate::chat::Route;
use crate::money::{credits_json, CreditRate};
use crate::pricing::{PricedModel, Provider};
use crate::sse::{encode_data, SseEvent, SseParser};
use crate::usage::Usage;
use serde_json::{json, Value};

/// What a provider event means, independent of its format.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    Start,
    Text(String),
    Finish(String),
    /// The event carrying the final (billable) usage.
    FinalUsage,
    Error(Value),
    Done,
}

/// What the translator needs to tell the customer what the call cost.
#[derive(Debug, Clone)]
pub struct Billing {
    pub model: PricedModel,
    pub rate: CreditRate,
    pub hold_mc: i64,
    pub balance_after_hold_mc: i64,
    pub request_id: String,
}

impl Billing {
    /// (charged, remaining) for a usage, as settlement will compute them.
    pub fn settle_preview(&self, usage: &Usage) -> (i64, i64) {
        let charge = self.model.charge_mc(usage, &self.rate);
        let available = self.balance_after_hold_mc + self.hold_mc;
        let charged = charge.min(available.max(0));
        (charged, available - charged)
    }

    pub fn broker_json(&self, usage: &Usage) -> Value {
        let (charged, remaining) = self.settle_preview(usage);
        json!({
            "request_id": self.request_id,
            "credits_charged": credits_json(charged),
            "credits_remaining": credits_json(remaining),
        })
    }
}

/// The result of a finished stream, for settlement.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamOutcome {
    pub usage: Usage,
    /// False when the provider's stream ended before it reported final usage: the usage is then
    /// the last cumulative value seen, or an estimate (prompt bytes ÷ 4, one token per delta).
    pub usage_reported: bool,
}

pub struct StreamTranslator {
    provider: Provider,
    route: Route,
    include_usage: bool,
    parser: SseParser,
    usage: Option<Usage>,
    final_usage_seen: bool,
    deltas: u64,
    prompt_estimate: u64,
    role_sent: bool,
    finish_sent: bool,
    ended: bool,
    finish_reason: Option<String>,
    billing: Billing,
    created: u64,
    model_label: String,
}

impl StreamTranslator {
    pub fn new(
        provider: Provider,
        route: Route,
        include_usage: bool,
        billing: Billing,
        prompt_bytes: u64,
        created: u64,
        model_label: String,
    ) -> Self {
        StreamTranslator {
            provider,
            route,
            include_usage,
            parser: SseParser::new(),
            usage: None,
            final_usage_seen: false,
            deltas: 0,
            prompt_estimate: prompt_bytes.div_ceil(4),
            role_sent: false,
            finish_sent: false,
            ended: false,
            finish_reason: None,
            billing,
            created,
            model_label,
        }
    }

    fn passthrough(&self) -> bool {
        matches!(
            (self.provider, self.route),
            (Provider::OpenAi, Route::OpenAiCompatible) | (Provider::Anthropic, Route::AnthropicCompatible)
        )
    }

    /// Feeds upstream bytes; returns the bytes to send to the customer.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        let events = self.parser.push(chunk);
        let mut out = Vec::new();
        for ev in events {
            self.handle(ev, &mut out);
        }
        out
    }

    /// The upstream ended (or broke): flush and close the customer's stream.
    pub fn finish(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        if let Some(ev) = self.parser.finish() {
            self.handle(ev, &mut out);
        }
        if !self.ended {
            if self.provider == Provider::Google && self.finish_reason.is_some() {
                // Gemini has no terminator: the stream ends after the chunk with finishReason.
                self.final_usage_seen = self.usage.is_some();
            }
            if !self.final_usage_seen {
                self.emit_error(&mut out, "the provider's stream ended early; you are billed for the usage observed");
            }
            self.emit_end(&mut out);
        }
        out
    }

    pub fn outcome(&self) -> StreamOutcome {
        let usage = match self.usage {
            Some(u) if self.final_usage_seen => u,
            Some(mut u) => {
                u.output = u.output.max(self.deltas);
                u
            }
            None => Usage { input: self.prompt_estimate, output: self.deltas, ..Usage::default() },
        };
        StreamOutcome { usage, usage_reported: self.final_usage_seen }
    }

    fn handle(&mut self, ev: SseEvent, out: &mut Vec<u8>) {
        if self.ended {
            return;
        }
        let decoded = match self.provider {
            Provider::OpenAi => openai::decode_event(&ev, &mut self.usage),
            Provider::Anthropic => anthropic::decode_event(&ev, &mut self.usage),
            Provider::Google => gemini::decode_event(&ev, &mut self.usage),
        };
        for d in &decoded {
            match d {
                Decoded::Text(_) => self.deltas += 1,
                Decoded::Finish(r) => self.finish_reason = Some(r.clone()),
                Decoded::FinalUsage => self.final_usage_seen = true,
                _ => {}
            }
        }
        if self.passthrough() {
            self.passthrough_event(ev, &decoded, out);
        } else {
            for d in decoded {
                self.translate(d, out);
            }
        }
    }

    fn passthrough_event(&mut self, ev: SseEvent, decoded: &[Decoded], out: &mut Vec<u8>) {
        let is_usage = decoded.contains(&Decoded::FinalUsage);
        if decoded.contains(&Decoded::Done) {
            self.ended = true;
            out.extend_from_slice(&ev.raw);
            return;
        }
        if !is_usage {
            out.extend_from_slice(&ev.raw);
            return;
        }
        if self.provider == Provider::OpenAi && !self.include_usage {
            // The customer did not ask for the usage chunk (`choices: []`); many clients index
            // choices[0] blindly, so it is consumed here, not forwarded.
            return;
        }
        let usage = self.outcome().usage;
        match serde_json::from_str::<Value>(&ev.data) {
            Ok(mut v) => {
                v["x_broker"] = self.billing.broker_json(&usage);
                let data = v.to_string();
                match &ev.event {
                    Some(name) => out.extend_from_slice(format!("event: {name}\ndata: {data}\n\n").as_bytes()),
                    None => out.extend_from_slice(&encode_data(&data)),
                }
            }
            Err(_) => out.extend_from_slice(&ev.raw),
        }
    }

    fn chunk(&self, delta: Value, finish: Option<&str>) -> Vec<u8> {
        let mut v = json!({
            "id": format!("chatcmpl-{}", self.billing.request_id),
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model_label,
            "choices": [{ "index": 0, "delta": delta, "finish_reason": finish }],
        });
        if self.include_usage {
            v["usage"] = Value::Null;
        }
        encode_data(&v.to_string())
    }

    fn translate(&mut self, d: Decoded, out: &mut Vec<u8>) {
        match d {
            Decoded::Start => self.ensure_role(out),
            Decoded::Text(t) => {
                self.ensure_role(out);
                match self.route {
                    Route::Native => out.extend(encode_data(&json!({"type": "delta", "content": t}).to_string())),
                    _ => out.extend(self.chunk(json!({ "content": t }), None)),
                }
            }
            Decoded::Finish(r) => {
                if self.route != Route::Native && !self.finish_sent {
                    self.ensure_role(out);
                    self.finish_sent = true;
                    out.extend(self.chunk(json!({}), Some(&r)));
                }
            }
            Decoded::Error(v) => {
                let msg = v.pointer("/error/message").and_then(Value::as_str).unwrap_or("provider error").to_string();
                self.emit_error(out, &format!("provider error: {msg}"));
            }
            Decoded::Done => self.emit_end(out),
            Decoded::FinalUsage => {}
        }
    }

    fn ensure_role(&mut self, out: &mut Vec<u8>) {
        if !self.role_sent && self.route == Route::OpenAiCompatible {
            self.role_sent = true;
            out.extend(self.chunk(json!({"role": "assistant", "content": ""}), None));
        }
    }

    fn emit_error(&mut self, out: &mut Vec<u8>, message: &str) {
        let v = match self.route {
            Route::Native => json!({"type": "error", "error": {"type": "upstream_error", "message": message}}),
            Route::OpenAiCompatible => json!({"error": {"message": message, "type": "api_error", "code": "upstream_error"}}),
            Route::AnthropicCompatible => {
                out.extend(crate::sse::encode_event(
                    "error",
                    &json!({"type": "error", "error": {"type": "api_error", "message": message}}).to_string(),
                ));
                return;
            }
        };
        out.extend(encode_data(&v.to_string()));
    }

    fn emit_end(&mut self, out: &mut Vec<u8>) {
        if self.ended {
            return;
        }
        self.ended = true;
        let usage = self.outcome().usage;
        match self.route {
            Route::Native => {
                let (charged, remaining) = self.billing.settle_preview(&usage);
                let v = json!({
                    "type": "done",
                    "provider": self.provider.as_str(),
                    "model": self.billing.model.name(),
                    "finish_reason": self.finish_reason,
                    "usage": usage.to_public_json(),
                    "credits_charged": credits_json(charged),
                    "credits_remaining": credits_json(remaining),
                    "request_id": self.billing.request_id,
                });
                out.extend(encode_data(&v.to_string()));
                out.extend(encode_data("[DONE]"));
            }
            Route::OpenAiCompatible => {
                // Passed through already (a provider stream that ended without `[DONE]`).
                let usage_forwarded = self.passthrough() && self.final_usage_seen;
                if self.include_usage && !usage_forwarded {
                    let mut v = json!({
                        "id": format!("chatcmpl-{}", self.billing.request_id),
                        "object": "chat.completion.chunk",
                        "created": self.created,
                        "model": self.model_label,
                        "choices": [],
                        "usage": openai_usage_json(&usage),
                    });
                    v["x_broker"] = self.billing.broker_json(&usage);
                    out.extend(encode_data(&v.to_string()));
                }
                out.extend(encode_data("[DONE]"));
            }
            // Anthropic passthrough ends with the provider's own message_stop.
            Route::AnthropicCompatible => {}
        }
    }
}

/// OpenAI's `usage` object for a normalized usage.
pub fn openai_usage_json(u: &Usage) -> Value {
    json!({
        "prompt_tokens": u.prompt_total(),
        "completion_tokens": u.output,
        "total_tokens": u.prompt_total() + u.output,
        "prompt_tokens_details": { "cached_tokens": u.cached_input },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pricing::lookup;

    fn billing(provider: Provider, model: &str) -> Billing {
        Billing {
            model: lookup(provider, model, "2026-11-23").unwrap(),
            rate: CreditRate::default_rate(),
            hold_mc: 10_000,
            balance_after_hold_mc: 90_000,
            request_id: "req_t".into(),
        }
    }

    fn run(t: &mut StreamTranslator, bytes: &[u8], step: usize) -> String {
        let mut out = Vec::new();
        for c in bytes.chunks(step) {
            out.extend(t.push(c));
        }
        out.extend(t.finish());
        String::from_utf8(out).unwrap()
    }

    fn events(s: &str) -> Vec<Value> {
        s.split("\n\n")
            .filter_map(|e| e.lines().find_map(|l| l.strip_prefix("data: ")))
            .filter(|d| *d != "[DONE]")
            .map(|d| serde_json::from_str(d).unwrap())
            .collect()
    }

    #[test]
    fn openai_passthrough_is_byte_exact_except_the_usage_chunk() {
        let sse = include_bytes!("../../../fixtures/openai/chat-completion.stream.sse");
        let mut t = StreamTranslator::new(Provider::OpenAi, Route::OpenAiCompatible, true, billing(Provider::OpenAi, "gpt-4o-mini"), 100, 0, "gpt-4o-mini".into());
        let out = run(&mut t, sse, 7);
        let original = std::str::from_utf8(sse).unwrap();
        // every chunk before the usage chunk is unchanged
        let head_len = original.find("\"choices\":[],").unwrap();
        let head = &original[..original[..head_len].rfind("data: ").unwrap()];
        assert!(out.starts_with(head));
        let evs = events(&out);
        let last = evs.last().unwrap();
        assert_eq!(last["usage"]["completion_tokens"], 214);
        assert!(last["x_broker"]["credits_charged"].as_f64().unwrap() > 0.0);
        assert!(out.ends_with("data: [DONE]\n\n"));
        assert_eq!(t.outcome(), StreamOutcome { usage: Usage { input: 72, cached_input: 1792, output: 214, ..Usage::default() }, usage_reported: true });
    }

    #[test]
    fn a_stream_without_done_gets_done_but_not_a_second_usage_chunk() {
        let sse = include_bytes!("../../../fixtures/openai/chat-completion.stream.sse");
        let text = std::str::from_utf8(sse).unwrap().replace("data: [DONE]\n\n", "");
        let mut t = StreamTranslator::new(Provider::OpenAi, Route::OpenAiCompatible, true, billing(Provider::OpenAi, "gpt-4o-mini"), 100, 0, "m".into());
        let out = run(&mut t, text.as_bytes(), 17);
        assert_eq!(out.matches("\"choices\":[]").count(), 1, "{out}");
        assert!(out.ends_with("data: [DONE]\n\n"));
    }

    #[test]
    fn usage_chunk_is_dropped_when_the_client_did_not_ask() {
        let sse = include_bytes!("../../../fixtures/openai/chat-completion.stream.sse");
        let mut t = StreamTranslator::new(Provider::OpenAi, Route::OpenAiCompatible, false, billing(Provider::OpenAi, "gpt-4o-mini"), 100, 0, "m".into());
        let out = run(&mut t, sse, 64);
        assert!(!out.contains("\"choices\":[]"));
        assert!(t.outcome().usage_reported);
    }

    #[test]
    fn anthropic_passthrough_adds_credits_to_message_delta() {
        let sse = include_bytes!("../../../fixtures/anthropic/messages.stream.sse");
        let mut t = StreamTranslator::new(Provider::Anthropic, Route::AnthropicCompatible, true, billing(Provider::Anthropic, "claude-sonnet-4-6"), 100, 0, "m".into());
        let out = run(&mut t, sse, 5);
        let delta = events(&out).into_iter().find(|e| e["type"] == "message_delta").unwrap();
        // 12 in, 2048 write-5m, 31 out on sonnet 4.6 = 1.473 credits (see pricing tests)
        assert_eq!(delta["x_broker"]["credits_charged"], json!(1.473));
        assert!(out.contains("event: message_stop"));
    }

    #[test]
    fn anthropic_to_openai_translation_matches_the_openai_chunk_shape() {
        let sse = include_bytes!("../../../fixtures/anthropic/messages.stream.sse");
        let mut t = StreamTranslator::new(Provider::Anthropic, Route::OpenAiCompatible, true, billing(Provider::Anthropic, "claude-sonnet-4-6"), 100, 1, "anthropic/claude-sonnet-4-6".into());
        let out = run(&mut t, sse, 11);
        let evs = events(&out);
        assert_eq!(evs[0]["choices"][0]["delta"]["role"], "assistant");
        let text: String = evs.iter().filter_map(|e| e["choices"][0]["delta"]["content"].as_str()).collect();
        assert!(text.starts_with("Go to Settings > API keys"));
        let fin = evs.iter().find(|e| e["choices"][0]["finish_reason"] == "stop");
        assert!(fin.is_some());
        let last = evs.last().unwrap();
        assert_eq!(last["choices"], json!([]));
        assert_eq!(last["usage"]["prompt_tokens"], 12 + 2048);
        assert!(out.ends_with("data: [DONE]\n\n"));
    }

    #[test]
    fn gemini_to_native_ends_with_done_and_credits() {
        let sse = include_bytes!("../../../fixtures/gemini/streamGenerateContent.sse");
        let mut t = StreamTranslator::new(Provider::Google, Route::Native, true, billing(Provider::Google, "gemini-2.5-flash"), 100, 1, "m".into());
        let out = run(&mut t, sse, 13);
        let evs = events(&out);
        let done = evs.last().unwrap();
        assert_eq!(done["type"], "done");
        assert_eq!(done["usage"]["output_tokens"], 212);
        assert!(t.outcome().usage_reported);
    }

    #[test]
    fn a_cut_stream_is_billed_from_what_was_seen_and_says_so() {
        let sse = include_bytes!("../../../fixtures/openai/chat-completion.stream.sse");
        let cut = &sse[..sse.len() / 2];
        let mut t = StreamTranslator::new(Provider::OpenAi, Route::OpenAiCompatible, true, billing(Provider::OpenAi, "gpt-4o-mini"), 400, 0, "m".into());
        let out = run(&mut t, cut, 9);
        let o = t.outcome();
        assert!(!o.usage_reported);
        assert_eq!(o.usage.input, 100);
        assert!(o.usage.output >= 2);
        assert!(out.contains("ended early"));
    }

    #[test]
    fn billing_preview_never_goes_below_zero() {
        let b = Billing { hold_mc: 10, balance_after_hold_mc: 0, ..billing(Provider::OpenAi, "gpt-4o") };
        let (charged, remaining) = b.settle_preview(&Usage { output: 1_000_000, ..Usage::default() });
        assert_eq!((charged, remaining), (10, 0));
    }
}
