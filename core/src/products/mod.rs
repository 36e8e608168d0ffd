//! The products the gateway sells, each on the metering engine: parse (the request modules),
//! price, run (its `Product` and `Meter`), render.

pub mod chat;
pub mod chat_render;
