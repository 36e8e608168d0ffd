//! The route table: every endpoint of the worker as (method, OpenAPI path template), and the one
//! function that resolves a request line to an endpoint or to the 404/405 the client sees.
//!
//! The table is data so that it can be checked against `public/openapi.json` on the host (see the
//! tests below): every entry is documented, every documented operation resolves to its entry.

use crate::error::{ApiError, ErrorKind, ErrorShape};

/// One thing the worker can do for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    Health,
    NativeChat,
    OpenAiChatCompletions,
    OpenAiResponses,
    AnthropicMessages,
    AnthropicCountTokens,
    OpenAiEmbeddings,
    GeminiGenerateContent,
    GeminiStreamGenerateContent,
    GeminiCountTokens,
    OpenAiImages,
    NativeImage,
    OpenAiSpeech,
    NativeTts,
    Music,
    Models,
    Balance,
    Usage,
    UsageDaily,
    RequestBill,
    Quote,
    Plans,
    Checkout,
    BillingPortal,
    RotateOwnKey,
    AlertGet,
    AlertPut,
    AlertDelete,
    AutoTopupGet,
    AutoTopupPut,
    AutoTopupDelete,
    AutoTopupCard,
    /// Sub-keys of the caller's account (issue 25).
    ListSubKeys,
    CreateSubKey,
    RevokeSubKey,
    RotateSubKey,
    StripeWebhook,
    PaypalWebhook,
    AdminAddCredits,
    AdminImportKeys,
    AdminCreateKey,
    AdminStats,
    AdminUnmatchedPayments,
    AdminGetKey,
    AdminKeyLedger,
    AdminGrantCredits,
    AdminRevokeKey,
    AdminRotateKey,
}

/// Who may call an endpoint. Decided by the resolved endpoint, never by how its path is spelled:
/// the router checks it before dispatch, and an admin handler needs the proof of that check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone (health, the public price list and plans).
    Public,
    /// A customer's API key (checked by the handler, which needs the key to find the account).
    Customer,
    /// A payment provider, authenticated by its signature.
    Webhook,
    /// `X-Admin-Secret`.
    Admin,
}

impl Endpoint {
    pub fn access(self) -> Access {
        use Endpoint::*;
        match self {
            Health | Models | Plans => Access::Public,
            NativeChat | OpenAiChatCompletions | OpenAiResponses | AnthropicMessages | AnthropicCountTokens | OpenAiEmbeddings | GeminiGenerateContent | GeminiStreamGenerateContent | GeminiCountTokens | OpenAiImages | NativeImage | OpenAiSpeech | NativeTts | Music | Balance | Usage
            | UsageDaily | RequestBill | Quote | Checkout | BillingPortal | RotateOwnKey | AlertGet | AlertPut | AlertDelete | AutoTopupGet | AutoTopupPut | AutoTopupDelete | AutoTopupCard => Access::Customer,
            ListSubKeys | CreateSubKey | RevokeSubKey | RotateSubKey => Access::Customer,
            StripeWebhook | PaypalWebhook => Access::Webhook,
            AdminAddCredits | AdminImportKeys | AdminCreateKey | AdminStats | AdminUnmatchedPayments | AdminGetKey | AdminKeyLedger | AdminGrantCredits
            | AdminRevokeKey | AdminRotateKey => Access::Admin,
        }
    }
}

/// A row of the table: the method (upper case, as HTTP writes it) and the path template, with
/// `{name}` segments as in OpenAPI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub method: &'static str,
    pub template: &'static str,
    pub endpoint: Endpoint,
}

const fn route(method: &'static str, template: &'static str, endpoint: Endpoint) -> Route {
    Route { method, template, endpoint }
}

/// Every route the worker answers (the static pages are served by the platform before it).
pub const ROUTES: &[Route] = &[
    route("GET", "/health", Endpoint::Health),
    route("POST", "/v1/chat", Endpoint::NativeChat),
    route("POST", "/v1/chat/completions", Endpoint::OpenAiChatCompletions),
    route("POST", "/v1/responses", Endpoint::OpenAiResponses),
    route("POST", "/v1/messages", Endpoint::AnthropicMessages),
    route("POST", "/v1/messages/count_tokens", Endpoint::AnthropicCountTokens),
    route("POST", "/v1/embeddings", Endpoint::OpenAiEmbeddings),
    route("POST", "/v1beta/models/{model}:generateContent", Endpoint::GeminiGenerateContent),
    route("POST", "/v1beta/models/{model}:streamGenerateContent", Endpoint::GeminiStreamGenerateContent),
    // The google-genai SDKs 3.x default to Gemini's `v1` (the same format).
    route("POST", "/v1/models/{model}:generateContent", Endpoint::GeminiGenerateContent),
    route("POST", "/v1/models/{model}:streamGenerateContent", Endpoint::GeminiStreamGenerateContent),
    route("POST", "/v1beta/models/{model}:countTokens", Endpoint::GeminiCountTokens),
    route("POST", "/v1/models/{model}:countTokens", Endpoint::GeminiCountTokens),
    route("POST", "/v1/images/generations", Endpoint::OpenAiImages),
    route("POST", "/v1/image", Endpoint::NativeImage),
    route("POST", "/v1/audio/speech", Endpoint::OpenAiSpeech),
    route("POST", "/v1/tts", Endpoint::NativeTts),
    route("POST", "/v1/music", Endpoint::Music),
    route("GET", "/v1/models", Endpoint::Models),
    route("GET", "/v1/balance", Endpoint::Balance),
    route("GET", "/v1/usage", Endpoint::Usage),
    route("GET", "/v1/usage/daily", Endpoint::UsageDaily),
    route("GET", "/v1/requests/{request_id}", Endpoint::RequestBill),
    route("POST", "/v1/quote", Endpoint::Quote),
    route("GET", "/v1/plans", Endpoint::Plans),
    route("POST", "/v1/checkout", Endpoint::Checkout),
    route("POST", "/v1/billing-portal", Endpoint::BillingPortal),
    route("POST", "/v1/keys/rotate", Endpoint::RotateOwnKey),
    route("GET", "/v1/alerts", Endpoint::AlertGet),
    route("PUT", "/v1/alerts", Endpoint::AlertPut),
    route("DELETE", "/v1/alerts", Endpoint::AlertDelete),
    route("GET", "/v1/auto-topup", Endpoint::AutoTopupGet),
    route("PUT", "/v1/auto-topup", Endpoint::AutoTopupPut),
    route("DELETE", "/v1/auto-topup", Endpoint::AutoTopupDelete),
    route("POST", "/v1/auto-topup/card", Endpoint::AutoTopupCard),
    route("GET", "/v1/keys", Endpoint::ListSubKeys),
    route("POST", "/v1/keys", Endpoint::CreateSubKey),
    route("POST", "/v1/keys/{key_id}/revoke", Endpoint::RevokeSubKey),
    route("POST", "/v1/keys/{key_id}/rotate", Endpoint::RotateSubKey),
    route("POST", "/webhooks/stripe", Endpoint::StripeWebhook),
    route("POST", "/webhooks/paypal", Endpoint::PaypalWebhook),
    route("POST", "/admin/add-credits", Endpoint::AdminAddCredits),
    route("POST", "/admin/import-keys", Endpoint::AdminImportKeys),
    route("POST", "/admin/keys", Endpoint::AdminCreateKey),
    route("GET", "/admin/stats", Endpoint::AdminStats),
    route("GET", "/admin/unmatched-payments", Endpoint::AdminUnmatchedPayments),
    route("GET", "/admin/keys/{key_id}", Endpoint::AdminGetKey),
    route("GET", "/admin/keys/{key_id}/ledger", Endpoint::AdminKeyLedger),
    route("POST", "/admin/keys/{key_id}/credits", Endpoint::AdminGrantCredits),
    route("POST", "/admin/keys/{key_id}/revoke", Endpoint::AdminRevokeKey),
    route("POST", "/admin/keys/{key_id}/rotate", Endpoint::AdminRotateKey),
];

/// A request resolved to its endpoint, with the values of the template's `{name}` segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub endpoint: Endpoint,
    pub params: Vec<(&'static str, String)>,
}

impl Resolved {
    /// The value of a `{name}` segment ("" when the template has none of that name).
    pub fn param(&self, name: &str) -> &str {
        self.params.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str()).unwrap_or("")
    }
}

/// The path's segments when it is spelled canonically: it starts with one `/`, has no empty
/// segment (`//`, a trailing `/`), no `.` or `..` segment and no percent-encoded separator or
/// backslash. Anything else is a 404 on every route: one path has one spelling, so no check can be
/// passed by spelling a path differently from the route it reaches.
fn canonical_segments(path: &str) -> Option<Vec<&str>> {
    let rest = path.strip_prefix('/')?;
    let segments: Vec<&str> = rest.split('/').collect();
    let bad = |s: &&str| {
        let lower = s.to_ascii_lowercase();
        s.is_empty() || *s == "." || *s == ".." || s.contains('\\') || lower.contains("%2f") || lower.contains("%5c") || lower.contains("%2e")
    };
    if segments.iter().any(bad) {
        return None;
    }
    Some(segments)
}

/// The `{name}` values when the path's segments fit the template exactly, `None` otherwise.
fn fit(template: &'static str, got: &[&str]) -> Option<Vec<(&'static str, String)>> {
    let want: Vec<&'static str> = template.trim_start_matches('/').split('/').collect();
    if want.len() != got.len() {
        return None;
    }
    let mut params = Vec::new();
    for (w, g) in want.iter().zip(got) {
        match w.strip_prefix('{').and_then(|w| w.strip_suffix('}')) {
            Some(name) => params.push((name, g.to_string())),
            None if w == g => {}
            // `{name}:method` (Google's custom methods): the segment ends with `:method` after a
            // non-empty value.
            None => match w.strip_prefix('{').and_then(|w| w.split_once("}:")) {
                Some((name, method)) => match g.strip_suffix(method).and_then(|v| v.strip_suffix(':')) {
                    Some(value) if !value.is_empty() => params.push((name, value.to_string())),
                    _ => return None,
                },
                None => return None,
            },
        }
    }
    Some(params)
}

/// The endpoint for `method path`: 404 when no template fits the path, 405 when templates fit
/// but none with this method.
pub fn resolve(method: &str, path: &str) -> Result<Resolved, ApiError> {
    let Some(segments) = canonical_segments(path) else {
        return Err(ApiError::not_found(format!("no route {path} (paths are matched exactly: no empty, `.` or `..` segments, no encoded separators)")));
    };
    let mut path_known = false;
    for r in ROUTES {
        if let Some(params) = fit(r.template, &segments) {
            path_known = true;
            if r.method.eq_ignore_ascii_case(method) {
                return Ok(Resolved { endpoint: r.endpoint, params });
            }
        }
    }
    if path_known {
        Err(ApiError::new(ErrorKind::MethodNotAllowed, format!("{path} does not accept {}", method.to_ascii_uppercase())))
    } else {
        Err(ApiError::not_found(format!("no route {path}")))
    }
}

/// The error shape the clients of a path expect (the official SDKs parse their own).
pub fn error_shape(path: &str) -> ErrorShape {
    match path {
        "/v1/chat/completions" | "/v1/responses" | "/v1/models" | "/v1/images/generations" | "/v1/audio/speech" | "/v1/embeddings" => ErrorShape::OpenAi,
        "/v1/messages" | "/v1/messages/count_tokens" => ErrorShape::Anthropic,
        p if p.starts_with("/v1beta/") || (p.starts_with("/v1/models/") && p.contains(':')) => ErrorShape::Gemini,
        _ => ErrorShape::Native,
    }
}

#[cfg(test)]
#[path = "routes_tests.rs"]
mod tests;
