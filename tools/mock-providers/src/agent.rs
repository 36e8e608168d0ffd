//! What the chat mocks answer to agents, by rules shared by the three providers: tool calls,
//! structured output, thinking, and the input tokens of images and tool definitions.
//!
//! # Deterministic rules (tests depend on them)
//!
//! * **Tool calls.** When the request defines tools, does not forbid calling them (`tool_choice`
//!   none / `NONE`) and its last message is not a tool result, the answer is tool calls: the
//!   forced tool, else the first tool, and also the second when there are two or more and
//!   parallel calls are not switched off. Arguments are built from the tool's JSON Schema
//!   ([`value_for`]). Each call costs **1 output token plus 1 per 8-character piece** of its
//!   arguments' compact JSON; streams send the arguments in those pieces (OpenAI `tool_calls`
//!   deltas, Anthropic `input_json_delta`; Gemini sends each call whole). After a tool result the
//!   answer is the usual text.
//! * **Structured output** (`response_format` json_object / json_schema, Anthropic
//!   `output_config.format`, Gemini `responseMimeType: application/json`): the answer is JSON,
//!   [`value_for`] the schema (or `{"answer": "<the first 8 reply words>"}` without one), **1
//!   output token per 8-character piece**, streamed in those pieces.
//! * `max_tokens` cuts calls and JSON like text (the stop reason then says so).
//! * **Thinking** (OpenAI `reasoning_effort` other than none, Anthropic `thinking` enabled or
//!   adaptive, Gemini `thinkingConfig` other than a 0 budget) adds [`THINKING_TOKENS`] output
//!   tokens: OpenAI's `reasoning_tokens`, an Anthropic thinking block of that many words,
//!   Gemini's `thoughtsTokenCount`.
//! * **Images** add input tokens by the provider's rule, on the pixel size of an inline PNG
//!   (any other inline image, and every image by URL, counts as 1024×1024): OpenAI tiles
//!   85 + 170 per 512-px tile (gpt-4o-mini 2,833 + 5,667; `detail: low` the base alone), or 32-px
//!   patches on gpt-5*/gpt-6* (`low`: 256); Anthropic ⌈w/28⌉·⌈h/28⌉ up to 1,568; Gemini 258 each
//!   (`mediaResolution` LOW: 64 on gemini-2*, 280 on later models).
//! * **Tool definitions** count as input like one more message each (their compact JSON as its
//!   text); tool calls in the history count their name and arguments, tool results their text.

use serde_json::{json, Value};

use crate::common::{self, ReplyPlan};

/// Output tokens a thinking model spends before answering.
pub const THINKING_TOKENS: u64 = 16;
/// Characters per streamed piece of JSON (one output token).
const PIECE_CHARS: usize = 8;

/// Splits a text into pieces of at most 8 characters.
pub fn pieces(s: &str) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    chars.chunks(PIECE_CHARS).map(|c| c.iter().collect()).collect()
}

/// A deterministic value for a JSON Schema: objects get every listed property, arrays one item,
/// strings "mock", numbers 1, booleans true; an `enum` or `const` gives its first value.
pub fn value_for(schema: &Value) -> Value {
    fn go(s: &Value, depth: u32) -> Value {
        if depth > 8 {
            return Value::Null;
        }
        if let Some(c) = s.get("const") {
            return c.clone();
        }
        if let Some(first) = s.get("enum").and_then(Value::as_array).and_then(|a| a.first()) {
            return first.clone();
        }
        if let Some(alt) = ["anyOf", "oneOf"]
            .iter()
            .find_map(|k| s.get(*k).and_then(Value::as_array).and_then(|a| a.first()))
        {
            return go(alt, depth + 1);
        }
        let ty = match s.get("type") {
            Some(Value::String(t)) => t.to_lowercase(),
            Some(Value::Array(ts)) => ts
                .iter()
                .filter_map(Value::as_str)
                .find(|t| *t != "null")
                .unwrap_or("null")
                .to_lowercase(),
            _ if s.get("properties").is_some() => "object".into(),
            _ => "string".into(),
        };
        match ty.as_str() {
            "object" => {
                let mut o = serde_json::Map::new();
                for (k, v) in s.get("properties").and_then(Value::as_object).into_iter().flatten() {
                    o.insert(k.clone(), go(v, depth + 1));
                }
                Value::Object(o)
            }
            "array" => json!([go(s.get("items").unwrap_or(&Value::Null), depth + 1)]),
            "integer" | "number" => json!(1),
            "boolean" => json!(true),
            "null" => Value::Null,
            _ => json!("mock"),
        }
    }
    go(schema, 0)
}

/// The structured answer for a schema (or plain JSON mode without one).
pub fn json_answer(schema: Option<&Value>) -> String {
    match schema {
        Some(s) => value_for(s).to_string(),
        None => json!({ "answer": ReplyPlan::new(Some(8), None).text() }).to_string(),
    }
}

/// A tool the request defines: its name and parameter schema.
pub struct ToolDef {
    pub name: String,
    pub schema: Value,
}

/// One tool call of the answer: the tool, and its arguments in pieces.
pub struct Call {
    pub name: String,
    pub pieces: Vec<String>,
}

impl Call {
    pub fn arguments(&self) -> String {
        self.pieces.concat()
    }
}

/// What the mock answers.
pub enum Answer {
    Text(ReplyPlan),
    /// JSON text in pieces, one token each.
    Json { pieces: Vec<String>, truncated: bool },
    Calls { calls: Vec<Call>, truncated: bool },
}

impl Answer {
    /// The answer to a request: calls when the tool rule says so, else JSON when asked for,
    /// else text; cut at `max_tokens`.
    pub fn decide(
        calls: Option<Vec<&ToolDef>>,
        json: Option<Option<&Value>>,
        max_tokens: Option<u64>,
        script: Option<&crate::control::Script>,
    ) -> Answer {
        let cap = max_tokens.unwrap_or(u64::MAX);
        if let Some(tools) = calls.filter(|t| !t.is_empty()) {
            let mut left = cap;
            let mut out = Vec::new();
            let mut truncated = false;
            for t in tools {
                if left == 0 {
                    truncated = true;
                    break;
                }
                left -= 1;
                let all = pieces(&value_for(&t.schema).to_string());
                let keep = usize::try_from(left).unwrap_or(usize::MAX).min(all.len());
                truncated |= keep < all.len();
                left -= keep as u64;
                out.push(Call { name: t.name.clone(), pieces: all[..keep].to_vec() });
            }
            return Answer::Calls { calls: out, truncated };
        }
        if let Some(schema) = json {
            let all = pieces(&json_answer(schema));
            let keep = usize::try_from(cap).unwrap_or(usize::MAX).min(all.len());
            return Answer::Json { truncated: keep < all.len(), pieces: all[..keep].to_vec() };
        }
        Answer::Text(ReplyPlan::new(max_tokens, script))
    }

    /// Visible output tokens.
    pub fn tokens(&self) -> u64 {
        match self {
            Answer::Text(p) => p.tokens,
            Answer::Json { pieces, .. } => pieces.len() as u64,
            Answer::Calls { calls, .. } => calls.iter().map(|c| 1 + c.pieces.len() as u64).sum(),
        }
    }

    pub fn truncated(&self) -> bool {
        match self {
            Answer::Text(p) => p.truncated,
            Answer::Json { truncated, .. } | Answer::Calls { truncated, .. } => *truncated,
        }
    }

    /// The text pieces of a text or JSON answer (none for calls), produced lazily.
    pub fn text_pieces(&self) -> Box<dyn Iterator<Item = String> + Send> {
        match self {
            Answer::Text(p) => Box::new(p.pieces()),
            Answer::Json { pieces, .. } => Box::new(pieces.clone().into_iter()),
            Answer::Calls { .. } => Box::new(std::iter::empty()),
        }
    }

    pub fn text(&self) -> String {
        self.text_pieces().collect()
    }
}

/// The tools the mock calls: the forced one, else the first, and the second when parallel.
pub fn choose<'a>(tools: &'a [ToolDef], forced: Option<&str>, parallel: bool) -> Vec<&'a ToolDef> {
    if let Some(name) = forced {
        return tools.iter().filter(|t| t.name == name).take(1).collect();
    }
    tools.iter().take(if parallel { 2 } else { 1 }).collect()
}

/// Width and height of inline base64 image data, when it is a PNG.
pub fn png_size(b64: &str) -> Option<(u32, u32)> {
    let bytes = common::b64_decode(b64.get(..64.min(b64.len()))?.trim_end_matches('='))
        .or_else(|| common::b64_decode(b64))?;
    if bytes.get(..8)? != b"\x89PNG\r\n\x1a\n" {
        return None;
    }
    let w = u32::from_be_bytes(bytes.get(16..20)?.try_into().ok()?);
    let h = u32::from_be_bytes(bytes.get(20..24)?.try_into().ok()?);
    Some((w, h))
}

/// The size the mock counts an image at.
fn size_of(inline_b64: Option<&str>) -> (u32, u32) {
    inline_b64.and_then(png_size).unwrap_or((1024, 1024))
}

/// OpenAI's image tokens (see the module doc).
pub fn openai_image_tokens(model: &str, inline_b64: Option<&str>, low: bool) -> u64 {
    let (w, h) = size_of(inline_b64);
    if model.starts_with("gpt-5") || model.starts_with("gpt-6") {
        return if low { 256 } else { u64::from(w.div_ceil(32)) * u64::from(h.div_ceil(32)) };
    }
    let (base, tile) = if model.starts_with("gpt-4o-mini") { (2833, 5667) } else { (85, 170) };
    if low {
        return base;
    }
    let (mut fw, mut fh) = (f64::from(w), f64::from(h));
    let long = fw.max(fh);
    if long > 2048.0 {
        fw *= 2048.0 / long;
        fh *= 2048.0 / long;
    }
    let short = fw.min(fh);
    if short > 768.0 {
        fw *= 768.0 / short;
        fh *= 768.0 / short;
    }
    let tiles = (fw.round() / 512.0).ceil().max(1.0) * (fh.round() / 512.0).ceil().max(1.0);
    base + tile * tiles as u64
}

/// Anthropic's image tokens (see the module doc).
pub fn claude_image_tokens(inline_b64: Option<&str>) -> u64 {
    let (w, h) = size_of(inline_b64);
    (u64::from(w.div_ceil(28)) * u64::from(h.div_ceil(28))).min(1568)
}

/// Gemini's image tokens (see the module doc).
pub fn gemini_image_tokens(model: &str, media_resolution: Option<&str>) -> u64 {
    match media_resolution {
        Some("MEDIA_RESOLUTION_LOW") if model.starts_with("gemini-2") => 64,
        Some("MEDIA_RESOLUTION_LOW") => 280,
        _ => 258,
    }
}

/// The words of a thinking block.
pub fn thought_words() -> Vec<String> {
    (0..THINKING_TOKENS)
        .map(|i| if i == 0 { "Thinking".to_string() } else { format!(" step{i}") })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_follow_the_schema() {
        let s = json!({"type": "object", "properties": {
            "city": {"type": "string"}, "days": {"type": "integer"}, "unit": {"enum": ["c", "f"]},
            "tags": {"type": "array", "items": {"type": "string"}}, "opt": {"type": ["null", "boolean"]},
            "nested": {"properties": {"x": {"type": "number"}}}}});
        assert_eq!(
            value_for(&s),
            json!({"city": "mock", "days": 1, "unit": "c", "tags": ["mock"], "opt": true, "nested": {"x": 1}})
        );
        assert_eq!(value_for(&json!({})), json!("mock"));
        assert_eq!(json_answer(None), r#"{"answer":"Mock reply from the deterministic provider simulator: every"}"#);
    }

    #[test]
    fn calls_cost_a_token_plus_their_pieces_and_are_cut_by_max_tokens() {
        let tools = [
            ToolDef { name: "get_weather".into(), schema: json!({"type": "object", "properties": {"city": {"type": "string"}}}) },
            ToolDef { name: "now".into(), schema: json!({"type": "object", "properties": {}}) },
        ];
        let a = Answer::decide(Some(choose(&tools, None, true)), None, Some(100), None);
        // {"city":"mock"} is 15 characters: 2 pieces; {} 1 piece.
        assert_eq!(a.tokens(), (1 + 2) + (1 + 1));
        assert!(!a.truncated());
        let a = Answer::decide(Some(choose(&tools, None, true)), None, Some(2), None);
        assert_eq!((a.tokens(), a.truncated()), (2, true));
        assert_eq!(choose(&tools, Some("now"), true).len(), 1);
        assert_eq!(choose(&tools, None, false).len(), 1);
        let j = Answer::decide(None, Some(None), Some(3), None);
        assert_eq!((j.tokens(), j.truncated(), j.text()), (3, true, r#"{"answer":"Mock reply fr"#.to_string()));
    }

    #[test]
    fn image_tokens() {
        let png = common::PNG_1X1_B64;
        assert_eq!(png_size(png), Some((1, 1)));
        assert_eq!(openai_image_tokens("gpt-4o", Some(png), false), 85 + 170);
        assert_eq!(openai_image_tokens("gpt-4o", None, false), 85 + 170 * 4);
        assert_eq!(openai_image_tokens("gpt-4o-mini", None, true), 2833);
        assert_eq!(openai_image_tokens("gpt-5.6-luna", None, false), 1024);
        assert_eq!(claude_image_tokens(None), 37 * 37);
        assert_eq!(claude_image_tokens(Some(png)), 1);
        assert_eq!(gemini_image_tokens("gemini-2.5-flash", Some("MEDIA_RESOLUTION_LOW")), 64);
    }
}
