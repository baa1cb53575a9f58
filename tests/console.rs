//! The harness of the console's browser tests (`console_*` modules):
//! headless Chromium driven over WebDriver (chromedriver on a port it
//! picks, loopback only) against console processes for a clerk, a reviewer
//! and an auditor, each talking to an in-process cluster over real mutual
//! TLS, and the steps they share (sign in, fill, click, wait for a text,
//! apply through the form). A screenshot of every page goes to
//! `target/console-screenshots/`.
//!
//! The browser is a requirement, not an option: the test installs Debian's
//! `chromium`, `chromium-l10n`, `chromium-driver` and `fonts-noto-cjk` with
//! `scripts/install-browser.sh` when they are missing (root), and fails,
//! saying how to install them, when it cannot.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tongban_pki::Principal;

pub(crate) use crate::console_material::fetch;
pub(crate) use crate::console_shots::{shot, shots_dir};
use crate::support::*;

const BIN: &str = env!("CARGO_BIN_EXE_tongban");
/// How long any one wait in this test may take.
const DEADLINE: Duration = Duration::from_secs(30);

/// A profile for `principal` on `county`'s node, beside the cluster's
/// `federation.toml` (where the console finds it by itself).
pub(crate) fn profile(
    cluster: &Cluster,
    county: &str,
    name: &str,
    principal: Principal,
) -> PathBuf {
    let tls = cluster.pki().issue(principal);
    let dir = cluster.root();
    std::fs::write(dir.join(format!("{name}.crt")), &tls.cert_pem).unwrap();
    std::fs::write(dir.join(format!("{name}.key")), &tls.key_pem).unwrap();
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!(
            "node = \"https://{}\"\nca = \"certs/ca.crt\"\ncert = \"{name}.crt\"\nkey = \"{name}.key\"\n",
            cluster.addr(county)
        ),
    )
    .unwrap();
    path
}

/// A running process and the first line it printed.
pub(crate) struct Started {
    _child: Child,
    pub(crate) line: String,
}

/// Starts `program ARGS` and waits (up to the deadline) for a stdout line
/// that `wanted` accepts.
pub(crate) async fn start(program: &str, args: &[&str], wanted: fn(&str) -> bool) -> Started {
    try_start(program, args, wanted)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// [`start`], with a process that ends or stays silent as an error.
async fn try_start(
    program: &str,
    args: &[&str],
    wanted: fn(&str) -> bool,
) -> Result<Started, String> {
    let mut child = Command::new(program)
        .args(args)
        .env_remove("TONGBAN_PROFILE")
        // The browser's own words (a file input's 选择文件) in Chinese, as
        // on a clerk's desktop: Chromium on Linux takes its interface
        // language from the environment, not from `--lang`.
        .env("LANGUAGE", "zh_CN:zh")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start {program}: {e}. The console's browser test needs Debian's chromium, \
                 chromium-l10n, chromium-driver and fonts-noto-cjk: run scripts/install-browser.sh as root"
            )
        });
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(DEADLINE, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if wanted(&line) {
                return Ok(line);
            }
        }
        Err(format!(
            "{program} ended without printing the expected line"
        ))
    })
    .await
    .map_err(|_| format!("{program} printed nothing useful within {DEADLINE:?}"))??;
    // Keep draining so the process never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(Started {
        _child: child,
        line,
    })
}

/// `tongban console` for `profile`: its login URL.
pub(crate) async fn console(profile: &Path) -> (Started, String) {
    let started = start(
        BIN,
        &[
            "console",
            "--profile",
            profile.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ],
        |l| l.starts_with("http://127.0.0.1:"),
    )
    .await;
    let url = started.line.trim().to_owned();
    (started, url)
}

/// The origin of a login URL, `http://127.0.0.1:PORT`.
pub(crate) fn origin(url: &str) -> String {
    url.split("/login").next().unwrap().to_owned()
}

/// Installs the browser once per test run when it is missing (the
/// project's own script, so `cargo test --workspace` works on a fresh
/// machine as root); a failure fails the test, it never skips.
fn ensure_browser() {
    static INSTALLED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    let outcome = INSTALLED.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/install-browser.sh");
        let status = std::process::Command::new("bash")
            .arg(&script)
            .status()
            .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!(
                "{} failed ({status}): the console's browser test needs Debian's chromium, \
                 chromium-l10n, chromium-driver and fonts-noto-cjk",
                script.display()
            ))
        }
    });
    if let Err(e) = outcome {
        panic!("{e}");
    }
}

/// chromedriver on a port it picks, and a headless Chromium session.
pub(crate) async fn browser() -> (Started, Client) {
    tokio::task::spawn_blocking(ensure_browser)
        .await
        .expect("the browser check");
    // chromedriver picks its IPv4 port and then binds the same number on
    // IPv6; when another process holds that one, it exits (`bind() failed:
    // Address already in use`). Browser tests run in parallel, so it is
    // started again, up to three times, before the test fails.
    let mut tries = 0;
    let driver = loop {
        tries += 1;
        match try_start("chromedriver", &["--port=0"], |l| {
            l.contains("started successfully on port")
        })
        .await
        {
            Ok(driver) => break driver,
            Err(e) if tries < 3 => eprintln!("{e}; starting chromedriver again"),
            Err(e) => panic!("{e} (after {tries} tries)"),
        }
    };
    let port = driver
        .line
        .trim_end_matches('.')
        .rsplit(' ')
        .next()
        .unwrap()
        .to_owned();
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--lang=zh-CN", "--window-size=1280,1400", "--no-first-run"],
        }),
    );
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("open a headless Chromium session through chromedriver");
    (driver, client)
}

/// Waits until the element at `css` has text containing `want`, reloading
/// the page between looks when `reload` (the node changes the case on its
/// own time: handoffs, reports).
pub(crate) async fn until_text(b: &Client, css: &str, want: &str, reload: bool) -> String {
    let end = Instant::now() + DEADLINE;
    loop {
        if let Ok(e) = b.find(Locator::Css(css)).await {
            if let Ok(text) = e.text().await {
                if text.contains(want) {
                    return text;
                }
                if Instant::now() > end {
                    let error = match b.find(Locator::Css("#error")).await {
                        Ok(e) => e.text().await.unwrap_or_default(),
                        Err(_) => String::new(),
                    };
                    panic!("{css} shows {text:?}, not {want:?} (error on the page: {error:?})");
                }
            }
        } else if Instant::now() > end {
            panic!(
                "no {css} on {}: {}",
                b.current_url().await.unwrap(),
                b.source().await.unwrap()
            );
        }
        if reload {
            b.refresh().await.unwrap();
        } else {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The status code of `GET path` with no cookie.
pub(crate) async fn status_without_session(origin: &str, path: &str) -> u16 {
    let addr = origin.trim_start_matches("http://");
    status_for_host(addr, addr, path).await
}

/// The status code of `GET path` sent to `addr` naming `host`.
pub(crate) async fn status_for_host(addr: &str, host: &str, path: &str) -> u16 {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).await.unwrap();
    reply
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

pub(crate) async fn fill(b: &Client, css: &str, text: &str) {
    let e = b.find(Locator::Css(css)).await.unwrap();
    e.clear().await.unwrap();
    e.send_keys(text).await.unwrap();
}

pub(crate) async fn click(b: &Client, css: &str) {
    b.find(Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// On a case page: chooses `path` for the material `kind` in the attach
/// form, sends it, and waits until the materials table names `file_name`.
pub(crate) async fn attach_in_browser(b: &Client, kind: &str, path: &str, file_name: &str) {
    b.find(Locator::Css(&format!(
        "#attach input[name='material:{kind}']"
    )))
    .await
    .unwrap()
    .send_keys(path)
    .await
    .unwrap();
    click(b, "#attach button[type=submit]").await;
    until_text(b, "table.materials", file_name, false).await;
}

/// Applies through the clerk's form with every material of GT-0001,
/// verifies identity and accepts: the case number.
pub(crate) async fn apply_complete(b: &Client, clerk_origin: &str, files: &[String; 3]) -> String {
    b.goto(&format!("{clerk_origin}/new")).await.unwrap();
    fill(b, "input[name=person_name]", "李四").await;
    fill(b, "#person_id", PERSON_ID).await;
    fill(b, "input[name=phone]", "13812345678").await;
    fill(b, "input[name=address]", "陕西省汉中市汉台区北关街2号").await;
    let set = "fieldset[data-materials-for='GT-0001']";
    for (kind, path) in ["id-card", "application-form", "premises-proof"]
        .iter()
        .zip(files)
    {
        b.find(Locator::Css(&format!(
            "{set} input[name='material:{kind}']"
        )))
        .await
        .unwrap()
        .send_keys(path)
        .await
        .unwrap();
    }
    click(b, "#apply button[type=submit]").await;
    until_text(b, "#state", "CORRECTION_AT_WINDOW", false).await;
    let case_no = b
        .find(Locator::Css("#case-no"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    click(b, "#verify button[type=submit]").await;
    until_text(b, "#state", "READY_AT_WINDOW", false).await;
    click(b, "#accept button[type=submit]").await;
    until_text(b, "body", "受理回执", false).await;
    case_no
}

/// `POST path` of a multipart form with `fields`, as a browser without
/// the script sends it, with the browser's session cookie: (status, body).
pub(crate) async fn post_without_script(
    b: &Client,
    origin: &str,
    path: &str,
    fields: &[(&str, &str)],
) -> (u16, String) {
    let cookie = b
        .get_all_cookies()
        .await
        .unwrap()
        .iter()
        .filter(|c| c.name().starts_with("tongban_console"))
        .map(|c| format!("{}={}", c.name(), c.value()))
        .collect::<Vec<_>>()
        .join("; ");
    assert!(!cookie.is_empty(), "the browser holds a session");
    let boundary = "tongban-test-boundary";
    let mut body = String::new();
    for (name, value) in fields {
        body.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
        ));
    }
    body.push_str(&format!("--{boundary}--\r\n"));
    let addr = origin.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(
        format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\nContent-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).await.unwrap();
    let status = reply
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = reply
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    (status, body)
}
