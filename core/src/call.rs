//! What a flow needs from the platform for one request: its clock, id and client address, the
//! checked settings, fresh randomness, and where its log lines and the secrets it reads go. The
//! worker implements it on its request context; the host tests with plain values. Flows take a
//! `&impl Call`, so a rule never reaches for the platform itself.

use crate::config::Settings;
use crate::error::ApiError;
use serde_json::{Map, Value};

pub trait Call {
    fn now_ms(&self) -> u64;
    fn request_id(&self) -> &str;
    /// The client's address as the per-address limits count it.
    fn client_ip(&self) -> &str;
    fn settings(&self) -> &Settings;
    /// `n` random bytes as hex; a failed random source is an error, never a shared value.
    fn random_hex(&self, n: usize) -> Result<String, ApiError>;
    /// A value the client sent that is a secret (a plaintext key): kept out of the log.
    fn keep_secret(&self, value: &str);
    /// An info line of this request's log.
    fn log(&self, msg: &str, fields: Map<String, Value>);

    /// `YYYY-MM-DD` (UTC) of [`Call::now_ms`]: the calendar day (analytics, report ranges; prices
    /// go by the worker's `price_day`, which a local test stack may pin).
    fn today(&self) -> String {
        crate::pricing::utc_date(self.now_ms())
    }
    /// A new key id (`key_<16 hex>`).
    fn new_key_id(&self) -> Result<String, ApiError> {
        Ok(format!("key_{}", self.random_hex(8)?))
    }
    /// A new plaintext key (`sk-broker-<64 hex>`), kept out of the log.
    fn new_plaintext_key(&self) -> Result<String, ApiError> {
        let k = format!("{}{}", crate::keys::KEY_PREFIX, self.random_hex(32)?);
        self.keep_secret(&k);
        Ok(k)
    }
}
