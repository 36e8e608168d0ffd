//! The front's link to redis-server, on the `redis` crate.
//!
//! * One multiplexed connection carries the commands of all concurrent requests: each request's
//!   commands are written as one contiguous pipeline, so a `MULTI … EXEC` batch cannot interleave
//!   with another request's commands.
//! * The connection is dialled on first use and replaced after it broke (redis restarted): a
//!   request that finds the shared connection already closed is retried once on a fresh one,
//!   as the pooled client before it did.
//! * Blocking commands (`BLPOP`, `XREAD … BLOCK`, `WAIT`, …) get a connection of their own, so
//!   one long wait cannot stall every other request queued behind it on the shared connection.
//!
//! Replies come back raw (RESP2, the crate's default): server errors are `Value::ServerError`
//! items, never `Err`; `Err` means redis could not be reached or the connection broke.

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::{AsyncConnectionConfig, Client, ConnectionAddr, Pipeline, RedisError, Value};

/// Commands that may wait on the server for a long time (see the module doc).
const BLOCKING: &[&str] = &[
    "BLPOP",
    "BRPOP",
    "BRPOPLPUSH",
    "BLMOVE",
    "BLMPOP",
    "BZPOPMIN",
    "BZPOPMAX",
    "BZMPOP",
    "WAIT",
    "WAITAOF",
];

pub type Command = Vec<Vec<u8>>;

pub struct RedisLink {
    client: Client,
    config: AsyncConnectionConfig,
    /// The shared connection and its generation (to replace only the one that broke).
    shared: Mutex<Option<(u64, MultiplexedConnection)>>,
    /// Held while dialling, so a burst of requests after a restart dials once.
    dialling: tokio::sync::Mutex<u64>,
}

impl RedisLink {
    pub fn new(host: String, port: u16) -> Result<RedisLink, RedisError> {
        let client = Client::open(ConnectionAddr::Tcp(host, port))?;
        // Same bounds as the hand-written client had: quick to report redis down, generous
        // for slow scripts, never hanging forever.
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(30)));
        Ok(RedisLink {
            client,
            config,
            shared: Mutex::new(None),
            dialling: tokio::sync::Mutex::new(0),
        })
    }

    fn slot(&self) -> MutexGuard<'_, Option<(u64, MultiplexedConnection)>> {
        // Nothing can be left half-updated in the slot; a poisoned lock is still usable.
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The shared connection, dialling it if there is none. `bool`: freshly dialled.
    async fn shared(&self) -> Result<(u64, MultiplexedConnection, bool), RedisError> {
        if let Some((generation, conn)) = self.slot().clone() {
            return Ok((generation, conn, false));
        }
        let mut last_generation = self.dialling.lock().await;
        if let Some((generation, conn)) = self.slot().clone() {
            return Ok((generation, conn, false));
        }
        let conn = self.dial().await?;
        *last_generation += 1;
        *self.slot() = Some((*last_generation, conn.clone()));
        Ok((*last_generation, conn, true))
    }

    async fn dial(&self) -> Result<MultiplexedConnection, RedisError> {
        self.client
            .get_multiplexed_async_connection_with_config(&self.config)
            .await
    }

    /// Forget the shared connection of `generation` (a newer one is left alone).
    fn drop_shared(&self, generation: u64) {
        let mut slot = self.slot();
        if slot.as_ref().is_some_and(|(g, _)| *g == generation) {
            *slot = None;
        }
    }

    /// Run `cmds` as one pipeline and return exactly one reply per command.
    pub async fn run(&self, cmds: &[Command]) -> Result<Vec<Value>, RedisError> {
        let mut pipe = Pipeline::with_capacity(cmds.len());
        for c in cmds {
            // Raw bytes in, name included: arguments reach redis exactly as the client sent them.
            let mut cmd = redis::Cmd::new();
            for arg in c {
                cmd.arg(&arg[..]);
            }
            pipe.add_command(cmd);
        }
        if cmds.iter().any(is_blocking) {
            let mut own = self.dial().await?;
            return own.req_packed_commands(&pipe, 0, cmds.len()).await;
        }
        let (generation, mut conn, fresh) = self.shared().await?;
        match conn.req_packed_commands(&pipe, 0, cmds.len()).await {
            Ok(replies) => Ok(replies),
            Err(e) if e.is_connection_dropped() && !fresh => {
                // The connection died while idle (redis restarted): try once on a new one.
                self.drop_shared(generation);
                let (_, mut conn, _) = self.shared().await?;
                conn.req_packed_commands(&pipe, 0, cmds.len()).await
            }
            Err(e) => {
                if e.is_connection_dropped() || e.is_unrecoverable_error() {
                    self.drop_shared(generation);
                }
                Err(e)
            }
        }
    }
}

/// Whether a command may block on the server (`XREAD`/`XREADGROUP` only with `BLOCK`).
fn is_blocking(cmd: &Command) -> bool {
    let Some(name) = cmd.first() else {
        return false;
    };
    let is = |n: &str| name.eq_ignore_ascii_case(n.as_bytes());
    BLOCKING.iter().any(|b| is(b))
        || ((is("XREAD") || is("XREADGROUP"))
            && cmd.iter().skip(1).any(|a| a.eq_ignore_ascii_case(b"BLOCK")))
}
