//! What a provider's stream event means, independent of its format: the vocabulary between the
//! provider modules (which decode) and the chat meter (which translates, assembles and bills).

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    /// The answer began (Anthropic `message_start`).
    Start,
    Text(String),
    /// Normalized to OpenAI's vocabulary: stop, length, tool_calls, content_filter.
    Finish(String),
    /// This event carried the final (billable) usage.
    FinalUsage,
    /// The provider reported an error inside the stream.
    Error(Value),
    /// The provider's terminator (`[DONE]`, `message_stop`).
    Done,
}
