//! The chat routes: parse → price → run on the metering engine (which renders the answer).

use crate::context::Ctx;
use crate::http::{read_body, HandlerResult};
use crate::meter;
use broker_core::products::chat::ChatProduct;
use broker_core::chat::{self, Route};
use broker_core::error::ApiError;
use worker::Request;

/// The customer's key: `Authorization: Bearer`, or `x-api-key` as the Anthropic SDK sends it.
/// It is kept out of the log from here on.
pub fn api_key(ctx: &Ctx, req: &Request, also_x_api_key: bool) -> Result<String, ApiError> {
    let h = req.headers();
    let auth = h.get("authorization").ok().flatten();
    let key = match broker_core::keys::bearer(auth.as_deref()) {
        Some(k) => Some(k.to_string()),
        None if also_x_api_key => h.get("x-api-key").ok().flatten().filter(|k| !k.is_empty()),
        None => None,
    };
    let key = key.ok_or_else(|| ApiError::unauthorized("missing API key: send Authorization: Bearer <key>"))?;
    ctx.keep_secret(&key);
    Ok(key)
}

pub async fn handle(ctx: &Ctx, mut req: Request, route: Route) -> HandlerResult {
    let body = read_body(&mut req, ctx.settings().max_body_bytes).await?;
    let parsed = match route {
        Route::Native => chat::parse_native(&body),
        Route::OpenAiCompatible => chat::parse_openai(&body),
        Route::AnthropicCompatible => chat::parse_anthropic(&body),
    }?;
    let endpoint = ctx.endpoint(parsed.provider)?;
    let product = ChatProduct::price(parsed, &ctx.today(), endpoint, ctx.now_ms() / 1000)?;
    let key = api_key(ctx, &req, route == Route::AnthropicCompatible)?;
    meter::run(ctx, &key, Box::new(product)).await
}
