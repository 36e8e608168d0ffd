//! The Worker entry point: build the per-request context and dispatch. Everything that decides
//! money or wire formats lives in `broker_core`; the modules here are thin adapters over the
//! platform (HTTP, fetch, the Upstash REST API, `wait_until`).

mod account;
mod admin;
mod app;
mod chat;
mod fetch;
mod http;
mod sweeper;
mod upstash;
mod webhooks;

use worker::{console_error, console_log, event, Context, Env, Request, Response, Result, ScheduleContext, ScheduledEvent};

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> Result<Response> {
    console_error_panic_hook::set_once();
    Ok(app::handle(req, env, ctx).await)
}

#[event(scheduled)]
async fn scheduled(_event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    console_error_panic_hook::set_once();
    match sweeper::sweep(&env, worker::Date::now().as_millis()).await {
        Ok(n) => console_log!("sweeper released {n} expired holds"),
        Err(e) => console_error!("sweeper failed: {}", e.message),
    }
}
