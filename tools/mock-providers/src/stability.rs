//! Stability Stable Audio 2: `POST /stability/v2beta/audio/stable-audio-2/text-to-audio`.
//!
//! Auth `authorization: Bearer <key>` → else 401 `{"id","name":"unauthorized","errors":[..]}`.
//! Body multipart/form-data with `prompt` (required), `model` (stable-audio-2 | stable-audio-2.5),
//! `duration` (1..=190, default 190), `output_format` (mp3 | wav), `seed` (0 = derived from the
//! prompt), `steps`. Errors `{"id":"<32 hex>","name":"bad_request","errors":["..."]}`.
//! `accept: application/json` → `{"audio":"<base64>","finish_reason":"SUCCESS","seed":N}`;
//! otherwise raw bytes (`audio/mpeg` or `audio/wav`) with `finish-reason: SUCCESS` and `seed` headers.
//! Fake audio size: 1000 + 100 × duration bytes (MP3 starts with `ID3`, WAV with `RIFF`).

use serde::Serialize;

use crate::common;
use crate::control::State;
use crate::http::{Request, Response};

const PATH: &str = "/stability/v2beta/audio/stable-audio-2/text-to-audio";

#[derive(Serialize)]
struct ErrorBody<'a> {
    id: String,
    name: &'a str,
    errors: Vec<String>,
}

pub fn error(status: u16, name: &str, errors: Vec<String>, seq: u64) -> Response {
    let id = format!(
        "{:016x}{:016x}",
        common::fnv1a(&seq.to_le_bytes()),
        common::fnv1a(name.as_bytes())
    );
    Response::json(status, &ErrorBody { id, name, errors })
}

pub fn error_for_status(status: u16, seq: u64) -> Response {
    let (name, msg) = match status {
        400 => ("bad_request", "bad request (scripted by mock-providers)"),
        401 => ("unauthorized", "authorization: invalid or missing header value"),
        402 => ("payment_required", "You lack sufficient credits to make this request. Please purchase more credits and try again."),
        403 => ("content_moderation", "Your request was flagged by our content moderation system."),
        413 => ("payload_too_large", "payload too large"),
        422 => ("invalid_request", "request rejected"),
        429 => ("rate_limit_exceeded", "You have exceeded the rate limit of 150 requests within a 10 second period."),
        _ => ("internal_error", "An unexpected server error has occurred, please try again later."),
    };
    error(status, name, vec![msg.to_string()], seq)
}

/// Fields of a multipart/form-data body (name → text value); `None` when not multipart.
pub fn parse_multipart(content_type: &str, body: &[u8]) -> Option<Vec<(String, String)>> {
    if !content_type
        .to_ascii_lowercase()
        .starts_with("multipart/form-data")
    {
        return None;
    }
    let boundary = content_type
        .split(';')
        .find_map(|p| p.trim().strip_prefix("boundary="))?
        .trim_matches('"');
    if boundary.is_empty() {
        return None;
    }
    let delim = format!("--{boundary}").into_bytes();
    let mut fields = Vec::new();
    let mut pos = find(body, &delim, 0)?;
    loop {
        let start = pos + delim.len();
        if body.get(start..start + 2) == Some(b"--") {
            break;
        }
        let Some(next) = find(body, &delim, start) else {
            break;
        };
        let part = &body[start..next];
        let part = part.strip_prefix(b"\r\n").unwrap_or(part);
        let part = part.strip_suffix(b"\r\n").unwrap_or(part);
        if let Some(split) = find(part, b"\r\n\r\n", 0) {
            let head = String::from_utf8_lossy(&part[..split]);
            let value = &part[split + 4..];
            let name = head
                .lines()
                .find(|l| l.to_ascii_lowercase().starts_with("content-disposition"))
                .and_then(|l| {
                    l.split(';').find_map(|p| {
                        p.trim()
                            .strip_prefix("name=")
                            .map(|n| n.trim_matches('"').to_string())
                    })
                });
            if let Some(name) = name {
                fields.push((name, String::from_utf8_lossy(value).into_owned()));
            }
        }
        pos = next;
    }
    Some(fields)
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || from > hay.len() {
        return None;
    }
    hay[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + from)
}

pub fn fake_audio(format: &str, duration: u64, seed: u64) -> Vec<u8> {
    let len = 1000 + 100 * duration as usize;
    let mut out = if format == "wav" {
        let mut h = b"RIFF".to_vec();
        h.extend_from_slice(&((len - 8) as u32).to_le_bytes());
        h.extend_from_slice(b"WAVEfmt ");
        h
    } else {
        b"ID3\x04\x00\x00\x00\x00\x00\x00".to_vec()
    };
    let mut x = seed | 1;
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.push((x >> 32) as u8);
    }
    out
}

pub fn handle(state: &State, req: &Request) -> Response {
    let seq = state.next_seq();
    if req.path != PATH {
        return error(
            404,
            "not_found",
            vec![format!("{} {} not found", req.method, req.path)],
            seq,
        );
    }
    if req.method != "POST" {
        return error(
            405,
            "method_not_allowed",
            vec![format!("method {} not allowed", req.method)],
            seq,
        );
    }
    let auth_ok = req
        .header("authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|k| k.trim() == state.config.stability_key);
    if !auth_ok {
        return error(
            401,
            "unauthorized",
            vec!["authorization: invalid or missing header value".into()],
            seq,
        );
    }
    let script = state.take_script("stability");
    if let Some(s) = script.as_ref().filter(|s| s.is_override()) {
        return s.override_response(|status| error_for_status(status, seq));
    }
    let mut resp = answer(req, seq);
    if let Some(s) = &script {
        s.apply_timing(&mut resp);
    }
    resp
}

fn answer(req: &Request, seq: u64) -> Response {
    let bad = |msg: String| error(400, "bad_request", vec![msg], seq);
    let Some(fields) = parse_multipart(req.header("content-type").unwrap_or(""), &req.body) else {
        return bad("content-type: must be multipart/form-data".into());
    };
    let field = |n: &str| {
        fields
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.trim().to_string())
    };
    let prompt = match field("prompt") {
        Some(p) if !p.is_empty() => p,
        _ => return bad("prompt: is required".into()),
    };
    let model = field("model").unwrap_or_else(|| "stable-audio-2".into());
    if model != "stable-audio-2" && model != "stable-audio-2.5" {
        return bad(format!(
            "model: must be one of stable-audio-2, stable-audio-2.5 (got {model})"
        ));
    }
    let duration = match field("duration").map(|d| d.parse::<f64>()) {
        None => 190.0,
        Some(Ok(d)) if (1.0..=190.0).contains(&d) => d,
        Some(_) => return bad("duration: must be between 1 and 190".into()),
    };
    let format = field("output_format").unwrap_or_else(|| "mp3".into());
    if format != "mp3" && format != "wav" {
        return bad("output_format: must be one of mp3, wav".into());
    }
    let (lo, hi) = if model == "stable-audio-2.5" {
        (4, 8)
    } else {
        (30, 100)
    };
    if let Some(steps) = field("steps") {
        match steps.parse::<u64>() {
            Ok(s) if (lo..=hi).contains(&s) => {}
            _ => return bad(format!("steps: must be between {lo} and {hi} for {model}")),
        }
    }
    let seed = match field("seed").map(|s| s.parse::<u64>()) {
        None | Some(Ok(0)) => common::fnv1a(prompt.as_bytes()) % 4_294_967_294 + 1,
        Some(Ok(s)) if s <= 4_294_967_294 => s,
        Some(_) => return bad("seed: must be between 0 and 4294967294".into()),
    };
    let audio = fake_audio(&format, duration.ceil() as u64, seed);
    let wants_json = req
        .header("accept")
        .is_some_and(|a| a.to_ascii_lowercase().contains("application/json"));
    if wants_json {
        #[derive(Serialize)]
        struct Json {
            audio: String,
            finish_reason: &'static str,
            seed: u64,
        }
        Response::json(
            200,
            &Json {
                audio: common::b64_encode(&audio),
                finish_reason: "SUCCESS",
                seed,
            },
        )
    } else {
        let ct = if format == "wav" {
            "audio/wav"
        } else {
            "audio/mpeg"
        };
        Response::new(200, ct, audio)
            .header("finish-reason", "SUCCESS")
            .header("seed", seed.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = "------b7\r\nContent-Disposition: form-data; name=\"prompt\"\r\n\r\nlofi loop\r\n------b7\r\nContent-Disposition: form-data; name=\"duration\"\r\n\r\n30\r\n------b7\r\nContent-Disposition: form-data; name=\"none\"; filename=\"\"\r\nContent-Type: application/octet-stream\r\n\r\n\r\n------b7--\r\n";

    #[test]
    fn multipart_fields() {
        let f = parse_multipart("multipart/form-data; boundary=----b7", BODY.as_bytes());
        assert_eq!(
            f,
            Some(vec![
                ("prompt".to_string(), "lofi loop".to_string()),
                ("duration".to_string(), "30".to_string()),
                ("none".to_string(), String::new()),
            ])
        );
        assert_eq!(parse_multipart("application/json", b"{}"), None);
    }

    #[test]
    fn audio_shapes() {
        assert!(fake_audio("mp3", 30, 7).starts_with(b"ID3"));
        assert!(fake_audio("wav", 30, 7).starts_with(b"RIFF"));
        assert_eq!(fake_audio("mp3", 30, 7).len(), 4000);
    }
}
