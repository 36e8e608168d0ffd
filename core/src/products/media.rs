//! What the media products (images, speech, music) share: the checks of their request fields,
//! each failing with a 400 that names the field before anything is held, and the mapping of a
//! media provider's error body to what the customer sees.
//!
//! Only what is priced is forwarded, as on the chat routes: each route has an allowlist of
//! top-level fields and refuses any other.

use crate::error::{ApiError, ErrorKind};
use crate::metering::Metered;
use crate::money::{credits_json, credits_string};
use crate::payer::Bill;
use crate::product::{End, Finish, ProviderHead};
use crate::provider::Provider;
use serde_json::{json, Map, Value};

/// The request body as a JSON object.
pub fn object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ApiError::invalid("request body must be a JSON object")),
        Err(e) => Err(ApiError::invalid(format!("request body is not valid JSON: {e}"))),
    }
}

/// Refuses any top-level field outside `allowed`.
pub fn allow_only(m: &Map<String, Value>, allowed: &[&str], route: &str) -> Result<(), ApiError> {
    match m.keys().find(|k| !allowed.contains(&k.as_str())) {
        None => Ok(()),
        Some(k) => Err(ApiError::invalid(format!("`{k}` is not supported on {route}: the gateway forwards only the fields it can price (the accepted fields are in the API reference, /docs/)"))),
    }
}

/// A field that is present and not `null`.
pub fn present<'a>(m: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    m.get(key).filter(|v| !v.is_null())
}

/// A string field, if present.
pub fn opt_str<'a>(m: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, ApiError> {
    match present(m, key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ApiError::invalid(format!("`{key}` must be a string"))),
    }
}

/// A required text: a string with something besides white space.
pub fn req_text<'a>(m: &'a Map<String, Value>, key: &str) -> Result<&'a str, ApiError> {
    match present(m, key) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s),
        Some(Value::String(_)) => Err(ApiError::invalid(format!("`{key}` must not be empty"))),
        None => Err(ApiError::invalid(format!("`{key}` is required"))),
        Some(_) => Err(ApiError::invalid(format!("`{key}` must be a string"))),
    }
}

/// An integer field within `min..=max`, if present.
pub fn opt_int(m: &Map<String, Value>, key: &str, min: u64, max: u64) -> Result<Option<u64>, ApiError> {
    match present(m, key) {
        None => Ok(None),
        Some(v) => match v.as_u64() {
            Some(n) if (min..=max).contains(&n) => Ok(Some(n)),
            _ => Err(ApiError::invalid(format!("`{key}` must be an integer from {min} to {max}"))),
        },
    }
}

/// A number field within `min..=max`, if present.
pub fn opt_number(m: &Map<String, Value>, key: &str, min: f64, max: f64) -> Result<Option<f64>, ApiError> {
    match present(m, key) {
        None => Ok(None),
        Some(v) => match v.as_f64() {
            Some(x) if x >= min && x <= max => Ok(Some(x)),
            _ => Err(ApiError::invalid(format!("`{key}` must be a number from {min} to {max}"))),
        },
    }
}

/// A string field that must be one of `allowed`, if present.
pub fn opt_choice<'a>(m: &'a Map<String, Value>, key: &str, allowed: &[&str]) -> Result<Option<&'a str>, ApiError> {
    match opt_str(m, key)? {
        Some(s) if allowed.contains(&s) => Ok(Some(s)),
        Some(s) => Err(ApiError::invalid(format!("`{key}` `{s}` is not supported; use one of: {}", allowed.join(", ")))),
        None => Ok(None),
    }
}

/// Splits `provider/model` (the provider among `allowed`); a bare name has no provider (`None`):
/// the caller decides whose it is.
pub fn split_provider(model: &str, allowed: &[Provider]) -> Result<(Option<Provider>, String), ApiError> {
    match model.split_once('/') {
        Some((p, rest)) => {
            let provider = allowed.iter().copied().find(|x| x.as_str() == p).ok_or_else(|| {
                let names: Vec<&str> = allowed.iter().map(|x| x.as_str()).collect();
                ApiError::invalid(format!("unknown provider prefix `{p}/`; use {}", names.iter().map(|n| format!("{n}/")).collect::<Vec<_>>().join(" or ")))
            })?;
            if rest.is_empty() {
                return Err(ApiError::invalid("`model` names no model after the provider prefix"));
            }
            Ok((Some(provider), rest.to_string()))
        }
        None => Ok((None, model.to_string())),
    }
}

/// A media provider's error message, whatever its shape: OpenAI `error.message`, ElevenLabs
/// `detail.message` / FastAPI `detail[].msg` / `detail` text, Stability `errors[]`.
fn provider_message(v: &Value) -> String {
    let text = |p: &str| v.pointer(p).and_then(Value::as_str).map(str::to_string);
    if let Some(m) = text("/error/message").or_else(|| text("/detail/message")).or_else(|| text("/detail")) {
        return m;
    }
    if let Some(Value::Array(items)) = v.get("detail") {
        return items
            .iter()
            .map(|d| {
                let loc: Vec<String> = d.get("loc").and_then(Value::as_array).map(|l| l.iter().map(|x| x.to_string().trim_matches('"').to_string()).collect()).unwrap_or_default();
                format!("{}: {}", loc.join("."), d.get("msg").and_then(Value::as_str).unwrap_or("invalid"))
            })
            .collect::<Vec<_>>()
            .join("; ");
    }
    if let Some(Value::Array(errors)) = v.get("errors") {
        return errors.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("; ");
    }
    String::new()
}

/// A media provider's non-2xx answer as the customer sees it. Nothing was served: the engine
/// releases the hold. The message is normalized to one shape, then classified like a chat
/// provider's (request errors explain themselves; account, auth and server errors do not).
/// Stability's content moderation (403) is the customer's prompt: a 400 saying so.
pub fn upstream_error(provider: Provider, status: u16, body: &[u8]) -> ApiError {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let message = provider_message(&v);
    if provider == Provider::Stability && status == 403 && v.get("name").and_then(Value::as_str) == Some("content_moderation") {
        return ApiError::new(ErrorKind::InvalidRequest, format!("stability refused the prompt: {}", crate::providers::client_reason(&message))).with_details(json!({ "provider_status": status }));
    }
    let normalized = json!({ "error": { "message": message } }).to_string();
    crate::providers::upstream_error(provider, status, normalized.as_bytes())
}

/// Most bytes reserved up front for a whole JSON answer (from its `Content-Length`).
const RESERVE_MAX_BYTES: usize = 64 << 20;

/// The head of a whole JSON answer from OpenAI (images, embeddings): any other content type is
/// not its answer; the announced length is reserved once (megabytes of base64 grow once, not by
/// doubling).
pub fn start_json_answer(head: &ProviderHead, body: &mut Vec<u8>) -> Result<(), ApiError> {
    match head.header("content-type") {
        Some(ct) if ct.trim_start().starts_with("application/json") => {}
        other => return Err(ApiError::upstream(format!("openai answered `{}` instead of JSON", other.unwrap_or("no content type")))),
    }
    if let Some(len) = head.header("content-length").and_then(|l| l.trim().parse::<usize>().ok()) {
        body.reserve(len.min(RESERVE_MAX_BYTES));
    }
    Ok(())
}

/// A whole answer that broke off after its 200: the work was done and its usage is lost with the
/// body, so `bound` (the hold) is charged and the client told so; `since` ends the message (the
/// reason it is charged, or nothing).
pub fn broken_off(billing: &Bill, end: &End, bound: Metered, since: &str) -> Finish {
    let charge = billing.charge(bound.cost_pico_usd);
    let kind = if *end == End::IdleTimeout { ErrorKind::UpstreamTimeout } else { ErrorKind::UpstreamError };
    let e = ApiError::new(kind, format!("the provider's answer broke off ({}); billed {} credits, the most this call could cost{since}", end.describe(), credits_string(charge.charged_mc)))
        .public()
        .with_details(json!({ "credits_charged": credits_json(charge.charged_mc) }));
    Finish { tail: Vec::new(), answer: Err(e), metered: Some(bound) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_checked_by_name() {
        let m = object(br#"{"a":"x","n":3,"f":0.5,"e":"  ","z":null}"#).unwrap();
        assert_eq!(opt_int(&m, "n", 1, 10).unwrap(), Some(3));
        assert!(opt_int(&m, "n", 4, 10).unwrap_err().message.contains("`n`"));
        assert_eq!(opt_number(&m, "f", 0.0, 1.0).unwrap(), Some(0.5));
        assert!(req_text(&m, "e").unwrap_err().message.contains("empty"));
        assert!(req_text(&m, "z").unwrap_err().message.contains("required"));
        assert!(opt_choice(&m, "a", &["y"]).unwrap_err().message.contains("one of: y"));
        assert!(allow_only(&m, &["a"], "/v1/x").unwrap_err().message.contains("is not supported on /v1/x"));
        assert!(object(b"[1]").is_err());
        assert!(object(b"{").is_err());
    }

    #[test]
    fn provider_prefixes() {
        let both = [Provider::OpenAi, Provider::ElevenLabs];
        assert_eq!(split_provider("elevenlabs/eleven_v3", &both).unwrap(), (Some(Provider::ElevenLabs), "eleven_v3".into()));
        assert_eq!(split_provider("tts-1", &both).unwrap(), (None, "tts-1".into()));
        assert!(split_provider("anthropic/x", &both).unwrap_err().message.contains("openai/ or elevenlabs/"));
        assert!(split_provider("openai/", &both).is_err());
    }

    #[test]
    fn provider_errors_of_every_shape_are_explained_or_hidden() {
        let e = upstream_error(Provider::ElevenLabs, 422, br#"{"detail":[{"type":"missing","loc":["body","text"],"msg":"Field required","input":null}]}"#);
        assert_eq!(e.status(), 400);
        assert!(e.message.contains("body.text: Field required"), "{}", e.message);
        let e = upstream_error(Provider::ElevenLabs, 401, br#"{"detail":{"status":"quota_exceeded","message":"This request exceeds your quota of 10000."}}"#);
        assert_eq!(e.status(), 502);
        assert!(!e.public_message().contains("quota"));
        let e = upstream_error(Provider::Stability, 400, br#"{"id":"x","name":"bad_request","errors":["duration: must be between 1 and 190"]}"#);
        assert_eq!(e.status(), 400);
        assert!(e.message.contains("duration: must be between 1 and 190"));
        let e = upstream_error(Provider::Stability, 403, br#"{"id":"x","name":"content_moderation","errors":["Your request was flagged by our content moderation system."]}"#);
        assert_eq!(e.status(), 400);
        let e = upstream_error(Provider::Stability, 402, br#"{"id":"x","name":"payment_required","errors":["You lack sufficient credits to make this request. Please purchase more credits and try again."]}"#);
        assert_eq!(e.status(), 502);
        assert!(!e.public_message().contains("credits"));
        assert_eq!(upstream_error(Provider::OpenAi, 500, b"oops").status(), 502);
    }
}
