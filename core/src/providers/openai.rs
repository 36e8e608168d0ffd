//! OpenAI Chat Completions: wire mapping, usage, stream chunks.

use super::{ChatOutput, Endpoint, UpstreamRequest};
use crate::chat::{ChatRequest, Route};
use crate::providers::stream::Decoded;
use crate::sse::SseEvent;
use crate::usage::{u, Usage};
use serde_json::{json, Map, Value};

pub fn build_request(req: &ChatRequest, max_tokens: u64, ep: &Endpoint) -> UpstreamRequest {
    let mut body: Map<String, Value> = if req.route == Route::OpenAiCompatible {
        // The customer speaks OpenAI: forward their body (tools, response_format, ...) as is.
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
        if let Some(t) = req.temperature {
            m.insert("temperature".into(), json!(t));
        }
        m
    };
    body.insert("model".into(), json!(req.model));
    // `max_completion_tokens` is the field every current model accepts (reasoning models refuse `max_tokens`).
    body.remove("max_tokens");
    body.insert("max_completion_tokens".into(), json!(max_tokens));
    if req.stream {
        body.insert("stream".into(), json!(true));
        // Usage is only sent with include_usage; the gateway always needs it to bill.
        let mut opts = body.get("stream_options").and_then(Value::as_object).cloned().unwrap_or_default();
        opts.insert("include_usage".into(), json!(true));
        body.insert("stream_options".into(), Value::Object(opts));
    } else {
        body.remove("stream");
        body.remove("stream_options");
    }
    UpstreamRequest {
        url: format!("{}/v1/chat/completions", ep.base_url.trim_end_matches('/')),
        headers: vec![
            ("authorization".into(), format!("Bearer {}", ep.api_key)),
            ("content-type".into(), "application/json".into()),
        ],
        body: Value::Object(body).to_string(),
    }
}

/// `prompt_tokens` includes cached tokens (and cache writes where reported).
pub fn usage_from(v: &Value) -> Usage {
    let prompt = u(v, "prompt_tokens");
    let details = v.get("prompt_tokens_details").cloned().unwrap_or(Value::Null);
    let cached = u(&details, "cached_tokens");
    let write = u(&details, "cache_write_tokens");
    Usage {
        input: prompt.saturating_sub(cached).saturating_sub(write),
        cached_input: cached,
        cache_write_5m: write,
        cache_write_1h: 0,
        output: u(v, "completion_tokens"),
    }
}

pub fn parse_response(v: Value) -> Option<ChatOutput> {
    let usage = usage_from(v.get("usage")?);
    let choice = v.pointer("/choices/0")?;
    Some(ChatOutput {
        content: choice.pointer("/message/content").and_then(Value::as_str).unwrap_or("").to_string(),
        usage,
        finish_reason: choice.get("finish_reason").and_then(Value::as_str).map(str::to_string),
        model: v.get("model").and_then(Value::as_str).unwrap_or("").to_string(),
        raw: v,
    })
}

pub fn decode_event(ev: &SseEvent, usage: &mut Option<Usage>) -> Vec<Decoded> {
    let data = ev.data.trim();
    if data.is_empty() {
        return vec![];
    }
    if data == "[DONE]" {
        return vec![Decoded::Done];
    }
    let Ok(v) = serde_json::from_str::<Value>(data) else { return vec![] };
    if v.get("error").is_some() {
        return vec![Decoded::Error(v)];
    }
    let mut out = Vec::new();
    if let Some(c) = v.pointer("/choices/0") {
        if let Some(t) = c.pointer("/delta/content").and_then(Value::as_str) {
            if !t.is_empty() {
                out.push(Decoded::Text(t.to_string()));
            }
        }
        if let Some(f) = c.get("finish_reason").and_then(Value::as_str) {
            out.push(Decoded::Finish(f.to_string()));
        }
    }
    if let Some(uv) = v.get("usage").filter(|x| !x.is_null()) {
        *usage = Some(usage_from(uv));
        out.push(Decoded::FinalUsage);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::{parse_native, parse_openai};

    fn ep() -> Endpoint {
        Endpoint { base_url: "http://mock/openai/".into(), api_key: "sk-test".into() }
    }

    #[test]
    fn native_request_maps_to_openai_body() {
        let r = parse_native(br#"{"provider":"openai","model":"gpt-4o-mini","messages":[{"role":"system","content":"s"},{"role":"user","content":"hi"}],"stream":true}"#).unwrap();
        let up = build_request(&r, 77, &ep());
        assert_eq!(up.url, "http://mock/openai/v1/chat/completions");
        let b: Value = serde_json::from_str(&up.body).unwrap();
        assert_eq!(b["messages"][0]["role"], "system");
        assert_eq!(b["max_completion_tokens"], 77);
        assert_eq!(b["stream_options"]["include_usage"], true);
        assert!(up.headers.contains(&("authorization".into(), "Bearer sk-test".into())));
    }

    #[test]
    fn openai_route_forwards_the_body_and_forces_usage() {
        let r = parse_openai(br#"{"model":"openai/gpt-4o","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"f"}}],"stream":true,"max_tokens":9}"#).unwrap();
        let b: Value = serde_json::from_str(&build_request(&r, 9, &ep()).body).unwrap();
        assert_eq!(b["model"], "gpt-4o");
        assert_eq!(b["tools"][0]["function"]["name"], "f");
        assert_eq!(b["max_completion_tokens"], 9);
        assert!(b.get("max_tokens").is_none());
        assert_eq!(b["stream_options"]["include_usage"], true);
    }

    #[test]
    fn fixture_response_usage_splits_cached_tokens() {
        let body = include_str!("../../../fixtures/openai/chat-completion.response.json");
        let out = parse_response(serde_json::from_str(body).unwrap()).unwrap();
        assert_eq!(out.usage, Usage { input: 72, cached_input: 1792, output: 230, ..Usage::default() });
        assert!(out.content.starts_with("Open Settings"));
    }

    #[test]
    fn fixture_stream_yields_text_and_final_usage() {
        let sse = include_bytes!("../../../fixtures/openai/chat-completion.stream.sse");
        let mut p = crate::sse::SseParser::new();
        let mut usage = None;
        let mut text = String::new();
        let mut done = false;
        for ev in p.push(sse) {
            for d in decode_event(&ev, &mut usage) {
                match d {
                    Decoded::Text(t) => text.push_str(&t),
                    Decoded::Done => done = true,
                    _ => {}
                }
            }
        }
        assert_eq!(text, "Open Settings > API keys and click \"Rotate\".");
        assert_eq!(usage, Some(Usage { input: 72, cached_input: 1792, output: 214, ..Usage::default() }));
        assert!(done);
    }
}
