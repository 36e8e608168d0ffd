//! Every Redis key the product uses, named in one place. The Lua scripts build the same names
//! (a test below checks that every `'abk:…'` literal in `lua/` is one of these prefixes).
//!
//! | key | type | what |
//! |---|---|---|
//! | `abk:keyhash:<sha256>` | string | key id of an API key (keys are stored hashed); `retired:<id>` once rotated away |
//! | `abk:key:<id>` | hash | name, plan, status, `balance` (spendable mc; negative = debt), `held` (mc in open calls), created/last used/rotated/revoked ms, `charged_total`, `ledger_carried`; a sub-key: `parent` (the account's id), `cap_day`/`cap_month`/`cap_total`, `models`, `spent_day`(`_at`), `spent_month`(`_at`), `spent_total`, `held` (its open holds), `ledger_tag` |
//! | `abk:ledger:<id>` | list | ledger entries (JSON), newest first, the newest `LEDGER_KEEP`; a sub-key's: copies of its calls' entries |
//! | `abk:subkeys:<account id>` | set | the account's active sub-keys (issue 25) |
//! | `abk:rl:<id>:<class>` | zset | sliding window of a key's calls in a route class |
//! | `abk:rl:ip:<ip>` | zset | sliding window of unknown-key calls from an address |
//! | `abk:rl:rapid:<user>:<class>` | zset | sliding window of a RapidAPI user's calls in a route class |
//! | `abk:hold:<request id>` | string | an open call: `<key id>|<hold mc>|<ledger fields>` |
//! | `abk:open_holds` | zset | open calls by admission time (the sweeper's work list) |
//! | `abk:idem:<key id>:<sha256 of the Idempotency-Key>` | hash | a call's idempotency record (24 h): `fp`, `rid`; `charged` once closed, `answer` when kept (`idempotency.rs`) |
//! | `abk:idem_of:<request id>` | string | the idempotency record of a call (24 h), for its settlement and the sweeper |
//! | `abk:swept:<request id>` | string | a call the sweeper charged (30 days): a late settlement corrects it |
//! | `abk:dedupe:stripe:event:<id>` | string | a Stripe event already handled (90 days) |
//! | `abk:dedupe:stripe:session:<id>` | string | a checkout session already credited |
//! | `abk:dedupe:stripe:invoice:<id>` | string | a subscription invoice already credited |
//! | `abk:dedupe:stripe:pi:<id>` | string | a payment intent credited: `<key id>|<mc>`; `…:clawed` the share refunded |
//! | `abk:refund:stripe:pi:<id>` | string | a refund that came before its purchase: `<refunded cents>|<paid cents>` |
//! | `abk:paid:stripe:pi:<id>` | string | the cents a credited payment intent paid (a dispute's share is of these) |
//! | `abk:dispute:stripe:dp:<id>` | string | a dispute's state: `frozen`, `released` or `lost` `|<key id>|<mc>`; `pending|<step>|<cents>` before its purchase |
//! | `abk:dispute:stripe:pi:<id>` | set | disputes of a payment intent not credited yet |
//! | `abk:dedupe:paypal:event:<id>`, `…:capture:<id>` | string | PayPal events and captures credited (`<key id>|<mc>`; `…:clawed` the share refunded) |
//! | `abk:refund:paypal:capture:<id>` | string | a PayPal refund that came before its capture: `<credits to take back>|0` |
//! | `abk:rl:webhook:paypal:<ip>` | zset | PayPal webhook deliveries from an address (before any call to PayPal) |
//! | `abk:dedupe:import:<sha256>` | string | a key of the original product already imported |
//! | `user:<key>:credits` | string | the original product's balances (read by the import, never written) |
//! | `abk:unmatched_payments` | hash | payments no key could be credited with, for admins |
//! | `abk:paypal:token` | string | the cached PayPal OAuth token |
//! | `abk:adminfail:<ip>` | zset | wrong admin secrets from an address |
//! | `abk:stats:<day>` | hash | the day's calls by `<provider>/<model>:<metric>` (calls, units, cost_micro, charged_mc, corrected_mc; exceeded, exceeded_hold_mc, exceeded_charged_mc for usages above their hold), `STATS_KEEP_DAYS` |
//! | `abk:stats:<day>:<key id>` | hash | the same for one key |
//! | `abk:stats:<day>:rapidapi:<user>` | hash | the same for one RapidAPI user |
//! | `abk:stats:<day>:rapidapi-plan:<plan>` | hash | the same for one RapidAPI subscription |
//! | `abk:stats:<day>:payments` | hash | the day's `topup`, `grant`, `adjustment`, `refund` counts and mc |
//! | `abk:lowbal:<id>` | hash | a key's low-balance alert (`a_*`: threshold, URL, signing secret, armed) and auto top-up (`t_*`: threshold, amount, cents, max per day, on, armed, status, error; `customer`, `pm`: the saved card): `lowbal_v1.lua` |
//! | `abk:topup:<id>:<day>` | string | auto top-ups started that day (2 days) |
//! | `abk:alerts:retry` | list | alerts no attempt delivered, for the sweeper (`crate::lowbal::queue_alert`) |

pub const PREFIX: &str = "abk:";
pub const OPEN_HOLDS: &str = "abk:open_holds";
pub const UNMATCHED_PAYMENTS: &str = "abk:unmatched_payments";
pub const PAYPAL_TOKEN: &str = "abk:paypal:token";
pub const ALERT_QUEUE: &str = "abk:alerts:retry";

pub fn key_record(key_id: &str) -> String {
    format!("abk:key:{key_id}")
}
pub fn ledger(key_id: &str) -> String {
    format!("abk:ledger:{key_id}")
}
/// An account's active sub-keys.
pub fn sub_keys(account_id: &str) -> String {
    format!("abk:subkeys:{account_id}")
}
pub fn admin_failures(ip: &str) -> String {
    format!("abk:adminfail:{ip}")
}
pub fn stripe_event(event_id: &str) -> String {
    format!("abk:dedupe:stripe:event:{event_id}")
}
pub fn stripe_session(session_id: &str) -> String {
    format!("abk:dedupe:stripe:session:{session_id}")
}
pub fn stripe_invoice(invoice_id: &str) -> String {
    format!("abk:dedupe:stripe:invoice:{invoice_id}")
}
pub fn stripe_payment(payment_intent: &str) -> String {
    format!("abk:dedupe:stripe:pi:{payment_intent}")
}
pub fn stripe_early_refund(payment_intent: &str) -> String {
    format!("abk:refund:stripe:pi:{payment_intent}")
}
pub fn paypal_event(event_id: &str) -> String {
    format!("abk:dedupe:paypal:event:{event_id}")
}
pub fn paypal_capture(capture_id: &str) -> String {
    format!("abk:dedupe:paypal:capture:{capture_id}")
}
pub fn paypal_early_refund(capture_id: &str) -> String {
    format!("abk:refund:paypal:capture:{capture_id}")
}
pub fn stripe_paid(payment_intent: &str) -> String {
    format!("abk:paid:stripe:pi:{payment_intent}")
}
pub fn stripe_dispute(dispute_id: &str) -> String {
    format!("abk:dispute:stripe:dp:{dispute_id}")
}
pub fn stripe_pending_disputes(payment_intent: &str) -> String {
    format!("abk:dispute:stripe:pi:{payment_intent}")
}
/// Webhook deliveries of `source` from a client address (its `ratelimit::address_bucket`).
pub fn webhook_attempts(source: &str, ip: &str) -> String {
    format!("abk:rl:webhook:{source}:{ip}")
}
/// A call's `Idempotency-Key` record: the key's id and the SHA-256 of the header (issue 24).
pub fn idempotency(key_id: &str, header_hash: &str) -> String {
    format!("abk:idem:{key_id}:{header_hash}")
}
/// The idempotency record of a call, by its request id.
pub fn idempotency_of(request_id: &str) -> String {
    format!("abk:idem_of:{request_id}")
}
/// A key of the original product (`user:<key>:credits`) already imported.
pub fn legacy_import(key_hash: &str) -> String {
    format!("abk:dedupe:import:{key_hash}")
}
/// A key's low-balance watchers (`lowbal_v1.lua`).
pub fn lowbal(key_id: &str) -> String {
    format!("abk:lowbal:{key_id}")
}
/// The auto top-ups a key started on `day`.
pub fn topup_day(key_id: &str, day: &str) -> String {
    format!("abk:topup:{key_id}:{day}")
}
/// Keys of the original product: `user:<plaintext key>:credits` (credits, a number).
pub const LEGACY_PATTERN: &str = "user:*:credits";
/// The plaintext key a [`LEGACY_PATTERN`] name carries (`""` for a name of another shape).
pub fn legacy_key(name: &str) -> &str {
    name.strip_prefix("user:").and_then(|r| r.strip_suffix(":credits")).unwrap_or("")
}

/// Whose calls a day's rollup counts (`rapid_v1.lua` writes the two RapidAPI scopes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatsScope {
    All,
    Key(String),
    /// One RapidAPI user (`X-RapidAPI-User`).
    RapidUser(String),
    /// One RapidAPI subscription (a name of `RAPIDAPI_PLANS`).
    RapidPlan(String),
}

impl StatsScope {
    /// Calls that RapidAPI pays for (the gateway's own payments are not theirs).
    pub fn is_rapidapi(&self) -> bool {
        matches!(self, StatsScope::RapidUser(_) | StatsScope::RapidPlan(_))
    }

    /// The scope's name in a rollup key (`None`: all calls).
    pub fn suffix(&self) -> Option<String> {
        match self {
            StatsScope::All => None,
            StatsScope::Key(id) => Some(id.clone()),
            StatsScope::RapidUser(u) => Some(format!("rapidapi:{u}")),
            StatsScope::RapidPlan(p) => Some(format!("rapidapi-plan:{p}")),
        }
    }
}

/// A day's call rollup of `scope`.
pub fn stats_calls(day: &str, scope: &StatsScope) -> String {
    match scope.suffix() {
        Some(s) => format!("abk:stats:{day}:{s}"),
        None => format!("abk:stats:{day}"),
    }
}
pub fn stats_payments(day: &str) -> String {
    format!("abk:stats:{day}:payments")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fixed part (before the first `<`) of every name in the table above.
    fn documented() -> Vec<String> {
        let table = include_str!("redis_keys.rs").lines().take_while(|l| l.starts_with("//!")).filter(|l| l.starts_with("//! | `"));
        let first_cells = table.filter_map(|l| l.split('|').nth(1).map(str::to_string));
        first_cells.flat_map(|c| c.split('`').skip(1).step_by(2).map(|n| n.split('<').next().unwrap_or("").to_string()).collect::<Vec<_>>()).collect()
    }

    #[test]
    fn every_key_a_script_builds_is_a_documented_family() {
        let documented = documented();
        let mut seen = 0;
        for script in crate::scripts::ALL {
            for lit in script.source.split('\'').skip(1).step_by(2).filter(|l| l.starts_with("abk:")) {
                assert!(documented.iter().any(|d| d == lit), "{}: `{lit}` is not a family of the table in redis_keys.rs", script.name);
                seen += 1;
            }
        }
        assert!(seen >= 10, "the scripts build their names from literals: {seen} found");
    }

    #[test]
    fn names_are_those_the_stored_data_lives_under() {
        // Written out by hand: renaming one would orphan every record stored under the old name.
        assert_eq!(key_record("key_0123456789abcdef"), "abk:key:key_0123456789abcdef");
        assert_eq!(ledger("key_1"), "abk:ledger:key_1");
        assert_eq!(sub_keys("key_1"), "abk:subkeys:key_1");
        assert_eq!(stripe_event("evt_1"), "abk:dedupe:stripe:event:evt_1");
        assert_eq!(stripe_session("cs_1"), "abk:dedupe:stripe:session:cs_1");
        assert_eq!(stripe_invoice("in_1"), "abk:dedupe:stripe:invoice:in_1");
        assert_eq!(stripe_payment("pi_1"), "abk:dedupe:stripe:pi:pi_1");
        assert_eq!(stripe_early_refund("pi_1"), "abk:refund:stripe:pi:pi_1");
        assert_eq!(stripe_paid("pi_1"), "abk:paid:stripe:pi:pi_1");
        assert_eq!(stripe_dispute("dp_1"), "abk:dispute:stripe:dp:dp_1");
        assert_eq!(stripe_pending_disputes("pi_1"), "abk:dispute:stripe:pi:pi_1");
        assert_eq!(paypal_event("WH-1"), "abk:dedupe:paypal:event:WH-1");
        assert_eq!(paypal_capture("CAP1"), "abk:dedupe:paypal:capture:CAP1");
        assert_eq!(paypal_early_refund("CAP1"), "abk:refund:paypal:capture:CAP1");
        assert_eq!(webhook_attempts("paypal", "203.0.113.7"), "abk:rl:webhook:paypal:203.0.113.7");
        assert_eq!(admin_failures("203.0.113.7"), "abk:adminfail:203.0.113.7");
        assert_eq!(legacy_import("ab12"), "abk:dedupe:import:ab12");
        assert_eq!(stats_payments("2026-11-27"), "abk:stats:2026-11-27:payments");
        assert_eq!(idempotency("key_1", "ab12"), "abk:idem:key_1:ab12");
        assert_eq!(idempotency_of("req_1"), "abk:idem_of:req_1");
        // The call rollups, as lib_v2.lua's call_stats and rapid_v1.lua write them.
        assert_eq!(stats_calls("2026-11-27", &StatsScope::All), "abk:stats:2026-11-27");
        assert_eq!(stats_calls("2026-11-27", &StatsScope::Key("key_1".into())), "abk:stats:2026-11-27:key_1");
        assert_eq!(stats_calls("2026-11-27", &StatsScope::RapidUser("jane".into())), "abk:stats:2026-11-27:rapidapi:jane");
        assert_eq!(stats_calls("2026-11-27", &StatsScope::RapidPlan("BASIC".into())), "abk:stats:2026-11-27:rapidapi-plan:BASIC");
    }

    #[test]
    fn the_original_products_names_carry_the_plaintext_key() {
        assert_eq!(legacy_key("user:test-key-123:credits"), "test-key-123");
        assert_eq!(legacy_key("user:a:b:credits"), "a:b");
        assert_eq!(legacy_key("user::credits"), "");
        assert_eq!(legacy_key("abk:key:x"), "");
    }
}
