//! Metered chat: admission (one Redis round trip), forward, meter, settle in `wait_until`.

use crate::app::App;
use crate::fetch::{self, Outbound};
use crate::http::{json, rate_headers, HandlerResult, Reply};
use crate::upstash::Upstash;
use broker_core::chat::{self, ChatRequest, Route};
use broker_core::error::{ApiError, ErrorKind};
use broker_core::money::{credits_json, credits_string, CreditRate};
use broker_core::pricing::{self, PricedModel, Provider};
use broker_core::providers::stream::{openai_usage_json, Billing, StreamTranslator};
use broker_core::providers::{self, ChatOutput, Endpoint};
use broker_core::scripts::{self, ledger_fragment, AdmitReply, RateState, SettleMode};
use broker_core::usage::Usage;
use futures_util::StreamExt;
use serde_json::{json, Value};
use worker::{console_error, console_log, Request, Response};

/// The rate-limit route class of every chat call.
const ROUTE_CLASS: &str = "ai";

/// Everything settlement needs, owned so it can move into `wait_until`.
struct Hold {
    redis: Upstash,
    request_id: String,
    hold_mc: i64,
    model: PricedModel,
    rate: CreditRate,
}

impl Hold {
    /// Charges `usage` (none: release in full) against the hold admitted under this request id.
    async fn settle(self, usage: Option<Usage>, now_ms: u64, note: &str) {
        let charge = usage.map(|u| self.model.charge_mc(&u, &self.rate)).unwrap_or(0);
        let mut fields = vec![
            ("provider", json!(self.model.provider().as_str())),
            ("model", json!(self.model.name())),
            ("price_table", json!(pricing::table_version())),
        ];
        if let Some(u) = usage {
            fields.push(("usage", serde_json::to_value(u).unwrap_or(Value::Null)));
        }
        let args = scripts::settle_args(&self.request_id, charge, now_ms, ledger_fragment(&fields), SettleMode::Settle, note);
        match self.redis.eval(&scripts::SETTLE, args).await.and_then(|v| scripts::SettleReply::decode(&v)) {
            Ok(r) => console_log!("{} settle {} charge={} hold={} {:?}", self.request_id, self.model.name(), charge, self.hold_mc, r),
            // The hold stays reserved (money is never lost) until the sweeper releases it.
            Err(e) => console_error!("{} SETTLE FAILED hold={} charge={}: {}", self.request_id, self.hold_mc, charge, e.message),
        }
    }
}

fn endpoint(app: &App, provider: Provider) -> Result<Endpoint, ApiError> {
    let (base, key) = match provider {
        Provider::OpenAi => ("OPENAI_BASE_URL", "OPENAI_API_KEY"),
        Provider::Anthropic => ("ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY"),
        Provider::Google => ("GOOGLE_BASE_URL", "GOOGLE_API_KEY"),
    };
    Ok(Endpoint { base_url: app.required(base)?, api_key: app.required(key)? })
}

async fn read_body(app: &App, req: &mut Request) -> Result<Vec<u8>, ApiError> {
    let limit = app.settings.max_body_bytes;
    let declared = req.headers().get("content-length").ok().flatten().and_then(|v| v.parse::<u64>().ok());
    let too_large = || ApiError::new(ErrorKind::PayloadTooLarge, format!("request body exceeds {limit} bytes"));
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let body = req.bytes().await.map_err(|e| ApiError::invalid(format!("could not read the request body: {e}")))?;
    if body.len() as u64 > limit {
        return Err(too_large());
    }
    Ok(body)
}

fn api_key(req: &Request, route: Route) -> Option<String> {
    let h = req.headers();
    let auth = h.get("authorization").ok().flatten();
    if let Some(k) = broker_core::keys::bearer(auth.as_deref()) {
        return Some(k.to_string());
    }
    // The Anthropic SDK sends its key as `x-api-key`.
    if route == Route::AnthropicCompatible {
        return h.get("x-api-key").ok().flatten().filter(|k| !k.is_empty());
    }
    None
}

pub async fn handle(app: &App, mut req: Request, route: Route) -> HandlerResult {
    let body = read_body(app, &mut req).await?;
    let chat = match route {
        Route::Native => chat::parse_native(&body),
        Route::OpenAiCompatible => chat::parse_openai(&body),
        Route::AnthropicCompatible => chat::parse_anthropic(&body),
    }?;
    // Refuse what cannot be priced before touching Redis.
    let model = pricing::lookup(chat.provider, &chat.model, &app.today())?;
    if let Some(m) = chat.max_tokens {
        if m > model.max_output() {
            return Err(ApiError::invalid(format!("max_tokens {m} exceeds {}'s limit of {}", model.name(), model.max_output())).into());
        }
    }
    let endpoint = endpoint(app, chat.provider)?;
    let key = api_key(&req, route).ok_or_else(|| ApiError::unauthorized("missing API key: send Authorization: Bearer <key>"))?;
    let redis = app.redis()?;
    let (hold_mc, balance_after, max_tokens, rate_state) = admit(app, &redis, &key, &chat, &model).await?;
    let rate_hdrs = rate_headers(ROUTE_CLASS, &rate_state);
    let hold = Hold { redis, request_id: app.request_id.clone(), hold_mc, model, rate: app.settings.rate };

    let upstream = providers::build_request(&chat, max_tokens, &endpoint);
    let call = Call {
        out: Outbound { method: "POST", url: upstream.url, headers: upstream.headers, body: Some(upstream.body.into_bytes()) },
        timeout_ms: app.settings.upstream_timeout_ms,
        chat,
        hold,
        balance_after,
        now_ms: app.now_ms,
    };
    // The whole provider call, settlement included, runs in `wait_until`: if the client hangs up,
    // the runtime cancels this handler but not that task, so the call is still settled.
    let (answer_tx, answer_rx) = futures_channel::oneshot::channel();
    app.ctx.wait_until(call.run(answer_tx));
    let answer = answer_rx.await.unwrap_or_else(|_| Err(ApiError::new(ErrorKind::Internal, "the call ended without an answer")));
    match answer {
        Ok(Answer::Plain { body, charged, remaining }) => {
            let mut headers = rate_hdrs;
            headers.push(("x-credits-charged".into(), credits_string(charged)));
            headers.push(("x-credits-remaining".into(), credits_string(remaining)));
            Ok(json(200, &body, &headers))
        }
        Ok(Answer::Stream { body, route, hold_mc, balance_after }) => stream_response(body, route, hold_mc, balance_after, &rate_hdrs),
        Err(e) => Err(Reply::with_headers(e, rate_hdrs)),
    }
}

type ByteSender = futures_channel::mpsc::UnboundedSender<Result<Vec<u8>, worker::Error>>;
type ByteReceiver = futures_channel::mpsc::UnboundedReceiver<Result<Vec<u8>, worker::Error>>;

/// What the call task hands back to the handler.
enum Answer {
    Plain { body: Value, charged: i64, remaining: i64 },
    Stream { body: ByteReceiver, route: Route, hold_mc: i64, balance_after: i64 },
}

/// An admitted provider call, owned so it can run in `wait_until`.
struct Call {
    out: Outbound,
    timeout_ms: u64,
    chat: ChatRequest,
    hold: Hold,
    balance_after: i64,
    now_ms: u64,
}

/// The provider's answer, before billing.
enum Upstream {
    Plain(ChatOutput),
    Stream(worker::ByteStream),
}

impl Call {
    async fn run(self, answer: futures_channel::oneshot::Sender<Result<Answer, ApiError>>) {
        let Call { out, timeout_ms, chat, hold, balance_after, now_ms } = self;
        let request_id = hold.request_id.clone();
        let upstream = match forward(&out, timeout_ms, &chat, &request_id).await {
            Ok(u) => u,
            Err(e) => {
                // Nothing was served: release the hold in full.
                let note = format!("refunded: {}", e.kind.type_name());
                let _ = answer.send(Err(e));
                return hold.settle(None, now_ms, &note).await;
            }
        };
        let billing = Billing { model: hold.model, rate: hold.rate, hold_mc: hold.hold_mc, balance_after_hold_mc: balance_after, request_id };
        match upstream {
            Upstream::Plain(output) => {
                let (charged, remaining) = billing.settle_preview(&output.usage);
                let body = render(&chat, &output, &billing, charged, remaining, now_ms);
                // A client that hung up is billed all the same: the provider served the call.
                let _ = answer.send(Ok(Answer::Plain { body, charged, remaining }));
                hold.settle(Some(output.usage), now_ms, "").await;
            }
            Upstream::Stream(bytes) => {
                let (tx, rx) = futures_channel::mpsc::unbounded();
                let _ = answer.send(Ok(Answer::Stream { body: rx, route: chat.route, hold_mc: hold.hold_mc, balance_after }));
                let request_id = billing.request_id.clone();
                let label = model_label(&chat, &chat.model);
                let translator = StreamTranslator::new(chat.provider, chat.route, chat.include_usage, billing, chat.body_bytes, now_ms / 1000, label);
                let (usage, note) = pump(bytes, translator, tx, &request_id).await;
                hold.settle(Some(usage), now_ms, note).await;
            }
        }
    }
}

/// Releases the hold of this request if admission did take one (harmless if it did not).
fn release_lost_admission(app: &App) {
    let Ok(redis) = app.redis() else { return };
    let args = scripts::settle_args(&app.request_id, 0, app.now_ms, String::new(), SettleMode::Settle, "admission answer lost; released");
    let rid = app.request_id.clone();
    app.ctx.wait_until(async move {
        let r = redis.eval(&scripts::SETTLE, args).await.and_then(|v| scripts::SettleReply::decode(&v));
        console_log!("{rid} release after lost admission: {r:?}");
    });
}

/// Sends the call and reads the provider's answer (its head only, for a stream).
async fn forward(out: &Outbound, timeout_ms: u64, chat: &ChatRequest, request_id: &str) -> Result<Upstream, ApiError> {
    let mut resp = fetch::send(out, timeout_ms).await?;
    let status = resp.status_code();
    if !(200..300).contains(&status) {
        let bytes = resp.bytes().await.unwrap_or_default();
        console_log!("{request_id} {} answered {status}: {}", chat.provider.as_str(), String::from_utf8_lossy(&bytes[..bytes.len().min(500)]));
        return Err(providers::upstream_error(chat.provider, status, &bytes));
    }
    if chat.stream {
        return resp.stream().map(Upstream::Stream).map_err(|e| ApiError::new(ErrorKind::UpstreamError, format!("provider sent no body: {e}")));
    }
    let bytes = resp.bytes().await.map_err(|e| ApiError::new(ErrorKind::UpstreamError, format!("reading the provider's answer failed: {e}")))?;
    providers::parse_response(chat.provider, &bytes).map(Upstream::Plain)
}

/// Reads the provider's stream to its end, forwarding translated bytes while the client listens.
/// Returns the usage to bill and a ledger note.
async fn pump(mut upstream: worker::ByteStream, mut translator: StreamTranslator, tx: ByteSender, request_id: &str) -> (Usage, &'static str) {
    let mut client_gone = false;
    let send = |bytes: Vec<u8>, gone: &mut bool| {
        if !bytes.is_empty() && !*gone && tx.unbounded_send(Ok(bytes)).is_err() {
            // Keep reading: the provider bills the whole answer, so must we.
            *gone = true;
        }
    };
    while let Some(chunk) = upstream.next().await {
        match chunk {
            Ok(bytes) => send(translator.push(&bytes), &mut client_gone),
            Err(e) => {
                console_error!("{request_id} upstream stream broke: {e}");
                break;
            }
        }
    }
    send(translator.finish(), &mut client_gone);
    let outcome = translator.outcome();
    let note = match (outcome.usage_reported, client_gone) {
        (true, false) => "",
        (true, true) => "client disconnected; billed the provider's full usage",
        (false, _) => "provider stream ended before usage; billed observed usage",
    };
    (outcome.usage, note)
}

/// The admission script: key, rate limit and worst-case hold in one round trip.
/// Returns (hold, balance after hold, max_tokens to send, rate state).
async fn admit(app: &App, redis: &Upstash, key: &str, chat: &ChatRequest, model: &PricedModel) -> Result<(i64, i64, u64, RateState), Reply> {
    let rate = &app.settings.rate;
    let prompt_upper = chat.prompt_upper_tokens();
    let (fixed, out_nano, cap) = match chat.max_tokens {
        Some(m) => (model.hold_mc(prompt_upper, m, rate), 0, m),
        None => (model.input_hold_mc(prompt_upper, rate), model.output_nano_mc_per_token(prompt_upper, rate).max(1), model.max_output()),
    };
    let anon = app.settings.limits.anonymous;
    let fragment = ledger_fragment(&[("provider", json!(chat.provider.as_str())), ("model", json!(model.name()))]);
    let args = vec![
        broker_core::keys::hash_key(key),
        app.now_ms.to_string(),
        app.request_id.clone(),
        ROUTE_CLASS.to_string(),
        app.client_ip.clone(),
        anon.limit.to_string(),
        anon.window_ms.to_string(),
        app.settings.limits.script_arg(ROUTE_CLASS),
        fixed.to_string(),
        out_nano.to_string(),
        cap.to_string(),
        "1".to_string(),
        fragment,
    ];
    let reply = match redis.eval(&scripts::ADMIT, args).await.and_then(|v| AdmitReply::decode(&v)) {
        Ok(r) => r,
        Err(e) => {
            // The script may have run and its answer got lost: release whatever it held.
            release_lost_admission(app);
            return Err(e.into());
        }
    };
    let retry = |s: &RateState| s.reset_secs().max(1);
    match reply {
        AdmitReply::Admitted { hold_mc, balance_after_mc, max_tokens, rate, .. } => Ok((hold_mc, balance_after_mc, max_tokens, rate)),
        AdmitReply::Unauthorized { reason, .. } => {
            let msg = if reason == "revoked" { "this API key has been revoked" } else { "invalid API key" };
            Err(ApiError::unauthorized(msg).into())
        }
        AdmitReply::IpLimited { rate } => Err(Reply::with_headers(scripts::ip_limited_error(rate.reset_ms), rate_headers("auth", &rate))),
        AdmitReply::RateLimited { plan, rate } => Err(Reply::with_headers(
            ApiError::new(
                ErrorKind::RateLimited { retry_after_secs: retry(&rate) },
                format!("rate limit of the `{plan}` plan reached: {} requests per {} s", rate.limit, app.settings.limits.get(&plan, ROUTE_CLASS).map(|l| l.window_ms / 1000).unwrap_or(0)),
            ),
            rate_headers(ROUTE_CLASS, &rate),
        )),
        AdmitReply::NoPlan { plan } => Err(ApiError::new(ErrorKind::Forbidden, format!("the key's plan `{plan}` has no configured limits for this route")).into()),
        AdmitReply::Insufficient { needed_mc, balance_mc, rate } => Err(Reply::with_headers(
            ApiError::new(
                ErrorKind::InsufficientCredits,
                format!(
                    "insufficient credits: this call may cost up to {} credits, the balance is {}; lower max_tokens or top up",
                    credits_string(needed_mc),
                    credits_string(balance_mc)
                ),
            )
            .with_details(json!({ "credits_required": credits_json(needed_mc), "credits_available": credits_json(balance_mc) })),
            rate_headers(ROUTE_CLASS, &rate),
        )),
    }
}

fn model_label(chat: &ChatRequest, output_model: &str) -> String {
    match (chat.route, chat.provider) {
        (Route::OpenAiCompatible, Provider::OpenAi) => output_model.to_string(),
        (Route::OpenAiCompatible, p) => format!("{}/{}", p.as_str(), chat.model),
        _ => chat.model.clone(),
    }
}

fn render(chat: &ChatRequest, out: &ChatOutput, billing: &Billing, charged: i64, remaining: i64, now_ms: u64) -> Value {
    let broker = json!({
        "request_id": billing.request_id,
        "credits_charged": credits_json(charged),
        "credits_remaining": credits_json(remaining),
    });
    match (chat.route, chat.provider) {
        // Same format as the provider: its body, unchanged but for our `x_broker` object.
        (Route::OpenAiCompatible, Provider::OpenAi) | (Route::AnthropicCompatible, _) => {
            let mut v = out.raw.clone();
            v["x_broker"] = broker;
            v
        }
        (Route::OpenAiCompatible, _) => json!({
            "id": format!("chatcmpl-{}", billing.request_id),
            "object": "chat.completion",
            "created": now_ms / 1000,
            "model": model_label(chat, &out.model),
            "choices": [{
                "index": 0,
                "message": { "role": "assistant", "content": out.content, "refusal": null },
                "finish_reason": out.finish_reason.clone().unwrap_or_else(|| "stop".into()),
            }],
            "usage": openai_usage_json(&out.usage),
            "x_broker": broker,
        }),
        (Route::Native, _) => json!({
            "id": billing.request_id,
            "provider": chat.provider.as_str(),
            "model": chat.model,
            "content": out.content,
            "finish_reason": out.finish_reason,
            "usage": out.usage.to_public_json(),
            "credits_charged": credits_json(charged),
            "credits_remaining": credits_json(remaining),
            "request_id": billing.request_id,
        }),
    }
}

/// The customer's side of a stream: the bytes the call task forwards.
fn stream_response(body: ByteReceiver, route: Route, hold_mc: i64, balance_after: i64, rate_hdrs: &[(String, String)]) -> HandlerResult {
    let mut out = Response::from_stream(body).map_err(|e| ApiError::new(ErrorKind::Internal, format!("stream: {e}")))?;
    let h = out.headers_mut();
    let ct = if route == Route::AnthropicCompatible { "text/event-stream; charset=utf-8" } else { "text/event-stream" };
    let _ = h.set("content-type", ct);
    let _ = h.set("cache-control", "no-cache");
    for (k, v) in rate_hdrs {
        let _ = h.set(k, v);
    }
    // The charge is known only at the end, so it is in the last event; the head says what is held
    // and what remains while the hold is open (a lower bound of the final balance).
    let _ = h.set("x-credits-charged", "pending");
    let _ = h.set("x-credits-held", &credits_string(hold_mc));
    let _ = h.set("x-credits-remaining", &credits_string(balance_after));
    Ok(out)
}
