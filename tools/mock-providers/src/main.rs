//! `mock-providers`: a deterministic local stand-in for the AI providers the broker forwards to
//! (OpenAI, Anthropic, Gemini, ElevenLabs, Stability) and for PayPal's OAuth + webhook verification.
//!
//! Each provider lives under a path prefix (`/openai`, `/anthropic`, `/gemini`, `/elevenlabs`,
//! `/stability`, `/paypal`), so a gateway base URL is e.g. `http://127.0.0.1:8090/openai`
//! (OpenAI's images and speech are modules of their own under it).
//! Wire formats follow `/work/shared/fixtures` (see each provider module). Deterministic usage
//! rules: [`common`]. Scripting and the request log: [`control`].
//!
//! Environment: `MOCK_PORT` (8090), `MOCK_OPENAI_API_KEY` (sk-mock-openai), `MOCK_ANTHROPIC_API_KEY`
//! (sk-ant-mock), `MOCK_GOOGLE_API_KEY` (AIza-mock-google), `MOCK_ELEVENLABS_API_KEY` (el-mock),
//! `MOCK_STABILITY_API_KEY` (sk-stability-mock), `MOCK_PAYPAL_CLIENT_ID` (paypal-mock-client),
//! `MOCK_PAYPAL_CLIENT_SECRET` (paypal-mock-secret), `MOCK_PAYPAL_WEBHOOK_ID` (WH-MOCK-0001),
//! `MOCK_PAYPAL_SIGNING_SECRET` (paypal-mock-signing-secret), `MOCK_STRIPE_SECRET_KEY` (sk_test_local_stripe).
//!
//! HTTP/1.1 is hyper's on tokio ([`http`]); the provider modules stay synchronous functions from
//! a [`http::Request`] to a [`http::Response`], whose scripted pacing [`http::send`] plays out.

mod agent;
mod anthropic;
mod anthropic_beta;
mod anthropic_count;
mod common;
mod control;
mod deliver;
mod elevenlabs;
mod gate;
mod gemini;
mod http;
mod openai;
mod openai_embeddings;
mod openai_images;
mod openai_responses;
mod openai_speech;
mod paypal;
mod paypal_events;
mod request_log;
mod stability;
mod stripe;
mod stripe_events;
mod stripe_offsession;
mod alert_receiver;

use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};

use control::State;
use http::{BodyError, OutBody, Request, Response};

/// Which provider (log/script name) a path belongs to.
fn provider_of(path: &str) -> &'static str {
    let seg = |p: &str| path == p || path.starts_with(&format!("{p}/"));
    if seg("/openai/v1/images") || seg("/openai/mock-images") {
        "openai-images"
    } else if seg("/openai/v1/audio/speech") {
        "openai-speech"
    } else if seg("/openai/v1/embeddings") {
        "openai-embeddings"
    } else if seg("/anthropic/v1/messages/count_tokens") {
        "anthropic-count"
    } else if seg("/openai") {
        "openai"
    } else if seg("/anthropic") {
        "anthropic"
    } else if seg("/gemini") {
        "gemini"
    } else if seg("/elevenlabs") {
        "elevenlabs"
    } else if seg("/stability") {
        "stability"
    } else if seg("/stripe") || seg("/v1/checkout") || seg("/v1/billing_portal") {
        "stripe"
    } else if seg("/paypal/v1/oauth2") {
        "paypal-token"
    } else if seg("/paypal/v1/notifications") {
        "paypal-verify"
    } else if seg("/paypal") {
        "paypal"
    } else {
        "unknown"
    }
}

fn route(state: &State, req: &Request) -> Response {
    // The payment services' webhook events (made and delivered on a test's request).
    if req.method == "POST" {
        let body = || serde_json::from_slice(&req.body).unwrap_or(serde_json::Value::Null);
        if req.path == "/__control/stripe/endpoint" {
            return stripe_offsession::set_endpoint(&body());
        }
        if let Some(name) = req.path.strip_prefix("/__control/alerts/") {
            return alert_receiver::control(name, &body());
        }
        if let Some(action) = req.path.strip_prefix("/__control/stripe/") {
            return stripe_events::control(action, &body());
        }
        if let Some(action) = req.path.strip_prefix("/__control/paypal/") {
            return paypal_events::control(state, action, &body());
        }
    }
    if req.method == "GET" && req.path == "/__control/stripe/payment_intents" {
        return stripe_offsession::intents();
    }
    if req.method == "GET" {
        if let Some(name) = req.path.strip_prefix("/__control/alerts/") {
            return alert_receiver::received(name);
        }
    }
    if let Some(name) = req.path.strip_prefix("/alerts/") {
        return alert_receiver::receive(name, req);
    }
    if req.path == "/__control" || req.path.starts_with("/__control/") {
        return control::handle(state, req);
    }
    let provider = provider_of(&req.path);
    state.record(provider, req);
    match provider {
        "openai" if req.path == "/openai/v1/responses" => openai_responses::handle(state, req),
        "openai" => openai::handle(state, req),
        "openai-images" => openai_images::handle(state, req),
        "openai-speech" => openai_speech::handle(state, req),
        "openai-embeddings" => openai_embeddings::handle(state, req),
        "anthropic-count" => anthropic_count::handle(state, req),
        "anthropic" => anthropic::handle(state, req),
        "gemini" => gemini::handle(state, req),
        "elevenlabs" => elevenlabs::handle(state, req),
        "stability" => stability::handle(state, req),
        "paypal-token" | "paypal-verify" | "paypal" => paypal::handle(state, req),
        "stripe" => stripe::handle(state, req),
        _ => Response::json(
            404,
            &serde_json::json!({ "error": format!("mock-providers: no route for {} {}", req.method, req.path) }),
        ),
    }
}

async fn serve(
    state: Arc<State>,
    req: hyper::Request<hyper::body::Incoming>,
) -> Result<hyper::Response<OutBody>, http::CutOnPurpose> {
    let req = match http::read_request(req).await {
        Ok(r) => r,
        Err(BodyError::TooLarge) => return Ok(http::bad_request("body too large")),
        Err(BodyError::Broken) => {
            return Ok(http::bad_request(
                "unreadable body (truncated or bad chunked framing)",
            ))
        }
    };
    // The provider modules are quick, synchronous functions; pacing happens in `send`.
    let resp = route(&state, &req);
    if resp.drop_connection {
        // An error from the service makes hyper close the connection without a response.
        http::sleep_ms(resp.delay_ms).await;
        return Err(http::CutOnPurpose);
    }
    Ok(http::send(resp).await)
}

async fn serve_connection(state: Arc<State>, stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let service = service_fn(move |req| serve(Arc::clone(&state), req));
    // Errors here are clients going away or scripted cuts: nothing to report.
    let _ = http1::Builder::new()
        .timer(TokioTimer::new())
        // Idle keep-alive connections are closed after a while, as before.
        .header_read_timeout(Duration::from_secs(120))
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

fn main() {
    let config = control::Config::from_env();
    let port = config.port;
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mock-providers: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    runtime.block_on(async move {
        let listener = match TcpListener::bind(("127.0.0.1", port)).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("mock-providers: cannot bind 127.0.0.1:{port}: {e}");
                std::process::exit(1);
            }
        };
        let state = Arc::new(State::new(config));
        println!("mock-providers listening on http://127.0.0.1:{port}");
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    tokio::spawn(serve_connection(Arc::clone(&state), stream));
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    eprintln!("mock-providers: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::provider_of;

    #[test]
    fn provider_prefixes() {
        assert_eq!(provider_of("/openai/v1/chat/completions"), "openai");
        assert_eq!(
            provider_of("/openai/v1/images/generations"),
            "openai-images"
        );
        assert_eq!(provider_of("/openai/v1/audio/speech"), "openai-speech");
        assert_eq!(provider_of("/openai/v1/embeddings"), "openai-embeddings");
        assert_eq!(provider_of("/anthropic/v1/messages/count_tokens"), "anthropic-count");
        assert_eq!(provider_of("/openaix/v1"), "unknown");
        assert_eq!(
            provider_of("/gemini/v1beta/models/g:generateContent"),
            "gemini"
        );
        assert_eq!(provider_of("/paypal/v1/oauth2/token"), "paypal-token");
        assert_eq!(
            provider_of("/paypal/v1/notifications/verify-webhook-signature"),
            "paypal-verify"
        );
    }
}
