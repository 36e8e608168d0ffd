//! A spending cap per call (issue 24): `X-Max-Credits` (header) or `max_credits` (a top-level
//! body field, taken out before the body reaches the route's parser, so no provider sees it).
//! This module owns the cap's format and how it narrows the hold; the charge's own cap is
//! [`crate::metering::Billing::charge`]'s (never above the cap, even for a usage above a wrong
//! bound).
//!
//! With a cap, admission's ladder ([`HoldPlan::ladder`]) loses every rung above it:
//! - a flexible output (no `max_tokens`): the largest output cap whose hold fits under the cap
//!   becomes the ladder's top, so the call is sent with a smaller `max_tokens`;
//! - a fixed hold (`max_tokens` given, an image, speech, music, embeddings) above the cap, or a
//!   flexible one whose least rung is above it: `402 over_max_credits`, nothing held.

use crate::error::{ApiError, ErrorKind};
use crate::metering::{FlexibleOutput, HoldPlan};
use crate::money::{credits_json, credits_string, parse_credits};
use serde_json::{json, Value};

/// The header a client sends.
pub const HEADER: &str = "x-max-credits";
/// The body field (top level of the JSON body) a client may send instead.
pub const FIELD: &str = "max_credits";

fn checked(v: &Value, name: &str) -> Result<i64, ApiError> {
    let bad = |why: String| ApiError::invalid(format!("`{name}` must be a number of credits above 0 with at most 3 decimals: {why}"));
    match parse_credits(v).map_err(bad)? {
        mc if mc <= 0 => Err(bad("0 or less".into())),
        mc => Ok(mc),
    }
}

/// `X-Max-Credits` in millicredits; `None` when absent.
pub fn parse_header(v: Option<&str>) -> Result<Option<i64>, ApiError> {
    v.map(|s| checked(&Value::String(s.trim().to_string()), "X-Max-Credits")).transpose()
}

/// Takes `max_credits` out of a JSON object body: the cap (mc), and the body without the field
/// when it had one (the route parses that). A body that is not a JSON object is left to the
/// route's parser, which says what is wrong with it.
pub fn take_field(body: &[u8]) -> Result<(Option<i64>, Option<Vec<u8>>), ApiError> {
    // Most bodies do not name it: not parsed twice.
    if !body.windows(FIELD.len()).any(|w| w == FIELD.as_bytes()) {
        return Ok((None, None));
    }
    let Ok(Value::Object(mut m)) = serde_json::from_slice::<Value>(body) else { return Ok((None, None)) };
    let Some(v) = m.remove(FIELD) else { return Ok((None, None)) };
    let cap = if v.is_null() { None } else { Some(checked(&v, FIELD)?) };
    Ok((cap, Some(Value::Object(m).to_string().into_bytes())))
}

/// Both ways at once: the smaller cap applies.
pub fn combine(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    }
}

/// The `402` of a call whose least hold is above its cap.
pub fn over_max_credits(needed_mc: i64, cap_mc: i64) -> ApiError {
    ApiError::new(
        ErrorKind::OverMaxCredits,
        format!(
            "this call may cost up to {} credits, above its cap of {} credits (X-Max-Credits / max_credits); raise the cap or lower the request's size (max_tokens, n, …); nothing was held",
            credits_string(needed_mc),
            credits_string(cap_mc)
        ),
    )
    .with_details(json!({ "credits_required": credits_json(needed_mc), "max_credits": credits_json(cap_mc) }))
}

/// The hold plan under a cap: rungs above `cap_mc` dropped (a flexible output's top becomes the
/// largest output cap that fits), or `over_max_credits` when nothing fits.
pub fn cap_plan(plan: HoldPlan, units: u64, cap_mc: i64) -> Result<HoldPlan, ApiError> {
    let least = plan.ladder(units).last().map_or(plan.fixed_mc.max(1), |(h, _)| *h);
    if least > cap_mc {
        return Err(over_max_credits(least, cap_mc));
    }
    let Some(f) = plan.flexible else { return Ok(plan) };
    let fixed = plan.fixed_mc.max(1);
    // The most output units with fixed + ⌈units × per_unit / 1e6⌉ ≤ cap: ⌊room × 1e6 / per_unit⌋.
    let room = u128::try_from(cap_mc - fixed).unwrap_or(0);
    let per_unit = u128::try_from(f.per_unit_micro_mc.max(1)).unwrap_or(1);
    let fits = u64::try_from(room * 1_000_000 / per_unit).unwrap_or(u64::MAX);
    let max_units = fits.min(f.max_units).max(f.min_units.max(1));
    Ok(HoldPlan { fixed_mc: plan.fixed_mc, flexible: Some(FlexibleOutput { max_units, ..f }) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_is_credits_above_zero_with_at_most_3_decimals() {
        assert_eq!(parse_header(None).unwrap(), None);
        assert_eq!(parse_header(Some("0.5")).unwrap(), Some(500));
        assert_eq!(parse_header(Some(" 2 ")).unwrap(), Some(2000));
        assert_eq!(parse_header(Some("0.001")).unwrap(), Some(1));
        for bad in ["0", "-1", "0.0001", "abc", "", "1e3", "0x10"] {
            let e = parse_header(Some(bad)).unwrap_err();
            assert_eq!(e.status(), 400, "{bad:?}");
            assert!(e.message.contains("X-Max-Credits"), "{}", e.message);
        }
    }

    #[test]
    fn the_body_field_is_taken_out_before_the_route_sees_the_body() {
        assert_eq!(take_field(br#"{"model":"m"}"#).unwrap(), (None, None));
        let (cap, body) = take_field(br#"{"model":"m","max_credits":0.25}"#).unwrap();
        assert_eq!(cap, Some(250));
        assert_eq!(serde_json::from_slice::<Value>(&body.unwrap()).unwrap(), json!({"model": "m"}));
        let (cap, body) = take_field(br#"{"max_credits":"3","messages":[{"content":"max_credits"}]}"#).unwrap();
        assert_eq!(cap, Some(3000));
        assert_eq!(serde_json::from_slice::<Value>(&body.unwrap()).unwrap(), json!({"messages": [{"content": "max_credits"}]}));
        // Named only inside the content: nothing taken.
        assert_eq!(take_field(br#"{"messages":[{"content":"max_credits"}]}"#).unwrap(), (None, None));
        assert_eq!(take_field(br#"{"max_credits":null,"a":1}"#).unwrap().0, None);
        assert_eq!(take_field(b"not json max_credits").unwrap(), (None, None));
        for bad in [&br#"{"max_credits":0}"#[..], br#"{"max_credits":-2}"#, br#"{"max_credits":"x"}"#, br#"{"max_credits":true}"#, br#"{"max_credits":1.0001}"#] {
            let e = take_field(bad).unwrap_err();
            assert_eq!(e.status(), 400);
            assert!(e.message.contains("`max_credits`"), "{}", e.message);
        }
        assert_eq!(combine(Some(5), Some(3)), Some(3));
        assert_eq!(combine(None, Some(3)), Some(3));
        assert_eq!(combine(Some(5), None), Some(5));
        assert_eq!(combine(None, None), None);
    }

    // gpt-4o-mini's output: 108,000 micro-mc a token (see metering's tests); a prompt bound of 30 mc.
    const FLEX: HoldPlan = HoldPlan { fixed_mc: 30, flexible: Some(FlexibleOutput { per_unit_micro_mc: 108_000, max_units: 16_384, min_units: 1 }) };

    #[test]
    fn a_cap_drops_the_rungs_above_it_and_the_top_rung_fits_exactly() {
        // A cap of 500 mc: (500 − 30) mc ÷ 0.108 mc = 4,351.85 → 4,351 tokens, ⌈469.908⌉ = 470 mc.
        let capped = cap_plan(FLEX, 0, 500).unwrap();
        let ladder = capped.ladder(0);
        assert_eq!(ladder[0], (30 + 470, 4_351));
        assert!(ladder.iter().all(|(h, _)| *h <= 500));
        assert_eq!(ladder.last(), FLEX.ladder(0).last(), "the same least rung");
        // 4,352 tokens would not fit: ⌈470.016⌉ = 471 mc.
        assert_eq!(30 + FLEX.flexible.unwrap().output_mc(4_352), 501);
        // A cap above the whole ladder changes nothing.
        assert_eq!(cap_plan(FLEX, 0, 1_000_000).unwrap(), FLEX);
        // A cap below the least rung (30 + 1 mc): 402, naming the need.
        let e = cap_plan(FLEX, 0, 30).unwrap_err();
        assert_eq!((e.status(), e.kind.type_name()), (402, "over_max_credits"));
        assert_eq!(e.details.unwrap()["credits_required"], json!(0.031));
        // 1 mc of room buys ⌊1 ÷ 0.108⌋ = 9 tokens (⌈0.972⌉ = 1 mc).
        assert_eq!(cap_plan(FLEX, 0, 31).unwrap().ladder(0)[0], (31, 9));
    }

    #[test]
    fn a_fixed_hold_above_the_cap_is_refused_and_one_under_it_kept() {
        let (fixed, units) = HoldPlan::fixed(1_836, 24);
        assert_eq!(cap_plan(fixed, units, 1_836).unwrap(), fixed);
        let e = cap_plan(fixed, units, 1_835).unwrap_err();
        assert_eq!(e.status(), 402);
        assert!(e.message.contains("1.836") && e.message.contains("1.835"), "{}", e.message);
        assert_eq!(e.details.unwrap()["max_credits"], json!(1.835));
    }
}
