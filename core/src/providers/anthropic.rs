//! Anthropic Messages: wire mapping, usage, stream events, and the whole `message` assembled from
//! its events (what `stream: false` would have returned).
//!
//! `input_tokens` excludes cache reads and writes; streamed `message_delta.usage` is cumulative
//! and may repeat input/cache counts (2026 captures) or carry only `output_tokens` (older API).

use super::decoded::Decoded;
use super::{finish_reason_from_anthropic, join, Assembler, ChatWire, Endpoint};
use crate::chat::{ChatRequest, Route};
use crate::product::UpstreamRequest;
use crate::usage::{u, Usage};
use serde_json::{json, Map, Value};

pub const API_VERSION: &str = "2023-06-01";

pub struct Anthropic;

impl ChatWire for Anthropic {
    fn build_request(&self, req: &ChatRequest, max_tokens: u64, ep: &Endpoint) -> UpstreamRequest {
        let mut body: Map<String, Value> = if req.route == Route::AnthropicCompatible {
            req.raw.clone()
        } else {
            let mut m = Map::new();
            if let Some(s) = &req.system {
                m.insert("system".into(), json!(s));
            }
            let msgs: Vec<Value> = req.messages.iter().map(|x| json!({"role": x.role, "content": x.content})).collect();
            m.insert("messages".into(), Value::Array(msgs));
            let s = &req.sampling;
            if let Some(t) = s.temperature {
                m.insert("temperature".into(), json!(t));
            }
            if let Some(t) = s.top_p {
                m.insert("top_p".into(), json!(t));
            }
            if !s.stop.is_empty() {
                m.insert("stop_sequences".into(), json!(s.stop));
            }
            m
        };
        body.insert("model".into(), json!(req.model));
        body.insert("max_tokens".into(), json!(max_tokens));
        body.insert("stream".into(), json!(true));
        let headers = vec![("x-api-key".into(), ep.api_key.expose().to_string()), ("anthropic-version".into(), API_VERSION.into())];
        UpstreamRequest::json(join(&ep.base_url, "/v1/messages"), headers, &Value::Object(body))
    }

    fn decode(&self, name: Option<&str>, v: &Value, usage: &mut Option<Usage>) -> Vec<Decoded> {
        let ty = v.get("type").and_then(Value::as_str).or(name).unwrap_or("");
        match ty {
            "message_start" => {
                if let Some(uv) = v.pointer("/message/usage") {
                    *usage = Some(merge_usage(usage.unwrap_or_default(), uv));
                }
                vec![Decoded::Start]
            }
            "content_block_delta" => match v.pointer("/delta/text").and_then(Value::as_str) {
                Some(t) if v.pointer("/delta/type").and_then(Value::as_str) == Some("text_delta") => vec![Decoded::Text(t.to_string())],
                _ => vec![],
            },
            "message_delta" => {
                let mut out = Vec::new();
                if let Some(uv) = v.get("usage") {
                    *usage = Some(merge_usage(usage.unwrap_or_default(), uv));
                }
                if let Some(s) = v.pointer("/delta/stop_reason").and_then(Value::as_str) {
                    out.push(Decoded::Finish(finish_reason_from_anthropic(s).to_string()));
                }
                out.push(Decoded::FinalUsage);
                out
            }
            "message_stop" => vec![Decoded::Done],
            "error" => vec![Decoded::Error(v.clone())],
            _ => vec![],
        }
    }

    fn assembler(&self) -> Option<Box<dyn Assembler>> {
        Some(Box::new(AnthropicAssembler::default()))
    }
}

/// Applies a (possibly partial, cumulative) usage object on top of what is known.
pub fn merge_usage(known: Usage, v: &Value) -> Usage {
    let mut out = known;
    if v.get("input_tokens").is_some() {
        out.input = u(v, "input_tokens");
    }
    if v.get("cache_read_input_tokens").is_some() {
        out.cached_input = u(v, "cache_read_input_tokens");
    }
    if let Some(split) = v.get("cache_creation").filter(|c| c.is_object()) {
        out.cache_write_5m = u(split, "ephemeral_5m_input_tokens");
        out.cache_write_1h = u(split, "ephemeral_1h_input_tokens");
        // When the split does not add up to the total, bill the rest at the 5m rate.
        let total = u(v, "cache_creation_input_tokens");
        let split_sum = out.cache_write_5m + out.cache_write_1h;
        if total > split_sum {
            out.cache_write_5m += total - split_sum;
        }
    } else if v.get("cache_creation_input_tokens").is_some() {
        let total = u(v, "cache_creation_input_tokens");
        // No split reported: keep an earlier split if it matches, else bill all at the 5m rate.
        if out.cache_write_5m + out.cache_write_1h != total {
            out.cache_write_5m = total;
            out.cache_write_1h = 0;
        }
    }
    if v.get("output_tokens").is_some() {
        out.output = u(v, "output_tokens");
    }
    out
}

/// Builds a `message` from its stream, as Anthropic's SDKs do (`finalMessage()`).
#[derive(Default)]
pub struct AnthropicAssembler {
    message: Option<Map<String, Value>>,
    blocks: Vec<Value>,
    /// Partial JSON of `tool_use` inputs, by block index.
    partial_json: Vec<(usize, String)>,
}

impl AnthropicAssembler {
    fn block(&mut self, index: usize) -> Option<&mut Map<String, Value>> {
        self.blocks.get_mut(index).and_then(Value::as_object_mut)
    }
}

fn append_str(block: &mut Map<String, Value>, key: &str, piece: &str) {
    let mut s = block.get(key).and_then(Value::as_str).unwrap_or("").to_string();
    s.push_str(piece);
    block.insert(key.into(), Value::String(s));
}

impl Assembler for AnthropicAssembler {
    fn event(&mut self, name: Option<&str>, v: &Value) {
        let ty = v.get("type").and_then(Value::as_str).or(name).unwrap_or("");
        let index = v.get("index").and_then(Value::as_u64).unwrap_or(0) as usize;
        match ty {
            "message_start" => self.message = v.get("message").and_then(Value::as_object).cloned(),
            "content_block_start" => {
                if let Some(b) = v.get("content_block") {
                    if self.blocks.len() <= index {
                        self.blocks.resize(index + 1, Value::Null);
                    }
                    self.blocks[index] = b.clone();
                }
            }
            "content_block_delta" => {
                let Some(delta) = v.get("delta") else { return };
                let piece = |k: &str| delta.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                match delta.get("type").and_then(Value::as_str).unwrap_or("") {
                    "text_delta" => self.block(index).into_iter().for_each(|b| append_str(b, "text", &piece("text"))),
                    "thinking_delta" => self.block(index).into_iter().for_each(|b| append_str(b, "thinking", &piece("thinking"))),
                    "signature_delta" => self.block(index).into_iter().for_each(|b| {
                        b.insert("signature".into(), json!(piece("signature")));
                    }),
                    "input_json_delta" => match self.partial_json.iter_mut().find(|(i, _)| *i == index) {
                        Some((_, s)) => s.push_str(&piece("partial_json")),
                        None => self.partial_json.push((index, piece("partial_json"))),
                    },
                    "citations_delta" => {
                        if let (Some(b), Some(c)) = (self.blocks.get_mut(index).and_then(Value::as_object_mut), delta.get("citation")) {
                            let list = b.entry("citations").or_insert_with(|| json!([]));
                            if let Some(a) = list.as_array_mut() {
                                a.push(c.clone());
                            }
                        }
                    }
                    _ => {}
                }
            }
            "content_block_stop" => {
                if let Some(pos) = self.partial_json.iter().position(|(i, _)| *i == index) {
                    let (_, text) = self.partial_json.remove(pos);
                    let input: Value = serde_json::from_str(if text.is_empty() { "{}" } else { &text }).unwrap_or(json!({}));
                    if let Some(b) = self.block(index) {
                        b.insert("input".into(), input);
                    }
                }
            }
            "message_delta" => {
                let Some(m) = self.message.as_mut() else { return };
                for k in ["stop_reason", "stop_sequence"] {
                    if let Some(x) = v.pointer(&format!("/delta/{k}")) {
                        m.insert(k.into(), x.clone());
                    }
                }
                if let (Some(Value::Object(usage)), Some(Value::Object(delta))) = (m.get_mut("usage"), v.get("usage")) {
                    for (k, x) in delta {
                        usage.insert(k.clone(), x.clone());
                    }
                }
            }
            _ => {}
        }
    }

    fn body(&self) -> Option<Value> {
        let mut m = self.message.clone()?;
        m.insert("content".into(), Value::Array(self.blocks.iter().filter(|b| !b.is_null()).cloned().collect()));
        Some(Value::Object(m))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn stream_events(sse: &[u8]) -> Vec<(Option<String>, Value)> {
        crate::sse::SseParser::new().push(sse).into_iter().filter_map(|e| Some((e.event.clone(), serde_json::from_str(&e.data).ok()?))).collect()
    }

    #[test]
    fn fixture_stream_usage_is_cumulative_not_summed() {
        let mut usage = None;
        let mut text = String::new();
        for (name, v) in stream_events(include_bytes!("../../../fixtures/anthropic/messages.stream.sse")) {
            for d in Anthropic.decode(name.as_deref(), &v, &mut usage) {
                if let Decoded::Text(t) = d {
                    text.push_str(&t);
                }
            }
        }
        assert!(text.starts_with("Go to Settings"));
        assert_eq!(usage, Some(Usage { input: 12, cache_write_5m: 2048, output: 31, ..Usage::default() }));
    }

    #[test]
    fn old_style_delta_with_only_output_keeps_start_counts() {
        let start = Usage { input: 50, ..Usage::default() };
        assert_eq!(merge_usage(start, &json!({"output_tokens": 9})), Usage { input: 50, output: 9, ..Usage::default() });
    }

    #[test]
    fn request_carries_version_key_and_stream() {
        let r = crate::chat::parse_native(br#"{"provider":"anthropic","model":"claude-haiku-4-5","messages":[{"role":"system","content":"s"},{"role":"user","content":"hi"}]}"#).unwrap();
        let up = Anthropic.build_request(&r, 100, &Endpoint { base_url: "http://m/anthropic".into(), api_key: Secret::new("k") });
        assert_eq!(up.url, "http://m/anthropic/v1/messages");
        assert!(up.headers.contains(&("anthropic-version".into(), API_VERSION.into())));
        let b: Value = serde_json::from_slice(&up.body).unwrap();
        assert_eq!((b["system"].clone(), b["max_tokens"].clone(), b["stream"].clone()), (json!("s"), json!(100), json!(true)));
    }

    #[test]
    fn the_whole_message_assembled_from_the_stream_has_the_unstreamed_shape() {
        let mut a = AnthropicAssembler::default();
        for (name, v) in stream_events(include_bytes!("../../../fixtures/anthropic/messages.stream.sse")) {
            a.event(name.as_deref(), &v);
        }
        let body = a.body().unwrap();
        let unstreamed: Value = serde_json::from_str(include_str!("../../../fixtures/anthropic/messages.response.json")).unwrap();
        let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<std::collections::BTreeSet<_>>();
        assert_eq!(keys(&body), keys(&unstreamed));
        assert_eq!(body["content"][0]["text"], "Go to Settings > API keys and click \"Rotate\" next to the key. Update your applications with the new key.");
        assert_eq!(body["stop_reason"], "end_turn");
        assert_eq!(body["usage"]["output_tokens"], 31);
        assert_eq!(merge_usage(Usage::default(), &body["usage"]), Usage { input: 12, cache_write_5m: 2048, output: 31, ..Usage::default() });
    }

    #[test]
    fn tool_use_inputs_are_assembled_from_json_fragments() {
        let mut a = AnthropicAssembler::default();
        for ev in [
            json!({"type":"message_start","message":{"id":"m","type":"message","role":"assistant","content":[],"usage":{"input_tokens":5,"output_tokens":1}}}),
            json!({"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{}}}),
            json!({"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"city\": \"Par"}}),
            json!({"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"is\"}"}}),
            json!({"type":"content_block_stop","index":0}),
            json!({"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":12}}),
        ] {
            a.event(None, &ev);
        }
        let body = a.body().unwrap();
        assert_eq!(body["content"][0]["input"], json!({"city": "Paris"}));
        assert_eq!(body["stop_reason"], "tool_use");
        assert_eq!(body["usage"], json!({"input_tokens": 5, "output_tokens": 12}));
    }
}
