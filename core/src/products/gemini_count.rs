//! Gemini's `POST /v1beta/models/{model}:countTokens` (and `/v1/…`): Google's token count of a
//! prompt, passed on unchanged. Google does not charge for it, so neither does the gateway:
//! nothing is held, settled or written to the ledger. The prompt is checked as
//! `:generateContent` checks it (the same allowlists, a priced model) and the caller must hold
//! an active key (rate limited like the account reads).

use super::gemini_native;
use crate::error::ApiError;
use crate::product::UpstreamRequest;
use crate::provider::Provider;
use crate::providers::{join, Endpoint};
use serde_json::{Map, Value};

/// A checked count request.
#[derive(Debug, Clone, PartialEq)]
pub struct GeminiCount {
    pub model: String,
    pub body: Map<String, Value>,
}

/// `{contents}` or `{generateContentRequest: {model, contents, …}}`, Gemini's two forms.
pub fn parse(model: &str, body: &[u8], today: &str) -> Result<GeminiCount, ApiError> {
    let model = model.strip_prefix("models/").unwrap_or(model).to_string();
    crate::pricing::lookup(Provider::Google, &model, today)?;
    let mut m = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => m,
        Ok(_) => return Err(ApiError::invalid("request body must be a JSON object")),
        Err(e) => return Err(ApiError::invalid(format!("request body is not valid JSON: {e}"))),
    };
    if let Some(v) = m.remove("generate_content_request") {
        m.insert("generateContentRequest".into(), v);
    }
    if let Some(k) = m.keys().find(|k| !["contents", "generateContentRequest"].contains(&k.as_str())) {
        return Err(ApiError::invalid(format!("`{k}` is not supported on :countTokens; send `contents` or `generateContentRequest`")));
    }
    let checked = match (m.remove("contents"), m.remove("generateContentRequest")) {
        (Some(c), None) => {
            let mut inner = Map::new();
            inner.insert("contents".into(), c);
            let req = gemini_native::parse(&model, false, None, Value::Object(inner).to_string().as_bytes())?;
            req.body
        }
        (None, Some(Value::Object(mut g))) => {
            // Its `model` names the model of the path (`models/…`); the rest is a generate request.
            let inner_model = g.remove("model");
            if let Some(n) = inner_model.as_ref().and_then(Value::as_str) {
                if n.strip_prefix("models/").unwrap_or(n) != model {
                    return Err(ApiError::invalid(format!("`generateContentRequest.model` `{n}` is not the model of the path, `{model}`")));
                }
            }
            let req = gemini_native::parse(&model, false, None, Value::Object(g).to_string().as_bytes())?;
            let mut g = Map::new();
            g.insert("model".into(), Value::String(format!("models/{model}")));
            g.extend(req.body);
            let mut out = Map::new();
            out.insert("generateContentRequest".into(), Value::Object(g));
            return Ok(GeminiCount { model, body: out });
        }
        (None, Some(_)) => return Err(ApiError::invalid("`generateContentRequest` must be an object")),
        _ => return Err(ApiError::invalid("send either `contents` or `generateContentRequest`")),
    };
    Ok(GeminiCount { model, body: checked })
}

impl GeminiCount {
    pub fn upstream(&self, ep: &Endpoint) -> UpstreamRequest {
        let url = join(&ep.base_url, &format!("/v1beta/models/{}:countTokens", self.model));
        UpstreamRequest::json(url, vec![("x-goog-api-key".into(), ep.api_key.expose().to_string())], &Value::Object(self.body.clone()))
    }

    /// A 2xx count is passed on; any other status mapped as on `:generateContent`.
    pub fn answer(&self, status: u16, body: &[u8]) -> Result<Vec<u8>, ApiError> {
        if !(200..300).contains(&status) {
            return Err(crate::providers::upstream_error(Provider::Google, status, body));
        }
        match serde_json::from_slice::<Value>(body) {
            Ok(v) if v.get("totalTokens").and_then(Value::as_u64).is_some() => Ok(body.to_vec()),
            _ => Err(ApiError::upstream("google's countTokens answer was not a token count").public()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    const TODAY: &str = "2026-11-27";

    #[test]
    fn both_forms_are_checked_and_forwarded() {
        let c = parse("gemini-3.5-flash", br#"{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}"#, TODAY).unwrap();
        let up = c.upstream(&Endpoint { base_url: "http://m/gemini".into(), api_key: Secret::new("AIza") });
        assert_eq!(up.url, "http://m/gemini/v1beta/models/gemini-3.5-flash:countTokens");
        let sent: Value = serde_json::from_slice(&up.body).unwrap();
        assert_eq!(sent, serde_json::json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}));
        let c = parse("gemini-3.5-flash", br#"{"generateContentRequest":{"model":"models/gemini-3.5-flash","contents":[{"parts":[{"text":"hi"}]}],"system_instruction":{"parts":[{"text":"x"}]}}}"#, TODAY).unwrap();
        assert_eq!(c.body["generateContentRequest"]["systemInstruction"]["parts"][0]["text"], "x");
        assert_eq!(c.body["generateContentRequest"]["model"], "models/gemini-3.5-flash");
        assert_eq!(c.answer(200, br#"{"totalTokens":9}"#).unwrap(), br#"{"totalTokens":9}"#);
        assert_eq!(c.answer(200, b"{}").unwrap_err().status(), 502);
    }

    #[test]
    fn bad_requests_are_400s() {
        for (model, body, says) in [
            ("gemini-9", r#"{"contents":[{"parts":[{"text":"x"}]}]}"#, "gemini-9"),
            ("gemini-3.5-flash", r#"{"contents":[{"parts":[{"text":"x"}]}],"x":1}"#, "`x`"),
            ("gemini-3.5-flash", r#"{}"#, "either"),
            ("gemini-3.5-flash", r#"{"contents":[{"parts":[{"fileData":{}}]}]}"#, "fileData"),
            ("gemini-3.5-flash", r#"{"generateContentRequest":{"model":"models/other","contents":[{"parts":[{"text":"x"}]}]}}"#, "not the model"),
        ] {
            let e = parse(model, body.as_bytes(), TODAY).unwrap_err();
            assert_eq!(e.status(), 400, "{body}");
            assert!(e.message.contains(says), "{body}: {}", e.message);
        }
    }
}
