//! Responses and request bodies: JSON bodies, the one error rendering, and bodies read with a
//! counted limit (a chunked body without `Content-Length` stops at the limit too).

use broker_core::error::{ApiError, ErrorKind, ErrorShape};
use futures_util::StreamExt;
use serde_json::Value;
use worker::{Request, Response};

pub type HandlerResult = Result<Response, ApiError>;

pub fn bytes(status: u16, content_type: &str, body: Vec<u8>, headers: &[(String, String)]) -> Response {
    let mut resp = match Response::from_bytes(body) {
        Ok(r) => r.with_status(status),
        Err(_) => Response::empty().map(|r| r.with_status(500)).unwrap_or_else(|_| Response::builder().empty()),
    };
    let h = resp.headers_mut();
    let _ = h.set("content-type", content_type);
    for (k, v) in headers {
        let _ = h.set(k, v);
    }
    resp
}

/// 204, with no body at all (a 204 may not have one).
pub fn no_content() -> Response {
    Response::empty().map(|r| r.with_status(204)).unwrap_or_else(|_| Response::builder().empty())
}

pub fn json(status: u16, body: &Value, headers: &[(String, String)]) -> Response {
    bytes(status, "application/json", body.to_string().into_bytes(), headers)
}

/// The error as the client sees it (the full message goes to the request's log line).
pub fn render_error(e: &ApiError, shape: ErrorShape, request_id: &str) -> Response {
    json(e.status(), &e.to_json(shape, request_id), &e.response_headers())
}

/// How far past the limit an over-long body is still read (and dropped) before it is cancelled.
const DRAIN_FACTOR: u64 = 4;

fn too_large(limit: u64) -> ApiError {
    ApiError::new(ErrorKind::PayloadTooLarge, format!("request body exceeds {limit} bytes"))
}

/// The request body, at most `limit` bytes, counted while it is read: an over-long body is a 413
/// before anything touches Redis, whatever `Content-Length` said (or did not say).
pub async fn read_body(req: &mut Request, limit: u64) -> Result<Vec<u8>, ApiError> {
    let declared = req.headers().get("content-length").ok().flatten().and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(n) if n > limit => return Err(too_large(limit)),
        // The runtime delivers exactly the declared length: read it in one call (a chunk-by-chunk
        // read costs a promise and a lock per chunk).
        Some(_) => return req.bytes().await.map_err(|e| ApiError::invalid(format!("could not read the request body: {e}"))),
        None => {}
    }
    let Ok(mut stream) = req.stream() else { return Ok(Vec::new()) };
    let mut body = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::invalid(format!("could not read the request body: {e}")))?;
        if (body.len() + chunk.len()) as u64 > limit {
            // Read (and drop) a little more of the rest: a connection left mid-body is poisoned
            // for the next request in some proxies (wrangler dev's among them). Past that, the
            // body is cancelled. Nothing of it is kept.
            let mut drained = body.len() as u64;
            drop(body);
            while drained < limit.saturating_mul(DRAIN_FACTOR) {
                match stream.next().await {
                    Some(Ok(c)) => drained += c.len() as u64,
                    _ => break,
                }
            }
            return Err(too_large(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
