//! Chat providers' wire formats: one module per provider, each implementing [`ChatWire`] the same
//! way (build the request, decode stream events or a whole answer and their usage, tell which
//! stream events matter to billing), dispatched by one table ([`wire`]).
//!
//! The gateway asks a provider for what the client asked: a stream, or a whole answer. A whole
//! answer is read and billed once (assembling one from a stream cost a parse per token, about
//! 100 times what the answer costs to pass through); a whole answer that breaks off or never
//! comes reports no usage, so it is billed the hold's bound, like a stream cut before its usage.

pub mod anthropic;
pub mod decoded;
pub mod gemini;
pub mod openai;
pub mod stream;

use crate::chat::ChatRequest;
use crate::config::Secret;
use crate::error::{ApiError, ErrorKind};
use crate::product::UpstreamRequest;
use crate::provider::Provider;
use crate::usage::Usage;
use decoded::Decoded;
use serde_json::Value;

/// Where and how to reach a provider (base URL and secret come from configuration).
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub base_url: String,
    pub api_key: Secret,
}

/// One chat provider's wire format.
pub trait ChatWire: Sync {
    /// The upstream request for `max_tokens` output tokens: a stream when the client asked for
    /// one, else a whole answer (which carries its usage: nothing is assembled from a stream).
    fn build_request(&self, req: &ChatRequest, max_tokens: u64, ep: &Endpoint) -> UpstreamRequest;
    /// Decodes one parsed stream event (`name`: its `event:` field), updating the usage seen.
    fn decode(&self, name: Option<&str>, v: &Value, usage: &mut Option<Usage>) -> Vec<Decoded>;
    /// Decodes a whole (unstreamed) answer into the same vocabulary, its usage included.
    fn decode_whole(&self, v: &Value, usage: &mut Option<Usage>) -> Vec<Decoded>;
    /// Whether a stream event may matter to billing (usage, errors, the end), from its name and
    /// raw data, without parsing it: a passed-through event that does not is forwarded unparsed.
    /// A cheap over-approximation: `true` only costs a parse.
    fn billing_event(&self, _name: Option<&str>, _data: &str) -> bool {
        true
    }
    /// The text of an event that is only a text delta (nothing for billing, no tool call, no
    /// finish), decoded straight from its data without a JSON tree; `None`: decode it fully.
    fn text_delta<'a>(&self, _name: Option<&str>, _data: &'a str) -> Option<std::borrow::Cow<'a, str>> {
        None
    }
    /// True when the stream has no terminator and ends after the chunk with a finish reason
    /// carrying the final usage (Gemini).
    fn final_usage_on_finish(&self) -> bool {
        false
    }
    /// The service tier an event says the call was served at, if it says (the request pins the
    /// standard tier; the answer is checked, since another tier has other prices).
    fn served_tier(&self, _v: &Value) -> Option<String> {
        None
    }
    /// Whether a served tier is the standard one, at the list prices of the table.
    fn is_standard_tier(&self, _tier: &str) -> bool {
        true
    }
    /// The model an event says served the call, when the provider says (Gemini's `modelVersion`).
    fn served_model(&self, _v: &Value) -> Option<String> {
        None
    }
}

/// Whether JSON text has `key` (quoted) as a key: the quote is not escaped (inside a string
/// value a quote is `\"`) and a colon follows. Strings may hold the same bytes escaped, never raw.
pub(crate) fn has_key(json: &str, key: &str) -> bool {
    key_value_at(json, key).is_some()
}

/// Whether `key` (quoted) is a key of the JSON text whose value starts with `first`.
pub(crate) fn key_value_starts(json: &str, key: &str, first: u8) -> bool {
    key_value_at(json, key).is_some_and(|at| json.as_bytes().get(at) == Some(&first))
}

/// The index of the first value byte after an unescaped `key` and its colon.
fn key_value_at(json: &str, key: &str) -> Option<usize> {
    let b = json.as_bytes();
    let mut from = 0;
    while let Some(i) = json[from..].find(key).map(|i| i + from) {
        from = i + key.len();
        if i > 0 && b[i - 1] == b'\\' {
            continue;
        }
        let mut j = from;
        while b.get(j).is_some_and(u8::is_ascii_whitespace) {
            j += 1;
        }
        if b.get(j) != Some(&b':') {
            continue;
        }
        j += 1;
        while b.get(j).is_some_and(u8::is_ascii_whitespace) {
            j += 1;
        }
        return Some(j);
    }
    None
}

/// The wire format of a chat provider.
pub fn wire(p: Provider) -> &'static dyn ChatWire {
    match p {
        Provider::Anthropic => &anthropic::Anthropic,
        Provider::Google => &gemini::Gemini,
        _ => &openai::OpenAi,
    }
}

/// Words of a provider's message that reveal the gateway's own account at the provider (its
/// balance, quota, keys, billing): such messages are replaced by a neutral one (logged in full).
const ACCOUNT_WORDS: &[&str] = &["credit balance", "billing", "quota", "api key", "api_key", "organization", "account", "plan ", "payment", "purchase credits"];

fn reveals_account(message: &str) -> bool {
    let m = message.to_lowercase();
    ACCOUNT_WORDS.iter().any(|w| m.contains(w))
}

/// Prefixes of identifiers of the gateway's own provider accounts (organisations, projects, users,
/// keys, billing accounts), as OpenAI, Anthropic and Google print them in error messages.
const ACCOUNT_ID_PREFIXES: &[&str] = &["org-", "org_", "proj_", "proj-", "project-", "projects/", "user-", "user_", "sk-", "sk_", "acct_", "acct-", "key-", "key_", "billingaccounts/", "organizations/"];

/// One word of a provider's message, or `None` when it identifies an account, a person or a
/// place: identifiers by their prefix, e-mail addresses, URLs (consoles, docs pages naming the
/// project) and long digit runs (Google project numbers).
fn public_word(word: &str) -> Option<&str> {
    let bare = word.trim_matches(|c: char| !c.is_alphanumeric() && c != '-' && c != '_' && c != '/');
    let lower = bare.to_ascii_lowercase();
    let digits = bare.chars().filter(char::is_ascii_digit).count();
    // An identifier has a digit or is long ("user-provided" is a word, "user-4f9a…" is not).
    let id_after = |p: &&str| lower.strip_prefix(*p).is_some_and(|rest| rest.chars().any(|c| c.is_ascii_digit()) || rest.len() >= 16);
    let hides = ACCOUNT_ID_PREFIXES.iter().any(id_after)
        || word.contains('@')
        || lower.contains("://")
        || lower.starts_with("www.")
        || (digits >= 6 && digits * 2 >= bare.len());
    (!hides).then_some(word)
}

/// The part of a provider's request-error message that concerns the client's request: its words,
/// less any account identifier, cut to 300 characters.
pub fn client_reason(message: &str) -> String {
    let words: Vec<&str> = message.split_whitespace().map(|w| public_word(w).unwrap_or("[redacted]")).collect();
    let mut out = words.join(" ");
    if out.len() > 300 {
        let cut = (0..=300).rev().find(|i| out.is_char_boundary(*i)).unwrap_or(0);
        out.truncate(cut);
        out.push('…');
    }
    out
}

/// The field a provider names as the cause of a request error: OpenAI's `param`, Gemini's first
/// field violation.
fn offending_field(v: &Value) -> Option<String> {
    let field = v.pointer("/error/param").and_then(Value::as_str).or_else(|| {
        v.pointer("/error/details")?.as_array()?.iter().find_map(|d| d.pointer("/fieldViolations/0/field").and_then(Value::as_str))
    })?;
    let field = client_reason(field);
    (!field.is_empty() && field.len() <= 100 && !field.contains("[redacted]")).then_some(field)
}

/// Maps a provider's non-2xx answer to what the customer sees. For request errors that explain
/// the customer's mistake, the field and the reason are passed on with every account identifier
/// removed ([`client_reason`]); errors about the gateway's account, auth and server errors get a
/// generic message (the whole answer is logged for operators).
pub fn upstream_error(provider: Provider, status: u16, body: &[u8]) -> ApiError {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let message = v.pointer("/error/message").or_else(|| v.pointer("/detail/message")).and_then(Value::as_str).unwrap_or("").to_string();
    let key_invalid = v.to_string().contains("API_KEY_INVALID");
    let name = provider.as_str();
    match status {
        400 | 404 | 413 | 422 if !key_invalid && !reveals_account(&message) => {
            let mut details = serde_json::json!({ "provider_status": status });
            let field = offending_field(&v);
            if let Some(f) = &field {
                details["param"] = Value::from(f.as_str());
            }
            let reason = client_reason(&message);
            let text = match field {
                Some(f) => format!("{name} rejected the request (field `{f}`): {reason}"),
                None => format!("{name} rejected the request: {reason}"),
            };
            ApiError::invalid(text).with_details(details)
        }
        400 | 402 | 403 | 429 if !key_invalid && reveals_account(&message) => ApiError::unavailable(format!("{name} is unavailable to the gateway right now; retry later")).public(),
        429 | 503 | 529 => ApiError::new(ErrorKind::Unavailable, format!("{name} is overloaded or rate limited; retry later")).public(),
        _ => ApiError::new(ErrorKind::UpstreamError, format!("{name} failed (status {status})")).public(),
    }
}

pub(crate) fn finish_reason_from_anthropic(stop: &str) -> &'static str {
    match stop {
        "max_tokens" => "length",
        "tool_use" => "tool_calls",
        "refusal" => "content_filter",
        _ => "stop",
    }
}

pub(crate) fn finish_reason_from_gemini(reason: &str) -> &'static str {
    match reason {
        "MAX_TOKENS" => "length",
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" => "content_filter",
        _ => "stop",
    }
}

/// `{base}/<path>` without a doubled slash.
pub(crate) fn join(base: &str, path: &str) -> String {
    format!("{}{path}", base.trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_errors_pass_the_provider_message_auth_errors_do_not() {
        let e = upstream_error(Provider::OpenAi, 400, br#"{"error":{"message":"Invalid 'max_tokens'","type":"invalid_request_error"}}"#);
        assert_eq!(e.status(), 400);
        assert!(e.message.contains("Invalid 'max_tokens'"));
        let e = upstream_error(Provider::Anthropic, 401, br#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#);
        assert_eq!(e.status(), 502);
        assert!(!e.message.contains("x-api-key"));
        let e = upstream_error(Provider::Google, 400, br#"{"error":{"code":400,"message":"API key not valid.","details":[{"reason":"API_KEY_INVALID"}]}}"#);
        assert_eq!(e.status(), 502);
        assert_eq!(upstream_error(Provider::Anthropic, 529, b"").status(), 503);
        assert_eq!(upstream_error(Provider::OpenAi, 500, b"oops").status(), 502);
    }

    #[test]
    fn request_errors_keep_the_field_and_reason_but_never_account_identifiers() {
        // Shapes as the providers print them, with identifiers of the gateway's accounts.
        let e = upstream_error(
            Provider::OpenAi,
            404,
            br#"{"error":{"message":"The model `gpt-9` does not exist or project proj_AbC123xyz in org-Zx81kLmn has no access to it. See https://platform.openai.com/settings/proj_AbC123xyz","type":"invalid_request_error","param":"model","code":"model_not_found"}}"#,
        );
        assert_eq!(e.status(), 400);
        let shown = e.public_message();
        assert!(shown.contains("field `model`") && shown.contains("does not exist"), "{shown}");
        for secret in ["proj_AbC123xyz", "org-Zx81kLmn", "platform.openai.com"] {
            assert!(!shown.contains(secret), "{secret} leaked: {shown}");
        }
        let e = upstream_error(
            Provider::Google,
            400,
            br#"{"error":{"code":400,"message":"Invalid value at 'generation_config.temperature' (project 483920174455, owner ops@broker.example)","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.BadRequest","fieldViolations":[{"field":"generation_config.temperature","description":"Invalid value"}]}]}}"#,
        );
        let shown = e.public_message();
        assert!(shown.contains("field `generation_config.temperature`"), "{shown}");
        assert!(!shown.contains("483920174455") && !shown.contains("ops@broker.example"), "{shown}");
        assert_eq!(client_reason(&"x".repeat(400)).chars().count(), 301);
    }

    #[test]
    fn messages_about_the_gateways_account_never_reach_the_client() {
        for (p, status, body) in [
            (Provider::Anthropic, 400, r#"{"type":"error","error":{"type":"invalid_request_error","message":"Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits."}}"#),
            (Provider::OpenAi, 429, r#"{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota"}}"#),
        ] {
            let e = upstream_error(p, status, body.as_bytes());
            assert_eq!(e.status(), 503, "{body}");
            let shown = e.public_message();
            assert!(!shown.contains("credit") && !shown.contains("quota") && !shown.contains("billing"), "{shown}");
        }
    }
}
