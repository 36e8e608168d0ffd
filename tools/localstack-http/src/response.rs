//! Response heads, and the streaming writer with the scripted timing knobs (delay before the
//! head, delay between stream chunks, abrupt cut).

use std::io::{self, Write};
use std::net::{Shutdown, TcpStream};
use std::thread;
use std::time::Duration;

use crate::date::{http_date, now_secs};

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

/// `HTTP/1.1 <status> <reason>` and one `name: value` line per header, each ending in CRLF,
/// written as given (no header added). The empty line that ends the head is NOT included.
pub fn response_head<'a>(
    status: u16,
    headers: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> String {
    let mut head = format!("HTTP/1.1 {} {}\r\n", status, reason(status));
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head
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

fn sleep_ms(ms: u64) {
    if ms > 0 {
        thread::sleep(Duration::from_millis(ms));
    }
}

/// Write a response: `date` (unless the response sets one), its headers, then `content-length`
/// or `transfer-encoding: chunked`. Returns `Ok(false)` when the connection must be closed
/// afterwards (cut responses), `Ok(true)` when it may be reused.
pub fn write_response(stream: &mut TcpStream, resp: Response, head_only: bool) -> io::Result<bool> {
    sleep_ms(resp.delay_ms);
    let has = |n: &str| resp.headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(n));
    let date = (!has("date")).then(|| http_date(now_secs()));
    let mut head = response_head(
        resp.status,
        date.as_deref()
            .map(|d| ("date", d))
            .into_iter()
            .chain(resp.headers.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
    );
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::TcpListener;

    /// Write `resp` on one end of a loopback connection; returns the result and what the peer read.
    fn capture(resp: Response, head_only: bool) -> (bool, String) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        let reusable = write_response(&mut server, resp, head_only).unwrap();
        drop(server);
        let mut out = Vec::new();
        client.read_to_end(&mut out).unwrap();
        (reusable, String::from_utf8(out).unwrap())
    }

    #[test]
    fn head_lines() {
        assert_eq!(
            response_head(404, [("a", "1"), ("B", "two")]),
            "HTTP/1.1 404 Not Found\r\na: 1\r\nB: two\r\n"
        );
        assert_eq!(response_head(599, []), "HTTP/1.1 599 Unknown\r\n");
        assert_eq!(reason(529), "Site Overloaded");
    }

    #[test]
    fn full_body() {
        let (reusable, out) = capture(Response::json_bytes(200, b"{}".to_vec()), false);
        assert!(reusable);
        assert!(out.starts_with("HTTP/1.1 200 OK\r\ndate: "), "{out}");
        assert!(
            out.ends_with(" GMT\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}")
        );
        let (_, head) = capture(Response::json_bytes(200, b"{}".to_vec()), true);
        assert!(head.ends_with("content-length: 2\r\n\r\n"));
        let dated = Response::new(201, "text/plain", b"x".to_vec()).header("Date", "then");
        assert_eq!(
            capture(dated, false).1,
            "HTTP/1.1 201 Created\r\ncontent-type: text/plain\r\nDate: then\r\ncontent-length: 1\r\n\r\nx"
        );
    }

    #[test]
    fn chunked_stream_and_cuts() {
        let chunks = || vec![b"ab".to_vec(), Vec::new(), b"c".to_vec()];
        let (reusable, out) = capture(
            Response::stream(200, "text/event-stream", chunks()).header("date", "d"),
            false,
        );
        assert!(reusable);
        assert_eq!(
            out,
            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ndate: d\r\ntransfer-encoding: chunked\r\n\r\n2\r\nab\r\n1\r\nc\r\n0\r\n\r\n"
        );
        let mut cut = Response::stream(200, "text/event-stream", chunks()).header("date", "d");
        cut.cut_after_chunks = Some(1);
        let (reusable, out) = capture(cut, false);
        assert!(!reusable);
        assert!(out.ends_with("chunked\r\n\r\n2\r\nab\r\n"), "{out}");
        let mut all = Response::stream(200, "text/event-stream", chunks()).header("date", "d");
        all.cut_after_chunks = Some(9);
        let (reusable, out) = capture(all, false);
        assert!(!reusable);
        assert!(out.ends_with("1\r\nc\r\n"), "{out}");
        let mut half = Response::json_bytes(200, b"abcdef".to_vec());
        half.cut_after_chunks = Some(0);
        let (reusable, out) = capture(half, false);
        assert!(!reusable);
        assert!(out.ends_with("content-length: 6\r\n\r\nabc"), "{out}");
    }
}
