//! Webhook deliveries: the mock posts the events it makes (Stripe's, PayPal's) to the URL a test
//! names, as the real services do, and reports the answer. Plain HTTP/1.1 to a local address
//! (`http://host:port/path`), one connection per delivery; the answer's body is read whole
//! (`content-length`, chunked, or to the close).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use serde_json::{json, Value};

/// A delivery's outcome as the test sees it.
pub fn report(event: &Value, sent: Option<Result<(u16, String), String>>) -> Value {
    match sent {
        None => json!({ "event": event, "delivered": false }),
        Some(Ok((status, body))) => {
            let parsed: Value = serde_json::from_str(&body).unwrap_or(Value::String(body));
            json!({ "event": event, "delivered": true, "status": status, "body": parsed })
        }
        Some(Err(e)) => json!({ "event": event, "delivered": false, "error": e }),
    }
}

/// POSTs `body` with `headers` to `url`; blocking (called from a control route, off the async
/// workers' hot path: the receiver calls back into this mock while it answers).
pub fn post(url: &str, headers: &[(String, String)], body: &[u8]) -> Result<(u16, String), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("`{url}`: only http:// URLs"))?;
    let (host, path) = rest
        .split_once('/')
        .map(|(h, p)| (h, format!("/{p}")))
        .unwrap_or((rest, "/".into()));
    let run = || -> Result<(u16, String), String> {
        let mut s = TcpStream::connect(host).map_err(|e| format!("connect {host}: {e}"))?;
        s.set_read_timeout(Some(Duration::from_secs(30)))
            .map_err(|e| e.to_string())?;
        let mut head = format!(
            "POST {path} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\ncontent-length: {}\r\n",
            body.len()
        );
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        s.write_all(head.as_bytes())
            .and_then(|_| s.write_all(body))
            .map_err(|e| format!("send: {e}"))?;
        // Read until the answer is whole: servers may keep the connection open after it.
        let mut raw = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        while !complete(&raw) {
            match s.read(&mut buf).map_err(|e| format!("read: {e}"))? {
                0 => break,
                n => raw.extend_from_slice(&buf[..n]),
            }
        }
        parse_response(&raw)
    };
    // The receiver may call this mock back (PayPal's verification) before it answers: let the
    // runtime move other work off this thread while it blocks.
    match tokio::runtime::Handle::try_current() {
        Ok(_) => tokio::task::block_in_place(run),
        Err(_) => run(),
    }
}

/// Whether `raw` holds a whole response (by `content-length`, or the last chunk).
fn complete(raw: &[u8]) -> bool {
    let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") else { return false };
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let body = &raw[split + 4..];
    if let Some(len) = head.lines().find_map(|l| l.strip_prefix("content-length:")).and_then(|v| v.trim().parse::<usize>().ok()) {
        return body.len() >= len;
    }
    head.contains("transfer-encoding: chunked") && body.ends_with(b"0\r\n\r\n")
}

fn parse_response(raw: &[u8]) -> Result<(u16, String), String> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no response head")?;
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or("no status")?;
    let mut body = raw[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(
            String::from_utf8_lossy(&b[..eol])
                .split(';')
                .next()
                .unwrap_or("0")
                .trim(),
            16,
        )
        .unwrap_or(0);
        if size == 0 || b.len() < eol + 2 + size {
            break;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + size]);
        b = &b[(eol + 4 + size).min(b.len())..];
    }
    out
}

/// Every event made, by id, so that a test can have it delivered again (as the services retry).
pub fn remember(id: &str, event: &Value) {
    let mut m = sent().lock().unwrap_or_else(|e| e.into_inner());
    if m.len() > 10_000 {
        m.clear();
    }
    m.insert(id.to_string(), event.clone());
}

pub fn recall(id: &str) -> Option<Value> {
    sent()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(id)
        .cloned()
}

fn sent() -> &'static Mutex<HashMap<String, Value>> {
    static SENT: OnceLock<Mutex<HashMap<String, Value>>> = OnceLock::new();
    SENT.get_or_init(Default::default)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_parse_plain_and_chunked() {
        assert_eq!(
            parse_response(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}").unwrap(),
            (200, "{}".into())
        );
        let chunked = b"HTTP/1.1 429 Too Many Requests\r\ntransfer-encoding: chunked\r\n\r\n3\r\n{\"a\r\n4\r\n\":1}\r\n0\r\n\r\n";
        assert_eq!(parse_response(chunked).unwrap(), (429, "{\"a\":1}".into()));
        assert!(complete(chunked) && complete(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"));
        assert!(!complete(b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\n{}"));
    }
}
