//! Embeddings on the metering engine: `POST /v1/embeddings`, OpenAI's request, answer and error
//! shapes (the official SDKs' `embeddings.create` works unchanged, float or base64).
//! Parse → price ([`EmbeddingsProduct::price`]) → run → render ([`EmbeddingsMeter`]).
//!
//! - **Input**: a string, an array of strings, an array of token ids, or an array of such arrays
//!   (OpenAI's four forms), at most [`MAX_INPUTS`] inputs, none empty.
//! - **Hold** (the input bound): a token of text is at least one UTF-8 byte, so a string input
//!   has at most as many tokens as bytes, and at most the model's per-input limit (a longer input
//!   is refused by the provider, unbilled); a token-array input has exactly its length. The sum,
//!   capped at the request limit ([`MAX_REQUEST_TOKENS`]), at the model's input price.
//! - **Meter**: the provider's whole JSON answer is read, `usage.prompt_tokens` is charged, and
//!   the body goes to the client unchanged with an `x_broker` object spliced in (the vectors are
//!   never re-serialized). An answer cut off after the 200, or one without usage, is billed the
//!   bound; an answer that is not an embedding list releases the hold.

use super::images::splice_member;
use super::media::{allow_only, broken_off, object, opt_choice, opt_str, present, req_text, split_provider, start_json_answer};
use crate::embedding_prices::{embedding_model, EmbeddingModel, MAX_INPUTS, MAX_REQUEST_TOKENS};
use crate::error::{ApiError, ErrorShape};
use crate::metering::{CallMeta, HoldPlan, Metered, Units, MEDIA_CLASS};
use crate::money::CreditRate;
use crate::payer::Bill;
use crate::product::{End, Finish, Meter, Product, ProviderHead, StreamHead, UpstreamRequest, WholeAnswer};
use crate::provider::Provider;
use crate::providers::{join, Endpoint};
use crate::usage::Usage;
use serde::Deserialize;
use serde_json::{json, Map, Value};

const FIELDS: &[&str] = &["model", "input", "encoding_format", "dimensions", "user"];

/// A checked embeddings request.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbeddingsRequest {
    /// Bare model name.
    pub model: String,
    /// Per input: its byte length (text) or token count (token ids), and whether it is text.
    pub inputs: Vec<(u64, bool)>,
    /// The provider's request body: the checked fields, forwarded.
    pub body: Map<String, Value>,
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::invalid(message)
}

/// One token-id input: a non-empty array of non-negative integers.
fn token_ids(a: &[Value], at: &str) -> Result<u64, ApiError> {
    if a.is_empty() {
        return Err(invalid(format!("`{at}` is empty: an input needs at least one token")));
    }
    if a.iter().any(|t| t.as_u64().is_none_or(|t| t > u32::MAX as u64)) {
        return Err(invalid(format!("`{at}` must hold token ids (non-negative integers)")));
    }
    Ok(a.len() as u64)
}

/// OpenAI's four input forms, each input as (bytes or tokens, is text).
fn inputs(v: &Value) -> Result<Vec<(u64, bool)>, ApiError> {
    let text = |s: &str, at: &str| {
        if s.is_empty() {
            Err(invalid(format!("`{at}` is an empty string: every input needs text")))
        } else {
            Ok((s.len() as u64, true))
        }
    };
    let list = match v {
        Value::String(s) => return Ok(vec![text(s, "input")?]),
        Value::Array(a) if a.is_empty() => return Err(invalid("`input` is an empty array")),
        Value::Array(a) => a,
        _ => return Err(invalid("`input` must be a string, an array of strings, an array of token ids or an array of token-id arrays")),
    };
    if list.len() > MAX_INPUTS {
        return Err(invalid(format!("`input` has {} items; at most {MAX_INPUTS} per request", list.len())));
    }
    if list.iter().all(Value::is_number) {
        return Ok(vec![(token_ids(list, "input")?, false)]);
    }
    // One form for all items: strings, or token-id arrays.
    let strings = list[0].is_string();
    list.iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::String(s) if strings => text(s, &format!("input[{i}]")),
            Value::Array(a) if !strings => Ok((token_ids(a, &format!("input[{i}]"))?, false)),
            _ => Err(invalid(format!("`input[{i}]` must be {} like the first item (one form for all items)", if strings { "a string" } else { "an array of token ids" }))),
        })
        .collect()
}

/// `POST /v1/embeddings`.
pub fn parse(body: &[u8]) -> Result<EmbeddingsRequest, ApiError> {
    let m = object(body)?;
    allow_only(&m, FIELDS, "/v1/embeddings")?;
    let (_, model) = split_provider(req_text(&m, "model")?, &[Provider::OpenAi])?;
    let inputs = inputs(present(&m, "input").ok_or_else(|| invalid("`input` is required"))?)?;
    opt_choice(&m, "encoding_format", &["float", "base64"])?;
    opt_str(&m, "user")?;
    if let Some(d) = present(&m, "dimensions") {
        if d.as_u64().is_none_or(|d| d == 0) {
            return Err(invalid("`dimensions` must be a positive integer"));
        }
    }
    let mut body = Map::new();
    body.insert("model".into(), json!(model));
    for k in ["input", "encoding_format", "dimensions", "user"] {
        if let Some(v) = present(&m, k) {
            body.insert(k.into(), v.clone());
        }
    }
    Ok(EmbeddingsRequest { model, inputs, body })
}

/// An embeddings request, priced.
#[derive(Debug)]
pub struct EmbeddingsProduct {
    pub req: EmbeddingsRequest,
    pub model: &'static EmbeddingModel,
    pub endpoint: Endpoint,
}

impl EmbeddingsProduct {
    pub fn price(req: EmbeddingsRequest, endpoint: Endpoint) -> Result<EmbeddingsProduct, ApiError> {
        let model = embedding_model(&req.model)?;
        if let Some(d) = req.body.get("dimensions").and_then(Value::as_u64) {
            if !model.shortens {
                return Err(invalid(format!("`dimensions` is not supported by {}: only the text-embedding-3 models shorten their vectors", model.model)));
            }
            if d > model.dimensions {
                return Err(invalid(format!("`dimensions` {d} exceeds {}'s {} dimensions", model.model, model.dimensions)));
            }
        }
        for (i, (tokens, is_text)) in req.inputs.iter().enumerate() {
            if !is_text && *tokens > model.max_input_tokens {
                return Err(invalid(format!("input {i} has {tokens} tokens; {} takes at most {} per input", model.model, model.max_input_tokens)));
            }
        }
        Ok(EmbeddingsProduct { req, model, endpoint })
    }

    /// The most input tokens the call can be billed (see the module doc).
    pub fn bound_tokens(&self) -> u64 {
        let sum: u64 = self.req.inputs.iter().map(|(n, _)| (*n).min(self.model.max_input_tokens)).sum();
        sum.min(MAX_REQUEST_TOKENS)
    }

    pub fn bound_pico(&self) -> u128 {
        self.bound_tokens() as u128 * self.model.input as u128
    }
}

impl Product for EmbeddingsProduct {
    fn class(&self) -> &'static str {
        MEDIA_CLASS
    }

    fn meta(&self) -> CallMeta {
        CallMeta { provider: Provider::OpenAi, model: self.model.model.to_string(), product: "embedding" }
    }

    fn error_shape(&self) -> ErrorShape {
        ErrorShape::OpenAi
    }

    fn hold(&self, rate: &CreditRate) -> (HoldPlan, u64) {
        HoldPlan::fixed(rate.millicredits_for_pico_usd(self.bound_pico()), self.req.inputs.len() as u64)
    }

    fn upstream(&self, _granted_units: u64) -> UpstreamRequest {
        let auth = vec![("authorization".into(), format!("Bearer {}", self.endpoint.api_key.expose()))];
        UpstreamRequest::json(join(&self.endpoint.base_url, "/v1/embeddings"), auth, &Value::Object(self.req.body.clone()))
    }

    fn upstream_error(&self, status: u16, body: &[u8]) -> ApiError {
        super::media::upstream_error(Provider::OpenAi, status, body)
    }

    fn meter(self: Box<Self>, billing: Bill, _granted_units: u64) -> Box<dyn Meter> {
        Box::new(EmbeddingsMeter { product: *self, billing, body: Vec::new() })
    }
}

/// What the meter reads of an answer; the vectors are skipped, never copied.
#[derive(Deserialize)]
struct Answer {
    object: Option<String>,
    data: Option<Vec<serde::de::IgnoredAny>>,
    usage: Option<Value>,
}

pub struct EmbeddingsMeter {
    product: EmbeddingsProduct,
    billing: Bill,
    body: Vec<u8>,
}

impl EmbeddingsMeter {
    /// What a call whose usage will never be known is billed: the bound (the hold).
    fn bound(&self, why: String) -> Metered {
        let usage = Usage { input: self.product.bound_tokens(), ..Usage::default() };
        Metered { cost_pico_usd: self.product.bound_pico(), units: Units::Tokens(usage), exact: false, note: Some(why), warning: None }
    }
}

impl Meter for EmbeddingsMeter {
    fn stream_head(&self) -> Option<StreamHead> {
        None
    }

    fn start(&mut self, head: &ProviderHead) -> Result<(), ApiError> {
        start_json_answer(head, &mut self.body)
    }

    fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        self.body.extend_from_slice(chunk);
        Vec::new()
    }

    fn finish(&mut self, end: End) -> Finish {
        if end != End::Complete {
            // The provider answered 200: the vectors were computed and their usage is lost.
            let m = self.bound(format!("{}; usage never read: billed the upper bound (the hold)", end.describe()));
            return broken_off(&self.billing, &end, m, "");
        }
        let parsed = serde_json::from_slice::<Answer>(&self.body).ok().filter(|a| a.object.as_deref() == Some("list") && a.data.is_some());
        let Some(a) = parsed else {
            let e = ApiError::upstream("openai's answer was not an embedding list the gateway can read; nothing was charged").public();
            return Finish { tail: Vec::new(), answer: Err(e), metered: None };
        };
        let m = match a.usage.as_ref().and_then(|u| u.get("prompt_tokens")).and_then(Value::as_u64) {
            Some(tokens) => Metered::exact(tokens as u128 * self.product.model.input as u128, Units::Tokens(Usage { input: tokens, ..Usage::default() })),
            None => self.bound("the answer reported no usage: billed the upper bound (the hold)".into()),
        };
        let charge = self.billing.charge(m.cost_pico_usd);
        let body = splice_member(std::mem::take(&mut self.body), "x_broker", &self.billing.broker_json(&charge));
        let answer = WholeAnswer { status: 200, content_type: "application/json".into(), headers: self.billing.credit_headers(&charge), body };
        Finish { tail: Vec::new(), answer: Ok(answer), metered: Some(m) }
    }
}

#[cfg(test)]
#[path = "embeddings_tests.rs"]
mod tests;
