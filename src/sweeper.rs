//! The scheduled sweeper: releases holds whose settlement never ran (the answer to admission was
//! lost, the isolate was stopped mid-call, `waitUntil` ran out). A settlement that arrives after
//! the sweep still charges the real usage once (see `settle_v2.lua`).

use crate::app::read_var;
use crate::upstash::Upstash;
use broker_core::error::ApiError;
use broker_core::scripts::{self, SettleMode, SettleReply};
use serde_json::{json, Value};
use worker::{console_log, Env};

/// Holds older than this are released. Longer than any stream a Worker can serve.
const DEFAULT_SWEEP_AFTER_SECS: u64 = 7200;
/// At most this many per run; the next run takes the rest.
const BATCH: usize = 200;

pub async fn sweep(env: &Env, now_ms: u64) -> Result<usize, ApiError> {
    let need = |n: &str| read_var(env, n).ok_or_else(|| ApiError::unavailable(format!("gateway misconfigured: {n} is not set")));
    let redis = Upstash::new(need("UPSTASH_REDIS_REST_URL")?, need("UPSTASH_REDIS_REST_TOKEN")?);
    let after_secs = read_var(env, "HOLD_SWEEP_AFTER_SECS").and_then(|v| v.trim().parse().ok()).unwrap_or(DEFAULT_SWEEP_AFTER_SECS);
    let cutoff = now_ms.saturating_sub(after_secs * 1000);
    let due = redis
        .command(&[json!("ZRANGEBYSCORE"), json!("abk:open_holds"), json!("-inf"), json!(cutoff), json!("LIMIT"), json!(0), json!(BATCH)])
        .await?;
    let mut released = 0;
    for rid in due.as_array().map(Vec::as_slice).unwrap_or_default().iter().filter_map(Value::as_str) {
        let note = format!("hold open for over {after_secs} s; released by the sweeper");
        let args = scripts::settle_args(rid, 0, now_ms, String::new(), SettleMode::Sweep, &note);
        let reply = SettleReply::decode(&redis.eval(&scripts::SETTLE, args).await?)?;
        console_log!("sweeper {rid}: {reply:?}");
        if matches!(reply, SettleReply::Swept { .. }) {
            released += 1;
        }
    }
    Ok(released)
}
