//! The agent options of a chat request, independent of their wire format: tool definitions,
//! `tool_choice`, structured output and reasoning effort, parsed from OpenAI's shape (the route
//! that translates them for Anthropic and Gemini) and checked so that what reaches a provider is
//! something it can honour.

use super::fields::{allow_only, present};
use crate::error::ApiError;
use serde_json::{Map, Value};

/// Most tools one request may define (OpenAI's limit).
pub const MAX_TOOLS: usize = 128;

/// A function the model may call.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolDef {
    pub name: String,
    pub description: Option<String>,
    /// A JSON Schema object (`{"type": "object"}` when the client gave none).
    pub parameters: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ToolChoice {
    Auto,
    None,
    /// The model must call some tool.
    Required,
    /// The model must call this tool.
    Named(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum ResponseFormat {
    Text,
    JsonObject,
    JsonSchema { name: String, schema: Value },
}

/// OpenAI's `reasoning_effort`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effort {
    None,
    Minimal,
    Low,
    Medium,
    High,
    XHigh,
}

impl Effort {
    pub fn parse(s: &str) -> Option<Effort> {
        match s {
            "none" => Some(Effort::None),
            "minimal" => Some(Effort::Minimal),
            "low" => Some(Effort::Low),
            "medium" => Some(Effort::Medium),
            "high" => Some(Effort::High),
            "xhigh" => Some(Effort::XHigh),
            _ => None,
        }
    }
}

/// The agent options of one request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Agent {
    pub tools: Vec<ToolDef>,
    pub tool_choice: Option<ToolChoice>,
    pub parallel_tool_calls: Option<bool>,
    pub response_format: Option<ResponseFormat>,
    pub effort: Option<Effort>,
}

/// Names every provider accepts for a function (Anthropic's and Gemini's common rule).
fn valid_name(n: &str) -> bool {
    !n.is_empty() && n.len() <= 64 && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn schema_object(v: Option<&Value>, ctx: &str) -> Result<Value, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(serde_json::json!({"type": "object", "properties": {}})),
        Some(s @ Value::Object(_)) => Ok(s.clone()),
        Some(_) => Err(ApiError::invalid(format!("{ctx} must be a JSON Schema object"))),
    }
}

/// OpenAI `tools`. For OpenAI itself (`translated` false) its other tool types pass untouched.
fn tools(v: &Value, translated: bool) -> Result<Vec<ToolDef>, ApiError> {
    let Value::Array(list) = v else {
        return Err(ApiError::invalid("`tools` must be an array"));
    };
    if list.len() > MAX_TOOLS {
        return Err(ApiError::invalid(format!("`tools` may define at most {MAX_TOOLS} tools")));
    }
    let mut out: Vec<ToolDef> = Vec::new();
    for (i, t) in list.iter().enumerate() {
        let ctx = format!("tools[{i}]");
        let Some(o) = t.as_object() else {
            return Err(ApiError::invalid(format!("{ctx}: a tool must be an object")));
        };
        match o.get("type").and_then(Value::as_str) {
            Some("function") => {}
            Some("custom") if !translated => continue,
            _ => return Err(ApiError::invalid(format!("{ctx}: only `type: \"function\"` tools are supported for this model"))),
        }
        allow_only(o, &["type", "function"], &ctx)?;
        let f = o.get("function").and_then(Value::as_object).ok_or_else(|| ApiError::invalid(format!("{ctx}: `function` must be an object")))?;
        allow_only(f, &["name", "description", "parameters", "strict"], &format!("{ctx}.function"))?;
        let name = f.get("name").and_then(Value::as_str).unwrap_or("");
        if !valid_name(name) {
            return Err(ApiError::invalid(format!("{ctx}: `function.name` must be 1-64 letters, digits, `_` or `-`")));
        }
        if out.iter().any(|d| d.name == name) {
            return Err(ApiError::invalid(format!("{ctx}: tool `{name}` is defined twice")));
        }
        let description = match f.get("description") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(ApiError::invalid(format!("{ctx}: `function.description` must be a string"))),
        };
        let parameters = schema_object(f.get("parameters"), &format!("{ctx}: `function.parameters`"))?;
        out.push(ToolDef { name: name.to_string(), description, parameters });
    }
    Ok(out)
}

fn tool_choice(v: &Value, tools: &[ToolDef], translated: bool) -> Result<ToolChoice, ApiError> {
    let choice = match v {
        Value::String(s) if s == "auto" => ToolChoice::Auto,
        Value::String(s) if s == "none" => ToolChoice::None,
        Value::String(s) if s == "required" => ToolChoice::Required,
        Value::Object(o) if o.get("type").and_then(Value::as_str) == Some("function") => {
            let name = o.get("function").and_then(|f| f.get("name")).and_then(Value::as_str).unwrap_or("");
            ToolChoice::Named(name.to_string())
        }
        // OpenAI's other forms (`allowed_tools`, custom tools) have no translation.
        Value::Object(_) if !translated => ToolChoice::Auto,
        _ => return Err(ApiError::invalid("`tool_choice` must be \"auto\", \"none\", \"required\" or {\"type\": \"function\", \"function\": {\"name\": ...}}")),
    };
    // OpenAI refuses these too; said here, before anything is held.
    if let ToolChoice::Named(n) = &choice {
        if !tools.iter().any(|t| &t.name == n) {
            return Err(ApiError::invalid(format!("`tool_choice` names `{n}`, which `tools` does not define")));
        }
    }
    if tools.is_empty() && matches!(choice, ToolChoice::Required) {
        return Err(ApiError::invalid("`tool_choice` asks for a tool call but `tools` defines none"));
    }
    Ok(choice)
}

fn response_format(v: &Value) -> Result<ResponseFormat, ApiError> {
    let bad = || ApiError::invalid("`response_format` must be {\"type\": \"text\"}, {\"type\": \"json_object\"} or {\"type\": \"json_schema\", \"json_schema\": {\"name\", \"schema\"}}");
    let o = v.as_object().ok_or_else(bad)?;
    match o.get("type").and_then(Value::as_str) {
        Some("text") => Ok(ResponseFormat::Text),
        Some("json_object") => Ok(ResponseFormat::JsonObject),
        Some("json_schema") => {
            let js = o.get("json_schema").and_then(Value::as_object).ok_or_else(bad)?;
            allow_only(js, &["name", "description", "schema", "strict"], "response_format.json_schema")?;
            let name = js.get("name").and_then(Value::as_str).unwrap_or("response");
            let schema = match js.get("schema") {
                Some(s @ Value::Object(_)) => s.clone(),
                _ => return Err(ApiError::invalid("`response_format.json_schema.schema` must be a JSON Schema object")),
            };
            Ok(ResponseFormat::JsonSchema { name: name.to_string(), schema })
        }
        _ => Err(bad()),
    }
}

/// The agent options of an OpenAI-shaped request. `translated`: for a provider other than OpenAI
/// (every option must then have a faithful translation).
pub fn parse_openai(m: &Map<String, Value>, translated: bool) -> Result<Agent, ApiError> {
    let tools = match present(m, "tools") {
        None => Vec::new(),
        Some(v) => tools(v, translated)?,
    };
    let tool_choice = present(m, "tool_choice").map(|v| tool_choice(v, &tools, translated)).transpose()?;
    let parallel_tool_calls = match present(m, "parallel_tool_calls") {
        None => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => return Err(ApiError::invalid("`parallel_tool_calls` must be a boolean")),
    };
    let response_format = present(m, "response_format").map(response_format).transpose()?;
    let effort = match present(m, "reasoning_effort") {
        None => None,
        Some(Value::String(s)) => match Effort::parse(s) {
            Some(e) => Some(e),
            // OpenAI may add levels; only a translation needs to know each one.
            None if !translated => None,
            None => return Err(ApiError::invalid(format!("`reasoning_effort` `{s}` is not one of none, minimal, low, medium, high, xhigh"))),
        },
        Some(_) => return Err(ApiError::invalid("`reasoning_effort` must be a string")),
    };
    Ok(Agent { tools, tool_choice, parallel_tool_calls, response_format, effort })
}

/// Anthropic models that take a fixed thinking budget (`thinking.type: "enabled"`); later models
/// (Claude 4.6 and after) take adaptive thinking with an effort instead, and the 4.7+/5.x
/// generation refuses budgets (Anthropic's extended- and adaptive-thinking docs).
pub fn anthropic_budget_thinking(model: &str) -> bool {
    ["claude-haiku-4-5", "claude-sonnet-4-5", "claude-opus-4-5", "claude-opus-4-1", "claude-3"].iter().any(|p| model.starts_with(p))
}

/// Anthropic's smallest thinking budget.
pub const MIN_THINKING_BUDGET: u64 = 1024;

/// The thinking budget for an effort on a budget-thinking Anthropic model, below `max_tokens`
/// (which counts thinking too); `None`: no thinking.
pub fn anthropic_budget(effort: Effort, max_tokens: u64) -> Option<u64> {
    let want = match effort {
        Effort::None => return None,
        Effort::Minimal | Effort::Low => 1024,
        Effort::Medium => 4096,
        Effort::High => 16_384,
        Effort::XHigh => 32_000,
    };
    (max_tokens > MIN_THINKING_BUDGET).then(|| want.min(max_tokens - 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn agent(v: Value, translated: bool) -> Result<Agent, ApiError> {
        parse_openai(v.as_object().unwrap(), translated)
    }

    #[test]
    fn tools_choices_and_formats_parse() {
        let a = agent(
            json!({
                "tools": [{"type": "function", "function": {"name": "get_weather", "description": "d", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}, "strict": true}},
                          {"type": "function", "function": {"name": "no_params"}}],
                "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
                "parallel_tool_calls": false,
                "response_format": {"type": "json_schema", "json_schema": {"name": "w", "schema": {"type": "object"}, "strict": true}},
                "reasoning_effort": "low",
            }),
            true,
        )
        .unwrap();
        assert_eq!(a.tools.len(), 2);
        assert_eq!(a.tools[1].parameters, json!({"type": "object", "properties": {}}));
        assert_eq!(a.tool_choice, Some(ToolChoice::Named("get_weather".into())));
        assert_eq!(a.parallel_tool_calls, Some(false));
        assert_eq!(a.response_format, Some(ResponseFormat::JsonSchema { name: "w".into(), schema: json!({"type": "object"}) }));
        assert_eq!(a.effort, Some(Effort::Low));
    }

    #[test]
    fn what_cannot_be_translated_is_a_clear_400() {
        for (v, needle) in [
            (json!({"tools": [{"type": "custom", "custom": {"name": "x"}}]}), "only `type: \"function\"`"),
            (json!({"tools": [{"type": "function", "function": {"name": "bad name!"}}]}), "1-64 letters"),
            (json!({"tools": [{"type": "function", "function": {"name": "f"}}, {"type": "function", "function": {"name": "f"}}]}), "defined twice"),
            (json!({"tools": [{"type": "function", "function": {"name": "f", "parameters": "x"}}]}), "JSON Schema object"),
            (json!({"tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": {"type": "function", "function": {"name": "g"}}}), "does not define"),
            (json!({"tool_choice": "required"}), "defines none"),
            (json!({"tool_choice": "sometimes"}), "`tool_choice` must be"),
            (json!({"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}}), "schema` must be"),
            (json!({"response_format": {"type": "yaml"}}), "`response_format` must be"),
            (json!({"reasoning_effort": "extreme"}), "not one of"),
            (json!({"parallel_tool_calls": "yes"}), "boolean"),
        ] {
            let e = agent(v.clone(), true).unwrap_err();
            assert!(e.message.contains(needle), "{v}: {}", e.message);
        }
        // OpenAI itself gets its own newer forms untouched.
        assert!(agent(json!({"tools": [{"type": "custom", "custom": {"name": "x"}}], "reasoning_effort": "ultra"}), false).is_ok());
    }
}
