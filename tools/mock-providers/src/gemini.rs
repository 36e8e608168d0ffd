//! Gemini Developer API: `POST /gemini/v1beta/models/{model}:generateContent` and
//! `:streamGenerateContent` (`v1` is accepted too).
//!
//! Also `:countTokens` (free; the prompt tokens of the same request).
//! Auth `x-goog-api-key` header or `?key=`; a wrong key → 400 INVALID_ARGUMENT / API_KEY_INVALID
//! (url.http body), no key at all → 403 PERMISSION_DENIED. generateContent → 2-space pretty JSON +
//! `\n` (`content-type: application/json; charset=UTF-8`). streamGenerateContent with `alt=sse` →
//! `data: <json with ": " after keys>\r\n\r\n` per chunk (one word each), `usageMetadata` on every
//! chunk (cumulative `candidatesTokenCount`), `finishReason` only on the last, no terminator
//! (`content-type: text/event-stream`). Without `alt=sse` → one JSON array `[{..}\n,\r\n{..}\n]`.
//! `totalTokenCount = prompt + candidates + thoughts`. Usage override keys: promptTokenCount,
//! candidatesTokenCount, thoughtsTokenCount, cachedContentTokenCount (adds cacheTokensDetails).

use serde::Serialize;
use serde_json::{json, Value};

use crate::agent::{self, Answer};
use crate::common;
use crate::control::{Script, State};
use crate::http::{Request, Response};

const JSON_CT: &str = "application/json; charset=UTF-8";

const API_KEY_INVALID: &str = r#"{
  "error": {
    "code": 400,
    "message": "API key not valid. Please pass a valid API key.",
    "status": "INVALID_ARGUMENT",
    "details": [
      {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": "API_KEY_INVALID",
        "domain": "googleapis.com",
        "metadata": {
          "service": "generativelanguage.googleapis.com"
        }
      },
      {
        "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
        "locale": "en-US",
        "message": "API key not valid. Please pass a valid API key."
      }
    ]
  }
}
"#;

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: u16,
    message: &'a str,
    status: &'a str,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

pub fn error(code: u16, status: &str, message: &str) -> Response {
    let mut out = serde_json::to_vec_pretty(&ErrorBody {
        error: ErrorDetail {
            code,
            message,
            status,
        },
    })
    .unwrap_or_default();
    out.push(b'\n');
    Response::new(code, JSON_CT, out)
}

pub fn error_for_status(code: u16) -> Response {
    let (status, msg) = match code {
        400 => ("INVALID_ARGUMENT", "Request contains an invalid argument."),
        401 => ("UNAUTHENTICATED", "Request had invalid authentication credentials."),
        403 => ("PERMISSION_DENIED", "The caller does not have permission"),
        404 => ("NOT_FOUND", "Requested entity was not found."),
        429 => ("RESOURCE_EXHAUSTED", "You exceeded your current quota, please check your plan and billing details."),
        503 => ("UNAVAILABLE", "The model is overloaded. Please try again later."),
        504 => ("DEADLINE_EXCEEDED", "Deadline expired before operation could complete."),
        _ => ("INTERNAL", "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting"),
    };
    error(code, status, msg)
}

/// A part of an answer, keys in Gemini's order.
#[derive(Serialize, Clone)]
#[serde(untagged)]
enum Part {
    Text { text: String },
    #[serde(rename_all = "camelCase")]
    Call {
        function_call: FunctionCall,
        #[serde(skip_serializing_if = "Option::is_none")]
        thought_signature: Option<String>,
    },
}

#[derive(Serialize, Clone)]
struct FunctionCall {
    name: String,
    args: Value,
}

#[derive(Serialize, Clone)]
struct Content {
    parts: Vec<Part>,
    role: &'static str,
}

#[derive(Serialize, Clone)]
#[serde(rename_all = "camelCase")]
struct Candidate {
    content: Content,
    #[serde(skip_serializing_if = "Option::is_none")]
    finish_reason: Option<&'static str>,
    index: u32,
}

#[derive(Serialize, Clone)]
#[serde(rename_all = "camelCase")]
struct ModalityCount {
    modality: &'static str,
    token_count: u64,
}

#[derive(Serialize, Clone)]
#[serde(rename_all = "camelCase")]
struct UsageMetadata {
    prompt_token_count: u64,
    candidates_token_count: u64,
    total_token_count: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    cached_content_token_count: Option<u64>,
    prompt_tokens_details: Vec<ModalityCount>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cache_tokens_details: Option<Vec<ModalityCount>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thoughts_token_count: Option<u64>,
    service_tier: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GenerateResponse {
    candidates: Vec<Candidate>,
    usage_metadata: UsageMetadata,
    model_version: String,
    response_id: String,
}

/// Totals for the whole answer (after overrides).
struct Totals {
    prompt: u64,
    candidates: u64,
    thoughts: Option<u64>,
    cached: Option<u64>,
    tier: String,
}

impl Totals {
    fn new(prompt: u64, candidates: u64, thoughts: Option<u64>, script: Option<&Script>) -> Totals {
        let ov = |k: &str| script.and_then(|s| s.usage_u64(k));
        Totals {
            prompt: ov("promptTokenCount").unwrap_or(prompt),
            candidates: ov("candidatesTokenCount").unwrap_or(candidates),
            thoughts: ov("thoughtsTokenCount").or(thoughts),
            cached: ov("cachedContentTokenCount"),
            tier: script.and_then(|s| s.service_tier.clone()).unwrap_or_else(|| "standard".into()),
        }
    }

    /// usageMetadata with `candidates` output tokens so far.
    fn metadata(&self, candidates: u64) -> UsageMetadata {
        UsageMetadata {
            prompt_token_count: self.prompt,
            candidates_token_count: candidates,
            total_token_count: self.prompt + candidates + self.thoughts.unwrap_or(0),
            cached_content_token_count: self.cached,
            prompt_tokens_details: vec![ModalityCount {
                modality: "TEXT",
                token_count: self.prompt,
            }],
            cache_tokens_details: self.cached.map(|c| {
                vec![ModalityCount {
                    modality: "TEXT",
                    token_count: c,
                }]
            }),
            thoughts_token_count: self.thoughts,
            service_tier: self.tier.clone(),
        }
    }
}

struct Parsed {
    texts: Vec<String>,
    /// Input tokens of the images.
    images: u64,
    max_tokens: Option<u64>,
    tools: Vec<agent::ToolDef>,
    /// Which calls the answer may make (`None`: none; `Some(Some(name))`: that function).
    choice: Option<Option<String>>,
    last_is_response: bool,
    /// `Some(schema)`: a JSON answer (`responseMimeType: application/json`).
    json: Option<Option<Value>>,
    thinking: bool,
}

fn field<'a>(v: &'a Value, camel: &str, snake: &str) -> Option<&'a Value> {
    v.get(camel).or_else(|| v.get(snake))
}

/// The text a content's parts count for: text, function calls and responses as JSON.
fn parts_text(v: Option<&Value>) -> String {
    let parts = v.and_then(|c| c.get("parts"));
    let mut t = common::content_text(parts);
    for p in parts.and_then(Value::as_array).into_iter().flatten() {
        if let Some(fc) = field(p, "functionCall", "function_call") {
            t.push_str(&fc.to_string());
        }
        if let Some(fr) = field(p, "functionResponse", "function_response") {
            t.push_str(&fr.to_string());
        }
    }
    t
}

/// Gemini 3 refuses a replayed function call whose turn lost the signature it was given.
fn missing_signature(model: &str, contents: &[Value]) -> Option<String> {
    if !model.starts_with("gemini-3") {
        return None;
    }
    for c in contents.iter().filter(|c| c.get("role").and_then(Value::as_str) == Some("model")) {
        let calls: Vec<&Value> = c.get("parts").and_then(Value::as_array).into_iter().flatten().filter(|p| field(p, "functionCall", "function_call").is_some()).collect();
        if let Some(first) = calls.first() {
            if field(first, "thoughtSignature", "thought_signature").is_none() {
                let name = field(first, "functionCall", "function_call").and_then(|f| f.get("name")).and_then(Value::as_str).unwrap_or("");
                return Some(format!("Function call is missing a thought_signature in functionCall parts. This is required for tools to work correctly, and missing thought_signature may lead to degraded model performance. Additional data, function call `default_api:{name}` , position 1. Please refer to https://ai.google.dev/gemini-api/docs/thought-signatures for more details."));
            }
        }
    }
    None
}

fn parse(model: &str, body: &[u8]) -> Result<Parsed, String> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| format!("Invalid JSON payload received. {e}"))?;
    let mut texts = Vec::new();
    if let Some(sys) = v
        .get("systemInstruction")
        .or_else(|| v.get("system_instruction"))
    {
        texts.push(parts_text(Some(sys)));
    }
    let contents = match v.get("contents") {
        Some(Value::Array(a)) if !a.is_empty() => a,
        _ => return Err("* GenerateContentRequest.contents: contents is not specified\n".into()),
    };
    if let Some(why) = missing_signature(model, contents) {
        return Err(why);
    }
    let cfg = v
        .get("generationConfig")
        .or_else(|| v.get("generation_config"));
    let resolution = cfg.and_then(|c| field(c, "mediaResolution", "media_resolution")).and_then(Value::as_str);
    let mut images = 0;
    for c in contents {
        texts.push(parts_text(Some(c)));
        for p in c.get("parts").and_then(Value::as_array).into_iter().flatten() {
            if ["inlineData", "inline_data", "fileData", "file_data"].iter().any(|k| p.get(*k).is_some()) {
                images += agent::gemini_image_tokens(model, resolution);
            }
        }
    }
    let decls: Vec<&Value> = v
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| field(t, "functionDeclarations", "function_declarations").and_then(Value::as_array))
        .flatten()
        .collect();
    texts.extend(decls.iter().map(|d| d.to_string()));
    let tools = decls
        .iter()
        .filter_map(|d| {
            let schema = field(d, "parametersJsonSchema", "parameters_json_schema").or_else(|| d.get("parameters")).cloned().unwrap_or(Value::Null);
            Some(agent::ToolDef { name: d.get("name")?.as_str()?.to_string(), schema })
        })
        .collect();
    let fcc = v.get("toolConfig").or_else(|| v.get("tool_config")).and_then(|t| field(t, "functionCallingConfig", "function_calling_config"));
    let allowed = fcc.and_then(|f| field(f, "allowedFunctionNames", "allowed_function_names")).and_then(|a| a.get(0)).and_then(Value::as_str);
    let choice = match fcc.and_then(|f| f.get("mode")).and_then(Value::as_str) {
        Some("NONE") => None,
        _ => Some(allowed.map(str::to_string)),
    };
    let last_is_response = contents.last().and_then(|c| c.get("parts")).and_then(Value::as_array).is_some_and(|ps| ps.iter().any(|p| field(p, "functionResponse", "function_response").is_some()));
    let json = match cfg.and_then(|c| field(c, "responseMimeType", "response_mime_type")).and_then(Value::as_str) {
        Some("application/json") => Some(cfg.and_then(|c| field(c, "responseJsonSchema", "response_json_schema").or_else(|| field(c, "responseSchema", "response_schema"))).cloned()),
        _ => None,
    };
    let thinking = cfg
        .and_then(|c| field(c, "thinkingConfig", "thinking_config"))
        .is_some_and(|t| field(t, "thinkingBudget", "thinking_budget").and_then(Value::as_u64) != Some(0));
    let max_tokens = match cfg.and_then(|c| {
        c.get("maxOutputTokens")
            .or_else(|| c.get("max_output_tokens"))
    }) {
        None | Some(Value::Null) => None,
        Some(x) => Some(x.as_u64().ok_or_else(|| {
            "Invalid value at 'generation_config.max_output_tokens' (TYPE_INT32)".to_string()
        })?),
    };
    Ok(Parsed { texts, images, max_tokens, tools, choice, last_is_response, json, thinking })
}

/// What every chunk of one answer shares.
struct ChunkWriter {
    totals: Totals,
    model: String,
    response_id: String,
}

impl ChunkWriter {
    fn chunk(&self, parts: Vec<Part>, finish_reason: Option<&'static str>, candidates: u64) -> GenerateResponse {
        GenerateResponse {
            candidates: vec![Candidate {
                content: Content { parts, role: "model" },
                finish_reason,
                index: 0,
            }],
            usage_metadata: self.totals.metadata(candidates),
            model_version: self.model.clone(),
            response_id: self.response_id.clone(),
        }
    }

    /// The `functionCall` parts of a call answer; the first carries Gemini 3's thought signature.
    fn call_parts(&self, calls: &[agent::Call]) -> Vec<Part> {
        calls
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let args: Value = serde_json::from_str(&c.arguments()).unwrap_or_else(|_| json!({}));
                let sig = (i == 0 && self.model.starts_with("gemini-3")).then(|| format!("CiQBMock{}", common::alnum(common::fnv1a(self.response_id.as_bytes()), 32)));
                Part::Call { function_call: FunctionCall { name: c.name.clone(), args }, thought_signature: sig }
            })
            .collect()
    }
}

fn text_part(t: String) -> Vec<Part> {
    vec![Part::Text { text: t }]
}

/// streamGenerateContent: one chunk per output token (at least one), made as the stream goes,
/// each with the cumulative usage; function calls come whole in one chunk. `alt=sse` frames
/// the chunks as SSE, otherwise as one JSON array.
fn stream_chunks(w: ChunkWriter, answer: Answer, finish: &'static str, sse: bool) -> Response {
    let (n, piece): (u64, Box<dyn Fn(u64) -> Vec<Part> + Send>) = match answer {
        Answer::Calls { calls, .. } => {
            let parts = w.call_parts(&calls);
            (1, Box::new(move |_| parts.clone()))
        }
        Answer::Json { pieces, .. } => (pieces.len().max(1) as u64, Box::new(move |i| text_part(pieces.get(i as usize).cloned().unwrap_or_default()))),
        Answer::Text(plan) => (plan.tokens.max(1), Box::new(move |i| text_part(if i < plan.tokens { plan.piece(i) } else { String::new() }))),
    };
    let chunk = move |i: u64| {
        let last = i + 1 == n;
        let so_far = (w.totals.candidates * (i + 1)).div_ceil(n);
        w.chunk(piece(i), last.then_some(finish), so_far)
    };
    if sse {
        let events = (0..n).map(move |i| {
            let mut out = b"data: ".to_vec();
            out.extend(common::to_colon_space_json(&chunk(i)));
            out.extend_from_slice(b"\r\n\r\n");
            out
        });
        Response::stream(200, "text/event-stream", events)
    } else {
        let pieces = (0..n).map(move |i| {
            let mut out = if i == 0 { b"[".to_vec() } else { b"\n,\r\n".to_vec() };
            out.extend(serde_json::to_vec_pretty(&chunk(i)).unwrap_or_default());
            out
        });
        Response::stream(200, JSON_CT, pieces.chain([b"\n]".to_vec()]))
    }
}

fn route(path: &str) -> Option<(&str, &str)> {
    let rest = path
        .strip_prefix("/gemini/v1beta/models/")
        .or_else(|| path.strip_prefix("/gemini/v1/models/"))?;
    let (model, method) = rest.rsplit_once(':')?;
    (!model.is_empty()).then_some((model, method))
}

pub fn handle(state: &State, req: &Request) -> Response {
    let seq = state.next_seq();
    let Some((model, method)) = route(&req.path) else {
        return error(
            404,
            "NOT_FOUND",
            &format!(
                "The requested URL {} was not found on this server.",
                req.path
            ),
        );
    };
    if !["generateContent", "streamGenerateContent", "countTokens"].contains(&method) {
        return error(404, "NOT_FOUND", &format!("models/{model} is not found for API version v1beta, or is not supported for {method}."));
    }
    if req.method != "POST" {
        return error(
            405,
            "INVALID_ARGUMENT",
            &format!("Method {} not allowed", req.method),
        );
    }
    let key = req
        .header("x-goog-api-key")
        .map(str::to_string)
        .or_else(|| req.query_param("key"));
    match key.as_deref() {
        None | Some("") => return error(403, "PERMISSION_DENIED", "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API."),
        Some(k) if k != state.config.google_key => return Response::new(400, JSON_CT, API_KEY_INVALID.as_bytes().to_vec()),
        Some(_) => {}
    }
    if method == "countTokens" {
        return count_tokens(state, req, model);
    }
    let script = state.take_script("gemini");
    if let Some(s) = script.as_ref().filter(|s| s.is_override()) {
        return s.override_response(error_for_status);
    }
    let p = match parse(model, &req.body) {
        Ok(p) => p,
        Err(msg) => return error(400, "INVALID_ARGUMENT", &msg),
    };
    let calls = p.choice.as_ref().filter(|_| !p.last_is_response).map(|forced| agent::choose(&p.tools, forced.as_deref(), true));
    let answer = Answer::decide(calls, p.json.as_ref().map(Option::as_ref), p.max_tokens, script.as_ref());
    // Gemini says STOP also when the answer is function calls.
    let finish = if answer.truncated() { "MAX_TOKENS" } else { "STOP" };
    let thoughts = p.thinking.then_some(agent::THINKING_TOKENS);
    let totals = Totals::new(common::input_tokens(&p.texts) + p.images, answer.tokens(), thoughts, script.as_ref());
    let chunks = ChunkWriter {
        totals,
        model: script.as_ref().and_then(|s| s.model_version.clone()).unwrap_or_else(|| model.to_string()),
        response_id: common::alnum(seq, 23),
    };
    let mut resp = if method == "generateContent" {
        let parts = match &answer {
            Answer::Calls { calls, .. } => chunks.call_parts(calls),
            a => text_part(a.text()),
        };
        let all = chunks.chunk(parts, Some(finish), chunks.totals.candidates);
        let mut out = serde_json::to_vec_pretty(&all).unwrap_or_default();
        out.push(b'\n');
        Response::new(200, JSON_CT, out)
    } else {
        stream_chunks(
            chunks,
            answer,
            finish,
            req.query_param("alt").as_deref() == Some("sse"),
        )
    };
    if let Some(s) = &script {
        s.apply_timing(&mut resp);
    }
    resp
}

/// `:countTokens`: `{contents}` or `{generateContentRequest: {model, contents, …}}`; answers
/// `{"totalTokens", "promptTokensDetails"}`, N the prompt tokens the same request costs on
/// `:generateContent`. Free at Google; errors in Google's shape.
fn count_tokens(state: &State, req: &Request, model: &str) -> Response {
    let script = state.take_script("gemini-count");
    if let Some(s) = script.as_ref().filter(|s| s.is_override()) {
        return s.override_response(error_for_status);
    }
    let v: Value = match serde_json::from_slice(&req.body) {
        Ok(v @ Value::Object(_)) => v,
        _ => return error(400, "INVALID_ARGUMENT", "Invalid JSON payload received."),
    };
    let inner = match (v.get("contents"), v.get("generateContentRequest")) {
        (Some(c), None) => serde_json::json!({ "contents": c }),
        (None, Some(g)) => g.clone(),
        _ => return error(400, "INVALID_ARGUMENT", "Either contents or generateContentRequest must be set."),
    };
    let p = match parse(model, inner.to_string().as_bytes()) {
        Ok(p) => p,
        Err(msg) => return error(400, "INVALID_ARGUMENT", &msg),
    };
    let total = common::input_tokens(&p.texts) + p.images;
    let body = serde_json::json!({ "totalTokens": total, "promptTokensDetails": [{ "modality": "TEXT", "tokenCount": total }] });
    let mut out = serde_json::to_vec_pretty(&body).unwrap_or_default();
    out.push(b'\n');
    let mut resp = Response::new(200, "application/json; charset=UTF-8", out);
    if let Some(s) = &script {
        s.apply_timing(&mut resp);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(
            route("/gemini/v1beta/models/gemini-2.5-flash:generateContent"),
            Some(("gemini-2.5-flash", "generateContent"))
        );
        assert_eq!(
            route("/gemini/v1beta/models/gemini-2.5-flash:streamGenerateContent"),
            Some(("gemini-2.5-flash", "streamGenerateContent"))
        );
        assert_eq!(route("/gemini/v1beta/models/:x"), None);
        assert_eq!(route("/gemini/v1beta/other"), None);
    }

    #[test]
    fn parse_request_fixture() {
        let p = parse("gemini-2.5-flash", br#"{"systemInstruction":{"parts":[{"text":"abcd"}]},"contents":[{"role":"user","parts":[{"text":"ab"},{"text":"cd"}]}],"generationConfig":{"maxOutputTokens":5}}"#);
        let p = p.ok();
        assert_eq!(
            p.as_ref().map(|p| p.texts.clone()),
            Some(vec!["abcd".to_string(), "abcd".to_string()])
        );
        assert_eq!(p.and_then(|p| p.max_tokens), Some(5));
        assert!(parse("gemini-2.5-flash", br#"{"contents":[]}"#).is_err());
    }

    #[test]
    fn metadata_totals_and_thoughts() {
        let t = Totals::new(31, 26, None, None);
        let m = t.metadata(26);
        assert_eq!(m.total_token_count, 57);
        assert!(m.thoughts_token_count.is_none());
        let s = Script {
            provider: "gemini".into(),
            usage: Some(serde_json::json!({"thoughtsTokenCount":186})),
            ..Default::default()
        };
        let t = Totals::new(31, 26, None, Some(&s));
        assert_eq!(t.metadata(26).total_token_count, 243);
        let json =
            String::from_utf8_lossy(&common::to_colon_space_json(&t.metadata(9))).into_owned();
        assert!(
            json.starts_with(
                r#"{"promptTokenCount": 31,"candidatesTokenCount": 9,"totalTokenCount": 226,"#
            ),
            "{json}"
        );
    }
}
