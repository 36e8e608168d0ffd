//! Buying inside the product: Stripe Checkout Sessions for credit packs and subscriptions, the
//! Billing Portal, and what subscription events mean for a key.
//!
//! - A **credit pack** is a Checkout Session in `payment` mode whose `metadata.credits` says what
//!   it buys; the existing `checkout.session.completed` handling credits it.
//! - A **subscription** is a Checkout Session in `subscription` mode for a configured plan
//!   (`SUBSCRIPTION_PLANS`), the key named in the subscription's metadata. Each `invoice.paid`
//!   credits the month's allowance once per invoice and moves the key to the plan's rate limits;
//!   `customer.subscription.deleted` returns it to `DEFAULT_PLAN`.
//!
//! Stripe's API is form-encoded (`a[b][c]=v`); this module builds those bodies.

use crate::error::ApiError;
use crate::money::{parse_credits, CreditRate};
use serde_json::Value;

/// A subscription plan: `name:stripe_price_id:monthly_credits:rate_plan`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub name: String,
    pub price_id: String,
    pub monthly_mc: i64,
    /// The `RATE_LIMITS` plan a subscribed key gets.
    pub rate_plan: String,
}

/// Parses `SUBSCRIPTION_PLANS`: `name:price_id:monthly_credits:rate_plan, …` (empty: none).
pub fn parse_plans(s: &str) -> Result<Vec<Plan>, String> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            let parts: Vec<&str> = p.split(':').map(str::trim).collect();
            let [name, price_id, credits, rate_plan] = parts[..] else {
                return Err(format!("`{p}`: expected name:stripe_price_id:monthly_credits:rate_plan"));
            };
            let monthly_mc = parse_credits(&Value::String(credits.into())).map_err(|e| format!("`{p}`: {e}"))?;
            if name.is_empty() || !price_id.starts_with("price_") || monthly_mc <= 0 || rate_plan.is_empty() {
                return Err(format!("`{p}`: a name, a price_… id, positive credits and a rate plan are required"));
            }
            Ok(Plan { name: name.into(), price_id: price_id.into(), monthly_mc, rate_plan: rate_plan.into() })
        })
        .collect()
}

/// What a customer buys through `POST /v1/checkout`.
#[derive(Debug, Clone, PartialEq)]
pub enum Purchase {
    Credits { cents: u64, mc: i64 },
    Subscription(Plan),
}

/// Limits on one credit pack, in cents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackBounds {
    pub min_cents: u64,
    pub max_cents: u64,
}

/// The purchase a checkout request asks for: `{credits}` or `{amount_usd}` (a pack), or `{plan}`.
pub fn purchase(body: &serde_json::Map<String, Value>, rate: &CreditRate, bounds: PackBounds, plans: &[Plan]) -> Result<Purchase, ApiError> {
    let given = ["credits", "amount_usd", "plan"].iter().filter(|k| body.get(**k).is_some_and(|v| !v.is_null())).count();
    if given != 1 {
        return Err(ApiError::invalid("give exactly one of `credits`, `amount_usd` (a credit pack) or `plan` (a subscription)"));
    }
    if let Some(name) = body.get("plan").and_then(Value::as_str) {
        return plans.iter().find(|p| p.name == name).cloned().map(Purchase::Subscription).ok_or_else(|| {
            let names: Vec<&str> = plans.iter().map(|p| p.name.as_str()).collect();
            ApiError::invalid(format!("no plan `{name}`; plans: {}", if names.is_empty() { "none configured".into() } else { names.join(", ") }))
        });
    }
    let cents = if let Some(c) = body.get("credits").filter(|v| !v.is_null()) {
        let mc = parse_credits(c).map_err(ApiError::invalid)?;
        // The price of `mc` at USD_PER_CREDIT, in whole cents (rounded up: never sell below cost).
        let cents = rate.cents_for_millicredits(mc);
        (mc > 0).then_some(cents).ok_or_else(|| ApiError::invalid("`credits` must be positive"))?
    } else {
        let usd = body.get("amount_usd").and_then(|v| v.as_str().map(str::to_string).or_else(|| v.as_f64().map(|f| f.to_string()))).unwrap_or_default();
        crate::paypal::usd_cents(&usd).filter(|c| *c > 0).ok_or_else(|| ApiError::invalid("`amount_usd` must be a positive amount with at most 2 decimals"))?
    };
    if cents < bounds.min_cents || cents > bounds.max_cents {
        return Err(ApiError::invalid(format!(
            "a credit pack costs between ${:.2} and ${:.2}; this one would cost ${:.2}",
            bounds.min_cents as f64 / 100.0,
            bounds.max_cents as f64 / 100.0,
            cents as f64 / 100.0
        )));
    }
    Ok(Purchase::Credits { cents, mc: rate.millicredits_for_usd_cents(cents) })
}

/// `success_url`/`cancel_url`: where Stripe sends the buyer back. https only (http for a local
/// development host).
pub fn return_url(body: &serde_json::Map<String, Value>, field: &str) -> Result<String, ApiError> {
    let u = body.get(field).and_then(Value::as_str).unwrap_or("");
    let local = ["http://localhost", "http://127.0.0.1"].iter().any(|p| u.strip_prefix(p).is_some_and(|r| r.is_empty() || r.starts_with(':') || r.starts_with('/')));
    if (u.starts_with("https://") && u.len() > 8 || local) && u.len() <= 2000 && !u.chars().any(char::is_whitespace) {
        Ok(u.to_string())
    } else {
        Err(ApiError::invalid(format!("`{field}` must be an https URL (http only for localhost)")))
    }
}

/// The form of `POST /v1/checkout/sessions`: the key is named in `client_reference_id` and in
/// the metadata (of the session, and of the subscription, which Stripe copies to its invoices).
pub fn checkout_form(key_id: &str, purchase: &Purchase, success_url: &str, cancel_url: &str) -> Vec<(String, String)> {
    let mut f: Vec<(String, String)> = vec![
        ("success_url".into(), success_url.into()),
        ("cancel_url".into(), cancel_url.into()),
        ("client_reference_id".into(), key_id.into()),
        ("metadata[key_id]".into(), key_id.into()),
    ];
    match purchase {
        Purchase::Credits { cents, mc } => {
            let credits = crate::money::credits_string(*mc);
            f.extend([
                ("mode".into(), "payment".into()),
                ("line_items[0][quantity]".into(), "1".into()),
                ("line_items[0][price_data][currency]".into(), "usd".into()),
                ("line_items[0][price_data][unit_amount]".into(), cents.to_string()),
                ("line_items[0][price_data][product_data][name]".into(), format!("{credits} API credits")),
                ("metadata[credits]".into(), credits),
                ("payment_intent_data[metadata][key_id]".into(), key_id.into()),
            ]);
        }
        Purchase::Subscription(plan) => {
            f.extend([
                ("mode".into(), "subscription".into()),
                ("line_items[0][quantity]".into(), "1".into()),
                ("line_items[0][price]".into(), plan.price_id.clone()),
                ("metadata[plan]".into(), plan.name.clone()),
                ("subscription_data[metadata][key_id]".into(), key_id.into()),
                ("subscription_data[metadata][plan]".into(), plan.name.clone()),
                ("subscription_data[metadata][credits]".into(), crate::money::credits_string(plan.monthly_mc)),
            ]);
        }
    }
    f
}

/// `application/x-www-form-urlencoded` (RFC 3986 unreserved characters kept, the rest `%XX`).
pub fn form_encode(pairs: &[(String, String)]) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
                b' ' => "+".into(),
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    pairs.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect::<Vec<_>>().join("&")
}

/// What a subscription event means for a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscriptionAction {
    /// A paid invoice: its allowance credits once per invoice; the key moves to the plan.
    InvoicePaid { event_id: String, invoice_id: String, subscription_id: String, key_id: String, plan: Option<String>, amount_mc: i64, paid_cents: u64, payment_intent: Option<String> },
    /// The subscription ended: the key returns to the default plan (if it is still this one's).
    Ended { event_id: String, subscription_id: String, key_id: String },
    /// Checkout in subscription mode finished: the key's Stripe customer, for the Billing Portal.
    Started { event_id: String, key_id: String, customer: String, subscription_id: String },
    Ignore { event_id: String, reason: String },
}

fn meta<'a>(v: &'a Value, ptrs: &[&str]) -> Option<&'a Value> {
    ptrs.iter().find_map(|p| v.pointer(p).filter(|m| m.is_object()))
}

fn key_of(m: Option<&Value>) -> Option<String> {
    m.and_then(|m| m.get("key_id")).and_then(Value::as_str).filter(|k| crate::keys::is_key_id(k)).map(str::to_string)
}

/// The subscription events; `None` for any other event type.
pub fn interpret(event_id: &str, ty: &str, o: &Value, rate: &CreditRate) -> Option<SubscriptionAction> {
    let ignore = |reason: &str| Some(SubscriptionAction::Ignore { event_id: event_id.into(), reason: reason.into() });
    let id = |k: &str| o.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    match ty {
        "invoice.paid" => {
            // Current API versions copy the subscription's metadata to parent.subscription_details;
            // older ones to subscription_details.
            let m = meta(o, &["/parent/subscription_details/metadata", "/subscription_details/metadata"]);
            let subscription_id = o.pointer("/parent/subscription_details/subscription").or_else(|| o.get("subscription")).and_then(Value::as_str).unwrap_or("").to_string();
            let Some(key_id) = key_of(m) else { return ignore("invoice of a subscription that names no key_id in its metadata") };
            let paid_cents = o.get("amount_paid").and_then(Value::as_u64).unwrap_or(0);
            let tax: u64 = o.get("tax").and_then(Value::as_u64).unwrap_or(0)
                + o.get("total_taxes").and_then(Value::as_array).map(|t| t.iter().filter_map(|x| x.get("amount").and_then(Value::as_u64)).sum()).unwrap_or(0);
            let amount_mc = match m.and_then(|m| m.get("credits")).filter(|c| !c.is_null()) {
                Some(c) => parse_credits(c).unwrap_or(0),
                None if id("currency") == "usd" => rate.millicredits_for_usd_cents(paid_cents.saturating_sub(tax)),
                None => 0,
            };
            if paid_cents == 0 || amount_mc <= 0 {
                return ignore("invoice paid nothing, or its subscription names no credits and is not in usd");
            }
            let payment_intent = o
                .get("payment_intent")
                .and_then(Value::as_str)
                .or_else(|| o.pointer("/payments/data/0/payment/payment_intent").and_then(Value::as_str))
                .map(str::to_string);
            Some(SubscriptionAction::InvoicePaid {
                event_id: event_id.into(),
                invoice_id: id("id"),
                subscription_id,
                key_id,
                plan: m.and_then(|m| m.get("plan")).and_then(Value::as_str).map(str::to_string),
                amount_mc,
                paid_cents,
                payment_intent,
            })
        }
        "customer.subscription.deleted" => match key_of(o.get("metadata")) {
            Some(key_id) => Some(SubscriptionAction::Ended { event_id: event_id.into(), subscription_id: id("id"), key_id }),
            None => ignore("subscription names no key_id in its metadata"),
        },
        "checkout.session.completed" if id("mode") == "subscription" => match key_of(o.get("metadata")).or_else(|| Some(id("client_reference_id")).filter(|k| crate::keys::is_key_id(k))) {
            Some(key_id) => Some(SubscriptionAction::Started { event_id: event_id.into(), key_id, customer: id("customer"), subscription_id: id("subscription") }),
            None => ignore("subscription checkout names no key"),
        },
        "invoice.payment_failed" | "invoice.payment_action_required" => ignore("a failed payment changes nothing; Stripe retries, then ends the subscription"),
        _ => None,
    }
}

#[cfg(test)]
#[path = "stripe_billing_tests.rs"]
mod tests;
