//! Routing: the path and method of a request to its handler, and the error shape of the route
//! family. Imports flow one way: router → handlers → context.

use crate::context::Ctx;
use crate::http::HandlerResult;
use crate::{account, admin, chat, checkout, media, webhooks};
use broker_core::chat::Route;
use broker_core::error::{ApiError, ErrorKind, ErrorShape};
use broker_core::products::images::ImageRoute;
use broker_core::products::speech::SpeechRoute;
use worker::{Method, Request};

/// The error shape the clients of a path expect (the official SDKs parse their own).
pub fn error_shape(path: &str) -> ErrorShape {
    match path {
        "/v1/chat/completions" | "/v1/models" | "/v1/images/generations" | "/v1/audio/speech" => ErrorShape::OpenAi,
        "/v1/messages" => ErrorShape::Anthropic,
        _ => ErrorShape::Native,
    }
}

pub async fn route(ctx: &Ctx, req: Request, path: &str) -> HandlerResult {
    let method = req.method();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let allow = |m: Method| -> Result<(), ApiError> {
        if method == m {
            Ok(())
        } else {
            Err(ApiError::new(ErrorKind::MethodNotAllowed, format!("{path} does not accept {method:?}")))
        }
    };
    match segments.as_slice() {
        ["health"] => {
            allow(Method::Get)?;
            account::health(ctx).await
        }
        ["v1", "chat"] => {
            allow(Method::Post)?;
            chat::handle(ctx, req, Route::Native).await
        }
        ["v1", "chat", "completions"] => {
            allow(Method::Post)?;
            chat::handle(ctx, req, Route::OpenAiCompatible).await
        }
        ["v1", "messages"] => {
            allow(Method::Post)?;
            chat::handle(ctx, req, Route::AnthropicCompatible).await
        }
        ["v1", "images", "generations"] => {
            allow(Method::Post)?;
            media::images(ctx, req, ImageRoute::OpenAiCompatible).await
        }
        ["v1", "image"] => {
            allow(Method::Post)?;
            media::images(ctx, req, ImageRoute::Native).await
        }
        ["v1", "audio", "speech"] => {
            allow(Method::Post)?;
            media::speech(ctx, req, SpeechRoute::OpenAiCompatible).await
        }
        ["v1", "tts"] => {
            allow(Method::Post)?;
            media::speech(ctx, req, SpeechRoute::Native).await
        }
        ["v1", "music"] => {
            allow(Method::Post)?;
            media::music(ctx, req).await
        }
        ["v1", "models"] => {
            allow(Method::Get)?;
            Ok(account::models(ctx))
        }
        ["v1", "balance"] => {
            allow(Method::Get)?;
            account::balance(ctx, &req).await
        }
        ["v1", "usage"] => {
            allow(Method::Get)?;
            account::usage(ctx, &req).await
        }
        ["v1", "usage", "daily"] => {
            allow(Method::Get)?;
            checkout::daily(ctx, req).await
        }
        ["v1", "plans"] => {
            allow(Method::Get)?;
            Ok(checkout::plans(ctx))
        }
        ["v1", "checkout"] => {
            allow(Method::Post)?;
            checkout::checkout(ctx, req).await
        }
        ["v1", "billing-portal"] => {
            allow(Method::Post)?;
            checkout::billing_portal(ctx, req).await
        }
        ["v1", "keys", "rotate"] => {
            allow(Method::Post)?;
            checkout::rotate(ctx, req).await
        }
        ["webhooks", "stripe"] => {
            allow(Method::Post)?;
            webhooks::stripe(ctx, req).await
        }
        ["webhooks", "paypal"] => {
            allow(Method::Post)?;
            webhooks::paypal(ctx, req).await
        }
        ["admin", rest @ ..] => admin::handle(ctx, req, rest).await,
        _ => Err(ApiError::not_found(format!("no route {path}"))),
    }
}
