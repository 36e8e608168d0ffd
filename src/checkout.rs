//! Buying and self-service for a signed-in key (the portal's API): Stripe Checkout for credit
//! packs and subscriptions, the Stripe Billing Portal, rotating one's own key, and the key's
//! daily usage for the portal's chart. Every route needs the key (`Authorization: Bearer`). The
//! rules are `broker_core::checkout`'s and `broker_core::accounts`'; this reads the request, calls
//! Stripe, renders.

use crate::account::caller;
use crate::context::Ctx;
use crate::fetch;
use crate::http::{json, read_body, HandlerResult};
use crate::payer::api_key;
use broker_core::accounts::{self, json_object};
use broker_core::checkout;
use broker_core::error::ApiError;
use broker_core::product::UpstreamRequest;
use broker_core::stripe_billing;
use serde_json::{Map, Value};
use worker::Request;

async fn body(ctx: &Ctx, req: &mut Request) -> Result<Map<String, Value>, ApiError> {
    json_object(&read_body(req, ctx.settings().max_body_bytes).await?)
}

/// A form POST to Stripe's API with the secret key; its JSON answer, or the error a client sees.
pub async fn stripe_post(ctx: &Ctx, path: &str, form: &[(String, String)], idempotency_key: &str) -> Result<Value, ApiError> {
    let secret = ctx.secret("STRIPE_SECRET_KEY")?;
    let req = UpstreamRequest {
        url: format!("{}{path}", ctx.settings().stripe_base_url),
        headers: vec![
            ("authorization".into(), format!("Bearer {}", secret.expose())),
            ("content-type".into(), "application/x-www-form-urlencoded".into()),
            ("idempotency-key".into(), idempotency_key.into()),
        ],
        body: stripe_billing::form_encode(form).into_bytes(),
    };
    let mut sent = fetch::send(&req, 20_000).await?;
    let status = sent.response.status_code();
    let v: Value = sent.json().await;
    if status != 200 && status != 401 {
        ctx.fact("stripe_error", v.get("error").cloned().unwrap_or(Value::Null));
    }
    checkout::stripe_answer(status, v)
}

/// `POST /v1/checkout {credits | amount_usd | plan, success_url, cancel_url}`: a Stripe Checkout
/// Session for this key. The completed payment is credited by the Stripe webhook.
pub async fn checkout(ctx: &Ctx, mut req: Request) -> HandlerResult {
    let k = caller(ctx, &req, 0, 0).await?;
    broker_core::subkeys::forbid_sub_key(&k, "buy credits")?;
    let body = body(ctx, &mut req).await?;
    let s = ctx.settings();
    let (purchase, form) = checkout::checkout(&body, &k.key_id, &s.rate, s.pack_bounds, &s.subscription_plans)?;
    // A client retrying with its Idempotency-Key gets the same session; otherwise each request is new.
    let client_key = req.headers().get("idempotency-key").ok().flatten().filter(|v| !v.is_empty() && v.len() <= 200);
    let idem = format!("{}:{}", k.key_id, client_key.unwrap_or_else(|| ctx.request_id().to_string()));
    let session = stripe_post(ctx, "/v1/checkout/sessions", &form, &idem).await?;
    Ok(json(200, &checkout::checkout_answer(&session, &k.key_id, &purchase)?, &[]))
}

/// `POST /v1/billing-portal {return_url}`: a Stripe Billing Portal session to manage this key's
/// subscription (the key must have subscribed once).
pub async fn billing_portal(ctx: &Ctx, mut req: Request) -> HandlerResult {
    let k = caller(ctx, &req, 0, 0).await?;
    broker_core::subkeys::forbid_sub_key(&k, "manage a subscription")?;
    let form = checkout::portal_form(&k.stripe_customer, &body(ctx, &mut req).await?)?;
    let session = stripe_post(ctx, "/v1/billing_portal/sessions", &form, &format!("{}:{}", k.key_id, ctx.request_id())).await?;
    let url = session.get("url").and_then(Value::as_str).ok_or_else(|| ApiError::upstream("Stripe answered no portal session").public())?;
    Ok(json(200, &serde_json::json!({ "url": url }), &[]))
}

/// `POST /v1/keys/rotate`: a new key for the same balance and ledger; the old one stops now.
pub async fn rotate(ctx: &Ctx, req: Request) -> HandlerResult {
    let answer = accounts::rotate_own(&ctx.store()?, ctx, &api_key(ctx, &req, false)?).await?;
    Ok(json(200, &answer, &[]))
}

/// `GET /v1/usage/daily?from=&to=`: this key's calls, units and credits per day and model.
pub async fn daily(ctx: &Ctx, req: Request) -> HandlerResult {
    let query = Ctx::query(&req)?;
    let param = |name: &str| query.iter().find(|(q, _)| q == name).map(|(_, v)| v.as_str());
    let report = accounts::daily(&ctx.store()?, ctx, &api_key(ctx, &req, false)?, param("from"), param("to")).await?;
    Ok(json(200, &report, &[]))
}

/// `GET /v1/plans`: the subscriptions and credit packs sold through Checkout (public).
pub fn plans(ctx: &Ctx) -> worker::Response {
    let s = ctx.settings();
    json(200, &checkout::plans_json(&s.subscription_plans, s.pack_bounds, &s.usd_per_credit), &[])
}
