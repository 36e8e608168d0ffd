//! CORS for browser clients of the customer routes (`/v1/*`), from the `CORS_ORIGINS` setting, and
//! the security headers of every response. Never on `/admin/*` or the webhooks: those are not
//! for browsers. Keys travel in `Authorization`, never in cookies, so no credentials mode.

/// Allowed origins: exact (`https://app.example.com`), any port (`http://localhost:*`), or `*`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CorsOrigins(Vec<String>);

/// Headers a browser client may read from answers.
pub const EXPOSED: &str = "X-Request-Id, X-Credits-Charged, X-Credits-Remaining, X-Credits-Held, RateLimit, RateLimit-Policy, \
X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, Retry-After, Idempotent-Replayed";
/// Headers a browser client may send (the official SDKs add their `x-stainless-*` and `anthropic-*`).
/// `idempotency-key` and `x-max-credits`: the money controls of a call (docs/money-controls.md).
const ALLOWED_HEADERS: &[&str] = &["authorization", "content-type", "x-api-key", "accept", "openai-organization", "openai-project", "idempotency-key", "x-max-credits"];
const ALLOWED_PREFIXES: &[&str] = &["x-stainless-", "anthropic-"];

impl CorsOrigins {
    pub fn parse(s: &str) -> Result<CorsOrigins, String> {
        let mut out = Vec::new();
        for o in s.split(',').map(str::trim).filter(|o| !o.is_empty()) {
            let ok = o == "*" || ((o.starts_with("https://") || o.starts_with("http://")) && !o.ends_with('/') && !o[8..].contains('/'));
            if !ok {
                return Err(format!("`{o}` is not an origin (scheme://host[:port], port may be *)"));
            }
            out.push(o.to_string());
        }
        Ok(CorsOrigins(out))
    }

    pub fn allows(&self, origin: &str) -> bool {
        self.0.iter().any(|p| {
            if p == "*" || p == origin {
                return true;
            }
            match p.strip_suffix(":*") {
                // `http://localhost:*`: that host with any port (or none).
                Some(host) => origin == host || origin.strip_prefix(host).and_then(|r| r.strip_prefix(':')).is_some_and(|port| !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit())),
                None => false,
            }
        })
    }
}

/// Whether `path` is a customer route browsers may call.
pub fn applies_to(path: &str) -> bool {
    path.starts_with("/v1/")
}

/// Headers for an answer to an allowed `origin`.
pub fn response_headers(origin: &str) -> Vec<(String, String)> {
    vec![("access-control-allow-origin".into(), origin.into()), ("access-control-expose-headers".into(), EXPOSED.into()), ("vary".into(), "Origin".into())]
}

/// Headers of a preflight answer (204): the request's headers are echoed when all are allowed.
pub fn preflight_headers(origin: &str, requested: Option<&str>) -> Vec<(String, String)> {
    let asked: Vec<String> = requested.unwrap_or("").split(',').map(|h| h.trim().to_ascii_lowercase()).filter(|h| !h.is_empty()).collect();
    let mut allowed: Vec<String> = ALLOWED_HEADERS.iter().map(|h| h.to_string()).collect();
    for h in asked {
        if ALLOWED_PREFIXES.iter().any(|p| h.starts_with(p)) && h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') && !allowed.contains(&h) {
            allowed.push(h);
        }
    }
    let mut out = response_headers(origin);
    out.push(("access-control-allow-methods".into(), "GET, POST, OPTIONS".into()));
    out.push(("access-control-allow-headers".into(), allowed.join(", ")));
    out.push(("access-control-max-age".into(), "600".into()));
    out
}

/// On every response: HTTPS only, no sniffing, no framing, no referrer.
pub const SECURITY_HEADERS: [(&str, &str); 4] = [
    ("strict-transport-security", "max-age=31536000; includeSubDomains"),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_match_exactly_or_by_any_port() {
        let o = CorsOrigins::parse("http://localhost:*, http://127.0.0.1:*, https://app.example.com").unwrap();
        for ok in ["http://localhost:5173", "http://localhost", "http://127.0.0.1:8080", "https://app.example.com"] {
            assert!(o.allows(ok), "{ok}");
        }
        for no in ["http://localhost.evil.com", "http://localhost:80x", "https://app.example.com.evil", "http://app.example.com", "null", ""] {
            assert!(!o.allows(no), "{no}");
        }
        assert!(!CorsOrigins::default().allows("http://localhost"), "empty: none");
        assert!(CorsOrigins::parse("*").unwrap().allows("https://any.where"));
        assert!(CorsOrigins::parse("localhost:3000").is_err());
        assert!(CorsOrigins::parse("https://a.com/path").is_err());
    }

    #[test]
    fn preflights_allow_the_sdk_headers_and_nothing_odd() {
        let h = preflight_headers("http://localhost:3000", Some("Authorization, X-Stainless-OS, anthropic-version, X-Evil, x-stainless-bad header"));
        let allow = h.iter().find(|(k, _)| k == "access-control-allow-headers").unwrap().1.clone();
        assert!(allow.contains("authorization") && allow.contains("x-stainless-os") && allow.contains("anthropic-version"));
        assert!(!allow.contains("x-evil") && !allow.contains("bad header"));
        assert!(allow.contains("idempotency-key") && allow.contains("x-max-credits"), "the money controls");
        assert!(EXPOSED.contains("Idempotent-Replayed"));
        assert!(h.contains(&("access-control-allow-origin".into(), "http://localhost:3000".into())));
        assert!(applies_to("/v1/chat") && !applies_to("/admin/keys") && !applies_to("/webhooks/stripe"));
    }
}
