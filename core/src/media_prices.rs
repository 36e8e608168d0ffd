//! The media price table: OpenAI images, ElevenLabs and OpenAI speech, Stability music.
//! Source: `shared/prices/REFERENCE.md` §2–§4 (compiled 2026-11-23); each entry names its own.
//!
//! Versioned together with the chat table: `price_table::PRICE_TABLE_VERSION` covers both, and
//! every ledger charge names it. Bump it with every change here.
//!
//! Rules, as for chat:
//! - Only models still served are priced; a model with a shutdown date is refused from that day;
//!   a retired model is refused naming its date ([`RETIRED`]); a model with no price, or one the
//!   gateway cannot meter, is refused (400), never served at zero.
//! - Where a source gives a range or is unconfirmed, the dearest figure is used (never undercharge).
//!
//! Units: images are priced per image (size × quality) or per token (USD per 1M, which is
//! pico-USD per token); speech per character (OpenAI: USD per 1M characters; ElevenLabs: its own
//! credits per character, whose dollar value is the operator's setting `ELEVENLABS_USD_PER_CREDIT`);
//! music per generation.

use crate::error::{ApiError, ErrorKind};
use crate::money::CreditRate;
use crate::provider::Provider;
use serde_json::json;

/// Pico-USD in one USD.
pub const PICO_PER_USD: u128 = 1_000_000_000_000;

// ---------------------------------------------------------------- images

/// The standard sizes of the GPT image models (arbitrary sizes of gpt-image-2 are not offered:
/// no per-image token count, hence no bound, is known for them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageSize {
    Square,
    Portrait,
    Landscape,
}

impl ImageSize {
    pub const ALL: [ImageSize; 3] = [ImageSize::Square, ImageSize::Portrait, ImageSize::Landscape];

    pub fn parse(s: &str) -> Option<ImageSize> {
        ImageSize::ALL.into_iter().find(|z| z.as_str() == s)
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            ImageSize::Square => "1024x1024",
            ImageSize::Portrait => "1024x1536",
            ImageSize::Landscape => "1536x1024",
        }
    }

    fn col(&self) -> usize {
        match self {
            ImageSize::Square => 0,
            ImageSize::Portrait => 1,
            ImageSize::Landscape => 2,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageQuality {
    Low,
    Medium,
    High,
}

impl ImageQuality {
    pub const ALL: [ImageQuality; 3] = [ImageQuality::Low, ImageQuality::Medium, ImageQuality::High];

    pub fn parse(s: &str) -> Option<ImageQuality> {
        ImageQuality::ALL.into_iter().find(|q| q.as_str() == s)
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            ImageQuality::Low => "low",
            ImageQuality::Medium => "medium",
            ImageQuality::High => "high",
        }
    }

    fn row(&self) -> usize {
        match self {
            ImageQuality::Low => 0,
            ImageQuality::Medium => 1,
            ImageQuality::High => 2,
        }
    }
}

/// Image output tokens of one image, by quality (low, medium, high) × size (1024x1024,
/// 1024x1536, 1536x1024), of a model's table. Should a model report more, the usage is still
/// charged in full and the ledger, the `hold_exceeded` log line and `/admin/stats` name it.
pub type OutputTokens = [[u64; 3]; 3];

/// gpt-image-1's counts (REFERENCE.md §2: "recalled from OpenAI's guide; fit price ÷ $40/M"),
/// the bound of gpt-image-1.5 and gpt-image-1-mini, which are billed per image anyway.
pub const GPT_IMAGE_1_OUTPUT_TOKENS: OutputTokens = [[272, 408, 400], [1056, 1584, 1568], [4160, 6240, 6208]];

/// gpt-image-2's counts, from OpenAI's own billing calculator (developers.openai.com image
/// generation guide, "size and quality options"), whose formula was published on the OpenAI
/// developer forum (community.openai.com/t/1382699, 2026-06-05): with q = 16 / 48 / 96 (low,
/// medium, high), s = ⌊(2·q·short + long) / (2·long)⌋, tokens = ⌈q·s·(2,000,000 + w·h) /
/// 4,000,000⌉. It gives the calculator's 7,024 (1024², high) and 5,488 (1536×1024, high) quoted
/// in the forum's launch thread (community.openai.com/t/1379464). The square is the dearest.
pub const GPT_IMAGE_2_OUTPUT_TOKENS: OutputTokens = [[196, 158, 158], [1756, 1372, 1372], [7024, 5488, 5488]];

/// Token rates of a GPT image model, micro-USD per 1M tokens (= pico-USD per token).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageTokenRates {
    pub text_input: u64,
    pub image_input: u64,
    pub image_output: u64,
    /// Text output tokens (reasoning); where unlisted, the image output rate (the dearest).
    pub text_output: u64,
}

/// How a model's calls are charged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageBilling {
    /// The provider's published price per image, USD micro, by quality (low, medium, high) for
    /// 1024x1024 and for the two other sizes. The response's token usage, when reported, is a
    /// floor: the charge is the larger of the two (OpenAI bills tokens; a long prompt can cost
    /// more than the published image price).
    PerImage { square: [u64; 3], other: [u64; 3] },
    /// Billed from the response's `usage` at the token rates.
    Tokens,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageModel {
    pub model: &'static str,
    pub retires_on: Option<&'static str>,
    pub billing: ImageBilling,
    pub tokens: ImageTokenRates,
    /// Output tokens of one image by quality × size: the bound of its hold.
    pub output_tokens: &'static OutputTokens,
    /// Whether `background: "transparent"` is accepted.
    pub transparent: bool,
}

/// Longest prompt of the GPT image models (openai SDK `ImageGenerateParams.prompt`).
pub const IMAGE_PROMPT_MAX_CHARS: usize = 32_000;
/// Images per request (`n`), as the API allows.
pub const IMAGE_N_MAX: u64 = 10;

impl ImageModel {
    /// Output tokens of one image of `quality` × `size` (the hold's bound).
    pub fn output_tokens_per_image(&self, quality: ImageQuality, size: ImageSize) -> u64 {
        self.output_tokens[quality.row()][size.col()]
    }

    /// The published price of one image, micro-USD (per-image models).
    pub fn usd_micro_per_image(&self, quality: ImageQuality, size: ImageSize) -> Option<u64> {
        match self.billing {
            ImageBilling::PerImage { square, other } => Some(if size == ImageSize::Square { square[quality.row()] } else { other[quality.row()] }),
            ImageBilling::Tokens => None,
        }
    }
}

const fn gpt_image(model: &'static str, retires_on: Option<&'static str>, billing: ImageBilling, tokens: ImageTokenRates) -> ImageModel {
    ImageModel { model, retires_on, billing, tokens, output_tokens: &GPT_IMAGE_1_OUTPUT_TOKENS, transparent: true }
}

pub static IMAGE_MODELS: &[ImageModel] = &[
    // gpt-image-1.5 (GP, LL): text 5.00, text out 10.00, image in 8.00, image out 32.00; per image
    // low .009/.013, medium .034/.05, high .133/.20. Shutdown 2026-12-01 (OD).
    gpt_image(
        "gpt-image-1.5",
        Some("2026-12-01"),
        ImageBilling::PerImage { square: [9_000, 34_000, 133_000], other: [13_000, 50_000, 200_000] },
        ImageTokenRates { text_input: 5_000_000, image_input: 8_000_000, image_output: 32_000_000, text_output: 10_000_000 },
    ),
    // gpt-image-1-mini (OM de-DE): text 2.00, image in 2.50, image out 8.00 (no text output rate:
    // billed as image output); per image low .005/.006, medium .011/.015, high .036/.052.
    // Shutdown 2026-12-01 (OD).
    gpt_image(
        "gpt-image-1-mini",
        Some("2026-12-01"),
        ImageBilling::PerImage { square: [5_000, 11_000, 36_000], other: [6_000, 15_000, 52_000] },
        ImageTokenRates { text_input: 2_000_000, image_input: 2_500_000, image_output: 8_000_000, text_output: 8_000_000 },
    ),
    // gpt-image-2 (GP, fal): text 5.00, image in 8.00, image out 30.00; no per-image price, no
    // text output rate (billed as image output). No transparent background (openai SDK docs).
    // Output tokens per image: OpenAI's own counts (GPT_IMAGE_2_OUTPUT_TOKENS).
    ImageModel {
        transparent: false,
        output_tokens: &GPT_IMAGE_2_OUTPUT_TOKENS,
        ..gpt_image("gpt-image-2", None, ImageBilling::Tokens, ImageTokenRates { text_input: 5_000_000, image_input: 8_000_000, image_output: 30_000_000, text_output: 30_000_000 })
    },
];

// ---------------------------------------------------------------- speech

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpeechRate {
    /// ElevenLabs: its own credits per character, in thousandths (500 = 0.5 credit).
    ElevenLabsMilliCredits(u64),
    /// OpenAI: micro-USD per 1M characters (= pico-USD per character).
    UsdPerMillionChars(u64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpeechModel {
    pub provider: Provider,
    pub model: &'static str,
    pub rate: SpeechRate,
    /// The provider's longest input, in characters.
    pub max_chars: u64,
    pub retires_on: Option<&'static str>,
}

const fn eleven(model: &'static str, milli_credits: u64, max_chars: u64) -> SpeechModel {
    SpeechModel { provider: Provider::ElevenLabs, model, rate: SpeechRate::ElevenLabsMilliCredits(milli_credits), max_chars, retires_on: None }
}

pub static SPEECH_MODELS: &[SpeechModel] = &[
    // ElevenLabs credits per character (help.elevenlabs.io, REFERENCE.md §3): Flash and Turbo 0.5;
    // Multilingual v2, English v1 and v3 1.0. Longest input (help.elevenlabs.io "maximum amount of
    // characters"): Flash/Turbo v2.5 40,000, v2 30,000, Multilingual v2 and English v1 10,000.
    // v3: 5,000 (unconfirmed; a longer text is refused by ElevenLabs, which releases the hold).
    eleven("eleven_flash_v2_5", 500, 40_000),
    eleven("eleven_turbo_v2_5", 500, 40_000),
    eleven("eleven_flash_v2", 500, 30_000),
    eleven("eleven_turbo_v2", 500, 30_000),
    eleven("eleven_multilingual_v2", 1000, 10_000),
    eleven("eleven_monolingual_v1", 1000, 10_000),
    eleven("eleven_v3", 1000, 5_000),
    // OpenAI (OM pages, LL): tts-1 $15, tts-1-hd $30 per 1M characters, billed per character (a
    // measured bill, REFERENCE.md §3). Input at most 4,096 characters. Shutdown 2027-01-06 (one
    // secondary source).
    SpeechModel { provider: Provider::OpenAi, model: "tts-1", rate: SpeechRate::UsdPerMillionChars(15_000_000), max_chars: 4096, retires_on: Some("2027-01-06") },
    SpeechModel { provider: Provider::OpenAi, model: "tts-1-hd", rate: SpeechRate::UsdPerMillionChars(30_000_000), max_chars: 4096, retires_on: Some("2027-01-06") },
];

/// The largest credit multiplier ElevenLabs applies to a voice (a Voice Library voice whose owner
/// set a custom rate bills `multiplier ×` the model's credits per character). ElevenLabs' own
/// support answer names "x 2, x 3" (help.elevenlabs.io, quoted by its Discord bot, 2024); no
/// larger one was found. Unconfirmed: a voice that bills more is still charged in full (the
/// `character-cost` header is the bill) and logged as `hold_exceeded`.
pub const ELEVENLABS_MAX_VOICE_MULTIPLIER: u64 = 3;

/// ElevenLabs' premade (default) voices: never multiplied (only shared Voice Library voices carry
/// a custom rate), so their hold is the model's own rate. Ids from ElevenLabs' `GET /v1/voices`
/// (`category: premade`).
pub static ELEVENLABS_1X_VOICES: &[&str] = &[
    "21m00Tcm4TlvDq8ikWAM", // Rachel
    "29vD33N1CtxCmqQRPOHJ", // Drew
    "2EiwWnXFnvU5JabPnv8n", // Clyde
    "5Q0t7uMcjvnagumLfvZi", // Paul
    "AZnzlk1XvdvUeBnXmlld", // Domi
    "CYw3kZ02Hs0563khs1Fj", // Dave
    "CwhRBWXzGAHq8TQ4Fs17", // Roger
    "D38z5RcWu1voky8WS1ja", // Fin
    "EXAVITQu4vr4xnSDxMaL", // Sarah
    "ErXwobaYiN019PkySvjV", // Antoni
    "FGY2WhTYpPnrIDTdsKH5", // Laura
    "IKne3meq5aSn9XLyUdCD", // Charlie
    "JBFqnCBsd6RMkjVDRZzb", // George
    "LcfcDJNUP1GQjkzn1xUU", // Emily
    "MF3mGyEYCl7XYWbV9V6O", // Elli
    "N2lVS1w4EtoT3dr4eOWO", // Callum
    "SAz9YHcvj6GT2YYXdXww", // River
    "TX3LPaxmHKxFdv7VOQHJ", // Liam
    "TxGEqnHWrfWFTfGW9XjX", // Josh
    "VR6AewLTigWG4xSOukaG", // Arnold
    "XB0fDUnXU5powFXDhCwa", // Charlotte
    "Xb7hH8MSUJpSbSDYk0k2", // Alice
    "XrExE9yKIg1WjnnlVkGX", // Matilda
    "bIHbv24MWmeRgasZH58o", // Will
    "cgSgspJ2msm6clMCkdW9", // Jessica
    "cjVigY5qzO86Huf0OWal", // Eric
    "iP95p4xoKVk53GoZ742B", // Chris
    "nPczCjzI2devNBz1zQrb", // Brian
    "onwK4e9ZLuTAKqWW03F9", // Daniel
    "pFZP5JQG7iQjIQuC4Bku", // Lily
    "pNInz6obpgDQGcFmaJgB", // Adam
    "pqHfZKP75CvOlQylNhV4", // Bill
    "yoZ06aMxZJJ28mfd3POQ", // Sam
];

/// The multiplier a voice's hold assumes: 1 for a premade voice, else the largest ElevenLabs applies.
pub fn elevenlabs_hold_multiplier(voice: &str) -> u64 {
    if ELEVENLABS_1X_VOICES.contains(&voice) {
        1
    } else {
        ELEVENLABS_MAX_VOICE_MULTIPLIER
    }
}

/// ElevenLabs' default model (its API's `model_id` default).
pub const ELEVENLABS_DEFAULT_MODEL: &str = "eleven_multilingual_v2";

/// The dollar value of one ElevenLabs credit when `ELEVENLABS_USD_PER_CREDIT` is not set: the
/// dearest usage-based rate in REFERENCE.md §3 (Creator overage, $0.30 per 1,000 credits), so a
/// gateway on any plan is never undercharged until its operator sets its own plan's value.
pub const ELEVENLABS_DEFAULT_USD_PER_CREDIT: &str = "0.0003";

impl SpeechModel {
    /// The provider cost of `chars` characters, pico-USD (`el_pico_per_credit`: the dollar value of
    /// one ElevenLabs credit). ElevenLabs bills whole credits, rounded up.
    pub fn cost_pico(&self, chars: u64, el_pico_per_credit: u128) -> u128 {
        match self.rate {
            SpeechRate::ElevenLabsMilliCredits(_) => self.elevenlabs_credits(chars) as u128 * el_pico_per_credit,
            SpeechRate::UsdPerMillionChars(r) => chars as u128 * r as u128,
        }
    }

    /// ElevenLabs credits for `chars` characters (0 for other providers).
    pub fn elevenlabs_credits(&self, chars: u64) -> u64 {
        match self.rate {
            SpeechRate::ElevenLabsMilliCredits(m) => (chars.saturating_mul(m)).div_ceil(1000),
            SpeechRate::UsdPerMillionChars(_) => 0,
        }
    }
}

// ---------------------------------------------------------------- music

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MusicModel {
    pub model: &'static str,
    /// Flat price of one successful generation of at most `priced_steps` steps, micro-USD.
    pub usd_micro_per_generation: u64,
    /// The `steps` range Stability accepts.
    pub steps: (u64, u64),
    /// The most steps the price is known for: more is refused (400), never served at a guess.
    pub priced_steps: u64,
}

/// Longest clip Stable Audio generates, seconds (fixtures/stability: 1..=190).
pub const MUSIC_MAX_SECONDS: f64 = 190.0;

/// Stability's default model (its API's `model` default).
pub const STABILITY_DEFAULT_MODEL: &str = "stable-audio-2";

pub static MUSIC_MODELS: &[MusicModel] = &[
    // 1 Stability credit = $0.01. Stable Audio 2.5: a flat 20 credits per generation, any duration
    // and its whole step range (api-evangelist; 302.ai "fixed 20 credits"). Stable Audio 2.0:
    // 20–23 credits (302.ai), step-dependent; the one price tied to a step count is Locus MPP's
    // ~$0.23 for 50 steps (Stability's default): priced at the top of the range, 23 credits, for
    // up to 50 steps; 51–100 steps (which Stability accepts) are refused until their price is
    // known. REFERENCE.md §4.
    MusicModel { model: "stable-audio-2.5", usd_micro_per_generation: 200_000, steps: (4, 8), priced_steps: 8 },
    MusicModel { model: "stable-audio-2", usd_micro_per_generation: 230_000, steps: (30, 100), priced_steps: 50 },
];

// ---------------------------------------------------------------- lookups

/// Media models shut down, with the day (REFERENCE.md §0, §2).
pub static RETIRED: &[(Provider, &str, &str)] = &[
    (Provider::OpenAi, "dall-e-2", "2026-05-12"),
    (Provider::OpenAi, "dall-e-3", "2026-05-12"),
    (Provider::OpenAi, "gpt-image-1", "2026-10-23"),
];

/// Models the provider serves but the gateway cannot meter, with why.
pub static NOT_OFFERED: &[(Provider, &str, &str)] = &[
    (Provider::OpenAi, "gpt-4o-mini-tts", "it is billed by audio output tokens, which the speech API does not report"),
    (Provider::OpenAi, "gpt-4o-mini-tts-2025-12-15", "it is billed by audio output tokens, which the speech API does not report"),
];

/// The refusal of a model that is not servable today: retired, not offered, or unknown.
fn refusal(provider: Provider, model: &str, what: &str, list: &str) -> ApiError {
    if let Some((_, _, date)) = RETIRED.iter().find(|(p, m, _)| *p == provider && *m == model) {
        return retired(provider, model, date);
    }
    if let Some((_, _, why)) = NOT_OFFERED.iter().find(|(p, m, _)| *p == provider && *m == model) {
        return ApiError::new(ErrorKind::UnknownModel, format!("{what} model `{model}` is not offered: {why}"));
    }
    ApiError::new(ErrorKind::UnknownModel, format!("{what} model `{model}` is not offered for provider `{}`; offered: {list}; GET /v1/models lists every priced model", provider.as_str()))
}

fn retired(provider: Provider, model: &str, date: &str) -> ApiError {
    ApiError::new(ErrorKind::UnknownModel, format!("model `{model}` was retired by {} on {date} and is no longer served", provider.as_str())).with_details(json!({ "retired_on": date }))
}

fn servable<T>(provider: Provider, model: &str, retires_on: Option<&str>, today: &str, entry: T) -> Result<T, ApiError> {
    match retires_on {
        Some(date) if today >= date => Err(retired(provider, model, date)),
        _ => Ok(entry),
    }
}

fn names<'a>(it: impl Iterator<Item = &'a str>) -> String {
    it.collect::<Vec<_>>().join(", ")
}

/// The image model `model`, servable on `today` (`YYYY-MM-DD`).
pub fn image_model(model: &str, today: &str) -> Result<&'static ImageModel, ApiError> {
    match IMAGE_MODELS.iter().find(|m| m.model == model) {
        Some(m) => servable(Provider::OpenAi, model, m.retires_on, today, m),
        None => Err(refusal(Provider::OpenAi, model, "image", &names(IMAGE_MODELS.iter().map(|m| m.model)))),
    }
}

/// The speech model `model` of `provider`, servable on `today`.
pub fn speech_model(provider: Provider, model: &str, today: &str) -> Result<&'static SpeechModel, ApiError> {
    match SPEECH_MODELS.iter().find(|m| m.provider == provider && m.model == model) {
        Some(m) => servable(provider, model, m.retires_on, today, m),
        None => Err(refusal(provider, model, "speech", &names(SPEECH_MODELS.iter().filter(|m| m.provider == provider).map(|m| m.model)))),
    }
}

/// The music model `model`.
pub fn music_model(model: &str) -> Result<&'static MusicModel, ApiError> {
    MUSIC_MODELS.iter().find(|m| m.model == model).ok_or_else(|| refusal(Provider::Stability, model, "music", &names(MUSIC_MODELS.iter().map(|m| m.model))))
}

/// `"0.0003"` USD → pico-USD, exactly (at most 12 decimals); positive.
pub fn usd_to_pico(s: &str) -> Result<u128, String> {
    let d = crate::money::Decimal::parse(s)?;
    let pico = d.num.checked_mul(PICO_PER_USD).ok_or_else(|| format!("`{s}` is too large"))? / d.den;
    if pico == 0 {
        return Err(format!("`{s}` must be positive"));
    }
    Ok(pico)
}

// ---------------------------------------------------------------- GET /v1/models

/// Credits for a provider cost, for display: exact to a nano-credit (charges are rounded up to
/// the millicredit once per call; a price per character is finer than that).
fn display_credits(pico: u128, rate: &CreditRate) -> serde_json::Value {
    let (m, u) = (rate.margin, rate.usd_per_credit);
    let num = pico.saturating_mul(m.num).saturating_mul(u.den).saturating_mul(1_000_000_000);
    let den = PICO_PER_USD.saturating_mul(m.den).saturating_mul(u.num).max(1);
    json!(num.div_ceil(den) as f64 / 1e9)
}

fn listing(provider: Provider, model: &str, product: &str, unit: &str, per_unit: serde_json::Value, retires_on: Option<&str>) -> serde_json::Value {
    let mut v = json!({
        "id": format!("{}/{model}", provider.as_str()),
        "object": "model",
        "owned_by": provider.as_str(),
        "provider": provider.as_str(),
        "model": model,
        "product": product,
        "unit": unit,
        "credits_per_unit": per_unit,
    });
    if let Some(d) = retires_on {
        v["retires_on"] = json!(d);
    }
    v
}

/// Every media model servable on `today`, with its unit and its price in credits per unit.
pub fn catalogue(today: &str, rate: &CreditRate, el_pico_per_credit: u128) -> Vec<serde_json::Value> {
    let live = |retires_on: Option<&str>| retires_on.is_none_or(|d| today < d);
    let mut out = Vec::new();
    for m in IMAGE_MODELS.iter().filter(|m| live(m.retires_on)) {
        let t = &m.tokens;
        let per_token = |r: u64| display_credits(r as u128, rate);
        let per_million = |r: u64| display_credits(r as u128 * 1_000_000, rate);
        let tokens = json!({ "text_input": per_million(t.text_input), "image_input": per_million(t.image_input), "image_output": per_million(t.image_output), "text_output": per_million(t.text_output) });
        let mut v = match m.billing {
            ImageBilling::PerImage { .. } => {
                let mut by_size = serde_json::Map::new();
                for size in ImageSize::ALL {
                    let by_quality: serde_json::Map<String, serde_json::Value> = ImageQuality::ALL
                        .iter()
                        .map(|q| (q.as_str().to_string(), display_credits(m.usd_micro_per_image(*q, size).unwrap_or(0) as u128 * 1_000_000, rate)))
                        .collect();
                    by_size.insert(size.as_str().into(), by_quality.into());
                }
                let mut v = listing(Provider::OpenAi, m.model, "image", "image", by_size.into(), m.retires_on);
                v["billing"] = json!("per_image: model × size × quality; the reported token usage is a floor");
                v
            }
            ImageBilling::Tokens => {
                let per_unit = json!({ "text_input": per_token(t.text_input), "image_input": per_token(t.image_input), "image_output": per_token(t.image_output), "text_output": per_token(t.text_output) });
                let mut v = listing(Provider::OpenAi, m.model, "image", "token", per_unit, m.retires_on);
                v["billing"] = json!("tokens: the response's usage, by token class");
                v
            }
        };
        v["credits_per_million_tokens"] = tokens;
        out.push(v);
    }
    for m in SPEECH_MODELS.iter().filter(|m| live(m.retires_on)) {
        // One character's price, and a thousand's (ElevenLabs rounds each call up to whole credits).
        let per_char = match m.rate {
            SpeechRate::ElevenLabsMilliCredits(milli) => milli as u128 * el_pico_per_credit / 1000,
            SpeechRate::UsdPerMillionChars(r) => r as u128,
        };
        let mut v = listing(m.provider, m.model, "speech", "character", display_credits(per_char, rate), m.retires_on);
        v["credits_per_1000_units"] = display_credits(m.cost_pico(1000, el_pico_per_credit), rate);
        v["max_characters"] = json!(m.max_chars);
        if let SpeechRate::ElevenLabsMilliCredits(milli) = m.rate {
            v["elevenlabs_credits_per_character"] = json!(milli as f64 / 1000.0);
        }
        out.push(v);
    }
    for m in MUSIC_MODELS {
        let mut v = listing(Provider::Stability, m.model, "music", "generation", display_credits(m.usd_micro_per_generation as u128 * 1_000_000, rate), None);
        v["max_seconds"] = json!(MUSIC_MAX_SECONDS);
        out.push(v);
    }
    out
}

#[cfg(test)]
#[path = "media_prices_tests.rs"]
mod tests;
