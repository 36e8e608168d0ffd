//! `/v1/keys` (issue 25): an account key's sub-keys: list with their spend, create (shown once),
//! revoke, rotate. Every rule is `broker_core::subkeys`'s; this reads the request and renders.

use crate::account::catalogue;
use crate::context::Ctx;
use crate::http::{json, read_body, HandlerResult};
use crate::payer::api_key;
use broker_core::accounts::json_object;
use broker_core::subkeys;
use worker::Request;

/// `GET /v1/keys`.
pub async fn list(ctx: &Ctx, req: Request) -> HandlerResult {
    Ok(json(200, &subkeys::list(&ctx.store()?, ctx, &api_key(ctx, &req, false)?).await?, &[]))
}

/// `POST /v1/keys {name, plan?, daily_cap?, monthly_cap?, total_cap?, models?}`.
pub async fn create(ctx: &Ctx, mut req: Request) -> HandlerResult {
    let key = api_key(ctx, &req, false)?;
    let body = json_object(&read_body(&mut req, ctx.settings().max_body_bytes).await?)?;
    // The models sold today, as /v1/models lists them.
    let sold: Vec<String> = catalogue(ctx).iter().filter_map(|m| m["id"].as_str().map(str::to_string)).collect();
    let is_sold = |id: &str| sold.iter().any(|s| s == id);
    Ok(json(201, &subkeys::create(&ctx.store()?, ctx, &key, &body, &is_sold).await?, &[]))
}

/// `POST /v1/keys/{key_id}/revoke`.
pub async fn revoke(ctx: &Ctx, req: Request, id: &str) -> HandlerResult {
    Ok(json(200, &subkeys::revoke(&ctx.store()?, ctx, &api_key(ctx, &req, false)?, id).await?, &[]))
}

/// `POST /v1/keys/{key_id}/rotate`.
pub async fn rotate(ctx: &Ctx, req: Request, id: &str) -> HandlerResult {
    Ok(json(200, &subkeys::rotate(&ctx.store()?, ctx, &api_key(ctx, &req, false)?, id).await?, &[]))
}
