//! Our observability and test knobs next to the Upstash routes:
//!
//! * `GET /__stats` → `{requests, commands, unauthorized, delay_ms, fail_next_remaining, log}`:
//!   Upstash requests that passed auth, the commands they carried, rejected requests, the current
//!   delay, how many injected failures are still armed, and the last [`LOG_CAP`] requests
//!   (`{seq, route, commands, received_ms, completed_ms, status}`; `completed_ms` is when the
//!   answer was ready, so a client never sees its answer before its log entry; injected failures
//!   carry `"injected": true`, a dropped connection `"status": 0`).
//! * `POST /__stats/reset` clears the counters and the log (not the knobs below).
//! * `POST /__config` with any of:
//!   - `"delay_ms": N`: every Upstash request (rejected ones too) takes at least N ms, half
//!     before and half after running its commands, like a distant region. Also
//!     `UPSTASH_FRONT_DELAY_MS` at startup.
//!   - `"fail_next": {"count": N = 1, "command": "EVALSHA", "status": 500 | "drop"}`: the next N
//!     Upstash requests carrying `command` (the command of a single request, any command of a
//!     `/pipeline` or `/multi-exec` batch; name case-insensitive; no `command` = any request)
//!     fail without running anything: with `status` (default 500, body
//!     `{"error":"injected failure"}`) or, with `"drop"`, by closing the connection without an
//!     answer. The delay still applies. A new `fail_next` replaces the armed one; `count: 0`
//!     disarms it. Malformed requests and rejected tokens do not use one up.
//!
//!   The answer echoes what was set: `{"delay_ms": N}` and/or `{"fail_next_remaining": N}`.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use serde_json::{json, Map, Value};

use crate::http::{err, ok_json, Request, Response};

/// Log entries kept for `/__stats` (oldest dropped first).
pub const LOG_CAP: usize = 2000;

struct LogEntry {
    seq: u64,
    route: &'static str,
    commands: Vec<String>,
    received_ms: u64,
    completed_ms: u64,
    /// 0 when the connection was dropped on purpose.
    status: u16,
    injected: bool,
}

#[derive(Default)]
struct Stats {
    requests: u64,
    commands: u64,
    unauthorized: u64,
    seq: u64,
    log: VecDeque<LogEntry>,
}

/// How an injected failure answers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Injected {
    Status(u16),
    Drop,
}

/// The armed `fail_next` rule.
struct FailRule {
    remaining: u64,
    /// Upper-case command name; `None` matches any request.
    command: Option<String>,
    injected: Injected,
}

pub struct Observe {
    delay_ms: AtomicU64,
    stats: Mutex<Stats>,
    fail_next: Mutex<Option<FailRule>>,
}

/// What one finished Upstash request leaves in the log.
pub struct Finished {
    pub route: &'static str,
    pub commands: Vec<String>,
    pub received_ms: u64,
    pub status: u16,
    pub injected: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Counters and a log cannot be left inconsistent by a panic; keep serving.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Observe {
    pub fn new(delay_ms: u64) -> Observe {
        Observe {
            delay_ms: AtomicU64::new(delay_ms),
            stats: Mutex::new(Stats::default()),
            fail_next: Mutex::new(None),
        }
    }

    pub fn delay_ms(&self) -> u64 {
        self.delay_ms.load(Ordering::Relaxed)
    }

    pub fn count_unauthorized(&self) {
        lock(&self.stats).unauthorized += 1;
    }

    /// Log an Upstash request whose answer is ready.
    pub fn record(&self, done: Finished) {
        let completed_ms = now_ms();
        let mut st = lock(&self.stats);
        st.requests += 1;
        st.commands += done.commands.len() as u64;
        st.seq += 1;
        let seq = st.seq;
        if st.log.len() >= LOG_CAP {
            st.log.pop_front();
        }
        st.log.push_back(LogEntry {
            seq,
            route: done.route,
            commands: done.commands,
            received_ms: done.received_ms,
            completed_ms,
            status: done.status,
            injected: done.injected,
        });
    }

    /// Use up one armed failure if it matches a request carrying `commands` (upper-case names).
    pub fn take_injected(&self, commands: &[String]) -> Option<Injected> {
        let mut slot = lock(&self.fail_next);
        let rule = slot.as_mut()?;
        let hit = match &rule.command {
            None => true,
            Some(name) => commands.iter().any(|c| c == name),
        };
        if !hit {
            return None;
        }
        rule.remaining -= 1;
        let injected = rule.injected;
        if rule.remaining == 0 {
            *slot = None;
        }
        Some(injected)
    }

    fn fail_next_remaining(&self) -> u64 {
        lock(&self.fail_next).as_ref().map_or(0, |r| r.remaining)
    }

    /// `/__stats`, `/__stats/reset`, `/__config` (auth already checked).
    pub fn handle(&self, req: &Request, path: &str) -> Response {
        match (req.method.as_str(), path) {
            ("GET", "/__stats") => self.stats_json(),
            ("POST", "/__stats/reset") => {
                *lock(&self.stats) = Stats::default();
                ok_json(json!({"result": "OK"}))
            }
            ("POST", "/__config") => self.configure(&req.body),
            _ => err(405, "Method Not Allowed"),
        }
    }

    fn stats_json(&self) -> Response {
        let fail_next_remaining = self.fail_next_remaining();
        let st = lock(&self.stats);
        let log: Vec<Value> = st
            .log
            .iter()
            .map(|e| {
                let mut v = json!({
                    "seq": e.seq,
                    "route": e.route,
                    "commands": e.commands,
                    "received_ms": e.received_ms,
                    "completed_ms": e.completed_ms,
                    "status": e.status,
                });
                if e.injected {
                    v["injected"] = Value::Bool(true);
                }
                v
            })
            .collect();
        ok_json(json!({
            "requests": st.requests,
            "commands": st.commands,
            "unauthorized": st.unauthorized,
            "delay_ms": self.delay_ms(),
            "fail_next_remaining": fail_next_remaining,
            "log": log,
        }))
    }

    fn configure(&self, body: &[u8]) -> Response {
        let v: Value = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => return err(400, &format!("ERR invalid JSON: {e}")),
        };
        let delay = match v.get("delay_ms") {
            None => None,
            Some(d) => match d.as_u64() {
                Some(d) => Some(d),
                None => return err(400, EXPECTED),
            },
        };
        let rule = match v.get("fail_next") {
            None => None,
            Some(f) => match parse_fail_rule(f) {
                Ok(r) => Some(r),
                Err(e) => return err(400, &e),
            },
        };
        if delay.is_none() && rule.is_none() {
            return err(400, EXPECTED);
        }
        let mut answer = Map::new();
        if let Some(d) = delay {
            self.delay_ms.store(d, Ordering::Relaxed);
            answer.insert("delay_ms".into(), json!(d));
        }
        if let Some(rule) = rule {
            let remaining = rule.remaining;
            *lock(&self.fail_next) = (remaining > 0).then_some(rule);
            answer.insert("fail_next_remaining".into(), json!(remaining));
        }
        ok_json(Value::Object(answer))
    }
}

const EXPECTED: &str = "ERR expected {\"delay_ms\": <non-negative integer>} and/or {\"fail_next\": {\"count\": N, \"command\": NAME, \"status\": 500 | \"drop\"}}";

fn parse_fail_rule(f: &Value) -> Result<FailRule, String> {
    let bad = |what: &str| format!("ERR fail_next.{what}");
    let obj = f
        .as_object()
        .ok_or_else(|| bad("must be an object {count, command, status}"))?;
    if let Some(k) = obj
        .keys()
        .find(|k| !matches!(k.as_str(), "count" | "command" | "status"))
    {
        return Err(format!("ERR fail_next: unknown field '{k}'"));
    }
    let remaining = match obj.get("count") {
        None => 1,
        Some(c) => c
            .as_u64()
            .ok_or_else(|| bad("count must be a non-negative integer"))?,
    };
    let command = match obj.get("command") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if !s.is_empty() => Some(s.to_uppercase()),
        Some(_) => return Err(bad("command must be a command name")),
    };
    let injected = match obj.get("status") {
        None => Injected::Status(500),
        Some(Value::String(s)) if s == "drop" => Injected::Drop,
        Some(s) => match s.as_u64() {
            Some(code @ 400..=599) => Injected::Status(code as u16),
            _ => {
                return Err(bad(
                    "status must be an HTTP error status (400-599) or \"drop\"",
                ))
            }
        },
    };
    Ok(FailRule {
        remaining,
        command,
        injected,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn fail_rule_matches_by_command_and_counts_down() {
        let o = Observe::new(0);
        let r = o.configure(br#"{"fail_next":{"count":2,"command":"evalsha","status":"drop"}}"#);
        assert_eq!(r.status, 200);
        assert_eq!(o.take_injected(&names(&["GET"])), None);
        assert_eq!(
            o.take_injected(&names(&["GET", "EVALSHA"])),
            Some(Injected::Drop)
        );
        assert_eq!(o.fail_next_remaining(), 1);
        assert_eq!(o.take_injected(&names(&["EVALSHA"])), Some(Injected::Drop));
        assert_eq!(o.take_injected(&names(&["EVALSHA"])), None);
        o.configure(br#"{"fail_next":{}}"#);
        assert_eq!(
            o.take_injected(&names(&["PING"])),
            Some(Injected::Status(500))
        );
        assert_eq!(o.fail_next_remaining(), 0);
    }

    #[test]
    fn config_validation() {
        let o = Observe::new(5);
        assert_eq!(o.configure(br#"{"delay_ms":"x"}"#).status, 400);
        assert_eq!(o.configure(br#"{}"#).status, 400);
        assert_eq!(o.configure(br#"{"fail_next":{"status":200}}"#).status, 400);
        assert_eq!(o.configure(br#"{"fail_next":{"cnt":1}}"#).status, 400);
        let both = o.configure(br#"{"delay_ms":7,"fail_next":{"count":0}}"#);
        assert_eq!(
            both.body,
            br#"{"delay_ms":7,"fail_next_remaining":0}"#.to_vec()
        );
        assert_eq!(o.delay_ms(), 7);
    }

    #[test]
    fn log_is_capped() {
        let o = Observe::new(0);
        for _ in 0..LOG_CAP + 5 {
            o.record(Finished {
                route: "/",
                commands: names(&["GET"]),
                received_ms: 1,
                status: 200,
                injected: false,
            });
        }
        let st = lock(&o.stats);
        assert_eq!(st.log.len(), LOG_CAP);
        assert_eq!(st.log.front().map(|e| e.seq), Some(6));
        assert_eq!(st.requests, LOG_CAP as u64 + 5);
    }
}
