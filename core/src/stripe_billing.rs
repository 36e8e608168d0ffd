//! Buying inside the product: Stripe Checkout Sessions for credit packs and subscriptions, the
//! Billing Portal, and what subscription events mean for a key.
//!
//! - A **credit pack** is a Checkout Session in `payment` mode whose `metadata.credits` says what
//!   it buys; the existing `checkout.session.completed` handling credits it.
//! - A **subscription** is a Checkout Session in `subscription` mode for a configured plan
//!   (`SUBSCRIPTION_PLANS`), the key named in the subscription's metadata. An `invoice.paid` that
//!   starts or renews a period (`billing_reason` `subscription_create` / `subscription_cycle`)
//!   credits, once per invoice, the allowance of the plan whose price its lines bill (never the
//!   checkout's metadata, which a switch in the Billing Portal leaves stale), and moves the key to
//!   that plan's rate limits; a switch's proration invoice credits nothing; `customer.subscription.
//!   updated` moves the key to the new plan's limits; `customer.subscription.deleted` returns it to
//!   `DEFAULT_PLAN`.
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
        crate::money::usd_cents(&usd).filter(|c| *c > 0).ok_or_else(|| ApiError::invalid("`amount_usd` must be a positive amount with at most 2 decimals"))?
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
    /// An invoice that starts or renews a period: the allowance of the plan whose price it paid,
    /// once per invoice; the key moves to that plan's rate limits.
    InvoicePaid { event_id: String, invoice_id: String, subscription_id: String, key_id: String, plan: Plan, amount_mc: i64, paid_cents: u64, payment_intent: Option<String> },
    /// The subscription now bills `plan`'s price (a switch in the Billing Portal): the key moves
    /// to its rate limits at once; its credits come with the next period's invoice.
    PlanChanged { event_id: String, subscription_id: String, key_id: String, plan: Plan },
    /// The subscription ended: the key returns to the default plan (if it is still this one's).
    Ended { event_id: String, subscription_id: String, key_id: String },
    /// Checkout in subscription mode finished: the key's Stripe customer, for the Billing Portal.
    Started { event_id: String, key_id: String, customer: String, subscription_id: String },
    /// Money was received for a period whose price is in no configured plan: kept for an admin.
    Unmatched { event_id: String, invoice_id: String, key_id: String, paid_cents: u64, reason: String },
    Ignore { event_id: String, reason: String },
}

fn meta<'a>(v: &'a Value, ptrs: &[&str]) -> Option<&'a Value> {
    ptrs.iter().find_map(|p| v.pointer(p).filter(|m| m.is_object()))
}

fn key_of(m: Option<&Value>) -> Option<String> {
    m.and_then(|m| m.get("key_id")).and_then(Value::as_str).filter(|k| crate::keys::is_key_id(k)).map(str::to_string)
}

/// Billing reasons of an invoice that opens a period of the subscription (its first, or a
/// renewal). A plan switch's proration (`subscription_update`), a threshold or a manual invoice
/// buys no month of credits.
pub const PERIOD_REASONS: [&str; 2] = ["subscription_create", "subscription_cycle"];

/// The price of an invoice line: `pricing.price_details.price` (API 2025-03-31 and later) or
/// `price.id` (earlier); and whether the line is a proration (`parent.subscription_item_details.
/// proration`, or the earlier top-level `proration`).
fn line_price(line: &Value) -> (Option<&str>, bool) {
    let price = line.pointer("/pricing/price_details/price").or_else(|| line.pointer("/price/id")).and_then(Value::as_str);
    let proration = ["/parent/subscription_item_details/proration", "/parent/invoice_item_details/proration", "/proration"]
        .iter()
        .find_map(|p| line.pointer(p).and_then(Value::as_bool))
        .unwrap_or(false);
    (price, proration)
}

/// The plans an invoice's period lines bill (prorations left out), with their quantities, and
/// the price ids no plan has.
fn period_plans<'p>(invoice: &Value, plans: &'p [Plan]) -> (Vec<(&'p Plan, i64)>, Vec<String>) {
    let lines = invoice.pointer("/lines/data").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let (mut found, mut unknown) = (Vec::new(), Vec::new());
    for line in lines {
        let (price, proration) = line_price(line);
        let Some(price) = price.filter(|_| !proration) else { continue };
        let qty = line.get("quantity").and_then(Value::as_i64).unwrap_or(1).max(0);
        match plans.iter().find(|p| p.price_id == price) {
            Some(plan) => found.push((plan, qty)),
            None => unknown.push(price.to_string()),
        }
    }
    (found, unknown)
}

/// The subscription events; `None` for any other event type.
pub fn interpret(event_id: &str, ty: &str, o: &Value, plans: &[Plan]) -> Option<SubscriptionAction> {
    let ignore = |reason: &str| Some(SubscriptionAction::Ignore { event_id: event_id.into(), reason: reason.into() });
    let id = |k: &str| o.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    match ty {
        "invoice.paid" => {
            // Current API versions copy the subscription's metadata to parent.subscription_details;
            // older ones to subscription_details.
            let m = meta(o, &["/parent/subscription_details/metadata", "/subscription_details/metadata"]);
            let subscription_id = o.pointer("/parent/subscription_details/subscription").or_else(|| o.get("subscription")).and_then(Value::as_str).unwrap_or("").to_string();
            let Some(key_id) = key_of(m) else { return ignore("invoice of a subscription that names no key_id in its metadata") };
            let reason = id("billing_reason");
            if !PERIOD_REASONS.contains(&reason.as_str()) {
                return ignore(&format!("billing_reason `{reason}` starts or renews no period: no credits (a plan switch's credits come with the next period)"));
            }
            let paid_cents = o.get("amount_paid").and_then(Value::as_u64).unwrap_or(0);
            // Paid by card or from the customer's Stripe balance (a downgrade's proration credit):
            // either way money was received for the period; a trial or a 100 % coupon bills nothing.
            let billed = o.get("total").and_then(Value::as_i64).unwrap_or(0);
            if paid_cents == 0 && billed <= 0 {
                return ignore("invoice billed nothing (a trial or a free period)");
            }
            let (bought, unknown) = period_plans(o, plans);
            let amount_mc: i64 = bought.iter().map(|(p, qty)| p.monthly_mc.saturating_mul(*qty)).sum();
            let Some((plan, _)) = bought.first().filter(|_| amount_mc > 0) else {
                let reason = format!("the invoice bills no price of SUBSCRIPTION_PLANS (prices: {})", if unknown.is_empty() { "none".into() } else { unknown.join(", ") });
                return Some(SubscriptionAction::Unmatched { event_id: event_id.into(), invoice_id: id("id"), key_id, paid_cents, reason });
            };
            let payment_intent = o
                .get("payment_intent")
                .and_then(Value::as_str)
                .or_else(|| o.pointer("/payments/data/0/payment/payment_intent").and_then(Value::as_str))
                .map(str::to_string);
            Some(SubscriptionAction::InvoicePaid { event_id: event_id.into(), invoice_id: id("id"), subscription_id, key_id, plan: (*plan).clone(), amount_mc, paid_cents, payment_intent })
        }
        "customer.subscription.updated" => {
            let Some(key_id) = key_of(o.get("metadata")) else { return ignore("subscription names no key_id in its metadata") };
            let items = o.pointer("/items/data").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
            let plan = items.iter().filter_map(|i| i.pointer("/price/id").and_then(Value::as_str)).find_map(|price| plans.iter().find(|p| p.price_id == price));
            let active = ["active", "trialing"].contains(&id("status").as_str());
            match plan {
                Some(plan) if active => Some(SubscriptionAction::PlanChanged { event_id: event_id.into(), subscription_id: id("id"), key_id, plan: plan.clone() }),
                _ => ignore("the subscription is not active on a price of SUBSCRIPTION_PLANS"),
            }
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
