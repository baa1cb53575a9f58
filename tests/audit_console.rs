//! The auditor's console keeps what its traces verified of each node's
//! ledger and checks only what came since: a trace after new entries still
//! catches an entry altered after the kept head and one altered before it,
//! and `audit verify` still walks the whole chain. Real nodes, the real
//! `tongban console` binary over HTTP.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tongban_pki::Principal;

use crate::audit::{audit, auditor, find, handed_off, rewrite, url};
use crate::console::{console, origin, profile};
use crate::support::*;

/// `GET path` from the console at `origin` with `cookie`: status, headers
/// and body of the answer.
pub(crate) async fn get(origin: &str, path: &str, cookie: &str) -> (u16, String, String) {
    let addr = origin.trim_start_matches("http://");
    let mut io = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"
    );
    io.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    io.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, head.to_owned(), body.to_owned())
}

/// The province auditor zhao's profile on 汉台区's node.
pub(crate) fn zhao(cluster: &Cluster) -> std::path::PathBuf {
    profile(
        cluster,
        HANTAI,
        "zhao",
        Principal::Auditor {
            county: None,
            name: "zhao".into(),
        },
    )
}

/// zhao's console, signed in: the process, its origin and the session
/// cookie.
pub(crate) async fn signed_in_auditor(
    cluster: &Cluster,
) -> (crate::console::Started, String, String) {
    let (console, login_url) = console(&zhao(cluster)).await;
    let cookie = login(&login_url).await;
    (console, origin(&login_url), cookie)
}

/// Signs in with the login URL: the session cookie.
pub(crate) async fn login(url: &str) -> String {
    let origin = origin(url);
    let (status, head, _) = get(&origin, url.trim_start_matches(&origin), "").await;
    assert!(status == 303 || status == 302 || status == 200, "{head}");
    head.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("set-cookie")
                .then(|| v.trim().split(';').next().unwrap().to_owned())
        })
        .unwrap_or_else(|| panic!("no session cookie: {head}"))
}

async fn trace(origin: &str, cookie: &str, case_no: &str) -> String {
    let (status, head, body) = get(origin, &format!("/trace?case={case_no}"), cookie).await;
    assert_eq!(status, 200, "{head}\n{body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_console_trace_checks_what_came_since_and_still_catches_altered_entries() {
    let mut cluster = Cluster::start().await;
    let first = handed_off(&cluster, HANTAI).await;
    let (_console, origin, cookie) = signed_in_auditor(&cluster).await;

    // The first trace (or the warm-up before it) verifies each whole ledger.
    let page = trace(&origin, &cookie, &first).await;
    assert!(page.contains("VERIFIED"), "{page}");

    // A case that came after: only the entries since are fetched and
    // checked, on top of what was verified.
    let second = handed_off(&cluster, HANTAI).await;
    let page = trace(&origin, &cookie, &second).await;
    assert!(page.contains("VERIFIED"), "{page}");
    assert!(
        page.contains("node 610113: entries 1..=")
            && page.contains("were verified by this console before"),
        "{page}"
    );

    // A third case after the kept head; then 雁塔's operator alters the
    // first case's receipt entry (before the kept head) and the third's
    // (after it), without re-chaining.
    let third = handed_off(&cluster, HANTAI).await;
    cluster.stop(YANTA).await;
    let old = find(cluster.data_dir(YANTA), &first, "handoff.received");
    let new = find(cluster.data_dir(YANTA), &third, "handoff.received");
    for seq in [old, new] {
        rewrite(cluster.data_dir(YANTA), seq, false, |e, _| {
            e.actor = "spiffe://shaanxi.tongban/county/610113/clerk/forger".into()
        });
    }
    cluster.restart(YANTA).await;

    // After the head: the chain of the new entries breaks at it.
    let page = trace(&origin, &cookie, &third).await;
    assert!(page.contains("FAILED"), "{page}");
    assert!(
        page.contains(&format!("node 610113: ledger entry {new} was altered")),
        "{page}"
    );
    // Before the head: the case entry no longer hashes to what was verified.
    let page = trace(&origin, &cookie, &first).await;
    assert!(page.contains("FAILED"), "{page}");
    assert!(
        page.contains(&format!(
            "node 610113: case entry {old} differs from the ledger entry at that sequence number"
        )),
        "{page}"
    );
    // A case untouched by either still fails while the new entries do not
    // chain: nothing unverified was kept.
    let page = trace(&origin, &cookie, &second).await;
    assert!(page.contains("FAILED"), "{page}");

    // `audit verify` walks the whole chain and names the first bad entry.
    let mut verify = vec!["verify".to_owned(), "--node".into(), url(&cluster, YANTA)];
    verify.extend(auditor(&cluster, None, "sun").iter().cloned());
    let (code, out) = audit(verify).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(&format!("FAILED at entry {old}")), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ledger_rewritten_and_rechained_after_a_console_trace_is_caught() {
    let mut cluster = Cluster::start().await;
    let case_no = handed_off(&cluster, HANTAI).await;
    let (_console, origin, cookie) = signed_in_auditor(&cluster).await;
    assert!(trace(&origin, &cookie, &case_no).await.contains("VERIFIED"));

    // A dishonest 雁塔 changes the case's entry and re-chains everything
    // after it, so its own chain and checkpoint are consistent again.
    cluster.stop(YANTA).await;
    let seq = find(cluster.data_dir(YANTA), &case_no, "handoff.received");
    rewrite(cluster.data_dir(YANTA), seq, true, |e, _| {
        e.actor = "spiffe://shaanxi.tongban/county/610113/clerk/forger".into()
    });
    cluster.restart(YANTA).await;

    let page = trace(&origin, &cookie, &case_no).await;
    assert!(page.contains("FAILED"), "{page}");
    assert!(page.contains("history was rewritten"), "{page}");
    assert!(
        page.contains(&format!(
            "node 610113: case entry {seq} differs from the ledger entry at that sequence number"
        )),
        "{page}"
    );
}

/// The step times the console's trace page reports beside its total
/// (`Server-Timing: find;dur=…, fetch1;dur=…, …`), in ms by step.
fn steps(head: &str) -> std::collections::BTreeMap<String, f64> {
    head.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("server-timing").then_some(v)
        })
        .flat_map(|v| v.split(','))
        .filter_map(|m| {
            let (name, dur) = m.trim().split_once(";dur=")?;
            Some((name.to_owned(), dur.parse().ok()?))
        })
        .collect()
}

/// Repeated traces of one case stay verified while the console answers the
/// signatures it verified before from its cache, and each answer says how
/// long each step took. Prints the verify step of the first trace and the
/// median of the later ones (a debug-build figure, not asserted).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_console_traces_stay_verified_and_report_their_steps() {
    let cluster = Cluster::start().await;
    let case_no = handed_off(&cluster, HANTAI).await;
    let (_console, origin, cookie) = signed_in_auditor(&cluster).await;
    let mut verify = Vec::new();
    for _ in 0..20 {
        let (status, head, body) = get(&origin, &format!("/trace?case={case_no}"), &cookie).await;
        assert_eq!(status, 200, "{head}\n{body}");
        assert!(body.contains("VERIFIED"), "{body}");
        let s = steps(&head);
        for name in ["app", "find", "fetch1", "fetch2", "verify", "render"] {
            assert!(s.contains_key(name), "no {name} in Server-Timing: {head}");
        }
        verify.push(s["verify"]);
    }
    let first = verify[0];
    let mut later = verify[1..].to_vec();
    later.sort_by(f64::total_cmp);
    eprintln!(
        "debug build: verify step of the first trace {first:.2} ms, later traces p50 {:.2} ms, max {:.2} ms",
        later[later.len() / 2],
        later[later.len() - 1]
    );
}
