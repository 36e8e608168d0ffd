//! A translated answer (Anthropic, Gemini) in the Responses API's shape: the streamed events, and
//! the response object a whole answer (or the last event) carries.
//!
//! Events, in OpenAI's order: `response.created`, `response.in_progress`; per output item
//! `response.output_item.added`, for a message `response.content_part.added`, its
//! `response.output_text.delta`s, `response.output_text.done`, `response.content_part.done`, for a
//! function call its `response.function_call_arguments.delta`s and `.done`, for Claude's thinking
//! (a `reasoning` item) `response.reasoning_summary_part.added`, its
//! `response.reasoning_summary_text.delta`s and their `.done`s; then
//! `response.output_item.done`; last `response.completed` (or `response.incomplete` when the
//! output cap cut the answer, `response.failed` when the provider failed), with the usage and the
//! gateway's `x_broker` credit figures. A provider error mid-stream is an `error` event first.
//!
//! The writer is fed decoded provider events one at a time and writes each delta straight from
//! borrowed text (no JSON tree per delta); the rarer item events are built as values.

use crate::metering::Charge;
use crate::payer::Bill;
use crate::providers::decoded::{Decoded, ToolCalls};
use crate::sse::encode_event;
use crate::usage::Usage;
use serde::Serialize;
use serde_json::{json, Map, Value};

/// Marks a reasoning item's `encrypted_content` as Claude's signed thinking (then the signature)
/// or its redacted thinking (then the data), so it goes back to Claude as the block it came from
/// and an item of another origin (OpenAI's own encrypted reasoning) is never mistaken for one.
pub const CLAUDE_THINKING: &str = "claude-thinking.v1:";
pub const CLAUDE_REDACTED: &str = "claude-redacted.v1:";

#[derive(Debug)]
enum Item {
    Message { id: String, text: String },
    Call { id: String, call_id: String, name: String, arguments: String },
    /// Claude's thinking: its text (or, redacted, its data) and signature.
    Reasoning { id: String, text: String, signature: String, redacted: bool },
}

impl Item {
    fn id(&self) -> &str {
        match self {
            Item::Message { id, .. } | Item::Call { id, .. } | Item::Reasoning { id, .. } => id,
        }
    }

    fn to_json(&self, status: &str) -> Value {
        match self {
            Item::Message { id, text } => json!({
                "id": id, "type": "message", "status": status, "role": "assistant",
                "content": if status == "in_progress" { json!([]) } else { json!([text_part(text)]) },
            }),
            Item::Call { id, call_id, name, arguments } => json!({
                "id": id, "type": "function_call", "status": status, "arguments": if status == "in_progress" { "" } else { arguments }, "call_id": call_id, "name": name,
            }),
            Item::Reasoning { id, .. } if status == "in_progress" => json!({"id": id, "type": "reasoning", "summary": []}),
            // The signed block travels back in `encrypted_content` (always sent: without it no
            // client could continue a tool loop with Claude thinking).
            Item::Reasoning { id, text, redacted: true, .. } => json!({"id": id, "type": "reasoning", "summary": [], "encrypted_content": format!("{CLAUDE_REDACTED}{text}")}),
            Item::Reasoning { id, text, signature, .. } => json!({
                "id": id, "type": "reasoning", "summary": [summary_part(text)], "encrypted_content": format!("{CLAUDE_THINKING}{signature}"),
            }),
        }
    }
}

fn summary_part(text: &str) -> Value {
    json!({"type": "summary_text", "text": text})
}

fn text_part(text: &str) -> Value {
    json!({"type": "output_text", "annotations": [], "logprobs": [], "text": text})
}

#[derive(Serialize)]
struct TextDelta<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    sequence_number: u64,
    item_id: &'a str,
    output_index: usize,
    content_index: u32,
    delta: &'a str,
    logprobs: [u8; 0],
}

#[derive(Serialize)]
struct SummaryDelta<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    sequence_number: u64,
    item_id: &'a str,
    output_index: usize,
    summary_index: u32,
    delta: &'a str,
}

#[derive(Serialize)]
struct ArgsDelta<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    sequence_number: u64,
    item_id: &'a str,
    output_index: usize,
    delta: &'a str,
}

/// The Responses `usage` object of a normalized usage. Translated providers count thinking in
/// their output without a split the gateway keeps: `reasoning_tokens` is then 0.
pub fn usage_json(u: &Usage) -> Value {
    json!({
        "input_tokens": u.prompt_total(),
        "input_tokens_details": { "cached_tokens": u.cached_input },
        "output_tokens": u.output,
        "output_tokens_details": { "reasoning_tokens": 0 },
        "total_tokens": u.prompt_total() + u.output,
    })
}

/// How a translated answer ended, for its last event.
pub struct Ending<'a> {
    /// Normalized finish reason (stop, length, tool_calls, content_filter).
    pub finish_reason: Option<&'a str>,
    pub usage: Usage,
    pub charge: Charge,
    /// `Some(message)`: the provider failed or the stream broke.
    pub failure: Option<String>,
}

pub struct ResponsesWriter {
    /// Whether events are written (a stream) or only the final object is built (a whole answer).
    stream: bool,
    billing: Bill,
    /// The response object without its changing fields (status, output, usage).
    base: Map<String, Value>,
    seq: u64,
    started: bool,
    items: Vec<Item>,
    open: Option<usize>,
    calls: ToolCalls,
    /// The output index of each tool call, in the calls' numbering.
    call_items: Vec<usize>,
}

/// The response object's echo of the request (as OpenAI echoes it), with OpenAI's defaults.
fn base(id: &str, created_at: u64, model: &str, req: &Map<String, Value>) -> Map<String, Value> {
    let echo = |k: &str, default: Value| req.get(k).filter(|v| !v.is_null()).cloned().unwrap_or(default);
    let text_format = req.get("text").and_then(|t| t.get("format")).filter(|v| !v.is_null()).cloned().unwrap_or(json!({"type": "text"}));
    let effort = req.get("reasoning").and_then(|r| r.get("effort")).cloned().unwrap_or(Value::Null);
    let v = json!({
        "id": id, "object": "response", "created_at": created_at, "status": "in_progress", "background": false, "error": null,
        "incomplete_details": null, "instructions": echo("instructions", Value::Null), "max_output_tokens": echo("max_output_tokens", Value::Null),
        "max_tool_calls": null, "model": model, "output": [], "parallel_tool_calls": echo("parallel_tool_calls", json!(true)),
        "previous_response_id": null, "reasoning": {"effort": effort, "summary": null}, "service_tier": "default", "store": false,
        "temperature": echo("temperature", json!(1.0)), "text": {"format": text_format, "verbosity": "medium"},
        "tool_choice": echo("tool_choice", json!("auto")), "tools": echo("tools", json!([])), "top_p": echo("top_p", json!(1.0)),
        "truncation": "disabled", "usage": null, "user": null, "metadata": echo("metadata", json!({})),
    });
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

impl ResponsesWriter {
    pub fn new(stream: bool, billing: Bill, created_at: u64, model_label: &str, req: &Map<String, Value>) -> ResponsesWriter {
        let id = format!("resp_{}", billing.request_id);
        ResponsesWriter { stream, base: base(&id, created_at, model_label, req), billing, seq: 0, started: false, items: Vec::new(), open: None, calls: ToolCalls::default(), call_items: Vec::new() }
    }

    fn send(&mut self, out: &mut Vec<u8>, kind: &str, mut v: Value) {
        if let Some(o) = v.as_object_mut() {
            o.insert("type".into(), json!(kind));
            o.insert("sequence_number".into(), json!(self.seq));
        }
        self.seq += 1;
        out.extend(encode_event(kind, &v.to_string()));
    }

    fn object(&self, status: &str, usage: Option<&Usage>) -> Value {
        let mut m = self.base.clone();
        m.insert("status".into(), json!(status));
        let done = if status == "in_progress" { "in_progress" } else { "completed" };
        m.insert("output".into(), self.items.iter().map(|i| i.to_json(done)).collect());
        if let Some(u) = usage {
            m.insert("usage".into(), usage_json(u));
        }
        Value::Object(m)
    }

    fn start(&mut self, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        if self.stream {
            let obj = self.object("in_progress", None);
            self.send(out, "response.created", json!({ "response": obj }));
            self.send(out, "response.in_progress", json!({ "response": obj }));
        }
    }

    /// Closes the open item (its `.done` events).
    fn close(&mut self, out: &mut Vec<u8>) {
        let Some(index) = self.open.take() else { return };
        if !self.stream {
            return;
        }
        let item = &self.items[index];
        let id = item.id().to_string();
        let done = item.to_json("completed");
        match item {
            Item::Message { text, .. } => {
                let text = text.clone();
                self.send(out, "response.output_text.done", json!({"item_id": id, "output_index": index, "content_index": 0, "text": text, "logprobs": []}));
                self.send(out, "response.content_part.done", json!({"item_id": id, "output_index": index, "content_index": 0, "part": text_part(&text)}));
            }
            Item::Call { arguments, .. } => {
                let arguments = arguments.clone();
                self.send(out, "response.function_call_arguments.done", json!({"item_id": id, "output_index": index, "arguments": arguments}));
            }
            Item::Reasoning { redacted: true, .. } => {}
            Item::Reasoning { text, .. } => {
                let text = text.clone();
                self.send(out, "response.reasoning_summary_text.done", json!({"item_id": id, "output_index": index, "summary_index": 0, "text": text}));
                self.send(out, "response.reasoning_summary_part.done", json!({"item_id": id, "output_index": index, "summary_index": 0, "part": summary_part(&text)}));
            }
        }
        self.send(out, "response.output_item.done", json!({"output_index": index, "item": done}));
    }

    /// Opens an item (its `.added` events); returns its output index.
    fn open_item(&mut self, item: Item, out: &mut Vec<u8>) -> usize {
        self.close(out);
        let index = self.items.len();
        self.items.push(item);
        self.open = Some(index);
        if self.stream {
            let added = self.items[index].to_json("in_progress");
            let id = self.items[index].id().to_string();
            self.send(out, "response.output_item.added", json!({"output_index": index, "item": added}));
            match self.items[index] {
                Item::Message { .. } => self.send(out, "response.content_part.added", json!({"item_id": id, "output_index": index, "content_index": 0, "part": text_part("")})),
                Item::Reasoning { redacted: false, .. } => {
                    self.send(out, "response.reasoning_summary_part.added", json!({"item_id": id, "output_index": index, "summary_index": 0, "part": summary_part("")}));
                }
                _ => {}
            }
        }
        index
    }

    fn text(&mut self, t: &str, out: &mut Vec<u8>) {
        let index = match self.open {
            Some(i) if matches!(self.items[i], Item::Message { .. }) => i,
            _ => {
                let id = format!("msg_{}_{}", self.billing.request_id, self.items.len());
                self.open_item(Item::Message { id, text: String::new() }, out)
            }
        };
        if let Item::Message { id, text } = &mut self.items[index] {
            text.push_str(t);
            if self.stream {
                let ev = TextDelta { kind: "response.output_text.delta", sequence_number: self.seq, item_id: id, output_index: index, content_index: 0, delta: t, logprobs: [] };
                write_event(out, ev.kind, &ev);
                self.seq += 1;
            }
        }
    }

    fn reasoning(&mut self, t: &str, out: &mut Vec<u8>) {
        let index = match self.open {
            Some(i) if matches!(self.items[i], Item::Reasoning { redacted: false, .. }) => i,
            _ => {
                let id = format!("rs_{}_{}", self.billing.request_id, self.items.len());
                self.open_item(Item::Reasoning { id, text: String::new(), signature: String::new(), redacted: false }, out)
            }
        };
        if let Item::Reasoning { id, text, .. } = &mut self.items[index] {
            text.push_str(t);
            if self.stream {
                let ev = SummaryDelta { kind: "response.reasoning_summary_text.delta", sequence_number: self.seq, item_id: id, output_index: index, summary_index: 0, delta: t };
                write_event(out, ev.kind, &ev);
                self.seq += 1;
            }
        }
    }

    fn call_args(&mut self, slot: Option<u64>, fragment: &str, out: &mut Vec<u8>) {
        let Some(index) = self.calls.args(slot, fragment).and_then(|c| self.call_items.get(c).copied()) else { return };
        if let Item::Call { id, arguments, .. } = &mut self.items[index] {
            arguments.push_str(fragment);
            if self.stream {
                let ev = ArgsDelta { kind: "response.function_call_arguments.delta", sequence_number: self.seq, item_id: id, output_index: index, delta: fragment };
                write_event(out, ev.kind, &ev);
                self.seq += 1;
            }
        }
    }

    /// One decoded provider event.
    pub fn event(&mut self, d: &Decoded, out: &mut Vec<u8>) {
        match d {
            Decoded::Start => self.start(out),
            Decoded::Text(t) => {
                self.start(out);
                self.text(t, out);
            }
            Decoded::ToolCallStart { slot, id, name, signature } => {
                self.start(out);
                let (_, call_id) = self.calls.start(*slot, id.as_deref(), name, signature.as_deref(), &self.billing.request_id);
                let id = format!("fc_{}_{}", self.billing.request_id, self.items.len());
                let index = self.open_item(Item::Call { id, call_id, name: name.clone(), arguments: String::new() }, out);
                self.call_items.push(index);
            }
            Decoded::ToolCallArgs { slot, fragment } => self.call_args(*slot, fragment, out),
            Decoded::Error(v) => {
                self.start(out);
                if self.stream {
                    let msg = v.pointer("/error/message").and_then(Value::as_str).unwrap_or("provider error");
                    self.send(out, "error", json!({"code": "upstream_error", "message": format!("provider error: {msg}"), "param": null}));
                }
            }
            Decoded::Reasoning(t) => {
                self.start(out);
                self.reasoning(t, out);
            }
            Decoded::ReasoningSignature(s) => {
                if let Some(Item::Reasoning { signature, .. }) = self.open.and_then(|i| self.items.get_mut(i)) {
                    signature.push_str(s);
                }
            }
            Decoded::RedactedReasoning(data) => {
                self.start(out);
                let id = format!("rs_{}_{}", self.billing.request_id, self.items.len());
                self.open_item(Item::Reasoning { id, text: data.clone(), signature: String::new(), redacted: true }, out);
            }
            Decoded::Finish(_) | Decoded::FinalUsage | Decoded::Done => {}
        }
    }

    /// The final response object (with the usage and the `x_broker` credit figures) and the
    /// name of the event that carries it.
    fn final_object(&self, end: &Ending) -> (&'static str, Value) {
        let (kind, status) = match (&end.failure, end.finish_reason) {
            (Some(_), _) => ("response.failed", "failed"),
            (None, Some("length" | "content_filter")) => ("response.incomplete", "incomplete"),
            _ => ("response.completed", "completed"),
        };
        let mut obj = self.object(status, Some(&end.usage));
        match (&end.failure, end.finish_reason) {
            (Some(msg), _) => obj["error"] = json!({"code": "server_error", "message": msg}),
            (None, Some("length")) => obj["incomplete_details"] = json!({"reason": "max_output_tokens"}),
            (None, Some("content_filter")) => obj["incomplete_details"] = json!({"reason": "content_filter"}),
            _ => {}
        }
        (kind, obj)
    }

    /// The provider's answer is over: closes the open item and writes the last event.
    pub fn finish(&mut self, end: &Ending, out: &mut Vec<u8>) {
        self.start(out);
        self.close(out);
        let (kind, obj) = self.final_object(end);
        let broker = self.billing.broker_json(&end.charge);
        self.send(out, kind, json!({ "response": obj, "x_broker": broker }));
    }

    /// The whole answer: the final response object with `x_broker`.
    pub fn whole(&mut self, end: &Ending) -> Value {
        self.open = None;
        let (_, mut obj) = self.final_object(end);
        obj["x_broker"] = self.billing.broker_json(&end.charge);
        obj
    }
}

fn write_event<T: Serialize>(out: &mut Vec<u8>, kind: &str, ev: &T) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(kind.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    // Serializing these plain structs cannot fail; an empty object is the safe fallback.
    if serde_json::to_writer(&mut *out, ev).is_err() {
        out.extend_from_slice(b"{}");
    }
    out.extend_from_slice(b"\n\n");
}
