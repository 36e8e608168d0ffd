//! Gemini's own API (`/v1beta/models/{model}:generateContent` and `:streamGenerateContent`):
//! parse → price → run on the metering engine, which renders the answer. Everything it decides
//! is `broker_core::products::gemini_native`.

use crate::context::Ctx;
use crate::http::{read_body, HandlerResult};
use crate::meter;
use crate::payer::gemini_payer;
use broker_core::products::gemini_native::{self, GeminiProduct};
use broker_core::provider::Provider;
use worker::Request;

pub async fn generate(ctx: &Ctx, mut req: Request, model: &str, stream: bool) -> HandlerResult {
    let body = read_body(&mut req, ctx.settings().max_body_bytes).await?;
    let alt = req.url().ok().and_then(|u| u.query_pairs().find(|(k, _)| k == "alt").map(|(_, v)| v.into_owned()));
    let parsed = gemini_native::parse(model, stream, alt.as_deref(), &body)?;
    let product = GeminiProduct::price(parsed, &ctx.today(), ctx.endpoint(Provider::Google)?)?;
    meter::run(ctx, gemini_payer(ctx, &req)?, Box::new(product)).await
}
