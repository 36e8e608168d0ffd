//! The mock's HTTP layer on hyper: the [`Request`] the provider modules read (body read whole,
//! capped at 32 MiB), the [`Response`] they build with its scripted pacing, and how a response
//! goes out: a full body with `content-length`, or a stream sent chunk by chunk (SSE events,
//! audio pieces) with the scripted delays, stall and cut.
//!
//! Framing (Content-Length and chunked bodies, keep-alive, `Expect: 100-continue`, the `date`
//! header) is hyper's. A request hyper cannot parse gets hyper's `400 Bad Request` (empty body)
//! and the connection closes; a body over the cap gets a plain-text 400 and a close.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::{self, StreamExt};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{HeaderName, HeaderValue, CONTENT_LENGTH};
use hyper::StatusCode;

const MAX_BODY: usize = 32 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// Raw (still percent-encoded) path, without the query string.
    pub path: String,
    /// Raw query string (without '?'), possibly empty.
    pub query: String,
    /// Header (name, value) pairs in arrival order; names lower-case (hyper's), values trimmed.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// First value of a header, name compared ASCII case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn body_str(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// First value of a query parameter, percent-decoded.
    pub fn query_param(&self, key: &str) -> Option<String> {
        self.query.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (url_decode(k) == key).then(|| url_decode(v))
        })
    }
}

/// `application/x-www-form-urlencoded` / query decoding (`+` = space, `%XX`; malformed escapes
/// stay as they are).
pub fn url_decode(s: &str) -> String {
    let spaced = s.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8_lossy()
        .into_owned()
}

/// The chunks of a streamed body, produced lazily so a long stream never sits in memory whole.
pub type Chunks = Box<dyn Iterator<Item = Vec<u8>> + Send>;

pub enum Body {
    Full(Vec<u8>),
    /// Sent with `Transfer-Encoding: chunked`, one HTTP chunk per element (one SSE event each).
    Chunks(Chunks),
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
    /// Chunks: after this many chunks, pause [`Response::stall_ms`] once, then go on.
    pub stall_after_chunks: Option<u64>,
    pub stall_ms: u64,
    /// Wait at the gate (`crate::gate`) before the head.
    pub gated: bool,
    /// Close the connection without any answer (the request was read: a server that drops it).
    pub drop_connection: bool,
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
            stall_after_chunks: None,
            stall_ms: 0,
            gated: false,
            drop_connection: false,
        }
    }

    pub fn json_bytes(status: u16, body: Vec<u8>) -> Response {
        Response::new(status, "application/json", body)
    }

    pub fn json<T: serde::Serialize>(status: u16, value: &T) -> Response {
        Response::json_bytes(status, serde_json::to_vec(value).unwrap_or_default())
    }

    pub fn stream<I>(status: u16, content_type: &str, chunks: I) -> Response
    where
        I: IntoIterator<Item = Vec<u8>>,
        I::IntoIter: Send + 'static,
    {
        let mut r = Response::new(status, content_type, Vec::new());
        r.body = Body::Chunks(Box::new(chunks.into_iter()));
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

/// Why a request body could not be read.
pub enum BodyError {
    /// Over the cap: answered with a 400.
    TooLarge,
    /// The client went away or broke the framing: nothing to answer.
    Broken,
}

/// Read the whole body of `req` into a [`Request`].
pub async fn read_request(req: hyper::Request<Incoming>) -> Result<Request, BodyError> {
    let (parts, body) = req.into_parts();
    if hyper::body::Body::size_hint(&body)
        .upper()
        .is_some_and(|n| n > MAX_BODY as u64)
    {
        return Err(BodyError::TooLarge);
    }
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes().to_vec(),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return Err(BodyError::TooLarge)
        }
        Err(_) => return Err(BodyError::Broken),
    };
    let headers = parts
        .headers
        .iter()
        .map(|(k, v)| {
            let value = String::from_utf8_lossy(v.as_bytes()).trim().to_string();
            (k.as_str().to_string(), value)
        })
        .collect();
    Ok(Request {
        method: parts.method.as_str().to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().unwrap_or("").to_string(),
        headers,
        body,
    })
}

/// The error a body stream ends with to make hyper drop the connection mid-response.
#[derive(Debug)]
pub struct CutOnPurpose;

impl std::fmt::Display for CutOnPurpose {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("response cut by a script")
    }
}

impl std::error::Error for CutOnPurpose {}

pub type OutBody = UnsyncBoxBody<Bytes, CutOnPurpose>;

/// Plain-text 400 for a request whose body could not be taken, then close.
pub fn bad_request(msg: &str) -> hyper::Response<OutBody> {
    let mut r = Response::new(
        400,
        "text/plain; charset=utf-8",
        format!("bad request: {msg}\n").into_bytes(),
    );
    r.add_header("connection", "close");
    to_hyper(r)
}

pub async fn sleep_ms(ms: u64) {
    if ms > 0 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
}

/// Wait out `delay_ms`, then turn the response into hyper's (the body keeps its own pacing).
pub async fn send(resp: Response) -> hyper::Response<OutBody> {
    if resp.gated {
        crate::gate::wait().await;
    }
    sleep_ms(resp.delay_ms).await;
    to_hyper(resp)
}

fn to_hyper(resp: Response) -> hyper::Response<OutBody> {
    let status = StatusCode::from_u16(resp.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut headers = hyper::HeaderMap::with_capacity(resp.headers.len() + 1);
    for (k, v) in &resp.headers {
        if let (Ok(k), Ok(v)) = (HeaderName::try_from(k.as_str()), HeaderValue::try_from(v)) {
            headers.append(k, v);
        }
    }
    let body = match resp.body {
        Body::Full(bytes) => match resp.cut_after_chunks {
            None if resp.stall_after_chunks.is_some() => {
                // A plain body in two halves (two "chunks"): the stall comes after that many.
                let len = bytes.len();
                headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
                let all = Bytes::from(bytes);
                let halves = vec![all.slice(..len / 2).to_vec(), all.slice(len / 2..).to_vec()];
                let pacing = Pacing { chunk_delay_ms: 0, cut_after: None, stall_after: resp.stall_after_chunks, stall_ms: resp.stall_ms };
                StreamBody::new(paced(Box::new(halves.into_iter()), pacing)).boxed_unsync()
            }
            None => Full::new(Bytes::from(bytes)).map_err(never).boxed_unsync(),
            Some(_) => {
                // Announce the whole length, send half, then drop the connection.
                let len = bytes.len();
                headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
                let half = Bytes::from(bytes).slice(..len / 2);
                let cut = stream::once(async {
                    sleep_ms(CUT_FLUSH_GRACE_MS).await;
                    Err(CutOnPurpose)
                });
                let frames = stream::iter([Ok(Frame::data(half))]).chain(cut);
                StreamBody::new(frames).boxed_unsync()
            }
        },
        Body::Chunks(chunks) => {
            let pacing = Pacing {
                chunk_delay_ms: resp.chunk_delay_ms,
                cut_after: resp.cut_after_chunks,
                stall_after: resp.stall_after_chunks,
                stall_ms: resp.stall_ms,
            };
            StreamBody::new(paced(chunks, pacing)).boxed_unsync()
        }
    };
    let mut out = hyper::Response::new(body);
    *out.status_mut() = status;
    *out.headers_mut() = headers;
    out
}

fn never(e: Infallible) -> CutOnPurpose {
    match e {}
}

/// Pause before a cut. hyper drops the connection as soon as a body fails, discarding what it
/// still buffers; while the body is pending it flushes (its buffer holds at most a few hundred
/// KiB), so this pause makes everything sent before the cut reach the client, as the blocking
/// writes of the hand-written server did.
const CUT_FLUSH_GRACE_MS: u64 = 20;

#[derive(Clone, Copy)]
struct Pacing {
    chunk_delay_ms: u64,
    cut_after: Option<u64>,
    stall_after: Option<u64>,
    stall_ms: u64,
}

/// Chunks as body frames: `chunk_delay_ms` between two chunks, one `stall_ms` pause once
/// `stall_after` chunks are out, and with `cut_after` an error (hyper drops the connection, no
/// terminating chunk) once that many chunks are out or the chunks run out.
fn paced(
    chunks: Chunks,
    pacing: Pacing,
) -> impl futures_util::Stream<Item = Result<Frame<Bytes>, CutOnPurpose>> + Send {
    struct State {
        chunks: Chunks,
        sent: u64,
        done: bool,
    }
    let start = State {
        chunks,
        sent: 0,
        done: false,
    };
    stream::unfold(start, move |mut st| async move {
        loop {
            if st.done {
                return None;
            }
            if pacing.cut_after.is_some_and(|n| st.sent >= n) {
                st.done = true;
                sleep_ms(CUT_FLUSH_GRACE_MS).await;
                return Some((Err(CutOnPurpose), st));
            }
            if pacing.stall_after == Some(st.sent) {
                sleep_ms(pacing.stall_ms).await;
            }
            let Some(chunk) = st.chunks.next() else {
                st.done = true;
                // Asked to cut after >= all chunks: everything was sent, but still no terminator.
                pacing.cut_after?;
                sleep_ms(CUT_FLUSH_GRACE_MS).await;
                return Some((Err(CutOnPurpose), st));
            };
            if st.sent > 0 {
                sleep_ms(pacing.chunk_delay_ms).await;
            }
            st.sent += 1;
            if !chunk.is_empty() {
                return Some((Ok(Frame::data(Bytes::from(chunk))), st));
            }
        }
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn frames(chunks: Vec<&'static str>, pacing: Pacing) -> (Vec<String>, bool) {
        let mut s = paced(
            Box::new(chunks.into_iter().map(|c| c.as_bytes().to_vec())),
            pacing,
        );
        let mut out = Vec::new();
        while let Some(f) = s.next().await {
            match f {
                Ok(f) => out.push(String::from_utf8_lossy(f.data_ref().unwrap()).into_owned()),
                Err(CutOnPurpose) => return (out, true),
            }
        }
        (out, false)
    }

    const PLAIN: Pacing = Pacing {
        chunk_delay_ms: 0,
        cut_after: None,
        stall_after: None,
        stall_ms: 0,
    };

    #[tokio::test]
    async fn streams_cut_and_stall() {
        assert_eq!(
            frames(vec!["ab", "", "c"], PLAIN).await,
            (vec!["ab".into(), "c".into()], false)
        );
        let cut = Pacing {
            cut_after: Some(1),
            ..PLAIN
        };
        assert_eq!(
            frames(vec!["ab", "", "c"], cut).await,
            (vec!["ab".into()], true)
        );
        let beyond = Pacing {
            cut_after: Some(9),
            ..PLAIN
        };
        assert_eq!(
            frames(vec!["ab", "c"], beyond).await,
            (vec!["ab".into(), "c".into()], true)
        );
        let stall = Pacing {
            stall_after: Some(1),
            stall_ms: 120,
            ..PLAIN
        };
        let t0 = std::time::Instant::now();
        assert_eq!(frames(vec!["a", "b"], stall).await.0.len(), 2);
        assert!(t0.elapsed() >= Duration::from_millis(120));
    }

    #[test]
    fn query_and_url_decoding() {
        let r = Request {
            method: "GET".into(),
            path: "/".into(),
            query: "key=a%2Bb+c&alt=sse&x".into(),
            headers: vec![("x-a".into(), "1".into())],
            body: Vec::new(),
        };
        assert_eq!(r.query_param("key").as_deref(), Some("a+b c"));
        assert_eq!(r.query_param("alt").as_deref(), Some("sse"));
        assert_eq!(r.query_param("x").as_deref(), Some(""));
        assert_eq!(r.query_param("nope"), None);
        assert_eq!(r.header("X-A"), Some("1"));
        assert_eq!(url_decode("100%"), "100%");
    }

    #[test]
    fn cut_full_body_announces_the_whole_length() {
        let mut r = Response::json_bytes(200, b"abcdef".to_vec());
        r.cut_after_chunks = Some(0);
        let h = to_hyper(r);
        assert_eq!(h.headers()[CONTENT_LENGTH], "6");
    }
}
