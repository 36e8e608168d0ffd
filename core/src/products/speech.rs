//! Text to speech on the metering engine: ElevenLabs through `POST /v1/tts` (ElevenLabs' own
//! fields) and ElevenLabs or OpenAI's own speech models through `POST /v1/audio/speech`
//! (OpenAI's shape: the SDKs' `audio.speech.create` works unchanged). Parse → price
//! ([`SpeechProduct::price`]) → run → render ([`AudioMeter`]: the audio streamed as it arrives).
//!
//! Priced per character of the text: both providers bill a generation that started. OpenAI: the
//! characters × the model's rate, the hold and the charge. ElevenLabs bills its own credits and
//! says how many in the `character-cost` header: that header is the charge (a mismatch with the
//! gateway's count is noted in the ledger). A Voice Library voice may multiply the model's
//! credits, so the hold is the characters × the rate × the largest multiplier ElevenLabs applies
//! ([`media_prices::ELEVENLABS_MAX_VOICE_MULTIPLIER`]) unless the voice is a premade one, known
//! to be 1× ([`media_prices::ELEVENLABS_1X_VOICES`]).

use super::audio_meter::AudioMeter;
use super::media::{allow_only, object, opt_choice, opt_number, opt_str, present, req_text, split_provider};
use crate::error::{ApiError, ErrorShape};
use crate::media_prices::{self, SpeechModel, ELEVENLABS_DEFAULT_MODEL};
use crate::metering::{CallMeta, HoldPlan, Metered, Units, MEDIA_CLASS};
use crate::money::CreditRate;
use crate::payer::Bill;
use crate::product::{Meter, Product, ProviderHead, UpstreamRequest};
use crate::provider::Provider;
use crate::providers::{join, Endpoint};
use serde_json::{json, Map, Value};

/// Which customer API a request came through; decides the error shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpeechRoute {
    /// `/v1/tts`: ElevenLabs' fields, the gateway's error shape.
    Native,
    /// `/v1/audio/speech`: OpenAI's request and error shapes.
    OpenAiCompatible,
}

const NATIVE_FIELDS: &[&str] = &["voice_id", "text", "model_id", "output_format", "voice_settings"];
const OPENAI_FIELDS: &[&str] = &["model", "input", "voice", "response_format", "speed", "instructions", "stream_format"];

/// ElevenLabs' `output_format` values (its OpenAPI description, `codec_samplerate[_bitrate]`).
pub const ELEVENLABS_FORMATS: &[&str] = &[
    "mp3_22050_32", "mp3_24000_48", "mp3_44100_32", "mp3_44100_64", "mp3_44100_96", "mp3_44100_128", "mp3_44100_192",
    "pcm_8000", "pcm_16000", "pcm_22050", "pcm_24000", "pcm_32000", "pcm_44100", "pcm_48000",
    "ulaw_8000", "alaw_8000",
    "opus_48000_32", "opus_48000_64", "opus_48000_96", "opus_48000_128", "opus_48000_192",
];

/// OpenAI's `response_format` values.
const OPENAI_FORMATS: &[&str] = &["mp3", "opus", "aac", "flac", "wav", "pcm"];

/// The voices of tts-1 and tts-1-hd (ballad, verse, marin and cedar are gpt-4o-mini-tts only).
pub const OPENAI_VOICES: &[&str] = &["alloy", "ash", "coral", "echo", "fable", "onyx", "nova", "sage", "shimmer"];

/// ElevenLabs' speed range (`voice_settings.speed`).
const ELEVENLABS_SPEED: (f64, f64) = (0.7, 1.2);

#[derive(Debug, Clone, PartialEq)]
pub struct SpeechRequest {
    pub route: SpeechRoute,
    pub provider: Provider,
    pub model: String,
    pub text: String,
    /// The field the text came in (`text` or `input`), for messages.
    pub text_field: &'static str,
    pub voice: String,
    /// ElevenLabs' `output_format` query parameter.
    pub output_format: Option<String>,
    /// The provider's JSON body: the checked fields, forwarded.
    pub body: Map<String, Value>,
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::invalid(message)
}

/// An ElevenLabs voice id: 20 letters and digits (premade and custom voices alike).
fn elevenlabs_voice(v: &str, field: &str) -> Result<String, ApiError> {
    if v.len() == 20 && v.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(v.to_string())
    } else {
        Err(invalid(format!("`{field}` `{v}` is not an ElevenLabs voice id (20 letters and digits, e.g. JBFqnCBsd6RMkjVDRZzb; ElevenLabs' GET /v1/voices lists them)")))
    }
}

/// `voice_settings`: ElevenLabs' five settings, each in its range.
fn voice_settings(v: &Value) -> Result<Map<String, Value>, ApiError> {
    let Value::Object(m) = v else { return Err(invalid("`voice_settings` must be an object")) };
    allow_only(m, &["stability", "similarity_boost", "style", "use_speaker_boost", "speed"], "voice_settings")?;
    for k in ["stability", "similarity_boost", "style"] {
        opt_number(m, k, 0.0, 1.0).map_err(|e| invalid(format!("voice_settings: {}", e.message)))?;
    }
    opt_number(m, "speed", ELEVENLABS_SPEED.0, ELEVENLABS_SPEED.1).map_err(|e| invalid(format!("voice_settings: {}", e.message)))?;
    match present(m, "use_speaker_boost") {
        None | Some(Value::Bool(_)) => Ok(m.clone()),
        Some(_) => Err(invalid("voice_settings: `use_speaker_boost` must be a boolean")),
    }
}

/// `POST /v1/tts`: `{voice_id, text, model_id?, output_format?, voice_settings?}`.
pub fn parse_native(body: &[u8]) -> Result<SpeechRequest, ApiError> {
    let m = object(body)?;
    allow_only(&m, NATIVE_FIELDS, "/v1/tts")?;
    let voice = elevenlabs_voice(req_text(&m, "voice_id")?, "voice_id")?;
    let text = req_text(&m, "text")?.to_string();
    let model = opt_str(&m, "model_id")?.unwrap_or(ELEVENLABS_DEFAULT_MODEL).to_string();
    let output_format = opt_choice(&m, "output_format", ELEVENLABS_FORMATS)?.map(str::to_string);
    let mut body = Map::new();
    body.insert("text".into(), json!(text));
    body.insert("model_id".into(), json!(model));
    if let Some(v) = present(&m, "voice_settings") {
        body.insert("voice_settings".into(), Value::Object(voice_settings(v)?));
    }
    Ok(SpeechRequest { route: SpeechRoute::Native, provider: Provider::ElevenLabs, model, text, text_field: "text", voice, output_format, body })
}

/// `POST /v1/audio/speech`: `{model, input, voice, response_format?, speed?}`. `model` is
/// `tts-1`, `tts-1-hd` (or `openai/…`), or an ElevenLabs model (`elevenlabs/…`, or a bare
/// `eleven_…` name), whose `voice` is an ElevenLabs voice id.
pub fn parse_openai(body: &[u8]) -> Result<SpeechRequest, ApiError> {
    let m = object(body)?;
    allow_only(&m, OPENAI_FIELDS, "/v1/audio/speech")?;
    let (prefix, model) = split_provider(req_text(&m, "model")?, &[Provider::OpenAi, Provider::ElevenLabs])?;
    let provider = prefix.unwrap_or(if model.starts_with("eleven_") { Provider::ElevenLabs } else { Provider::OpenAi });
    let text = req_text(&m, "input")?.to_string();
    if opt_choice(&m, "stream_format", &["audio", "sse"])? == Some("sse") {
        return Err(invalid("`stream_format` `sse` is not supported: the audio itself is streamed as it is generated"));
    }
    if present(&m, "instructions").is_some() {
        return Err(invalid("`instructions` works only with gpt-4o-mini-tts, which the gateway does not offer"));
    }
    let voice = match present(&m, "voice") {
        Some(Value::String(v)) if !v.is_empty() => v.clone(),
        Some(Value::Object(_)) => return Err(invalid("custom voice objects are not supported; name a voice")),
        _ => return Err(invalid("`voice` is required and must be a string")),
    };
    let format = opt_choice(&m, "response_format", OPENAI_FORMATS)?;
    let speed = opt_number(&m, "speed", 0.25, 4.0)?;
    let mut body = Map::new();
    let (voice, output_format) = match provider {
        Provider::ElevenLabs => {
            let output_format = match format {
                None | Some("mp3") => "mp3_44100_128",
                Some("opus") => "opus_48000_128",
                // OpenAI's pcm is 24 kHz 16-bit little-endian, as is ElevenLabs' pcm_24000.
                Some("pcm") => "pcm_24000",
                Some(other) => return Err(invalid(format!("`response_format` `{other}` is not available from ElevenLabs; use mp3, opus or pcm"))),
            };
            body.insert("text".into(), json!(text));
            body.insert("model_id".into(), json!(model));
            if let Some(s) = speed {
                if !(ELEVENLABS_SPEED.0..=ELEVENLABS_SPEED.1).contains(&s) {
                    return Err(invalid(format!("`speed` {s} is out of ElevenLabs' range ({} to {})", ELEVENLABS_SPEED.0, ELEVENLABS_SPEED.1)));
                }
                body.insert("voice_settings".into(), json!({ "speed": s }));
            }
            (elevenlabs_voice(&voice, "voice")?, Some(output_format.to_string()))
        }
        _ => {
            body.insert("model".into(), json!(model));
            body.insert("input".into(), json!(text));
            body.insert("voice".into(), json!(voice));
            for k in ["response_format", "speed"] {
                if let Some(v) = present(&m, k) {
                    body.insert(k.into(), v.clone());
                }
            }
            (voice, None)
        }
    };
    Ok(SpeechRequest { route: SpeechRoute::OpenAiCompatible, provider, model, text, text_field: "input", voice, output_format, body })
}

/// A speech request, priced: its model is servable today and its text within the model's limit.
#[derive(Debug)]
pub struct SpeechProduct {
    pub req: SpeechRequest,
    pub model: &'static SpeechModel,
    pub chars: u64,
    pub endpoint: Endpoint,
    /// The dollar value of one ElevenLabs credit (`ELEVENLABS_USD_PER_CREDIT`), pico-USD.
    pub el_pico_per_credit: u128,
}

impl SpeechProduct {
    pub fn price(req: SpeechRequest, today: &str, endpoint: Endpoint, el_pico_per_credit: u128) -> Result<SpeechProduct, ApiError> {
        let model = media_prices::speech_model(req.provider, &req.model, today)?;
        let chars = req.text.chars().count() as u64;
        if chars > model.max_chars {
            return Err(invalid(format!("`{}` has {chars} characters; {} takes at most {}", req.text_field, model.model, model.max_chars)));
        }
        if req.provider == Provider::OpenAi && !OPENAI_VOICES.contains(&req.voice.as_str()) {
            return Err(invalid(format!("`voice` `{}` is not a voice of {}; use one of: {}", req.voice, model.model, OPENAI_VOICES.join(", "))));
        }
        Ok(SpeechProduct { req, model, chars, endpoint, el_pico_per_credit })
    }

    pub fn cost_pico(&self) -> u128 {
        self.model.cost_pico(self.chars, self.el_pico_per_credit)
    }

    /// The credit multiplier the hold assumes for the voice (1 for OpenAI).
    pub fn voice_multiplier(&self) -> u64 {
        match self.req.provider {
            Provider::ElevenLabs => media_prices::elevenlabs_hold_multiplier(&self.req.voice),
            _ => 1,
        }
    }

    /// The most the call can cost: the characters at the model's rate × the voice's multiplier.
    pub fn bound_pico(&self) -> u128 {
        self.cost_pico() * u128::from(self.voice_multiplier())
    }
}

/// The charge of an ElevenLabs call once it answered: ElevenLabs' own bill, the
/// `character-cost` header (credits), noted when it differs from the gateway's count at the
/// model's rate (a voice multiplier). Without the header: the gateway's count when the voice is
/// known to be 1× (`multiplier` 1), else the hold's bound (the voice may be multiplied).
pub fn elevenlabs_metered(model: &SpeechModel, chars: u64, el_pico_per_credit: u128, multiplier: u64, head: &ProviderHead) -> Metered {
    let counted = model.elevenlabs_credits(chars);
    let reported = head.header("character-cost").and_then(|v| v.trim().parse::<u64>().ok());
    let (billed, exact, note) = match reported {
        Some(r) if r == counted => (r, true, None),
        Some(r) => (r, true, Some(format!("elevenlabs reported {r} credits, the gateway counted {counted} at the model's rate: billed elevenlabs' {r}"))),
        None if multiplier <= 1 => (counted, true, Some(format!("elevenlabs sent no character-cost header: billed the gateway's count, {counted} credits (a premade voice, 1×)"))),
        None => {
            let bound = counted.saturating_mul(multiplier);
            (bound, false, Some(format!("elevenlabs sent no character-cost header and the voice may be multiplied: billed the hold's bound, {bound} credits ({multiplier}× {counted})")))
        }
    };
    Metered { cost_pico_usd: billed as u128 * el_pico_per_credit, units: Units::Characters(chars), exact, note, warning: None }
}

impl Product for SpeechProduct {
    fn class(&self) -> &'static str {
        MEDIA_CLASS
    }

    fn meta(&self) -> CallMeta {
        CallMeta { provider: self.req.provider, model: self.model.model.to_string(), product: "speech" }
    }

    fn error_shape(&self) -> ErrorShape {
        match self.req.route {
            SpeechRoute::OpenAiCompatible => ErrorShape::OpenAi,
            SpeechRoute::Native => ErrorShape::Native,
        }
    }

    fn hold(&self, rate: &CreditRate) -> (HoldPlan, u64) {
        HoldPlan::fixed(rate.millicredits_for_pico_usd(self.bound_pico()), self.chars)
    }

    fn upstream(&self, _granted_units: u64) -> UpstreamRequest {
        let key = self.endpoint.api_key.expose();
        let body = Value::Object(self.req.body.clone());
        match self.req.provider {
            Provider::ElevenLabs => {
                let mut url = join(&self.endpoint.base_url, &format!("/v1/text-to-speech/{}/stream", self.req.voice));
                if let Some(f) = &self.req.output_format {
                    url.push_str(&format!("?output_format={f}"));
                }
                UpstreamRequest::json(url, vec![("xi-api-key".into(), key.to_string())], &body)
            }
            _ => UpstreamRequest::json(join(&self.endpoint.base_url, "/v1/audio/speech"), vec![("authorization".into(), format!("Bearer {key}"))], &body),
        }
    }

    fn upstream_error(&self, status: u16, body: &[u8]) -> ApiError {
        super::media::upstream_error(self.req.provider, status, body)
    }

    fn meter(self: Box<Self>, billing: Bill, _granted_units: u64) -> Box<dyn Meter> {
        let (model, chars, el, multiplier) = (self.model, self.chars, self.el_pico_per_credit, self.voice_multiplier());
        let cost = self.cost_pico();
        let provider = self.req.provider;
        Box::new(AudioMeter::new(
            billing,
            provider.as_str(),
            Box::new(move |head: &ProviderHead| match provider {
                Provider::ElevenLabs => elevenlabs_metered(model, chars, el, multiplier, head),
                _ => Metered::exact(cost, Units::Characters(chars)),
            }),
        ))
    }
}

#[cfg(test)]
#[path = "speech_tests.rs"]
mod tests;
