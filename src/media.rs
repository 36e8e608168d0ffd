//! The media routes (images, speech, music) and embeddings: parse → price → run on the metering engine, which
//! renders the answer. Everything they decide is `broker_core::products::{images, speech, music}`.

use crate::context::Ctx;
use crate::http::{read_body, HandlerResult};
use crate::meter;
use crate::payer::payer;
use broker_core::products::embeddings::{self, EmbeddingsProduct};
use broker_core::products::images::{self, ImageRoute, ImagesProduct};
use broker_core::products::music::{self, MusicProduct};
use broker_core::products::speech::{self, SpeechProduct, SpeechRoute};
use broker_core::provider::Provider;
use broker_core::error::ApiError;
use broker_core::product::Product;
use worker::Request;

/// `POST /v1/images/generations` (OpenAI's shape) and `POST /v1/image` (the gateway's).
pub async fn images(ctx: &Ctx, mut req: Request, route: ImageRoute) -> HandlerResult {
    let body = read_body(&mut req, ctx.settings().max_body_bytes).await?;
    let (controls, body) = meter::controls(&req, body)?;
    let product = images_product(ctx, route, &body)?;
    meter::run(ctx, payer(ctx, &req, false)?, product, controls).await
}

pub fn images_product(ctx: &Ctx, route: ImageRoute, body: &[u8]) -> Result<Box<dyn Product>, ApiError> {
    let parsed = match route {
        ImageRoute::OpenAiCompatible => images::parse_openai(body),
        ImageRoute::Native => images::parse_native(body),
    }?;
    Ok(Box::new(ImagesProduct::price(parsed, &ctx.price_day(), ctx.endpoint(Provider::OpenAi)?)?))
}

/// `POST /v1/tts` (ElevenLabs' fields) and `POST /v1/audio/speech` (OpenAI's shape).
pub async fn speech(ctx: &Ctx, mut req: Request, route: SpeechRoute) -> HandlerResult {
    let body = read_body(&mut req, ctx.settings().max_body_bytes).await?;
    let (controls, body) = meter::controls(&req, body)?;
    let product = speech_product(ctx, route, &body)?;
    meter::run(ctx, payer(ctx, &req, false)?, product, controls).await
}

pub fn speech_product(ctx: &Ctx, route: SpeechRoute, body: &[u8]) -> Result<Box<dyn Product>, ApiError> {
    let parsed = match route {
        SpeechRoute::Native => speech::parse_native(body),
        SpeechRoute::OpenAiCompatible => speech::parse_openai(body),
    }?;
    let endpoint = ctx.endpoint(parsed.provider)?;
    Ok(Box::new(SpeechProduct::price(parsed, &ctx.price_day(), endpoint, ctx.settings().elevenlabs_pico_per_credit)?))
}

/// `POST /v1/music`.
pub async fn music(ctx: &Ctx, mut req: Request) -> HandlerResult {
    let body = read_body(&mut req, ctx.settings().max_body_bytes).await?;
    let (controls, body) = meter::controls(&req, body)?;
    let product = music_product(ctx, &body)?;
    meter::run(ctx, payer(ctx, &req, false)?, product, controls).await
}

pub fn music_product(ctx: &Ctx, body: &[u8]) -> Result<Box<dyn Product>, ApiError> {
    Ok(Box::new(MusicProduct::price(music::parse(body)?, ctx.endpoint(Provider::Stability)?)?))
}

/// `POST /v1/embeddings` (OpenAI's shape).
pub async fn embeddings(ctx: &Ctx, mut req: Request) -> HandlerResult {
    let body = read_body(&mut req, ctx.settings().max_body_bytes).await?;
    let (controls, body) = meter::controls(&req, body)?;
    let product = embeddings_product(ctx, &body)?;
    meter::run(ctx, payer(ctx, &req, false)?, product, controls).await
}

pub fn embeddings_product(ctx: &Ctx, body: &[u8]) -> Result<Box<dyn Product>, ApiError> {
    Ok(Box::new(EmbeddingsProduct::price(embeddings::parse(body)?, ctx.endpoint(Provider::OpenAi)?)?))
}
