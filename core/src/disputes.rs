//! Stripe disputes against credited payments: the share of a payment's credits a dispute
//! freezes (integers, here; the `dispute_v1` script only applies it), and the order-independent
//! application of dispute steps.
//!
//! A dispute freezes `ceil(credited × disputed / paid)` of the credits its payment bought (the
//! whole purchase when the payment's amount is unknown, for payments credited before the amount
//! was kept). The freeze is a `dispute` ledger entry that takes them out of the spendable
//! balance (into debt if they were spent); a won dispute gives them back (`dispute_won`), a lost
//! one keeps them (`dispute_lost`). A dispute that arrives before its purchase is remembered and
//! applied when the purchase is credited ([`after_credit`]), whatever order the events come in.
//!
//! Leaves out: reading the event (`crate::stripe::interpret`), the HTTP answer (the worker).

use crate::error::ApiError;
use crate::scripts::Retention;
use crate::scripts::{ledger_fragment, CreditReply, DisputeReply};
use crate::store::{Credit, Dispute, DisputeStep, Store};
use serde_json::json;

/// The credits a dispute of `disputed_cents` freezes out of a payment that credited `credited_mc`
/// for `paid_cents`, rounded up (never less than the disputed share), at most all of them.
pub fn disputed_share(credited_mc: i64, disputed_cents: u64, paid_cents: Option<u64>) -> i64 {
    let credited = credited_mc.max(0);
    match paid_cents.filter(|p| *p > 0) {
        Some(paid) => {
            let part = u128::from(disputed_cents.min(paid));
            let share = (credited as u128 * part).div_ceil(u128::from(paid));
            i64::try_from(share).unwrap_or(credited).min(credited)
        }
        None => credited,
    }
}

/// The credits a payment marker (`<key id>|<credited mc>`) records.
pub fn credited_mc(marker: &str) -> Option<i64> {
    marker.split_once('|').and_then(|(_, mc)| mc.parse().ok())
}

/// One dispute event, as read from Stripe.
#[derive(Debug, Clone)]
pub struct DisputeEvent<'a> {
    pub event_id: &'a str,
    pub dispute_id: &'a str,
    pub payment_intent: &'a str,
    pub disputed_cents: u64,
    pub step: DisputeStep,
    pub now_ms: u64,
    pub retention: Retention,
}

/// Applies one dispute step. The payment is read first (its marker and amount), the share
/// computed, and the script applies it only if the payment is still as read; a purchase credited
/// in between makes it read again.
pub async fn apply<S: Store>(store: &S, ev: &DisputeEvent<'_>) -> Result<DisputeReply, ApiError> {
    let fragment = ledger_fragment(&[
        ("source", json!("stripe")),
        ("ref", json!(ev.event_id)),
        ("dispute", json!(ev.dispute_id)),
        ("payment_intent", json!(ev.payment_intent)),
        ("disputed_cents", json!(ev.disputed_cents)),
    ]);
    for _ in 0..3 {
        let (marker, paid) = store.stripe_payment(ev.payment_intent).await?;
        let marker = marker.unwrap_or_default();
        let amount_mc = credited_mc(&marker).map(|mc| disputed_share(mc, ev.disputed_cents, paid)).unwrap_or(0);
        let d = Dispute {
            dispute_id: ev.dispute_id.to_string(),
            payment_intent: ev.payment_intent.to_string(),
            expected_marker: marker,
            step: ev.step,
            amount_mc,
            disputed_cents: ev.disputed_cents,
            now_ms: ev.now_ms,
            fragment: fragment.clone(),
            retention: ev.retention,
        };
        match store.dispute(&d).await? {
            DisputeReply::Retry => continue,
            reply => return Ok(reply),
        }
    }
    Err(ApiError::unavailable("a disputed payment kept changing while the dispute was applied"))
}

/// After a payment is credited (or found credited already, as when Stripe retries the purchase
/// event): the disputes of it that came first, applied now. Returns each dispute and what it did.
pub async fn after_credit<S: Store>(store: &S, payment_intent: &str, event_id: &str, now_ms: u64, retention: Retention) -> Result<Vec<(String, DisputeReply)>, ApiError> {
    let mut done = Vec::new();
    for (dispute_id, record) in store.pending_disputes(payment_intent).await? {
        let mut parts = record.splitn(3, '|');
        let (Some("pending"), Some(step), Some(cents)) = (parts.next(), parts.next().and_then(DisputeStep::parse), parts.next().and_then(|c| c.parse().ok())) else {
            continue;
        };
        let ev = DisputeEvent { event_id, dispute_id: &dispute_id, payment_intent, disputed_cents: cents, step, now_ms, retention };
        let reply = apply(store, &ev).await?;
        done.push((dispute_id.clone(), reply));
    }
    Ok(done)
}

/// Credits a Stripe payment (a checkout's or an invoice's): its amount is kept first (for the
/// share of a later dispute), then the credit script runs, then the disputes that came before
/// it are applied, also when the credit is a duplicate (Stripe retrying a purchase event whose
/// first delivery was cut off after the credit).
pub async fn credit_payment<S: Store>(store: &S, c: &Credit, payment_intent: Option<&str>, paid_cents: u64, event_id: &str) -> Result<(CreditReply, Vec<(String, DisputeReply)>), ApiError> {
    if let Some(pi) = payment_intent {
        store.remember_stripe_paid(pi, paid_cents).await?;
    }
    let reply = store.credit(c).await?;
    let disputes = match (payment_intent, &reply) {
        (Some(pi), CreditReply::Credited { .. } | CreditReply::Duplicate { .. }) => after_credit(store, pi, event_id, c.now_ms, c.retention).await?,
        _ => Vec::new(),
    };
    Ok((reply, disputes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dispute_freezes_its_share_rounded_up_and_never_more_than_was_credited() {
        assert_eq!(disputed_share(2_000_000, 2000, Some(2000)), 2_000_000);
        assert_eq!(disputed_share(2_000_000, 500, Some(2000)), 500_000);
        // 1500 credits bought for $24.00 (tax included), $10.00 disputed: 625 credits.
        assert_eq!(disputed_share(1_500_000, 1000, Some(2400)), 625_000);
        assert_eq!(disputed_share(1_000, 1, Some(3)), 334, "rounded up");
        assert_eq!(disputed_share(2_000_000, 9999, Some(2000)), 2_000_000, "capped at the payment");
        assert_eq!(disputed_share(2_000_000, 100, None), 2_000_000, "an unknown amount: the whole purchase");
        assert_eq!(disputed_share(9_007_199_254_740_991, 1, Some(2)), 4_503_599_627_370_496, "2^53 - 1 credits, exactly");
    }

    #[test]
    fn markers_name_the_credits() {
        assert_eq!(credited_mc("key_0123456789abcdef|2000000"), Some(2_000_000));
        assert_eq!(credited_mc(""), None);
    }
}
