//! OpenAI Chat Completions: wire mapping, usage, stream chunks and whole answers.

use super::decoded::Decoded;
use super::{join, ChatWire, Endpoint};
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
        // A stream when the client wants one, with usage (the gateway bills from it); a whole
        // answer otherwise, which carries its usage.
        if req.stream {
            body.insert("stream".into(), json!(true));
            let mut opts = body.get("stream_options").and_then(Value::as_object).cloned().unwrap_or_default();
            opts.insert("include_usage".into(), json!(true));
            body.insert("stream_options".into(), Value::Object(opts));
        } else {
            body.insert("stream".into(), json!(false));
            body.remove("stream_options");
        }
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
        }
        finish_and_usage(v, usage, &mut out);
        out
    }

    fn decode_whole(&self, v: &Value, usage: &mut Option<Usage>) -> Vec<Decoded> {
        let mut out = Vec::new();
        if let Some(c) = v.pointer("/choices/0") {
            if let Some(t) = c.pointer("/message/content").and_then(Value::as_str).filter(|t| !t.is_empty()) {
                out.push(Decoded::Text(t.to_string()));
            }
            for (i, tc) in c.pointer("/message/tool_calls").and_then(Value::as_array).into_iter().flatten().enumerate() {
                let slot = Some(i as u64);
                let id = tc.get("id").and_then(Value::as_str).map(str::to_string);
                let name = tc.pointer("/function/name").and_then(Value::as_str).unwrap_or("").to_string();
                out.push(Decoded::ToolCallStart { slot, id, name, signature: None });
                if let Some(f) = tc.pointer("/function/arguments").and_then(Value::as_str).filter(|f| !f.is_empty()) {
                    out.push(Decoded::ToolCallArgs { slot, fragment: f.to_string() });
                }
            }
        }
        finish_and_usage(v, usage, &mut out);
        out
    }

    fn text_delta<'a>(&self, _name: Option<&str>, data: &'a str) -> Option<std::borrow::Cow<'a, str>> {
        let c: Chunk<'a> = serde_json::from_str(data).ok()?;
        let [choice] = <[Choice<'a>; 1]>::try_from(c.choices).ok()?;
        let plain = c.usage.is_none() && c.error.is_none() && choice.finish_reason.is_none() && choice.delta.tool_calls.is_none();
        choice.delta.content.filter(|t| plain && !t.is_empty())
    }

    /// Only the usage chunk (a `usage` object, not `null`) and error chunks matter to billing;
    /// every other chunk passes through unparsed.
    fn billing_event(&self, _name: Option<&str>, data: &str) -> bool {
        data == "[DONE]" || super::has_key(data, "\"error\"") || super::key_value_starts(data, "\"usage\"", b'{')
    }
}

/// What a chunk or a whole answer ends with: its choice's finish reason, then the usage.
fn finish_and_usage(v: &Value, usage: &mut Option<Usage>, out: &mut Vec<Decoded>) {
    if let Some(f) = v.pointer("/choices/0/finish_reason").and_then(Value::as_str) {
        out.push(Decoded::Finish(f.to_string()));
    }
    if let Some(uv) = v.get("usage").filter(|x| x.is_object()) {
        *usage = Some(usage_from(uv));
        out.push(Decoded::FinalUsage);
    }
}

/// A `chat.completion.chunk` as far as a text delta needs (strings borrowed when unescaped).
#[derive(serde::Deserialize)]
struct Chunk<'a> {
    #[serde(borrow, default)]
    choices: Vec<Choice<'a>>,
    #[serde(default)]
    usage: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    error: Option<serde::de::IgnoredAny>,
}

#[derive(serde::Deserialize)]
struct Choice<'a> {
    #[serde(borrow, default)]
    delta: ChunkDelta<'a>,
    #[serde(default)]
    finish_reason: Option<serde::de::IgnoredAny>,
}

#[derive(serde::Deserialize, Default)]
struct ChunkDelta<'a> {
    #[serde(borrow, default)]
    content: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    tool_calls: Option<serde::de::IgnoredAny>,
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
        let r = parse_native(br#"{"provider":"openai","model":"gpt-4o-mini","stream":true,"messages":[{"role":"system","content":"s"},{"role":"user","content":"hi"}],"stop":"END"}"#).unwrap();
        let up = OpenAi.build_request(&r, 77, &ep());
        assert_eq!(up.url, "http://mock/openai/v1/chat/completions");
        let b: Value = serde_json::from_slice(&up.body).unwrap();
        assert_eq!(b["messages"][0]["role"], "system");
        assert_eq!(b["max_completion_tokens"], 77);
        assert_eq!(b["stop"], json!(["END"]));
        assert_eq!((b["stream"].clone(), b["stream_options"]["include_usage"].clone()), (json!(true), json!(true)), "streamed when asked, with usage");
        assert!(up.headers.contains(&("authorization".into(), "Bearer sk-test".into())));
    }

    #[test]
    fn openai_route_forwards_the_body_and_forces_usage() {
        let r = parse_openai(br#"{"model":"openai/gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"f"}}],"max_tokens":9}"#).unwrap();
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

        // The same calls in a whole answer.
        let whole = json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": null, "tool_calls": [
            {"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}},
            {"id": "call_b", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Rome\"}"}}]}, "finish_reason": "tool_calls"}],
            "usage": {"prompt_tokens": 81, "completion_tokens": 52, "total_tokens": 133}});
        let mut usage = None;
        let d = OpenAi.decode_whole(&whole, &mut usage);
        assert_eq!(d[2], Decoded::ToolCallStart { slot: Some(1), id: Some("call_b".into()), name: "get_weather".into(), signature: None });
        assert_eq!(d[3], Decoded::ToolCallArgs { slot: Some(1), fragment: "{\"city\": \"Rome\"}".into() });
        assert_eq!(&d[4..], &[Decoded::Finish("tool_calls".into()), Decoded::FinalUsage]);
        assert_eq!(usage, Some(Usage { input: 81, output: 52, ..Usage::default() }));
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
    fn a_whole_answer_decodes_to_its_text_finish_and_usage() {
        let v: Value = serde_json::from_str(include_str!("../../../fixtures/openai/chat-completion.response.json")).unwrap();
        let mut usage = None;
        let d = OpenAi.decode_whole(&v, &mut usage);
        assert!(matches!(&d[0], Decoded::Text(t) if !t.is_empty()));
        assert!(d.contains(&Decoded::FinalUsage));
        assert_eq!(usage, Some(usage_from(&v["usage"])));
    }

    #[test]
    fn plain_calls_ask_for_a_whole_answer() {
        let r = parse_openai(br#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"stream":false}"#).unwrap();
        let b: Value = serde_json::from_slice(&OpenAi.build_request(&r, 9, &ep()).body).unwrap();
        assert_eq!(b["stream"], false);
        assert!(b.get("stream_options").is_none(), "OpenAI refuses stream_options without stream");
    }

    #[test]
    fn text_deltas_decode_without_a_tree_and_other_chunks_do_not() {
        let text = r#"{"id":"c","choices":[{"index":0,"delta":{"content":"Hi \u00e9"},"finish_reason":null}],"usage":null}"#;
        assert_eq!(OpenAi.text_delta(None, text).as_deref(), Some("Hi \u{e9}"));
        for other in [
            r#"{"choices":[{"index":0,"delta":{"content":"x"},"finish_reason":"stop"}]}"#,
            r#"{"choices":[{"index":0,"delta":{"content":"x","tool_calls":[{"index":0}]}}]}"#,
            r#"{"choices":[],"usage":{"prompt_tokens":1}}"#,
            r#"{"choices":[{"index":0,"delta":{"content":""}}]}"#,
            r#"{"error":{"message":"x"},"choices":[{"delta":{"content":"x"}}]}"#,
        ] {
            assert_eq!(OpenAi.text_delta(None, other), None, "{other}");
        }
    }

    #[test]
    fn only_usage_and_error_chunks_are_billing_events() {
        assert!(!OpenAi.billing_event(None, r#"{"choices":[{"delta":{"content":"the \"usage\": {x}"}}],"usage":null}"#));
        assert!(OpenAi.billing_event(None, r#"{"choices":[],"usage" : {"prompt_tokens":1}}"#));
        assert!(OpenAi.billing_event(None, r#"{"error":{"message":"x"}}"#));
        assert!(!OpenAi.billing_event(None, r#"{"choices":[{"delta":{"content":"an \"error\": here"}}]}"#));
        assert!(OpenAi.billing_event(None, "[DONE]"));
    }
}
