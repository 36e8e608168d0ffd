//! A byte-exact stream (the provider's own format, nothing to change: `Meter::byte_exact_stream`)
//! at the cost of a pipe (issue 22). The provider's body is teed: one branch goes to the client
//! through the runtime's own pipe (`pipeTo` into an `IdentityTransformStream`: no read, no
//! promise, no copy per piece in the worker), the other is read by the meter, in the largest
//! pieces the runtime has buffered. Reading every piece from the worker costs the runtime a read
//! and a promise each (about 4,000 for a 2,000-token answer); a pipe costs it nothing of the
//! worker's (docs/performance.md).
//!
//! The pipe does not close the client's body: once it has carried the provider's last byte, the
//! meter's tail (the gateway's error event when the stream ended early but cleanly) is written
//! after it, then the body is closed. A provider body that fails (broken off, or stopped for
//! silence or the client-gone deadline) fails the client's body with it, as the provider's own
//! connection would: workerd's native pipe errors its destination whatever `preventAbort` says.
//! A client that hangs up ends the pipe, and the meter reads on (the call is still billed).

use futures_util::future::{select, Either};
use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::{spawn_local, JsFuture};
use worker::{js_sys, Delay};

/// The client's branch of a teed provider body, piped by the runtime once opened.
pub struct Pipe {
    to_client: JsValue,
    /// The client's body: an `IdentityTransformStream` (a runtime stream, so the pipe is native).
    readable: JsValue,
    writable: JsValue,
    /// Stops the pipe (the client's body fails with it).
    stop: JsValue,
    /// Set when the pipe has ended: `Some(true)` once every byte went through, `Some(false)` when
    /// it broke off (the client hung up, or the provider's body failed).
    ended: Rc<Cell<Option<bool>>>,
    /// The runtime's promise of the pipe, once started.
    piped: Option<js_sys::Promise>,
}

/// How a pipe's end went for the client.
pub enum PipeEnd {
    /// Every provider byte and the tail were handed over.
    Delivered,
    /// The pipe broke off: the client left, or the provider's body failed (and the client's
    /// with it). Nothing more was sent.
    BrokeOff,
    /// The client did not take the rest within the patience given: its body was ended with an error.
    ClientTooSlow,
}

fn call(target: &JsValue, method: &str, args: &[&JsValue]) -> Option<JsValue> {
    let f: js_sys::Function = js_sys::Reflect::get(target, &method.into()).ok()?.dyn_into().ok()?;
    let args: js_sys::Array = args.iter().copied().collect();
    f.apply(target, &args).ok()
}

fn construct(name: &str) -> Option<JsValue> {
    let ctor: js_sys::Function = js_sys::Reflect::get(&js_sys::global(), &name.into()).ok()?.dyn_into().ok()?;
    js_sys::Reflect::construct(&ctor, &js_sys::Array::new()).ok()
}

fn get(target: &JsValue, name: &str) -> Option<JsValue> {
    js_sys::Reflect::get(target, &name.into()).ok().filter(|v| !v.is_undefined())
}

/// Lets a promise run to its end without anyone awaiting it (and without an unhandled rejection).
fn detach(promise: Option<JsValue>) {
    if let Some(p) = promise.and_then(|p| p.dyn_into::<js_sys::Promise>().ok()) {
        spawn_local(async move {
            let _ = JsFuture::from(p).await;
        });
    }
}

impl Pipe {
    /// Tees a provider body: the pipe (not started) and the meter's branch. `None` where the
    /// runtime offers no tee or no `IdentityTransformStream` (the engine then relays the stream).
    pub fn split(body: &JsValue) -> Option<(Pipe, JsValue)> {
        let its = construct("IdentityTransformStream")?;
        let stop = construct("AbortController")?;
        let (readable, writable) = (get(&its, "readable")?, get(&its, "writable")?);
        let branches: js_sys::Array = call(body, "tee", &[])?.dyn_into().ok()?;
        let pipe = Pipe { to_client: branches.get(0), readable, writable, stop, ended: Rc::default(), piped: None };
        Some((pipe, branches.get(1)))
    }

    /// Starts the runtime's pipe; the client's body. The branch has kept every byte so far.
    pub fn open(&mut self) -> Option<web_sys::ReadableStream> {
        let options = js_sys::Object::new();
        for (k, v) in [("preventClose", JsValue::TRUE), ("preventCancel", JsValue::TRUE), ("signal", get(&self.stop, "signal")?)] {
            js_sys::Reflect::set(&options, &k.into(), &v).ok()?;
        }
        let piped: js_sys::Promise = call(&self.to_client, "pipeTo", &[&self.writable, &options])?.dyn_into().ok()?;
        let ended = self.ended.clone();
        let branch = self.to_client.clone();
        self.piped = Some(piped.clone());
        spawn_local(async move {
            let ok = JsFuture::from(piped).await.is_ok();
            if !ok {
                // Let go of what the client will never read (the tee keeps it for this branch).
                detach(call(&branch, "cancel", &[]));
            }
            ended.set(Some(ok));
        });
        Some(self.readable.clone().unchecked_into())
    }

    pub fn is_open(&self) -> bool {
        self.piped.is_some()
    }

    /// Resolves once the pipe has ended, however (at once when it never started).
    pub async fn ended(&self) {
        if let Some(p) = &self.piped {
            let _ = JsFuture::from(p.clone()).await;
        }
    }

    /// The pipe broke off before the provider's end: the client hung up (or the body failed).
    pub fn broke_off(&self) -> bool {
        self.ended.get() == Some(false)
    }

    /// Stops the pipe now (a silent provider, the client-gone deadline): the client's body fails.
    pub fn stop(&self) {
        call(&self.stop, "abort", &[]);
    }

    /// Not used after all: lets go of the client's branch (a started pipe is stopped first).
    pub fn discard(self) {
        if self.is_open() {
            self.stop();
        } else {
            detach(call(&self.to_client, "cancel", &[]));
        }
    }

    /// Once the pipe has carried the provider's last byte (waiting at most `patience_ms` for a
    /// slow client), writes `tail` and closes the client's body.
    pub async fn end(self, tail: Vec<u8>, patience_ms: u64) -> PipeEnd {
        let Some(piped) = self.piped.clone() else { return PipeEnd::BrokeOff };
        let waited = select(JsFuture::from(piped), Box::pin(Delay::from(Duration::from_millis(patience_ms)))).await;
        match waited {
            Either::Left((Ok(_), _)) => {}
            Either::Left(_) => return PipeEnd::BrokeOff,
            Either::Right(_) => {
                // Stopping the pipe fails the client's body: a cut stream is never taken for whole.
                self.stop();
                return PipeEnd::ClientTooSlow;
            }
        }
        let Some(writer) = call(&self.writable, "getWriter", &[]) else { return PipeEnd::BrokeOff };
        if !tail.is_empty() {
            detach(call(&writer, "write", &[&js_sys::Uint8Array::from(tail.as_slice()).into()]));
        }
        detach(call(&writer, "close", &[]));
        PipeEnd::Delivered
    }
}
