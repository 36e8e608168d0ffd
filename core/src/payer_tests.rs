//! The payer kinds against figures computed by hand from the list prices
//! (/work/shared/prices/REFERENCE.md) and what a client is documented to see
//! (docs/operations.md: a RapidAPI call shows `"billed_by": "rapidapi"` instead of credit figures).

use super::*;
use crate::metering::{CallMeta, Units};
use crate::provider::Provider;
use crate::ratelimit::RateState;
use crate::usage::Usage;

const RETAIN: Retention = Retention { ledger_keep: 10_000, stats_ttl_secs: 86_400 };

/// gpt-4o-mini, 1,000 tokens in at $0.15/M and 500 out at $0.60/M: $0.00015 + $0.0003 =
/// $0.00045 = 450 micro-USD = 450,000,000 pico-USD.
fn gpt_4o_mini_call() -> Metered {
    Metered::exact(450_000_000, Units::Tokens(Usage { input: 1_000, output: 500, ..Usage::default() }))
}

fn credits(hold_mc: i64, balance_after_mc: i64) -> Bill {
    let admitted = Admitted { sub_key: None, key_id: "key_1".into(), plan: "pro".into(), hold_mc, balance_after_mc, granted_units: 500, rate: RateState { limit: 100, remaining: 99, reset_ms: 1 }, class: "ai".into() };
    Bill::from(Billing::new("req_k", CreditRate::default_rate(), &admitted))
}

fn rapid() -> Bill {
    let call = RapidCall { user: "jane".into(), subscription: "BASIC".into(), label: "openai/gpt-4o-mini".into() };
    Bill { request_id: "req_r".into(), account: Account::RapidApi(call) }
}

fn names(headers: &[(String, String)]) -> Vec<&str> {
    headers.iter().map(|(k, _)| k.as_str()).collect()
}

#[test]
fn a_key_pays_the_list_price_in_credits_and_sees_it() {
    // $0.00045 × 1.8 (margin) ÷ $0.01 a credit = 0.081 credits = 81 mc, from a hold of 200 mc
    // on a balance of 1,000 (800 left while held): 919 mc remain.
    let b = credits(200, 800);
    let c = b.charge(gpt_4o_mini_call().cost_pico_usd);
    assert_eq!((c.charged_mc, c.remaining_mc, c.over_hold_mc), (81, 919, 0));
    assert_eq!(b.credit_headers(&c), [("x-credits-charged".to_string(), "0.081".to_string()), ("x-credits-remaining".to_string(), "0.919".to_string())]);
    assert_eq!(b.pending_headers()[1..], [("x-credits-held".to_string(), "0.2".to_string()), ("x-credits-remaining".to_string(), "0.8".to_string())]);
    assert_eq!(b.broker_json(&c), json!({"request_id": "req_k", "credits_charged": 0.081, "credits_remaining": 0.919}));
    let Closing::Credits(s) = b.settle(&gpt_4o_mini_call(), 5, RETAIN) else { panic!("a key's call settles its credits") };
    assert_eq!((s.request_id.as_str(), s.charge_mc, s.cost_usd_micro, s.units), ("req_k", 81, 450, 1_500));
}

#[test]
fn a_rapidapi_call_shows_no_credit_figures_and_records_its_list_price() {
    let b = rapid();
    let c = b.charge(gpt_4o_mini_call().cost_pico_usd);
    for headers in [b.credit_headers(&c), b.pending_headers()] {
        assert!(names(&headers).iter().all(|h| !h.starts_with("x-credits")), "{headers:?}");
    }
    assert_eq!(b.broker_json(&c), json!({"request_id": "req_r", "billed_by": "rapidapi"}));
    assert_eq!(Value::Object(b.native_fields(&c)), json!({"billed_by": "rapidapi"}));
    // What RapidAPI's analytics get: the provider cost at list price and the tokens, for the
    // user and the subscription; no credits (nothing was held).
    let expected = RapidSettlement { user: "jane".into(), plan: "BASIC".into(), now_ms: 5, label: "openai/gpt-4o-mini".into(), units: 1_500, cost_usd_micro: 450, retention: RETAIN };
    assert_eq!(b.settle(&gpt_4o_mini_call(), 5, RETAIN), Closing::RapidApi(Some(expected)));
    assert_eq!(b.hold_mc(), 0);
}

#[test]
fn a_call_sent_but_never_answered_charges_the_hold_only_where_one_was_taken() {
    let held = credits(540, 460).charge_hold("no answer head within 600000 ms", 9, RETAIN);
    assert_eq!(held.charge_mc(), 540);
    let e = credits(540, 460).head_timeout_error("no answer head within 600000 ms", 540);
    assert_eq!((e.status(), e.details.as_ref().map(|d| d["credits_charged"].clone())), (504, Some(json!(0.54))));
    // RapidAPI: nothing was held, no cost is known: nothing recorded, no credit figures shown.
    assert_eq!(rapid().charge_hold("x", 9, RETAIN), Closing::RapidApi(None));
    assert_eq!(rapid().release("the provider answered 500", 9, RETAIN), Closing::RapidApi(None));
    let e = rapid().head_timeout_error("no answer head within 600000 ms", 0);
    assert_eq!((e.status(), e.details), (504, None));
    assert!(!e.message.contains("credits"), "{}", e.message);
}

/// A store whose every answer is lost on the way back (the script may have run).
struct Lost;

impl Store for Lost {
    async fn eval(&self, _: &crate::scripts::Script, _: Vec<String>) -> Result<Value, ApiError> {
        Err(ApiError::unavailable("redis unreachable"))
    }
    async fn command(&self, _: Vec<Value>) -> Result<Value, ApiError> {
        Err(ApiError::unavailable("redis unreachable"))
    }
    async fn pipeline(&self, _: Vec<Vec<Value>>) -> Result<Vec<Value>, ApiError> {
        Err(ApiError::unavailable("redis unreachable"))
    }
}

#[test]
fn a_lost_admission_answer_releases_what_a_key_may_have_held_and_fails_closed() {
    let limits = RateLimits::parse("free:ai=10/3600, anonymous=5/900").unwrap_or_else(|e| panic!("{e}"));
    let meta = CallMeta { provider: Provider::OpenAi, model: "gpt-4o-mini".into(), product: "chat" };
    let facts = CallFacts { now_ms: 7, request_id: "req_lost", class: "ai", client_ip: "203.0.113.1", limits: &limits, hold: HoldPlan::fixed(200, 500).0, units: 500, meta: &meta, rate: CreditRate::default_rate(), retention: RETAIN, controls: &Default::default() };
    let Err(refused) = pollster::block_on(Payer::Key("sk-test".into()).admit(&Lost, &facts)) else { panic!("admitted without a store") };
    assert_eq!(refused.error.status(), 503);
    let Some(Closing::Credits(release)) = refused.release else { panic!("no release scheduled") };
    assert_eq!((release.request_id.as_str(), release.charge_mc), ("req_lost", 0));
    let rapid = Payer::RapidApi { user: "jane".into(), subscription: "BASIC".into(), rate_plan: "free".into() };
    let Err(refused) = pollster::block_on(rapid.admit(&Lost, &facts)) else { panic!("admitted without a store") };
    assert_eq!((refused.error.status(), refused.release.is_none()), (503, true), "RapidAPI holds nothing: nothing to release");
}
