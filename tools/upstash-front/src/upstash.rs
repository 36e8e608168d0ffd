//! The Upstash REST protocol: routing, auth, JSON <-> RESP mapping, base64 response encoding,
//! plus our observability routes (`/__stats`, `/__stats/reset`, `/__config`).

use crate::http::{parse_query, percent_decode, Request, Response};
use crate::resp::{Pool, Reply};
use localstack_http::base64;
use localstack_http::date::now_ms;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

const LOG_CAP: usize = 2000;

/// Commands that would change the state of a pooled connection (or stream forever). Upstash does
/// not offer them over REST either (transactions go through `/multi-exec`).
const BLOCKED: &[&str] = &[
    "MULTI",
    "EXEC",
    "DISCARD",
    "WATCH",
    "UNWATCH",
    "SUBSCRIBE",
    "PSUBSCRIBE",
    "SSUBSCRIBE",
    "UNSUBSCRIBE",
    "PUNSUBSCRIBE",
    "SUNSUBSCRIBE",
    "MONITOR",
    "SELECT",
    "QUIT",
    "RESET",
    "HELLO",
    "AUTH",
    "SYNC",
    "PSYNC",
    "CLIENT",
];

pub type Command = Vec<Vec<u8>>;

#[derive(Default)]
struct Stats {
    requests: u64,
    commands: u64,
    unauthorized: u64,
    seq: u64,
    log: VecDeque<Value>,
}

pub struct App {
    token: String,
    pool: Pool,
    delay_ms: AtomicU64,
    stats: Mutex<Stats>,
}

/// What to record once the answer has been written.
pub struct Pending {
    route: &'static str,
    commands: Vec<String>,
    received_ms: u64,
}

impl App {
    pub fn new(token: String, pool: Pool, delay_ms: u64) -> App {
        App {
            token,
            pool,
            delay_ms: AtomicU64::new(delay_ms),
            stats: Mutex::new(Stats::default()),
        }
    }

    fn stats(&self) -> std::sync::MutexGuard<'_, Stats> {
        match self.stats.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Record an Upstash request after its answer was written.
    pub fn record(&self, p: Pending, status: u16) {
        let completed_ms = now_ms();
        let mut st = self.stats();
        st.requests += 1;
        st.commands += p.commands.len() as u64;
        st.seq += 1;
        let entry = json!({
            "seq": st.seq,
            "route": p.route,
            "commands": p.commands,
            "received_ms": p.received_ms,
            "completed_ms": completed_ms,
            "status": status,
        });
        st.log.push_back(entry);
        while st.log.len() > LOG_CAP {
            st.log.pop_front();
        }
    }

    fn authorized(&self, req: &Request) -> bool {
        let header_ok = req
            .header("authorization")
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(|t| ct_eq(t.trim().as_bytes(), self.token.as_bytes()))
            .unwrap_or(false);
        header_ok
            || parse_query(&req.query)
                .iter()
                .any(|(k, v)| k == b"_token" && ct_eq(v, self.token.as_bytes()))
    }

    fn sleep_part(&self, first_half: bool) {
        let d = self.delay_ms.load(Ordering::Relaxed);
        let part = if first_half { d / 2 } else { d - d / 2 };
        if part > 0 {
            std::thread::sleep(Duration::from_millis(part));
        }
    }

    /// Handle one HTTP request. Returns the response and, for Upstash routes that passed auth,
    /// what to log once the response has been written.
    pub fn handle(&self, req: &Request, received_ms: u64) -> (Response, Option<Pending>) {
        let path = req.path.trim_end_matches('/');
        let observability = matches!(path, "/__stats" | "/__stats/reset" | "/__config");
        if !self.authorized(req) {
            if !observability {
                // A distant region is distant for rejected requests too.
                self.sleep_part(true);
                self.sleep_part(false);
            }
            self.stats().unauthorized += 1;
            return (err(401, "Unauthorized"), None);
        }
        if observability {
            return (self.observability(req, path), None);
        }
        if !matches!(req.method.as_str(), "GET" | "POST" | "PUT" | "HEAD") {
            return (err(405, "Method Not Allowed"), None);
        }
        let b64 = req
            .header("upstash-encoding")
            .map(|v| v.trim().eq_ignore_ascii_case("base64"))
            .unwrap_or(false);
        self.sleep_part(true);
        let (route, commands, resp) = match path {
            "/pipeline" => {
                let (names, resp) = self.batch(&req.body, false, b64);
                ("/pipeline", names, resp)
            }
            "/multi-exec" => {
                let (names, resp) = self.batch(&req.body, true, b64);
                ("/multi-exec", names, resp)
            }
            "" => match parse_command_json(&req.body) {
                Ok(cmd) => ("/", vec![name_of(&cmd)], self.single(cmd, b64)),
                Err(e) => ("/", vec![], err(400, &e)),
            },
            _ => {
                let cmd = path_command(path, &req.query, &req.method, &req.body);
                ("path", vec![name_of(&cmd)], self.single(cmd, b64))
            }
        };
        self.sleep_part(false);
        (
            resp,
            Some(Pending {
                route,
                commands,
                received_ms,
            }),
        )
    }

    fn observability(&self, req: &Request, path: &str) -> Response {
        match (req.method.as_str(), path) {
            ("GET", "/__stats") => {
                let st = self.stats();
                let body = json!({
                    "requests": st.requests,
                    "commands": st.commands,
                    "unauthorized": st.unauthorized,
                    "delay_ms": self.delay_ms.load(Ordering::Relaxed),
                    "log": st.log.iter().cloned().collect::<Vec<_>>(),
                });
                ok_json(body)
            }
            ("POST", "/__stats/reset") => {
                *self.stats() = Stats::default();
                ok_json(json!({"result": "OK"}))
            }
            ("POST", "/__config") => {
                let v: Value = match serde_json::from_slice(&req.body) {
                    Ok(v) => v,
                    Err(e) => return err(400, &format!("ERR invalid JSON: {e}")),
                };
                match v.get("delay_ms").and_then(Value::as_u64) {
                    Some(d) => {
                        self.delay_ms.store(d, Ordering::Relaxed);
                        ok_json(json!({"delay_ms": d}))
                    }
                    None => err(400, "ERR expected {\"delay_ms\": <non-negative integer>}"),
                }
            }
            _ => err(405, "Method Not Allowed"),
        }
    }

    fn single(&self, cmd: Command, b64: bool) -> Response {
        if cmd.is_empty() || cmd[0].is_empty() {
            return err(400, "ERR empty command");
        }
        if let Some(e) = blocked(&cmd) {
            return err(400, &e);
        }
        match self.pool.run(&[cmd]) {
            Ok(mut replies) => match replies.pop() {
                Some(Reply::Error(e)) => err(400, &e),
                Some(r) => ok_json(json!({"result": reply_to_json(&r, b64)})),
                None => err(500, "ERR no reply from redis"),
            },
            Err(e) => unavailable(&e),
        }
    }

    /// `/pipeline` (independent commands) and `/multi-exec` (MULTI ... EXEC on one connection).
    fn batch(&self, body: &[u8], atomic: bool, b64: bool) -> (Vec<String>, Response) {
        let cmds = match parse_batch_json(body) {
            Ok(c) => c,
            Err(e) => return (vec![], err(400, &e)),
        };
        let names: Vec<String> = cmds.iter().map(name_of).collect();
        let resp = if atomic {
            self.multi_exec(cmds, b64)
        } else {
            self.pipeline(cmds, b64)
        };
        (names, resp)
    }

    fn pipeline(&self, cmds: Vec<Command>, b64: bool) -> Response {
        let mut out: Vec<Option<Value>> = Vec::with_capacity(cmds.len());
        let mut to_run = Vec::new();
        for c in cmds {
            match blocked(&c) {
                Some(e) => out.push(Some(json!({"error": e}))),
                None => {
                    out.push(None);
                    to_run.push(c);
                }
            }
        }
        let replies = if to_run.is_empty() {
            Vec::new()
        } else {
            match self.pool.run(&to_run) {
                Ok(r) => r,
                Err(e) => return unavailable(&e),
            }
        };
        let mut replies = replies.into_iter();
        let items: Vec<Value> = out
            .into_iter()
            .map(|slot| match slot {
                Some(v) => v,
                None => replies
                    .next()
                    .map(|r| entry(&r, b64))
                    .unwrap_or(json!({"error": "ERR no reply"})),
            })
            .collect();
        ok_json(Value::Array(items))
    }

    fn multi_exec(&self, cmds: Vec<Command>, b64: bool) -> Response {
        if let Some(e) = cmds.iter().find_map(blocked) {
            return err(400, &e);
        }
        let n = cmds.len();
        let mut all = Vec::with_capacity(n + 2);
        all.push(vec![b"MULTI".to_vec()]);
        all.extend(cmds);
        all.push(vec![b"EXEC".to_vec()]);
        let replies = match self.pool.run(&all) {
            Ok(r) => r,
            Err(e) => return unavailable(&e),
        };
        if let Some(Reply::Error(e)) = replies.first() {
            return err(400, e);
        }
        match replies.last() {
            Some(Reply::Array(items)) => {
                ok_json(Value::Array(items.iter().map(|r| entry(r, b64)).collect()))
            }
            Some(Reply::Error(e)) => {
                // Discarded as a whole (EXECABORT): say which queued command was rejected.
                let first = replies[1..replies.len() - 1]
                    .iter()
                    .enumerate()
                    .find_map(|(i, r)| match r {
                        Reply::Error(q) => Some(format!(" (command {}: {})", i + 1, q)),
                        _ => None,
                    });
                err(400, &format!("{}{}", e, first.unwrap_or_default()))
            }
            _ => err(400, "EXECABORT Transaction aborted"),
        }
    }
}

fn entry(r: &Reply, b64: bool) -> Value {
    match r {
        Reply::Error(e) => json!({"error": e}),
        r => json!({"result": reply_to_json(r, b64)}),
    }
}

fn blocked(cmd: &Command) -> Option<String> {
    let name = name_of(cmd);
    if BLOCKED.contains(&name.as_str()) {
        Some(format!(
            "ERR Command is not available over REST: '{}'",
            name.to_lowercase()
        ))
    } else {
        None
    }
}

fn name_of(cmd: &Command) -> String {
    cmd.first()
        .map(|c| String::from_utf8_lossy(c).to_uppercase())
        .unwrap_or_default()
}

fn ok_json(v: Value) -> Response {
    Response {
        status: 200,
        body: v.to_string().into_bytes(),
    }
}

pub fn err(status: u16, msg: &str) -> Response {
    Response {
        status,
        body: json!({"error": msg}).to_string().into_bytes(),
    }
}

fn unavailable(e: &std::io::Error) -> Response {
    err(503, &format!("ERR redis unavailable: {e}"))
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// One JSON argument to its redis bytes: strings as-is, numbers as their decimal text.
fn arg_bytes(v: &Value) -> Result<Vec<u8>, String> {
    match v {
        Value::String(s) => Ok(s.as_bytes().to_vec()),
        Value::Number(n) => Ok(n.to_string().into_bytes()),
        Value::Bool(b) => Ok(b.to_string().into_bytes()),
        _ => Err("ERR command arguments must be strings or numbers".to_string()),
    }
}

fn command_from_value(v: &Value) -> Result<Command, String> {
    let arr = v.as_array().ok_or("ERR command must be a JSON array")?;
    if arr.is_empty() {
        return Err("ERR empty command".to_string());
    }
    arr.iter().map(arg_bytes).collect()
}

pub fn parse_command_json(body: &[u8]) -> Result<Command, String> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| format!("ERR failed to parse command: {e}"))?;
    command_from_value(&v)
}

pub fn parse_batch_json(body: &[u8]) -> Result<Vec<Command>, String> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| format!("ERR failed to parse commands: {e}"))?;
    let arr = v
        .as_array()
        .ok_or("ERR request body must be a JSON array of commands")?;
    if arr.is_empty() {
        return Err("ERR empty command list".to_string());
    }
    arr.iter().map(command_from_value).collect()
}

/// Path style: `/set/foo/bar?EX=100` -> SET foo bar EX 100; a POST/PUT body is appended as the
/// last path argument (before the query arguments), as Upstash documents.
pub fn path_command(path: &str, query: &str, method: &str, body: &[u8]) -> Command {
    let mut cmd: Command = path
        .trim_start_matches('/')
        .split('/')
        .map(|s| percent_decode(s, false))
        .collect();
    if matches!(method, "POST" | "PUT") && !body.is_empty() {
        cmd.push(body.to_vec());
    }
    for (k, v) in parse_query(query) {
        if k == b"_token" {
            continue;
        }
        cmd.push(k);
        if !v.is_empty() {
            cmd.push(v);
        }
    }
    cmd
}

/// RESP reply to the JSON Upstash returns. With `b64`, every string is base64 encoded except
/// the simple-string "OK" (as Upstash documents: "all strings ... except for the OK response").
pub fn reply_to_json(r: &Reply, b64: bool) -> Value {
    match r {
        Reply::Nil => Value::Null,
        Reply::Int(i) => json!(i),
        Reply::Simple(s) if b64 && s != "OK" => Value::String(base64::encode(s.as_bytes())),
        Reply::Simple(s) => Value::String(s.clone()),
        Reply::Bulk(b) if b64 => Value::String(base64::encode(b)),
        Reply::Bulk(b) => Value::String(String::from_utf8_lossy(b).into_owned()),
        // An error nested inside an array (e.g. returned by a Lua script): keep its message.
        Reply::Error(e) if b64 => Value::String(base64::encode(e.as_bytes())),
        Reply::Error(e) => Value::String(e.clone()),
        Reply::Array(items) => Value::Array(items.iter().map(|i| reply_to_json(i, b64)).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_commands() {
        assert_eq!(
            parse_command_json(br#"["SET","k","v","EX",100]"#).unwrap(),
            vec![
                b"SET".to_vec(),
                b"k".to_vec(),
                b"v".to_vec(),
                b"EX".to_vec(),
                b"100".to_vec()
            ]
        );
        assert_eq!(
            parse_command_json(br#"["INCRBYFLOAT","k",1.5]"#).unwrap()[2],
            b"1.5".to_vec()
        );
        assert_eq!(
            parse_command_json(br#"["x",-7]"#).unwrap()[1],
            b"-7".to_vec()
        );
        assert!(parse_command_json(b"{").is_err());
        assert!(parse_command_json(br#"{"a":1}"#).is_err());
        assert!(parse_command_json(b"[]").is_err());
        assert!(parse_command_json(br#"["SET",null]"#).is_err());
        assert!(parse_command_json(br#"["SET",["x"]]"#).is_err());
        assert_eq!(
            parse_batch_json(br#"[["PING"],["GET","a"]]"#)
                .unwrap()
                .len(),
            2
        );
        assert!(parse_batch_json(br#"[]"#).is_err());
        assert!(parse_batch_json(br#"["PING"]"#).is_err());
        assert!(parse_batch_json(br#"[["PING"],[]]"#).is_err());
    }

    #[test]
    fn path_commands() {
        assert_eq!(
            path_command("/set/foo/bar", "", "GET", b""),
            vec![b"set".to_vec(), b"foo".to_vec(), b"bar".to_vec()]
        );
        assert_eq!(
            path_command("/set/a%2Fb", "EX=100&_token=secret", "POST", b"{\"x\":1}"),
            vec![
                b"set".to_vec(),
                b"a/b".to_vec(),
                b"{\"x\":1}".to_vec(),
                b"EX".to_vec(),
                b"100".to_vec()
            ]
        );
        assert_eq!(path_command("/get/k", "", "GET", b"ignored").len(), 2);
    }

    #[test]
    fn reply_mapping_plain() {
        assert_eq!(
            reply_to_json(&Reply::Simple("OK".into()), false),
            json!("OK")
        );
        assert_eq!(
            reply_to_json(&Reply::Bulk(b"v".to_vec()), false),
            json!("v")
        );
        assert_eq!(reply_to_json(&Reply::Nil, false), Value::Null);
        assert_eq!(reply_to_json(&Reply::Int(-3), false), json!(-3));
        let arr = Reply::Array(vec![
            Reply::Bulk(b"a".to_vec()),
            Reply::Nil,
            Reply::Array(vec![Reply::Int(1), Reply::Bulk("é".as_bytes().to_vec())]),
        ]);
        assert_eq!(reply_to_json(&arr, false), json!(["a", null, [1, "é"]]));
        assert_eq!(
            reply_to_json(&Reply::Bulk(vec![0xff]), false),
            json!("\u{fffd}")
        );
    }

    #[test]
    fn reply_mapping_base64() {
        assert_eq!(
            reply_to_json(&Reply::Simple("OK".into()), true),
            json!("OK")
        );
        assert_eq!(
            reply_to_json(&Reply::Simple("PONG".into()), true),
            json!("UE9ORw==")
        );
        assert_eq!(
            reply_to_json(&Reply::Bulk(b"bar".to_vec()), true),
            json!("YmFy")
        );
        assert_eq!(
            reply_to_json(&Reply::Bulk(b"OK".to_vec()), true),
            json!("T0s=")
        );
        assert_eq!(reply_to_json(&Reply::Int(7), true), json!(7));
        assert_eq!(reply_to_json(&Reply::Nil, true), Value::Null);
        let arr = Reply::Array(vec![
            Reply::Bulk(b"foo".to_vec()),
            Reply::Nil,
            Reply::Array(vec![Reply::Bulk(b"f".to_vec())]),
        ]);
        assert_eq!(reply_to_json(&arr, true), json!(["Zm9v", null, ["Zg=="]]));
    }

    #[test]
    fn entries_and_errors() {
        assert_eq!(
            entry(&Reply::Error("ERR x".into()), true),
            json!({"error": "ERR x"})
        );
        assert_eq!(entry(&Reply::Int(1), true), json!({"result": 1}));
        let r = err(401, "Unauthorized");
        assert_eq!(r.status, 401);
        assert_eq!(r.body, br#"{"error":"Unauthorized"}"#.to_vec());
        assert!(blocked(&vec![b"multi".to_vec()]).is_some());
        assert!(blocked(&vec![b"GET".to_vec(), b"k".to_vec()]).is_none());
        assert!(ct_eq(b"abc", b"abc") && !ct_eq(b"abc", b"abd") && !ct_eq(b"ab", b"abc"));
    }
}
