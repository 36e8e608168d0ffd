//! Per-request context and routing.

use crate::http::{render_error, HandlerResult, Reply};
use crate::upstash::Upstash;
use crate::{account, admin, chat, webhooks};
use broker_core::config::{settings_from, Settings};
use broker_core::error::{ApiError, ErrorKind, ErrorShape};
use worker::{Context, Env, Method, Request, Response};

pub struct App {
    pub env: Env,
    pub ctx: Context,
    pub settings: Settings,
    pub request_id: String,
    pub now_ms: u64,
    pub client_ip: String,
}

impl App {
    /// A `[vars]` value or a secret; empty counts as missing.
    pub fn var(&self, name: &str) -> Option<String> {
        read_var(&self.env, name)
    }

    /// A secret the route cannot work without: missing means 503, never "serve anyway".
    pub fn required(&self, name: &str) -> Result<String, ApiError> {
        self.var(name).ok_or_else(|| ApiError::unavailable(format!("gateway misconfigured: {name} is not set")))
    }

    pub fn redis(&self) -> Result<Upstash, ApiError> {
        Ok(Upstash::new(self.required("UPSTASH_REDIS_REST_URL")?, self.required("UPSTASH_REDIS_REST_TOKEN")?))
    }

    pub fn today(&self) -> String {
        broker_core::pricing::utc_date(self.now_ms)
    }
}

pub fn read_var(env: &Env, name: &str) -> Option<String> {
    env.var(name)
        .map(|v| v.to_string())
        .or_else(|_| env.secret(name).map(|s| s.to_string()))
        .ok()
        .filter(|v| !v.trim().is_empty())
}

pub fn random_hex(n: usize) -> Result<String, ApiError> {
    let mut buf = vec![0u8; n];
    getrandom::getrandom(&mut buf).map_err(|e| ApiError::new(ErrorKind::Internal, format!("getrandom: {e}")))?;
    Ok(hex::encode(buf))
}

pub async fn handle(req: Request, env: Env, ctx: Context) -> Response {
    let request_id = random_hex(12).map(|h| format!("req_{h}")).unwrap_or_else(|_| "req_unknown".into());
    let path = req.path();
    let shape = match path.as_str() {
        "/v1/chat/completions" | "/v1/models" => ErrorShape::OpenAi,
        "/v1/messages" => ErrorShape::Anthropic,
        _ => ErrorShape::Native,
    };
    let settings = match settings_from(&|name| read_var(&env, name)) {
        Ok(s) => s,
        Err(e) => return with_id(render_error(e.into(), shape, &request_id), &request_id),
    };
    let client_ip = req.headers().get("cf-connecting-ip").ok().flatten().unwrap_or_else(|| "unknown".into());
    let app = App { env, ctx, settings, request_id: request_id.clone(), now_ms: worker::Date::now().as_millis(), client_ip };
    let resp = match route(&app, req, &path).await {
        Ok(r) => r,
        Err(reply) => render_error(reply, shape, &request_id),
    };
    with_id(resp, &request_id)
}

fn with_id(mut resp: Response, request_id: &str) -> Response {
    let _ = resp.headers_mut().set("x-request-id", request_id);
    resp
}

async fn route(app: &App, req: Request, path: &str) -> HandlerResult {
    let method = req.method();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let allow = |m: Method| -> Result<(), Reply> {
        if method == m {
            Ok(())
        } else {
            Err(ApiError::new(ErrorKind::MethodNotAllowed, format!("{path} does not accept {method:?}")).into())
        }
    };
    match segments.as_slice() {
        ["health"] => {
            allow(Method::Get)?;
            account::health(app).await
        }
        ["v1", "chat"] => {
            allow(Method::Post)?;
            chat::handle(app, req, broker_core::chat::Route::Native).await
        }
        ["v1", "chat", "completions"] => {
            allow(Method::Post)?;
            chat::handle(app, req, broker_core::chat::Route::OpenAiCompatible).await
        }
        ["v1", "messages"] => {
            allow(Method::Post)?;
            chat::handle(app, req, broker_core::chat::Route::AnthropicCompatible).await
        }
        ["v1", "models"] => {
            allow(Method::Get)?;
            Ok(account::models(app))
        }
        ["v1", "balance"] => {
            allow(Method::Get)?;
            account::balance(app, &req).await
        }
        ["v1", "usage"] => {
            allow(Method::Get)?;
            account::usage(app, &req).await
        }
        ["webhooks", "stripe"] => {
            allow(Method::Post)?;
            webhooks::stripe(app, req).await
        }
        ["webhooks", "paypal"] => {
            allow(Method::Post)?;
            webhooks::paypal(app, req).await
        }
        ["admin", rest @ ..] => admin::handle(app, req, rest).await,
        _ => Err(ApiError::new(ErrorKind::NotFound, format!("no route {path}")).into()),
    }
}
