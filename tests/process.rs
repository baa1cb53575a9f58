//! The real `tongban` binary as processes: start, health, SIGTERM; a bad
//! config's exit code; and the crash test — a partner node killed with
//! SIGKILL again and again while handoffs stream to it.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
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

/// A `tongban node` process whose JSON log is read on a thread.
struct NodeProcess {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl NodeProcess {
    fn spawn(config: &Path) -> Self {
        let mut child = Command::new(BIN)
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
    fn serving(&self) -> SocketAddr {
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(30))
                .expect("node logs that it is serving");
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

/// Writes certificates, the example directory (with `ports`) and one config
/// per county into `dir`.
fn write_federation(
    dir: &Path,
    pki: &Pki,
    listen: &BTreeMap<&str, String>,
) -> BTreeMap<String, PathBuf> {
    let mut directory = include_str!("../examples/federation.toml").to_owned();
    for (code, port) in [(HANTAI, "7001"), (YANTA, "7002"), (SHANGZHOU, "7003")] {
        if let Some(addr) = listen.get(code) {
            directory = directory.replace(
                &format!("https://127.0.0.1:{port}"),
                &format!("https://{addr}"),
            );
        }
    }
    std::fs::write(dir.join("federation.toml"), directory).unwrap();
    std::fs::write(dir.join("ca.crt"), pki.ca.cert_pem()).unwrap();
    let mut configs = BTreeMap::new();
    for (code, addr) in listen {
        let tls = pki.issue(node(code));
        std::fs::write(dir.join(format!("node-{code}.crt")), &tls.cert_pem).unwrap();
        std::fs::write(dir.join(format!("node-{code}.key")), &tls.key_pem).unwrap();
        let path = dir.join(format!("node-{code}.toml"));
        std::fs::write(
            &path,
            format!(
                "county = \"{code}\"\nlisten = \"{addr}\"\ndata_dir = \"data-{code}\"\ndirectory = \"federation.toml\"\n\
                 [tls]\nca = \"ca.crt\"\ncert = \"node-{code}.crt\"\nkey = \"node-{code}.key\"\n\
                 [delivery]\ninitial_backoff_ms = 20\nmax_backoff_ms = 300\nbatch_size = 16\n"
            ),
        )
        .unwrap();
        configs.insert(code.to_string(), path);
    }
    configs
}

#[tokio::test]
async fn the_node_binary_serves_health_and_exits_cleanly_on_sigterm() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let configs = write_federation(
        dir.path(),
        &pki,
        &BTreeMap::from([(HANTAI, "127.0.0.1:0".to_owned())]),
    );
    let node = NodeProcess::spawn(&configs[HANTAI]);
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

/// A free loopback port (bound and released; the node binds it again).
fn free_port() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

/// Handoffs streaming from 汉台 to 雁塔 while 雁塔's process is killed with
/// SIGKILL at random moments and restarted. At the end every case 汉台
/// holds a receipt for is in 雁塔's ledger exactly once, and every accepted
/// case is HANDED_OFF. `TONGBAN_CRASH_CASES` and `TONGBAN_CRASH_KILLS` make
/// it longer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handoffs_survive_the_receiver_being_killed_repeatedly() {
    let cases: usize = std::env::var("TONGBAN_CRASH_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let kills: usize = std::env::var("TONGBAN_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let listen = BTreeMap::from([(HANTAI, free_port()), (YANTA, free_port())]);
    let configs = write_federation(dir.path(), &pki, &listen);
    let a = NodeProcess::spawn(&configs[HANTAI]);
    let a_addr = a.serving();
    let b = NodeProcess::spawn(&configs[YANTA]);
    b.serving();

    // The killer: SIGKILL 雁塔 at random moments, restart it each time.
    let b_config = configs[YANTA].clone();
    let killer = tokio::spawn(async move {
        let mut b = b;
        for _ in 0..kills {
            tokio::time::sleep(Duration::from_millis(fastrand::u64(30..250))).await;
            b.kill();
            tokio::time::sleep(Duration::from_millis(fastrand::u64(0..100))).await;
            b = tokio::task::spawn_blocking({
                let config = b_config.clone();
                move || {
                    let node = NodeProcess::spawn(&config);
                    node.serving();
                    node
                }
            })
            .await
            .unwrap();
        }
        b
    });

    let mut window = tongban_proto::window::v1::window_client::WindowClient::new(
        channel(a_addr, &pki.issue(clerk(HANTAI, "wang"))).await,
    );
    let mut accepted = BTreeSet::new();
    for _ in 0..cases {
        accepted.insert(accepted_case(&mut window, YANTA).await.application_id);
    }
    let b = killer.await.unwrap();

    eventually("every accepted case to be HANDED_OFF", || {
        let mut w = window.clone();
        async move {
            let queued = w
                .list_cases(ListCasesRequest {
                    state: "QUEUED".into(),
                    limit: 10_000,
                })
                .await
                .ok()?
                .into_inner();
            queued.cases.is_empty().then_some(())
        }
    })
    .await;
    drop(window);
    let (a, b) = tokio::task::spawn_blocking(move || (a.terminate(), b.terminate()))
        .await
        .unwrap();
    assert!(a.success() && b.success(), "clean exits: {a:?} {b:?}");

    // 汉台: every accepted case is HANDED_OFF with the receipt stored.
    let a_store = Store::open(&dir.path().join(format!("data-{HANTAI}"))).unwrap();
    let mut receipted = BTreeSet::new();
    for case in a_store.cases().unwrap() {
        assert_eq!(
            case.state,
            tongban_core::CaseState::HandedOff,
            "{}",
            case.case_no
        );
        assert!(
            case.handoffs.iter().all(|h| h.receipted()),
            "{}",
            case.case_no
        );
        receipted.insert(case.application_id);
    }
    assert_eq!(receipted, accepted);
    assert!(a_store.verify().unwrap().is_ok(), "汉台's chain verifies");

    // 雁塔: each receipted case received exactly once.
    let b_store = Store::open(&dir.path().join(format!("data-{YANTA}"))).unwrap();
    let mut received: BTreeMap<String, usize> = BTreeMap::new();
    for e in b_store.entries(1, u64::MAX).unwrap() {
        let entry = e.decode().unwrap();
        if entry.kind == "handoff.received" {
            *received.entry(entry.application_id).or_default() += 1;
        }
    }
    for id in &receipted {
        assert_eq!(
            received.get(id),
            Some(&1),
            "case {id} in 雁塔's ledger exactly once"
        );
    }
    assert_eq!(received.len(), receipted.len());
    assert!(b_store.verify().unwrap().is_ok(), "雁塔's chain verifies");
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
    let der = {
        use rustls::pki_types::pem::PemObject;
        let pem = std::fs::read(dir.path().join("clerk-610702-wang.crt")).unwrap();
        rustls::pki_types::CertificateDer::from_pem_slice(&pem).unwrap()
    };
    let id = tongban_pki::Identity::from_cert_der(der.as_ref()).expect("exactly one URI SAN");
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
