//! Anthropic Messages: wire mapping, usage, stream events.
//!
//! `input_tokens` excludes cache reads and writes; streamed `message_delta.usage` is cumulative
//! and may repeat input/cache counts (2026 captures) or carry only `output_tokens` (older API).

use super::{finish_reason_from_anthropic, ChatOutput, Endpoint, UpstreamRequest};
use crate::chat::{ChatRequest, Route};
use crate::providers::stream::Decoded;
use crate::sse::SseEvent;
use crate::usage::{u, Usage};
use serde_json::{json, Map, Value};

pub const API_VERSION: &str = "2023-06-01";

pub fn build_request(req: &ChatRequest, max_tokens: u64, ep: &Endpoint) -> UpstreamRequest {
    let mut body: Map<String, Value> = if req.route == Route::AnthropicCompatible {
        req.raw.clone()
    } else {
        let mut m = Map::new();
        if let Some(s) = &req.system {
            m.insert("system".into(), json!(s));
        }
        let msgs: Vec<Value> = req.messages.iter().map(|x| json!({"role": x.role, "content": x.content})).collect();
        m.insert("messages".into(), Value::Array(msgs));
        if let Some(t) = req.temperature {
            m.insert("temperature".into(), json!(t));
        }
        m
    };
    body.insert("model".into(), json!(req.model));
    body.insert("max_tokens".into(), json!(max_tokens));
    if req.stream {
        body.insert("stream".into(), json!(true));
    } else {
        body.remove("stream");
    }
    UpstreamRequest {
        url: format!("{}/v1/messages", ep.base_url.trim_end_matches('/')),
        headers: vec![
            ("x-api-key".into(), ep.api_key.clone()),
            ("anthropic-version".into(), API_VERSION.into()),
            ("content-type".into(), "application/json".into()),
        ],
        body: Value::Object(body).to_string(),
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

pub fn parse_response(v: Value) -> Option<ChatOutput> {
    let usage = merge_usage(Usage::default(), v.get("usage")?);
    let mut content = String::new();
    for block in v.get("content")?.as_array()? {
        if block.get("type").and_then(Value::as_str) == Some("text") {
            content.push_str(block.get("text").and_then(Value::as_str).unwrap_or(""));
        }
    }
    Some(ChatOutput {
        content,
        usage,
        finish_reason: v.get("stop_reason").and_then(Value::as_str).map(|s| finish_reason_from_anthropic(s).to_string()),
        model: v.get("model").and_then(Value::as_str).unwrap_or("").to_string(),
        raw: v,
    })
}

pub fn decode_event(ev: &SseEvent, usage: &mut Option<Usage>) -> Vec<Decoded> {
    let Ok(v) = serde_json::from_str::<Value>(&ev.data) else { return vec![] };
    let ty = v.get("type").and_then(Value::as_str).or(ev.event.as_deref()).unwrap_or("");
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
        "error" => vec![Decoded::Error(v)],
        _ => vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixture_response_usage_counts_cache_reads() {
        let body = include_str!("../../../fixtures/anthropic/messages.response.json");
        let out = parse_response(serde_json::from_str(body).unwrap()).unwrap();
        assert_eq!(out.usage, Usage { input: 12, cached_input: 2048, output: 34, ..Usage::default() });
        assert_eq!(out.finish_reason.as_deref(), Some("stop"));
    }

    #[test]
    fn fixture_stream_usage_is_cumulative_not_summed() {
        let sse = include_bytes!("../../../fixtures/anthropic/messages.stream.sse");
        let mut p = crate::sse::SseParser::new();
        let mut usage = None;
        let mut text = String::new();
        for ev in p.push(sse) {
            for d in decode_event(&ev, &mut usage) {
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
        let merged = merge_usage(start, &json!({"output_tokens": 9}));
        assert_eq!(merged, Usage { input: 50, output: 9, ..Usage::default() });
    }

    #[test]
    fn request_carries_version_and_key() {
        let r = crate::chat::parse_native(br#"{"provider":"anthropic","model":"claude-haiku-4-5","messages":[{"role":"system","content":"s"},{"role":"user","content":"hi"}]}"#).unwrap();
        let up = build_request(&r, 100, &Endpoint { base_url: "http://m/anthropic".into(), api_key: "k".into() });
        assert_eq!(up.url, "http://m/anthropic/v1/messages");
        assert!(up.headers.contains(&("anthropic-version".into(), API_VERSION.into())));
        let b: Value = serde_json::from_str(&up.body).unwrap();
        assert_eq!(b["system"], "s");
        assert_eq!(b["max_tokens"], 100);
    }
}
