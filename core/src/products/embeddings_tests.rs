//! Embeddings: the four input forms and bad input, the hold (the input bound), and the meter
//! against the samples (`fixtures/openai/embeddings.*`), with list prices restated here.

use super::*;
use crate::config::Secret;
use crate::metering::{Admitted, Billing};
use crate::error::ErrorKind;
use crate::money::credits_json;
use crate::ratelimit::RateState;

const FLOAT_BODY: &[u8] = include_bytes!("../../../fixtures/openai/embeddings.response.json");
const B64_BODY: &[u8] = include_bytes!("../../../fixtures/openai/embeddings.base64.response.json");
const REQUEST: &[u8] = include_bytes!("../../../fixtures/openai/embeddings.request.json");
/// USD per 1M tokens × 1e6 (genai-prices, LiteLLM).
const SMALL: u128 = 20_000;
const LARGE: u128 = 130_000;

fn product(body: &str) -> Result<EmbeddingsProduct, ApiError> {
    EmbeddingsProduct::price(parse(body.as_bytes())?, Endpoint { base_url: "http://mock/openai".into(), api_key: Secret::new("sk-test") })
}

/// Millicredits for pico-USD: × 1.8 ÷ 0.01 × 1000 ÷ 1e12, rounded up.
fn mc(pico: u128) -> i64 {
    (pico * 18).div_ceil(100_000_000) as i64
}

fn meter(body: &str) -> (Box<dyn Meter>, Billing) {
    let p = product(body).unwrap();
    let rate = CreditRate::default_rate();
    let (plan, units) = p.hold(&rate);
    let admitted = Admitted { sub_key: None, key_id: "key_1".into(), plan: "pro".into(), hold_mc: plan.fixed_mc, balance_after_mc: 1_000_000, granted_units: units, rate: RateState { limit: 100, remaining: 99, reset_ms: 1 }, class: "media".into() };
    let billing = Billing::new("req_emb", rate, &admitted);
    (Box::new(p).meter(billing.clone().into(), units), billing)
}

fn run(m: &mut Box<dyn Meter>, body: &[u8], end: End) -> Finish {
    m.start(&ProviderHead { status: 200, headers: vec![("content-type".into(), "application/json".into())] }).unwrap();
    for c in body.chunks(7) {
        assert!(m.push(c).is_empty());
    }
    m.finish(end)
}

#[test]
fn the_four_input_forms_and_their_bound() {
    // Strings: at most one token per UTF-8 byte ("é" is 2 bytes).
    assert_eq!(product(r#"{"model":"text-embedding-3-small","input":"héllo"}"#).unwrap().bound_tokens(), 6);
    assert_eq!(product(r#"{"model":"text-embedding-3-small","input":["ab","cde"]}"#).unwrap().bound_tokens(), 5);
    // Token ids: exactly their count.
    assert_eq!(product(r#"{"model":"text-embedding-3-small","input":[9906,1917]}"#).unwrap().bound_tokens(), 2);
    assert_eq!(product(r#"{"model":"openai/text-embedding-3-small","input":[[1,2,3],[4]]}"#).unwrap().bound_tokens(), 4);
    // A string longer than the per-input limit is bounded by it (the provider refuses longer).
    let long = "x".repeat(20_000);
    assert_eq!(product(&format!(r#"{{"model":"text-embedding-3-small","input":"{long}"}}"#)).unwrap().bound_tokens(), 8_191);
    // The fixture request: two strings, forwarded with their options.
    let p = EmbeddingsProduct::price(parse(REQUEST).unwrap(), Endpoint { base_url: "http://mock/openai".into(), api_key: Secret::new("sk-test") }).unwrap();
    assert_eq!(p.bound_tokens(), 40 + 2);
    let up = p.upstream(0);
    assert_eq!(up.url, "http://mock/openai/v1/embeddings");
    let sent: Value = serde_json::from_slice(&up.body).unwrap();
    assert_eq!(sent["dimensions"], 4);
    assert_eq!(sent["encoding_format"], "float");
    assert_eq!(p.hold(&CreditRate::default_rate()).0.fixed_mc, mc(42 * SMALL));
}

#[test]
fn bad_input_is_a_400_naming_the_field() {
    for (body, says) in [
        (r#"{"model":"text-embedding-3-small"}"#, "`input` is required"),
        (r#"{"model":"text-embedding-3-small","input":""}"#, "empty string"),
        (r#"{"model":"text-embedding-3-small","input":[]}"#, "empty array"),
        (r#"{"model":"text-embedding-3-small","input":["a",[1]]}"#, "input[1]"),
        (r#"{"model":"text-embedding-3-small","input":[[1],[]]}"#, "input[1]"),
        (r#"{"model":"text-embedding-3-small","input":[1,-2]}"#, "token ids"),
        (r#"{"model":"text-embedding-3-small","input":{"a":1}}"#, "`input` must be"),
        (r#"{"model":"text-embedding-3-small","input":"a","encoding_format":"int8"}"#, "encoding_format"),
        (r#"{"model":"text-embedding-3-small","input":"a","dimensions":0}"#, "dimensions"),
        (r#"{"model":"text-embedding-3-small","input":"a","dimensions":4000}"#, "exceeds"),
        (r#"{"model":"text-embedding-ada-002","input":"a","dimensions":8}"#, "only the text-embedding-3"),
        (r#"{"model":"text-embedding-3-small","input":"a","truncate":true}"#, "`truncate`"),
        (r#"{"model":"anthropic/x","input":"a"}"#, "openai/"),
    ] {
        let e = product(body).unwrap_err();
        assert_eq!(e.status(), 400, "{body}");
        assert!(e.message.contains(says), "{body}: {}", e.message);
    }
    let e = product(r#"{"model":"text-embedding-4","input":"a"}"#).unwrap_err();
    assert_eq!((e.status(), e.kind.clone()), (400, ErrorKind::UnknownModel));
    let many: Vec<&str> = vec!["a"; 2049];
    assert!(product(&json!({"model": "text-embedding-3-small", "input": many}).to_string()).unwrap_err().message.contains("2048"));
}

#[test]
fn float_and_base64_answers_are_charged_their_usage_and_passed_through() {
    for (answer, tokens) in [(FLOAT_BODY, 9u128), (B64_BODY, 5)] {
        let (mut m, billing) = meter(r#"{"model":"text-embedding-3-small","input":["The food was delicious","and the waiter"]}"#);
        let f = run(&mut m, answer, End::Complete);
        let metered = f.metered.unwrap();
        assert!(metered.exact);
        assert_eq!(metered.cost_pico_usd, tokens * SMALL);
        let a = f.answer.unwrap();
        let v: Value = serde_json::from_slice(&a.body).unwrap();
        let original: Value = serde_json::from_slice(answer).unwrap();
        assert_eq!(v["data"], original["data"], "vectors unchanged");
        assert_eq!(v["usage"], original["usage"]);
        assert_eq!(v["x_broker"]["credits_charged"], credits_json(mc(tokens * SMALL)));
        assert_eq!(v["x_broker"]["request_id"], billing.request_id);
    }
}

#[test]
fn a_cut_answer_is_billed_the_bound_and_garbage_releases() {
    let (mut m, _) = meter(r#"{"model":"text-embedding-3-large","input":"twelve bytes"}"#);
    let f = run(&mut m, &FLOAT_BODY[..40], End::Broken("reset".into()));
    let metered = f.metered.unwrap();
    assert_eq!((metered.exact, metered.cost_pico_usd), (false, 12 * LARGE));
    assert_eq!(f.answer.unwrap_err().status(), 502);
    let (mut m, _) = meter(r#"{"model":"text-embedding-3-large","input":"twelve bytes"}"#);
    let f = run(&mut m, br#"{"object":"chat.completion"}"#, End::Complete);
    assert!(f.metered.is_none());
    assert_eq!(f.answer.unwrap_err().status(), 502);
    // No usage in a list: the bound.
    let (mut m, _) = meter(r#"{"model":"text-embedding-3-large","input":"twelve bytes"}"#);
    let f = run(&mut m, br#"{"object":"list","data":[],"model":"text-embedding-3-large"}"#, End::Complete);
    assert_eq!(f.metered.unwrap().cost_pico_usd, 12 * LARGE);
}
