//! What a provider's stream event means, independent of its format: the vocabulary between the
//! provider modules (which decode) and the chat meter (which translates, assembles and bills).
//!
//! Tool calls come as a start (id, name) and argument fragments. Each provider numbers its calls
//! its own way (OpenAI's `index`, Anthropic's content-block index) or not at all (Gemini sends
//! each call whole): [`ToolCalls`] turns them into OpenAI's dense 0-based indexes and gives a
//! call without an id one of the gateway's.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    /// The answer began (Anthropic `message_start`).
    Start,
    Text(String),
    /// A tool call began. `slot`: the provider's own number for it (`None`: a new call).
    /// `signature`: provider state the next turn must send back with the call (Gemini's
    /// `thoughtSignature`), carried in the call's id.
    ToolCallStart { slot: Option<u64>, id: Option<String>, name: String, signature: Option<String> },
    /// A fragment of a tool call's JSON arguments (`slot` `None`: the latest call).
    ToolCallArgs { slot: Option<u64>, fragment: String },
    /// A piece of the model's visible thinking (Anthropic `thinking_delta`).
    Reasoning(String),
    /// The signature that closes a thinking block (Anthropic `signature_delta`): Claude needs the
    /// block back, signed, in the next turn of a tool loop.
    ReasoningSignature(String),
    /// A thinking block the provider sent encrypted (Anthropic `redacted_thinking`'s `data`).
    RedactedReasoning(String),
    /// Normalized to OpenAI's vocabulary: stop, length, tool_calls, content_filter.
    Finish(String),
    /// This event carried the final (billable) usage.
    FinalUsage,
    /// The provider reported an error inside the stream.
    Error(Value),
    /// The provider's terminator (`[DONE]`, `message_stop`).
    Done,
}

/// Between a tool call's id and the provider state it carries (LiteLLM's convention, so clients
/// that already strip or keep it for Gemini work the same).
pub const SIGNATURE_SEPARATOR: &str = "__thought__";

/// The prefix of the ids the gateway gives calls that came without one.
pub const GATEWAY_ID_PREFIX: &str = "call_gw_";

/// Splits a tool call id into the provider's id and the state it carries.
pub fn split_call_id(id: &str) -> (&str, Option<&str>) {
    match id.split_once(SIGNATURE_SEPARATOR) {
        Some((base, sig)) if !sig.is_empty() => (base, Some(sig)),
        _ => (id, None),
    }
}

/// One tool call of an answer, as far as it came.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    slot: Option<u64>,
    pub id: String,
    pub name: String,
    pub arguments: String,
}

/// The tool calls of one answer, in OpenAI's numbering.
#[derive(Debug, Default)]
pub struct ToolCalls {
    calls: Vec<Call>,
}

impl ToolCalls {
    /// Registers a call's start; returns its index and id. `seed` makes generated ids unique to
    /// the answer (the request id).
    pub fn start(&mut self, slot: Option<u64>, id: Option<&str>, name: &str, signature: Option<&str>, seed: &str) -> (usize, String) {
        let index = self.calls.len();
        let base = id.filter(|i| !i.is_empty()).map(str::to_string).unwrap_or_else(|| format!("{GATEWAY_ID_PREFIX}{seed}_{index}"));
        let id = match signature.filter(|s| !s.is_empty()) {
            Some(sig) => format!("{base}{SIGNATURE_SEPARATOR}{sig}"),
            None => base,
        };
        self.calls.push(Call { slot, id: id.clone(), name: name.to_string(), arguments: String::new() });
        (index, id)
    }

    /// Adds an argument fragment; returns the call's index (`None`: no such call started).
    pub fn args(&mut self, slot: Option<u64>, fragment: &str) -> Option<usize> {
        let index = match slot {
            Some(s) => self.calls.iter().rposition(|c| c.slot == Some(s))?,
            None => self.calls.len().checked_sub(1)?,
        };
        self.calls[index].arguments.push_str(fragment);
        Some(index)
    }

    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }

    pub fn calls(&self) -> &[Call] {
        &self.calls
    }

    /// OpenAI's finish reason for an answer that made calls: Gemini says `STOP` for them.
    pub fn finish_reason(&self, reason: &str) -> String {
        if !self.calls.is_empty() && reason == "stop" {
            "tool_calls".into()
        } else {
            reason.to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_numbering_becomes_dense_indexes() {
        let mut t = ToolCalls::default();
        // Anthropic: a text block 0, tool_use blocks 1 and 2.
        assert_eq!(t.start(Some(1), Some("toolu_a"), "f", None, "req_1"), (0, "toolu_a".to_string()));
        assert_eq!(t.start(Some(2), Some("toolu_b"), "g", None, "req_1"), (1, "toolu_b".to_string()));
        assert_eq!(t.args(Some(2), "{\"x\":"), Some(1));
        assert_eq!(t.args(Some(1), "{}"), Some(0));
        assert_eq!(t.args(Some(2), "1}"), Some(1));
        assert_eq!(t.args(Some(9), "?"), None);
        assert_eq!(t.calls()[1].arguments, "{\"x\":1}");
        assert_eq!(t.finish_reason("stop"), "tool_calls");
        assert_eq!(t.finish_reason("length"), "length");
    }

    #[test]
    fn calls_without_ids_get_the_gateways_and_carry_signatures() {
        let mut t = ToolCalls::default();
        let (_, id) = t.start(None, None, "f", Some("c2lnbmF0dXJl"), "req_9");
        assert_eq!(id, "call_gw_req_9_0__thought__c2lnbmF0dXJl");
        assert_eq!(split_call_id(&id), ("call_gw_req_9_0", Some("c2lnbmF0dXJl")));
        assert_eq!(split_call_id("toolu_1"), ("toolu_1", None));
        assert_eq!(t.args(None, "{}"), Some(0));
        assert_eq!(ToolCalls::default().args(None, "{}"), None);
        assert_eq!(ToolCalls::default().finish_reason("stop"), "stop");
    }
}
