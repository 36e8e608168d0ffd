//! The Upstash REST protocol: routing, auth, JSON <-> RESP mapping, base64 response encoding.
//! Our observability routes and test knobs (`/__stats`, `/__config`) live in [`crate::observe`].

use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use redis::{ServerError, Value as Reply};
use serde_json::{json, Value};

use crate::http::{err, ok_json, parse_query, percent_decode_bytes, Request, Response};
use crate::observe::{Finished, Injected, Observe};
use crate::redis_link::{Command, RedisLink};

/// Commands that would change the state of the shared connection (or stream forever). Upstash
/// does not offer them over REST either (transactions go through `/multi-exec`).
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

pub struct App {
    token: String,
    redis: RedisLink,
    pub observe: Observe,
}

/// How a request is answered.
pub enum Outcome {
    Answer(Response),
    /// Close the connection without an answer (an injected `"drop"` failure).
    Drop,
}

/// The commands one Upstash request carries.
enum Work {
    Single(Command),
    Pipeline(Vec<Command>),
    MultiExec(Vec<Command>),
}

impl Work {
    fn names(&self) -> Vec<String> {
        match self {
            Work::Single(c) => vec![name_of(c)],
            Work::Pipeline(cs) | Work::MultiExec(cs) => cs.iter().map(name_of).collect(),
        }
    }
}

impl App {
    pub fn new(token: String, redis: RedisLink, delay_ms: u64) -> App {
        App {
            token,
            redis,
            observe: Observe::new(delay_ms),
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

    async fn sleep_part(&self, first_half: bool) {
        let d = self.observe.delay_ms();
        let part = if first_half { d / 2 } else { d - d / 2 };
        if part > 0 {
            tokio::time::sleep(Duration::from_millis(part)).await;
        }
    }

    /// Handle one HTTP request; Upstash routes that passed auth are logged.
    pub async fn handle(&self, req: &Request, received_ms: u64) -> Outcome {
        let path = req.path.trim_end_matches('/');
        let observability = matches!(path, "/__stats" | "/__stats/reset" | "/__config");
        if !self.authorized(req) {
            if !observability {
                // A distant region is distant for rejected requests too.
                self.sleep_part(true).await;
                self.sleep_part(false).await;
            }
            self.observe.count_unauthorized();
            return Outcome::Answer(err(401, "Unauthorized"));
        }
        if observability {
            return Outcome::Answer(self.observe.handle(req, path));
        }
        if !matches!(req.method.as_str(), "GET" | "POST" | "PUT" | "HEAD") {
            return Outcome::Answer(err(405, "Method Not Allowed"));
        }
        let b64 = req
            .header("upstash-encoding")
            .map(|v| v.trim().eq_ignore_ascii_case("base64"))
            .unwrap_or(false);
        self.sleep_part(true).await;
        let (route, work) = parse_work(path, req);
        let commands = work.as_ref().map(Work::names).unwrap_or_default();
        let (outcome, injected) = match work {
            Err(e) => (Outcome::Answer(err(400, &e)), false),
            Ok(work) => match self.observe.take_injected(&commands) {
                Some(Injected::Status(s)) => (Outcome::Answer(err(s, "injected failure")), true),
                Some(Injected::Drop) => (Outcome::Drop, true),
                None => (Outcome::Answer(self.execute(work, b64).await), false),
            },
        };
        self.sleep_part(false).await;
        let status = match &outcome {
            Outcome::Answer(r) => r.status,
            Outcome::Drop => 0,
        };
        self.observe.record(Finished {
            route,
            commands,
            received_ms,
            status,
            injected,
        });
        outcome
    }

    async fn execute(&self, work: Work, b64: bool) -> Response {
        match work {
            Work::Single(cmd) => self.single(cmd, b64).await,
            Work::Pipeline(cmds) => self.pipeline(cmds, b64).await,
            Work::MultiExec(cmds) => self.multi_exec(cmds, b64).await,
        }
    }

    async fn single(&self, cmd: Command, b64: bool) -> Response {
        if cmd.is_empty() || cmd[0].is_empty() {
            return err(400, "ERR empty command");
        }
        if let Some(e) = blocked(&cmd) {
            return err(400, &e);
        }
        match self.redis.run(&[cmd]).await {
            Ok(mut replies) => match replies.pop() {
                Some(Reply::ServerError(e)) => err(400, &error_text(&e)),
                Some(r) => ok_json(json!({"result": reply_to_json(&r, b64)})),
                None => err(500, "ERR no reply from redis"),
            },
            Err(e) => unavailable(&e),
        }
    }

    /// `/pipeline`: independent commands, one result or error each, in order.
    async fn pipeline(&self, cmds: Vec<Command>, b64: bool) -> Response {
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
            match self.redis.run(&to_run).await {
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

    /// `/multi-exec`: `MULTI … EXEC` written as one pipeline on the shared connection.
    async fn multi_exec(&self, cmds: Vec<Command>, b64: bool) -> Response {
        if let Some(e) = cmds.iter().find_map(blocked) {
            return err(400, &e);
        }
        let n = cmds.len();
        let mut all = Vec::with_capacity(n + 2);
        all.push(vec![b"MULTI".to_vec()]);
        all.extend(cmds);
        all.push(vec![b"EXEC".to_vec()]);
        let replies = match self.redis.run(&all).await {
            Ok(r) => r,
            Err(e) => return unavailable(&e),
        };
        if let Some(Reply::ServerError(e)) = replies.first() {
            return err(400, &error_text(e));
        }
        match replies.last() {
            Some(Reply::Array(items)) => {
                ok_json(Value::Array(items.iter().map(|r| entry(r, b64)).collect()))
            }
            Some(Reply::ServerError(e)) => {
                // Discarded as a whole (EXECABORT): say which queued command was rejected.
                let queued = replies.get(1..replies.len() - 1).unwrap_or_default();
                let first = queued.iter().enumerate().find_map(|(i, r)| match r {
                    Reply::ServerError(q) => {
                        Some(format!(" (command {}: {})", i + 1, error_text(q)))
                    }
                    _ => None,
                });
                err(
                    400,
                    &format!("{}{}", error_text(e), first.unwrap_or_default()),
                )
            }
            _ => err(400, "EXECABORT Transaction aborted"),
        }
    }
}

/// Route a request to its commands; the route name is what `/__stats` logs.
fn parse_work(path: &str, req: &Request) -> (&'static str, Result<Work, String>) {
    match path {
        "/pipeline" => ("/pipeline", parse_batch_json(&req.body).map(Work::Pipeline)),
        "/multi-exec" => (
            "/multi-exec",
            parse_batch_json(&req.body).map(Work::MultiExec),
        ),
        "" => ("/", parse_command_json(&req.body).map(Work::Single)),
        _ => {
            let cmd = path_command(path, &req.query, req.method.as_str(), &req.body);
            ("path", Ok(Work::Single(cmd)))
        }
    }
}

/// The text redis sent: `CODE detail`.
fn error_text(e: &ServerError) -> String {
    match e.details() {
        Some(d) => format!("{} {}", e.code(), d),
        None => e.code().to_string(),
    }
}

fn entry(r: &Reply, b64: bool) -> Value {
    match r {
        Reply::ServerError(e) => json!({"error": error_text(e)}),
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

fn unavailable(e: &redis::RedisError) -> Response {
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
        .map(|s| percent_decode_bytes(s, false))
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

fn text(bytes: &[u8], b64: bool) -> Value {
    if b64 {
        Value::String(BASE64.encode(bytes))
    } else {
        Value::String(String::from_utf8_lossy(bytes).into_owned())
    }
}

/// A redis reply to the JSON Upstash returns. With `b64`, every string is base64 encoded except
/// the simple-string "OK" (as Upstash documents: "all strings ... except for the OK response").
///
/// RESP3-only types (the link speaks RESP2, so they only appear if that changes) are mapped to
/// their RESP2 shapes: maps to flat `[k, v, …]` arrays, sets and pushes to arrays, booleans to
/// 1/0, doubles to numbers, big numbers and verbatim strings to strings.
pub fn reply_to_json(r: &Reply, b64: bool) -> Value {
    let list =
        |items: &[Reply]| Value::Array(items.iter().map(|i| reply_to_json(i, b64)).collect());
    match r {
        Reply::Nil => Value::Null,
        Reply::Int(i) => json!(i),
        Reply::Okay => Value::String("OK".into()),
        Reply::SimpleString(s) if s == "OK" => Value::String("OK".into()),
        Reply::SimpleString(s) => text(s.as_bytes(), b64),
        Reply::BulkString(b) => text(b, b64),
        // An error nested inside an array (e.g. returned by a Lua script): keep its message.
        Reply::ServerError(e) => text(error_text(e).as_bytes(), b64),
        Reply::Array(items) | Reply::Set(items) => list(items),
        Reply::Push { data, .. } => list(data),
        Reply::Map(pairs) => Value::Array(
            pairs
                .iter()
                .flat_map(|(k, v)| [reply_to_json(k, b64), reply_to_json(v, b64)])
                .collect(),
        ),
        Reply::Attribute { data, .. } => reply_to_json(data, b64),
        Reply::Double(f) => serde_json::Number::from_f64(*f)
            .map(Value::Number)
            .unwrap_or_else(|| text(f.to_string().as_bytes(), b64)),
        Reply::Boolean(b) => json!(i64::from(*b)),
        Reply::VerbatimString { text: t, .. } => text(t.as_bytes(), b64),
        Reply::BigNumber(n) => text(n, b64),
        // `redis::Value` is non-exhaustive: anything newer becomes its debug text.
        #[allow(unreachable_patterns)]
        other => text(format!("{other:?}").as_bytes(), b64),
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    /// A reply as redis sends it on the wire.
    fn resp(wire: &[u8]) -> Reply {
        redis::parse_redis_value(wire).unwrap()
    }

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
        assert_eq!(reply_to_json(&resp(b"+OK\r\n"), false), json!("OK"));
        assert_eq!(reply_to_json(&resp(b"$1\r\nv\r\n"), false), json!("v"));
        assert_eq!(reply_to_json(&resp(b"$-1\r\n"), false), Value::Null);
        assert_eq!(reply_to_json(&resp(b"*-1\r\n"), false), Value::Null);
        assert_eq!(reply_to_json(&resp(b":-3\r\n"), false), json!(-3));
        let arr = resp(b"*3\r\n$1\r\na\r\n$-1\r\n*2\r\n:1\r\n$2\r\n\xc3\xa9\r\n");
        assert_eq!(reply_to_json(&arr, false), json!(["a", null, [1, "é"]]));
        assert_eq!(
            reply_to_json(&resp(b"$1\r\n\xff\r\n"), false),
            json!("\u{fffd}")
        );
        let nested_error = resp(b"*2\r\n:1\r\n-ERR x y\r\n");
        assert_eq!(reply_to_json(&nested_error, false), json!([1, "ERR x y"]));
    }

    #[test]
    fn reply_mapping_resp3_types() {
        assert_eq!(reply_to_json(&resp(b",1.5\r\n"), false), json!(1.5));
        assert_eq!(reply_to_json(&resp(b",inf\r\n"), false), json!("inf"));
        assert_eq!(reply_to_json(&resp(b"#t\r\n"), false), json!(1));
        assert_eq!(
            reply_to_json(&resp(b"%1\r\n+k\r\n:2\r\n"), false),
            json!(["k", 2])
        );
        assert_eq!(
            reply_to_json(&resp(b"~1\r\n$1\r\na\r\n"), true),
            json!(["YQ=="])
        );
        assert_eq!(
            reply_to_json(&resp(b"=7\r\ntxt:abc\r\n"), false),
            json!("abc")
        );
    }

    #[test]
    fn reply_mapping_base64() {
        assert_eq!(reply_to_json(&resp(b"+OK\r\n"), true), json!("OK"));
        assert_eq!(reply_to_json(&resp(b"+PONG\r\n"), true), json!("UE9ORw=="));
        assert_eq!(reply_to_json(&resp(b"$3\r\nbar\r\n"), true), json!("YmFy"));
        assert_eq!(reply_to_json(&resp(b"$2\r\nOK\r\n"), true), json!("T0s="));
        assert_eq!(reply_to_json(&resp(b":7\r\n"), true), json!(7));
        assert_eq!(reply_to_json(&resp(b"$-1\r\n"), true), Value::Null);
        let arr = resp(b"*3\r\n$3\r\nfoo\r\n$-1\r\n*1\r\n$1\r\nf\r\n");
        assert_eq!(reply_to_json(&arr, true), json!(["Zm9v", null, ["Zg=="]]));
    }

    #[test]
    fn entries_and_errors() {
        assert_eq!(entry(&resp(b"-ERR x\r\n"), true), json!({"error": "ERR x"}));
        assert_eq!(
            entry(&resp(b"-WRONGTYPE Operation against a key\r\n"), false),
            json!({"error": "WRONGTYPE Operation against a key"})
        );
        assert_eq!(
            entry(&resp(b"-NOSCRIPT\r\n"), false),
            json!({"error": "NOSCRIPT"})
        );
        assert_eq!(entry(&resp(b":1\r\n"), true), json!({"result": 1}));
        let r = err(401, "Unauthorized");
        assert_eq!(r.status, 401);
        assert_eq!(r.body, br#"{"error":"Unauthorized"}"#.to_vec());
        assert!(blocked(&vec![b"multi".to_vec()]).is_some());
        assert!(blocked(&vec![b"GET".to_vec(), b"k".to_vec()]).is_none());
        assert!(ct_eq(b"abc", b"abc") && !ct_eq(b"abc", b"abd") && !ct_eq(b"ab", b"abc"));
    }
}
