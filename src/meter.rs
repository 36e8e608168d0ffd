//! The metering engine on the platform: runs any product's call (chat, images, speech, music).
//! Every money decision is `broker_core::metering`'s; this module only carries them out:
//!
//! 1. admission (one blocking Upstash round trip; a lost answer schedules a release),
//! 2. the provider call, entirely inside `wait_until`, so a client that hangs up cannot stop
//!    the metering: the handler only waits for the answer the task hands back. The response
//!    head is awaited the product's head timeout (`HEAD_TIMEOUT_<PRODUCT>_MS`); a request sent
//!    and not answered in time is charged its hold (the provider may have done the work), a
//!    request that failed to send (connection refused) releases it,
//! 3. the provider's body read chunk by chunk under an idle timeout (`UPSTREAM_TIMEOUT_MS` of
//!    silence), and, once the client is gone, under a deadline (`CLIENT_GONE_DEADLINE_MS`) below
//!    the platform's `waitUntil` allowance: past it the call is cancelled and settled with what
//!    is known (bounded by the hold),
//! 4. forwarding to a streaming client: a byte-exact stream (the provider's own format, nothing
//!    to change) is the runtime's own pipe of the provider's body (`crate::pipe`), the meter
//!    reading a teed copy in few, large pieces (`broker_core::read_pacing`); any other stream
//!    goes through a bounded buffer: the client's body is a JS `ReadableStream` the pump
//!    enqueues each piece into (one call, no promise per chunk), with a 1 MiB byte-length
//!    high-water mark; while it is full the provider is not read (its flow control slows it), and
//!    a client that reads nothing for the client-gone deadline is dropped (the call is still
//!    metered), so memory stays bounded,
//! 5. settlement (retried on Redis errors; idempotent per request id). A settlement that never
//!    lands is charged the hold by the sweeper.

use crate::context::Ctx;
use crate::fetch;
use crate::fields;
use crate::http::{self, HandlerResult};
use crate::log::{Level, Redactor};
use crate::pipe::{Pipe, PipeEnd};
use crate::upstash::Upstash;
use broker_core::controls::CallControls;
use broker_core::error::{ApiError, ErrorKind};
use broker_core::idempotency::{StoredAnswer, MAX_STORED_BODY};
use broker_core::metering::Metered;
use broker_core::money::credits_json;
use broker_core::payer::{Bill, CallFacts, Closing, Payer, Recorded, Refused};
use broker_core::product::{End, Product, ProviderHead, StreamHead, UpstreamRequest, WholeAnswer};
use broker_core::read_pacing::{self, ReadPacing};
use broker_core::scripts::{Retention, SettleReply};
use futures_channel::oneshot;
use futures_util::future::{select, Either};
use futures_util::StreamExt;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;
use serde_json::{Map, Value};
use web_sys::ReadableStreamDefaultController;
use worker::wasm_bindgen::closure::Closure;
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::{js_sys, Delay, Response};

/// Bytes a streaming client may leave unread before the provider is no longer read for it.
const CLIENT_BUFFER_BYTES: usize = 1 << 20;
/// How often a full client buffer is checked for progress.
const DRAIN_POLL_MS: u64 = 20;
/// Most of a provider's error body read (for its message).
const ERROR_BODY_BYTES: usize = 64 * 1024;
/// Waits between settlement attempts (the first is immediate), well inside `waitUntil`.
const SETTLE_RETRY_MS: [u64; 3] = [250, 1_000, 3_000];

/// What the call task hands the handler, with the facts of the request's log line.
enum Answer {
    Whole(Result<WholeAnswer, ApiError>, Map<String, Value>),
    Stream { head: StreamHead, body: web_sys::ReadableStream, facts: Map<String, Value> },
}

/// What a call's log lines say about it, from admission on.
#[derive(Clone)]
pub struct CallLog {
    pub redactor: Redactor,
    pub request_id: String,
    pub fields: Map<String, Value>,
    pub slow_upstream_ms: u64,
    pub high_cost_usd_micro: u64,
    /// The key's low-balance watchers, checked after its settlement (`crate::watch`).
    pub watch: Option<Rc<crate::watch::Watch>>,
}

impl CallLog {
    pub fn for_request(ctx: &Ctx) -> CallLog {
        CallLog {
            redactor: ctx.redactor().clone(),
            request_id: ctx.request_id().to_string(),
            fields: Map::new(),
            slow_upstream_ms: ctx.settings().slow_upstream_ms,
            high_cost_usd_micro: ctx.settings().high_cost_usd_micro,
            watch: None,
        }
    }

    fn line(&self, level: Level, msg: &str, extra: Map<String, Value>) {
        let mut f = fields! {"request_id" => self.request_id};
        f.extend(self.fields.clone());
        f.extend(extra);
        self.redactor.line(level, msg, f);
    }
}

/// The metered facts of a call, for its log lines.
fn metered_facts(billing: &Bill, m: &Metered) -> Map<String, Value> {
    let charge = billing.charge(m.cost_pico_usd);
    let mut f = fields! {
        "credits_charged" => credits_json(charge.charged_mc),
        "cost_usd" => broker_core::metering::micro_usd(m.cost_pico_usd) as f64 / 1e6,
        "usage" => m.units.to_json(),
        "exact" => m.exact,
    };
    // What was unusual (a bound charged, a provider's count that differed): the ledger says it too.
    if let Some(note) = &m.note {
        f.insert("metering_note".into(), Value::from(note.as_str()));
    }
    f
}

/// A metered call's money controls (`X-Max-Credits`, `max_credits`, `Idempotency-Key`; issue
/// 24), and the body its route parses (without `max_credits`).
pub fn controls(req: &worker::Request, body: Vec<u8>) -> Result<(CallControls, Vec<u8>), ApiError> {
    let h = req.headers();
    CallControls::read(|name| h.get(name).ok().flatten(), &req.path(), body)
}

/// Runs a product's call for `payer`: admission, then the call and its settlement in
/// `wait_until`. Returns the client's answer (whole, or a stream of the provider's answer).
/// With a spending cap the hold is narrowed to it first (or the call refused, nothing held);
/// a retry with a known `Idempotency-Key` gets the first call's answer from admission.
pub async fn run(ctx: &Ctx, payer: Payer, product: Box<dyn Product>, controls: CallControls) -> HandlerResult {
    let settings = ctx.settings();
    let (hold, units) = product.hold(&settings.rate);
    let hold = match controls.cap_mc {
        Some(cap) => broker_core::spend_cap::cap_plan(hold, units, cap)?,
        None => hold,
    };
    let meta = product.meta();
    let store = ctx.store()?;
    let class = product.class();
    let mut log = CallLog::for_request(ctx);
    log.fields = fields! {"provider" => meta.provider.as_str(), "model" => meta.model, "product" => meta.product, "class" => class};
    for (k, v) in &log.fields {
        ctx.fact(k, v.clone());
    }
    let facts = CallFacts {
        now_ms: ctx.now_ms(),
        request_id: ctx.request_id(),
        class,
        client_ip: ctx.client_ip(),
        limits: &settings.limits,
        hold,
        units,
        meta: &meta,
        rate: settings.rate,
        retention: settings.retention(),
        controls: &controls,
    };
    let (admitted, billing) = match payer.admit(&store, &facts).await {
        Ok(a) => a,
        Err(Refused { replay: Some(r), .. }) => {
            ctx.fact("idempotent_replay_of", r.request_id.clone());
            return Ok(http::bytes(r.answer.status, &r.answer.content_type, r.answer.body.clone(), &r.headers()));
        }
        Err(Refused { error, release, .. }) => {
            if let Some(release) = release {
                ctx.wait_until(settle(store, release, log));
            }
            return Err(error);
        }
    };
    for (k, v) in billing.facts() {
        log.fields.insert(k.into(), v.as_str().into());
        ctx.fact(k, v);
    }
    // A sub-key's call: `key_id` is its account's (whose balance it spends); `sub_key` names it.
    let sub_key = admitted.sub_key.as_deref().map(|s| ("sub_key", Value::from(s)));
    for (k, v) in [("key_id", Value::from(admitted.key_id.as_str())), ("plan", Value::from(admitted.plan.as_str())), ("credits_held", credits_json(admitted.hold_mc))].into_iter().chain(sub_key) {
        log.fields.insert(k.into(), v.clone());
        ctx.fact(k, v);
    }
    if billing.credits().is_some() {
        log.watch = Some(Rc::new(crate::watch::Watch::for_call(ctx, &admitted.key_id)));
    }
    let mut headers = admitted.rate_headers();
    let call = Call {
        upstream: product.upstream(admitted.granted_units),
        granted: admitted.granted_units,
        product,
        billing,
        store,
        head_ms: settings.head_timeouts.for_product(meta.product),
        idle_ms: settings.upstream_timeout_ms,
        deadline_ms: settings.client_gone_deadline_ms,
        retention: settings.retention(),
        log,
        keep_answer: controls.idempotency.is_some(),
    };
    let stream_credit_headers = call.billing.pending_headers();
    let (tx, rx) = oneshot::channel();
    ctx.wait_until(call.run(tx));
    let answer = rx.await.unwrap_or_else(|_| Answer::Whole(Err(ApiError::internal("the call ended without an answer")), Map::new()));
    let (Answer::Whole(_, facts) | Answer::Stream { facts, .. }) = &answer;
    for (k, v) in facts {
        ctx.fact(k, v.clone());
    }
    match answer {
        Answer::Whole(Ok(w), _) => {
            headers.extend(w.headers);
            Ok(http::bytes(w.status, &w.content_type, w.body, &headers))
        }
        Answer::Whole(Err(e), _) => Err(e.with_headers(headers)),
        Answer::Stream { head, body, .. } => {
            let mut resp = Response::from_body(worker::ResponseBody::Stream(body)).map_err(|e| ApiError::internal(format!("stream: {e}")))?;
            // A meter that knows the charge up front (audio) says it in its own head, which wins.
            headers.extend(stream_credit_headers);
            headers.extend(head.headers);
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
    billing: Bill,
    store: Upstash,
    head_ms: u64,
    idle_ms: u64,
    deadline_ms: u64,
    retention: Retention,
    log: CallLog,
    /// The call has an `Idempotency-Key`: a whole answer is kept for its replays.
    keep_answer: bool,
}

/// The streaming client's side: a JS `ReadableStream` whose controller the pump enqueues into.
struct Client {
    controller: ReadableStreamDefaultController,
    /// Set when the client cancels the stream (hangs up).
    gone: Rc<Cell<bool>>,
    /// Called by the runtime on a cancel; kept until the stream is closed (after which the
    /// runtime never calls it), then freed with the client.
    _cancel: Closure<dyn FnMut(JsValue)>,
    closed: bool,
}

impl Client {
    /// A stream with a byte-length high-water mark of `CLIENT_BUFFER_BYTES`.
    fn open() -> Option<(Client, web_sys::ReadableStream)> {
        let global = js_sys::global();
        let ctor = |name: &str| js_sys::Reflect::get(&global, &name.into()).ok().and_then(|c| c.dyn_into::<js_sys::Function>().ok());
        let slot: Rc<RefCell<Option<ReadableStreamDefaultController>>> = Rc::default();
        let put = slot.clone();
        // `start` runs inside the constructor, so this closure is called (and freed) at once.
        let start = Closure::once_into_js(move |c: JsValue| *put.borrow_mut() = c.dyn_into().ok());
        let gone = Rc::new(Cell::new(false));
        let flag = gone.clone();
        let cancel = Closure::wrap(Box::new(move |_: JsValue| flag.set(true)) as Box<dyn FnMut(JsValue)>);
        let source = js_sys::Object::new();
        js_sys::Reflect::set(&source, &"start".into(), &start).ok()?;
        js_sys::Reflect::set(&source, &"cancel".into(), cancel.as_ref()).ok()?;
        let mark = js_sys::Object::new();
        js_sys::Reflect::set(&mark, &"highWaterMark".into(), &JsValue::from(CLIENT_BUFFER_BYTES as f64)).ok()?;
        let strategy = js_sys::Reflect::construct(&ctor("ByteLengthQueuingStrategy")?, &js_sys::Array::of1(&mark)).ok()?;
        let stream = js_sys::Reflect::construct(&ctor("ReadableStream")?, &js_sys::Array::of2(&source, &strategy)).ok()?;
        let controller = slot.borrow_mut().take()?;
        Some((Client { controller, gone, _cancel: cancel, closed: false }, stream.unchecked_into()))
    }

    fn is_gone(&self) -> bool {
        self.closed || self.gone.get()
    }

    /// Forwards `bytes`. While the client's buffer is full, waits for it to read: the provider is
    /// not read meanwhile, so its own flow control slows it down. A client that reads nothing for
    /// `patience_ms` is dropped. False once the client is gone.
    async fn send(&mut self, bytes: &[u8], patience_ms: u64) -> bool {
        if self.is_gone() {
            return false;
        }
        if !bytes.is_empty() && self.controller.enqueue_with_chunk(&js_sys::Uint8Array::from(bytes)).is_err() {
            // A cancelled stream refuses chunks.
            self.gone.set(true);
            return false;
        }
        let room = |c: &ReadableStreamDefaultController| c.desired_size().unwrap_or(0.0);
        let (mut since, mut last) = (now_ms(), room(&self.controller));
        while room(&self.controller) <= 0.0 {
            if self.is_gone() {
                return false;
            }
            let now = room(&self.controller);
            if now > last {
                (since, last) = (now_ms(), now);
            } else if now_ms().saturating_sub(since) > patience_ms {
                self.close();
                return false;
            }
            Delay::from(Duration::from_millis(DRAIN_POLL_MS)).await;
        }
        !self.is_gone()
    }

    fn close(&mut self) {
        if !self.closed {
            self.closed = true;
            let _ = self.controller.close();
        }
    }

    /// Ends the stream with an error instead of closing it: the client's read fails, so a cut
    /// body is not taken for a whole one.
    fn fail(&mut self, why: &str) {
        if !self.closed {
            self.closed = true;
            self.controller.error_with_e(&JsValue::from_str(why));
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        // Closed first, so the runtime never calls the cancel closure once it is freed.
        self.close();
    }
}

enum Next {
    /// A piece of this many bytes is in the body's buffer.
    Chunk(usize),
    End,
    Broken(String),
    Timeout,
}

/// Bytes read from a provider per read, at most.
const READ_BUFFER_BYTES: usize = 32 * 1024;

/// A provider's body: one read (one promise) per piece the runtime hands over, into one reused
/// buffer (a BYOB reader) where the runtime offers one. (The default reader costs the same CPU
/// per piece, measured with scripts/profile.mjs, but allocates a fresh buffer per piece that the
/// runtime frees late: +34 MiB against +21 MiB for a 52 MB answer nobody reads.)
struct Body {
    source: Source,
    /// The last piece read.
    buf: Vec<u8>,
}

enum Source {
    Byob(wasm_streams::readable::IntoAsyncRead<'static>),
    Chunks(worker::ByteStream),
}

impl Body {
    fn of(response: &Response) -> Option<Body> {
        let worker::ResponseBody::Stream(raw) = response.body() else { return None };
        Body::of_stream(raw.clone())
    }

    fn of_stream(raw: web_sys::ReadableStream) -> Option<Body> {
        let source = match wasm_streams::ReadableStream::from_raw(raw.clone().unchecked_into()).try_into_async_read() {
            Ok(read) => Source::Byob(read),
            Err(_) => Source::Chunks(Response::from_body(worker::ResponseBody::Stream(raw)).ok()?.stream().ok()?),
        };
        Some(Body { source, buf: vec![0; READ_BUFFER_BYTES] })
    }

    /// Reads the next piece into `buf`; its length.
    async fn next(&mut self) -> Option<Result<usize, String>> {
        match &mut self.source {
            Source::Byob(read) => {
                self.buf.resize(READ_BUFFER_BYTES, 0);
                match futures_util::AsyncReadExt::read(read, &mut self.buf).await {
                    Ok(0) => None,
                    Ok(n) => Some(Ok(n)),
                    Err(e) => Some(Err(e.to_string())),
                }
            }
            Source::Chunks(s) => s.next().await.map(|r| {
                r.map(|piece| {
                    self.buf = piece;
                    self.buf.len()
                })
                .map_err(|e| e.to_string())
            }),
        }
    }
}

/// One timer for many chunks: a timer per chunk costs the runtime a `setTimeout`, a closure and a
/// `clearTimeout` each time; this one is only set again when it fires early.
struct Timer {
    delay: std::pin::Pin<Box<Delay>>,
    fires_at: u64,
}

impl Timer {
    fn at(when_ms: u64) -> Timer {
        Timer { delay: Box::pin(Delay::from(Duration::from_millis(when_ms.saturating_sub(now_ms())))), fires_at: when_ms }
    }
}

async fn next_chunk(body: &mut Body, timer: &mut Timer) -> Next {
    let read = body.next();
    futures_util::pin_mut!(read);
    match select(read, timer.delay.as_mut()).await {
        Either::Left((Some(Ok(n)), _)) => Next::Chunk(n),
        Either::Left((Some(Err(e)), _)) => Next::Broken(e),
        Either::Left((None, _)) => Next::End,
        Either::Right(_) => Next::Timeout,
    }
}

fn now_ms() -> u64 {
    worker::Date::now().as_millis()
}

impl Call {
    async fn run(self, answer: oneshot::Sender<Answer>) {
        let Call { upstream, granted, product, billing, store, head_ms, idle_ms, deadline_ms, retention, log, keep_answer } = self;
        let released = |why: &str| billing.release(why, now_ms(), retention);
        let started = now_ms();
        let sent = match fetch::send(&upstream, head_ms).await {
            Ok(s) => s,
            Err(e) if e.kind == ErrorKind::UpstreamTimeout => {
                // Sent and never answered: the provider may have done the work and billed it.
                let why = format!("the request was sent and the provider did not answer within {head_ms} ms");
                let settlement = billing.charge_hold(&why, now_ms(), retention);
                let charged = settlement.charge_mc();
                let e = billing.head_timeout_error(&why, charged);
                log.line(Level::Warn, "head_timeout", fields! {"head_timeout_ms" => head_ms, "credits_charged" => credits_json(charged)});
                let _ = answer.send(Answer::Whole(Err(e), fields! {"upstream_ms" => now_ms() - started, "credits_charged" => credits_json(charged)}));
                return settle(store, settlement, log).await;
            }
            Err(e) => {
                let why = e.kind.type_name();
                let _ = answer.send(Answer::Whole(Err(e), fields! {"upstream_ms" => now_ms() - started}));
                return settle(store, released(why), log).await;
            }
        };
        let upstream_ms = now_ms() - started;
        if upstream_ms > log.slow_upstream_ms {
            log.line(Level::Warn, "slow_upstream", fields! {"upstream_ms" => upstream_ms, "threshold_ms" => log.slow_upstream_ms});
        }
        let fetch::Sent { mut response, cancel } = sent;
        let status = response.status_code();
        if !(200..300).contains(&status) {
            let body = read_capped(&mut response, ERROR_BODY_BYTES).await;
            let e = product.upstream_error(status, &body);
            let facts = fields! {"upstream_ms" => upstream_ms, "provider_status" => status, "provider_error" => String::from_utf8_lossy(&body[..body.len().min(500)])};
            let why = format!("the provider answered {status}");
            let _ = answer.send(Answer::Whole(Err(e), facts));
            return settle(store, released(&why), log).await;
        }
        let head = ProviderHead { status, headers: response.headers().entries().map(|(k, v)| (k.to_ascii_lowercase(), v)).collect() };
        let mut meter = product.meter(billing.clone(), granted);
        if let Err(e) = meter.start(&head) {
            cancel.abort();
            let _ = answer.send(Answer::Whole(Err(e), fields! {"upstream_ms" => upstream_ms}));
            return settle(store, released("the provider's answer was not in its format"), log).await;
        }
        let streaming = meter.stream_head();
        let mut answer = Some(answer);
        let mut client: Option<Client> = None;
        let mut gone_at: Option<u64> = None;
        let mut client_note: Option<&str> = None;
        // A whole answer comes right after its head: one read of all of it (a read per piece
        // costs a promise each), bounded by the idle timeout.
        let whole = meter.whole_body() && matches!(response.body(), worker::ResponseBody::Stream(_));
        // Pieces read from the provider (CPU goes per piece: the bench divides by it).
        let mut reads: u64 = 0;
        // A byte-exact stream goes to the client through the runtime's own pipe (opened with the
        // first bytes the meter accepts); the meter reads a copy.
        let mut pipe: Option<Pipe> = None;
        let body = match response.body() {
            _ if whole => None,
            worker::ResponseBody::Stream(raw) if streaming.is_some() && meter.byte_exact_stream() => match Pipe::split(raw.as_ref()) {
                Some((p, copy)) => {
                    pipe = Some(p);
                    Body::of_stream(copy.unchecked_into())
                }
                None => Body::of(&response),
            },
            _ => Body::of(&response),
        };
        let end = match body {
            None if !whole => End::Complete,
            None => {
                let read = whole_body(&mut response);
                let timer = Delay::from(Duration::from_millis(idle_ms));
                futures_util::pin_mut!(read);
                futures_util::pin_mut!(timer);
                match select(read, timer).await {
                    Either::Left((Ok(bytes), _)) => {
                        meter.push(&bytes);
                        End::Complete
                    }
                    Either::Left((Err(how), _)) => End::Broken(how),
                    Either::Right(_) => End::IdleTimeout,
                }
            }
            Some(mut body) => {
                let mut last_byte_at = now_ms();
                let mut timer = Timer::at(last_byte_at + idle_ms);
                let mut pacing = ReadPacing::default();
                loop {
                    let client_left = match (&client, &pipe) {
                        (Some(c), _) => c.is_gone(),
                        (_, Some(p)) if p.is_open() => p.broke_off(),
                        _ => answer.as_ref().is_none_or(|a| a.is_canceled()),
                    };
                    if client_left && gone_at.is_none() {
                        gone_at = Some(now_ms());
                        client_note.get_or_insert("the client left before the end; the call was metered without it");
                    }
                    // The call ends at the first of: silence for idle_ms, the client-gone deadline.
                    let idle_end = last_byte_at + idle_ms;
                    let gone_end = gone_at.map(|t| t + deadline_ms);
                    let due = gone_end.map_or(idle_end, |g| g.min(idle_end));
                    if timer.fires_at > due {
                        timer = Timer::at(due);
                    }
                    let asked_at = now_ms();
                    match next_chunk(&mut body, &mut timer).await {
                        Next::Chunk(n) => {
                            reads += 1;
                            last_byte_at = now_ms();
                            let out = meter.push(&body.buf[..n]);
                            if let (Some(head), false) = (&streaming, out.is_empty()) {
                                if pipe.as_ref().is_some_and(|p| !p.is_open()) && gone_at.is_none() && !open_pipe(&mut answer, &mut pipe, head, upstream_ms) {
                                    // No pipe after all: relayed.
                                    if let Some(p) = pipe.take() {
                                        p.discard();
                                    }
                                }
                            }
                            if let (Some(head), false, None) = (&streaming, out.is_empty(), &pipe) {
                                if client.is_none() && gone_at.is_none() {
                                    client = open_stream(&mut answer, head, upstream_ms);
                                }
                                if let Some(c) = &mut client {
                                    if !c.send(&out, deadline_ms).await && gone_at.is_none() {
                                        gone_at = Some(now_ms());
                                        client_note = Some("the client stopped reading; the answer was metered without it");
                                    }
                                }
                            }
                            // The client of a pipe has its bytes already: the meter's copy is read
                            // in as few reads as the pacing finds (broker_core::read_pacing).
                            // The pause ends early when the pipe has carried the last byte: the
                            // client's body is closed only after the meter has read its copy.
                            if let Some(p) = pipe.as_ref().filter(|p| p.is_open() && !p.broke_off()) {
                                if pacing.pause_after(n, READ_BUFFER_BYTES, last_byte_at.saturating_sub(asked_at)) {
                                    let pause = Delay::from(Duration::from_millis(read_pacing::PAUSE_MS));
                                    let ended = p.ended();
                                    futures_util::pin_mut!(ended);
                                    select(pause, ended).await;
                                }
                            }
                        }
                        Next::End => break End::Complete,
                        Next::Broken(how) => break End::Broken(how),
                        Next::Timeout => {
                            let now = now_ms();
                            match gone_end {
                                Some(g) if now >= g => break End::ClientGoneDeadline,
                                _ if now >= last_byte_at + idle_ms => break End::IdleTimeout,
                                // Bytes came since the timer was set: wait for the rest of the window.
                                _ => timer = Timer::at(due.max(now + 1)),
                            }
                        }
                    }
                }
            }
        };
        if matches!(end, End::IdleTimeout | End::ClientGoneDeadline) {
            cancel.abort();
            if let Some(p) = &pipe {
                p.stop();
            }
        }
        let piped = pipe.as_ref().is_some_and(Pipe::is_open);
        if piped && matches!(end, End::Broken(_)) {
            // The provider's body failed: the pipe broke off with it, not because the client left.
            client_note = None;
        }
        let abort = meter.abort_client_stream(&end).then(|| end.describe());
        let mut finish = meter.finish(end);
        // The pipe's end (the tail after the provider's last byte) runs beside the settlement.
        let pipe_end = match pipe.take() {
            Some(p) if p.is_open() => Some(p.end(std::mem::take(&mut finish.tail), deadline_ms)),
            Some(p) => {
                p.discard();
                None
            }
            None => None,
        };
        match (&streaming, &mut client) {
            (Some(_), Some(c)) => {
                c.send(&std::mem::take(&mut finish.tail), 0).await;
                match abort {
                    Some(why) if !c.is_gone() => {
                        // The errored stream keeps the runtime from sending the body's end marker;
                        // a local Miniflare's entry worker still ends it cleanly, so the log says it.
                        log.line(Level::Warn, "client_stream_failed", fields! {"reason" => why});
                        c.fail(&why);
                    }
                    _ => c.close(),
                }
            }
            (Some(head), None) if !finish.tail.is_empty() && gone_at.is_none() => {
                if let Some(mut c) = open_stream(&mut answer, head, upstream_ms) {
                    c.send(&std::mem::take(&mut finish.tail), 0).await;
                    c.close();
                }
            }
            _ => {}
        }
        let mut log = log;
        log.fields.insert("provider_reads".into(), reads.into());
        log.fields.insert("piped".into(), piped.into());
        if let Some(m) = &finish.metered {
            log.fields.extend(metered_facts(&billing, m));
            let charge = billing.charge(m.cost_pico_usd);
            if let Some(w) = &m.warning {
                log.line(Level::Warn, "metering_warning", fields! {"warning" => w.as_str(), "credits_charged" => credits_json(charge.charged_mc)});
            }
            if charge.over_hold_mc > 0 {
                // The hold was not a bound: charged in full, and a pricing bug to fix.
                log.line(Level::Warn, "hold_exceeded", fields! {"credits_held" => credits_json(billing.hold_mc()), "credits_charged" => credits_json(charge.charged_mc), "hold_mc" => billing.hold_mc(), "charged_mc" => charge.charged_mc, "over_mc" => charge.over_hold_mc});
            }
            if broker_core::metering::micro_usd(m.cost_pico_usd) > log.high_cost_usd_micro {
                log.line(Level::Warn, "high_cost", fields! {"cost_usd" => m.cost_pico_usd as f64 / 1e12, "threshold_usd" => log.high_cost_usd_micro as f64 / 1e6});
            }
        }
        let mut kept: Option<StoredAnswer> = None;
        if let Some(a) = answer.take() {
            let mut facts = fields! {"upstream_ms" => upstream_ms};
            if let Some(m) = &finish.metered {
                facts.extend(metered_facts(&billing, m));
            }
            // A whole answer of at most 256 KiB is kept for the replays of its Idempotency-Key.
            if let (true, Ok(w)) = (keep_answer, &finish.answer) {
                if w.body.len() <= MAX_STORED_BODY {
                    kept = Some(StoredAnswer { status: w.status, content_type: w.content_type.clone(), headers: w.headers.clone(), body: w.body.clone() });
                }
            }
            let _ = a.send(Answer::Whole(finish.answer, facts));
        }
        let mut settlement = match finish.metered {
            Some(mut m) => {
                if let Some(n) = client_note {
                    m.note = Some(m.note.map_or(n.to_string(), |x| format!("{x}; {n}")));
                }
                billing.settle(&m, now_ms(), retention)
            }
            None => released("the provider served nothing billable"),
        };
        if let (Some(k), Closing::Credits(s)) = (&kept, &mut settlement) {
            s.idempotency.keep(k);
        }
        match pipe_end {
            Some(delivering) => {
                let pipe_log = log.clone();
                let delivered = async move {
                    if let PipeEnd::ClientTooSlow = delivering.await {
                        pipe_log.line(Level::Warn, "client_too_slow", fields! {"waited_ms" => deadline_ms});
                    }
                };
                futures_util::future::join(settle(store, settlement, log), delivered).await;
            }
            None => settle(store, settlement, log).await,
        }
    }
}

/// Hands the handler the pipe's end of a byte-exact stream; false when it could not be opened
/// (the client already left, or the runtime refused the pipe).
fn open_pipe(answer: &mut Option<oneshot::Sender<Answer>>, pipe: &mut Option<Pipe>, head: &StreamHead, upstream_ms: u64) -> bool {
    if answer.as_ref().is_none_or(|a| a.is_canceled()) {
        return false;
    }
    let Some(body) = pipe.as_mut().and_then(Pipe::open) else { return false };
    answer.take().is_some_and(|a| a.send(Answer::Stream { head: head.clone(), body, facts: fields! {"upstream_ms" => upstream_ms} }).is_ok())
}

/// Hands the handler a streaming answer; `None` when the client already left.
fn open_stream(answer: &mut Option<oneshot::Sender<Answer>>, head: &StreamHead, upstream_ms: u64) -> Option<Client> {
    let a = answer.take()?;
    let (client, body) = Client::open()?;
    a.send(Answer::Stream { head: head.clone(), body, facts: fields! {"upstream_ms" => upstream_ms} }).ok()?;
    Some(client)
}

/// A provider's whole body in one runtime call (`arrayBuffer()`).
async fn whole_body(response: &mut Response) -> Result<Vec<u8>, String> {
    let worker::ResponseBody::Stream(stream) = response.body() else { return Ok(Vec::new()) };
    let whole = web_sys::Response::new_with_opt_readable_stream(Some(stream)).map_err(|e| format!("{e:?}"))?;
    let buffer = JsFuture::from(whole.array_buffer().map_err(|e| format!("{e:?}"))?).await.map_err(|e| e.as_string().unwrap_or_else(|| format!("{e:?}")))?;
    Ok(js_sys::Uint8Array::new(&buffer).to_vec())
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

/// The isolate's wasm linear memory (it only grows): what large answers cost in memory.
fn wasm_memory_mib() -> u64 {
    #[cfg(target_arch = "wasm32")]
    return core::arch::wasm32::memory_size(0) as u64 * 64 / 1024;
    #[cfg(not(target_arch = "wasm32"))]
    return 0;
}

/// A settlement's outcome as log fields.
pub fn settle_fields(reply: &SettleReply) -> Map<String, Value> {
    match *reply {
        SettleReply::Settled { charged_mc, balance_mc, .. } => fields! {"outcome" => "settled", "charged_mc" => charged_mc, "balance_mc" => balance_mc},
        SettleReply::Swept { charged_mc, balance_mc } => fields! {"outcome" => "swept: charged the hold", "charged_mc" => charged_mc, "balance_mc" => balance_mc},
        SettleReply::Corrected { refunded_mc, balance_mc, .. } => fields! {"outcome" => "corrected after a sweep", "refunded_mc" => refunded_mc, "balance_mc" => balance_mc},
        SettleReply::Missing => fields! {"outcome" => "already settled"},
    }
}

/// A closing's outcome as log fields.
fn recorded_fields(r: &Recorded) -> Map<String, Value> {
    match r {
        Recorded::Credits(reply) => settle_fields(reply),
        Recorded::RapidApi { cost_usd_micro } => fields! {"outcome" => "recorded for RapidAPI", "cost_usd_micro" => *cost_usd_micro},
        Recorded::Nothing => fields! {"outcome" => "not served: nothing recorded"},
    }
}

/// Applies a call's closing on its payer's books, retrying Redis errors (see `Closing`), and
/// writes the call's `settlement` log line. If a key's settlement never lands, the hold stays
/// reserved and the sweeper charges it: money is never lost or given away.
pub async fn settle(store: Upstash, s: Closing, log: CallLog) {
    let mut waits = SETTLE_RETRY_MS.iter();
    let mut attempts = 0;
    loop {
        attempts += 1;
        let outcome = s.apply(&store).await;
        let mut f = fields! {"attempts" => attempts, "wasm_memory_mib" => wasm_memory_mib()};
        match outcome {
            Ok(recorded) => {
                f.extend(recorded_fields(&recorded));
                log.line(Level::Info, "settlement", f);
                // Charged, with a low-balance watcher armed: the balance may have crossed below it.
                if let (Recorded::Credits(SettleReply::Settled { watching: true, .. } | SettleReply::Corrected { watching: true, .. }), Some(w)) = (&recorded, &log.watch) {
                    crate::watch::after_settlement(&store, w).await;
                }
                return;
            }
            Err(e) => match waits.next() {
                Some(ms) if e.kind == ErrorKind::Unavailable => {
                    f.extend(fields! {"outcome" => "retrying", "retry_in_ms" => ms, "error" => e.message});
                    log.line(Level::Warn, "settlement", f);
                    Delay::from(Duration::from_millis(*ms)).await;
                }
                _ => {
                    f.extend(fields! {"outcome" => s.when_lost(), "error" => e.message});
                    return log.line(Level::Error, "settlement", f);
                }
            },
        }
    }
}
