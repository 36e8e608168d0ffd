//! Speech: parsing both shapes and bad input, holds, the provider requests, and the charge
//! cross-checked with ElevenLabs' `character-cost` header (`fixtures/elevenlabs`).

use super::*;
use crate::config::Secret;
use crate::metering::{Admitted, Billing};
use crate::product::End;
use crate::ratelimit::RateState;

const TODAY: &str = "2026-11-27";
const EL_HTTP: &str = include_str!("../../../fixtures/elevenlabs/text-to-speech.http");
const VOICE: &str = "JBFqnCBsd6RMkjVDRZzb";
/// $0.0003 per ElevenLabs credit, pico-USD.
const EL: u128 = 300_000_000;

fn rate() -> CreditRate {
    CreditRate::default_rate()
}

/// The fixture's request body (ElevenLabs' own JSON; the voice is in its path).
fn fixture_body() -> Value {
    let start = EL_HTTP.find("{\n  \"text\"").unwrap();
    let end = start + EL_HTTP[start..].find("\n}\n").unwrap() + 2;
    serde_json::from_str(&EL_HTTP[start..end]).unwrap()
}

fn endpoint() -> Endpoint {
    Endpoint { base_url: "http://mock/el".into(), api_key: Secret::new("el-key") }
}

fn priced(req: Result<SpeechRequest, ApiError>) -> Result<SpeechProduct, ApiError> {
    SpeechProduct::price(req?, TODAY, endpoint(), EL)
}

fn native(body: &Value) -> Result<SpeechProduct, ApiError> {
    priced(parse_native(body.to_string().as_bytes()))
}

fn openai(body: &Value) -> Result<SpeechProduct, ApiError> {
    priced(parse_openai(body.to_string().as_bytes()))
}

fn billing(hold_mc: i64) -> Billing {
    let admitted = Admitted { sub_key: None, key_id: "key_1".into(), plan: "pro".into(), hold_mc, balance_after_mc: 10_000 - hold_mc, granted_units: 1, rate: RateState { limit: 1, remaining: 0, reset_ms: 1 }, class: "media".into() };
    Billing::new("req_tts", rate(), &admitted)
}

fn head(cost: Option<&str>) -> ProviderHead {
    let mut headers = vec![("content-type".to_string(), "audio/mpeg".to_string()), ("request-id".into(), "8kQ2vRz5LmN1pXc7TsWd".into())];
    if let Some(c) = cost {
        headers.push(("character-cost".into(), c.into()));
    }
    ProviderHead { status: 200, headers }
}

#[test]
fn the_fixtures_request_goes_to_elevenlabs_as_it_came() {
    let mut body = fixture_body();
    body["voice_id"] = json!(VOICE);
    body["output_format"] = json!("mp3_44100_128");
    let p = native(&body).unwrap();
    assert_eq!(p.chars, 51);
    let up = p.upstream(51);
    assert_eq!(up.url, format!("http://mock/el/v1/text-to-speech/{VOICE}/stream?output_format=mp3_44100_128"));
    assert!(up.headers.contains(&("xi-api-key".into(), "el-key".into())));
    let sent: Value = serde_json::from_slice(&up.body).unwrap();
    let original = fixture_body();
    assert_eq!(sent["text"], original["text"]);
    assert_eq!(sent["voice_settings"], original["voice_settings"]);
    assert_eq!(sent["model_id"], "eleven_multilingual_v2");
    // 51 characters × 1 credit × $0.0003 × 180 = 2.754 credits.
    assert_eq!(p.hold(&rate()), (HoldPlan::fixed(2_754, 51).0, 51));
    assert_eq!((p.class(), p.meta().product, p.meta().provider), ("media", "speech", Provider::ElevenLabs));
}

#[test]
fn the_openai_shape_maps_to_elevenlabs_or_to_openai() {
    let p = openai(&json!({"model": "elevenlabs/eleven_flash_v2_5", "input": "Hello there", "voice": VOICE, "response_format": "pcm", "speed": 1.1})).unwrap();
    assert_eq!((p.req.provider, p.model.model), (Provider::ElevenLabs, "eleven_flash_v2_5"));
    let up = p.upstream(0);
    assert!(up.url.ends_with(&format!("/v1/text-to-speech/{VOICE}/stream?output_format=pcm_24000")), "{}", up.url);
    let sent: Value = serde_json::from_slice(&up.body).unwrap();
    assert_eq!(sent, json!({"text": "Hello there", "model_id": "eleven_flash_v2_5", "voice_settings": {"speed": 1.1}}));
    // 11 characters at half a credit: 6 credits.
    assert_eq!(p.hold(&rate()).0.fixed_mc, 6 * 54);
    assert_eq!(openai(&json!({"model": "eleven_v3", "input": "x", "voice": VOICE})).unwrap().req.provider, Provider::ElevenLabs);
    let p = openai(&json!({"model": "tts-1", "input": "Hello there", "voice": "alloy", "response_format": "wav", "speed": 2.0})).unwrap();
    let up = p.upstream(0);
    assert_eq!(up.url, "http://mock/el/v1/audio/speech");
    assert!(up.headers.contains(&("authorization".into(), "Bearer el-key".into())));
    let sent: Value = serde_json::from_slice(&up.body).unwrap();
    assert_eq!(sent, json!({"model": "tts-1", "input": "Hello there", "voice": "alloy", "response_format": "wav", "speed": 2.0}));
    // 11 characters at $15/1M = $0.000165 → 0.0297 credits → 30 mc (rounded up once).
    assert_eq!(p.hold(&rate()).0.fixed_mc, 30);
    assert_eq!(p.error_shape(), ErrorShape::OpenAi);
    assert_eq!(openai(&json!({"model": "openai/tts-1-hd", "input": "x", "voice": "nova"})).unwrap().model.model, "tts-1-hd");
}

#[test]
fn bad_input_is_a_400_naming_the_problem() {
    let long_el = "a".repeat(10_001);
    let long_oa = "a".repeat(4097);
    for (route_native, body, needle) in [
        (true, json!({"voice_id": VOICE, "text": ""}), "`text` must not be empty"),
        (true, json!({"voice_id": VOICE}), "`text` is required"),
        (true, json!({"voice_id": VOICE, "text": long_el}), "at most 10000"),
        (true, json!({"voice_id": "not a voice", "text": "x"}), "not an ElevenLabs voice id"),
        (true, json!({"voice_id": VOICE, "text": "x", "model_id": "eleven_v9"}), "not offered"),
        (true, json!({"voice_id": VOICE, "text": "x", "output_format": "mp3_1_1"}), "`output_format` `mp3_1_1`"),
        (true, json!({"voice_id": VOICE, "text": "x", "voice_settings": {"stability": 2}}), "voice_settings"),
        (true, json!({"voice_id": VOICE, "text": "x", "voice_settings": {"speed": 3}}), "`speed`"),
        (true, json!({"voice_id": VOICE, "text": "x", "voice_settings": {"pitch": 1}}), "`pitch`"),
        (true, json!({"voice_id": VOICE, "text": "x", "seed": 1}), "`seed` is not supported"),
        (false, json!({"model": "tts-1", "input": " ", "voice": "alloy"}), "`input` must not be empty"),
        (false, json!({"model": "tts-1", "input": long_oa, "voice": "alloy"}), "tts-1 takes at most 4096"),
        (false, json!({"model": "tts-1", "input": "x", "voice": "nobody"}), "`voice` `nobody`"),
        (false, json!({"model": "tts-1", "input": "x", "voice": "marin"}), "`voice` `marin`"),
        (false, json!({"model": "tts-1", "input": "x", "voice": {"id": "voice_1"}}), "custom voice"),
        (false, json!({"model": "tts-1", "input": "x", "voice": "alloy", "response_format": "ogg"}), "`response_format` `ogg`"),
        (false, json!({"model": "tts-1", "input": "x", "voice": "alloy", "speed": 9}), "`speed`"),
        (false, json!({"model": "tts-1", "input": "x", "voice": "alloy", "stream_format": "sse"}), "sse"),
        (false, json!({"model": "tts-1", "input": "x", "voice": "alloy", "instructions": "calm"}), "instructions"),
        (false, json!({"model": "gpt-4o-mini-tts", "input": "x", "voice": "alloy"}), "not offered"),
        (false, json!({"model": "tts-2", "input": "x", "voice": "alloy"}), "not offered"),
        (false, json!({"model": "eleven_flash_v2_5", "input": "x", "voice": "alloy"}), "not an ElevenLabs voice id"),
        (false, json!({"model": "eleven_flash_v2_5", "input": "x", "voice": VOICE, "response_format": "flac"}), "not available from ElevenLabs"),
        (false, json!({"model": "eleven_flash_v2_5", "input": "x", "voice": VOICE, "speed": 2.0}), "ElevenLabs' range"),
        (false, json!({"model": "google/tts", "input": "x", "voice": "alloy"}), "unknown provider prefix"),
    ] {
        let e = if route_native { native(&body) } else { openai(&body) }.err().unwrap_or_else(|| panic!("accepted: {body}"));
        assert_eq!(e.status(), 400, "{body}");
        assert!(e.message.contains(needle), "{body}: {}", e.message);
    }
}

#[test]
fn elevenlabs_is_billed_its_own_character_cost() {
    let model = media_prices::speech_model(Provider::ElevenLabs, "eleven_multilingual_v2", TODAY).unwrap();
    // The fixture: 51 characters, `character-cost: 51`.
    let m = elevenlabs_metered(model, 51, EL, 1, &head(Some("51")));
    assert_eq!((m.cost_pico_usd, m.exact, m.note.clone()), (51 * EL, true, None));
    assert_eq!(m.units.to_json(), json!({"unit": "characters", "count": 51}));
    let m = elevenlabs_metered(model, 51, EL, 3, &head(Some("102")));
    assert_eq!(m.cost_pico_usd, 102 * EL, "a voice that costs double");
    assert!(m.note.unwrap().contains("elevenlabs reported 102 credits, the gateway counted 51"));
    let m = elevenlabs_metered(model, 51, EL, 1, &head(Some("40")));
    assert_eq!(m.cost_pico_usd, 40 * EL, "elevenlabs' bill, even below the gateway's count");
    let m = elevenlabs_metered(model, 51, EL, 1, &head(None));
    assert_eq!((m.cost_pico_usd, m.exact), (51 * EL, true));
    assert!(m.note.unwrap().contains("no character-cost header"));
    let m = elevenlabs_metered(model, 51, EL, 3, &head(None));
    assert_eq!((m.cost_pico_usd, m.exact), (153 * EL, false), "an unknown voice without the header: the bound, 3 × 51");
}

#[test]
fn an_elevenlabs_hold_assumes_the_largest_multiplier_unless_the_voice_is_premade() {
    // 1,000 characters of eleven_multilingual_v2 (1 credit each) at $0.0003 a credit = $0.30 =
    // 54 credits; a Voice Library voice may bill 3×: 162 credits.
    let text = "a".repeat(1000);
    let premade = native(&json!({"voice_id": VOICE, "text": text})).unwrap();
    assert_eq!(premade.hold(&rate()).0.fixed_mc, 54_000);
    let shared = native(&json!({"voice_id": "8kQ2vRz5LmN1pXc7TsWd", "text": text})).unwrap();
    assert_eq!(shared.hold(&rate()).0.fixed_mc, 162_000);
    let tts = openai(&json!({"model": "tts-1", "input": text, "voice": "alloy"})).unwrap();
    assert_eq!(tts.hold(&rate()).0.fixed_mc, 2_700, "OpenAI: 1,000 × $15/M = $0.015, no multiplier");
}

#[test]
fn the_meter_streams_the_audio_and_bills_on_the_head() {
    let mut body = fixture_body();
    body["voice_id"] = json!(VOICE);
    let p = native(&body).unwrap();
    let b = billing(p.hold(&rate()).0.fixed_mc);
    let mut m = Box::new(p).meter(b.clone().into(), 51);
    m.start(&head(Some("51"))).unwrap();
    let h = m.stream_head().unwrap();
    assert_eq!(h.content_type, "audio/mpeg");
    assert!(h.headers.contains(&("x-credits-charged".into(), "2.754".into())));
    let audio = b"ID3\x04\x00\x00\x00\x00\x00\x00\xff\xfb\x90\x64";
    assert_eq!(m.push(audio), audio.to_vec());
    let f = m.finish(End::Complete);
    assert_eq!(b.charge(f.metered.unwrap().cost_pico_usd).charged_mc, 2_754);
    // OpenAI: characters × list price, no header to read.
    let p = openai(&json!({"model": "tts-1-hd", "input": "a".repeat(1000), "voice": "onyx"})).unwrap();
    let b = billing(p.hold(&rate()).0.fixed_mc);
    let mut m = Box::new(p).meter(b.clone().into(), 1000);
    m.start(&ProviderHead { status: 200, headers: vec![("content-type".into(), "audio/wav".into())] }).unwrap();
    m.push(b"RIFF");
    let f = m.finish(End::Broken("reset".into()));
    assert_eq!(b.charge(f.metered.unwrap().cost_pico_usd).charged_mc, 5_400, "$0.03 for 1000 characters, charged in full");
}
