//! Outbound HTTP with deadlines: the only place that builds a `worker::Fetch`.

use broker_core::error::{ApiError, ErrorKind};
use broker_core::product::UpstreamRequest;
use futures_util::future::{select, Either};
use std::time::Duration;
use serde_json::Value;
use worker::wasm_bindgen_futures::JsFuture;
use worker::{js_sys, web_sys, AbortController, Delay, Fetch, Headers, Method, Request, RequestInit, Response, ResponseBody};

/// A sent request: its response and the means to cancel the exchange (aborting also ends the
/// body stream).
pub struct Sent {
    pub response: Response,
    pub cancel: AbortController,
}

fn host(url: &str) -> &str {
    url.split("://").nth(1).and_then(|r| r.split('/').next()).unwrap_or(url)
}

/// Sends `req` (a POST with a body, or a GET without one) and waits for the response head at most
/// `timeout_ms`. A timeout is `UpstreamTimeout` (the request may have reached the server: the
/// caller decides what that costs), any other failure `UpstreamError` (nothing was answered; the
/// detail, host included, goes to the log only).
pub async fn send(req: &UpstreamRequest, timeout_ms: u64) -> Result<Sent, ApiError> {
    let headers = Headers::new();
    for (k, v) in &req.headers {
        headers.set(k, v).map_err(|e| ApiError::upstream(format!("bad header {k}: {e}")))?;
    }
    let mut init = RequestInit::new();
    init.with_headers(headers);
    if req.body.is_empty() {
        init.with_method(Method::Get);
    } else {
        init.with_method(Method::Post).with_body(Some(worker::js_sys::Uint8Array::from(req.body.as_slice()).into()));
    }
    let request = Request::new_with_init(&req.url, &init).map_err(|e| ApiError::upstream(format!("bad upstream request to {}: {e}", host(&req.url))))?;
    let cancel = AbortController::default();
    let signal = cancel.signal();
    let fetch = Fetch::Request(request);
    let outcome = {
        let send = fetch.send_with_signal(&signal);
        let timer = Delay::from(Duration::from_millis(timeout_ms));
        futures_util::pin_mut!(send);
        futures_util::pin_mut!(timer);
        match select(send, timer).await {
            Either::Left((r, _)) => Some(r),
            Either::Right(_) => None,
        }
    };
    match outcome {
        Some(Ok(response)) => Ok(Sent { response, cancel }),
        Some(Err(e)) => Err(ApiError::upstream(format!("fetch {} failed: {e}", host(&req.url)))),
        None => {
            cancel.abort();
            Err(ApiError::new(ErrorKind::UpstreamTimeout, format!("the provider did not answer within {timeout_ms} ms")).public())
        }
    }
}

impl Sent {
    /// The whole body in one runtime call (`arrayBuffer()`). Reading a small body as a stream
    /// costs a reader, a promise and a lock release per chunk: measured at about a sixth of a
    /// metered call's CPU when the Upstash answers were read that way.
    pub async fn body(&mut self) -> Result<Vec<u8>, String> {
        let ResponseBody::Stream(stream) = self.response.body() else {
            return self.response.bytes().await.map_err(|e| e.to_string());
        };
        let whole = web_sys::Response::new_with_opt_readable_stream(Some(stream)).map_err(|e| format!("{e:?}"))?;
        let buffer = JsFuture::from(whole.array_buffer().map_err(|e| format!("{e:?}"))?).await.map_err(|e| format!("{e:?}"))?;
        Ok(js_sys::Uint8Array::new(&buffer).to_vec())
    }

    /// The body as JSON (`null` when it is not JSON or cannot be read).
    pub async fn json(&mut self) -> Value {
        self.body().await.ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or(Value::Null)
    }
}
