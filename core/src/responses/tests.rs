//! Parsing the Responses request: what is forwarded, translated, dropped and refused.

use super::*;
use crate::chat::messages::{Part, Role};
use crate::chat::options::{Effort, ResponseFormat, ToolChoice};

fn parse_json(v: Value) -> Result<ResponsesRequest, ApiError> {
    parse(v.to_string().as_bytes())
}

const FIXTURE: &str = include_str!("../../../fixtures/openai/responses.request.json");

#[test]
fn what_codex_sends_is_accepted_and_forwarded_to_openai_without_storing() {
    let r = parse(FIXTURE.as_bytes()).unwrap();
    assert_eq!((r.provider(), r.chat.model.as_str(), r.stream()), (Provider::OpenAi, "gpt-5.6-luna", true));
    let body = r.openai_body(4096);
    assert_eq!((body["store"].clone(), body["stream"].clone(), body["max_output_tokens"].clone()), (json!(false), json!(true), json!(4096)));
    assert_eq!(body["include"], json!(["reasoning.encrypted_content"]));
    assert_eq!(body["prompt_cache_key"], "0199e1a2-7c4d-7b1e-9f3a-5d6c7b8a9e0f");
    assert_eq!(body["input"].as_array().unwrap().len(), 5, "items go to OpenAI as they came");
    // An absent `store` is sent as false too (OpenAI's default would store).
    let r = parse_json(json!({"model": "gpt-5.6-luna", "input": "hi"})).unwrap();
    assert_eq!(r.openai_body(16)["store"], false);
}

#[test]
fn a_tool_loop_is_translated_into_chat_turns() {
    let mut v: Value = serde_json::from_str(FIXTURE).unwrap();
    v["model"] = json!("anthropic/claude-haiku-4-5");
    let r = parse_json(v).unwrap();
    assert_eq!(r.chat.system.as_deref(), Some("You are a coding agent running in a terminal.\n\n<permissions instructions>sandbox: read-only</permissions instructions>"));
    let m = &r.chat.messages;
    assert_eq!(m.iter().map(|x| x.role).collect::<Vec<_>>(), [Role::User, Role::Assistant, Role::User], "OpenAI's reasoning item is dropped");
    assert_eq!(m[1].parts.len(), 1);
    let Part::ToolCall(call) = &m[1].parts[0] else { panic!("{:?}", m[1]) };
    assert_eq!((call.id.as_str(), call.name.as_str(), call.arguments.clone()), ("call_Kp3x9QmZ2vLw8RtY7nHc4JdB", "get_weather", json!({"city": "Paris"})));
    let Part::ToolResult(res) = &m[2].parts[0] else { panic!() };
    assert_eq!((res.name.as_str(), res.text()), ("get_weather", "18C, light rain".to_string()));
    let a = &r.chat.agent;
    assert_eq!(a.tools[0].name, "get_weather");
    assert_eq!((a.tool_choice.clone(), a.parallel_tool_calls), (Some(ToolChoice::Auto), Some(false)));
    assert_eq!(a.effort, Some(Effort::Medium));
    let g = parse_json(json!({"model": "google/gemini-3.8-flash", "input": "hi", "reasoning": {"effort": "low"},
        "text": {"format": {"type": "json_schema", "name": "w", "schema": {"type": "object"}, "strict": true}}, "tool_choice": {"type": "function", "name": "f"},
        "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}}]}))
    .unwrap();
    assert_eq!(g.chat.agent.effort, Some(Effort::Low));
    assert_eq!(g.chat.agent.response_format, Some(ResponseFormat::JsonSchema { name: "w".into(), schema: json!({"type": "object"}) }));
    assert_eq!(g.chat.agent.tool_choice, Some(ToolChoice::Named("f".into())));
}

#[test]
fn the_agents_sdk_replays_output_items_as_input() {
    let r = parse_json(json!({"model": "google/gemini-3.8-flash", "input": [
        {"role": "user", "content": "weather?"},
        {"id": "fc_1", "type": "function_call", "status": "completed", "call_id": "call_a", "name": "get_weather", "arguments": "{\"city\":\"Rome\"}"},
        {"type": "function_call_output", "call_id": "call_a", "output": [{"type": "input_text", "text": "21C"}]},
        {"id": "msg_1", "type": "message", "role": "assistant", "status": "completed", "content": [{"type": "output_text", "text": "21C in Rome.", "annotations": [], "logprobs": []}]},
        {"role": "user", "content": [{"type": "input_text", "text": "thanks"}, {"type": "input_image", "image_url": "https://example.com/a.png", "detail": "low"}]},
    ]}))
    .unwrap();
    assert_eq!(r.chat.messages.len(), 5);
    assert_eq!(r.chat.messages[3].text(), "21C in Rome.");
    assert!(matches!(r.chat.messages[4].parts[1], Part::Image(_)));
}

#[test]
fn state_priced_tools_and_unknown_fields_are_400s_naming_them() {
    for (extra, needle) in [
        (json!({"store": true}), "`store: true` is not supported"),
        (json!({"previous_response_id": "resp_1"}), "`previous_response_id` is not supported"),
        (json!({"conversation": "conv_1"}), "`conversation` is not supported"),
        (json!({"background": true}), "`background` is not supported"),
        (json!({"prompt": {"id": "pmpt_1"}}), "`prompt` is not supported"),
        (json!({"tools": [{"type": "web_search"}]}), "`web_search` is not supported"),
        (json!({"tools": [{"type": "file_search", "vector_store_ids": ["vs"]}]}), "`file_search`"),
        (json!({"tools": [{"type": "code_interpreter", "container": {"type": "auto"}}]}), "`code_interpreter`"),
        (json!({"tools": [{"type": "computer_use_preview"}]}), "`computer_use_preview`"),
        (json!({"tools": [{"type": "image_generation"}]}), "`image_generation`"),
        (json!({"tools": [{"type": "mcp", "server_url": "https://x"}]}), "`mcp`"),
        (json!({"tool_choice": {"type": "web_search_preview"}}), "`web_search_preview`"),
        (json!({"include": ["file_search_call.results"]}), "`file_search_call.results`"),
        (json!({"service_tier": "priority"}), "`service_tier`"),
        (json!({"frobnicate": 1}), "`frobnicate` is not supported on /v1/responses"),
        (json!({"reasoning": {"effort": "low", "depth": 3}}), "`depth` is not supported on `reasoning`"),
        (json!({"text": {"format": {"type": "yaml"}}}), "`text.format.type`"),
    ] {
        let mut body = json!({"model": "gpt-5.6-luna", "input": "hi"});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let e = parse_json(body.clone()).unwrap_err();
        assert_eq!(e.status(), 400);
        assert!(e.message.contains(needle), "{body}: {}", e.message);
    }
}

#[test]
fn what_another_provider_cannot_honour_is_refused() {
    for (body, needle) in [
        (json!({"model": "anthropic/claude-haiku-4-5", "input": "hi", "tools": [{"type": "custom", "name": "apply_patch"}]}), "tool type `custom`"),
        (json!({"model": "anthropic/claude-haiku-4-5", "input": "hi", "top_logprobs": 2}), "`top_logprobs`"),
        (json!({"model": "anthropic/claude-haiku-4-5", "input": "hi", "text": {"format": {"type": "json_object"}}}), "json_object"),
        (json!({"model": "google/gemini-3.8-flash", "input": "hi", "parallel_tool_calls": false}), "parallel_tool_calls"),
        (json!({"model": "google/gemini-3.8-flash", "input": [{"type": "function_call_output", "call_id": "x", "output": "r"}, {"role": "user", "content": "x"}]}), "answers no function_call"),
        (json!({"model": "google/gemini-3.8-flash", "input": [{"role": "user", "content": "x"}, {"type": "function_call", "call_id": "c", "name": "f", "arguments": "not json"}]}), "JSON object"),
        (json!({"model": "google/gemini-3.8-flash", "input": [{"type": "item_reference", "id": "msg_1"}]}), "`item_reference`"),
        (json!({"model": "google/gemini-3.8-flash", "input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]}), "file inputs"),
        (json!({"model": "google/gemini-3.8-flash", "input": [{"role": "user", "content": "x", "phase": "final"}]}), "`phase` is not supported"),
        (json!({"model": "gpt-5.6-luna", "input": [{"role": "user", "content": [{"type": "input_image", "file_id": "file_1"}]}]}), "`file_id`"),
        (json!({"model": "gpt-5.6-luna", "input": []}), "`input` is required"),
        (json!({"model": "gpt-5.6-luna", "input": [{"role": "developer", "content": "only instructions"}]}), "at least one user message"),
    ] {
        let e = parse_json(body.clone()).unwrap_err();
        assert!(e.message.contains(needle), "{body}: {}", e.message);
    }
    // Codex's tool group: forwarded to OpenAI, dropped for the others (no translation).
    let ns = json!({"type": "namespace", "name": "multi_agent_v1", "tools": [{"type": "function", "name": "close_agent", "parameters": {"type": "object"}}]});
    let r = parse_json(json!({"model": "anthropic/claude-haiku-4-5", "input": "hi", "tools": [ns.clone(), {"type": "function", "name": "exec_command"}]})).unwrap();
    assert_eq!(r.chat.agent.tools.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), ["exec_command"]);
    assert_eq!(parse_json(json!({"model": "gpt-5.6-luna", "input": "hi", "tools": [ns]})).unwrap().openai_body(16)["tools"][0]["type"], "namespace");
    let e = parse_json(json!({"model": "gpt-5.6-luna", "input": "hi", "tools": [{"type": "web_search", "external_web_access": false}]})).unwrap_err();
    assert!(e.message.contains("web_search = \"disabled\""), "{}", e.message);
    // OpenAI's own client-run tools and their items go to OpenAI untouched.
    assert!(parse_json(json!({"model": "gpt-5.6-luna", "input": [{"role": "user", "content": "x"}, {"type": "custom_tool_call", "call_id": "c", "name": "apply_patch", "input": "*** Begin Patch"}],
        "tools": [{"type": "custom", "name": "apply_patch"}, {"type": "local_shell"}]}))
    .is_ok());
}

#[test]
fn claudes_signed_thinking_goes_back_to_claude_as_its_thinking_block() {
    let input = json!([
        {"role": "user", "content": "weather?"},
        {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "Thinking step1"}], "encrypted_content": "claude-thinking.v1:c2ln"},
        {"type": "reasoning", "id": "rs_2", "summary": [], "encrypted_content": "claude-redacted.v1:ZGF0YQ=="},
        {"type": "reasoning", "id": "rs_3", "summary": [], "encrypted_content": "gAAAAB-openai-own"},
        {"type": "function_call", "call_id": "toolu_1", "name": "get_weather", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "toolu_1", "output": "18C"},
    ]);
    let r = parse_json(json!({"model": "anthropic/claude-haiku-4-5", "input": input, "reasoning": {"effort": "low"}, "max_output_tokens": 4000})).unwrap();
    let up = crate::providers::wire(Provider::Anthropic).build_request(&r.chat, 4000, &crate::providers::Endpoint { base_url: "http://m".into(), api_key: crate::config::Secret::new("k") });
    let b: Value = serde_json::from_slice(&up.body).unwrap();
    assert_eq!(b["messages"][1]["content"], json!([
        {"type": "thinking", "thinking": "Thinking step1", "signature": "c2ln"},
        {"type": "redacted_thinking", "data": "ZGF0YQ=="},
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}},
    ]), "thinking first, OpenAI's reasoning dropped");
    assert_eq!(b["thinking"], json!({"type": "enabled", "budget_tokens": 1024}));
    // Gemini gets none of it.
    let g = parse_json(json!({"model": "google/gemini-3.8-flash", "input": input})).unwrap();
    assert!(g.chat.messages[1].parts.iter().all(|p| matches!(p, Part::Thinking { .. } | Part::ToolCall(_))));
    let gb = crate::providers::wire(Provider::Google).build_request(&g.chat, 100, &crate::providers::Endpoint { base_url: "http://m".into(), api_key: crate::config::Secret::new("k") });
    let gb: Value = serde_json::from_slice(&gb.body).unwrap();
    assert_eq!(gb["contents"][1]["parts"].as_array().unwrap().len(), 1, "only the call");
    let e = parse_json(json!({"model": "anthropic/claude-haiku-4-5", "input": "hi", "reasoning": {"effort": "high"}, "max_output_tokens": 1000})).unwrap_err();
    assert!(e.message.contains("`max_output_tokens` above 1024"), "{}", e.message);
}

#[test]
fn what_codex_sends_on_newer_openai_models_is_accepted_and_checked() {
    // gpt-5.5: a client-run tool search; gpt-5.6-luna: tools inside the input, `reasoning.context`.
    let search = json!({"type": "tool_search", "execution": "client", "description": "d", "parameters": {"type": "object"}});
    assert!(parse_json(json!({"model": "gpt-5.6-luna", "input": "hi", "tools": [search]})).is_ok());
    let e = parse_json(json!({"model": "gpt-5.6-luna", "input": "hi", "tools": [{"type": "tool_search", "execution": "server"}]})).unwrap_err();
    assert!(e.message.contains("`tool_search`"), "{}", e.message);
    let ns = |inner: Value| json!({"type": "additional_tools", "role": "developer", "id": "at_1", "tools": [{"type": "namespace", "name": "functions", "tools": [inner]}]});
    let r = parse_json(json!({"model": "gpt-5.6-luna", "reasoning": {"effort": "medium", "context": "all_turns"},
        "input": [ns(json!({"type": "function", "name": "exec", "parameters": {"type": "object"}})), {"role": "user", "content": "hi"}]}))
    .unwrap();
    assert_eq!(r.openai_body(16)["reasoning"]["context"], "all_turns");
    let e = parse_json(json!({"model": "gpt-5.6-luna", "input": [ns(json!({"type": "web_search"})), {"role": "user", "content": "hi"}]})).unwrap_err();
    assert!(e.message.contains("input[0].tools[0].tools[0]: the built-in tool `web_search`"), "{}", e.message);
    let e = parse_json(json!({"model": "anthropic/claude-haiku-4-5", "input": [ns(json!({"type": "function", "name": "f"})), {"role": "user", "content": "hi"}]})).unwrap_err();
    assert!(e.message.contains("`additional_tools` is not supported"), "{}", e.message);
}
