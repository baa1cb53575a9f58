//! The node's Prometheus metrics: counters the courier bumps where a
//! handoff is sent, receipted, refused or parked, and gauges computed from
//! the store at scrape time (outbox per partner, cases by state and side,
//! overdue cases, ledger head, free bytes on the data dir, and what the
//! store's commits have handed to sled, for the benchmark that runs the
//! node as its own process and cannot read the store's counters directly).
//!
//! Labels are county codes, case states, sides and error causes only: never
//! a case number, an applicant or anything else a person could be found by.
//! Serving them over HTTP is `admin`'s business, not this module's.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Metric, Registry, Unit};
use tongban_core::CaseState;
use tongban_ledger::Side;

use crate::NodeError;
use crate::ctx::Ctx;

/// The content type of [`Metrics::render`]'s output.
pub(crate) const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Upper bounds of the handoff latency buckets, seconds: milliseconds when
/// the partner is up, up to a day when it was down.
const LATENCY_BUCKETS: [f64; 18] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0,
    3600.0, 14400.0, 86400.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Partner {
    partner: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Failure {
    partner: String,
    cause: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CaseLabels {
    side: &'static str,
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SideLabel {
    side: &'static str,
}

type LatencyFamily = Family<Partner, Histogram, fn() -> Histogram>;

/// What one batch's answers did, counted while they are staged and
/// reported once they are committed.
#[derive(Default)]
pub(crate) struct Tally {
    /// Seconds from each receipted handoff's creation to its receipt.
    latencies: Vec<f64>,
    /// Refusals from the partner (parked).
    pub(crate) refused: u64,
    /// Receipts that did not verify (parked).
    pub(crate) rejected: u64,
}

impl Tally {
    /// A receipt for handoff `handoff_id` was taken.
    pub(crate) fn receipt(&mut self, handoff_id: &str) {
        self.latencies.push(age_of(handoff_id).unwrap_or(0.0));
    }
}

/// Seconds since the handoff with this id was created: handoff ids are
/// UUID v7, whose first 48 bits are the creation time in milliseconds.
fn age_of(handoff_id: &str) -> Option<f64> {
    let (secs, nanos) = uuid::Uuid::parse_str(handoff_id)
        .ok()?
        .get_timestamp()?
        .to_unix();
    let created = std::time::UNIX_EPOCH + std::time::Duration::new(secs, nanos);
    Some(
        std::time::SystemTime::now()
            .duration_since(created)
            .unwrap_or_default()
            .as_secs_f64(),
    )
}

/// The node's metrics and their registry.
pub(crate) struct Metrics {
    registry: Registry,
    sent: Family<Partner, Counter>,
    receipted: Family<Partner, Counter>,
    refused: Family<Partner, Counter>,
    parked: Family<Partner, Counter>,
    failed: Family<Failure, Counter>,
    latency: LatencyFamily,
    receipt_failures: Family<Partner, Counter>,
    outbox_depth: Family<Partner, Gauge>,
    outbox_oldest: Family<Partner, Gauge<f64, AtomicU64>>,
    cases: Family<CaseLabels, Gauge>,
    overdue: Family<SideLabel, Gauge>,
    free_bytes: Gauge,
    head_seq: Gauge,
    store_commits: Counter,
    store_reads: Counter,
    store_writes: Counter,
    store_bytes: Counter,
    data_dir: PathBuf,
    /// One scrape at a time refreshes the gauges and encodes them.
    scrape: Mutex<()>,
}

impl Metrics {
    /// The metrics of the node of `county` whose data lives in `data_dir`.
    pub(crate) fn new(county: &str, data_dir: &Path) -> Self {
        let mut r = Register(Registry::default());
        r.0.register(
            "tongban_build",
            "the running build",
            Info::new(vec![
                ("version", env!("CARGO_PKG_VERSION").to_owned()),
                ("county", county.to_owned()),
            ]),
        );
        // Registered in this order, and so encoded in it.
        let sent = r.add(
            "tongban_handoffs_sent",
            "handoff envelopes sent in a stream the partner answered",
        );
        let receipted = r.add(
            "tongban_handoffs_receipted",
            "handoffs whose partner receipt verified and was stored",
        );
        let refused = r.add(
            "tongban_handoffs_refused",
            "handoffs the partner refused (each is parked)",
        );
        let parked = r.add(
            "tongban_handoffs_parked",
            "handoffs parked for an operator: refused, receipt rejected, attempts exhausted, or a material that cannot be sent",
        );
        let failed = r.add(
            "tongban_handoff_attempts_failed",
            "failed delivery attempts to a partner, by cause (each is retried or parked)",
        );
        let latency = r.add_in(
            Unit::Seconds,
            "tongban_handoff_latency",
            "time from a handoff's creation to its verified receipt",
            LatencyFamily::new_with_constructor(|| Histogram::new(LATENCY_BUCKETS)),
        );
        let receipt_failures = r.add(
            "tongban_receipt_verification_failures",
            "partner receipts that did not verify (wrong signer, bad signature, mismatched field)",
        );
        let outbox_depth = r.add(
            "tongban_outbox_depth",
            "unparked outbox entries waiting for a partner",
        );
        let outbox_oldest = r.add_in(
            Unit::Seconds,
            "tongban_outbox_oldest_age",
            "age of the oldest unparked outbox entry for a partner (0 when none waits)",
            Family::default(),
        );
        let cases = r.add("tongban_cases", "cases on this node by side and state");
        let overdue = r.add(
            "tongban_cases_overdue",
            "open cases past their promised date or with a mail leg in transit too long",
        );
        let free_bytes = r.add_in(
            Unit::Bytes,
            "tongban_data_dir_free",
            "bytes available to the node on the data dir's file system",
            Gauge::default(),
        );
        let head_seq = r.add(
            "tongban_ledger_head_seq",
            "sequence number of the ledger head",
        );
        let store_commits = r.add(
            "tongban_store_commits",
            "store transactions that wrote, since the node started",
        );
        let store_reads = r.add(
            "tongban_store_commit_reads",
            "reads inside the store's transactions that wrote",
        );
        let store_writes = r.add(
            "tongban_store_commit_writes",
            "inserts and removes inside the store's transactions",
        );
        let store_bytes = r.add_in(
            Unit::Bytes,
            "tongban_store_commit",
            "bytes of the keys and values the store's transactions inserted (and keys removed)",
            Counter::default(),
        );
        Self {
            registry: r.0,
            sent,
            receipted,
            refused,
            parked,
            failed,
            latency,
            receipt_failures,
            outbox_depth,
            outbox_oldest,
            cases,
            overdue,
            free_bytes,
            head_seq,
            store_commits,
            store_reads,
            store_writes,
            store_bytes,
            data_dir: data_dir.to_path_buf(),
            scrape: Mutex::new(()),
        }
    }

    /// `n` envelopes were sent to `partner` and answered.
    pub(crate) fn sent(&self, partner: &str, n: usize) {
        self.sent.get_or_create(&label(partner)).inc_by(n as u64);
    }

    /// A batch's answers from `partner` were committed.
    pub(crate) fn recorded(&self, partner: &str, tally: &Tally) {
        let p = label(partner);
        self.receipted
            .get_or_create(&p)
            .inc_by(tally.latencies.len() as u64);
        let latency = self.latency.get_or_create(&p);
        for &seconds in &tally.latencies {
            latency.observe(seconds);
        }
        self.refused.get_or_create(&p).inc_by(tally.refused);
        self.receipt_failures
            .get_or_create(&p)
            .inc_by(tally.rejected);
        self.parked
            .get_or_create(&p)
            .inc_by(tally.refused + tally.rejected);
    }

    /// `n` handoffs to `partner` were parked by the courier itself: attempts
    /// exhausted, or a stored material that cannot be sent.
    pub(crate) fn gave_up(&self, partner: &str, n: usize) {
        self.parked.get_or_create(&label(partner)).inc_by(n as u64);
    }

    /// A delivery attempt to `partner` failed with `err`.
    pub(crate) fn attempt_failed(&self, partner: &str, err: &NodeError) {
        let cause = match err {
            // The partner is unreachable, the stream broke, or the answer was short.
            NodeError::Unavailable(_) => "unavailable",
            NodeError::Store(_) => "storage",
            NodeError::Pki(_) => "pki",
            NodeError::Invalid(_) | NodeError::Refused { .. } | NodeError::NotPermitted(_) => {
                "config"
            }
            _ => "other",
        };
        self.failed
            .get_or_create(&Failure {
                partner: partner.to_owned(),
                cause,
            })
            .inc();
    }

    /// Refreshes the gauges from the store and encodes every metric in the
    /// OpenMetrics text format. Blocking: sled and statvfs.
    pub(crate) fn render(&self, ctx: &Ctx) -> Result<String, NodeError> {
        let _one = self.scrape.lock().unwrap_or_else(|p| p.into_inner());
        // Only the partners with unparked entries are read (one seek each
        // finds them); every other partner's queue is empty. Reading every
        // partner's outbox was two reads per partner of the directory at
        // each scrape (5,688 with the star directory's 2,844).
        let waiting: BTreeSet<String> = ctx.store.outbox_destinations()?.into_iter().collect();
        for partner in ctx.directory.partners(&ctx.county) {
            let p = label(partner.as_str());
            let (depth, oldest) = if waiting.contains(partner.as_str()) {
                let oldest = ctx
                    .store
                    .outbox_for(partner.as_str(), 1, |_| false)?
                    .first()
                    .and_then(|(_, e, _)| age_of(&e.handoff_id))
                    .unwrap_or(0.0);
                (ctx.store.outbox_depth(partner.as_str()), oldest)
            } else {
                (0, 0.0)
            };
            self.outbox_depth.get_or_create(&p).set(depth as i64);
            self.outbox_oldest.get_or_create(&p).set(oldest);
        }
        for (side, name) in [(Side::Window, "window"), (Side::Home, "home")] {
            for state in CaseState::ALL {
                self.cases
                    .get_or_create(&CaseLabels {
                        side: name,
                        state: state.as_str(),
                    })
                    .set(ctx.store.case_count(side, state) as i64);
            }
            let overdue = crate::service::overdue_count(ctx, side)?;
            self.overdue
                .get_or_create(&SideLabel { side: name })
                .set(overdue as i64);
        }
        self.head_seq.set(ctx.store.head()?.0 as i64);
        // Counted by the store as it commits; copied, not added, so that a
        // scrape never counts twice.
        let counts = ctx.store.write_counts();
        for (counter, total) in [
            (&self.store_commits, counts.commits),
            (&self.store_reads, counts.reads),
            (&self.store_writes, counts.writes),
            (&self.store_bytes, counts.bytes),
        ] {
            counter.inner().store(total, Ordering::Relaxed);
        }
        match fs4::available_space(&self.data_dir) {
            Ok(bytes) => {
                self.free_bytes
                    .set(i64::try_from(bytes).unwrap_or(i64::MAX));
            }
            Err(e) => {
                tracing::warn!(data_dir = %self.data_dir.display(), error = %e, "cannot read the data dir's free space");
            }
        }
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .map_err(|e| NodeError::Server(format!("cannot encode metrics: {e}")))?;
        Ok(out)
    }
}

/// A registry that hands back each metric it registers, so that a metric
/// is made, named and registered in one place.
struct Register(Registry);

impl Register {
    /// A new metric (a family, counter or gauge), registered as `name`.
    fn add<M: Metric + Clone + Default>(&mut self, name: &str, help: &str) -> M {
        let metric = M::default();
        self.0.register(name, help, metric.clone());
        metric
    }

    /// `metric`, registered as `name` in `unit` (which the encoding appends
    /// to the name).
    fn add_in<M: Metric + Clone>(&mut self, unit: Unit, name: &str, help: &str, metric: M) -> M {
        self.0.register_with_unit(name, help, unit, metric.clone());
        metric
    }
}

fn label(partner: &str) -> Partner {
    Partner {
        partner: partner.to_owned(),
    }
}
