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
use worker::Request;

/// `POST /v1/images/generations` (OpenAI's shape) and `POST /v1/image` (the gateway's).
pub async fn images(ctx: &Ctx, mut req: Request, route: ImageRoute) -> HandlerResult {
    let body = read_body(&mut req, ctx.settings().max_body_bytes).await?;
    let parsed = match route {
        ImageRoute::OpenAiCompatible => images::parse_openai(&body),
        ImageRoute::Native => images::parse_native(&body),
    }?;
    let product = ImagesProduct::price(parsed, &ctx.price_day(), ctx.endpoint(Provider::OpenAi)?)?;
    meter::run(ctx, payer(ctx, &req, false)?, Box::new(product)).await
}

/// `POST /v1/tts` (ElevenLabs' fields) and `POST /v1/audio/speech` (OpenAI's shape).
pub async fn speech(ctx: &Ctx, mut req: Request, route: SpeechRoute) -> HandlerResult {
    let body = read_body(&mut req, ctx.settings().max_body_bytes).await?;
    let parsed = match route {
        SpeechRoute::Native => speech::parse_native(&body),
        SpeechRoute::OpenAiCompatible => speech::parse_openai(&body),
    }?;
    let endpoint = ctx.endpoint(parsed.provider)?;
    let product = SpeechProduct::price(parsed, &ctx.price_day(), endpoint, ctx.settings().elevenlabs_pico_per_credit)?;
    meter::run(ctx, payer(ctx, &req, false)?, Box::new(product)).await
}

/// `POST /v1/music`.
pub async fn music(ctx: &Ctx, mut req: Request) -> HandlerResult {
    let body = read_body(&mut req, ctx.settings().max_body_bytes).await?;
    let product = MusicProduct::price(music::parse(&body)?, ctx.endpoint(Provider::Stability)?)?;
    meter::run(ctx, payer(ctx, &req, false)?, Box::new(product)).await
}

/// `POST /v1/embeddings` (OpenAI's shape).
pub async fn embeddings(ctx: &Ctx, mut req: Request) -> HandlerResult {
    let body = read_body(&mut req, ctx.settings().max_body_bytes).await?;
    let product = EmbeddingsProduct::price(embeddings::parse(&body)?, ctx.endpoint(Provider::OpenAi)?)?;
    meter::run(ctx, payer(ctx, &req, false)?, Box::new(product)).await
}
