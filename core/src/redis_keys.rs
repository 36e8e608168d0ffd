//! Every Redis key the product uses, named in one place. The Lua scripts build the same names
//! (a test below checks that every `'abk:…'` literal in `lua/` is one of these prefixes).
//!
//! | key | type | what |
//! |---|---|---|
//! | `abk:keyhash:<sha256>` | string | key id of an API key (keys are stored hashed); `retired:<id>` once rotated away |
//! | `abk:key:<id>` | hash | name, plan, status, `balance` (spendable mc; negative = debt), `held` (mc in open calls), created/last used/rotated/revoked ms, `charged_total`, `ledger_carried` |
//! | `abk:ledger:<id>` | list | ledger entries (JSON), newest first, the newest `LEDGER_KEEP` |
//! | `abk:rl:<id>:<class>` | zset | sliding window of a key's calls in a route class |
//! | `abk:rl:ip:<ip>` | zset | sliding window of unknown-key calls from an address |
//! | `abk:hold:<request id>` | string | an open call: `<key id>|<hold mc>|<ledger fields>` |
//! | `abk:open_holds` | zset | open calls by admission time (the sweeper's work list) |
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
//! | `abk:stats:<day>` | hash | the day's calls by `<provider>/<model>:<metric>` (calls, units, cost_micro, charged_mc, corrected_mc), `STATS_KEEP_DAYS` |
//! | `abk:stats:<day>:<key id>` | hash | the same for one key |
//! | `abk:stats:<day>:payments` | hash | the day's `topup`, `grant`, `adjustment`, `refund` counts and mc |

pub const PREFIX: &str = "abk:";
pub const OPEN_HOLDS: &str = "abk:open_holds";
pub const UNMATCHED_PAYMENTS: &str = "abk:unmatched_payments";
pub const PAYPAL_TOKEN: &str = "abk:paypal:token";

pub fn key_record(key_id: &str) -> String {
    format!("abk:key:{key_id}")
}
pub fn ledger(key_id: &str) -> String {
    format!("abk:ledger:{key_id}")
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
/// A key of the original product (`user:<key>:credits`) already imported.
pub fn legacy_import(key_hash: &str) -> String {
    format!("abk:dedupe:import:{key_hash}")
}
/// Keys of the original product: `user:<plaintext key>:credits` (credits, a number).
pub const LEGACY_PATTERN: &str = "user:*:credits";
/// A day's call rollup: all keys (`None`) or one key.
pub fn stats_calls(day: &str, key_id: Option<&str>) -> String {
    match key_id {
        Some(id) => format!("abk:stats:{day}:{id}"),
        None => format!("abk:stats:{day}"),
    }
}
pub fn stats_payments(day: &str) -> String {
    format!("abk:stats:{day}:payments")
}

/// The prefixes of every key family above (what the scripts may build).
pub const FAMILIES: &[&str] = &[
    "abk:keyhash:",
    "abk:key:",
    "abk:ledger:",
    "abk:rl:",
    "abk:rl:ip:",
    "abk:hold:",
    "abk:open_holds",
    "abk:swept:",
    "abk:dedupe:",
    "abk:refund:",
    "abk:paid:",
    "abk:dispute:",
    "abk:unmatched_payments",
    "abk:paypal:token",
    "abk:adminfail:",
    "abk:stats:",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_the_scripts_build_is_named_here() {
        for script in crate::scripts::ALL {
            let mut rest = script.source;
            while let Some(i) = rest.find("'abk:") {
                let lit = &rest[i + 1..];
                let end = lit.find('\'').unwrap_or(lit.len());
                let name = &lit[..end];
                assert!(FAMILIES.iter().any(|f| name.starts_with(f) || f.starts_with(name)), "{}: `{name}` is not in redis_keys", script.name);
                rest = &lit[end..];
            }
        }
    }

    #[test]
    fn rust_built_names_are_in_their_families() {
        for k in [key_record("key_1"), ledger("key_1"), stripe_event("e"), stripe_payment("pi"), stripe_early_refund("pi"), paypal_capture("c"), paypal_early_refund("c"), stripe_paid("pi"), stripe_dispute("dp"), stripe_pending_disputes("pi"), webhook_attempts("paypal", "1.2.3.4"), admin_failures("1.2.3.4"), stats_calls("2026-11-27", Some("key_1")), stats_payments("2026-11-27")] {
            assert!(FAMILIES.iter().any(|f| k.starts_with(f)), "{k}");
        }
    }
}
