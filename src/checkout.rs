//! Buying and self-service for a signed-in key (the portal's API): Stripe Checkout for credit
//! packs and subscriptions, the Stripe Billing Portal, rotating one's own key, and the key's
//! daily usage for the portal's chart. Every route needs the key (`Authorization: Bearer`).

use crate::account::caller;
use crate::context::{random_hex, Ctx};
use crate::fetch;
use crate::http::{json, read_body, HandlerResult};
use broker_core::error::ApiError;
use broker_core::keys;
use broker_core::money::credits_json;
use broker_core::product::UpstreamRequest;
use broker_core::scripts::KeyOpReply;
use broker_core::store::{KeyOp, Store};
use broker_core::stripe_billing::{self, Purchase};
use serde_json::{json, Map, Value};
use worker::Request;

async fn body_object(ctx: &Ctx, req: &mut Request) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(&read_body(req, ctx.settings().max_body_bytes).await?) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(ApiError::invalid("body must be a JSON object")),
    }
}

/// A form POST to Stripe's API with the secret key; its JSON answer, or the error a client sees.
async fn stripe_post(ctx: &Ctx, path: &str, form: &[(String, String)], idempotency_key: &str) -> Result<Value, ApiError> {
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
    match status {
        200 => Ok(v),
        401 => Err(broker_core::config::misconfigured("STRIPE_SECRET_KEY", "Stripe refused it")),
        _ => {
            ctx.fact("stripe_error", v.get("error").cloned().unwrap_or(Value::Null));
            Err(ApiError::upstream(format!("Stripe refused the request (status {status}); nothing was charged")).public())
        }
    }
}

/// `POST /v1/checkout {credits | amount_usd | plan, success_url, cancel_url}`: a Stripe Checkout
/// Session for this key. The completed payment is credited by the Stripe webhook.
pub async fn checkout(ctx: &Ctx, mut req: Request) -> HandlerResult {
    let k = caller(ctx, &req, 0, 0).await?;
    let body = body_object(ctx, &mut req).await?;
    let s = ctx.settings();
    let purchase = stripe_billing::purchase(&body, &s.rate, s.pack_bounds, &s.subscription_plans)?;
    let (success, cancel) = (stripe_billing::return_url(&body, "success_url")?, stripe_billing::return_url(&body, "cancel_url")?);
    let form = stripe_billing::checkout_form(&k.key_id, &purchase, &success, &cancel);
    // A client retrying with its Idempotency-Key gets the same session; otherwise each request is new.
    let client_key = req.headers().get("idempotency-key").ok().flatten().filter(|v| !v.is_empty() && v.len() <= 200);
    let idem = format!("{}:{}", k.key_id, client_key.unwrap_or_else(|| ctx.request_id().to_string()));
    let session = stripe_post(ctx, "/v1/checkout/sessions", &form, &idem).await?;
    let (Some(id), Some(url)) = (session.get("id").and_then(Value::as_str), session.get("url").and_then(Value::as_str)) else {
        return Err(ApiError::upstream("Stripe answered no session").public());
    };
    let mut out = json!({ "id": id, "url": url, "key_id": k.key_id });
    match purchase {
        Purchase::Credits { cents, mc } => {
            out["mode"] = json!("payment");
            out["credits"] = credits_json(mc);
            out["amount_usd"] = json!(cents as f64 / 100.0);
        }
        Purchase::Subscription(plan) => {
            out["mode"] = json!("subscription");
            out["plan"] = json!(plan.name);
            out["monthly_credits"] = credits_json(plan.monthly_mc);
        }
    }
    Ok(json(200, &out, &[]))
}

/// `POST /v1/billing-portal {return_url}`: a Stripe Billing Portal session to manage this key's
/// subscription (the key must have subscribed once).
pub async fn billing_portal(ctx: &Ctx, mut req: Request) -> HandlerResult {
    let k = caller(ctx, &req, 0, 0).await?;
    let body = body_object(ctx, &mut req).await?;
    if k.stripe_customer.is_empty() {
        return Err(ApiError::invalid("this key has no subscription to manage; subscribe with POST /v1/checkout {\"plan\": …}"));
    }
    let form = vec![("customer".to_string(), k.stripe_customer.clone()), ("return_url".to_string(), stripe_billing::return_url(&body, "return_url")?)];
    let session = stripe_post(ctx, "/v1/billing_portal/sessions", &form, &format!("{}:{}", k.key_id, ctx.request_id())).await?;
    let url = session.get("url").and_then(Value::as_str).ok_or_else(|| ApiError::upstream("Stripe answered no portal session").public())?;
    Ok(json(200, &json!({ "url": url }), &[]))
}

/// `POST /v1/keys/rotate`: a new key for the same balance and ledger; the old one stops now.
pub async fn rotate(ctx: &Ctx, req: Request) -> HandlerResult {
    let k = caller(ctx, &req, 0, 0).await?;
    let current_hash = keys::hash_key(&crate::payer::api_key(ctx, &req, false)?);
    let new_key = format!("{}{}", keys::KEY_PREFIX, random_hex(32)?);
    ctx.keep_secret(&new_key);
    let op = KeyOp::Rotate { key_id: &k.key_id, new_hash: keys::hash_key(&new_key), current_hash: Some(current_hash) };
    match ctx.store()?.key_op(&op, ctx.now_ms()).await? {
        KeyOpReply::Ok => Ok(json(200, &json!({ "key_id": k.key_id, "api_key": new_key, "note": "shown only once; the old key stops working now" }), &[])),
        // Another rotation won while this one was on its way: this caller's key is already dead.
        KeyOpReply::Stale | KeyOpReply::Revoked => Err(ApiError::unauthorized("this API key was rotated or revoked meanwhile; it cannot rotate again")),
        other => Err(ApiError::internal(format!("rotation failed: {other:?}"))),
    }
}

/// `GET /v1/usage/daily?from=&to=`: this key's calls, units and credits per day and model (the
/// analytics rollups; 31 days up to today by default).
pub async fn daily(ctx: &Ctx, req: Request) -> HandlerResult {
    let k = caller(ctx, &req, 0, 0).await?;
    let url = req.url().map_err(|e| ApiError::invalid(format!("bad url: {e}")))?;
    let to = url.query_pairs().find(|(q, _)| q == "to").map(|(_, v)| v.to_string()).unwrap_or_else(|| ctx.today());
    let from = url.query_pairs().find(|(q, _)| q == "from").map(|(_, v)| v.to_string()).unwrap_or_else(|| broker_core::pricing::utc_date(ctx.now_ms().saturating_sub(30 * 86_400_000)));
    let days = broker_core::stats::days(&from, &to)?;
    let (calls, _) = ctx.store()?.stats_rollups(&days, Some(&k.key_id)).await?;
    let upc = broker_core::money::Decimal::parse(&ctx.settings().usd_per_credit).map_err(ApiError::invalid)?;
    // Its own calls, units and credits: the gateway's costs and margins are not its business.
    let report = broker_core::stats::report(&days, &calls, &[], &upc, Some(&k.key_id), broker_core::stats::View::Customer);
    Ok(json(200, &report, &[]))
}

/// `GET /v1/plans`: the subscriptions and credit packs sold through Checkout (public).
pub fn plans(ctx: &Ctx) -> worker::Response {
    let s = ctx.settings();
    let plans: Vec<Value> = s.subscription_plans.iter().map(|p| json!({ "name": p.name, "monthly_credits": credits_json(p.monthly_mc), "rate_plan": p.rate_plan })).collect();
    let pack = json!({ "min_usd": s.pack_bounds.min_cents as f64 / 100.0, "max_usd": s.pack_bounds.max_cents as f64 / 100.0, "usd_per_credit": s.usd_per_credit });
    json(200, &json!({ "plans": plans, "credit_pack": pack }), &[])
}
