//! OpenAI Chat Completions: wire mapping, usage, stream chunks, and the whole answer assembled
//! from its chunks (what `stream: false` would have returned).

use super::decoded::Decoded;
use super::{join, Assembler, ChatWire, Endpoint};
use crate::chat::images::{Detail, Image, ImageSource};
use crate::chat::messages::Part;
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
            m.insert("messages".into(), Value::Array(messages(req)));
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
        // The standard tier, whose list prices the table holds (`auto` may run at priority).
        body.insert("service_tier".into(), json!("default"));
        UpstreamRequest::json(join(&ep.base_url, "/v1/chat/completions"), vec![("authorization".into(), format!("Bearer {}", ep.api_key.expose()))], &Value::Object(body))
    }

    fn served_tier(&self, v: &Value) -> Option<String> {
        v.get("service_tier").and_then(Value::as_str).map(str::to_string)
    }

    fn is_standard_tier(&self, tier: &str) -> bool {
        tier == "default"
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
            // Tool calls: the first delta of a call has its id and name, later ones fragments of
            // its arguments, each under the call's `index`.
            for tc in c.pointer("/delta/tool_calls").and_then(Value::as_array).into_iter().flatten() {
                let slot = tc.get("index").and_then(Value::as_u64);
                if let Some(name) = tc.pointer("/function/name").and_then(Value::as_str) {
                    let id = tc.get("id").and_then(Value::as_str).map(str::to_string);
                    out.push(Decoded::ToolCallStart { slot, id, name: name.to_string(), signature: None });
                }
                if let Some(f) = tc.pointer("/function/arguments").and_then(Value::as_str).filter(|f| !f.is_empty()) {
                    out.push(Decoded::ToolCallArgs { slot, fragment: f.to_string() });
                }
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

/// OpenAI `messages` for a request that came in another shape (the native route).
fn messages(req: &ChatRequest) -> Vec<Value> {
    let mut out = Vec::new();
    if let Some(s) = &req.system {
        out.push(json!({"role": "system", "content": s}));
    }
    for m in &req.messages {
        let mut parts = Vec::new();
        let mut calls = Vec::new();
        for p in &m.parts {
            match p {
                Part::Text(t) => parts.push(json!({"type": "text", "text": t})),
                Part::Image(i) => parts.push(image_part(i)),
                Part::ToolCall(c) => calls.push(json!({"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments_text()}})),
                Part::ToolResult(r) => out.push(json!({"role": "tool", "tool_call_id": r.call_id, "content": r.text()})),
                Part::Thinking { .. } => {}
            }
        }
        if parts.is_empty() && calls.is_empty() {
            continue;
        }
        // Plain text stays a string, the shape every OpenAI-compatible model takes.
        let content = match parts.as_slice() {
            [] => Value::Null,
            [one] if one["type"] == "text" => one["text"].clone(),
            _ => Value::Array(parts),
        };
        let mut msg = json!({"role": m.role.as_str(), "content": content});
        if !calls.is_empty() {
            msg["tool_calls"] = Value::Array(calls);
        }
        out.push(msg);
    }
    out
}

fn image_part(i: &Image) -> Value {
    let url = match &i.source {
        ImageSource::Url(u) => u.clone(),
        ImageSource::Base64 { media_type, data } => format!("data:{media_type};base64,{data}"),
    };
    let mut iu = json!({ "url": url });
    let detail = match i.detail {
        Some(Detail::Low) => Some("low"),
        Some(Detail::High) => Some("high"),
        Some(Detail::Original) => Some("original"),
        Some(Detail::Auto) => Some("auto"),
        None => None,
    };
    if let Some(d) = detail {
        iu["detail"] = json!(d);
    }
    json!({"type": "image_url", "image_url": iu})
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
    /// Tool calls by their `index`: id, type, name, argument text.
    tool_calls: Vec<(u64, Map<String, Value>)>,
}

fn append(slot: &mut Option<String>, piece: Option<&str>) {
    if let Some(p) = piece {
        slot.get_or_insert_with(String::new).push_str(p);
    }
}

impl OpenAiAssembler {
    /// One `tool_calls` delta: the first of a call has its id, type and name; the rest append
    /// fragments of its arguments (OpenAI SDKs' `ChatCompletionStream` does the same).
    fn tool_call_delta(&mut self, tc: &Value) {
        let index = tc.get("index").and_then(Value::as_u64).unwrap_or(0);
        let pos = match self.tool_calls.iter().position(|(i, _)| *i == index) {
            Some(p) => p,
            None => {
                self.tool_calls.push((index, Map::new()));
                self.tool_calls.len() - 1
            }
        };
        let call = &mut self.tool_calls[pos].1;
        for k in ["id", "type"] {
            if let Some(x) = tc.get(k).filter(|x| !x.is_null()) {
                call.insert(k.into(), x.clone());
            }
        }
        call.entry("type").or_insert_with(|| json!("function"));
        let f = call.entry("function").or_insert_with(|| json!({"name": "", "arguments": ""}));
        if let Some(n) = tc.pointer("/function/name").and_then(Value::as_str) {
            f["name"] = json!(n);
        }
        if let Some(a) = tc.pointer("/function/arguments").and_then(Value::as_str) {
            let so_far = f["arguments"].as_str().unwrap_or("").to_string();
            f["arguments"] = json!(so_far + a);
        }
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
            for tc in c.pointer("/delta/tool_calls").and_then(Value::as_array).into_iter().flatten() {
                self.tool_call_delta(tc);
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
        let mut message = json!({ "role": "assistant", "content": self.content, "refusal": self.refusal, "annotations": [] });
        if !self.tool_calls.is_empty() {
            let mut calls = self.tool_calls.clone();
            calls.sort_by_key(|(i, _)| *i);
            message["tool_calls"] = calls.into_iter().map(|(_, c)| Value::Object(c)).collect();
        }
        v.insert(
            "choices".into(),
            json!([{
                "index": 0,
                "message": message,
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

    const TOOLS_SSE: &[u8] = include_bytes!("../../../fixtures/openai/chat-completion.tools.stream.sse");

    #[test]
    fn tool_call_deltas_decode_by_index_and_assemble_whole() {
        let mut usage = None;
        let mut decoded = Vec::new();
        for v in events(TOOLS_SSE) {
            decoded.extend(OpenAi.decode(None, &v, &mut usage));
        }
        let starts: Vec<_> = decoded.iter().filter_map(|d| if let Decoded::ToolCallStart { slot, id, name, .. } = d { Some((*slot, id.clone(), name.clone())) } else { None }).collect();
        assert_eq!(starts, vec![(Some(0), Some("call_Zk3pW9qLmT2vB8nR4xYc7hDs".into()), "get_weather".into()), (Some(1), Some("call_Qm7vX2kLp9sW4tR8nB3yD6cF".into()), "get_weather".into())]);
        let args_1: String = decoded.iter().filter_map(|d| if let Decoded::ToolCallArgs { slot: Some(1), fragment } = d { Some(fragment.as_str()) } else { None }).collect();
        assert_eq!(args_1, "{\"city\": \"Rome\"}");
        assert!(decoded.contains(&Decoded::Finish("tool_calls".into())));
        assert_eq!(usage, Some(Usage { input: 81, output: 52, ..Usage::default() }));

        let mut a = OpenAiAssembler::default();
        for v in events(TOOLS_SSE) {
            a.event(None, &v);
        }
        let body = a.body().unwrap();
        let msg = &body["choices"][0]["message"];
        assert_eq!(msg["content"], Value::Null);
        assert_eq!(msg["tool_calls"][0], json!({"id": "call_Zk3pW9qLmT2vB8nR4xYc7hDs", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}));
        assert_eq!(msg["tool_calls"][1]["function"]["arguments"], "{\"city\": \"Rome\"}");
        assert_eq!(body["choices"][0]["finish_reason"], "tool_calls");
    }

    #[test]
    fn native_images_become_image_url_parts() {
        let r = parse_native(br#"{"provider":"openai","model":"gpt-4o-mini","messages":[{"role":"user","content":[{"type":"text","text":"what?"},{"type":"image_url","image_url":{"url":"https://example.com/a.png","detail":"low"}}]},{"role":"assistant","content":"a cat"},{"role":"user","content":"sure?"}]}"#).unwrap();
        let b: Value = serde_json::from_slice(&OpenAi.build_request(&r, 5, &ep()).body).unwrap();
        assert_eq!(b["messages"][0]["content"][1], json!({"type": "image_url", "image_url": {"url": "https://example.com/a.png", "detail": "low"}}));
        assert_eq!(b["messages"][1], json!({"role": "assistant", "content": "a cat"}));
        assert_eq!(b["messages"][2]["content"], "sure?");
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
