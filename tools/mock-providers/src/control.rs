//! Shared state (config, scripts, request log, issued PayPal tokens) and the `/__control/*` routes.
//!
//! * `POST /__control/script` `{"provider", "times"=1, "status", "body", "delay_ms", "chunk_delay_ms",
//!   "cut_after_chunks", "stall_after_chunks", "stall_ms", "raw_stream", "raw_body", "content_type",
//!   "output_tokens", "token_bytes", "usage", "verification_status"}` queues a behaviour for the
//!   next `times` requests to `provider` (FIFO; `"*"` = any provider). Providers: openai,
//!   openai-images, openai-speech, anthropic, gemini, elevenlabs, stability, paypal-token, paypal-verify, `*`.
//!   - `status` (not 200) or `body`: answer that status (default 500) with `body` (JSON value → JSON,
//!     JSON string → sent verbatim as text/plain) or, without `body`, the provider's own error body for
//!     that status.
//!   - `raw_stream: "<text>"`: answer `status` (default 200) with `content-type: text/event-stream`
//!     and exactly these bytes as the body, sent chunked one SSE event (up to and including each
//!     blank line) per chunk, so the pacing knobs below apply to it too. For malformed streams.
//!   - `raw_body: "<text>"` (+ `content_type`, default `application/json`): answer `status`
//!     (default 200) with exactly these bytes as a plain (`content-length`) body.
//!     At most one of `body`, `raw_stream`, `raw_body`.
//!   - `delay_ms`: sleep before the response head. `chunk_delay_ms`: sleep between stream chunks.
//!   - `cut_after_chunks: N`: streams send N chunks (SSE events / audio chunks / JSON-array pieces),
//!     then the connection is shut down without the terminating chunk; non-streamed bodies send the
//!     head and half of the body, then drop.
//!   - `stall_after_chunks: N` + `stall_ms: M`: a stream sends N chunks, pauses M ms once (on top
//!     of `chunk_delay_ms`), then goes on normally; N = 0 pauses right after the head. For
//!     idle-gap timeouts mid-stream. A plain (`content-length`) body is sent in two halves with
//!     the pause after N of them (1: mid-body), for a whole answer that stalls mid-way.
//!   - `output_tokens: N`: chat/messages/generateContent replies are N tokens long instead of the
//!     deterministic 24, still capped by the request's max_tokens (the stop reason says
//!     "length"/"max_tokens"/"MAX_TOKENS" when the cap cut it). Words cycle through the 24 reply
//!     words, one per token; usage counts the tokens actually emitted.
//!   - `token_bytes: B`: each output token's text is padded with `.` to B bytes (shorter words
//!     only), for big streams (e.g. 800 tokens × 64 KiB). Streams are produced lazily, so the
//!     mock never holds a whole big stream in memory.
//!   - `usage`: provider-native usage numbers reported instead of the computed ones.
//!   - `verification_status`: forced PayPal verification answer.
//!   - `gate: true`: the response waits before its head until `POST /__control/release` (see
//!     `gate`); `GET /__control/held` counts the waiting ones.
//!   - `service_tier`: the tier openai, anthropic and gemini answers report (default: the
//!     standard one, `default` / `standard` / `standard`).
//!   - `model_version`: gemini's `modelVersion` (default: the requested model).
//!   - `drop_connection: true`: the request is read, then the connection is closed with no
//!     answer at all (after `delay_ms`).
//!
//!   A script is consumed by a request that passed the provider's authentication check.
//! * `GET /__control/requests[?provider=X]` → the last [`LOG_ENTRIES`](crate::request_log::LOG_ENTRIES) provider requests, oldest
//!   first (a ring buffer, so a long soak does not grow the mock). Each body is kept up to
//!   [`LOG_BODY_CAP`](crate::request_log::LOG_BODY_CAP) bytes and all kept bodies together up to [`LOG_BODY_BUDGET`](crate::request_log::LOG_BODY_BUDGET) bytes (oldest
//!   entries go first); a body cut short is reported as the text of its first bytes with
//!   `"truncated": true` (`raw_len` is always the full length).
//! * `POST /__control/reset` clears scripts and the log. `GET /__control/health` → 200.
//! * `POST /__control/stripe/<action>`, `POST /__control/paypal/<action>`: the payment services'
//!   webhook events, made and delivered ([`crate::stripe_events`], [`crate::paypal_events`]).

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use serde::Deserialize;
use serde_json::Value;

use crate::http::{Request, Response};
use crate::request_log::RequestLog;

pub const PROVIDERS: [&str; 11] = [
    "stripe",
    "openai",
    "openai-images",
    "openai-speech",
    "anthropic",
    "gemini",
    "elevenlabs",
    "stability",
    "paypal-token",
    "paypal-verify",
    "*",
];

#[derive(Debug, Clone)]
pub struct Config {
    pub port: u16,
    pub openai_key: String,
    pub anthropic_key: String,
    pub google_key: String,
    pub elevenlabs_key: String,
    pub stability_key: String,
    pub paypal_client_id: String,
    pub paypal_client_secret: String,
    pub paypal_webhook_id: String,
    pub paypal_signing_secret: String,
    pub stripe_secret_key: String,
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_string())
}

impl Config {
    pub fn from_env() -> Config {
        Config {
            port: std::env::var("MOCK_PORT")
                .ok()
                .and_then(|p| p.trim().parse().ok())
                .unwrap_or(8090),
            openai_key: env_or("MOCK_OPENAI_API_KEY", "sk-mock-openai"),
            anthropic_key: env_or("MOCK_ANTHROPIC_API_KEY", "sk-ant-mock"),
            google_key: env_or("MOCK_GOOGLE_API_KEY", "AIza-mock-google"),
            elevenlabs_key: env_or("MOCK_ELEVENLABS_API_KEY", "el-mock"),
            stability_key: env_or("MOCK_STABILITY_API_KEY", "sk-stability-mock"),
            paypal_client_id: env_or("MOCK_PAYPAL_CLIENT_ID", "paypal-mock-client"),
            paypal_client_secret: env_or("MOCK_PAYPAL_CLIENT_SECRET", "paypal-mock-secret"),
            paypal_webhook_id: env_or("MOCK_PAYPAL_WEBHOOK_ID", "WH-MOCK-0001"),
            stripe_secret_key: env_or("MOCK_STRIPE_SECRET_KEY", "sk_test_local_stripe"),
            paypal_signing_secret: env_or(
                "MOCK_PAYPAL_SIGNING_SECRET",
                "paypal-mock-signing-secret",
            ),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Script {
    pub provider: String,
    #[serde(default)]
    pub times: Option<u64>,
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub body: Option<Value>,
    #[serde(default)]
    pub raw_stream: Option<String>,
    #[serde(default)]
    pub raw_body: Option<String>,
    #[serde(default)]
    pub content_type: Option<String>,
    #[serde(default)]
    pub delay_ms: Option<u64>,
    #[serde(default)]
    pub chunk_delay_ms: Option<u64>,
    #[serde(default)]
    pub cut_after_chunks: Option<u64>,
    #[serde(default)]
    pub stall_after_chunks: Option<u64>,
    #[serde(default)]
    pub stall_ms: Option<u64>,
    #[serde(default)]
    pub output_tokens: Option<u64>,
    #[serde(default)]
    pub token_bytes: Option<u64>,
    #[serde(default)]
    pub usage: Option<Value>,
    #[serde(default)]
    pub verification_status: Option<String>,
    #[serde(default)]
    pub gate: Option<bool>,
    /// The service tier the answer reports (openai `service_tier`, anthropic
    /// `usage.service_tier`, gemini `usageMetadata.serviceTier`) instead of the standard one.
    #[serde(default)]
    pub service_tier: Option<String>,
    /// Gemini's `modelVersion` instead of the requested model (a served alias or auto-route).
    #[serde(default)]
    pub model_version: Option<String>,
    /// Close the connection without answering anything.
    #[serde(default)]
    pub drop_connection: bool,
}

impl Script {
    /// Whether this script replaces the answer with an error/custom body.
    pub fn is_override(&self) -> bool {
        self.body.is_some()
            || self.drop_connection
            || self.raw_stream.is_some()
            || self.raw_body.is_some()
            || self.status.is_some_and(|s| s != 200)
    }

    /// Numeric usage override field.
    pub fn usage_u64(&self, key: &str) -> Option<u64> {
        self.usage
            .as_ref()
            .and_then(|u| u.get(key))
            .and_then(Value::as_u64)
    }

    /// Apply the timing knobs to a response.
    pub fn apply_timing(&self, resp: &mut Response) {
        resp.delay_ms = self.delay_ms.unwrap_or(0);
        resp.chunk_delay_ms = self.chunk_delay_ms.unwrap_or(0);
        resp.cut_after_chunks = self.cut_after_chunks;
        resp.stall_after_chunks = self.stall_after_chunks;
        resp.stall_ms = self.stall_ms.unwrap_or(0);
        resp.gated = self.gate.unwrap_or(false);
        resp.drop_connection = self.drop_connection;
    }

    /// The scripted answer of an override: the custom body if one is set, else the provider's
    /// own error for the scripted status (default 500); timing knobs applied.
    pub fn override_response(&self, provider_error: impl FnOnce(u16) -> Response) -> Response {
        let mut resp = self
            .custom_body_response()
            .unwrap_or_else(|| provider_error(self.status.unwrap_or(500)));
        self.apply_timing(&mut resp);
        resp
    }

    /// The scripted custom response, if `raw_stream`, `raw_body` or `body` is set.
    pub fn custom_body_response(&self) -> Option<Response> {
        let mut resp = if let Some(raw) = &self.raw_stream {
            let events = sse_events(raw.as_bytes());
            Response::stream(self.status.unwrap_or(200), "text/event-stream", events)
        } else if let Some(raw) = &self.raw_body {
            let content_type = self.content_type.as_deref().unwrap_or("application/json");
            Response::new(
                self.status.unwrap_or(200),
                content_type,
                raw.clone().into_bytes(),
            )
        } else {
            let status = self.status.unwrap_or(500);
            match self.body.as_ref()? {
                Value::String(s) => {
                    Response::new(status, "text/plain; charset=utf-8", s.clone().into_bytes())
                }
                v => Response::json(status, v),
            }
        };
        self.apply_timing(&mut resp);
        Some(resp)
    }

    /// What is wrong with a script, if anything (unknown provider, conflicting bodies).
    fn problem(&self) -> Option<String> {
        if !PROVIDERS.contains(&self.provider.as_str()) {
            return Some(format!(
                "unknown provider '{}'; expected one of {:?}",
                self.provider, PROVIDERS
            ));
        }
        let bodies = [
            self.body.is_some(),
            self.raw_stream.is_some(),
            self.raw_body.is_some(),
        ];
        if bodies.iter().filter(|b| **b).count() > 1 {
            return Some("at most one of 'body', 'raw_stream', 'raw_body'".into());
        }
        None
    }
}

/// Split a raw SSE text into events, each up to and including its blank line ("\n\n" or
/// "\r\n\r\n"); whatever follows the last blank line is one more piece. Concatenated, the pieces
/// are exactly `raw`.
pub fn sse_events(raw: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < raw.len() {
        let end = if raw[i..].starts_with(b"\r\n\r\n") {
            Some(i + 4)
        } else if raw[i..].starts_with(b"\n\n") {
            Some(i + 2)
        } else {
            None
        };
        match end {
            Some(e) => {
                out.push(raw[start..e].to_vec());
                start = e;
                i = e;
            }
            None => i += 1,
        }
    }
    if start < raw.len() {
        out.push(raw[start..].to_vec());
    }
    out
}

/// Issued PayPal access tokens kept valid (the oldest are forgotten beyond this).
const PAYPAL_TOKENS_KEPT: usize = 10_000;

#[derive(Default)]
struct PaypalTokens {
    valid: HashSet<String>,
    order: VecDeque<String>,
}

pub struct State {
    pub config: Config,
    scripts: Mutex<VecDeque<(Script, u64)>>,
    log: Mutex<RequestLog>,
    paypal_tokens: Mutex<PaypalTokens>,
    seq: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking holder cannot leave these structures inconsistent; keep serving.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl State {
    pub fn new(config: Config) -> State {
        State {
            config,
            scripts: Mutex::new(VecDeque::new()),
            log: Mutex::new(RequestLog::default()),
            paypal_tokens: Mutex::new(PaypalTokens::default()),
            seq: AtomicU64::new(1),
        }
    }

    /// Next value of a process-wide counter (ids).
    pub fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::Relaxed)
    }

    /// Consume one use of the oldest script matching `provider` (or "*").
    pub fn take_script(&self, provider: &str) -> Option<Script> {
        let mut q = lock(&self.scripts);
        let idx = q
            .iter()
            .position(|(s, _)| s.provider == provider || s.provider == "*")?;
        let (script, left) = q.get_mut(idx)?;
        let out = script.clone();
        *left = left.saturating_sub(1);
        if *left == 0 {
            q.remove(idx);
        }
        Some(out)
    }

    pub fn push_script(&self, s: Script) -> usize {
        let times = s.times.unwrap_or(1);
        let mut q = lock(&self.scripts);
        if times > 0 {
            q.push_back((s, times));
        }
        q.len()
    }

    pub fn record(&self, provider: &'static str, req: &Request) {
        lock(&self.log).push(provider, req);
    }

    pub fn issue_paypal_token(&self, token: String) {
        let mut t = lock(&self.paypal_tokens);
        if t.valid.insert(token.clone()) {
            t.order.push_back(token);
        }
        while t.order.len() > PAYPAL_TOKENS_KEPT {
            if let Some(old) = t.order.pop_front() {
                t.valid.remove(&old);
            }
        }
    }

    pub fn paypal_token_valid(&self, token: &str) -> bool {
        lock(&self.paypal_tokens).valid.contains(token)
    }

    fn reset(&self) {
        lock(&self.scripts).clear();
        lock(&self.log).clear();
    }
}

fn ok_json(v: Value) -> Response {
    Response::json(200, &v)
}

fn bad(msg: &str) -> Response {
    Response::json(400, &serde_json::json!({ "error": msg }))
}

/// Handle `/__control/*`.
pub fn handle(state: &State, req: &Request) -> Response {
    let route = req
        .path
        .trim_start_matches("/__control")
        .trim_end_matches('/');
    match (req.method.as_str(), route) {
        ("GET", "/health") | ("HEAD", "/health") => ok_json(serde_json::json!({ "ok": true })),
        ("GET", "/held") => ok_json(serde_json::json!({ "held": crate::gate::held() })),
        ("POST", "/release") => ok_json(serde_json::json!({ "released": crate::gate::release() })),
        ("POST", "/reset") => {
            state.reset();
            crate::gate::release();
            ok_json(serde_json::json!({ "ok": true }))
        }
        ("GET", "/requests") => {
            let filter = req.query_param("provider");
            let entries = lock(&state.log).to_json(filter.as_deref());
            Response::json(200, &entries)
        }
        ("POST", "/script") => match serde_json::from_slice::<Script>(&req.body) {
            Ok(s) => match s.problem() {
                Some(p) => bad(&p),
                None => {
                    let queued = state.push_script(s);
                    ok_json(serde_json::json!({ "ok": true, "queued": queued }))
                }
            },
            Err(e) => bad(&format!("invalid script: {e}")),
        },
        _ => Response::json(
            404,
            &serde_json::json!({ "error": "unknown control route" }),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(p: &str, times: u64, status: u16) -> Script {
        Script {
            provider: p.into(),
            times: Some(times),
            status: Some(status),
            ..Default::default()
        }
    }

    #[test]
    fn scripts_are_fifo_per_provider_with_wildcard() {
        let st = State::new(Config::from_env());
        st.push_script(script("openai", 2, 500));
        st.push_script(script("*", 1, 503));
        st.push_script(script("gemini", 1, 429));
        assert_eq!(st.take_script("gemini").and_then(|s| s.status), Some(503));
        assert_eq!(st.take_script("gemini").and_then(|s| s.status), Some(429));
        assert!(st.take_script("gemini").is_none());
        assert_eq!(st.take_script("openai").and_then(|s| s.status), Some(500));
        assert_eq!(st.take_script("openai").and_then(|s| s.status), Some(500));
        assert!(st.take_script("openai").is_none());
    }

    #[test]
    fn override_rules() {
        assert!(!script("openai", 1, 200).is_override());
        assert!(script("openai", 1, 429).is_override());
        let s = Script {
            provider: "openai".into(),
            body: Some(Value::String("x".into())),
            ..Default::default()
        };
        assert!(s.is_override());
        assert_eq!(s.custom_body_response().map(|r| r.status), Some(500));
        let raw = Script {
            provider: "openai".into(),
            raw_body: Some("{}".into()),
            ..Default::default()
        };
        assert!(raw.is_override());
        assert_eq!(raw.custom_body_response().map(|r| r.status), Some(200));
        let both = Script {
            raw_stream: Some("x".into()),
            ..raw
        };
        assert!(both.problem().is_some());
    }

    #[test]
    fn raw_streams_split_at_blank_lines() {
        let raw = b"data: [1,2]\n\ndata: \"x\"\r\n\r\ntail";
        let events = sse_events(raw);
        assert_eq!(
            events,
            vec![
                b"data: [1,2]\n\n".to_vec(),
                b"data: \"x\"\r\n\r\n".to_vec(),
                b"tail".to_vec()
            ]
        );
        assert_eq!(events.concat(), raw.to_vec());
        assert!(sse_events(b"").is_empty());
    }

    #[test]
    fn paypal_tokens_are_bounded() {
        let st = State::new(Config::from_env());
        for i in 0..PAYPAL_TOKENS_KEPT + 3 {
            st.issue_paypal_token(format!("t{i}"));
        }
        assert!(!st.paypal_token_valid("t0"));
        assert!(st.paypal_token_valid(&format!("t{}", PAYPAL_TOKENS_KEPT + 2)));
    }
}
