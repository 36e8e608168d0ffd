//! Model lookup, worst-case holds and exact charges.
//!
//! A model is served only if the price table has an entry for it that is in effect today and
//! not retired: no price, no service. The hold is the most a call can cost (every input token at
//! the dearest input class, `max_tokens` at the output price, the long-prompt tier if the prompt
//! could reach it); the charge is the provider's reported usage at list price. Both go through
//! `CreditRate`, rounded up once.

use crate::error::{ApiError, ErrorKind};
use crate::money::CreditRate;
use crate::price_table::{ModelEntry, Rates, PRICE_TABLE, PRICE_TABLE_VERSION};
pub use crate::provider::Provider;
use crate::usage::Usage;
use serde_json::{json, Value};

/// A servable model: its entry and the rates in effect today.
#[derive(Debug, Clone, Copy)]
pub struct PricedModel {
    pub entry: &'static ModelEntry,
}

impl PricedModel {
    pub fn provider(&self) -> Provider {
        self.entry.provider
    }
    pub fn name(&self) -> &'static str {
        self.entry.model
    }
    pub fn max_output(&self) -> u64 {
        self.entry.max_output
    }

    /// The rates that apply to a prompt of `prompt_tokens` tokens (tiers reprice the whole request).
    pub fn rates_for_prompt(&self, prompt_tokens: u64) -> &'static Rates {
        match &self.entry.long_prompt {
            Some(t) if prompt_tokens > t.above_prompt_tokens => &t.rates,
            _ => &self.entry.rates,
        }
    }

    /// Provider cost of a usage at list price, in pico-USD.
    pub fn cost_pico(&self, usage: &Usage) -> u128 {
        let r = self.rates_for_prompt(usage.prompt_total());
        usage.input as u128 * r.input as u128
            + usage.cached_input as u128 * r.cached_input as u128
            + usage.cache_write_5m as u128 * r.cache_write_5m as u128
            + usage.cache_write_1h as u128 * r.cache_write_1h as u128
            + usage.output as u128 * r.output as u128
    }

    /// Worst-case input cost: every prompt token at the dearest input class of the tier the
    /// prompt could reach.
    pub fn input_bound_pico(&self, prompt_upper_tokens: u64) -> u128 {
        prompt_upper_tokens as u128 * self.rates_for_prompt(prompt_upper_tokens).dearest_input() as u128
    }

    /// Output price per token at the tier a prompt of `prompt_upper_tokens` could reach.
    pub fn output_pico_per_token(&self, prompt_upper_tokens: u64) -> u128 {
        self.rates_for_prompt(prompt_upper_tokens).output as u128
    }

    /// The most a call with a prompt of at most `prompt_upper_tokens` and at most `max_tokens`
    /// output tokens can cost: the hold. When the provider reported the prompt's usage, `known`
    /// replaces the input bound (the output is still bounded by `max_tokens`).
    pub fn bound_pico(&self, prompt_upper_tokens: u64, max_tokens: u64, known: Option<&Usage>) -> u128 {
        match known {
            Some(u) => self.cost_pico(&Usage { output: max_tokens.max(u.output), ..*u }),
            None => self.input_bound_pico(prompt_upper_tokens) + max_tokens as u128 * self.output_pico_per_token(prompt_upper_tokens),
        }
    }

    /// Exact charge for a usage, in millicredits.
    pub fn charge_mc(&self, usage: &Usage, rate: &CreditRate) -> i64 {
        rate.millicredits_for_pico_usd(self.cost_pico(usage))
    }

    /// Public listing for `GET /v1/models`.
    pub fn to_public_json(&self, rate: &CreditRate) -> Value {
        let per_m = |usd_micro_per_m: u64| {
            crate::money::credits_json(rate.millicredits_for_pico_usd(usd_micro_per_m as u128 * 1_000_000))
        };
        let r = &self.entry.rates;
        let mut v = json!({
            "id": format!("{}/{}", self.entry.provider.as_str(), self.entry.model),
            "object": "model",
            "owned_by": self.entry.provider.as_str(),
            "provider": self.entry.provider.as_str(),
            "model": self.entry.model,
            "max_output_tokens": self.entry.max_output,
            "context_window": self.entry.context,
            "credits_per_million_tokens": {
                "input": per_m(r.input),
                "cached_input": per_m(r.cached_input),
                "cache_write_5m": per_m(r.cache_write_5m),
                "cache_write_1h": per_m(r.cache_write_1h),
                "output": per_m(r.output),
            },
            "usd_per_million_tokens": {
                "input": r.input as f64 / 1e6, "output": r.output as f64 / 1e6,
            },
        });
        if let Some(t) = &self.entry.long_prompt {
            v["long_prompt_tier"] = json!({
                "above_prompt_tokens": t.above_prompt_tokens,
                "credits_per_million_tokens": { "input": per_m(t.rates.input), "output": per_m(t.rates.output) },
            });
        }
        if let Some(d) = self.entry.retires_on {
            v["retires_on"] = json!(d);
        }
        v
    }
}

/// Finds the price entry for `model` of `provider` in effect on `today` (`YYYY-MM-DD`).
///
/// Unknown → 400 `unknown_model`; retired → 400 naming the retirement date.
pub fn lookup(provider: Provider, model: &str, today: &str) -> Result<PricedModel, ApiError> {
    let candidates = PRICE_TABLE
        .iter()
        .filter(|e| e.provider == provider && (e.model == model || e.aliases.contains(&model)));
    let mut best: Option<&'static ModelEntry> = None;
    let mut any = false;
    for e in candidates {
        any = true;
        if e.effective_from <= today && best.is_none_or(|b| e.effective_from > b.effective_from) {
            best = Some(e);
        }
    }
    let Some(entry) = best else {
        let message = if any {
            format!("model `{model}` is not priced yet")
        } else if let Some(date) = crate::price_table::retired_on(provider, model) {
            return Err(ApiError::new(
                ErrorKind::UnknownModel,
                format!("model `{model}` was retired by {} on {date} and is no longer served", provider.as_str()),
            )
            .with_details(json!({ "retired_on": date })));
        } else {
            format!(
                "model `{model}` is not offered for provider `{}`; GET /v1/models lists every priced model",
                provider.as_str()
            )
        };
        return Err(ApiError::new(ErrorKind::UnknownModel, message));
    };
    if let Some(date) = entry.retires_on {
        if today >= date {
            return Err(ApiError::new(
                ErrorKind::UnknownModel,
                format!("model `{model}` was retired by {} on {date} and is no longer served", provider.as_str()),
            )
            .with_details(json!({ "retired_on": date })));
        }
    }
    Ok(PricedModel { entry })
}

/// The price entry of the model that served a call: `requested`, unless the answer names another
/// (`served`: Gemini's `modelVersion`, without `models/`). A model the table lists is priced at
/// its own rates; a snapshot of the requested model (`<requested>-<suffix>`) the table does not
/// list at the requested one's; `Err(name)`: a model the table cannot price (billed the hold).
pub fn served_model(requested: PricedModel, served: Option<&str>, today: &str) -> Result<PricedModel, String> {
    let Some(served) = served.filter(|m| *m != requested.name()) else { return Ok(requested) };
    match lookup(requested.provider(), served, today) {
        Ok(m) => Ok(m),
        Err(_) if served.strip_prefix(requested.name()).is_some_and(|rest| rest.starts_with('-')) => Ok(requested),
        Err(_) => Err(served.to_string()),
    }
}

/// Every model servable on `today`.
pub fn catalogue(today: &str) -> Vec<PricedModel> {
    let mut out: Vec<PricedModel> = Vec::new();
    for e in PRICE_TABLE.iter() {
        if out.iter().any(|p| p.entry.provider == e.provider && p.entry.model == e.model) {
            continue;
        }
        if let Ok(p) = lookup(e.provider, e.model, today) {
            out.push(p);
        }
    }
    out
}

pub fn table_version() -> &'static str {
    PRICE_TABLE_VERSION
}

#[cfg(test)]
mod tests {
    use super::*;

    const TODAY: &str = "2026-11-23";

    fn rate() -> CreditRate {
        CreditRate::default_rate()
    }

    #[test]
    fn charges_match_list_price_times_margin() {
        let m = lookup(Provider::OpenAi, "gpt-4o-mini", TODAY).unwrap();
        // 1000 input at $0.15/M + 500 output at $0.60/M = $0.00045 → ×180 = 0.081 credits
        let u = Usage { input: 1000, output: 500, ..Usage::default() };
        assert_eq!(m.charge_mc(&u, &rate()), 81);
    }

    #[test]
    fn cached_and_cache_write_tokens_are_priced_by_class() {
        let m = lookup(Provider::Anthropic, "claude-sonnet-4-6", TODAY).unwrap();
        // 12 in ($3), 2048 write-5m ($3.75), 31 out ($15):
        // 36 + 7680 + 465 = 8181 µUSD... in pico: 12*3e6 + 2048*3.75e6 + 31*15e6 = 8_181_000_000 pico = $0.008181
        let u = Usage { input: 12, cache_write_5m: 2048, output: 31, ..Usage::default() };
        assert_eq!(m.charge_mc(&u, &rate()), 1473); // 0.008181 × 180 = 1.47258 credits → 1473 mc
    }

    #[test]
    fn long_prompts_reprice_the_whole_request() {
        let m = lookup(Provider::Google, "gemini-2.5-pro", TODAY).unwrap();
        let small = Usage { input: 200_000, output: 1000, ..Usage::default() };
        let big = Usage { input: 200_001, output: 1000, ..Usage::default() };
        let per_tok_small = m.charge_mc(&small, &rate());
        let per_tok_big = m.charge_mc(&big, &rate());
        assert!(per_tok_big > per_tok_small * 19 / 10, "{per_tok_small} vs {per_tok_big}");
    }

    #[test]
    fn hold_covers_any_usage_within_bounds() {
        for p in catalogue(TODAY) {
            let prompt = 5000;
            let max = p.max_output().min(4096);
            let hold = rate().millicredits_for_pico_usd(p.bound_pico(prompt, max, None));
            // The dearest split of the prompt: everything as the dearest input class.
            for u in [
                Usage { input: prompt, output: max, ..Usage::default() },
                Usage { cache_write_1h: prompt, output: max, ..Usage::default() },
                Usage { cache_write_5m: prompt, output: max, ..Usage::default() },
                Usage { cached_input: prompt, output: max, ..Usage::default() },
            ] {
                assert!(p.charge_mc(&u, &rate()) <= hold, "{} hold {hold} < charge", p.name());
            }
        }
    }

    #[test]
    fn unknown_models_are_refused_never_free() {
        let e = lookup(Provider::OpenAi, "gpt-9-imaginary", TODAY).unwrap_err();
        assert_eq!(e.kind, ErrorKind::UnknownModel);
        assert_eq!(e.status(), 400);
    }

    #[test]
    fn retired_models_name_their_retirement_date() {
        let e = lookup(Provider::Anthropic, "claude-3-5-sonnet-20241022", TODAY).unwrap_err();
        assert!(e.message.contains("2025-10-28"), "{}", e.message);
        let e = lookup(Provider::OpenAi, "o4-mini", TODAY).unwrap_err();
        assert!(e.message.contains("2026-10-23"), "{}", e.message);
        // A model with a shutdown date is served until that day, refused from it.
        assert!(lookup(Provider::Google, "gemini-2.5-flash", "2026-11-30").is_ok());
        let e = lookup(Provider::Google, "gemini-2.5-flash", "2026-12-01").unwrap_err();
        assert!(e.message.contains("2026-12-01"));
    }

    #[test]
    fn dated_price_changes_take_effect_on_their_day() {
        let before = lookup(Provider::Google, "gemini-3.8-flash", "2026-12-31").unwrap();
        let after = lookup(Provider::Google, "gemini-3.8-flash", "2027-01-01").unwrap();
        assert_eq!(before.entry.rates.input, 750_000);
        assert_eq!(after.entry.rates.input, 1_500_000);
    }

    #[test]
    fn every_entry_is_priced_and_bounded() {
        for e in PRICE_TABLE.iter() {
            assert!(e.rates.input > 0 && e.rates.output > 0, "{}", e.model);
            assert!(e.max_output > 0 && e.context >= e.max_output, "{}", e.model);
        }
    }
}

/// `YYYY-MM-DD` (UTC) of a Unix time in milliseconds: the day price entries are chosen by.
pub fn utc_date(unix_ms: u64) -> String {
    // Howard Hinnant's days-to-civil algorithm.
    let z = (unix_ms / 86_400_000) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod date_tests {
    #[test]
    fn utc_dates() {
        assert_eq!(super::utc_date(0), "1970-01-01");
        assert_eq!(super::utc_date(1_795_392_000_000), "2026-11-23");
        assert_eq!(super::utc_date(1_709_164_800_000), "2024-02-29");
        assert_eq!(super::utc_date(1_798_761_599_999), "2026-12-31");
    }
}
