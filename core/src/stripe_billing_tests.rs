//! Checkout forms, plans and subscription events (shapes from Stripe's API reference: the
//! Invoice object's `parent.subscription_details`, older `subscription_details`).

use super::*;
use serde_json::json;

fn rate() -> CreditRate {
    CreditRate::default_rate()
}

fn plans() -> Vec<Plan> {
    parse_plans("pro-monthly:price_pro_monthly:2000:pro").unwrap()
}

const BOUNDS: PackBounds = PackBounds { min_cents: 100, max_cents: 100_000 };

fn body(v: Value) -> serde_json::Map<String, Value> {
    v.as_object().unwrap().clone()
}

#[test]
fn plans_parse_and_name_their_mistakes() {
    assert_eq!(plans()[0], Plan { name: "pro-monthly".into(), price_id: "price_pro_monthly".into(), monthly_mc: 2_000_000, rate_plan: "pro".into() });
    assert!(parse_plans("").unwrap().is_empty());
    for bad in ["pro", "pro:prod_1:10:pro", "pro:price_1:0:pro", "pro:price_1:ten:pro"] {
        assert!(parse_plans(bad).is_err(), "{bad}");
    }
}

#[test]
fn a_pack_is_priced_by_credits_or_dollars_within_bounds() {
    assert_eq!(purchase(&body(json!({"credits": 2000})), &rate(), BOUNDS, &plans()).unwrap(), Purchase::Credits { cents: 2000, mc: 2_000_000 });
    assert_eq!(purchase(&body(json!({"amount_usd": "12.50"})), &rate(), BOUNDS, &plans()).unwrap(), Purchase::Credits { cents: 1250, mc: 1_250_000 });
    assert_eq!(purchase(&body(json!({"plan": "pro-monthly"})), &rate(), BOUNDS, &plans()).unwrap(), Purchase::Subscription(plans()[0].clone()));
    for bad in [json!({}), json!({"credits": 10, "plan": "pro-monthly"}), json!({"credits": 1}), json!({"credits": 10_000_001}), json!({"amount_usd": "1.005"}), json!({"plan": "gold"}), json!({"credits": -5})] {
        assert_eq!(purchase(&body(bad.clone()), &rate(), BOUNDS, &plans()).unwrap_err().status(), 400, "{bad}");
    }
}

#[test]
fn return_urls_are_https_or_local() {
    for ok in ["https://example.com/done", "http://localhost:5173/portal", "http://127.0.0.1/x"] {
        assert!(return_url(&body(json!({"success_url": ok})), "success_url").is_ok(), "{ok}");
    }
    for bad in ["http://example.com", "javascript:alert(1)", "https://", "http://localhost.evil.com/", ""] {
        assert!(return_url(&body(json!({"success_url": bad})), "success_url").is_err(), "{bad}");
    }
}

#[test]
fn checkout_forms_name_the_key_everywhere_stripe_copies_it() {
    let pack = form_encode(&checkout_form("key_0123456789abcdef", &Purchase::Credits { cents: 2000, mc: 2_000_000 }, "https://a.b/ok?x=1&y=2", "https://a.b/no"));
    for part in ["mode=payment", "client_reference_id=key_0123456789abcdef", "metadata%5Bkey_id%5D=key_0123456789abcdef", "metadata%5Bcredits%5D=2000", "line_items%5B0%5D%5Bprice_data%5D%5Bunit_amount%5D=2000", "success_url=https%3A%2F%2Fa.b%2Fok%3Fx%3D1%26y%3D2"] {
        assert!(pack.contains(part), "{part} in {pack}");
    }
    let sub = form_encode(&checkout_form("key_0123456789abcdef", &Purchase::Subscription(plans()[0].clone()), "https://a.b/ok", "https://a.b/no"));
    for part in ["mode=subscription", "line_items%5B0%5D%5Bprice%5D=price_pro_monthly", "subscription_data%5Bmetadata%5D%5Bkey_id%5D=key_0123456789abcdef", "subscription_data%5Bmetadata%5D%5Bcredits%5D=2000"] {
        assert!(sub.contains(part), "{part} in {sub}");
    }
    assert_eq!(form_encode(&[("a b".into(), "é&=".into())]), "a+b=%C3%A9%26%3D");
}

fn two_plans() -> Vec<Plan> {
    parse_plans("pro-monthly:price_pro_monthly_2000:2000:pro, max-monthly:price_max_monthly_5000:5000:bulk").unwrap()
}

const CYCLE: &str = include_str!("../../fixtures/stripe/invoice.paid.subscription_cycle.json");

fn invoice(reason: &str, lines: Value) -> Value {
    json!({"id": "in_1", "currency": "usd", "amount_paid": 1500, "total": 1500, "billing_reason": reason, "lines": {"data": lines},
        "parent": {"subscription_details": {"subscription": "sub_1", "metadata": {"key_id": "key_0123456789abcdef", "plan": "pro-monthly", "credits": "2000"}}},
        "payments": {"data": [{"payment": {"payment_intent": "pi_1"}}]}})
}

#[test]
fn a_renewal_credits_the_plan_of_the_price_it_paid_not_the_checkouts_metadata() {
    let ev: Value = serde_json::from_str(CYCLE).unwrap();
    let action = interpret(ev["id"].as_str().unwrap(), "invoice.paid", &ev["data"]["object"], &two_plans());
    // The subscription was bought as pro-monthly (its metadata still says so); it now bills max.
    let Some(SubscriptionAction::InvoicePaid { amount_mc, key_id, subscription_id, plan, payment_intent, paid_cents, .. }) = action else { panic!("{action:?}") };
    assert_eq!((amount_mc, plan.name.as_str(), plan.rate_plan.as_str(), paid_cents), (5_000_000, "max-monthly", "bulk", 5000));
    assert_eq!((key_id.as_str(), subscription_id.as_str(), payment_intent.as_deref()), ("key_0123456789abcdef", "sub_1S0kQ3LmN8pRtUvWc5Dd6EeF", Some("pi_3SAb2DLmN8pRtUvW1q2W3e4R")));
}

#[test]
fn only_invoices_that_start_or_renew_a_period_credit() {
    let pro = json!([{"amount": 2000, "quantity": 1, "pricing": {"price_details": {"price": "price_pro_monthly_2000"}}, "parent": {"subscription_item_details": {"proration": false}}}]);
    for reason in ["subscription_create", "subscription_cycle"] {
        assert!(matches!(interpret("e", "invoice.paid", &invoice(reason, pro.clone()), &two_plans()), Some(SubscriptionAction::InvoicePaid { amount_mc: 2_000_000, .. })), "{reason}");
    }
    // An upgrade's proration: the unused pro time back, the rest of the period at max.
    let proration = json!([
        {"amount": -1000, "quantity": 1, "pricing": {"price_details": {"price": "price_pro_monthly_2000"}}, "parent": {"subscription_item_details": {"proration": true}}},
        {"amount": 2500, "quantity": 1, "pricing": {"price_details": {"price": "price_max_monthly_5000"}}, "parent": {"subscription_item_details": {"proration": true}}}
    ]);
    for reason in ["subscription_update", "manual", "subscription_threshold", ""] {
        assert!(matches!(interpret("e", "invoice.paid", &invoice(reason, proration.clone()), &two_plans()), Some(SubscriptionAction::Ignore { .. })), "{reason}");
    }
    // Proration lines on a renewal (billed in arrears) buy nothing; the period line does.
    let mut mixed = proration.as_array().unwrap().clone();
    mixed.push(json!({"amount": 5000, "quantity": 1, "price": {"id": "price_max_monthly_5000"}, "proration": false}));
    let got = interpret("e", "invoice.paid", &invoice("subscription_cycle", json!(mixed)), &two_plans());
    assert!(matches!(got, Some(SubscriptionAction::InvoicePaid { amount_mc: 5_000_000, .. })), "older line shape, {got:?}");
    // A renewal paid from the customer's Stripe balance (a downgrade's credit) still renews.
    let mut from_balance = invoice("subscription_cycle", pro.clone());
    from_balance["amount_paid"] = json!(0);
    assert!(matches!(interpret("e", "invoice.paid", &from_balance, &two_plans()), Some(SubscriptionAction::InvoicePaid { amount_mc: 2_000_000, .. })));
    let mut trial = from_balance;
    trial["total"] = json!(0);
    assert!(matches!(interpret("e", "invoice.paid", &trial, &two_plans()), Some(SubscriptionAction::Ignore { .. })), "a trial buys nothing");
    let gold = json!([{"amount": 9900, "quantity": 1, "pricing": {"price_details": {"price": "price_gold_9900"}}}]);
    let Some(SubscriptionAction::Unmatched { reason, paid_cents, .. }) = interpret("e", "invoice.paid", &invoice("subscription_cycle", gold), &two_plans()) else { panic!() };
    assert!(reason.contains("price_gold_9900") && paid_cents == 1500, "{reason}");
    let nameless = json!({"id": "in_3", "currency": "usd", "amount_paid": 100, "billing_reason": "subscription_cycle", "parent": {"subscription_details": {"metadata": {}}}});
    assert!(matches!(interpret("evt_3", "invoice.paid", &nameless, &two_plans()), Some(SubscriptionAction::Ignore { .. })));
}

#[test]
fn a_switch_moves_the_key_to_the_new_plans_limits() {
    let sub = json!({"id": "sub_1", "status": "active", "metadata": {"key_id": "key_0123456789abcdef"}, "items": {"data": [{"price": {"id": "price_max_monthly_5000"}}]}});
    let Some(SubscriptionAction::PlanChanged { plan, .. }) = interpret("e", "customer.subscription.updated", &sub, &two_plans()) else { panic!() };
    assert_eq!(plan.rate_plan, "bulk");
    let mut past_due = sub.clone();
    past_due["status"] = json!("past_due");
    assert!(matches!(interpret("e", "customer.subscription.updated", &past_due, &two_plans()), Some(SubscriptionAction::Ignore { .. })));
}

#[test]
fn other_subscription_events() {
    let deleted = json!({"id": "sub_1", "metadata": {"key_id": "key_0123456789abcdef"}});
    assert!(matches!(interpret("e", "customer.subscription.deleted", &deleted, &plans()), Some(SubscriptionAction::Ended { .. })));
    assert!(matches!(interpret("e", "invoice.payment_failed", &json!({}), &plans()), Some(SubscriptionAction::Ignore { .. })));
    let started = json!({"id": "cs_1", "mode": "subscription", "customer": "cus_1", "subscription": "sub_1", "client_reference_id": "key_0123456789abcdef", "metadata": {}});
    assert_eq!(
        interpret("e", "checkout.session.completed", &started, &plans()),
        Some(SubscriptionAction::Started { event_id: "e".into(), key_id: "key_0123456789abcdef".into(), customer: "cus_1".into(), subscription_id: "sub_1".into() })
    );
    assert_eq!(interpret("e", "checkout.session.completed", &json!({"mode": "payment"}), &plans()), None, "a pack is stripe.rs's");
}
