//! Image tokens: the most one image can cost a model, by the provider's own sizing rules, for the
//! hold. Where the gateway holds the image's bytes (a `data:` URL, a `base64` source) it knows the
//! pixel size and counts the image exactly by the rule; an image by URL counts at the model's
//! maximum for its detail level. A model the table does not name counts at the largest rule its
//! provider has.
//!
//! Every chat model in the price table bills image tokens at its text input rate (the reference,
//! `shared/prices/REFERENCE.md`, lists a separate image-input rate only for the gpt-image models),
//! so image tokens are held and charged as input tokens.
//!
//! | provider, models | rule | most per image | source |
//! |---|---|---|---|
//! | OpenAI gpt-4o, gpt-4.1 | tiles: fit in 2048², short side to 768, 512-px tiles; 85 + 170/tile (`low`: 85) | 1,445 (8 tiles) | [OV] "Tile-based image tokenization" |
//! | OpenAI gpt-4o-mini | tiles as above, 2,833 + 5,667/tile (`low`: 2,833) | 48,169 | [OV] tile table |
//! | OpenAI gpt-4.1-mini | the larger of the tile rule (85/170) and 32-px patches, budget 1,536, × 1.62 | 2,489 | [OV] sizing table names both |
//! | OpenAI GPT-5.6 family, gpt-6 | 32-px patches; `original`/`auto` keep the input size; an image over 30,000 patches is refused; `low` is 512×512 (256 patches); × 2.46 | 73,800 | [OV] "Model sizing behavior", [OV-zh] "30,000 patches per image"; the multiplier is not published for these models, so the largest published one (2.46) |
//! | Anthropic Claude ≤ 4.6 | ⌈w/28⌉·⌈h/28⌉ (the older docs: w·h/750), at most 1,568 (older docs: "~1,600") | 1,600 | [AV] "Evaluate image size" |
//! | Anthropic Opus 4.7 and later (all 5.x) | same, at most 4,784 | 4,784 | [AV] "High-resolution image support" |
//! | Gemini 2.5 | default / `HIGH` "256 + Pan & Scan (~2048)", `MEDIUM` 256, `LOW` 64 | 4,608 | [GM] "Token counts"; the figures are "approximate", so ×2 |
//! | Gemini 3.x | default / `HIGH` 1,120, `MEDIUM` 560, `LOW` 280 | 2,240 | [GM] "Token counts", ×2 as above |
//!
//! Sources: [OV] developers.openai.com/api/docs/guides/images-vision ("Model sizing behavior",
//! "Calculating costs"; the copy listing the GPT-5.6 family); [OV-zh] its zh-CN copy ("Image
//! input requirements": images over 30,000 patches after resizing are rejected); [AV]
//! platform.claude.com/docs/en/build-with-claude/vision ("Evaluate image size": 28×28-px visual
//! tokens, 1,568 / 4,784 budgets, 8000×8000 px and 10 MB limits); [GM]
//! ai.google.dev/gemini-api/docs/media-resolution ("Token counts", last updated 2025-12-05).

use super::images::{Detail, Image};
use crate::provider::Provider;

/// Most patches OpenAI accepts in one image after its resizing; larger images are refused.
pub const OPENAI_MAX_PATCHES: u64 = 30_000;

/// Gemini's `mediaResolution` for a request's images (the gateway sets it from OpenAI's `detail`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaResolution {
    Default,
    Low,
    Medium,
    High,
}

impl MediaResolution {
    /// One level for all of a request's images: `low` (or `high`) when every image asks for it,
    /// else Gemini's default.
    pub fn of(details: impl Iterator<Item = Option<Detail>>) -> MediaResolution {
        let mut all_low = true;
        let mut all_high = true;
        let mut any = false;
        for d in details {
            any = true;
            all_low &= d == Some(Detail::Low);
            all_high &= matches!(d, Some(Detail::High | Detail::Original));
        }
        match (any, all_low, all_high) {
            (true, true, _) => MediaResolution::Low,
            (true, _, true) => MediaResolution::High,
            _ => MediaResolution::Default,
        }
    }

    /// The `generationConfig.mediaResolution` value, when not the default.
    pub fn wire(&self) -> Option<&'static str> {
        match self {
            MediaResolution::Default => None,
            MediaResolution::Low => Some("MEDIA_RESOLUTION_LOW"),
            MediaResolution::Medium => Some("MEDIA_RESOLUTION_MEDIUM"),
            MediaResolution::High => Some("MEDIA_RESOLUTION_HIGH"),
        }
    }
}

/// One provider sizing rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// OpenAI tiles: `base` + `tile` per 512-px tile (`low`: `base`).
    Tiles { base: u64, tile: u64 },
    /// OpenAI patches with a budget (`high`/`auto`), × `mult_milli`/1000.
    Patches { budget: u64, mult_milli: u64 },
    /// OpenAI patches where `original`/`auto` keep the input size (GPT-5.6 family).
    OriginalPatches { mult_milli: u64 },
    /// Claude's 28-px visual tokens, at most `max`.
    Claude { max: u64 },
    /// Gemini: fixed per media resolution (already with the margin).
    Gemini { low: u64, medium: u64, high: u64, default: u64 },
}

const GPT4O: Rule = Rule::Tiles { base: 85, tile: 170 };
const GPT4O_MINI: Rule = Rule::Tiles { base: 2_833, tile: 5_667 };
const GPT41_MINI_PATCHES: Rule = Rule::Patches { budget: 1_536, mult_milli: 1_620 };
const GPT56: Rule = Rule::OriginalPatches { mult_milli: 2_460 };
const CLAUDE: Rule = Rule::Claude { max: 1_600 };
const CLAUDE_HIGH_RES: Rule = Rule::Claude { max: 4_784 };
const GEMINI_25: Rule = Rule::Gemini { low: 128, medium: 512, high: 4_608, default: 4_608 };
const GEMINI_3: Rule = Rule::Gemini { low: 560, medium: 1_120, high: 2_240, default: 2_240 };

/// The rules that bound a model's images (the image counts at the largest).
pub fn rules(provider: Provider, model: &str) -> &'static [Rule] {
    let m = model;
    match provider {
        Provider::OpenAi if m.starts_with("gpt-4o-mini") => &[GPT4O_MINI],
        Provider::OpenAi if m.starts_with("gpt-4.1-mini") => &[GPT4O, GPT41_MINI_PATCHES],
        Provider::OpenAi if m.starts_with("gpt-4o") || m.starts_with("gpt-4.1") => &[GPT4O],
        Provider::OpenAi if m.starts_with("gpt-5.6") || m.starts_with("gpt-6") => &[GPT56],
        Provider::OpenAi => &[GPT4O_MINI, GPT56],
        Provider::Anthropic if ["claude-sonnet-4-6", "claude-haiku-4-5", "claude-sonnet-4-5", "claude-opus-4-5", "claude-opus-4-6"].iter().any(|p| m.starts_with(p)) => &[CLAUDE],
        Provider::Anthropic => &[CLAUDE_HIGH_RES],
        Provider::Google if m.starts_with("gemini-2") => &[GEMINI_25],
        Provider::Google if m.starts_with("gemini-3") => &[GEMINI_3],
        Provider::Google => &[GEMINI_25, GEMINI_3],
        _ => &[],
    }
}

fn patches(w: u32, h: u32) -> u64 {
    u64::from(w.div_ceil(32)) * u64::from(h.div_ceil(32))
}

fn times_milli(n: u64, milli: u64) -> u64 {
    (n * milli).div_ceil(1000)
}

/// 512-px tiles after OpenAI's two resizes. A scaled side is rounded up before it is tiled, so the
/// count is never below the provider's, whatever its rounding.
fn tiles(w: u32, h: u32) -> u64 {
    let (mut w, mut h) = (f64::from(w), f64::from(h));
    let long = w.max(h);
    if long > 2048.0 {
        w *= 2048.0 / long;
        h *= 2048.0 / long;
    }
    let short = w.min(h);
    if short > 768.0 {
        w *= 768.0 / short;
        h *= 768.0 / short;
    }
    let n = |x: f64| ((x - 1e-6).ceil().max(1.0) / 512.0).ceil() as u64;
    n(w) * n(h)
}

impl Rule {
    /// Tokens of one image by this rule: exact when its size is known, the maximum otherwise.
    pub fn tokens(&self, detail: Option<Detail>, size: Option<(u32, u32)>, res: MediaResolution) -> u64 {
        match *self {
            Rule::Tiles { base, tile } => match detail {
                Some(Detail::Low) => base,
                _ => base + tile * size.map(|(w, h)| tiles(w, h)).unwrap_or(8),
            },
            Rule::Patches { budget, mult_milli } => {
                let n = match detail {
                    Some(Detail::Low) => 256,
                    _ => size.map(|(w, h)| patches(w, h)).unwrap_or(budget).min(budget),
                };
                times_milli(n, mult_milli)
            }
            Rule::OriginalPatches { mult_milli } => {
                let n = match detail {
                    Some(Detail::Low) => 256,
                    _ => size.map(|(w, h)| patches(w, h)).unwrap_or(OPENAI_MAX_PATCHES).min(OPENAI_MAX_PATCHES),
                };
                times_milli(n, mult_milli)
            }
            Rule::Claude { max } => match size {
                Some((w, h)) => {
                    let visual = u64::from(w.div_ceil(28)) * u64::from(h.div_ceil(28));
                    let older = (u64::from(w) * u64::from(h)).div_ceil(750);
                    visual.max(older).min(max)
                }
                None => max,
            },
            Rule::Gemini { low, medium, high, default } => match res {
                MediaResolution::Low => low,
                MediaResolution::Medium => medium,
                MediaResolution::High => high,
                MediaResolution::Default => default,
            },
        }
    }
}

/// The token bound of one image for a model.
pub fn image_tokens(provider: Provider, model: &str, image: &Image, res: MediaResolution) -> u64 {
    rules(provider, model).iter().map(|r| r.tokens(image.detail, image.size, res)).max().unwrap_or(0)
}

/// An image the model's provider would refuse for its size, said before anything is held.
pub fn refusal(provider: Provider, model: &str, image: &Image) -> Option<String> {
    let (w, h) = image.size?;
    let keeps_size = rules(provider, model).iter().any(|r| matches!(r, Rule::OriginalPatches { .. }));
    let detail_keeps = !matches!(image.detail, Some(Detail::Low | Detail::High));
    (keeps_size && detail_keeps && patches(w, h) > OPENAI_MAX_PATCHES)
        .then(|| format!("the image is {w}×{h} pixels, over {OPENAI_MAX_PATCHES} 32-px patches, which {model} refuses at this detail; send it smaller or with `detail: \"high\"`"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::images::ImageSource;

    fn img(detail: Option<Detail>, size: Option<(u32, u32)>) -> Image {
        Image { source: ImageSource::Url("https://example.com/a.png".into()), detail, size }
    }

    #[test]
    fn openai_tiles_match_the_documented_examples() {
        // [OV]: 1024×1024 high → 768×768 → 4 tiles → 765; 2048×4096 → 768×1536 → 6 tiles → 1105.
        assert_eq!(GPT4O.tokens(Some(Detail::High), Some((1024, 1024)), MediaResolution::Default), 765);
        assert_eq!(GPT4O.tokens(None, Some((2048, 4096)), MediaResolution::Default), 1105);
        assert_eq!(GPT4O.tokens(Some(Detail::Low), Some((4096, 4096)), MediaResolution::Default), 85);
        assert_eq!(GPT4O.tokens(None, None, MediaResolution::Default), 85 + 170 * 8);
        assert_eq!(GPT4O_MINI.tokens(None, Some((1024, 1024)), MediaResolution::Default), 2833 + 4 * 5667);
        // No size the rule allows has more than 8 tiles: the unknown-size bound is the maximum.
        for (w, h) in [(768, 2048), (2048, 768), (8000, 3000), (1, 8000), (2047, 769), (1536, 2048), (7999, 7999)] {
            assert!(tiles(w, h) <= 8, "{w}×{h}: {}", tiles(w, h));
        }
    }

    #[test]
    fn openai_patches_follow_the_budget_and_multiplier() {
        // [OV]: 1024×1024 → 1024 patches; 1800×2400 → over the 1,536 budget, resized to ≤ 1,536.
        assert_eq!(GPT41_MINI_PATCHES.tokens(None, Some((1024, 1024)), MediaResolution::Default), 1659); // 1024 × 1.62 = 1658.88
        assert_eq!(GPT41_MINI_PATCHES.tokens(None, Some((1800, 2400)), MediaResolution::Default), 2489);
        assert_eq!(GPT56.tokens(None, Some((1024, 1024)), MediaResolution::Default), 2520); // 1024 × 2.46 = 2519.04
        assert_eq!(GPT56.tokens(Some(Detail::Low), Some((4000, 4000)), MediaResolution::Default), 630);
        assert_eq!(GPT56.tokens(None, None, MediaResolution::Default), 73_800);
        let m = |d, s| image_tokens(Provider::OpenAi, "gpt-4.1-mini", &img(d, s), MediaResolution::Default);
        assert_eq!(m(None, None), 2489, "the larger of both rules");
        // 512×512: tiles 85 + 170 = 255; patches 256 × 1.62 = 415.
        assert_eq!(m(None, Some((512, 512))), 415);
    }

    #[test]
    fn claude_counts_visual_tokens_up_to_its_budget() {
        // [AV]: 200×200 → 64; 1000×1000 → 1296 (older rule: 1334); 1092×1092 → 1521 (older 1590).
        assert_eq!(CLAUDE.tokens(None, Some((200, 200)), MediaResolution::Default), 64);
        assert_eq!(CLAUDE.tokens(None, Some((1000, 1000)), MediaResolution::Default), 1334);
        assert_eq!(CLAUDE.tokens(None, Some((1092, 1092)), MediaResolution::Default), 1590);
        assert_eq!(CLAUDE.tokens(None, Some((3840, 2160)), MediaResolution::Default), 1600);
        assert_eq!(CLAUDE_HIGH_RES.tokens(None, Some((1920, 1080)), MediaResolution::Default), 2765);
        assert_eq!(CLAUDE_HIGH_RES.tokens(None, None, MediaResolution::Default), 4784);
        assert_eq!(rules(Provider::Anthropic, "claude-haiku-4-5"), &[CLAUDE]);
        assert_eq!(rules(Provider::Anthropic, "claude-opus-5-5"), &[CLAUDE_HIGH_RES]);
    }

    #[test]
    fn gemini_counts_per_resolution_with_margin() {
        let g = |model, res| image_tokens(Provider::Google, model, &img(None, Some((10, 10))), res);
        assert_eq!(g("gemini-2.5-flash", MediaResolution::Default), 4608);
        assert_eq!(g("gemini-2.5-flash", MediaResolution::Low), 128);
        assert_eq!(g("gemini-3.8-flash", MediaResolution::High), 2240);
        assert_eq!(g("gemini-9-new", MediaResolution::Default), 4608, "unknown: the largest rule");
        assert_eq!(MediaResolution::of([Some(Detail::Low), Some(Detail::Low)].into_iter()), MediaResolution::Low);
        assert_eq!(MediaResolution::of([Some(Detail::Low), None].into_iter()), MediaResolution::Default);
        assert_eq!(MediaResolution::of([Some(Detail::High)].into_iter()), MediaResolution::High);
        assert_eq!(MediaResolution::of(std::iter::empty()), MediaResolution::Default);
    }

    #[test]
    fn a_known_size_never_counts_above_the_unknown_size_bound() {
        let sizes = [(1, 1), (100, 3000), (512, 512), (1024, 768), (2000, 2000), (5000, 800), (8000, 8000)];
        for (p, model) in [
            (Provider::OpenAi, "gpt-4o"),
            (Provider::OpenAi, "gpt-4o-mini"),
            (Provider::OpenAi, "gpt-4.1-mini"),
            (Provider::OpenAi, "gpt-5.6-luna"),
            (Provider::Anthropic, "claude-sonnet-4-6"),
            (Provider::Anthropic, "claude-fable-5-1"),
            (Provider::Google, "gemini-2.5-pro"),
        ] {
            for d in [None, Some(Detail::Low), Some(Detail::High), Some(Detail::Auto), Some(Detail::Original)] {
                let max = image_tokens(p, model, &img(d, None), MediaResolution::Default);
                for s in sizes {
                    assert!(image_tokens(p, model, &img(d, Some(s)), MediaResolution::Default) <= max, "{model} {d:?} {s:?}");
                }
            }
        }
    }

    #[test]
    fn oversized_images_for_size_keeping_models_are_refused() {
        assert!(refusal(Provider::OpenAi, "gpt-5.6-sol", &img(None, Some((8000, 8000)))).is_some());
        assert!(refusal(Provider::OpenAi, "gpt-5.6-sol", &img(Some(Detail::High), Some((8000, 8000)))).is_none());
        assert!(refusal(Provider::OpenAi, "gpt-4o", &img(None, Some((8000, 8000)))).is_none());
        assert!(refusal(Provider::OpenAi, "gpt-5.6-sol", &img(None, Some((4000, 4000)))).is_none());
    }
}
