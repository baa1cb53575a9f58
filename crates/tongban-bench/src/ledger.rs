//! The ledger at size: append and verify with `Store` directly, then the
//! real `tongban` binary started on that ledger (time to "node serving",
//! resident memory) and `audit trace` against it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tongban_ledger::{Batch, NewEntry, Store};
use tongban_pki::Principal;

use crate::cluster::{B, C, Federation, county, window_client};
use crate::flows::{MATERIAL, apply, gt_materials, verify_and_accept};
use crate::stats::rate;
use crate::{Options, Report};

const SECTION: &str = "6. ledger at size";

/// Appends `n` entries in batches of 1000 (one commit and flush each).
async fn append(store: &Store, n: usize, limit: Duration) -> anyhow::Result<(usize, Duration)> {
    let started = Instant::now();
    let mut written = 0usize;
    let actor = format!("spiffe://shaanxi.tongban/county/{C}/clerk/bench");
    while written < n && started.elapsed() < limit {
        let mut batch = Batch::default();
        let upto = (written + 1000).min(n);
        for i in written..upto {
            // Five entries per synthetic case, like apply/verify/accept/handoff.
            let case = i / 5;
            batch.append(NewEntry {
                application_id: format!("0190bench-{case:012}"),
                case_no: format!("{C}-20260101-{case}"),
                actor: actor.clone(),
                kind: "bench.filler".into(),
                state: None,
                payload: format!("{{\"detail\":\"synthetic entry {i} written by tongban-bench\"}}")
                    .into_bytes(),
            });
        }
        store.commit(batch).await?;
        written = upto;
    }
    Ok((written, started.elapsed()))
}

/// The `tongban` binary next to this executable (building it if missing).
pub(crate) fn tongban_binary(opts: &Options, report: &mut Report) -> Option<PathBuf> {
    let path = match &opts.tongban_bin {
        Some(p) => p.clone(),
        None => std::env::current_exe()
            .ok()?
            .parent()?
            .join(format!("tongban{}", std::env::consts::EXE_SUFFIX)),
    };
    if path.is_file() {
        return Some(path);
    }
    let release = path
        .parent()
        .and_then(|p| p.file_name())
        .is_some_and(|n| n == "release");
    if release {
        report.note(format!(
            "{} was missing: built it with `cargo build --release -p tongban-cli` first",
            path.display()
        ));
        let built = std::process::Command::new("cargo")
            .args(["build", "--release", "-p", "tongban-cli"])
            .status();
        if built.is_ok_and(|s| s.success()) && path.is_file() {
            return Some(path);
        }
    }
    report.note(format!(
        "the tongban binary is not at {}: node start-up, resident memory and audit trace not measured",
        path.display()
    ));
    None
}

fn proc_status_kib(pid: u32, field: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Spawns `tongban node`, returns it and the time until "node serving".
async fn spawn_node(
    bin: &Path,
    config: &Path,
    limit: Duration,
) -> anyhow::Result<(Child, Duration)> {
    let started = Instant::now();
    let mut child = Command::new(bin)
        .args([
            "--log-format",
            "json",
            "--log-level",
            "info",
            "node",
            "--config",
        ])
        .arg(config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let stderr = child.stderr.take().expect("piped");
    let mut lines = BufReader::new(stderr).lines();
    let mut seen = Vec::new();
    let serving = tokio::time::timeout(limit, async {
        while let Some(line) = lines.next_line().await? {
            if line.contains("node serving") {
                return Ok::<_, std::io::Error>(true);
            }
            seen.push(line);
        }
        Ok(false)
    })
    .await;
    let elapsed = started.elapsed();
    match serving {
        Ok(Ok(true)) => {}
        other => {
            let _ = child.start_kill();
            anyhow::bail!(
                "tongban node did not report \"node serving\" ({other:?}); its log: {}",
                seen.join("\n")
            );
        }
    }
    // Keep draining its log so that it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok((child, elapsed))
}

async fn terminate(mut child: Child) -> anyhow::Result<String> {
    let Some(pid) = child.id() else {
        return Ok("already exited".into());
    };
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    match tokio::time::timeout(Duration::from_secs(15), child.wait()).await {
        Ok(status) => Ok(format!("exited after SIGTERM: {}", status?)),
        Err(_) => {
            child.kill().await?;
            Ok("did not stop within 15 s of SIGTERM; killed".into())
        }
    }
}

pub(crate) async fn run(
    opts: &Options,
    fed: &mut Federation,
    report: &mut Report,
) -> anyhow::Result<()> {
    let n = opts.ledger_entries;
    let store = Arc::new(Store::open(&fed.c_data_dir)?);
    let (written, elapsed) = append(&store, n, opts.max_phase).await?;
    report.add(
        SECTION,
        "ledger append (batches of 1000, one flush each)",
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

    if !opts.spawn_binary {
        report.note("ledger: node start-up, resident memory and audit trace not measured (spawn_binary off)");
        return Ok(());
    }
    let Some(bin) = tongban_binary(opts, report) else {
        return Ok(());
    };
    let (child, startup) = spawn_node(&bin, &fed.c_config, Duration::from_secs(120)).await?;
    let pid = child.id().unwrap_or(0);
    let rss = proc_status_kib(pid, "VmRSS:").unwrap_or(0.0) / 1024.0;
    let hwm = proc_status_kib(pid, "VmHWM:").unwrap_or(0.0) / 1024.0;
    let big = written >= 1_000_000;
    let f = report.add(
        SECTION,
        &format!("node start-up with {written} entries (spawn → \"node serving\")"),
        startup.as_secs_f64() * 1e3,
        "ms",
    );
    if big {
        f.target = Some(("< 2000 ms".into(), startup < Duration::from_secs(2)));
    }
    report.show_last();
    let f = report.add(
        SECTION,
        &format!("node resident memory at \"node serving\" ({written} entries)"),
        rss,
        "MiB",
    );
    if big {
        f.target = Some(("< 200 MiB".into(), rss < 200.0));
    }
    report.show_last();
    report.note(format!(
        "start-up: the real binary {} (`--log-format json node --config`), VmRSS {rss:.1} MiB, \
         VmHWM {hwm:.1} MiB at the \"node serving\" line",
        bin.display()
    ));
    let traced = trace(fed, &bin, written, report).await;
    let stopped = terminate(child).await?;
    report.note(format!("start-up node: {stopped}"));
    if let Err(e) = traced {
        report.note(format!("audit trace not measured: {e:#}"));
    }
    Ok(())
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
        "`tongban audit trace` failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
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
