//! Images on the metering engine: OpenAI image generation through `POST /v1/images/generations`
//! (OpenAI's shape: the official SDKs' `images.generate` works unchanged) and `POST /v1/image`
//! (the gateway's own shape). Parse → price ([`ImagesProduct::price`]) → run → render
//! ([`ImagesMeter`]).
//!
//! - **Hold**: `n` × the worst case of the size and quality asked (`auto`: the dearest). For
//!   token-billed models a bound from the request: every prompt byte (+ a small overhead) as a
//!   text token, plus each image's output tokens for its size and quality
//!   ([`media_prices::ImageModel::output_tokens`]); for per-image models the larger of that and
//!   `n` × the image price (their usage is a floor, see [`ImageBilling::PerImage`]).
//! - **Meter**: the provider's whole JSON answer (megabytes of `b64_json`) is read, its `usage`
//!   (token-billed) or its `data` items (per-image) are counted, and the body goes to the client
//!   unchanged with an `x_broker` object spliced in (no re-serialization of the images).
//! - An answer cut off after the 200 is billed the bound: the images were generated and their
//!   usage is unknown. An answer that is not an image generation at all releases the hold.

use super::media::{allow_only, broken_off, object, opt_choice, opt_int, opt_str, present, req_text, split_provider, start_json_answer};
use crate::error::{ApiError, ErrorShape};
use crate::media_prices::{self, ImageBilling, ImageModel, ImageQuality, ImageSize, ImageTokenRates, IMAGE_N_MAX, IMAGE_PROMPT_MAX_CHARS};
use crate::metering::{CallMeta, HoldPlan, Metered, Units, MEDIA_CLASS};
use crate::money::CreditRate;
use crate::payer::Bill;
use crate::product::{End, Finish, Meter, Product, ProviderHead, StreamHead, UpstreamRequest, WholeAnswer};
use crate::provider::Provider;
use crate::providers::{join, Endpoint};
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// Which customer API a request came through; decides the answer and error shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageRoute {
    /// `/v1/images/generations`: OpenAI's request, answer and error shapes.
    OpenAiCompatible,
    /// `/v1/image`: the gateway's own shape.
    Native,
}

const OPENAI_FIELDS: &[&str] = &["model", "prompt", "n", "size", "quality", "output_format", "output_compression", "background", "moderation", "response_format", "user", "stream"];
const NATIVE_FIELDS: &[&str] = &["provider", "model", "prompt", "n", "size", "quality", "output_format", "output_compression", "background", "moderation"];

/// Tokens a prompt may cost beyond its UTF-8 bytes (a text token is at least one byte; the model
/// may wrap the prompt in a few of its own). Part of the hold's bound, not of any charge.
pub const PROMPT_OVERHEAD_TOKENS: u64 = 64;

#[derive(Debug, Clone, PartialEq)]
pub struct ImageRequest {
    pub route: ImageRoute,
    pub model: String,
    pub prompt: String,
    pub n: u64,
    /// `None`: `auto` (the model picks; held at the dearest).
    pub size: Option<ImageSize>,
    /// `None`: `auto` (the model picks; held at the dearest).
    pub quality: Option<ImageQuality>,
    pub transparent: bool,
    /// The provider's request body: the checked fields, forwarded.
    pub body: Map<String, Value>,
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::invalid(message)
}

/// `POST /v1/images/generations`.
pub fn parse_openai(body: &[u8]) -> Result<ImageRequest, ApiError> {
    let m = object(body)?;
    allow_only(&m, OPENAI_FIELDS, "/v1/images/generations")?;
    if opt_choice(&m, "response_format", &["b64_json", "url"])? == Some("url") {
        return Err(invalid("`response_format` `url` is not supported: the GPT image models answer only `b64_json`"));
    }
    match present(&m, "stream") {
        None | Some(Value::Bool(false)) => {}
        Some(_) => return Err(invalid("`stream` is not supported on /v1/images/generations: leave it out (the answer comes whole)")),
    }
    if present(&m, "model").is_none() {
        return Err(invalid("`model` is required: OpenAI's default, dall-e-2, was retired on 2026-05-12"));
    }
    fields(&m, ImageRoute::OpenAiCompatible)
}

/// `POST /v1/image`.
pub fn parse_native(body: &[u8]) -> Result<ImageRequest, ApiError> {
    let m = object(body)?;
    allow_only(&m, NATIVE_FIELDS, "/v1/image")?;
    if let Some(p) = opt_str(&m, "provider")? {
        if p != "openai" {
            return Err(invalid(format!("`provider` `{p}` does not generate images here; the image provider is `openai`")));
        }
    }
    fields(&m, ImageRoute::Native)
}

/// The fields both routes share, checked, and the provider body built from them.
fn fields(m: &Map<String, Value>, route: ImageRoute) -> Result<ImageRequest, ApiError> {
    let (_, model) = split_provider(req_text(m, "model")?, &[Provider::OpenAi])?;
    let prompt = req_text(m, "prompt")?.to_string();
    let chars = prompt.chars().count();
    if chars > IMAGE_PROMPT_MAX_CHARS {
        return Err(invalid(format!("`prompt` has {chars} characters; the GPT image models take at most {IMAGE_PROMPT_MAX_CHARS}")));
    }
    let n = opt_int(m, "n", 1, IMAGE_N_MAX)?.unwrap_or(1);
    let size = match opt_str(m, "size")? {
        None | Some("auto") => None,
        Some(s) => Some(ImageSize::parse(s).ok_or_else(|| invalid(format!("`size` `{s}` is not supported; use 1024x1024, 1024x1536, 1536x1024 or auto")))?),
    };
    let quality = match opt_str(m, "quality")? {
        None | Some("auto") => None,
        Some(q) => Some(ImageQuality::parse(q).ok_or_else(|| invalid(format!("`quality` `{q}` is not supported; use low, medium, high or auto (standard and hd were dall-e's)")))?),
    };
    let format = opt_choice(m, "output_format", &["png", "jpeg", "webp"])?;
    if opt_int(m, "output_compression", 0, 100)?.is_some() && !matches!(format, Some("jpeg" | "webp")) {
        return Err(invalid("`output_compression` applies only to `output_format` jpeg or webp"));
    }
    let background = opt_choice(m, "background", &["transparent", "opaque", "auto"])?;
    if background == Some("transparent") && format == Some("jpeg") {
        return Err(invalid("a transparent `background` needs `output_format` png or webp"));
    }
    opt_choice(m, "moderation", &["low", "auto"])?;
    opt_str(m, "user")?;
    let mut body = Map::new();
    body.insert("model".into(), json!(model));
    body.insert("prompt".into(), json!(prompt));
    body.insert("n".into(), json!(n));
    for k in ["size", "quality", "output_format", "output_compression", "background", "moderation", "user"] {
        if let Some(v) = present(m, k) {
            body.insert(k.into(), v.clone());
        }
    }
    Ok(ImageRequest { route, model, prompt, n, size, quality, transparent: background == Some("transparent"), body })
}

/// An image request, priced: its model is servable today and supports what was asked.
#[derive(Debug)]
pub struct ImagesProduct {
    pub req: ImageRequest,
    pub model: &'static ImageModel,
    pub endpoint: Endpoint,
}

impl ImagesProduct {
    pub fn price(req: ImageRequest, today: &str, endpoint: Endpoint) -> Result<ImagesProduct, ApiError> {
        let model = media_prices::image_model(&req.model, today)?;
        if req.transparent && !model.transparent {
            return Err(invalid(format!("`{}` does not support a transparent background; use opaque or auto", model.model)));
        }
        Ok(ImagesProduct { req, model, endpoint })
    }

    /// The sizes and qualities the call may produce (`auto`: any).
    fn choices(&self) -> impl Iterator<Item = (ImageQuality, ImageSize)> + '_ {
        let qualities: Vec<ImageQuality> = self.req.quality.map_or(ImageQuality::ALL.to_vec(), |q| vec![q]);
        let sizes: Vec<ImageSize> = self.req.size.map_or(ImageSize::ALL.to_vec(), |s| vec![s]);
        qualities.into_iter().flat_map(move |q| sizes.clone().into_iter().map(move |s| (q, s)))
    }

    /// The most `n` images of `quality` × `size` can cost, pico-USD.
    fn bound_for(&self, quality: ImageQuality, size: ImageSize) -> u128 {
        let t = &self.model.tokens;
        let n = self.req.n as u128;
        let text = (self.req.prompt.len() as u64 + PROMPT_OVERHEAD_TOKENS) as u128 * t.text_input.max(t.image_input) as u128;
        let output = n * self.model.output_tokens_per_image(quality, size) as u128 * t.image_output.max(t.text_output) as u128;
        let per_image = self.model.usd_micro_per_image(quality, size).map_or(0, |usd| n * usd as u128 * 1_000_000);
        (text + output).max(per_image)
    }

    /// The hold: the worst case over every size and quality the call may produce.
    pub fn bound_pico(&self) -> u128 {
        self.choices().map(|(q, s)| self.bound_for(q, s)).max().unwrap_or(0)
    }

    /// The dearest size and quality the call may produce (what an `auto` answer is priced at
    /// when the provider does not say what it made).
    fn dearest(&self) -> (ImageQuality, ImageSize) {
        self.choices().max_by_key(|(q, s)| self.bound_for(*q, *s)).unwrap_or((ImageQuality::High, ImageSize::Portrait))
    }
}

impl Product for ImagesProduct {
    fn class(&self) -> &'static str {
        MEDIA_CLASS
    }

    fn meta(&self) -> CallMeta {
        CallMeta { provider: Provider::OpenAi, model: self.model.model.to_string(), product: "image" }
    }

    fn error_shape(&self) -> ErrorShape {
        match self.req.route {
            ImageRoute::OpenAiCompatible => ErrorShape::OpenAi,
            ImageRoute::Native => ErrorShape::Native,
        }
    }

    fn hold(&self, rate: &CreditRate) -> (HoldPlan, u64) {
        HoldPlan::fixed(rate.millicredits_for_pico_usd(self.bound_pico()), self.req.n)
    }

    fn upstream(&self, _granted_units: u64) -> UpstreamRequest {
        let auth = vec![("authorization".into(), format!("Bearer {}", self.endpoint.api_key.expose()))];
        UpstreamRequest::json(join(&self.endpoint.base_url, "/v1/images/generations"), auth, &Value::Object(self.req.body.clone()))
    }

    fn upstream_error(&self, status: u16, body: &[u8]) -> ApiError {
        super::media::upstream_error(Provider::OpenAi, status, body)
    }

    fn meter(self: Box<Self>, billing: Bill, _granted_units: u64) -> Box<dyn Meter> {
        Box::new(ImagesMeter { product: *self, billing, body: Vec::new() })
    }
}

/// Token counts of an image generation by class, from the answer's `usage`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImageTokens {
    pub text_input: u64,
    pub image_input: u64,
    pub image_output: u64,
    pub text_output: u64,
}

impl ImageTokens {
    /// `usage`: `input_tokens` split by `input_tokens_details.{text_tokens,image_tokens}`,
    /// `output_tokens` split by `output_tokens_details.{image_tokens,text_tokens}` when present.
    /// Tokens no detail accounts for are billed at the dearer class (image).
    pub fn from_usage(u: &Value) -> ImageTokens {
        let n = |p: &str| u.pointer(p).and_then(Value::as_u64).unwrap_or(0);
        let (text_input, output_text) = (n("/input_tokens_details/text_tokens"), n("/output_tokens_details/text_tokens"));
        let input_rest = n("/input_tokens").saturating_sub(text_input);
        let output_rest = n("/output_tokens").saturating_sub(output_text);
        ImageTokens {
            text_input,
            image_input: n("/input_tokens_details/image_tokens").max(input_rest),
            image_output: n("/output_tokens_details/image_tokens").max(output_rest),
            text_output: output_text,
        }
    }

    pub fn cost_pico(&self, r: &ImageTokenRates) -> u128 {
        self.text_input as u128 * r.text_input as u128 + self.image_input as u128 * r.image_input as u128 + self.image_output as u128 * r.image_output as u128 + self.text_output as u128 * r.text_output as u128
    }

    fn to_json(self) -> Value {
        json!({ "text_input": self.text_input, "image_input": self.image_input, "image_output": self.image_output, "text_output": self.text_output })
    }
}

/// What the meter reads of an answer; the images themselves are skipped, never copied.
#[derive(Deserialize)]
struct Answer {
    data: Option<Vec<serde::de::IgnoredAny>>,
    usage: Option<Value>,
    size: Option<String>,
    quality: Option<String>,
}

pub struct ImagesMeter {
    product: ImagesProduct,
    billing: Bill,
    body: Vec<u8>,
}

fn usd(pico: u128) -> f64 {
    pico as f64 / 1e12
}

impl ImagesMeter {
    /// What a call whose usage will never be known is billed: the bound (the hold).
    fn bound(&self, why: String) -> Metered {
        let (quality, size) = self.product.dearest();
        let detail = json!({ "size": size.as_str(), "quality": quality.as_str(), "billing": "upper bound" });
        Metered { cost_pico_usd: self.product.bound_pico(), units: Units::Images { count: self.product.req.n, detail }, exact: false, note: Some(why), warning: None }
    }

    /// Meters a complete answer; `None`: nothing billable in it.
    fn metered(&self, a: &Answer) -> Option<Metered> {
        let model = self.product.model;
        let count = a.data.as_ref().map_or(0, |d| d.len() as u64);
        let tokens = a.usage.as_ref().filter(|u| u.is_object()).map(ImageTokens::from_usage);
        let token_cost = tokens.map(|t| t.cost_pico(&model.tokens));
        let (dq, ds) = self.product.dearest();
        let quality = a.quality.as_deref().and_then(ImageQuality::parse).or(self.product.req.quality).unwrap_or(dq);
        let size = a.size.as_deref().and_then(ImageSize::parse).or(self.product.req.size).unwrap_or(ds);
        let mut detail = json!({ "size": size.as_str(), "quality": quality.as_str() });
        if let Some(t) = tokens {
            detail["tokens"] = t.to_json();
        }
        match model.billing {
            ImageBilling::PerImage { .. } => {
                let per_image = model.usd_micro_per_image(quality, size).unwrap_or(0);
                let images_cost = count as u128 * per_image as u128 * 1_000_000;
                if count == 0 && token_cost.is_none() {
                    return None;
                }
                detail["billing"] = json!("per_image");
                detail["usd_per_image"] = json!(per_image as f64 / 1e6);
                let mut m = Metered::exact(images_cost, Units::Images { count, detail });
                if let Some(c) = token_cost.filter(|c| *c > images_cost) {
                    m.cost_pico_usd = c;
                    m.note = Some(format!("the reported token usage (${}) cost more than {count} image(s) at the published price (${}): billed the usage", usd(c), usd(images_cost)));
                }
                Some(m)
            }
            ImageBilling::Tokens => {
                detail["billing"] = json!("tokens");
                match token_cost {
                    Some(c) => Some(Metered::exact(c, Units::Images { count, detail })),
                    None if count == 0 => None,
                    None => Some(self.bound("the answer reported no usage: billed the upper bound (the hold)".into())),
                }
            }
        }
    }

    /// The client's answer: OpenAI's body unchanged with `x_broker` spliced in, or the gateway's shape.
    fn render(&mut self, count: u64, m: &Metered) -> WholeAnswer {
        let charge = self.billing.charge(m.cost_pico_usd);
        let body = match self.product.req.route {
            ImageRoute::OpenAiCompatible => splice_member(std::mem::take(&mut self.body), "x_broker", &self.billing.broker_json(&charge)),
            ImageRoute::Native => {
                let mut v: Value = serde_json::from_slice(&self.body).unwrap_or(Value::Null);
                let take = |v: &mut Value, k: &str| v.get_mut(k).map(Value::take).unwrap_or(Value::Null);
                let mut out = json!({
                    "id": self.billing.request_id,
                    "object": "image.generation",
                    "provider": "openai",
                    "model": self.product.model.model,
                    "created": take(&mut v, "created"),
                    "images": count,
                    "data": take(&mut v, "data"),
                    "units": m.units.to_json(),
                    "request_id": self.billing.request_id,
                });
                if let Some(o) = out.as_object_mut() {
                    o.extend(self.billing.native_fields(&charge));
                }
                out.to_string().into_bytes()
            }
        };
        WholeAnswer { status: 200, content_type: "application/json".into(), headers: self.billing.credit_headers(&charge), body }
    }
}

/// `{..., "<name>": <value>}`: a member added before the object's closing brace, every other
/// byte kept as the provider sent it (trailing white space aside).
pub fn splice_member(mut body: Vec<u8>, name: &str, value: &Value) -> Vec<u8> {
    while body.last().is_some_and(u8::is_ascii_whitespace) {
        body.pop();
    }
    if body.last() != Some(&b'}') {
        return body;
    }
    body.pop();
    let empty = body.iter().rev().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    if !empty {
        body.push(b',');
    }
    body.extend_from_slice(format!("{}:{value}}}", Value::from(name)).as_bytes());
    body
}

impl Meter for ImagesMeter {
    fn stream_head(&self) -> Option<StreamHead> {
        None
    }

    fn start(&mut self, head: &ProviderHead) -> Result<(), ApiError> {
        start_json_answer(head, &mut self.body)
    }

    fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        self.body.extend_from_slice(chunk);
        Vec::new()
    }

    fn finish(&mut self, end: End) -> Finish {
        if end != End::Complete {
            // The provider answered 200: the images exist and their usage is lost with the body.
            let m = self.bound(format!("{}; usage never read: billed the upper bound (the hold)", end.describe()));
            return broken_off(&self.billing, &end, m, ", since the images were generated");
        }
        let starts_as_object = self.body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
        let parsed = serde_json::from_slice::<Answer>(&self.body).ok().filter(|a| starts_as_object && a.data.is_some());
        let metered = parsed.as_ref().and_then(|a| self.metered(a).map(|m| (a.data.as_ref().map_or(0, |d| d.len() as u64), m)));
        match metered {
            Some((count, m)) => {
                let answer = self.render(count, &m);
                Finish { tail: Vec::new(), answer: Ok(answer), metered: Some(m) }
            }
            None => {
                let e = ApiError::upstream("openai's answer was not an image generation the gateway can read; nothing was charged").public();
                Finish { tail: Vec::new(), answer: Err(e), metered: None }
            }
        }
    }
}

#[cfg(test)]
#[path = "images_tests.rs"]
mod tests;
