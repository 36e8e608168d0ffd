//! OpenAI text to speech: `POST /openai/v1/audio/speech`.
//!
//! Request JSON `{model, input, voice, response_format?, speed?, instructions?, stream_format?}`
//! (openai SDK `SpeechCreateParams`): `input` at most 4,096 characters; `voice` one of the
//! built-in voices (tts-1/tts-1-hd: alloy ash coral echo fable onyx nova sage shimmer; the
//! gpt-4o-mini-tts models add ballad verse marin cedar); `response_format` mp3 (default), opus,
//! aac, flac, wav, pcm; `speed` 0.25..=4.0; `instructions` and `stream_format: "sse"` not for
//! tts-1/tts-1-hd. Errors in OpenAI's shape (`openai::error`).
//!
//! Success: raw audio bytes, sent chunked as they are "generated" (8 KiB pieces), with the
//! format's content type (`audio/mpeg`, `audio/opus`, `audio/aac`, `audio/flac`, `audio/wav`,
//! `audio/pcm`) and OpenAI's usual headers. The audio is deterministic: a header of the format
//! (`ID3` / `OggS` / ADTS / `fLaC` / `RIFF`…`WAVE`, none for pcm) and 600 bytes per input
//! character of seeded noise. No usage is reported (the body is audio).

use serde_json::Value;

use crate::common;
use crate::control::State;
use crate::http::{Request, Response};
use crate::openai::{self, error};

const MODELS: [&str; 4] = [
    "tts-1",
    "tts-1-hd",
    "gpt-4o-mini-tts",
    "gpt-4o-mini-tts-2025-12-15",
];
const TTS1_VOICES: [&str; 9] = [
    "alloy", "ash", "coral", "echo", "fable", "onyx", "nova", "sage", "shimmer",
];
const NEWER_VOICES: [&str; 4] = ["ballad", "verse", "marin", "cedar"];
const MAX_INPUT_CHARS: usize = 4096;
const BYTES_PER_CHAR: usize = 600;
const CHUNK_BYTES: usize = 8192;

/// The content type OpenAI answers a `response_format` with.
pub fn content_type(format: &str) -> Option<&'static str> {
    Some(match format {
        "mp3" => "audio/mpeg",
        "opus" => "audio/opus",
        "aac" => "audio/aac",
        "flac" => "audio/flac",
        "wav" => "audio/wav",
        "pcm" => "audio/pcm",
        _ => return None,
    })
}

/// Deterministic fake audio of `format` for `input`.
pub fn fake_audio(format: &str, input: &str) -> Vec<u8> {
    let len = BYTES_PER_CHAR * input.chars().count().max(1);
    let mut out: Vec<u8> = match format {
        "mp3" => b"ID3\x04\x00\x00\x00\x00\x00\x00".to_vec(),
        "opus" => b"OggS\x00\x02".to_vec(),
        "aac" => vec![0xFF, 0xF1, 0x50, 0x80],
        "flac" => b"fLaC".to_vec(),
        "wav" => {
            let mut h = b"RIFF".to_vec();
            h.extend_from_slice(&((len + 36) as u32).to_le_bytes());
            h.extend_from_slice(b"WAVEfmt ");
            h
        }
        _ => Vec::new(),
    };
    let mut x = common::fnv1a(input.as_bytes()) | 1;
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.push((x >> 40) as u8);
    }
    out
}

fn bad(message: String, param: &str, code: &str) -> Response {
    error(
        400,
        message,
        "invalid_request_error",
        Some(param),
        Some(code),
    )
}

pub fn handle(state: &State, req: &Request) -> Response {
    let seq = state.next_seq();
    if req.path != "/openai/v1/audio/speech" {
        return openai::invalid_url(req, seq);
    }
    if let Err(r) = openai::check_auth(state, req) {
        return openai::with_headers(r, seq, 0);
    }
    let script = state.take_script("openai-speech");
    if let Some(s) = script.as_ref().filter(|s| s.is_override()) {
        let r = s.override_response(|status| openai::error_for_status(status, "tts-1"));
        return openai::with_headers(r, seq, 0);
    }
    let mut resp = openai::with_headers(answer(&req.body), seq, 0);
    if let Some(s) = &script {
        s.apply_timing(&mut resp);
    }
    resp
}

fn answer(body: &[u8]) -> Response {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return error(
            400,
            "We could not parse the JSON body of your request.".into(),
            "invalid_request_error",
            None,
            None,
        );
    };
    let str_of = |k: &str| v.get(k).and_then(Value::as_str);
    let Some(model) = str_of("model") else {
        return bad(
            "Missing required parameter: 'model'.".into(),
            "model",
            "missing_required_parameter",
        );
    };
    if !MODELS.contains(&model) {
        return error(
            404,
            format!("The model `{model}` does not exist or you do not have access to it."),
            "invalid_request_error",
            None,
            Some("model_not_found"),
        );
    }
    let input = match str_of("input") {
        Some(i) if !i.is_empty() => i,
        _ => {
            return bad(
                "Missing required parameter: 'input'.".into(),
                "input",
                "missing_required_parameter",
            )
        }
    };
    if input.chars().count() > MAX_INPUT_CHARS {
        return bad(format!("Invalid 'input': string too long. Expected a string with maximum length {MAX_INPUT_CHARS}, but got a string with length {} instead.", input.chars().count()), "input", "string_above_max_length");
    }
    let tts1 = model.starts_with("tts-1");
    let voice = str_of("voice").unwrap_or("");
    if !(TTS1_VOICES.contains(&voice) || (!tts1 && NEWER_VOICES.contains(&voice))) {
        return bad(
            format!(
                "Invalid value: '{voice}'. Supported values are: {}.",
                TTS1_VOICES.map(|v| format!("'{v}'")).join(", ")
            ),
            "voice",
            "invalid_value",
        );
    }
    let format = str_of("response_format").unwrap_or("mp3");
    let Some(ct) = content_type(format) else {
        return bad(format!("Invalid value: '{format}'. Supported values are: 'mp3', 'opus', 'aac', 'flac', 'wav', and 'pcm'."), "response_format", "invalid_value");
    };
    if let Some(speed) = v.get("speed") {
        if !speed.as_f64().is_some_and(|s| (0.25..=4.0).contains(&s)) {
            return bad(
                "Invalid 'speed': expected a number between 0.25 and 4.0.".into(),
                "speed",
                "invalid_value",
            );
        }
    }
    if tts1 && (v.get("instructions").is_some() || str_of("stream_format") == Some("sse")) {
        return bad(
            format!("`instructions` and `stream_format: sse` are not supported with {model}."),
            "instructions",
            "unsupported_parameter",
        );
    }
    let audio = fake_audio(format, input);
    let chunks: Vec<Vec<u8>> = audio.chunks(CHUNK_BYTES).map(<[u8]>::to_vec).collect();
    Response::stream(200, ct, chunks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Body;

    fn status(body: &str) -> u16 {
        answer(body.as_bytes()).status
    }

    #[test]
    fn audio_is_deterministic_with_the_formats_header() {
        assert!(fake_audio("mp3", "hello").starts_with(b"ID3"));
        assert!(fake_audio("wav", "hello").starts_with(b"RIFF"));
        assert_eq!(fake_audio("pcm", "hello").len(), 5 * BYTES_PER_CHAR);
        assert_eq!(fake_audio("mp3", "hello"), fake_audio("mp3", "hello"));
        assert_eq!(content_type("opus"), Some("audio/opus"));
        assert_eq!(content_type("ogg"), None);
    }

    #[test]
    fn requests_are_checked_like_openais() {
        let ok =
            answer(br#"{"model":"tts-1","input":"hello","voice":"alloy","response_format":"wav"}"#);
        assert_eq!(ok.status, 200);
        assert!(ok
            .headers
            .contains(&("content-type".into(), "audio/wav".into())));
        match ok.body {
            Body::Chunks(c) => {
                assert_eq!(c.flatten().collect::<Vec<u8>>(), fake_audio("wav", "hello"))
            }
            Body::Full(_) => panic!("speech is streamed"),
        }
        assert_eq!(
            status(r#"{"model":"tts-1","input":"x","voice":"marin"}"#),
            400
        );
        assert_eq!(
            status(r#"{"model":"gpt-4o-mini-tts","input":"x","voice":"marin"}"#),
            200
        );
        assert_eq!(
            status(r#"{"model":"tts-9","input":"x","voice":"alloy"}"#),
            404
        );
        assert_eq!(
            status(&format!(
                r#"{{"model":"tts-1","input":"{}","voice":"alloy"}}"#,
                "a".repeat(4097)
            )),
            400
        );
        assert_eq!(
            status(r#"{"model":"tts-1","input":"x","voice":"alloy","speed":5}"#),
            400
        );
        assert_eq!(
            status(r#"{"model":"tts-1","input":"x","voice":"alloy","instructions":"calm"}"#),
            400
        );
    }
}
