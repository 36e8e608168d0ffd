//! Rate-limit state as the admission script reports it, and the headers and errors it becomes.
//! The windows themselves are sliding logs kept in Redis (`lua/lib_v2.lua`); their limits per
//! plan and route class are [`RateLimits`] (`RATE_LIMITS`).

use crate::error::{ApiError, ErrorKind};
use std::net::{IpAddr, Ipv6Addr};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub limit: u64,
    pub window_ms: u64,
}

impl RateLimit {
    /// Parses `limit/window_seconds`.
    pub fn parse(s: &str) -> Result<RateLimit, String> {
        let (limit, window) = s.trim().split_once('/').ok_or_else(|| format!("`{s}`: expected limit/seconds"))?;
        let limit: u64 = limit.trim().parse().map_err(|_| format!("`{s}`: limit is not a number"))?;
        let secs: u64 = window.trim().parse().map_err(|_| format!("`{s}`: window is not a number"))?;
        if secs == 0 {
            return Err(format!("`{s}`: window must be positive"));
        }
        Ok(RateLimit { limit, window_ms: secs * 1000 })
    }

    pub fn window_secs(&self) -> u64 {
        self.window_ms / 1000
    }
}

/// Sliding-window limits per plan and route class, plus the per-client-IP limit that calls with
/// an unknown key count against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimits {
    pub rules: Vec<(String, String, RateLimit)>,
    pub anonymous: RateLimit,
}

/// The original product's limits for the chat routes (`ai`), and the same for the media routes
/// (`media`: images, speech, music), which are limited apart.
pub const DEFAULT_RATE_LIMITS: &str = "free:ai=10/3600, pro:ai=100/3600, free:media=10/3600, pro:media=100/3600, anonymous=5/900";

fn is_name(p: &str) -> bool {
    !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl RateLimits {
    /// Parses `plan:route=limit/window_secs, ..., anonymous=limit/window_secs`.
    pub fn parse(s: &str) -> Result<RateLimits, String> {
        let mut rules = Vec::new();
        let mut anonymous = None;
        for item in s.split(',').map(str::trim).filter(|x| !x.is_empty()) {
            let (lhs, rhs) = item.split_once('=').ok_or_else(|| format!("`{item}`: expected name=limit/seconds"))?;
            let rl = RateLimit::parse(rhs).map_err(|e| format!("`{item}`: {e}"))?;
            let lhs = lhs.trim();
            if lhs == "anonymous" {
                anonymous = Some(rl);
                continue;
            }
            let (plan, route) = lhs.split_once(':').ok_or_else(|| format!("`{item}`: expected plan:route"))?;
            if !is_name(plan) || !is_name(route) {
                return Err(format!("`{item}`: plan and route are [A-Za-z0-9_-]+"));
            }
            rules.push((plan.to_string(), route.to_string(), rl));
        }
        let anonymous = anonymous.ok_or("missing anonymous=limit/seconds")?;
        Ok(RateLimits { rules, anonymous })
    }

    pub fn get(&self, plan: &str, route: &str) -> Option<RateLimit> {
        self.rules.iter().find(|(p, r, _)| p == plan && r == route).map(|(_, _, l)| *l)
    }

    pub fn has_plan(&self, plan: &str) -> bool {
        self.rules.iter().any(|(p, _, _)| p == plan)
    }

    /// The admission script's view for one route class: `plan:limit:window_ms,...`.
    pub fn script_arg(&self, route: &str) -> String {
        self.rules
            .iter()
            .filter(|(_, r, _)| r == route)
            .map(|(p, _, l)| format!("{p}:{}:{}", l.limit, l.window_ms))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// The network a client address is counted as by the per-address limits (unknown keys, admin
/// lockout): an IPv4 address as it is, an IPv6 address as its /64, since one subscriber is handed a
/// whole /64 and could otherwise try a fresh address for every guess. Anything unparsable is its
/// own bucket.
pub fn address_bucket(ip: &str) -> String {
    match ip.trim().parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => v4.to_string(),
        Ok(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{}/64", Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        Err(_) => ip.to_string(),
    }
}

/// Rate-limit state to report in headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateState {
    pub limit: i64,
    pub remaining: i64,
    pub reset_ms: i64,
}

impl RateState {
    /// Whole seconds until a slot frees (the `t` of `RateLimit`, `X-RateLimit-Reset`).
    pub fn reset_secs(&self) -> u64 {
        reset_secs(self.reset_ms)
    }

    /// `RateLimit`/`RateLimit-Policy` (IETF draft) and the older `X-RateLimit-*` set, for the
    /// limit named `policy` (the route class, or `auth` for the per-address limit).
    pub fn headers(&self, policy: &str) -> Vec<(String, String)> {
        let reset = self.reset_secs();
        let remaining = self.remaining.max(0);
        vec![
            ("ratelimit-policy".into(), format!("\"{policy}\";q={}", self.limit)),
            ("ratelimit".into(), format!("\"{policy}\";r={remaining};t={reset}")),
            ("x-ratelimit-limit".into(), self.limit.to_string()),
            ("x-ratelimit-remaining".into(), remaining.to_string()),
            ("x-ratelimit-reset".into(), reset.to_string()),
        ]
    }
}

fn reset_secs(reset_ms: i64) -> u64 {
    (reset_ms.max(0) as u64).div_ceil(1000)
}

/// 429 for an address over its unknown-key limit (admission and customer reads alike).
pub fn ip_limited_error(reset_ms: i64) -> ApiError {
    ApiError::new(
        ErrorKind::RateLimited { retry_after_secs: reset_secs(reset_ms).max(1) },
        "too many requests with invalid API keys from this address; slow down",
    )
}

/// 429 once an address has made more than `limit` attempts in the window (`reset_ms`: until the
/// oldest leaves it). For routes anyone can post to whose every request costs the gateway
/// something (a PayPal webhook delivery costs two calls to PayPal).
pub fn over_limit(count: u64, limit: u64, reset_ms: u64, what: &str) -> Option<ApiError> {
    (count > limit).then(|| ApiError::new(ErrorKind::RateLimited { retry_after_secs: reset_ms.div_ceil(1000).max(1) }, format!("too many {what} from this address; slow down")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_are_counted_per_64_and_ipv4_per_address() {
        assert_eq!(address_bucket("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(address_bucket("2001:db8:1:2:ffff:1:2:3"), "2001:db8:1:2::/64");
        assert_ne!(address_bucket("2001:db8:1:3::1"), address_bucket("2001:db8:1:2::1"));
        assert_eq!(address_bucket("203.0.113.9"), "203.0.113.9");
        assert_eq!(address_bucket("::ffff:203.0.113.9"), "203.0.113.9");
        assert_eq!(address_bucket("unknown"), "unknown");
    }

    #[test]
    fn headers_round_the_reset_up_and_never_show_negative_remaining() {
        let s = RateState { limit: 10, remaining: -1, reset_ms: 1001 };
        let h = s.headers("ai");
        assert!(h.contains(&("ratelimit".into(), "\"ai\";r=0;t=2".into())));
        assert!(h.contains(&("ratelimit-policy".into(), "\"ai\";q=10".into())));
        assert!(h.contains(&("x-ratelimit-remaining".into(), "0".into())));
    }

    #[test]
    fn an_address_over_its_limit_waits_until_its_oldest_attempt_leaves_the_window() {
        assert!(over_limit(60, 60, 1, "posts").is_none());
        let e = over_limit(61, 60, 30_001, "posts").unwrap();
        assert_eq!((e.status(), e.kind.clone()), (429, ErrorKind::RateLimited { retry_after_secs: 31 }));
        assert!(e.response_headers().contains(&("retry-after".into(), "31".into())));
    }

    #[test]
    fn ip_limit_waits_at_least_a_second() {
        assert_eq!(ip_limited_error(0).kind, ErrorKind::RateLimited { retry_after_secs: 1 });
        assert_eq!(ip_limited_error(90_500).kind, ErrorKind::RateLimited { retry_after_secs: 91 });
    }

    #[test]
    fn default_limits_are_those_of_the_seed_guide() {
        let l = RateLimits::parse(DEFAULT_RATE_LIMITS).unwrap();
        assert_eq!(l.get("free", "ai"), Some(RateLimit { limit: 10, window_ms: 3_600_000 }));
        assert_eq!(l.get("pro", "ai"), Some(RateLimit { limit: 100, window_ms: 3_600_000 }));
        assert_eq!(l.anonymous, RateLimit { limit: 5, window_ms: 900_000 });
        assert_eq!(l.script_arg("ai"), "free:10:3600000,pro:100:3600000");
        assert_eq!(l.script_arg("media"), "free:10:3600000,pro:100:3600000", "the media routes have their own class");
    }

    #[test]
    fn bad_limits_name_the_problem() {
        assert!(RateLimits::parse("free:ai=10").unwrap_err().contains("limit/seconds"));
        assert!(RateLimits::parse("free:ai=10/3600").unwrap_err().contains("anonymous"));
        assert!(RateLimits::parse("fr ee:ai=1/1,anonymous=1/1").is_err());
        assert!(RateLimits::parse("free:ai=1/0,anonymous=1/1").unwrap_err().contains("positive"));
    }
}
