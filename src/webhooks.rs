//! Payment webhooks: read the delivery, call `broker_core::payments` (which verifies Stripe's
//! signature, applies the event to the store once, logs its outcome and answers), render. PayPal
//! verifies its own signatures: its verification call (with a cached OAuth token) is made here.

use crate::context::Ctx;
use crate::fetch;
use crate::http::{json, read_body, HandlerResult};
use broker_core::error::ApiError;
use broker_core::keys;
use broker_core::payments::{self, PaypalDelivery};
use broker_core::paypal;
use broker_core::product::UpstreamRequest;
use broker_core::store::Store;
use serde_json::Value;
use worker::Request;

pub async fn stripe(ctx: &Ctx, mut req: Request) -> HandlerResult {
    let secret = ctx.secret("STRIPE_WEBHOOK_SECRET")?;
    // The exact raw bytes are signed: read them before any JSON parsing.
    let body = read_body(&mut req, ctx.settings().max_webhook_bytes).await?;
    let header = req.headers().get("stripe-signature").ok().flatten();
    let event = payments::stripe_verified(ctx, header.as_deref(), &body, secret.expose())?;
    let store = ctx.store()?;
    if broker_core::auto_topup::handles(event.get("type").and_then(Value::as_str).unwrap_or("")) {
        // Auto top-up's events: a saved card, a paid or failed top-up (its alert posted after).
        let (answer, alert) = payments::stripe_topup(&store, ctx, broker_core::auto_topup::interpret(&event, &ctx.settings().rate)).await?;
        if let Some(a) = alert {
            let (redactor, rid, store) = (ctx.redactor().clone(), ctx.request_id().to_string(), ctx.store()?);
            ctx.wait_until(async move { crate::watch::deliver(&store, &a.target, &a.event, &redactor, &rid).await });
        }
        return Ok(json(200, &answer, &[]));
    }
    Ok(json(200, &payments::stripe_event(&store, ctx, &event).await?, &[]))
}

fn header(req: &Request, name: &str) -> Result<String, ApiError> {
    req.headers().get(name).ok().flatten().filter(|v| !v.is_empty()).ok_or_else(|| ApiError::invalid(format!("missing {name} header")))
}

/// A PayPal access token: the cached one unless `fresh`, else a new one (then cached until
/// shortly before it expires; PayPal tokens live ~9 h).
async fn paypal_token(ctx: &Ctx, fresh: bool) -> Result<String, ApiError> {
    let store = ctx.store()?;
    if !fresh {
        if let Some(t) = store.cached_paypal_token().await? {
            return Ok(t);
        }
    }
    let id = ctx.secret("PAYPAL_CLIENT_ID")?;
    let secret = ctx.secret("PAYPAL_CLIENT_SECRET")?;
    let req = UpstreamRequest {
        url: format!("{}/v1/oauth2/token", ctx.settings().paypal_base_url),
        headers: vec![
            ("authorization".into(), format!("Basic {}", keys::base64(format!("{}:{}", id.expose(), secret.expose()).as_bytes()))),
            ("content-type".into(), "application/x-www-form-urlencoded".into()),
            ("accept".into(), "application/json".into()),
        ],
        body: b"grant_type=client_credentials".to_vec(),
    };
    let mut sent = fetch::send(&req, 15_000).await?;
    let status = sent.response.status_code();
    let v: Value = sent.json().await;
    let (Some(token), 200) = (v.get("access_token").and_then(Value::as_str), status) else {
        return Err(ApiError::upstream(format!("PayPal token request failed (status {status})")).public());
    };
    let ttl = v.get("expires_in").and_then(Value::as_u64).unwrap_or(0).saturating_sub(300);
    if ttl > 0 {
        store.cache_paypal_token(token, ttl).await?;
    }
    Ok(token.to_string())
}

pub async fn paypal(ctx: &Ctx, mut req: Request) -> HandlerResult {
    let webhook_id = ctx.secret("PAYPAL_WEBHOOK_ID")?;
    let store = ctx.store()?;
    payments::paypal_delivery(&store, ctx).await?;
    let (event, raw_event) = match payments::paypal_delivery_body(ctx, read_body(&mut req, ctx.settings().max_webhook_bytes).await?)? {
        PaypalDelivery::Answered(answer) => return Ok(json(200, &answer, &[])),
        PaypalDelivery::Verify { event, raw } => (event, raw),
    };
    let fields = [
        ("auth_algo", header(&req, "paypal-auth-algo")?),
        ("cert_url", header(&req, "paypal-cert-url")?),
        ("transmission_id", header(&req, "paypal-transmission-id")?),
        ("transmission_sig", header(&req, "paypal-transmission-sig")?),
        ("transmission_time", header(&req, "paypal-transmission-time")?),
        ("webhook_id", webhook_id.expose().to_string()),
    ];
    let verify_body = paypal::verify_body(&fields, &raw_event);
    let verify = |token: String| UpstreamRequest {
        url: format!("{}/v1/notifications/verify-webhook-signature", ctx.settings().paypal_base_url),
        headers: vec![("authorization".into(), format!("Bearer {token}")), ("content-type".into(), "application/json".into())],
        body: verify_body.clone().into_bytes(),
    };
    let mut sent = fetch::send(&verify(paypal_token(ctx, false).await?), 15_000).await?;
    if sent.response.status_code() == 401 {
        // The cached token expired or was revoked early: once more with a new one.
        sent = fetch::send(&verify(paypal_token(ctx, true).await?), 15_000).await?;
    }
    let status = sent.response.status_code();
    let verdict: Value = sent.json().await;
    payments::paypal_verdict(ctx, status, &verdict)?;
    Ok(json(200, &payments::paypal_event(&store, ctx, &event).await?, &[]))
}
