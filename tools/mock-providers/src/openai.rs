//! OpenAI Chat Completions: `POST /openai/v1/chat/completions`.
//!
//! Wire format per fixtures/openai: plain `chat.completion` body; with `"stream":true` SSE
//! `data: <json>\n\n` chunks (role chunk, one chunk per word, finish chunk, then - only with
//! `stream_options.include_usage` - a usage chunk with `"choices":[]`, every earlier chunk carrying
//! `"usage":null`), then `data: [DONE]\n\n`. Each chunk carries `obfuscation` unless
//! `stream_options.include_obfuscation` is false. Non-reasoning models (not `gpt-5*`/`o<digit>*`)
//! get `"logprobs":null` in each choice. Errors: `{"error":{message,type,param,code}}`, pretty-printed
//! with 4 spaces like the recorded bodies. Every response carries `x-request-id` + `x-ratelimit-*`.

use serde::Serialize;
use serde_json::Value;

use crate::agent::{self, Answer};
use crate::common::{self, opt_u64};
use crate::control::{Script, State};
use crate::http::{Request, Response};

#[derive(Serialize)]
pub struct ErrorBody<'a> {
    pub error: ErrorDetail<'a>,
}

#[derive(Serialize)]
pub struct ErrorDetail<'a> {
    pub message: String,
    #[serde(rename = "type")]
    pub kind: &'a str,
    pub param: Option<&'a str>,
    pub code: Option<&'a str>,
}

/// OpenAI error response (4-space pretty JSON + newline) with the usual headers.
pub fn error(
    status: u16,
    message: String,
    kind: &str,
    param: Option<&str>,
    code: Option<&str>,
) -> Response {
    let body = ErrorBody {
        error: ErrorDetail {
            message,
            kind,
            param,
            code,
        },
    };
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    if body.serialize(&mut ser).is_err() {
        out = b"{}".to_vec();
    }
    out.push(b'\n');
    Response::json_bytes(status, out)
}

/// The provider's default error body for a scripted status.
pub fn error_for_status(status: u16, model: &str) -> Response {
    match status {
        400 => error(400, "Invalid request (scripted by mock-providers).".into(), "invalid_request_error", None, None),
        401 => invalid_key(""),
        403 => error(403, "You are not allowed to access this resource (scripted).".into(), "invalid_request_error", None, Some("unsupported_country_region_territory")),
        404 => error(404, format!("The model `{model}` does not exist or you do not have access to it."), "invalid_request_error", None, Some("model_not_found")),
        429 => error(429, format!("Rate limit reached for {model} in organization org-mock on tokens per min (TPM): Limit 200000, Used 199421, Requested 1864. Please try again in 385ms. Visit https://platform.openai.com/account/rate-limits to learn more."), "tokens", None, Some("rate_limit_exceeded")),
        503 => error(503, "The engine is currently overloaded, please try again later.".into(), "server_error", None, None),
        s => error(s, "The server had an error while processing your request. Sorry about that!".into(), "server_error", None, None),
    }
}

fn mask(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() <= 8 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 7))
}

pub fn invalid_key(given: &str) -> Response {
    error(
        401,
        format!(
            "Incorrect API key provided: {}. You can find your API key at https://platform.openai.com/account/api-keys.",
            mask(given)
        ),
        "invalid_request_error",
        None,
        Some("invalid_api_key"),
    )
}

/// Check `Authorization: Bearer <key>`; `Err(response)` on failure.
pub fn check_auth(state: &State, req: &Request) -> Result<(), Response> {
    let given = req
        .header("authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("")
        .trim();
    if given == state.config.openai_key {
        Ok(())
    } else {
        Err(invalid_key(given))
    }
}

/// Request id + rate-limit headers from ratelimit-headers.http.
pub fn with_headers(mut resp: Response, seq: u64, tokens: u64) -> Response {
    let pairs = [
        ("access-control-expose-headers", "X-Request-ID".to_string()),
        ("openai-processing-ms", "42".to_string()),
        ("openai-version", "2020-10-01".to_string()),
        ("x-ratelimit-limit-requests", "500".to_string()),
        ("x-ratelimit-limit-tokens", "200000".to_string()),
        ("x-ratelimit-remaining-requests", "499".to_string()),
        (
            "x-ratelimit-remaining-tokens",
            200_000u64.saturating_sub(tokens).to_string(),
        ),
        ("x-ratelimit-reset-requests", "120ms".to_string()),
        ("x-ratelimit-reset-tokens", "3ms".to_string()),
        (
            "x-request-id",
            format!("req_{:016x}{:016x}", common::fnv1a(&seq.to_le_bytes()), seq),
        ),
    ];
    for (k, v) in pairs {
        resp.add_header(k, v);
    }
    resp
}

#[derive(Serialize, Clone)]
pub struct PromptDetails {
    pub cached_tokens: u64,
    pub audio_tokens: u64,
}

#[derive(Serialize, Clone)]
pub struct CompletionDetails {
    pub reasoning_tokens: u64,
    pub audio_tokens: u64,
    pub accepted_prediction_tokens: u64,
    pub rejected_prediction_tokens: u64,
}

#[derive(Serialize, Clone)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
    pub prompt_tokens_details: PromptDetails,
    pub completion_tokens_details: CompletionDetails,
}

#[derive(Serialize)]
struct Message {
    role: &'static str,
    content: Option<String>,
    refusal: Option<()>,
    annotations: Vec<()>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<Vec<ToolCallOut>>,
}

#[derive(Serialize)]
struct Choice {
    index: u32,
    message: Message,
    #[serde(skip_serializing_if = "Option::is_none")]
    logprobs: Option<Option<()>>,
    finish_reason: &'static str,
}

#[derive(Serialize)]
struct Completion<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: Vec<Choice>,
    usage: Usage,
    service_tier: String,
    system_fingerprint: Option<()>,
}

/// A tool call in a message or a delta, keys in OpenAI's order.
#[derive(Serialize, Clone)]
struct ToolCallOut {
    #[serde(skip_serializing_if = "Option::is_none")]
    index: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    function: FunctionOut,
}

#[derive(Serialize, Clone)]
struct FunctionOut {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    arguments: String,
}

#[derive(Serialize, Default)]
struct Delta {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    /// `Some(None)`: `"content": null` (a tool-call answer's first chunk).
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<Vec<ToolCallOut>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refusal: Option<Option<()>>,
}

#[derive(Serialize)]
struct ChunkChoice {
    index: u32,
    delta: Delta,
    #[serde(skip_serializing_if = "Option::is_none")]
    logprobs: Option<Option<()>>,
    finish_reason: Option<&'static str>,
}

#[derive(Serialize)]
struct Chunk<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    service_tier: String,
    system_fingerprint: Option<()>,
    choices: Vec<ChunkChoice>,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Option<Usage>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    obfuscation: Option<String>,
}

fn is_reasoning_model(model: &str) -> bool {
    let b = model.as_bytes();
    model.starts_with("gpt-5")
        || (b.first() == Some(&b'o') && b.get(1).is_some_and(u8::is_ascii_digit))
}

/// Per-message texts (content string or text parts; an assistant's tool calls by name and
/// arguments).
pub fn message_texts(messages: &[Value]) -> Vec<String> {
    messages
        .iter()
        .map(|m| {
            let mut t = common::content_text(m.get("content"));
            for c in m.get("tool_calls").and_then(Value::as_array).into_iter().flatten() {
                t.push_str(c.pointer("/function/name").and_then(Value::as_str).unwrap_or(""));
                t.push_str(c.pointer("/function/arguments").and_then(Value::as_str).unwrap_or(""));
            }
            t
        })
        .collect()
}

/// Input tokens of the images of the messages (see `agent`).
fn image_tokens(model: &str, messages: &[Value]) -> u64 {
    let mut n = 0;
    for m in messages {
        for p in m.get("content").and_then(Value::as_array).into_iter().flatten() {
            if p.get("type").and_then(Value::as_str) != Some("image_url") {
                continue;
            }
            let iu = p.get("image_url");
            let url = iu.and_then(|i| i.get("url").or(Some(i))).and_then(Value::as_str).unwrap_or("");
            let inline = url.split_once(";base64,").map(|(_, d)| d);
            let low = iu.and_then(|i| i.get("detail")).and_then(Value::as_str) == Some("low");
            n += agent::openai_image_tokens(model, inline, low);
        }
    }
    n
}

/// The tools of a request (function tools) and the calls its `tool_choice` allows.
fn tools_and_choice(v: &Value) -> (Vec<agent::ToolDef>, Option<Option<String>>) {
    let tools: Vec<agent::ToolDef> = v
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| {
            let f = t.get("function")?;
            Some(agent::ToolDef {
                name: f.get("name")?.as_str()?.to_string(),
                schema: f.get("parameters").cloned().unwrap_or_else(|| serde_json::json!({"type": "object"})),
            })
        })
        .collect();
    // None: no calls; Some(None): any tool; Some(Some(name)): that tool.
    let choice = match v.get("tool_choice") {
        Some(Value::String(s)) if s == "none" => None,
        Some(c @ Value::Object(_)) => Some(c.pointer("/function/name").and_then(Value::as_str).map(str::to_string)),
        _ => Some(None),
    };
    (tools, choice)
}

/// Computed usage (`reasoning` of the completion tokens were reasoning), with a scripted
/// override applied.
pub fn usage(prompt: u64, completion: u64, reasoning: u64, script: Option<&Script>) -> Usage {
    let ov = |k: &str, nested: &str, d: u64| {
        script
            .and_then(|s| {
                s.usage_u64(k).or_else(|| {
                    s.usage
                        .as_ref()
                        .and_then(|u| u.get(nested))
                        .and_then(|n| n.get(k))
                        .and_then(Value::as_u64)
                })
            })
            .unwrap_or(d)
    };
    let prompt_tokens = ov("prompt_tokens", "", prompt);
    let completion_tokens = ov("completion_tokens", "", completion);
    Usage {
        prompt_tokens,
        completion_tokens,
        total_tokens: ov("total_tokens", "", prompt_tokens + completion_tokens),
        prompt_tokens_details: PromptDetails {
            cached_tokens: ov("cached_tokens", "prompt_tokens_details", 0),
            audio_tokens: 0,
        },
        completion_tokens_details: CompletionDetails {
            reasoning_tokens: ov("reasoning_tokens", "completion_tokens_details", reasoning),
            audio_tokens: 0,
            accepted_prediction_tokens: 0,
            rejected_prediction_tokens: 0,
        },
    }
}

fn bad_request(msg: String, param: Option<&str>, code: Option<&str>) -> Response {
    error(400, msg, "invalid_request_error", param, code)
}

struct Parsed {
    model: String,
    texts: Vec<String>,
    /// Input tokens of the images.
    images: u64,
    max_tokens: Option<u64>,
    stream: bool,
    include_usage: bool,
    obfuscation: bool,
    tools: Vec<agent::ToolDef>,
    /// Which tool calls the answer may make (`None`: none; see `tools_and_choice`).
    choice: Option<Option<String>>,
    parallel: bool,
    last_is_tool: bool,
    /// `Some(schema)`: a JSON answer (`Some(None)`: JSON mode without a schema).
    json: Option<Option<Value>>,
    reasoning: bool,
}

fn parse(body: &[u8]) -> Result<Parsed, Response> {
    let v: Value = serde_json::from_slice(body).map_err(|_| {
        bad_request("We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. If you have trouble figuring out how to fix this, please contact us through our help center at help.openai.com.)".into(), None, None)
    })?;
    let model = match v.get("model").and_then(Value::as_str) {
        Some(m) if !m.is_empty() => m.to_string(),
        _ => {
            return Err(bad_request(
                "you must provide a model parameter".into(),
                None,
                None,
            ))
        }
    };
    let messages = match v.get("messages") {
        Some(Value::Array(a)) if !a.is_empty() => a,
        Some(Value::Array(_)) => return Err(bad_request("Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.".into(), Some("messages"), Some("empty_array"))),
        Some(_) => return Err(bad_request("Invalid type for 'messages': expected an array of objects.".into(), Some("messages"), Some("invalid_type"))),
        None => return Err(bad_request("Missing required parameter: 'messages'.".into(), Some("messages"), Some("missing_required_parameter"))),
    };
    let mut max_tokens = None;
    for key in ["max_completion_tokens", "max_tokens"] {
        match opt_u64(&v, key) {
            Ok(Some(0)) => return Err(bad_request(format!("Invalid '{key}': integer below minimum value. Expected a value >= 1, but got 0 instead."), Some(key), Some("integer_below_min_value"))),
            Ok(Some(n)) if max_tokens.is_none() => max_tokens = Some(n),
            Ok(_) => {}
            Err(_) => return Err(bad_request(format!("Invalid type for '{key}': expected an integer."), Some(key), Some("invalid_type"))),
        }
    }
    let stream = v.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let opts = v.get("stream_options");
    let (tools, choice) = tools_and_choice(&v);
    let mut texts = message_texts(messages);
    texts.extend(v.get("tools").and_then(Value::as_array).into_iter().flatten().map(Value::to_string));
    let json = match v.pointer("/response_format/type").and_then(Value::as_str) {
        Some("json_object") => Some(None),
        Some("json_schema") => Some(v.pointer("/response_format/json_schema/schema").cloned()),
        _ => None,
    };
    Ok(Parsed {
        images: image_tokens(&model, messages),
        texts,
        tools,
        choice,
        parallel: v.get("parallel_tool_calls").and_then(Value::as_bool).unwrap_or(true),
        last_is_tool: messages.last().and_then(|m| m.get("role")).and_then(Value::as_str) == Some("tool"),
        json,
        reasoning: v.get("reasoning_effort").and_then(Value::as_str).is_some_and(|e| e != "none"),
        model,
        max_tokens,
        stream,
        include_usage: opts
            .and_then(|o| o.get("include_usage"))
            .and_then(Value::as_bool)
            .unwrap_or(false),
        obfuscation: opts
            .and_then(|o| o.get("include_obfuscation"))
            .and_then(Value::as_bool)
            .unwrap_or(true),
    })
}

/// OpenAI's 404 for a path it does not serve.
pub fn invalid_url(req: &Request, seq: u64) -> Response {
    let message = format!(
        "Invalid URL ({} {})",
        req.method,
        req.path.trim_start_matches("/openai")
    );
    with_headers(
        error(404, message, "invalid_request_error", None, None),
        seq,
        0,
    )
}

/// What every chunk of one stream shares; renders chunk `i` as one SSE event.
struct ChunkWriter {
    id: String,
    model: String,
    created: u64,
    seq: u64,
    obfuscation: bool,
    include_usage: bool,
    logprobs: Option<Option<()>>,
    service_tier: String,
}

impl ChunkWriter {
    fn event(&self, i: u64, choices: Vec<ChunkChoice>, usage: Option<Option<Usage>>) -> Vec<u8> {
        let c = Chunk {
            id: &self.id,
            object: "chat.completion.chunk",
            created: self.created,
            model: &self.model,
            service_tier: self.service_tier.clone(),
            system_fingerprint: None,
            choices,
            usage,
            obfuscation: self
                .obfuscation
                .then(|| common::alnum(self.seq * 1000 + i, 2 + (i as usize * 7) % 13)),
        };
        let mut out = b"data: ".to_vec();
        out.extend(serde_json::to_vec(&c).unwrap_or_default());
        out.extend_from_slice(b"\n\n");
        out
    }

    /// A one-choice chunk; `usage: null` on every chunk when usage is asked for.
    fn delta(&self, i: u64, delta: Delta, finish_reason: Option<&'static str>) -> Vec<u8> {
        let choice = ChunkChoice {
            index: 0,
            delta,
            logprobs: self.logprobs,
            finish_reason,
        };
        self.event(i, vec![choice], self.include_usage.then_some(None))
    }
}

fn call_id(seq: u64, i: usize) -> String {
    format!("call_{}", common::alnum(seq * 100 + i as u64, 24))
}

/// The SSE body: role chunk, one chunk per output token (made as the stream goes), finish
/// chunk, the usage chunk when asked for, `[DONE]`. Tool calls: the role chunk opens the first
/// call (`content: null`), each call's later chunks carry its argument pieces under its index.
fn stream_events(w: ChunkWriter, answer: Answer, finish: &'static str, u: Usage) -> Response {
    let mut i = 0u64;
    let mut next = || {
        i += 1;
        i
    };
    let mut head = Vec::new();
    if let Answer::Calls { calls, .. } = &answer {
        for (n, c) in calls.iter().enumerate() {
            let start = vec![ToolCallOut { index: Some(n), id: Some(call_id(w.seq, n)), kind: Some("function"), function: FunctionOut { name: Some(c.name.clone()), arguments: String::new() } }];
            let d = if n == 0 {
                Delta { role: Some("assistant"), content: Some(None), tool_calls: Some(start), refusal: Some(None) }
            } else {
                Delta { tool_calls: Some(start), ..Default::default() }
            };
            head.push(w.delta(next(), d, None));
            for piece in &c.pieces {
                let frag = ToolCallOut { index: Some(n), id: None, kind: None, function: FunctionOut { name: None, arguments: piece.clone() } };
                let d = Delta { tool_calls: Some(vec![frag]), ..Default::default() };
                head.push(w.delta(next(), d, None));
            }
        }
    } else {
        let role = Delta { role: Some("assistant"), content: Some(Some(String::new())), refusal: Some(None), ..Default::default() };
        head.push(w.delta(0, role, None));
    }
    let n = 1 + answer.tokens() + i;
    let mut tail = vec![w.delta(n, Delta::default(), Some(finish))];
    if w.include_usage {
        tail.push(w.event(n + 1, Vec::new(), Some(Some(u))));
    }
    tail.push(b"data: [DONE]\n\n".to_vec());
    let words = answer.text_pieces().zip(1u64..).map(move |(piece, i)| {
        let d = Delta { content: Some(Some(piece)), ..Default::default() };
        w.delta(i, d, None)
    });
    let events = head.into_iter().chain(words).chain(tail);
    Response::stream(200, "text/event-stream; charset=utf-8", events)
}

pub fn handle(state: &State, req: &Request) -> Response {
    let seq = state.next_seq();
    if req.path != "/openai/v1/chat/completions" {
        return invalid_url(req, seq);
    }
    if req.method != "POST" {
        return with_headers(
            error(
                405,
                format!(
                    "Invalid method for URL ({} {})",
                    req.method, "/v1/chat/completions"
                ),
                "invalid_request_error",
                None,
                None,
            ),
            seq,
            0,
        );
    }
    if let Err(r) = check_auth(state, req) {
        return with_headers(r, seq, 0);
    }
    let script = state.take_script("openai");
    if let Some(s) = script.as_ref().filter(|s| s.is_override()) {
        let model = serde_json::from_slice::<Value>(&req.body)
            .ok()
            .and_then(|v| v.get("model").and_then(Value::as_str).map(str::to_string))
            .unwrap_or_else(|| "gpt-4o-mini".into());
        let r = s.override_response(|status| error_for_status(status, &model));
        return with_headers(r, seq, 0);
    }
    let p = match parse(&req.body) {
        Ok(p) => p,
        Err(r) => return with_headers(r, seq, 0),
    };
    let prompt = common::input_tokens(&p.texts) + p.images;
    let calls = p.choice.as_ref().filter(|_| !p.last_is_tool).map(|forced| agent::choose(&p.tools, forced.as_deref(), p.parallel));
    let answer = Answer::decide(calls, p.json.as_ref().map(Option::as_ref), p.max_tokens, script.as_ref());
    let finish = match &answer {
        a if a.truncated() => "length",
        Answer::Calls { .. } => "tool_calls",
        _ => "stop",
    };
    let reasoning = if p.reasoning { agent::THINKING_TOKENS } else { 0 };
    let u = usage(prompt, answer.tokens() + reasoning, reasoning, script.as_ref());
    let id = format!("chatcmpl-mock{:016x}", common::fnv1a(&seq.to_be_bytes()));
    let created = common::now_secs();
    let logprobs = if is_reasoning_model(&p.model) {
        None
    } else {
        Some(None)
    };
    let tier = script.as_ref().and_then(|s| s.service_tier.clone()).unwrap_or_else(|| "default".into());
    let mut resp = if p.stream {
        let events = ChunkWriter {
            id,
            model: p.model,
            created,
            seq,
            obfuscation: p.obfuscation,
            include_usage: p.include_usage,
            logprobs,
            service_tier: tier.clone(),
        };
        stream_events(events, answer, finish, u.clone())
    } else {
        let tool_calls = match &answer {
            Answer::Calls { calls, .. } => Some(
                calls
                    .iter()
                    .enumerate()
                    .map(|(n, c)| ToolCallOut { index: None, id: Some(call_id(seq, n)), kind: Some("function"), function: FunctionOut { name: Some(c.name.clone()), arguments: c.arguments() } })
                    .collect(),
            ),
            _ => None,
        };
        let body = Completion {
            id: &id,
            object: "chat.completion",
            created,
            model: &p.model,
            choices: vec![Choice {
                index: 0,
                message: Message {
                    role: "assistant",
                    content: tool_calls.is_none().then(|| answer.text()),
                    refusal: None,
                    annotations: vec![],
                    tool_calls,
                },
                logprobs,
                finish_reason: finish,
            }],
            usage: u.clone(),
            service_tier: tier.clone(),
            system_fingerprint: None,
        };
        let mut out = serde_json::to_vec_pretty(&body).unwrap_or_default();
        out.push(b'\n');
        Response::json_bytes(200, out)
    };
    if let Some(s) = &script {
        s.apply_timing(&mut resp);
    }
    with_headers(resp, seq, u.total_tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_accepts_both_max_token_names() {
        let p =
            parse(br#"{"model":"m","messages":[{"role":"user","content":"Hi"}],"max_tokens":5}"#);
        assert_eq!(p.ok().and_then(|p| p.max_tokens), Some(5));
        let p = parse(br#"{"model":"m","messages":[{"role":"user","content":"Hi"}],"max_completion_tokens":7}"#);
        assert_eq!(p.ok().and_then(|p| p.max_tokens), Some(7));
        assert!(parse(br#"{"model":"m","messages":[]}"#).is_err());
        assert!(parse(b"not json").is_err());
        assert!(parse(
            br#"{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":0}"#
        )
        .is_err());
    }

    #[test]
    fn texts_from_parts() {
        let msgs: Vec<Value> = serde_json::from_str(
            r#"[{"role":"system","content":"abc"},{"role":"user","content":[{"type":"text","text":"de"},{"type":"image_url","image_url":{"url":"x"}},{"type":"text","text":"f"}]},{"role":"assistant","content":null}]"#,
        )
        .unwrap_or_default();
        assert_eq!(message_texts(&msgs), vec!["abc", "def", ""]);
    }

    #[test]
    fn usage_override() {
        let s = Script {
            provider: "openai".into(),
            usage: Some(
                serde_json::json!({"prompt_tokens":1864,"completion_tokens":214,"cached_tokens":1792}),
            ),
            ..Default::default()
        };
        let u = usage(10, 5, 0, Some(&s));
        assert_eq!(
            (u.prompt_tokens, u.completion_tokens, u.total_tokens),
            (1864, 214, 2078)
        );
        assert_eq!(u.prompt_tokens_details.cached_tokens, 1792);
        let u = usage(10, 5, 0, None);
        assert_eq!(
            (u.total_tokens, u.prompt_tokens_details.cached_tokens),
            (15, 0)
        );
    }

    #[test]
    fn reasoning_models() {
        assert!(is_reasoning_model("gpt-5-mini"));
        assert!(is_reasoning_model("o3-mini"));
        assert!(!is_reasoning_model("gpt-4o-mini"));
        assert!(!is_reasoning_model("omni"));
    }

    #[test]
    fn error_shape() {
        let r = invalid_key("sk-wrong-key-123");
        assert_eq!(r.status, 401);
        if let crate::http::Body::Full(b) = r.body {
            let v: Value = serde_json::from_slice(&b).unwrap_or_default();
            assert_eq!(v["error"]["code"], "invalid_api_key");
            assert_eq!(v["error"]["type"], "invalid_request_error");
            assert!(v["error"]["param"].is_null());
        }
    }
}
