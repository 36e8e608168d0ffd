//! A provider's stream, decoded, rendered in the customer's format.
//!
//! When the customer speaks the provider's own format (OpenAI→OpenAI, Anthropic→Anthropic) the
//! bytes pass through unchanged ([`StreamTranslator::byte_exact`]: the engine hands them over as
//! the runtime's own pipe), except an OpenAI usage chunk the customer did not ask for, which is
//! consumed. The charge is the call's bill (`GET /v1/requests/{request_id}`). Otherwise events are
//! translated, and the usage event carries an extra `x_broker` object. Never blocks, never
//! buffers: the chat meter feeds it one decoded event at a time.

use super::decoded::{Decoded, ToolCalls};
use crate::chat::Route;
use crate::metering::Charge;
use crate::payer::Bill;
use crate::provider::Provider;
use crate::sse::{encode_data, encode_event};
use crate::usage::Usage;
use serde_json::{json, Value};

/// The billing state of the stream when an event needs it: the usage to show and its charge.
#[derive(Debug, Clone, Copy)]
pub struct Tally {
    pub usage: Usage,
    pub charge: Charge,
}

pub struct StreamTranslator {
    provider: Provider,
    route: Route,
    include_usage: bool,
    role_sent: bool,
    finish_sent: bool,
    usage_sent: bool,
    ended: bool,
    billing: Bill,
    created: u64,
    model_label: String,
    /// Tool calls of a translated stream, in OpenAI's numbering.
    calls: ToolCalls,
}

impl StreamTranslator {
    pub fn new(provider: Provider, route: Route, include_usage: bool, billing: Bill, created: u64, model_label: String) -> Self {
        StreamTranslator { provider, route, include_usage, role_sent: false, finish_sent: false, usage_sent: false, ended: false, billing, created, model_label, calls: ToolCalls::default() }
    }

    /// Whether the customer speaks the provider's own format (its events pass through).
    pub fn passthrough(&self) -> bool {
        matches!((self.provider, self.route), (Provider::OpenAi, Route::OpenAiCompatible) | (Provider::Anthropic, Route::AnthropicCompatible))
    }

    /// Whether every byte the provider sends goes to the customer unchanged, up to the end: its
    /// own format, and (OpenAI) the usage chunk was asked for, so there is nothing to consume.
    pub fn byte_exact(&self) -> bool {
        self.passthrough() && (self.provider == Provider::Anthropic || self.include_usage)
    }

    /// A passed-through event that does not matter to billing: its bytes as they came.
    pub fn forward(&mut self, raw: &[u8], out: &mut Vec<u8>) {
        if !self.ended {
            out.extend_from_slice(raw);
        }
    }

    /// A provider event that carried no data (keep-alive comments, blank lines): passed through
    /// when the customer speaks the provider's format, dropped otherwise.
    pub fn blank(&mut self, raw: &[u8], out: &mut Vec<u8>) {
        if self.passthrough() && !self.ended {
            out.extend_from_slice(raw);
        }
    }

    /// One decoded provider event; `final_usage` when it carried the final usage.
    pub fn event(&mut self, raw: &[u8], decoded: &[Decoded], final_usage: bool, out: &mut Vec<u8>) {
        if self.ended {
            return;
        }
        if self.passthrough() {
            self.passthrough_event(raw, decoded, final_usage, out);
        } else {
            for d in decoded {
                self.translate(d, out);
            }
        }
    }

    fn passthrough_event(&mut self, raw: &[u8], decoded: &[Decoded], final_usage: bool, out: &mut Vec<u8>) {
        if decoded.contains(&Decoded::Done) {
            self.ended = true;
        } else if final_usage {
            self.usage_sent = true;
            if !self.byte_exact() {
                // The customer did not ask for the usage chunk (`choices: []`); many clients
                // index choices[0] blindly, so it is consumed here, not forwarded.
                return;
            }
        }
        out.extend_from_slice(raw);
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

    fn translate(&mut self, d: &Decoded, out: &mut Vec<u8>) {
        match d {
            Decoded::Start => self.ensure_role(out),
            Decoded::Text(t) => self.text(t, out),
            // OpenAI's tool-call deltas: the first names the call (index, id, type, name), the
            // rest carry fragments of its arguments under the same index.
            Decoded::ToolCallStart { slot, id, name, signature } if self.route == Route::OpenAiCompatible => {
                self.ensure_role(out);
                let (index, id) = self.calls.start(*slot, id.as_deref(), name, signature.as_deref(), &self.billing.request_id);
                let delta = json!({"tool_calls": [{"index": index, "id": id, "type": "function", "function": {"name": name, "arguments": ""}}]});
                out.extend(self.chunk(delta, None));
            }
            Decoded::ToolCallArgs { slot, fragment } if self.route == Route::OpenAiCompatible => {
                if let Some(index) = self.calls.args(*slot, fragment) {
                    out.extend(self.chunk(json!({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]}), None));
                }
            }
            Decoded::ToolCallStart { .. } | Decoded::ToolCallArgs { .. } => {}
            Decoded::Finish(r) => {
                if self.route != Route::Native && !self.finish_sent {
                    self.ensure_role(out);
                    self.finish_sent = true;
                    let r = self.calls.finish_reason(r);
                    out.extend(self.chunk(json!({}), Some(&r)));
                }
            }
            Decoded::Error(v) => {
                let msg = v.pointer("/error/message").and_then(Value::as_str).unwrap_or("provider error").to_string();
                self.error(out, &format!("provider error: {msg}"));
            }
            // Chat has no place for the thinking; the Responses route carries it (`responses::events`).
            Decoded::Done | Decoded::FinalUsage | Decoded::Reasoning(_) | Decoded::ReasoningSignature(_) | Decoded::RedactedReasoning(_) => {}
        }
    }

    /// A text delta in the customer's format, written straight out (the commonest event of a
    /// translated stream: no JSON tree; the bytes are those `json!` would print, keys sorted).
    pub fn text(&mut self, t: &str, out: &mut Vec<u8>) {
        if self.ended {
            return;
        }
        self.ensure_role(out);
        let text = serde_json::to_string(t).unwrap_or_default();
        match self.route {
            Route::Native => {
                out.extend_from_slice(b"data: {\"content\":");
                out.extend_from_slice(text.as_bytes());
                out.extend_from_slice(b",\"type\":\"delta\"}\n\n");
            }
            _ => {
                out.extend_from_slice(b"data: {\"choices\":[{\"delta\":{\"content\":");
                out.extend_from_slice(text.as_bytes());
                out.extend_from_slice(b"},\"finish_reason\":null,\"index\":0}],\"created\":");
                out.extend_from_slice(self.created.to_string().as_bytes());
                out.extend_from_slice(b",\"id\":");
                out.extend_from_slice(serde_json::to_string(&format!("chatcmpl-{}", self.billing.request_id)).unwrap_or_default().as_bytes());
                out.extend_from_slice(b",\"model\":");
                out.extend_from_slice(serde_json::to_string(&self.model_label).unwrap_or_default().as_bytes());
                out.extend_from_slice(b",\"object\":\"chat.completion.chunk\"");
                if self.include_usage {
                    out.extend_from_slice(b",\"usage\":null");
                }
                out.extend_from_slice(b"}\n\n");
            }
        }
    }

    fn ensure_role(&mut self, out: &mut Vec<u8>) {
        if !self.role_sent && self.route == Route::OpenAiCompatible {
            self.role_sent = true;
            out.extend(self.chunk(json!({"role": "assistant", "content": ""}), None));
        }
    }

    /// An error event in the customer's format.
    pub fn error(&mut self, out: &mut Vec<u8>, message: &str) {
        match self.route {
            Route::Native => out.extend(encode_data(&json!({"type": "error", "error": {"type": "upstream_error", "message": message}}).to_string())),
            Route::OpenAiCompatible => out.extend(encode_data(&json!({"error": {"message": message, "type": "api_error", "code": "upstream_error"}}).to_string())),
            Route::AnthropicCompatible => out.extend(encode_event("error", &json!({"type": "error", "error": {"type": "api_error", "message": message}}).to_string())),
        }
    }

    /// The provider's stream is over: close the customer's stream (final usage and credits when
    /// the provider's own events did not already carry them).
    pub fn finish(&mut self, finish_reason: Option<&str>, tally: Tally, complete: bool, out: &mut Vec<u8>) {
        if self.ended {
            return;
        }
        if !complete {
            self.error(out, "the provider's stream ended early; you are billed as the ledger entry of this request says");
        }
        self.ended = true;
        match self.route {
            Route::Native => {
                let mut v = json!({
                    "type": "done",
                    "provider": self.provider.as_str(),
                    "model": self.model_label,
                    "finish_reason": finish_reason,
                    "usage": tally.usage.to_public_json(),
                    "request_id": self.billing.request_id,
                });
                if let Some(o) = v.as_object_mut() {
                    o.extend(self.billing.native_fields(&tally.charge));
                }
                out.extend(encode_data(&v.to_string()));
                out.extend(encode_data("[DONE]"));
            }
            Route::OpenAiCompatible => {
                // Already passed through when the provider's own usage chunk was forwarded.
                if self.include_usage && !(self.passthrough() && self.usage_sent) {
                    let mut v = json!({
                        "id": format!("chatcmpl-{}", self.billing.request_id),
                        "object": "chat.completion.chunk",
                        "created": self.created,
                        "model": self.model_label,
                        "choices": [],
                        "usage": openai_usage_json(&tally.usage),
                    });
                    v["x_broker"] = self.billing.broker_json(&tally.charge);
                    out.extend(encode_data(&v.to_string()));
                }
                out.extend(encode_data("[DONE]"));
            }
            // Anthropic passthrough ends with the provider's own message_stop; a cut stream ends
            // with the error event above.
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
    use crate::metering::{Admitted, Billing};
    use crate::money::CreditRate;
    use crate::ratelimit::RateState;

    #[test]
    fn text_deltas_are_the_bytes_json_would_print() {
        let admitted = Admitted { sub_key: None, key_id: "k".into(), plan: "p".into(), hold_mc: 5, balance_after_mc: 5, granted_units: 5, rate: RateState { limit: 1, remaining: 1, reset_ms: 1 }, class: "ai".into() };
        let billing = Billing::new("req_x", CreditRate::default_rate(), &admitted);
        let text = "h\u{e9}\"llo\n\u{1F600}";
        for (route, usage) in [(Route::OpenAiCompatible, true), (Route::OpenAiCompatible, false), (Route::Native, false)] {
            let mut t = StreamTranslator::new(Provider::Anthropic, route, usage, billing.clone().into(), 1_700_000_000, "anthropic/claude-x".into());
            t.role_sent = true;
            let mut fast = Vec::new();
            t.text(text, &mut fast);
            let slow = match route {
                Route::Native => encode_data(&json!({"type": "delta", "content": text}).to_string()),
                _ => t.chunk(json!({ "content": text }), None),
            };
            assert_eq!(String::from_utf8(fast).unwrap(), String::from_utf8(slow).unwrap(), "{route:?}");
        }
    }
}
