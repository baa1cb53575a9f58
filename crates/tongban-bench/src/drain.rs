//! Section 2, the handoff drain: `drain_cases` queued at A while B is
//! down, B started, timed until none is QUEUED; and what it cost, per node
//! process (CPU and threads from `/proc/PID`, bytes written from
//! `/proc/PID/io`, sled operations from each node's `/metrics`).
//!
//! When A and B run as processes, the same drain runs once more with both
//! nodes inside this process ("drain, both nodes in one process"): what
//! sled's process-global lock and the shared allocator cost, beside the
//! figure as nodes really run.

use std::time::{Duration, Instant};

use tongban_ledger::WriteCounts;
use tongban_proto::window::v1::ListCasesRequest;
use tongban_proto::window::v1::window_client::WindowClient;
use tonic::transport::Channel;

use crate::cluster::Federation;
use crate::cpu::{Proc, Threads};
use crate::echo::{ECHO_C64, ECHO_CPU};
use crate::floors::{SHA256, SIGN, VERIFY};
use crate::flows::{MATERIAL, clerks};
use crate::stats::rate;
use crate::{Options, Report};

pub(crate) const DRAIN: &str = "2. handoff drain";

const RATE: &str = "drain rate (B started → all HANDED_OFF)";
const CPU_BOTH: &str = "CPU per handoff (both nodes)";
/// Printed before B starts (`profile.sh drain` attaches perf then).
const QUEUEING: &str = "intake while B is down (queueing the drain)";
/// The prefix of the comparison's figures.
const ONE_PROCESS: &str = "drain, both nodes in one process";

/// What one drain measured.
struct Drained {
    n: usize,
    /// Listing every queued case at A once.
    poll_cost: Duration,
    /// B started → none QUEUED.
    wall: Duration,
    /// B started → the first HANDED_OFF.
    first: Option<Duration>,
    /// Per process ("bench", and "A", "B" when they run as processes):
    /// CPU seconds, bytes written, the thread split as text.
    procs: Vec<(String, f64, u64, String)>,
    /// What the stores handed to sled, per node (or "both nodes").
    sled: Vec<(String, WriteCounts)>,
}

impl Drained {
    /// CPU seconds of the nodes: their processes', or this whole process
    /// when they run in it.
    fn nodes_cpu(&self) -> f64 {
        self.of_nodes(|p| p.1)
    }

    /// Bytes the nodes wrote, counted the same way.
    fn nodes_written(&self) -> u64 {
        self.of_nodes(|p| p.2)
    }

    /// The sum of `figure` over the node processes, or over every process
    /// (this one included) when the nodes run here.
    fn of_nodes<T: std::iter::Sum<T>>(
        &self,
        figure: impl Fn(&(String, f64, u64, String)) -> T,
    ) -> T {
        let nodes = self.procs.iter().filter(|p| p.0 != "bench");
        if nodes.clone().next().is_none() {
            self.procs.iter().map(&figure).sum()
        } else {
            nodes.map(&figure).sum()
        }
    }

    fn all_cpu(&self) -> f64 {
        self.procs.iter().map(|p| p.1).sum()
    }

    fn sled(&self) -> WriteCounts {
        self.sled
            .iter()
            .fold(WriteCounts::default(), |t, (_, c)| WriteCounts {
                commits: t.commits + c.commits,
                reads: t.reads + c.reads,
                writes: t.writes + c.writes,
                bytes: t.bytes + c.bytes,
            })
    }

    fn cores(&self) -> f64 {
        self.all_cpu() / self.wall.as_secs_f64()
    }
}

/// The drain with A and B as the federation runs them, then (if that is
/// as processes) the same with both in this process.
pub(crate) async fn drain(
    opts: &Options,
    fed: &mut Federation,
    report: &mut Report,
) -> anyhow::Result<()> {
    let d = measure(opts, fed, 1_000_000, QUEUEING, report).await?;
    report_drain(&d, fed.nodes().in_processes(), report);
    if fed.nodes().in_processes() {
        let mut one = Federation::in_process(opts).await?;
        let result = async {
            one.start_a().await?;
            let name = format!("{ONE_PROCESS}: {QUEUEING}");
            measure(opts, &mut one, 1_500_000, &name, report).await
        }
        .await;
        one.shutdown().await;
        report_one_process(&result?, report);
    }
    Ok(())
}

pub(crate) async fn count_in_state(
    window: &mut WindowClient<Channel>,
    state: &str,
    limit: usize,
) -> anyhow::Result<usize> {
    Ok(window
        .list_cases(ListCasesRequest {
            state: state.into(),
            limit: limit as u32,
            page_token: String::new(),
        })
        .await?
        .into_inner()
        .cases
        .len())
}

/// Queues the cases at A (running, B down) and reports that intake as
/// `queue_figure`, starts B and waits until none is queued, counting what
/// each process spent meanwhile.
async fn measure(
    opts: &Options,
    fed: &mut Federation,
    seed: u64,
    queue_figure: &str,
    report: &mut Report,
) -> anyhow::Result<Drained> {
    let n = opts.drain_cases;
    let windows = fed.clerks_a(opts.clerks).await?;
    let (queueing, cases) = clerks(windows, n, seed, opts.max_phase).await?;
    anyhow::ensure!(
        cases.len() == n,
        "only {} of {n} cases accepted within {:?}",
        cases.len(),
        opts.max_phase
    );
    report.add(DRAIN, queue_figure, rate(n as f64, queueing), "cases/s");
    report.show_last();
    let mut window = fed.clerk_a().await?;
    let t = Instant::now();
    let queued = count_in_state(&mut window, "QUEUED", 10_000).await?;
    let poll_cost = t.elapsed();
    anyhow::ensure!(
        queued == n.min(10_000),
        "{queued} cases QUEUED at A, expected {n}"
    );
    // The store counters first: reading a node's /metrics costs it CPU.
    let sled_before = fed.nodes().store_counts().await?;
    let before: Vec<(Proc, f64, u64, Threads)> = fed
        .procs()
        .into_iter()
        .map(|p| {
            let (cpu, io, threads) = (p.cpu_s(), p.written_bytes(), Threads::read(&p));
            (p, cpu, io, threads)
        })
        .collect();
    let started = Instant::now();
    fed.start_b().await?;
    // B's process is new: all of its CPU, writes and threads are the drain's.
    let mut threads: Vec<(Proc, Threads, Threads)> = fed
        .procs()
        .into_iter()
        .map(|p| {
            let was = before
                .iter()
                .find(|b| b.0 == p)
                .map_or_else(|| Threads::unread(&p), |b| b.3.clone());
            (p, was.clone(), was)
        })
        .collect();
    let deadline = started + opts.max_phase;
    // Completion is polled with a limit of one: the answer is only whether
    // any case is still queued, so the poll costs one index probe and one
    // case read instead of decoding every queued case.
    // Also when the first case is HANDED_OFF: before it, the time is B's
    // start-up and A waiting out its retry back-off, not handing off.
    let mut remaining = queued;
    let mut first: Option<Duration> = None;
    while remaining > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
        for (_, _, now) in &mut threads {
            now.sample();
        }
        if first.is_none() && count_in_state(&mut window, "HANDED_OFF", 1).await? > 0 {
            first = Some(started.elapsed());
        }
        remaining = count_in_state(&mut window, "QUEUED", 1).await?;
    }
    let wall = started.elapsed();
    let mut procs = Vec::new();
    for (p, was, mut now) in threads {
        now.sample();
        let (cpu0, io0) = before
            .iter()
            .find(|b| b.0 == p)
            .map_or((0.0, 0), |b| (b.1, b.2));
        let (_, split) = now.since(&was);
        procs.push((
            p.label.clone(),
            p.cpu_s() - cpu0,
            p.written_bytes().saturating_sub(io0),
            split,
        ));
    }
    let sled_after = fed.nodes().store_counts().await?;
    let sled = sled_after
        .into_iter()
        .map(|(label, after)| {
            let was = sled_before
                .iter()
                .find(|b| b.0 == label)
                .map_or_else(WriteCounts::default, |b| b.1);
            (label, after.since(&was))
        })
        .collect();
    let remaining = count_in_state(&mut window, "QUEUED", 10_000).await?;
    anyhow::ensure!(
        remaining == 0,
        "{remaining} of {n} cases still QUEUED after {:?}",
        opts.max_phase
    );
    let handed = count_in_state(&mut window, "HANDED_OFF", n + 10).await?;
    anyhow::ensure!(handed == n, "{handed} of {n} cases HANDED_OFF");
    Ok(Drained {
        n,
        poll_cost,
        wall,
        first,
        procs,
        sled,
    })
}

fn report_drain(d: &Drained, processes: bool, report: &mut Report) {
    let n = d.n;
    let ms = d.poll_cost.as_secs_f64() * 1e3;
    report.note(format!(
        "drain: listing all {} queued cases at A takes {ms:.1} ms, so completion is polled \
         every 20 ms with `list_cases(QUEUED, limit 1)` (one index probe), and counted in full \
         only at the end",
        n.min(10_000)
    ));
    let r = rate(n as f64, d.wall);
    let echo = report.value(ECHO_C64);
    let floor = drain_floor(report);
    let f = report.add(DRAIN, RATE, r, "handoffs/s");
    if let Some(echo) = echo {
        f.baseline = Some((ECHO_C64.into(), echo));
    }
    f.floor = floor.clone();
    // Issue 14: ≥ 0.6 × the CPU floor (one signature per receipt) and,
    // with batch-signed receipts as the bench runs them, ≥ 0.5 × echo c=64.
    if let (Some(echo), Some((_, floor))) = (echo, &floor) {
        f.target = Some((
            "≥ 0.6 × floor and ≥ 0.5 × echo c=64".into(),
            r >= 0.6 * floor && r >= 0.5 * echo,
        ));
    }
    report.show_last();
    if let Some(first) = d.first {
        report.add(
            DRAIN,
            "of which before the first receipt (B starting, A's back-off)",
            first.as_secs_f64() * 1e3,
            "ms",
        );
        report.show_last();
        report
            .add(
                DRAIN,
                "drain rate from the first receipt on",
                rate(n as f64, d.wall.saturating_sub(first)),
                "handoffs/s",
            )
            .floor = floor;
        report.show_last();
    }
    // Per handoff: the steadier evidence on a shared machine, where rates
    // swing with the load.
    let per = n as f64;
    report.add(DRAIN, CPU_BOTH, d.nodes_cpu() * 1e6 / per, "µs");
    report.show_last();
    if processes {
        for (label, role) in [("A", "sender"), ("B", "receiver")] {
            if let Some(p) = d.procs.iter().find(|p| p.0 == label) {
                report.add(
                    DRAIN,
                    &format!("CPU per handoff, node {label} ({role}, its process)"),
                    p.1 * 1e6 / per,
                    "µs",
                );
                report.show_last();
            }
        }
        if let Some(p) = d.procs.iter().find(|p| p.0 == "bench") {
            report.add(
                DRAIN,
                "CPU per handoff, bench process (the client polling)",
                p.1 * 1e6 / per,
                "µs",
            );
            report.show_last();
        }
    }
    report.add(
        DRAIN,
        "cores busy during the drain (all processes)",
        d.cores(),
        "cores",
    );
    report.show_last();
    let sled = d.sled();
    report.add(
        DRAIN,
        "sled operations per handoff (both nodes, reads + writes in commits)",
        (sled.reads + sled.writes) as f64 / per,
        "ops",
    );
    report.show_last();
    report.add(
        DRAIN,
        "bytes handed to sled per handoff (keys + values)",
        sled.bytes as f64 / per,
        "B",
    );
    report.show_last();
    report.add(
        DRAIN,
        "bytes written to disk per handoff (/proc/PID/io of the nodes, with materials)",
        d.nodes_written() as f64 / per,
        "B",
    );
    report.show_last();
    let by_node = d
        .sled
        .iter()
        .map(|(label, s)| {
            format!(
                "{label}: {} commits, {} reads, {} writes ({:.1} + {:.1} per handoff, {:.0} B)",
                s.commits,
                s.reads,
                s.writes,
                s.reads as f64 / per,
                s.writes as f64 / per,
                s.bytes as f64 / per
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    let source = if processes {
        "each node's /metrics"
    } else {
        "this process's counters"
    };
    report.note(format!("drain in sled ({source}): {by_node}"));
    report.note(format!(
        "drain of {n} cases took {:.2} s wall, {:.2} s CPU ({:.2} of 2 cores busy); {}",
        d.wall.as_secs_f64(),
        d.all_cpu(),
        d.cores(),
        split(d)
    ));
}

/// Each process's CPU and its split by thread, as text.
fn split(d: &Drained) -> String {
    d.procs
        .iter()
        .map(|(label, cpu, _, threads)| format!("{label} {cpu:.2} s CPU: {threads}"))
        .collect::<Vec<_>>()
        .join(" | ")
}

/// The comparison: the same drain with both nodes in this process, each
/// figure beside the one of the nodes as processes.
fn report_one_process(d: &Drained, report: &mut Report) {
    let per = d.n as f64;
    let r = rate(per, d.wall);
    let as_processes = report.value(RATE);
    let floor = drain_floor(report);
    let f = report.add(
        DRAIN,
        &format!("{ONE_PROCESS}: rate (B started → all HANDED_OFF)"),
        r,
        "handoffs/s",
    );
    if let Some(v) = as_processes {
        f.baseline = Some((format!("{RATE}, as processes"), v));
    }
    f.floor = floor;
    report.show_last();
    let cpu = report.value(CPU_BOTH);
    let f = report.add(
        DRAIN,
        &format!("{ONE_PROCESS}: CPU per handoff (the process)"),
        d.all_cpu() * 1e6 / per,
        "µs",
    );
    if let Some(v) = cpu {
        f.baseline = Some((format!("{CPU_BOTH}, as processes"), v));
    }
    report.show_last();
    report.add(
        DRAIN,
        &format!("{ONE_PROCESS}: cores busy"),
        d.cores(),
        "cores",
    );
    report.show_last();
    let sled = d.sled();
    report.add(
        DRAIN,
        &format!("{ONE_PROCESS}: sled operations per handoff"),
        (sled.reads + sled.writes) as f64 / per,
        "ops",
    );
    report.show_last();
    report.note(format!(
        "{ONE_PROCESS}: {} cases drained in {:.2} s wall, {:.2} s CPU ({:.2} of 2 cores \
         busy); {}",
        d.n,
        d.wall.as_secs_f64(),
        d.all_cpu(),
        d.cores(),
        split(d)
    ));
}

/// The drain's floor from this run's figures: every handoff costs at least
/// one signature (B), one verification (A), SHA-256 of its material (B) and
/// one request's CPU in TLS, HTTP/2 and protobuf (the echo's), spread over
/// this machine's cores.
fn drain_floor(report: &Report) -> Option<(String, f64)> {
    let sign = report.value(SIGN)?;
    let verify = report.value(VERIFY)?;
    let sha = report.value(SHA256)?;
    let echo = report.value(ECHO_CPU)?;
    let hash = MATERIAL as f64 / sha; // bytes / (MB/s) = µs
    let cost = sign + verify + hash + echo;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    Some((
        format!(
            "{cores:.0} cores / (sign {sign:.0} + verify {verify:.0} + SHA-256 of 16 KiB {hash:.0} + echo CPU {echo:.0} µs)"
        ),
        cores * 1e6 / cost,
    ))
}
