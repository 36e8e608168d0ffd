//! The store's transport: Upstash Redis over its REST API, with the worker's fetch. Every failure
//! to reach Redis or to get a sane answer is `Unavailable` (503): the gateway fails closed. The
//! operations themselves are `broker_core::store::Store`'s.

use crate::fetch;
use broker_core::config::Secret;
use broker_core::error::ApiError;
use broker_core::product::UpstreamRequest;
use broker_core::scripts::Script;
use broker_core::store::Store;
use serde_json::{json, Value};

/// How long an Upstash request may take before the gateway gives up (and fails closed).
const UPSTASH_TIMEOUT_MS: u64 = 10_000;

pub struct Upstash {
    url: Secret,
    token: Secret,
}

impl Upstash {
    pub fn new(url: Secret, token: Secret) -> Self {
        Upstash { url, token }
    }

    async fn post(&self, path: &str, body: String) -> Result<(u16, Value), ApiError> {
        let req = UpstreamRequest {
            url: format!("{}{path}", self.url.expose().trim_end_matches('/')),
            headers: vec![("authorization".into(), format!("Bearer {}", self.token.expose())), ("content-type".into(), "application/json".into())],
            body: body.into_bytes(),
        };
        let mut sent = fetch::send(&req, UPSTASH_TIMEOUT_MS).await.map_err(|e| ApiError::unavailable(format!("redis unreachable: {}", e.message)))?;
        let status = sent.response.status_code();
        let bytes = sent.body().await.map_err(|e| ApiError::unavailable(format!("redis read failed: {e}")))?;
        let v: Value = serde_json::from_slice(&bytes).map_err(|_| ApiError::unavailable(format!("redis answered status {status} with a non-JSON body")))?;
        Ok((status, v))
    }

    /// One command; a Redis error reply is `Ok(Err(message))`, an outage `Err(_)`.
    async fn command_raw(&self, args: &[Value]) -> Result<Result<Value, String>, ApiError> {
        let (status, v) = self.post("", Value::Array(args.to_vec()).to_string()).await?;
        match (status, v.get("result"), v.get("error")) {
            (200, Some(r), _) => Ok(Ok(r.clone())),
            (400, _, Some(Value::String(e))) => Ok(Err(e.clone())),
            _ => Err(ApiError::unavailable(format!("redis answered status {status}: {v}"))),
        }
    }
}

impl Store for Upstash {
    /// By SHA-1; only when Redis does not know the script yet (NOSCRIPT) is its source sent.
    async fn eval(&self, script: &Script, args: Vec<String>) -> Result<Value, ApiError> {
        let mut cmd = vec![json!("EVALSHA"), json!(script.sha1()), json!(0)];
        cmd.extend(args.into_iter().map(Value::String));
        match self.command_raw(&cmd).await? {
            Ok(v) => Ok(v),
            Err(e) if e.starts_with("NOSCRIPT") => {
                cmd[0] = json!("EVAL");
                cmd[1] = json!(script.source);
                self.command_raw(&cmd).await?.map_err(|e| ApiError::unavailable(format!("{} failed: {e}", script.name)))
            }
            Err(e) => Err(ApiError::unavailable(format!("{} failed: {e}", script.name))),
        }
    }

    async fn command(&self, args: Vec<Value>) -> Result<Value, ApiError> {
        self.command_raw(&args).await?.map_err(|e| ApiError::unavailable(format!("redis error: {e}")))
    }

    async fn pipeline(&self, commands: Vec<Vec<Value>>) -> Result<Vec<Value>, ApiError> {
        let (status, v) = self.post("/pipeline", Value::from(commands.into_iter().map(Value::Array).collect::<Vec<_>>()).to_string()).await?;
        let Some(items) = v.as_array().filter(|_| status == 200) else {
            return Err(ApiError::unavailable(format!("redis pipeline answered status {status}")));
        };
        items
            .iter()
            .map(|item| match (item.get("result"), item.get("error")) {
                (Some(r), _) => Ok(r.clone()),
                (_, Some(e)) => Err(ApiError::unavailable(format!("redis error: {e}"))),
                _ => Err(ApiError::unavailable("redis pipeline item without result")),
            })
            .collect()
    }
}
