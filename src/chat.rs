//! The chat routes: parse → price → run on the metering engine (which renders the answer).

use crate::context::Ctx;
use crate::http::{read_body, HandlerResult};
use crate::meter;
use crate::payer::payer;
use broker_core::products::chat::ChatProduct;
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
    let product = ChatProduct::price(parsed, &ctx.price_day(), endpoint, ctx.now_ms() / 1000)?;
    let payer = payer(ctx, &req, route == Route::AnthropicCompatible)?;
    meter::run(ctx, payer, Box::new(product)).await
}
