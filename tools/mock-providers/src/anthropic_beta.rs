//! The beta check Anthropic's Messages and count_tokens share: a body using a beta feature without
//! its `anthropic-beta` value is Anthropic's 400 (`context_management` needs
//! `context-management-2025-06-27`), so a test sees whether the gateway forwarded the header.

use serde_json::Value;

use crate::http::Request;

/// Body fields that need a beta, with its name.
const NEEDS_BETA: &[(&str, &str)] = &[("context_management", "context-management-2025-06-27")];

/// Anthropic's 400 message when the body uses a beta feature the header does not enable.
pub fn missing_beta(req: &Request) -> Option<String> {
    let v: Value = serde_json::from_slice(&req.body).ok()?;
    let header = req.header("anthropic-beta").unwrap_or("");
    NEEDS_BETA.iter().find(|(field, beta)| v.get(*field).is_some_and(|f| !f.is_null()) && !header.split(',').any(|b| b.trim() == *beta)).map(|(field, beta)| {
        format!("{field}: Extra inputs are not permitted. This feature requires the beta header `anthropic-beta: {beta}`")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(body: &str, beta: Option<&str>) -> Request {
        let mut headers = vec![("x-api-key".to_string(), "k".to_string())];
        if let Some(b) = beta {
            headers.push(("anthropic-beta".into(), b.into()));
        }
        Request { method: "POST".into(), path: "/anthropic/v1/messages/count_tokens".into(), query: String::new(), headers, body: body.as_bytes().to_vec() }
    }

    #[test]
    fn context_management_needs_its_beta() {
        let body = r#"{"context_management":{"edits":[{"type":"clear_thinking_20251015"}]}}"#;
        assert!(missing_beta(&req(body, None)).is_some_and(|m| m.contains("context-management-2025-06-27")));
        assert!(missing_beta(&req(body, Some("claude-code-20250219, context-management-2025-06-27"))).is_none());
        assert!(missing_beta(&req(r#"{"model":"x"}"#, None)).is_none());
    }
}
