//! Anthropic Messages: wire mapping, usage, stream events and whole messages.
//!
//! `input_tokens` excludes cache reads and writes; streamed `message_delta.usage` is cumulative
//! and may repeat input/cache counts (2026 captures) or carry only `output_tokens` (older API).

use super::decoded::Decoded;
use super::{finish_reason_from_anthropic, join, ChatWire, Endpoint};
use crate::chat::images::{Image, ImageSource};
use crate::chat::messages::{Message, Part, Role};
use crate::chat::options::{anthropic_budget, anthropic_budget_thinking, Effort, ResponseFormat, ToolChoice};
use crate::chat::{ChatRequest, Route};
use crate::product::UpstreamRequest;
use crate::usage::{u, Usage};
use serde_json::{json, Map, Value};

pub const API_VERSION: &str = "2023-06-01";

pub struct Anthropic;

impl ChatWire for Anthropic {
    fn build_request(&self, req: &ChatRequest, max_tokens: u64, ep: &Endpoint) -> UpstreamRequest {
        let mut body: Map<String, Value> = if req.route == Route::AnthropicCompatible { req.raw.clone() } else { translate(req, max_tokens) };
        body.insert("model".into(), json!(req.model));
        body.insert("max_tokens".into(), json!(max_tokens));
        body.insert("stream".into(), json!(req.stream));
        // The standard tier, whose list prices the table holds (`auto` may use Priority Tier).
        body.insert("service_tier".into(), json!("standard_only"));
        let mut headers = vec![("x-api-key".into(), ep.api_key.expose().to_string()), ("anthropic-version".into(), API_VERSION.into())];
        // Only the allowlisted betas (`chat::betas`); none on translated routes.
        headers.extend(req.betas.header());
        UpstreamRequest::json(join(&ep.base_url, "/v1/messages"), headers, &Value::Object(body))
    }

    fn served_tier(&self, v: &Value) -> Option<String> {
        v.pointer("/message/usage/service_tier").or_else(|| v.pointer("/usage/service_tier")).and_then(Value::as_str).map(str::to_string)
    }

    fn is_standard_tier(&self, tier: &str) -> bool {
        tier == "standard"
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
            "content_block_start" => match v.pointer("/content_block/type").and_then(Value::as_str) {
                Some("tool_use") => {
                    let block = &v["content_block"];
                    vec![Decoded::ToolCallStart {
                        slot: v.get("index").and_then(Value::as_u64),
                        id: block.get("id").and_then(Value::as_str).map(str::to_string),
                        name: block.get("name").and_then(Value::as_str).unwrap_or("").to_string(),
                        signature: None,
                    }]
                }
                Some("redacted_thinking") => v.pointer("/content_block/data").and_then(Value::as_str).map(|d| vec![Decoded::RedactedReasoning(d.to_string())]).unwrap_or_default(),
                _ => vec![],
            },
            "content_block_delta" => match v.pointer("/delta/type").and_then(Value::as_str) {
                Some("text_delta") => v.pointer("/delta/text").and_then(Value::as_str).map(|t| vec![Decoded::Text(t.to_string())]).unwrap_or_default(),
                Some("thinking_delta") => v.pointer("/delta/thinking").and_then(Value::as_str).map(|t| vec![Decoded::Reasoning(t.to_string())]).unwrap_or_default(),
                Some("signature_delta") => v.pointer("/delta/signature").and_then(Value::as_str).map(|s| vec![Decoded::ReasoningSignature(s.to_string())]).unwrap_or_default(),
                Some("input_json_delta") => v
                    .pointer("/delta/partial_json")
                    .and_then(Value::as_str)
                    .filter(|f| !f.is_empty())
                    .map(|f| vec![Decoded::ToolCallArgs { slot: v.get("index").and_then(Value::as_u64), fragment: f.to_string() }])
                    .unwrap_or_default(),
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

    fn decode_whole(&self, v: &Value, usage: &mut Option<Usage>) -> Vec<Decoded> {
        let mut out = Vec::new();
        for (i, block) in v.get("content").and_then(Value::as_array).into_iter().flatten().enumerate() {
            match block.get("type").and_then(Value::as_str) {
                Some("text") => {
                    if let Some(t) = block.get("text").and_then(Value::as_str).filter(|t| !t.is_empty()) {
                        out.push(Decoded::Text(t.to_string()));
                    }
                }
                Some("tool_use") => {
                    let slot = Some(i as u64);
                    let id = block.get("id").and_then(Value::as_str).map(str::to_string);
                    let name = block.get("name").and_then(Value::as_str).unwrap_or("").to_string();
                    out.push(Decoded::ToolCallStart { slot, id, name, signature: None });
                    let input = block.get("input").map_or_else(|| "{}".to_string(), Value::to_string);
                    out.push(Decoded::ToolCallArgs { slot, fragment: input });
                }
                _ => {}
            }
        }
        if let Some(s) = v.get("stop_reason").and_then(Value::as_str) {
            out.push(Decoded::Finish(finish_reason_from_anthropic(s).to_string()));
        }
        if let Some(uv) = v.get("usage").filter(|x| x.is_object()) {
            *usage = Some(merge_usage(Usage::default(), uv));
            out.push(Decoded::FinalUsage);
        }
        out
    }

    fn text_delta<'a>(&self, name: Option<&str>, data: &'a str) -> Option<std::borrow::Cow<'a, str>> {
        if name != Some("content_block_delta") {
            return None;
        }
        let ev: BlockDelta<'a> = serde_json::from_str(data).ok()?;
        (ev.kind == "content_block_delta" && ev.delta.kind == "text_delta").then_some(ev.delta.text?)
    }

    /// The events that carry usage (`message_start`, `message_delta`), the end and errors; the
    /// content events in between pass through unparsed.
    fn billing_event(&self, name: Option<&str>, _data: &str) -> bool {
        !matches!(name, Some("content_block_start" | "content_block_delta" | "content_block_stop" | "ping"))
    }
}

/// A `content_block_delta` event, as far as a text delta needs (strings borrowed when unescaped).
#[derive(serde::Deserialize)]
struct BlockDelta<'a> {
    #[serde(rename = "type", borrow)]
    kind: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    delta: TextDelta<'a>,
}

#[derive(serde::Deserialize)]
struct TextDelta<'a> {
    #[serde(rename = "type", borrow)]
    kind: std::borrow::Cow<'a, str>,
    #[serde(borrow, default)]
    text: Option<std::borrow::Cow<'a, str>>,
}

/// A request of another shape in Anthropic's: messages of blocks, tools, tool choice, structured
/// output and thinking.
fn translate(req: &ChatRequest, max_tokens: u64) -> Map<String, Value> {
    let mut m = Map::new();
    if let Some(s) = &req.system {
        m.insert("system".into(), json!(s));
    }
    m.insert("messages".into(), Value::Array(messages(&req.messages)));
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
    let a = &req.agent;
    if !a.tools.is_empty() {
        let tools: Vec<Value> = a
            .tools
            .iter()
            .map(|t| {
                let mut d = json!({"name": t.name, "input_schema": t.parameters});
                if let Some(desc) = &t.description {
                    d["description"] = json!(desc);
                }
                d
            })
            .collect();
        m.insert("tools".into(), Value::Array(tools));
    }
    if let Some(tc) = tool_choice(a.tool_choice.as_ref(), a.parallel_tool_calls) {
        m.insert("tool_choice".into(), tc);
    }
    let mut output_config = Map::new();
    // Claude's native structured output (`output_config.format`, GA on Claude 4.5 and later):
    // the answer is text constrained to the schema, as OpenAI's `json_schema` is.
    if let Some(ResponseFormat::JsonSchema { schema, .. }) = &a.response_format {
        output_config.insert("format".into(), json!({"type": "json_schema", "schema": schema}));
    }
    match a.effort {
        None | Some(Effort::None) => {}
        Some(e) if anthropic_budget_thinking(&req.model) => {
            if let Some(b) = anthropic_budget(e, max_tokens) {
                m.insert("thinking".into(), json!({"type": "enabled", "budget_tokens": b}));
            }
        }
        // Claude 4.6 and later think adaptively, as hard as the effort says.
        Some(e) => {
            m.insert("thinking".into(), json!({"type": "adaptive"}));
            let effort = match e {
                Effort::XHigh => "max",
                Effort::High => "high",
                Effort::Medium => "medium",
                _ => "low",
            };
            output_config.insert("effort".into(), json!(effort));
        }
    }
    if !output_config.is_empty() {
        m.insert("output_config".into(), Value::Object(output_config));
    }
    m
}

fn tool_choice(choice: Option<&ToolChoice>, parallel: Option<bool>) -> Option<Value> {
    let mut v = match choice {
        None if parallel == Some(false) => json!({"type": "auto"}),
        None => return None,
        Some(ToolChoice::Auto) => json!({"type": "auto"}),
        Some(ToolChoice::None) => return Some(json!({"type": "none"})),
        Some(ToolChoice::Required) => json!({"type": "any"}),
        Some(ToolChoice::Named(n)) => json!({"type": "tool", "name": n}),
    };
    if parallel == Some(false) {
        v["disable_parallel_tool_use"] = json!(true);
    }
    Some(v)
}

fn image_block(i: &Image) -> Value {
    match &i.source {
        ImageSource::Url(u) => json!({"type": "image", "source": {"type": "url", "url": u}}),
        ImageSource::Base64 { media_type, data } => json!({"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}),
    }
}

fn blocks(parts: &[Part]) -> Vec<Value> {
    let mut out = Vec::new();
    for p in parts {
        match p {
            Part::Text(t) if t.is_empty() => {}
            Part::Text(t) => out.push(json!({"type": "text", "text": t})),
            Part::Image(i) => out.push(image_block(i)),
            Part::ToolCall(c) => out.push(json!({"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments})),
            Part::Thinking { text, redacted: true, .. } => out.push(json!({"type": "redacted_thinking", "data": text})),
            Part::Thinking { text, signature, .. } => out.push(json!({"type": "thinking", "thinking": text, "signature": signature})),
            Part::ToolResult(r) => {
                // Text results as a string (the common shape); results with images as blocks.
                let content = if r.content.iter().all(|c| matches!(c, Part::Text(_))) { json!(r.text()) } else { Value::Array(blocks(&r.content)) };
                let mut b = json!({"type": "tool_result", "tool_use_id": r.call_id, "content": content});
                if r.is_error {
                    b["is_error"] = json!(true);
                }
                out.push(b);
            }
        }
    }
    out
}

/// Messages of blocks; turns of one role in a row are merged (tool results first, as Claude
/// requires them at the start of the user turn that follows the calls), empty turns dropped.
fn messages(list: &[Message]) -> Vec<Value> {
    let mut out: Vec<(Role, Vec<Value>)> = Vec::new();
    for msg in list {
        let b = blocks(&msg.parts);
        if b.is_empty() {
            continue;
        }
        match out.last_mut() {
            Some((role, prev)) if *role == msg.role => prev.extend(b),
            _ => out.push((msg.role, b)),
        }
    }
    out.into_iter().map(|(role, content)| json!({"role": role.as_str(), "content": content})).collect()
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
        // When the split does not add up to the total, bill the rest at the 1h rate (the
        // dearer: an unknown write is never billed below what it may have cost).
        let total = u(v, "cache_creation_input_tokens");
        let split_sum = out.cache_write_5m + out.cache_write_1h;
        if total > split_sum {
            out.cache_write_1h += total - split_sum;
        }
    } else if v.get("cache_creation_input_tokens").is_some() {
        let total = u(v, "cache_creation_input_tokens");
        // No split reported: keep an earlier split if it matches, else bill all at the 1h rate
        // (the dearer of the two; the answer does not say which was written).
        if out.cache_write_5m + out.cache_write_1h != total {
            out.cache_write_5m = 0;
            out.cache_write_1h = total;
        }
    }
    if v.get("output_tokens").is_some() {
        out.output = u(v, "output_tokens");
    }
    out
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
        assert_eq!((b["system"].clone(), b["max_tokens"].clone(), b["stream"].clone()), (json!("s"), json!(100), json!(false)), "a plain call asks for a whole message");
    }

    const PNG_1X1: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";

    fn translated(body: Value, max_tokens: u64) -> Value {
        let r = crate::chat::parse_openai(body.to_string().as_bytes()).unwrap();
        serde_json::from_slice(&Anthropic.build_request(&r, max_tokens, &Endpoint { base_url: "http://m".into(), api_key: Secret::new("k") }).body).unwrap()
    }

    #[test]
    fn an_openai_tool_loop_becomes_tool_use_and_tool_result_blocks() {
        let b = translated(
            json!({
                "model": "anthropic/claude-haiku-4-5",
                "messages": [
                    {"role": "system", "content": "be brief"},
                    {"role": "user", "content": [{"type": "text", "text": "weather here?"}, {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{PNG_1X1}")}}, {"type": "image_url", "image_url": {"url": "https://example.com/sky.jpg"}}]},
                    {"role": "assistant", "content": null, "tool_calls": [
                        {"id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                        {"id": "toolu_2", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Rome\"}"}}]},
                    {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"},
                    {"role": "tool", "tool_call_id": "toolu_2", "content": "21C"},
                    {"role": "user", "content": "and tomorrow?"},
                ],
                "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather now", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}],
                "tool_choice": "required",
                "parallel_tool_calls": false,
                "response_format": {"type": "json_schema", "json_schema": {"name": "w", "schema": {"type": "object", "properties": {"t": {"type": "string"}}}}},
                "reasoning_effort": "medium",
                "temperature": 1,
            }),
            5000,
        );
        assert_eq!(b["system"], "be brief");
        let m = b["messages"].as_array().unwrap();
        assert_eq!(m.len(), 3, "the tool results and the next user text merge into one user turn: {m:?}");
        assert_eq!(m[0]["content"][1], json!({"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_1X1}}));
        assert_eq!(m[0]["content"][2], json!({"type": "image", "source": {"type": "url", "url": "https://example.com/sky.jpg"}}));
        assert_eq!(m[1], json!({"role": "assistant", "content": [
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "toolu_2", "name": "get_weather", "input": {"city": "Rome"}}]}));
        assert_eq!(m[2]["content"], json!([
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"},
            {"type": "tool_result", "tool_use_id": "toolu_2", "content": "21C"},
            {"type": "text", "text": "and tomorrow?"}]));
        assert_eq!(b["tools"], json!([{"name": "get_weather", "description": "Weather now", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]));
        assert_eq!(b["tool_choice"], json!({"type": "any", "disable_parallel_tool_use": true}));
        assert_eq!(b["output_config"], json!({"format": {"type": "json_schema", "schema": {"type": "object", "properties": {"t": {"type": "string"}}}}}));
        assert_eq!(b["thinking"], json!({"type": "enabled", "budget_tokens": 4096}), "Haiku 4.5 takes a budget below max_tokens");
        assert_eq!((b["max_tokens"].clone(), b["stream"].clone()), (json!(5000), json!(false)));
    }

    #[test]
    fn later_claude_models_think_adaptively_and_budgets_fit_below_max_tokens() {
        let body = |model: &str, effort: &str| json!({"model": model, "reasoning_effort": effort, "messages": [{"role": "user", "content": "hi"}]});
        let b = translated(body("anthropic/claude-sonnet-4-6", "xhigh"), 2000);
        assert_eq!((b["thinking"].clone(), b["output_config"].clone()), (json!({"type": "adaptive"}), json!({"effort": "max"})));
        let b = translated(body("anthropic/claude-haiku-4-5", "high"), 2000);
        assert_eq!(b["thinking"], json!({"type": "enabled", "budget_tokens": 1999}));
        let b = translated(body("anthropic/claude-opus-5-5", "none"), 2000);
        assert!(b.get("thinking").is_none() && b.get("output_config").is_none());
        let b = translated(json!({"model": "anthropic/claude-haiku-4-5", "tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": "none", "messages": [{"role": "user", "content": "hi"}]}), 50);
        assert_eq!(b["tool_choice"], json!({"type": "none"}));
        assert_eq!(b["tools"][0]["input_schema"], json!({"type": "object", "properties": {}}));
    }

    #[test]
    fn tool_use_blocks_decode_to_calls_with_json_fragments() {
        let mut usage = None;
        let mut decoded = Vec::new();
        for (name, v) in stream_events(include_bytes!("../../../fixtures/anthropic/messages.tools.stream.sse")) {
            decoded.extend(Anthropic.decode(name.as_deref(), &v, &mut usage));
        }
        assert!(decoded.contains(&Decoded::ToolCallStart { slot: Some(1), id: Some("toolu_01Hx7KpQ2mWv9LtR3nZc8YbD".into()), name: "get_weather".into(), signature: None }));
        let args: String = decoded.iter().filter_map(|d| if let Decoded::ToolCallArgs { fragment, .. } = d { Some(fragment.as_str()) } else { None }).collect();
        assert_eq!(args, "{\"city\": \"Paris\"}");
        assert!(decoded.contains(&Decoded::Finish("tool_calls".into())));
        assert_eq!(usage, Some(Usage { input: 412, output: 58, ..Usage::default() }));
    }

    #[test]
    fn cache_writes_the_answer_does_not_split_are_billed_at_the_1h_rate() {
        let unsplit = json!({"input_tokens": 5, "cache_creation_input_tokens": 1000, "output_tokens": 3});
        assert_eq!(merge_usage(Usage::default(), &unsplit), Usage { input: 5, cache_write_1h: 1000, output: 3, ..Usage::default() });
        let partly = json!({"cache_creation_input_tokens": 1000, "cache_creation": {"ephemeral_5m_input_tokens": 400, "ephemeral_1h_input_tokens": 0}});
        assert_eq!(merge_usage(Usage::default(), &partly), Usage { cache_write_5m: 400, cache_write_1h: 600, ..Usage::default() });
    }

    #[test]
    fn text_deltas_decode_without_a_tree_and_other_events_do_not() {
        let d = r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"He said \"hi\""}}"#;
        assert_eq!(Anthropic.text_delta(Some("content_block_delta"), d).as_deref(), Some("He said \"hi\""));
        let args = r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{}"}}"#;
        assert_eq!(Anthropic.text_delta(Some("content_block_delta"), args), None);
        assert_eq!(Anthropic.text_delta(Some("message_delta"), d), None);
        assert_eq!(Anthropic.text_delta(Some("content_block_delta"), "{not json"), None);
    }

    #[test]
    fn a_whole_message_decodes_to_its_text_calls_finish_and_usage() {
        let v: Value = serde_json::from_str(include_str!("../../../fixtures/anthropic/messages.response.json")).unwrap();
        let mut usage = None;
        let d = Anthropic.decode_whole(&v, &mut usage);
        assert!(matches!(&d[0], Decoded::Text(t) if t.starts_with("Go to Settings")));
        assert_eq!(&d[d.len() - 2..], &[Decoded::Finish("stop".into()), Decoded::FinalUsage]);
        assert_eq!(usage, Some(merge_usage(Usage::default(), &v["usage"])));
        let tools = json!({"content": [{"type": "thinking", "thinking": "hm"}, {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}], "stop_reason": "tool_use", "usage": {"input_tokens": 5, "output_tokens": 12}});
        let d = Anthropic.decode_whole(&tools, &mut usage);
        assert_eq!(d[0], Decoded::ToolCallStart { slot: Some(1), id: Some("toolu_1".into()), name: "get_weather".into(), signature: None });
        assert_eq!(d[1], Decoded::ToolCallArgs { slot: Some(1), fragment: "{\"city\":\"Paris\"}".into() });
        assert_eq!(d[2], Decoded::Finish("tool_calls".into()));
        assert_eq!(usage, Some(Usage { input: 5, output: 12, ..Usage::default() }));
    }
}
