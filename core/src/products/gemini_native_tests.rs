//! Gemini's own API: the allowlists and their 400s, the hold, and the meter against the
//! provider's samples (`fixtures/gemini/*`), with list prices restated here.

use super::*;
use crate::config::Secret;
use crate::metering::{Admitted, Billing};
use crate::ratelimit::RateState;

const TODAY: &str = "2026-11-27";
const REQUEST: &[u8] = include_bytes!("../../../fixtures/gemini/generateContent.request.json");
const STREAM: &[u8] = include_bytes!("../../../fixtures/gemini/streamGenerateContent.sse");
const TOOLS_STREAM: &[u8] = include_bytes!("../../../fixtures/gemini/streamGenerateContent.tools.sse");
/// gemini-2.5-flash, micro-USD per 1M tokens (REFERENCE.md): input 0.30, output 2.50.
const IN: u128 = 300_000;
const OUT: u128 = 2_500_000;

fn endpoint() -> Endpoint {
    Endpoint { base_url: "http://mock/gemini".into(), api_key: Secret::new("AIza-test") }
}

fn product(stream: bool, body: &[u8]) -> Result<GeminiProduct, ApiError> {
    GeminiProduct::price(parse("gemini-2.5-flash", stream, stream.then_some("sse"), body)?, TODAY, endpoint())
}

fn meter(stream: bool, body: &[u8]) -> Box<dyn Meter> {
    let p = product(stream, body).unwrap();
    let rate = CreditRate::default_rate();
    let (plan, units) = p.hold(&rate);
    let admitted = Admitted { sub_key: None, key_id: "key_1".into(), plan: "pro".into(), hold_mc: plan.fixed_mc, balance_after_mc: 1_000_000, granted_units: units, rate: RateState { limit: 100, remaining: 99, reset_ms: 1 }, class: "ai".into() };
    Box::new(p).meter(Billing::new("req_g", rate, &admitted).into(), units)
}

fn run(m: &mut Box<dyn Meter>, body: &[u8], end: End) -> (Vec<u8>, Finish) {
    m.start(&ProviderHead { status: 200, headers: vec![("content-type".into(), "text/event-stream".into())] }).unwrap();
    let mut out = Vec::new();
    for c in body.chunks(11) {
        out.extend(m.push(c));
    }
    let f = m.finish(end);
    out.extend_from_slice(&f.tail);
    (out, f)
}

#[test]
fn the_sample_request_is_forwarded_as_a_stream_with_its_output_cap() {
    let p = product(false, REQUEST).unwrap();
    assert_eq!(p.req.max_output_tokens, Some(1024));
    let up = p.upstream(1024);
    assert_eq!(up.url, "http://mock/gemini/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse");
    assert!(up.headers.contains(&("x-goog-api-key".into(), "AIza-test".into())));
    let sent: Value = serde_json::from_slice(&up.body).unwrap();
    let original: Value = serde_json::from_slice(REQUEST).unwrap();
    assert_eq!(sent, original, "forwarded as sent");
    // Hold: bytes + overhead at the input price, 1024 output tokens.
    let prompt = REQUEST.len() as u128 + PROMPT_OVERHEAD_TOKENS as u128;
    assert_eq!(p.model.bound_pico(p.prompt_upper_tokens(), 1024, None), prompt * IN + 1024 * OUT);
}

#[test]
fn snake_case_is_normalized_and_no_cap_means_admission_picks_one() {
    let p = product(true, br#"{"system_instruction":{"parts":[{"text":"be brief"}]},"contents":[{"parts":[{"text":"hi"},{"inline_data":{"mime_type":"image/png","data":"iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="}}]}],"generation_config":{"temperature":0.2}}"#).unwrap();
    assert_eq!(p.req.max_output_tokens, None);
    assert_eq!(p.req.images.len(), 1);
    let (plan, _) = p.hold(&CreditRate::default_rate());
    assert!(plan.flexible.is_some());
    let sent: Value = serde_json::from_slice(&p.upstream(777).body).unwrap();
    assert_eq!(sent["generationConfig"], json!({"temperature": 0.2, "maxOutputTokens": 777}));
    assert_eq!(sent["systemInstruction"]["parts"][0]["text"], "be brief");
    assert_eq!(sent["contents"][0]["parts"][1]["inlineData"]["mimeType"], "image/png");
}

#[test]
fn what_cannot_be_priced_is_a_400_naming_it() {
    for (body, says) in [
        (r#"{"contents":[{"parts":[{"text":"x"}]}],"cachedContent":"cachedContents/1"}"#, "`cachedContent` is not supported: explicit caches"),
        (r#"{"contents":[{"parts":[{"text":"x"}]}],"tools":[{"googleSearch":{}}]}"#, "`googleSearch` tool"),
        (r#"{"contents":[{"parts":[{"text":"x"}]}],"tools":[{"code_execution":{}}]}"#, "`codeExecution` tool"),
        (r#"{"contents":[{"parts":[{"text":"x"}]}],"generationConfig":{"candidateCount":2}}"#, "candidateCount"),
        (r#"{"contents":[{"parts":[{"text":"x"}]}],"generationConfig":{"responseModalities":["IMAGE"]}}"#, "responseModalities"),
        (r#"{"contents":[{"parts":[{"text":"x"}]}],"generationConfig":{"speechConfig":{}}}"#, "`generationConfig.speechConfig` is not supported: audio"),
        (r#"{"contents":[{"parts":[{"text":"x"}]}],"generationConfig":{"maxOutputTokens":0}}"#, "maxOutputTokens"),
        (r#"{"contents":[{"parts":[{"text":"x"}]}],"generationConfig":{"maxOutputTokens":900000}}"#, "exceeds"),
        (r#"{"contents":[{"parts":[{"fileData":{"fileUri":"files/abc","mimeType":"image/png"}}]}]}"#, "`contents[0].parts[0].fileData` is not supported: files"),
        (r#"{"contents":[{"parts":[{"inlineData":{"mimeType":"audio/mp3","data":"AAAA"}}]}]}"#, "audio/mp3"),
        (r#"{"contents":[{"role":"system","parts":[{"text":"x"}]}]}"#, "role"),
        (r#"{"contents":[]}"#, "`contents` is required"),
        (r#"{"contents":[{"parts":[{"text":"x"}]}],"labels":{"a":"b"}}"#, "`labels`"),
        ("[1]", "JSON object"),
    ] {
        let e = product(false, body.as_bytes()).err().unwrap_or_else(|| panic!("accepted: {body}"));
        assert_eq!(e.status(), 400, "{body}");
        assert!(e.message.contains(says), "{body}: {}", e.message);
    }
    assert!(parse("gemini-2.5-flash", true, None, REQUEST).unwrap_err().message.contains("alt=sse"));
    let e = GeminiProduct::price(parse("gemini-9-ultra", false, None, REQUEST).unwrap(), TODAY, endpoint()).err().unwrap();
    assert_eq!(e.status(), 400);
}

#[test]
fn a_stream_passes_through_byte_for_byte_and_is_charged_its_last_usage() {
    let mut m = meter(true, REQUEST);
    assert_eq!(m.stream_head().unwrap().content_type, "text/event-stream");
    assert!(m.byte_exact_stream(), "the engine may pipe it");
    assert!(!meter(false, REQUEST).byte_exact_stream(), "a whole answer is assembled, not piped");
    let (out, f) = run(&mut m, STREAM, End::Complete);
    assert_eq!(out, STREAM, "unchanged, CRLF framing included");
    let metered = f.metered.unwrap();
    assert!(metered.exact);
    // The last cumulative usageMetadata: 31 prompt, 26 candidates + 186 thoughts.
    assert_eq!(metered.cost_pico_usd, 31 * IN + (26 + 186) * OUT);
}

#[test]
fn a_whole_answer_is_assembled_from_the_chunks() {
    let mut m = meter(false, REQUEST);
    assert!(m.stream_head().is_none());
    let (out, f) = run(&mut m, STREAM, End::Complete);
    assert!(out.is_empty());
    let a = f.answer.unwrap();
    assert!(a.headers.iter().any(|(k, _)| k == "x-credits-charged"), "credit headers");
    let v: Value = serde_json::from_slice(&a.body).unwrap();
    assert_eq!(v["candidates"][0]["content"], json!({"parts": [{"text": "Go to Settings > API keys and click \"Rotate\" next to the key, then update your applications with the new key."}], "role": "model"}));
    assert_eq!(v["candidates"][0]["finishReason"], "STOP");
    assert_eq!(v["usageMetadata"]["thoughtsTokenCount"], 186);
    assert!(v.get("x_broker").is_none(), "Gemini's body carries no gateway field");
    // Function calls stay whole parts, their signatures kept.
    let mut m = meter(false, REQUEST);
    let (_, f) = run(&mut m, TOOLS_STREAM, End::Complete);
    let v: Value = serde_json::from_slice(&f.answer.unwrap().body).unwrap();
    let parts = v["candidates"][0]["content"]["parts"].as_array().unwrap();
    assert_eq!(parts.len(), 2);
    assert_eq!(parts[0]["functionCall"]["name"], "get_weather");
    assert!(parts[0]["thoughtSignature"].is_string());
}

#[test]
fn a_cut_stream_is_billed_the_bound_and_says_so_in_gemini_s_shape() {
    let cut = &STREAM[..STREAM.len() / 2];
    let mut m = meter(true, REQUEST);
    let (out, f) = run(&mut m, cut, End::Broken("reset".into()));
    let metered = f.metered.unwrap();
    assert!(!metered.exact);
    // The prompt's reported usage (31) replaces its bound; the output is every token allowed.
    assert_eq!(metered.cost_pico_usd, 31 * IN + 1024 * OUT);
    let text = String::from_utf8(out).unwrap();
    assert!(text.ends_with("\n\n") && text.contains(r#""status":"UNAVAILABLE""#), "{text}");
    let mut m = meter(false, REQUEST);
    let (_, f) = run(&mut m, b"<html>oops</html>", End::Complete);
    assert!(f.metered.is_none(), "garbage is not billed");
    assert_eq!(f.answer.unwrap_err().status(), 502);
}

#[test]
fn a_blocked_prompt_is_charged_its_reported_prompt_only() {
    let blocked = b"data: {\"promptFeedback\": {\"blockReason\": \"SAFETY\"},\"usageMetadata\": {\"promptTokenCount\": 40,\"totalTokenCount\": 40},\"modelVersion\": \"gemini-2.5-flash\"}\r\n\r\n";
    let mut m = meter(false, REQUEST);
    let (_, f) = run(&mut m, blocked, End::Complete);
    let metered = f.metered.unwrap();
    assert!(metered.exact);
    assert_eq!(metered.cost_pico_usd, 40 * IN);
    let v: Value = serde_json::from_slice(&f.answer.unwrap().body).unwrap();
    assert_eq!(v["promptFeedback"]["blockReason"], "SAFETY");
}

#[test]
fn the_served_model_and_tier_decide_the_price() {
    // The fixture's usage: 31 prompt tokens; 26 candidates + 186 thoughts = 212 output tokens.
    let served = |from: &str, to: &str| {
        let sse = std::str::from_utf8(STREAM).unwrap().replace(from, to);
        let mut m = meter(true, REQUEST);
        run(&mut m, sse.as_bytes(), End::Complete).1.metered.unwrap()
    };
    let m = served(r#""modelVersion": "gemini-2.5-flash""#, r#""modelVersion": "gemini-3.5-flash""#);
    assert_eq!((m.cost_pico_usd, m.exact), (31 * 1_500_000 + 212 * 9_000_000, true), "gemini-3.5-flash: $1.50 / $9.00");
    let m = served(r#""modelVersion": "gemini-2.5-flash""#, r#""modelVersion": "gemini-9-ultra""#);
    assert!(!m.exact && m.warning.unwrap().contains("gemini-9-ultra"));
    let m = served(r#""serviceTier": "standard""#, r#""serviceTier": "priority""#);
    assert!(!m.exact && m.warning.unwrap().contains("`priority`"));
    let p = product(true, REQUEST).unwrap();
    assert_eq!(m.cost_pico_usd, p.model.bound_pico(p.prompt_upper_tokens(), 1024, None), "the hold's bound");
}
