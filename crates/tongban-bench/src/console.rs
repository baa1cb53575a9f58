//! The web console on nodes holding many cases: how long each page takes
//! server-side (the `Server-Timing` the console puts on every answer, the
//! node's gRPC answer included), p50 and p99, beside the 50 ms target of
//! issue 17 and the bare mTLS round trip of the same run.
//!
//! The nodes are filled fast but with real cases: one case goes through the
//! API (apply, verify, accept, handoff, the reviewer's acceptance), then
//! with both nodes stopped its stored record and ledger entries are copied
//! `console_cases` times under fresh application ids and case numbers
//! through the ledger's own `Store` API (every copy in the state index and
//! the case index, its entries chained and hashed like any other), so the
//! nodes list, page and show them as they would the original (each copy
//! with its own copy of the receipts the node gave for the original's
//! handoffs, so a node holds as many receipts as cases). The real
//! `tongban console` binary then serves a clerk of the receiving node, a
//! reviewer of the home node and an auditor.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tongban_core::CaseState;
use tongban_ledger::{Batch, NewEntry, Store};
use tongban_pki::Principal;
use tongban_proto::review::v1::review_client::ReviewClient;
use tongban_sandbox::Sandbox;

use crate::cluster::{A, B, window_client};
use crate::echo::ECHO_C1_P50;
use crate::flows::{apply, gt_materials, verify_and_accept};
use crate::stats::{latencies, rate};
use crate::{Options, Report};

const SECTION: &str = "7. console";
/// Issue 17's bound on a page's server-side time.
const TARGET_MS: f64 = 50.0;
/// How long one page is sampled at most (once it has [`MIN_SAMPLES`]).
const PAGE_BUDGET: Duration = Duration::from_secs(20);
/// The fewest samples of a page.
const MIN_SAMPLES: usize = 5;
/// Cases per fill commit.
const FILL_BATCH: usize = 500;

pub(crate) async fn run(opts: &Options, report: &mut Report) -> anyhow::Result<()> {
    if !opts.spawn_binary {
        report.note("console: not measured (spawn_binary off: it runs the tongban binary)");
        return Ok(());
    }
    let Some(bin) = crate::startup::tongban_binary(opts, report) else {
        return Ok(());
    };
    let mut sandbox = tongban_sandbox::Builder::new()
        .temp_prefix("tongban-bench-console-")
        .build()?;
    let result = measure(opts, report, &bin, &mut sandbox).await;
    let _ = sandbox.stop_all(Duration::from_secs(16)).await;
    result
}

async fn measure(
    opts: &Options,
    report: &mut Report,
    bin: &Path,
    sandbox: &mut Sandbox,
) -> anyhow::Result<()> {
    sandbox.start(A).await?;
    sandbox.start(B).await?;
    let template = template_case(sandbox).await?;
    sandbox.stop(A).await?;
    sandbox.stop(B).await?;

    let n = opts.console_cases;
    let started = Instant::now();
    let ids = fill(sandbox, &template, n, opts.max_phase).await?;
    let filled = ids.len();
    report.add(
        SECTION,
        &format!("fill: {filled} cases copied into both nodes"),
        rate(filled as f64, started.elapsed()),
        "cases/s",
    );
    report.show_last();
    sandbox.start(A).await?;
    sandbox.start(B).await?;

    let profiles = sandbox.root().join("profiles");
    std::fs::create_dir_all(&profiles)?;
    let clerk = profile(
        sandbox,
        &profiles,
        A,
        "clerk",
        tongban_sandbox::clerk(A, "wang"),
    )?;
    let reviewer = profile(
        sandbox,
        &profiles,
        B,
        "reviewer",
        tongban_sandbox::reviewer(B, "li"),
    )?;
    let auditor = profile(
        sandbox,
        &profiles,
        A,
        "auditor",
        Principal::Auditor {
            county: None,
            name: "zhao".into(),
        },
    )?;

    // A case in the middle of the list, for a deep page and a case page.
    let (mid_id, mid_no) = ids
        .get(filled / 2)
        .cloned()
        .unwrap_or_else(|| (template.id.clone(), template.case_no.clone()));
    let requests = if opts.label == "full" { 200 } else { 40 };
    let pages: [(&Path, &str, Vec<Timed>); 3] = [
        (
            &clerk,
            "clerk",
            vec![
                ("case list, first page".into(), "/".into()),
                (
                    "case list, a page in the middle".into(),
                    format!("/?page={mid_id}&trail=x"),
                ),
                (
                    "case list filtered by state".into(),
                    "/?state=UNDER_REVIEW".into(),
                ),
                ("case page".into(), format!("/case/{mid_no}")),
                ("application form".into(), "/new".into()),
                ("overdue list".into(), "/overdue".into()),
            ],
        ),
        (
            &reviewer,
            "reviewer",
            vec![
                ("inbox, first page".into(), "/".into()),
                (
                    "inbox, a page in the middle".into(),
                    format!("/?page={mid_id}&trail=x"),
                ),
                ("case page".into(), format!("/case/{mid_no}")),
                ("overdue list".into(), "/overdue".into()),
            ],
        ),
        (
            &auditor,
            "auditor",
            vec![
                ("find form".into(), "/".into()),
                (
                    "trace of a case (both nodes, verified)".into(),
                    format!("/trace?case={mid_no}"),
                ),
            ],
        ),
    ];
    let floor_ms = report.value(ECHO_C1_P50).map(|us| us / 1e3);
    let mut worst: Option<(String, f64)> = None;
    for (profile, role, list) in pages {
        let mut console = Console::start(bin, profile).await?;
        let cookie = console.login().await?;
        for (what, path) in list {
            let mut server = Vec::with_capacity(requests);
            // One unmeasured request warms the node's and the console's caches.
            console.get(&path, &cookie).await?;
            // A slow page gets fewer samples (at least MIN_SAMPLES) rather
            // than holding the run up.
            let began = Instant::now();
            while server.len() < requests
                && (server.len() < MIN_SAMPLES || began.elapsed() < PAGE_BUDGET)
            {
                let (status, dur) = console.get(&path, &cookie).await?;
                anyhow::ensure!(status == 200, "{role} {path}: HTTP {status}");
                server.push(dur);
            }
            if server.len() < requests {
                report.note(format!(
                    "console: {role} {what}: {} samples (the {PAGE_BUDGET:?} budget of a page ran out)",
                    server.len()
                ));
            }
            let lat = latencies(&mut server);
            for (q, value_us) in [("p50", lat.p50_us), ("p99", lat.p99_us)] {
                let ms = value_us / 1e3;
                let f = report.add(
                    SECTION,
                    &format!("{role}: {what} ({filled} cases), server-side {q}"),
                    ms,
                    "ms",
                );
                f.target = Some((format!("< {TARGET_MS} ms"), ms < TARGET_MS));
                if let Some(floor) = floor_ms {
                    f.floor = Some(("bare mTLS round trip p50 (echo c=1)".into(), floor));
                }
                report.show_last();
                if q == "p99" && worst.as_ref().is_none_or(|(_, w)| ms > *w) {
                    worst = Some((format!("{role}: {what}"), ms));
                }
            }
        }
        console.stop().await;
    }
    if let Some((page, ms)) = worst {
        report.note(format!(
            "console: the slowest page at p99 was \"{page}\", {ms:.1} ms, with {filled} cases on each \
             node; times are the console's own Server-Timing (request in to answer out, the node's \
             gRPC call included), up to {requests} requests a page after one unmeasured"
        ));
    }
    Ok(())
}

/// A page timed: what it is, and its path.
type Timed = (String, String);

/// The case that is copied, by its application id and case number.
struct Template {
    id: String,
    case_no: String,
}

/// One case through the API to `UNDER_REVIEW` at home, seen so at the
/// window too.
async fn template_case(sandbox: &Sandbox) -> anyhow::Result<Template> {
    let clerk_tls = sandbox.pki().try_issue(tongban_sandbox::clerk(A, "wang"))?;
    let mut window = window_client(sandbox.addr(A), &clerk_tls).await?;
    let case = apply(&mut window, B, &gt_materials(1, 4096)).await?;
    verify_and_accept(&mut window, &case.case_no).await?;
    let reviewer_tls = sandbox
        .pki()
        .try_issue(tongban_sandbox::reviewer(B, "li"))?;
    let mut review =
        ReviewClient::new(tongban_sandbox::connect(sandbox.addr(B), &reviewer_tls).await?);
    let case_ref = |no: &str| tongban_proto::review::v1::CaseRef {
        case_no: no.to_owned(),
        request_id: String::new(),
    };
    let no = case.case_no.clone();
    until(|| {
        let (mut review, no) = (review.clone(), no.clone());
        async move {
            match review.get_case(case_ref(&no)).await {
                Ok(view) => Ok(view.into_inner().state == "HANDED_OFF"),
                // Not there until the handoff arrives.
                Err(s) if s.code() == tonic::Code::NotFound => Ok(false),
                Err(s) => Err(s.into()),
            }
        }
    })
    .await?;
    review.accept(case_ref(&no)).await?;
    until(|| {
        let (mut window, no) = (window.clone(), no.clone());
        async move {
            let view = window
                .get_case(tongban_proto::window::v1::CaseRef {
                    case_no: no,
                    request_id: String::new(),
                })
                .await?
                .into_inner();
            Ok(view.state == "UNDER_REVIEW")
        }
    })
    .await?;
    Ok(Template {
        id: case.application_id,
        case_no: case.case_no,
    })
}

/// Opens a stopped node's store (its previous holder may take a moment to
/// let go of the data dir's lock).
async fn open_store(dir: &Path) -> anyhow::Result<Store> {
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        match Store::open(dir) {
            Ok(s) => return Ok(s),
            Err(_) if Instant::now() < end => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Copies the template `n` times into A's and B's stores (both stopped):
/// the new cases' application ids and case numbers, oldest first.
async fn fill(
    sandbox: &Sandbox,
    template: &Template,
    n: usize,
    limit: Duration,
) -> anyhow::Result<Vec<(String, String)>> {
    let started = Instant::now();
    let stores = [
        open_store(sandbox.data_dir(A)).await?,
        open_store(sandbox.data_dir(B)).await?,
    ];
    let mut originals = Vec::new();
    for store in &stores {
        let record = store
            .case(&template.id)?
            .ok_or_else(|| anyhow::anyhow!("the template case is not stored"))?;
        let entries = store
            .case_entries(&template.id)?
            .into_iter()
            .map(|stored| Ok((stored.decode()?, stored.payload)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        // The receipts this node gave for the template's handoffs: each copy
        // gets its own, as a real case would, so that a node with n cases
        // holds about as many receipts as it would.
        let received: Vec<(String, tongban_ledger::ReceivedHandoff)> = store
            .received_all()?
            .into_iter()
            .filter(|(_, _, r)| r.application_id == template.id)
            .map(|(from, _, r)| (from, r))
            .collect();
        originals.push((record, entries, received));
    }
    let (prefix, _) = template
        .case_no
        .rsplit_once('-')
        .ok_or_else(|| anyhow::anyhow!("case number {} has no sequence", template.case_no))?;
    let mut ids = Vec::with_capacity(n);
    while ids.len() < n && started.elapsed() < limit {
        let upto = (ids.len() + FILL_BATCH).min(n);
        let batch_ids: Vec<(String, String)> = (ids.len()..upto)
            .map(|i| {
                (
                    uuid::Uuid::now_v7().hyphenated().to_string(),
                    format!("{prefix}-{}", 100_000 + i),
                )
            })
            .collect();
        for (store, (record, entries, received)) in stores.iter().zip(&originals) {
            let mut batch = Batch::default();
            for (id, no) in &batch_ids {
                let mut copy = record.clone();
                copy.application_id = id.clone();
                copy.case_no = no.parse()?;
                batch.put_case(copy);
                for (from, r) in received {
                    let mut r = r.clone();
                    r.application_id = id.clone();
                    batch.put_received(from, &uuid::Uuid::now_v7().to_string(), r);
                }
                for (entry, payload) in entries {
                    batch.append(NewEntry {
                        application_id: id.clone(),
                        case_no: no.clone(),
                        actor: entry.actor.clone(),
                        kind: entry.kind.clone(),
                        state: entry.state.parse::<CaseState>().ok(),
                        payload: payload.clone(),
                        ..Default::default()
                    });
                }
            }
            store.commit(batch).await?;
        }
        ids.extend(batch_ids);
    }
    Ok(ids)
}

/// A client profile for `principal` on `county`'s node, in `dir` under the
/// sandbox root (the console finds `federation.toml` in the parent).
fn profile(
    sandbox: &Sandbox,
    dir: &Path,
    county: &str,
    name: &str,
    principal: Principal,
) -> anyhow::Result<PathBuf> {
    let tls = sandbox.pki().try_issue(principal)?;
    std::fs::write(dir.join(format!("{name}.crt")), &tls.cert_pem)?;
    std::fs::write(dir.join(format!("{name}.key")), &tls.key_pem)?;
    std::fs::write(dir.join("ca.crt"), &tls.ca_pem)?;
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!(
            "node = \"https://{}\"\nca = \"ca.crt\"\ncert = \"{name}.crt\"\nkey = \"{name}.key\"\n",
            sandbox.addr(county)
        ),
    )?;
    Ok(path)
}

/// A `tongban console` process and its address.
struct Console {
    child: Child,
    addr: String,
    login: String,
}

impl Console {
    async fn start(bin: &Path, profile: &Path) -> anyhow::Result<Self> {
        let mut child = Command::new(bin)
            .args(["console", "--listen", "127.0.0.1:0", "--profile"])
            .arg(profile)
            .env_remove("TONGBAN_PROFILE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
        let url = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .map_err(|_| anyhow::anyhow!("tongban console printed no URL within 30 s"))??
            .ok_or_else(|| anyhow::anyhow!("tongban console ended without a URL"))?;
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let rest = url
            .trim()
            .strip_prefix("http://")
            .ok_or_else(|| anyhow::anyhow!("unexpected console URL {url:?}"))?;
        let (addr, path) = rest
            .split_once('/')
            .ok_or_else(|| anyhow::anyhow!("unexpected console URL {url:?}"))?;
        Ok(Self {
            child,
            addr: addr.to_owned(),
            login: format!("/{path}"),
        })
    }

    /// Spends the login token: the session cookie.
    async fn login(&mut self) -> anyhow::Result<String> {
        let (status, head) = self.request(&self.login.clone(), "").await?;
        anyhow::ensure!(status == 303, "login: HTTP {status}");
        head.lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("set-cookie")
                    .then(|| v.trim().split(';').next().unwrap_or_default().to_owned())
            })
            .ok_or_else(|| anyhow::anyhow!("login set no cookie"))
    }

    /// `GET path`: the status and the console's own time for it.
    async fn get(&mut self, path: &str, cookie: &str) -> anyhow::Result<(u16, Duration)> {
        let (status, head) = self.request(path, cookie).await?;
        let ms: f64 = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("server-timing")
                    .then(|| v.trim().strip_prefix("app;dur=")?.parse().ok())?
            })
            .ok_or_else(|| anyhow::anyhow!("{path}: no Server-Timing"))?;
        Ok((status, Duration::from_secs_f64(ms / 1e3)))
    }

    /// One HTTP/1.1 request on its own connection: the status and the head.
    async fn request(&self, path: &str, cookie: &str) -> anyhow::Result<(u16, String)> {
        let mut tcp = tokio::net::TcpStream::connect(&self.addr).await?;
        tcp.write_all(
            format!(
                "GET {path} HTTP/1.1\r\nHost: {}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n",
                self.addr
            )
            .as_bytes(),
        )
        .await?;
        let mut raw = Vec::new();
        tcp.read_to_end(&mut raw).await?;
        let text = String::from_utf8_lossy(&raw);
        let head = text.split("\r\n\r\n").next().unwrap_or_default().to_owned();
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        Ok((status, head))
    }

    async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// Polls `check` until it is true (at most 30 s).
async fn until<F, Fut>(mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    let end = Instant::now() + Duration::from_secs(30);
    while !check().await? {
        anyhow::ensure!(
            Instant::now() < end,
            "the template case did not get there in 30 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}
