//! OpenAI Chat Completions: wire mapping, usage, stream chunks, and the whole answer assembled
//! from its chunks (what `stream: false` would have returned).

use super::decoded::Decoded;
use super::{join, Assembler, ChatWire, Endpoint};
use crate::chat::{ChatRequest, Route};
use crate::product::UpstreamRequest;
use crate::usage::{u, Usage};
use serde_json::{json, Map, Value};

pub struct OpenAi;

impl ChatWire for OpenAi {
    fn build_request(&self, req: &ChatRequest, max_tokens: u64, ep: &Endpoint) -> UpstreamRequest {
        let mut body: Map<String, Value> = if req.route == Route::OpenAiCompatible {
            // The customer speaks OpenAI: forward their (allowlisted) body as is.
            req.raw.clone()
        } else {
            let mut m = Map::new();
            let mut messages = Vec::new();
            if let Some(s) = &req.system {
                messages.push(json!({"role": "system", "content": s}));
            }
            for msg in &req.messages {
                messages.push(json!({"role": msg.role, "content": msg.content}));
            }
            m.insert("messages".into(), Value::Array(messages));
            let s = &req.sampling;
            if let Some(t) = s.temperature {
                m.insert("temperature".into(), json!(t));
            }
            if let Some(t) = s.top_p {
                m.insert("top_p".into(), json!(t));
            }
            if !s.stop.is_empty() {
                m.insert("stop".into(), json!(s.stop));
            }
            m
        };
        body.insert("model".into(), json!(req.model));
        // `max_completion_tokens` is the field every current model accepts (reasoning models refuse `max_tokens`).
        body.remove("max_tokens");
        body.insert("max_completion_tokens".into(), json!(max_tokens));
        // Always a stream, with usage: the gateway bills from it whatever the client asked.
        body.insert("stream".into(), json!(true));
        let mut opts = body.get("stream_options").and_then(Value::as_object).cloned().unwrap_or_default();
        opts.insert("include_usage".into(), json!(true));
        body.insert("stream_options".into(), Value::Object(opts));
        UpstreamRequest::json(join(&ep.base_url, "/v1/chat/completions"), vec![("authorization".into(), format!("Bearer {}", ep.api_key.expose()))], &Value::Object(body))
    }

    fn decode(&self, _name: Option<&str>, v: &Value, usage: &mut Option<Usage>) -> Vec<Decoded> {
        if v.get("error").is_some() {
            return vec![Decoded::Error(v.clone())];
        }
        let mut out = Vec::new();
        if let Some(c) = v.pointer("/choices/0") {
            if let Some(t) = c.pointer("/delta/content").and_then(Value::as_str).filter(|t| !t.is_empty()) {
                out.push(Decoded::Text(t.to_string()));
            }
            if let Some(f) = c.get("finish_reason").and_then(Value::as_str) {
                out.push(Decoded::Finish(f.to_string()));
            }
        }
        if let Some(uv) = v.get("usage").filter(|x| x.is_object()) {
            *usage = Some(usage_from(uv));
            out.push(Decoded::FinalUsage);
        }
        out
    }

    fn assembler(&self) -> Option<Box<dyn Assembler>> {
        Some(Box::new(OpenAiAssembler::default()))
    }
}

/// `prompt_tokens` includes cached tokens (and cache writes where reported).
pub fn usage_from(v: &Value) -> Usage {
    let prompt = u(v, "prompt_tokens");
    let details = v.get("prompt_tokens_details").cloned().unwrap_or(Value::Null);
    let cached = u(&details, "cached_tokens");
    let write = u(&details, "cache_write_tokens");
    Usage { input: prompt.saturating_sub(cached).saturating_sub(write), cached_input: cached, cache_write_5m: write, cache_write_1h: 0, output: u(v, "completion_tokens") }
}

/// Builds a `chat.completion` from `chat.completion.chunk`s, as OpenAI's SDKs do.
#[derive(Default)]
pub struct OpenAiAssembler {
    head: Option<Map<String, Value>>,
    content: Option<String>,
    refusal: Option<String>,
    finish_reason: Value,
    logprobs: Option<Vec<Value>>,
    usage: Value,
}

fn append(slot: &mut Option<String>, piece: Option<&str>) {
    if let Some(p) = piece {
        slot.get_or_insert_with(String::new).push_str(p);
    }
}

impl Assembler for OpenAiAssembler {
    fn event(&mut self, _name: Option<&str>, v: &Value) {
        let Some(chunk) = v.as_object() else { return };
        if self.head.is_none() {
            let mut head = Map::new();
            for k in ["id", "created", "model", "service_tier", "system_fingerprint"] {
                if let Some(x) = chunk.get(k) {
                    head.insert(k.into(), x.clone());
                }
            }
            self.head = Some(head);
        }
        if let Some(c) = v.pointer("/choices/0") {
            append(&mut self.content, c.pointer("/delta/content").and_then(Value::as_str));
            append(&mut self.refusal, c.pointer("/delta/refusal").and_then(Value::as_str));
            if let Some(f) = c.get("finish_reason").filter(|f| !f.is_null()) {
                self.finish_reason = f.clone();
            }
            if let Some(lp) = c.pointer("/logprobs/content").and_then(Value::as_array) {
                self.logprobs.get_or_insert_with(Vec::new).extend(lp.iter().cloned());
            }
        }
        if let Some(uv) = chunk.get("usage").filter(|x| x.is_object()) {
            self.usage = uv.clone();
        }
    }

    fn body(&self) -> Option<Value> {
        let mut v = self.head.clone()?;
        v.insert("object".into(), json!("chat.completion"));
        let logprobs = self.logprobs.as_ref().map(|c| json!({ "content": c })).unwrap_or(Value::Null);
        v.insert(
            "choices".into(),
            json!([{
                "index": 0,
                "message": { "role": "assistant", "content": self.content, "refusal": self.refusal, "annotations": [] },
                "logprobs": logprobs,
                "finish_reason": self.finish_reason,
            }]),
        );
        v.insert("usage".into(), self.usage.clone());
        Some(Value::Object(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::{parse_native, parse_openai};
    use crate::config::Secret;

    fn ep() -> Endpoint {
        Endpoint { base_url: "http://mock/openai/".into(), api_key: Secret::new("sk-test") }
    }

    fn events(sse: &[u8]) -> Vec<Value> {
        crate::sse::SseParser::new().push(sse).into_iter().filter_map(|e| serde_json::from_str(&e.data).ok()).collect()
    }

    #[test]
    fn native_request_maps_to_a_streamed_openai_body() {
        let r = parse_native(br#"{"provider":"openai","model":"gpt-4o-mini","messages":[{"role":"system","content":"s"},{"role":"user","content":"hi"}],"stop":"END"}"#).unwrap();
        let up = OpenAi.build_request(&r, 77, &ep());
        assert_eq!(up.url, "http://mock/openai/v1/chat/completions");
        let b: Value = serde_json::from_slice(&up.body).unwrap();
        assert_eq!(b["messages"][0]["role"], "system");
        assert_eq!(b["max_completion_tokens"], 77);
        assert_eq!(b["stop"], json!(["END"]));
        assert_eq!((b["stream"].clone(), b["stream_options"]["include_usage"].clone()), (json!(true), json!(true)), "always streamed, with usage");
        assert!(up.headers.contains(&("authorization".into(), "Bearer sk-test".into())));
    }

    #[test]
    fn openai_route_forwards_the_body_and_forces_usage() {
        let r = parse_openai(br#"{"model":"openai/gpt-4o","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"f"}}],"max_tokens":9}"#).unwrap();
        let b: Value = serde_json::from_slice(&OpenAi.build_request(&r, 9, &ep()).body).unwrap();
        assert_eq!(b["model"], "gpt-4o");
        assert_eq!(b["tools"][0]["function"]["name"], "f");
        assert_eq!(b["max_completion_tokens"], 9);
        assert!(b.get("max_tokens").is_none());
        assert_eq!(b["stream_options"]["include_usage"], true);
    }

    #[test]
    fn fixture_stream_yields_text_and_final_usage() {
        let mut usage = None;
        let mut text = String::new();
        let mut done = false;
        for ev in crate::sse::SseParser::new().push(include_bytes!("../../../fixtures/openai/chat-completion.stream.sse")) {
            if ev.data == "[DONE]" {
                done = true;
                continue;
            }
            for d in OpenAi.decode(None, &serde_json::from_str(&ev.data).unwrap(), &mut usage) {
                if let Decoded::Text(t) = d {
                    text.push_str(&t);
                }
            }
        }
        assert_eq!(text, "Open Settings > API keys and click \"Rotate\".");
        assert_eq!(usage, Some(Usage { input: 72, cached_input: 1792, output: 214, ..Usage::default() }));
        assert!(done);
    }

    #[test]
    fn the_whole_answer_assembled_from_the_stream_has_the_unstreamed_shape() {
        let mut a = OpenAiAssembler::default();
        for v in events(include_bytes!("../../../fixtures/openai/chat-completion.stream.sse")) {
            a.event(None, &v);
        }
        let body = a.body().unwrap();
        let unstreamed: Value = serde_json::from_str(include_str!("../../../fixtures/openai/chat-completion.response.json")).unwrap();
        let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<std::collections::BTreeSet<_>>();
        assert_eq!(keys(&body), keys(&unstreamed));
        assert_eq!(keys(&body["choices"][0]["message"]), keys(&unstreamed["choices"][0]["message"]));
        assert_eq!(body["object"], "chat.completion");
        assert_eq!(body["choices"][0]["message"]["content"], "Open Settings > API keys and click \"Rotate\".");
        assert_eq!(body["choices"][0]["finish_reason"], "stop");
        assert_eq!(usage_from(&body["usage"]), Usage { input: 72, cached_input: 1792, output: 214, ..Usage::default() });
        assert_eq!(body["id"], "chatcmpl-C7kV8aQ3nLr5TzWc0YbE6pHs1gKxM");
    }
}
