//! Google Gemini `generateContent` / `streamGenerateContent?alt=sse`.
//!
//! `usageMetadata` is on every stream chunk and cumulative; `promptTokenCount` includes
//! `cachedContentTokenCount`; billable output is `candidatesTokenCount + thoughtsTokenCount`
//! (thoughts are not inside candidates). `maxOutputTokens` bounds thoughts too.

use super::{finish_reason_from_gemini, ChatOutput, Endpoint, UpstreamRequest};
use crate::chat::ChatRequest;
use crate::providers::stream::Decoded;
use crate::sse::SseEvent;
use crate::usage::{u, Usage};
use serde_json::{json, Value};

pub fn build_request(req: &ChatRequest, max_tokens: u64, ep: &Endpoint) -> UpstreamRequest {
    let contents: Vec<Value> = req
        .messages
        .iter()
        .map(|m| {
            let role = if m.role == "assistant" { "model" } else { "user" };
            json!({"role": role, "parts": [{"text": m.content}]})
        })
        .collect();
    let mut gen = json!({ "maxOutputTokens": max_tokens });
    if let Some(t) = req.temperature {
        gen["temperature"] = json!(t);
    }
    let mut body = json!({ "contents": contents, "generationConfig": gen });
    if let Some(s) = &req.system {
        body["systemInstruction"] = json!({"parts": [{"text": s}]});
    }
    let base = ep.base_url.trim_end_matches('/');
    let url = if req.stream {
        format!("{base}/v1beta/models/{}:streamGenerateContent?alt=sse", req.model)
    } else {
        format!("{base}/v1beta/models/{}:generateContent", req.model)
    };
    UpstreamRequest {
        url,
        headers: vec![
            ("x-goog-api-key".into(), ep.api_key.clone()),
            ("content-type".into(), "application/json".into()),
        ],
        body: body.to_string(),
    }
}

pub fn usage_from(v: &Value) -> Usage {
    let prompt = u(v, "promptTokenCount") + u(v, "toolUsePromptTokenCount");
    let cached = u(v, "cachedContentTokenCount");
    Usage {
        input: prompt.saturating_sub(cached),
        cached_input: cached,
        cache_write_5m: 0,
        cache_write_1h: 0,
        output: u(v, "candidatesTokenCount") + u(v, "thoughtsTokenCount"),
    }
}

fn candidate_text(v: &Value) -> String {
    let mut out = String::new();
    if let Some(parts) = v.pointer("/candidates/0/content/parts").and_then(Value::as_array) {
        for p in parts {
            // Thought summaries are not part of the answer.
            if p.get("thought").and_then(Value::as_bool) == Some(true) {
                continue;
            }
            if let Some(t) = p.get("text").and_then(Value::as_str) {
                out.push_str(t);
            }
        }
    }
    out
}

pub fn parse_response(v: Value) -> Option<ChatOutput> {
    let usage = usage_from(v.get("usageMetadata")?);
    Some(ChatOutput {
        content: candidate_text(&v),
        usage,
        finish_reason: v
            .pointer("/candidates/0/finishReason")
            .and_then(Value::as_str)
            .map(|r| finish_reason_from_gemini(r).to_string()),
        model: v.get("modelVersion").and_then(Value::as_str).unwrap_or("").to_string(),
        raw: v,
    })
}

pub fn decode_event(ev: &SseEvent, usage: &mut Option<Usage>) -> Vec<Decoded> {
    let Ok(v) = serde_json::from_str::<Value>(&ev.data) else { return vec![] };
    if v.get("error").is_some() {
        return vec![Decoded::Error(v)];
    }
    let mut out = Vec::new();
    let text = candidate_text(&v);
    if !text.is_empty() {
        out.push(Decoded::Text(text));
    }
    if let Some(um) = v.get("usageMetadata") {
        *usage = Some(usage_from(um));
    }
    if let Some(r) = v.pointer("/candidates/0/finishReason").and_then(Value::as_str) {
        out.push(Decoded::Finish(finish_reason_from_gemini(r).to_string()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixture_response_bills_thoughts_as_output() {
        let body = include_str!("../../../fixtures/gemini/generateContent.response.json");
        let out = parse_response(serde_json::from_str(body).unwrap()).unwrap();
        assert_eq!(out.usage, Usage { input: 31, output: 26 + 186, ..Usage::default() });
        assert_eq!(out.model, "gemini-2.5-flash");
    }

    #[test]
    fn fixture_stream_keeps_last_cumulative_usage() {
        let sse = include_bytes!("../../../fixtures/gemini/streamGenerateContent.sse");
        let mut p = crate::sse::SseParser::new();
        let mut usage = None;
        let mut text = String::new();
        let mut finished = false;
        for ev in p.push(sse) {
            for d in decode_event(&ev, &mut usage) {
                match d {
                    Decoded::Text(t) => text.push_str(&t),
                    Decoded::Finish(_) => finished = true,
                    _ => {}
                }
            }
        }
        assert!(finished);
        assert!(text.ends_with("with the new key."));
        assert_eq!(usage, Some(Usage { input: 31, output: 26 + 186, ..Usage::default() }));
    }

    #[test]
    fn stream_url_uses_alt_sse_and_header_auth() {
        let r = crate::chat::parse_native(br#"{"provider":"google","model":"gemini-2.5-flash","messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"yo"},{"role":"user","content":"?"}],"stream":true}"#).unwrap();
        let up = build_request(&r, 64, &Endpoint { base_url: "http://m/gemini".into(), api_key: "AIza".into() });
        assert_eq!(up.url, "http://m/gemini/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse");
        let b: Value = serde_json::from_str(&up.body).unwrap();
        assert_eq!(b["contents"][1]["role"], "model");
        assert_eq!(b["generationConfig"]["maxOutputTokens"], 64);
    }
}
