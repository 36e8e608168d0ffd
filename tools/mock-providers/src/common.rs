//! Shared helpers: the deterministic reply/usage rules, ids, clock and RFC 3339 dates, base64,
//! CRC-32, JSON helpers.
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
//!   "stop"/"end_turn"/"STOP". A script's `output_tokens: N` replaces the 24 (words then cycle
//!   through [`REPLY_WORDS`]) and `token_bytes: B` pads each word with `.` to B bytes: see
//!   [`ReplyPlan`].
//! * Cache fields are 0, reasoning 0, and Gemini has no `thoughtsTokenCount` unless a scripted `usage`
//!   override sets them (see `control.rs`) or the request asks the model to think.
//! * Tool calls, tool results, structured output, thinking, images and tool definitions follow
//!   the rules of [`crate::agent`] (their texts add to the messages' texts above; images and
//!   thinking add the documented token counts).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD as BASE64};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;

/// Accepts base64 with or without `=` padding, as clients differ.
const BASE64_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

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

/// How long the reply is and how each output token reads (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReplyPlan {
    /// Output tokens emitted.
    pub tokens: u64,
    /// Whether `max_tokens` cut the reply short (the "length" stop reasons).
    pub truncated: bool,
    /// Pad each token's text to this many bytes.
    pub token_bytes: Option<u64>,
}

impl ReplyPlan {
    /// The reply for a request's `max_tokens`, with a script's `output_tokens`/`token_bytes`.
    pub fn new(max_tokens: Option<u64>, script: Option<&crate::control::Script>) -> ReplyPlan {
        let wanted = script
            .and_then(|s| s.output_tokens)
            .unwrap_or(MAX_REPLY_WORDS);
        ReplyPlan {
            tokens: max_tokens.map_or(wanted, |m| m.min(wanted)),
            truncated: max_tokens.is_some_and(|m| m < wanted),
            token_bytes: script.and_then(|s| s.token_bytes),
        }
    }

    /// The text of output token `i`: "Mock", " reply", " from", ...
    pub fn piece(&self, i: u64) -> String {
        let word = REPLY_WORDS[(i % MAX_REPLY_WORDS) as usize];
        let mut piece = if i == 0 {
            word.to_string()
        } else {
            format!(" {word}")
        };
        if let Some(b) = self.token_bytes {
            let target = usize::try_from(b).unwrap_or(usize::MAX);
            if piece.len() < target {
                piece.extend(std::iter::repeat_n('.', target - piece.len()));
            }
        }
        piece
    }

    /// Every token's text, produced one at a time (a long reply is never built whole).
    pub fn pieces(self) -> impl Iterator<Item = String> + Send + 'static {
        (0..self.tokens).map(move |i| self.piece(i))
    }

    pub fn text(&self) -> String {
        self.pieces().collect()
    }
}

/// Input tokens for the given per-message texts (see module doc).
pub fn input_tokens<S: AsRef<str>>(message_texts: &[S]) -> u64 {
    3 + message_texts
        .iter()
        .map(|t| (t.as_ref().chars().count() as u64).div_ceil(4) + 4)
        .sum::<u64>()
}

pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// RFC 3339 UTC, whole seconds: "2025-08-26T09:10:02Z".
pub fn rfc3339(secs: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(secs)).to_string()
}

/// Standard base64 with padding (images, audio, HTTP Basic credentials).
pub fn b64_encode(data: &[u8]) -> String {
    BASE64.encode(data)
}

/// Standard base64, surrounding whitespace trimmed, padding optional; `None` when malformed.
pub fn b64_decode(s: &str) -> Option<Vec<u8>> {
    BASE64_LENIENT.decode(s.trim()).ok()
}

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

/// Stripe's error body (`{"error": {type, message, param?, code?}}`) with `status`.
pub fn stripe_error(status: u16, kind: &str, message: &str, param: Option<&str>, code: Option<&str>) -> crate::http::Response {
    let mut e = serde_json::json!({ "type": kind, "message": message });
    if let Some(p) = param {
        e["param"] = serde_json::json!(p);
    }
    if let Some(c) = code {
        e["code"] = serde_json::json!(c);
    }
    crate::http::Response::json(status, &serde_json::json!({ "error": e }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_check_value() {
        assert_eq!(crc32(b"123456789"), 3_421_780_262);
        assert_eq!(crc32(b""), 0);
    }

    fn plan(max: Option<u64>, output: Option<u64>, bytes: Option<u64>) -> ReplyPlan {
        let s = crate::control::Script {
            output_tokens: output,
            token_bytes: bytes,
            ..Default::default()
        };
        ReplyPlan::new(max, Some(&s))
    }

    #[test]
    fn reply_plans() {
        let p = ReplyPlan::new(Some(3), None);
        assert_eq!(
            p.pieces().collect::<Vec<_>>(),
            vec!["Mock", " reply", " from"]
        );
        assert!(p.truncated);
        assert_eq!(ReplyPlan::new(None, None).tokens, 24);
        assert!(!ReplyPlan::new(None, None).truncated);
        assert_eq!(ReplyPlan::new(Some(1000), None).tokens, 24);
        assert!(!ReplyPlan::new(Some(24), None).truncated);
        let long = plan(Some(1000), Some(30), None);
        assert_eq!((long.tokens, long.truncated), (30, false));
        assert_eq!(long.piece(24), " Mock");
        let capped = plan(Some(10), Some(800), None);
        assert_eq!((capped.tokens, capped.truncated), (10, true));
        let padded = plan(None, Some(2), Some(8));
        assert_eq!(padded.text(), "Mock.... reply..");
        assert_eq!(plan(None, None, Some(2)).piece(0), "Mock");
    }

    #[test]
    fn dates_and_base64() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(b64_encode(b"fo"), "Zm8=");
        assert_eq!(b64_decode(" Zm8= ").as_deref(), Some(&b"fo"[..]));
        assert_eq!(b64_decode("Zm8").as_deref(), Some(&b"fo"[..]));
        assert_eq!(b64_decode("Z!"), None);
    }

    #[test]
    fn input_tokens_rule() {
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
