//! Platform-free core of the AI API Broker.
//!
//! Owns everything that decides money and wire formats: the price table and the credit
//! arithmetic, the metering engine's decisions (holds, admission, settlement), each product's
//! request parsing and meter, provider request/response mapping, the SSE parser and usage
//! extraction, Stripe and PayPal event handling, API-key hashing, the Redis (Lua) scripts with
//! their inputs and replies behind a typed store, and the one error type of the request path.
//!
//! Leaves out everything that touches the platform: HTTP, `fetch`, timers, the Worker `Env`.
//! Nothing here depends on `worker`; it compiles and is tested on the host with `cargo test`.
//!
//! Imports flow one way: `error`, `money`, `provider`, `usage` ← `price_table`/`pricing`/`media_prices` ←
//! `metering`, `product` ← `providers` ← `chat` ← `responses` (and the media products); `scripts` ←
//! `store`. No module imports one that imports it back.

pub mod chat;
pub mod clock;
pub mod config;
pub mod cors;
pub mod disputes;
pub mod embedding_prices;
pub mod error;
pub mod keys;
pub mod ledger;
pub mod media_prices;
pub mod metering;
pub mod money;
pub mod paypal;
pub mod paypal_credits;
pub mod price_table;
pub mod pricing;
pub mod product;
pub mod products;
pub mod provider;
pub mod providers;
pub mod rapidapi;
pub mod ratelimit;
pub mod routes;
pub mod redis_keys;
pub mod responses;
pub mod scripts;
pub mod sse;
pub mod stats;
pub mod store;
pub mod stripe;
pub mod stripe_billing;
pub mod usage;
