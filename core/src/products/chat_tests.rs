//! The chat meter against the providers' recorded streams (`fixtures/`): every route and
//! provider, streamed and whole, complete and cut, and garbage.

use super::*;
use crate::config::Secret;
use crate::metering::{Admitted, Billing};
use crate::ratelimit::RateState;

const OPENAI_SSE: &[u8] = include_bytes!("../../../fixtures/openai/chat-completion.stream.sse");
const ANTHROPIC_SSE: &[u8] = include_bytes!("../../../fixtures/anthropic/messages.stream.sse");
const GEMINI_SSE: &[u8] = include_bytes!("../../../fixtures/gemini/streamGenerateContent.sse");
const OPENAI_WHOLE: &[u8] = include_bytes!("../../../fixtures/openai/chat-completion.response.json");
const ANTHROPIC_WHOLE: &[u8] = include_bytes!("../../../fixtures/anthropic/messages.response.json");
const GEMINI_WHOLE: &[u8] = include_bytes!("../../../fixtures/gemini/generateContent.response.json");

/// A meter for `body` on `route`, admitted with a 1000-credit balance; `max_tokens` granted.
fn meter(route: Route, body: &str) -> (ChatMeter, Billing) {
    let req = match route {
        Route::Native => crate::chat::parse_native(body.as_bytes()),
        Route::OpenAiCompatible => crate::chat::parse_openai(body.as_bytes()),
        Route::AnthropicCompatible => crate::chat::parse_anthropic(body.as_bytes()),
    }
    .unwrap();
    let endpoint = Endpoint { base_url: "http://mock".into(), api_key: Secret::new("k") };
    let product = ChatProduct::price(req, "2026-11-23", endpoint, 1_700_000_000).unwrap();
    let rate = CreditRate::default_rate();
    let (plan, units) = product.hold(&rate);
    let granted = product.req.max_tokens.unwrap_or(units);
    // Admission with a balance that covers the whole ladder takes its dearest rung.
    let hold = plan.worst_case_mc(units);
    let admitted = Admitted { sub_key: None, key_id: "key_1".into(), plan: "pro".into(), hold_mc: hold, balance_after_mc: 1_000_000 - hold, granted_units: granted, rate: RateState { limit: 100, remaining: 99, reset_ms: 1 }, class: "ai".into() };
    let billing = Billing::new("req_t", rate, &admitted);
    (ChatMeter::new(product, billing.clone().into(), granted), billing)
}

fn run(m: &mut ChatMeter, bytes: &[u8], step: usize, end: End) -> (String, Finish) {
    let mut out = Vec::new();
    for c in bytes.chunks(step) {
        out.extend(m.push(c));
    }
    let f = m.finish(end);
    out.extend(f.tail.iter());
    (String::from_utf8(out).unwrap(), f)
}

fn data_events(s: &str) -> Vec<Value> {
    s.split("\n\n").filter_map(|e| e.lines().find_map(|l| l.strip_prefix("data: "))).filter(|d| *d != "[DONE]").map(|d| serde_json::from_str(d).unwrap()).collect()
}

fn whole(f: &Finish) -> Value {
    serde_json::from_slice(&f.answer.as_ref().unwrap().body).unwrap()
}

fn tokens(f: &Finish) -> Usage {
    match f.metered.as_ref().unwrap().units {
        Units::Tokens(u) => u,
        _ => panic!("not tokens"),
    }
}

const OPENAI_STREAM: &str = r#"{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"max_tokens":300,"messages":[{"role":"user","content":"hi"}]}"#;

#[test]
fn openai_passthrough_with_usage_asked_for_is_the_providers_bytes() {
    let (mut m, billing) = meter(Route::OpenAiCompatible, OPENAI_STREAM);
    assert!(m.byte_exact_stream(), "the engine may pipe it");
    let (out, f) = run(&mut m, OPENAI_SSE, 7, End::Complete);
    assert_eq!(out.as_bytes(), OPENAI_SSE, "byte for byte, the usage chunk included, nothing added");
    let metered = f.metered.as_ref().unwrap();
    assert!(metered.exact);
    assert_eq!(tokens(&f), Usage { input: 72, cached_input: 1792, output: 214, ..Usage::default() });
    // 72 in at $0.15/M + 1792 cached at $0.075/M + 214 out at $0.60/M = $0.0002736 × 180 → 49.248 → 50 mc
    assert_eq!(billing.charge(metered.cost_pico_usd).charged_mc, 50);
}

#[test]
fn a_stream_without_done_gets_done_but_not_a_second_usage_chunk() {
    let (mut m, _) = meter(Route::OpenAiCompatible, OPENAI_STREAM);
    let text = std::str::from_utf8(OPENAI_SSE).unwrap().replace("data: [DONE]\n\n", "");
    let (out, f) = run(&mut m, text.as_bytes(), 17, End::Complete);
    assert_eq!(out.matches("\"choices\":[]").count(), 1, "{out}");
    assert!(out.ends_with("data: [DONE]\n\n"));
    assert!(f.metered.unwrap().exact);
}

#[test]
fn the_usage_chunk_is_dropped_when_the_client_did_not_ask() {
    let (mut m, _) = meter(Route::OpenAiCompatible, r#"{"model":"gpt-4o-mini","stream":true,"max_tokens":300,"messages":[{"role":"user","content":"hi"}]}"#);
    let (out, f) = run(&mut m, OPENAI_SSE, 64, End::Complete);
    assert!(!out.contains("\"choices\":[]"));
    assert!(f.metered.unwrap().exact, "still billed exactly: the gateway asked for usage itself");
}

#[test]
fn anthropic_passthrough_is_the_providers_bytes() {
    let (mut m, billing) = meter(Route::AnthropicCompatible, r#"{"model":"claude-sonnet-4-6","stream":true,"max_tokens":100,"messages":[{"role":"user","content":"hi"}]}"#);
    assert!(m.byte_exact_stream(), "the engine may pipe it");
    let (out, f) = run(&mut m, ANTHROPIC_SSE, 5, End::Complete);
    assert_eq!(out.as_bytes(), ANTHROPIC_SSE);
    // 12 in ($3), 2048 write-5m ($3.75), 31 out ($15) = $0.008181 × 180 = 1.47258 → 1,473 mc
    assert_eq!(billing.charge(f.metered.as_ref().unwrap().cost_pico_usd).charged_mc, 1473);
    assert_eq!(tokens(&f), Usage { input: 12, cache_write_5m: 2048, output: 31, ..Usage::default() });
}

#[test]
fn streams_that_change_bytes_are_not_piped() {
    // OpenAI without the usage chunk asked for (it is consumed), and every translated stream.
    let (m, _) = meter(Route::OpenAiCompatible, r#"{"model":"gpt-4o-mini","stream":true,"max_tokens":300,"messages":[{"role":"user","content":"hi"}]}"#);
    assert!(!m.byte_exact_stream());
    let (m, _) = meter(Route::OpenAiCompatible, r#"{"model":"anthropic/claude-sonnet-4-6","stream":true,"stream_options":{"include_usage":true},"max_tokens":100,"messages":[{"role":"user","content":"hi"}]}"#);
    assert!(!m.byte_exact_stream());
    let (m, _) = meter(Route::OpenAiCompatible, r#"{"model":"gpt-4o-mini","max_tokens":300,"messages":[{"role":"user","content":"hi"}]}"#);
    assert!(!m.byte_exact_stream(), "a whole answer is not a stream");
}

#[test]
fn a_byte_exact_stream_cut_short_gets_the_gateways_error_event_after_the_providers_bytes() {
    let (mut m, _) = meter(Route::AnthropicCompatible, r#"{"model":"claude-sonnet-4-6","stream":true,"max_tokens":100,"messages":[{"role":"user","content":"hi"}]}"#);
    let text = std::str::from_utf8(ANTHROPIC_SSE).unwrap();
    let cut = &text[..text.find("event: message_delta").unwrap()];
    let (out, f) = run(&mut m, cut.as_bytes(), 9, End::Complete);
    assert!(out.starts_with(cut), "the provider's bytes first, unchanged");
    assert!(out[cut.len()..].starts_with("event: error\n"), "then the error event: {}", &out[cut.len()..]);
    assert!(!f.metered.unwrap().exact, "usage never came: billed the bound");
}

#[test]
fn anthropic_to_openai_translation_matches_the_openai_chunk_shape() {
    let (mut m, _) = meter(Route::OpenAiCompatible, r#"{"model":"anthropic/claude-sonnet-4-6","stream":true,"stream_options":{"include_usage":true},"max_tokens":100,"messages":[{"role":"user","content":"hi"}]}"#);
    let (out, _) = run(&mut m, ANTHROPIC_SSE, 11, End::Complete);
    let evs = data_events(&out);
    assert_eq!(evs[0]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(evs[0]["model"], "anthropic/claude-sonnet-4-6");
    let text: String = evs.iter().filter_map(|e| e["choices"][0]["delta"]["content"].as_str()).collect();
    assert!(text.starts_with("Go to Settings > API keys"));
    assert!(evs.iter().any(|e| e["choices"][0]["finish_reason"] == "stop"));
    let last = evs.last().unwrap();
    assert_eq!(last["choices"], json!([]));
    assert_eq!(last["usage"]["prompt_tokens"], 12 + 2048);
    assert_eq!(last["x_broker"]["credits_charged"], json!(1.473));
    assert!(out.ends_with("data: [DONE]\n\n"));
}

#[test]
fn gemini_to_native_ends_with_done_and_credits() {
    let (mut m, _) = meter(Route::Native, r#"{"provider":"google","model":"gemini-2.5-flash","stream":true,"max_tokens":500,"messages":[{"role":"user","content":"hi"}]}"#);
    let (out, f) = run(&mut m, GEMINI_SSE, 13, End::Complete);
    let done = data_events(&out).pop().unwrap();
    assert_eq!(done["type"], "done");
    assert_eq!(done["usage"]["output_tokens"], 212);
    assert!(f.metered.unwrap().exact, "Gemini's finish chunk carries the final usage");
}

#[test]
fn whole_answers_are_read_whole_and_rendered_in_each_route_shape() {
    let (mut m, _) = meter(Route::OpenAiCompatible, r#"{"model":"gpt-4o-mini","max_tokens":300,"messages":[{"role":"user","content":"hi"}]}"#);
    let json = ProviderHead { status: 200, headers: vec![("content-type".into(), "application/json".into())] };
    assert!(m.start(&json).is_ok());
    let (streamed, f) = run(&mut m, OPENAI_WHOLE, 50, End::Complete);
    assert!(streamed.is_empty(), "nothing is streamed to a client that asked for a whole answer");
    let answer = f.answer.as_ref().unwrap();
    let original = std::str::from_utf8(OPENAI_WHOLE).unwrap().trim_end();
    let text = std::str::from_utf8(&answer.body).unwrap();
    assert!(text.starts_with(&original[..original.len() - 1]), "the provider's own answer, byte for byte");
    let body = whole(&f);
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["usage"]["completion_tokens"], 230);
    // 72 in at $0.15/M + 1792 cached at $0.075/M + 230 out at $0.60/M = $0.0002832 × 180 → 50.976 → 51 mc
    assert_eq!(body["x_broker"]["credits_charged"], json!(0.051));
    assert!(answer.headers.contains(&("x-credits-charged".into(), "0.051".into())));

    let (mut m, _) = meter(Route::AnthropicCompatible, r#"{"model":"claude-sonnet-4-6","max_tokens":100,"messages":[{"role":"user","content":"hi"}]}"#);
    let body = whole(&run(&mut m, ANTHROPIC_WHOLE, 9, End::Complete).1);
    assert_eq!((body["type"].clone(), body["stop_reason"].clone()), (json!("message"), json!("end_turn")));
    assert_eq!(body["usage"]["output_tokens"], 34);
    assert!(body["x_broker"]["credits_charged"].is_number());

    let (mut m, _) = meter(Route::OpenAiCompatible, r#"{"model":"google/gemini-2.5-flash","max_tokens":500,"messages":[{"role":"user","content":"hi"}]}"#);
    let body = whole(&run(&mut m, GEMINI_WHOLE, 9, End::Complete).1);
    assert!(body["choices"][0]["message"]["content"].as_str().unwrap().ends_with("with the new key."));
    assert_eq!(body["usage"]["completion_tokens"], 212);
    assert_eq!(body["model"], "google/gemini-2.5-flash");

    let (mut m, _) = meter(Route::Native, r#"{"provider":"anthropic","model":"claude-sonnet-4-6","max_tokens":100,"messages":[{"role":"user","content":"hi"}]}"#);
    let body = whole(&run(&mut m, ANTHROPIC_WHOLE, 9, End::Complete).1);
    assert_eq!(body["finish_reason"], "stop");
    assert_eq!(body["usage"]["output_tokens"], 34);
    assert!(body["credits_charged"].is_number());
}

#[test]
fn a_whole_answer_cut_or_without_usage_is_billed_the_hold() {
    let plain = r#"{"model":"claude-haiku-4-5","max_tokens":50,"messages":[{"role":"user","content":"x"}]}"#;
    for (bytes, end) in [(&ANTHROPIC_WHOLE[..100], End::Broken("connection reset".into())), (&ANTHROPIC_WHOLE[..100], End::IdleTimeout), (&b"{\"type\":\"message\",\"content\":[]}"[..], End::Complete)] {
        let (mut m, billing) = meter(Route::AnthropicCompatible, plain);
        let f = run(&mut m, bytes, 30, end.clone()).1;
        let metered = f.metered.as_ref().unwrap();
        assert!(!metered.exact, "{end:?}");
        assert_eq!(billing.charge(metered.cost_pico_usd).charged_mc, billing.hold_mc, "usage unknown: the hold ({end:?})");
        let e = f.answer.unwrap_err();
        assert_eq!(e.status(), if end == End::IdleTimeout { 504 } else { 502 });
    }
    // Not JSON at all: not the provider's answer, nothing charged.
    let (mut m, _) = meter(Route::AnthropicCompatible, plain);
    let f = run(&mut m, b"<html>oops</html>", 5, End::Complete).1;
    assert_eq!((f.answer.unwrap_err().status(), f.metered.is_none()), (502, true));
}

#[test]
fn a_stream_cut_before_usage_is_billed_the_upper_bound_and_says_so() {
    let (mut m, billing) = meter(Route::OpenAiCompatible, OPENAI_STREAM);
    let (out, f) = run(&mut m, &OPENAI_SSE[..OPENAI_SSE.len() / 2], 9, End::Broken("connection reset".into()));
    let metered = f.metered.as_ref().unwrap();
    assert!(!metered.exact);
    assert!(metered.note.as_ref().unwrap().contains("broke off"));
    // OpenAI reports nothing before the end: the bound is the hold itself, never the estimate.
    assert_eq!(billing.charge(metered.cost_pico_usd).charged_mc, billing.hold_mc);
    assert_eq!(tokens(&f).output, 300);
    assert!(out.contains("ended early"));
}

#[test]
fn a_cut_anthropic_stream_bounds_only_the_output_it_never_reported() {
    // The recorded prompt is 2060 tokens long: a request of that size.
    let body = format!(r#"{{"model":"claude-sonnet-4-6","max_tokens":100,"stream":true,"messages":[{{"role":"user","content":"{}"}}]}}"#, "x".repeat(3000));
    let (mut m, billing) = meter(Route::AnthropicCompatible, &body);
    let cut = &ANTHROPIC_SSE[..std::str::from_utf8(ANTHROPIC_SSE).unwrap().find("event: message_delta").unwrap()];
    let f = run(&mut m, cut, 5, End::IdleTimeout).1;
    // message_start reported the prompt (12 in + 2048 cache write); the output is bounded by max_tokens.
    assert_eq!(tokens(&f), Usage { input: 12, cache_write_5m: 2048, output: 100, ..Usage::default() });
    let charge = billing.charge(f.metered.as_ref().unwrap().cost_pico_usd);
    assert!(charge.charged_mc < billing.hold_mc, "a reported prompt is billed exactly, below the hold");
    let e = f.answer.unwrap_err();
    assert_eq!(e.status(), 504);
    assert!(e.public_message().contains("stalled"), "{}", e.public_message());
}

#[test]
fn garbage_from_the_provider_is_a_502_that_charges_nothing_and_never_panics() {
    let (mut m, _) = meter(Route::OpenAiCompatible, OPENAI_STREAM);
    let (out, f) = run(&mut m, b"data: [1,2]\n\ndata: \"x\"\n\ndata: 7\n\ndata: {not json\n\n", 3, End::Complete);
    assert!(out.is_empty());
    assert_eq!(f.answer.unwrap_err().status(), 502);
    assert!(f.metered.is_none());
    // Arbitrary bytes on every route and shape: no panic, always an answer.
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    for (route, body) in [
        (Route::OpenAiCompatible, OPENAI_STREAM),
        (Route::AnthropicCompatible, r#"{"model":"claude-haiku-4-5","max_tokens":10,"messages":[{"role":"user","content":"x"}]}"#),
        (Route::Native, r#"{"provider":"google","model":"gemini-2.5-flash","stream":true,"messages":[{"role":"user","content":"x"}]}"#),
    ] {
        for _ in 0..50 {
            let alphabet = b"data: {}[]\":,\n\r{\"type\":\"message_delta\",\"usage\":null,\"choices\":[0]}x";
            let bytes: Vec<u8> = (0..400)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    alphabet[(seed % alphabet.len() as u64) as usize]
                })
                .collect();
            let (mut m, _) = meter(route, body);
            let _ = run(&mut m, &bytes, 7, End::Complete);
        }
    }
}

#[test]
fn a_provider_error_event_mid_stream_is_billed_the_bound() {
    let (mut m, _) = meter(Route::AnthropicCompatible, r#"{"model":"claude-haiku-4-5","max_tokens":50,"stream":true,"messages":[{"role":"user","content":"x"}]}"#);
    let sse = b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"usage\":{\"input_tokens\":9,\"output_tokens\":1}}}\n\nevent: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n";
    let f = run(&mut m, sse, 16, End::Complete).1;
    let metered = f.metered.as_ref().unwrap();
    assert!(!metered.exact);
    assert!(metered.note.as_ref().unwrap().contains("Overloaded"));
    assert_eq!(tokens(&f), Usage { input: 9, output: 50, ..Usage::default() });
    assert_eq!(f.answer.unwrap_err().status(), 502);
}

#[test]
fn the_provider_must_answer_an_event_stream_or_json_as_asked() {
    let (mut m, _) = meter(Route::OpenAiCompatible, OPENAI_STREAM);
    let html = ProviderHead { status: 200, headers: vec![("content-type".into(), "text/html".into())] };
    assert_eq!(m.start(&html).unwrap_err().status(), 502);
    let sse = ProviderHead { status: 200, headers: vec![("content-type".into(), "text/event-stream; charset=utf-8".into())] };
    assert!(m.start(&sse).is_ok());
    // A plain call asks for a whole answer: JSON, not a stream.
    let (mut m, _) = meter(Route::OpenAiCompatible, r#"{"model":"gpt-4o-mini","max_tokens":5,"messages":[{"role":"user","content":"x"}]}"#);
    assert_eq!(m.start(&sse).unwrap_err().status(), 502);
    let json = ProviderHead { status: 200, headers: vec![("content-type".into(), "application/json; charset=utf-8".into())] };
    assert!(m.start(&json).is_ok());
}

#[test]
fn a_chat_without_max_tokens_holds_the_model_output_cap_at_its_output_price() {
    let (m, billing) = meter(Route::OpenAiCompatible, r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"no max_tokens"}]}"#);
    let (plan, units) = m.product.hold(&CreditRate::default_rate());
    // gpt-4o-mini output $0.60/M = 600,000 pico-USD a token × 1.8 / 0.01 = 0.108 mc = 108,000
    // micro-mc; its cap is 16,384 tokens: ⌈16,384 × 0.108⌉ = ⌈1,769.472⌉ = 1,770 mc.
    assert_eq!(plan.flexible, Some(FlexibleOutput { per_unit_micro_mc: 108_000, max_units: 16_384, min_units: 1 }));
    assert_eq!(units, 16_384);
    assert_eq!(billing.hold_mc - plan.fixed_mc, 1_770);
    // Input: the prompt's upper bound at $0.15/M (0.027 mc a token), rounded up once.
    let prompt = m.product.req.prompt_upper_tokens() as i64;
    assert_eq!(plan.fixed_mc, (prompt * 27).div_euclid(1000) + i64::from((prompt * 27) % 1000 != 0));
}

#[test]
fn holds_cover_the_bound_the_meter_may_charge() {
    for body in [OPENAI_STREAM, r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"no max_tokens"}]}"#] {
        let (mut m, billing) = meter(Route::OpenAiCompatible, body);
        let f = run(&mut m, b"", 1, End::IdleTimeout).1;
        let charge = billing.charge(f.metered.unwrap().cost_pico_usd);
        assert_eq!(charge.over_hold_mc, 0, "{body}");
        assert!(charge.charged_mc > 0);
    }
}

const OPENAI_TOOLS_SSE: &[u8] = include_bytes!("../../../fixtures/openai/chat-completion.tools.stream.sse");
const ANTHROPIC_TOOLS_SSE: &[u8] = include_bytes!("../../../fixtures/anthropic/messages.tools.stream.sse");
const GEMINI_TOOLS_SSE: &[u8] = include_bytes!("../../../fixtures/gemini/streamGenerateContent.tools.sse");

const TOOLS: &str = r#""tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}]"#;

fn tool_request(model: &str, stream: bool) -> String {
    format!(r#"{{"model":"{model}",{TOOLS},"stream":{stream},"stream_options":{{"include_usage":true}},"max_tokens":300,"messages":[{{"role":"user","content":"weather in Paris?"}}]}}"#)
}

/// The OpenAI SDKs' accumulation of a streamed answer: text, and tool calls by index.
fn accumulate(evs: &[Value]) -> (String, Vec<(String, String, String)>, Option<String>) {
    let mut text = String::new();
    let mut calls: Vec<(String, String, String)> = Vec::new();
    let mut finish = None;
    for e in evs {
        let Some(c) = e["choices"].get(0) else { continue };
        text.push_str(c["delta"]["content"].as_str().unwrap_or(""));
        for tc in c["delta"]["tool_calls"].as_array().into_iter().flatten() {
            let i = tc["index"].as_u64().unwrap() as usize;
            if calls.len() <= i {
                calls.resize(i + 1, Default::default());
            }
            if let Some(id) = tc["id"].as_str() {
                calls[i].0 = id.to_string();
            }
            if let Some(n) = tc["function"]["name"].as_str() {
                calls[i].1 = n.to_string();
            }
            calls[i].2.push_str(tc["function"]["arguments"].as_str().unwrap_or(""));
        }
        if let Some(f) = c["finish_reason"].as_str() {
            finish = Some(f.to_string());
        }
    }
    (text, calls, finish)
}

#[test]
fn anthropic_tool_use_streams_as_openai_tool_call_deltas() {
    let (mut m, _) = meter(Route::OpenAiCompatible, &tool_request("anthropic/claude-sonnet-4-6", true));
    let (out, f) = run(&mut m, ANTHROPIC_TOOLS_SSE, 13, End::Complete);
    let evs = data_events(&out);
    let (text, calls, finish) = accumulate(&evs);
    assert_eq!(text, "I'll look up the weather in Paris.");
    assert_eq!(calls, vec![("toolu_01Hx7KpQ2mWv9LtR3nZc8YbD".to_string(), "get_weather".to_string(), "{\"city\": \"Paris\"}".to_string())]);
    assert_eq!(finish.as_deref(), Some("tool_calls"));
    // The first tool-call delta names the call (OpenAI's shape); later ones carry only fragments.
    let first = evs.iter().find(|e| e["choices"][0]["delta"]["tool_calls"].is_array()).unwrap();
    assert_eq!(first["choices"][0]["delta"]["tool_calls"][0], json!({"index": 0, "id": "toolu_01Hx7KpQ2mWv9LtR3nZc8YbD", "type": "function", "function": {"name": "get_weather", "arguments": ""}}));
    assert_eq!(evs.last().unwrap()["usage"]["completion_tokens"], 58);
    assert!(f.metered.unwrap().exact);
}

#[test]
fn tool_calls_of_whole_answers_become_openai_tool_calls() {
    let claude = json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-6", "content": [
        {"type": "text", "text": "I'll look up the weather in Paris."},
        {"type": "tool_use", "id": "toolu_01Hx7KpQ2mWv9LtR3nZc8YbD", "name": "get_weather", "input": {"city": "Paris"}}],
        "stop_reason": "tool_use", "usage": {"input_tokens": 412, "output_tokens": 58}});
    let (mut m, _) = meter(Route::OpenAiCompatible, &tool_request("anthropic/claude-sonnet-4-6", false));
    let body = whole(&run(&mut m, claude.to_string().as_bytes(), 7, End::Complete).1);
    let msg = &body["choices"][0]["message"];
    assert_eq!(msg["content"], "I'll look up the weather in Paris.");
    assert_eq!(msg["tool_calls"], json!([{"id": "toolu_01Hx7KpQ2mWv9LtR3nZc8YbD", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]));
    assert_eq!(body["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(body["usage"]["completion_tokens"], 58);

    let gemini = json!({"candidates": [{"content": {"role": "model", "parts": [
        {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "CpwCAdHtim9kQ1xR7sYtL3vM2nP8qWzE5aB4cD6eF0gH"},
        {"functionCall": {"name": "get_weather", "args": {"city": "Rome"}}}]}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": 60, "candidatesTokenCount": 88, "totalTokenCount": 148}, "modelVersion": "gemini-3.8-flash"});
    let (mut m, billing) = meter(Route::OpenAiCompatible, &tool_request("google/gemini-3.8-flash", false));
    let body = whole(&run(&mut m, gemini.to_string().as_bytes(), 11, End::Complete).1);
    let msg = &body["choices"][0]["message"];
    assert_eq!(msg["content"], Value::Null, "no text: content is null, as OpenAI sends it");
    let calls = msg["tool_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 2, "parallel calls");
    assert_eq!(calls[0]["id"], format!("call_gw_{}_0__thought__CpwCAdHtim9kQ1xR7sYtL3vM2nP8qWzE5aB4cD6eF0gH", billing.request_id));
    assert_eq!(calls[1]["id"], format!("call_gw_{}_1", billing.request_id));
    assert_eq!(calls[1]["function"], json!({"name": "get_weather", "arguments": "{\"city\":\"Rome\"}"}));
    assert_eq!(body["choices"][0]["finish_reason"], "tool_calls", "Gemini's STOP after calls is tool_calls");
    assert_eq!(body["usage"]["completion_tokens"], 88);
}

#[test]
fn gemini_calls_stream_as_whole_deltas_and_openai_passes_through() {
    let (mut m, _) = meter(Route::OpenAiCompatible, &tool_request("google/gemini-3.8-flash", true));
    let (out, _) = run(&mut m, GEMINI_TOOLS_SSE, 5, End::Complete);
    let (_, calls, finish) = accumulate(&data_events(&out));
    assert_eq!(calls.iter().map(|c| c.2.as_str()).collect::<Vec<_>>(), ["{\"city\":\"Paris\"}", "{\"city\":\"Rome\"}"]);
    assert_eq!(finish.as_deref(), Some("tool_calls"));
    assert!(out.ends_with("data: [DONE]\n\n"));

    let (mut m, _) = meter(Route::OpenAiCompatible, &tool_request("gpt-4o-mini", true));
    let (out, _) = run(&mut m, OPENAI_TOOLS_SSE, 9, End::Complete);
    let original = std::str::from_utf8(OPENAI_TOOLS_SSE).unwrap();
    assert!(out.starts_with(&original[..original.find("\"choices\":[],").unwrap() - 200]), "OpenAI's own stream is passed through");
    let (_, calls, finish) = accumulate(&data_events(&out));
    assert_eq!(calls.len(), 2);
    assert_eq!(finish.as_deref(), Some("tool_calls"));

}

#[test]
fn anthropic_tool_use_passes_through_on_its_own_route() {
    let body = r#"{"model":"claude-sonnet-4-6","max_tokens":300,"tools":[{"name":"get_weather","input_schema":{"type":"object"}}],"messages":[{"role":"user","content":"weather?"}]}"#.to_string();
    let (mut m, _) = meter(Route::AnthropicCompatible, &body.replacen("{\"model\"", "{\"stream\":true,\"model\"", 1));
    let (out, _) = run(&mut m, ANTHROPIC_TOOLS_SSE, 6, End::Complete);
    assert!(out.contains(r#""partial_json":"ris\"}""#), "input_json_delta events pass unchanged");
}

#[test]
fn holds_cover_images_and_thinking_budgets() {
    let png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";
    for model in ["gpt-4o-mini", "anthropic/claude-haiku-4-5", "google/gemini-2.5-flash", "gpt-5.6-sol"] {
        let body = format!(
            r#"{{"model":"{model}","max_tokens":40,"messages":[{{"role":"user","content":[{{"type":"text","text":"what?"}},{{"type":"image_url","image_url":{{"url":"https://example.com/a.png"}}}},{{"type":"image_url","image_url":{{"url":"data:image/png;base64,{png}"}}}}]}}]}}"#
        );
        let (mut m, billing) = meter(Route::OpenAiCompatible, &body);
        let prompt = m.product.req.prompt_upper_tokens();
        assert!(prompt < body.len() as u64 + 80_000, "{model}: a URL image counts at its model's maximum, not more");
        // Cut before any usage: the bound charged is at most the hold.
        let f = run(&mut m, b"", 1, End::IdleTimeout).1;
        let charge = billing.charge(f.metered.unwrap().cost_pico_usd);
        assert_eq!(charge.over_hold_mc, 0, "{model}");
        assert_eq!(charge.charged_mc, billing.hold_mc, "{model}: OpenAI-style silence charges the hold");
    }
    // Without max_tokens, admission must grant room for a thinking budget.
    let (m, _) = meter(Route::OpenAiCompatible, r#"{"model":"anthropic/claude-haiku-4-5","reasoning_effort":"low","messages":[{"role":"user","content":"x"}]}"#);
    let (plan, _) = m.product.hold(&CreditRate::default_rate());
    assert_eq!(plan.flexible.unwrap().min_units, 1025);
}

#[test]
fn gemini_is_billed_by_the_model_that_served_it() {
    let body = r#"{"provider":"google","model":"gemini-2.5-flash","max_tokens":500,"messages":[{"role":"user","content":"hi"}]}"#;
    let served_as = |version: &str| {
        let sse = std::str::from_utf8(GEMINI_WHOLE).unwrap().replace(r#""modelVersion": "gemini-2.5-flash""#, &format!(r#""modelVersion": "{version}""#));
        let (mut m, _) = meter(Route::Native, body);
        run(&mut m, sse.as_bytes(), 11, End::Complete).1.metered.unwrap()
    };
    // The fixture's usage: 31 prompt tokens; 26 candidates + 186 thoughts = 212 output tokens.
    let m = served_as("gemini-2.5-flash");
    assert_eq!((m.cost_pico_usd, m.exact), (31 * 300_000 + 212 * 2_500_000, true), "$0.30 / $2.50 per M");
    let m = served_as("gemini-3.5-flash");
    assert_eq!((m.cost_pico_usd, m.exact), (31 * 1_500_000 + 212 * 9_000_000, true), "billed at gemini-3.5-flash's $1.50 / $9.00");
    assert!(m.note.unwrap().contains("served by gemini-3.5-flash"));
    let m = served_as("models/gemini-2.5-flash-001");
    assert_eq!(m.cost_pico_usd, 31 * 300_000 + 212 * 2_500_000, "a snapshot of the requested model");
    let m = served_as("gemini-9-ultra");
    assert!(!m.exact && m.warning.unwrap().contains("gemini-9-ultra"));
    let (_, billing) = meter(Route::Native, body);
    assert_eq!(billing.charge(m.cost_pico_usd).charged_mc, billing.hold_mc, "an unknown model: the hold");
}

#[test]
fn an_answer_served_at_another_tier_is_billed_the_hold_and_warned() {
    let sse = std::str::from_utf8(OPENAI_SSE).unwrap().replace(r#""service_tier":"default""#, r#""service_tier":"priority""#);
    let (mut m, billing) = meter(Route::OpenAiCompatible, OPENAI_STREAM);
    let (out, f) = run(&mut m, sse.as_bytes(), 7, End::Complete);
    assert!(out.ends_with("data: [DONE]\n\n"), "a whole answer, not a broken one");
    let metered = f.metered.unwrap();
    assert!(!metered.exact);
    assert!(metered.warning.unwrap().contains("`priority` service tier"));
    assert_eq!(billing.charge(metered.cost_pico_usd).charged_mc, billing.hold_mc);
    let gem = std::str::from_utf8(GEMINI_WHOLE).unwrap().replace(r#""serviceTier": "standard""#, r#""serviceTier": "priority""#);
    let (mut m, billing) = meter(Route::Native, r#"{"provider":"google","model":"gemini-2.5-flash","max_tokens":500,"messages":[{"role":"user","content":"hi"}]}"#);
    let f = run(&mut m, gem.as_bytes(), 11, End::Complete).1;
    assert!(f.answer.is_ok(), "a whole answer, billed the hold");
    let metered = f.metered.unwrap();
    assert_eq!(billing.charge(metered.cost_pico_usd).charged_mc, billing.hold_mc);
    // The standard tier is asked for on every provider.
    for (model, field, tier) in [("gpt-4o-mini", "service_tier", "default"), ("anthropic/claude-haiku-4-5", "service_tier", "standard_only")] {
        let (m, _) = meter(Route::OpenAiCompatible, &format!(r#"{{"model":"{model}","service_tier":"auto","max_tokens":5,"messages":[{{"role":"user","content":"x"}}]}}"#));
        let up = m.product.upstream(5);
        let sent: Value = serde_json::from_slice(&up.body).unwrap();
        assert_eq!(sent[field], tier, "{model}");
    }
}
