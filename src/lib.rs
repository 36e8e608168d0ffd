//! The Worker entry points: build the per-request context and dispatch. Everything that decides
//! money or wire formats lives in `broker_core`; the modules here are thin adapters over the
//! platform (HTTP, fetch, the Upstash REST API, `wait_until`).
//!
//! Imports flow one way: `lib` → `router` → handlers (`chat`, `account`, `admin`, `webhooks`) →
//! `meter` (the metering engine) → `context`, `http`, `fetch`, `upstash`.

mod account;
mod admin;
mod chat;
mod context;
mod fetch;
mod http;
mod meter;
mod router;
mod sweeper;
mod upstash;
mod webhooks;

use context::{random_hex, Ctx};
use worker::{console_error, console_log, event, Context, Env, Request, Response, Result, ScheduleContext, ScheduledEvent};

#[event(fetch)]
async fn fetch(req: Request, env: Env, wait: Context) -> Result<Response> {
    console_error_panic_hook::set_once();
    let path = req.path();
    let shape = router::error_shape(&path);
    let request_id = match random_hex(12) {
        Ok(h) => format!("req_{h}"),
        // No id is better than a shared one.
        Err(e) => return Ok(http::render_error(&e, shape, "")),
    };
    let client_ip = req.headers().get("cf-connecting-ip").ok().flatten().unwrap_or_else(|| "unknown".into());
    let resp = match Ctx::new(env, wait, request_id.clone(), client_ip) {
        Ok(ctx) => router::route(&ctx, req, &path).await,
        Err(e) => Err(e),
    };
    let mut resp = resp.unwrap_or_else(|e| http::render_error(&e, shape, &request_id));
    let _ = resp.headers_mut().set("x-request-id", &request_id);
    Ok(resp)
}

#[event(scheduled)]
async fn scheduled(_event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    console_error_panic_hook::set_once();
    match sweeper::sweep(&env, worker::Date::now().as_millis()).await {
        Ok(n) => console_log!("sweeper charged {n} expired holds"),
        Err(e) => console_error!("sweeper failed: {}", e.message),
    }
}
