//! `POST /v1/quote` (`broker_core::quote`): the call's product built exactly as its route builds
//! it, and its hold quoted for the key's balance (or the one given). Nothing is sent or held.

use crate::account::{caller_key, catalogue};
use crate::chat::{chat_product, responses_product};
use crate::context::Ctx;
use crate::gemini::gemini_product;
use crate::http::{json, read_body, HandlerResult};
use crate::media::{embeddings_product, images_product, music_product, speech_product};
use crate::payer::api_key;
use broker_core::chat::Route;
use broker_core::error::ApiError;
use broker_core::product::Product;
use broker_core::products::images::ImageRoute;
use broker_core::products::speech::SpeechRoute;
use broker_core::quote::{self, QuoteRequest};
use broker_core::routes::Endpoint;
use worker::Request;

pub async fn quote(ctx: &Ctx, mut req: Request) -> HandlerResult {
    let body = read_body(&mut req, ctx.settings().max_body_bytes).await?;
    let k = caller_key(ctx, &api_key(ctx, &req, false)?, 0, 0).await?;
    let q = quote::parse(&body)?;
    let product = product(ctx, &req, &q)?;
    let (plan, units) = product.hold(&ctx.settings().rate);
    let meta = product.meta();
    let prices = catalogue(ctx).into_iter().find(|m| m["provider"] == meta.provider.as_str() && m["model"] == meta.model.as_str());
    let (balance, from_key) = q.balance_mc.map_or((k.balance_mc, true), |b| (b, false));
    // The cap as the call would have it: `X-Max-Credits`, the quote's or the body's `max_credits`.
    let header = broker_core::spend_cap::parse_header(req.headers().get(broker_core::spend_cap::HEADER).ok().flatten().as_deref())?;
    let cap = broker_core::spend_cap::combine(header, q.cap_mc);
    // A sub-key's call is admitted within its caps too (admit_v6): quoted the same way.
    let room = k.sub.as_ref().and_then(|s| s.room(&broker_core::call::Call::today(ctx)));
    Ok(json(200, &quote::quote_json(&q, &meta, &plan, units, balance, from_key, prices, cap, room), &[]))
}

fn product(ctx: &Ctx, req: &Request, q: &QuoteRequest) -> Result<Box<dyn Product>, ApiError> {
    use Endpoint::*;
    match q.endpoint {
        NativeChat => chat_product(ctx, req, Route::Native, &q.body),
        OpenAiChatCompletions => chat_product(ctx, req, Route::OpenAiCompatible, &q.body),
        AnthropicMessages => chat_product(ctx, req, Route::AnthropicCompatible, &q.body),
        OpenAiResponses => responses_product(ctx, &q.body),
        GeminiGenerateContent => gemini_product(ctx, q.param("model"), false, None, &q.body),
        GeminiStreamGenerateContent => gemini_product(ctx, q.param("model"), true, Some("sse"), &q.body),
        OpenAiImages => images_product(ctx, ImageRoute::OpenAiCompatible, &q.body),
        NativeImage => images_product(ctx, ImageRoute::Native, &q.body),
        OpenAiSpeech => speech_product(ctx, SpeechRoute::OpenAiCompatible, &q.body),
        NativeTts => speech_product(ctx, SpeechRoute::Native, &q.body),
        Music => music_product(ctx, &q.body),
        OpenAiEmbeddings => embeddings_product(ctx, &q.body),
        other => Err(ApiError::invalid(format!("{other:?} is not a metered route"))),
    }
}
