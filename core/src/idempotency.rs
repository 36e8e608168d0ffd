//! `Idempotency-Key` (issue 24): a retried call with the same key and body never runs or
//! charges again. This module owns the header's format, the call's fingerprint, the arguments
//! the admission and settlement scripts take for it, and the stored answer's encoding. It leaves
//! the check itself to `admit_v6` (inside the call's one blocking round trip) and the closing to
//! `settle_v6` (in `wait_until`, with the settlement).
//!
//! The record, `abk:idem:<key id>:<sha256 of the header>` (a hash, kept [`KEEP_SECS`]):
//!
//! - claimed by admission when the call is admitted: `fp` (the fingerprint) and `rid` (the
//!   first call's request id); while `charged` is missing the call is in flight (`409`);
//! - closed by the call's settlement: `charged` (mc), and `answer` ([`StoredAnswer`]) when the
//!   answer was whole and at most [`MAX_STORED_BODY`]; removed when the call was released (not
//!   served, nothing charged), so a retry runs.
//!
//! `abk:idem_of:<request id>` names the record of a call, for the settlement and the sweeper.

use crate::error::{ApiError, ErrorKind};
use crate::money::{credits_json, credits_string};
use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// The header a client sends.
pub const HEADER: &str = "idempotency-key";
/// The most characters the header may have.
pub const MAX_KEY_CHARS: usize = 255;
/// How long a key is remembered: 24 hours.
pub const KEEP_SECS: u64 = 24 * 3600;
/// The largest answer body kept for a replay (256 KiB); a bigger one keeps only the request id
/// and the charge.
pub const MAX_STORED_BODY: usize = 256 * 1024;
/// `Retry-After` of a retry that arrives while the first call is in flight.
pub const RETRY_AFTER_SECS: u64 = 1;

/// A call's idempotency claim: the header's hash (the record's name, under the key) and the
/// fingerprint of what was asked (route and body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub key_hash: String,
    pub fingerprint: String,
}

/// The header's value, checked: 1 to 255 visible ASCII characters. `None` when absent.
pub fn parse(header: Option<&str>) -> Result<Option<String>, ApiError> {
    let Some(v) = header else { return Ok(None) };
    if v.is_empty() || v.len() > MAX_KEY_CHARS || !v.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::invalid(format!("`Idempotency-Key` must be 1 to {MAX_KEY_CHARS} visible ASCII characters (no spaces)")));
    }
    Ok(Some(v.to_string()))
}

/// SHA-256 (hex) of the route, a newline (never part of a URL), and the body as received: the
/// same key with another route or body is a different request (`422`).
pub fn fingerprint(route: &str, body: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(route.as_bytes());
    h.update(b"\n");
    h.update(body);
    hex::encode(h.finalize())
}

impl Claim {
    pub fn new(key: &str, route: &str, body: &[u8]) -> Claim {
        Claim { key_hash: hex::encode(Sha256::digest(key.as_bytes())), fingerprint: fingerprint(route, body) }
    }

    /// `admit_v6`'s arguments 12 to 14: the header's hash, the fingerprint, the lifetime (s);
    /// three empty strings for a call without the header.
    pub fn argv(claim: Option<&Claim>) -> [String; 3] {
        match claim {
            Some(c) => [c.key_hash.clone(), c.fingerprint.clone(), KEEP_SECS.to_string()],
            None => [String::new(), String::new(), String::new()],
        }
    }
}

/// What the settlement does with a call's record (`settle_v6`'s argument 11).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Close {
    /// The call had no `Idempotency-Key`: nothing to do (no extra Redis command).
    Nothing,
    /// Not served, nothing charged: the record is removed, the key can be used again.
    Release,
    /// Served: the record keeps the charge, and the answer when it is kept (encoded).
    Done { answer: Option<String> },
}

impl Close {
    pub fn argv(&self) -> [String; 2] {
        match self {
            Close::Nothing => [String::new(), String::new()],
            Close::Release => ["release".into(), String::new()],
            Close::Done { answer } => ["done".into(), answer.clone().unwrap_or_default()],
        }
    }

    /// Keeps `answer` for replays (only a served call's record keeps one).
    pub fn keep(&mut self, answer: &StoredAnswer) {
        if let Close::Done { answer: slot } = self {
            *slot = answer.encode();
        }
    }
}

/// A whole answer as a replay gives it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAnswer {
    pub status: u16,
    pub content_type: String,
    /// The answer's own headers (the credit figures), lower-case names.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl StoredAnswer {
    /// The stored form (JSON, the body in base64); `None` when the body is over
    /// [`MAX_STORED_BODY`] (only the request id and the charge are kept).
    pub fn encode(&self) -> Option<String> {
        (self.body.len() <= MAX_STORED_BODY).then(|| {
            json!({ "status": self.status, "content_type": self.content_type, "headers": self.headers, "body": base64::engine::general_purpose::STANDARD.encode(&self.body) }).to_string()
        })
    }

    pub fn decode(s: &str) -> Option<StoredAnswer> {
        let v: Value = serde_json::from_str(s).ok()?;
        let headers = v["headers"].as_array()?.iter().map(|p| Some((p.get(0)?.as_str()?.to_string(), p.get(1)?.as_str()?.to_string()))).collect::<Option<Vec<_>>>()?;
        Some(StoredAnswer {
            status: u16::try_from(v["status"].as_u64()?).ok()?,
            content_type: v["content_type"].as_str()?.to_string(),
            headers,
            body: base64::engine::general_purpose::STANDARD.decode(v["body"].as_str()?).ok()?,
        })
    }
}

/// The headers a replay adds: it is one, and the first call's request id.
pub fn replay_headers(first_request_id: &str) -> Vec<(String, String)> {
    vec![("idempotent-replayed".into(), "true".into()), ("x-request-id".into(), first_request_id.to_string())]
}

/// What admission found under the key, when it did not run the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// The first call is still in flight (or its answer is not stored yet).
    InFlight { request_id: String },
    /// The key was used with another route or body.
    Reused { request_id: String },
    /// The first call finished: its charge, and its answer when kept.
    Done { request_id: String, charged_mc: i64, answer: Option<StoredAnswer> },
}

/// A retry answered with the first call's stored answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replay {
    pub request_id: String,
    pub answer: StoredAnswer,
}

impl Replay {
    /// The answer's headers, with [`replay_headers`].
    pub fn headers(&self) -> Vec<(String, String)> {
        let mut h = self.answer.headers.clone();
        h.extend(replay_headers(&self.request_id));
        h
    }
}

impl Found {
    /// The first call's answer when it is kept, else the client's error.
    pub fn replay(self) -> Result<Replay, ApiError> {
        match self {
            Found::Done { request_id, answer: Some(answer), .. } => Ok(Replay { request_id, answer }),
            other => Err(other.error()),
        }
    }

    /// The client's error for a call that is not run and not replayed.
    pub fn error(&self) -> ApiError {
        match self {
            Found::InFlight { request_id } => ApiError::new(
                ErrorKind::IdempotencyInFlight { retry_after_secs: RETRY_AFTER_SECS },
                format!("a request with this Idempotency-Key ({request_id}) is still in flight; retry after it finishes"),
            )
            .with_details(json!({ "idempotent_request_id": request_id })),
            Found::Reused { request_id } => ApiError::new(
                ErrorKind::IdempotencyKeyReused,
                format!("this Idempotency-Key was used by request {request_id} with another route or body; use a new key for a new request"),
            )
            .with_details(json!({ "idempotent_request_id": request_id })),
            Found::Done { request_id, charged_mc, .. } => ApiError::new(
                ErrorKind::IdempotencyKeyUsed,
                format!(
                    "this Idempotency-Key was used by request {request_id}, charged {} credits; its answer was streamed or larger than 256 KiB and is not kept: see GET /v1/requests/{request_id}",
                    credits_string(*charged_mc)
                ),
            )
            .with_details(json!({ "idempotent_request_id": request_id, "credits_charged": credits_json(*charged_mc) })),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_is_1_to_255_visible_ascii_characters() {
        assert_eq!(parse(None).unwrap(), None);
        assert_eq!(parse(Some("order-42_retry:1/a=b")).unwrap().as_deref(), Some("order-42_retry:1/a=b"));
        assert!(parse(Some(&"k".repeat(255))).unwrap().is_some());
        for bad in ["", "has space", "tab\t", "é", &"k".repeat(256), "nul\0"] {
            let e = parse(Some(bad)).unwrap_err();
            assert_eq!(e.status(), 400, "{bad:?}");
            assert!(e.message.contains("Idempotency-Key"), "{}", e.message);
        }
    }

    #[test]
    fn the_fingerprint_is_sha256_of_route_and_body() {
        // sha256("/v1/chat\n{}"), computed apart (printf '/v1/chat\n{}' | sha256sum).
        assert_eq!(fingerprint("/v1/chat", b"{}"), "02e6c1ff27488afaf882f5210a7a2b135c9315978ad81d0485244bbb8a7bce1e");
        assert_ne!(fingerprint("/v1/chat", b"{}"), fingerprint("/v1/chat/completions", b"{}"));
        assert_ne!(fingerprint("/v1/chat", b"{}"), fingerprint("/v1/chat", b"{ }"));
        // A URL's path and query never hold a raw newline: the separator keeps route and body apart.
        let c = Claim::new("k1", "/v1/chat", b"{}");
        assert_eq!(c.key_hash, crate::keys::hash_key("k1"), "the header's SHA-256, as keys are hashed");
        assert_eq!(Claim::argv(Some(&c)), [c.key_hash.clone(), c.fingerprint.clone(), "86400".into()]);
        assert_eq!(Claim::argv(None), [String::new(), String::new(), String::new()]);
    }

    #[test]
    fn a_stored_answer_round_trips_and_a_big_one_is_not_kept() {
        let a = StoredAnswer { status: 200, content_type: "audio/mpeg".into(), headers: vec![("x-credits-charged".into(), "0.03".into())], body: vec![0, 255, 10, 13, b'"'] };
        let s = a.encode().unwrap();
        assert_eq!(StoredAnswer::decode(&s), Some(a.clone()));
        let big = StoredAnswer { body: vec![7; MAX_STORED_BODY + 1], ..a.clone() };
        assert_eq!(big.encode(), None);
        assert!(StoredAnswer { body: vec![7; MAX_STORED_BODY], ..a }.encode().is_some());
        let mut close = Close::Done { answer: None };
        close.keep(&big);
        assert_eq!(close.argv(), ["done".to_string(), String::new()]);
        let mut release = Close::Release;
        release.keep(&StoredAnswer { status: 200, content_type: "x".into(), headers: vec![], body: vec![] });
        assert_eq!(release.argv(), ["release".to_string(), String::new()]);
        assert_eq!(Close::Nothing.argv(), [String::new(), String::new()]);
        assert_eq!(StoredAnswer::decode("{}"), None);
    }

    #[test]
    fn what_admission_found_becomes_409_or_422() {
        let e = Found::InFlight { request_id: "req_1".into() }.error();
        assert_eq!((e.status(), e.kind.type_name()), (409, "idempotency_in_flight"));
        assert!(e.response_headers().contains(&("retry-after".into(), "1".into())));
        let e = Found::Reused { request_id: "req_1".into() }.error();
        assert_eq!((e.status(), e.kind.type_name()), (422, "idempotency_key_reused"));
        let e = Found::Done { request_id: "req_1".into(), charged_mc: 30, answer: None }.error();
        assert_eq!((e.status(), e.kind.type_name()), (409, "idempotency_key_used"));
        assert!(e.message.contains("req_1") && e.message.contains("0.03 credits"), "{}", e.message);
        assert_eq!(e.details.unwrap()["credits_charged"], json!(0.03));
    }
}
