//! `tongban dev` as a newcomer runs it: the whole local federation in one
//! process, the sample case to CLOSED, a second run refused while the first
//! is up, and a clean stop on SIGTERM that leaves nothing behind.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_tongban");
/// The bound on every wait.
const WAIT: Duration = Duration::from_secs(60);

/// A running `tongban dev`, its stdout read line by line on a thread.
struct Dev {
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: std::thread::JoinHandle<String>,
    /// Every stdout line read so far.
    seen: Vec<String>,
}

impl Dev {
    fn spawn(dir: &Path, base_port: u16) -> Self {
        let mut child = Command::new(BIN)
            .arg("dev")
            .arg("--dir")
            .arg(dir)
            .args(["--base-port", &base_port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tongban dev");
        let stdout = child.stdout.take().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        Self {
            child,
            lines,
            stderr,
            seen: Vec::new(),
        }
    }

    /// Reads stdout until a line contains `marker`; `None` if stdout ended
    /// first (the process exited).
    fn until(&mut self, marker: &str) -> Option<()> {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let done = line.contains(marker);
                    self.seen.push(line);
                    if done {
                        return Some(());
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => return None,
                Err(mpsc::RecvTimeoutError::Timeout) => panic!(
                    "no {marker:?} from tongban dev within {WAIT:?}; so far:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// Waits for the exit (bounded) and returns the status and stderr.
    fn exit(mut self) -> (ExitStatus, String, Vec<String>) {
        let status = wait(&mut self.child);
        // stdout ends with the process: collect what is left.
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.seen.push(line);
        }
        let stderr = self.stderr.join().unwrap_or_default();
        (status, stderr, self.seen)
    }
}

/// Waits for a child, killing it after [`WAIT`].
fn wait(child: &mut Child) -> ExitStatus {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("tongban dev did not exit within {WAIT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs `tongban dev` to completion (bounded): status and stderr.
fn run_to_end(dir: &Path, base_port: u16) -> (ExitStatus, String) {
    let (status, stderr, _) = Dev::spawn(dir, base_port).exit();
    (status, stderr)
}

/// A port that was free a moment ago, with the next two below 65536.
fn some_port() -> u16 {
    loop {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().unwrap().port();
        if port < u16::MAX - 2 {
            return port;
        }
    }
}

/// Starts `tongban dev` and reads until it prints the commands to try by
/// hand, retrying on another port when one of its three is taken.
fn start(dir: &Path) -> (Dev, u16) {
    for _ in 0..5 {
        let port = some_port();
        let mut dev = Dev::spawn(dir, port);
        if dev.until("Press Ctrl-C").is_some() {
            return (dev, port);
        }
        let (status, stderr, seen) = dev.exit();
        assert!(
            stderr.contains("already in use"),
            "tongban dev exited ({status}) before it was ready:\n{}\n{stderr}",
            seen.join("\n")
        );
    }
    panic!("no free ports for tongban dev in five tries");
}

/// Kills the child if the test fails half way, so nothing is left running.
struct KillOnDrop(Option<Dev>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(dev) = &mut self.0 {
            let _ = dev.child.kill();
            let _ = dev.child.wait();
        }
    }
}

#[test]
fn dev_runs_a_sample_case_refuses_a_second_run_and_stops_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("federation");
    let (dev, port) = start(&dir);
    let mut guard = KillOnDrop(Some(dev));
    let dev = guard.0.as_mut().unwrap();
    let out = dev.seen.join("\n");

    // The sample case went from intake to CLOSED on both nodes.
    for expected in [
        "610702 汉台区 serving on",
        "610113 雁塔区 serving on",
        "611002 商州区 serving on",
        "clerk wang: applied",
        "HANDED_OFF",
        "reviewer li: approved",
        "delivered → CLOSED",
        "CLOSED too",
        "case.applied",
        "review.approved",
    ] {
        assert!(out.contains(expected), "{expected:?} missing in:\n{out}");
    }
    // The commands to try by hand, with the generated profiles.
    let profile = dir.join("profiles/clerk-610702.toml");
    assert!(
        out.contains(&format!("TONGBAN_PROFILE={}", profile.display())),
        "{out}"
    );
    assert!(
        out.contains("audit trace 610702-")
            && out.contains(&format!("--node https://127.0.0.1:{}", port + 1)),
        "{out}"
    );
    for file in [
        "federation.toml",
        "node-610702.toml",
        "node-610113.toml",
        "node-611002.toml",
        "certs/ca.crt",
        "certs/node-610113.crt",
        "certs/clerk-610702-wang.crt",
        "certs/clerk-611002-zhou.crt",
        "certs/reviewer-610113-li.crt",
        "certs/auditor-zhao.crt",
        "profiles/clerk-610702.toml",
        "profiles/clerk-611002.toml",
        "profiles/reviewer-610113.toml",
        "profiles/auditor.toml",
    ] {
        assert!(dir.join(file).exists(), "{file} was not written");
    }
    let lock = dir.join("dev.lock");
    let pid = dev.child.id();
    assert_eq!(
        std::fs::read_to_string(&lock).unwrap().trim(),
        pid.to_string()
    );

    // A second run on the same directory is refused, plainly.
    let (status, stderr) = run_to_end(&dir, port);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("another tongban dev (pid {pid}) is running in")),
        "{stderr}"
    );
    // So is one elsewhere on the same ports.
    let (status, stderr) = run_to_end(&tmp.path().join("other"), port);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("port {port} is already in use")),
        "{stderr}"
    );

    // SIGTERM stops every node and exits 0, taking the lock away.
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill -TERM");
    assert!(status.success());
    let dev = guard.0.take().unwrap();
    let (status, stderr, seen) = dev.exit();
    assert!(status.success(), "exit {status}: {stderr}");
    assert_eq!(seen.last().map(String::as_str), Some("stopped"), "{stderr}");
    // The file stays (see tongban_node::PidLock), but nothing holds it.
    tongban_node::PidLock::acquire(&dir, "dev.lock").expect("the lock is still held");
    // The ports are free again.
    for p in port..=port + 2 {
        std::net::TcpListener::bind(("127.0.0.1", p))
            .unwrap_or_else(|e| panic!("port {p} still taken after the stop: {e}"));
    }
}
