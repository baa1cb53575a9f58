//! The crash test: a partner node killed with SIGKILL again and again while
//! handoffs stream to it, with two clerks working; every acknowledged case
//! receipted, each received once, none stuck, both chains verify.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use tongban_ledger::Store;
use tongban_proto::window::v1::ListCasesRequest;

use crate::process::{NodeProcess, federation};
use crate::support::*;

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
    (config, sockets): (std::path::PathBuf, tongban_sandbox::Passed),
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
            let sockets = sockets.try_clone().expect("duplicate the sockets");
            move || {
                let node = NodeProcess::spawn(&config, Some(&sockets));
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
    let a = NodeProcess::spawn(fed.config_path(HANTAI), Some(&fed.sockets(HANTAI).unwrap()));
    let a_addr = a.serving();
    let b = NodeProcess::spawn(fed.config_path(YANTA), Some(&fed.sockets(YANTA).unwrap()));
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
        let config = fed.config_path(HANTAI).to_owned();
        let (config, crashes) = ((config, fed.sockets(HANTAI).unwrap()), crashes.clone());
        async move { killer(config, a, &crashes, started).await }
    });
    let kill_b = tokio::spawn({
        let config = fed.config_path(YANTA).to_owned();
        let (config, crashes) = ((config, fed.sockets(YANTA).unwrap()), crashes.clone());
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
