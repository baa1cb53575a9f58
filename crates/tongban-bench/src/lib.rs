//! Benchmarks of tongban against bare tonic, measured side by side in one
//! run on loopback: the baseline (a trivial tonic service over the same
//! mutual TLS), the handoff drain rate, handoff latency, intake rate,
//! material streaming, and the ledger at size (append, verify, node start-up
//! with a large ledger, `audit trace`), the audit's re-hash of stored
//! materials, and the web console's pages on nodes with many cases.
//!
//! [`run`] does the work at the sizes in [`Options`]; the `tongban-bench`
//! binary picks full or `--quick` sizes and writes `docs/benchmarks.md`.

mod cluster;
mod console;
mod cpu;
mod drain;
mod echo;
mod evidence;
mod floors;
mod flows;
mod ledger;
mod nodes;
mod report;
mod startup;
mod stats;

use std::path::PathBuf;
use std::time::Duration;

pub use report::{Figure, Report};

/// Which parts to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Part {
    /// Bare tonic echo and upload (run with every part: the floors use it).
    Echo,
    /// Handoff drain rate.
    Drain,
    /// Handoff latency, one case at a time.
    Latency,
    /// Intake rate at 16 clerks.
    Intake,
    /// Intake with a 2,844-county star directory beside the 3-county one.
    Star,
    /// One large case handed off.
    Stream,
    /// Ledger append and verify, node start-up, audit trace.
    Ledger,
    /// Stored materials re-hashed for an audit, beside SHA-256.
    Evidence,
    /// The web console's pages, server-side, on nodes with many cases.
    Console,
}

impl Part {
    /// Every part, in run order.
    pub const ALL: [Part; 9] = [
        Part::Echo,
        Part::Drain,
        Part::Latency,
        Part::Intake,
        Part::Star,
        Part::Stream,
        Part::Ledger,
        Part::Evidence,
        Part::Console,
    ];

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Part::Echo => "echo",
            Part::Drain => "drain",
            Part::Latency => "latency",
            Part::Intake => "intake",
            Part::Star => "star",
            Part::Stream => "stream",
            Part::Ledger => "ledger",
            Part::Evidence => "evidence",
            Part::Console => "console",
        }
    }
}

impl std::str::FromStr for Part {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Part::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| {
                format!(
                    "unknown part {s:?} (echo, drain, latency, intake, star, stream, ledger, evidence, console)"
                )
            })
    }
}

/// Sizes and switches of one run.
#[derive(Debug, Clone)]
pub struct Options {
    /// A label for the report ("full", "quick", "smoke").
    pub label: String,
    /// Parts to run.
    pub parts: Vec<Part>,
    /// Requests per echo concurrency level.
    pub echo_requests: usize,
    /// Bytes of the bare client-streaming upload.
    pub upload_bytes: usize,
    /// Cases queued while the partner is down, then drained.
    pub drain_cases: usize,
    /// Cases handed off one at a time.
    pub latency_cases: usize,
    /// Cases taken in by the concurrent clerks.
    pub intake_cases: usize,
    /// Concurrent clerks.
    pub clerks: usize,
    /// Bytes of materials in the one large case (split 1/4, 1/4, 1/2).
    pub stream_bytes: usize,
    /// Ledger entries appended (and in the node whose start-up is timed).
    pub ledger_entries: usize,
    /// Cases copied into each of the console's two nodes.
    pub console_cases: usize,
    /// Whether to spawn the real `tongban` binary (start-up, RSS, audit trace).
    pub spawn_binary: bool,
    /// How long a spawned node is left alone before its idle memory is read.
    pub idle: Duration,
    /// Where the `tongban` binary is; `None`: next to the current executable.
    pub tongban_bin: Option<PathBuf>,
    /// Upper bound of each timed loop.
    pub max_phase: Duration,
    /// Print figures as they are measured.
    pub verbose: bool,
}

impl Options {
    /// The sizes of issue 6.
    pub fn full() -> Self {
        Self {
            label: "full".into(),
            parts: Part::ALL.to_vec(),
            echo_requests: 20_000,
            upload_bytes: 256 << 20,
            drain_cases: 10_000,
            latency_cases: 200,
            intake_cases: 3_200,
            clerks: 16,
            stream_bytes: 256 << 20,
            ledger_entries: 1_000_000,
            console_cases: 100_000,
            spawn_binary: true,
            idle: Duration::from_secs(5),
            tongban_bin: None,
            max_phase: Duration::from_secs(300),
            verbose: true,
        }
    }

    /// About a tenth of the full sizes.
    pub fn quick() -> Self {
        Self {
            label: "quick".into(),
            echo_requests: 2_000,
            upload_bytes: 32 << 20,
            // Enough that the drain is mostly steady state: with 1,000 the
            // ~0.25 s before B's first receipt (its start-up and A's
            // back-off) was half of the whole drain.
            drain_cases: 3_000,
            latency_cases: 40,
            intake_cases: 320,
            stream_bytes: 32 << 20,
            ledger_entries: 100_000,
            console_cases: 10_000,
            idle: Duration::from_secs(3),
            max_phase: Duration::from_secs(60),
            ..Self::full()
        }
    }

    /// Tiny sizes for the smoke test (no process is spawned).
    pub fn smoke() -> Self {
        Self {
            label: "smoke".into(),
            echo_requests: 200,
            upload_bytes: 1 << 20,
            drain_cases: 50,
            latency_cases: 5,
            intake_cases: 32,
            clerks: 4,
            stream_bytes: 1 << 20,
            ledger_entries: 2_000,
            console_cases: 200,
            spawn_binary: false,
            max_phase: Duration::from_secs(20),
            verbose: false,
            ..Self::full()
        }
    }

    fn has(&self, part: Part) -> bool {
        self.parts.contains(&part)
    }
}

/// Runs the benchmarks and returns the report (nothing is written to disk
/// but temp dirs; see [`Report::write_markdown`]).
pub async fn run(opts: &Options) -> anyhow::Result<Report> {
    tongban_pki::install_crypto_provider();
    let mut report = Report::new(opts);
    // The floors and the bare echo always run: every figure stands beside
    // its floor measured in the same run.
    let probe = tempfile::Builder::new()
        .prefix("tongban-bench-floors-")
        .tempdir()?;
    floors::run(probe.path(), &mut report)?;
    echo::run(opts, &mut report).await?;
    let needs_cluster = [
        Part::Drain,
        Part::Latency,
        Part::Intake,
        Part::Star,
        Part::Stream,
        Part::Ledger,
        Part::Evidence,
    ]
    .iter()
    .any(|p| opts.has(*p));
    if needs_cluster {
        let mut fed = cluster::Federation::new(opts, &mut report).await?;
        let result = run_cluster(opts, &mut fed, &mut report).await;
        fed.shutdown().await;
        result?;
    }
    if opts.has(Part::Console) {
        console::run(opts, &mut report).await?;
    }
    report.finish();
    Ok(report)
}

async fn run_cluster(
    opts: &Options,
    fed: &mut cluster::Federation,
    report: &mut Report,
) -> anyhow::Result<()> {
    fed.start_a().await?;
    if opts.has(Part::Drain) {
        drain::drain(opts, fed, report).await?;
    }
    fed.start_b().await?;
    if opts.has(Part::Latency) {
        flows::latency(opts, fed, report).await?;
    }
    if opts.has(Part::Intake) {
        flows::intake(opts, fed, report).await?;
    }
    if opts.has(Part::Star) {
        flows::star(opts, fed, report).await?;
    }
    if opts.has(Part::Stream) {
        flows::stream(opts, fed, report).await?;
    }
    if opts.has(Part::Ledger) {
        ledger::run(opts, fed, report).await?;
    }
    if opts.has(Part::Evidence) {
        evidence::run(opts, fed, report).await?;
    }
    Ok(())
}
