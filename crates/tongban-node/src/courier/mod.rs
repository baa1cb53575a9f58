//! The courier: drains the durable outbox to partner nodes.
//!
//! Entries go per destination in batches, each over a stream of its own
//! (the receiver makes a batch durable with one flush), up to `streams`
//! batches per partner in flight; a case never has entries in two batches
//! at once, so its handoffs arrive in order. The connection to a partner
//! accepts only the destination county's node identity, checked in the TLS
//! handshake before anything is sent ([`Link`]). Every attempt is bounded:
//! one deadline to connect and start the stream, then a budget for the
//! answer that grows with the bytes sent. Receipts are checked (signature,
//! signer is the destination's node, every field and digest as sent) and
//! stored with the cases' new states in one commit, which also removes each
//! outbox entry if it is unchanged. A refusal is final: the entry is parked
//! and the case notes why; so is a handoff whose stored material cannot be
//! sent, while the rest of its batch goes on. A failed round of batches
//! backs off exponentially with jitter per destination ([`Retry`]); since
//! the outbox is on disk, a restart resumes where the last run stopped.
//!
//! Not here: what the partner checks (`service::federation`), how materials
//! are stored (the ledger crate), TLS itself (`tongban_pki::tls`).

mod link;
mod record;
mod retry;
mod stream;

use link::{Link, error_chain};
use retry::{Partner, sleep_until_some};
use stream::{Checked, handoff, produce};

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tongban_ledger::OutboxEntry;
use tongban_pki::{Identity, Principal};
use tongban_proto::federation::v1::{HandoffFrame, handoff_frame::Frame};

use crate::NodeError;
use crate::config::Delivery;
use crate::ctx::Ctx;

/// An outbox entry on its way: its number, the entry, its stored bytes.
type Pending = (u64, OutboxEntry, Arc<[u8]>);

/// A batch in flight, shared (not copied) by the task producing its
/// frames, the receipt checks and the commit that records them.
type Shared = Arc<[Pending]>;

pub(crate) struct Courier {
    ctx: Arc<Ctx>,
    links: Mutex<HashMap<String, Arc<Link>>>,
}

impl Courier {
    pub(crate) fn new(ctx: Arc<Ctx>) -> Self {
        Self {
            ctx,
            links: Mutex::new(HashMap::new()),
        }
    }

    /// Runs until `stop` turns true, then lets the batches in flight finish.
    ///
    /// Each partner has up to `streams` batches in flight, and a new batch
    /// starts as soon as one ends, so sending, the partner's checks and
    /// flush, and recording receipts overlap instead of running in rounds;
    /// a slow partner holds up only its own batches. A case never has
    /// entries in two batches at once, so its handoffs arrive in order. An
    /// unreachable partner waits out its backoff without holding up others.
    pub(crate) async fn run(self, mut stop: watch::Receiver<bool>) {
        let this = Arc::new(self);
        let ctx = this.ctx.clone();
        let d = ctx.delivery;
        let mut partners: BTreeMap<String, Partner> = ctx
            .directory
            .partners(&ctx.county)
            .into_iter()
            .map(|dest| (dest.to_string(), Partner::default()))
            .collect();
        // Partners that may have work: those with entries at start-up, then
        // those a commit names ([`crate::ctx::Wake`]) and those with a batch
        // that just ended. A partner leaves the set when its outbox has
        // nothing to send and nothing of it is in flight; it is taken out of
        // the wake-up set before its outbox is read, so an entry committed
        // meanwhile names it again.
        let mut active: BTreeSet<String> = match ctx.store.outbox_destinations() {
            Ok(dests) => dests.into_iter().collect(),
            Err(e) => {
                tracing::error!(error = %e, "cannot read the outbox; every partner is tried");
                partners.keys().cloned().collect()
            }
        };
        let mut tasks = tokio::task::JoinSet::new();
        let mut stopping = false;
        loop {
            stopping = stopping || *stop.borrow();
            let now = Instant::now();
            let mut next_wake: Option<Instant> = None;
            active.extend(ctx.wake.take());
            if !stopping {
                let mut idle = Vec::new();
                for dest in &active {
                    let Some(partner) = partners.get_mut(dest) else {
                        tracing::error!(partner = %dest, "outbox entries for a county that is not a partner");
                        idle.push(dest.clone());
                        continue;
                    };
                    if let Some(at) = partner.retry.waiting(now) {
                        next_wake = Some(next_wake.map_or(at, |w| w.min(at)));
                        continue;
                    }
                    while partner.streams < d.streams {
                        let batch = match this.next_batch(dest, partner) {
                            Ok(batch) if !batch.is_empty() => batch,
                            Ok(_) => {
                                if partner.streams == 0 {
                                    idle.push(dest.clone());
                                }
                                break;
                            }
                            Err(e) => {
                                tracing::error!(partner = %dest, error = %e, "cannot read the outbox");
                                break;
                            }
                        };
                        partner.take(&batch);
                        let batch: Shared = batch.into();
                        let courier = this.clone();
                        let (dest, round) = (dest.clone(), partner.retry.round);
                        tasks.spawn(async move {
                            let result = courier.deliver(&dest, &batch).await;
                            (dest, round, batch, result)
                        });
                    }
                }
                for dest in idle {
                    active.remove(&dest);
                }
            }
            if tasks.is_empty() {
                if stopping {
                    return;
                }
                let sleep = next_wake.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
                tokio::select! {
                    changed = stop.changed() => stopping = stopping || changed.is_err(),
                    () = ctx.wake.notified() => {}
                    () = tokio::time::sleep_until(sleep) => {}
                }
                continue;
            }
            let joined = tokio::select! {
                joined = tasks.join_next() => joined,
                changed = stop.changed(), if !stopping => {
                    // A dropped sender means no one can stop us any more: stop now.
                    stopping = changed.is_err();
                    continue;
                }
                () = ctx.wake.notified(), if !stopping => continue,
                () = sleep_until_some(next_wake), if !stopping => continue,
            };
            let Some(Ok((dest, round, batch, result))) = joined else {
                continue;
            };
            let Some(partner) = partners.get_mut(&dest) else {
                continue;
            };
            partner.give_back(&batch);
            // Whatever happened, look at this partner's outbox again.
            active.insert(dest.clone());
            let err = match result {
                Ok(()) => {
                    if partner.retry.succeeded() {
                        tracing::info!(partner = %dest, "partner reachable again, handoffs delivered");
                    }
                    continue;
                }
                Err(Failure::Local { index, reason }) => {
                    // Nothing the partner did: park that handoff; the rest
                    // of the batch is picked up again at once.
                    let one = std::slice::from_ref(&batch[index]);
                    tracing::error!(partner = %dest, handoff = %one[0].1.handoff_id, %reason, "handoff parked");
                    this.park(&dest, one, &reason).await;
                    continue;
                }
                Err(Failure::Partner(err)) => err,
            };
            ctx.metrics.attempt_failed(&dest, &err);
            let now = Instant::now();
            match partner.retry.failed(round, now, &d) {
                Some((attempt, _)) if d.max_attempts > 0 && attempt >= d.max_attempts => {
                    let reason = format!("gave up after {attempt} attempts: {err}");
                    tracing::error!(partner = %dest, %reason, pending = batch.len(), "handoffs parked");
                    this.park(&dest, &batch, &reason).await;
                    partner.retry.succeeded();
                    partner.gave_up = Some((round, reason));
                }
                Some((attempt, delay)) => {
                    tracing::warn!(partner = %dest, error = %err, attempt, next_try_in = ?delay, "handoff attempt failed");
                    let note = format!(
                        "not yet delivered to {dest}: {err}; next try in {}",
                        humanize(delay)
                    );
                    this.note(&batch, &note).await;
                }
                // Another stream of a round already counted: same attempt,
                // same wait (and no second WARN for it).
                None => match &partner.gave_up {
                    Some((parked, reason)) if *parked == round => {
                        this.park(&dest, &batch, &reason.clone()).await;
                    }
                    _ => {
                        let wait = partner
                            .retry
                            .waiting(now)
                            .map_or(Duration::ZERO, |at| at - now);
                        tracing::debug!(partner = %dest, error = %err, "another stream of a failed round failed");
                        let note = format!(
                            "not yet delivered to {dest}: {err}; next try in {}",
                            humanize(wait)
                        );
                        this.note(&batch, &note).await;
                    }
                },
            }
        }
    }

    /// The next batch for `dest`: the oldest due entries that are not in
    /// flight, leaving out cases that have an entry in flight (their later
    /// entries wait behind it).
    fn next_batch(&self, dest: &str, partner: &Partner) -> Result<Vec<Pending>, NodeError> {
        let entries = self
            .ctx
            .store
            .outbox_for(dest, self.ctx.delivery.batch_size, |key| {
                partner.keys.contains(&key)
            })?;
        Ok(entries
            .into_iter()
            .filter(|(_, e, _)| !partner.cases.contains_key(&e.application_id))
            .collect())
    }

    /// The link to `dest`, made on first use: its connector accepts only
    /// the destination county's node identity.
    fn link(&self, dest: &str) -> Result<Arc<Link>, NodeError> {
        let mut links = self.links.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(link) = links.get(dest) {
            return Ok(link.clone());
        }
        let code: tongban_core::CountyCode = dest
            .parse()
            .map_err(|e| NodeError::Invalid(format!("destination {dest}: {e}")))?;
        let county = self.ctx.directory.county(&code).ok_or_else(|| {
            NodeError::NotPermitted(format!("{dest} is not in the federation directory"))
        })?;
        let expected = Identity {
            trust_domain: self.ctx.directory.trust_domain.clone(),
            principal: Principal::Node { county: code },
        };
        let link = Arc::new(Link::new(
            &county.endpoint,
            &self.ctx.tls,
            expected,
            self.ctx.delivery.attempt_timeout,
        )?);
        links.insert(dest.to_owned(), link.clone());
        Ok(link)
    }

    /// Sends one batch and records its outcome.
    async fn deliver(&self, dest: &str, batch: &Shared) -> Result<(), Failure> {
        let link = self.link(dest)?;
        let result = self.deliver_on(&link, dest, batch).await;
        if let Err(Failure::Partner(_)) = result {
            link.reset().await;
        }
        result
    }

    async fn deliver_on(&self, link: &Link, dest: &str, batch: &Shared) -> Result<(), Failure> {
        // One deadline for connecting (TCP, TLS with the identity check,
        // HTTP/2) and the stream's first frame; the answer is due within a
        // budget that grows with the bytes sent.
        let d = self.ctx.delivery;
        let started = Instant::now();
        let start_by = started + d.attempt_timeout;
        let bytes: u64 = batch
            .iter()
            .map(|(_, e, _)| {
                e.envelope.len() as u64 + e.materials.iter().map(|m| m.size).sum::<u64>()
            })
            .sum();
        let budget = stream_budget(&d, bytes);
        let channel = tokio::time::timeout_at(start_by, link.channel())
            .await
            .map_err(|_| {
                NodeError::Unavailable(format!(
                    "no connection (TCP, TLS, HTTP/2) within {:?}",
                    d.attempt_timeout
                ))
            })??;
        let (tx, rx) = mpsc::channel::<HandoffFrame>(16);
        // A handoff this node cannot send: (its index in the batch, why).
        let (fail_tx, mut fail_rx) = mpsc::channel::<(usize, String)>(2);
        let (first_tx, mut first_rx) = oneshot::channel::<()>();
        let (done_tx, done_rx) = oneshot::channel::<()>();
        let frames = Checked::new(
            ReceiverStream::new(rx),
            batch.len(),
            first_tx,
            done_rx,
            fail_tx.clone(),
        );
        let (store, items) = (self.ctx.store.clone(), batch.clone());
        // Every stream starts with this node's latest signed checkpoint:
        // the partner keeps it as evidence of our history. It was signed
        // after an earlier batch (below), not now: no signature in the
        // handoff's latency.
        let checkpoint = self.ctx.stream_checkpoint()?;
        tokio::spawn(async move {
            if tx
                .send(HandoffFrame {
                    frame: Some(Frame::Checkpoint(checkpoint)),
                })
                .await
                .is_err()
            {
                return;
            }
            // One handoff at a time, so that a material that cannot be
            // read is known by the handoff it belongs to.
            for (index, (_, entry, _)) in items.iter().enumerate() {
                if let Err(e) = produce(&store, &entry.envelope, &entry.materials, &tx).await {
                    let _ = fail_tx.send((index, e)).await;
                    return;
                }
            }
            // Only now may the stream end cleanly (see `Checked`).
            let _ = done_tx.send(());
        });
        let call = handoff(channel, frames);
        tokio::pin!(call);
        let (mut started_stream, mut watching) = (false, true);
        // A handoff this node cannot send, once known: the stream is being
        // aborted, and its end awaited so that the abort reaches the partner.
        let mut local: Option<(usize, String)> = None;
        let reply = loop {
            let deadline = if started_stream {
                started + budget
            } else {
                start_by
            };
            tokio::select! {
                reply = &mut call => break reply,
                first = &mut first_rx, if !started_stream => {
                    // A dropped sender means the call is over: its outcome follows.
                    started_stream = true;
                    let _ = first;
                }
                failed = fail_rx.recv(), if watching => match failed {
                    Some(failure) => {
                        local.get_or_insert(failure);
                    }
                    None => watching = false,
                },
                () = tokio::time::sleep_until(deadline) => {
                    if local.is_some() {
                        // The abort did not get through in time either.
                        break Err(tonic::Status::deadline_exceeded("aborting the stream"));
                    }
                    // Dropping the call cancels the stream; the partner may
                    // keep the whole envelopes it had (at least once: a
                    // retry gets their receipts replayed).
                    return Err(Failure::Partner(NodeError::Unavailable(if started_stream {
                        format!("no answer within {budget:?} for {bytes} bytes")
                    } else {
                        format!("the stream did not start within {:?}", d.attempt_timeout)
                    })));
                }
            }
        };
        if let Some((index, reason)) = local {
            let reason = self.unsendable(&batch[index].1, reason);
            return Err(Failure::Local { index, reason });
        }
        let reply = reply
            .map_err(|s| NodeError::Unavailable(status_text(&s)))?
            .into_inner();
        if reply.results.len() != batch.len() {
            return Err(Failure::Partner(NodeError::Unavailable(format!(
                "{dest} answered {} results for {} envelopes",
                reply.results.len(),
                batch.len()
            ))));
        }
        self.ctx.metrics.sent(dest, batch.len());
        self.record(dest, batch, reply.results).await?;
        // The receipts are recorded (the head moved and is durable): the
        // checkpoint the next stream carries is signed now, after this
        // batch's handoffs are done, instead of at the start of that stream.
        if let Err(e) = self.ctx.checkpoint(false) {
            tracing::error!(error = %e, "cannot sign a checkpoint for the next stream");
        }
        Ok(())
    }

    /// Why a handoff cannot be sent, naming the material: `reason` is what
    /// the sending found; a look at each of its materials finds which one.
    fn unsendable(&self, entry: &OutboxEntry, reason: String) -> String {
        let store = &self.ctx.store;
        if reason.starts_with("material ") {
            return reason; // found by the check of what was sent
        }
        let culprit = entry.materials.iter().find(|m| {
            if reason.contains(&m.sha256) {
                return true;
            }
            // Opening checks a logged material's digest and a file's size.
            store.open_material(m).is_err()
        });
        match culprit {
            // The kind, not the file name: a name may carry personal data.
            Some(m) => format!("cannot send material {}: {reason}", m.kind),
            None => format!("cannot send its materials: {reason}"),
        }
    }
}

/// Why a batch was not delivered.
#[derive(Debug)]
enum Failure {
    /// The partner, or the way to it: the batch is retried after a wait.
    Partner(NodeError),
    /// This node cannot send one handoff of the batch (a stored material
    /// that is damaged, gone, or no longer matches its digest): that one is
    /// parked, the rest of the batch goes again at once.
    Local {
        /// Its index in the batch.
        index: usize,
        /// Why, naming the material.
        reason: String,
    },
}

impl From<NodeError> for Failure {
    fn from(e: NodeError) -> Self {
        Self::Partner(e)
    }
}

/// A call's failure: code, message and the transport's causes.
fn status_text(status: &tonic::Status) -> String {
    use std::error::Error;
    match status.source() {
        Some(source) => format!(
            "{:?}: {}: {}",
            status.code(),
            status.message(),
            error_chain(source)
        ),
        None => format!("{:?}: {}", status.code(), status.message()),
    }
}

/// How long a stream of `bytes` may take from the start of its attempt
/// to the partner's answer: the attempt timeout (which also covers the
/// partner's checks and flush) plus the bytes at the slowest rate allowed.
fn stream_budget(d: &Delivery, bytes: u64) -> Duration {
    d.attempt_timeout + Duration::from_secs_f64(bytes as f64 / d.min_rate_bytes_per_s.max(1) as f64)
}

/// A delay for people: `750ms`, `2.5s`, `60s`.
fn humanize(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

/// The host of an `https://host:port` endpoint (for TLS name checks).
pub(crate) fn host_of(endpoint: &str) -> String {
    let rest = endpoint.split_once("://").map_or(endpoint, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or(rest);
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split(']').next().unwrap_or(v6).to_owned();
    }
    authority
        .rsplit_once(':')
        .map_or(authority, |(h, _)| h)
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::retry::{Retry, backoff};
    use super::stream::HANDOFF_PATH;
    use super::*;
    use tongban_proto::federation::v1::federation_server;

    #[test]
    fn backoff_doubles_up_to_the_cap_with_bounded_jitter() {
        let (i, m) = (Duration::from_millis(100), Duration::from_secs(2));
        for (failures, base) in [
            (1, 100),
            (2, 200),
            (3, 400),
            (5, 1600),
            (6, 2000),
            (40, 2000),
        ] {
            let d = backoff(i, m, failures);
            let base = Duration::from_millis(base);
            assert!(d >= base && d <= base.mul_f64(1.25), "{failures}: {d:?}");
        }
    }

    #[test]
    fn streams_failing_together_count_as_one_failure() {
        let d = Delivery::default();
        let now = Instant::now();
        let mut retry = Retry::default();
        let round = retry.round;
        let counted: Vec<_> = (0..4).map(|_| retry.failed(round, now, &d)).collect();
        assert!(matches!(counted[0], Some((1, _))), "{counted:?}");
        assert!(counted[1..].iter().all(Option::is_none), "{counted:?}");
        let wait = retry.waiting(now).expect("backing off") - now;
        assert!(wait >= d.initial_backoff && wait <= d.initial_backoff.mul_f64(1.25));
        // The next round's failure is the second; a success resets.
        let (failures, _) = retry.failed(retry.round, now, &d).expect("a new round");
        assert_eq!(failures, 2);
        assert!(retry.succeeded());
        assert_eq!(retry.failures, 0);
        assert!(retry.waiting(now).is_none());
        assert!(!retry.succeeded());
    }

    /// Shipped defaults: cases queued when a partner goes down for 10 s,
    /// tried with four streams a round, get their first receipt within
    /// 10 s of the partner being back (whatever the jitter).
    #[test]
    fn a_ten_second_outage_costs_at_most_ten_seconds_after_it() {
        let d = Delivery::default();
        let outage = Duration::from_secs(10);
        let mut worst = Duration::ZERO;
        for _ in 0..1000 {
            let start = Instant::now();
            let back = start + outage;
            let mut retry = Retry::default();
            let mut now = start;
            while now < back {
                let round = retry.round;
                for _ in 0..d.streams {
                    retry.failed(round, now, &d);
                }
                now = retry.waiting(now).expect("backing off");
            }
            assert!(retry.succeeded());
            worst = worst.max(now - back);
        }
        assert!(
            worst <= outage,
            "first receipt {worst:?} after the partner was back"
        );
    }

    #[test]
    fn a_stream_gets_the_attempt_timeout_plus_its_bytes_at_the_minimum_rate() {
        let d = Delivery {
            attempt_timeout: Duration::from_secs(10),
            min_rate_bytes_per_s: 64 * 1024,
            ..Delivery::default()
        };
        assert_eq!(stream_budget(&d, 0), Duration::from_secs(10));
        assert_eq!(stream_budget(&d, 64 * 1024 * 30), Duration::from_secs(40));
    }

    #[test]
    fn the_handoff_path_is_the_services() {
        assert_eq!(
            HANDOFF_PATH,
            format!("/{}/Handoff", federation_server::SERVICE_NAME)
        );
    }

    #[test]
    fn host_of_endpoints() {
        assert_eq!(host_of("https://127.0.0.1:7001"), "127.0.0.1");
        assert_eq!(
            host_of("https://node.hantai.gov.cn:443/x"),
            "node.hantai.gov.cn"
        );
        assert_eq!(host_of("https://[::1]:7001"), "::1");
        assert_eq!(host_of("https://localhost"), "localhost");
    }
}
