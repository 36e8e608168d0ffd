//! Shared helpers: the deterministic reply/usage rules, ids, dates, base64, CRC-32, JSON helpers.
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

use std::time::{SystemTime, UNIX_EPOCH};

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

pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// (year, month, day, hour, minute, second, weekday 0=Sunday) for a unix time (UTC).
fn civil(secs: u64) -> (i64, u32, u32, u32, u32, u32, u32) {
    let days = (secs / 86400) as i64;
    let rem = secs % 86400;
    let weekday = ((days + 4).rem_euclid(7)) as u32; // 1970-01-01 was a Thursday
                                                     // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = if m <= 2 { y + 1 } else { y };
    (
        y,
        m,
        d,
        (rem / 3600) as u32,
        ((rem % 3600) / 60) as u32,
        (rem % 60) as u32,
        weekday,
    )
}

/// RFC 7231 date: "Tue, 26 Aug 2025 08:55:30 GMT".
pub fn http_date(secs: u64) -> String {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (y, m, d, hh, mm, ss, wd) = civil(secs);
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
        DAYS[wd as usize % 7],
        d,
        MONTHS[(m as usize + 11) % 12],
        y,
        hh,
        mm,
        ss
    )
}

/// RFC 3339 UTC: "2025-08-26T09:10:02Z".
pub fn rfc3339(secs: u64) -> String {
    let (y, m, d, hh, mm, ss, _) = civil(secs);
    format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z")
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

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

pub fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(B64[(n >> 18) as usize & 63] as char);
        out.push(B64[(n >> 12) as usize & 63] as char);
        out.push(if chunk.len() > 1 {
            B64[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if chunk.len() > 2 {
            B64[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in s.trim().bytes() {
        if c == b'=' {
            break;
        }
        let v = B64.iter().position(|x| *x == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
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
    fn base64_roundtrip() {
        for s in ["", "f", "fo", "foo", "foob", "fooba", "foobar"] {
            let e = base64_encode(s.as_bytes());
            assert_eq!(base64_decode(&e).as_deref(), Some(s.as_bytes()));
        }
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
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
    fn dates() {
        assert_eq!(http_date(1_756_198_530), "Tue, 26 Aug 2025 08:55:30 GMT");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
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
