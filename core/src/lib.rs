//! Platform-free core of the AI API Broker.
//!
//! Owns everything that decides money and wire formats: the price table and the credit
//! arithmetic, the metering engine's decisions (holds, admission, settlement), each product's
//! request parsing and meter, provider request/response mapping, the SSE parser and usage
//! extraction, Stripe and PayPal event handling, API-key hashing, the Redis (Lua) scripts with
//! their inputs and replies behind a typed store, every flow a route runs (admin grants and keys,
//! account reads, checkout, payment webhooks), and the one error type of the request path.
//!
//! Leaves out everything that touches the platform: HTTP, `fetch`, timers, the Worker `Env`
//! (what a flow needs of it comes through `call::Call`).
//! Nothing here depends on `worker`; it compiles and is tested on the host with `cargo test`.
//!
//! Imports flow one way (`scripts/check-imports.mjs` checks it), from the leaves up: the base
//! types (`error`, `money`, `provider`, `usage`, `keys`, `sse`, `ratelimit`) ← the prices
//! (`price_table`, `pricing`, `media_prices`, `embedding_prices`) ← `scripts` and `redis_keys` ←
//! `metering` (the engine, credits only) ← `rapidapi` ← `store` ← `payer` (who pays: a key's
//! credits or RapidAPI, each kind with its own store operations) ← `product` ← `providers` ←
//! `responses` (the Responses API on `chat`'s request) ← `products`; `chat`, the parsed chat
//! request, needs only `error` and `provider`. `config` checks each setting with the module that
//! owns its format (`ratelimit`, `rapidapi`, `stripe_billing`, …) and is read by `call`, the
//! products and the flows. The flows a route runs (`accounts`, `admin`, `checkout`, `payments`,
//! `disputes`) sit on `store`, and nothing below them imports them. Which module owns which flow:
//! docs/architecture.md.

pub mod accounts;
pub mod admin;
pub mod alerts;
pub mod auto_topup;
pub mod bills;
pub mod call;
pub mod chat;
pub mod checkout;
pub mod clock;
pub mod config;
pub mod controls;
pub mod cors;
pub mod disputes;
pub mod embedding_prices;
pub mod error;
pub mod idempotency;
pub mod keys;
pub mod ledger;
pub mod lowbal;
pub mod media_prices;
pub mod metering;
pub mod money;
pub mod payer;
pub mod payments;
pub mod paypal;
pub mod paypal_credits;
pub mod price_table;
pub mod pricing;
pub mod product;
pub mod products;
pub mod provider;
pub mod quote;
pub mod providers;
pub mod rapidapi;
pub mod ratelimit;
pub mod read_pacing;
pub mod routes;
pub mod redis_keys;
pub mod responses;
pub mod scripts;
pub mod spend_cap;
pub mod sse;
pub mod stats;
pub mod store;
pub mod stripe;
pub mod stripe_billing;
pub mod sub_key_fields;
pub mod subkeys;
pub mod usage;
