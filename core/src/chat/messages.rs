//! The conversation, independent of its wire format: messages of content parts (text, image,
//! tool call, tool result), parsed from OpenAI's and Anthropic's shapes and checked.
//!
//! OpenAI's `tool` role is folded into user turns of tool results (the shape Anthropic and Gemini
//! use). Every tool result must answer a tool call an earlier assistant turn made: a result
//! without its call is a 400 here, not a provider error later. Content the gateway cannot bound
//! or price (audio, files, documents, server-tool results) is refused by name.

use super::fields::allow_only;
use super::images::{self, Detail, Image, MAX_IMAGES};
use crate::error::ApiError;
use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    User,
    Assistant,
}

impl Role {
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

/// A tool call an assistant turn made.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// The arguments: a JSON object, or (only when the provider is OpenAI, which takes any
    /// string back) the client's text when it is not one.
    pub arguments: Value,
}

impl ToolCall {
    /// The arguments as OpenAI carries them: JSON text.
    pub fn arguments_text(&self) -> String {
        match &self.arguments {
            Value::String(s) => s.clone(),
            v => v.to_string(),
        }
    }
}

/// The result of a tool call, sent back in a user turn.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolResult {
    pub call_id: String,
    /// The called tool's name (from the call it answers; Gemini needs it).
    pub name: String,
    /// Text and image parts.
    pub content: Vec<Part>,
    pub is_error: bool,
}

impl ToolResult {
    pub fn text(&self) -> String {
        self.content.iter().filter_map(|p| if let Part::Text(t) = p { Some(t.as_str()) } else { None }).collect()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    Text(String),
    Image(Image),
    ToolCall(ToolCall),
    ToolResult(ToolResult),
    /// Claude's own signed thinking, sent back in a tool loop (`redacted`: its encrypted form,
    /// `text` then holds the data). Only the Responses route carries it; other providers drop it.
    Thinking { text: String, signature: String, redacted: bool },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub role: Role,
    pub parts: Vec<Part>,
}

impl Message {
    pub fn text(&self) -> String {
        self.parts.iter().filter_map(|p| if let Part::Text(t) = p { Some(t.as_str()) } else { None }).collect()
    }

    pub fn tool_calls(&self) -> impl Iterator<Item = &ToolCall> {
        self.parts.iter().filter_map(|p| if let Part::ToolCall(c) = p { Some(c) } else { None })
    }
}

/// Every image of a conversation, tool results included.
pub fn images(messages: &[Message]) -> impl Iterator<Item = &Image> {
    messages.iter().flat_map(|m| m.parts.iter()).flat_map(|p| match p {
        Part::Image(i) => vec![i],
        Part::ToolResult(r) => r.content.iter().filter_map(|c| if let Part::Image(i) = c { Some(i) } else { None }).collect(),
        _ => vec![],
    })
}

/// What a route lets OpenAI-style messages carry.
#[derive(Debug, Clone, Copy)]
pub struct OpenAiRules {
    /// Tool calls and tool results (not on `/v1/chat`, which has no tools).
    pub tools: bool,
    /// Tool-call arguments must be JSON objects (they are translated for another provider).
    pub object_arguments: bool,
}

/// Checks tool results against the calls issued before them.
#[derive(Default)]
struct Calls {
    issued: Vec<(String, String)>,
}

impl Calls {
    fn issue(&mut self, id: &str, name: &str, ctx: &str) -> Result<(), ApiError> {
        if self.issued.iter().any(|(i, _)| i == id) {
            return Err(ApiError::invalid(format!("{ctx}: tool call id `{id}` is used twice")));
        }
        self.issued.push((id.to_string(), name.to_string()));
        Ok(())
    }

    /// The name of the tool `id` called.
    fn answer(&self, id: &str, ctx: &str) -> Result<String, ApiError> {
        self.issued
            .iter()
            .find(|(i, _)| i == id)
            .map(|(_, n)| n.clone())
            .ok_or_else(|| ApiError::invalid(format!("{ctx}: the tool result for `{id}` answers no tool call of an earlier assistant message")))
    }
}

fn non_empty_str<'a>(v: Option<&'a Value>, what: &str, ctx: &str) -> Result<&'a str, ApiError> {
    match v {
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        _ => Err(ApiError::invalid(format!("{ctx}: `{what}` is required and must be a non-empty string"))),
    }
}

/// Text of a content value that may only hold text: a string or text parts.
pub fn content_text(v: &Value, ctx: &str) -> Result<String, ApiError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Null => Ok(String::new()),
        Value::Array(parts) => {
            let mut out = String::new();
            for p in parts {
                let ty = p.get("type").and_then(Value::as_str).unwrap_or("text");
                if ty != "text" {
                    return Err(ApiError::invalid(format!("{ctx}: content part type `{ty}` is not supported here; only text is accepted")));
                }
                out.push_str(p.get("text").and_then(Value::as_str).ok_or_else(|| ApiError::invalid(format!("{ctx}: a text part needs `text`")))?);
            }
            Ok(out)
        }
        _ => Err(ApiError::invalid(format!("{ctx}: `content` must be a string or an array of parts"))),
    }
}

/// An OpenAI user content value: a string, or text and image parts.
fn openai_user_parts(v: &Value, ctx: &str) -> Result<Vec<Part>, ApiError> {
    let Value::Array(list) = v else {
        return Ok(vec![Part::Text(content_text(v, ctx)?)]);
    };
    let mut parts = Vec::new();
    for (j, p) in list.iter().enumerate() {
        let pctx = format!("{ctx}.content[{j}]");
        match p.get("type").and_then(Value::as_str).unwrap_or("") {
            "text" => parts.push(Part::Text(p.get("text").and_then(Value::as_str).ok_or_else(|| ApiError::invalid(format!("{pctx}: a text part needs `text`")))?.to_string())),
            "image_url" => {
                let iu = p.get("image_url").ok_or_else(|| ApiError::invalid(format!("{pctx}: an image_url part needs `image_url`")))?;
                let (url, detail) = match iu {
                    Value::String(u) => (u.as_str(), None),
                    Value::Object(o) => {
                        allow_only(o, &["url", "detail"], &format!("{pctx}.image_url"))?;
                        let detail = match o.get("detail").filter(|d| !d.is_null()) {
                            None => None,
                            Some(d) => Some(d.as_str().and_then(Detail::parse).ok_or_else(|| ApiError::invalid(format!("{pctx}: `detail` must be auto, low, high or original")))?),
                        };
                        (non_empty_str(o.get("url"), "image_url.url", &pctx)?, detail)
                    }
                    _ => return Err(ApiError::invalid(format!("{pctx}: `image_url` must be an object with `url`"))),
                };
                parts.push(Part::Image(images::from_url(url, detail, &pctx)?));
            }
            "input_audio" => return Err(ApiError::invalid(format!("{pctx}: audio inputs are not supported"))),
            "file" => return Err(ApiError::invalid(format!("{pctx}: file inputs are not supported; send images as image_url parts"))),
            other => return Err(ApiError::invalid(format!("{pctx}: content part type `{other}` is not supported (text and image_url are)"))),
        }
    }
    Ok(parts)
}

/// An OpenAI assistant content value: a string, or text and refusal parts.
fn openai_assistant_text(v: &Value, ctx: &str) -> Result<String, ApiError> {
    let Value::Array(list) = v else {
        return content_text(v, ctx);
    };
    let mut out = String::new();
    for p in list {
        match p.get("type").and_then(Value::as_str).unwrap_or("") {
            "text" => out.push_str(p.get("text").and_then(Value::as_str).unwrap_or("")),
            "refusal" => out.push_str(p.get("refusal").and_then(Value::as_str).unwrap_or("")),
            other => return Err(ApiError::invalid(format!("{ctx}: assistant content part type `{other}` is not supported"))),
        }
    }
    Ok(out)
}

fn openai_tool_calls(v: &Value, rules: OpenAiRules, calls: &mut Calls, ctx: &str) -> Result<Vec<Part>, ApiError> {
    let Value::Array(list) = v else {
        return Err(ApiError::invalid(format!("{ctx}: `tool_calls` must be an array")));
    };
    let mut parts = Vec::new();
    for (j, c) in list.iter().enumerate() {
        let cctx = format!("{ctx}.tool_calls[{j}]");
        let Some(o) = c.as_object() else {
            return Err(ApiError::invalid(format!("{cctx}: a tool call must be an object")));
        };
        let id = non_empty_str(o.get("id"), "id", &cctx)?;
        match o.get("type").and_then(Value::as_str) {
            Some("function") => {}
            // OpenAI's freeform custom tools: OpenAI's own; nothing to translate them to.
            Some("custom") if !rules.object_arguments => {
                let name = non_empty_str(o.get("custom").and_then(|c| c.get("name")), "custom.name", &cctx)?;
                let input = o.get("custom").and_then(|c| c.get("input")).and_then(Value::as_str).unwrap_or("");
                calls.issue(id, name, &cctx)?;
                parts.push(Part::ToolCall(ToolCall { id: id.to_string(), name: name.to_string(), arguments: Value::String(input.to_string()) }));
                continue;
            }
            _ => return Err(ApiError::invalid(format!("{cctx}: only `type: \"function\"` tool calls are supported for this model"))),
        }
        allow_only(o, &["id", "type", "function"], &cctx)?;
        let f = o.get("function").ok_or_else(|| ApiError::invalid(format!("{cctx}: `function` is required")))?;
        let name = non_empty_str(f.get("name"), "function.name", &cctx)?;
        let raw = match f.get("arguments") {
            Some(Value::String(s)) => s.as_str(),
            None | Some(Value::Null) => "{}",
            Some(_) => return Err(ApiError::invalid(format!("{cctx}: `function.arguments` must be a string of JSON"))),
        };
        let arguments = match serde_json::from_str::<Value>(if raw.trim().is_empty() { "{}" } else { raw }) {
            Ok(v @ Value::Object(_)) => v,
            _ if !rules.object_arguments => Value::String(raw.to_string()),
            _ => return Err(ApiError::invalid(format!("{cctx}: `function.arguments` must be a JSON object to be translated for this model"))),
        };
        calls.issue(id, name, &cctx)?;
        parts.push(Part::ToolCall(ToolCall { id: id.to_string(), name: name.to_string(), arguments }));
    }
    Ok(parts)
}

/// Removes from OpenAI-style messages what agents carry back from an answer but a request does
/// not take: keys set to `null`, an assistant message's `annotations` and the SDK helpers'
/// `parsed`, a tool call's `index` (from stream accumulation) and `parsed_arguments`. Agents pass
/// `choices[0].message` back as is; none of these changes the answer or the price.
pub fn sanitize_openai(list: &mut [Value]) {
    for msg in list.iter_mut() {
        let Some(o) = msg.as_object_mut() else { continue };
        o.retain(|_, v| !v.is_null());
        if o.get("role").and_then(Value::as_str) == Some("assistant") {
            o.remove("annotations");
            o.remove("parsed");
        }
        for call in o.get_mut("tool_calls").and_then(Value::as_array_mut).into_iter().flatten() {
            if let Some(c) = call.as_object_mut() {
                c.remove("index");
                if let Some(f) = c.get_mut("function").and_then(Value::as_object_mut) {
                    f.remove("parsed_arguments");
                }
            }
        }
    }
}

/// OpenAI-style `messages` (also the native route's): system/developer text goes to `system`,
/// `tool` messages become user turns of tool results.
pub fn parse_openai(list: &[Value], rules: OpenAiRules) -> Result<(Option<String>, Vec<Message>), ApiError> {
    if list.is_empty() {
        return Err(ApiError::invalid("`messages` must not be empty"));
    }
    let mut system: Vec<String> = Vec::new();
    let mut out: Vec<Message> = Vec::new();
    let mut calls = Calls::default();
    for (i, msg) in list.iter().enumerate() {
        let ctx = format!("messages[{i}]");
        let Some(o) = msg.as_object() else {
            return Err(ApiError::invalid(format!("{ctx}: a message must be an object")));
        };
        let role = o.get("role").and_then(Value::as_str).ok_or_else(|| ApiError::invalid(format!("{ctx}: `role` is required")))?;
        let content = o.get("content").unwrap_or(&Value::Null);
        let tools_refused = || ApiError::invalid(format!("{ctx}: tool calls and tool results are not supported on this route; use /v1/chat/completions"));
        match role {
            "system" | "developer" => {
                allow_only(o, &["role", "content", "name"], &ctx)?;
                system.push(content_text(content, &ctx)?);
            }
            "user" => {
                allow_only(o, &["role", "content", "name"], &ctx)?;
                out.push(Message { role: Role::User, parts: openai_user_parts(content, &ctx)? });
            }
            "assistant" => {
                allow_only(o, &["role", "content", "name", "tool_calls", "refusal"], &ctx)?;
                let mut parts = Vec::new();
                let text = openai_assistant_text(content, &ctx)?;
                if !text.is_empty() {
                    parts.push(Part::Text(text));
                }
                if let Some(tc) = o.get("tool_calls").filter(|v| !v.is_null()) {
                    if !rules.tools {
                        return Err(tools_refused());
                    }
                    parts.extend(openai_tool_calls(tc, rules, &mut calls, &ctx)?);
                }
                out.push(Message { role: Role::Assistant, parts });
            }
            "tool" => {
                if !rules.tools {
                    return Err(tools_refused());
                }
                allow_only(o, &["role", "content", "tool_call_id", "name"], &ctx)?;
                let id = non_empty_str(o.get("tool_call_id"), "tool_call_id", &ctx)?;
                let name = calls.answer(id, &ctx)?;
                let result = Part::ToolResult(ToolResult { call_id: id.to_string(), name, content: vec![Part::Text(content_text(content, &ctx)?)], is_error: false });
                // Consecutive tool messages answer one assistant turn: one user turn of results.
                match out.last_mut() {
                    Some(last) if last.role == Role::User && last.parts.iter().all(|p| matches!(p, Part::ToolResult(_))) => last.parts.push(result),
                    _ => out.push(Message { role: Role::User, parts: vec![result] }),
                }
            }
            "function" => return Err(ApiError::invalid(format!("{ctx}: the legacy `function` role is not supported; use `tool`"))),
            other => return Err(ApiError::invalid(format!("{ctx}: role `{other}` is not supported here (use system, developer, user, assistant or tool)"))),
        }
    }
    if !out.iter().any(|m| m.role == Role::User) {
        return Err(ApiError::invalid("`messages` needs at least one user message"));
    }
    check_image_count(&out)?;
    Ok(((!system.is_empty()).then(|| system.join("\n\n")), out))
}

fn check_image_count(messages: &[Message]) -> Result<(), ApiError> {
    let n = images(messages).count();
    if n > MAX_IMAGES {
        return Err(ApiError::invalid(format!("the request has {n} images; at most {MAX_IMAGES} are accepted")));
    }
    Ok(())
}

/// One Anthropic image block's source.
fn anthropic_image(b: &Map<String, Value>, ctx: &str) -> Result<Image, ApiError> {
    let src = b.get("source").and_then(Value::as_object).ok_or_else(|| ApiError::invalid(format!("{ctx}: an image block needs a `source` object")))?;
    match src.get("type").and_then(Value::as_str).unwrap_or("") {
        "base64" => {
            let media_type = non_empty_str(src.get("media_type"), "source.media_type", ctx)?;
            let data = non_empty_str(src.get("data"), "source.data", ctx)?;
            images::from_base64(media_type, data, None, ctx)
        }
        "url" => {
            let url = non_empty_str(src.get("url"), "source.url", ctx)?;
            images::check_https_url(url).map_err(|why| ApiError::invalid(format!("{ctx}: {why}")))?;
            Ok(Image { source: images::ImageSource::Url(url.to_string()), detail: None, size: None })
        }
        other => Err(ApiError::invalid(format!("{ctx}: image source type `{other}` is not supported (base64 and url are)"))),
    }
}

/// Anthropic `content` blocks of one message (or a tool result's nested content).
fn anthropic_blocks(v: &Value, role: Role, calls: &mut Calls, ctx: &str, nested: bool) -> Result<Vec<Part>, ApiError> {
    let list = match v {
        Value::String(s) => return Ok(vec![Part::Text(s.clone())]),
        Value::Array(l) => l,
        _ => return Err(ApiError::invalid(format!("{ctx}: `content` must be a string or an array of blocks"))),
    };
    let mut parts = Vec::new();
    for (j, b) in list.iter().enumerate() {
        let bctx = format!("{ctx}.content[{j}]");
        let Some(o) = b.as_object() else {
            return Err(ApiError::invalid(format!("{bctx}: a content block must be an object")));
        };
        let ty = o.get("type").and_then(Value::as_str).unwrap_or("");
        match (ty, role) {
            ("text", _) => parts.push(Part::Text(o.get("text").and_then(Value::as_str).ok_or_else(|| ApiError::invalid(format!("{bctx}: a text block needs `text`")))?.to_string())),
            ("image", Role::User) => parts.push(Part::Image(anthropic_image(o, &bctx)?)),
            ("tool_use", Role::Assistant) if !nested => {
                let id = non_empty_str(o.get("id"), "id", &bctx)?;
                let name = non_empty_str(o.get("name"), "name", &bctx)?;
                let input = o.get("input").filter(|i| i.is_object()).ok_or_else(|| ApiError::invalid(format!("{bctx}: a tool_use block needs an `input` object")))?;
                calls.issue(id, name, &bctx)?;
                parts.push(Part::ToolCall(ToolCall { id: id.to_string(), name: name.to_string(), arguments: input.clone() }));
            }
            ("tool_result", Role::User) if !nested => {
                let id = non_empty_str(o.get("tool_use_id"), "tool_use_id", &bctx)?;
                let name = calls.answer(id, &bctx)?;
                let content = match o.get("content") {
                    None | Some(Value::Null) => Vec::new(),
                    Some(c) => anthropic_blocks(c, Role::User, calls, &bctx, true)?,
                };
                let is_error = o.get("is_error").and_then(Value::as_bool).unwrap_or(false);
                parts.push(Part::ToolResult(ToolResult { call_id: id.to_string(), name, content, is_error }));
            }
            // Thinking blocks travel back unchanged in tool loops; they are the provider's own.
            ("thinking" | "redacted_thinking", Role::Assistant) if !nested => {}
            ("image" | "tool_result" | "tool_use" | "thinking" | "redacted_thinking", _) => {
                return Err(ApiError::invalid(format!("{bctx}: a `{ty}` block is not allowed in a {} message here", role.as_str())))
            }
            (other, _) => return Err(ApiError::invalid(format!("{bctx}: content block type `{other}` is not supported (text, image, tool_use, tool_result and thinking are)"))),
        }
    }
    Ok(parts)
}

/// Anthropic `messages`: user and assistant turns of blocks.
pub fn parse_anthropic(list: &[Value]) -> Result<Vec<Message>, ApiError> {
    if list.is_empty() {
        return Err(ApiError::invalid("`messages` must not be empty"));
    }
    let mut calls = Calls::default();
    let mut out = Vec::new();
    for (i, msg) in list.iter().enumerate() {
        let ctx = format!("messages[{i}]");
        // `system` turns with their own `output_config` (Claude Code's per-turn control beta):
        // prompt text and an effort within `max_tokens`, read here as the user's side of the
        // conversation (this route forwards the body as sent).
        let (role, keys): (Role, &[&str]) = match msg.get("role").and_then(Value::as_str) {
            Some("user") => (Role::User, &["role", "content"]),
            Some("assistant") => (Role::Assistant, &["role", "content"]),
            Some("system") => (Role::User, &["role", "content", "output_config"]),
            _ => return Err(ApiError::invalid(format!("{ctx}: `role` must be user, assistant or system"))),
        };
        if let Some(o) = msg.as_object() {
            allow_only(o, keys, &ctx)?;
            if let Some(oc) = o.get("output_config").filter(|v| !v.is_null()) {
                let oc = oc.as_object().ok_or_else(|| ApiError::invalid(format!("{ctx}: `output_config` must be an object")))?;
                allow_only(oc, &["effort"], &format!("{ctx}.output_config"))?;
            }
        }
        let parts = anthropic_blocks(msg.get("content").unwrap_or(&Value::Null), role, &mut calls, &ctx, false)?;
        out.push(Message { role, parts });
    }
    check_image_count(&out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const TOOLS: OpenAiRules = OpenAiRules { tools: true, object_arguments: true };

    fn openai(v: Value, rules: OpenAiRules) -> Result<(Option<String>, Vec<Message>), ApiError> {
        parse_openai(v.as_array().unwrap(), rules)
    }

    #[test]
    fn a_tool_loop_folds_tool_messages_into_one_user_turn() {
        let (system, msgs) = openai(
            json!([
                {"role": "developer", "content": "be brief"},
                {"role": "user", "content": "weather in Paris and Rome?"},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                    {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Rome\"}"}}]},
                {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
                {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "21C"}]},
            ]),
            TOOLS,
        )
        .unwrap();
        assert_eq!(system.as_deref(), Some("be brief"));
        assert_eq!(msgs.len(), 3);
        assert_eq!(msgs[1].tool_calls().map(|c| c.arguments["city"].as_str().unwrap()).collect::<Vec<_>>(), ["Paris", "Rome"]);
        let Part::ToolResult(r) = &msgs[2].parts[1] else { panic!() };
        assert_eq!((r.call_id.as_str(), r.name.as_str(), r.text()), ("call_2", "get_weather", "21C".to_string()));
        assert_eq!(msgs[2].role, Role::User);
    }

    #[test]
    fn malformed_tool_messages_are_clear_400s() {
        let call = json!({"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]});
        for (msgs, rules, needle) in [
            (json!([{"role": "user", "content": "x"}, {"role": "tool", "tool_call_id": "nope", "content": "r"}]), TOOLS, "answers no tool call"),
            (json!([{"role": "user", "content": "x"}, {"role": "tool", "content": "r"}]), TOOLS, "`tool_call_id` is required"),
            (json!([{"role": "user", "content": "x"}, call, {"role": "tool", "tool_call_id": "c1", "content": "r"}]), OpenAiRules { tools: false, object_arguments: false }, "not supported on this route"),
            (json!([{"role": "user", "content": "x"}, {"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "not json"}}]}]), TOOLS, "must be a JSON object"),
            (json!([{"role": "user", "content": "x"}, {"role": "assistant", "tool_calls": [{"id": "c", "type": "custom", "custom": {}}]}]), TOOLS, "only `type: \"function\"`"),
            (json!([{"role": "user", "content": "x"}, call, call]), TOOLS, "used twice"),
            (json!([{"role": "user", "content": "x"}, {"role": "function", "name": "f", "content": "r"}]), TOOLS, "legacy"),
            (json!([{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]), TOOLS, "audio"),
            (json!([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://x.com/a.png"}}]}]), TOOLS, "https://"),
            (json!([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x.com/a.png", "detail": "ultra"}}]}]), TOOLS, "`detail`"),
            (json!([{"role": "user", "content": "x", "audio": {}}]), TOOLS, "`audio` is not supported"),
            (json!([{"role": "assistant", "content": "x"}]), TOOLS, "at least one user message"),
        ] {
            let e = openai(msgs.clone(), rules).unwrap_err();
            assert_eq!(e.status(), 400);
            assert!(e.message.contains(needle), "{msgs}: {}", e.message);
        }
        // What the SDKs hand back from an answer is taken back without its response-only keys.
        let mut list = json!([{"role": "user", "content": "x"}, {"role": "assistant", "content": null, "refusal": null, "annotations": [], "parsed": null,
            "tool_calls": [{"id": "c", "type": "function", "index": 0, "function": {"name": "f", "arguments": "{}", "parsed_arguments": {}}}]}]);
        sanitize_openai(list.as_array_mut().unwrap());
        assert_eq!(list[1], json!({"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}));
        assert!(parse_openai(list.as_array().unwrap(), TOOLS).is_ok());
        // OpenAI itself takes any argument text back: passed through when not translated.
        let (_, m) = openai(json!([{"role": "user", "content": "x"}, {"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{broken"}}]}]), OpenAiRules { tools: true, object_arguments: false }).unwrap();
        assert_eq!(m[1].tool_calls().next().unwrap().arguments_text(), "{broken");
    }

    #[test]
    fn images_come_from_https_or_data_urls() {
        let png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";
        let (_, m) = openai(
            json!([{"role": "user", "content": [
                {"type": "text", "text": "what is this?"},
                {"type": "image_url", "image_url": {"url": "https://upload.wikimedia.org/a.jpg", "detail": "low"}},
                {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{png}")}},
            ]}]),
            TOOLS,
        )
        .unwrap();
        let imgs: Vec<&Image> = images(&m).collect();
        assert_eq!(imgs.len(), 2);
        assert_eq!((imgs[0].detail, imgs[0].size), (Some(Detail::Low), None));
        assert_eq!(imgs[1].size, Some((1, 1)));
        let many: Vec<Value> = (0..=MAX_IMAGES).map(|_| json!({"type": "image_url", "image_url": {"url": "https://example.com/a.png"}})).collect();
        assert!(openai(json!([{"role": "user", "content": many}]), TOOLS).unwrap_err().message.contains("at most 100"));
    }

    #[test]
    fn anthropic_blocks_carry_tools_images_and_thinking() {
        let m = parse_anthropic(
            json!([
                {"role": "user", "content": [{"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}}, {"type": "text", "text": "and the weather?"}]},
                {"role": "assistant", "content": [{"type": "thinking", "thinking": "hm", "signature": "s"}, {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "18C"}]}]},
            ])
            .as_array()
            .unwrap(),
        )
        .unwrap();
        assert_eq!(images(&m).count(), 1);
        assert_eq!(m[1].tool_calls().next().unwrap().name, "get_weather");
        let Part::ToolResult(r) = &m[2].parts[0] else { panic!() };
        assert_eq!((r.name.as_str(), r.text()), ("get_weather", "18C".to_string()));
        for (msgs, needle) in [
            (json!([{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_x", "content": "r"}]}]), "answers no tool call"),
            (json!([{"role": "user", "content": [{"type": "document", "source": {}}]}]), "`document` is not supported"),
            (json!([{"role": "user", "content": [{"type": "image", "source": {"type": "file", "file_id": "f"}}]}]), "`file` is not supported"),
            (json!([{"role": "user", "content": [{"type": "image", "source": {"type": "url", "url": "https://127.0.0.1/a.png"}}]}]), "IP address"),
            (json!([{"role": "user", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}]}]), "not allowed in a user message"),
            (json!([{"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "f"}]}]), "`input` object"),
            (json!([{"role": "tool", "content": "x"}]), "user, assistant or system"),
            (json!([{"role": "system", "content": "x", "output_config": {"format": {}}}]), "`format` is not supported"),
            (json!([{"role": "user", "content": "x", "output_config": {"effort": "low"}}]), "`output_config` is not supported"),
        ] {
            let e = parse_anthropic(msgs.as_array().unwrap()).unwrap_err();
            assert!(e.message.contains(needle), "{msgs}: {}", e.message);
        }
    }
}
