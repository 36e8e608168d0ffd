//! Low-balance alerts: what a customer sets (`PUT /v1/alerts {threshold, url}`), where an alert
//! may be sent (https only; never a private, loopback or link-local host outside the local
//! stack), when the balance has crossed below the threshold, and the signed event the gateway
//! posts (`Broker-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "{t}.{body}">`, keyed with the
//! account's alert secret, shown once).
//!
//! The state lives in one Redis hash per key (`crate::redis_keys::lowbal`), changed by
//! `lowbal_v1.lua`: an armed flag per watcher (the alert, the auto top-up) that the first
//! settlement below the threshold clears, and a credit re-arms. This module decides (pure);
//! `crate::lowbal` runs the store steps.
//!
//! Leaves out: the POST itself and its retries' timers (the worker), the auto top-up's payment
//! (`crate::auto_topup`).

use crate::error::ApiError;
use crate::money::{credits_json, parse_credits};
use serde_json::{json, Map, Value};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The header that carries an alert's signature.
pub const SIGNATURE_HEADER: &str = "Broker-Signature";
/// Waits before each delivery attempt (the first is immediate): four attempts within ~12 s of
/// the settlement, inside the request's `waitUntil`.
pub const RETRY_MS: [u64; 4] = [0, 1_000, 3_000, 8_000];
/// How long one attempt may wait for the receiver's answer.
pub const DELIVERY_TIMEOUT_MS: u64 = 5_000;
/// The largest threshold accepted (a million credits).
const MAX_THRESHOLD_MC: i64 = 1_000_000_000;

/// An error naming the field of the request body it is about (`details.param`).
pub fn field_error(field: &str, message: impl std::fmt::Display) -> ApiError {
    ApiError::invalid(format!("`{field}`: {message}")).with_details(json!({ "param": field }))
}

/// Refuses any field of `body` not in `allowed` (naming the first such field).
pub fn only_fields(body: &Map<String, Value>, allowed: &[&str]) -> Result<(), ApiError> {
    match body.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(field_error(k, format!("unknown field; accepted: {}", allowed.join(", ")))),
        None => Ok(()),
    }
}

/// A threshold in credits (`0` or more, at most 3 decimals) as millicredits.
pub fn threshold_mc(body: &Map<String, Value>, field: &str) -> Result<i64, ApiError> {
    let v = body.get(field).filter(|v| !v.is_null()).ok_or_else(|| field_error(field, "required (credits, 0 or more)"))?;
    if !v.is_number() {
        return Err(field_error(field, "must be a number of credits"));
    }
    let mc = parse_credits(v).map_err(|e| field_error(field, e))?;
    if mc < 0 {
        return Err(field_error(field, "must not be below zero"));
    }
    if mc > MAX_THRESHOLD_MC {
        return Err(field_error(field, "must be at most 1000000 credits"));
    }
    Ok(mc)
}

/// The alert a customer sets: below `threshold_mc`, POST to `url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertSetting {
    pub threshold_mc: i64,
    pub url: String,
}

/// `PUT /v1/alerts {threshold, url}`. `local_stack`: the gateway runs on the local test stack
/// (its store is on a loopback address), where `http://127.0.0.1` receivers are allowed.
pub fn parse_setting(body: &Map<String, Value>, local_stack: bool) -> Result<AlertSetting, ApiError> {
    only_fields(body, &["threshold", "url"])?;
    let threshold_mc = threshold_mc(body, "threshold")?;
    let url = body.get("url").and_then(Value::as_str).ok_or_else(|| field_error("url", "required (an https URL)"))?;
    check_url(url, local_stack).map_err(|e| field_error("url", e))?;
    Ok(AlertSetting { threshold_mc, url: url.to_string() })
}

/// Where an alert may be sent: `https://` with a public host name or address. An IP literal in a
/// private, loopback, link-local, shared (CGNAT) or unspecified range, and `localhost` (and
/// `*.localhost`), are refused: the gateway must not be made to POST into a private network. On
/// the local stack, `http://` to a loopback address is allowed too (the test receiver).
pub fn check_url(url: &str, local_stack: bool) -> Result<(), String> {
    if url.len() > 2000 || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must be a URL of at most 2000 characters without spaces".into());
    }
    let (scheme, rest) = url.split_once("://").ok_or("must be an https URL")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') {
        return Err("must not carry credentials".into());
    }
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or("").to_string()
    } else {
        authority.rsplit_once(':').map_or(authority, |(h, port)| if port.bytes().all(|b| b.is_ascii_digit()) { h } else { authority }).to_string()
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if host.is_empty() {
        return Err("has no host".into());
    }
    let ip: Option<IpAddr> = host.parse().ok();
    let loopback = host == "localhost" || host.ends_with(".localhost") || ip.is_some_and(|ip| ip.is_loopback());
    match scheme.to_ascii_lowercase().as_str() {
        "https" => {}
        "http" if local_stack && loopback => return Ok(()),
        _ => return Err("must be an https URL".into()),
    }
    if loopback && !local_stack {
        return Err("must not name a loopback host".into());
    }
    if let Some(ip) = ip {
        let allowed = is_public(ip) || (local_stack && ip.is_loopback());
        if !allowed {
            return Err(format!("must not name a private, loopback or link-local address ({ip})"));
        }
    } else if !host.contains('.') || host.bytes().any(|b| !(b.is_ascii_alphanumeric() || b == b'-' || b == b'.')) {
        return Err("must name a public host".into());
    } else if numeric_last_label(&host) {
        // A URL parser reads `127.1` or `0x7f.0.0.1` as an IPv4 address (WHATWG's host parsing,
        // which fetch uses): only the canonical dotted form, checked above, is accepted.
        return Err("must write an IP address in its canonical dotted form".into());
    }
    Ok(())
}

/// True when the host's last label is a number (decimal, or hex `0x…`): WHATWG URL parsing then
/// takes the whole host for an IPv4 address, whatever its other labels are.
fn numeric_last_label(host: &str) -> bool {
    let last = host.rsplit('.').next().unwrap_or("");
    let hex = last.strip_prefix("0x").is_some_and(|h| h.bytes().all(|b| b.is_ascii_hexdigit()));
    hex || (!last.is_empty() && last.bytes().all(|b| b.is_ascii_digit()))
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_private() || ip.is_loopback() || ip.is_link_local() || ip.is_unspecified() || ip.is_broadcast() || ip.is_documentation() || ip.is_multicast()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240)
}

fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            let first = v6.segments()[0];
            !(v6.is_loopback() || v6.is_unspecified() || v6.is_multicast() || v6 == Ipv6Addr::LOCALHOST
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80) // link-local
        }
    }
}

/// Whether a watcher fires: it is armed (no alert since the last credit) and the balance after
/// a settlement is below its threshold. The store clears the flag atomically, so of two
/// settlements that both see this, one fires.
pub fn crossed(balance_mc: i64, threshold_mc: i64, armed: bool) -> bool {
    armed && balance_mc < threshold_mc
}

/// An alert event: its type (`balance.low`, `auto_topup.failed`), the key, and its data.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertEvent {
    pub id: String,
    pub kind: &'static str,
    pub key_id: String,
    pub created_secs: u64,
    pub data: Value,
}

impl AlertEvent {
    /// `balance.low`: the balance after a call is below the threshold.
    pub fn balance_low(id: String, key_id: &str, created_secs: u64, balance_mc: i64, threshold_mc: i64) -> AlertEvent {
        let data = json!({ "balance_credits": credits_json(balance_mc), "threshold_credits": credits_json(threshold_mc) });
        AlertEvent { id, kind: "balance.low", key_id: key_id.to_string(), created_secs, data }
    }

    /// `auto_topup.failed`: the card was declined (or needs the customer); auto top-up is off.
    pub fn topup_failed(id: String, key_id: &str, created_secs: u64, code: &str, message: &str) -> AlertEvent {
        let data = json!({ "code": code, "message": message, "auto_topup": "off" });
        AlertEvent { id, kind: "auto_topup.failed", key_id: key_id.to_string(), created_secs, data }
    }

    /// The body posted (compact JSON; these exact bytes are signed).
    pub fn body(&self) -> String {
        json!({ "id": self.id, "object": "event", "type": self.kind, "created": self.created_secs, "key_id": self.key_id, "data": self.data }).to_string()
    }
}

/// The `Broker-Signature` of `body` sent at `t`: HMAC-SHA256 over `"{t}.{body}"` keyed with the
/// whole alert secret, as Stripe signs its webhooks.
pub fn signature_header(secret: &str, t: i64, body: &[u8]) -> String {
    format!("t={t},v1={}", crate::stripe::sign(secret, t, body))
}

/// Whether a receiver's answer is a delivery (any 2xx).
pub fn delivered(status: u16) -> bool {
    (200..300).contains(&status)
}

/// The alert setting as `GET /v1/alerts` shows it (never the secret).
pub fn setting_json(threshold_mc: Option<i64>, url: Option<&str>, armed: bool) -> Value {
    match (threshold_mc, url) {
        (Some(t), Some(u)) => json!({ "enabled": true, "threshold": credits_json(t), "url": u, "armed": armed, "signature_header": SIGNATURE_HEADER }),
        _ => json!({ "enabled": false }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn crossing_needs_the_flag_and_a_balance_below_the_threshold() {
        assert!(crossed(999, 1000, true));
        assert!(!crossed(1000, 1000, true), "at the threshold is not below it");
        assert!(!crossed(999, 1000, false), "fired once already");
        assert!(crossed(-5, 0, true), "a debt is below a zero threshold");
    }

    #[test]
    fn urls_https_and_public_only() {
        for ok in ["https://hooks.example.com/x", "https://hooks.example.com:8443/a?b=c", "https://8.8.8.8/h", "https://[2606:4700::1111]/h"] {
            assert_eq!(check_url(ok, false), Ok(()), "{ok}");
        }
        for bad in [
            "http://hooks.example.com/x",
            "ftp://hooks.example.com/x",
            "hooks.example.com",
            "https://localhost/x",
            "https://api.localhost/x",
            "https://127.0.0.1/x",
            "https://10.1.2.3/x",
            "https://172.16.0.1/x",
            "https://192.168.1.1/x",
            "https://169.254.169.254/latest/meta-data",
            "https://100.64.0.1/x",
            "https://0.0.0.0/x",
            "https://[::1]/x",
            "https://[fe80::1]/x",
            "https://[fd00::1]/x",
            "https://[::ffff:10.0.0.1]/x",
            "https://127.1/x",
            "https://10.1/x",
            "https://0x7f.0.0.1/x",
            "https://0x7f000001.0x1/x",
            "https://169.254.169.254.:443/x",
            "https://user:pw@hooks.example.com/x",
            "https://intranet/x",
            "https:// hooks.example.com",
        ] {
            assert!(check_url(bad, false).is_err(), "{bad}");
        }
        assert_eq!(check_url("http://127.0.0.1:8090/alerts/a", true), Ok(()), "the local stack's receiver");
        assert!(check_url("http://hooks.example.com/x", true).is_err(), "plain http only to loopback");
        assert!(check_url("https://10.0.0.7/x", true).is_err(), "the local stack allows loopback, not private networks");
    }

    #[test]
    fn settings_refuse_unknown_fields_negative_thresholds_and_plain_http_naming_the_field() {
        let ok = parse_setting(&body(json!({"threshold": 12.5, "url": "https://h.example.com/a"})), false).unwrap();
        assert_eq!(ok, AlertSetting { threshold_mc: 12_500, url: "https://h.example.com/a".into() });
        for (b, field) in [
            (json!({"threshold": 1, "url": "https://h.example.com/a", "extra": 1}), "extra"),
            (json!({"threshold": -1, "url": "https://h.example.com/a"}), "threshold"),
            (json!({"threshold": "10", "url": "https://h.example.com/a"}), "threshold"),
            (json!({"url": "https://h.example.com/a"}), "threshold"),
            (json!({"threshold": 1, "url": "http://h.example.com/a"}), "url"),
            (json!({"threshold": 1}), "url"),
        ] {
            let e = parse_setting(&body(b.clone()), false).unwrap_err();
            assert_eq!(e.status(), 400, "{b}");
            assert_eq!(e.details.as_ref().and_then(|d| d["param"].as_str()), Some(field), "{b}");
            assert!(e.message.contains(&format!("`{field}`")), "{}", e.message);
        }
    }

    #[test]
    fn the_signature_is_hmac_sha256_over_timestamp_dot_body() {
        // Computed independently: printf '%s' '1700000000.{"a":1}' | openssl dgst -sha256 -hmac whsec_alert_test
        let h = signature_header("whsec_alert_test", 1_700_000_000, br#"{"a":1}"#);
        assert_eq!(h, "t=1700000000,v1=9149ff3c1e73bafa3890da0217335cbac9c8ac39f5f7a6dd1e8a040e6634b32a");
        assert!(crate::stripe::verify(Some(&h), br#"{"a":1}"#, "whsec_alert_test", 1_700_000_000, 300).is_ok());
        let e = AlertEvent::balance_low("evt_1".into(), "key_0123456789abcdef", 5, 900, 1000);
        let v: Value = serde_json::from_str(&e.body()).unwrap();
        assert_eq!((v["type"].as_str(), v["data"]["balance_credits"].as_f64(), v["data"]["threshold_credits"].as_i64()), (Some("balance.low"), Some(0.9), Some(1)));
    }
}
