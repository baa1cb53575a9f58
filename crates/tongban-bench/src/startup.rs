//! The real `tongban node` process, measured from outside: spawned on a
//! data dir, timed until its gRPC health answers SERVING over mutual TLS
//! (a call a partner could make), and its resident memory read from
//! `/proc/PID/status` at that moment and after it has idled.
//!
//! Not here: what is in the data dir (`ledger.rs` fills it).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tongban_pki::tls::TlsMaterial;
use tongban_sandbox::Passed;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::{Options, Report};

/// Where the `tongban` binary is expected: [`Options::tongban_bin`], or
/// next to this executable.
pub(crate) fn binary_path(opts: &Options) -> Option<PathBuf> {
    match &opts.tongban_bin {
        Some(p) => Some(p.clone()),
        None => Some(
            std::env::current_exe()
                .ok()?
                .parent()?
                .join(format!("tongban{}", std::env::consts::EXE_SUFFIX)),
        ),
    }
}

/// The `tongban` binary next to this executable (building it if missing).
pub(crate) fn tongban_binary(opts: &Options, report: &mut Report) -> Option<PathBuf> {
    let path = binary_path(opts)?;
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

/// Resident memory of a process, from `/proc/PID/status`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Memory {
    /// `VmRSS`: resident now (MiB).
    pub(crate) rss: f64,
    /// `VmHWM`: the most it was ever resident (MiB).
    pub(crate) hwm: f64,
}

impl Memory {
    pub(crate) fn of(pid: u32) -> anyhow::Result<Self> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let field = |name: &str| -> anyhow::Result<f64> {
            let kib: f64 = status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .ok_or_else(|| anyhow::anyhow!("no {name} in /proc/{pid}/status"))?
                .parse()?;
            Ok(kib / 1024.0)
        };
        Ok(Self {
            rss: field("VmRSS:")?,
            hwm: field("VmHWM:")?,
        })
    }
}

/// A running `tongban node` process.
pub(crate) struct Node {
    child: Child,
    pid: u32,
    /// Its log so far (JSON lines), for an error message.
    log: Arc<Mutex<Vec<String>>>,
}

impl Node {
    /// Spawns `tongban node --config CONFIG`, passed the sockets `passed`
    /// of the node at `addr` (held by the sandbox), and waits until its
    /// gRPC health answers SERVING to a caller presenting `tls`; the node
    /// and the time from spawn to that answer.
    pub(crate) async fn start(
        bin: &Path,
        config: &Path,
        (addr, passed): (std::net::SocketAddr, &Passed),
        tls: &TlsMaterial,
        limit: Duration,
    ) -> anyhow::Result<(Self, Duration)> {
        let started = Instant::now();
        let mut command = Command::new(bin);
        passed.pass_to(command.as_std_mut())?;
        let mut child = command
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
        let pid = child
            .id()
            .ok_or_else(|| anyhow::anyhow!("tongban node exited at once"))?;
        let log = Arc::new(Mutex::new(Vec::new()));
        {
            // Read its log all along, so that it never blocks on a full pipe.
            let mut lines = BufReader::new(child.stderr.take().expect("piped")).lines();
            let log = log.clone();
            tokio::spawn(async move {
                while let Ok(Some(line)) = lines.next_line().await {
                    log.lock().unwrap_or_else(|p| p.into_inner()).push(line);
                }
            });
        }
        drop(command);
        let mut node = Self { child, pid, log };
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            // The port is held, so a connection waits for the node to
            // accept it: a node that exits first must end the wait.
            let serving = tokio::select! {
                status = node.child.wait() => {
                    let status = status?;
                    anyhow::bail!("tongban node exited ({status}); its log: {}", node.log());
                }
                () = tokio::time::sleep_until(deadline) => None,
                serving = serving(addr, tls) => Some(serving),
            };
            match serving {
                Some(true) => return Ok((node, started.elapsed())),
                Some(false) => {}
                None => anyhow::bail!(
                    "tongban node not SERVING within {limit:?}; its log: {}",
                    node.log()
                ),
            }
            // Not serving yet (its health not yet SERVING): ask again.
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    fn log(&self) -> String {
        self.log
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .join("\n")
    }

    /// Its process id.
    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// Its resident memory now.
    pub(crate) fn memory(&self) -> anyhow::Result<Memory> {
        Memory::of(self.pid)
    }

    /// The CPU it used so far, user + system (ms): steadier than its wall
    /// time on a loaded machine.
    pub(crate) fn cpu_ms(&self) -> anyhow::Result<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid))?;
        // The fields after the command name, which ends at the last ')':
        // utime and stime are the 14th and 15th of the line.
        let rest = stat
            .rsplit_once(')')
            .map(|(_, r)| r)
            .ok_or_else(|| anyhow::anyhow!("unreadable /proc/{}/stat", self.pid))?;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| -> anyhow::Result<f64> {
            Ok(fields
                .get(i)
                .ok_or_else(|| anyhow::anyhow!("short /proc/{}/stat", self.pid))?
                .parse::<f64>()?)
        };
        // In clock ticks of USER_HZ, 100 per second on Linux.
        Ok((ticks(11)? + ticks(12)?) * 10.0)
    }

    /// Leaves it alone for `idle`; its memory then (`rss` as at the end,
    /// `hwm` the peak since it started).
    pub(crate) async fn idle(&self, idle: Duration) -> anyhow::Result<Memory> {
        tokio::time::sleep(idle).await;
        self.memory()
    }

    /// SIGTERM, then waits for it to exit (kills it after 15 s).
    pub(crate) async fn terminate(mut self) -> anyhow::Result<String> {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        match tokio::time::timeout(Duration::from_secs(15), self.child.wait()).await {
            Ok(status) => Ok(format!("exited after SIGTERM: {}", status?)),
            Err(_) => {
                self.child.kill().await?;
                Ok("did not stop within 15 s of SIGTERM; killed".into())
            }
        }
    }
}

/// Whether the node at `addr` answers its overall health as SERVING.
async fn serving(addr: std::net::SocketAddr, tls: &TlsMaterial) -> bool {
    let Ok(channel) = tongban_sandbox::connect(addr, tls).await else {
        return false;
    };
    HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .is_ok_and(|r| r.into_inner().status == ServingStatus::Serving as i32)
}

/// A copy of the node config `config` with its data dir changed to
/// `data_dir` (relative to the config's directory), written beside it.
pub(crate) fn config_with_data_dir(config: &Path, data_dir: &str) -> anyhow::Result<PathBuf> {
    let text = std::fs::read_to_string(config)?;
    let mut found = false;
    let changed: Vec<String> = text
        .lines()
        .map(|l| {
            if l.starts_with("data_dir = ") {
                found = true;
                format!("data_dir = \"{data_dir}\"")
            } else {
                l.to_owned()
            }
        })
        .collect();
    anyhow::ensure!(found, "no data_dir line in {}", config.display());
    let path = config.with_file_name(format!(
        "{}-{}.toml",
        config
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("node"),
        data_dir.replace('/', "-")
    ));
    std::fs::write(&path, changed.join("\n") + "\n")?;
    Ok(path)
}
