//! Tool definitions of a Responses request (`tools`, and the `additional_tools` input items
//! Codex sends on newer OpenAI models): which the gateway serves, and which it refuses by name.

use crate::chat::fields::allow_only;
use crate::error::ApiError;
use serde_json::{json, Map, Value};

/// Built-in tools OpenAI bills per call or per session on top of tokens; the price table has no
/// such prices, so they are refused rather than served unpriced.
pub const PRICED_TOOLS: &[&str] = &[
    "web_search", "web_search_preview", "web_search_2025_08_26", "web_search_preview_2025_03_11", "file_search", "code_interpreter",
    "computer_use_preview", "computer_use", "computer", "image_generation",
];

/// Tools the client runs itself, billed as tokens only: OpenAI takes them as they are.
const CLIENT_TOOLS_OPENAI: &[&str] = &["function", "custom", "local_shell", "shell", "apply_patch", "namespace"];

/// A list of tool definitions (`tools`, or an `additional_tools` input item's), `what` naming it.
pub fn check_tool_list(list: &[Value], what: &str, translated: bool) -> Result<Vec<Value>, ApiError> {
    let mut functions = Vec::new();
    for (i, t) in list.iter().enumerate() {
        let ctx = format!("{what}[{i}]");
        let o = t.as_object().ok_or_else(|| ApiError::invalid(format!("{ctx}: a tool must be an object")))?;
        let ty = o.get("type").and_then(Value::as_str).unwrap_or("");
        if PRICED_TOOLS.contains(&ty) {
            return Err(ApiError::invalid(format!(
                "{ctx}: the built-in tool `{ty}` is not supported: the provider charges it per call and the gateway's price table has no such price{}",
                if ty.starts_with("web_search") { " (Codex: set `web_search = \"disabled\"` in config.toml)" } else { "" }
            )));
        }
        match ty {
            "function" => {
                allow_only(o, &["type", "name", "description", "parameters", "strict"], &ctx)?;
                let mut f = Map::new();
                for k in ["name", "description", "parameters", "strict"] {
                    if let Some(x) = o.get(k) {
                        f.insert(k.into(), x.clone());
                    }
                }
                functions.push(json!({"type": "function", "function": f}));
            }
            // A group of function tools (Codex's sub-agent tools): OpenAI's own construct, with
            // no translation; dropped for the other providers (the model cannot call them there).
            "namespace" if translated => {}
            "mcp" => return Err(ApiError::invalid(format!("{ctx}: the `mcp` tool is not supported: the gateway does not let the provider call remote servers on its account"))),
            // Codex's search over its own deferred tools, run by the client (tokens only); a
            // search run by the provider would be a built-in tool the price table does not hold.
            "tool_search" if !translated && o.get("execution").and_then(Value::as_str) == Some("client") => {}
            "tool_search" => return Err(ApiError::invalid(format!("{ctx}: `tool_search` is supported only with `execution: \"client\"` on OpenAI models"))),
            // A group's own tools are checked like the others (a priced built-in may hide there).
            "namespace" if !translated => {
                let nested = o.get("tools").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
                check_tool_list(nested, &format!("{ctx}.tools"), false)?;
            }
            t if !translated && CLIENT_TOOLS_OPENAI.contains(&t) => {}
            t => return Err(ApiError::invalid(format!("{ctx}: tool type `{t}` is not supported for this model (function tools are)"))),
        }
    }
    Ok(functions)
}

