//! upstash-front: an Upstash-REST-compatible HTTP front for a real local redis-server.
//!
//! Env: UPSTASH_FRONT_TOKEN (required), UPSTASH_FRONT_PORT (8079), REDIS_HOST (127.0.0.1),
//! REDIS_PORT (6379), UPSTASH_FRONT_DELAY_MS (0). Binds 127.0.0.1 only.

mod http;
mod resp;
mod upstash;

use http::{read_request, write_response, ReadError};
use localstack_http::date::now_ms;
use std::io::{BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;
use upstash::{err, App};

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

fn serve_connection(app: &App, stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    // Idle keep-alive connections are closed after a while so threads do not pile up.
    let _ = stream.set_read_timeout(Some(Duration::from_secs(120)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(60)));
    let mut writer = match stream.try_clone() {
        Ok(w) => w,
        Err(_) => return,
    };
    let mut reader = BufReader::with_capacity(64 * 1024, stream);
    loop {
        let req = match read_request(&mut reader, &mut writer) {
            Ok(r) => r,
            Err(ReadError::Bad(msg)) => {
                let _ = write_response(
                    &mut writer,
                    &err(400, &format!("ERR bad HTTP request: {msg}")),
                    false,
                    false,
                );
                return;
            }
            Err(ReadError::Closed) | Err(ReadError::Io(_)) => return,
        };
        let received_ms = now_ms();
        let (resp, pending) = app.handle(&req, received_ms);
        let head = req.method == "HEAD";
        let written = write_response(&mut writer, &resp, req.keep_alive, head);
        if let Some(p) = pending {
            app.record(p, resp.status);
        }
        if written.is_err() || !req.keep_alive {
            let _ = writer.flush();
            return;
        }
    }
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

    let listener = match TcpListener::bind(("127.0.0.1", port)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("upstash-front: cannot bind 127.0.0.1:{port}: {e}");
            std::process::exit(1);
        }
    };
    let app = Arc::new(App::new(
        token,
        resp::Pool::new(redis_host, redis_port),
        delay_ms,
    ));
    println!("upstash-front listening on http://127.0.0.1:{port}");
    let _ = std::io::stdout().flush();

    for stream in listener.incoming() {
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                eprintln!("upstash-front: accept failed: {e}");
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let app = Arc::clone(&app);
        let spawned = std::thread::Builder::new()
            .name("conn".into())
            .stack_size(1024 * 1024)
            .spawn(move || serve_connection(&app, stream));
        if let Err(e) = spawned {
            eprintln!("upstash-front: cannot spawn connection thread: {e}");
        }
    }
}
