//! The versioned price table. Source: `shared/prices/REFERENCE.md` (compiled 2026-11-23).
//!
//! Rates are integer micro-USD per 1M tokens (= pico-USD per token), which holds every listed
//! price exactly. Bump `PRICE_TABLE_VERSION` with every change: it is reported by `/v1/models`
//! and stored on every ledger charge, so a charge can always be traced to the prices it used.
//!
//! Rules taken from the reference:
//! - Only models still served on the table's date are priced; retired models are listed in
//!   `RETIRED` so the refusal can name the date. A model with a announced shutdown date carries
//!   `retires_on` and is refused from that day.
//! - Where a provider has no cache-write charge, `cache_write_*` equals the input rate; where a
//!   cached-input rate is unconfirmed, it equals the input rate (never undercharge).
//! - Long-prompt tiers reprice the whole request (Gemini Pro > 200k, Haiku 5.5 > 100k,
//!   GPT-5.6 > 272k at 2× input / 1.5× output).
//! - Every rate is the standard service tier's (REFERENCE.md: "no batch, flex or priority
//!   tier"): requests pin that tier, and an answer served at another is billed the hold
//!   (`docs/billing.md`). Anthropic cache writes the answer does not split into 5m / 1h are
//!   billed at `cache_write_1h`, the dearer (`providers::anthropic::merge_usage`).

use crate::provider::Provider;

/// Covers this table, the media one (`media_prices.rs`) and the embedding one
/// (`embedding_prices.rs`): one version names every price.
pub const PRICE_TABLE_VERSION: &str = "2026-11-23.4";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rates {
    pub input: u64,
    pub cached_input: u64,
    pub cache_write_5m: u64,
    pub cache_write_1h: u64,
    pub output: u64,
}

impl Rates {
    /// The dearest way a prompt token can be billed (used for worst-case holds).
    pub fn dearest_input(&self) -> u64 {
        self.input.max(self.cache_write_5m).max(self.cache_write_1h).max(self.cached_input)
    }
}

#[derive(Debug, Clone, Copy)]
pub struct LongPromptTier {
    pub above_prompt_tokens: u64,
    pub rates: Rates,
}

#[derive(Debug, Clone, Copy)]
pub struct ModelEntry {
    pub provider: Provider,
    pub model: &'static str,
    pub aliases: &'static [&'static str],
    /// First day (UTC, `YYYY-MM-DD`) these rates apply; a later entry for the same model wins.
    pub effective_from: &'static str,
    /// Announced shutdown day; refused from that day on.
    pub retires_on: Option<&'static str>,
    pub max_output: u64,
    pub context: u64,
    pub rates: Rates,
    pub long_prompt: Option<LongPromptTier>,
}

/// Rates where cache writes cost the same as input (OpenAI before GPT-5.6, Gemini).
const fn flat(input: u64, cached: u64, output: u64) -> Rates {
    Rates { input, cached_input: cached, cache_write_5m: input, cache_write_1h: input, output }
}

/// Anthropic's classes: read, 5-minute write, 1-hour write.
const fn claude(input: u64, read: u64, w5m: u64, w1h: u64, output: u64) -> Rates {
    Rates { input, cached_input: read, cache_write_5m: w5m, cache_write_1h: w1h, output }
}

/// GPT-5.6/6: cache writes at 1.25× input.
const fn gpt5(input: u64, cached: u64, output: u64) -> Rates {
    Rates { input, cached_input: cached, cache_write_5m: input * 5 / 4, cache_write_1h: input * 5 / 4, output }
}

/// GPT-5.6 above 272k prompt tokens: 2× input classes, 1.5× output, whole request.
const fn gpt5_long(input: u64, cached: u64, output: u64) -> Option<LongPromptTier> {
    Some(LongPromptTier { above_prompt_tokens: 272_000, rates: gpt5(input * 2, cached * 2, output * 3 / 2) })
}

const fn entry(provider: Provider, model: &'static str, max_output: u64, context: u64, rates: Rates) -> ModelEntry {
    ModelEntry {
        provider,
        model,
        aliases: &[],
        effective_from: "2000-01-01",
        retires_on: None,
        max_output,
        context,
        rates,
        long_prompt: None,
    }
}

use Provider::{Anthropic, Google, OpenAi};

pub static PRICE_TABLE: &[ModelEntry] = &[
    // ---- OpenAI (LL GP SW MD agree; shutdown 2027-01-14 per OD) ----
    ModelEntry { retires_on: Some("2027-01-14"), ..entry(OpenAi, "gpt-4o", 16_384, 128_000, flat(2_500_000, 1_250_000, 10_000_000)) },
    ModelEntry { retires_on: Some("2027-01-14"), ..entry(OpenAi, "gpt-4o-mini", 16_384, 128_000, flat(150_000, 75_000, 600_000)) },
    ModelEntry { retires_on: Some("2027-01-14"), ..entry(OpenAi, "gpt-4.1", 32_768, 1_047_576, flat(2_000_000, 500_000, 8_000_000)) },
    ModelEntry { retires_on: Some("2027-01-14"), ..entry(OpenAi, "gpt-4.1-mini", 32_768, 1_047_576, flat(400_000, 100_000, 1_600_000)) },
    // GPT-5.6 family: prices of 2026-07-30 (OM, laozhang); >272k prompt tier per OM.
    ModelEntry { long_prompt: gpt5_long(200_000, 20_000, 1_200_000), ..entry(OpenAi, "gpt-5.6-luna", 128_000, 1_050_000, gpt5(200_000, 20_000, 1_200_000)) },
    ModelEntry { long_prompt: gpt5_long(2_000_000, 200_000, 12_000_000), ..entry(OpenAi, "gpt-5.6-terra", 128_000, 1_050_000, gpt5(2_000_000, 200_000, 12_000_000)) },
    ModelEntry { long_prompt: gpt5_long(5_000_000, 500_000, 30_000_000), ..entry(OpenAi, "gpt-5.6-sol", 128_000, 1_050_000, gpt5(5_000_000, 500_000, 30_000_000)) },
    // gpt-6-luna: price from two secondary sources; limits unconfirmed, so a conservative cap.
    entry(OpenAi, "gpt-6-luna", 32_768, 400_000, gpt5(100_000, 10_000, 500_000)),
    // ---- Anthropic (AP/AM and the dated trackers) ----
    entry(Anthropic, "claude-opus-5-5", 128_000, 1_000_000, claude(4_000_000, 200_000, 5_000_000, 8_000_000, 20_000_000)),
    entry(Anthropic, "claude-sonnet-5-5", 128_000, 1_000_000, claude(2_000_000, 100_000, 2_500_000, 4_000_000, 10_000_000)),
    ModelEntry {
        long_prompt: Some(LongPromptTier {
            above_prompt_tokens: 100_000,
            rates: claude(500_000, 50_000, 625_000, 1_000_000, 2_500_000),
        }),
        ..entry(Anthropic, "claude-haiku-5-5", 128_000, 1_000_000, claude(100_000, 10_000, 125_000, 200_000, 500_000))
    },
    entry(Anthropic, "claude-fable-5-1", 128_000, 1_000_000, claude(10_000_000, 250_000, 12_500_000, 20_000_000, 50_000_000)),
    entry(Anthropic, "claude-opus-5", 128_000, 1_000_000, claude(5_000_000, 500_000, 6_250_000, 10_000_000, 25_000_000)),
    entry(Anthropic, "claude-sonnet-4-6", 64_000, 1_000_000, claude(3_000_000, 300_000, 3_750_000, 6_000_000, 15_000_000)),
    entry(Anthropic, "claude-haiku-4-5", 64_000, 200_000, claude(1_000_000, 100_000, 1_250_000, 2_000_000, 5_000_000)),
    // ---- Google Gemini (Developer API, paid tier) ----
    ModelEntry {
        retires_on: Some("2026-12-01"),
        long_prompt: Some(LongPromptTier { above_prompt_tokens: 200_000, rates: flat(2_500_000, 250_000, 15_000_000) }),
        ..entry(Google, "gemini-2.5-pro", 65_536, 1_048_576, flat(1_250_000, 125_000, 10_000_000))
    },
    ModelEntry { retires_on: Some("2026-12-01"), ..entry(Google, "gemini-2.5-flash", 65_536, 1_048_576, flat(300_000, 30_000, 2_500_000)) },
    // Gemini 3.x: one source each (GD 2026-09-20); cache rates unconfirmed → billed as input;
    // limits unconfirmed → the 2.5 limits.
    entry(Google, "gemini-3.8-flash", 65_536, 1_048_576, flat(750_000, 750_000, 3_750_000)),
    ModelEntry { effective_from: "2027-01-01", ..entry(Google, "gemini-3.8-flash", 65_536, 1_048_576, flat(1_500_000, 1_500_000, 7_500_000)) },
    entry(Google, "gemini-3.5-flash", 65_536, 1_048_576, flat(1_500_000, 1_500_000, 9_000_000)),
    ModelEntry {
        long_prompt: Some(LongPromptTier { above_prompt_tokens: 200_000, rates: flat(4_000_000, 4_000_000, 18_000_000) }),
        ..entry(Google, "gemini-3.1-pro-preview", 65_536, 1_048_576, flat(2_000_000, 2_000_000, 12_000_000))
    },
];

/// Models that were priced once and are shut down, with the day (or the best known bound).
pub static RETIRED: &[(Provider, &str, &str)] = &[
    (OpenAi, "gpt-4.1-nano", "2026-10-23"),
    (OpenAi, "o3-mini", "2026-10-23"),
    (OpenAi, "o4-mini", "2026-10-23"),
    (OpenAi, "gpt-4o-2024-05-13", "2026-10-23"),
    (Anthropic, "claude-3-5-sonnet-20241022", "2025-10-28"),
    (Anthropic, "claude-3-5-sonnet-latest", "2025-10-28"),
    (Anthropic, "claude-3-7-sonnet-20250219", "2026-02-19"),
    (Anthropic, "claude-3-7-sonnet-latest", "2026-02-19"),
    (Anthropic, "claude-3-haiku-20240307", "2026-04-19"),
    (Anthropic, "claude-sonnet-4-20250514", "2026-06-15"),
    (Anthropic, "claude-sonnet-4-0", "2026-06-15"),
    (Anthropic, "claude-opus-4-20250514", "2026-06-15"),
    (Anthropic, "claude-opus-4-0", "2026-06-15"),
    (Anthropic, "claude-opus-4-1-20250805", "2026-08-05"),
    (Anthropic, "claude-opus-4-1", "2026-08-05"),
    (Anthropic, "claude-3-5-haiku-20241022", "2026-06-26 (at the latest)"),
    (Anthropic, "claude-3-5-haiku-latest", "2026-06-26 (at the latest)"),
    (Google, "gemini-1.5-pro", "2025-09-24 (at the latest)"),
    (Google, "gemini-2.0-flash", "2026-06-01"),
    (Google, "gemini-2.0-flash-lite", "2026-06-01"),
];

pub fn retired_on(provider: Provider, model: &str) -> Option<&'static str> {
    RETIRED.iter().find(|(p, m, _)| *p == provider && *m == model).map(|(_, _, d)| *d)
}
