//! The Worker entry point: build the per-request context and dispatch. Everything that decides
//! money or wire formats lives in `broker_core`; the modules here are thin adapters over the
//! platform (HTTP, fetch, the Upstash REST API, `wait_until`).

mod account;
mod admin;
mod app;
mod chat;
mod fetch;
mod http;
mod upstash;
mod webhooks;

use worker::{event, Context, Env, Request, Response, Result};

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> Result<Response> {
    console_error_panic_hook::set_once();
    Ok(app::handle(req, env, ctx).await)
}
