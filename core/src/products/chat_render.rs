//! Whole (unstreamed) chat answers in the customer's format, with the gateway's credit figures:
//! the `x_broker` object in the providers' own formats, plain fields in the gateway's own.

use crate::chat::{ChatRequest, Route};
use crate::metering::Charge;
use crate::payer::Bill;
use crate::providers::stream::openai_usage_json;
use crate::usage::Usage;
use serde_json::{json, Value};

/// A tool call of a translated answer (its arguments as JSON text, as OpenAI carries them).
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCallOut {
    pub id: String,
    pub name: String,
    pub arguments: String,
}

/// What a whole answer says, independent of the provider's format.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatOutput {
    pub content: String,
    pub tool_calls: Vec<ToolCallOut>,
    pub usage: Usage,
    /// Normalized to OpenAI's vocabulary: stop, length, tool_calls, content_filter.
    pub finish_reason: Option<String>,
}

/// A provider's own whole answer (passthrough routes) as it came, with `"x_broker": <broker>`
/// spliced in before its closing brace: no parse or re-serialisation of the provider's bytes.
/// `None` when the body is not one JSON object (the caller parsed it as one first).
pub fn splice_broker(body: &[u8], broker: &str) -> Option<Vec<u8>> {
    let end = body.iter().rposition(|b| !b.is_ascii_whitespace())?;
    if body[end] != b'}' {
        return None;
    }
    let inner_empty = body[..end].iter().rposition(|b| !b.is_ascii_whitespace()).is_some_and(|i| body[i] == b'{');
    let mut out = Vec::with_capacity(body.len() + broker.len() + 16);
    out.extend_from_slice(&body[..end]);
    out.extend_from_slice(if inner_empty { b"\"x_broker\":" } else { b",\"x_broker\":" });
    out.extend_from_slice(broker.as_bytes());
    out.extend_from_slice(&body[end..]);
    Some(out)
}

/// A translated whole answer: OpenAI's shape on `/v1/chat/completions`, the gateway's own on
/// `/v1/chat`.
pub fn translated(req: &ChatRequest, out: &ChatOutput, billing: &Bill, charge: &Charge, created: u64) -> Value {
    match req.route {
        Route::Native => {
            let mut v = json!({
                "id": billing.request_id,
                "provider": req.provider.as_str(),
                "model": req.model,
                "content": out.content,
                "finish_reason": out.finish_reason,
                "usage": out.usage.to_public_json(),
                "request_id": billing.request_id,
            });
            if let Some(o) = v.as_object_mut() {
                o.extend(billing.native_fields(charge));
            }
            v
        }
        _ => {
            // As OpenAI answers a tool call: `content` null unless the model also wrote text.
            let content = if out.content.is_empty() && !out.tool_calls.is_empty() { Value::Null } else { json!(out.content) };
            let mut message = json!({ "role": "assistant", "content": content, "refusal": null });
            if !out.tool_calls.is_empty() {
                message["tool_calls"] = out
                    .tool_calls
                    .iter()
                    .map(|c| json!({"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}))
                    .collect();
            }
            json!({
                "id": format!("chatcmpl-{}", billing.request_id),
                "object": "chat.completion",
                "created": created,
                "model": req.model_label(),
                "choices": [{
                    "index": 0,
                    "message": message,
                    "finish_reason": out.finish_reason.clone().unwrap_or_else(|| "stop".into()),
                }],
                "usage": openai_usage_json(&out.usage),
                "x_broker": billing.broker_json(charge),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::splice_broker;
    use serde_json::{json, Value};

    #[test]
    fn the_broker_object_is_spliced_into_the_providers_bytes() {
        let body = b"{\n    \"id\": \"x\",\n    \"usage\": {\"a\": 1}\n}\n";
        let out = splice_broker(body, r#"{"credits_charged":0.05}"#).unwrap();
        assert!(out.starts_with(b"{\n    \"id\": \"x\",\n    \"usage\": {\"a\": 1}"), "the provider's bytes are kept");
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["x_broker"], json!({"credits_charged": 0.05}));
        assert_eq!(v["usage"]["a"], 1);
        let v: Value = serde_json::from_slice(&splice_broker(b" { } ", "1").unwrap()).unwrap();
        assert_eq!(v, json!({"x_broker": 1}));
        assert_eq!(splice_broker(b"[1]", "1"), None);
    }
}
