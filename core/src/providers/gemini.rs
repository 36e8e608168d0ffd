//! Google Gemini `streamGenerateContent?alt=sse` and `generateContent`.
//!
//! `usageMetadata` is on every stream chunk and cumulative; `promptTokenCount` includes
//! `cachedContentTokenCount`; billable output is `candidatesTokenCount + thoughtsTokenCount`
//! (thoughts are not inside candidates). `maxOutputTokens` bounds thoughts too. The stream has no
//! terminator: it ends after the chunk with a `finishReason`.

use super::decoded::{split_call_id, Decoded, GATEWAY_ID_PREFIX};
use super::{finish_reason_from_gemini, join, ChatWire, Endpoint};
use crate::chat::images::{media_type_from_url, ImageSource};
use crate::chat::messages::{Message, Part, Role};
use crate::chat::options::{Effort, ResponseFormat, ToolChoice};
use crate::chat::ChatRequest;
use crate::product::UpstreamRequest;
use crate::usage::{u, Usage};
use serde_json::{json, Value};

pub struct Gemini;

impl ChatWire for Gemini {
    fn served_tier(&self, v: &Value) -> Option<String> {
        v.pointer("/usageMetadata/serviceTier").and_then(Value::as_str).map(str::to_string)
    }

    fn is_standard_tier(&self, tier: &str) -> bool {
        tier.eq_ignore_ascii_case("standard")
    }

    /// `modelVersion`, without a `models/` prefix.
    fn served_model(&self, v: &Value) -> Option<String> {
        v.get("modelVersion").and_then(Value::as_str).map(|m| m.strip_prefix("models/").unwrap_or(m).to_string())
    }

    fn build_request(&self, req: &ChatRequest, max_tokens: u64, ep: &Endpoint) -> UpstreamRequest {
        let mut body = json!({ "contents": contents(&req.messages), "generationConfig": generation_config(req, max_tokens) });
        if let Some(sys) = &req.system {
            body["systemInstruction"] = json!({"parts": [{"text": sys}]});
        }
        let a = &req.agent;
        if !a.tools.is_empty() {
            // `parametersJsonSchema` takes the JSON Schema as the client wrote it (`$ref`,
            // `additionalProperties`, ...), where `parameters` takes only an OpenAPI subset.
            let decls: Vec<Value> = a
                .tools
                .iter()
                .map(|t| {
                    let mut d = json!({"name": t.name, "parametersJsonSchema": t.parameters});
                    if let Some(desc) = &t.description {
                        d["description"] = json!(desc);
                    }
                    d
                })
                .collect();
            body["tools"] = json!([{ "functionDeclarations": decls }]);
        }
        if let Some(choice) = &a.tool_choice {
            let config = match choice {
                ToolChoice::Auto => json!({"mode": "AUTO"}),
                ToolChoice::None => json!({"mode": "NONE"}),
                ToolChoice::Required => json!({"mode": "ANY"}),
                ToolChoice::Named(n) => json!({"mode": "ANY", "allowedFunctionNames": [n]}),
            };
            body["toolConfig"] = json!({ "functionCallingConfig": config });
        }
        let method = if req.stream { "streamGenerateContent?alt=sse" } else { "generateContent" };
        let url = join(&ep.base_url, &format!("/v1beta/models/{}:{method}", req.model));
        UpstreamRequest::json(url, vec![("x-goog-api-key".into(), ep.api_key.expose().to_string())], &body)
    }

    fn decode(&self, _name: Option<&str>, v: &Value, usage: &mut Option<Usage>) -> Vec<Decoded> {
        if v.get("error").is_some() {
            return vec![Decoded::Error(v.clone())];
        }
        let mut out = candidate_parts(v);
        if let Some(um) = v.get("usageMetadata") {
            *usage = Some(usage_from(um));
        }
        if let Some(r) = v.pointer("/candidates/0/finishReason").and_then(Value::as_str) {
            out.push(Decoded::Finish(finish_reason_from_gemini(r).to_string()));
        }
        out
    }

    /// A whole answer has the shape of one stream chunk; its usage is the final one.
    fn decode_whole(&self, v: &Value, usage: &mut Option<Usage>) -> Vec<Decoded> {
        let mut out = self.decode(None, v, usage);
        if usage.is_some() && v.get("error").is_none() {
            out.push(Decoded::FinalUsage);
        }
        out
    }

    fn final_usage_on_finish(&self) -> bool {
        true
    }
}

fn generation_config(req: &ChatRequest, max_tokens: u64) -> Value {
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
    match &req.agent.response_format {
        Some(ResponseFormat::JsonObject) => gen["responseMimeType"] = json!("application/json"),
        Some(ResponseFormat::JsonSchema { schema, .. }) => {
            gen["responseMimeType"] = json!("application/json");
            // The JSON Schema as written (Gemini's `responseJsonSchema`), like the tools above.
            gen["responseJsonSchema"] = schema.clone();
        }
        Some(ResponseFormat::Text) | None => {}
    }
    if let Some(r) = req.media_resolution().wire() {
        gen["mediaResolution"] = json!(r);
    }
    if let Some(t) = req.agent.effort.map(|e| thinking_config(&req.model, e)) {
        gen["thinkingConfig"] = t;
    }
    gen
}

/// Gemini 2.5 takes a thinking budget in tokens (Pro cannot switch thinking off: 128 is its
/// least); Gemini 3 takes a level (Pro knows low and high, Flash also minimal and medium).
fn thinking_config(model: &str, e: Effort) -> Value {
    let pro = model.contains("pro");
    if model.starts_with("gemini-2") {
        let budget = match e {
            Effort::None if pro => 128,
            Effort::None => 0,
            Effort::Minimal => 512,
            Effort::Low => 1024,
            Effort::Medium => 8192,
            Effort::XHigh if pro => 32_768,
            Effort::High | Effort::XHigh => 24_576,
        };
        return json!({ "thinkingBudget": budget });
    }
    let level = match (e, pro) {
        (Effort::None | Effort::Minimal | Effort::Low, true) => "low",
        (_, true) => "high",
        (Effort::None | Effort::Minimal, false) => "minimal",
        (Effort::Low, false) => "low",
        (Effort::Medium, false) => "medium",
        (Effort::High | Effort::XHigh, false) => "high",
    };
    json!({ "thinkingLevel": level })
}

/// The provider's id of a call, if it had one (the gateway's own ids are not sent back).
fn provider_call_id(id: &str) -> Option<&str> {
    Some(split_call_id(id).0).filter(|b| !b.starts_with(GATEWAY_ID_PREFIX))
}

fn part(p: &Part) -> Option<Value> {
    Some(match p {
        Part::Text(t) if t.is_empty() => return None,
        Part::Thinking { .. } => return None,
        Part::Text(t) => json!({"text": t}),
        Part::Image(i) => match &i.source {
            ImageSource::Base64 { media_type, data } => json!({"inlineData": {"mimeType": media_type, "data": data}}),
            ImageSource::Url(u) => json!({"fileData": {"mimeType": media_type_from_url(u).unwrap_or("image/jpeg"), "fileUri": u}}),
        },
        Part::ToolCall(c) => {
            let mut fc = json!({"name": c.name, "args": if c.arguments.is_object() { c.arguments.clone() } else { json!({}) }});
            if let Some(id) = provider_call_id(&c.id) {
                fc["id"] = json!(id);
            }
            let mut part = json!({ "functionCall": fc });
            // Gemini 3 refuses a replayed call without the signature it gave it.
            if let (_, Some(sig)) = split_call_id(&c.id) {
                part["thoughtSignature"] = json!(sig);
            }
            part
        }
        Part::ToolResult(r) => {
            let text = r.text();
            // `response` must be an object: a JSON object result as is, anything else wrapped.
            let response = match serde_json::from_str::<Value>(&text) {
                Ok(v @ Value::Object(_)) if !r.is_error => v,
                _ if r.is_error => json!({ "error": text }),
                _ => json!({ "content": text }),
            };
            let mut fr = json!({"name": r.name, "response": response});
            if let Some(id) = provider_call_id(&r.call_id) {
                fr["id"] = json!(id);
            }
            json!({ "functionResponse": fr })
        }
    })
}

/// `contents`: user and model turns; turns of one role in a row merged, empty ones dropped.
/// Function responses travel in user turns.
fn contents(list: &[Message]) -> Vec<Value> {
    let mut out: Vec<(Role, Vec<Value>)> = Vec::new();
    for m in list {
        let parts: Vec<Value> = m.parts.iter().filter_map(part).collect();
        if parts.is_empty() {
            continue;
        }
        match out.last_mut() {
            Some((role, prev)) if *role == m.role => prev.extend(parts),
            _ => out.push((m.role, parts)),
        }
    }
    out.into_iter().map(|(role, parts)| json!({"role": if role == Role::Assistant { "model" } else { "user" }, "parts": parts})).collect()
}

pub fn usage_from(v: &Value) -> Usage {
    let prompt = u(v, "promptTokenCount") + u(v, "toolUsePromptTokenCount");
    let cached = u(v, "cachedContentTokenCount");
    Usage { input: prompt.saturating_sub(cached), cached_input: cached, cache_write_5m: 0, cache_write_1h: 0, output: u(v, "candidatesTokenCount") + u(v, "thoughtsTokenCount") }
}

/// The answer's text and function calls, in order. Gemini sends each call whole (its `args`
/// an object), so a call is a start and one argument fragment.
fn candidate_parts(v: &Value) -> Vec<Decoded> {
    let mut out = Vec::new();
    let mut text = String::new();
    for p in v.pointer("/candidates/0/content/parts").and_then(Value::as_array).into_iter().flatten() {
        // Thought summaries are not part of the answer.
        if p.get("thought").and_then(Value::as_bool) == Some(true) {
            continue;
        }
        if let Some(t) = p.get("text").and_then(Value::as_str) {
            text.push_str(t);
        }
        if let Some(fc) = p.get("functionCall") {
            if !text.is_empty() {
                out.push(Decoded::Text(std::mem::take(&mut text)));
            }
            out.push(Decoded::ToolCallStart {
                slot: None,
                id: fc.get("id").and_then(Value::as_str).map(str::to_string),
                name: fc.get("name").and_then(Value::as_str).unwrap_or("").to_string(),
                signature: p.get("thoughtSignature").and_then(Value::as_str).map(str::to_string),
            });
            let args = fc.get("args").filter(|a| a.is_object()).cloned().unwrap_or_else(|| json!({}));
            out.push(Decoded::ToolCallArgs { slot: None, fragment: args.to_string() });
        }
    }
    if !text.is_empty() {
        out.push(Decoded::Text(text));
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

    fn translated(body: Value) -> Value {
        let r = crate::chat::parse_openai(body.to_string().as_bytes()).unwrap();
        serde_json::from_slice(&Gemini.build_request(&r, 900, &Endpoint { base_url: "http://m/gemini".into(), api_key: Secret::new("AIza") }).body).unwrap()
    }

    #[test]
    fn an_openai_tool_loop_becomes_function_calls_and_responses() {
        let png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";
        let b = translated(json!({
            "model": "google/gemini-3.8-flash",
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": [{"type": "text", "text": "weather?"}, {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{png}"), "detail": "low"}}, {"type": "image_url", "image_url": {"url": "https://example.com/sky.JPG?x=1", "detail": "low"}}]},
                {"role": "assistant", "tool_calls": [
                    {"id": "call_gw_req_1_0__thought__c2ln", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                    {"id": "fc_7", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "call_gw_req_1_0__thought__c2ln", "content": "{\"temp_c\":18}"},
                {"role": "tool", "tool_call_id": "fc_7", "content": "no data"},
            ],
            "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather now", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "additionalProperties": false}}},
                      {"type": "function", "function": {"name": "lookup"}}],
            "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
            "response_format": {"type": "json_schema", "json_schema": {"name": "w", "schema": {"type": "object", "properties": {"t": {"type": "string"}}}}},
            "reasoning_effort": "medium",
        }));
        assert_eq!(b["systemInstruction"], json!({"parts": [{"text": "be brief"}]}));
        let c = b["contents"].as_array().unwrap();
        assert_eq!(c[0]["parts"][1], json!({"inlineData": {"mimeType": "image/png", "data": png}}));
        assert_eq!(c[0]["parts"][2], json!({"fileData": {"mimeType": "image/jpeg", "fileUri": "https://example.com/sky.JPG?x=1"}}));
        assert_eq!(c[1]["role"], "model");
        // The gateway's own id is not sent back; the signature it carried is, on its part.
        assert_eq!(c[1]["parts"][0], json!({"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "c2ln"}));
        assert_eq!(c[1]["parts"][1], json!({"functionCall": {"name": "lookup", "args": {}, "id": "fc_7"}}));
        assert_eq!(c[2]["role"], "user");
        assert_eq!(c[2]["parts"][0], json!({"functionResponse": {"name": "get_weather", "response": {"temp_c": 18}}}));
        assert_eq!(c[2]["parts"][1], json!({"functionResponse": {"name": "lookup", "response": {"content": "no data"}, "id": "fc_7"}}));
        assert_eq!(b["tools"][0]["functionDeclarations"][0], json!({"name": "get_weather", "description": "Weather now", "parametersJsonSchema": {"type": "object", "properties": {"city": {"type": "string"}}, "additionalProperties": false}}));
        assert_eq!(b["toolConfig"], json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}}));
        let g = &b["generationConfig"];
        assert_eq!(g["responseMimeType"], "application/json");
        assert_eq!(g["responseJsonSchema"], json!({"type": "object", "properties": {"t": {"type": "string"}}}));
        assert_eq!(g["thinkingConfig"], json!({"thinkingLevel": "medium"}));
        assert_eq!(g["mediaResolution"], "MEDIA_RESOLUTION_LOW", "every image asked for low detail");
        assert_eq!(g["maxOutputTokens"], 900);
    }

    #[test]
    fn thinking_maps_to_a_budget_on_gemini_2_and_a_level_on_gemini_3() {
        let b = |model: &str, e: &str| translated(json!({"model": model, "reasoning_effort": e, "response_format": {"type": "json_object"}, "messages": [{"role": "user", "content": "x"}]}))["generationConfig"].clone();
        assert_eq!(b("google/gemini-2.5-flash", "none")["thinkingConfig"], json!({"thinkingBudget": 0}));
        assert_eq!(b("google/gemini-2.5-pro", "none")["thinkingConfig"], json!({"thinkingBudget": 128}));
        assert_eq!(b("google/gemini-2.5-flash", "high")["thinkingConfig"], json!({"thinkingBudget": 24576}));
        assert_eq!(b("google/gemini-3.1-pro-preview", "medium")["thinkingConfig"], json!({"thinkingLevel": "high"}));
        assert_eq!(b("google/gemini-3.8-flash", "minimal")["thinkingConfig"], json!({"thinkingLevel": "minimal"}));
        let g = b("google/gemini-2.5-flash", "low");
        assert_eq!((g["responseMimeType"].clone(), g.get("responseJsonSchema")), (json!("application/json"), None));
    }

    #[test]
    fn function_calls_decode_whole_with_their_signature() {
        let mut usage = None;
        let mut decoded = Vec::new();
        for ev in crate::sse::SseParser::new().push(include_bytes!("../../../fixtures/gemini/streamGenerateContent.tools.sse")) {
            decoded.extend(Gemini.decode(None, &serde_json::from_str(&ev.data).unwrap(), &mut usage));
        }
        assert_eq!(
            decoded,
            vec![
                Decoded::ToolCallStart { slot: None, id: None, name: "get_weather".into(), signature: Some("CpwCAdHtim9kQ1xR7sYtL3vM2nP8qWzE5aB4cD6eF0gH".into()) },
                Decoded::ToolCallArgs { slot: None, fragment: "{\"city\":\"Paris\"}".into() },
                Decoded::ToolCallStart { slot: None, id: None, name: "get_weather".into(), signature: None },
                Decoded::ToolCallArgs { slot: None, fragment: "{\"city\":\"Rome\"}".into() },
                Decoded::Finish("stop".into()),
            ]
        );
        assert_eq!(usage, Some(Usage { input: 64, output: 30 + 58, ..Usage::default() }));
    }

    #[test]
    fn urls_use_alt_sse_for_streams_and_header_auth() {
        let r = crate::chat::parse_native(br#"{"provider":"google","model":"gemini-2.5-flash","messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"yo"},{"role":"user","content":"?"}]}"#).unwrap();
        let up = Gemini.build_request(&r, 64, &Endpoint { base_url: "http://m/gemini".into(), api_key: Secret::new("AIza") });
        assert_eq!(up.url, "http://m/gemini/v1beta/models/gemini-2.5-flash:generateContent", "a plain call asks for a whole answer");
        let b: Value = serde_json::from_slice(&up.body).unwrap();
        assert_eq!(b["contents"][1]["role"], "model");
        assert_eq!(b["generationConfig"]["maxOutputTokens"], 64);
        let r = crate::chat::parse_native(br#"{"provider":"google","model":"gemini-2.5-flash","stream":true,"messages":[{"role":"user","content":"hi"}]}"#).unwrap();
        let up = Gemini.build_request(&r, 64, &Endpoint { base_url: "http://m/gemini".into(), api_key: Secret::new("AIza") });
        assert_eq!(up.url, "http://m/gemini/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse");
    }

    #[test]
    fn a_whole_answer_is_one_chunk_with_the_final_usage() {
        let v: Value = serde_json::from_str(include_str!("../../../fixtures/gemini/generateContent.response.json")).unwrap();
        let mut usage = None;
        let d = Gemini.decode_whole(&v, &mut usage);
        assert!(matches!(&d[0], Decoded::Text(t) if t.ends_with("with the new key.")));
        assert_eq!(&d[1..], &[Decoded::Finish("stop".into()), Decoded::FinalUsage]);
        assert_eq!(usage, Some(Usage { input: 31, output: 26 + 186, ..Usage::default() }));
    }
}
