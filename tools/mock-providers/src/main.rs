//! `mock-providers`: a deterministic local stand-in for the AI providers the broker forwards to
//! (OpenAI, Anthropic, Gemini, ElevenLabs, Stability) and for PayPal's OAuth + webhook verification.
//!
//! Each provider lives under a path prefix (`/openai`, `/anthropic`, `/gemini`, `/elevenlabs`,
//! `/stability`, `/paypal`), so a gateway base URL is e.g. `http://127.0.0.1:8090/openai`.
//! Wire formats follow `/work/shared/fixtures` (see each provider module). Deterministic usage
//! rules: [`common`]. Scripting and the request log: [`control`].
//!
//! Environment: `MOCK_PORT` (8090), `MOCK_OPENAI_API_KEY` (sk-mock-openai), `MOCK_ANTHROPIC_API_KEY`
//! (sk-ant-mock), `MOCK_GOOGLE_API_KEY` (AIza-mock-google), `MOCK_ELEVENLABS_API_KEY` (el-mock),
//! `MOCK_STABILITY_API_KEY` (sk-stability-mock), `MOCK_PAYPAL_CLIENT_ID` (paypal-mock-client),
//! `MOCK_PAYPAL_CLIENT_SECRET` (paypal-mock-secret), `MOCK_PAYPAL_WEBHOOK_ID` (WH-MOCK-0001),
//! `MOCK_PAYPAL_SIGNING_SECRET` (paypal-mock-signing-secret).

mod anthropic;
mod common;
mod control;
mod elevenlabs;
mod gemini;
mod http;
mod openai;
mod openai_images;
mod paypal;
mod stability;

use std::io::BufReader;
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use control::State;
use http::{ReadOutcome, Request, Response};

/// Which provider (log/script name) a path belongs to.
fn provider_of(path: &str) -> &'static str {
    let seg = |p: &str| path == p || path.starts_with(&format!("{p}/"));
    if seg("/openai/v1/images") || seg("/openai/mock-images") {
        "openai-images"
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
    if req.path == "/__control" || req.path.starts_with("/__control/") {
        return control::handle(state, req);
    }
    let provider = provider_of(&req.path);
    state.record(provider, req);
    match provider {
        "openai" => openai::handle(state, req),
        "openai-images" => openai_images::handle(state, req),
        "anthropic" => anthropic::handle(state, req),
        "gemini" => gemini::handle(state, req),
        "elevenlabs" => elevenlabs::handle(state, req),
        "stability" => stability::handle(state, req),
        "paypal-token" | "paypal-verify" | "paypal" => paypal::handle(state, req),
        _ => Response::json(
            404,
            &serde_json::json!({ "error": format!("mock-providers: no route for {} {}", req.method, req.path) }),
        ),
    }
}

fn serve_connection(state: &State, stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(120)));
    let mut writer = match stream.try_clone() {
        Ok(w) => w,
        Err(_) => return,
    };
    let mut reader = BufReader::new(stream);
    loop {
        match http::read_request(&mut reader, &mut writer) {
            ReadOutcome::Closed => return,
            ReadOutcome::Bad(msg) => {
                http::write_bad_request(&mut writer, &msg);
                return;
            }
            ReadOutcome::Request(req) => {
                let close = !req.keep_alive;
                let head_only = req.method == "HEAD";
                let mut resp = route(state, &req);
                if close {
                    resp.add_header("connection", "close");
                }
                match http::write_response(&mut writer, resp, head_only) {
                    Ok(true) if !close => {}
                    _ => return,
                }
            }
        }
    }
}

fn main() {
    let config = control::Config::from_env();
    let port = config.port;
    let listener = match TcpListener::bind(("127.0.0.1", port)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("mock-providers: cannot bind 127.0.0.1:{port}: {e}");
            std::process::exit(1);
        }
    };
    let state = Arc::new(State::new(config));
    println!("mock-providers listening on http://127.0.0.1:{port}");
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let st = Arc::clone(&state);
        let spawned = std::thread::Builder::new().spawn(move || serve_connection(&st, stream));
        if let Err(e) = spawned {
            eprintln!("mock-providers: cannot spawn a connection thread: {e}");
        }
    }
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
