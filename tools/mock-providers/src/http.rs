//! The mock's HTTP/1.1 request parser on a plain `std::net::TcpStream` (Content-Length or chunked
//! bodies, `Expect: 100-continue`, keep-alive) and its query decoding. The request type, response
//! writing (delays, chunked streams, abrupt cuts) and base64 come from `localstack_http`.
//!
//! Nothing here panics on bad input: a malformed request gets a plain 400 and the connection closes.
//!
//! Why this parser and [`url_decode`] are not in `localstack_http`: they are more lenient than
//! upstash-front's in details that are still observable (any whitespace in the request
//! line, absolute-form targets, no CRLF check after a chunk, `100 Continue` before the
//! Content-Length check, `%+a` decoding to a byte, 32 MiB body cap, its own 400 texts), so one
//! shared parser would change what one of the two tools answers.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;

use localstack_http::{response_head, CONTINUE};
pub use localstack_http::{write_response, Request, Response};

const MAX_HEAD: usize = 64 * 1024;
const MAX_BODY: usize = 32 * 1024 * 1024;

/// The mock's query lookup (kept out of `localstack_http` with [`url_decode`]).
pub trait QueryParam {
    /// First value of a query parameter, percent-decoded.
    fn query_param(&self, key: &str) -> Option<String>;
}

impl QueryParam for Request {
    fn query_param(&self, key: &str) -> Option<String> {
        self.query.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (url_decode(k) == key).then(|| url_decode(v))
        })
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
    let mut req = Request::from_head(method, &target, headers);
    // Kept open unless the client says `connection: close` (the exact token), HTTP/1.0 included.
    req.keep_alive = !req
        .header("connection")
        .is_some_and(|v| v.eq_ignore_ascii_case("close"));

    if req.expects_continue() {
        let _ = writer.write_all(CONTINUE);
    }
    if req.is_chunked() {
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

/// Plain-text 400 for requests that could not be parsed at all.
pub fn write_bad_request(stream: &mut TcpStream, msg: &str) {
    let body = format!("bad request: {msg}\n");
    let len = body.len().to_string();
    let mut head = response_head(
        400,
        [
            ("content-type", "text/plain; charset=utf-8"),
            ("content-length", len.as_str()),
            ("connection", "close"),
        ],
    );
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body.as_bytes());
    let _ = stream.flush();
}
