//! Shared helpers: the deterministic reply/usage rules, ids, dates (from `localstack_http`), CRC-32,
//! JSON helpers. Base64 is `localstack_http::base64`.
//!
//! # Deterministic usage (other tests depend on these rules)
//!
//! * **Input tokens** (chat/messages/generateContent) = `3 + Σ (ceil(chars/4) + 4)` over every
//!   message (OpenAI `messages[]`, Anthropic `messages[]`, Gemini `contents[]`) and the system prompt
//!   (Anthropic `system`, Gemini `systemInstruction`), where `chars` is the number of Unicode scalar
//!   values of the message's text (string content, or the concatenated `text` of its text parts/blocks;
//!   non-text parts count as 0 chars; a message with no text still costs 4). Since every request needs
//!   at least one message this never exceeds `UTF-8 bytes of the texts + 10 × messages`.
//! * **Output tokens** = `min(max_tokens, 24)`, `max_tokens` being `max_tokens` /
//!   `max_completion_tokens` (OpenAI), `max_tokens` (Anthropic), `generationConfig.maxOutputTokens`
//!   (Gemini); 24 when absent. The reply is that many words of [`REPLY_WORDS`], one word per output
//!   token, streamed one word per chunk/delta (the first without, later ones with a leading space).
//!   The stop reason is "length"/"max_tokens"/"MAX_TOKENS" when `max_tokens < 24`, else
//!   "stop"/"end_turn"/"STOP".
//! * Cache fields are 0, reasoning 0, and Gemini has no `thoughtsTokenCount` unless a scripted `usage`
//!   override sets them (see `control.rs`).

/// The 24 words of the deterministic reply.
pub const REPLY_WORDS: [&str; 24] = [
    "Mock",
    "reply",
    "from",
    "the",
    "deterministic",
    "provider",
    "simulator:",
    "every",
    "word",
    "here",
    "is",
    "one",
    "output",
    "token,",
    "so",
    "usage",
    "counts",
    "are",
    "easy",
    "to",
    "check",
    "in",
    "all",
    "tests.",
];
pub const MAX_REPLY_WORDS: u64 = 24;

/// Reply pieces for `n` output tokens: "Mock", " reply", " from", ...
pub fn reply_pieces(n: u64) -> Vec<String> {
    REPLY_WORDS
        .iter()
        .take(n.min(MAX_REPLY_WORDS) as usize)
        .enumerate()
        .map(|(i, w)| {
            if i == 0 {
                (*w).to_string()
            } else {
                format!(" {w}")
            }
        })
        .collect()
}

pub fn reply_text(n: u64) -> String {
    reply_pieces(n).concat()
}

/// Output tokens for an optional max_tokens.
pub fn output_tokens(max_tokens: Option<u64>) -> u64 {
    max_tokens.unwrap_or(MAX_REPLY_WORDS).min(MAX_REPLY_WORDS)
}

/// Whether the reply was truncated by max_tokens.
pub fn truncated(max_tokens: Option<u64>) -> bool {
    max_tokens.is_some_and(|m| m < MAX_REPLY_WORDS)
}

/// Input tokens for the given per-message texts (see module doc).
pub fn input_tokens<S: AsRef<str>>(message_texts: &[S]) -> u64 {
    3 + message_texts
        .iter()
        .map(|t| (t.as_ref().chars().count() as u64).div_ceil(4) + 4)
        .sum::<u64>()
}

pub use localstack_http::date::{now_ms, now_secs, rfc3339};

/// FNV-1a 64, for deterministic pseudo-random values (seeds, ids, filler bytes).
pub fn fnv1a(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in data {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Deterministic alphanumeric string of `len` characters derived from `seed`.
pub fn alnum(seed: u64, len: usize) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut x = seed ^ 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            A[(x % A.len() as u64) as usize] as char
        })
        .collect()
}

/// CRC-32/IEEE (reflected, poly 0xEDB88320, init/xorout 0xFFFFFFFF), as PayPal uses.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for b in data {
        crc ^= u32::from(*b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A tiny 1x1 PNG (the fixtures' sample), used for b64 image answers.
pub const PNG_1X1_B64: &str =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";

/// Non-negative integer field; `Err` when present but not a non-negative integer.
pub fn opt_u64(v: &serde_json::Value, key: &str) -> Result<Option<u64>, String> {
    match v.get(key) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(x) => x
            .as_u64()
            .map(Some)
            .ok_or_else(|| format!("'{key}' must be a non-negative integer")),
    }
}

/// Text of a "content" value: a string, or an array of parts/blocks whose `text` fields are joined.
pub fn content_text(v: Option<&serde_json::Value>) -> String {
    match v {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| match p {
                serde_json::Value::String(s) => Some(s.as_str()),
                _ => p.get("text").and_then(|t| t.as_str()),
            })
            .collect::<Vec<_>>()
            .concat(),
        _ => String::new(),
    }
}

/// serde_json formatter printing `": "` after object keys (Gemini's SSE JSON), otherwise compact.
pub struct ColonSpaceFormatter;

impl serde_json::ser::Formatter for ColonSpaceFormatter {
    fn begin_object_value<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
    ) -> std::io::Result<()> {
        writer.write_all(b": ")
    }
}

pub fn to_colon_space_json<T: serde::Serialize>(v: &T) -> Vec<u8> {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, ColonSpaceFormatter);
    if v.serialize(&mut ser).is_err() {
        return b"{}".to_vec();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_check_value() {
        assert_eq!(crc32(b"123456789"), 3_421_780_262);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn reply_and_tokens() {
        assert_eq!(REPLY_WORDS.len(), 24);
        assert_eq!(reply_pieces(3), vec!["Mock", " reply", " from"]);
        assert_eq!(output_tokens(None), 24);
        assert_eq!(output_tokens(Some(5)), 5);
        assert_eq!(output_tokens(Some(1000)), 24);
        // "Hello" = 5 chars -> ceil(5/4)+4 = 6, +3 = 9
        assert_eq!(input_tokens(&["Hello"]), 9);
        assert_eq!(input_tokens(&["", "abcd"]), 3 + 4 + 5);
        // bound: never above bytes + 10 per message
        let texts = [
            "a",
            "héllo wörld",
            "",
            "x".repeat(1000).as_str().to_owned().leak(),
        ];
        let bytes: usize = texts.iter().map(|t| t.len()).sum();
        assert!(input_tokens(&texts) <= bytes as u64 + 10 * texts.len() as u64);
    }

    #[test]
    fn colon_space() {
        let v = serde_json::json!({"a": [1, {"b": "c"}]});
        assert_eq!(
            String::from_utf8_lossy(&to_colon_space_json(&v)),
            r#"{"a": [1,{"b": "c"}]}"#
        );
    }
}
