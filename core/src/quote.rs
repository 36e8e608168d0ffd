//! `POST /v1/quote`: what a metered call would hold, and the output cap admission would grant,
//! from the same parsing and pricing the call itself goes through, without calling a provider,
//! holding or charging anything. Admission's choice is `admit_v6`'s rule restated on the same
//! ladder ([`HoldPlan::ladder`]): the first rung the balance covers.

use crate::error::ApiError;
use crate::metering::{CallMeta, HoldPlan};
use crate::money::{credits_json, parse_credits};
use crate::routes::{self, Endpoint};
use crate::spend_cap;
use serde_json::{json, Value};

/// A quote request: the metered route, the call's body, and an optional balance to quote for.
#[derive(Debug, Clone, PartialEq)]
pub struct QuoteRequest {
    pub endpoint: Endpoint,
    /// The route's `{name}` values (Gemini's `{model}`).
    pub params: Vec<(&'static str, String)>,
    pub route: String,
    /// The call's body, as the route would receive it.
    pub body: Vec<u8>,
    /// `balance` (credits): quote for this balance instead of the key's.
    pub balance_mc: Option<i64>,
    /// The call's spending cap given in the quote (`max_credits`, or the call body's own
    /// `max_credits`, taken out of `body` as the route would): the smaller of the two.
    pub cap_mc: Option<i64>,
}

impl QuoteRequest {
    pub fn param(&self, name: &str) -> &str {
        self.params.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str()).unwrap_or("")
    }
}

/// The routes that hold and charge credits.
pub fn metered(e: Endpoint) -> bool {
    use Endpoint::*;
    matches!(
        e,
        NativeChat | OpenAiChatCompletions | OpenAiResponses | AnthropicMessages | OpenAiEmbeddings | GeminiGenerateContent | GeminiStreamGenerateContent | OpenAiImages | NativeImage | OpenAiSpeech | NativeTts | Music
    )
}

pub fn parse(body: &[u8]) -> Result<QuoteRequest, ApiError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| ApiError::invalid(format!("the body must be a JSON object: {e}")))?;
    let obj = v.as_object().ok_or_else(|| ApiError::invalid("the body must be a JSON object"))?;
    let route = obj.get("route").and_then(Value::as_str).ok_or_else(|| ApiError::invalid("`route` is required: the metered route of the call, e.g. \"/v1/chat/completions\""))?;
    let path = route.split('?').next().unwrap_or("");
    let not_metered = || ApiError::invalid(format!("`route` {route:?} is not a metered route (chat, messages, responses, embeddings, images, speech, music, Gemini's generateContent)"));
    let resolved = routes::resolve("POST", path).map_err(|_| not_metered())?;
    if !metered(resolved.endpoint) {
        return Err(not_metered());
    }
    let call = obj.get("body").filter(|b| b.is_object()).ok_or_else(|| ApiError::invalid("`body` is required: the call's JSON body (an object)"))?;
    let balance_mc = match obj.get("balance") {
        None | Some(Value::Null) => None,
        Some(b) => match parse_credits(b).map_err(|e| ApiError::invalid(format!("`balance`: {e}")))? {
            mc if mc < 0 => return Err(ApiError::invalid("`balance` must be at least 0 credits")),
            mc => Some(mc),
        },
    };
    let body = serde_json::to_vec(call).map_err(|e| ApiError::invalid(format!("`body`: {e}")))?;
    let quoted_cap = match obj.get(spend_cap::FIELD) {
        None | Some(Value::Null) => None,
        Some(v) => spend_cap::take_field(&serde_json::to_vec(&json!({ spend_cap::FIELD: v })).unwrap_or_default())?.0,
    };
    let (body_cap, stripped) = spend_cap::take_field(&body)?;
    let cap_mc = spend_cap::combine(quoted_cap, body_cap);
    Ok(QuoteRequest { endpoint: resolved.endpoint, params: resolved.params, route: path.to_string(), body: stripped.unwrap_or(body), balance_mc, cap_mc })
}

/// The quote: the ladder admission chooses from and its choice at `balance_mc`. `prices` is the
/// model's entry of `/v1/models` (credits per unit), when it has one. With a spending cap
/// (`cap_mc`) the ladder is the capped one admission gets; a call its cap refuses is quoted
/// `admitted: false` with `refusal: "over_max_credits"` (the call's 402). A sub-key's caps
/// (`room`: the least any of them leaves, and its name) narrow the choice as `admit_v6` does:
/// a call its caps refuse while the balance would cover it is `refusal: "sub_key_cap_reached"`.
#[allow(clippy::too_many_arguments)]
pub fn quote_json(q: &QuoteRequest, meta: &CallMeta, plan: &HoldPlan, units: u64, balance_mc: i64, from_key: bool, prices: Option<Value>, cap_mc: Option<i64>, room: Option<(i64, &str)>) -> Value {
    let capped = cap_mc.map(|cap| spend_cap::cap_plan(*plan, units, cap));
    let over_cap = matches!(capped, Some(Err(_)));
    let plan = match capped {
        Some(Ok(p)) => p,
        _ => *plan,
    };
    let ladder = plan.ladder(units);
    let fits_room = |h: i64| room.is_none_or(|(r, _)| h <= r);
    let chosen = ladder.iter().find(|(h, _)| *h <= balance_mc && fits_room(*h)).copied().filter(|_| !over_cap);
    let (max_hold, max_units) = ladder.first().copied().unwrap_or((plan.fixed_mc, units));
    let min_hold = ladder.last().map_or(plan.fixed_mc, |(h, _)| *h);
    let refusal = match (chosen, room) {
        (Some(_), _) => None,
        _ if over_cap => Some("over_max_credits"),
        (None, Some((r, _))) if min_hold > r && r < balance_mc => Some("sub_key_cap_reached"),
        _ => Some("insufficient_credits"),
    };
    json!({
        "object": "quote",
        "route": q.route,
        "provider": meta.provider.as_str(),
        "model": meta.model,
        "product": meta.product,
        "admitted": chosen.is_some(),
        "hold_credits": chosen.map(|(h, _)| credits_json(h)),
        "hold_mc": chosen.map(|(h, _)| h),
        "output_cap": chosen.map(|(_, u)| u),
        "output_cap_chosen_by_admission": plan.flexible.is_some(),
        "max_hold_credits": credits_json(max_hold),
        "max_hold_mc": max_hold,
        "max_output_cap": max_units,
        "min_hold_credits": credits_json(min_hold),
        "min_hold_mc": min_hold,
        "balance_credits": credits_json(balance_mc),
        "balance_mc": balance_mc,
        "balance_from": if from_key { "key" } else { "request" },
        "max_credits": cap_mc.map(credits_json),
        "max_credits_mc": cap_mc,
        "sub_key_room_credits": room.map(|(r, _)| credits_json(r.max(0))),
        "sub_key_room_cap": room.map(|(_, c)| c),
        "refusal": refusal,
        "prices": prices,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metering::FlexibleOutput;
    use crate::provider::Provider;

    #[test]
    fn parses_a_metered_route_and_refuses_the_rest() {
        let q = parse(br#"{"route":"/v1beta/models/gemini-3.5-flash:generateContent","body":{"contents":[]},"balance":"2.5"}"#).unwrap();
        assert_eq!((q.endpoint, q.param("model"), q.balance_mc), (Endpoint::GeminiGenerateContent, "gemini-3.5-flash", Some(2500)));
        for bad in [&br#"{"route":"/v1/balance","body":{}}"#[..], br#"{"route":"/nope","body":{}}"#, br#"{"body":{}}"#, br#"{"route":"/v1/chat"}"#, br#"{"route":"/v1/chat","body":[]}"#, br#"{"route":"/v1/chat","body":{},"balance":-1}"#, b"[1]", b"{"] {
            assert_eq!(parse(bad).unwrap_err().status(), 400, "{}", String::from_utf8_lossy(bad));
        }
    }

    /// A chat call's quote request, meta and hold plan: 100 mc fixed, then 1 mc per output token
    /// up to 800 (admission picks the cap).
    fn chat_call() -> (QuoteRequest, CallMeta, HoldPlan) {
        let q = parse(br#"{"route":"/v1/chat","body":{}}"#).unwrap();
        let meta = CallMeta { provider: Provider::OpenAi, model: "m".into(), product: "chat" };
        let plan = HoldPlan { fixed_mc: 100, flexible: Some(FlexibleOutput { per_unit_micro_mc: 1_000_000, max_units: 800, min_units: 1 }) };
        (q, meta, plan)
    }

    #[test]
    fn admission_takes_the_first_rung_the_balance_covers() {
        let (q, meta, plan) = chat_call();
        let ladder = plan.ladder(0);
        let rich = quote_json(&q, &meta, &plan, 0, 1_000_000, true, None, None, None);
        assert_eq!((rich["hold_mc"].as_i64(), rich["output_cap"].as_u64()), (Some(ladder[0].0), Some(800)));
        let (h, u) = ladder[3];
        let poor = quote_json(&q, &meta, &plan, 0, h, false, None, None, None);
        assert_eq!((poor["hold_mc"].as_i64(), poor["output_cap"].as_u64(), poor["balance_from"].as_str()), (Some(h), Some(u), Some("request")));
        let broke = quote_json(&q, &meta, &plan, 0, 0, true, None, None, None);
        assert_eq!((broke["admitted"].as_bool(), broke["hold_mc"].is_null(), broke["min_hold_mc"].as_i64()), (Some(false), true, ladder.last().map(|r| r.0)));
        assert_eq!(broke["refusal"], "insufficient_credits");
        // A cap: the capped ladder's top (100 mc + ⌊(300 − 100) mc ÷ 1 mc⌋ = 200 tokens), as admission gets it.
        let capped = quote_json(&q, &meta, &plan, 0, 1_000_000, true, None, Some(300), None);
        assert_eq!((capped["hold_mc"].as_i64(), capped["output_cap"].as_u64(), capped["max_hold_mc"].as_i64(), capped["max_credits"].as_f64()), (Some(300), Some(200), Some(300), Some(0.3)));
        assert_eq!(capped["hold_mc"].as_i64(), Some(crate::spend_cap::cap_plan(plan, 0, 300).unwrap().ladder(0)[0].0));
        let refused = quote_json(&q, &meta, &plan, 0, 1_000_000, true, None, Some(100), None);
        assert_eq!((refused["admitted"].as_bool(), refused["refusal"].as_str()), (Some(false), Some("over_max_credits")));
    }

    #[test]
    fn a_sub_keys_caps_narrow_the_choice_as_admission_does() {
        let (q, meta, plan) = chat_call();
        let ladder = plan.ladder(0);
        // A room between two rungs: the first rung within both the balance and the room.
        let (h, u) = ladder[2];
        let narrowed = quote_json(&q, &meta, &plan, 0, 1_000_000, true, None, None, Some((h + 1, "daily_cap")));
        assert_eq!((narrowed["hold_mc"].as_i64(), narrowed["output_cap"].as_u64()), (Some(h), Some(u)));
        assert_eq!((narrowed["sub_key_room_cap"].as_str(), narrowed["sub_key_room_credits"].as_f64()), (Some("daily_cap"), Some((h + 1) as f64 / 1000.0)));
        // Below the smallest rung, with the balance covering it: the cap's refusal.
        let capped = quote_json(&q, &meta, &plan, 0, 1_000_000, true, None, None, Some((50, "total_cap")));
        assert_eq!((capped["admitted"].as_bool(), capped["refusal"].as_str()), (Some(false), Some("sub_key_cap_reached")));
        // A balance below both: insufficient credits, as admit_v6 says first.
        let broke = quote_json(&q, &meta, &plan, 0, 10, true, None, None, Some((50, "total_cap")));
        assert_eq!(broke["refusal"], "insufficient_credits");
    }

    #[test]
    fn the_cap_comes_from_the_quote_or_the_calls_body_which_loses_the_field() {
        let q = parse(br#"{"route":"/v1/chat","body":{"model":"m","max_credits":2},"max_credits":"0.5"}"#).unwrap();
        assert_eq!(q.cap_mc, Some(500));
        assert_eq!(serde_json::from_slice::<Value>(&q.body).unwrap(), json!({"model": "m"}));
        assert_eq!(parse(br#"{"route":"/v1/chat","body":{"max_credits":2}}"#).unwrap().cap_mc, Some(2000));
        assert_eq!(parse(br#"{"route":"/v1/chat","body":{}}"#).unwrap().cap_mc, None);
        assert_eq!(parse(br#"{"route":"/v1/chat","body":{},"max_credits":0}"#).unwrap_err().status(), 400);
    }
}
