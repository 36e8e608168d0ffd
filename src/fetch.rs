//! Outbound HTTP with a deadline: the only place that builds a `worker::Fetch`.

use broker_core::error::{ApiError, ErrorKind};
use futures_util::future::{select, Either};
use std::time::Duration;
use worker::{AbortController, Delay, Fetch, Headers, Method, Request, RequestInit, Response};

pub struct Outbound {
    pub method: &'static str,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
}

/// Sends and waits for the response head at most `timeout_ms`; a timeout is `UpstreamTimeout`,
/// any other failure `UpstreamError`.
pub async fn send(out: &Outbound, timeout_ms: u64) -> Result<Response, ApiError> {
    let headers = Headers::new();
    for (k, v) in &out.headers {
        headers.set(k, v).map_err(|e| ApiError::new(ErrorKind::UpstreamError, format!("bad header {k}: {e}")))?;
    }
    let mut init = RequestInit::new();
    init.with_method(if out.method == "GET" { Method::Get } else { Method::Post }).with_headers(headers);
    if let Some(body) = &out.body {
        init.with_body(Some(worker::js_sys::Uint8Array::from(body.as_slice()).into()));
    }
    let request = Request::new_with_init(&out.url, &init).map_err(|e| ApiError::new(ErrorKind::UpstreamError, format!("bad upstream request: {e}")))?;
    let controller = AbortController::default();
    let signal = controller.signal();
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
        Some(Ok(resp)) => Ok(resp),
        Some(Err(e)) => Err(ApiError::new(ErrorKind::UpstreamError, format!("fetch {} failed: {e}", out.url))),
        None => {
            controller.abort();
            Err(ApiError::new(ErrorKind::UpstreamTimeout, format!("no answer from {} within {timeout_ms} ms", host(&out.url))))
        }
    }
}

fn host(url: &str) -> &str {
    url.split("://").nth(1).and_then(|r| r.split('/').next()).unwrap_or(url)
}
