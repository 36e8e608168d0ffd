//! The chat routes (and the Responses API, chat's engine in another shape): parse → price → run
//! on the metering engine (which renders the answer).

use crate::context::Ctx;
use crate::http::{read_body, HandlerResult};
use crate::meter;
use crate::payer::payer;
use broker_core::products::chat::ChatProduct;
use broker_core::products::responses::ResponsesProduct;
use broker_core::chat::{self, Route};
use worker::Request;

pub async fn handle(ctx: &Ctx, mut req: Request, route: Route) -> HandlerResult {
    let body = read_body(&mut req, ctx.settings().max_body_bytes).await?;
    let parsed = match route {
        Route::Native => chat::parse_native(&body),
        Route::OpenAiCompatible => chat::parse_openai(&body),
        Route::AnthropicCompatible => chat::parse_anthropic(&body),
    }?;
    let endpoint = ctx.endpoint(parsed.provider)?;
    let product = ChatProduct::price(parsed, &ctx.today(), endpoint, ctx.now_ms() / 1000)?;
    let payer = payer(ctx, &req, route == Route::AnthropicCompatible)?;
    meter::run(ctx, payer, Box::new(product)).await
}

/// `POST /v1/responses`: OpenAI's Responses API on every provider.
pub async fn responses(ctx: &Ctx, mut req: Request) -> HandlerResult {
    let body = read_body(&mut req, ctx.settings().max_body_bytes).await?;
    let parsed = broker_core::responses::parse(&body)?;
    let endpoint = ctx.endpoint(parsed.provider())?;
    let product = ResponsesProduct::price(parsed, &ctx.today(), endpoint, ctx.now_ms() / 1000)?;
    let payer = payer(ctx, &req, false)?;
    meter::run(ctx, payer, Box::new(product)).await
}
