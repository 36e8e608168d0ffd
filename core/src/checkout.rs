//! Buying for a signed-in key (the portal's API): what a checkout request buys and the form of
//! its Stripe Checkout Session, the answer once Stripe made it, the Billing Portal's form, the
//! plans on sale, and what Stripe's answers mean. The purchase rules themselves (packs, plans,
//! return URLs) are `crate::stripe_billing`'s; the completed payment is credited by the webhook
//! (`crate::payments`).
//!
//! Leaves out: the call to Stripe (the worker's fetch).

use crate::error::ApiError;
use crate::money::{credits_json, CreditRate};
use crate::stripe_billing::{self, PackBounds, Plan, Purchase};
use serde_json::{json, Map, Value};

/// A checkout request for key `key_id` (`{credits | amount_usd | plan, success_url, cancel_url}`):
/// what it buys, and the form of its Checkout Session.
pub fn checkout(body: &Map<String, Value>, key_id: &str, rate: &CreditRate, bounds: PackBounds, plans: &[Plan]) -> Result<(Purchase, Vec<(String, String)>), ApiError> {
    let purchase = stripe_billing::purchase(body, rate, bounds, plans)?;
    let (success, cancel) = (stripe_billing::return_url(body, "success_url")?, stripe_billing::return_url(body, "cancel_url")?);
    let form = stripe_billing::checkout_form(key_id, &purchase, &success, &cancel);
    Ok((purchase, form))
}

/// The answer to `POST /v1/checkout`: the session Stripe made (its `id` and `url`) and what it sells.
pub fn checkout_answer(session: &Value, key_id: &str, purchase: &Purchase) -> Result<Value, ApiError> {
    let (Some(id), Some(url)) = (session.get("id").and_then(Value::as_str), session.get("url").and_then(Value::as_str)) else {
        return Err(ApiError::upstream("Stripe answered no session").public());
    };
    let mut out = json!({ "id": id, "url": url, "key_id": key_id });
    match purchase {
        Purchase::Credits { cents, mc } => {
            out["mode"] = "payment".into();
            out["credits"] = credits_json(*mc);
            out["amount_usd"] = (*cents as f64 / 100.0).into();
        }
        Purchase::Subscription(plan) => {
            out["mode"] = "subscription".into();
            out["plan"] = plan.name.clone().into();
            out["monthly_credits"] = credits_json(plan.monthly_mc);
        }
    }
    Ok(out)
}

/// The Billing Portal form for a key's Stripe customer (`""`: the key never subscribed).
pub fn portal_form(customer: &str, body: &Map<String, Value>) -> Result<Vec<(String, String)>, ApiError> {
    if customer.is_empty() {
        return Err(ApiError::invalid("this key has no subscription to manage; subscribe with POST /v1/checkout {\"plan\": …}"));
    }
    Ok(vec![("customer".to_string(), customer.to_string()), ("return_url".to_string(), stripe_billing::return_url(body, "return_url")?)])
}

/// `GET /v1/plans`: the subscriptions and the credit pack sold through Checkout.
pub fn plans_json(plans: &[Plan], bounds: PackBounds, usd_per_credit: &str) -> Value {
    let plans: Vec<Value> = plans.iter().map(|p| json!({ "name": p.name, "monthly_credits": credits_json(p.monthly_mc), "rate_plan": p.rate_plan })).collect();
    let pack = json!({ "min_usd": bounds.min_cents as f64 / 100.0, "max_usd": bounds.max_cents as f64 / 100.0, "usd_per_credit": usd_per_credit });
    json!({ "plans": plans, "credit_pack": pack })
}

/// Stripe's answer to an API call: its JSON on 200; a refused secret key is the gateway's
/// misconfiguration (503); anything else a 502 that charged nothing.
pub fn stripe_answer(status: u16, v: Value) -> Result<Value, ApiError> {
    match status {
        200 => Ok(v),
        401 => Err(crate::config::misconfigured("STRIPE_SECRET_KEY", "Stripe refused it")),
        _ => Err(ApiError::upstream(format!("Stripe refused the request (status {status}); nothing was charged")).public()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pack_answer_says_what_it_sells_and_a_missing_session_is_a_502() {
        let purchase = Purchase::Credits { cents: 1250, mc: 1_250_000 };
        let v = checkout_answer(&json!({"id": "cs_1", "url": "https://checkout.stripe.com/c/cs_1"}), "key_0123456789abcdef", &purchase).unwrap();
        assert_eq!((v["mode"].as_str(), v["credits"].as_i64(), v["amount_usd"].as_f64()), (Some("payment"), Some(1250), Some(12.5)));
        assert_eq!(checkout_answer(&json!({"id": "cs_1"}), "k", &purchase).unwrap_err().status(), 502);
    }

    #[test]
    fn stripe_refusing_the_secret_key_is_the_gateways_misconfiguration() {
        assert_eq!(stripe_answer(401, json!({})).unwrap_err().status(), 503);
        assert_eq!(stripe_answer(400, json!({})).unwrap_err().status(), 502);
        assert_eq!(stripe_answer(200, json!({"id": 1})).unwrap(), json!({"id": 1}));
        assert!(portal_form("", &Map::new()).is_err());
    }
}
