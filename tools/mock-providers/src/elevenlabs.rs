//! ElevenLabs text-to-speech: `POST /elevenlabs/v1/text-to-speech/{voice_id}` and `.../{voice_id}/stream`.
//!
//! Auth `xi-api-key` only (`Authorization: Bearer` alone is rejected) → 401
//! `{"detail":{"type":"authentication_error","code":"unauthorized","message":"Invalid API key","status":"invalid_api_key","request_id":..}}`.
//! Missing `text` → FastAPI 422 `{"detail":[{"type":"missing","loc":["body","text"],"msg":"Field required","input":null}]}`.
//! Success: deterministic fake MP3 (`ID3` tag + 417-byte frames; 1 + ceil(chars/8) frames),
//! `content-type: audio/mpeg`, `request-id`, `character-cost` = ceil(chars × rate), rate 0.5 for
//! Flash/Turbo models (model id contains "flash"/"turbo"), else 1.0; default model
//! `eleven_multilingual_v2`. `/stream` sends the same bytes chunked, 4 frames per chunk.
//! Usage override key: `character_cost`.

use serde_json::Value;

use crate::common;
use crate::control::State;
use crate::http::{Request, Response};

const FRAME_LEN: usize = 417; // MPEG-1 Layer III, 128 kbps, 44.1 kHz
const FRAMES_PER_CHUNK: usize = 4;

fn request_id(seq: u64) -> String {
    common::alnum(seq ^ 0xe1e1, 20)
}

fn detail_error(
    status: u16,
    kind: &str,
    code: &str,
    message: &str,
    st: &str,
    seq: u64,
) -> Response {
    let body = format!(
        r#"{{"detail":{{"type":{},"code":{},"message":{},"status":{},"request_id":"{:032x}"}}}}"#,
        Value::from(kind),
        Value::from(code),
        Value::from(message),
        Value::from(st),
        u128::from(common::fnv1a(&seq.to_le_bytes())) << 64 | u128::from(seq)
    );
    Response::json_bytes(status, body.into_bytes())
}

pub fn unauthorized(seq: u64) -> Response {
    detail_error(
        401,
        "authentication_error",
        "unauthorized",
        "Invalid API key",
        "invalid_api_key",
        seq,
    )
}

pub fn error_for_status(status: u16, seq: u64) -> Response {
    match status {
        401 => unauthorized(seq),
        402 => Response::json_bytes(402, br#"{"detail":{"status":"quota_exceeded","message":"This request exceeds your quota of 10000. You have 37 credits remaining, while 51 credits are required for this request."}}"#.to_vec()),
        422 => missing_text(),
        429 => detail_error(429, "rate_limit_error", "too_many_concurrent_requests", "Too many concurrent requests.", "too_many_concurrent_requests", seq),
        s => detail_error(s, "internal_error", "internal_error", "An internal error occurred (scripted by mock-providers).", "internal_error", seq),
    }
}

fn missing_text() -> Response {
    Response::json_bytes(422, br#"{"detail":[{"type":"missing","loc":["body","text"],"msg":"Field required","input":null}]}"#.to_vec())
}

/// Credits charged for `chars` characters on `model`.
pub fn character_cost(model: &str, chars: u64) -> u64 {
    let m = model.to_ascii_lowercase();
    if m.contains("flash") || m.contains("turbo") {
        chars.div_ceil(2)
    } else {
        chars
    }
}

/// Deterministic fake MP3 for `text`.
pub fn fake_mp3(text: &str) -> Vec<u8> {
    let chars = text.chars().count();
    let frames = 1 + chars.div_ceil(8);
    let mut out = b"ID3\x04\x00\x00\x00\x00\x00\x00".to_vec();
    let mut x = common::fnv1a(text.as_bytes());
    for _ in 0..frames {
        out.extend_from_slice(&[0xFF, 0xFB, 0x90, 0x64]);
        for _ in 4..FRAME_LEN {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            out.push((x >> 24) as u8);
        }
    }
    out
}

fn voice_route(path: &str) -> Option<(&str, bool)> {
    let rest = path.strip_prefix("/elevenlabs/v1/text-to-speech/")?;
    let (voice, stream) = match rest.strip_suffix("/stream") {
        Some(v) => (v, true),
        None => (rest, false),
    };
    (!voice.is_empty() && !voice.contains('/')).then_some((voice, stream))
}

pub fn handle(state: &State, req: &Request) -> Response {
    let seq = state.next_seq();
    let Some((_voice, stream)) = voice_route(&req.path) else {
        return Response::json_bytes(404, br#"{"detail":"Not Found"}"#.to_vec());
    };
    if req.method != "POST" {
        return Response::json_bytes(405, br#"{"detail":"Method Not Allowed"}"#.to_vec());
    }
    if req.header("xi-api-key") != Some(state.config.elevenlabs_key.as_str()) {
        return unauthorized(seq);
    }
    let script = state.take_script("elevenlabs");
    if let Some(s) = script.as_ref().filter(|s| s.is_override()) {
        return s.override_response(|status| error_for_status(status, seq));
    }
    let v: Value = match serde_json::from_slice(&req.body) {
        Ok(v) => v,
        Err(e) => {
            let body = format!(
                r#"{{"detail":[{{"type":"json_invalid","loc":["body",{}],"msg":"JSON decode error","input":{{}},"ctx":{{"error":{}}}}}]}}"#,
                e.column(),
                Value::from(e.to_string())
            );
            return Response::json_bytes(422, body.into_bytes());
        }
    };
    let Some(text) = v.get("text").and_then(Value::as_str) else {
        return missing_text();
    };
    let model = v
        .get("model_id")
        .and_then(Value::as_str)
        .unwrap_or("eleven_multilingual_v2");
    let cost = script
        .as_ref()
        .and_then(|s| s.usage_u64("character_cost"))
        .unwrap_or_else(|| character_cost(model, text.chars().count() as u64));
    let audio = fake_mp3(text);
    let mut resp = if stream {
        let head = 10 + FRAME_LEN * FRAMES_PER_CHUNK;
        let mut chunks = vec![audio[..head.min(audio.len())].to_vec()];
        if audio.len() > head {
            chunks.extend(
                audio[head..]
                    .chunks(FRAME_LEN * FRAMES_PER_CHUNK)
                    .map(<[u8]>::to_vec),
            );
        }
        Response::stream(200, "audio/mpeg", chunks)
    } else {
        Response::new(200, "audio/mpeg", audio)
    };
    resp.add_header("request-id", request_id(seq));
    resp.add_header("character-cost", cost.to_string());
    resp.add_header(
        "x-trace-id",
        format!("{:016x}{:016x}", common::fnv1a(&seq.to_be_bytes()), seq),
    );
    if let Some(s) = &script {
        s.apply_timing(&mut resp);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs() {
        assert_eq!(character_cost("eleven_multilingual_v2", 51), 51);
        assert_eq!(character_cost("eleven_flash_v2_5", 51), 26);
        assert_eq!(character_cost("eleven_turbo_v2_5", 50), 25);
        assert_eq!(character_cost("eleven_v3", 7), 7);
    }

    #[test]
    fn mp3_is_deterministic_and_grows() {
        let a = fake_mp3("hello");
        assert!(a.starts_with(b"ID3"));
        assert_eq!(a, fake_mp3("hello"));
        assert!(fake_mp3(&"x".repeat(100)).len() > a.len());
    }

    #[test]
    fn routes() {
        assert_eq!(
            voice_route("/elevenlabs/v1/text-to-speech/JBF"),
            Some(("JBF", false))
        );
        assert_eq!(
            voice_route("/elevenlabs/v1/text-to-speech/JBF/stream"),
            Some(("JBF", true))
        );
        assert_eq!(voice_route("/elevenlabs/v1/text-to-speech/"), None);
    }
}
