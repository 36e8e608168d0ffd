//! OpenAI Images: `POST /openai/v1/images/generations` (+ `GET /openai/mock-images/<name>.png`,
//! which serves the 1x1 PNG the `url` answers point at).
//!
//! * dall-e-2 / dall-e-3 (default model dall-e-2, like the API): `{"created","data":[{url}|{b64_json}]}`
//!   with `revised_prompt` for dall-e-3 only; `response_format` `url` (default) or `b64_json`;
//!   dall-e-3 accepts only `n=1`.
//! * gpt-image-* (always b64): `{"created","background","data":[{b64_json}],"output_format","quality",
//!   "size","usage":{input_tokens,input_tokens_details{image_tokens,text_tokens},output_tokens,total_tokens}}`.
//!   Input tokens = `ceil(prompt chars / 4) + 2` (text tokens; the fixture's 48-char prompt → 14).
//!   Output tokens = per-image table × n, for 1024x1024/1024x1536/1536x1024: gpt-image-2 OpenAI's
//!   own counts (its calculator: low 196/158/158, medium 1756/1372/1372, high 7024/5488/5488),
//!   the other models gpt-image-1's (prices/REFERENCE.md §2: low 272/408/400, medium
//!   1056/1584/1568, high 4160/6240/6208);
//!   `quality` auto → medium, `size` auto → 1024x1024. Usage override keys: input_tokens,
//!   output_tokens, text_tokens, image_tokens, total_tokens.

use serde::Serialize;
use serde_json::Value;

use crate::common;
use crate::control::State;
use crate::http::{Request, Response};
use crate::openai::{self, error};

#[derive(Serialize)]
struct Image {
    #[serde(skip_serializing_if = "Option::is_none")]
    revised_prompt: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    b64_json: Option<&'static str>,
}

#[derive(Serialize)]
struct DalleResponse {
    created: u64,
    data: Vec<Image>,
}

#[derive(Serialize)]
struct InputDetails {
    image_tokens: u64,
    text_tokens: u64,
}

#[derive(Serialize)]
struct ImageUsage {
    input_tokens: u64,
    input_tokens_details: InputDetails,
    output_tokens: u64,
    total_tokens: u64,
}

#[derive(Serialize)]
struct GptImageResponse {
    created: u64,
    background: String,
    data: Vec<Image>,
    output_format: String,
    quality: String,
    size: String,
    usage: ImageUsage,
}

/// Output tokens per image for a gpt-image model's quality × size.
pub fn output_tokens_per_image(model: &str, quality: &str, size: &str) -> Option<u64> {
    let col = match size {
        "1024x1024" => 0,
        "1024x1536" => 1,
        "1536x1024" => 2,
        _ => return None,
    };
    let two = model == "gpt-image-2";
    let row: [u64; 3] = match quality {
        "low" if two => [196, 158, 158],
        "medium" if two => [1756, 1372, 1372],
        "high" if two => [7024, 5488, 5488],
        "low" => [272, 408, 400],
        "medium" => [1056, 1584, 1568],
        "high" => [4160, 6240, 6208],
        _ => return None,
    };
    Some(row[col])
}

pub fn prompt_tokens(prompt: &str) -> u64 {
    (prompt.chars().count() as u64).div_ceil(4) + 2
}

fn bad(msg: String, param: Option<&str>, code: Option<&str>) -> Response {
    error(400, msg, "invalid_request_error", param, code)
}

fn str_field<'a>(v: &'a Value, k: &str, default: &'a str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or(default)
}

pub fn handle(state: &State, req: &Request) -> Response {
    let seq = state.next_seq();
    if req.path.starts_with("/openai/mock-images/") && (req.method == "GET" || req.method == "HEAD")
    {
        let png = common::b64_decode(common::PNG_1X1_B64).unwrap_or_default();
        return Response::new(200, "image/png", png);
    }
    if req.path != "/openai/v1/images/generations" {
        return openai::invalid_url(req, seq);
    }
    if let Err(r) = openai::check_auth(state, req) {
        return openai::with_headers(r, seq, 0);
    }
    let script = state.take_script("openai-images");
    if let Some(s) = script.as_ref().filter(|s| s.is_override()) {
        let r = s.override_response(|status| openai::error_for_status(status, "dall-e-3"));
        return openai::with_headers(r, seq, 0);
    }
    let resp = answer(state, &req.body, seq, script.as_ref());
    let mut resp = openai::with_headers(resp, seq, 0);
    if let Some(s) = &script {
        s.apply_timing(&mut resp);
    }
    resp
}

fn answer(
    state: &State,
    body: &[u8],
    seq: u64,
    script: Option<&crate::control::Script>,
) -> Response {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return bad(
            "We could not parse the JSON body of your request.".into(),
            None,
            None,
        );
    };
    let prompt = match v.get("prompt").and_then(Value::as_str) {
        Some(p) if !p.is_empty() => p,
        _ => {
            return bad(
                "Missing required parameter: 'prompt'.".into(),
                Some("prompt"),
                Some("missing_required_parameter"),
            )
        }
    };
    let model = str_field(&v, "model", "dall-e-2");
    let n = match common::opt_u64(&v, "n") {
        Ok(n) => n.unwrap_or(1),
        Err(_) => {
            return bad(
                "Invalid type for 'n': expected an integer.".into(),
                Some("n"),
                Some("invalid_type"),
            )
        }
    };
    if n == 0 || n > 10 {
        return bad(
            format!("Invalid 'n': expected a value between 1 and 10, but got {n} instead."),
            Some("n"),
            Some("invalid_value"),
        );
    }
    let created = common::now_secs();
    if model.starts_with("gpt-image") {
        let quality = match str_field(&v, "quality", "auto") {
            "auto" => "medium",
            q => q,
        };
        let size = match str_field(&v, "size", "auto") {
            "auto" => "1024x1024",
            s => s,
        };
        let Some(per_image) = output_tokens_per_image(model, quality, size) else {
            return bad(
                format!("Invalid value: '{size}' / '{quality}'. Supported sizes are '1024x1024', '1024x1536', '1536x1024' and 'auto'; qualities 'low', 'medium', 'high' and 'auto'."),
                Some("size"),
                Some("invalid_value"),
            );
        };
        let ov = |k: &str| script.and_then(|s| s.usage_u64(k));
        let text_tokens = ov("text_tokens")
            .or(ov("input_tokens"))
            .unwrap_or_else(|| prompt_tokens(prompt));
        let image_tokens = ov("image_tokens").unwrap_or(0);
        let input_tokens = ov("input_tokens").unwrap_or(text_tokens + image_tokens);
        let output_tokens = ov("output_tokens").unwrap_or(per_image * n);
        let body = GptImageResponse {
            created,
            background: str_field(&v, "background", "opaque").replace("auto", "opaque"),
            data: (0..n)
                .map(|_| Image {
                    revised_prompt: None,
                    url: None,
                    b64_json: Some(common::PNG_1X1_B64),
                })
                .collect(),
            output_format: str_field(&v, "output_format", "png").to_string(),
            quality: quality.to_string(),
            size: size.to_string(),
            usage: ImageUsage {
                input_tokens,
                input_tokens_details: InputDetails {
                    image_tokens,
                    text_tokens,
                },
                output_tokens,
                total_tokens: ov("total_tokens").unwrap_or(input_tokens + output_tokens),
            },
        };
        return pretty(&body);
    }
    if model == "dall-e-3" && n != 1 {
        return bad(format!("Invalid 'n': integer above maximum value. Expected a value <= 1, but got {n} instead."), Some("n"), Some("integer_above_max_value"));
    }
    let b64 = match str_field(&v, "response_format", "url") {
        "url" => false,
        "b64_json" => true,
        other => {
            return bad(
                format!("Invalid value: '{other}'. Supported values are: 'url' and 'b64_json'."),
                Some("response_format"),
                Some("invalid_value"),
            )
        }
    };
    let port = state.config.port;
    let data = (0..n)
        .map(|i| Image {
            revised_prompt: (model == "dall-e-3")
                .then(|| format!("A deterministic mock rendering of: {prompt}")),
            url: (!b64)
                .then(|| format!("http://127.0.0.1:{port}/openai/mock-images/img-{seq}-{i}.png")),
            b64_json: b64.then_some(common::PNG_1X1_B64),
        })
        .collect();
    pretty(&DalleResponse { created, data })
}

fn pretty<T: Serialize>(v: &T) -> Response {
    let mut out = serde_json::to_vec_pretty(v).unwrap_or_default();
    out.push(b'\n');
    Response::json_bytes(200, out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::Config;
    use crate::http::Body;

    fn call(body: &str) -> Value {
        let st = State::new(Config::from_env());
        match answer(&st, body.as_bytes(), 1, None).body {
            Body::Full(b) => serde_json::from_slice(&b).unwrap_or_default(),
            Body::Chunks(_) => Value::Null,
        }
    }

    #[test]
    fn token_table() {
        assert_eq!(output_tokens_per_image("gpt-image-1.5", "low", "1024x1024"), Some(272));
        assert_eq!(output_tokens_per_image("gpt-image-1.5", "medium", "1536x1024"), Some(1568));
        assert_eq!(output_tokens_per_image("gpt-image-1.5", "high", "1024x1536"), Some(6240));
        assert_eq!(output_tokens_per_image("gpt-image-2", "high", "1024x1024"), Some(7024));
        assert_eq!(output_tokens_per_image("gpt-image-2", "hd", "1024x1024"), None);
        assert_eq!(
            prompt_tokens("A watercolor lighthouse on a rocky coast at dawn"),
            14
        );
    }

    #[test]
    fn gpt_image_usage() {
        let v = call(
            r#"{"model":"gpt-image-1","prompt":"A watercolor lighthouse on a rocky coast at dawn","n":2,"quality":"high","size":"1536x1024"}"#,
        );
        assert_eq!(v["usage"]["output_tokens"], 6208 * 2);
        assert_eq!(v["usage"]["input_tokens"], 14);
        assert_eq!(v["usage"]["total_tokens"], 6208 * 2 + 14);
        assert_eq!(v["data"].as_array().map(Vec::len), Some(2));
        assert_eq!(v["quality"], "high");
    }

    #[test]
    fn dalle_formats() {
        let v = call(r#"{"model":"dall-e-3","prompt":"x"}"#);
        assert!(v["data"][0]["url"].is_string());
        assert!(v["data"][0]["revised_prompt"].is_string());
        let v = call(r#"{"model":"dall-e-2","prompt":"x","n":3,"response_format":"b64_json"}"#);
        assert_eq!(v["data"].as_array().map(Vec::len), Some(3));
        assert!(v["data"][0]["b64_json"].is_string());
        assert!(v["data"][0].get("revised_prompt").is_none());
        let v = call(r#"{"model":"dall-e-3","prompt":"x","n":2}"#);
        assert_eq!(v["error"]["param"], "n");
    }
}
