//! Normalized token usage, and which provider field feeds which class.
//!
//! | class            | OpenAI chat                                   | Anthropic messages                 | Gemini                                          |
//! |------------------|-----------------------------------------------|------------------------------------|-------------------------------------------------|
//! | `input`          | `prompt_tokens − cached_tokens − cache_write` | `input_tokens` (excludes cache)    | `promptTokenCount − cachedContentTokenCount` + `toolUsePromptTokenCount` |
//! | `cached_input`   | `prompt_tokens_details.cached_tokens`         | `cache_read_input_tokens`          | `cachedContentTokenCount`                       |
//! | `cache_write_5m` | `prompt_tokens_details.cache_write_tokens`    | `cache_creation.ephemeral_5m` (or the total when no split) | —                       |
//! | `cache_write_1h` | —                                             | `cache_creation.ephemeral_1h`      | —                                               |
//! | `output`         | `completion_tokens` (reasoning included)      | `output_tokens` (thinking included)| `candidatesTokenCount + thoughtsTokenCount`     |
//!
//! Anthropic's streamed `message_delta.usage` and Gemini's `usageMetadata` are cumulative: the
//! parsers keep the last value, never a sum.

use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// Uncached input tokens.
    pub input: u64,
    pub cached_input: u64,
    pub cache_write_5m: u64,
    pub cache_write_1h: u64,
    /// Output tokens, reasoning/thinking included.
    pub output: u64,
}

impl Usage {
    /// All prompt-side tokens, as the tier thresholds count them.
    pub fn prompt_total(&self) -> u64 {
        self.input + self.cached_input + self.cache_write_5m + self.cache_write_1h
    }

    /// The `usage` object returned to customers.
    pub fn to_public_json(&self) -> Value {
        serde_json::json!({
            "input_tokens": self.prompt_total(),
            "output_tokens": self.output,
            "cached_input_tokens": self.cached_input,
            "cache_write_tokens": self.cache_write_5m + self.cache_write_1h,
        })
    }
}

pub(crate) fn u(v: &Value, key: &str) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or(0)
}
