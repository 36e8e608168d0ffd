//! Low-balance alerts and auto top-up for a signed-in key: `GET|PUT|DELETE /v1/alerts`,
//! `GET|PUT|DELETE /v1/auto-topup`, `POST /v1/auto-topup/card` (a Stripe Checkout Session in
//! setup mode that saves a card). The rules are `broker_core::alerts`' and
//! `broker_core::auto_topup`'s, the store steps `broker_core::lowbal`'s; what happens after a
//! call is `crate::watch`.

use crate::checkout::stripe_post;
use crate::context::Ctx;
use crate::http::{json, read_body, HandlerResult};
use broker_core::accounts::json_object;
use broker_core::alerts::{self, SIGNATURE_HEADER};
use broker_core::auto_topup;
use broker_core::error::ApiError;
use broker_core::lowbal;
use broker_core::stripe_billing;
use serde_json::{json as j, Map, Value};
use worker::Request;

async fn body(ctx: &Ctx, req: &mut Request) -> Result<Map<String, Value>, ApiError> {
    json_object(&read_body(req, ctx.settings().max_body_bytes).await?)
}

/// The local test stack (its store on a loopback address) may send alerts to its own receiver.
fn local_stack(ctx: &Ctx) -> bool {
    ctx.secret("UPSTASH_REDIS_REST_URL").is_ok_and(|u| broker_core::clock::is_loopback_url(u.expose()))
}

/// The calling key, which must be an account key: a sub-key spends its account's balance, so
/// the account's owner sets its alert and auto top-up (a sub-key gets 403).
async fn account_caller(ctx: &Ctx, req: &Request) -> Result<broker_core::scripts::KeyView, ApiError> {
    let k = crate::account::caller(ctx, req, 0, 0).await?;
    broker_core::subkeys::forbid_sub_key(&k, "set the account's low-balance alert or auto top-up")?;
    Ok(k)
}

fn alert_view(f: &std::collections::HashMap<String, String>) -> Value {
    let threshold = f.get("a_thr").and_then(|t| t.parse::<i64>().ok());
    alerts::setting_json(threshold, f.get("a_url").map(String::as_str), f.get("a_armed").map(String::as_str) == Some("1"))
}

/// `GET /v1/alerts`.
pub async fn get_alert(ctx: &Ctx, req: Request) -> HandlerResult {
    let k = account_caller(ctx, &req).await?;
    Ok(json(200, &alert_view(&lowbal::fields(&ctx.store()?, &k.key_id).await?), &[]))
}

/// `PUT /v1/alerts {threshold, url}`: armed at once; the signing secret is in the answer the
/// first time only.
pub async fn put_alert(ctx: &Ctx, mut req: Request) -> HandlerResult {
    let k = account_caller(ctx, &req).await?;
    let setting = alerts::parse_setting(&body(ctx, &mut req).await?, local_stack(ctx))?;
    let store = ctx.store()?;
    let new_secret = format!("whsec_{}", crate::context::random_hex(24)?);
    ctx.keep_secret(&new_secret);
    let shown = lowbal::put_alert(&store, &k.key_id, &setting, &new_secret).await?;
    let mut v = alert_view(&lowbal::fields(&store, &k.key_id).await?);
    match shown {
        Some(s) => {
            v["secret"] = j!(s);
            v["note"] = j!(format!("the signing secret is shown only now; verify each alert's {SIGNATURE_HEADER} header with it"));
        }
        None => v["note"] = j!("the signing secret is unchanged (shown when the alert was first set)"),
    }
    Ok(json(200, &v, &[]))
}

/// `DELETE /v1/alerts`: no alert, and its secret forgotten.
pub async fn delete_alert(ctx: &Ctx, req: Request) -> HandlerResult {
    let k = account_caller(ctx, &req).await?;
    lowbal::delete_alert(&ctx.store()?, &k.key_id).await?;
    Ok(json(200, &j!({ "enabled": false }), &[]))
}

/// `GET /v1/auto-topup`.
pub async fn get_topup(ctx: &Ctx, req: Request) -> HandlerResult {
    let k = account_caller(ctx, &req).await?;
    Ok(json(200, &auto_topup::setting_json(&lowbal::fields(&ctx.store()?, &k.key_id).await?), &[]))
}

/// `PUT /v1/auto-topup {threshold, amount, max_per_day?}`: needs a saved card.
pub async fn put_topup(ctx: &Ctx, mut req: Request) -> HandlerResult {
    let k = account_caller(ctx, &req).await?;
    let s = ctx.settings();
    let setting = auto_topup::parse_setting(&body(ctx, &mut req).await?, &s.rate, s.pack_bounds)?;
    let store = ctx.store()?;
    lowbal::put_topup(&store, &k.key_id, &setting).await?;
    Ok(json(200, &auto_topup::setting_json(&lowbal::fields(&store, &k.key_id).await?), &[]))
}

/// `DELETE /v1/auto-topup`: off (the card stays saved).
pub async fn delete_topup(ctx: &Ctx, req: Request) -> HandlerResult {
    let k = account_caller(ctx, &req).await?;
    let store = ctx.store()?;
    lowbal::delete_topup(&store, &k.key_id).await?;
    Ok(json(200, &auto_topup::setting_json(&lowbal::fields(&store, &k.key_id).await?), &[]))
}

/// `POST /v1/auto-topup/card {success_url, cancel_url}`: a Checkout Session in setup mode for
/// the key's Stripe customer (made first if the key has none). Stripe's `setup_intent.succeeded`
/// then saves the card (`broker_core::payments::stripe_topup`).
pub async fn save_card(ctx: &Ctx, mut req: Request) -> HandlerResult {
    let k = account_caller(ctx, &req).await?;
    let b = body(ctx, &mut req).await?;
    alerts::only_fields(&b, &["success_url", "cancel_url"])?;
    let (success, cancel) = (stripe_billing::return_url(&b, "success_url")?, stripe_billing::return_url(&b, "cancel_url")?);
    let store = ctx.store()?;
    let saved = lowbal::fields(&store, &k.key_id).await?;
    let customer = match saved.get("customer").cloned().or_else(|| Some(k.stripe_customer.clone()).filter(|c| !c.is_empty())) {
        Some(c) => c,
        None => {
            let made = stripe_post(ctx, "/v1/customers", &auto_topup::customer_form(&k.key_id), &format!("{}:customer", k.key_id)).await?;
            made.get("id").and_then(Value::as_str).map(str::to_string).ok_or_else(|| ApiError::upstream("Stripe answered no customer").public())?
        }
    };
    let form = auto_topup::setup_session_form(&k.key_id, &customer, &success, &cancel);
    let session = stripe_post(ctx, "/v1/checkout/sessions", &form, &format!("{}:{}", k.key_id, ctx.request_id())).await?;
    let (Some(id), Some(url)) = (session.get("id").and_then(Value::as_str), session.get("url").and_then(Value::as_str)) else {
        return Err(ApiError::upstream("Stripe answered no session").public());
    };
    Ok(json(200, &j!({ "id": id, "url": url, "mode": "setup", "key_id": k.key_id, "customer": customer }), &[]))
}
