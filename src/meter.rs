//! The metering engine on the platform: runs any product's call (chat, images, speech, music).
//! Every money decision is `broker_core::metering`'s; this module only carries them out:
//!
//! 1. admission (one blocking Upstash round trip; a lost answer schedules a release),
//! 2. the provider call, entirely inside `wait_until`, so a client that hangs up cannot stop
//!    the metering: the handler only waits for the answer the task hands back,
//! 3. the provider's body read chunk by chunk under an idle timeout (`UPSTREAM_TIMEOUT_MS` of
//!    silence), and, once the client is gone, under a deadline (`CLIENT_GONE_DEADLINE_MS`) below
//!    the platform's `waitUntil` allowance: past it the call is cancelled and settled with what
//!    is known (bounded by the hold),
//! 4. forwarding to a streaming client through a bounded buffer: a client that stops reading is
//!    dropped (the call is still metered to its end), so memory stays bounded,
//! 5. settlement (retried on Redis errors; idempotent per request id). A settlement that never
//!    lands is charged the hold by the sweeper.

use crate::context::Ctx;
use crate::fetch;
use crate::http::{self, HandlerResult};
use crate::upstash::Upstash;
use broker_core::error::{ApiError, ErrorKind};
use broker_core::keys::hash_key;
use broker_core::metering::{Admission, Billing, Settlement};
use broker_core::money::credits_string;
use broker_core::product::{End, Product, ProviderHead, StreamHead, UpstreamRequest, WholeAnswer};
use broker_core::store::Store;
use futures_channel::{mpsc, oneshot};
use futures_util::future::{select, Either};
use futures_util::StreamExt;
use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;
use worker::{console_error, console_log, Delay, Response};

/// Bytes a streaming client may leave unread before it is considered gone.
const CLIENT_BUFFER_BYTES: usize = 1 << 20;
/// Most of a provider's error body read (for its message).
const ERROR_BODY_BYTES: usize = 64 * 1024;
/// Waits between settlement attempts (the first is immediate), well inside `waitUntil`.
const SETTLE_RETRY_MS: [u64; 3] = [250, 1_000, 3_000];

type ClientChunk = Result<Vec<u8>, worker::Error>;

/// What the call task hands the handler.
enum Answer {
    Whole(Result<WholeAnswer, ApiError>),
    Stream { head: StreamHead, body: mpsc::UnboundedReceiver<Vec<u8>>, unread: Rc<Cell<usize>> },
}

/// Runs a product's call for the key `api_key`: admission, then the call and its settlement in
/// `wait_until`. Returns the client's answer (whole, or a stream of the provider's answer).
pub async fn run(ctx: &Ctx, api_key: &str, product: Box<dyn Product>) -> HandlerResult {
    let settings = ctx.settings();
    let (hold, units) = product.hold(&settings.rate);
    let meta = product.meta();
    let store = ctx.store()?;
    let admission = Admission {
        key_hash: hash_key(api_key),
        now_ms: ctx.now_ms(),
        request_id: ctx.request_id(),
        class: product.class(),
        client_ip: ctx.client_ip(),
        limits: &settings.limits,
        hold,
        units,
        meta: &meta,
    };
    let admitted = match store.admit(&admission).await {
        Ok(a) => a,
        Err(e) => {
            if e.kind == ErrorKind::Unavailable {
                // The script may have run and its answer got lost: release whatever it held.
                let release = Billing::release(ctx.request_id(), "the admission's answer was lost", ctx.now_ms(), settings.ledger_keep);
                ctx.wait_until(settle(store, release));
            }
            return Err(e);
        }
    };
    let mut headers = admitted.rate_headers();
    let billing = Billing::new(ctx.request_id(), settings.rate, &admitted);
    let call = Call {
        upstream: product.upstream(admitted.granted_units),
        granted: admitted.granted_units,
        product,
        billing,
        store,
        idle_ms: settings.upstream_timeout_ms,
        deadline_ms: settings.client_gone_deadline_ms,
        keep: settings.ledger_keep,
    };
    let (tx, rx) = oneshot::channel();
    ctx.wait_until(call.run(tx));
    match rx.await.unwrap_or_else(|_| Answer::Whole(Err(ApiError::internal("the call ended without an answer")))) {
        Answer::Whole(Ok(w)) => {
            headers.extend(w.headers);
            Ok(http::bytes(w.status, &w.content_type, w.body, &headers))
        }
        Answer::Whole(Err(e)) => Err(e.with_headers(headers)),
        Answer::Stream { head, body, unread } => {
            let body = body.map(move |chunk| -> ClientChunk {
                unread.set(unread.get().saturating_sub(chunk.len()));
                Ok(chunk)
            });
            let mut resp = Response::from_stream(body).map_err(|e| ApiError::internal(format!("stream: {e}")))?;
            headers.extend(head.headers);
            // The charge is known only at the end, so it is in the last event; the head says what
            // is held and what remains while the hold is open (a lower bound of the final balance).
            headers.push(("x-credits-charged".into(), "pending".into()));
            headers.push(("x-credits-held".into(), credits_string(admitted.hold_mc)));
            headers.push(("x-credits-remaining".into(), credits_string(admitted.balance_after_mc)));
            let h = resp.headers_mut();
            let _ = h.set("content-type", &head.content_type);
            for (k, v) in &headers {
                let _ = h.set(k, v);
            }
            Ok(resp)
        }
    }
}

/// An admitted call, owned so it can run in `wait_until`.
struct Call {
    upstream: UpstreamRequest,
    granted: u64,
    product: Box<dyn Product>,
    billing: Billing,
    store: Upstash,
    idle_ms: u64,
    deadline_ms: u64,
    keep: u64,
}

/// The streaming client's side: bytes go through a bounded buffer.
struct Client {
    tx: mpsc::UnboundedSender<Vec<u8>>,
    unread: Rc<Cell<usize>>,
}

impl Client {
    /// False once the client is gone (hung up, or stopped reading with a full buffer).
    fn send(&self, bytes: Vec<u8>) -> bool {
        if bytes.is_empty() {
            return !self.tx.is_closed();
        }
        if self.unread.get() + bytes.len() > CLIENT_BUFFER_BYTES {
            self.tx.close_channel();
            return false;
        }
        self.unread.set(self.unread.get() + bytes.len());
        self.tx.unbounded_send(bytes).is_ok()
    }
}

enum Next {
    Chunk(Vec<u8>),
    End,
    Broken(String),
    Timeout,
}

async fn next_chunk(body: &mut worker::ByteStream, wait_ms: u64) -> Next {
    let read = body.next();
    let timer = Delay::from(Duration::from_millis(wait_ms));
    futures_util::pin_mut!(read);
    futures_util::pin_mut!(timer);
    match select(read, timer).await {
        Either::Left((Some(Ok(bytes)), _)) => Next::Chunk(bytes),
        Either::Left((Some(Err(e)), _)) => Next::Broken(e.to_string()),
        Either::Left((None, _)) => Next::End,
        Either::Right(_) => Next::Timeout,
    }
}

fn now_ms() -> u64 {
    worker::Date::now().as_millis()
}

impl Call {
    async fn run(self, answer: oneshot::Sender<Answer>) {
        let Call { upstream, granted, product, billing, store, idle_ms, deadline_ms, keep } = self;
        let rid = billing.request_id.clone();
        let released = |why: &str| Billing::release(&rid, why, now_ms(), keep);
        let sent = match fetch::send(&upstream, idle_ms).await {
            Ok(s) => s,
            Err(e) => {
                console_error!("{rid} provider call failed: {}", e.message);
                let why = e.kind.type_name();
                let _ = answer.send(Answer::Whole(Err(e)));
                return settle(store, released(why)).await;
            }
        };
        let fetch::Sent { mut response, cancel } = sent;
        let status = response.status_code();
        if !(200..300).contains(&status) {
            let body = read_capped(&mut response, ERROR_BODY_BYTES).await;
            console_log!("{rid} provider answered {status}: {}", String::from_utf8_lossy(&body[..body.len().min(500)]));
            let e = product.upstream_error(status, &body);
            let why = format!("the provider answered {status}");
            let _ = answer.send(Answer::Whole(Err(e)));
            return settle(store, released(&why)).await;
        }
        let head = ProviderHead { status, headers: response.headers().entries().map(|(k, v)| (k.to_ascii_lowercase(), v)).collect() };
        let mut meter = product.meter(billing.clone(), granted);
        if let Err(e) = meter.start(&head) {
            cancel.abort();
            let _ = answer.send(Answer::Whole(Err(e)));
            return settle(store, released("the provider's answer was not in its format")).await;
        }
        let streaming = meter.stream_head();
        let mut answer = Some(answer);
        let mut client: Option<Client> = None;
        let mut gone_at: Option<u64> = None;
        let mut client_note: Option<&str> = None;
        let end = match response.stream() {
            Err(_) => End::Complete,
            Ok(mut body) => loop {
                let client_left = match &client {
                    Some(c) => c.tx.is_closed(),
                    None => answer.as_ref().is_none_or(|a| a.is_canceled()),
                };
                if client_left && gone_at.is_none() {
                    gone_at = Some(now_ms());
                    client_note.get_or_insert("the client left before the end; the call was metered without it");
                }
                let wait = match gone_at {
                    None => idle_ms,
                    Some(t) => match deadline_ms.checked_sub(now_ms().saturating_sub(t)) {
                        Some(left) if left > 0 => left.min(idle_ms),
                        _ => break End::ClientGoneDeadline,
                    },
                };
                match next_chunk(&mut body, wait).await {
                    Next::Chunk(bytes) => {
                        let out = meter.push(&bytes);
                        if let (Some(head), false) = (&streaming, out.is_empty()) {
                            if client.is_none() && gone_at.is_none() {
                                client = open_stream(&mut answer, head);
                            }
                            if let Some(c) = &client {
                                if !c.send(out) && gone_at.is_none() {
                                    gone_at = Some(now_ms());
                                    client_note = Some("the client stopped reading; the answer was metered without it");
                                }
                            }
                        }
                    }
                    Next::End => break End::Complete,
                    Next::Broken(how) => break End::Broken(how),
                    Next::Timeout if gone_at.is_some() && wait < idle_ms => break End::ClientGoneDeadline,
                    Next::Timeout => break End::IdleTimeout,
                }
            },
        };
        if matches!(end, End::IdleTimeout | End::ClientGoneDeadline) {
            cancel.abort();
        }
        let mut finish = meter.finish(end);
        match (&streaming, &client) {
            (Some(_), Some(c)) => {
                c.send(std::mem::take(&mut finish.tail));
                c.tx.close_channel();
            }
            (Some(head), None) if !finish.tail.is_empty() && gone_at.is_none() => {
                if let Some(c) = open_stream(&mut answer, head) {
                    c.send(std::mem::take(&mut finish.tail));
                    c.tx.close_channel();
                }
            }
            _ => {}
        }
        if let Some(a) = answer.take() {
            let _ = a.send(Answer::Whole(finish.answer));
        }
        let settlement = match finish.metered {
            Some(mut m) => {
                if let Some(n) = client_note {
                    m.note = Some(m.note.map_or(n.to_string(), |x| format!("{x}; {n}")));
                }
                billing.settle(&m, now_ms(), keep)
            }
            None => released("the provider served nothing billable"),
        };
        settle(store, settlement).await;
    }
}

/// Hands the handler a streaming answer; `None` when the client already left.
fn open_stream(answer: &mut Option<oneshot::Sender<Answer>>, head: &StreamHead) -> Option<Client> {
    let a = answer.take()?;
    let (tx, rx) = mpsc::unbounded();
    let unread = Rc::new(Cell::new(0));
    a.send(Answer::Stream { head: head.clone(), body: rx, unread: unread.clone() }).ok()?;
    Some(Client { tx, unread })
}

async fn read_capped(resp: &mut Response, cap: usize) -> Vec<u8> {
    let mut out = Vec::new();
    if let Ok(mut body) = resp.stream() {
        while let Some(Ok(chunk)) = body.next().await {
            out.extend_from_slice(&chunk[..chunk.len().min(cap - out.len())]);
            if out.len() >= cap {
                break;
            }
        }
    }
    out
}

/// Applies a settlement, retrying Redis errors (it is idempotent per request id). If it never
/// lands, the hold stays reserved and the sweeper charges it: money is never lost or given away.
pub async fn settle(store: Upstash, s: Settlement) {
    let mut waits = SETTLE_RETRY_MS.iter();
    loop {
        match store.settle(&s).await {
            Ok(reply) => {
                console_log!("{} settled: charge {} mc: {reply:?}", s.request_id, s.charge_mc);
                return;
            }
            Err(e) => match waits.next() {
                Some(ms) if e.kind == ErrorKind::Unavailable => {
                    console_error!("{} settlement failed, retrying in {ms} ms: {}", s.request_id, e.message);
                    Delay::from(Duration::from_millis(*ms)).await;
                }
                _ => {
                    console_error!("{} SETTLE FAILED (the sweeper will charge the hold): charge {} mc: {}", s.request_id, s.charge_mc, e.message);
                    return;
                }
            },
        }
    }
}
