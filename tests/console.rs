//! `tongban console` in a real browser: headless Chromium driven over
//! WebDriver (chromedriver on a port it picks, loopback only) against
//! console processes for a clerk, a reviewer and an auditor, each talking
//! to an in-process cluster over real mutual TLS. A screenshot of every
//! page goes to `target/console-screenshots/`.
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clerk_reviewer_and_auditor_in_a_browser() {
    let cluster = Cluster::start().await;
    let files = tempfile::tempdir().unwrap();
    let file = |name: &str, data: &[u8]| {
        let p = files.path().join(name);
        std::fs::write(&p, data).unwrap();
        p.to_str().unwrap().to_owned()
    };
    let id_card = file("id-card.jpg", &b"scan of the id card".repeat(100));
    let form = file("application-form.pdf", b"signed application form");
    let lease = file("lease.pdf", b"lease contract");
    let result = file("licence.pdf", b"the licence document");

    let clerk = profile(&cluster, HANTAI, "clerk", clerk(HANTAI, "wang"));
    let reviewer = profile(&cluster, YANTA, "reviewer", reviewer(YANTA, "li"));
    let auditor = profile(
        &cluster,
        HANTAI,
        "auditor",
        Principal::Auditor {
            county: None,
            name: "zhao".into(),
        },
    );
    let ((_c, clerk_url), (_r, reviewer_url), (_a, auditor_url)) =
        tokio::join!(console(&clerk), console(&reviewer), console(&auditor));
    let (_driver, b) = browser().await;

    // No session: every page is refused; the token opens one session once.
    let clerk_origin = origin(&clerk_url);
    assert_eq!(status_without_session(&clerk_origin, "/").await, 401);
    assert_eq!(status_without_session(&clerk_origin, "/new").await, 401);
    assert_eq!(
        status_without_session(&clerk_origin, "/case/610702-20261201-1").await,
        401
    );
    assert_eq!(
        status_without_session(&clerk_origin, "/assets/console.css").await,
        200
    );
    // A page under another name (DNS rebinding) cannot even log in.
    let clerk_addr = clerk_origin.trim_start_matches("http://");
    let token_path = clerk_url.trim_start_matches(&clerk_origin);
    let rebound = format!("evil.example:{}", clerk_addr.rsplit(':').next().unwrap());
    assert_eq!(status_for_host(clerk_addr, &rebound, token_path).await, 403);
    b.goto(&format!("{clerk_origin}/")).await.unwrap();
    until_text(&b, "h1", "未登录", false).await;
    shot(&b, "00-refused").await;
    b.goto(&clerk_url).await.unwrap();
    until_text(&b, "h1", "本窗口案件", false).await;
    assert_eq!(
        status_without_session(&clerk_origin, token_path).await,
        403,
        "the token is good once"
    );
    shot(&b, "01-clerk-empty-list").await;

    // A wrong check character is shown at its field, and nothing is stored.
    b.goto(&format!("{clerk_origin}/new")).await.unwrap();
    fill(&b, "input[name=person_name]", "张三").await;
    // The upload's progress bar shows only once something uploads.
    assert!(
        !b.find(Locator::Css("#apply progress"))
            .await
            .unwrap()
            .is_displayed()
            .await
            .unwrap(),
        "no empty progress bar before an upload"
    );
    fill(&b, "#person_id", "110105194912310021").await;
    let problem = until_text(&b, "#person_id-error", "校验码", false).await;
    assert!(problem.contains('X'), "{problem}");
    fill(&b, "input[name=phone]", "13812345678").await;
    fill(&b, "input[name=address]", "陕西省汉中市汉台区北关街1号").await;
    shot(&b, "02-clerk-form-wrong-id").await;
    click(&b, "#apply button[type=submit]").await;
    assert!(
        b.current_url().await.unwrap().path().ends_with("/new"),
        "the script keeps the form"
    );
    // Past the script (form.submit() skips it), the node checks again: its
    // refusal is worded in Chinese at the field from its reason code, and
    // the form comes back as typed.
    b.execute("document.getElementById('apply').submit()", vec![])
        .await
        .unwrap();
    // Said once, at the field; the top says only that the form was not
    // accepted and links there (a plain anchor, for a browser without the
    // script too).
    let top = until_text(&b, "#error", "申请未被受理", false).await;
    assert_eq!(top, "申请未被受理：请修改公民身份号码后重新提交。");
    let at_field = until_text(&b, "#person_id-error", "应为 X", false).await;
    assert!(at_field.contains("填的是 1"), "{at_field}");
    let shown = b
        .find(Locator::Css("main"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !shown.contains("check character") && !shown.contains("person id"),
        "no English of the node's on the Chinese page: {shown}"
    );
    assert_eq!(shown.matches("校验码不对").count(), 1, "once: {shown}");
    click(&b, "#error a[href='#person_id-error']").await;
    assert_eq!(
        b.current_url().await.unwrap().fragment(),
        Some("person_id-error")
    );
    let kept = b
        .find(Locator::Css("input[name=person_name]"))
        .await
        .unwrap();
    assert_eq!(kept.prop("value").await.unwrap().as_deref(), Some("张三"));
    let kept = b.find(Locator::Css("input[name=address]")).await.unwrap();
    assert_eq!(
        kept.prop("value").await.unwrap().as_deref(),
        Some("陕西省汉中市汉台区北关街1号")
    );
    shot(&b, "02b-clerk-form-refused").await;
    b.goto(&format!("{clerk_origin}/")).await.unwrap();
    until_text(&b, "#no-cases", "没有案件", false).await;

    // The form leaving a material out: the correction notice names it.
    b.goto(&format!("{clerk_origin}/new")).await.unwrap();
    fill(&b, "input[name=person_name]", "张三").await;
    fill(&b, "#person_id", PERSON_ID).await;
    fill(&b, "input[name=phone]", "13812345678").await;
    fill(&b, "input[name=address]", "陕西省汉中市汉台区北关街1号").await;
    assert_eq!(
        b.find(Locator::Css("#person_id-error"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        ""
    );
    let set = "fieldset[data-materials-for='GT-0001']";
    b.find(Locator::Css(&format!(
        "{set} input[name='material:id-card']"
    )))
    .await
    .unwrap()
    .send_keys(&id_card)
    .await
    .unwrap();
    b.find(Locator::Css(&format!(
        "{set} input[name='material:application-form']"
    )))
    .await
    .unwrap()
    .send_keys(&form)
    .await
    .unwrap();
    shot(&b, "03-clerk-form").await;
    click(&b, "#apply button[type=submit]").await;
    until_text(&b, "#missing", "premises-proof", false).await;
    let case_no = b
        .find(Locator::Css("#case-no"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    until_text(&b, "#state", "CORRECTION_AT_WINDOW", false).await;
    shot(&b, "04-clerk-case-missing").await;
    b.goto(&format!("{clerk_origin}/case/{case_no}/notice/correction"))
        .await
        .unwrap();
    until_text(&b, "body", "补正材料通知书", false).await;
    shot(&b, "05-correction-notice").await;

    // Attach it, verify identity, accept: the intake receipt.
    b.goto(&format!("{clerk_origin}/case/{case_no}"))
        .await
        .unwrap();
    b.find(Locator::Css(
        "#attach input[name='material:premises-proof']",
    ))
    .await
    .unwrap()
    .send_keys(&lease)
    .await
    .unwrap();
    click(&b, "#attach button[type=submit]").await;
    until_text(&b, "table.materials", "lease.pdf", false).await;
    assert!(b.find(Locator::Css("#missing")).await.is_err());
    click(&b, "#verify button[type=submit]").await;
    until_text(&b, "#state", "READY_AT_WINDOW", false).await;
    shot(&b, "06-clerk-case-ready").await;
    click(&b, "#accept button[type=submit]").await;
    until_text(&b, "body", "受理回执", false).await;
    assert!(b.source().await.unwrap().contains(&case_no));
    shot(&b, "07-intake-receipt").await;
    // The receipt is the notice page `tongban notice` writes; the console
    // puts a way back to the case above it (the clerk lands here).
    click(&b, "#console-bar #back").await;
    until_text(&b, "#case-no", &case_no, false).await;
    assert!(
        b.current_url()
            .await
            .unwrap()
            .path()
            .ends_with(&format!("/case/{case_no}")),
        "the receipt's bar leads back to the case"
    );
    // The identity check is named as the clerk chose it, not by its code.
    let facts = until_text(&b, "table.facts", "身份证读卡器", false).await;
    assert!(!facts.contains("id-card-reader"), "{facts}");

    // The reviewer accepts and approves with a result file.
    b.goto(&reviewer_url).await.unwrap();
    until_text(&b, "main", &case_no, true).await;
    shot(&b, "08-reviewer-inbox").await;
    b.goto(&format!("{}/case/{case_no}", origin(&reviewer_url)))
        .await
        .unwrap();
    until_text(&b, "#state", "HANDED_OFF", true).await;
    click(&b, "#accept button[type=submit]").await;
    until_text(&b, "#state", "UNDER_REVIEW", false).await;
    shot(&b, "09-reviewer-case").await;
    b.find(Locator::Css("#approve input[name=result]"))
        .await
        .unwrap()
        .send_keys(&result)
        .await
        .unwrap();
    fill(&b, "#approve input[name=licence_no]", "610113600012345").await;
    click(&b, "#approve button[type=submit]").await;
    // The node refuses before the paper originals are in, with a reason
    // code: the page words it in Chinese, naming the step to take.
    let refused = until_text(&b, "#error", "纸质原件", false).await;
    assert!(refused.starts_with("节点拒绝："), "{refused}");
    assert!(refused.contains("纸质原件已收到"), "{refused}");
    assert!(!refused.contains("paper originals"), "{refused}");
    shot(&b, "10-reviewer-refused").await;
    click(&b, "#paper button[type=submit]").await;
    until_text(&b, "table.facts", "纸质原件", false).await;
    b.find(Locator::Css("#approve input[name=result]"))
        .await
        .unwrap()
        .send_keys(&result)
        .await
        .unwrap();
    fill(&b, "#approve input[name=licence_no]", "610113600012345").await;
    click(&b, "#approve button[type=submit]").await;
    until_text(&b, "#state", "APPROVED", false).await;
    shot(&b, "11-reviewer-approved").await;

    // The clerk sees APPROVED once the home node's report arrives.
    b.goto(&format!("{clerk_origin}/case/{case_no}"))
        .await
        .unwrap();
    until_text(&b, "#state", "APPROVED", true).await;
    // Decided: the clock stopped, so no count of days left to a due date,
    // but the days that were left then, as the node froze them.
    let mut window = cluster.window(HANTAI).await;
    let approved = window_state(&mut window, &case_no, "APPROVED").await;
    let frozen = format!("已决定（剩余 {} 个工作日时）", approved.working_days_left);
    let facts = until_text(&b, "table.facts", &frozen, false).await;
    assert!(!facts.contains("剩 "), "{facts}");
    // The history in Chinese, worded from each entry's payload; the
    // node's English details only on the English page.
    let history = until_text(&b, "table.history", "窗口受理", false).await;
    for words in [
        "收件：",
        "申请人身份核验：身份证读卡器",
        "收到雁塔区（610113）签名的接收回执",
    ] {
        assert!(history.contains(words), "{words:?} in {history}");
    }
    for english in ["applied for", "accepted at the window", "receipt from"] {
        assert!(!history.contains(english), "{english:?} in {history}");
    }
    shot(&b, "12-clerk-approved").await;
    click(&b, "#lang-switch").await;
    let history = until_text(&b, "table.history", "accepted at the window", false).await;
    assert!(!history.contains("窗口受理"), "{history}");
    shot(&b, "12b-clerk-approved-en").await;
    click(&b, "#lang-switch").await;
    until_text(&b, "table.history", "窗口受理", false).await;
    b.goto(&format!("{clerk_origin}/?state=APPROVED"))
        .await
        .unwrap();
    until_text(&b, "table.cases", &case_no, false).await;
    shot(&b, "13-clerk-list-approved").await;

    // The auditor traces it across both nodes: the `audit trace --html` page.
    b.goto(&auditor_url).await.unwrap();
    fill(&b, "#find input[name=case]", &case_no).await;
    shot(&b, "14-auditor-find").await;
    click(&b, "#find button[type=submit]").await;
    let page = until_text(&b, "body", "汉台区", false).await;
    assert!(page.contains("雁塔区"), "{page}");
    assert!(page.contains("VERIFIED"), "{page}");
    shot(&b, "15-auditor-trace").await;

    // And downloads the evidence bundle: the file `audit export` writes,
    // which `audit verify-bundle` checks offline.
    b.goto(&format!("{}/", origin(&auditor_url))).await.unwrap();
    until_text(&b, "#find", "下载证据包", false).await;
    let bundle = fetch(&b, &format!("/bundle?case={case_no}")).await;
    assert_eq!(bundle.status, 200);
    assert_eq!(bundle.content_type, "application/json");
    assert_eq!(
        bundle.disposition,
        format!("attachment; filename=\"evidence-{case_no}.json\"")
    );
    let path = std::env::temp_dir().join(format!("evidence-{case_no}-{}.json", std::process::id()));
    std::fs::write(&path, &bundle.bytes).unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&bundle.bytes).expect("a JSON bundle");
    assert_eq!(doc["case_no"], case_no.as_str());
    assert_eq!(doc["nodes"].as_array().map(|n| n.len()), Some(2));
    let checked = Command::new(BIN)
        .args([
            "audit",
            "verify-bundle",
            path.to_str().unwrap(),
            "--profile",
        ])
        .arg(&auditor)
        .env_remove("TONGBAN_PROFILE")
        .output()
        .await
        .unwrap();
    let _ = std::fs::remove_file(&path);
    let said = String::from_utf8_lossy(&checked.stdout);
    assert!(
        checked.status.success() && said.contains("VERIFIED"),
        "{said}"
    );

    // Back on the trace, the console's bar above `audit trace --html`'s page
    // signs out like every other page.
    b.goto(&format!("{}/trace?case={case_no}", origin(&auditor_url)))
        .await
        .unwrap();
    until_text(&b, "body", "VERIFIED", false).await;
    click(&b, "#console-bar #logout").await;
    until_text(&b, "body", "已退出登录", false).await;

    b.close().await.unwrap();
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn correction_round_trip_and_denial_in_a_browser() {
    let cluster = Cluster::start().await;
    let files = tempfile::tempdir().unwrap();
    let file = |name: &str, data: &[u8]| {
        let p = files.path().join(name);
        std::fs::write(&p, data).unwrap();
        p.to_str().unwrap().to_owned()
    };
    let materials = [
        file("id-card.jpg", b"scan of the id card"),
        file("application-form.pdf", b"signed application form"),
        file("old-lease.pdf", b"an expired lease"),
    ];
    let new_lease = file("new-lease.pdf", b"a lease that runs until 2030");
    let clerk = profile(&cluster, HANTAI, "clerk", clerk(HANTAI, "wang"));
    let reviewer = profile(&cluster, YANTA, "reviewer", reviewer(YANTA, "li"));
    let ((_c, clerk_url), (_r, reviewer_url)) = tokio::join!(console(&clerk), console(&reviewer));
    let (clerk_origin, reviewer_origin) = (origin(&clerk_url), origin(&reviewer_url));
    let (_driver, b) = browser().await;
    b.goto(&clerk_url).await.unwrap();
    until_text(&b, "h1", "本窗口案件", false).await;
    let case_no = apply_complete(&b, &clerk_origin, &materials).await;

    // The reviewer accepts and asks for a new lease, all at once.
    b.goto(&reviewer_url).await.unwrap();
    b.goto(&format!("{reviewer_origin}/case/{case_no}"))
        .await
        .unwrap();
    until_text(&b, "#state", "HANDED_OFF", true).await;
    click(&b, "#accept button[type=submit]").await;
    until_text(&b, "#state", "UNDER_REVIEW", false).await;
    click(&b, "#correct input[name=need][value=premises-proof]").await;
    fill(
        &b,
        "#correct input[name='reason:premises-proof']",
        "租赁合同已过期",
    )
    .await;
    fill(&b, "#correct input[name=deadline]", "5").await;
    shot(&b, "20-reviewer-correction-form").await;
    click(&b, "#correct button[type=submit]").await;
    until_text(&b, "#state", "CORRECTION_REQUESTED", false).await;

    // The clerk sees what is asked, attaches it and resubmits.
    b.goto(&format!("{clerk_origin}/case/{case_no}"))
        .await
        .unwrap();
    until_text(&b, "#state", "CORRECTION_REQUESTED", true).await;
    until_text(&b, "main", "租赁合同已过期", false).await;
    shot(&b, "21-clerk-correction-requested").await;
    b.find(Locator::Css(
        "#attach input[name='material:premises-proof']",
    ))
    .await
    .unwrap()
    .send_keys(&new_lease)
    .await
    .unwrap();
    click(&b, "#attach button[type=submit]").await;
    until_text(&b, "table.materials", "new-lease.pdf", false).await;
    click(&b, "#resubmit button[type=submit]").await;
    until_text(&b, "main", "已于", false).await;
    shot(&b, "22-clerk-resubmitted").await;

    // Back under review at home, the reviewer denies with a reason.
    b.goto(&format!("{reviewer_origin}/case/{case_no}"))
        .await
        .unwrap();
    until_text(&b, "#state", "UNDER_REVIEW", true).await;
    until_text(&b, "table.materials", "new-lease.pdf", false).await;
    fill(&b, "#deny textarea[name=reason]", "经营场所不符合规划用途").await;
    click(&b, "#deny button[type=submit]").await;
    until_text(&b, "#state", "DENIED", false).await;
    // The time limit says how many working days were left at the decision
    // (the node's count, frozen then).
    let mut review = cluster.review(YANTA).await;
    let denied = home_state(&mut review, &case_no, "DENIED").await;
    assert!(!denied.clock_running && !denied.due_date.is_empty());
    let frozen = format!("已决定（剩余 {} 个工作日时）", denied.working_days_left);
    until_text(&b, "table.facts", &frozen, false).await;
    // What goes in the post now is the written denial, and the form says so.
    until_text(&b, "#mail-send h2", "邮寄不予许可决定书", false).await;
    shot(&b, "23-reviewer-denied").await;
    b.goto(&format!("{reviewer_origin}/case/{case_no}/notice/denial"))
        .await
        .unwrap();
    until_text(&b, "body", "经营场所不符合规划用途", false).await;
    shot(&b, "24-denial-notice").await;

    b.goto(&format!("{clerk_origin}/case/{case_no}"))
        .await
        .unwrap();
    until_text(&b, "#state", "DENIED", true).await;
    // The window mirrors the count the home froze.
    until_text(&b, "table.facts", &frozen, false).await;
    shot(&b, "25-clerk-denied").await;

    // A handoff whose window did not state the application time: the
    // reviewer's pages say the time shown is its arrival here, and only
    // for that case.
    let unstated = "610702-20261125-31";
    let materials = gt_materials();
    let env = crate::handoff::fresh_envelope(unstated, &materials);
    let sent = handoff_as(
        &cluster,
        YANTA,
        HANTAI,
        crate::handoff::frames(env, &materials),
    )
    .await;
    assert!(
        matches!(
            sent.outcome,
            Some(tongban_proto::federation::v1::handoff_result::Outcome::Receipt(_))
        ),
        "{sent:?}"
    );
    assert!(
        home_state(&mut review, unstated, "HANDED_OFF")
            .await
            .created_at_is_arrival
    );
    b.goto(&format!("{reviewer_origin}/case/{unstated}"))
        .await
        .unwrap();
    until_text(&b, "#applied", "此为移交到达本节点的时间", false).await;
    shot(&b, "26-reviewer-arrival-time").await;
    b.goto(&format!("{reviewer_origin}/case/{case_no}"))
        .await
        .unwrap();
    let stated = until_text(&b, "#applied", "", false).await;
    assert!(!stated.contains("到达"), "the window stated it: {stated}");
    b.goto(&format!("{reviewer_origin}/?lang=en"))
        .await
        .unwrap();
    until_text(
        &b,
        &format!("tr[data-case='{unstated}']"),
        "(arrival)",
        false,
    )
    .await;
    b.goto(&format!("{reviewer_origin}/case/{unstated}"))
        .await
        .unwrap();
    until_text(&b, "#applied", "when the handoff arrived here", false).await;
    b.close().await.unwrap();
}
