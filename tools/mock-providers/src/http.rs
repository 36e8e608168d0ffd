//! Minimal HTTP/1.1 server pieces on a plain `std::net::TcpStream`: request parsing
//! (Content-Length or chunked bodies, `Expect: 100-continue`), keep-alive, and response writing with
//! the scripted timing knobs (delay before the head, delay between stream chunks, abrupt cut).
//!
//! Nothing here panics on bad input: a malformed request gets a plain 400 and the connection closes.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::thread;
use std::time::Duration;

const MAX_HEAD: usize = 64 * 1024;
const MAX_BODY: usize = 32 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// Path without the query string, percent-decoding NOT applied (routes are ASCII).
    pub path: String,
    /// Raw query string without the leading `?` ("" when absent).
    pub query: String,
    /// Lower-cased header names, in arrival order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// First value of a query parameter, percent-decoded.
    pub fn query_param(&self, key: &str) -> Option<String> {
        self.query.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (url_decode(k) == key).then(|| url_decode(v))
        })
    }

    pub fn body_str(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// `application/x-www-form-urlencoded` / query decoding (`+` = space, `%XX`).
pub fn url_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                match u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16)
                {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub enum Body {
    Full(Vec<u8>),
    /// Sent with `Transfer-Encoding: chunked`, one HTTP chunk per element (one SSE event each).
    Chunks(Vec<Vec<u8>>),
}

pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Body,
    /// Sleep before the response head is written.
    pub delay_ms: u64,
    /// Sleep between two chunks of a `Body::Chunks`.
    pub chunk_delay_ms: u64,
    /// Chunks: write this many chunks then drop the connection (no terminating chunk).
    /// Full bodies: write the head and the first half of the body, then drop.
    pub cut_after_chunks: Option<u64>,
}

impl Response {
    pub fn new(status: u16, content_type: &str, body: Vec<u8>) -> Response {
        Response {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            body: Body::Full(body),
            delay_ms: 0,
            chunk_delay_ms: 0,
            cut_after_chunks: None,
        }
    }

    pub fn json_bytes(status: u16, body: Vec<u8>) -> Response {
        Response::new(status, "application/json", body)
    }

    pub fn json<T: serde::Serialize>(status: u16, value: &T) -> Response {
        Response::json_bytes(status, serde_json::to_vec(value).unwrap_or_default())
    }

    pub fn stream(status: u16, content_type: &str, chunks: Vec<Vec<u8>>) -> Response {
        let mut r = Response::new(status, content_type, Vec::new());
        r.body = Body::Chunks(chunks);
        r
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Response {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    pub fn add_header(&mut self, name: &str, value: impl Into<String>) {
        self.headers.push((name.to_string(), value.into()));
    }
}

pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Payload Too Large",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        529 => "Site Overloaded",
        _ => "Unknown",
    }
}

pub enum ReadOutcome {
    Request(Request),
    /// Clean EOF / idle timeout before a new request started.
    Closed,
    /// Garbage: answer 400 and close.
    Bad(String),
}

/// Read one request from the connection.
pub fn read_request(reader: &mut BufReader<TcpStream>, writer: &mut TcpStream) -> ReadOutcome {
    let mut head_len = 0usize;
    let mut line = String::new();
    // Request line (skip stray empty lines between keep-alive requests).
    let request_line = loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) => return ReadOutcome::Closed,
            Ok(n) => {
                head_len += n;
                if head_len > MAX_HEAD {
                    return ReadOutcome::Bad("request head too large".into());
                }
                let t = line.trim_end_matches(['\r', '\n']);
                if !t.is_empty() {
                    break t.to_string();
                }
            }
            Err(_) => return ReadOutcome::Closed,
        }
    };
    let mut parts = request_line.split_whitespace();
    let (method, target) = match (parts.next(), parts.next(), parts.next()) {
        (Some(m), Some(t), Some(v)) if v.starts_with("HTTP/1.") => (m.to_string(), t.to_string()),
        _ => return ReadOutcome::Bad("malformed request line".into()),
    };
    let mut headers = Vec::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) => return ReadOutcome::Bad("connection closed inside the request head".into()),
            Ok(n) => {
                head_len += n;
                if head_len > MAX_HEAD {
                    return ReadOutcome::Bad("request head too large".into());
                }
            }
            Err(_) => return ReadOutcome::Bad("read error inside the request head".into()),
        }
        let t = line.trim_end_matches(['\r', '\n']);
        if t.is_empty() {
            break;
        }
        match t.split_once(':') {
            Some((k, v)) => headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string())),
            None => return ReadOutcome::Bad("malformed header line".into()),
        }
    }
    // Absolute-form targets ("http://host/path") are accepted too.
    let target = match target.find("://") {
        Some(i) => match target[i + 3..].find('/') {
            Some(j) => target[i + 3 + j..].to_string(),
            None => "/".to_string(),
        },
        None => target,
    };
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (target.clone(), String::new()),
    };
    let mut req = Request {
        method,
        path,
        query,
        headers,
        body: Vec::new(),
    };

    if req
        .header("expect")
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
    {
        let _ = writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
    }
    let chunked = req
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    if chunked {
        match read_chunked(reader) {
            Ok(b) => req.body = b,
            Err(e) => return ReadOutcome::Bad(format!("bad chunked body: {e}")),
        }
    } else if let Some(cl) = req.header("content-length") {
        let n: usize = match cl.trim().parse() {
            Ok(n) if n <= MAX_BODY => n,
            _ => return ReadOutcome::Bad("bad content-length".into()),
        };
        let mut body = vec![0u8; n];
        if reader.read_exact(&mut body).is_err() {
            return ReadOutcome::Bad("body shorter than content-length".into());
        }
        req.body = body;
    }
    ReadOutcome::Request(req)
}

fn read_chunked(reader: &mut BufReader<TcpStream>) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        let size_str = line
            .trim()
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_string();
        let size = usize::from_str_radix(&size_str, 16)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "chunk size"))?;
        if size == 0 {
            // Trailers until the empty line.
            loop {
                line.clear();
                if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
                    return Ok(body);
                }
            }
        }
        if body.len() + size > MAX_BODY {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "body too large"));
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        let mut crlf = [0u8; 2];
        reader.read_exact(&mut crlf)?;
    }
}

fn sleep_ms(ms: u64) {
    if ms > 0 {
        thread::sleep(Duration::from_millis(ms));
    }
}

/// Write a response. Returns `Ok(false)` when the connection must be closed afterwards
/// (cut responses), `Ok(true)` when it may be reused.
pub fn write_response(stream: &mut TcpStream, resp: Response, head_only: bool) -> io::Result<bool> {
    sleep_ms(resp.delay_ms);
    let mut head = format!("HTTP/1.1 {} {}\r\n", resp.status, reason(resp.status));
    let has = |n: &str| resp.headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(n));
    if !has("date") {
        head.push_str(&format!(
            "date: {}\r\n",
            crate::common::http_date(crate::common::now_secs())
        ));
    }
    for (k, v) in &resp.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    match resp.body {
        Body::Full(body) => {
            head.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
            stream.write_all(head.as_bytes())?;
            if head_only {
                return Ok(true);
            }
            if resp.cut_after_chunks.is_some() {
                stream.write_all(&body[..body.len() / 2])?;
                stream.flush()?;
                let _ = stream.shutdown(Shutdown::Both);
                return Ok(false);
            }
            stream.write_all(&body)?;
            stream.flush()?;
            Ok(true)
        }
        Body::Chunks(chunks) => {
            head.push_str("transfer-encoding: chunked\r\n\r\n");
            stream.write_all(head.as_bytes())?;
            stream.flush()?;
            if head_only {
                return Ok(true);
            }
            for (i, chunk) in chunks.iter().enumerate() {
                if resp.cut_after_chunks.is_some_and(|n| i as u64 >= n) {
                    let _ = stream.shutdown(Shutdown::Both);
                    return Ok(false);
                }
                if i > 0 {
                    sleep_ms(resp.chunk_delay_ms);
                }
                if chunk.is_empty() {
                    continue;
                }
                let mut out = format!("{:x}\r\n", chunk.len()).into_bytes();
                out.extend_from_slice(chunk);
                out.extend_from_slice(b"\r\n");
                stream.write_all(&out)?;
                stream.flush()?;
            }
            if resp.cut_after_chunks.is_some() {
                // Asked to cut after >= all chunks: everything was sent, but still no terminator.
                let _ = stream.shutdown(Shutdown::Both);
                return Ok(false);
            }
            stream.write_all(b"0\r\n\r\n")?;
            stream.flush()?;
            Ok(true)
        }
    }
}

/// Plain-text 400 for requests that could not be parsed at all.
pub fn write_bad_request(stream: &mut TcpStream, msg: &str) {
    let body = format!("bad request: {msg}\n");
    let head = format!(
        "HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body.as_bytes());
    let _ = stream.flush();
}
