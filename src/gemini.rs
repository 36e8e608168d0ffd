//! Gemini's own API (`/v1beta/models/{model}:generateContent` and `:streamGenerateContent`):
//! parse → price → run on the metering engine, which renders the answer; and `:countTokens`,
//! answered by Google and never charged. Everything they decide is
//! `broker_core::products::{gemini_native, gemini_count}`.

use crate::account::caller_key;
use crate::context::Ctx;
use crate::fetch;
use crate::http::{self, read_body, HandlerResult};
use crate::meter;
use crate::payer::{gemini_payer, Payer};
use broker_core::error::ApiError;
use broker_core::product::Product;
use broker_core::products::gemini_count;
use broker_core::products::gemini_native::{self, GeminiProduct};
use broker_core::provider::Provider;
use worker::Request;

pub async fn generate(ctx: &Ctx, mut req: Request, model: &str, stream: bool) -> HandlerResult {
    let body = read_body(&mut req, ctx.settings().max_body_bytes).await?;
    let (controls, body) = meter::controls(&req, body)?;
    let alt = req.url().ok().and_then(|u| u.query_pairs().find(|(k, _)| k == "alt").map(|(_, v)| v.into_owned()));
    let product = gemini_product(ctx, model, stream, alt.as_deref(), &body)?;
    meter::run(ctx, gemini_payer(ctx, &req)?, product, controls).await
}

/// A Gemini call parsed and priced (the call itself and `POST /v1/quote` both start here).
pub fn gemini_product(ctx: &Ctx, model: &str, stream: bool, alt: Option<&str>, body: &[u8]) -> Result<Box<dyn Product>, ApiError> {
    let parsed = gemini_native::parse(model, stream, alt, body)?;
    Ok(Box::new(GeminiProduct::price(parsed, &ctx.price_day(), ctx.endpoint(Provider::Google)?)?))
}

/// `:countTokens`: an active key (checked like the account reads), a prompt `:generateContent`
/// would accept, Google's count passed on. Nothing is held or charged.
pub async fn count_tokens(ctx: &Ctx, mut req: Request, model: &str) -> HandlerResult {
    let body = read_body(&mut req, ctx.settings().max_body_bytes).await?;
    let count = gemini_count::parse(model, &body, &ctx.price_day())?;
    match gemini_payer(ctx, &req)? {
        Payer::Key(key) => caller_key(ctx, &key, 0, 0).await?,
        Payer::RapidApi { .. } => return Err(ApiError::unauthorized("send your API key in x-goog-api-key")),
    };
    let mut sent = fetch::send(&count.upstream(&ctx.endpoint(Provider::Google)?), ctx.settings().upstream_timeout_ms).await?;
    let status = sent.response.status_code();
    let answer = sent.body().await.map_err(|e| ApiError::upstream(format!("google's countTokens answer broke off: {e}")))?;
    Ok(http::bytes(200, "application/json; charset=UTF-8", count.answer(status, &answer)?, &[]))
}
