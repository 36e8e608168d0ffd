//! The media price table against REFERENCE.md's list prices, restated here.

use super::*;
use crate::error::ErrorKind;

const TODAY: &str = "2026-11-27";
/// $0.0003 per ElevenLabs credit (the default setting), in pico-USD.
const EL: u128 = 300_000_000;

fn rate() -> CreditRate {
    CreditRate::default_rate()
}

/// Millicredits for a cost in micro-USD: × 1.8 ÷ 0.01 × 1000, rounded up.
fn mc(usd_micro: u128) -> i64 {
    rate().millicredits_for_pico_usd(usd_micro * 1_000_000)
}

#[test]
fn image_prices_are_the_published_ones() {
    let m = image_model("gpt-image-1.5", TODAY).unwrap();
    assert_eq!(m.usd_micro_per_image(ImageQuality::Medium, ImageSize::Square), Some(34_000));
    assert_eq!(m.usd_micro_per_image(ImageQuality::High, ImageSize::Landscape), Some(200_000));
    assert_eq!(mc(34_000), 6_120, "a medium square image: 6.12 credits (the original guide: ~7)");
    let mini = image_model("gpt-image-1-mini", TODAY).unwrap();
    assert_eq!(mini.usd_micro_per_image(ImageQuality::Low, ImageSize::Portrait), Some(6_000));
    let two = image_model("gpt-image-2", TODAY).unwrap();
    assert_eq!(two.billing, ImageBilling::Tokens);
    assert_eq!(two.usd_micro_per_image(ImageQuality::Low, ImageSize::Square), None);
    assert_eq!((two.tokens.text_input, two.tokens.image_output), (5_000_000, 30_000_000));
    assert!(!two.transparent);
    assert_eq!(mini.output_tokens_per_image(ImageQuality::High, ImageSize::Portrait), 6240, "gpt-image-1's count");
    // OpenAI's calculator: 7,024 tokens for a high 1024×1024, 5,488 for a high 1536×1024.
    assert_eq!(two.output_tokens_per_image(ImageQuality::High, ImageSize::Square), 7024);
    assert_eq!(two.output_tokens_per_image(ImageQuality::High, ImageSize::Landscape), 5488);
    assert_eq!(two.output_tokens_per_image(ImageQuality::High, ImageSize::Portrait), 5488);
}

#[test]
fn retired_and_unknown_models_are_refused_naming_why() {
    for (model, date) in [("dall-e-2", "2026-05-12"), ("dall-e-3", "2026-05-12"), ("gpt-image-1", "2026-10-23")] {
        let e = image_model(model, TODAY).unwrap_err();
        assert_eq!(e.kind, ErrorKind::UnknownModel);
        assert!(e.message.contains(date), "{}", e.message);
        assert_eq!(e.details.unwrap()["retired_on"], date);
    }
    // Served until their shutdown day, refused from it.
    assert!(image_model("gpt-image-1.5", "2026-11-30").is_ok());
    let e = image_model("gpt-image-1-mini", "2026-12-01").unwrap_err();
    assert!(e.message.contains("retired by openai on 2026-12-01"), "{}", e.message);
    let e = image_model("gpt-image-2.5", TODAY).unwrap_err();
    assert_eq!(e.status(), 400);
    assert!(e.message.contains("gpt-image-2"), "lists what is offered: {}", e.message);
    let e = speech_model(Provider::OpenAi, "gpt-4o-mini-tts", TODAY).unwrap_err();
    assert!(e.message.contains("audio output tokens"), "{}", e.message);
    assert!(speech_model(Provider::OpenAi, "tts-1", "2027-01-05").is_ok());
    assert!(speech_model(Provider::OpenAi, "tts-1-hd", "2027-01-06").unwrap_err().message.contains("2027-01-06"));
    assert!(speech_model(Provider::ElevenLabs, "tts-1", TODAY).is_err(), "a model belongs to its provider");
    assert!(music_model("stable-audio-3").unwrap_err().message.contains("stable-audio-2.5"));
}

#[test]
fn speech_costs_per_character() {
    let tts1 = speech_model(Provider::OpenAi, "tts-1", TODAY).unwrap();
    // 1000 characters at $15/1M = $0.015 → 2.7 credits.
    assert_eq!(rate().millicredits_for_pico_usd(tts1.cost_pico(1000, EL)), 2_700);
    let hd = speech_model(Provider::OpenAi, "tts-1-hd", TODAY).unwrap();
    assert_eq!(hd.cost_pico(1, EL), 30_000_000);
    let multi = speech_model(Provider::ElevenLabs, "eleven_multilingual_v2", TODAY).unwrap();
    // 1 credit a character at $0.0003: 0.054 credits a character.
    assert_eq!(multi.elevenlabs_credits(51), 51);
    assert_eq!(rate().millicredits_for_pico_usd(multi.cost_pico(51, EL)), 51 * 54);
    let flash = speech_model(Provider::ElevenLabs, "eleven_flash_v2_5", TODAY).unwrap();
    assert_eq!(flash.elevenlabs_credits(51), 26, "half a credit a character, rounded up per call");
    assert_eq!(flash.max_chars, 40_000);
    assert_eq!(multi.max_chars, 10_000);
    assert_eq!(tts1.max_chars, 4096);
}

#[test]
fn music_is_a_flat_price_per_generation() {
    assert_eq!(mc(music_model("stable-audio-2.5").unwrap().usd_micro_per_generation as u128), 36_000, "20 Stability credits = $0.20 → 36 credits");
    assert_eq!(mc(music_model("stable-audio-2").unwrap().usd_micro_per_generation as u128), 41_400, "the top of 20–23 credits");
}

#[test]
fn the_catalogue_lists_each_media_model_with_its_unit_and_price() {
    let list = catalogue(TODAY, &rate(), EL);
    let find = |id: &str| list.iter().find(|m| m["id"] == id).unwrap_or_else(|| panic!("{id} missing"));
    let img = find("openai/gpt-image-1.5");
    assert_eq!((img["unit"].as_str(), img["product"].as_str()), (Some("image"), Some("image")));
    assert_eq!(img["credits_per_unit"]["1024x1024"]["medium"], json!(6.12));
    assert_eq!(img["retires_on"], "2026-12-01");
    let two = find("openai/gpt-image-2");
    assert_eq!(two["unit"], "token");
    assert_eq!(two["credits_per_million_tokens"]["image_output"], json!(5400.0));
    assert_eq!(two["credits_per_unit"]["text_input"], json!(0.0009));
    assert_eq!(find("openai/tts-1")["credits_per_unit"], json!(0.0027));
    assert_eq!(find("openai/tts-1")["credits_per_1000_units"], json!(2.7));
    let el = find("elevenlabs/eleven_multilingual_v2");
    assert_eq!((el["unit"].as_str(), el["credits_per_unit"].clone()), (Some("character"), json!(0.054)));
    assert_eq!(find("elevenlabs/eleven_flash_v2_5")["credits_per_unit"], json!(0.027));
    let music = find("stability/stable-audio-2.5");
    assert_eq!((music["unit"].as_str(), music["credits_per_unit"].clone()), (Some("generation"), json!(36.0)));
    assert!(list.iter().all(|m| m["id"] != "openai/dall-e-3" && m["id"] != "openai/gpt-4o-mini-tts"));
    // From the shutdown day on, a model leaves the list.
    assert!(!catalogue("2026-12-01", &rate(), EL).iter().any(|m| m["id"] == "openai/gpt-image-1.5"));
}

#[test]
fn every_entry_is_priced() {
    for m in IMAGE_MODELS {
        let t = m.tokens;
        assert!(t.text_input > 0 && t.image_input > 0 && t.image_output > 0 && t.text_output > 0, "{}", m.model);
        for q in ImageQuality::ALL {
            for s in ImageSize::ALL {
                assert!(m.usd_micro_per_image(q, s).is_none_or(|p| p > 0), "{}", m.model);
            }
        }
    }
    assert!(SPEECH_MODELS.iter().all(|m| m.cost_pico(1, EL) > 0 && m.max_chars > 0));
    assert!(MUSIC_MODELS.iter().all(|m| m.usd_micro_per_generation > 0 && m.steps.0 <= m.steps.1));
}

#[test]
fn dollar_settings_parse_exactly() {
    assert_eq!(usd_to_pico("0.0003"), Ok(300_000_000));
    assert_eq!(usd_to_pico("0.00012"), Ok(120_000_000));
    assert!(usd_to_pico("0").is_err());
    assert!(usd_to_pico("-1").is_err());
}
