//! Shared state (config, scripts, request log, issued PayPal tokens) and the `/__control/*` routes.
//!
//! * `POST /__control/script` `{"provider", "times"=1, "status", "body", "delay_ms", "chunk_delay_ms",
//!   "cut_after_chunks", "usage", "verification_status"}` queues a behaviour for the next `times`
//!   requests to `provider` (FIFO; `"*"` = any provider). Providers: openai, openai-images, anthropic,
//!   gemini, elevenlabs, stability, paypal-token, paypal-verify, `*`.
//!   - `status` (not 200) or `body`: answer that status (default 500) with `body` (JSON value → JSON,
//!     JSON string → sent verbatim as text/plain) or, without `body`, the provider's own error body for
//!     that status.
//!   - `delay_ms`: sleep before the response head. `chunk_delay_ms`: sleep between stream chunks.
//!   - `cut_after_chunks: N`: streams send N chunks (SSE events / audio chunks / JSON-array pieces),
//!     then the connection is shut down without the terminating chunk; non-streamed bodies send the
//!     head and half of the body, then drop.
//!   - `usage`: provider-native usage numbers reported instead of the computed ones.
//!   - `verification_status`: forced PayPal verification answer.
//!
//!   A script is consumed by a request that passed the provider's authentication check.
//! * `GET /__control/requests[?provider=X]` → every received provider request, oldest first.
//! * `POST /__control/reset` clears scripts and the log. `GET /__control/health` → 200.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::http::{QueryParam, Request, Response};

pub const PROVIDERS: [&str; 9] = [
    "openai",
    "openai-images",
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
    pub delay_ms: Option<u64>,
    #[serde(default)]
    pub chunk_delay_ms: Option<u64>,
    #[serde(default)]
    pub cut_after_chunks: Option<u64>,
    #[serde(default)]
    pub usage: Option<Value>,
    #[serde(default)]
    pub verification_status: Option<String>,
}

impl Script {
    /// Whether this script replaces the answer with an error/custom body.
    pub fn is_override(&self) -> bool {
        self.body.is_some() || self.status.is_some_and(|s| s != 200)
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

    /// The scripted custom response, if `body` is set (status default 500).
    pub fn custom_body_response(&self) -> Option<Response> {
        let status = self.status.unwrap_or(500);
        let mut resp = match self.body.as_ref()? {
            Value::String(s) => {
                Response::new(status, "text/plain; charset=utf-8", s.clone().into_bytes())
            }
            v => Response::json(status, v),
        };
        self.apply_timing(&mut resp);
        Some(resp)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Recorded {
    pub provider: String,
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: serde_json::Map<String, Value>,
    pub body: Value,
    pub raw_len: usize,
    pub at_ms: u64,
}

pub struct State {
    pub config: Config,
    scripts: Mutex<VecDeque<(Script, u64)>>,
    log: Mutex<Vec<Recorded>>,
    paypal_tokens: Mutex<HashSet<String>>,
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
            log: Mutex::new(Vec::new()),
            paypal_tokens: Mutex::new(HashSet::new()),
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

    pub fn record(&self, provider: &str, req: &Request) {
        let mut headers = serde_json::Map::new();
        for (k, v) in &req.headers {
            let merged = match headers.get(k).and_then(Value::as_str) {
                Some(prev) => format!("{prev}, {v}"),
                None => v.clone(),
            };
            headers.insert(k.clone(), Value::String(merged));
        }
        let body = match serde_json::from_slice::<Value>(&req.body) {
            Ok(v) if !req.body.is_empty() => v,
            _ => Value::String(req.body_str()),
        };
        lock(&self.log).push(Recorded {
            provider: provider.to_string(),
            method: req.method.clone(),
            path: req.path.clone(),
            query: req.query.clone(),
            headers,
            body,
            raw_len: req.body.len(),
            at_ms: crate::common::now_ms(),
        });
    }

    pub fn issue_paypal_token(&self, token: String) {
        lock(&self.paypal_tokens).insert(token);
    }

    pub fn paypal_token_valid(&self, token: &str) -> bool {
        lock(&self.paypal_tokens).contains(token)
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
        ("POST", "/reset") => {
            state.reset();
            ok_json(serde_json::json!({ "ok": true }))
        }
        ("GET", "/requests") => {
            let filter = req.query_param("provider");
            let log = lock(&state.log);
            let items: Vec<&Recorded> = log
                .iter()
                .filter(|r| filter.as_deref().is_none_or(|p| r.provider == p))
                .collect();
            Response::json(200, &items)
        }
        ("POST", "/script") => match serde_json::from_slice::<Script>(&req.body) {
            Ok(s) if PROVIDERS.contains(&s.provider.as_str()) => {
                let queued = state.push_script(s);
                ok_json(serde_json::json!({ "ok": true, "queued": queued }))
            }
            Ok(s) => bad(&format!(
                "unknown provider '{}'; expected one of {:?}",
                s.provider, PROVIDERS
            )),
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
    }
}
