//! The RapidAPI channel: calls RapidAPI forwards, authenticated by its proxy secret, for its own
//! users on its own plans. RapidAPI bills its customers, so no credits are held or charged; the
//! calls are rate limited by the plan the `X-RapidAPI-Subscription` names (mapped to a
//! `RATE_LIMITS` plan by `RAPIDAPI_PLANS`) and land in the analytics with their provider cost,
//! per RapidAPI user and per plan, so the margin is visible.

use crate::error::{ApiError, ErrorKind};
use crate::metering::{Admitted, HoldPlan};
use crate::ratelimit::RateLimits;
use crate::ratelimit::RateState;
use crate::scripts::Retention;
use crate::scripts::{bad_reply, rate_at};
use serde_json::Value;

/// `RAPIDAPI_PLANS`: `BASIC:free, PRO:pro, …` (RapidAPI subscription → RATE_LIMITS plan).
pub fn parse_plans(s: &str, limits: &RateLimits) -> Result<Vec<(String, String)>, String> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (sub, plan) = p.split_once(':').ok_or_else(|| format!("`{p}`: expected SUBSCRIPTION:rate_plan"))?;
            let (sub, plan) = (sub.trim(), plan.trim());
            if sub.is_empty() || !limits.has_plan(plan) {
                return Err(format!("`{p}`: the rate plan `{plan}` is not in RATE_LIMITS"));
            }
            Ok((sub.to_string(), plan.to_string()))
        })
        .collect()
}

/// A RapidAPI subscription as configured (its analytics name) and the rate plan it maps to, or
/// a 403 naming the subscription.
pub fn plan_of<'a>(plans: &'a [(String, String)], subscription: &str) -> Result<(&'a str, &'a str), ApiError> {
    plans
        .iter()
        .find(|(s, _)| s.eq_ignore_ascii_case(subscription))
        .map(|(s, p)| (s.as_str(), p.as_str()))
        .ok_or_else(|| ApiError::new(ErrorKind::Forbidden, format!("the RapidAPI subscription `{subscription}` has no plan here (RAPIDAPI_PLANS)")))
}

/// A RapidAPI user id as it may appear in a Redis key name.
pub fn user_id(raw: &str) -> Result<String, ApiError> {
    let ok = !raw.is_empty() && raw.len() <= 128 && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.@".contains(&b));
    ok.then(|| raw.to_string()).ok_or_else(|| ApiError::invalid("X-RapidAPI-User is missing or not a user name"))
}

/// `rapid_v1 admit`'s arguments.
pub struct RapidAdmission<'a> {
    pub user: &'a str,
    pub now_ms: u64,
    pub request_id: &'a str,
    pub class: &'a str,
    pub plan: &'a str,
    pub limits: &'a RateLimits,
}

impl RapidAdmission<'_> {
    pub fn argv(&self) -> Vec<String> {
        vec!["admit".into(), self.user.into(), self.now_ms.to_string(), self.request_id.into(), self.class.into(), self.plan.into(), self.limits.script_arg(self.class)]
    }

    /// The script's reply: admitted (with the window's state), or the 429/403 the caller sees.
    pub fn decode(&self, v: &Value) -> Result<RateState, ApiError> {
        let state = || rate_at(v, 1).ok_or_else(|| bad_reply("rapid_v1", v));
        match v.get(0).and_then(Value::as_str) {
            Some("ok") => state(),
            Some("rate_limited") => {
                let s = state()?;
                Err(ApiError::new(ErrorKind::RateLimited { retry_after_secs: s.reset_secs().max(1) }, format!("rate limit of the RapidAPI plan `{}` reached", self.plan))
                    .with_headers(s.headers(self.class)))
            }
            Some("no_plan") => Err(ApiError::new(ErrorKind::Forbidden, format!("the plan `{}` has no limits for this route", self.plan))),
            _ => Err(bad_reply("rapid_v1", v)),
        }
    }
}

/// An admitted RapidAPI call as the engine runs it: nothing held; the output cap is the most the
/// product allows (no balance bounds it).
pub fn admitted(rate: RateState, user: &str, plan: &str, class: &str, hold: HoldPlan, units: u64) -> Admitted {
    Admitted {
        sub_key: None,
        key_id: format!("rapidapi:{user}"),
        plan: plan.to_string(),
        hold_mc: 0,
        balance_after_mc: 0,
        granted_units: hold.flexible.map_or(units, |f| f.max_units),
        rate,
        class: class.to_string(),
    }
}

/// An admitted RapidAPI call: whose analytics its provider cost goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RapidCall {
    pub user: String,
    /// The subscription as configured (the analytics' plan name).
    pub subscription: String,
    /// The analytics label (`<provider>/<model>`).
    pub label: String,
}

impl RapidCall {
    /// The record of a served call; `None` when it used nothing and cost nothing (not served).
    pub fn settlement(&self, units: u64, cost_usd_micro: u64, now_ms: u64, retention: Retention) -> Option<RapidSettlement> {
        (units > 0 || cost_usd_micro > 0).then(|| RapidSettlement {
            user: self.user.clone(),
            plan: self.subscription.clone(),
            now_ms,
            label: self.label.clone(),
            units,
            cost_usd_micro,
            retention,
        })
    }
}

/// `rapid_v1 settle`'s arguments: a served call for the analytics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RapidSettlement {
    pub user: String,
    pub plan: String,
    pub now_ms: u64,
    pub label: String,
    pub units: u64,
    pub cost_usd_micro: u64,
    pub retention: Retention,
}

impl RapidSettlement {
    pub fn argv(&self) -> Vec<String> {
        let [day, _, ttl] = self.retention.argv(self.now_ms);
        vec!["settle".into(), self.user.clone(), self.plan.clone(), day, self.label.clone(), self.units.to_string(), self.cost_usd_micro.to_string(), ttl]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn limits() -> RateLimits {
        RateLimits::parse("free:ai=10/3600, pro:ai=100/3600, anonymous=5/900").unwrap()
    }

    #[test]
    fn plans_map_subscriptions_to_rate_plans() {
        let p = parse_plans("BASIC:free, PRO:pro", &limits()).unwrap();
        assert_eq!(plan_of(&p, "basic").unwrap(), ("BASIC", "free"));
        assert_eq!(plan_of(&p, "ULTRA").unwrap_err().status(), 403);
        assert!(parse_plans("BASIC:gold", &limits()).is_err());
        assert!(parse_plans("BASIC", &limits()).is_err());
    }

    #[test]
    fn user_ids_are_safe_key_names() {
        assert_eq!(user_id("jane.doe@x").unwrap(), "jane.doe@x");
        for bad in ["", "a b", "a:b", &"x".repeat(200)] {
            assert!(user_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_rapidapi_call_holds_nothing_and_may_use_the_whole_output_cap() {
        use crate::metering::FlexibleOutput;
        let rate = RateState { limit: 10, remaining: 9, reset_ms: 1 };
        let flexible = HoldPlan { fixed_mc: 30, flexible: Some(FlexibleOutput { per_unit_micro_mc: 108, max_units: 16384, min_units: 1 }) };
        let a = admitted(rate, "u1", "free", "ai", flexible, 0);
        assert_eq!((a.hold_mc, a.granted_units, a.key_id.as_str()), (0, 16384, "rapidapi:u1"));
        assert_eq!(admitted(rate, "u1", "free", "ai", HoldPlan::fixed(5, 200).0, 200).granted_units, 200);
    }

    #[test]
    fn admission_replies() {
        let l = limits();
        let a = RapidAdmission { user: "u1", now_ms: 1, request_id: "r", class: "ai", plan: "free", limits: &l };
        assert_eq!(a.argv()[6], "free:10:3600000,pro:100:3600000");
        assert_eq!(a.decode(&json!(["ok", 10, 9, 3600000])).unwrap().remaining, 9);
        assert_eq!(a.decode(&json!(["rate_limited", 10, 0, 1500])).unwrap_err().kind, ErrorKind::RateLimited { retry_after_secs: 2 });
        assert_eq!(a.decode(&json!(["no_plan"])).unwrap_err().status(), 403);
        assert_eq!(a.decode(&json!(["what"])).unwrap_err().status(), 503);
    }
}
