//! Platform-free core of the AI API Broker.
//!
//! Owns everything that decides money and wire formats: the price table and the credit
//! arithmetic, provider request/response mapping, the SSE parser and usage extraction, the
//! Stripe signature check, API-key hashing, the Redis (Lua) scripts and the decoding of their
//! replies, and the one error type of the request path.
//!
//! Leaves out everything that touches the platform: HTTP, `fetch`, timers, the Worker `Env`.
//! Nothing here depends on `worker`; it compiles and is tested on the host with `cargo test`.

pub mod chat;
pub mod config;
pub mod error;
pub mod keys;
pub mod ledger;
pub mod money;
pub mod price_table;
pub mod pricing;
pub mod providers;
pub mod scripts;
pub mod sha1;
pub mod sse;
pub mod stripe;
pub mod usage;
