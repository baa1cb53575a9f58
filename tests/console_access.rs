//! Reaching `tongban console`: HTTPS with a dev certificate (checked by a
//! real TLS client against the dev CA), the refusal of a non-loopback
//! address without TLS, sessions ending by logout and by idle time (a short
//! configured limit, noticed by the console's own printout of a fresh login
//! URL rather than by a sleep), and the English switch in a real browser.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use fantoccini::Locator;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

use crate::console::{browser, click, fill, origin, profile, shot, until_text};
use crate::support::*;

const BIN: &str = env!("CARGO_BIN_EXE_tongban");
const DEADLINE: Duration = Duration::from_secs(30);

/// A console process and the URLs it prints, in order.
struct Console {
    _child: Child,
    urls: mpsc::UnboundedReceiver<String>,
}

impl Console {
    async fn start(profile: &Path, extra: &[&str]) -> Self {
        let mut child = Command::new(BIN)
            .args(["console", "--profile", profile.to_str().unwrap()])
            .args(["--listen", "127.0.0.1:0"])
            .args(extra)
            .env_remove("TONGBAN_PROFILE")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start tongban console");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let (tx, urls) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                if line.contains("/login?token=") {
                    let _ = tx.send(line.trim().to_owned());
                }
            }
        });
        Self {
            _child: child,
            urls,
        }
    }

    /// The next login URL it prints.
    async fn next_url(&mut self) -> String {
        tokio::time::timeout(DEADLINE, self.urls.recv())
            .await
            .expect("a login URL within the deadline")
            .expect("the console is running")
    }
}

/// One HTTP/1.1 exchange over `io`: the status, the headers (lowercase
/// names) and the body.
async fn exchange(
    mut io: impl AsyncRead + AsyncWrite + Unpin,
    request: &str,
) -> (u16, Vec<(String, String)>, String) {
    io.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    io.read_to_end(&mut raw).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers, body.to_owned())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// A request over HTTPS to the console at `url`'s origin, checking its
/// certificate against `ca_pem` for the name 127.0.0.1.
async fn https(
    url: &str,
    ca_pem: &str,
    method: &str,
    path: &str,
    cookie: &str,
    form: &str,
) -> (u16, Vec<(String, String)>, String) {
    let addr = url
        .trim_start_matches("https://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let tls = tongban_pki::tls::connect_server_only(addr.parse().unwrap(), ca_pem, "127.0.0.1")
        .await
        .expect("a TLS handshake the dev CA vouches for");
    let body = if form.is_empty() {
        String::new()
    } else {
        format!(
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
            form.len()
        )
    };
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\nConnection: close\r\n{}",
        if body.is_empty() { "\r\n" } else { &body }
    );
    exchange(tls, &request).await
}

/// `name=value` of the session cookie in a `Set-Cookie` header.
fn cookie_of(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_owned()
}

#[tokio::test]
async fn a_console_off_loopback_needs_tls() {
    let out = Command::new(BIN)
        .args(["console", "--profile", "/nonexistent/clerk.toml"])
        .args(["--listen", "0.0.0.0:0"])
        .env_remove("TONGBAN_PROFILE")
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    assert!(stderr.contains("--tls-cert"), "{stderr}");
    assert!(stderr.contains("--tls-key"), "{stderr}");
    assert!(stderr.contains("0.0.0.0:0"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_console_with_secure_cookies_logout_and_idle_expiry() {
    let cluster = Cluster::start().await;
    let clerk = profile(&cluster, HANTAI, "clerk", clerk(HANTAI, "wang"));
    // A dev certificate for the console's HTTPS, from the cluster's CA.
    let mut spec = Pki::spec(&[]);
    spec.server = true;
    let web = cluster.pki().leaf(spec);
    let dir = cluster.root();
    std::fs::write(dir.join("web.crt"), &web.cert_pem).unwrap();
    std::fs::write(dir.join("web.key"), &web.key_pem).unwrap();
    let (cert, key) = (dir.join("web.crt"), dir.join("web.key"));
    let tls_args = [
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ];
    let mut console = Console::start(&clerk, &tls_args).await;
    let url = console.next_url().await;
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let ca = web.ca_pem.as_str();
    let login = url.trim_start_matches(&origin(&url));

    // Sign in over HTTPS: the cookie is Secure.
    let (status, headers, _) = https(&url, ca, "GET", login, "", "").await;
    assert_eq!(status, 303);
    let set = header(&headers, "set-cookie").expect("a session cookie");
    assert!(set.contains("HttpOnly"), "{set}");
    assert!(set.contains("Secure"), "{set}");
    let cookie = cookie_of(set);
    let (status, headers, body) = https(&url, ca, "GET", "/", &cookie, "").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("本窗口案件"), "{body}");
    assert!(body.contains("id=\"logout\""), "{body}");
    let timing = header(&headers, "server-timing").expect("Server-Timing");
    assert!(timing.starts_with("app;dur="), "{timing}");
    // Plain HTTP on the HTTPS port gets no page.
    let addr = url
        .trim_start_matches("https://")
        .split('/')
        .next()
        .unwrap();
    let plain = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (status, _, _) = exchange(
        plain,
        &format!("GET / HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"),
    )
    .await;
    assert_ne!(status, 200);

    // Logout ends the session: its cookie gets the page saying so (401), and
    // the console prints a fresh URL that opens a new session.
    let (status, _, _) = https(&url, ca, "POST", "/logout", &cookie, "").await;
    assert_eq!(status, 303);
    let (status, _, body) = https(&url, ca, "GET", "/", &cookie, "").await;
    assert_eq!(status, 401);
    assert!(body.contains("已退出登录"), "{body}");
    let again = console.next_url().await;
    assert!(again.starts_with("https://"), "{again}");
    assert_ne!(again, url);
    let (status, headers, _) = https(
        &again,
        ca,
        "GET",
        again.trim_start_matches(&origin(&again)),
        "",
        "",
    )
    .await;
    assert_eq!(status, 303);
    assert!(header(&headers, "set-cookie").is_some());

    // A console whose sessions end after two idle seconds: the end shows as
    // the fresh URL it prints; a form sent with the old cookie is refused,
    // acts on nothing, and its text comes back on the page.
    let mut idle =
        Console::start(&clerk, &[&tls_args[..], &["--session-idle", "2s"]].concat()).await;
    let url = idle.next_url().await;
    let (_, headers, _) = https(
        &url,
        ca,
        "GET",
        url.trim_start_matches(&origin(&url)),
        "",
        "",
    )
    .await;
    let cookie = cookie_of(header(&headers, "set-cookie").unwrap());
    let (status, _, _) = https(&url, ca, "GET", "/", &cookie, "").await;
    assert_eq!(status, 200);
    let fresh = idle.next_url().await;
    assert_ne!(fresh, url);
    let (status, _, body) = https(
        &url,
        ca,
        "POST",
        "/case/610702-20261201-1/verify",
        &cookie,
        "request_id=r1&method=manual&note=%E5%BC%A0%E4%B8%89",
    )
    .await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("会话已过期"), "{body}");
    assert!(body.contains("data-reason=\"Idle\""), "{body}");
    assert!(body.contains("张三"), "the typed text comes back: {body}");
    assert!(!body.contains("r1"), "not the request id: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn english_switch_and_logout_in_a_browser() {
    let cluster = Cluster::start().await;
    let clerk = profile(&cluster, HANTAI, "clerk", clerk(HANTAI, "wang"));
    let mut console = Console::start(&clerk, &[]).await;
    let url = console.next_url().await;
    let (_driver, b) = browser().await;
    b.goto(&url).await.unwrap();
    until_text(&b, "h1", "本窗口案件", false).await;
    click(&b, "#lang-switch").await;
    until_text(&b, "h1", "Cases", false).await;
    let html = b.source().await.unwrap();
    assert!(html.contains("lang=\"en\""), "{html}");
    shot(&b, "30-clerk-list-en").await;
    // The choice sticks (a cookie) across pages.
    b.goto(&format!("{}/new", origin(&url))).await.unwrap();
    until_text(&b, "h1", "New application", false).await;
    fill(&b, "input[name=person_name]", "Zhang San").await;
    shot(&b, "31-clerk-form-en").await;
    click(&b, "#logout").await;
    until_text(&b, "h1", "Signed out", false).await;
    shot(&b, "32-signed-out-en").await;
    // Back in Chinese on the page that says so.
    click(&b, "#lang-switch").await;
    until_text(&b, "h1", "已退出登录", false).await;
    assert!(b.find(Locator::Css("#ended")).await.is_ok());
    let _ = console.next_url().await;
    b.close().await.unwrap();
}
