//! When the meter reads its copy of a piped stream (issue 22). The client's bytes go through the
//! runtime's own pipe; the meter only needs them all, in as few reads as it can (each read costs
//! the worker a promise and a wake-up). The tee keeps for the meter what the client's side pulls,
//! so a pause lets the next read take all that gathered meanwhile.
//!
//! A pause only helps while the client pulls: one that gathers little at once points at a client
//! that reads nothing (only the meter's own reads pull from the provider then), and pausing
//! would only slow the metering down. From then on the meter reads without pausing, until a read
//! waits for the provider (a paced provider: pausing helps again) or a pause gathers plenty.

/// How long the meter waits before reading again, after a read that emptied what was gathered.
pub const PAUSE_MS: u64 = 100;
/// A read that took this long waited for the provider (bytes at hand come well under it).
pub const WAITED_MS: u64 = 10;

#[derive(Debug, Default)]
pub struct ReadPacing {
    paused: bool,
    client_idle: bool,
}

impl ReadPacing {
    /// After a read of `n` bytes into a `capacity`-byte buffer that took `took_ms`: whether to
    /// pause `PAUSE_MS` before the next read.
    pub fn pause_after(&mut self, n: usize, capacity: usize, took_ms: u64) -> bool {
        if took_ms >= WAITED_MS {
            self.client_idle = false;
        } else if self.paused {
            // What a pause gathered at once: plenty means the client pulls; little, that it does not.
            self.client_idle = n <= capacity / 2;
        }
        self.paused = n < capacity && !self.client_idle;
        self.paused
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAP: usize = 32 * 1024;

    #[test]
    fn a_fast_provider_to_a_reading_client_is_read_in_full_buffers_with_pauses_between() {
        let mut p = ReadPacing::default();
        assert!(p.pause_after(900, CAP, 0), "the first short read: let more gather");
        assert!(!p.pause_after(CAP, CAP, 0), "a full buffer: more is there, read on");
        assert!(!p.pause_after(CAP, CAP, 0));
        assert!(p.pause_after(5_000, CAP, 0), "emptied: pause again");
        assert!(!p.pause_after(CAP, CAP, 0), "the pause gathered plenty");
    }

    #[test]
    fn a_paced_provider_is_read_about_once_per_pause() {
        let mut p = ReadPacing::default();
        assert!(p.pause_after(300, CAP, 40), "waited for the provider: pause");
        // After the pause, the few events it gathered, at once: little, so no pause...
        assert!(!p.pause_after(1_200, CAP, 0));
        // ...and the next read waits for the provider: pausing helps again.
        assert!(p.pause_after(300, CAP, 25));
        assert!(!p.pause_after(1_500, CAP, 0));
        assert!(p.pause_after(250, CAP, 30));
    }

    #[test]
    fn a_client_that_reads_nothing_does_not_slow_the_metering() {
        let mut p = ReadPacing::default();
        assert!(p.pause_after(16_384, CAP, 0));
        // The pause gathered one piece (only the meter's reads pull now): no more pauses.
        assert!(!p.pause_after(16_384, CAP, 0));
        for _ in 0..1_000 {
            assert!(!p.pause_after(16_384, CAP, 0));
            assert!(!p.pause_after(267, CAP, 0));
        }
        // The provider itself slows down: a read that waits brings the pauses back.
        assert!(p.pause_after(267, CAP, 50));
    }
}
