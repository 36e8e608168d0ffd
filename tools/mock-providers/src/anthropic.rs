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
use serde_json::Value;

use crate::common::{self, ReplyPlan};
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

fn request_id(seq: u64) -> String {
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
    service_tier: Option<&'static str>,
}

#[derive(Serialize)]
struct TextBlock {
    #[serde(rename = "type")]
    kind: &'static str,
    text: String,
}

#[derive(Serialize)]
struct Message<'a> {
    model: &'a str,
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    role: &'static str,
    content: Vec<TextBlock>,
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
        cache_creation: Some(CacheCreation {
            ephemeral_5m_input_tokens: ov("ephemeral_5m_input_tokens", creation.saturating_sub(h1)),
            ephemeral_1h_input_tokens: h1,
        }),
        output_tokens: ov("output_tokens", output),
        service_tier: Some("standard"),
    }
}

struct Parsed {
    model: String,
    texts: Vec<String>,
    max_tokens: u64,
    stream: bool,
}

fn parse(body: &[u8]) -> Result<Parsed, (&'static str, String)> {
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
    for m in messages {
        texts.push(common::content_text(m.get("content")));
    }
    Ok(Parsed {
        model,
        texts,
        max_tokens,
        stream: v.get("stream").and_then(Value::as_bool).unwrap_or(false),
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
    index: u32,
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

/// The SSE body: message_start, content_block_start, ping, one content_block_delta per output
/// token (made as the stream goes), content_block_stop, message_delta, message_stop.
fn stream_events(model: &str, id: &str, plan: ReplyPlan, stop: &'static str, u: Usage) -> Response {
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
    let head = vec![
        event(
            "message_start",
            &MessageStart {
                kind: "message_start",
                message: start,
            },
        ),
        raw_event(
            "content_block_start",
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
        ),
        raw_event("ping", r#"{"type": "ping"}"#),
    ];
    let deltas = plan.pieces().map(|piece| {
        let d = BlockDelta {
            kind: "content_block_delta",
            index: 0,
            delta: TextBlock {
                kind: "text_delta",
                text: piece,
            },
        };
        event("content_block_delta", &d)
    });
    let message_delta = MessageDelta {
        kind: "message_delta",
        delta: StopDelta {
            stop_reason: stop,
            stop_sequence: None,
        },
        usage: DeltaUsage {
            input_tokens: u.input_tokens,
            cache_creation_input_tokens: u.cache_creation_input_tokens,
            cache_read_input_tokens: u.cache_read_input_tokens,
            output_tokens: u.output_tokens,
        },
    };
    let tail = [
        raw_event(
            "content_block_stop",
            r#"{"type":"content_block_stop","index":0}"#,
        ),
        event("message_delta", &message_delta),
        raw_event("message_stop", r#"{"type":"message_stop"}"#),
    ];
    let events = head.into_iter().chain(deltas).chain(tail);
    Response::stream(200, "text/event-stream; charset=utf-8", events)
        .header("cache-control", "no-cache")
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
    let p = match parse(&req.body) {
        Ok(p) => p,
        Err((kind, msg)) => return error(400, kind, &msg, seq),
    };
    let input = common::input_tokens(&p.texts);
    let plan = ReplyPlan::new(Some(p.max_tokens), script.as_ref());
    let stop = if plan.truncated {
        "max_tokens"
    } else {
        "end_turn"
    };
    let u = usage(input, plan.tokens, script.as_ref());
    let id = format!("msg_01Mock{}", common::alnum(seq, 16));
    let mut resp = if p.stream {
        stream_events(&p.model, &id, plan, stop, u)
    } else {
        let body = Message {
            model: &p.model,
            id: &id,
            kind: "message",
            role: "assistant",
            content: vec![TextBlock {
                kind: "text",
                text: plan.text(),
            }],
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
