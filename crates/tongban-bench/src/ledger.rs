//! The ledger at size: append and verify with `Store` directly, then the
//! real `tongban` binary started on that ledger (time to ready, resident
//! memory, each beside the same binary on an empty data dir) and `audit
//! trace` against it.

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::process::Command;
use tongban_ledger::{Batch, EntryBody, NewEntry, Payload, Store};
use tongban_pki::Principal;
use tongban_pki::tls::TlsMaterial;

use crate::cluster::{B, C, Federation, county, window_client};
use crate::flows::{MATERIAL, apply, gt_materials, verify_and_accept};
use crate::startup::{Memory, Node, config_with_data_dir, tongban_binary};
use crate::stats::rate;
use crate::{Options, Report};

const SECTION: &str = "6. ledger at size";

/// Entries per commit while filling the ledger.
const APPEND_BATCH: usize = 1000;

/// Appends `n` entries in batches of [`APPEND_BATCH`] (one commit and flush each).
async fn append(store: &Store, n: usize, limit: Duration) -> anyhow::Result<(usize, Duration)> {
    let started = Instant::now();
    let mut written = 0usize;
    let actor = format!("spiffe://shaanxi.tongban/county/{C}/clerk/bench");
    while written < n && started.elapsed() < limit {
        let mut batch = Batch::default();
        let upto = (written + APPEND_BATCH).min(n);
        for i in written..upto {
            // Five entries per synthetic case, like apply/verify/accept/handoff.
            let case = i / 5;
            batch.append(NewEntry {
                application_id: format!("0190bench-{case:012}"),
                case_no: format!("{C}-20260101-{case}"),
                actor: actor.clone(),
                // A real kind with a real payload: an auditor's trace decodes
                // every entry in the range it covers, and refuses one it cannot.
                kind: "case.identity-verified".into(),
                state: None,
                payload: Payload::new(
                    format!("synthetic entry {i} written by tongban-bench"),
                    EntryBody::IdentityVerified {
                        method: "bench".into(),
                    },
                )
                .encode(),
                ..Default::default()
            });
        }
        store.commit(batch).await?;
        written = upto;
    }
    Ok((written, started.elapsed()))
}

pub(crate) async fn run(
    opts: &Options,
    fed: &mut Federation,
    report: &mut Report,
) -> anyhow::Result<()> {
    let bin = if opts.spawn_binary {
        tongban_binary(opts, report)
    } else {
        report.note(
            "ledger: node start-up, resident memory and audit trace not measured (spawn_binary off)",
        );
        None
    };
    // Any member of the federation may ask a node's health.
    let prober = fed.issue(Principal::Clerk {
        county: county(C),
        name: "probe".into(),
    })?;
    // The same binary on an empty data dir, first: the floor of the
    // start-up figures below, and the idle node of the target.
    let fresh = match &bin {
        Some(bin) => Some(fresh_node(opts, fed, bin, &prober, report).await?),
        None => None,
    };

    let n = opts.ledger_entries;
    let store = Arc::new(Store::open(&fed.c_data_dir)?);
    let (written, elapsed) = append(&store, n, opts.max_phase).await?;
    report.add(
        SECTION,
        &format!("ledger append (batches of {APPEND_BATCH}, one flush each)"),
        rate(written as f64, elapsed),
        "entries/s",
    );
    report.show_last();
    if written < n {
        report.note(format!(
            "ledger: the time bound stopped the append at {written} of {n} entries"
        ));
    }
    let verifier = store.clone();
    let t = Instant::now();
    let verified = tokio::task::spawn_blocking(move || verifier.verify()).await??;
    let verify_time = t.elapsed();
    let head = verified.map_err(|b| anyhow::anyhow!("chain broken: {b:?}"))?;
    anyhow::ensure!(head as usize == written, "verified {head}, wrote {written}");
    report.add(
        SECTION,
        &format!("full-chain verify ({written} entries)"),
        rate(written as f64, verify_time),
        "entries/s",
    );
    report.show_last();
    drop(store);

    let (Some(bin), Some(fresh)) = (bin, fresh) else {
        return Ok(());
    };
    let (node, startup) = Node::start(
        &bin,
        &fed.c_config,
        (fed.c_addr, &fed.c_sockets),
        &prober,
        Duration::from_secs(120),
    )
    .await?;
    let at_ready = node.memory()?;
    let cpu_ms = node.cpu_ms()?;
    let idled = node.idle(opts.idle).await?;
    let big = written >= 1_000_000;
    let f = report.add(
        SECTION,
        &format!("node start-up with {written} entries (spawn → health SERVING)"),
        startup.as_secs_f64() * 1e3,
        "ms",
    );
    f.floor = Some((
        "the same, empty data dir".into(),
        fresh.startup.as_secs_f64() * 1e3,
    ));
    if big {
        f.target = Some(("< 1000 ms".into(), startup < Duration::from_secs(1)));
    }
    report.show_last();
    let f = report.add(
        SECTION,
        &format!("node start-up CPU with {written} entries (user + system in 10 ms ticks, spawn → SERVING)"),
        cpu_ms,
        "ms",
    );
    f.floor = Some(("the same, empty data dir".into(), fresh.cpu_ms));
    report.show_last();
    let f = report.add(
        SECTION,
        &format!("node resident memory at ready ({written} entries, VmRSS)"),
        at_ready.rss,
        "MiB",
    );
    f.floor = Some(("the same, empty data dir".into(), fresh.at_ready.rss));
    report.show_last();
    // The target is on the peak: whatever start-up needed, it needed
    // that much memory at once.
    let peak = idled.hwm.max(at_ready.hwm);
    let f = report.add(
        SECTION,
        &format!(
            "node peak resident memory, start-up + {} s idle ({written} entries, VmHWM)",
            opts.idle.as_secs()
        ),
        peak,
        "MiB",
    );
    f.floor = Some(("the same, empty data dir".into(), fresh.idled.hwm));
    if big {
        f.target = Some(("< 150 MiB".into(), peak < 150.0));
    }
    report.show_last();
    report.note(format!(
        "start-up: the real binary {} (`--log-format json node --config`) on a data dir of \
         {written} ledger entries, timed from spawn until its gRPC health answered SERVING over \
         mutual TLS (asked every 2 ms); VmRSS {:.1} MiB at ready, {:.1} MiB after {} s idle",
        shown_path(&bin).display(),
        at_ready.rss,
        idled.rss,
        opts.idle.as_secs()
    ));
    let traced = trace(fed, &bin, written, report).await;
    let stopped = node.terminate().await?;
    report.note(format!("start-up node: {stopped}"));
    if let Err(e) = traced {
        report.note(format!("audit trace not measured: {e:#}"));
    }
    // sled 0.34 writes its snapshot only when it opens, after replaying
    // every log record written since the previous opening; the store opens
    // it again every `REPLAY_BOUND` entries, so the first start above
    // replayed at most that much of the append, and a restart replays
    // only what the first run wrote.
    let (node, restart) = Node::start(
        &bin,
        &fed.c_config,
        (fed.c_addr, &fed.c_sockets),
        &prober,
        Duration::from_secs(120),
    )
    .await?;
    let memory = node.memory()?;
    let restart_cpu = node.cpu_ms()?;
    let stopped = node.terminate().await?;
    let f = report.add(
        SECTION,
        &format!("node restart with {written} entries (spawn → health SERVING)"),
        restart.as_secs_f64() * 1e3,
        "ms",
    );
    f.floor = Some((
        "the same, empty data dir".into(),
        fresh.startup.as_secs_f64() * 1e3,
    ));
    report.show_last();
    let f = report.add(
        SECTION,
        &format!("node restart CPU with {written} entries (user + system in 10 ms ticks, spawn → SERVING)"),
        restart_cpu,
        "ms",
    );
    f.floor = Some(("the same, empty data dir".into(), fresh.cpu_ms));
    report.show_last();
    report.note(format!(
        "restart: VmRSS {:.1} MiB, VmHWM {:.1} MiB at ready; {stopped}",
        memory.rss, memory.hwm
    ));
    Ok(())
}

/// What the node on an empty data dir measured.
struct Fresh {
    startup: Duration,
    /// CPU to SERVING (ms).
    cpu_ms: f64,
    at_ready: Memory,
    idled: Memory,
}

/// `tongban node` on an empty data dir of its own (C's config otherwise):
/// start-up, and resident memory once it has idled.
async fn fresh_node(
    opts: &Options,
    fed: &Federation,
    bin: &Path,
    prober: &TlsMaterial,
    report: &mut Report,
) -> anyhow::Result<Fresh> {
    let config = config_with_data_dir(&fed.c_config, "data/idle-fresh")?;
    let (node, startup) = Node::start(
        bin,
        &config,
        (fed.c_addr, &fed.c_sockets),
        prober,
        Duration::from_secs(60),
    )
    .await?;
    let at_ready = node.memory()?;
    let cpu_ms = node.cpu_ms()?;
    let idled = node.idle(opts.idle).await?;
    let stopped = node.terminate().await?;
    report.add(
        SECTION,
        "node start-up, empty data dir (spawn → health SERVING)",
        startup.as_secs_f64() * 1e3,
        "ms",
    );
    report.show_last();
    report.add(
        SECTION,
        "node start-up CPU, empty data dir (user + system in 10 ms ticks, spawn → SERVING)",
        cpu_ms,
        "ms",
    );
    report.show_last();
    let f = report.add(
        SECTION,
        &format!(
            "idle node resident memory, empty data dir ({} s after ready, VmRSS)",
            opts.idle.as_secs()
        ),
        idled.rss,
        "MiB",
    );
    f.target = Some(("< 50 MiB".into(), idled.rss < 50.0));
    report.show_last();
    report.note(format!(
        "idle node: VmRSS {:.1} MiB at ready, {:.1} MiB after {} s idle, peak (VmHWM) {:.1} MiB; {stopped}",
        at_ready.rss,
        idled.rss,
        opts.idle.as_secs(),
        idled.hwm
    ));
    Ok(Fresh {
        startup,
        cpu_ms,
        at_ready,
        idled,
    })
}

/// The problems a `--json` trace report lists, wherever they sit, so a
/// failed trace says what it found (the whole report is kilobytes).
fn problems(json: &[u8]) -> String {
    fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    match (k.as_str(), v) {
                        ("problems", serde_json::Value::Array(list)) => {
                            out.extend(list.iter().map(|p| p.to_string()))
                        }
                        _ => walk(v, out),
                    }
                }
            }
            serde_json::Value::Array(list) => list.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    match serde_json::from_slice::<serde_json::Value>(json) {
        Ok(v) => {
            let mut out = Vec::new();
            walk(&v, &mut out);
            out.join("; ")
        }
        Err(_) => String::from_utf8_lossy(json).trim().to_owned(),
    }
}

/// One case through C's window to B, then `tongban audit trace` on it.
async fn trace(
    fed: &Federation,
    bin: &Path,
    entries: usize,
    report: &mut Report,
) -> anyhow::Result<()> {
    let clerk = fed.issue(Principal::Clerk {
        county: county(C),
        name: "wang".into(),
    })?;
    let mut window = window_client(fed.c_addr, &clerk).await?;
    let case = apply(&mut window, B, &gt_materials(9_000_000, MATERIAL)).await?;
    verify_and_accept(&mut window, &case.case_no).await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let view = window
            .get_case(tongban_proto::window::v1::CaseRef {
                case_no: case.case_no.clone(),
                request_id: String::new(),
            })
            .await?
            .into_inner();
        if view.state == "HANDED_OFF" {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "case at the start-up node still {} ({})",
            view.state,
            view.note
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let auditor = fed.issue(Principal::Auditor {
        county: None,
        name: "zhao".into(),
    })?;
    let dir = fed.root();
    std::fs::write(dir.join("auditor.crt"), &auditor.cert_pem)?;
    std::fs::write(dir.join("auditor.key"), &auditor.key_pem)?;
    let auth = |cmd: &mut Command| {
        cmd.arg("--ca")
            .arg(fed.ca_path())
            .arg("--cert")
            .arg(dir.join("auditor.crt"))
            .arg("--key")
            .arg(dir.join("auditor.key"))
            .stdin(Stdio::null())
            .kill_on_drop(true);
    };
    let mut cmd = Command::new(bin);
    cmd.args(["audit", "trace", &case.case_no, "--json"])
        .arg("--node")
        .arg(format!("https://{}", fed.c_addr))
        .arg("--node")
        .arg(format!("https://{}", fed.b_addr()));
    auth(&mut cmd);
    let t = Instant::now();
    let out = tokio::time::timeout(Duration::from_secs(120), cmd.output()).await??;
    let took = t.elapsed();
    anyhow::ensure!(
        out.status.success(),
        "`tongban audit trace` failed ({}): {}; its problems: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim(),
        problems(&out.stdout)
    );
    report.add(
        SECTION,
        &format!(
            "`tongban audit trace` of one case, node with {entries} entries (process wall time)"
        ),
        took.as_secs_f64() * 1e3,
        "ms",
    );
    report.show_last();
    report.note(format!(
        "audit trace: {} → {} over both nodes, {} bytes of JSON",
        case.case_no,
        B,
        out.stdout.len()
    ));
    let mut cmd = Command::new(bin);
    cmd.args(["audit", "verify", "--json", "--node"])
        .arg(format!("https://{}", fed.c_addr));
    auth(&mut cmd);
    let t = Instant::now();
    let out = tokio::time::timeout(Duration::from_secs(300), cmd.output()).await??;
    let took = t.elapsed();
    if out.status.success() {
        report.add(
            SECTION,
            &format!(
                "`tongban audit verify` of the node with {entries} entries (process wall time)"
            ),
            took.as_secs_f64() * 1e3,
            "ms",
        );
        report.show_last();
    } else {
        report.note(format!(
            "`tongban audit verify` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
}

/// `path` as the report shows it: relative to the current directory (the
/// workspace, when the bench is run as the README says) where it lies
/// under it, so a report kept in the repository names no machine's paths.
fn shown_path(path: &std::path::Path) -> std::path::PathBuf {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(cwd).ok().map(|p| p.to_path_buf()))
        .unwrap_or_else(|| path.to_path_buf())
}
