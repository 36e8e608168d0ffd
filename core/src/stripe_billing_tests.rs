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

#[test]
fn a_paid_invoice_credits_its_allowance_for_the_key_in_either_metadata_place() {
    let current = json!({"id": "in_1", "currency": "usd", "amount_paid": 2400, "total_taxes": [{"amount": 400}],
        "parent": {"subscription_details": {"subscription": "sub_1", "metadata": {"key_id": "key_0123456789abcdef", "plan": "pro-monthly"}}},
        "payments": {"data": [{"payment": {"payment_intent": "pi_1"}}]}});
    let Some(SubscriptionAction::InvoicePaid { amount_mc, key_id, subscription_id, plan, payment_intent, .. }) = interpret("evt_1", "invoice.paid", &current, &rate()) else { panic!() };
    assert_eq!((amount_mc, key_id.as_str(), subscription_id.as_str()), (2_000_000, "key_0123456789abcdef", "sub_1"), "amount_paid less tax");
    assert_eq!((plan.as_deref(), payment_intent.as_deref()), (Some("pro-monthly"), Some("pi_1")));
    let older = json!({"id": "in_2", "currency": "eur", "amount_paid": 999, "subscription": "sub_2", "payment_intent": "pi_2",
        "subscription_details": {"metadata": {"key_id": "key_0123456789abcdef", "credits": "1500"}}});
    let Some(SubscriptionAction::InvoicePaid { amount_mc, .. }) = interpret("evt_2", "invoice.paid", &older, &rate()) else { panic!() };
    assert_eq!(amount_mc, 1_500_000, "metadata.credits, whatever the currency");
    let nameless = json!({"id": "in_3", "currency": "usd", "amount_paid": 100, "parent": {"subscription_details": {"metadata": {}}}});
    assert!(matches!(interpret("evt_3", "invoice.paid", &nameless, &rate()), Some(SubscriptionAction::Ignore { .. })));
}

#[test]
fn other_subscription_events() {
    let deleted = json!({"id": "sub_1", "metadata": {"key_id": "key_0123456789abcdef"}});
    assert!(matches!(interpret("e", "customer.subscription.deleted", &deleted, &rate()), Some(SubscriptionAction::Ended { .. })));
    assert!(matches!(interpret("e", "invoice.payment_failed", &json!({}), &rate()), Some(SubscriptionAction::Ignore { .. })));
    let started = json!({"id": "cs_1", "mode": "subscription", "customer": "cus_1", "subscription": "sub_1", "client_reference_id": "key_0123456789abcdef", "metadata": {}});
    assert_eq!(
        interpret("e", "checkout.session.completed", &started, &rate()),
        Some(SubscriptionAction::Started { event_id: "e".into(), key_id: "key_0123456789abcdef".into(), customer: "cus_1".into(), subscription_id: "sub_1".into() })
    );
    assert_eq!(interpret("e", "checkout.session.completed", &json!({"mode": "payment"}), &rate()), None, "a pack is stripe.rs's");
}
