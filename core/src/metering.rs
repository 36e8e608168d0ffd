//! How a call is billed: the one metering engine every product (chat, images, speech, music)
//! runs on. This module holds every money decision of a metered call; the worker's `meter`
//! module only carries them out on the platform.
//!
//! 1. **Hold** ([`HoldPlan`]): the most the call can cost, reserved before the provider is
//!    called. Either fixed (every unit count known), or fixed input plus a flexible output cap that
//!    admission chooses from the balance (chat without `max_tokens`).
//! 2. **Admission** ([`Admission`], one Redis round trip): key, rate limit of the route's class,
//!    and the hold, atomically. Its reply becomes an [`Admitted`] or the `ApiError` the client sees.
//! 3. **Metering**: the product's meter reads the provider's answer and reports [`Metered`]: the
//!    provider cost at list price, the units, and whether the figure is exact or an upper bound
//!    (usage never reported: the stream broke, the deadline cut it).
//! 4. **Settlement** ([`Billing::settle`] → [`Settlement`]): charge what was metered, release
//!    the rest of the hold, one ledger entry per call, in `wait_until`. An exact usage is charged
//!    in full even above the hold: the balance may go into debt by the excess (admission refuses
//!    a debt until it is paid), and the wrong bound is named in the ledger, the `hold_exceeded`
//!    log line and `/admin/stats` (a bug to fix, never the operator's loss). A call whose usage
//!    can never be known is charged the hold ([`Billing::charge_hold`]: sent but never answered;
//!    [`Settlement::sweep`]: a settlement that never came; a late exact settlement then corrects
//!    it, once). Every figure is decided here, in integers; the script applies it.
//!    The rules and their table: `docs/billing.md`.

use crate::error::{ApiError, ErrorKind};
use crate::idempotency::{self, Claim};
use crate::money::{credits_json, credits_string, CreditRate};
use crate::provider::Provider;
use crate::ratelimit::{RateLimits, RateState};
use crate::scripts::{ledger_fragment, AdmitReply, Retention};
use serde_json::{json, Value};

/// The rate-limit class of the chat routes (the original product's `ai` limits).
pub const CHAT_CLASS: &str = "ai";
/// The rate-limit class of the media routes (images, speech, music): slower and dearer calls
/// than chat, limited apart so one kind cannot use up the other's allowance.
pub const MEDIA_CLASS: &str = "media";

/// What admission reserves for a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HoldPlan {
    /// Reserved whatever the call does: the whole hold when every unit count is known, else the
    /// input's worst case.
    pub fixed_mc: i64,
    /// A flexible output cap chosen by admission, when the client set none.
    pub flexible: Option<FlexibleOutput>,
}

/// Admission picks the largest output unit count of the ladder ([`HoldPlan::ladder`]), up to
/// `max_units`, that the balance covers at `per_unit_micro_mc` each (millionths of a
/// millicredit, the total rounded up), and refuses below `min_units`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlexibleOutput {
    pub per_unit_micro_mc: i64,
    pub max_units: u64,
    pub min_units: u64,
}

/// Each rung of a flexible ladder grants at most this fraction less output than the one above
/// it (1/8): a balance that cannot cover the model's whole output cap gets at least 7/8 of what
/// it could afford, and the ladder stays about a hundred rungs for a 128k cap.
const LADDER_STEP_DIVISOR: u64 = 8;

impl FlexibleOutput {
    /// Millicredits for `units` output units, rounded up once.
    pub fn output_mc(&self, units: u64) -> i64 {
        let micro = u128::from(units) * u128::try_from(self.per_unit_micro_mc.max(1)).unwrap_or(1);
        i64::try_from(micro.div_ceil(1_000_000)).unwrap_or(i64::MAX)
    }

    /// The output caps admission may grant, largest first: `max_units`, then each about 1/8
    /// below the last, down to `min_units`.
    pub fn rungs(&self) -> Vec<u64> {
        let min = self.min_units.max(1);
        let mut out = Vec::new();
        let mut u = self.max_units.max(min);
        while u > min {
            out.push(u);
            u -= (u / LADDER_STEP_DIVISOR).max(1);
        }
        out.push(min);
        out
    }
}

impl HoldPlan {
    /// A hold whose every unit is known. Never zero: a served call is never free.
    pub fn fixed(mc: i64, units: u64) -> (HoldPlan, u64) {
        (HoldPlan { fixed_mc: mc.max(1), flexible: None }, units)
    }

    /// The `(hold_mc, units)` pairs admission chooses from, dearest first: admission reserves the
    /// first one the balance covers (`units` is the output cap of a fixed hold). Every figure is
    /// computed here, in integers; the script only compares.
    pub fn ladder(&self, units: u64) -> Vec<(i64, u64)> {
        let fixed = self.fixed_mc.max(1);
        match self.flexible {
            None => vec![(fixed, units)],
            Some(f) => f.rungs().into_iter().map(|u| (fixed.saturating_add(f.output_mc(u)), u)).collect(),
        }
    }

    /// The largest hold the call can take (what it costs at most when the balance covers it).
    pub fn worst_case_mc(&self, units: u64) -> i64 {
        self.ladder(units).first().map_or(self.fixed_mc, |(h, _)| *h)
    }
}

/// What the ledger and the sweeper know about a call from its admission on.
#[derive(Debug, Clone, PartialEq)]
pub struct CallMeta {
    pub provider: Provider,
    pub model: String,
    /// The product route (`chat`, `image`, `speech`, `music`).
    pub product: &'static str,
}

impl CallMeta {
    /// The analytics label: `<provider>/<model>`.
    pub fn label(&self) -> String {
        format!("{}/{}", self.provider.as_str(), self.model)
    }

    pub fn fragment(&self) -> String {
        ledger_fragment(&[("provider", json!(self.provider.as_str())), ("model", json!(self.model)), ("product", json!(self.product))])
    }
}

/// The admission script's input. This type is the one owner of the argument order of
/// `lua/admit_v6.lua`.
#[derive(Debug, Clone)]
pub struct Admission<'a> {
    pub key_hash: String,
    pub now_ms: u64,
    pub request_id: &'a str,
    /// The rate-limit class of the route.
    pub class: &'a str,
    pub client_ip: &'a str,
    pub limits: &'a RateLimits,
    pub hold: HoldPlan,
    /// The output cap when the hold is fixed (sent back as the granted count).
    pub units: u64,
    pub meta: &'a CallMeta,
    /// The call's `Idempotency-Key` claim, checked and claimed in the same script (issue 24).
    pub idempotency: Option<&'a Claim>,
}

impl Admission<'_> {
    pub fn argv(&self) -> Vec<String> {
        let ladder: Vec<String> = self.hold.ladder(self.units).iter().map(|(h, u)| format!("{h}:{u}")).collect();
        let mut argv = vec![
            self.key_hash.clone(),
            self.now_ms.to_string(),
            self.request_id.to_string(),
            self.class.to_string(),
            self.client_ip.to_string(),
            self.limits.anonymous.limit.to_string(),
            self.limits.anonymous.window_ms.to_string(),
            self.limits.script_arg(self.class),
            ladder.join(","),
            self.meta.fragment(),
            self.meta.label(),
        ];
        argv.extend(Claim::argv(self.idempotency));
        argv.push(crate::pricing::utc_date(self.now_ms));
        argv
    }
}

/// An admitted call: its hold is reserved under the request id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admitted {
    pub key_id: String,
    pub plan: String,
    pub hold_mc: i64,
    pub balance_after_mc: i64,
    /// The output unit count the call may use (chat: the `max_tokens` to send).
    pub granted_units: u64,
    pub rate: RateState,
    /// The route class whose limit applied (names the rate-limit headers).
    pub class: String,
    /// The sub-key that made the call (`key_id` is then its account's), for the call's log lines.
    pub sub_key: Option<String>,
}

impl Admitted {
    /// The admission's reply as the client sees it: admitted, or the error with its headers.
    pub fn from_reply(reply: AdmitReply, class: &str, limits: &RateLimits) -> Result<Admitted, ApiError> {
        let retry = |s: &RateState| s.reset_secs().max(1);
        match reply {
            AdmitReply::Admitted { key_id, plan, hold_mc, balance_after_mc, max_tokens, rate, sub_key } => {
                Ok(Admitted { key_id, plan, hold_mc, balance_after_mc, granted_units: max_tokens, rate, class: class.to_string(), sub_key })
            }
            AdmitReply::Unauthorized { reason, .. } => Err(ApiError::unauthorized(match reason.as_str() {
                "revoked" => "this API key has been revoked",
                r if r.starts_with("account_") => "this sub-key's account key has been revoked",
                _ => "invalid API key",
            })),
            AdmitReply::SubKeyCap { needed_mc, room_mc, cap, rate } => Err(crate::sub_key_fields::cap_reached(needed_mc, room_mc, &cap).with_headers(rate.headers(class))),
            AdmitReply::ModelNotAllowed { model } => Err(crate::sub_key_fields::model_not_allowed(&model)),
            AdmitReply::IpLimited { rate } => Err(crate::ratelimit::ip_limited_error(rate.reset_ms).with_headers(rate.headers("auth"))),
            AdmitReply::RateLimited { plan, rate } => {
                let window = limits.get(&plan, class).map(|l| l.window_secs()).unwrap_or(0);
                Err(ApiError::new(
                    ErrorKind::RateLimited { retry_after_secs: retry(&rate) },
                    format!("rate limit of the `{plan}` plan reached: {} requests per {window} s", rate.limit),
                )
                .with_headers(rate.headers(class)))
            }
            AdmitReply::Idempotent(found) => Err(found.error()),
            AdmitReply::NoPlan { plan } => Err(ApiError::new(ErrorKind::Forbidden, format!("the key's plan `{plan}` has no configured limits for this route"))),
            AdmitReply::Insufficient { needed_mc, balance_mc, rate } => Err(ApiError::new(
                ErrorKind::InsufficientCredits,
                format!(
                    "insufficient credits: this call may cost up to {} credits, the balance is {}; {}",
                    credits_string(needed_mc),
                    credits_string(balance_mc),
                    if balance_mc < 0 { "the key owes credits from a refund; top up" } else { "lower the request's size or top up" },
                ),
            )
            .with_details(json!({ "credits_required": credits_json(needed_mc), "credits_available": credits_json(balance_mc) }))
            .with_headers(rate.headers(class))),
        }
    }

    /// Headers of every answer to an admitted call.
    pub fn rate_headers(&self) -> Vec<(String, String)> {
        self.rate.headers(&self.class)
    }
}

/// What a call consumed, in the unit its product is priced by.
#[derive(Debug, Clone, PartialEq)]
pub enum Units {
    Tokens(crate::usage::Usage),
    /// Images generated (`detail` names size and quality, or the token classes).
    Images { count: u64, detail: Value },
    Characters(u64),
    Generations(u64),
}

impl Units {
    /// `{"unit": ..., ...}` for the ledger.
    pub fn to_json(&self) -> Value {
        match self {
            Units::Tokens(u) => json!({ "unit": "tokens", "usage": u }),
            Units::Images { count, detail } => json!({ "unit": "images", "count": count, "detail": detail }),
            Units::Characters(n) => json!({ "unit": "characters", "count": n }),
            Units::Generations(n) => json!({ "unit": "generations", "count": n }),
        }
    }

    /// The one number analytics sums: tokens in + out, images, characters or generations.
    pub fn count(&self) -> u64 {
        match self {
            Units::Tokens(u) => u.prompt_total() + u.output,
            Units::Images { count, .. } | Units::Characters(count) | Units::Generations(count) => *count,
        }
    }
}

/// What the product's meter found a call cost.
#[derive(Debug, Clone, PartialEq)]
pub struct Metered {
    /// Provider cost at list price, pico-USD.
    pub cost_pico_usd: u128,
    pub units: Units,
    /// False when the provider never reported the usage and `cost` is an upper bound.
    pub exact: bool,
    /// Why the figure is what it is (for the ledger), when anything was unusual.
    pub note: Option<String>,
    /// A price the gateway could not apply (a tier or a model the table does not list): logged
    /// as a `metering_warning` line for the operator, besides the note.
    pub warning: Option<String>,
}

impl Metered {
    pub fn exact(cost_pico_usd: u128, units: Units) -> Metered {
        Metered { cost_pico_usd, units, exact: true, note: None, warning: None }
    }
}

/// The money side of an admitted call, known from admission on: what previews and settlement
/// compute the charge from.
#[derive(Debug, Clone, PartialEq)]
pub struct Billing {
    pub request_id: String,
    pub rate: CreditRate,
    pub hold_mc: i64,
    pub balance_after_hold_mc: i64,
    pub price_table: &'static str,
    /// The client's spending cap (`X-Max-Credits`): the charge never goes above it.
    pub cap_mc: Option<i64>,
    /// Whether the call carries an `Idempotency-Key` (its settlement closes the key's record).
    pub idempotent: bool,
}

/// The charge of a settled call, as the client is told and the ledger records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Charge {
    pub charged_mc: i64,
    /// The spendable balance once the hold is released and the charge taken (negative: a debt).
    pub remaining_mc: i64,
    /// What the usage came to beyond the hold, charged too (a bound that did not hold: logged
    /// as `hold_exceeded`).
    pub over_hold_mc: i64,
}

impl Billing {
    pub fn new(request_id: &str, rate: CreditRate, admitted: &Admitted) -> Billing {
        Billing {
            request_id: request_id.to_string(),
            rate,
            hold_mc: admitted.hold_mc,
            balance_after_hold_mc: admitted.balance_after_mc,
            price_table: crate::pricing::table_version(),
            cap_mc: None,
            idempotent: false,
        }
    }

    /// The call's controls (issue 24): its spending cap, and whether it has an idempotency key.
    pub fn with_controls(mut self, cap_mc: Option<i64>, idempotent: bool) -> Billing {
        self.cap_mc = cap_mc;
        self.idempotent = idempotent;
        self
    }

    /// What the usage came to before the cap, rounded up once.
    fn uncapped_mc(&self, cost_pico_usd: u128) -> i64 {
        self.rate.millicredits_for_pico_usd(cost_pico_usd).max(0)
    }

    /// How a served call closes its idempotency record.
    fn served(&self) -> idempotency::Close {
        if self.idempotent {
            idempotency::Close::Done { answer: None }
        } else {
            idempotency::Close::Nothing
        }
    }

    /// The charge for a metered cost: the cost in credits, rounded up once, in full even above
    /// the hold (the provider billed it; the hold only decided admission), but never above the
    /// client's cap (`X-Max-Credits`: the client's word is the limit of what it pays).
    pub fn charge(&self, cost_pico_usd: u128) -> Charge {
        let uncapped = self.uncapped_mc(cost_pico_usd);
        let charged = self.cap_mc.map_or(uncapped, |cap| uncapped.min(cap));
        Charge { charged_mc: charged, remaining_mc: self.balance_after_hold_mc + self.hold_mc - charged, over_hold_mc: (charged - self.hold_mc).max(0) }
    }

    /// The `x_broker` object added to answers in the providers' own formats.
    pub fn broker_json(&self, c: &Charge) -> Value {
        json!({
            "request_id": self.request_id,
            "credits_charged": credits_json(c.charged_mc),
            "credits_remaining": credits_json(c.remaining_mc),
        })
    }

    /// The head of a streamed answer: the charge is known only at the end (it is in the last
    /// event), so the head says it is pending, what is held, and what remains while the hold is
    /// open (a lower bound of the final balance).
    pub fn pending_headers(&self) -> Vec<(String, String)> {
        vec![
            ("x-credits-charged".into(), "pending".into()),
            ("x-credits-held".into(), credits_string(self.hold_mc)),
            ("x-credits-remaining".into(), credits_string(self.balance_after_hold_mc)),
        ]
    }

    /// The charge in the gateway's own answers (`/v1/chat`).
    pub fn native_fields(&self, c: &Charge) -> serde_json::Map<String, Value> {
        [("credits_charged", credits_json(c.charged_mc)), ("credits_remaining", credits_json(c.remaining_mc))].into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }

    /// The credit headers of a whole answer.
    pub fn credit_headers(&self, c: &Charge) -> Vec<(String, String)> {
        vec![("x-credits-charged".into(), credits_string(c.charged_mc)), ("x-credits-remaining".into(), credits_string(c.remaining_mc))]
    }

    /// The settlement of a metered call.
    pub fn settle(&self, m: &Metered, now_ms: u64, retention: Retention) -> Settlement {
        let c = self.charge(m.cost_pico_usd);
        let mut fields = vec![("units", m.units.to_json()), ("price_table", json!(self.price_table)), ("exact", json!(m.exact))];
        fields.push(("cost_usd_micro", json!(micro_usd(m.cost_pico_usd))));
        let mut notes: Vec<String> = m.note.iter().cloned().collect();
        if c.over_hold_mc > 0 {
            fields.push(("hold_exceeded", json!({ "hold_mc": self.hold_mc, "charged_mc": c.charged_mc, "over_mc": c.over_hold_mc })));
            notes.push(format!(
                "usage came to {} credits, {} more than the hold of {}: charged in full (the hold was not a bound: a bug to fix)",
                credits_string(c.charged_mc),
                credits_string(c.over_hold_mc),
                credits_string(self.hold_mc)
            ));
        }
        let uncapped = self.uncapped_mc(m.cost_pico_usd);
        if let Some(cap) = self.cap_mc.filter(|cap| uncapped > *cap) {
            fields.push(("max_credits", json!({ "max_mc": cap, "usage_mc": uncapped })));
            notes.push(format!("usage came to {} credits, above the call's cap of {}: charged the cap", credits_string(uncapped), credits_string(cap)));
        }
        if !notes.is_empty() {
            fields.push(("note", json!(notes.join("; "))));
        }
        Settlement {
            request_id: self.request_id.clone(),
            charge_mc: c.charged_mc,
            now_ms,
            mode: SettleMode::Settle,
            fragment: ledger_fragment(&fields),
            units: m.units.count(),
            cost_usd_micro: micro_usd(m.cost_pico_usd),
            retention,
            idempotency: self.served(),
        }
    }

    /// Charges the whole hold of a call whose usage can never be known although the provider may
    /// have done the work (the request was sent and no answer head came within the timeout).
    pub fn charge_hold(&self, why: &str, now_ms: u64, retention: Retention) -> Settlement {
        let charge = self.hold_mc;
        let note = format!("{why}: charged the hold (the provider may have done the work and billed it)");
        Settlement {
            request_id: self.request_id.clone(),
            charge_mc: charge,
            now_ms,
            mode: SettleMode::Settle,
            fragment: ledger_fragment(&[("price_table", json!(self.price_table)), ("exact", json!(false)), ("note", json!(note))]),
            units: 0,
            cost_usd_micro: 0,
            retention,
            idempotency: self.served(),
        }
    }

    /// Releases the whole hold: the provider was never reached or refused the call.
    pub fn release(request_id: &str, why: &str, now_ms: u64, retention: Retention) -> Settlement {
        Settlement {
            request_id: request_id.to_string(),
            charge_mc: 0,
            now_ms,
            mode: SettleMode::Settle,
            fragment: ledger_fragment(&[("note", json!(format!("not served: {why}; hold released")))]),
            units: 0,
            cost_usd_micro: 0,
            retention,
            // Not served: an idempotency key the call claimed can be used again.
            idempotency: idempotency::Close::Release,
        }
    }
}

/// Provider cost in micro-USD, rounded up (analytics and ledger).
pub fn micro_usd(pico: u128) -> u64 {
    u64::try_from(pico.div_ceil(1_000_000)).unwrap_or(u64::MAX)
}

/// `settle_v6`'s modes: a call's own settlement, or the sweeper charging a lost one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettleMode {
    Settle,
    Sweep,
}

/// The settlement script's input: the one owner of `lua/settle_v6.lua`'s argument order.
#[derive(Debug, Clone, PartialEq)]
pub struct Settlement {
    pub request_id: String,
    /// Decided by [`Billing::charge`] (at least 0; above the hold when the usage was); the
    /// script applies it as given.
    pub charge_mc: i64,
    pub now_ms: u64,
    pub mode: SettleMode,
    /// Ledger fields of the call's entry (units, price table, note).
    pub fragment: String,
    /// For the analytics: the units used and the provider cost.
    pub units: u64,
    pub cost_usd_micro: u64,
    pub retention: Retention,
    /// What becomes of the call's `Idempotency-Key` record (the sweeper's finds it by itself).
    pub idempotency: idempotency::Close,
}

impl Settlement {
    /// The sweeper's settlement of a call whose own never came: the hold, the proven upper bound.
    pub fn sweep(request_id: &str, open_secs: u64, now_ms: u64, retention: Retention) -> Settlement {
        let note = format!("no settlement after {open_secs} s: charged the hold (the upper bound); an exact settlement that arrives later refunds the difference");
        Settlement {
            request_id: request_id.to_string(),
            charge_mc: 0,
            now_ms,
            mode: SettleMode::Sweep,
            fragment: ledger_fragment(&[("exact", json!(false)), ("swept", json!(true)), ("note", json!(note))]),
            units: 0,
            cost_usd_micro: 0,
            retention,
            idempotency: idempotency::Close::Nothing,
        }
    }

    pub fn argv(&self) -> Vec<String> {
        let mode = match self.mode {
            SettleMode::Settle => "settle",
            SettleMode::Sweep => "sweep",
        };
        let [day, keep, ttl] = self.retention.argv(self.now_ms);
        let mut argv = vec![self.request_id.clone(), self.charge_mc.to_string(), self.now_ms.to_string(), mode.to_string(), self.fragment.clone(), keep, day, self.units.to_string(), self.cost_usd_micro.to_string(), ttl];
        argv.extend(self.idempotency.argv());
        argv
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usage::Usage;

    const RETAIN: Retention = Retention { ledger_keep: 10_000, stats_ttl_secs: 86_400 };

    fn admitted(hold: i64, after: i64) -> Admitted {
        Admitted {
            sub_key: None,
            key_id: "key_1".into(),
            plan: "pro".into(),
            hold_mc: hold,
            balance_after_mc: after,
            granted_units: 10,
            rate: RateState { limit: 100, remaining: 99, reset_ms: 1000 },
            class: "ai".into(),
        }
    }

    #[test]
    fn the_charge_is_the_cost_rounded_up_and_in_full_even_above_the_hold() {
        let b = Billing::new("req_1", CreditRate::default_rate(), &admitted(100, 900));
        // $0.0001 = 1e8 pico → 0.018 credits = 18 mc
        assert_eq!(b.charge(100_000_000), Charge { charged_mc: 18, remaining_mc: 982, over_hold_mc: 0 });
        assert_eq!(b.charge(1), Charge { charged_mc: 1, remaining_mc: 999, over_hold_mc: 0 }, "never free");
        // $0.001 → 180 mc, 80 above the hold of 100: charged in full.
        assert_eq!(b.charge(1_000_000_000), Charge { charged_mc: 180, remaining_mc: 820, over_hold_mc: 80 });
        // $0.01 → 1,800 mc on a balance of 1,000 (900 + the hold): a debt of 800.
        assert_eq!(b.charge(10_000_000_000), Charge { charged_mc: 1800, remaining_mc: -800, over_hold_mc: 1700 });
    }

    #[test]
    fn settlement_arguments_carry_the_whole_charge_and_name_a_wrong_bound() {
        let b = Billing::new("req_1", CreditRate::default_rate(), &admitted(100, 900));
        let m = Metered { cost_pico_usd: 1_000_000_000, units: Units::Tokens(Usage { input: 5, output: 7, ..Usage::default() }), exact: false, note: Some("usage not reported".into()), warning: None };
        let s = b.settle(&m, 42, RETAIN);
        let argv = s.argv();
        assert_eq!(argv[..4], ["req_1".to_string(), "180".into(), "42".into(), "settle".into()]);
        let entry: Value = serde_json::from_str(&format!("{{{}}}", argv[4])).unwrap();
        assert_eq!(entry["exact"], false);
        assert_eq!(entry["units"]["usage"]["output"], 7);
        assert_eq!(entry["cost_usd_micro"], 1000);
        assert!(entry["note"].as_str().unwrap().contains("usage not reported"));
        assert!(entry["note"].as_str().unwrap().contains("usage came to 0.18 credits, 0.08 more than the hold of 0.1: charged in full"), "{}", entry["note"]);
        assert_eq!(entry["hold_exceeded"], json!({"hold_mc": 100, "charged_mc": 180, "over_mc": 80}));
        assert_eq!(argv[5..], ["10000".to_string(), "1970-01-01".into(), "12".into(), "1000".into(), "86400".into(), String::new(), String::new()]);
    }

    #[test]
    fn with_a_cap_the_charge_never_exceeds_it_even_above_a_wrong_bound() {
        let b = Billing::new("req_1", CreditRate::default_rate(), &admitted(100, 900)).with_controls(Some(150), true);
        // $0.0001 → 18 mc: under the cap, charged as is.
        assert_eq!(b.charge(100_000_000).charged_mc, 18);
        // $0.001 → 180 mc, above the hold of 100 and the cap of 150: the cap.
        assert_eq!(b.charge(1_000_000_000), Charge { charged_mc: 150, remaining_mc: 850, over_hold_mc: 50 });
        let m = Metered::exact(1_000_000_000, Units::Tokens(Usage { input: 5, output: 7, ..Usage::default() }));
        let s = b.settle(&m, 42, RETAIN);
        assert_eq!(s.charge_mc, 150);
        let entry: Value = serde_json::from_str(&format!("{{{}}}", s.fragment)).unwrap();
        assert_eq!(entry["max_credits"], json!({"max_mc": 150, "usage_mc": 180}));
        assert!(entry["note"].as_str().unwrap().contains("above the call's cap of 0.15: charged the cap"), "{}", entry["note"]);
        // The idempotency record is closed as served; a release frees it; no key, nothing.
        assert_eq!(s.argv()[10..], ["done".to_string(), String::new()]);
        assert_eq!(Billing::release("req_1", "x", 1, RETAIN).argv()[10], "release");
        let plain = Billing::new("req_1", CreditRate::default_rate(), &admitted(100, 900));
        assert_eq!(plain.charge(1_000_000_000).charged_mc, 180, "no cap: in full");
        assert_eq!(plain.settle(&m, 42, RETAIN).argv()[10], "");
        assert_eq!(b.charge_hold("x", 1, RETAIN).argv()[10], "done");
    }

    /// Each `local name = ARGV[n]` of a script's header, and each `ARGV[n]` it reads in place
    /// (named by the call it is read in): where the script takes each argument from.
    fn argv_positions(source: &str) -> Vec<(String, usize)> {
        let index = |s: &str| s.split("ARGV[").nth(1).and_then(|r| r.split(']').next()).and_then(|n| n.parse::<usize>().ok());
        let mut out = Vec::new();
        for line in source.lines() {
            match line.strip_prefix("local ").and_then(|l| l.split_once(" = ")) {
                Some((names, values)) if values.contains("ARGV[") => {
                    for (name, value) in names.split(", ").zip(values.split(", ")) {
                        out.extend(index(value).map(|n| (name.trim().to_string(), n)));
                    }
                }
                _ if line.contains("gmatch(ARGV[") => out.extend(index(line).map(|n| ("plan_limits".to_string(), n))),
                _ => {}
            }
        }
        out
    }

    #[test]
    fn admission_arguments_are_where_admit_v6_reads_them() {
        let limits = RateLimits::parse("pro:ai=100/3600, pro:image=5/60, anonymous=5/900").unwrap();
        let meta = CallMeta { provider: Provider::OpenAi, model: "gpt-4o-mini".into(), product: "chat" };
        // gpt-4o-mini output: $0.60/M = 600,000 pico-USD a token × 1.8 ÷ $0.01 a credit = 0.108
        // mc = 108,000 micro-mc. Its 16,384-token cap: ⌈1,769.472⌉ = 1,770 mc; the next rung,
        // 16,384 − 2,048 = 14,336 tokens: ⌈1,548.288⌉ = 1,549 mc; the last, 1 token: 1 mc.
        let flexible = HoldPlan { fixed_mc: 30, flexible: Some(FlexibleOutput { per_unit_micro_mc: 108_000, max_units: 16_384, min_units: 1 }) };
        let a = Admission { key_hash: "h".into(), now_ms: 7, request_id: "req_9", class: "ai", client_ip: "203.0.113.1", limits: &limits, hold: flexible, units: 0, meta: &meta, idempotency: None };
        let argv = a.argv();
        let expected = [
            ("key_hash", "h"),
            ("now", "7"),
            ("rid", "req_9"),
            ("route", "ai"),
            ("ip", "203.0.113.1"),
            ("anon_limit", "5"),
            ("anon_window", "900000"),
            ("plan_limits", "pro:100:3600000"),
            ("label", "openai/gpt-4o-mini"),
            ("idem", ""),
            ("idem_fp", ""),
            ("idem_ttl", ""),
            ("today", "1970-01-01"),
        ];
        let read = argv_positions(crate::scripts::ADMIT.source);
        for (name, value) in expected {
            let n = read.iter().find(|(r, _)| r == name).map(|(_, n)| *n).unwrap_or_else(|| panic!("admit_v6 reads no `{name}`: {read:?}"));
            assert_eq!(argv[n - 1], value, "ARGV[{n}] ({name})");
        }
        let at = |name: &str| read.iter().find(|(r, _)| r == name).map(|(_, n)| argv[n - 1].clone()).unwrap();
        assert_eq!(read.len(), argv.len(), "every argument is read: {read:?}");
        assert!(at("ladder").starts_with("1800:16384,1579:14336,"), "{}", at("ladder"));
        assert!(at("ladder").ends_with(",31:1"), "{}", at("ladder"));
        let entry: Value = serde_json::from_str(&format!("{{{}}}", at("meta"))).unwrap();
        assert_eq!(entry, json!({"provider": "openai", "model": "gpt-4o-mini", "product": "chat"}));
        // A fixed hold is one rung, never zero; the image class's own limits.
        let (fixed, units) = HoldPlan::fixed(0, 2);
        let argv = Admission { hold: fixed, units, class: "image", ..a }.argv();
        let at = |name: &str| read.iter().find(|(r, _)| r == name).map(|(_, n)| argv[n - 1].clone()).unwrap();
        assert_eq!((at("ladder").as_str(), at("plan_limits").as_str()), ("1:2", "pro:5:60000"));
    }

    #[test]
    fn a_flexible_ladder_steps_down_by_an_eighth_at_most_to_the_minimum() {
        // claude-sonnet-4-6 output: $15/M = 15,000,000 pico per token → × 1.8 / 0.01 / 1e9 =
        // 2.7 mc a token = 2,700,000 micro-mc.
        let f = FlexibleOutput { per_unit_micro_mc: 2_700_000, max_units: 64_000, min_units: 1025 };
        let plan = HoldPlan { fixed_mc: 500, flexible: Some(f) };
        let ladder = plan.ladder(64_000);
        assert_eq!(ladder[0], (500 + 172_800, 64_000), "64,000 × 2.7 mc");
        assert_eq!(ladder[1], (500 + 151_200, 56_000), "64,000 − 8,000 = 56,000 tokens × 2.7 mc");
        assert_eq!(*ladder.last().unwrap(), (500 + 2_768, 1025), "1,025 × 2.7 = 2,767.5 → 2,768 mc");
        for w in ladder.windows(2) {
            assert!(w[1].1 < w[0].1 && w[1].1 * 8 >= w[0].1 * 7 - 8, "{w:?}");
            assert!(w[1].0 <= w[0].0);
        }
        assert!(ladder.len() < 40, "{} rungs", ladder.len());
        assert_eq!(plan.worst_case_mc(64_000), 173_300);
        let big = FlexibleOutput { per_unit_micro_mc: 108, max_units: 128_000, min_units: 1 };
        assert!(HoldPlan { fixed_mc: 1, flexible: Some(big) }.ladder(0).len() < 130);
    }

    #[test]
    fn refusals_become_the_errors_clients_see() {
        let limits = RateLimits::parse("free:ai=10/3600, anonymous=5/900").unwrap();
        let rate = RateState { limit: 10, remaining: 0, reset_ms: 3_599_001 };
        let e = Admitted::from_reply(AdmitReply::RateLimited { plan: "free".into(), rate }, "ai", &limits).unwrap_err();
        assert_eq!(e.kind, ErrorKind::RateLimited { retry_after_secs: 3600 });
        assert!(e.message.contains("10 requests per 3600 s"));
        assert!(e.response_headers().contains(&("ratelimit".into(), "\"ai\";r=0;t=3600".into())));
        let e = Admitted::from_reply(AdmitReply::Insufficient { needed_mc: 1500, balance_mc: -200, rate }, "ai", &limits).unwrap_err();
        assert_eq!(e.status(), 402);
        assert_eq!(e.details.as_ref().unwrap()["credits_available"], json!(-0.2));
        assert!(e.message.contains("owes credits"));
        let e = Admitted::from_reply(AdmitReply::Unauthorized { reason: "revoked".into(), rate }, "ai", &limits).unwrap_err();
        assert_eq!((e.status(), e.message.as_str()), (401, "this API key has been revoked"));
        assert_eq!(Admitted::from_reply(AdmitReply::NoPlan { plan: "x".into() }, "ai", &limits).unwrap_err().status(), 403);
    }

    #[test]
    fn the_sweeper_charges_the_hold_and_says_so() {
        let s = Settlement::sweep("req_lost", 7200, 5, RETAIN);
        let argv = s.argv();
        assert_eq!(argv[3], "sweep");
        assert!(argv[4].contains("charged the hold"));
    }

    #[test]
    fn a_call_sent_but_never_answered_is_charged_its_hold() {
        let b = Billing::new("req_1", CreditRate::default_rate(), &admitted(540, 460));
        let s = b.charge_hold("no answer head within 600000 ms", 9, RETAIN);
        assert_eq!((s.charge_mc, s.mode), (540, SettleMode::Settle));
        let entry: Value = serde_json::from_str(&format!("{{{}}}", s.fragment)).unwrap();
        assert_eq!(entry["exact"], false);
        assert!(entry["note"].as_str().unwrap().starts_with("no answer head within 600000 ms: charged the hold"));
    }
}
