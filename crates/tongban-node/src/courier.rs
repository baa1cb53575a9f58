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

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use prost::Message;
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tongban_core::CaseState;
use tongban_ledger::records::unhex;
use tongban_ledger::{Batch, CaseRecord, EntryBody, MaterialRef, NewEntry, OutboxEntry, Payload};
use tongban_pki::tls::TlsMaterial;
use tongban_pki::{Identity, Principal};
use tongban_proto::common::v1::{MaterialChunk, Receipt, SignedReceipt};
use tongban_proto::federation::v1::federation_server;
use tongban_proto::federation::v1::{
    HandoffFrame, HandoffReply, HandoffResult, handoff_frame::Frame, handoff_result::Outcome,
};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::Uri;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::codegen::{Context, Pin, Poll};
use tonic::transport::{Channel, Endpoint};

use crate::NodeError;
use crate::change::{self, Change};
use crate::config::Delivery;
use crate::ctx::Ctx;
use crate::dial::Dial;
use crate::protocol::CHUNK_SIZE;
use crate::receipt;

type Pending = (u64, OutboxEntry, Vec<u8>);

pub(crate) struct Courier {
    ctx: Arc<Ctx>,
    links: Mutex<HashMap<String, Arc<Link>>>,
}

/// The connection to one partner: dialled by this node (TCP, then TLS that
/// accepts only the partner's node identity), kept while it works and
/// dropped after a failure so that the next attempt dials afresh.
struct Link {
    endpoint: Endpoint,
    dial: Dial,
    channel: tokio::sync::Mutex<Option<Channel>>,
}

impl Link {
    fn new(
        url: &str,
        tls: &TlsMaterial,
        expected: Identity,
        attempt_timeout: Duration,
    ) -> Result<Self, NodeError> {
        // Pings every half attempt timeout, answered within the other half,
        // while a stream is open: a connection that goes dark fails its
        // streams within the attempt timeout, well inside their budgets.
        // (No pings on idle connections: servers may refuse them as abuse.)
        let keepalive = attempt_timeout / 2;
        let bad = |e: &dyn std::fmt::Display| NodeError::Invalid(format!("endpoint {url}: {e}"));
        let uri: Uri = url.parse().map_err(|e| bad(&e))?;
        let authority = uri.authority().ok_or_else(|| bad(&"no host"))?;
        let addr = match authority.port_u16() {
            Some(_) => authority.to_string(),
            None => format!("{authority}:443"),
        };
        let connector = tls
            .partner_connector(&host_of(url), expected)
            .map_err(|e| bad(&e))?;
        // The dialler does TLS itself, so tonic sees a plain `http` address;
        // requests still carry the partner's `https` origin.
        let endpoint = Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|e| bad(&e))?
            .origin(uri)
            .http2_keep_alive_interval(keepalive)
            .keep_alive_timeout(keepalive);
        Ok(Self {
            endpoint,
            dial: Dial::new(addr, connector),
            channel: tokio::sync::Mutex::new(None),
        })
    }

    /// The open channel, or a new one: TCP connect, TLS handshake with the
    /// identity check, HTTP/2 set-up. Nothing of a case is sent before
    /// this returns.
    async fn channel(&self) -> Result<Channel, NodeError> {
        let mut open = self.channel.lock().await;
        if let Some(channel) = open.as_ref() {
            return Ok(channel.clone());
        }
        let channel = self
            .endpoint
            .connect_with_connector(self.dial.clone())
            .await
            .map_err(|e| NodeError::Unavailable(error_chain(&e)))?;
        *open = Some(channel.clone());
        Ok(channel)
    }

    /// Forgets the channel after a failure: the next attempt dials again.
    async fn reset(&self) {
        *self.channel.lock().await = None;
    }
}

/// An error with its sources, deduplicated (tonic wraps the dialler's
/// error in layers that each say "transport error").
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(err);
    while let Some(e) = next {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}

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
struct Retry {
    /// Consecutive failed rounds.
    failures: u32,
    /// The current round; each batch remembers the round it started in.
    round: u64,
    /// No new batch before this.
    at: Option<Instant>,
}

impl Retry {
    /// When the partner is backing off at `now`, the end of the wait.
    fn waiting(&self, now: Instant) -> Option<Instant> {
        self.at.filter(|at| *at > now)
    }

    /// A batch of `round` failed at `now`. The first failure of the current
    /// round counts: it returns the consecutive failures and the wait
    /// before the next round. Later failures of that round return `None`.
    fn failed(&mut self, round: u64, now: Instant, d: &Delivery) -> Option<(u32, Duration)> {
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
    fn succeeded(&mut self) -> bool {
        let was_failing = self.failures > 0;
        self.failures = 0;
        self.at = None;
        was_failing
    }
}

/// What the courier knows of one partner between batches.
#[derive(Default)]
struct Partner {
    /// Batches in flight.
    streams: usize,
    /// Outbox keys in flight.
    keys: HashSet<u64>,
    /// Cases with an entry in flight, each with how many.
    cases: HashMap<String, usize>,
    /// Failures and the wait before the next round.
    retry: Retry,
    /// The round whose batches are parked after `max_attempts`, and why.
    gave_up: Option<(u64, String)>,
}

impl Partner {
    fn take(&mut self, batch: &[Pending]) {
        self.streams += 1;
        for (key, entry, _) in batch {
            self.keys.insert(*key);
            *self.cases.entry(entry.application_id.clone()).or_default() += 1;
        }
    }

    fn give_back(&mut self, batch: &[Pending]) {
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

async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
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
    async fn deliver(&self, dest: &str, batch: &[Pending]) -> Result<(), Failure> {
        let link = self.link(dest)?;
        let result = self.deliver_on(&link, dest, batch).await;
        if let Err(Failure::Partner(_)) = result {
            link.reset().await;
        }
        result
    }

    async fn deliver_on(&self, link: &Link, dest: &str, batch: &[Pending]) -> Result<(), Failure> {
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
        let items: Vec<(Vec<u8>, Vec<MaterialRef>)> = batch
            .iter()
            .map(|(_, e, _)| (e.envelope.clone(), e.materials.clone()))
            .collect();
        let frames = Checked::new(
            ReceiverStream::new(rx),
            &items,
            first_tx,
            done_rx,
            fail_tx.clone(),
        );
        let store = self.ctx.store.clone();
        // Every stream starts with this node's signed checkpoint: the
        // partner keeps it as evidence of our history.
        let checkpoint = self.ctx.checkpoint(false)?;
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
            for (index, item) in items.into_iter().enumerate() {
                if let Err(e) = produce(&store, vec![item], &tx).await {
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
        Ok(self.record(dest, batch, reply.results).await?)
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

    /// Stores receipts and refusals of one batch in one commit.
    async fn record(
        &self,
        dest: &str,
        batch: &[Pending],
        results: Vec<HandoffResult>,
    ) -> Result<(), NodeError> {
        let ctx = &self.ctx;
        let checked = self.check_receipts(dest, batch, &results).await;
        let _guards = ctx
            .locks
            .lock_all(batch.iter().map(|(_, e, _)| e.application_id.clone()))
            .await;
        let mut cases: BTreeMap<String, CaseRecord> = BTreeMap::new();
        let mut commit = Batch::default();
        let mut problems = Vec::new();
        let mut tally = crate::metrics::Tally::default();
        for (((key, entry, raw), result), checked) in batch.iter().zip(results).zip(checked) {
            let case = match cases.get_mut(&entry.application_id) {
                Some(c) => c,
                None => {
                    let Some(c) = ctx.store.case(&entry.application_id)? else {
                        problems.push(format!(
                            "case {} of handoff {} is gone",
                            entry.application_id, entry.handoff_id
                        ));
                        continue;
                    };
                    cases.entry(entry.application_id.clone()).or_insert(c)
                }
            };
            match result.outcome {
                Some(Outcome::Receipt(signed)) => {
                    match checked.expect("checked with its receipt") {
                        Ok(receipt) => {
                            tally.receipt(&entry.handoff_id);
                            // The receiver's state moves this case only for
                            // a handoff of the case itself (QUEUED → HANDED_OFF,
                            // a supplement taken in). An update's receipt
                            // carries the receiver's mirror, which may be
                            // older than this node's own state by now (a
                            // late receipt once set a case sent again back
                            // to MAIL_RETURNED).
                            if entry.kind != "update" {
                                let state: CaseState =
                                    receipt.state.parse().unwrap_or(CaseState::HandedOff);
                                if case.state.can_move_to(state) {
                                    case.state = state;
                                }
                            }
                            case.note = format!(
                                "handed off to {dest}; receipt held (their ledger seq {})",
                                receipt.ledger_seq
                            );
                            if let Some(h) = case
                                .handoffs
                                .iter_mut()
                                .find(|h| h.handoff_id == entry.handoff_id)
                            {
                                h.receipt_seq = Some(receipt.ledger_seq);
                            }
                            let note = case.note.clone();
                            let body = EntryBody::HandoffReceipted {
                                handoff_id: entry.handoff_id.clone(),
                                to: entry.to.clone(),
                                receipt: signed.receipt,
                                signature: signed.signature,
                                signer_certificate: signed.signer_certificate,
                                batch: signed.batch.map(|b| b.encode_to_vec()).unwrap_or_default(),
                                receiver_seq: receipt.ledger_seq,
                            };
                            let detail =
                                format!("receipt from {dest} for handoff {}", entry.handoff_id);
                            let mut change = Change::new(ctx.node_id(), detail, body).note(note);
                            // An update's receipt does not move the case here.
                            if entry.kind == "update" {
                                change = change.without_state();
                            }
                            change::stage(ctx, case, None, change, &mut commit);
                            commit.settle_outbox(*key, raw.clone());
                        }
                        Err(reason) => {
                            // The receiver replays the same receipt on every
                            // retry, so retrying cannot help: park it.
                            let reason = format!("receipt from {dest} rejected: {reason}");
                            tally.rejected += 1;
                            tracing::error!(partner = %dest, handoff = %entry.handoff_id, %reason, "handoff parked");
                            let body = EntryBody::HandoffParked {
                                handoff_id: entry.handoff_id.clone(),
                                to: entry.to.clone(),
                            };
                            park_in(&mut commit, ctx, case, *key, entry, body, reason);
                        }
                    }
                }
                Some(Outcome::Refusal(r)) => {
                    let code = tongban_proto::federation::v1::refusal::Code::try_from(r.code)
                        .map(|c| c.as_str_name())
                        .unwrap_or("UNKNOWN");
                    let reason = format!("refused by {dest} ({code}): {}", r.message);
                    tally.refused += 1;
                    tracing::warn!(partner = %dest, handoff = %entry.handoff_id, %reason, "handoff refused, parked");
                    let body = EntryBody::HandoffRefused {
                        handoff_id: entry.handoff_id.clone(),
                        to: entry.to.clone(),
                    };
                    park_in(&mut commit, ctx, case, *key, entry, body, reason);
                }
                None => problems.push(format!(
                    "{dest} answered nothing for handoff {}",
                    entry.handoff_id
                )),
            }
        }
        for case in cases.into_values() {
            commit.put_case(case);
        }
        if !commit.is_empty() {
            ctx.store.commit(commit).await?;
        }
        ctx.metrics.recorded(dest, &tally);
        match problems.first() {
            None => Ok(()),
            Some(p) => Err(NodeError::Unavailable(p.clone())),
        }
    }

    /// Checks the batch's receipts (`None` where the result is not a
    /// receipt), half of them on each of two blocking threads: one ECDSA
    /// verification per receipt is the sender's largest CPU cost, and one
    /// task verifying a whole batch in turn left the other core idle.
    async fn check_receipts(
        &self,
        dest: &str,
        batch: &[Pending],
        results: &[HandoffResult],
    ) -> Vec<Option<Result<Receipt, String>>> {
        let items: Vec<(OutboxEntry, SignedReceipt)> = batch
            .iter()
            .zip(results)
            .filter_map(|((_, entry, _), r)| match &r.outcome {
                Some(Outcome::Receipt(signed)) => Some((entry.clone(), signed.clone())),
                _ => None,
            })
            .collect();
        let half = items.len().div_ceil(2).max(1);
        let mut halves = Vec::new();
        let mut items = items.into_iter();
        loop {
            let part: Vec<_> = items.by_ref().take(half).collect();
            if part.is_empty() {
                break;
            }
            let n = part.len();
            let (ctx, dest) = (self.ctx.clone(), dest.to_owned());
            let task = tokio::task::spawn_blocking(move || {
                // A batch-signed root is verified once per part.
                let mut seen = receipt::Verified::default();
                part.iter()
                    .map(|(entry, signed)| check_receipt(&ctx, &dest, entry, signed, &mut seen))
                    .collect::<Vec<_>>()
            });
            halves.push((n, task));
        }
        let mut checked = Vec::new();
        for (n, task) in halves {
            match task.await {
                Ok(part) => checked.extend(part),
                // A check that panicked counts as failed: those handoffs
                // are parked with the reason, not taken as receipted.
                Err(e) => checked.extend(
                    std::iter::repeat_with(|| Err(format!("receipt check failed: {e}"))).take(n),
                ),
            }
        }
        let mut checked = checked.into_iter();
        results
            .iter()
            .map(|r| match r.outcome {
                Some(Outcome::Receipt(_)) => checked.next(),
                _ => None,
            })
            .collect()
    }

    /// Notes the last delivery problem on the cases of a batch (a note
    /// only: the case's state and ledger do not change).
    async fn note(&self, batch: &[Pending], note: &str) {
        let ctx = &self.ctx;
        let _guards = ctx
            .locks
            .lock_all(batch.iter().map(|(_, e, _)| e.application_id.clone()))
            .await;
        let mut commit = Batch::default();
        let mut seen = HashSet::new();
        for (_, entry, _) in batch {
            if !seen.insert(entry.application_id.as_str()) {
                continue;
            }
            match ctx.store.case(&entry.application_id) {
                Ok(Some(mut case)) if case.note != note => {
                    case.note = note.to_owned();
                    commit.put_case(case);
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(error = %e, "cannot read a case to note a delivery problem")
                }
            }
        }
        if !commit.is_empty()
            && let Err(e) = ctx.store.commit(commit).await
        {
            tracing::error!(error = %e, "cannot note a delivery problem");
        }
    }

    /// Parks entries the courier gave up on, noting why on their cases.
    async fn park(&self, dest: &str, batch: &[Pending], reason: &str) {
        let ctx = &self.ctx;
        let _guards = ctx
            .locks
            .lock_all(batch.iter().map(|(_, e, _)| e.application_id.clone()))
            .await;
        let mut commit = Batch::default();
        let mut cases: BTreeMap<String, CaseRecord> = BTreeMap::new();
        for (key, entry, _) in batch {
            let mut parked = entry.clone();
            parked.parked = Some(reason.to_owned());
            let case_no = match ctx.store.case(&entry.application_id) {
                Ok(Some(mut case)) => {
                    case.note = format!(
                        "{reason}; the handoff is parked: fix the cause, then `tongban window retry` (or `review retry`) the case"
                    );
                    let no = case.case_no.to_string();
                    cases.insert(case.application_id.clone(), case);
                    no
                }
                _ => String::new(),
            };
            let payload = Payload::new(
                reason,
                EntryBody::HandoffParked {
                    handoff_id: entry.handoff_id.clone(),
                    to: entry.to.clone(),
                },
            );
            let mut parked_entry = NewEntry::node(ctx.node_id(), &payload);
            parked_entry.application_id = entry.application_id.clone();
            parked_entry.case_no = case_no;
            commit.update_outbox(*key, parked).append(parked_entry);
        }
        for case in cases.into_values() {
            commit.put_case(case);
        }
        match ctx.store.commit(commit).await {
            Ok(_) => ctx.metrics.gave_up(dest, batch.len()),
            Err(e) => tracing::error!(error = %e, "cannot park outbox entries"),
        }
    }
}

/// Parks an outbox entry the courier must not retry, in `commit`: the
/// entry keeps its reason, the case notes it, the ledger records it.
fn park_in(
    commit: &mut Batch,
    ctx: &Ctx,
    case: &mut CaseRecord,
    key: u64,
    entry: &OutboxEntry,
    body: EntryBody,
    reason: String,
) {
    let note = format!(
        "{reason}; the handoff is parked: fix the cause, then `tongban window retry` (or `review retry`) the case"
    );
    let mut parked = entry.clone();
    parked.parked = Some(reason.clone());
    let change = Change::new(ctx.node_id(), reason, body)
        .note(note)
        .without_state();
    change::stage(ctx, case, None, change, commit);
    commit.update_outbox(key, parked);
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

/// The frames of a stream on their way out, checked: every material that
/// is not read from the material log (which checks its digest on reading)
/// must have the size and SHA-256 its envelope declares, checked before
/// the next envelope or the end of the stream goes out. On a mismatch, or
/// if the producer did not finish, the stream never ends cleanly: the
/// failure is reported and the stream aborted ([`Outgoing::Abort`]), so
/// the receiver keeps nothing of it. Also tells when the first frame is
/// taken (the stream has started).
struct Checked {
    inner: ReceiverStream<HandoffFrame>,
    /// Per handoff, its materials.
    items: Vec<Vec<MaterialRef>>,
    /// The handoff whose frames are going out.
    item: Option<usize>,
    /// Its materials so far: digest and bytes.
    sums: Vec<(Sha256, u64)>,
    first: Option<oneshot::Sender<()>>,
    done: oneshot::Receiver<()>,
    fail: mpsc::Sender<(usize, String)>,
    aborted: bool,
}

impl Checked {
    fn new(
        inner: ReceiverStream<HandoffFrame>,
        items: &[(Vec<u8>, Vec<MaterialRef>)],
        first: oneshot::Sender<()>,
        done: oneshot::Receiver<()>,
        fail: mpsc::Sender<(usize, String)>,
    ) -> Self {
        Self {
            inner,
            items: items.iter().map(|(_, m)| m.clone()).collect(),
            item: None,
            sums: Vec::new(),
            first: Some(first),
            done,
            fail,
            aborted: false,
        }
    }

    /// Checks the handoff whose frames are all out.
    fn finish_item(&mut self) -> Result<(), (usize, String)> {
        let Some(index) = self.item else {
            return Ok(());
        };
        let sums = std::mem::take(&mut self.sums);
        for (m, (sum, n)) in self.items[index].iter().zip(sums) {
            if m.log.is_some() {
                continue;
            }
            let got = tongban_ledger::records::hex(&sum.finalize());
            if n != m.size || got != m.sha256 {
                return Err((
                    index,
                    format!(
                        "material {} no longer matches its digest: {n} bytes with SHA-256 {got}, stored as {} bytes with {}",
                        m.kind, m.size, m.sha256
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Reports `failure` and aborts the stream.
    fn abort(&mut self, failure: (usize, String)) -> Poll<Option<Outgoing>> {
        self.aborted = true;
        let _ = self.fail.try_send(failure);
        Poll::Ready(Some(Outgoing::Abort))
    }
}

impl tokio_stream::Stream for Checked {
    type Item = Outgoing;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Outgoing>> {
        let this = self.get_mut();
        if this.aborted {
            // Never a clean end after an abort (the transport stops
            // polling at the abort anyway).
            return Poll::Pending;
        }
        let Poll::Ready(next) = Pin::new(&mut this.inner).poll_next(cx) else {
            return Poll::Pending;
        };
        let Some(frame) = next else {
            if let Err(failure) = this.finish_item() {
                return this.abort(failure);
            }
            if this.done.try_recv().is_err() {
                // The producer stopped without finishing; it reported why
                // (or panicked): the receiver must not see a clean end.
                let index = this.item.unwrap_or(0);
                return this.abort((index, "the stream was not produced to its end".into()));
            }
            return Poll::Ready(None);
        };
        match &frame.frame {
            Some(Frame::Envelope(_)) => {
                if let Err(failure) = this.finish_item() {
                    return this.abort(failure);
                }
                let index = this.item.map_or(0, |i| i + 1);
                let n = this.items.get(index).map_or(0, Vec::len);
                this.item = Some(index);
                this.sums = (0..n).map(|_| (Sha256::new(), 0)).collect();
            }
            Some(Frame::Chunk(chunk)) => {
                let skip = this
                    .item
                    .and_then(|i| this.items[i].get(chunk.material as usize))
                    .is_none_or(|m| m.log.is_some());
                if !skip && let Some((sum, n)) = this.sums.get_mut(chunk.material as usize) {
                    sum.update(&chunk.data);
                    *n += chunk.data.len() as u64;
                }
            }
            _ => {}
        }
        if let Some(first) = this.first.take() {
            let _ = first.send(());
        }
        Poll::Ready(Some(Outgoing::Frame(frame)))
    }
}

/// Calls `Handoff` on `channel` with `frames` (the generated client's call,
/// with [`HandoffCodec`]).
async fn handoff(
    channel: Channel,
    frames: Checked,
) -> Result<tonic::Response<HandoffReply>, tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|e| tonic::Status::unavailable(format!("connection not ready: {e}")))?;
    let mut request = tonic::Request::new(frames);
    request.extensions_mut().insert(tonic::GrpcMethod::new(
        federation_server::SERVICE_NAME,
        "Handoff",
    ));
    grpc.client_streaming(
        request,
        PathAndQuery::from_static(HANDOFF_PATH),
        HandoffCodec,
    )
    .await
}

/// What goes into a handoff stream: a frame, or the order to abort it.
///
/// Dropping a call is not enough to abort: the transport then sends
/// RST_STREAM(CANCEL), which hyper and tonic servers read as a clean end of
/// the client's stream, so the receiver would commit and receipt the
/// envelopes it had so far. An error from the request body instead makes
/// the transport send RST_STREAM(INTERNAL_ERROR), which every receiver
/// sees as a broken stream and stores nothing of (protocol §7.4).
enum Outgoing {
    Frame(HandoffFrame),
    Abort,
}

/// The `Handoff` call with [`Outgoing`] items: frames encoded as protobuf,
/// `Abort` failing the encoder (hence the request body).
struct HandoffCodec;

/// The method's path, as the generated client has it.
const HANDOFF_PATH: &str = "/tongban.federation.v1.Federation/Handoff";

struct HandoffEncoder;

struct ReplyDecoder;

impl Codec for HandoffCodec {
    type Encode = Outgoing;
    type Decode = HandoffReply;
    type Encoder = HandoffEncoder;
    type Decoder = ReplyDecoder;

    fn encoder(&mut self) -> HandoffEncoder {
        HandoffEncoder
    }

    fn decoder(&mut self) -> ReplyDecoder {
        ReplyDecoder
    }
}

impl Encoder for HandoffEncoder {
    type Item = Outgoing;
    type Error = tonic::Status;

    fn encode(&mut self, item: Outgoing, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        match item {
            // The buffer grows as needed: encoding cannot run out of room.
            Outgoing::Frame(frame) => frame
                .encode(dst)
                .map_err(|e| tonic::Status::internal(format!("encoding a frame: {e}"))),
            Outgoing::Abort => Err(tonic::Status::aborted(
                "the sender aborted the handoff stream",
            )),
        }
    }
}

impl Decoder for ReplyDecoder {
    type Item = HandoffReply;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<HandoffReply>, tonic::Status> {
        HandoffReply::decode(src)
            .map(Some)
            .map_err(|e| tonic::Status::internal(format!("decoding the reply: {e}")))
    }
}

/// Feeds envelopes and their material chunks, read from the blob store.
async fn produce(
    store: &tongban_ledger::Store,
    items: Vec<(Vec<u8>, Vec<MaterialRef>)>,
    tx: &mpsc::Sender<HandoffFrame>,
) -> Result<(), String> {
    for (envelope, blobs) in items {
        if tx
            .send(HandoffFrame {
                frame: Some(Frame::Envelope(envelope)),
            })
            .await
            .is_err()
        {
            return Ok(()); // the call ended; its outcome is reported there
        }
        for (index, material) in blobs.iter().enumerate() {
            let sha = &material.sha256;
            let mut reader = store.open_material(material).map_err(|e| e.to_string())?;
            // Small materials come from the material log, already in memory.
            if reader.in_memory() {
                while let Some(piece) = reader.read_chunk(CHUNK_SIZE).map_err(|e| e.to_string())? {
                    let chunk = MaterialChunk {
                        material: index as u32,
                        data: piece,
                    };
                    if tx
                        .send(HandoffFrame {
                            frame: Some(Frame::Chunk(chunk)),
                        })
                        .await
                        .is_err()
                    {
                        return Ok(());
                    }
                }
                continue;
            }
            // Large materials are files: read them on a blocking thread a
            // megabyte at a time and cut them into chunks there, so the two
            // runtime threads never wait on the disk. Each megabyte is read
            // into a buffer of its own that the chunks share (no copy).
            let tx = tx.clone();
            let sent = tokio::task::spawn_blocking(move || -> Result<bool, String> {
                const READ: usize = 1 << 20;
                while let Some(buf) = reader.read_chunk(READ).map_err(|e| e.to_string())? {
                    let filled = buf.len();
                    for start in (0..filled).step_by(CHUNK_SIZE) {
                        let chunk = MaterialChunk {
                            material: index as u32,
                            data: buf.slice(start..filled.min(start + CHUNK_SIZE)),
                        };
                        if tx
                            .blocking_send(HandoffFrame {
                                frame: Some(Frame::Chunk(chunk)),
                            })
                            .is_err()
                        {
                            return Ok(false);
                        }
                    }
                }
                Ok(true)
            })
            .await
            .map_err(|e| format!("reading {sha}: {e}"))??;
            if !sent {
                return Ok(()); // the call ended; its outcome is reported there
            }
        }
    }
    Ok(())
}

/// Checks a receipt against what was sent: signature, signer (the
/// destination's node), and every field and digest.
fn check_receipt(
    ctx: &Ctx,
    dest: &str,
    entry: &OutboxEntry,
    signed: &SignedReceipt,
    seen: &mut receipt::Verified,
) -> Result<Receipt, String> {
    // The certificate is checked against the real time, the receipt's date
    // against this node's clock (the one its own entries are dated by).
    let r = receipt::verify_with(&ctx.anchor, signed, SystemTime::now(), seen)
        .map_err(|e| e.to_string())?;
    let materials: Vec<(String, u64, Vec<u8>)> = entry
        .materials
        .iter()
        .map(|m| (m.kind.clone(), m.size, unhex(&m.sha256).unwrap_or_default()))
        .collect();
    let envelope_sha256 = Sha256::digest(&entry.envelope);
    let sent = receipt::Sent {
        handoff_id: &entry.handoff_id,
        application_id: Some(&entry.application_id),
        sender: ctx.county.as_str(),
        receiver: dest,
        envelope_sha256: envelope_sha256.as_slice(),
        materials: Some(&materials),
    };
    receipt::matches(&r, &sent).map_err(|e| e.to_string())?;
    let now = SystemTime::from(ctx.clock.now());
    receipt::check_time(&r, now, ctx.delivery.receipt_skew).map_err(|e| e.to_string())?;
    Ok(r)
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
    use super::*;

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
