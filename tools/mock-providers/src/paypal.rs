//! PayPal: `POST /paypal/v1/oauth2/token` and `POST /paypal/v1/notifications/verify-webhook-signature`.
//!
//! Token: HTTP Basic `client_id:client_secret`, form body `grant_type=client_credentials` → the
//! oauth2-token.http body with a fresh `access_token` (remembered); bad credentials → 401
//! `{"error":"invalid_client","error_description":"Client Authentication failed"}`.
//!
//! Verify: needs `Authorization: Bearer <issued token>` (else 401 `invalid_token`). Answers HTTP 200
//! `{"verification_status":"SUCCESS"}` iff `webhook_id == MOCK_PAYPAL_WEBHOOK_ID` and
//! `transmission_sig == hex(HMAC-SHA256(MOCK_PAYPAL_SIGNING_SECRET,
//! "{transmission_id}|{transmission_time}|{webhook_id}|{crc32 decimal of the raw webhook_event bytes}"))`
//! (lowercase hex; raw bytes exactly as received, via RawValue), else `FAILURE`.
//! Script keys: `verification_status` forces the answer; `status`/`body` as usual.

use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::value::RawValue;
use sha2::Sha256;

use crate::common;
use crate::control::State;
use crate::http::{url_decode, Request, Response};

fn debug_id(seq: u64) -> String {
    format!("{:013x}", common::fnv1a(&seq.to_le_bytes()) >> 12)
}

fn json(status: u16, body: String, seq: u64) -> Response {
    Response::json_bytes(status, body.into_bytes()).header("paypal-debug-id", debug_id(seq))
}

/// PayPal REST error shape (`name`, `message`, `debug_id`, optional `details`).
fn rest_error(
    status: u16,
    name: &str,
    message: &str,
    details: Option<serde_json::Value>,
    seq: u64,
) -> Response {
    let mut v = serde_json::Map::new();
    v.insert("name".into(), name.into());
    v.insert("message".into(), message.into());
    v.insert("debug_id".into(), debug_id(seq).into());
    if let Some(d) = details {
        v.insert("details".into(), d);
    }
    json(status, serde_json::Value::Object(v).to_string(), seq)
}

pub fn error_for_status(status: u16, seq: u64) -> Response {
    match status {
        401 => json(401, r#"{"error":"invalid_token","error_description":"Token signature verification failed"}"#.into(), seq),
        400 => rest_error(400, "VALIDATION_ERROR", "Invalid request - see details", None, seq),
        429 => rest_error(429, "RATE_LIMIT_REACHED", "Too many requests. Blocked due to rate limiting.", None, seq),
        s => rest_error(s, "INTERNAL_SERVICE_ERROR", "An internal service error has occurred", None, seq),
    }
}

/// The signature the mock expects for a delivery.
pub fn expected_sig(
    secret: &str,
    transmission_id: &str,
    transmission_time: &str,
    webhook_id: &str,
    raw_event: &[u8],
) -> String {
    let msg = format!(
        "{transmission_id}|{transmission_time}|{webhook_id}|{}",
        common::crc32(raw_event)
    );
    match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mut mac) => {
            mac.update(msg.as_bytes());
            hex::encode(mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    }
}

pub fn handle(state: &State, req: &Request) -> Response {
    let seq = state.next_seq();
    match (req.method.as_str(), req.path.as_str()) {
        ("POST", "/paypal/v1/oauth2/token") => token(state, req, seq),
        ("POST", "/paypal/v1/notifications/verify-webhook-signature") => verify(state, req, seq),
        _ => rest_error(
            404,
            "RESOURCE_NOT_FOUND",
            "The specified resource does not exist.",
            None,
            seq,
        ),
    }
}

fn token(state: &State, req: &Request, seq: u64) -> Response {
    let creds = req
        .header("authorization")
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(common::b64_decode)
        .map(|b| String::from_utf8_lossy(&b).into_owned());
    let expected = format!(
        "{}:{}",
        state.config.paypal_client_id, state.config.paypal_client_secret
    );
    if creds.as_deref() != Some(expected.as_str()) {
        return json(
            401,
            r#"{"error":"invalid_client","error_description":"Client Authentication failed"}"#
                .into(),
            seq,
        );
    }
    if let Some(s) = state
        .take_script("paypal-token")
        .filter(|s| s.is_override())
    {
        return s.override_response(|status| error_for_status(status, seq));
    }
    let body = req.body_str();
    let grant = body.split('&').find_map(|kv| {
        kv.split_once('=')
            .filter(|(k, _)| *k == "grant_type")
            .map(|(_, v)| url_decode(v))
    });
    match grant.as_deref() {
        Some("client_credentials") => {}
        None => {
            return json(
                400,
                r#"{"error":"unsupported_grant_type","error_description":"Grant Type is NULL"}"#
                    .into(),
                seq,
            )
        }
        Some(_) => return json(
            400,
            r#"{"error":"unsupported_grant_type","error_description":"unsupported grant_type"}"#
                .into(),
            seq,
        ),
    }
    let token = format!(
        "A21AAMock{}",
        common::alnum(seq.wrapping_mul(0x9e37_79b9) ^ crate::request_log::now_ms(), 60)
    );
    state.issue_paypal_token(token.clone());
    let now = common::now_secs();
    let body = serde_json::json!({
        "scope": "https://uri.paypal.com/services/invoicing https://uri.paypal.com/services/payments/payment/authcapture openid https://uri.paypal.com/services/payments/refund https://api-m.paypal.com/v1/vault/credit-card https://api-m.paypal.com/v1/payments/.* https://uri.paypal.com/services/applications/webhooks",
        "access_token": token,
        "token_type": "Bearer",
        "app_id": "APP-80W284485P519543T",
        "expires_in": 32400,
        "nonce": format!("{}{}", common::rfc3339(now), common::alnum(seq, 43)),
    });
    // serde_json sorts keys; emit in PayPal's order instead.
    let ordered = format!(
        r#"{{"scope":{},"access_token":{},"token_type":"Bearer","app_id":"APP-80W284485P519543T","expires_in":32400,"nonce":{}}}"#,
        body["scope"], body["access_token"], body["nonce"]
    );
    json(200, ordered, seq)
}

#[derive(Deserialize)]
struct VerifyRequest<'a> {
    #[serde(default)]
    transmission_id: Option<String>,
    #[serde(default)]
    transmission_time: Option<String>,
    #[serde(default)]
    transmission_sig: Option<String>,
    #[serde(default)]
    webhook_id: Option<String>,
    #[serde(default)]
    cert_url: Option<String>,
    #[serde(default)]
    auth_algo: Option<String>,
    #[serde(borrow, default)]
    webhook_event: Option<&'a RawValue>,
}

fn verify(state: &State, req: &Request, seq: u64) -> Response {
    let bearer = req
        .header("authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    if !bearer.is_some_and(|t| state.paypal_token_valid(t)) {
        return json(401, r#"{"error":"invalid_token","error_description":"Token signature verification failed"}"#.into(), seq);
    }
    let script = state.take_script("paypal-verify");
    if let Some(s) = script.as_ref().filter(|s| s.is_override()) {
        return s.override_response(|status| error_for_status(status, seq));
    }
    let parsed: VerifyRequest = match serde_json::from_slice(&req.body) {
        Ok(p) => p,
        Err(e) => {
            return rest_error(
                400,
                "MALFORMED_REQUEST",
                &format!("The request JSON is not well formed. {e}"),
                None,
                seq,
            );
        }
    };
    let mut missing = Vec::new();
    for (name, present) in [
        ("auth_algo", parsed.auth_algo.is_some()),
        ("cert_url", parsed.cert_url.is_some()),
        ("transmission_id", parsed.transmission_id.is_some()),
        ("transmission_sig", parsed.transmission_sig.is_some()),
        ("transmission_time", parsed.transmission_time.is_some()),
        ("webhook_id", parsed.webhook_id.is_some()),
        ("webhook_event", parsed.webhook_event.is_some()),
    ] {
        if !present {
            missing.push(serde_json::json!({
                "field": name, "location": "body", "issue": "MISSING_REQUIRED_PARAMETER",
                "description": format!("{name} is required"),
            }));
        }
    }
    if !missing.is_empty() {
        return rest_error(
            400,
            "VALIDATION_ERROR",
            "Invalid request - see details",
            Some(serde_json::Value::Array(missing)),
            seq,
        );
    }
    let raw = parsed
        .webhook_event
        .map(|r| r.get().as_bytes())
        .unwrap_or_default();
    let webhook_id = parsed.webhook_id.unwrap_or_default();
    let expected = expected_sig(
        &state.config.paypal_signing_secret,
        parsed.transmission_id.as_deref().unwrap_or(""),
        parsed.transmission_time.as_deref().unwrap_or(""),
        &webhook_id,
        raw,
    );
    let ok = webhook_id == state.config.paypal_webhook_id
        && parsed.transmission_sig.as_deref() == Some(expected.as_str());
    let status = script
        .as_ref()
        .and_then(|s| s.verification_status.clone())
        .unwrap_or_else(|| {
            if ok {
                "SUCCESS".into()
            } else {
                "FAILURE".into()
            }
        });
    let mut r = json(
        200,
        format!(
            r#"{{"verification_status":{}}}"#,
            serde_json::Value::from(status)
        ),
        seq,
    );
    if let Some(s) = &script {
        s.apply_timing(&mut r);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_over_crc_of_raw_bytes() {
        let a = expected_sig(
            "k",
            "t1",
            "2025-08-26T09:15:03Z",
            "WH-MOCK-0001",
            br#"{"id":"WH-1"}"#,
        );
        let b = expected_sig(
            "k",
            "t1",
            "2025-08-26T09:15:03Z",
            "WH-MOCK-0001",
            br#"{"id": "WH-1"}"#,
        );
        assert_eq!(a.len(), 64);
        assert_ne!(
            a, b,
            "whitespace in the raw event must change the signature"
        );
        // HMAC-SHA256("k", "t1|2025-08-26T09:15:03Z|WH-MOCK-0001|<crc>") is lowercase hex.
        assert!(a
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    }

    #[test]
    fn raw_value_keeps_exact_bytes() {
        let body = br#"{"webhook_id":"W","webhook_event":{"b": 1,  "a":[ 2 ]}}"#;
        let p: Result<VerifyRequest, _> = serde_json::from_slice(body);
        assert_eq!(
            p.ok()
                .and_then(|p| p.webhook_event.map(|r| r.get().to_string())),
            Some(r#"{"b": 1,  "a":[ 2 ]}"#.to_string())
        );
    }
}
