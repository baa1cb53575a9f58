//! When a partner may be tried again, and what the courier knows of it
//! between batches.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use tokio::time::Instant;

use super::Pending;
use crate::config::Delivery;

/// The retry delay after `failures` consecutive failures: doubling from the
/// initial backoff up to the maximum, with up to 25% random jitter so that
/// many nodes do not retry a recovered partner in lockstep.
pub(crate) fn backoff(initial: Duration, max: Duration, failures: u32) -> Duration {
    let exp = initial.saturating_mul(1u32 << failures.saturating_sub(1).min(20));
    let base = exp.min(max);
    let jitter = base.mul_f64(fastrand::f64() * 0.25);
    base + jitter
}

/// When a partner may be tried again. Batches started between two
/// failures form a round; batches of one round that fail (together, as
/// when the partner goes down under four streams) count as one failure,
/// so a short outage costs one short wait, not one per stream. A success
/// resets it, and the next round opens every stream at once.
#[derive(Debug, Default)]
pub(super) struct Retry {
    /// Consecutive failed rounds.
    pub(super) failures: u32,
    /// The current round; each batch remembers the round it started in.
    pub(super) round: u64,
    /// No new batch before this.
    at: Option<Instant>,
}

impl Retry {
    /// When the partner is backing off at `now`, the end of the wait.
    pub(super) fn waiting(&self, now: Instant) -> Option<Instant> {
        self.at.filter(|at| *at > now)
    }

    /// A batch of `round` failed at `now`. The first failure of the current
    /// round counts: it returns the consecutive failures and the wait
    /// before the next round. Later failures of that round return `None`.
    pub(super) fn failed(
        &mut self,
        round: u64,
        now: Instant,
        d: &Delivery,
    ) -> Option<(u32, Duration)> {
        if round != self.round {
            return None;
        }
        self.failures += 1;
        self.round += 1;
        let delay = backoff(d.initial_backoff, d.max_backoff, self.failures);
        self.at = Some(now + delay);
        Some((self.failures, delay))
    }

    /// A batch was delivered: the partner answers. Returns whether it had
    /// been failing.
    pub(super) fn succeeded(&mut self) -> bool {
        let was_failing = self.failures > 0;
        self.failures = 0;
        self.at = None;
        was_failing
    }
}

/// What the courier knows of one partner between batches.
#[derive(Default)]
pub(super) struct Partner {
    /// Batches in flight.
    pub(super) streams: usize,
    /// Outbox keys in flight.
    pub(super) keys: HashSet<u64>,
    /// Cases with an entry in flight, each with how many.
    pub(super) cases: HashMap<String, usize>,
    /// Failures and the wait before the next round.
    pub(super) retry: Retry,
    /// The round whose batches are parked after `max_attempts`, and why.
    pub(super) gave_up: Option<(u64, String)>,
}

impl Partner {
    pub(super) fn take(&mut self, batch: &[Pending]) {
        self.streams += 1;
        for (key, entry, _) in batch {
            self.keys.insert(*key);
            *self.cases.entry(entry.application_id.clone()).or_default() += 1;
        }
    }

    pub(super) fn give_back(&mut self, batch: &[Pending]) {
        self.streams -= 1;
        for (key, entry, _) in batch {
            self.keys.remove(key);
            if let Some(n) = self.cases.get_mut(&entry.application_id) {
                *n -= 1;
                if *n == 0 {
                    self.cases.remove(&entry.application_id);
                }
            }
        }
    }
}

pub(super) async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
