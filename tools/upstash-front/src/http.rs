//! Tiny HTTP/1.1 server side: request parsing (Content-Length and chunked bodies, keep-alive,
//! `Expect: 100-continue`), JSON response writing and percent decoding. The request type, header
//! rules and response head come from `localstack_http`; the parser and percent decoding stay here
//! because they are stricter than mock-providers' (single-space request line, bounded UTF-8 lines,
//! CRLF after each chunk, 64 MiB body cap, silent close on I/O errors, their own 400 texts).

use std::io::{self, BufRead, Read, Write};

pub use localstack_http::Request;
use localstack_http::{response_head, CONTINUE};

pub const MAX_HEADER_BYTES: usize = 64 * 1024;
pub const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Errors while reading a request. `Closed` is a clean end of a keep-alive connection.
#[derive(Debug)]
pub enum ReadError {
    Closed,
    Io(#[allow(dead_code)] io::Error),
    Bad(&'static str),
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> Self {
        ReadError::Io(e)
    }
}

fn read_crlf_line<R: BufRead>(r: &mut R, budget: &mut usize) -> Result<Option<String>, ReadError> {
    let mut line = Vec::new();
    let n = r
        .by_ref()
        .take(*budget as u64 + 1)
        .read_until(b'\n', &mut line)?;
    if n == 0 {
        return Ok(None);
    }
    if n > *budget || line.last() != Some(&b'\n') {
        return Err(ReadError::Bad("header section too large or truncated"));
    }
    *budget -= n;
    while matches!(line.last(), Some(b'\n') | Some(b'\r')) {
        line.pop();
    }
    String::from_utf8(line)
        .map(Some)
        .map_err(|_| ReadError::Bad("non UTF-8 header"))
}

/// Read one request; answers `100 Continue` on `w` when the client asked for it.
pub fn read_request<R: BufRead, W: Write>(r: &mut R, w: &mut W) -> Result<Request, ReadError> {
    let mut budget = MAX_HEADER_BYTES;
    // Skip stray empty lines between requests (RFC 9112 allows ignoring them).
    let line = loop {
        match read_crlf_line(r, &mut budget)? {
            None => return Err(ReadError::Closed),
            Some(l) if l.is_empty() => continue,
            Some(l) => break l,
        }
    };
    let mut parts = line.split(' ');
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("").to_string();
    let version = parts.next().unwrap_or("").to_string();
    if method.is_empty() || target.is_empty() || !version.starts_with("HTTP/1.") {
        return Err(ReadError::Bad("bad request line"));
    }
    let mut headers = Vec::new();
    loop {
        match read_crlf_line(r, &mut budget)? {
            None => return Err(ReadError::Bad("connection closed inside headers")),
            Some(l) if l.is_empty() => break,
            Some(l) => {
                let (k, v) = l.split_once(':').ok_or(ReadError::Bad("bad header line"))?;
                headers.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
    }
    let mut req = Request::from_head(method, &target, headers);
    let conn_hdr = req
        .header("connection")
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    req.keep_alive = if version == "HTTP/1.0" {
        conn_hdr.contains("keep-alive")
    } else {
        !conn_hdr.contains("close")
    };
    let content_length = match req.header("content-length") {
        Some(v) => Some(
            v.trim()
                .parse::<usize>()
                .map_err(|_| ReadError::Bad("bad content-length"))?,
        ),
        None => None,
    };
    if req.expects_continue() {
        w.write_all(CONTINUE)?;
        w.flush()?;
    }
    req.body = if req.is_chunked() {
        read_chunked(r)?
    } else if let Some(n) = content_length {
        if n > MAX_BODY_BYTES {
            return Err(ReadError::Bad("body too large"));
        }
        let mut b = vec![0u8; n];
        r.read_exact(&mut b)?;
        b
    } else {
        Vec::new()
    };
    Ok(req)
}

fn read_chunked<R: BufRead>(r: &mut R) -> Result<Vec<u8>, ReadError> {
    let mut body = Vec::new();
    loop {
        let mut budget = 4096;
        let line = read_crlf_line(r, &mut budget)?.ok_or(ReadError::Bad("truncated chunk"))?;
        let size_str = line.split(';').next().unwrap_or("").trim();
        let size =
            usize::from_str_radix(size_str, 16).map_err(|_| ReadError::Bad("bad chunk size"))?;
        if size == 0 {
            // Trailers until an empty line.
            let mut budget = MAX_HEADER_BYTES;
            loop {
                match read_crlf_line(r, &mut budget)? {
                    None => return Ok(body),
                    Some(l) if l.is_empty() => return Ok(body),
                    Some(_) => {}
                }
            }
        }
        if body.len() + size > MAX_BODY_BYTES {
            return Err(ReadError::Bad("body too large"));
        }
        let start = body.len();
        body.resize(start + size, 0);
        r.read_exact(&mut body[start..])?;
        let mut crlf = [0u8; 2];
        r.read_exact(&mut crlf)?;
        if &crlf != b"\r\n" {
            return Err(ReadError::Bad("chunk not terminated by CRLF"));
        }
    }
}

/// Serialize a JSON response. `head` omits the body (HEAD requests).
pub fn write_response<W: Write>(
    w: &mut W,
    resp: &Response,
    keep_alive: bool,
    head: bool,
) -> io::Result<()> {
    let len = resp.body.len().to_string();
    let connection = if keep_alive { "keep-alive" } else { "close" };
    let mut out = response_head(
        resp.status,
        [
            ("Content-Type", "application/json"),
            ("Content-Length", len.as_str()),
            ("Connection", connection),
        ],
    );
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    if !head {
        out.extend_from_slice(&resp.body);
    }
    w.write_all(&out)?;
    w.flush()
}

/// Percent-decode to raw bytes. `plus_as_space` for query strings.
pub fn percent_decode(s: &str, plus_as_space: bool) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (hex(b[i + 1]), hex(b[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 3;
                        continue;
                    }
                    _ => out.push(b'%'),
                }
            }
            b'+' if plus_as_space => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    out
}

/// Parse `a=1&b=2` into decoded (key, value) pairs, in order.
pub fn parse_query(q: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (percent_decode(k, true), percent_decode(v, true)),
            None => (percent_decode(p, true), Vec::new()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn req(raw: &[u8]) -> (Result<Request, ReadError>, Vec<u8>) {
        let mut w = Vec::new();
        let r = read_request(&mut Cursor::new(raw.to_vec()), &mut w);
        (r, w)
    }

    #[test]
    fn parses_content_length_request() {
        let (r, w) = req(b"POST /pipeline?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nAuthorization: Bearer t\r\n\r\nhelloEXTRA");
        let r = r.unwrap();
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, "/pipeline");
        assert_eq!(r.query, "x=1");
        assert_eq!(r.body, b"hello");
        assert_eq!(r.header("authorization"), Some("Bearer t"));
        assert!(r.keep_alive);
        assert!(w.is_empty());
    }

    #[test]
    fn parses_chunked_and_expect() {
        let (r, w) = req(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\n\r\n");
        let r = r.unwrap();
        assert_eq!(r.body, b"abcde");
        assert!(!r.keep_alive);
        assert_eq!(w, b"HTTP/1.1 100 Continue\r\n\r\n");
    }

    #[test]
    fn closed_and_bad_requests() {
        assert!(matches!(req(b"").0, Err(ReadError::Closed)));
        assert!(matches!(req(b"garbage\r\n\r\n").0, Err(ReadError::Bad(_))));
        assert!(matches!(
            req(b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n").0,
            Err(ReadError::Bad(_))
        ));
        assert!(req(b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc")
            .0
            .is_err());
        let (r, _) = req(b"GET / HTTP/1.0\r\n\r\n");
        assert!(!r.unwrap().keep_alive);
    }

    #[test]
    fn decodes_percent_and_query() {
        assert_eq!(percent_decode("a%20b%2Fc+d", false), b"a b/c+d");
        assert_eq!(percent_decode("a+b", true), b"a b");
        assert_eq!(percent_decode("%e2%82%ac", false), "€".as_bytes());
        assert_eq!(percent_decode("100%", false), b"100%");
        assert_eq!(percent_decode("%zz%4", false), b"%zz%4");
        assert_eq!(percent_decode("%ff", false), vec![0xff]);
        assert_eq!(
            parse_query("EX=100&_token=abc&flag"),
            vec![
                (b"EX".to_vec(), b"100".to_vec()),
                (b"_token".to_vec(), b"abc".to_vec()),
                (b"flag".to_vec(), Vec::new())
            ]
        );
    }

    #[test]
    fn writes_response() {
        let mut w = Vec::new();
        write_response(
            &mut w,
            &Response {
                status: 401,
                body: b"{}".to_vec(),
            },
            true,
            false,
        )
        .unwrap();
        let s = String::from_utf8(w).unwrap();
        assert!(s.starts_with("HTTP/1.1 401 Unauthorized\r\n"));
        assert!(s.contains("Content-Length: 2\r\n"));
        assert!(s.ends_with("\r\n\r\n{}"));
    }
}
