//! The HTTP side on hyper: the request as the Upstash logic sees it (body read whole, capped at
//! 64 MiB), JSON responses, and the percent decoding of paths and query strings.
//!
//! Framing (Content-Length and chunked bodies, keep-alive, pipelining, `Expect: 100-continue`)
//! is hyper's. A request hyper cannot parse gets hyper's own `400 Bad Request` with an empty
//! body and the connection closes; a body over the cap gets our JSON 400 and a close.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONNECTION, CONTENT_TYPE};
use hyper::{HeaderMap, Method, StatusCode};
use percent_encoding::percent_decode;

pub const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// One HTTP request, body included.
pub struct Request {
    pub method: Method,
    /// Raw (still percent-encoded) path, without the query string.
    pub path: String,
    /// Raw query string (without '?'), possibly empty.
    pub query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Request {
    /// First value of a header, if it is valid text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Why a request body could not be read.
pub enum BodyError {
    /// Over [`MAX_BODY_BYTES`]: answered with a 400.
    TooLarge,
    /// The client went away or broke the framing: nothing to answer.
    Broken,
}

/// Read the whole body of `req` into a [`Request`].
pub async fn read_request(req: hyper::Request<Incoming>) -> Result<Request, BodyError> {
    let (parts, body) = req.into_parts();
    // A declared length over the cap is refused before waiting for the bytes.
    if hyper::body::Body::size_hint(&body)
        .upper()
        .is_some_and(|n| n > MAX_BODY_BYTES as u64)
    {
        return Err(BodyError::TooLarge);
    }
    let body = match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return Err(BodyError::TooLarge)
        }
        Err(_) => return Err(BodyError::Broken),
    };
    Ok(Request {
        method: parts.method,
        path: parts.uri.path().to_string(),
        query: parts.uri.query().unwrap_or("").to_string(),
        headers: parts.headers,
        body,
    })
}

/// A JSON answer with status 200 (the body as Upstash sends it).
pub fn ok_json(v: serde_json::Value) -> Response {
    Response {
        status: 200,
        body: v.to_string().into_bytes(),
    }
}

/// Upstash's error shape: `{"error": "..."}` with its status.
pub fn err(status: u16, msg: &str) -> Response {
    Response {
        status,
        body: serde_json::json!({"error": msg}).to_string().into_bytes(),
    }
}

/// A JSON response; `close` asks hyper to close the connection after it.
pub fn to_hyper(resp: Response, close: bool) -> hyper::Response<Full<Bytes>> {
    let mut out = hyper::Response::new(Full::new(Bytes::from(resp.body)));
    *out.status_mut() =
        StatusCode::from_u16(resp.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = out.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if close {
        headers.insert(CONNECTION, HeaderValue::from_static("close"));
    }
    out
}

/// Percent-decode to raw bytes; `plus_as_space` for query strings. Malformed escapes (`%zz`,
/// a trailing `%`) stay as they are.
pub fn percent_decode_bytes(s: &str, plus_as_space: bool) -> Vec<u8> {
    if plus_as_space && s.contains('+') {
        // Only a literal '+' is a space; an escaped `%2B` stays a plus.
        percent_decode(s.replace('+', " ").as_bytes()).collect()
    } else {
        percent_decode(s.as_bytes()).collect()
    }
}

/// Parse `a=1&b=2` into decoded (key, value) pairs, in order.
pub fn parse_query(q: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (percent_decode_bytes(k, true), percent_decode_bytes(v, true)),
            None => (percent_decode_bytes(p, true), Vec::new()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_percent_and_query() {
        assert_eq!(percent_decode_bytes("a%20b%2Fc+d", false), b"a b/c+d");
        assert_eq!(percent_decode_bytes("a+b", true), b"a b");
        assert_eq!(percent_decode_bytes("a%2Bb", true), b"a+b");
        assert_eq!(percent_decode_bytes("%e2%82%ac", false), "€".as_bytes());
        assert_eq!(percent_decode_bytes("100%", false), b"100%");
        assert_eq!(percent_decode_bytes("%zz%4", false), b"%zz%4");
        assert_eq!(percent_decode_bytes("%ff", false), vec![0xff]);
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
    fn json_response_head() {
        let r = to_hyper(
            Response {
                status: 401,
                body: b"{}".to_vec(),
            },
            true,
        );
        assert_eq!(r.status(), 401);
        assert_eq!(r.headers()[CONTENT_TYPE], "application/json");
        assert_eq!(r.headers()[CONNECTION], "close");
    }
}
