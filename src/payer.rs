//! Who pays for a call, read from the request: a customer's API key (prepaid credits), or
//! RapidAPI for one of its users (when `RAPIDAPI_SECRET` is set and the request carries its proxy
//! secret). Each payer kind's books are `broker_core::payer`'s.

use crate::context::Ctx;
use broker_core::error::ApiError;
pub use broker_core::payer::Payer;
use broker_core::rapidapi;
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

/// The payer of a metered call. A request that claims to come through RapidAPI (any
/// `X-RapidAPI-Proxy-Secret`) is served on that channel only with the right secret: a wrong or
/// missing one, or a gateway without `RAPIDAPI_SECRET`, is a 401, never a free call.
pub fn payer(ctx: &Ctx, req: &Request, also_x_api_key: bool) -> Result<Payer, ApiError> {
    let h = req.headers();
    let header = |name: &str| h.get(name).ok().flatten();
    let Some(claimed) = header("x-rapidapi-proxy-secret") else {
        return api_key(ctx, req, also_x_api_key).map(Payer::Key);
    };
    ctx.keep_secret(&claimed);
    let refused = || ApiError::unauthorized("the RapidAPI proxy secret is wrong");
    let secret = ctx.optional_secret("RAPIDAPI_SECRET").ok_or_else(refused)?;
    if !broker_core::keys::constant_time_eq(claimed.as_bytes(), secret.expose().as_bytes()) {
        return Err(refused());
    }
    let user = rapidapi::user_id(&header("x-rapidapi-user").unwrap_or_default())?;
    let subscription = header("x-rapidapi-subscription").unwrap_or_default();
    let (subscription, rate_plan) = rapidapi::plan_of(&ctx.settings().rapidapi_plans, &subscription)?;
    Ok(Payer::RapidApi { user, subscription: subscription.to_string(), rate_plan: rate_plan.to_string() })
}

/// The payer of a call on Gemini's own API: the key as the google-genai SDKs send it
/// (`x-goog-api-key`), or as Google's REST docs show it (`?key=`), or a bearer token. The key is
/// kept out of the log like any other (the log's `route` field never carries the query).
pub fn gemini_payer(ctx: &Ctx, req: &Request) -> Result<Payer, ApiError> {
    let h = req.headers();
    if h.get("x-rapidapi-proxy-secret").ok().flatten().is_some() {
        return payer(ctx, req, false);
    }
    let from_query = || req.url().ok().and_then(|u| u.query_pairs().find(|(k, _)| k == "key").map(|(_, v)| v.into_owned()));
    let key = h.get("x-goog-api-key").ok().flatten().filter(|k| !k.is_empty()).or_else(from_query).filter(|k| !k.is_empty());
    match key {
        Some(k) => {
            ctx.keep_secret(&k);
            Ok(Payer::Key(k))
        }
        None => api_key(ctx, req, false).map(Payer::Key),
    }
}
