//! What a product (chat, images, speech, music) gives the metering engine. A product is parsed
//! from the client's request and priced before anything touches Redis; the engine then admits it
//! (hold), sends its [`UpstreamRequest`], feeds the provider's answer to its [`Meter`], answers
//! the client, and settles what the meter measured. Each product is parse → price → run → render.

use crate::error::{ApiError, ErrorShape};
use crate::metering::{CallMeta, HoldPlan, Metered};
use crate::money::CreditRate;
use crate::payer::Bill;

/// A request ready for `fetch`.
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamRequest {
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl UpstreamRequest {
    /// A JSON POST.
    pub fn json(url: String, headers: Vec<(String, String)>, body: &serde_json::Value) -> UpstreamRequest {
        let mut headers = headers;
        headers.push(("content-type".into(), "application/json".into()));
        UpstreamRequest { url, headers, body: body.to_string().into_bytes() }
    }
}

/// The provider's response head (2xx).
#[derive(Debug, Clone, Default)]
pub struct ProviderHead {
    pub status: u16,
    /// Lower-case names.
    pub headers: Vec<(String, String)>,
}

impl ProviderHead {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The answer's content type starts with `want` (`what` names it for the 502 otherwise).
    pub fn expect_content_type(&self, want: &str, what: &str) -> Result<(), ApiError> {
        match self.header("content-type") {
            Some(ct) if ct.starts_with(want) => Ok(()),
            other => Err(ApiError::upstream(format!("the provider answered `{}` instead of {what}", other.unwrap_or("no content type")))),
        }
    }
}

/// How the provider's body ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// The body ended normally.
    Complete,
    /// The connection broke (the message says how).
    Broken(String),
    /// No byte from the provider within the idle timeout: the gateway cut the call.
    IdleTimeout,
    /// The client left and the call ran past the deadline for finishing without it: cut.
    ClientGoneDeadline,
}

impl End {
    /// Why usage may be missing, for the ledger.
    pub fn describe(&self) -> String {
        match self {
            End::Complete => "the provider's answer ended without reporting usage".into(),
            End::Broken(how) => format!("the provider's answer broke off ({how})"),
            End::IdleTimeout => "the provider stalled and the call was cut".into(),
            End::ClientGoneDeadline => "the client left and the call was cut at the deadline".into(),
        }
    }
}

/// The head of a streamed answer.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamHead {
    pub content_type: String,
    pub headers: Vec<(String, String)>,
}

/// An answer sent once complete.
#[derive(Debug, Clone, PartialEq)]
pub struct WholeAnswer {
    pub status: u16,
    pub content_type: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// What a meter hands back when the provider's body is over.
#[derive(Debug)]
pub struct Finish {
    /// Last bytes of a streamed answer whose head is already sent.
    pub tail: Vec<u8>,
    /// The client's answer when nothing was streamed yet (a whole answer, or a stream that
    /// never produced a byte).
    pub answer: Result<WholeAnswer, ApiError>,
    /// What to charge; `None`: the provider served nothing billable, the hold is released.
    pub metered: Option<Metered>,
}

/// Reads one call's provider answer: meters it and renders the client's answer.
pub trait Meter {
    /// The streamed answer's head, or `None` for an answer sent whole at the end.
    fn stream_head(&self) -> Option<StreamHead>;
    /// The provider answered 2xx: is this the body the meter expects (content type)?
    fn start(&mut self, head: &ProviderHead) -> Result<(), ApiError>;
    /// Provider bytes in, client bytes out (streamed answers). The engine sends the stream's
    /// head with the first bytes a meter returns, so a body that is garbage from the start can
    /// still be answered with a clean 502.
    fn push(&mut self, chunk: &[u8]) -> Vec<u8>;
    fn finish(&mut self, end: End) -> Finish;
    /// Whether the provider's body is a whole answer that comes right after its head, read in
    /// one piece (bounded by the idle timeout as a whole) rather than piece by piece.
    fn whole_body(&self) -> bool {
        false
    }
    /// Whether a streamed answer that ended this way is ended with an error instead of closed:
    /// for answers that cannot say in-band that they are incomplete (audio), so the client cannot
    /// take a cut body for a whole one. Chat says it in its last event instead.
    fn abort_client_stream(&self, _end: &End) -> bool {
        false
    }
    /// Whether the streamed answer is the provider's bytes unchanged (`push` returns its input;
    /// only `finish` may add a tail): the engine may then hand the client the runtime's own pipe
    /// of the provider's body and feed `push` a copy, read in large pieces (issue 22).
    fn byte_exact_stream(&self) -> bool {
        false
    }
}

/// A parsed, priced request of one product, ready for the engine.
pub trait Product {
    /// The rate-limit class of the route it came through.
    fn class(&self) -> &'static str;
    fn meta(&self) -> CallMeta;
    fn error_shape(&self) -> ErrorShape;
    /// The hold (and the output units it covers when fixed).
    fn hold(&self, rate: &CreditRate) -> (HoldPlan, u64);
    /// The provider request, for the output units admission granted.
    fn upstream(&self, granted_units: u64) -> UpstreamRequest;
    /// A provider's non-2xx answer as the client sees it (nothing was served: released).
    fn upstream_error(&self, status: u16, body: &[u8]) -> ApiError;
    fn meter(self: Box<Self>, billing: Bill, granted_units: u64) -> Box<dyn Meter>;
}
