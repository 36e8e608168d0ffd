//! The one error type of the request path, and the one place that decides its HTTP status.
//!
//! Handlers return `ApiError`; the worker only renders it. 5xx messages are generic: the detail
//! goes to the log with the request id, never into the body.

use serde_json::{json, Value};

/// What went wrong, as the client should see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request body or parameters are malformed or unsupported (400).
    InvalidRequest,
    /// The model has no price entry, or is retired (400). Never served at zero.
    UnknownModel,
    /// Missing, unknown or revoked API key, or a wrong admin secret (401).
    Unauthorized,
    /// The balance cannot cover the worst case of the call (402).
    InsufficientCredits,
    /// The call may cost more than the cap its client set (`X-Max-Credits`, `max_credits`) (402).
    OverMaxCredits,
    /// Authenticated but not allowed, e.g. a plan with no configured limits (403).
    Forbidden,
    /// No such route or resource (404).
    NotFound,
    /// Route exists, method does not (405).
    MethodNotAllowed,
    /// Body larger than the gateway accepts (413).
    PayloadTooLarge,
    /// Rate limit hit (429); `retry_after_secs` goes into `Retry-After`.
    RateLimited { retry_after_secs: u64 },
    /// A call with this `Idempotency-Key` is in flight (409, with `Retry-After`).
    IdempotencyInFlight { retry_after_secs: u64 },
    /// This `Idempotency-Key` was used by a call whose answer is not kept (409).
    IdempotencyKeyUsed,
    /// This `Idempotency-Key` was used with another route or body (422).
    IdempotencyKeyReused,
    /// The provider failed or answered garbage (502).
    UpstreamError,
    /// Redis or a required secret is unavailable: fail closed (503).
    Unavailable,
    /// The provider did not answer in time (504).
    UpstreamTimeout,
    /// A bug or an unexpected state (500). Kept for completeness; prefer a specific kind.
    Internal,
}

impl ErrorKind {
    pub fn status(&self) -> u16 {
        match self {
            ErrorKind::InvalidRequest | ErrorKind::UnknownModel => 400,
            ErrorKind::Unauthorized => 401,
            ErrorKind::InsufficientCredits | ErrorKind::OverMaxCredits => 402,
            ErrorKind::Forbidden => 403,
            ErrorKind::NotFound => 404,
            ErrorKind::MethodNotAllowed => 405,
            ErrorKind::PayloadTooLarge => 413,
            ErrorKind::RateLimited { .. } => 429,
            ErrorKind::IdempotencyInFlight { .. } | ErrorKind::IdempotencyKeyUsed => 409,
            ErrorKind::IdempotencyKeyReused => 422,
            ErrorKind::UpstreamError => 502,
            ErrorKind::Unavailable => 503,
            ErrorKind::UpstreamTimeout => 504,
            ErrorKind::Internal => 500,
        }
    }

    /// Stable machine-readable name used as `error.type`.
    pub fn type_name(&self) -> &'static str {
        match self {
            ErrorKind::InvalidRequest => "invalid_request",
            ErrorKind::UnknownModel => "unknown_model",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::InsufficientCredits => "insufficient_credits",
            ErrorKind::OverMaxCredits => "over_max_credits",
            ErrorKind::IdempotencyInFlight { .. } => "idempotency_in_flight",
            ErrorKind::IdempotencyKeyUsed => "idempotency_key_used",
            ErrorKind::IdempotencyKeyReused => "idempotency_key_reused",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::NotFound => "not_found",
            ErrorKind::MethodNotAllowed => "method_not_allowed",
            ErrorKind::PayloadTooLarge => "payload_too_large",
            ErrorKind::RateLimited { .. } => "rate_limited",
            ErrorKind::UpstreamError => "upstream_error",
            ErrorKind::Unavailable => "service_unavailable",
            ErrorKind::UpstreamTimeout => "upstream_timeout",
            ErrorKind::Internal => "internal_error",
        }
    }
}

/// An error with the message the client may read.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub kind: ErrorKind,
    pub message: String,
    /// Extra machine-readable fields (e.g. `credits_required`), merged into the error object.
    pub details: Option<Value>,
    /// Headers the answer must carry (rate-limit state); `Retry-After` is added from the kind.
    pub headers: Vec<(String, String)>,
    /// A 5xx message written for the client (it names no host, key or reply): shown as is.
    pub public: bool,
}

/// How an error is rendered: the gateway's own shape, or the shape an official SDK expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorShape {
    /// `{"error":{"type","message","request_id",...}}`
    Native,
    /// OpenAI: `{"error":{"message","type","param","code"}}`
    OpenAi,
    /// Anthropic: `{"type":"error","error":{"type","message"},"request_id"}`
    Anthropic,
    /// Google (Gemini's own API): `{"error":{"code","message","status","details":[ErrorInfo]}}`
    Gemini,
}

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ApiError { kind, message: message.into(), details: None, headers: Vec::new(), public: false }
    }
    /// Marks a 5xx message as written for the client (see [`ApiError::public_message`]).
    pub fn public(mut self) -> Self {
        self.public = true;
        self
    }
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }
    pub fn with_headers(mut self, headers: Vec<(String, String)>) -> Self {
        self.headers.extend(headers);
        self
    }
    /// Every header of the answer: the attached ones, and `Retry-After` for a 429.
    pub fn response_headers(&self) -> Vec<(String, String)> {
        let mut h = self.headers.clone();
        if let ErrorKind::RateLimited { retry_after_secs } | ErrorKind::IdempotencyInFlight { retry_after_secs } = self.kind {
            h.push(("retry-after".into(), retry_after_secs.to_string()));
        }
        h
    }
    pub fn upstream(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::UpstreamError, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidRequest, message)
    }
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, message)
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unauthorized, message)
    }
    pub fn status(&self) -> u16 {
        self.kind.status()
    }

    /// The message the client sees: a 5xx never leaks internals (hosts, Redis replies, key
    /// ids) unless its message was written for the client ([`ApiError::public`]).
    pub fn public_message(&self) -> String {
        match self.kind {
            _ if self.status() < 500 || self.public => self.message.clone(),
            ErrorKind::Unavailable => "a service the gateway depends on is unavailable; nothing was charged, retry later".into(),
            ErrorKind::UpstreamError => "the provider could not be reached or answered garbage; nothing was charged".into(),
            ErrorKind::UpstreamTimeout => "the provider did not answer in time; nothing was charged".into(),
            _ => "internal error; quote the request id to support".into(),
        }
    }

    pub fn to_json(&self, shape: ErrorShape, request_id: &str) -> Value {
        let message = self.public_message();
        match shape {
            ErrorShape::Native => {
                let mut obj = json!({
                    "type": self.kind.type_name(),
                    "message": message,
                    "request_id": request_id,
                });
                merge(&mut obj, &self.details);
                json!({ "error": obj })
            }
            ErrorShape::OpenAi => {
                let mut obj = json!({
                    "message": message,
                    "type": openai_type(&self.kind),
                    "param": null,
                    "code": self.kind.type_name(),
                    "request_id": request_id,
                });
                merge(&mut obj, &self.details);
                json!({ "error": obj })
            }
            ErrorShape::Anthropic => json!({
                "type": "error",
                "error": { "type": anthropic_type(&self.kind), "message": message },
                "request_id": request_id,
            }),
            // google.rpc.Status, as the google-genai SDKs read it; the gateway's own type and the
            // request id ride in a google.rpc.ErrorInfo, where Google puts its reasons.
            ErrorShape::Gemini => json!({
                "error": {
                    "code": self.status(),
                    "message": message,
                    "status": google_status(&self.kind),
                    "details": [{
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": self.kind.type_name().to_ascii_uppercase(),
                        "domain": "ai-api-broker",
                        "metadata": { "request_id": request_id },
                    }],
                }
            }),
        }
    }
}

fn merge(obj: &mut Value, details: &Option<Value>) {
    if let (Some(Value::Object(extra)), Value::Object(target)) = (details, obj) {
        for (k, v) in extra {
            target.insert(k.clone(), v.clone());
        }
    }
}

fn openai_type(kind: &ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidRequest
        | ErrorKind::UnknownModel
        | ErrorKind::NotFound
        | ErrorKind::MethodNotAllowed
        | ErrorKind::PayloadTooLarge
        | ErrorKind::OverMaxCredits
        | ErrorKind::IdempotencyInFlight { .. }
        | ErrorKind::IdempotencyKeyUsed
        | ErrorKind::IdempotencyKeyReused => "invalid_request_error",
        ErrorKind::Unauthorized => "authentication_error",
        ErrorKind::Forbidden => "permission_error",
        ErrorKind::InsufficientCredits => "insufficient_quota",
        ErrorKind::RateLimited { .. } => "rate_limit_error",
        _ => "api_error",
    }
}

/// The canonical gRPC code name Google's APIs put in `error.status`.
fn google_status(kind: &ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidRequest | ErrorKind::UnknownModel | ErrorKind::MethodNotAllowed | ErrorKind::PayloadTooLarge | ErrorKind::IdempotencyKeyReused => "INVALID_ARGUMENT",
        ErrorKind::Unauthorized => "UNAUTHENTICATED",
        ErrorKind::Forbidden => "PERMISSION_DENIED",
        ErrorKind::InsufficientCredits | ErrorKind::OverMaxCredits => "FAILED_PRECONDITION",
        ErrorKind::IdempotencyInFlight { .. } => "ABORTED",
        ErrorKind::IdempotencyKeyUsed => "ALREADY_EXISTS",
        ErrorKind::NotFound => "NOT_FOUND",
        ErrorKind::RateLimited { .. } => "RESOURCE_EXHAUSTED",
        ErrorKind::Unavailable | ErrorKind::UpstreamError => "UNAVAILABLE",
        ErrorKind::UpstreamTimeout => "DEADLINE_EXCEEDED",
        ErrorKind::Internal => "INTERNAL",
    }
}

fn anthropic_type(kind: &ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidRequest
        | ErrorKind::UnknownModel
        | ErrorKind::MethodNotAllowed
        | ErrorKind::OverMaxCredits
        | ErrorKind::IdempotencyInFlight { .. }
        | ErrorKind::IdempotencyKeyUsed
        | ErrorKind::IdempotencyKeyReused => "invalid_request_error",
        ErrorKind::Unauthorized => "authentication_error",
        ErrorKind::Forbidden | ErrorKind::InsufficientCredits => "permission_error",
        ErrorKind::NotFound => "not_found_error",
        ErrorKind::PayloadTooLarge => "request_too_large",
        ErrorKind::RateLimited { .. } => "rate_limit_error",
        ErrorKind::Unavailable => "overloaded_error",
        _ => "api_error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [ErrorKind; 17] = [
        ErrorKind::InvalidRequest,
        ErrorKind::UnknownModel,
        ErrorKind::Unauthorized,
        ErrorKind::InsufficientCredits,
        ErrorKind::Forbidden,
        ErrorKind::NotFound,
        ErrorKind::MethodNotAllowed,
        ErrorKind::PayloadTooLarge,
        ErrorKind::RateLimited { retry_after_secs: 1 },
        ErrorKind::OverMaxCredits,
        ErrorKind::IdempotencyInFlight { retry_after_secs: 1 },
        ErrorKind::IdempotencyKeyUsed,
        ErrorKind::IdempotencyKeyReused,
        ErrorKind::UpstreamError,
        ErrorKind::Unavailable,
        ErrorKind::UpstreamTimeout,
        ErrorKind::Internal,
    ];

    #[test]
    fn the_statuses_are_the_designs_and_agree_with_googles_code_mapping() {
        // DESIGN.md §2: the statuses of the request path (and 500 for a bug), with issue 24's
        // 409 and 422 of `Idempotency-Key`.
        let mut statuses: Vec<u16> = ALL.iter().map(ErrorKind::status).collect();
        statuses.sort_unstable();
        statuses.dedup();
        assert_eq!(statuses, [400, 401, 402, 403, 404, 405, 409, 413, 422, 429, 500, 502, 503, 504]);
        // google/rpc/code.proto's "HTTP Mapping" of each code, restated: a client that retries
        // on 5xx (or gives up on 4xx) decides the same from either field.
        let google_http = |code: &str| match code {
            "INVALID_ARGUMENT" | "FAILED_PRECONDITION" => 400,
            "UNAUTHENTICATED" => 401,
            "PERMISSION_DENIED" => 403,
            "NOT_FOUND" => 404,
            "ABORTED" | "ALREADY_EXISTS" => 409,
            "RESOURCE_EXHAUSTED" => 429,
            "INTERNAL" => 500,
            "UNAVAILABLE" => 503,
            "DEADLINE_EXCEEDED" => 504,
            other => panic!("{other} is not a google.rpc.Code this gateway should use"),
        };
        for kind in ALL {
            let v = ApiError::new(kind.clone(), "x").to_json(ErrorShape::Gemini, "r");
            let (status, mapped) = (kind.status(), google_http(v["error"]["status"].as_str().unwrap()));
            assert_eq!(v["error"]["code"], status);
            assert_eq!(status / 100, mapped / 100, "{kind:?}: {status} against Google's {mapped}");
            // Where the gateway departs from Google's number, it is for a status Google has no code of.
            if status != mapped {
                assert!([402, 405, 413, 422, 502].contains(&status), "{kind:?}");
            }
        }
    }

    #[test]
    fn native_shape_carries_type_message_request_id_and_details() {
        let e = ApiError::new(ErrorKind::InsufficientCredits, "needs 5 credits")
            .with_details(json!({"credits_required": 5.0}));
        let v = e.to_json(ErrorShape::Native, "req_1");
        assert_eq!(v["error"]["type"], "insufficient_credits");
        assert_eq!(v["error"]["request_id"], "req_1");
        assert_eq!(v["error"]["credits_required"], 5.0);
    }

    #[test]
    fn internal_errors_do_not_leak() {
        let e = ApiError::new(ErrorKind::Internal, "redis said: WRONGTYPE at key apikey:abc");
        let v = e.to_json(ErrorShape::OpenAi, "req_2");
        assert!(!v.to_string().contains("WRONGTYPE"));
    }

    #[test]
    fn outage_details_stay_in_the_log() {
        for e in [
            ApiError::unavailable("redis unreachable: fetch https://eu1-secret-db.upstash.io failed"),
            ApiError::new(ErrorKind::UpstreamError, "fetch http://10.0.0.1/v1 failed: connection refused"),
        ] {
            let body = e.to_json(ErrorShape::Native, "r").to_string();
            assert!(!body.contains("upstash.io") && !body.contains("10.0.0.1"), "{body}");
        }
        let named = ApiError::unavailable("gateway misconfigured: ADMIN_SECRET is not set").public();
        assert!(named.public_message().contains("ADMIN_SECRET"));
        let status = ApiError::new(ErrorKind::UpstreamError, "openai failed (status 500)").public();
        assert_eq!(status.public_message(), "openai failed (status 500)");
        let internal = ApiError::internal("redis said WRONGTYPE");
        assert!(!internal.public_message().contains("WRONGTYPE"));
    }

    #[test]
    fn a_429_carries_retry_after_and_its_rate_headers() {
        let e = ApiError::new(ErrorKind::RateLimited { retry_after_secs: 42 }, "slow down").with_headers(vec![("x-ratelimit-limit".into(), "10".into())]);
        let h = e.response_headers();
        assert!(h.contains(&("retry-after".into(), "42".into())));
        assert!(h.contains(&("x-ratelimit-limit".into(), "10".into())));
        assert!(ApiError::invalid("x").response_headers().is_empty());
    }

    #[test]
    fn gemini_shape_is_a_google_rpc_status() {
        let v = ApiError::invalid("`generationConfig.speechConfig` is not supported").to_json(ErrorShape::Gemini, "req_9");
        assert_eq!(v["error"]["code"], 400);
        assert_eq!(v["error"]["status"], "INVALID_ARGUMENT");
        assert!(v["error"]["message"].as_str().unwrap().contains("speechConfig"));
        assert_eq!(v["error"]["details"][0]["metadata"]["request_id"], "req_9");
        assert_eq!(ApiError::unauthorized("x").to_json(ErrorShape::Gemini, "r")["error"]["status"], "UNAUTHENTICATED");
    }

    #[test]
    fn anthropic_shape_matches_the_sdk() {
        let v = ApiError::unauthorized("bad key").to_json(ErrorShape::Anthropic, "r");
        assert_eq!(v["type"], "error");
        assert_eq!(v["error"]["type"], "authentication_error");
    }
}
