//! Checked configuration. The worker hands over raw `[vars]`/secret strings; this module turns
//! them into validated settings and names the bad variable when one is wrong.

use crate::error::ApiError;
use crate::money::{CreditRate, Decimal};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub limit: u64,
    pub window_ms: u64,
}

/// Sliding-window limits per plan and route class, plus the per-client-IP limit that calls with
/// an unknown key count against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimits {
    pub rules: Vec<(String, String, RateLimit)>,
    pub anonymous: RateLimit,
}

pub const DEFAULT_RATE_LIMITS: &str = "free:ai=10/3600, pro:ai=100/3600, anonymous=5/900";

impl RateLimits {
    /// Parses `plan:route=limit/window_secs, ..., anonymous=limit/window_secs`.
    pub fn parse(s: &str) -> Result<RateLimits, String> {
        let mut rules = Vec::new();
        let mut anonymous = None;
        for item in s.split(',').map(str::trim).filter(|x| !x.is_empty()) {
            let (lhs, rhs) = item.split_once('=').ok_or_else(|| format!("`{item}`: expected name=limit/seconds"))?;
            let (limit, window) = rhs.trim().split_once('/').ok_or_else(|| format!("`{item}`: expected limit/seconds"))?;
            let limit: u64 = limit.trim().parse().map_err(|_| format!("`{item}`: limit is not a number"))?;
            let secs: u64 = window.trim().parse().map_err(|_| format!("`{item}`: window is not a number"))?;
            if secs == 0 {
                return Err(format!("`{item}`: window must be positive"));
            }
            let rl = RateLimit { limit, window_ms: secs * 1000 };
            let lhs = lhs.trim();
            if lhs == "anonymous" {
                anonymous = Some(rl);
                continue;
            }
            let (plan, route) = lhs.split_once(':').ok_or_else(|| format!("`{item}`: expected plan:route"))?;
            let ok = |p: &str| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !ok(plan) || !ok(route) {
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

#[derive(Debug, Clone)]
pub struct Settings {
    pub rate: CreditRate,
    pub limits: RateLimits,
    pub upstream_timeout_ms: u64,
    pub max_body_bytes: u64,
    pub stripe_tolerance_secs: u64,
}

fn var_or(get: &dyn Fn(&str) -> Option<String>, name: &str, default: &str) -> String {
    get(name).filter(|v| !v.trim().is_empty()).unwrap_or_else(|| default.to_string())
}

fn bad(name: &str, e: impl fmt::Display) -> ApiError {
    ApiError::unavailable(format!("gateway misconfigured: {name}: {e}"))
}

pub fn settings_from(get: &dyn Fn(&str) -> Option<String>) -> Result<Settings, ApiError> {
    let margin = Decimal::parse(&var_or(get, "MARGIN_MULTIPLIER", "1.8")).map_err(|e| bad("MARGIN_MULTIPLIER", e))?;
    let upc = Decimal::parse(&var_or(get, "USD_PER_CREDIT", "0.01")).map_err(|e| bad("USD_PER_CREDIT", e))?;
    let rate = CreditRate::new(margin, upc)?;
    let limits = RateLimits::parse(&var_or(get, "RATE_LIMITS", DEFAULT_RATE_LIMITS)).map_err(|e| bad("RATE_LIMITS", e))?;
    let num = |name: &str, default: &str| -> Result<u64, ApiError> {
        var_or(get, name, default).trim().parse::<u64>().map_err(|e| bad(name, e))
    };
    Ok(Settings {
        rate,
        limits,
        upstream_timeout_ms: num("UPSTREAM_TIMEOUT_MS", "120000")?,
        max_body_bytes: num("MAX_BODY_BYTES", "1048576")?,
        stripe_tolerance_secs: num("STRIPE_TOLERANCE_SECS", "300")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_limits_are_those_of_the_seed_guide() {
        let l = RateLimits::parse(DEFAULT_RATE_LIMITS).unwrap();
        assert_eq!(l.get("free", "ai"), Some(RateLimit { limit: 10, window_ms: 3_600_000 }));
        assert_eq!(l.get("pro", "ai"), Some(RateLimit { limit: 100, window_ms: 3_600_000 }));
        assert_eq!(l.anonymous, RateLimit { limit: 5, window_ms: 900_000 });
        assert_eq!(l.script_arg("ai"), "free:10:3600000,pro:100:3600000");
    }

    #[test]
    fn bad_limits_name_the_problem() {
        assert!(RateLimits::parse("free:ai=10").unwrap_err().contains("limit/seconds"));
        assert!(RateLimits::parse("free:ai=10/3600").unwrap_err().contains("anonymous"));
        assert!(RateLimits::parse("fr ee:ai=1/1,anonymous=1/1").is_err());
    }

    #[test]
    fn settings_name_the_bad_variable() {
        let e = settings_from(&|k| (k == "MARGIN_MULTIPLIER").then(|| "lots".to_string())).unwrap_err();
        assert!(e.message.contains("MARGIN_MULTIPLIER"));
        let s = settings_from(&|_| None).unwrap();
        assert_eq!(s.rate, CreditRate::default_rate());
    }
}
