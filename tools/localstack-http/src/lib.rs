//! HTTP/1.1 server pieces shared by the host tools of the local test stack (`upstash-front`,
//! `mock-providers`): the parsed [`Request`] with its header helpers, response heads and the
//! streaming [`write_response`] (chunked bodies, scripted delays, abrupt cuts), HTTP dates and
//! base64. No async runtime, no HTTP crates: plain `std::net::TcpStream`.
//!
//! Each tool keeps its own request *parser* (they answer malformed input differently, see their
//! `http.rs`); what they parse into and how responses go out lives here.

pub mod base64;
pub mod date;
mod request;
mod response;

pub use request::{Request, CONTINUE};
pub use response::{reason, response_head, write_response, Body, Response};
