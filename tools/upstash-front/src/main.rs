//! upstash-front: an Upstash-REST-compatible HTTP front for a real local redis-server.
//!
//! Env: UPSTASH_FRONT_TOKEN (required), UPSTASH_FRONT_PORT (8079), REDIS_HOST (127.0.0.1),
//! REDIS_PORT (6379), UPSTASH_FRONT_DELAY_MS (0). Binds 127.0.0.1 only.
//!
//! HTTP/1.1 is hyper's on tokio; redis is reached through the `redis` crate (see
//! [`redis_link`]); the Upstash protocol is [`upstash`], our stats and test knobs [`observe`].

mod http;
mod observe;
mod redis_link;
mod upstash;

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};

use http::{err, read_request, to_hyper, BodyError};
use observe::now_ms;
use upstash::{App, Outcome};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => match v.trim().parse() {
            Ok(x) => x,
            Err(_) => {
                eprintln!("upstash-front: invalid value for {name}: {v:?}");
                std::process::exit(2);
            }
        },
        _ => default,
    }
}

/// Returned by the service to make hyper close the connection without answering.
#[derive(Debug)]
struct DroppedOnPurpose;

impl std::fmt::Display for DroppedOnPurpose {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by an injected failure")
    }
}

impl std::error::Error for DroppedOnPurpose {}

async fn serve(
    app: Arc<App>,
    req: hyper::Request<hyper::body::Incoming>,
) -> Result<hyper::Response<http_body_util::Full<bytes::Bytes>>, DroppedOnPurpose> {
    let req = match read_request(req).await {
        Ok(r) => r,
        Err(BodyError::TooLarge) => {
            return Ok(to_hyper(
                err(400, "ERR bad HTTP request: body too large"),
                true,
            ))
        }
        // The client is gone or broke the framing: there is nobody to answer.
        Err(BodyError::Broken) => return Err(DroppedOnPurpose),
    };
    let received_ms = now_ms();
    match app.handle(&req, received_ms).await {
        Outcome::Answer(resp) => Ok(to_hyper(resp, false)),
        Outcome::Drop => Err(DroppedOnPurpose),
    }
}

async fn serve_connection(app: Arc<App>, stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let service = service_fn(move |req| serve(Arc::clone(&app), req));
    // Errors here are clients going away (or an injected drop): nothing to report.
    let _ = http1::Builder::new()
        .timer(TokioTimer::new())
        // Idle keep-alive connections are closed after a while, as before.
        .header_read_timeout(Duration::from_secs(120))
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

fn main() {
    let token = match std::env::var("UPSTASH_FRONT_TOKEN") {
        Ok(t) if !t.is_empty() => t,
        _ => {
            eprintln!("upstash-front: UPSTASH_FRONT_TOKEN is required (the bearer token clients must send)");
            std::process::exit(2);
        }
    };
    let port: u16 = env_or("UPSTASH_FRONT_PORT", 8079);
    let redis_host: String = env_or("REDIS_HOST", "127.0.0.1".to_string());
    let redis_port: u16 = env_or("REDIS_PORT", 6379);
    let delay_ms: u64 = env_or("UPSTASH_FRONT_DELAY_MS", 0);

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("upstash-front: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    runtime.block_on(async move {
        let listener = match TcpListener::bind(("127.0.0.1", port)).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("upstash-front: cannot bind 127.0.0.1:{port}: {e}");
                std::process::exit(1);
            }
        };
        let link = match redis_link::RedisLink::new(redis_host, redis_port) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("upstash-front: invalid redis address: {e}");
                std::process::exit(2);
            }
        };
        let app = Arc::new(App::new(token, link, delay_ms));
        // Tests wait for this exact line.
        println!("upstash-front listening on http://127.0.0.1:{port}");
        let _ = std::io::stdout().flush();
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    tokio::spawn(serve_connection(Arc::clone(&app), stream));
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    eprintln!("upstash-front: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    });
}
