//! The gate of scripts with `"gate": true`: their responses wait (before the head) until the test
//! opens it with `POST /__control/release`, so a test can keep calls in flight for exactly as long
//! as it needs (e.g. until every other concurrent call has been answered) instead of a fixed delay.
//! `GET /__control/held` says how many are waiting. A reset opens it too; nothing waits longer
//! than [`MAX_WAIT`] (then it answers anyway).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long a gated response waits at most without a release.
pub const MAX_WAIT: Duration = Duration::from_secs(60);

static OPENINGS: AtomicU64 = AtomicU64::new(0);
static HELD: AtomicU64 = AtomicU64::new(0);

/// Responses waiting at the gate now.
pub fn held() -> u64 {
    HELD.load(Ordering::SeqCst)
}

/// Lets every response waiting now through; returns how many there were.
pub fn release() -> u64 {
    let n = held();
    OPENINGS.fetch_add(1, Ordering::SeqCst);
    n
}

/// Waits for the next release (polled: a handful of waiters, a few ms apart).
pub async fn wait() {
    let opened = OPENINGS.load(Ordering::SeqCst);
    HELD.fetch_add(1, Ordering::SeqCst);
    let start = Instant::now();
    while OPENINGS.load(Ordering::SeqCst) == opened && start.elapsed() < MAX_WAIT {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    HELD.fetch_sub(1, Ordering::SeqCst);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waits_until_released() {
        let waiter = tokio::spawn(wait());
        for _ in 0..200 {
            if held() > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(held(), 1);
        assert!(!waiter.is_finished());
        assert_eq!(release(), 1);
        tokio::time::timeout(Duration::from_secs(5), waiter).await.unwrap().unwrap();
        assert_eq!(held(), 0);
    }
}
