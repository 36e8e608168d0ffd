//! Embedding models and their list prices (part of the price table: `PRICE_TABLE_VERSION` names
//! these too).
//!
//! Sources (USD per 1M input tokens; embeddings have no output price):
//! - text-embedding-3-small 0.02, text-embedding-3-large 0.13, text-embedding-ada-002 0.10:
//!   pydantic/genai-prices `prices/providers/openai.yml` (prices_checked 2025-07-04, HEAD
//!   2026-08-21) and LiteLLM `model_prices_and_context_window.json` (`input_cost_per_token` 2e-8,
//!   1.3e-7, 1e-7; last_updated 2026-07-24) agree. Input limit 8,191 tokens per input (LiteLLM).
//!
//! Not sold: Gemini's embedding models. gemini-embedding-001 is listed at 0.15 (same two sources),
//! but Gemini's `embedContent` answer reports no token usage, so a call could only ever be billed
//! its upper bound; it stays off until it can be billed what it used.

use crate::error::{ApiError, ErrorKind};
use crate::money::{credits_json, CreditRate};
use serde_json::{json, Value};

/// One embedding model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmbeddingModel {
    pub model: &'static str,
    /// Micro-USD per 1M input tokens (= pico-USD per token).
    pub input: u64,
    /// Most tokens one input may have (the provider refuses longer ones).
    pub max_input_tokens: u64,
    /// Length of the vector it returns.
    pub dimensions: u64,
    /// Whether `dimensions` may shorten the vector (the text-embedding-3 models).
    pub shortens: bool,
}

pub static EMBEDDING_MODELS: &[EmbeddingModel] = &[
    EmbeddingModel { model: "text-embedding-3-small", input: 20_000, max_input_tokens: 8_191, dimensions: 1_536, shortens: true },
    EmbeddingModel { model: "text-embedding-3-large", input: 130_000, max_input_tokens: 8_191, dimensions: 3_072, shortens: true },
    EmbeddingModel { model: "text-embedding-ada-002", input: 100_000, max_input_tokens: 8_191, dimensions: 1_536, shortens: false },
];

/// Most inputs in one request (OpenAI's limit).
pub const MAX_INPUTS: usize = 2_048;
/// Most tokens over all inputs of one request (OpenAI's limit).
pub const MAX_REQUEST_TOKENS: u64 = 300_000;

/// The embedding model of that name; an unknown one is a 400 (never priced at zero).
pub fn embedding_model(name: &str) -> Result<&'static EmbeddingModel, ApiError> {
    EMBEDDING_MODELS.iter().find(|m| m.model == name).ok_or_else(|| {
        let names: Vec<&str> = EMBEDDING_MODELS.iter().map(|m| m.model).collect();
        ApiError::new(ErrorKind::UnknownModel, format!("embedding model `{name}` is not priced; use one of: {}", names.join(", ")))
    })
}

/// `/v1/models` entries of the embedding models.
pub fn catalogue(rate: &CreditRate) -> Vec<Value> {
    EMBEDDING_MODELS
        .iter()
        .map(|m| {
            json!({
                "id": format!("openai/{}", m.model),
                "object": "model",
                "owned_by": "openai",
                "provider": "openai",
                "model": m.model,
                "kind": "embedding",
                "max_input_tokens": m.max_input_tokens,
                "dimensions": m.dimensions,
                "credits_per_million_tokens": { "input": credits_json(rate.millicredits_for_pico_usd(m.input as u128 * 1_000_000)) },
                "usd_per_million_tokens": { "input": m.input as f64 / 1e6 },
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_prices_and_unknown_models() {
        assert_eq!(embedding_model("text-embedding-3-small").unwrap().input, 20_000);
        assert_eq!(embedding_model("text-embedding-3-large").unwrap().input, 130_000);
        assert_eq!(embedding_model("text-embedding-ada-002").unwrap().input, 100_000);
        let e = embedding_model("gemini-embedding-001").unwrap_err();
        assert_eq!(e.status(), 400);
        assert!(e.message.contains("text-embedding-3-small"));
    }
}
