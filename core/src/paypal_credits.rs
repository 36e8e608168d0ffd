//! PayPal's money operations on the store: the credit of a capture and the clawback of a refund
//! or reversal, as the script arguments they are (what an event means is `crate::paypal`'s;
//! kept apart so that `paypal`, which configuration reads, needs no store).

use crate::scripts::Retention;
use crate::paypal::Refund;
use crate::redis_keys as rk;
use crate::scripts::ledger_fragment;
use crate::store::{Clawback, Credit, CreditTarget};
use serde_json::json;

/// The credit of a capture: its marker (`<key id>|<mc>`) is what a later refund of it finds, and
/// a refund that came first (kept under the early-refund key) is taken at once.
pub fn credit(event_id: &str, capture_id: &str, key_id: &str, amount_mc: i64, cents: u64, now_ms: u64, retention: Retention) -> Credit {
    let fragment = ledger_fragment(&[("source", json!("paypal")), ("ref", json!(event_id)), ("capture", json!(capture_id)), ("amount_cents", json!(cents))]);
    let payment = (!capture_id.is_empty()).then(|| (rk::paypal_capture(capture_id), rk::paypal_early_refund(capture_id)));
    Credit { target: CreditTarget::KeyId(key_id.to_string()), amount_mc, now_ms, kind: "topup", fragment, retention, payment, dedupe: vec![rk::paypal_event(event_id)] }
}

/// The clawback of a refund or reversal: the credits of everything refunded so far, once per
/// event (`paid_cents` 0 tells the script `refunded_cents` is that figure, already in credits).
pub fn clawback(r: &Refund, now_ms: u64, retention: Retention) -> Clawback {
    let fragment = ledger_fragment(&[
        ("source", json!("paypal")),
        ("ref", json!(r.event_id)),
        ("capture", json!(r.capture_id)),
        ("refund", json!(r.refund_id)),
        ("refunded_cents", json!(r.refunded_cents)),
        ("reversal", json!(r.reversal)),
    ]);
    Clawback {
        payment_marker: rk::paypal_capture(&r.capture_id),
        early_refund_key: rk::paypal_early_refund(&r.capture_id),
        refunded_cents: u64::try_from(r.target_mc).unwrap_or(0),
        paid_cents: 0,
        now_ms,
        fragment,
        event_marker: rk::paypal_event(&r.event_id),
        retention,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_capture_is_the_payment_its_refunds_find_and_a_refund_is_in_credits() {
        let r = Retention { ledger_keep: 10, stats_ttl_secs: 60 };
        let c = credit("WH-1", "CAP1", "key_0123456789abcdef", 2_000_000, 2000, 1, r);
        assert_eq!(c.payment, Some((rk::paypal_capture("CAP1"), rk::paypal_early_refund("CAP1"))));
        assert_eq!(c.dedupe, vec![rk::paypal_event("WH-1")]);
        let refund = Refund { event_id: "WH-2".into(), capture_id: "CAP1".into(), refund_id: "R1".into(), refunded_cents: 500, target_mc: 500_000, reversal: false };
        let b = clawback(&refund, 1, r);
        assert_eq!((b.payment_marker, b.refunded_cents, b.paid_cents), (rk::paypal_capture("CAP1"), 500_000, 0));
    }
}
