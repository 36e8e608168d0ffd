//! Music on the metering engine: Stability's Stable Audio text-to-audio through `POST /v1/music`.
//! Parse → price ([`MusicProduct::price`]) → run → render ([`AudioMeter`]: the audio passed on
//! as it arrives, with its content type).
//!
//! A flat price per generation by model ([`media_prices::MUSIC_MODELS`]) up to the step count
//! that price is known for (more steps: a 400); the hold is that price. Stability bills a generation that succeeded: a 200 is a generation, charged in full
//! even if its body then breaks off; an error status releases the hold.
//!
//! Stability takes `multipart/form-data` (even without a file); the gateway builds it from the
//! customer's JSON fields.

use super::audio_meter::AudioMeter;
use super::media::{allow_only, object, opt_choice, opt_int, opt_number, opt_str, req_text, split_provider};
use crate::error::{ApiError, ErrorShape};
use crate::media_prices::{self, MusicModel, MUSIC_MAX_SECONDS, STABILITY_DEFAULT_MODEL};
use crate::metering::{CallMeta, HoldPlan, Metered, Units, MEDIA_CLASS};
use crate::money::CreditRate;
use crate::payer::Bill;
use crate::product::{Meter, Product, ProviderHead, UpstreamRequest};
use crate::provider::Provider;
use crate::providers::{join, Endpoint};

const FIELDS: &[&str] = &["prompt", "model", "duration", "output_format", "seed", "steps"];

/// Longest prompt accepted (Stability's documented limit for its generation prompts; unconfirmed
/// for audio, where a longer one is refused by Stability and the hold released).
pub const PROMPT_MAX_CHARS: usize = 10_000;

/// Stability's largest seed.
const SEED_MAX: u64 = 4_294_967_294;

#[derive(Debug, Clone, PartialEq)]
pub struct MusicRequest {
    pub prompt: String,
    pub model: String,
    /// Seconds; Stability's default (its longest clip) when absent.
    pub duration: Option<f64>,
    pub output_format: Option<String>,
    pub seed: Option<u64>,
    pub steps: Option<u64>,
}

/// `POST /v1/music`: `{prompt, model?, duration?, output_format?, seed?, steps?}`.
pub fn parse(body: &[u8]) -> Result<MusicRequest, ApiError> {
    let m = object(body)?;
    allow_only(&m, FIELDS, "/v1/music")?;
    let prompt = req_text(&m, "prompt")?.to_string();
    let chars = prompt.chars().count();
    if chars > PROMPT_MAX_CHARS {
        return Err(ApiError::invalid(format!("`prompt` has {chars} characters; at most {PROMPT_MAX_CHARS}")));
    }
    let model = match opt_str(&m, "model")? {
        Some(name) => split_provider(name, &[Provider::Stability])?.1,
        None => STABILITY_DEFAULT_MODEL.to_string(),
    };
    Ok(MusicRequest {
        prompt,
        model,
        duration: opt_number(&m, "duration", 1.0, MUSIC_MAX_SECONDS)?,
        output_format: opt_choice(&m, "output_format", &["mp3", "wav"])?.map(str::to_string),
        seed: opt_int(&m, "seed", 0, SEED_MAX)?,
        steps: opt_int(&m, "steps", 1, 1000)?,
    })
}

/// A music request, priced: its model is in the table and its steps in the model's range.
#[derive(Debug)]
pub struct MusicProduct {
    pub req: MusicRequest,
    pub model: &'static MusicModel,
    pub endpoint: Endpoint,
}

impl MusicProduct {
    pub fn price(req: MusicRequest, endpoint: Endpoint) -> Result<MusicProduct, ApiError> {
        let model = media_prices::music_model(&req.model)?;
        if let Some(s) = req.steps {
            let (lo, hi) = model.steps;
            if !(lo..=hi).contains(&s) {
                return Err(ApiError::invalid(format!("`steps` must be from {lo} to {hi} for {}", model.model)));
            }
            if s > model.priced_steps {
                return Err(ApiError::invalid(format!(
                    "`steps` {s} is not offered for {}: its price is known up to {} steps; use {lo} to {}",
                    model.model, model.priced_steps, model.priced_steps
                )));
            }
        }
        Ok(MusicProduct { req, model, endpoint })
    }

    pub fn cost_pico(&self) -> u128 {
        self.model.usd_micro_per_generation as u128 * 1_000_000
    }

    /// The form fields sent to Stability, in order.
    pub fn form(&self) -> Vec<(&'static str, String)> {
        let r = &self.req;
        let mut f = vec![("prompt", r.prompt.clone()), ("model", self.model.model.to_string())];
        if let Some(d) = r.duration {
            // Whole seconds without a fraction, as a form field would carry them.
            f.push(("duration", if d.fract() == 0.0 { format!("{}", d as u64) } else { d.to_string() }));
        }
        if let Some(o) = &r.output_format {
            f.push(("output_format", o.clone()));
        }
        if let Some(s) = r.seed {
            f.push(("seed", s.to_string()));
        }
        if let Some(s) = r.steps {
            f.push(("steps", s.to_string()));
        }
        f
    }
}

/// A `multipart/form-data` body of text fields, and its boundary (one that occurs in no value).
pub fn multipart(fields: &[(&str, String)]) -> (String, Vec<u8>) {
    let mut boundary = "broker-form-boundary-7MA4YWxk".to_string();
    while fields.iter().any(|(_, v)| v.contains(&boundary)) {
        boundary.push('x');
    }
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").as_bytes());
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (boundary, body)
}

impl Product for MusicProduct {
    fn class(&self) -> &'static str {
        MEDIA_CLASS
    }

    fn meta(&self) -> CallMeta {
        CallMeta { provider: Provider::Stability, model: self.model.model.to_string(), product: "music" }
    }

    fn error_shape(&self) -> ErrorShape {
        ErrorShape::Native
    }

    fn hold(&self, rate: &CreditRate) -> (HoldPlan, u64) {
        HoldPlan::fixed(rate.millicredits_for_pico_usd(self.cost_pico()), 1)
    }

    fn upstream(&self, _granted_units: u64) -> UpstreamRequest {
        let (boundary, body) = multipart(&self.form());
        UpstreamRequest {
            url: join(&self.endpoint.base_url, "/v2beta/audio/stable-audio-2/text-to-audio"),
            headers: vec![
                ("authorization".into(), format!("Bearer {}", self.endpoint.api_key.expose())),
                ("accept".into(), "audio/*".into()),
                ("content-type".into(), format!("multipart/form-data; boundary={boundary}")),
            ],
            body,
        }
    }

    fn upstream_error(&self, status: u16, body: &[u8]) -> ApiError {
        super::media::upstream_error(Provider::Stability, status, body)
    }

    fn meter(self: Box<Self>, billing: Bill, _granted_units: u64) -> Box<dyn Meter> {
        let cost = self.cost_pico();
        Box::new(AudioMeter::new(
            billing,
            "stability",
            Box::new(move |head: &ProviderHead| {
                let mut m = Metered::exact(cost, Units::Generations(1));
                // Stability's image API flags filtered results this way; said for audio too (unconfirmed).
                if let Some(r) = head.header("finish-reason").filter(|r| !r.eq_ignore_ascii_case("SUCCESS")) {
                    m.note = Some(format!("stability's finish-reason was {r}"));
                }
                m
            }),
        ))
    }
}

#[cfg(test)]
#[path = "music_tests.rs"]
mod tests;
