//! The real `tongban` binary as processes: start, health, SIGTERM; a bad
//! config's exit code; the directory and certificate commands; a second
//! node on one data dir. The crash test is in `crash`.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use tongban_sandbox::Passed;
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
pub(crate) struct NodeProcess {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl NodeProcess {
    /// `tongban node --config CONFIG`, passed `sockets` (the ones the
    /// sandbox holds for the config's addresses) or binding its own.
    pub(crate) fn spawn(config: &Path, sockets: Option<&Passed>) -> Self {
        let mut command = Command::new(node_bin());
        if let Some(sockets) = sockets {
            sockets.pass_to(&mut command).expect("pass the sockets");
        }
        let mut child = command
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
    pub(crate) fn serving(&self) -> SocketAddr {
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

    pub(crate) fn terminate(mut self) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill -TERM");
        assert!(status.success());
        self.child.wait().expect("wait")
    }

    pub(crate) fn kill(mut self) {
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

/// The sandbox's layout for `counties` with their sockets handed over: the
/// nodes run as processes of their own, each passed its sockets (still
/// held by the sandbox, so a restart gets them back and no other program
/// can take a port meanwhile: `Sandbox::sockets`).
pub(crate) async fn federation(counties: &[&str]) -> Sandbox {
    let mut sandbox = tongban_sandbox::Builder::new()
        .temp_prefix("tongban-process-")
        .counties(counties)
        .node_config("[delivery]\ninitial_backoff_ms = 20\nmax_backoff_ms = 300\nbatch_size = 16\n")
        .build()
        .expect("lay out the federation");
    for code in counties {
        sandbox
            .hand_over(code)
            .await
            .expect("hand over the sockets");
    }
    sandbox
}

#[tokio::test]
async fn the_node_binary_serves_health_and_exits_cleanly_on_sigterm() {
    let fed = federation(&[HANTAI]).await;
    let pki = fed.pki();
    let node = NodeProcess::spawn(fed.config_path(HANTAI), Some(&fed.sockets(HANTAI).unwrap()));
    let addr = node.serving();
    assert_eq!(addr, fed.addr(HANTAI), "served on the socket it was passed");
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
    let first = NodeProcess::spawn(fed.config_path(HANTAI), Some(&fed.sockets(HANTAI).unwrap()));
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
    let again = NodeProcess::spawn(&config, None);
    again.serving();
    again.kill();
}

#[tokio::test]
async fn a_passed_socket_the_config_does_not_name_exits_64() {
    let fed = federation(&[HANTAI]).await;
    // The config listens elsewhere than the socket passed for it.
    let config = fed.root().join("elsewhere.toml");
    let text = std::fs::read_to_string(fed.config_path(HANTAI)).unwrap();
    std::fs::write(
        &config,
        text.replace(&fed.addr(HANTAI).to_string(), "127.0.0.1:0"),
    )
    .unwrap();
    let mut command = Command::new(BIN);
    fed.sockets(HANTAI)
        .unwrap()
        .pass_to(&mut command)
        .expect("pass the sockets");
    let out = command
        .args(["node", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let expected = format!(
        "LISTEN_FDS: a socket bound to {} was passed",
        fed.addr(HANTAI)
    );
    assert!(stderr.contains(&expected), "{expected:?} in {stderr}");
}
