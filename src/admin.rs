//! `/admin/*`: key management and credit grants, behind `X-Admin-Secret`. Every flow is
//! `broker_core::admin`'s; this reads the request, calls it, renders the answer.

use crate::context::Ctx;
use crate::http::{json, read_body, HandlerResult};
use broker_core::accounts::json_object;
use broker_core::admin;
use broker_core::error::ApiError;
use broker_core::routes::Endpoint;
use serde_json::{Map, Value};
use worker::Request;

/// Proof that this request passed [`guard`]: the admin handlers take one, and only `guard` makes
/// it (its field is private), so no dispatch path can reach them without the secret.
pub struct AdminPass(());

/// Checks `X-Admin-Secret` (`broker_core::admin::guard`: strength, attempts per address, compare).
pub async fn guard(ctx: &Ctx, req: &Request) -> Result<AdminPass, ApiError> {
    let secret = ctx.secret("ADMIN_SECRET")?;
    let given = req.headers().get("x-admin-secret").ok().flatten().unwrap_or_default();
    admin::guard(&ctx.store()?, ctx, &secret, &given).await.map(|()| AdminPass(()))
}

async fn body(ctx: &Ctx, req: &mut Request) -> Result<Map<String, Value>, ApiError> {
    json_object(&read_body(req, ctx.settings().max_body_bytes).await?)
}

/// An admin endpoint; `_pass` proves that [`guard`] accepted the secret.
pub async fn handle(ctx: &Ctx, mut req: Request, endpoint: Endpoint, id: &str, _pass: AdminPass) -> HandlerResult {
    let store = ctx.store()?;
    let (status, answer) = match endpoint {
        Endpoint::AdminAddCredits => (200, admin::add_credits(&store, ctx, &body(ctx, &mut req).await?).await?),
        Endpoint::AdminImportKeys => (200, admin::import_keys(&store, ctx, &body(ctx, &mut req).await?).await?),
        Endpoint::AdminCreateKey => (201, admin::create(&store, ctx, &body(ctx, &mut req).await?).await?),
        Endpoint::AdminStats => (200, admin::stats(&store, ctx, admin::stats_query(ctx, &Ctx::query(&req)?)?).await?),
        Endpoint::AdminUnmatchedPayments => (200, admin::unmatched(&store).await?),
        Endpoint::AdminGetKey => (200, admin::get_key(&store, ctx, id).await?),
        Endpoint::AdminKeyLedger => (200, admin::key_ledger(&store, id, &Ctx::query(&req)?).await?),
        Endpoint::AdminGrantCredits => {
            admin::key_id(id)?;
            (200, admin::grant(&store, ctx, id, &body(ctx, &mut req).await?).await?)
        }
        Endpoint::AdminRevokeKey => (200, admin::revoke(&store, ctx, id).await?),
        Endpoint::AdminRotateKey => (200, admin::rotate(&store, ctx, id).await?),
        other => return Err(ApiError::internal(format!("{other:?} is not an admin endpoint"))),
    };
    Ok(json(status, &answer, &[]))
}
