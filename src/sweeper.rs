//! The scheduled sweeper: charges the hold of calls whose settlement never ran (the isolate was
//! stopped mid-call, `waitUntil` ran out, Redis failed every retry). The hold is the proven upper
//! bound of the call; a settlement that arrives after the sweep refunds the difference once
//! (see `settle_v6.lua`).

use crate::context::read_var;
use crate::fields;
use crate::log::{Level, Redactor};
use crate::upstash::Upstash;
use broker_core::config::Secret;
use broker_core::error::ApiError;
use broker_core::metering::Settlement;
use broker_core::scripts::SettleReply;
use broker_core::store::Store;
use worker::Env;

/// At most this many per run; the next run takes the rest.
const BATCH: usize = 200;

pub async fn sweep(env: &Env, log: &Redactor, now_ms: u64) -> Result<usize, ApiError> {
    let settings = crate::context::settings(env)?;
    let secret = |n: &str| {
        let v = read_var(env, n).ok_or_else(|| broker_core::config::misconfigured(n, "is not set"))?;
        log.add(&v);
        Ok::<_, ApiError>(Secret::new(v))
    };
    let store = Upstash::new(secret("UPSTASH_REDIS_REST_URL")?, secret("UPSTASH_REDIS_REST_TOKEN")?);
    let after_secs = settings.hold_sweep_after_secs;
    let mut charged = 0;
    for rid in store.open_holds_before(now_ms.saturating_sub(after_secs * 1000), BATCH).await? {
        let reply = store.settle(&Settlement::sweep(&rid, after_secs, now_ms, settings.retention())).await?;
        let mut f = fields! {"request_id" => rid, "open_secs" => after_secs};
        f.extend(crate::meter::settle_fields(&reply));
        log.line(Level::Warn, "sweeper", f);
        if matches!(reply, SettleReply::Swept { .. }) {
            charged += 1;
        }
    }
    // Low-balance alerts whose delivery failed every attempt: one more try each (docs/accounts.md).
    match crate::watch::retry_queued(&store, log, BATCH).await {
        Ok(n) if n > 0 => log.line(Level::Info, "sweeper", fields! {"alerts_delivered" => n}),
        Ok(_) => {}
        Err(e) => log.line(Level::Error, "sweeper", fields! {"alerts" => "not retried", "error" => e.message}),
    }
    Ok(charged)
}
