//! The request log behind `GET /__control/requests`: a ring buffer, so the mock's memory stays
//! flat however many requests a soak sends (it grew to gigabytes when it kept everything).
//!
//! Entries are stored as received (raw body bytes, header pairs) and turned into JSON only when
//! the log is read, which keeps recording cheap on the request path.

use std::collections::VecDeque;

use serde_json::{json, Map, Value};

use crate::http::Request;

/// Entries kept; older ones are dropped first.
pub const LOG_ENTRIES: usize = 1000;
/// Body bytes kept per entry.
pub const LOG_BODY_CAP: usize = 1024 * 1024;
/// Body bytes kept over all entries; the oldest entries go first when a new one would exceed it.
pub const LOG_BODY_BUDGET: usize = 64 * 1024 * 1024;

struct Entry {
    provider: &'static str,
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    /// The first [`LOG_BODY_CAP`] bytes of the body.
    body: Vec<u8>,
    raw_len: usize,
    at_ms: u64,
}

#[derive(Default)]
pub struct RequestLog {
    entries: VecDeque<Entry>,
    body_bytes: usize,
}

impl RequestLog {
    pub fn push(&mut self, provider: &'static str, req: &Request) {
        let body = req.body[..req.body.len().min(LOG_BODY_CAP)].to_vec();
        while !self.entries.is_empty()
            && (self.entries.len() >= LOG_ENTRIES || self.body_bytes + body.len() > LOG_BODY_BUDGET)
        {
            if let Some(old) = self.entries.pop_front() {
                self.body_bytes -= old.body.len();
            }
        }
        self.body_bytes += body.len();
        self.entries.push_back(Entry {
            provider,
            method: req.method.clone(),
            path: req.path.clone(),
            query: req.query.clone(),
            headers: req.headers.clone(),
            body,
            raw_len: req.body.len(),
            at_ms: now_ms(),
        });
    }

    pub fn clear(&mut self) {
        self.entries.clear();
        self.body_bytes = 0;
    }

    /// The entries (of one provider, if given), oldest first: `{provider, method, path, query,
    /// headers, body, raw_len, at_ms}` with repeated headers joined by ", ", the body as JSON when
    /// it is whole JSON, else as text, and `"truncated": true` when it was cut.
    pub fn to_json(&self, provider: Option<&str>) -> Vec<Value> {
        self.entries
            .iter()
            .filter(|e| provider.is_none_or(|p| e.provider == p))
            .map(entry_json)
            .collect()
    }
}

fn entry_json(e: &Entry) -> Value {
    let mut headers = Map::new();
    for (k, v) in &e.headers {
        let merged = match headers.get(k).and_then(Value::as_str) {
            Some(prev) => format!("{prev}, {v}"),
            None => v.clone(),
        };
        headers.insert(k.clone(), Value::String(merged));
    }
    let truncated = e.body.len() < e.raw_len;
    let body = match serde_json::from_slice::<Value>(&e.body) {
        Ok(v) if !e.body.is_empty() && !truncated => v,
        _ => Value::String(String::from_utf8_lossy(&e.body).into_owned()),
    };
    let mut v = json!({
        "provider": e.provider,
        "method": e.method,
        "path": e.path,
        "query": e.query,
        "headers": headers,
        "body": body,
        "raw_len": e.raw_len,
        "at_ms": e.at_ms,
    });
    if truncated {
        v["truncated"] = Value::Bool(true);
    }
    v
}

/// Unix milliseconds (request times in the log; also seeds PayPal ids).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(body: Vec<u8>) -> Request {
        Request {
            method: "POST".into(),
            path: "/openai/v1/chat/completions".into(),
            query: String::new(),
            headers: vec![("x-a".into(), "1".into()), ("x-a".into(), "2".into())],
            body,
        }
    }

    #[test]
    fn keeps_the_last_entries_only() {
        let mut log = RequestLog::default();
        for i in 0..LOG_ENTRIES + 10 {
            log.push("openai", &req(format!("{{\"i\":{i}}}").into_bytes()));
        }
        let all = log.to_json(None);
        assert_eq!(all.len(), LOG_ENTRIES);
        assert_eq!(all[0]["body"]["i"], 10);
        assert_eq!(all[0]["headers"]["x-a"], "1, 2");
        assert!(log.to_json(Some("gemini")).is_empty());
    }

    #[test]
    fn big_bodies_are_cut_and_budgeted() {
        let mut log = RequestLog::default();
        let big = vec![b'x'; LOG_BODY_CAP + 5];
        for _ in 0..(LOG_BODY_BUDGET / LOG_BODY_CAP) + 3 {
            log.push("openai", &req(big.clone()));
        }
        assert!(log.body_bytes <= LOG_BODY_BUDGET);
        let all = log.to_json(None);
        assert_eq!(all.len(), LOG_BODY_BUDGET / LOG_BODY_CAP);
        assert_eq!(all[0]["raw_len"], LOG_BODY_CAP + 5);
        assert_eq!(all[0]["truncated"], true);
        assert_eq!(all[0]["body"].as_str().map(str::len), Some(LOG_BODY_CAP));
        log.push("openai", &req(b"not json".to_vec()));
        assert_eq!(
            log.to_json(None).last().map(|e| e["body"].clone()),
            Some(json!("not json"))
        );
        log.clear();
        assert!(log.to_json(None).is_empty());
    }
}
