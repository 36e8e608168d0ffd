//! Music: parsing and bad input, the flat hold, the multipart request Stability reads
//! (`fixtures/stability/stable-audio.http`), and the meter.

use super::*;
use crate::config::Secret;
use crate::metering::{Admitted, Billing};
use crate::product::End;
use crate::ratelimit::RateState;
use serde_json::{json, Value};

fn endpoint() -> Endpoint {
    Endpoint { base_url: "http://mock/stability".into(), api_key: Secret::new("sk-st") }
}

fn product(body: Value) -> Result<MusicProduct, ApiError> {
    MusicProduct::price(parse(body.to_string().as_bytes())?, endpoint())
}

/// The text fields of a multipart body, in order (as a form parser reads them).
fn form_fields(content_type: &str, body: &[u8]) -> Vec<(String, String)> {
    let boundary = content_type.split("boundary=").nth(1).unwrap();
    let text = std::str::from_utf8(body).unwrap();
    assert!(text.ends_with(&format!("--{boundary}--\r\n")));
    text.split(&format!("--{boundary}"))
        .filter(|p| p.starts_with("\r\n"))
        .map(|p| {
            let (head, value) = p.split_once("\r\n\r\n").unwrap();
            let name = head.split("name=\"").nth(1).unwrap().split('"').next().unwrap();
            (name.to_string(), value.strip_suffix("\r\n").unwrap().to_string())
        })
        .collect()
}

#[test]
fn the_request_is_the_fixtures_multipart_form() {
    // The fixture's request: prompt, model stable-audio-2.5, duration 30, output_format mp3, seed 0.
    let prompt = "Upbeat lo-fi hip hop loop with warm Rhodes piano and vinyl crackle, 90 BPM";
    let p = product(json!({"prompt": prompt, "model": "stable-audio-2.5", "duration": 30, "output_format": "mp3", "seed": 0})).unwrap();
    let up = p.upstream(1);
    assert_eq!(up.url, "http://mock/stability/v2beta/audio/stable-audio-2/text-to-audio");
    let header = |k: &str| up.headers.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap();
    assert_eq!(header("authorization"), "Bearer sk-st");
    assert_eq!(header("accept"), "audio/*");
    let fields = form_fields(&header("content-type"), &up.body);
    let want: Vec<(String, String)> = [("prompt", prompt), ("model", "stable-audio-2.5"), ("duration", "30"), ("output_format", "mp3"), ("seed", "0")].iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    assert_eq!(fields, want);
    assert_eq!((p.class(), p.meta().product, p.meta().provider), ("media", "music", Provider::Stability));
}

#[test]
fn the_hold_is_the_flat_price_of_the_model() {
    let rate = CreditRate::default_rate();
    // $0.20 × 1.8 ÷ 0.01 = 36 credits; stable-audio-2 (the provider's default): $0.23 → 41.4.
    assert_eq!(product(json!({"prompt": "x", "model": "stability/stable-audio-2.5"})).unwrap().hold(&rate), (HoldPlan::fixed(36_000, 1).0, 1));
    assert_eq!(product(json!({"prompt": "x"})).unwrap().hold(&rate).0.fixed_mc, 41_400);
    let p = product(json!({"prompt": "x", "duration": 12.5, "steps": 50})).unwrap();
    let fields = form_fields(&p.upstream(1).headers[2].1, &p.upstream(1).body);
    assert!(fields.contains(&("duration".into(), "12.5".into())) && fields.contains(&("steps".into(), "50".into())));
}

#[test]
fn bad_input_is_a_400_naming_the_problem() {
    for (body, needle) in [
        (json!({"prompt": ""}), "`prompt` must not be empty"),
        (json!({"duration": 30}), "`prompt` is required"),
        (json!({"prompt": "x".repeat(PROMPT_MAX_CHARS + 1)}), "at most 10000"),
        (json!({"prompt": "x", "duration": 0}), "`duration` must be a number from 1 to 190"),
        (json!({"prompt": "x", "duration": 191}), "`duration`"),
        (json!({"prompt": "x", "duration": "long"}), "`duration`"),
        (json!({"prompt": "x", "output_format": "ogg"}), "`output_format` `ogg`"),
        (json!({"prompt": "x", "model": "stable-audio-3"}), "not offered"),
        (json!({"prompt": "x", "model": "openai/stable-audio-2"}), "unknown provider prefix"),
        (json!({"prompt": "x", "model": "stable-audio-2.5", "steps": 50}), "`steps` must be from 4 to 8"),
        (json!({"prompt": "x", "steps": 51}), "`steps` 51 is not offered for stable-audio-2: its price is known up to 50 steps"),
        (json!({"prompt": "x", "steps": 100}), "use 30 to 50"),
        (json!({"prompt": "x", "seed": -1}), "`seed`"),
        (json!({"prompt": "x", "cfg_scale": 7}), "`cfg_scale` is not supported"),
    ] {
        let e = product(body.clone()).err().unwrap_or_else(|| panic!("accepted: {body}"));
        assert_eq!(e.status(), 400, "{body}");
        assert!(e.message.contains(needle), "{body}: {}", e.message);
    }
}

#[test]
fn a_boundary_never_occurs_in_a_field() {
    let (b, body) = multipart(&[("prompt", "a --broker-form-boundary-7MA4YWxk b".to_string())]);
    assert_eq!(b, "broker-form-boundary-7MA4YWxkx");
    assert_eq!(form_fields(&format!("multipart/form-data; boundary={b}"), &body), vec![("prompt".to_string(), "a --broker-form-boundary-7MA4YWxk b".to_string())]);
}

#[test]
fn a_generation_is_billed_once_the_provider_answered() {
    let p = product(json!({"prompt": "x", "model": "stable-audio-2.5"})).unwrap();
    let admitted = Admitted { sub_key: None, key_id: "k".into(), plan: "pro".into(), hold_mc: 36_000, balance_after_mc: 64_000, granted_units: 1, rate: RateState { limit: 1, remaining: 0, reset_ms: 1 }, class: "media".into() };
    let billing = Billing::new("req_m", CreditRate::default_rate(), &admitted);
    let mut m = Box::new(p).meter(billing.clone().into(), 1);
    let head = ProviderHead { status: 200, headers: vec![("content-type".into(), "audio/mpeg".into()), ("finish-reason".into(), "SUCCESS".into()), ("seed".into(), "2894315561".into())] };
    m.start(&head).unwrap();
    assert!(m.stream_head().unwrap().headers.contains(&("x-credits-charged".into(), "36".into())));
    assert_eq!(m.push(b"ID3\x04"), b"ID3\x04".to_vec());
    let end = End::Broken("connection reset".into());
    assert!(m.abort_client_stream(&end), "a cut clip is not closed as if whole");
    let f = m.finish(end);
    let metered = f.metered.unwrap();
    assert_eq!((billing.charge(metered.cost_pico_usd).charged_mc, metered.units.to_json()), (36_000, json!({"unit": "generations", "count": 1})));
}
