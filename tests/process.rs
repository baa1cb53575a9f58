//! The real `tongban` binary as processes: start, health, SIGTERM; a bad
//! config's exit code; and the crash test — a partner node killed with
//! SIGKILL again and again while handoffs stream to it.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use tongban_ledger::Store;
use tongban_proto::window::v1::ListCasesRequest;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::support::*;

const BIN: &str = env!("CARGO_BIN_EXE_tongban");

/// The binary the node processes run: `TONGBAN_BIN` if set (a soak runs
/// a copy, so that rebuilding the workspace meanwhile does not change the
/// binary under it), else the one cargo built with the tests.
fn node_bin() -> std::path::PathBuf {
    std::env::var_os("TONGBAN_BIN").map_or_else(|| BIN.into(), Into::into)
}

/// A `tongban node` process whose JSON log is read on a thread.
struct NodeProcess {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl NodeProcess {
    fn spawn(config: &Path) -> Self {
        let mut child = Command::new(node_bin())
            .args(["--log-format", "json", "node", "--config"])
            .arg(config)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tongban node");
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self { child, lines }
    }

    /// Waits for the "node serving" log line and returns the bound address.
    /// A node that exits first fails the test with what it logged.
    fn serving(&self) -> SocketAddr {
        let mut seen = Vec::new();
        loop {
            let line = match self.lines.recv_timeout(Duration::from_secs(30)) {
                Ok(line) => line,
                Err(e) => panic!(
                    "node logs that it is serving ({e}); its last lines:\n{}",
                    seen[seen.len().saturating_sub(5)..].join("\n")
                ),
            };
            seen.push(line.clone());
            if line.contains("node serving") {
                let v: serde_json::Value = serde_json::from_str(&line).expect("json log line");
                return v["fields"]["addr"]
                    .as_str()
                    .expect("addr field")
                    .parse()
                    .expect("socket addr");
            }
        }
    }

    fn terminate(mut self) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill -TERM");
        assert!(status.success());
        self.child.wait().expect("wait")
    }

    fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        let _ = self.child.wait();
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The sandbox's layout for `counties` with their ports released: the
/// nodes run as processes of their own and bind the ports in their configs.
async fn federation(counties: &[&str]) -> Sandbox {
    let mut sandbox = tongban_sandbox::Builder::new()
        .temp_prefix("tongban-process-")
        .counties(counties)
        .node_config("[delivery]\ninitial_backoff_ms = 20\nmax_backoff_ms = 300\nbatch_size = 16\n")
        .build()
        .expect("lay out the federation");
    for code in counties {
        sandbox.release(code).await.expect("release the port");
    }
    sandbox
}

#[tokio::test]
async fn the_node_binary_serves_health_and_exits_cleanly_on_sigterm() {
    let fed = federation(&[HANTAI]).await;
    let pki = fed.pki();
    let node = NodeProcess::spawn(fed.config_path(HANTAI));
    let addr = node.serving();
    let mut health = HealthClient::new(channel(addr, &pki.issue(clerk(HANTAI, "wang"))).await);
    let reply = health
        .check(HealthCheckRequest::default())
        .await
        .expect("health")
        .into_inner();
    assert_eq!(reply.status(), ServingStatus::Serving);
    drop(health);
    let status = tokio::task::spawn_blocking(move || node.terminate())
        .await
        .unwrap();
    assert!(status.success(), "clean exit on SIGTERM, got {status:?}");
}

#[test]
fn a_bad_config_exits_64_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("node.toml");
    std::fs::write(&config, "county = \"61070\"\nlisten = \"127.0.0.1:0\"\ndata_dir = \"d\"\ndirectory = \"f.toml\"\n[tls]\nca = \"a\"\ncert = \"b\"\nkey = \"c\"\n").unwrap();
    let out = Command::new(BIN)
        .arg("node")
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("node.toml") && stderr.contains("county"),
        "{stderr}"
    );
    let out = Command::new(BIN)
        .args(["window", "frobnicate"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "usage error");
}

#[tokio::test]
async fn a_bad_holiday_calendar_stops_the_node_with_64_naming_the_date() {
    let fed = federation(&[HANTAI]).await;
    let path = fed.directory_path();
    let good = std::fs::read_to_string(&path).unwrap();
    let bad = good.replacen("\"2026-10-10\"", "\"2026-10-07\"", 1);
    assert_ne!(bad, good);
    std::fs::write(&path, bad).unwrap();
    let out = Command::new(BIN)
        .args(["node", "--config"])
        .arg(fed.config_path(HANTAI))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("federation.toml")
            && stderr
                .contains("calendar[0]: 2026-10-07 is both a holiday and a make-up working day"),
        "{stderr}"
    );
}

/// Runs `tongban directory ARGS` in `dir`: exit code, stdout, stderr.
fn directory(dir: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(BIN)
        .arg("directory")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn waivers_and_intake_modes_are_checked_when_the_directory_loads() {
    let dir = tempfile::tempdir().unwrap();
    let example = include_str!("../examples/federation.toml");
    for (from, to, says) in [
        (
            "waivable = true",
            "waiveable = true",
            "unknown field `waiveable`",
        ),
        (
            "promised_days = 5",
            "promised_days = 5\nwaivable = true",
            "unknown field `waivable`",
        ),
        (
            "intake = \"video-consultation\"",
            "intake = \"phone\"",
            "unknown variant `phone`, expected `counter` or `video-consultation`",
        ),
    ] {
        assert!(example.contains(from), "{from}");
        std::fs::write(
            dir.path().join("federation.toml"),
            example.replacen(from, to, 1),
        )
        .unwrap();
        let (code, _, err) = directory(dir.path(), &["guide", "GT-0001"]);
        assert_eq!(code, Some(64), "{to}: {err}");
        assert!(err.contains(says), "{says:?} in {err}");
    }
    std::fs::write(dir.path().join("federation.toml"), example).unwrap();
    let (code, out, err) = directory(dir.path(), &["guide", "WH-0001"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("intake     by video consultation"), "{out}");
    let (code, out, err) = directory(dir.path(), &["guide", "GT-0001", "--json"]);
    assert_eq!(code, Some(0), "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("one json document");
    assert_eq!(v["intake_mode"], "counter");
    assert_eq!(v["materials"][2]["kind"], "premises-proof");
    assert_eq!(v["materials"][2]["waivable"], true);
}

#[test]
fn item_guides_are_read_offline_from_the_directory_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("federation.toml"),
        include_str!("../examples/federation.toml"),
    )
    .unwrap();

    // The default path is ./federation.toml.
    let (code, out, err) = directory(dir.path(), &["guide", "GT-0001"]);
    assert_eq!(code, Some(0), "{err}");
    for line in [
        "GT-0001 个体工商户登记",
        "category   商事登记",
        "promised   5 working days",
        "holiday calendar: 2026",
        "mail-window",
        "application-form 个体工商户登记申请书: paper original, mailed to the home county",
        "id-card          经营者身份证明: electronic copy",
        "at 雁塔区 610113 for 汉台区 610702, 商州区 611002",
        "at 汉台区 610702 for 雁塔区 610113",
    ] {
        assert!(out.contains(line), "{line:?} in\n{out}");
    }
    assert!(
        !out.contains("at 商州区 611002 for 汉台区"),
        "no agreement: {out}"
    );

    let elsewhere = tempfile::tempdir().unwrap();
    let file = dir.path().join("federation.toml");
    let file = file.to_str().unwrap();
    let (code, out, err) = directory(
        elsewhere.path(),
        &["guide", "HJ-0001", "--directory", file, "--json"],
    );
    assert_eq!(code, Some(0), "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("one json document");
    assert_eq!(v["name"], "户口迁移");
    assert_eq!(v["promised_days"], 10);
    assert_eq!(
        v["delivery"],
        serde_json::json!(["mail-applicant", "collect-home"])
    );
    assert_eq!(v["materials"][0]["kind"], "hukou-book");
    assert_eq!(v["materials"][0]["paper"], true);
    assert_eq!(v["materials"][1]["paper"], false);
    let intake = v["intake"].as_array().unwrap();
    assert_eq!(intake.len(), 2, "{v}");
    assert_eq!(intake[0]["county"]["name"], "汉台区");
    assert_eq!(intake[0]["for"][0]["code"], "610113");
    assert_eq!(intake[1]["county"]["code"], "610113");
    assert_eq!(intake[1]["for"][0]["name"], "汉台区");

    // An unknown item: refused (1), naming it and what it may have meant.
    let (code, out, err) = directory(dir.path(), &["guide", "GT-001"]);
    assert_eq!(code, Some(1));
    assert!(out.is_empty(), "{out}");
    assert!(
        err.contains("item \"GT-001\"") && err.contains("did you mean GT-0001 (个体工商户登记)?"),
        "{err}"
    );
    let (code, _, err) = directory(dir.path(), &["guide", "XX-9999"]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("item \"XX-9999\"") && err.contains("tongban directory items"),
        "{err}"
    );
    let (code, out, _) = directory(dir.path(), &["items"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("SP-0001    食品经营许可"), "{out}");

    // No directory file: a configuration problem (64).
    let (code, _, err) = directory(elsewhere.path(), &["guide", "GT-0001"]);
    assert_eq!(code, Some(64));
    assert!(
        err.contains("failed to load the federation directory federation.toml")
            && err.contains("--directory"),
        "{err}"
    );
}

/// How a crash run goes: how many times each node is killed, and for how
/// long at most.
struct Crashes {
    /// Kills of each of the two nodes.
    kills: usize,
    /// When to stop killing even if `kills` are not done (the soak's bound).
    budget: Duration,
    /// How long a node runs between its restart and its next kill (ms).
    up: std::ops::Range<u64>,
}

/// What a crash run counted.
#[derive(Debug, Default)]
struct CrashReport {
    /// SIGKILLs of 汉台 (window) and of 雁塔 (home).
    kills: (usize, usize),
    /// Accepts that were answered OK.
    acknowledged: usize,
    /// Acknowledged cases that are not HANDED_OFF with a receipt at 汉台
    /// or not in 雁塔's ledger.
    lost: usize,
    /// Cases in 雁塔's ledger more than once.
    duplicated: usize,
    /// Cases still QUEUED at 汉台 when the run ends.
    stuck: usize,
    /// How long the killing went on.
    elapsed: Duration,
}

impl std::fmt::Display for CrashReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let total = self.kills.0 + self.kills.1;
        write!(
            f,
            "kills {total} (window {}, home {}) / acknowledged {} / lost {} / duplicated {} / stuck {} \
             in {:.1} s ({:.1} kills/s)",
            self.kills.0,
            self.kills.1,
            self.acknowledged,
            self.lost,
            self.duplicated,
            self.stuck,
            self.elapsed.as_secs_f64(),
            total as f64 / self.elapsed.as_secs_f64().max(0.001),
        )
    }
}

/// Kills `code`'s process with SIGKILL at random moments and restarts it,
/// `crashes.kills` times or until the budget is spent; returns the running
/// process and how many kills were made.
async fn killer(
    config: std::path::PathBuf,
    first: NodeProcess,
    crashes: &Crashes,
    started: std::time::Instant,
) -> (NodeProcess, usize) {
    let mut node = first;
    let mut kills = 0;
    while kills < crashes.kills && started.elapsed() < crashes.budget {
        tokio::time::sleep(Duration::from_millis(fastrand::u64(crashes.up.clone()))).await;
        node.kill();
        kills += 1;
        tokio::time::sleep(Duration::from_millis(fastrand::u64(0..50))).await;
        node = tokio::task::spawn_blocking({
            let config = config.clone();
            move || {
                let node = NodeProcess::spawn(&config);
                node.serving();
                node
            }
        })
        .await
        .unwrap();
    }
    (node, kills)
}

/// Retries `call` while the node is down or going down (any status but
/// the ones that say the request itself is wrong), for at most 60 s.
async fn until_answered<T, F, Fut>(mut call: F) -> Result<T, tonic::Status>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, tonic::Status>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        match call().await {
            Ok(v) => return Ok(v),
            Err(s)
                if matches!(
                    s.code(),
                    tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled
                ) && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(s) => return Err(s),
        }
    }
}

/// One clerk at 汉台 applying for and accepting cases for 雁塔 until
/// `stop`; returns the application ids whose accept was answered OK. An
/// accept whose answer was lost with a killed node may have been stored:
/// such cases count as not acknowledged, and are still checked for
/// duplicates.
async fn clerk_works(
    window: tongban_proto::window::v1::window_client::WindowClient<tonic::transport::Channel>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> BTreeSet<String> {
    use tongban_proto::window::v1::{CaseRef, VerifyIdentityRequest};
    let mut acknowledged = BTreeSet::new();
    while !*stop.borrow() {
        let Ok(case) = until_answered(|| {
            let mut w = window.clone();
            async move {
                apply(
                    &mut w,
                    "GT-0001",
                    YANTA,
                    "mail-applicant",
                    person(),
                    &gt_materials(),
                )
                .await
            }
        })
        .await
        else {
            continue; // an upload cut by a kill; a new application
        };
        let case_ref = || CaseRef {
            request_id: String::new(),
            case_no: case.case_no.clone(),
        };
        let verified = until_answered(|| {
            let mut w = window.clone();
            let request = VerifyIdentityRequest {
                request_id: String::new(),
                case_no: case.case_no.clone(),
                method: "id-card-reader".into(),
            };
            async move { w.verify_identity(request).await }
        })
        .await;
        if verified.is_err() {
            continue;
        }
        if let Ok(reply) = until_answered(|| {
            let mut w = window.clone();
            let request = case_ref();
            async move { w.accept(request).await }
        })
        .await
        {
            let case = reply.into_inner().case.expect("case");
            acknowledged.insert(case.application_id);
        }
    }
    acknowledged
}

/// The crash run: two clerks at 汉台 (window) apply and accept cases for
/// 雁塔 (home) while both nodes' processes are killed with SIGKILL at
/// random moments and restarted. At the end every acknowledged case is
/// HANDED_OFF at 汉台 with its receipt and in 雁塔's ledger exactly once;
/// no case is there twice; none is left QUEUED.
async fn crash_run(crashes: Crashes) -> CrashReport {
    let fed = federation(&[HANTAI, YANTA]).await;
    let pki = fed.pki();
    let a = NodeProcess::spawn(fed.config_path(HANTAI));
    let a_addr = a.serving();
    let b = NodeProcess::spawn(fed.config_path(YANTA));
    b.serving();

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let clerks: Vec<_> = ["wang", "li"]
        .into_iter()
        .map(|name| {
            let window = tongban_proto::window::v1::window_client::WindowClient::new(
                tongban_sandbox::channel(a_addr, &pki.issue(clerk(HANTAI, name))).unwrap(),
            );
            tokio::spawn(clerk_works(window, stop_rx.clone()))
        })
        .collect();
    let started = std::time::Instant::now();
    let crashes = std::sync::Arc::new(crashes);
    let kill_a = tokio::spawn({
        let (config, crashes) = (fed.config_path(HANTAI).to_owned(), crashes.clone());
        async move { killer(config, a, &crashes, started).await }
    });
    let kill_b = tokio::spawn({
        let (config, crashes) = (fed.config_path(YANTA).to_owned(), crashes.clone());
        async move { killer(config, b, &crashes, started).await }
    });
    let (a, kills_a) = kill_a.await.unwrap();
    let (b, kills_b) = kill_b.await.unwrap();
    let elapsed = started.elapsed();
    let _ = stop_tx.send(true);
    let mut acknowledged = BTreeSet::new();
    for clerk in clerks {
        acknowledged.extend(clerk.await.unwrap());
    }

    // Both nodes up: the outbox drains, or what is left is stuck.
    let mut window = tongban_proto::window::v1::window_client::WindowClient::new(
        channel(a_addr, &pki.issue(clerk(HANTAI, "wang"))).await,
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let queued = window
            .list_cases(ListCasesRequest {
                state: "QUEUED".into(),
                limit: 10_000,
                page_token: String::new(),
            })
            .await
            .map(|r| r.into_inner().cases.len());
        if matches!(queued, Ok(0)) || tokio::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(window);
    let (a, b) = tokio::task::spawn_blocking(move || (a.terminate(), b.terminate()))
        .await
        .unwrap();
    assert!(a.success() && b.success(), "clean exits: {a:?} {b:?}");

    let a_store = Store::open(fed.data_dir(HANTAI)).unwrap();
    assert!(a_store.verify().unwrap().is_ok(), "汉台's chain verifies");
    let mut handed_off = BTreeSet::new();
    let mut stuck = 0;
    for case in a_store.cases().unwrap() {
        match case.state {
            tongban_core::CaseState::HandedOff if case.handoffs.iter().all(|h| h.receipted()) => {
                handed_off.insert(case.application_id);
            }
            tongban_core::CaseState::Queued => stuck += 1,
            _ => {}
        }
    }
    let b_store = Store::open(fed.data_dir(YANTA)).unwrap();
    assert!(b_store.verify().unwrap().is_ok(), "雁塔's chain verifies");
    let mut received: BTreeMap<String, usize> = BTreeMap::new();
    for e in b_store.entries(1, u64::MAX).unwrap() {
        let entry = e.decode().unwrap();
        if entry.kind == "handoff.received" {
            *received.entry(entry.application_id).or_default() += 1;
        }
    }
    let lost = acknowledged
        .iter()
        .filter(|id| !handed_off.contains(*id) || !received.contains_key(*id))
        .count();
    let duplicated = received.values().filter(|n| **n > 1).count();
    // Every case 雁塔 received is one 汉台 holds a receipt for.
    assert!(
        received.keys().all(|id| handed_off.contains(id)) || stuck > 0,
        "雁塔 received a case 汉台 does not show handed off"
    );
    CrashReport {
        kills: (kills_a, kills_b),
        acknowledged: acknowledged.len(),
        lost,
        duplicated,
        stuck,
        elapsed,
    }
}

fn check(report: &CrashReport) {
    println!("crash run: {report}");
    assert!(
        report.acknowledged > 0,
        "the clerks got work done: {report}"
    );
    assert_eq!(
        (report.lost, report.duplicated, report.stuck),
        (0, 0, 0),
        "{report}"
    );
}

/// The short crash run of the default suite: ten SIGKILLs of each node
/// while two clerks work (a few seconds; the nodes stay up a little longer
/// than in the soak).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handoffs_survive_the_receiver_being_killed_repeatedly() {
    check(
        &crash_run(Crashes {
            kills: 10,
            budget: Duration::from_secs(15),
            // Long enough for a clerk's three calls on a loaded machine.
            up: 50..400,
        })
        .await,
    );
}

/// The crash soak (not in the default suite): `TONGBAN_SOAK_KILLS` kills of
/// each node (default 1000), for at most `TONGBAN_SOAK_SECS` (default
/// 1200). See docs/operations.md, "The crash soak".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long: run with --ignored, see docs/operations.md"]
async fn crash_soak() {
    let env = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .map(|v| {
                v.parse()
                    .unwrap_or_else(|_| panic!("{name}={v}: not a number"))
            })
            .unwrap_or(default)
    };
    check(
        &crash_run(Crashes {
            kills: env("TONGBAN_SOAK_KILLS", 1000) as usize,
            budget: Duration::from_secs(env("TONGBAN_SOAK_SECS", 1200)),
            up: 20..200,
        })
        .await,
    );
}

/// Runs `tongban certs ARGS`; returns (exit code, stdout + stderr).
fn certs(args: &[&str]) -> (i32, String) {
    let out = Command::new(BIN)
        .arg("certs")
        .args(args)
        .output()
        .expect("run tongban certs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn certs_are_issued_with_one_spiffe_id_and_bad_requests_are_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    assert_eq!(
        certs(&["create-ca", "--dir", d, "--trust-domain", "shaanxi.tongban",]).0,
        0
    );
    let (code, out) = certs(&[
        "create-node",
        "--dir",
        d,
        "--county",
        "610702",
        "--host",
        "127.0.0.1",
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("spiffe://shaanxi.tongban/county/610702/node"),
        "{out}"
    );
    assert_eq!(
        certs(&[
            "create-user",
            "--dir",
            d,
            "--county",
            "610702",
            "--role",
            "clerk",
            "--name",
            "wang"
        ])
        .0,
        0
    );
    assert_eq!(
        certs(&["create-auditor", "--dir", d, "--name", "zhao"]).0,
        0
    );
    assert_eq!(
        certs(&[
            "create-auditor",
            "--dir",
            d,
            "--name",
            "sun",
            "--county",
            "610702"
        ])
        .0,
        0
    );
    for file in [
        "ca.key",
        "node-610702.key",
        "clerk-610702-wang.key",
        "auditor-zhao.key",
        "auditor-610702-sun.key",
    ] {
        let mode = std::fs::metadata(dir.path().join(file))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{file}");
    }
    let pem = std::fs::read_to_string(dir.path().join("clerk-610702-wang.crt")).unwrap();
    let id = tongban_pki::Identity::from_cert_pem(&pem).expect("exactly one URI SAN");
    assert_eq!(
        id.to_string(),
        "spiffe://shaanxi.tongban/county/610702/clerk/wang"
    );

    for (args, expect) in [
        (
            vec![
                "create-node",
                "--dir",
                d,
                "--county",
                "61070",
                "--host",
                "x",
            ],
            "county code",
        ),
        (
            vec![
                "create-user",
                "--dir",
                d,
                "--county",
                "610702",
                "--role",
                "clerk",
                "--name",
                "wang li",
            ],
            "name",
        ),
        (
            vec![
                "create-node",
                "--dir",
                d,
                "--county",
                "610702",
                "--host",
                "x",
            ],
            "already exists",
        ),
        (
            vec![
                "create-node",
                "--dir",
                d,
                "--county",
                "610113",
                "--host",
                "x",
                "--days",
                "4000",
            ],
            "outlive the CA",
        ),
    ] {
        let (code, out) = certs(&args);
        assert_eq!(code, 1, "{args:?}: {out}");
        assert!(out.contains(expect), "{expect:?} in {out}");
    }
    let (code, _) = certs(&[
        "create-node",
        "--dir",
        d,
        "--county",
        "610702",
        "--host",
        "x",
        "--overwrite",
    ]);
    assert_eq!(code, 0, "--overwrite replaces");

    std::fs::set_permissions(
        dir.path().join("clerk-610702-wang.key"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    std::fs::remove_file(dir.path().join("auditor-zhao.key")).unwrap();
    let (code, out) = certs(&["list", "--dir", d]);
    assert_eq!(code, 1, "problems reported: {out}");
    assert!(out.contains("2 of 5 certificates"), "{out}");
    let line = |file: &str| {
        out.lines()
            .find(|l| l.starts_with(file))
            .unwrap_or_default()
            .to_owned()
    };
    assert!(
        line("clerk-610702-wang.crt").contains("key readable by others (mode 644)"),
        "{out}"
    );
    assert!(
        line("auditor-zhao.crt").contains("key file missing"),
        "{out}"
    );
    assert!(line("node-610702.crt").ends_with('-'), "no problems: {out}");
}

#[tokio::test]
async fn a_second_node_on_the_same_data_dir_exits_64_naming_the_first() {
    let fed = federation(&[HANTAI]).await;
    let first = NodeProcess::spawn(fed.config_path(HANTAI));
    first.serving();
    // The same config on another port: only the data dir is shared.
    let config = fed.root().join("second.toml");
    let text = std::fs::read_to_string(fed.config_path(HANTAI)).unwrap();
    std::fs::write(
        &config,
        text.replace(&fed.addr(HANTAI).to_string(), "127.0.0.1:0"),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["node", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let expected = format!(
        "data dir {} is in use by another tongban node (pid {})",
        fed.data_dir(HANTAI).display(),
        first.child.id()
    );
    assert!(stderr.contains(&expected), "{expected:?} in {stderr}");
    assert!(!stderr.contains("WouldBlock"), "{stderr}");
    // The first node is untouched and stops cleanly; then the dir is free.
    let status = tokio::task::spawn_blocking(move || first.terminate())
        .await
        .unwrap();
    assert!(status.success(), "{status:?}");
    let again = NodeProcess::spawn(&config);
    again.serving();
    again.kill();
}
