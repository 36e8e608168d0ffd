//! Images: parsing and bad input, holds, and the meter against the providers' samples
//! (`fixtures/openai/images-generations.*`), with list prices restated here.

use super::*;
use crate::config::Secret;
use crate::metering::{Admitted, Billing};
use crate::money::credits_json;
use crate::ratelimit::RateState;

const TODAY: &str = "2026-11-27";
const GPT_IMAGE_BODY: &[u8] = include_bytes!("../../../fixtures/openai/images-generations.gpt-image-1.response.json");
const B64_BODY: &[u8] = include_bytes!("../../../fixtures/openai/images-generations.b64.response.json");
const URL_BODY: &[u8] = include_bytes!("../../../fixtures/openai/images-generations.response.json");
const DALLE_REQUEST: &[u8] = include_bytes!("../../../fixtures/openai/images-generations.request.json");
const PROMPT: &str = "A watercolor lighthouse on a rocky coast at dawn";

fn rate() -> CreditRate {
    CreditRate::default_rate()
}

/// Millicredits for pico-USD: × 1.8 ÷ 0.01 × 1000 ÷ 1e12, rounded up.
fn mc(pico: u128) -> i64 {
    (pico * 18).div_ceil(100_000_000) as i64
}

fn endpoint() -> Endpoint {
    Endpoint { base_url: "http://mock/openai".into(), api_key: Secret::new("sk-test") }
}

fn product(route: ImageRoute, body: &str) -> Result<ImagesProduct, ApiError> {
    let req = match route {
        ImageRoute::OpenAiCompatible => parse_openai(body.as_bytes()),
        ImageRoute::Native => parse_native(body.as_bytes()),
    }?;
    ImagesProduct::price(req, TODAY, endpoint())
}

fn request(model: &str, n: u64, extra: &str) -> String {
    format!(r#"{{"model":"{model}","prompt":"{PROMPT}","n":{n}{extra}}}"#)
}

/// The meter of an admitted call (10,000 credits before the hold) and its billing.
fn meter(route: ImageRoute, body: &str) -> (Box<dyn Meter>, Billing) {
    let p = product(route, body).unwrap();
    let (plan, units) = p.hold(&rate());
    let admitted = Admitted { sub_key: None, key_id: "key_1".into(), plan: "pro".into(), hold_mc: plan.fixed_mc, balance_after_mc: 10_000_000 - plan.fixed_mc, granted_units: units, rate: RateState { limit: 100, remaining: 99, reset_ms: 1 }, class: "media".into() };
    let billing = Billing::new("req_img", rate(), &admitted);
    (Box::new(p).meter(billing.clone().into(), units), billing)
}

fn run(m: &mut Box<dyn Meter>, body: &[u8], end: End) -> Finish {
    m.start(&ProviderHead { status: 200, headers: vec![("content-type".into(), "application/json".into())] }).unwrap();
    for c in body.chunks(5) {
        assert!(m.push(c).is_empty(), "a whole answer is sent at the end");
    }
    m.finish(end)
}

fn json_of(f: &Finish) -> Value {
    serde_json::from_slice(&f.answer.as_ref().unwrap().body).unwrap()
}

#[test]
fn the_openai_shape_is_forwarded_with_only_checked_fields() {
    let p = product(ImageRoute::OpenAiCompatible, &request("gpt-image-1.5", 2, r#","size":"1024x1536","quality":"high","output_format":"webp","output_compression":80,"background":"opaque","moderation":"low","user":"u1","response_format":"b64_json""#)).unwrap();
    let up = p.upstream(2);
    assert_eq!(up.url, "http://mock/openai/v1/images/generations");
    assert!(up.headers.contains(&("authorization".into(), "Bearer sk-test".into())));
    let sent: Value = serde_json::from_slice(&up.body).unwrap();
    assert_eq!(sent, json!({"model":"gpt-image-1.5","prompt":PROMPT,"n":2,"size":"1024x1536","quality":"high","output_format":"webp","output_compression":80,"background":"opaque","moderation":"low","user":"u1"}));
    assert_eq!((p.class(), p.meta().product, p.error_shape()), ("media", "image", ErrorShape::OpenAi));
    // The native shape, with a provider prefix on the model.
    let p = product(ImageRoute::Native, r#"{"provider":"openai","model":"openai/gpt-image-2","prompt":"x"}"#).unwrap();
    assert_eq!((p.model.model, p.req.n, p.error_shape()), ("gpt-image-2", 1, ErrorShape::Native));
}

#[test]
fn bad_input_is_a_400_naming_the_problem() {
    let e = product(ImageRoute::OpenAiCompatible, std::str::from_utf8(DALLE_REQUEST).unwrap()).unwrap_err();
    assert!(e.message.contains("`style`"), "dall-e-3's own field: {}", e.message);
    let long = "x".repeat(IMAGE_PROMPT_MAX_CHARS + 1);
    for (route, body, needle) in [
        (ImageRoute::OpenAiCompatible, request("gpt-image-1.5", 0, ""), "`n`"),
        (ImageRoute::OpenAiCompatible, request("gpt-image-1.5", 11, ""), "`n`"),
        (ImageRoute::OpenAiCompatible, request("gpt-image-1.5", 1, r#","size":"512x512""#), "`size` `512x512`"),
        (ImageRoute::OpenAiCompatible, request("gpt-image-1.5", 1, r#","size":"1792x1024""#), "`size`"),
        (ImageRoute::OpenAiCompatible, request("gpt-image-1.5", 1, r#","quality":"hd""#), "`quality` `hd`"),
        (ImageRoute::OpenAiCompatible, request("gpt-image-1.5", 1, r#","output_format":"gif""#), "`output_format` `gif`"),
        (ImageRoute::OpenAiCompatible, request("gpt-image-1.5", 1, r#","response_format":"url""#), "`url`"),
        (ImageRoute::OpenAiCompatible, request("gpt-image-1.5", 1, r#","stream":true"#), "`stream`"),
        (ImageRoute::OpenAiCompatible, request("gpt-image-1.5", 1, r#","output_compression":50"#), "output_compression"),
        (ImageRoute::OpenAiCompatible, request("gpt-image-1.5", 1, r#","output_format":"jpeg","background":"transparent""#), "transparent"),
        (ImageRoute::OpenAiCompatible, request("gpt-image-2", 1, r#","background":"transparent""#), "transparent background"),
        (ImageRoute::OpenAiCompatible, r#"{"prompt":"x"}"#.into(), "dall-e-2"),
        (ImageRoute::OpenAiCompatible, r#"{"model":"gpt-image-2","prompt":"  "}"#.into(), "`prompt` must not be empty"),
        (ImageRoute::OpenAiCompatible, format!(r#"{{"model":"gpt-image-2","prompt":"{long}"}}"#), "at most 32000"),
        (ImageRoute::OpenAiCompatible, request("dall-e-3", 1, ""), "2026-05-12"),
        (ImageRoute::OpenAiCompatible, request("gpt-image-1", 1, ""), "2026-10-23"),
        (ImageRoute::OpenAiCompatible, request("gpt-image-9", 1, ""), "not offered"),
        (ImageRoute::Native, request("gpt-image-2", 1, r#","provider":"stability""#), "`provider`"),
        (ImageRoute::Native, request("gpt-image-2", 1, r#","user":"u""#), "`user` is not supported on /v1/image"),
        (ImageRoute::Native, "not json".into(), "not valid JSON"),
    ] {
        let e = product(route, &body).err().unwrap_or_else(|| panic!("accepted: {body}"));
        assert_eq!(e.status(), 400, "{body}");
        assert!(e.message.contains(needle), "{body}: {}", e.message);
    }
}

#[test]
fn holds_are_n_times_the_worst_case() {
    // gpt-image-1.5, medium 1024x1024: the larger of $0.034 an image and the token bound
    // (prompt bytes + 64 at $8/M, the dearer input class, + 1056 output tokens at $32/M).
    let token_bound = |n: u128| (PROMPT.len() as u128 + 64) * 8_000_000 + n * 1056 * 32_000_000;
    for n in [1u128, 2] {
        let p = product(ImageRoute::OpenAiCompatible, &request("gpt-image-1.5", n as u64, r#","size":"1024x1024","quality":"medium""#)).unwrap();
        let (plan, units) = p.hold(&rate());
        assert_eq!(units, n as u64);
        assert_eq!(plan.fixed_mc, mc(token_bound(n).max(n * 34_000 * 1_000_000)), "n = {n}");
        assert!(plan.fixed_mc >= mc(n * 34_000_000_000), "covers n images at the published price");
    }
    // gpt-image-2 with size and quality auto: the dearest, high 1024x1024 (OpenAI's 7,024 tokens
    // at $30/M).
    let p = product(ImageRoute::OpenAiCompatible, &request("gpt-image-2", 2, "")).unwrap();
    assert_eq!(p.hold(&rate()).0.fixed_mc, mc((PROMPT.len() as u128 + 64) * 8_000_000 + 2 * 7024 * 30_000_000));
    // Per-image, auto: high 1536x1024 at $0.20 an image beats its token bound.
    let p = product(ImageRoute::OpenAiCompatible, &request("gpt-image-1.5", 3, "")).unwrap();
    assert_eq!(p.hold(&rate()).0.fixed_mc, mc(3 * 200_000 * 1_000_000).max(mc((PROMPT.len() as u128 + 64) * 8_000_000 + 3 * 6240 * 32_000_000)));
}

#[test]
fn a_token_billed_answer_is_charged_its_usage_and_passed_on_byte_for_byte() {
    let (mut m, billing) = meter(ImageRoute::OpenAiCompatible, &request("gpt-image-2", 1, r#","quality":"medium""#));
    let f = run(&mut m, GPT_IMAGE_BODY, End::Complete);
    // The fixture's usage: 14 text tokens at $5/M + 1056 image output tokens at $30/M.
    let cost = 14 * 5_000_000 + 1056 * 30_000_000;
    let metered = f.metered.as_ref().unwrap();
    assert_eq!((metered.cost_pico_usd, metered.exact), (cost, true));
    assert_eq!(billing.charge(cost).charged_mc, 5_715);
    let units = metered.units.to_json();
    assert_eq!((units["unit"].as_str(), units["count"].as_u64()), (Some("images"), Some(1)));
    assert_eq!(units["detail"]["tokens"], json!({"text_input":14,"image_input":0,"image_output":1056,"text_output":0}));
    let answer = f.answer.as_ref().unwrap();
    let original = std::str::from_utf8(GPT_IMAGE_BODY).unwrap().trim_end();
    let body = std::str::from_utf8(&answer.body).unwrap();
    assert!(body.starts_with(&original[..original.len() - 1]), "every provider byte is kept");
    assert!(body.ends_with(r#","x_broker":{"credits_charged":5.715,"credits_remaining":9994.285,"request_id":"req_img"}}"#), "{body}");
    assert!(answer.headers.contains(&("x-credits-charged".into(), "5.715".into())));
    assert_eq!(json_of(&f)["usage"]["output_tokens"], 1056);
}

#[test]
fn a_per_image_answer_is_charged_by_model_size_and_quality_whatever_its_format() {
    for (body, field) in [(B64_BODY, "b64_json"), (URL_BODY, "url")] {
        let (mut m, billing) = meter(ImageRoute::OpenAiCompatible, &request("gpt-image-1.5", 1, r#","size":"1024x1024","quality":"medium""#));
        let f = run(&mut m, body, End::Complete);
        let metered = f.metered.as_ref().unwrap();
        assert_eq!(metered.cost_pico_usd, 34_000 * 1_000_000, "$0.034 for a medium square image");
        assert_eq!(billing.charge(metered.cost_pico_usd).charged_mc, 6_120);
        let sent: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(json_of(&f)["data"], sent["data"], "the {field} answer passes through");
        assert_eq!(metered.units.to_json()["detail"]["billing"], "per_image");
    }
    // Two images; the answer says what it made (auto asked): low 1536x1024 at $0.013 each.
    let two = br#"{"created":1,"data":[{"b64_json":"AAAA"},{"b64_json":"BBBB"}],"quality":"low","size":"1536x1024","usage":{"input_tokens":14,"input_tokens_details":{"image_tokens":0,"text_tokens":14},"output_tokens":800,"total_tokens":814}}"#;
    let (mut m, _) = meter(ImageRoute::OpenAiCompatible, &request("gpt-image-1.5", 2, ""));
    let f = run(&mut m, two, End::Complete);
    let metered = f.metered.as_ref().unwrap();
    assert_eq!(metered.cost_pico_usd, 2 * 13_000 * 1_000_000);
    assert_eq!(metered.units.to_json()["count"], 2);
    assert_eq!(metered.note, None);
}

#[test]
fn a_per_image_answer_whose_usage_costs_more_is_charged_the_usage() {
    // 9000 output tokens at $32/M ($0.288) against one medium image at $0.034.
    let body = br#"{"created":1,"data":[{"b64_json":"AAAA"}],"quality":"medium","size":"1024x1024","usage":{"input_tokens":20,"input_tokens_details":{"image_tokens":0,"text_tokens":20},"output_tokens":9000,"total_tokens":9020}}"#;
    let (mut m, _) = meter(ImageRoute::OpenAiCompatible, &request("gpt-image-1.5", 1, r#","quality":"medium","size":"1024x1024""#));
    let f = run(&mut m, body, End::Complete);
    let metered = f.metered.unwrap();
    assert_eq!(metered.cost_pico_usd, 20 * 5_000_000 + 9000 * 32_000_000);
    assert!(metered.note.unwrap().contains("billed the usage"));
}

#[test]
fn the_native_route_answers_the_gateways_shape() {
    let (mut m, _) = meter(ImageRoute::Native, &request("gpt-image-2", 1, r#","quality":"medium","size":"1024x1024""#));
    let f = run(&mut m, GPT_IMAGE_BODY, End::Complete);
    let v = json_of(&f);
    assert_eq!((v["object"].as_str(), v["model"].as_str(), v["images"].as_u64()), (Some("image.generation"), Some("gpt-image-2"), Some(1)));
    assert_eq!(v["credits_charged"], json!(5.715));
    assert_eq!(v["request_id"], "req_img");
    assert!(v["data"][0]["b64_json"].as_str().unwrap().starts_with("iVBOR"));
    assert_eq!(v["units"]["unit"], "images");
}

#[test]
fn an_answer_cut_after_its_200_is_billed_the_bound_and_garbage_is_released() {
    let (mut m, billing) = meter(ImageRoute::OpenAiCompatible, &request("gpt-image-2", 2, r#","quality":"low","size":"1024x1024""#));
    let f = run(&mut m, &GPT_IMAGE_BODY[..100], End::Broken("connection reset".into()));
    let metered = f.metered.unwrap();
    assert!(!metered.exact);
    assert_eq!(billing.charge(metered.cost_pico_usd).charged_mc, billing.hold_mc, "the hold, the proven upper bound");
    let e = f.answer.unwrap_err();
    assert_eq!(e.status(), 502);
    assert_eq!(e.details.unwrap()["credits_charged"], credits_json(billing.hold_mc));
    let (mut m, _) = meter(ImageRoute::OpenAiCompatible, &request("gpt-image-2", 1, ""));
    assert_eq!(run(&mut m, b"", End::IdleTimeout).answer.unwrap_err().status(), 504);
    for garbage in [&b"<html>oops</html>"[..], b"[1,2]", b"{\"created\":1}", b"{\"data\":[]}"] {
        let (mut m, _) = meter(ImageRoute::OpenAiCompatible, &request("gpt-image-1.5", 1, ""));
        let f = run(&mut m, garbage, End::Complete);
        assert!(f.metered.is_none(), "{}", String::from_utf8_lossy(garbage));
        assert_eq!(f.answer.unwrap_err().status(), 502);
    }
    let (mut m, _) = meter(ImageRoute::OpenAiCompatible, &request("gpt-image-2", 1, ""));
    assert!(m.start(&ProviderHead { status: 200, headers: vec![("content-type".into(), "text/html".into())] }).is_err());
}

#[test]
fn a_token_billed_answer_without_usage_is_billed_the_bound() {
    let (mut m, billing) = meter(ImageRoute::OpenAiCompatible, &request("gpt-image-2", 1, r#","quality":"high""#));
    let f = run(&mut m, B64_BODY, End::Complete);
    let metered = f.metered.as_ref().unwrap();
    assert!(!metered.exact);
    assert!(metered.note.as_ref().unwrap().contains("no usage"));
    assert_eq!(billing.charge(metered.cost_pico_usd).charged_mc, billing.hold_mc);
    assert!(f.answer.is_ok(), "the images are delivered");
}

#[test]
fn usage_classes_default_to_the_dearer_one() {
    let t = ImageTokens::from_usage(&json!({"input_tokens": 30, "output_tokens": 1100}));
    assert_eq!(t, ImageTokens { text_input: 0, image_input: 30, image_output: 1100, text_output: 0 });
    let t = ImageTokens::from_usage(&json!({"input_tokens": 30, "input_tokens_details": {"text_tokens": 20, "image_tokens": 10}, "output_tokens": 1100, "output_tokens_details": {"image_tokens": 1056, "text_tokens": 44}}));
    assert_eq!(t, ImageTokens { text_input: 20, image_input: 10, image_output: 1056, text_output: 44 });
}

#[test]
fn splicing_keeps_every_byte() {
    assert_eq!(splice_member(b"{\"a\": 1}\n".to_vec(), "x", &json!({"b":2})), br#"{"a": 1,"x":{"b":2}}"#.to_vec());
    assert_eq!(splice_member(b"{ }".to_vec(), "x", &json!(1)), br#"{ "x":1}"#.to_vec());
    assert_eq!(splice_member(b"[1]".to_vec(), "x", &json!(1)), b"[1]".to_vec());
}
