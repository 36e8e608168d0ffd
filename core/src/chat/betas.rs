//! Anthropic's `anthropic-beta` header on `/v1/messages` and `/v1/messages/count_tokens`: which
//! beta features are forwarded, which are refused, which are dropped.
//!
//! A beta can change what a call costs (the long-context beta reprices every token of a prompt
//! over 200k; fast mode multiplies the price), so the header is never forwarded as it came:
//!
//! - **Forwarded** ([`FORWARDED`]): betas that change neither the price of a token nor what is
//!   billed outside token usage, each with its reason (the same table is in the OpenAPI field
//!   table of `/v1/messages`).
//! - **Refused** ([`REFUSED`], 400 naming the beta): betas that change the price, which the
//!   price table does not hold.
//! - **Dropped**: any other beta. Clients such as Claude Code add new betas with every release;
//!   refusing them would break the client at each one, while dropping is safe for money: the
//!   provider then serves its standard, list-priced behaviour. A body field that needs a dropped
//!   beta is refused by the route's field allowlist or answered by the provider's own 400. The
//!   dropped names are told in the `x-broker-dropped-betas` response header.

use crate::error::ApiError;

/// Betas forwarded to Anthropic, each with why it leaves the price as listed.
pub const FORWARDED: &[(&str, &str)] = &[
    ("claude-code-20250219", "Claude Code's client marker: changes no price and no billed usage"),
    ("interleaved-thinking-2025-05-14", "thinking between tool calls: thinking tokens are output tokens, billed and bounded by `max_tokens`"),
    ("context-management-2025-06-27", "enables `context_management` edits, which only clear earlier turns from the prompt (fewer input tokens, reported in usage)"),
    ("per-turn-control-2026-07-01", "`system` turns inside `messages` with their own `output_config.effort`: prompt text and an effort within `max_tokens`"),
    ("effort-2025-11-24", "`output_config.effort`: how hard the model thinks, within `max_tokens` at the output price"),
    ("advanced-tool-use-2025-11-20", "deferred tool loading (`defer_loading`) on custom tools: tokens only (server tools stay refused by the `tools` check)"),
    ("fine-grained-tool-streaming-2025-05-14", "streams tool arguments in smaller pieces: same tokens"),
    ("token-efficient-tools-2025-02-19", "tool calls in fewer output tokens: billed as reported"),
    ("prompt-caching-2024-07-31", "prompt caching (now generally available): cache reads and writes are priced classes"),
    ("extended-cache-ttl-2025-04-11", "1-hour cache writes: priced (`cache_write_1h`)"),
    ("output-128k-2025-02-19", "a larger `max_tokens` on older models: still capped by the model's limit in the price table and held in full"),
];

/// Betas refused with a 400: they change the price and the table does not hold that price.
pub const REFUSED: &[(&str, &str)] = &[
    ("context-1m-", "the 1M-token context beta prices every token of a prompt over 200k at a higher tier the price table does not hold; the models listed with a 1M context window in /v1/models serve it without the beta"),
    ("fast-mode-", "fast mode is priced at a multiple of the list price, which the price table does not hold"),
];

/// The `anthropic-beta` values of one request, sorted out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Betas {
    /// Sent to Anthropic (comma-joined in one header).
    pub forwarded: Vec<&'static str>,
    /// Not sent; told to the client in `x-broker-dropped-betas`.
    pub dropped: Vec<String>,
}

/// Body fields that Anthropic serves only under a beta: sent without it, the call is refused here,
/// before anything is held, rather than by Anthropic after the hold.
const FIELDS_NEEDING_A_BETA: &[(&str, &str)] = &[("context_management", "context-management-2025-06-27")];

impl Betas {
    /// A 400 naming the field and the header when the body uses a beta field without its beta.
    pub fn check_fields(&self, body: &serde_json::Map<String, serde_json::Value>) -> Result<(), ApiError> {
        for (field, beta) in FIELDS_NEEDING_A_BETA {
            if body.get(*field).is_some_and(|v| !v.is_null()) && !self.forwarded.contains(beta) {
                return Err(ApiError::invalid(format!("`{field}` needs the header `anthropic-beta: {beta}`")));
            }
        }
        Ok(())
    }

    /// The upstream header, when any beta is forwarded.
    pub fn header(&self) -> Option<(String, String)> {
        (!self.forwarded.is_empty()).then(|| ("anthropic-beta".to_string(), self.forwarded.join(",")))
    }

    /// The response header naming the dropped betas, when any.
    pub fn dropped_header(&self) -> Option<(String, String)> {
        (!self.dropped.is_empty()).then(|| ("x-broker-dropped-betas".to_string(), self.dropped.join(",")))
    }
}

/// Longest beta name kept (a longer value is not a beta name; it is dropped, not echoed).
const MAX_NAME: usize = 64;

/// Sorts the `anthropic-beta` header values (comma-separated; the header may repeat, which the
/// platform joins with commas).
pub fn parse(header: Option<&str>) -> Result<Betas, ApiError> {
    let mut out = Betas::default();
    for name in header.unwrap_or("").split(',').map(str::trim).filter(|n| !n.is_empty()) {
        if let Some((_, why)) = REFUSED.iter().find(|(prefix, _)| name.starts_with(prefix)) {
            return Err(ApiError::invalid(format!("the `anthropic-beta` value `{name}` is not supported: {why}")));
        }
        match FORWARDED.iter().find(|(n, _)| *n == name) {
            Some((n, _)) if !out.forwarded.contains(n) => out.forwarded.push(n),
            Some(_) => {}
            None => {
                let shown: String = name.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_' || *c == '.').take(MAX_NAME).collect();
                if !shown.is_empty() && !out.dropped.contains(&shown) {
                    out.dropped.push(shown);
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claude_codes_betas_are_forwarded_or_dropped_never_refused() {
        // What Claude Code 2.1.328 sends on every call (captured; fixtures/anthropic/claude-code.request.json).
        let b = parse(Some("claude-code-20250219,interleaved-thinking-2025-05-14,context-management-2025-06-27,per-turn-control-2026-07-01,mid-conversation-tool-changes-2026-07-01,thinking-token-count-2026-05-13,advanced-tool-use-2025-11-20,effort-2025-11-24")).unwrap();
        assert_eq!(b.forwarded, vec!["claude-code-20250219", "interleaved-thinking-2025-05-14", "context-management-2025-06-27", "per-turn-control-2026-07-01", "advanced-tool-use-2025-11-20", "effort-2025-11-24"]);
        assert_eq!(b.dropped, vec!["mid-conversation-tool-changes-2026-07-01", "thinking-token-count-2026-05-13"]);
        assert_eq!(b.header().unwrap().1, "claude-code-20250219,interleaved-thinking-2025-05-14,context-management-2025-06-27,per-turn-control-2026-07-01,advanced-tool-use-2025-11-20,effort-2025-11-24");
        assert_eq!(b.dropped_header().unwrap().0, "x-broker-dropped-betas");
    }

    #[test]
    fn a_beta_field_without_its_beta_is_refused_naming_both() {
        let body: serde_json::Map<String, serde_json::Value> = serde_json::from_str(r#"{"context_management":{"edits":[]}}"#).unwrap();
        let e = parse(None).unwrap().check_fields(&body).unwrap_err();
        assert!(e.message.contains("`context_management`") && e.message.contains("context-management-2025-06-27"), "{}", e.message);
        assert!(parse(Some("context-management-2025-06-27")).unwrap().check_fields(&body).is_ok());
    }

    #[test]
    fn price_changing_betas_are_refused_by_name() {
        let e = parse(Some("interleaved-thinking-2025-05-14, context-1m-2025-08-07")).unwrap_err();
        assert_eq!(e.status(), 400);
        assert!(e.message.contains("`context-1m-2025-08-07`") && e.message.contains("200k"), "{}", e.message);
        assert!(parse(Some("fast-mode-2026-02-01")).unwrap_err().message.contains("fast mode"));
    }

    #[test]
    fn every_forwarded_beta_is_in_the_openapi_field_table() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../public/openapi.json");
        let spec: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let params = spec["paths"]["/v1/messages"]["post"]["parameters"].as_array().unwrap();
        let table = params.iter().find(|p| p["name"] == "anthropic-beta").unwrap()["description"].as_str().unwrap();
        for (name, _) in FORWARDED {
            assert!(table.contains(&format!("| `{name}` |")), "{name} is not in the anthropic-beta table of public/openapi.json");
        }
        for (prefix, _) in REFUSED {
            assert!(table.contains(&format!("| `{prefix}*` |")), "{prefix}* is not in the table");
        }
    }

    #[test]
    fn empty_repeated_and_odd_values() {
        assert_eq!(parse(None).unwrap(), Betas::default());
        assert_eq!(parse(Some(" , ")).unwrap().header(), None);
        let b = parse(Some("effort-2025-11-24,effort-2025-11-24,<script>x")).unwrap();
        assert_eq!(b.forwarded, vec!["effort-2025-11-24"]);
        assert_eq!(b.dropped, vec!["scriptx"]);
    }
}
