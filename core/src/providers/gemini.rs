//! Google Gemini `streamGenerateContent?alt=sse`.
//!
//! `usageMetadata` is on every stream chunk and cumulative; `promptTokenCount` includes
//! `cachedContentTokenCount`; billable output is `candidatesTokenCount + thoughtsTokenCount`
//! (thoughts are not inside candidates). `maxOutputTokens` bounds thoughts too. The stream has no
//! terminator: it ends after the chunk with a `finishReason`.

use super::decoded::Decoded;
use super::{finish_reason_from_gemini, join, ChatWire, Endpoint};
use crate::chat::ChatRequest;
use crate::product::UpstreamRequest;
use crate::usage::{u, Usage};
use serde_json::{json, Value};

pub struct Gemini;

impl ChatWire for Gemini {
    fn build_request(&self, req: &ChatRequest, max_tokens: u64, ep: &Endpoint) -> UpstreamRequest {
        let contents: Vec<Value> = req
            .messages
            .iter()
            .map(|m| {
                let role = if m.role == "assistant" { "model" } else { "user" };
                json!({"role": role, "parts": [{"text": m.content}]})
            })
            .collect();
        let s = &req.sampling;
        let mut gen = json!({ "maxOutputTokens": max_tokens });
        for (k, v) in [("temperature", s.temperature), ("topP", s.top_p), ("presencePenalty", s.presence_penalty), ("frequencyPenalty", s.frequency_penalty)] {
            if let Some(x) = v {
                gen[k] = json!(x);
            }
        }
        if let Some(seed) = s.seed {
            gen["seed"] = json!(seed);
        }
        if !s.stop.is_empty() {
            gen["stopSequences"] = json!(s.stop);
        }
        let mut body = json!({ "contents": contents, "generationConfig": gen });
        if let Some(sys) = &req.system {
            body["systemInstruction"] = json!({"parts": [{"text": sys}]});
        }
        let url = join(&ep.base_url, &format!("/v1beta/models/{}:streamGenerateContent?alt=sse", req.model));
        UpstreamRequest::json(url, vec![("x-goog-api-key".into(), ep.api_key.expose().to_string())], &body)
    }

    fn decode(&self, _name: Option<&str>, v: &Value, usage: &mut Option<Usage>) -> Vec<Decoded> {
        if v.get("error").is_some() {
            return vec![Decoded::Error(v.clone())];
        }
        let mut out = Vec::new();
        let text = candidate_text(v);
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

    fn final_usage_on_finish(&self) -> bool {
        true
    }
}

pub fn usage_from(v: &Value) -> Usage {
    let prompt = u(v, "promptTokenCount") + u(v, "toolUsePromptTokenCount");
    let cached = u(v, "cachedContentTokenCount");
    Usage { input: prompt.saturating_sub(cached), cached_input: cached, cache_write_5m: 0, cache_write_1h: 0, output: u(v, "candidatesTokenCount") + u(v, "thoughtsTokenCount") }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    #[test]
    fn fixture_stream_keeps_last_cumulative_usage() {
        let mut usage = None;
        let mut text = String::new();
        let mut finished = false;
        for ev in crate::sse::SseParser::new().push(include_bytes!("../../../fixtures/gemini/streamGenerateContent.sse")) {
            for d in Gemini.decode(None, &serde_json::from_str(&ev.data).unwrap(), &mut usage) {
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
    fn the_unstreamed_fixture_bills_thoughts_as_output() {
        let v: Value = serde_json::from_str(include_str!("../../../fixtures/gemini/generateContent.response.json")).unwrap();
        assert_eq!(usage_from(&v["usageMetadata"]), Usage { input: 31, output: 26 + 186, ..Usage::default() });
    }

    #[test]
    fn stream_url_uses_alt_sse_and_header_auth() {
        let r = crate::chat::parse_native(br#"{"provider":"google","model":"gemini-2.5-flash","messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"yo"},{"role":"user","content":"?"}]}"#).unwrap();
        let up = Gemini.build_request(&r, 64, &Endpoint { base_url: "http://m/gemini".into(), api_key: Secret::new("AIza") });
        assert_eq!(up.url, "http://m/gemini/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse");
        let b: Value = serde_json::from_slice(&up.body).unwrap();
        assert_eq!(b["contents"][1]["role"], "model");
        assert_eq!(b["generationConfig"]["maxOutputTokens"], 64);
    }
}
