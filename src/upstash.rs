//! Upstash Redis over its REST API, with the worker's fetch. Every failure to reach Redis or to
//! get a sane answer is `Unavailable` (503): the gateway fails closed.

use crate::fetch::{self, Outbound};
use broker_core::error::ApiError;
use broker_core::scripts::Script;
use serde_json::{json, Value};

pub struct Upstash {
    url: String,
    token: String,
}

impl Upstash {
    pub fn new(url: String, token: String) -> Self {
        Upstash { url: url.trim_end_matches('/').to_string(), token }
    }

    async fn post(&self, path: &str, body: String) -> Result<(u16, Value), ApiError> {
        let req = Outbound {
            method: "POST",
            url: format!("{}{}", self.url, path),
            headers: vec![("authorization".into(), format!("Bearer {}", self.token)), ("content-type".into(), "application/json".into())],
            body: Some(body.into_bytes()),
        };
        let mut resp = fetch::send(&req, 10_000).await.map_err(|e| ApiError::unavailable(format!("redis unreachable: {}", e.message)))?;
        let status = resp.status_code();
        let bytes = resp.bytes().await.map_err(|e| ApiError::unavailable(format!("redis read failed: {e}")))?;
        let v: Value = serde_json::from_slice(&bytes).map_err(|_| ApiError::unavailable(format!("redis answered status {status} with a non-JSON body")))?;
        Ok((status, v))
    }

    /// One command; a Redis error reply is `Err(Ok(message))`, an outage `Err(Err(_))`.
    async fn command_raw(&self, args: &[Value]) -> Result<Result<Value, String>, ApiError> {
        let (status, v) = self.post("", Value::Array(args.to_vec()).to_string()).await?;
        match (status, v.get("result"), v.get("error")) {
            (200, Some(r), _) => Ok(Ok(r.clone())),
            (400, _, Some(Value::String(e))) => Ok(Err(e.clone())),
            _ => Err(ApiError::unavailable(format!("redis answered status {status}: {v}"))),
        }
    }

    pub async fn command(&self, args: &[Value]) -> Result<Value, ApiError> {
        self.command_raw(args).await?.map_err(|e| ApiError::unavailable(format!("redis error: {e}")))
    }

    /// Several commands in one round trip (not atomic).
    pub async fn pipeline(&self, commands: Vec<Vec<Value>>) -> Result<Vec<Value>, ApiError> {
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

    /// Runs a script by SHA-1; only when Redis does not know it yet (NOSCRIPT) is the source sent.
    pub async fn eval(&self, script: &Script, args: Vec<String>) -> Result<Value, ApiError> {
        let mut cmd = vec![json!("EVALSHA"), json!(script.sha1()), json!(0)];
        cmd.extend(args.iter().map(|a| json!(a)));
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
}
