//! OpenAI Responses API: `POST /openai/v1/responses`, plain and streamed.
//!
//! Wire format per fixtures/openai/responses.*: a `response` object (`output` items `reasoning`,
//! `message` with `output_text` parts, `function_call`; `usage` with `input_tokens_details.
//! cached_tokens` and `output_tokens_details.reasoning_tokens`); with `"stream": true`, named SSE
//! events (`event: <type>` + `data: {"type": <type>, "sequence_number": n, ...}`):
//! `response.created`, `response.in_progress`, per item `response.output_item.added` (+
//! `response.content_part.added`), `response.output_text.delta` / `response.function_call_
//! arguments.delta` pieces, their `.done`s, `response.output_item.done`, and last
//! `response.completed` (`response.incomplete` when `max_output_tokens` cut the answer). No
//! `[DONE]`. Auth, errors and headers are the Chat Completions mock's (`openai`).
//!
//! # Deterministic usage (tests depend on it)
//!
//! * **Input tokens**: the chat rule (`common::input_tokens`) over the texts of `instructions`
//!   (when present), each `input` item (a string `input` is one item) and each tool definition:
//!   a message's text (string content, or its `input_text`/`output_text` parts joined), a
//!   `function_call`'s name followed by its arguments, a `function_call_output`'s output text, a
//!   `reasoning` item counts as an empty text; a tool counts as its compact JSON. Images add
//!   OpenAI's image tokens (`agent`).
//! * **Output**: the agent rules (`agent`): tool calls when function tools are defined,
//!   `tool_choice` is not `none` and the last item is not a `function_call_output`; JSON for a
//!   `text.format` json_object / json_schema; else the 24-word reply; `max_output_tokens` cuts.
//!   `reasoning.effort` other than `none` adds [`agent::THINKING_TOKENS`] reasoning tokens and a
//!   `reasoning` output item first (with `encrypted_content` when `include` asks for it).
//! * A script's `usage` may set `input_tokens`, `output_tokens`, `cached_tokens`, `reasoning_tokens`.

use serde_json::{json, Value};

use crate::agent::{self, Answer};
use crate::common;
use crate::control::{Script, State};
use crate::http::{Request, Response};
use crate::openai::{check_auth, error, error_for_status, with_headers};

struct Parsed {
    model: String,
    texts: Vec<String>,
    images: u64,
    max_tokens: Option<u64>,
    stream: bool,
    tools: Vec<agent::ToolDef>,
    /// `None`: no calls; `Some(None)`: any tool; `Some(Some(name))`: that tool.
    choice: Option<Option<String>>,
    parallel: bool,
    last_is_output: bool,
    json: Option<Option<Value>>,
    reasoning: bool,
    encrypted: bool,
    request: Value,
}

/// The text of a message's content: a string, or its text parts joined.
fn content_text(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts.iter().filter_map(|p| p.get("text").and_then(Value::as_str)).collect(),
        _ => String::new(),
    }
}

fn item_text(item: &Value) -> String {
    match item.get("type").and_then(Value::as_str).unwrap_or("message") {
        "function_call" => {
            let s = |k: &str| item.get(k).and_then(Value::as_str).unwrap_or("").to_string();
            s("name") + &s("arguments")
        }
        "function_call_output" => content_text(item.get("output")),
        "message" => content_text(item.get("content")),
        _ => String::new(),
    }
}

fn image_tokens(model: &str, items: &[Value]) -> u64 {
    let mut n = 0;
    for item in items {
        for p in item.get("content").and_then(Value::as_array).into_iter().flatten() {
            if p.get("type").and_then(Value::as_str) != Some("input_image") {
                continue;
            }
            let url = p.get("image_url").and_then(Value::as_str).unwrap_or("");
            let inline = url.split_once(";base64,").map(|(_, d)| d);
            let low = p.get("detail").and_then(Value::as_str) == Some("low");
            n += agent::openai_image_tokens(model, inline, low);
        }
    }
    n
}

fn bad_request(msg: &str, param: Option<&str>, code: Option<&str>) -> Response {
    error(400, msg.to_string(), "invalid_request_error", param, code)
}

fn parse(body: &[u8]) -> Result<Parsed, Response> {
    let v: Value = serde_json::from_slice(body).map_err(|_| bad_request("We could not parse the JSON body of your request.", None, None))?;
    let model = match v.get("model").and_then(Value::as_str) {
        Some(m) if !m.is_empty() => m.to_string(),
        _ => return Err(bad_request("Missing required parameter: 'model'.", Some("model"), Some("missing_required_parameter"))),
    };
    let items: Vec<Value> = match v.get("input") {
        Some(Value::String(s)) => vec![json!({"role": "user", "content": s})],
        Some(Value::Array(a)) if !a.is_empty() => a.clone(),
        _ => return Err(bad_request("Missing required parameter: 'input'.", Some("input"), Some("missing_required_parameter"))),
    };
    let max_tokens = match common::opt_u64(&v, "max_output_tokens") {
        Ok(Some(n)) if n < 16 => return Err(bad_request(&format!("Invalid 'max_output_tokens': integer below minimum value. Expected a value >= 16, but got {n} instead."), Some("max_output_tokens"), Some("integer_below_min_value"))),
        Ok(n) => n,
        Err(_) => return Err(bad_request("Invalid type for 'max_output_tokens': expected an integer.", Some("max_output_tokens"), Some("invalid_type"))),
    };
    let tool_list = v.get("tools").and_then(Value::as_array).cloned().unwrap_or_default();
    let tools = tool_list
        .iter()
        .filter(|t| t.get("type").and_then(Value::as_str) == Some("function"))
        .filter_map(|t| Some(agent::ToolDef { name: t.get("name")?.as_str()?.to_string(), schema: t.get("parameters").cloned().unwrap_or_else(|| json!({"type": "object"})) }))
        .collect();
    let choice = match v.get("tool_choice") {
        Some(Value::String(s)) if s == "none" => None,
        Some(c @ Value::Object(_)) => Some(c.get("name").and_then(Value::as_str).map(str::to_string)),
        _ => Some(None),
    };
    let mut texts: Vec<String> = v.get("instructions").and_then(Value::as_str).map(str::to_string).into_iter().collect();
    texts.extend(items.iter().map(item_text));
    texts.extend(tool_list.iter().map(Value::to_string));
    let json = match v.pointer("/text/format/type").and_then(Value::as_str) {
        Some("json_object") => Some(None),
        Some("json_schema") => Some(v.pointer("/text/format/schema").cloned()),
        _ => None,
    };
    Ok(Parsed {
        images: image_tokens(&model, &items),
        texts,
        max_tokens,
        stream: v.get("stream").and_then(Value::as_bool).unwrap_or(false),
        tools,
        choice,
        parallel: v.get("parallel_tool_calls").and_then(Value::as_bool).unwrap_or(true),
        last_is_output: items.last().and_then(|i| i.get("type")).and_then(Value::as_str) == Some("function_call_output"),
        json,
        reasoning: v.pointer("/reasoning/effort").and_then(Value::as_str).is_some_and(|e| e != "none"),
        encrypted: v.get("include").and_then(Value::as_array).is_some_and(|a| a.iter().any(|x| x == "reasoning.encrypted_content")),
        model,
        request: v,
    })
}

/// The usage object, with a script's overrides.
fn usage(input: u64, output: u64, reasoning: u64, script: Option<&Script>) -> Value {
    let ov = |k: &str, d: u64| script.and_then(|s| s.usage_u64(k)).unwrap_or(d);
    let (input, output) = (ov("input_tokens", input), ov("output_tokens", output));
    json!({
        "input_tokens": input,
        "input_tokens_details": { "cached_tokens": ov("cached_tokens", 0) },
        "output_tokens": output,
        "output_tokens_details": { "reasoning_tokens": ov("reasoning_tokens", reasoning) },
        "total_tokens": input + output,
    })
}

/// One output item while it streams (pieces of text or arguments) and when done.
enum Out {
    Reasoning { id: String, encrypted: Option<String> },
    Message { id: String, pieces: Vec<String> },
    Call { id: String, call_id: String, name: String, pieces: Vec<String> },
}

impl Out {
    fn json(&self, done: bool) -> Value {
        let status = if done { "completed" } else { "in_progress" };
        match self {
            Out::Reasoning { id, encrypted } => {
                let mut v = json!({"id": id, "type": "reasoning", "summary": []});
                if let (true, Some(e)) = (done, encrypted) {
                    v["encrypted_content"] = json!(e);
                }
                v
            }
            Out::Message { id, pieces } => {
                let content = if done { json!([{"type": "output_text", "annotations": [], "logprobs": [], "text": pieces.concat()}]) } else { json!([]) };
                json!({"id": id, "type": "message", "status": status, "content": content, "role": "assistant"})
            }
            Out::Call { id, call_id, name, pieces } => {
                json!({"id": id, "type": "function_call", "status": status, "arguments": if done { pieces.concat() } else { String::new() }, "call_id": call_id, "name": name})
            }
        }
    }
}

fn response_object(id: &str, p: &Parsed, created: u64, status: &str, output: Vec<Value>, usage: Value) -> Value {
    let r = &p.request;
    let get = |k: &str, d: Value| r.get(k).cloned().unwrap_or(d);
    json!({
        "id": id, "object": "response", "created_at": created, "status": status, "background": false, "error": null,
        "incomplete_details": if status == "incomplete" { json!({"reason": "max_output_tokens"}) } else { Value::Null },
        "instructions": get("instructions", Value::Null), "max_output_tokens": get("max_output_tokens", Value::Null), "max_tool_calls": null,
        "model": p.model, "output": output, "parallel_tool_calls": p.parallel, "previous_response_id": null,
        "prompt_cache_key": get("prompt_cache_key", Value::Null),
        "reasoning": {"effort": r.pointer("/reasoning/effort").cloned().unwrap_or(Value::Null), "summary": r.pointer("/reasoning/summary").cloned().unwrap_or(Value::Null)},
        "safety_identifier": null, "service_tier": "default", "store": get("store", json!(true)), "temperature": get("temperature", json!(1.0)),
        "text": {"format": r.pointer("/text/format").cloned().unwrap_or(json!({"type": "text"})), "verbosity": r.pointer("/text/verbosity").cloned().unwrap_or(json!("medium"))},
        "tool_choice": get("tool_choice", json!("auto")), "tools": get("tools", json!([])), "top_logprobs": 0, "top_p": get("top_p", json!(1.0)),
        "truncation": get("truncation", json!("disabled")), "usage": usage, "user": null, "metadata": get("metadata", json!({})),
    })
}

/// Named SSE events with their sequence numbers.
struct Events {
    seq: u64,
    out: Vec<Vec<u8>>,
}

impl Events {
    fn send(&mut self, kind: &str, mut v: Value) {
        v["type"] = json!(kind);
        v["sequence_number"] = json!(self.seq);
        self.seq += 1;
        self.out.push(format!("event: {kind}\ndata: {v}\n\n").into_bytes());
    }
}

fn stream(id: &str, p: &Parsed, created: u64, items: &[Out], status: &str, usage: Value) -> Vec<Vec<u8>> {
    let mut e = Events { seq: 0, out: Vec::new() };
    let start = response_object(id, p, created, "in_progress", vec![], Value::Null);
    e.send("response.created", json!({"response": start}));
    e.send("response.in_progress", json!({"response": start}));
    for (i, item) in items.iter().enumerate() {
        e.send("response.output_item.added", json!({"output_index": i, "item": item.json(false)}));
        match item {
            Out::Reasoning { .. } => {}
            Out::Message { id, pieces } => {
                let part = |text: &str| json!({"type": "output_text", "annotations": [], "logprobs": [], "text": text});
                e.send("response.content_part.added", json!({"item_id": id, "output_index": i, "content_index": 0, "part": part("")}));
                for (n, piece) in pieces.iter().enumerate() {
                    let obfuscation = common::alnum(e.seq * 7 + n as u64, 2 + n % 11);
                    e.send("response.output_text.delta", json!({"item_id": id, "output_index": i, "content_index": 0, "delta": piece, "logprobs": [], "obfuscation": obfuscation}));
                }
                let text = pieces.concat();
                e.send("response.output_text.done", json!({"item_id": id, "output_index": i, "content_index": 0, "text": text, "logprobs": []}));
                e.send("response.content_part.done", json!({"item_id": id, "output_index": i, "content_index": 0, "part": part(&text)}));
            }
            Out::Call { id, pieces, .. } => {
                for (n, piece) in pieces.iter().enumerate() {
                    let obfuscation = common::alnum(e.seq * 7 + n as u64, 2 + n % 11);
                    e.send("response.function_call_arguments.delta", json!({"item_id": id, "output_index": i, "delta": piece, "obfuscation": obfuscation}));
                }
                e.send("response.function_call_arguments.done", json!({"item_id": id, "output_index": i, "arguments": pieces.concat()}));
            }
        }
        e.send("response.output_item.done", json!({"output_index": i, "item": item.json(true)}));
    }
    let done = response_object(id, p, created, status, items.iter().map(|i| i.json(true)).collect(), usage);
    e.send(if status == "incomplete" { "response.incomplete" } else { "response.completed" }, json!({"response": done}));
    e.out
}

pub fn handle(state: &State, req: &Request) -> Response {
    let seq = state.next_seq();
    if req.method != "POST" {
        return with_headers(error(405, format!("Invalid method for URL ({} /v1/responses)", req.method), "invalid_request_error", None, None), seq, 0);
    }
    if let Err(r) = check_auth(state, req) {
        return with_headers(r, seq, 0);
    }
    let script = state.take_script("openai");
    if let Some(s) = script.as_ref().filter(|s| s.is_override()) {
        let model = serde_json::from_slice::<Value>(&req.body).ok().and_then(|v| v.get("model").and_then(Value::as_str).map(str::to_string)).unwrap_or_default();
        return with_headers(s.override_response(|status| error_for_status(status, &model)), seq, 0);
    }
    let p = match parse(&req.body) {
        Ok(p) => p,
        Err(r) => return with_headers(r, seq, 0),
    };
    let input = common::input_tokens(&p.texts) + p.images;
    let calls = p.choice.as_ref().filter(|_| !p.last_is_output).map(|forced| agent::choose(&p.tools, forced.as_deref(), p.parallel));
    let answer = Answer::decide(calls, p.json.as_ref().map(Option::as_ref), p.max_tokens, script.as_ref());
    let reasoning = if p.reasoning { agent::THINKING_TOKENS } else { 0 };
    let hash = common::fnv1a(&seq.to_be_bytes());
    let id = format!("resp_mock{hash:016x}");
    let mut items = Vec::new();
    if p.reasoning {
        let encrypted = p.encrypted.then(|| format!("gAAAAmock{}", common::alnum(hash, 32)));
        items.push(Out::Reasoning { id: format!("rs_mock{hash:016x}"), encrypted });
    }
    match &answer {
        Answer::Calls { calls, .. } => {
            for (n, c) in calls.iter().enumerate() {
                let call_id = format!("call_{}", common::alnum(seq * 100 + n as u64, 24));
                items.push(Out::Call { id: format!("fc_mock{hash:016x}{n}"), call_id, name: c.name.clone(), pieces: c.pieces.clone() });
            }
        }
        a => items.push(Out::Message { id: format!("msg_mock{hash:016x}"), pieces: a.text_pieces().collect() }),
    }
    let status = if answer.truncated() { "incomplete" } else { "completed" };
    let u = usage(input, answer.tokens() + reasoning, reasoning, script.as_ref());
    let total = u["total_tokens"].as_u64().unwrap_or(0);
    let created = common::now_secs();
    let mut resp = if p.stream {
        Response::stream(200, "text/event-stream; charset=utf-8", stream(&id, &p, created, &items, status, u))
    } else {
        let body = response_object(&id, &p, created, status, items.iter().map(|i| i.json(true)).collect(), u);
        let mut out = serde_json::to_vec_pretty(&body).unwrap_or_default();
        out.push(b'\n');
        Response::json_bytes(200, out)
    };
    if let Some(s) = &script {
        s.apply_timing(&mut resp);
    }
    with_headers(resp, seq, total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_tokens_follow_the_documented_rule() {
        let p = parse(br#"{"model":"gpt-5.6-luna","instructions":"be brief","input":[{"role":"user","content":"weather?"},{"type":"function_call","call_id":"c","name":"get_weather","arguments":"{}"},{"type":"function_call_output","call_id":"c","output":"18C"}]}"#).ok().unwrap();
        assert_eq!(p.texts, vec!["be brief", "weather?", "get_weather{}", "18C"]);
        assert!(p.last_is_output);
        assert_eq!(common::input_tokens(&p.texts), 3 + (2 + 4) + (2 + 4) + (4 + 4) + (1 + 4));
    }

    #[test]
    fn a_stream_ends_with_the_completed_response_and_its_usage() {
        let p = parse(br#"{"model":"m","input":"hi","stream":true}"#).ok().unwrap();
        let items = vec![Out::Message { id: "msg_1".into(), pieces: vec!["Mock".into(), " reply".into()] }];
        let events = stream("resp_1", &p, 1, &items, "completed", usage(7, 2, 0, None));
        let last = String::from_utf8(events.last().cloned().unwrap_or_default()).unwrap_or_default();
        assert!(last.starts_with("event: response.completed\n"));
        let v: Value = serde_json::from_str(last.lines().nth(1).unwrap_or("").trim_start_matches("data: ")).unwrap_or_default();
        assert_eq!(v["response"]["output"][0]["content"][0]["text"], "Mock reply");
        assert_eq!(v["response"]["usage"]["total_tokens"], 9);
        assert_eq!(v["sequence_number"], events.len() as u64 - 1);
    }
}
