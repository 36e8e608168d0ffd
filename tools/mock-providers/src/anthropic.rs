//! Anthropic Messages: `POST /anthropic/v1/messages`.
//!
//! Auth `x-api-key` (or `Authorization: Bearer <key>`, which the official SDK 1.x sends) + a
//! required `anthropic-version` (any value). Plain body like messages.response.json; with
//! `"stream":true` SSE `event: X\ndata: {json}\n\n`: message_start (usage, output_tokens 1),
//! content_block_start, ping, one content_block_delta per word, content_block_stop, message_delta
//! (CUMULATIVE usage incl. input/cache fields), message_stop; no `[DONE]`.
//! Errors: `{"type":"error","error":{"type","message"},"request_id"}`.
//! Usage override keys: input_tokens, output_tokens, cache_creation_input_tokens,
//! cache_read_input_tokens, ephemeral_5m_input_tokens, ephemeral_1h_input_tokens
//! (5m defaults to cache_creation_input_tokens − 1h).

use serde::Serialize;
use serde_json::{json, Value};

use crate::agent::{self, Answer};
use crate::common;
use crate::control::{Script, State};
use crate::http::{Request, Response};

#[derive(Serialize)]
struct ErrorDetail<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    message: &'a str,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    error: ErrorDetail<'a>,
    request_id: &'a str,
}

pub(crate) fn request_id(seq: u64) -> String {
    format!("req_011Mock{}", common::alnum(seq, 16))
}

pub fn error(status: u16, kind: &str, message: &str, seq: u64) -> Response {
    let rid = request_id(seq);
    let body = ErrorBody {
        kind: "error",
        error: ErrorDetail { kind, message },
        request_id: &rid,
    };
    let mut r = Response::json(status, &body).header("request-id", rid.clone());
    if status == 401 || status == 400 || status == 403 || status == 404 {
        r.add_header("x-should-retry", "false");
    }
    if status == 429 {
        r.add_header("retry-after", "1");
    }
    r
}

pub fn error_for_status(status: u16, seq: u64) -> Response {
    let (kind, msg) = match status {
        400 => ("invalid_request_error", "Invalid request (scripted by mock-providers)."),
        401 => ("authentication_error", "invalid x-api-key"),
        403 => ("permission_error", "Your API key does not have permission to use the specified resource."),
        404 => ("not_found_error", "Not found."),
        413 => ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
        429 => ("rate_limit_error", "This request would exceed the rate limit for your organization. Please reduce the prompt length or the maximum tokens requested, or try again later."),
        529 => ("overloaded_error", "Overloaded"),
        _ => ("api_error", "Internal server error"),
    };
    error(status, kind, msg, seq)
}

#[derive(Serialize, Clone)]
struct CacheCreation {
    ephemeral_5m_input_tokens: u64,
    ephemeral_1h_input_tokens: u64,
}

#[derive(Serialize, Clone)]
struct Usage {
    input_tokens: u64,
    cache_creation_input_tokens: u64,
    cache_read_input_tokens: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    cache_creation: Option<CacheCreation>,
    output_tokens: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    service_tier: Option<String>,
}

#[derive(Serialize)]
struct TextBlock {
    #[serde(rename = "type")]
    kind: &'static str,
    text: String,
}

/// A content block, keys in Anthropic's order (`type` first).
#[derive(Serialize, Clone)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block {
    Text { text: String },
    Thinking { thinking: String, signature: String },
    ToolUse { id: String, name: String, input: Value },
}

/// A content block delta (its `type` is the variant's name + `_delta`).
#[derive(Serialize)]
#[serde(tag = "type")]
enum BlockDeltaKind {
    #[serde(rename = "thinking_delta")]
    Thinking { thinking: String },
    #[serde(rename = "signature_delta")]
    Signature { signature: String },
    #[serde(rename = "input_json_delta")]
    InputJson { partial_json: String },
}

#[derive(Serialize)]
struct BlockStart<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    index: usize,
    content_block: &'a Block,
}

#[derive(Serialize)]
struct BlockEvent {
    #[serde(rename = "type")]
    kind: &'static str,
    index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    delta: Option<BlockDeltaKind>,
}

#[derive(Serialize)]
struct Message<'a> {
    model: &'a str,
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    role: &'static str,
    content: Vec<Block>,
    stop_reason: Option<&'static str>,
    stop_sequence: Option<()>,
    usage: Usage,
}

fn usage(input: u64, output: u64, script: Option<&Script>) -> Usage {
    let ov = |k: &str, d: u64| script.and_then(|s| s.usage_u64(k)).unwrap_or(d);
    let creation = ov("cache_creation_input_tokens", 0);
    let h1 = ov("ephemeral_1h_input_tokens", 0);
    Usage {
        input_tokens: ov("input_tokens", input),
        cache_creation_input_tokens: creation,
        cache_read_input_tokens: ov("cache_read_input_tokens", 0),
        // `"cache_creation": null` in the scripted usage: the total without its 5m / 1h split.
        cache_creation: (!script.and_then(|s| s.usage.as_ref()).is_some_and(|u| u.get("cache_creation").is_some_and(Value::is_null))).then(|| CacheCreation {
            ephemeral_5m_input_tokens: ov("ephemeral_5m_input_tokens", creation.saturating_sub(h1)),
            ephemeral_1h_input_tokens: h1,
        }),
        output_tokens: ov("output_tokens", output),
        service_tier: Some(script.and_then(|s| s.service_tier.clone()).unwrap_or_else(|| "standard".into())),
    }
}

pub(crate) struct Parsed {
    model: String,
    pub(crate) texts: Vec<String>,
    /// Input tokens of the images.
    pub(crate) images: u64,
    max_tokens: u64,
    stream: bool,
    tools: Vec<agent::ToolDef>,
    /// Which tool calls the answer may make (`None`: none; `Some(Some(name))`: that tool).
    choice: Option<Option<String>>,
    parallel: bool,
    last_is_tool_result: bool,
    /// `Some(schema)`: a JSON answer (`output_config.format`).
    json: Option<Value>,
    thinking: bool,
}

/// The text a message's blocks count for: text, tool calls (name and input), tool results.
fn blocks_text(content: Option<&Value>) -> String {
    let mut t = common::content_text(content);
    for b in content.and_then(Value::as_array).into_iter().flatten() {
        match b.get("type").and_then(Value::as_str) {
            Some("tool_use") => {
                t.push_str(b.get("name").and_then(Value::as_str).unwrap_or(""));
                t.push_str(&b.get("input").map(Value::to_string).unwrap_or_default());
            }
            Some("tool_result") => t.push_str(&common::content_text(b.get("content"))),
            _ => {}
        }
    }
    t
}

/// Input tokens of the image blocks (also inside tool results).
fn image_tokens(content: Option<&Value>) -> u64 {
    let mut n = 0;
    for b in content.and_then(Value::as_array).into_iter().flatten() {
        match b.get("type").and_then(Value::as_str) {
            Some("image") => {
                let inline = b.pointer("/source/data").and_then(Value::as_str);
                n += agent::claude_image_tokens(inline);
            }
            Some("tool_result") => n += image_tokens(b.get("content")),
            _ => {}
        }
    }
    n
}

pub(crate) fn parse(body: &[u8]) -> Result<Parsed, (&'static str, String)> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ("invalid_request_error", format!("Invalid JSON: {e}")))?;
    let model = match v.get("model").and_then(Value::as_str) {
        Some(m) if !m.is_empty() => m.to_string(),
        _ => return Err(("invalid_request_error", "model: Field required".into())),
    };
    let max_tokens = match v.get("max_tokens") {
        None | Some(Value::Null) => {
            return Err(("invalid_request_error", "max_tokens: Field required".into()))
        }
        Some(x) => match x.as_u64() {
            Some(n) if n >= 1 => n,
            _ => {
                return Err((
                    "invalid_request_error",
                    "max_tokens: Input should be greater than or equal to 1".into(),
                ))
            }
        },
    };
    let messages = match v.get("messages") {
        Some(Value::Array(a)) if !a.is_empty() => a,
        Some(Value::Array(_)) => {
            return Err((
                "invalid_request_error",
                "messages: at least one message is required".into(),
            ))
        }
        _ => return Err(("invalid_request_error", "messages: Field required".into())),
    };
    let mut texts = Vec::new();
    if let Some(sys) = v.get("system") {
        match sys {
            Value::String(_) | Value::Array(_) => texts.push(common::content_text(Some(sys))),
            Value::Null => {}
            _ => {
                return Err((
                    "invalid_request_error",
                    "system: Input should be a valid string or list".into(),
                ))
            }
        }
    }
    let mut images = 0;
    for m in messages {
        texts.push(blocks_text(m.get("content")));
        images += image_tokens(m.get("content"));
    }
    let tools: Vec<agent::ToolDef> = v
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| {
            Some(agent::ToolDef {
                name: t.get("name")?.as_str()?.to_string(),
                schema: t.get("input_schema").cloned().unwrap_or(Value::Null),
            })
        })
        .collect();
    texts.extend(v.get("tools").and_then(Value::as_array).into_iter().flatten().map(Value::to_string));
    let tc = v.get("tool_choice");
    let choice = match tc.and_then(|c| c.get("type")).and_then(Value::as_str) {
        Some("none") => None,
        Some("tool") => Some(tc.and_then(|c| c.get("name")).and_then(Value::as_str).map(str::to_string)),
        _ => Some(None),
    };
    let last_is_tool_result = messages
        .last()
        .and_then(|m| m.get("content"))
        .and_then(Value::as_array)
        .is_some_and(|bs| bs.iter().any(|b| b.get("type").and_then(Value::as_str) == Some("tool_result")));
    Ok(Parsed {
        model,
        texts,
        images,
        max_tokens,
        stream: v.get("stream").and_then(Value::as_bool).unwrap_or(false),
        tools,
        choice,
        parallel: tc.and_then(|c| c.get("disable_parallel_tool_use")).and_then(Value::as_bool) != Some(true),
        last_is_tool_result,
        json: v.pointer("/output_config/format/schema").cloned(),
        thinking: matches!(v.pointer("/thinking/type").and_then(Value::as_str), Some("enabled" | "adaptive")),
    })
}

fn event<T: Serialize>(name: &str, data: &T) -> Vec<u8> {
    let mut out = format!("event: {name}\ndata: ").into_bytes();
    out.extend(serde_json::to_vec(data).unwrap_or_default());
    out.extend_from_slice(b"\n\n");
    out
}

fn raw_event(name: &str, data: &str) -> Vec<u8> {
    format!("event: {name}\ndata: {data}\n\n").into_bytes()
}

fn ratelimit_headers(mut r: Response) -> Response {
    let reset = common::rfc3339(common::now_secs() + 1);
    for (k, v) in [
        ("anthropic-ratelimit-requests-limit", "1000"),
        ("anthropic-ratelimit-requests-remaining", "999"),
        ("anthropic-ratelimit-input-tokens-limit", "80000"),
        ("anthropic-ratelimit-input-tokens-remaining", "80000"),
        ("anthropic-ratelimit-output-tokens-limit", "16000"),
        ("anthropic-ratelimit-output-tokens-remaining", "16000"),
    ] {
        r.add_header(k, v);
    }
    r.add_header("anthropic-ratelimit-requests-reset", reset.clone());
    r.add_header("anthropic-ratelimit-input-tokens-reset", reset.clone());
    r.add_header("anthropic-ratelimit-output-tokens-reset", reset);
    r
}

#[derive(Serialize)]
struct MessageStart<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    message: Message<'a>,
}

#[derive(Serialize)]
struct BlockDelta {
    #[serde(rename = "type")]
    kind: &'static str,
    index: usize,
    delta: TextBlock,
}

#[derive(Serialize)]
struct DeltaUsage {
    input_tokens: u64,
    cache_creation_input_tokens: u64,
    cache_read_input_tokens: u64,
    output_tokens: u64,
}

#[derive(Serialize)]
struct StopDelta {
    stop_reason: &'static str,
    stop_sequence: Option<()>,
}

#[derive(Serialize)]
struct MessageDelta {
    #[serde(rename = "type")]
    kind: &'static str,
    delta: StopDelta,
    usage: DeltaUsage,
}

fn tool_use_id(seq: u64, i: usize) -> String {
    format!("toolu_01Mock{}", common::alnum(seq * 100 + i as u64, 16))
}

const THINKING_SIGNATURE: &str = "EqQBCgIYAhIMockSignatureOfTheThinkingBlock";

/// The content blocks of a whole answer.
fn blocks(answer: &Answer, thinking: bool, seq: u64) -> Vec<Block> {
    let mut out = Vec::new();
    if thinking {
        out.push(Block::Thinking { thinking: agent::thought_words().concat(), signature: THINKING_SIGNATURE.into() });
    }
    match answer {
        Answer::Calls { calls, .. } => {
            for (i, c) in calls.iter().enumerate() {
                let input: Value = serde_json::from_str(&c.arguments()).unwrap_or_else(|_| json!({}));
                out.push(Block::ToolUse { id: tool_use_id(seq, i), name: c.name.clone(), input });
            }
        }
        a => out.push(Block::Text { text: a.text() }),
    }
    out
}

fn delta_event(index: usize, delta: BlockDeltaKind) -> Vec<u8> {
    event("content_block_delta", &BlockEvent { kind: "content_block_delta", index, delta: Some(delta) })
}

fn stop_event(index: usize) -> Vec<u8> {
    event("content_block_stop", &BlockEvent { kind: "content_block_stop", index, delta: None })
}

/// The SSE body: message_start, content_block_start, ping, one content_block_delta per output
/// token (made as the stream goes), content_block_stop, message_delta, message_stop. A thinking
/// block (thinking_delta per word, then its signature_delta) comes first when the model thinks;
/// tool calls are tool_use blocks filled by input_json_delta pieces (the first one empty).
fn stream_events(model: &str, id: &str, answer: Answer, thinking: bool, seq: u64, stop: &'static str, u: Usage) -> Response {
    let mut start_usage = u.clone();
    start_usage.output_tokens = u.output_tokens.min(1);
    let start = Message {
        model,
        id,
        kind: "message",
        role: "assistant",
        content: vec![],
        stop_reason: None,
        stop_sequence: None,
        usage: start_usage,
    };
    let mut head = vec![event("message_start", &MessageStart { kind: "message_start", message: start })];
    let mut index = 0;
    let mut open = |head: &mut Vec<Vec<u8>>, block: Block| {
        head.push(event("content_block_start", &BlockStart { kind: "content_block_start", index, content_block: &block }));
        if index == 0 {
            head.push(raw_event("ping", r#"{"type": "ping"}"#));
        }
        index += 1;
        index - 1
    };
    if thinking {
        let i = open(&mut head, Block::Thinking { thinking: String::new(), signature: String::new() });
        for w in agent::thought_words() {
            head.push(delta_event(i, BlockDeltaKind::Thinking { thinking: w }));
        }
        head.push(delta_event(i, BlockDeltaKind::Signature { signature: THINKING_SIGNATURE.into() }));
        head.push(stop_event(i));
    }
    let mut text_index = None;
    if let Answer::Calls { calls, .. } = &answer {
        for (n, c) in calls.iter().enumerate() {
            let i = open(&mut head, Block::ToolUse { id: tool_use_id(seq, n), name: c.name.clone(), input: json!({}) });
            for piece in std::iter::once(String::new()).chain(c.pieces.iter().cloned()) {
                head.push(delta_event(i, BlockDeltaKind::InputJson { partial_json: piece }));
            }
            head.push(stop_event(i));
        }
    } else {
        text_index = Some(open(&mut head, Block::Text { text: String::new() }));
    }
    let deltas = answer.text_pieces().map(move |piece| {
        let d = BlockDelta { kind: "content_block_delta", index: text_index.unwrap_or(0), delta: TextBlock { kind: "text_delta", text: piece } };
        event("content_block_delta", &d)
    });
    let message_delta = MessageDelta {
        kind: "message_delta",
        delta: StopDelta { stop_reason: stop, stop_sequence: None },
        usage: DeltaUsage {
            input_tokens: u.input_tokens,
            cache_creation_input_tokens: u.cache_creation_input_tokens,
            cache_read_input_tokens: u.cache_read_input_tokens,
            output_tokens: u.output_tokens,
        },
    };
    let mut tail = Vec::new();
    if let Some(i) = text_index {
        tail.push(stop_event(i));
    }
    tail.push(event("message_delta", &message_delta));
    tail.push(raw_event("message_stop", r#"{"type":"message_stop"}"#));
    let events = head.into_iter().chain(deltas).chain(tail);
    Response::stream(200, "text/event-stream; charset=utf-8", events).header("cache-control", "no-cache")
}

pub fn handle(state: &State, req: &Request) -> Response {
    let seq = state.next_seq();
    if req.path != "/anthropic/v1/messages" {
        return error(404, "not_found_error", "Not found", seq);
    }
    if req.method != "POST" {
        return error(
            405,
            "invalid_request_error",
            &format!("Method {} not allowed", req.method),
            seq,
        );
    }
    // `x-api-key` is the documented scheme; the official SDK (>= 1.x) sends the API key as
    // `Authorization: Bearer <key>` instead, so that is accepted too.
    let bearer = req
        .header("authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match (req.header("x-api-key"), bearer) {
        (None, None) => {
            return error(
                401,
                "authentication_error",
                "x-api-key header is required",
                seq,
            )
        }
        (Some(k), _) if k != state.config.anthropic_key => {
            return error(401, "authentication_error", "invalid x-api-key", seq)
        }
        (None, Some(t)) if t != state.config.anthropic_key => {
            return error(401, "authentication_error", "Invalid bearer token", seq)
        }
        _ => {}
    }
    if req.header("anthropic-version").is_none_or(str::is_empty) {
        return error(
            400,
            "invalid_request_error",
            "anthropic-version: header is required",
            seq,
        );
    }
    let script = state.take_script("anthropic");
    if let Some(s) = script.as_ref().filter(|s| s.is_override()) {
        let mut r = s.override_response(|status| error_for_status(status, seq));
        if !r.headers.iter().any(|(k, _)| k == "request-id") {
            r.add_header("request-id", request_id(seq));
        }
        return r;
    }
    if let Some(msg) = crate::anthropic_beta::missing_beta(req) {
        return error(400, "invalid_request_error", &msg, seq);
    }
    let p = match parse(&req.body) {
        Ok(p) => p,
        Err((kind, msg)) => return error(400, kind, &msg, seq),
    };
    let input = common::input_tokens(&p.texts) + p.images;
    let calls = p.choice.as_ref().filter(|_| !p.last_is_tool_result).map(|forced| agent::choose(&p.tools, forced.as_deref(), p.parallel));
    let answer = Answer::decide(calls, p.json.as_ref().map(Some), Some(p.max_tokens), script.as_ref());
    let stop = match &answer {
        a if a.truncated() => "max_tokens",
        Answer::Calls { .. } => "tool_use",
        _ => "end_turn",
    };
    let thinking = if p.thinking { agent::THINKING_TOKENS } else { 0 };
    let u = usage(input, answer.tokens() + thinking, script.as_ref());
    let id = format!("msg_01Mock{}", common::alnum(seq, 16));
    let mut resp = if p.stream {
        stream_events(&p.model, &id, answer, p.thinking, seq, stop, u)
    } else {
        let body = Message {
            model: &p.model,
            id: &id,
            kind: "message",
            role: "assistant",
            content: blocks(&answer, p.thinking, seq),
            stop_reason: Some(stop),
            stop_sequence: None,
            usage: u,
        };
        Response::json(200, &body)
    };
    if let Some(s) = &script {
        s.apply_timing(&mut resp);
    }
    ratelimit_headers(resp.header("request-id", request_id(seq)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_system_string_or_blocks() {
        let p = parse(br#"{"model":"c","max_tokens":10,"system":"abcd","messages":[{"role":"user","content":"Hello"}]}"#);
        assert_eq!(
            p.ok().map(|p| p.texts),
            Some(vec!["abcd".to_string(), "Hello".to_string()])
        );
        let p = parse(br#"{"model":"c","max_tokens":10,"system":[{"type":"text","text":"ab"},{"type":"text","text":"cd","cache_control":{"type":"ephemeral"}}],"messages":[{"role":"user","content":[{"type":"text","text":"Hello"}]}]}"#);
        let p = p.ok();
        assert_eq!(
            p.as_ref().map(|p| p.texts.clone()),
            Some(vec!["abcd".to_string(), "Hello".to_string()])
        );
        // 3 + (1+4) + (2+4)
        assert_eq!(p.map(|p| common::input_tokens(&p.texts)), Some(14));
    }

    #[test]
    fn max_tokens_required() {
        let e = parse(br#"{"model":"c","messages":[{"role":"user","content":"x"}]}"#).err();
        assert_eq!(
            e.map(|e| e.1),
            Some("max_tokens: Field required".to_string())
        );
    }

    #[test]
    fn usage_override() {
        let s = Script {
            provider: "anthropic".into(),
            usage: Some(
                serde_json::json!({"input_tokens":12,"output_tokens":31,"cache_creation_input_tokens":2048}),
            ),
            ..Default::default()
        };
        let u = usage(1, 2, Some(&s));
        assert_eq!(
            (
                u.input_tokens,
                u.output_tokens,
                u.cache_creation_input_tokens,
                u.cache_read_input_tokens
            ),
            (12, 31, 2048, 0)
        );
        assert_eq!(
            u.cache_creation.map(|c| c.ephemeral_5m_input_tokens),
            Some(2048)
        );
    }
}
