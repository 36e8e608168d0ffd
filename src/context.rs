//! The per-request context: checked settings, secrets, the store, the request id and clock, and
//! `wait_until`. Handlers take a `&Ctx`; nothing here knows the routes (see `router`).

use crate::log::{Level, Redactor};
use crate::upstash::Upstash;
use broker_core::config::{settings_from, Secret, Settings};
use broker_core::error::ApiError;
use broker_core::provider::Provider;
use broker_core::providers::Endpoint;
use serde_json::{Map, Value};
use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;

thread_local! {
    /// The checked settings of this isolate. An isolate's environment never changes (a new
    /// deployment or secret starts new isolates), so they are parsed once, not per request.
    static SETTINGS: RefCell<Option<Rc<Settings>>> = const { RefCell::new(None) };
}

/// The isolate's settings, parsed from `env` on first use (a bad value is not cached: each
/// request reports it).
pub fn settings(env: &Env) -> Result<Rc<Settings>, ApiError> {
    if let Some(s) = SETTINGS.with(|c| c.borrow().clone()) {
        return Ok(s);
    }
    let s = Rc::new(settings_from(&|name| read_var(env, name))?);
    SETTINGS.with(|c| *c.borrow_mut() = Some(s.clone()));
    Ok(s)
}
use worker::{Context, Env};

pub struct Ctx {
    env: Env,
    wait: Context,
    settings: Rc<Settings>,
    request_id: String,
    now_ms: u64,
    client_ip: String,
    redactor: Redactor,
    /// Fields of this request's log line, filled in by the handlers.
    facts: RefCell<Map<String, Value>>,
}

/// A `[vars]` value or a secret; empty counts as missing.
pub fn read_var(env: &Env, name: &str) -> Option<String> {
    env.var(name).map(|v| v.to_string()).or_else(|_| env.secret(name).map(|s| s.to_string())).ok().filter(|v| !v.trim().is_empty())
}

/// `n` random bytes as hex; a failed random source is a 503, never a shared id.
pub fn random_hex(n: usize) -> Result<String, ApiError> {
    let mut buf = vec![0u8; n];
    getrandom::getrandom(&mut buf).map_err(|e| ApiError::unavailable(format!("the random source failed: {e}")))?;
    Ok(hex::encode(buf))
}

impl Ctx {
    pub fn new(env: Env, wait: Context, request_id: String, client_ip: String, redactor: Redactor, now_ms: u64) -> Result<Ctx, ApiError> {
        let settings = settings(&env)?;
        let client_ip = broker_core::ratelimit::address_bucket(&client_ip);
        Ok(Ctx { env, wait, settings, request_id, now_ms, client_ip, redactor, facts: RefCell::new(Map::new()) })
    }

    /// Adds a field to this request's log line.
    pub fn fact(&self, key: &str, value: impl Into<Value>) {
        self.facts.borrow_mut().insert(key.to_string(), value.into());
    }

    pub fn take_facts(&self) -> Map<String, Value> {
        std::mem::take(&mut self.facts.borrow_mut())
    }

    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// Keeps a value the client sent as a secret (its API key) out of the log.
    pub fn keep_secret(&self, value: &str) {
        self.redactor.add(value);
    }

    /// A log line of this request (its id added).
    pub fn log(&self, level: Level, msg: &str, mut fields: Map<String, Value>) {
        fields.insert("request_id".into(), Value::from(self.request_id.as_str()));
        self.redactor.line(level, msg, fields);
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }
    pub fn request_id(&self) -> &str {
        &self.request_id
    }
    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }
    /// The client's address as the per-address limits count it (an IPv6 client by its /64).
    pub fn client_ip(&self) -> &str {
        &self.client_ip
    }
    /// `YYYY-MM-DD`: the day prices are chosen by (today, unless a local test stack pins it).
    pub fn price_day(&self) -> String {
        broker_core::clock::price_day(self.settings.price_date.as_deref(), self.now_ms)
    }

    /// A secret the route cannot work without: missing means 503, never "serve anyway".
    pub fn secret(&self, name: &str) -> Result<Secret, ApiError> {
        self.optional_secret(name).ok_or_else(|| broker_core::config::misconfigured(name, "is not set"))
    }

    /// A secret that turns a feature on when set.
    pub fn optional_secret(&self, name: &str) -> Option<Secret> {
        let value = read_var(&self.env, name)?;
        self.redactor.add(&value);
        Some(Secret::new(value))
    }

    pub fn store(&self) -> Result<Upstash, ApiError> {
        Ok(Upstash::new(self.secret("UPSTASH_REDIS_REST_URL")?, self.secret("UPSTASH_REDIS_REST_TOKEN")?))
    }

    pub fn endpoint(&self, provider: Provider) -> Result<Endpoint, ApiError> {
        Ok(Endpoint { base_url: self.settings.base_url(provider).to_string(), api_key: self.secret(provider.api_key_secret())? })
    }

    /// The query parameters of the request's URL, in order.
    pub fn query(req: &worker::Request) -> Result<Vec<(String, String)>, ApiError> {
        let url = req.url().map_err(|e| ApiError::invalid(format!("bad url: {e}")))?;
        Ok(url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect())
    }

    /// Runs `task` after the response, up to the platform's allowance.
    pub fn wait_until(&self, task: impl Future<Output = ()> + 'static) {
        self.wait.wait_until(task);
    }
}

/// What core's flows need from the platform (`broker_core::call::Call`).
impl broker_core::call::Call for Ctx {
    fn now_ms(&self) -> u64 {
        self.now_ms
    }
    fn request_id(&self) -> &str {
        &self.request_id
    }
    fn client_ip(&self) -> &str {
        &self.client_ip
    }
    fn settings(&self) -> &Settings {
        &self.settings
    }
    fn random_hex(&self, n: usize) -> Result<String, ApiError> {
        random_hex(n)
    }
    fn keep_secret(&self, value: &str) {
        self.redactor.add(value);
    }
    fn log(&self, msg: &str, fields: Map<String, Value>) {
        Ctx::log(self, Level::Info, msg, fields);
    }
}
