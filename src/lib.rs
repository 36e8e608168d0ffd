//! The Worker entry points: build the per-request context and dispatch. Everything that decides
//! money or wire formats lives in `broker_core`; the modules here are thin adapters over the
//! platform (HTTP, fetch, the Upstash REST API, `wait_until`).
//!
//! Imports flow one way: `lib` → `router` → handlers (`chat`, `media`, `gemini`, `checkout`,
//! `account`, `admin`, `webhooks`; the metered ones and `checkout` read the caller's key with
//! `account`'s helpers) → `meter` (the metering engine) and `payer` (who pays, read from the
//! request) → `context` → `upstash` → `fetch`; `http` and `log` are leaves; `lib` also runs
//! `sweeper` on the cron.

mod account;
mod admin;
mod alerts;
mod chat;
mod checkout;
mod context;
mod fetch;
mod gemini;
mod http;
mod keys_api;
mod log;
mod media;
mod meter;
mod payer;
mod pipe;
mod quote;
mod router;
mod sweeper;
mod upstash;
mod watch;
mod webhooks;

use context::{random_hex, Ctx};
use log::{Level, Redactor};
use worker::{event, Context, Env, Request, Response, Result, ScheduleContext, ScheduledEvent};

#[event(fetch)]
async fn fetch(req: Request, env: Env, wait: Context) -> Result<Response> {
    console_error_panic_hook::set_once();
    let started = worker::Date::now().as_millis();
    let path = req.path();
    let method = format!("{:?}", req.method()).to_uppercase();
    let shape = router::error_shape(&path);
    let redactor = Redactor::default();
    let request_id = match random_hex(12) {
        Ok(h) => format!("req_{h}"),
        // No id is better than a shared one.
        Err(e) => {
            redactor.line(Level::Error, "request", fields! {"route" => path, "method" => method, "status" => e.status(), "error_type" => e.kind.type_name(), "error" => e.message});
            return Ok(http::render_error(&e, shape, ""));
        }
    };
    let client_ip = req.headers().get("cf-connecting-ip").ok().flatten().unwrap_or_else(|| "unknown".into());
    // CORS applies to the customer routes, for the origins CORS_ORIGINS allows.
    let origin = req.headers().get("origin").ok().flatten();
    let preflight = req.headers().get("access-control-request-headers").ok().flatten();
    let mut cors: Option<Vec<(String, String)>> = None;
    let (result, mut facts) = match Ctx::new(env, wait, request_id.clone(), client_ip, redactor.clone(), started) {
        Ok(ctx) => {
            let allowed = origin.as_deref().filter(|o| broker_core::cors::applies_to(&path) && ctx.settings().cors_origins.allows(o));
            let r = if req.method() == worker::Method::Options && broker_core::cors::applies_to(&path) {
                cors = allowed.map(|o| broker_core::cors::preflight_headers(o, preflight.as_deref()));
                Ok(http::no_content())
            } else {
                cors = allowed.map(broker_core::cors::response_headers);
                router::route(&ctx, req, &path).await
            };
            (r, ctx.take_facts())
        }
        Err(e) => (Err(e), serde_json::Map::new()),
    };
    let (mut resp, level) = match result {
        Ok(r) => (r, Level::Info),
        Err(e) => {
            facts.insert("error_type".into(), e.kind.type_name().into());
            // The whole message, for operators (the client saw the public one).
            facts.insert("error".into(), e.message.clone().into());
            (http::render_error(&e, shape, &request_id), if e.status() >= 500 { Level::Error } else { Level::Info })
        }
    };
    let h = resp.headers_mut();
    // A replay (Idempotency-Key) names the first call's request id; every other answer its own.
    if h.get("idempotent-replayed").ok().flatten().as_deref() != Some("true") {
        let _ = h.set("x-request-id", &request_id);
    }
    for (k, v) in broker_core::cors::SECURITY_HEADERS.iter().copied().chain(cors.iter().flatten().map(|(k, v)| (k.as_str(), v.as_str()))) {
        let _ = h.set(k, v);
    }
    let mut line = fields! {"request_id" => request_id, "route" => path, "method" => method, "status" => resp.status_code(),
        "latency_ms" => worker::Date::now().as_millis().saturating_sub(started)};
    line.extend(facts);
    redactor.line(level, "request", line);
    Ok(resp)
}

#[event(scheduled)]
async fn scheduled(_event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    console_error_panic_hook::set_once();
    let log = Redactor::default();
    match sweeper::sweep(&env, &log, worker::Date::now().as_millis()).await {
        Ok(n) => log.line(Level::Info, "sweeper", fields! {"charged_holds" => n}),
        Err(e) => log.line(Level::Error, "sweeper", fields! {"error" => e.message}),
    }
}
