//! Structured logs: one JSON object per line on the console, which `wrangler tail` shows and
//! Workers Logs indexes by field. Each request writes one `request` line; its settlement writes a
//! second (`settlement`, same `request_id`) from `waitUntil`; slow and costly calls add a `warn`
//! line; every webhook outcome and sweeper run has its line.
//!
//! Nothing secret is ever logged: every line passes through [`Redactor`], which replaces each
//! secret value the request touched (customer key, admin secret, provider keys, Upstash token,
//! webhook secrets) with `***`, whatever message carried it.

use serde_json::{Map, Value};
use std::cell::RefCell;
use std::rc::Rc;
use worker::{console_error, console_log, console_warn};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warn,
    Error,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

/// The secret values to keep out of the log (shared by a request and its `waitUntil` tasks).
#[derive(Clone, Default)]
pub struct Redactor(Rc<RefCell<Vec<String>>>);

impl Redactor {
    /// Remembers a secret value (values shorter than 6 characters would redact ordinary words).
    pub fn add(&self, secret: &str) {
        if secret.len() >= 6 {
            let mut v = self.0.borrow_mut();
            if !v.iter().any(|s| s == secret) {
                v.push(secret.to_string());
            }
        }
    }

    fn clean(&self, mut text: String) -> String {
        for s in self.0.borrow().iter() {
            if text.contains(s.as_str()) {
                text = text.replace(s.as_str(), "***");
            }
        }
        text
    }

    /// Writes one line: `{"level", "msg", …fields}`.
    pub fn line(&self, level: Level, msg: &str, fields: Map<String, Value>) {
        let mut obj = Map::new();
        obj.insert("level".into(), Value::from(level.as_str()));
        obj.insert("msg".into(), Value::from(msg));
        obj.extend(fields);
        let text = self.clean(Value::Object(obj).to_string());
        match level {
            Level::Info => console_log!("{text}"),
            Level::Warn => console_warn!("{text}"),
            Level::Error => console_error!("{text}"),
        }
    }
}

/// Builds a field map: `fields!{"a" => 1, "b" => x}`.
#[macro_export]
macro_rules! fields {
    ($($k:literal => $v:expr),* $(,)?) => {{
        #[allow(unused_mut)]
        let mut m = serde_json::Map::new();
        $(m.insert($k.to_string(), serde_json::json!($v));)*
        m
    }};
}
