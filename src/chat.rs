//! The chat routes: parse → price → run on the metering engine (which renders the answer); and
//! Anthropic's count_tokens, answered by Anthropic and never charged; and the Responses API
//! (chat's engine in OpenAI's Responses shape).

use crate::account::caller_key;
use crate::context::Ctx;
use crate::fetch;
use crate::http::{self, read_body, HandlerResult};
use crate::meter;
use crate::payer::{api_key, payer};
use broker_core::chat::{self, betas, Route};
use broker_core::products::chat::ChatProduct;
use broker_core::products::responses::ResponsesProduct;
use broker_core::products::count_tokens;
use broker_core::provider::Provider;
use broker_core::error::ApiError;
use broker_core::product::Product;
use worker::Request;

fn anthropic_betas(req: &Request) -> Result<betas::Betas, ApiError> {
    betas::parse(req.headers().get("anthropic-beta").ok().flatten().as_deref())
}

pub async fn handle(ctx: &Ctx, mut req: Request, route: Route) -> HandlerResult {
    let body = read_body(&mut req, ctx.settings().max_body_bytes).await?;
    let (controls, body) = meter::controls(&req, body)?;
    let product = chat_product(ctx, &req, route, &body)?;
    let payer = payer(ctx, &req, route == Route::AnthropicCompatible)?;
    meter::run(ctx, payer, product, controls).await
}

/// A chat call parsed and priced (the call itself and `POST /v1/quote` both start here).
pub fn chat_product(ctx: &Ctx, req: &Request, route: Route, body: &[u8]) -> Result<Box<dyn Product>, ApiError> {
    let mut parsed = match route {
        Route::Native => chat::parse_native(body),
        Route::OpenAiCompatible => chat::parse_openai(body),
        Route::AnthropicCompatible => chat::parse_anthropic(body),
    }?;
    if route == Route::AnthropicCompatible {
        parsed.betas = anthropic_betas(req)?;
        parsed.betas.check_fields(&parsed.raw)?;
    }
    let endpoint = ctx.endpoint(parsed.provider)?;
    Ok(Box::new(ChatProduct::price(parsed, &ctx.price_day(), endpoint, ctx.now_ms() / 1000)?))
}

/// `POST /v1/messages/count_tokens`: an active key (checked like the account reads), a body
/// `/v1/messages` would accept, Anthropic's count passed on. Nothing is held or charged.
pub async fn count_tokens(ctx: &Ctx, mut req: Request) -> HandlerResult {
    let body = read_body(&mut req, ctx.settings().max_body_bytes).await?;
    let count = count_tokens::parse(&body, anthropic_betas(&req)?, &ctx.price_day())?;
    caller_key(ctx, &api_key(ctx, &req, true)?, 0, 0).await?;
    let mut sent = fetch::send(&count.upstream(&ctx.endpoint(Provider::Anthropic)?), ctx.settings().upstream_timeout_ms).await?;
    let status = sent.response.status_code();
    let answer = sent.body().await.map_err(|e| broker_core::error::ApiError::upstream(format!("anthropic's count_tokens answer broke off: {e}")))?;
    Ok(http::bytes(200, "application/json", count.answer(status, &answer)?, &count.headers()))
}

/// `POST /v1/responses`: OpenAI's Responses API on every provider.
pub async fn responses(ctx: &Ctx, mut req: Request) -> HandlerResult {
    let body = read_body(&mut req, ctx.settings().max_body_bytes).await?;
    let (controls, body) = meter::controls(&req, body)?;
    let product = responses_product(ctx, &body)?;
    let payer = payer(ctx, &req, false)?;
    meter::run(ctx, payer, product, controls).await
}

pub fn responses_product(ctx: &Ctx, body: &[u8]) -> Result<Box<dyn Product>, ApiError> {
    let parsed = broker_core::responses::parse(body)?;
    let endpoint = ctx.endpoint(parsed.provider())?;
    Ok(Box::new(ResponsesProduct::price(parsed, &ctx.price_day(), endpoint, ctx.now_ms() / 1000)?))
}
