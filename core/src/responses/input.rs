//! The Responses API's `input` (a string, or a list of items) and `instructions`, parsed into the
//! conversation the chat wires translate: system text, and user/assistant turns of text, images,
//! tool calls and tool results.
//!
//! | item | becomes |
//! |---|---|
//! | `message` user (`input_text`, `input_image`) | a user turn of text and image parts |
//! | `message` system / developer, `instructions` | the system prompt (joined in order) |
//! | `message` assistant (`output_text`, `refusal`) | an assistant turn of text |
//! | `function_call` | a tool call of the assistant turn it follows |
//! | `function_call_output` | a tool result of a user turn (its call must come earlier) |
//! | `reasoning` | Claude's own (its signature in `encrypted_content`): a thinking block back to Claude; others dropped for Anthropic and Gemini; forwarded to OpenAI |
//!
//! For OpenAI the items are forwarded as they are; they are read here only for the prompt's
//! bound (images counted at their token cost) and to refuse what the gateway does not serve.

use crate::chat::fields::allow_only;
use crate::chat::images::{self, Detail, MAX_IMAGES};
use crate::chat::messages::{self, Message, Part, Role, ToolCall, ToolResult};
use super::events::{CLAUDE_REDACTED, CLAUDE_THINKING};
use crate::error::ApiError;
use serde_json::{Map, Value};

/// Items of OpenAI's own client-run tools, forwarded to OpenAI and refused for the others.
const OPENAI_TOOL_ITEMS: &[&str] = &[
    "custom_tool_call", "custom_tool_call_output", "local_shell_call", "local_shell_call_output", "shell_call", "shell_call_output", "apply_patch_call",
    "apply_patch_call_output", "tool_search_call", "tool_search_output",
];

fn invalid(ctx: &str, what: impl std::fmt::Display) -> ApiError {
    ApiError::invalid(format!("{ctx}: {what}"))
}

fn str_field<'a>(o: &'a Map<String, Value>, key: &str, ctx: &str) -> Result<&'a str, ApiError> {
    match o.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        _ => Err(invalid(ctx, format!("`{key}` is required and must be a non-empty string"))),
    }
}

/// One `input_image` part: an https or data URL (`file_id` names a file in the provider account).
fn image(o: &Map<String, Value>, ctx: &str) -> Result<Part, ApiError> {
    allow_only(o, &["type", "image_url", "detail", "file_id"], ctx)?;
    if o.get("file_id").is_some_and(|v| !v.is_null()) {
        return Err(invalid(ctx, "`file_id` images are not supported (files live in the provider account); send `image_url`"));
    }
    let detail = match o.get("detail").filter(|d| !d.is_null()) {
        None => None,
        Some(d) => Some(d.as_str().and_then(Detail::parse).ok_or_else(|| invalid(ctx, "`detail` must be auto, low, high or original"))?),
    };
    Ok(Part::Image(images::from_url(str_field(o, "image_url", ctx)?, detail, ctx)?))
}

/// Content parts of a message or a tool output. `assistant`: output text and refusals.
fn parts(v: &Value, assistant: bool, ctx: &str) -> Result<Vec<Part>, ApiError> {
    let list = match v {
        Value::String(s) => return Ok(vec![Part::Text(s.clone())]),
        Value::Array(l) => l,
        _ => return Err(invalid(ctx, "`content` must be a string or an array of parts")),
    };
    let mut out = Vec::new();
    for (j, p) in list.iter().enumerate() {
        let pctx = format!("{ctx}.content[{j}]");
        let o = p.as_object().ok_or_else(|| invalid(&pctx, "a content part must be an object"))?;
        match o.get("type").and_then(Value::as_str).unwrap_or("") {
            "input_text" | "output_text" => {
                allow_only(o, &["type", "text", "annotations", "logprobs"], &pctx)?;
                let text = o.get("text").and_then(Value::as_str).ok_or_else(|| invalid(&pctx, "a text part needs `text`"))?;
                out.push(Part::Text(text.to_string()));
            }
            "refusal" if assistant => {
                allow_only(o, &["type", "refusal"], &pctx)?;
                out.push(Part::Text(o.get("refusal").and_then(Value::as_str).unwrap_or("").to_string()));
            }
            "input_image" if !assistant => out.push(image(o, &pctx)?),
            "input_file" => return Err(invalid(&pctx, "file inputs are not supported; send images as input_image parts")),
            "input_audio" => return Err(invalid(&pctx, "audio inputs are not supported")),
            other => return Err(invalid(&pctx, format!("content part type `{other}` is not supported here"))),
        }
    }
    Ok(out)
}

/// The tool calls made so far: a result must answer one (and Gemini needs the tool's name).
#[derive(Default)]
struct Calls(Vec<(String, String)>);

impl Calls {
    fn name_of(&self, call_id: &str, ctx: &str) -> Result<String, ApiError> {
        self.0
            .iter()
            .find(|(id, _)| id == call_id)
            .map(|(_, n)| n.clone())
            .ok_or_else(|| invalid(ctx, format!("the function_call_output for `{call_id}` answers no function_call earlier in `input`")))
    }
}

/// Appends a part to the last turn when it has `role` and `fits`, else opens a turn.
fn push(out: &mut Vec<Message>, role: Role, part: Part, fits: impl Fn(&Message) -> bool) {
    match out.last_mut() {
        Some(last) if last.role == role && fits(last) => last.parts.push(part),
        _ => out.push(Message { role, parts: vec![part] }),
    }
}

struct Parsed {
    system: Vec<String>,
    messages: Vec<Message>,
    calls: Calls,
}

fn message(o: &Map<String, Value>, p: &mut Parsed, translated: bool, ctx: &str) -> Result<(), ApiError> {
    if translated {
        allow_only(o, &["type", "role", "content", "id", "status"], ctx)?;
    }
    let content = o.get("content").unwrap_or(&Value::Null);
    match o.get("role").and_then(Value::as_str).unwrap_or("") {
        "system" | "developer" => {
            let text: String = parts(content, false, ctx)?
                .into_iter()
                .map(|part| if let Part::Text(t) = part { Ok(t) } else { Err(invalid(ctx, "system and developer messages take text only")) })
                .collect::<Result<_, _>>()?;
            p.system.push(text);
        }
        "user" => p.messages.push(Message { role: Role::User, parts: parts(content, false, ctx)? }),
        "assistant" => {
            let text: String = parts(content, true, ctx)?.into_iter().filter_map(|part| if let Part::Text(t) = part { Some(t) } else { None }).collect();
            if !text.is_empty() {
                p.messages.push(Message { role: Role::Assistant, parts: vec![Part::Text(text)] });
            }
        }
        other => return Err(invalid(ctx, format!("role `{other}` is not supported (use user, assistant, system or developer)"))),
    }
    Ok(())
}

fn function_call(o: &Map<String, Value>, p: &mut Parsed, translated: bool, ctx: &str) -> Result<(), ApiError> {
    if translated {
        allow_only(o, &["type", "id", "call_id", "name", "arguments", "status"], ctx)?;
    }
    let call_id = str_field(o, "call_id", ctx)?;
    let name = str_field(o, "name", ctx)?;
    let raw = o.get("arguments").and_then(Value::as_str).unwrap_or("");
    let arguments = match serde_json::from_str::<Value>(if raw.trim().is_empty() { "{}" } else { raw }) {
        Ok(v @ Value::Object(_)) => v,
        _ if !translated => Value::String(raw.to_string()),
        _ => return Err(invalid(ctx, "`arguments` must be a JSON object to be translated for this model")),
    };
    if p.calls.0.iter().any(|(id, _)| id == call_id) {
        return Err(invalid(ctx, format!("call_id `{call_id}` is used twice")));
    }
    p.calls.0.push((call_id.to_string(), name.to_string()));
    let call = Part::ToolCall(ToolCall { id: call_id.to_string(), name: name.to_string(), arguments });
    push(&mut p.messages, Role::Assistant, call, |_| true);
    Ok(())
}

fn function_call_output(o: &Map<String, Value>, p: &mut Parsed, translated: bool, ctx: &str) -> Result<(), ApiError> {
    if translated {
        allow_only(o, &["type", "id", "call_id", "output", "status"], ctx)?;
    }
    let call_id = str_field(o, "call_id", ctx)?;
    let name = if translated { p.calls.name_of(call_id, ctx)? } else { String::new() };
    let content = match o.get("output") {
        Some(Value::String(s)) => vec![Part::Text(s.clone())],
        Some(v @ Value::Array(_)) => parts(v, false, ctx)?,
        _ => return Err(invalid(ctx, "`output` is required and must be a string or an array of parts")),
    };
    let result = Part::ToolResult(ToolResult { call_id: call_id.to_string(), name, content, is_error: false });
    push(&mut p.messages, Role::User, result, |m| m.parts.iter().all(|x| matches!(x, Part::ToolResult(_))));
    Ok(())
}

/// A `reasoning` item: Claude's own signed thinking (marked in `encrypted_content` by the gateway)
/// goes back to Claude as its thinking block; any other reasoning (OpenAI's) means nothing to
/// Anthropic or Gemini and is dropped. (Gemini drops Claude's too.)
fn reasoning(o: &Map<String, Value>, p: &mut Parsed, translated: bool, ctx: &str) -> Result<(), ApiError> {
    if !translated {
        return Ok(());
    }
    allow_only(o, &["type", "id", "summary", "content", "encrypted_content", "status"], ctx)?;
    let encrypted = o.get("encrypted_content").and_then(Value::as_str).unwrap_or("");
    let part = if let Some(signature) = encrypted.strip_prefix(CLAUDE_THINKING) {
        let text: String = o.get("summary").and_then(Value::as_array).into_iter().flatten().filter_map(|s| s.get("text").and_then(Value::as_str)).collect();
        Part::Thinking { text, signature: signature.to_string(), redacted: false }
    } else if let Some(data) = encrypted.strip_prefix(CLAUDE_REDACTED) {
        Part::Thinking { text: data.to_string(), signature: String::new(), redacted: true }
    } else {
        return Ok(());
    };
    push(&mut p.messages, Role::Assistant, part, |_| true);
    Ok(())
}

/// `input` and `instructions`: the system prompt and the turns. `translated`: for a provider
/// other than OpenAI (every item must then have a faithful translation).
pub fn parse(m: &Map<String, Value>, translated: bool) -> Result<(Option<String>, Vec<Message>), ApiError> {
    let mut p = Parsed { system: Vec::new(), messages: Vec::new(), calls: Calls::default() };
    match m.get("instructions") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => p.system.push(s.clone()),
        Some(_) => return Err(ApiError::invalid("`instructions` must be a string")),
    }
    let items = match m.get("input") {
        Some(Value::String(s)) if !s.is_empty() => {
            p.messages.push(Message { role: Role::User, parts: vec![Part::Text(s.clone())] });
            &[][..]
        }
        Some(Value::Array(list)) if !list.is_empty() => list.as_slice(),
        _ => return Err(ApiError::invalid("`input` is required: a non-empty string or a non-empty array of items")),
    };
    for (i, item) in items.iter().enumerate() {
        let ctx = format!("input[{i}]");
        let o = item.as_object().ok_or_else(|| invalid(&ctx, "an input item must be an object"))?;
        // An item without `type` is a message (`{"role": "user", "content": "..."}`).
        match o.get("type").and_then(Value::as_str).unwrap_or("message") {
            "message" => message(o, &mut p, translated, &ctx)?,
            "function_call" => function_call(o, &mut p, translated, &ctx)?,
            "function_call_output" => function_call_output(o, &mut p, translated, &ctx)?,
            "reasoning" => reasoning(o, &mut p, translated, &ctx)?,
            t if !translated && OPENAI_TOOL_ITEMS.contains(&t) => {}
            // Tools declared inside the input (Codex on newer OpenAI models): checked like `tools`.
            "additional_tools" if !translated => {
                let tools = o.get("tools").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
                super::tools::check_tool_list(tools, &format!("{ctx}.tools"), false)?;
            }
            "item_reference" => return Err(invalid(&ctx, "`item_reference` items are not supported: the gateway stores no items to refer to")),
            t => return Err(invalid(&ctx, format!("input item type `{t}` is not supported for this model"))),
        }
    }
    if !p.messages.iter().any(|msg| msg.role == Role::User) {
        return Err(ApiError::invalid("`input` needs at least one user message"));
    }
    let n = messages::images(&p.messages).count();
    if n > MAX_IMAGES {
        return Err(ApiError::invalid(format!("the request has {n} images; at most {MAX_IMAGES} are accepted")));
    }
    let system = p.system.into_iter().filter(|s| !s.is_empty()).collect::<Vec<_>>();
    Ok(((!system.is_empty()).then(|| system.join("\n\n")), p.messages))
}
