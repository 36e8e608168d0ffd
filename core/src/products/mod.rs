//! The products the gateway sells, each on the metering engine: parse (the request modules),
//! price, run (its `Product` and `Meter`), render. Chat and the Responses API; and the media: images, speech, music
//! (with what they share in `media` and `audio_meter`).

pub mod audio_meter;
pub mod chat;
pub mod chat_render;
pub mod count_tokens;
pub mod embeddings;
pub mod gemini_count;
pub mod gemini_native;
pub mod images;
pub mod media;
pub mod music;
pub mod responses;
pub mod speech;
