//! Routing: dispatches the endpoint that `broker_core::routes` resolves (the table, its 404s and
//! 405s live there, checked against public/openapi.json). Imports flow one way: router →
//! handlers → context.

use crate::context::Ctx;
use crate::http::HandlerResult;
use crate::{account, admin, alerts, chat, checkout, gemini, media, webhooks};
use broker_core::chat::Route;
use broker_core::error::ErrorShape;
use broker_core::products::images::ImageRoute;
use broker_core::products::speech::SpeechRoute;
use broker_core::error::ApiError;
use broker_core::routes::{self, Access, Endpoint};
use worker::Request;

/// The error shape the clients of a path expect (the official SDKs parse their own).
pub fn error_shape(path: &str) -> ErrorShape {
    routes::error_shape(path)
}

pub async fn route(ctx: &Ctx, req: Request, path: &str) -> HandlerResult {
    let method = format!("{:?}", req.method()).to_uppercase();
    let resolved = routes::resolve(&method, path)?;
    // Authorization follows the endpoint the path resolved to, never the path's spelling. The
    // admin surface is published in the OpenAPI document, so resolving first hides nothing.
    if resolved.endpoint.access() == Access::Admin {
        let pass = admin::guard(ctx, &req).await?;
        return admin::handle(ctx, req, resolved.endpoint, resolved.param("key_id"), pass).await;
    }
    match resolved.endpoint {
        Endpoint::Health => account::health(ctx).await,
        Endpoint::NativeChat => chat::handle(ctx, req, Route::Native).await,
        Endpoint::OpenAiChatCompletions => chat::handle(ctx, req, Route::OpenAiCompatible).await,
        Endpoint::OpenAiResponses => chat::responses(ctx, req).await,
        Endpoint::AnthropicMessages => chat::handle(ctx, req, Route::AnthropicCompatible).await,
        Endpoint::AnthropicCountTokens => chat::count_tokens(ctx, req).await,
        Endpoint::OpenAiEmbeddings => media::embeddings(ctx, req).await,
        Endpoint::GeminiGenerateContent => gemini::generate(ctx, req, resolved.param("model"), false).await,
        Endpoint::GeminiStreamGenerateContent => gemini::generate(ctx, req, resolved.param("model"), true).await,
        Endpoint::GeminiCountTokens => gemini::count_tokens(ctx, req, resolved.param("model")).await,
        Endpoint::OpenAiImages => media::images(ctx, req, ImageRoute::OpenAiCompatible).await,
        Endpoint::NativeImage => media::images(ctx, req, ImageRoute::Native).await,
        Endpoint::OpenAiSpeech => media::speech(ctx, req, SpeechRoute::OpenAiCompatible).await,
        Endpoint::NativeTts => media::speech(ctx, req, SpeechRoute::Native).await,
        Endpoint::Music => media::music(ctx, req).await,
        Endpoint::Models => Ok(account::models(ctx)),
        Endpoint::Balance => account::balance(ctx, &req).await,
        Endpoint::Usage => account::usage(ctx, &req).await,
        Endpoint::UsageDaily => checkout::daily(ctx, req).await,
        Endpoint::Quote => crate::quote::quote(ctx, req).await,
        Endpoint::RequestBill => account::request_bill(ctx, &req, resolved.param("request_id")).await,
        Endpoint::Plans => Ok(checkout::plans(ctx)),
        Endpoint::Checkout => checkout::checkout(ctx, req).await,
        Endpoint::BillingPortal => checkout::billing_portal(ctx, req).await,
        Endpoint::RotateOwnKey => checkout::rotate(ctx, req).await,
        Endpoint::ListSubKeys => crate::keys_api::list(ctx, req).await,
        Endpoint::CreateSubKey => crate::keys_api::create(ctx, req).await,
        Endpoint::RevokeSubKey => crate::keys_api::revoke(ctx, req, resolved.param("key_id")).await,
        Endpoint::RotateSubKey => crate::keys_api::rotate(ctx, req, resolved.param("key_id")).await,
        Endpoint::AlertGet => alerts::get_alert(ctx, req).await,
        Endpoint::AlertPut => alerts::put_alert(ctx, req).await,
        Endpoint::AlertDelete => alerts::delete_alert(ctx, req).await,
        Endpoint::AutoTopupGet => alerts::get_topup(ctx, req).await,
        Endpoint::AutoTopupPut => alerts::put_topup(ctx, req).await,
        Endpoint::AutoTopupDelete => alerts::delete_topup(ctx, req).await,
        Endpoint::AutoTopupCard => alerts::save_card(ctx, req).await,
        Endpoint::StripeWebhook => webhooks::stripe(ctx, req).await,
        Endpoint::PaypalWebhook => webhooks::paypal(ctx, req).await,
        Endpoint::AdminAddCredits
        | Endpoint::AdminImportKeys
        | Endpoint::AdminCreateKey
        | Endpoint::AdminStats
        | Endpoint::AdminUnmatchedPayments
        | Endpoint::AdminGetKey
        | Endpoint::AdminKeyLedger
        | Endpoint::AdminGrantCredits
        | Endpoint::AdminRevokeKey
        | Endpoint::AdminRotateKey => Err(ApiError::internal(format!("{:?} reached dispatch without the admin check", resolved.endpoint))),
    }
}
