//! The Responses meter against the providers' recorded streams (`fixtures/`): OpenAI passed
//! through, Anthropic and Gemini translated, streamed and whole, complete and cut.

use super::*;
use crate::config::Secret;
use crate::metering::{Admitted, Billing};
use crate::ratelimit::RateState;

const OPENAI_SSE: &[u8] = include_bytes!("../../../fixtures/openai/responses.stream.sse");
const ANTHROPIC_SSE: &[u8] = include_bytes!("../../../fixtures/anthropic/messages.stream.sse");
const ANTHROPIC_TOOLS_SSE: &[u8] = include_bytes!("../../../fixtures/anthropic/messages.tools.stream.sse");
const GEMINI_TOOLS_SSE: &[u8] = include_bytes!("../../../fixtures/gemini/streamGenerateContent.tools.sse");

fn meter(body: Value) -> ResponsesMeter {
    let req = crate::responses::parse(body.to_string().as_bytes()).unwrap();
    let endpoint = Endpoint { base_url: "http://mock".into(), api_key: Secret::new("k") };
    let product = ResponsesProduct::price(req, "2026-11-23", endpoint, 1_700_000_000).unwrap();
    let rate = CreditRate::default_rate();
    let (plan, units) = product.hold(&rate);
    let granted = product.req.chat.max_tokens.unwrap_or(units);
    // The hold admission takes for the whole output cap (the hold figures are checked by hand in
    // chat_tests: this meter shares chat's).
    let hold = plan.worst_case_mc(units);
    let admitted = Admitted { sub_key: None, key_id: "key_1".into(), plan: "pro".into(), hold_mc: hold, balance_after_mc: 1_000_000 - hold, granted_units: granted, rate: RateState { limit: 100, remaining: 99, reset_ms: 1 }, class: "ai".into() };
    ResponsesMeter::new(product, Billing::new("req_t", rate, &admitted).into(), granted)
}

fn run(m: &mut ResponsesMeter, bytes: &[u8], step: usize, end: End) -> (String, Finish) {
    let mut out = Vec::new();
    for c in bytes.chunks(step) {
        out.extend(m.push(c));
    }
    let f = m.finish(end);
    out.extend(f.tail.iter());
    (String::from_utf8(out).unwrap(), f)
}

/// (event name, data) of each event.
fn events(s: &str) -> Vec<(String, Value)> {
    s.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let name = e.lines().find_map(|l| l.strip_prefix("event: ")).unwrap_or("").to_string();
            let data = e.lines().find_map(|l| l.strip_prefix("data: ")).unwrap_or("null");
            (name, serde_json::from_str(data).unwrap())
        })
        .collect()
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

#[test]
fn an_openai_stream_is_openais_bytes_and_is_charged_its_completed_usage() {
    let mut m = meter(json!({"model": "gpt-4o-mini", "input": "Weather in Paris?", "stream": true}));
    assert!(m.byte_exact_stream(), "the engine may pipe it");
    let (out, f) = run(&mut m, OPENAI_SSE, 13, End::Complete);
    assert_eq!(out.as_bytes(), OPENAI_SSE, "byte for byte, the terminal event included");
    // 72 in at $0.15/M + 1792 cached at $0.075/M + 7 out at $0.60/M = $0.0001494 (the bill: 27 mc)
    let metered = f.metered.as_ref().unwrap();
    assert!(metered.exact);
    assert_eq!(metered.cost_pico_usd, 72 * 150_000 + 1792 * 75_000 + 7 * 600_000);
    assert_eq!(tokens(&f), Usage { input: 72, cached_input: 1792, output: 7, ..Usage::default() });
    let translated = meter(json!({"model": "anthropic/claude-haiku-4-5", "input": "hi", "stream": true}));
    assert!(!translated.byte_exact_stream(), "a translated stream is written, not piped");
}

#[test]
fn an_openai_whole_answer_is_the_completed_response_object() {
    let mut m = meter(json!({"model": "gpt-4o-mini", "input": "Weather in Paris?"}));
    assert!(m.stream_head().is_none());
    let (out, f) = run(&mut m, OPENAI_SSE, 64, End::Complete);
    assert!(out.is_empty(), "nothing is streamed");
    let body = whole(&f);
    assert_eq!((body["object"].clone(), body["status"].clone()), (json!("response"), json!("completed")));
    assert_eq!(body["output"][0]["content"][0]["text"], "It is 18C in Paris.");
    assert_eq!(body["x_broker"]["credits_charged"], json!(0.027));
    assert!(f.answer.as_ref().unwrap().headers.contains(&("x-credits-charged".to_string(), "0.027".to_string())));
}

#[test]
fn a_cut_openai_stream_ends_with_response_failed_and_is_billed_the_bound() {
    let mut m = meter(json!({"model": "gpt-4o-mini", "input": "hi", "stream": true, "max_output_tokens": 100}));
    let original = std::str::from_utf8(OPENAI_SSE).unwrap();
    let cut = original.find("event: response.output_text.done").unwrap();
    let (out, f) = run(&mut m, &OPENAI_SSE[..cut], 50, End::Broken("reset".into()));
    let (name, last) = events(&out).pop().unwrap();
    assert_eq!(name, "response.failed");
    assert_eq!(last["response"]["id"], "resp_0a1b2c3d4e5f6071800068f6fbfbf310819395ae9412e4d33a", "OpenAI's own id");
    assert!(last["response"]["error"]["message"].as_str().unwrap().contains("broke off"));
    let metered = f.metered.as_ref().unwrap();
    assert!(!metered.exact);
    assert_eq!(tokens(&f).output, 100, "every output token allowed");
}

#[test]
fn an_anthropic_stream_becomes_responses_events_in_order() {
    let mut m = meter(json!({"model": "anthropic/claude-haiku-4-5", "input": "How do I rotate a key?", "stream": true, "max_output_tokens": 500}));
    let (out, f) = run(&mut m, ANTHROPIC_SSE, 9, End::Complete);
    let evs = events(&out);
    let names: Vec<&str> = evs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names[..4], ["response.created", "response.in_progress", "response.output_item.added", "response.content_part.added"]);
    assert_eq!(names[names.len() - 4..], ["response.output_text.done", "response.content_part.done", "response.output_item.done", "response.completed"], "{names:?}");
    for (i, (name, v)) in evs.iter().enumerate() {
        assert_eq!((v["type"].as_str(), v["sequence_number"].as_u64()), (Some(name.as_str()), Some(i as u64)));
    }
    let text: String = evs.iter().filter(|(n, _)| n == "response.output_text.delta").map(|(_, v)| v["delta"].as_str().unwrap()).collect();
    assert!(text.starts_with("Go to Settings"));
    let (_, done) = evs.last().unwrap();
    assert_eq!(done["response"]["output"][0]["content"][0]["text"], text);
    assert_eq!(done["response"]["model"], "anthropic/claude-haiku-4-5");
    // 12 in + 2048 cache writes (5 min) + 31 out: usage as the client sees it counts all prompt tokens.
    assert_eq!(done["response"]["usage"], json!({"input_tokens": 2060, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 31, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 2091}));
    assert!(done["x_broker"]["credits_charged"].as_f64().unwrap() > 0.0);
    assert_eq!(tokens(&f), Usage { input: 12, cache_write_5m: 2048, output: 31, ..Usage::default() });
}

#[test]
fn anthropic_tool_use_becomes_a_function_call_item() {
    let tools = json!([{"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]);
    let mut m = meter(json!({"model": "anthropic/claude-haiku-4-5", "input": "weather?", "tools": tools, "stream": true}));
    let (out, _) = run(&mut m, ANTHROPIC_TOOLS_SSE, 17, End::Complete);
    let evs = events(&out);
    let args: String = evs.iter().filter(|(n, _)| n == "response.function_call_arguments.delta").map(|(_, v)| v["delta"].as_str().unwrap()).collect();
    assert_eq!(args, "{\"city\": \"Paris\"}");
    let (_, done) = evs.iter().find(|(n, _)| n == "response.function_call_arguments.done").unwrap();
    assert_eq!(done["arguments"], args);
    let (_, last) = evs.last().unwrap();
    let call = last["response"]["output"].as_array().unwrap().iter().find(|i| i["type"] == "function_call").unwrap().clone();
    assert_eq!((call["call_id"].clone(), call["name"].clone(), call["status"].clone()), (json!("toolu_01Hx7KpQ2mWv9LtR3nZc8YbD"), json!("get_weather"), json!("completed")));
    let mut m = meter(json!({"model": "anthropic/claude-haiku-4-5", "input": "weather?", "tools": tools}));
    let (_, f) = run(&mut m, ANTHROPIC_TOOLS_SSE, 64, End::Complete);
    assert_eq!(whole(&f)["output"], last["response"]["output"], "the whole answer has the stream's items");
}

#[test]
fn gemini_calls_carry_their_thought_signature_in_the_call_id() {
    let tools = json!([{"type": "function", "name": "get_weather", "parameters": {"type": "object"}}]);
    let mut m = meter(json!({"model": "google/gemini-3.8-flash", "input": "weather?", "tools": tools}));
    let (_, f) = run(&mut m, GEMINI_TOOLS_SSE, 40, End::Complete);
    let body = whole(&f);
    let calls = body["output"].as_array().unwrap();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0]["call_id"], "call_gw_req_t_0__thought__CpwCAdHtim9kQ1xR7sYtL3vM2nP8qWzE5aB4cD6eF0gH");
    assert_eq!(calls[1]["arguments"], "{\"city\":\"Rome\"}");
    assert_eq!(body["status"], "completed");
    assert_eq!(tokens(&f), Usage { input: 64, output: 88, ..Usage::default() }, "thoughts are billed as output");
}

#[test]
fn a_translated_stream_cut_short_fails_in_band_and_garbage_is_a_clean_502() {
    let mut m = meter(json!({"model": "anthropic/claude-haiku-4-5", "input": "hi", "stream": true, "max_output_tokens": 50}));
    let half = &ANTHROPIC_SSE[..ANTHROPIC_SSE.len() / 2];
    let (out, f) = run(&mut m, half, 11, End::IdleTimeout);
    let (name, last) = events(&out).pop().unwrap();
    assert_eq!((name.as_str(), last["response"]["status"].as_str()), ("response.failed", Some("failed")));
    assert!(last["response"]["error"]["message"].as_str().unwrap().contains("stalled"));
    assert!(!f.metered.as_ref().unwrap().exact);
    let mut m = meter(json!({"model": "anthropic/claude-haiku-4-5", "input": "hi"}));
    let (_, f) = run(&mut m, b"<html>bad gateway</html>", 8, End::Complete);
    assert_eq!(f.answer.unwrap_err().status(), 502);
    assert!(f.metered.is_none(), "nothing charged");
}

#[test]
fn claudes_thinking_becomes_a_reasoning_item_carrying_its_signature() {
    let sse = concat!(
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"usage\":{\"input_tokens\":10,\"output_tokens\":1}}}\n\n",
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":\"\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"Let me\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\" think.\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"signature_delta\",\"signature\":\"EqQBCkYIBxgC\"}}\n\n",
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi.\"}}\n\n",
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n",
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":9}}\n\n",
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
    );
    let mut m = meter(json!({"model": "anthropic/claude-haiku-4-5", "input": "hi", "stream": true, "reasoning": {"effort": "low"}, "max_output_tokens": 2000}));
    let (out, _) = run(&mut m, sse.as_bytes(), 23, End::Complete);
    let evs = events(&out);
    let names: Vec<&str> = evs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names[2..8], ["response.output_item.added", "response.reasoning_summary_part.added", "response.reasoning_summary_text.delta", "response.reasoning_summary_text.delta", "response.reasoning_summary_text.done", "response.reasoning_summary_part.done"]);
    let (_, last) = evs.last().unwrap();
    assert_eq!(last["response"]["output"][0], json!({"id": "rs_req_t_0", "type": "reasoning", "summary": [{"type": "summary_text", "text": "Let me think."}], "encrypted_content": "claude-thinking.v1:EqQBCkYIBxgC"}));
    assert_eq!(last["response"]["output"][1]["content"][0]["text"], "Hi.");
}
