use super::*;
use serde_json::json;

const PNG_1X1: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";

#[test]
fn native_request_parses() {
    let r = parse_native(br#"{"provider":"openai","model":"gpt-4o-mini","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hi"}],"max_tokens":50}"#).unwrap();
    assert_eq!(r.provider, Provider::OpenAi);
    assert_eq!(r.system.as_deref(), Some("be brief"));
    assert_eq!(r.messages.len(), 1);
    assert_eq!(r.messages[0].text(), "hi");
    assert_eq!(r.max_tokens, Some(50));
    assert!(!r.stream);
}

#[test]
fn bad_inputs_get_clear_errors() {
    for (body, needle) in [
        (&b"not json"[..], "not valid JSON"),
        (b"[1]", "JSON object"),
        (br#"{"provider":"mistral","model":"x","messages":[{"role":"user","content":"a"}]}"#, "unknown provider"),
        (br#"{"provider":"openai","messages":[{"role":"user","content":"a"}]}"#, "`model`"),
        (br#"{"provider":"openai","model":"m","messages":[]}"#, "must not be empty"),
        (br#"{"provider":"openai","model":"m","messages":[{"role":"user","content":"a"}],"max_tokens":-1}"#, "positive integer"),
        (br#"{"provider":"openai","model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]}"#, "https://"),
        (br#"{"provider":"openai","model":"m","messages":[{"role":"user","content":"a"}],"logit_bias":{}}"#, "`logit_bias` is not supported"),
        (br#"{"provider":"openai","model":"m","messages":[{"role":"user","content":"a"},{"role":"tool","tool_call_id":"c","content":"r"}]}"#, "not supported on this route"),
    ] {
        let e = parse_native(body).unwrap_err();
        assert_eq!(e.status(), 400);
        assert!(e.message.contains(needle), "{} missing {needle}", e.message);
    }
}

#[test]
fn openai_route_splits_provider_prefix() {
    let r = parse_openai(br#"{"model":"anthropic/claude-haiku-4-5","messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":true}}"#).unwrap();
    assert_eq!(r.provider, Provider::Anthropic);
    assert_eq!(r.model, "claude-haiku-4-5");
    assert!(r.stream && r.include_usage);
    let r = parse_openai(br#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"max_completion_tokens":7}"#).unwrap();
    assert_eq!((r.provider, r.max_tokens), (Provider::OpenAi, Some(7)));
    for bad in [r#""n":2"#, r#""n":2.0"#, r#""n":"2""#, r#""service_tier":"priority""#, r#""service_tier":"flex""#] {
        let body = format!(r#"{{"model":"gpt-4o",{bad},"messages":[{{"role":"user","content":"hi"}}]}}"#);
        assert_eq!(parse_openai(body.as_bytes()).unwrap_err().status(), 400, "{bad}");
    }
    for ok in [r#""n":1"#, r#""n":1.0"#, r#""n":null"#, r#""service_tier":"auto""#, r#""service_tier":null"#, r#""store":false"#] {
        let body = format!(r#"{{"model":"gpt-4o",{ok},"messages":[{{"role":"user","content":"hi"}}]}}"#);
        assert!(parse_openai(body.as_bytes()).is_ok(), "{ok}");
    }
}

#[test]
fn only_priced_fields_are_accepted() {
    let openai = |extra: &str, model: &str| parse_openai(format!(r#"{{"model":"{model}",{extra},"messages":[{{"role":"user","content":"hi"}}]}}"#).as_bytes());
    let e = openai(r#""store":true"#, "gpt-4o").unwrap_err();
    assert!(e.message.contains("`store`"), "{}", e.message);
    let e = openai(r#""prompt_magic":1"#, "gpt-4o").unwrap_err();
    assert!(e.message.contains("`prompt_magic` is not supported"), "{}", e.message);
    // What a provider cannot honour is refused for it, not dropped.
    let e = openai(r#""logit_bias":{"1":2}"#, "anthropic/claude-haiku-4-5").unwrap_err();
    assert!(e.message.contains("`logit_bias` is not supported for anthropic"), "{}", e.message);
    let e = openai(r#""verbosity":"low""#, "google/gemini-2.5-flash").unwrap_err();
    assert!(e.message.contains("`verbosity` is not supported for google"), "{}", e.message);
    assert!(openai(r#""seed":7"#, "google/gemini-2.5-flash").is_ok());
    assert!(openai(r#""seed":7"#, "anthropic/claude-haiku-4-5").is_err());
    assert!(openai(r#""user":"u1","metadata":{"a":"b"}"#, "anthropic/claude-haiku-4-5").is_ok(), "hints are dropped");
    let anthropic = |extra: &str| parse_anthropic(format!(r#"{{"model":"claude-haiku-4-5","max_tokens":5,{extra},"messages":[{{"role":"user","content":"hi"}}]}}"#).as_bytes());
    for bad in [r#""inference_geo":"us""#, r#""mcp_servers":[]"#, r#""container":"c""#, r#""betas_x":1"#, r#""output_config":{"task_budget":1}"#] {
        assert_eq!(anthropic(bad).unwrap_err().status(), 400, "{bad}");
    }
    let r = anthropic(r#""stop_sequences":["END"],"top_k":5,"output_config":{"effort":"low"}"#).unwrap();
    assert_eq!(r.sampling.stop, vec!["END".to_string()]);
}

#[test]
fn agent_options_are_translated_or_refused_per_provider() {
    let tools = r#""tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}]"#;
    let openai = |extra: &str, model: &str| parse_openai(format!(r#"{{"model":"{model}",{extra},"messages":[{{"role":"user","content":"hi"}}]}}"#).as_bytes());
    for model in ["gpt-4o-mini", "anthropic/claude-haiku-4-5", "google/gemini-2.5-flash"] {
        let r = openai(&format!(r#"{tools},"tool_choice":"required","response_format":{{"type":"json_schema","json_schema":{{"name":"x","schema":{{"type":"object"}}}}}},"reasoning_effort":"low""#), model).unwrap();
        assert_eq!(r.agent.tools[0].name, "get_weather", "{model}");
    }
    for (extra, model, needle) in [
        (r#""parallel_tool_calls":false"#, "google/gemini-2.5-flash", "parallel_tool_calls: false"),
        (r#""response_format":{"type":"json_object"}"#, "anthropic/claude-sonnet-4-6", "json_object"),
        (r#""reasoning_effort":"high","max_tokens":1000"#, "anthropic/claude-haiku-4-5", "above 1024"),
        (r#""tools":[{"type":"custom","custom":{"name":"x"}}]"#, "google/gemini-2.5-flash", "only `type: \"function\"`"),
    ] {
        let e = openai(extra, model).unwrap_err();
        assert!(e.message.contains(needle), "{model} {extra}: {}", e.message);
    }
    assert!(openai(r#""parallel_tool_calls":false"#, "anthropic/claude-haiku-4-5").is_ok());
    assert!(openai(r#""response_format":{"type":"json_object"}"#, "google/gemini-2.5-flash").is_ok());
    assert!(openai(r#""reasoning_effort":"high","max_tokens":1000"#, "anthropic/claude-sonnet-4-6").is_ok(), "adaptive thinking has no budget to fit");
}

#[test]
fn anthropic_route_requires_max_tokens_refuses_server_tools_and_checks_thinking() {
    assert!(parse_anthropic(br#"{"model":"claude-haiku-4-5","messages":[{"role":"user","content":"hi"}]}"#).is_err());
    let e = parse_anthropic(br#"{"model":"claude-haiku-4-5","max_tokens":5,"tools":[{"type":"web_search_20250305","name":"web_search"}],"messages":[{"role":"user","content":"hi"}]}"#).unwrap_err();
    assert!(e.message.contains("server tools"));
    let r = parse_anthropic(br#"{"model":"claude-haiku-4-5","max_tokens":5,"system":[{"type":"text","text":"sys"}],"messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}]}"#).unwrap();
    assert_eq!(r.system.as_deref(), Some("sys"));
    let thinking = |t: &str, max: u64| parse_anthropic(format!(r#"{{"model":"claude-haiku-4-5","max_tokens":{max},"thinking":{t},"messages":[{{"role":"user","content":"hi"}}]}}"#).as_bytes());
    assert_eq!(thinking(r#"{"type":"enabled","budget_tokens":2000}"#, 4000).unwrap().min_output_tokens(), 2001);
    assert!(thinking(r#"{"type":"enabled","budget_tokens":4000}"#, 4000).unwrap_err().message.contains("below `max_tokens`"));
    assert!(thinking(r#"{"type":"enabled","budget_tokens":500}"#, 4000).is_err());
    assert!(thinking(r#"{"type":"enabled"}"#, 4000).is_err());
    assert!(thinking(r#"{"type":"adaptive"}"#, 10).is_ok());
    assert!(thinking(r#"{"type":"sometimes"}"#, 10).is_err());
}

#[test]
fn the_prompt_bound_is_the_text_bytes_plus_each_image_bound() {
    let body = br#"{"provider":"openai","model":"gpt-4o-mini","messages":[{"role":"user","content":"hello there"}]}"#;
    let r = parse_native(body).unwrap();
    assert_eq!(r.prompt_upper_tokens(), body.len() as u64 + PROMPT_OVERHEAD_TOKENS);
    // An inline image counts at its exact token cost, not its base64 length; a URL at the maximum.
    let body = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{PNG_1X1}")}},
        {"type": "image_url", "image_url": {"url": "https://example.com/a.png", "detail": "low"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/b.png"}},
    ]}]})
    .to_string();
    let r = parse_openai(body.as_bytes()).unwrap();
    let text_bytes = body.len() as u64 - PNG_1X1.len() as u64;
    assert_eq!(r.image_tokens(), (85 + 170) + 85 + (85 + 170 * 8));
    assert_eq!(r.prompt_upper_tokens(), text_bytes + r.image_tokens() + PROMPT_OVERHEAD_TOKENS);
    // The same request for Claude and Gemini counts by their rules.
    let claude = body.replace("gpt-4o", "anthropic/claude-sonnet-4-6");
    assert_eq!(parse_openai(claude.as_bytes()).unwrap().image_tokens(), 1 + 1600 + 1600);
    let gemini = body.replace("gpt-4o", "google/gemini-3.8-flash");
    assert_eq!(parse_openai(gemini.as_bytes()).unwrap().image_tokens(), 3 * 2240);
}

#[test]
fn translated_thinking_needs_room_for_its_budget() {
    let r = parse_openai(br#"{"model":"anthropic/claude-haiku-4-5","reasoning_effort":"low","messages":[{"role":"user","content":"hi"}]}"#).unwrap();
    assert_eq!(r.min_output_tokens(), MIN_THINKING_BUDGET + 1);
    let r = parse_openai(br#"{"model":"anthropic/claude-opus-5-5","reasoning_effort":"low","messages":[{"role":"user","content":"hi"}]}"#).unwrap();
    assert_eq!(r.min_output_tokens(), 1, "adaptive thinking fits any max_tokens");
}

#[test]
fn images_a_model_refuses_are_refused_before_anything_is_held() {
    // GPT-5.6 keeps an image's size under `auto`: one over 30,000 patches is refused by OpenAI.
    let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
    png.extend(7000u32.to_be_bytes());
    png.extend(7000u32.to_be_bytes());
    png.extend([8, 6, 0, 0, 0]);
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b64: String = png
        .chunks(3)
        .flat_map(|c| {
            let n = c.iter().enumerate().fold(0u32, |a, (i, b)| a | u32::from(*b) << (16 - 8 * i));
            (0..4).map(move |i| if i <= c.len() { A[(n >> (18 - 6 * i) & 63) as usize] as char } else { '=' })
        })
        .collect();
    let body = |model: &str| json!({"model": model, "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{b64}")}}]}]}).to_string();
    assert!(parse_openai(body("gpt-5.6-sol").as_bytes()).unwrap_err().message.contains("30000"));
    assert!(parse_openai(body("gpt-4o").as_bytes()).is_ok());
}

#[test]
fn claude_codes_request_is_accepted_as_sent() {
    // Claude Code 2.1.328's `claude -p` body (captured, texts shortened): a system array with
    // `cache_control`, custom tools with `defer_loading`, adaptive thinking with `display`,
    // `context_management`, `metadata.user_id`, a `system` turn with its own `output_config`.
    let body = include_bytes!("../../../fixtures/anthropic/claude-code.request.json");
    let r = parse_anthropic(body).unwrap();
    assert_eq!(r.model, "claude-opus-5-5");
    assert_eq!(r.max_tokens, Some(128_000));
    assert!(r.stream);
    assert_eq!(r.raw["context_management"]["edits"][0]["type"], "clear_thinking_20251015");
    assert!(r.raw["metadata"]["user_id"].is_string());
    for (bad, says) in [
        (r#""context_management":{"edits":[{"type":"compact_20260112"}]}"#, "compact_20260112"),
        (r#""context_management":{"edits":[{"keep":"all"}]}"#, "needs a `type`"),
        (r#""context_management":{"edits":{},"x":1}"#, "`x`"),
        (r#""context_management":[]"#, "must be an object"),
        (r#""thinking":{"type":"adaptive","display":"omitted","budget":1}"#, "`budget`"),
    ] {
        let b = format!(r#"{{"model":"claude-haiku-4-5","max_tokens":10,"messages":[{{"role":"user","content":"x"}}],{bad}}}"#);
        let e = parse_anthropic(b.as_bytes()).unwrap_err();
        assert!(e.message.contains(says), "{bad}: {}", e.message);
    }
}
