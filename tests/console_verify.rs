//! The auditor verifies a node's whole ledger in the console, in a real
//! headless Chromium: chooses the node from the directory, watches the
//! verification reach the last entry and says VERIFIED; after 雁塔's
//! operator alters an entry on disk the same page shows FAILED with the
//! problem at that entry, linked to its case's trace. Other roles have no
//! such page, and without a session it is refused. A long ledger's
//! verification is watched part-checked, and asking again while it runs
//! shows it; over plain HTTP, a ledger rewritten and re-chained is caught by
//! what the page verified before. Screenshots at 1280 and 420 px wide go to
//! `target/console-screenshots/5*.png`.

use fantoccini::{Client, Locator};

use crate::audit::{find, handed_off, rewrite};
use crate::audit_console::{signed_in_auditor, zhao};
use crate::console::{
    browser, click, console, origin, profile, shot, status_without_session, until_text,
};
use crate::support::*;

/// Starts verifying `county` from the choice page and waits for the
/// verdict (the page follows the progress by itself and reloads when the
/// verification has ended): the verdict's text.
async fn verify(b: &Client, origin: &str, county: &str) -> String {
    start(b, origin, county).await;
    let verdict = until_text(b, "#verdict", "", false).await;
    // The progress reached the checkpoint's last entry.
    let checked = text(b, "#checked").await;
    let total = text(b, "#total").await;
    assert_eq!(checked, total, "{verdict}");
    assert!(total.parse::<u64>().unwrap() > 1, "{total}");
    verdict
}

async fn text(b: &Client, css: &str) -> String {
    b.find(Locator::Css(css))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_auditor_verifies_a_node_in_a_browser_and_sees_an_altered_entry_at_its_place() {
    let mut cluster = Cluster::start().await;
    let first = handed_off(&cluster, HANTAI).await;
    let _second = handed_off(&cluster, HANTAI).await;
    let auditor = zhao(&cluster);
    let clerk = profile(&cluster, HANTAI, "wang", clerk(HANTAI, "wang"));
    let ((_a, auditor_url), (_c, clerk_url)) = tokio::join!(console(&auditor), console(&clerk));
    let origin = origin(&auditor_url);
    assert_eq!(status_without_session(&origin, "/verify").await, 401);
    assert_eq!(
        status_without_session(&origin, &format!("/verify/{YANTA}/progress")).await,
        401
    );
    let (_driver, b) = browser().await;

    // A clerk's console has no such page.
    b.goto(&clerk_url).await.unwrap();
    b.goto(&format!("{}/verify", crate::console::origin(&clerk_url)))
        .await
        .unwrap();
    until_text(&b, "h1", "没有这个页面", false).await;

    b.goto(&auditor_url).await.unwrap();
    until_text(&b, "h1", "案件追溯", false).await;
    click(&b, "#nav-verify").await;
    until_text(&b, "h1", "核验节点账本", false).await;
    // Names beside codes in the choice.
    let choice = text(&b, "#county").await;
    assert!(
        choice.contains("雁塔区 610113") && choice.contains("汉台区 610702"),
        "{choice}"
    );
    shot(&b, "50-verify-choose").await;

    // The whole ledger and its evidence verify.
    let verdict = verify(&b, &origin, YANTA).await;
    assert!(verdict.contains("VERIFIED"), "{verdict}");
    assert!(verdict.contains("逐条核验了该节点的全部账本"), "{verdict}");
    assert!(verdict.contains("作为接收方出具 2 份"), "{verdict}");
    let kept = text(&b, "#kept").await;
    assert!(kept.contains("缓存已更新为第 1–"), "{kept}");
    assert!(b.find(Locator::Css("#no-problems")).await.is_ok());
    shot(&b, "51-verify-verified").await;

    // The verdict is the JSON `audit verify --json` prints.
    let href = b
        .find(Locator::Css("#verdict-json"))
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(href, format!("/verify/{YANTA}/verdict.json"));

    // In English too.
    b.goto(&format!("{origin}/verify/{YANTA}?lang=en"))
        .await
        .unwrap();
    until_text(&b, "h1", "Verifying", false).await;
    until_text(
        &b,
        "#verdict",
        "This run checked the node's whole ledger",
        false,
    )
    .await;
    b.goto(&format!("{origin}/verify?lang=zh-CN"))
        .await
        .unwrap();
    until_text(&b, "h1", "核验节点账本", false).await;
    // The choice page now shows what the console verified of 雁塔.
    let card = text(&b, &format!(".node-card[data-county='{YANTA}']")).await;
    assert!(
        card.contains("本控制台已核验第 1–") && card.contains("VERIFIED"),
        "{card}"
    );

    // 雁塔's operator alters the first case's receipt entry offline,
    // without re-chaining.
    cluster.stop(YANTA).await;
    let seq = find(cluster.data_dir(YANTA), &first, "handoff.received");
    rewrite(cluster.data_dir(YANTA), seq, false, |e, _| {
        e.actor = "spiffe://shaanxi.tongban/county/610113/clerk/forger".into()
    });
    cluster.restart(YANTA).await;

    let verdict = verify(&b, &origin, YANTA).await;
    assert!(verdict.contains("FAILED"), "{verdict}");
    assert!(
        verdict.contains(&format!("第 {seq} 条未通过：账本条目 {seq} 已被改动")),
        "{verdict}"
    );
    let kept = text(&b, "#kept").await;
    assert!(kept.contains("缓存未改动"), "{kept}");
    // The problem is marked at its entry, with its case.
    let at = format!("#problems li[data-seq='{seq}']");
    let problem = text(&b, &at).await;
    assert!(
        problem.contains(&format!("条目 #{seq}"))
            && problem.contains(&first)
            && problem.contains(&format!(
                "账本条目 {seq} 已被改动：它的哈希与条目 {} 记录的前一条哈希（prev_hash）不符",
                seq + 1
            ))
            && !problem.contains("was altered"),
        "{problem}"
    );
    shot(&b, "52-verify-failed").await;

    // Its link leads to the case's trace, which fails as well.
    click(&b, &format!("{at} a.trace")).await;
    until_text(&b, "body", "FAILED", false).await;
    assert!(b.current_url().await.unwrap().as_str().contains(&first));
}

/// `POST path` with a url-encoded `body` to the console at `origin`: the
/// status and the `Location` it answered with.
async fn post(origin: &str, path: &str, cookie: &str, body: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = origin.trim_start_matches("http://");
    let mut io = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    io.write_all(request.as_bytes()).await.unwrap();
    let mut raw = String::new();
    io.read_to_string(&mut raw).await.unwrap();
    let status = raw
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let location = raw
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("location")
                .then(|| v.trim().to_owned())
        })
        .unwrap_or_default();
    (status, location)
}

/// Verifies `county` through the console's forms and progress JSON, as
/// the page's script follows it: the ended progress, then the page.
async fn verify_over_http(origin: &str, cookie: &str, county: &str) -> (serde_json::Value, String) {
    let (status, location) = post(
        origin,
        "/verify",
        cookie,
        &format!("county={county}&scope=full"),
    )
    .await;
    assert_eq!(
        (status, location.as_str()),
        (303, &*format!("/verify/{county}"))
    );
    let progress = eventually("the verification ends", || async {
        let (status, _, body) =
            crate::audit_console::get(origin, &format!("/verify/{county}/progress"), cookie).await;
        assert_eq!(status, 200, "{body}");
        let p: serde_json::Value = serde_json::from_str(&body).unwrap();
        p["ended"].as_bool().unwrap().then_some(p)
    })
    .await;
    let (status, _, page) =
        crate::audit_console::get(origin, &format!("/verify/{county}"), cookie).await;
    assert_eq!(status, 200, "{page}");
    (progress, page)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ledger_rewritten_and_rechained_is_caught_by_what_the_page_verified_before() {
    let mut cluster = Cluster::start().await;
    let case_no = handed_off(&cluster, HANTAI).await;
    let _later = handed_off(&cluster, HANTAI).await;
    let (_console, origin, cookie) = signed_in_auditor(&cluster).await;
    // Another role's address or an unknown county: no such page.
    let (status, _, _) = crate::audit_console::get(&origin, "/verify/999999", &cookie).await;
    assert_eq!(status, 404);
    let (status, _) = post(&origin, "/verify", &cookie, "county=999999").await;
    assert_eq!(status, 422);

    let (progress, page) = verify_over_http(&origin, &cookie, YANTA).await;
    assert_eq!(progress["verified"], true, "{progress}");
    assert_eq!(progress["checked"], progress["total"], "{progress}");
    assert!(page.contains("VERIFIED"), "{page}");
    // The verdict to take away is `audit verify --json`'s.
    let (status, head, body) =
        crate::audit_console::get(&origin, &format!("/verify/{YANTA}/verdict.json"), &cookie).await;
    assert_eq!(status, 200, "{head}");
    assert!(head.contains("verify-610113.json"), "{head}");
    let verdict: serde_json::Value = serde_json::from_str(body.trim()).unwrap_or_else(|e| {
        // A chunked body: the JSON lies between the chunk sizes.
        let start = body.find('{').unwrap();
        let end = body.rfind('}').unwrap();
        serde_json::from_str(&body[start..=end]).unwrap_or_else(|_| panic!("{e}: {body}"))
    });
    assert_eq!(verdict["verified"], true);
    assert_eq!(verdict["receipts_given"], 2);
    assert_eq!(verdict["checked_through"], progress["total"]);

    // A dishonest 雁塔 changes the case's entry and re-chains everything
    // after it: its chain and its fresh checkpoint agree again, but not
    // with what this console verified.
    cluster.stop(YANTA).await;
    let seq = find(cluster.data_dir(YANTA), &case_no, "handoff.received");
    rewrite(cluster.data_dir(YANTA), seq, true, |e, _| {
        e.actor = "spiffe://shaanxi.tongban/county/610113/clerk/forger".into()
    });
    cluster.restart(YANTA).await;

    let (progress, page) = verify_over_http(&origin, &cookie, YANTA).await;
    assert_eq!(progress["verified"], false, "{progress}");
    let problems = progress["problems"].as_array().unwrap();
    assert!(
        problems.iter().any(|p| p["seq"] == seq
            && p["text"].as_str().unwrap().contains(&format!(
                "ledger entry {seq} is not the entry this console verified"
            ))
            && p["words"].as_str().unwrap().contains("历史记录被改写")),
        "{progress}"
    );
    assert!(
        page.contains("FAILED")
            && page.contains(&format!("账本条目 {seq} 已不是本控制台此前核验过的那一条"))
            && page.contains("历史记录被改写")
            && !page.contains("history was rewritten"),
        "{page}"
    );
    assert!(page.contains("缓存保留原样"), "{page}");
    // The cache kept what was signed: the case's trace fails too.
    let (status, _, trace) =
        crate::audit_console::get(&origin, &format!("/trace?case={case_no}"), &cookie).await;
    assert_eq!(status, 200);
    assert!(trace.contains("FAILED"), "{trace}");
}

/// Starts verifying `county` from the choice page: its page, running or
/// ended.
async fn start(b: &Client, origin: &str, county: &str) {
    b.goto(&format!("{origin}/verify")).await.unwrap();
    until_text(b, "h1", "核验节点账本", false).await;
    b.find(Locator::Css("#county"))
        .await
        .unwrap()
        .select_by_value(county)
        .await
        .unwrap();
    click(b, "#start-verify").await;
    until_text(b, "h1", county, false).await;
}

/// Appends `n` filler entries to a stopped node's ledger, in commits of a
/// thousand (as the bench fills one): a ledger long enough that verifying
/// it takes a while.
async fn fill(data_dir: &std::path::Path, n: usize) {
    let store = tongban_ledger::Store::open(data_dir).unwrap();
    let actor = format!("spiffe://{TD}/county/{SHANGZHOU}/node");
    for start in (0..n).step_by(1000) {
        let mut batch = tongban_ledger::Batch::default();
        for i in start..(start + 1000).min(n) {
            batch.append(tongban_ledger::NewEntry {
                application_id: String::new(),
                case_no: String::new(),
                actor: actor.clone(),
                kind: "test.filler".into(),
                state: None,
                payload: format!("{{\"detail\":\"filler entry {i}\"}}").into_bytes(),
                ..Default::default()
            });
        }
        store.commit(batch).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_shows_as_it_goes_and_a_second_start_shows_the_running_verification() {
    let mut cluster = Cluster::start().await;
    let auditor = zhao(&cluster);
    let (_a, auditor_url) = console(&auditor).await;
    let origin = origin(&auditor_url);
    let (_driver, b) = browser().await;
    b.goto(&auditor_url).await.unwrap();
    until_text(&b, "h1", "案件追溯", false).await;

    // 商州's ledger grows long enough for its verification to be watched.
    cluster.stop(SHANGZHOU).await;
    fill(cluster.data_dir(SHANGZHOU), 60_000).await;
    cluster.restart(SHANGZHOU).await;

    start(&b, &origin, SHANGZHOU).await;
    let started = b
        .find(Locator::Css("#progress"))
        .await
        .unwrap()
        .attr("data-started")
        .await
        .unwrap()
        .unwrap();
    // Without a script the running page refreshes itself.
    let source = b.source().await.unwrap();
    assert!(
        source.contains(r#"<noscript><meta http-equiv="refresh" content="2"></noscript>"#),
        "{source}"
    );
    // Asking again at once, while it runs, shows the running one.
    start(&b, &origin, SHANGZHOU).await;
    let again = b
        .find(Locator::Css("#progress"))
        .await
        .unwrap()
        .attr("data-started")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again, started, "the running verification, not a new one");

    // The script shows the entries checked as they come in, without
    // reloading the page: a count between none and all of them.
    let running = eventually("the page shows the chain part-checked", || {
        let b = b.clone();
        async move {
            let checked: u64 = text(&b, "#checked").await.parse().ok()?;
            let total: u64 = text(&b, "#total").await.parse().ok()?;
            (checked > 0 && checked < total).then_some((checked, total))
        }
    })
    .await;
    assert!(running.1 > 60_000, "{running:?}");
    assert!(text(&b, "#phase").await.contains("哈希链"));
    shot(&b, "53-verify-running").await;

    let verdict = until_text(&b, "#verdict", "VERIFIED", false).await;
    assert!(
        verdict.contains(&format!("第 {} 条检查点", running.1)),
        "{verdict}"
    );
    assert_eq!(text(&b, "#checked").await, running.1.to_string());
}
