//! The admin port of a real node: `/metrics` after a handoff and while a
//! partner is down, `/healthz` and `/readyz`.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tongban_proto::window::v1::window_client::WindowClient;

use crate::support::*;

/// `GET path` over plain HTTP/1.1: the status code and the body.
async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .await
        .expect("response");
    let (head, body) = response.split_once("\r\n\r\n").expect("a header");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    (status, body.to_owned())
}

/// The value of the sample `series` (name and labels exactly as exposed).
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|line| {
        let value = line.strip_prefix(series)?.strip_prefix(' ')?;
        value.split(' ').next()?.parse().ok()
    })
}

fn value(metrics: &str, series: &str) -> f64 {
    sample(metrics, series).unwrap_or_else(|| panic!("no {series} in\n{metrics}"))
}

#[tokio::test]
async fn metrics_count_a_handoff_and_show_a_partner_that_is_down() {
    let mut sandbox = tongban_sandbox::Builder::new()
        .temp_prefix("tongban-ops-")
        .counties(&[HANTAI, YANTA])
        .node_config("[delivery]\ninitial_backoff_ms = 20\nmax_backoff_ms = 200\n")
        .admin(true)
        .build()
        .expect("lay out the sandbox");
    sandbox.start_all().await.expect("start the nodes");
    let admin = sandbox.admin_addr(HANTAI).expect("an admin port");
    let home_admin = sandbox.admin_addr(YANTA).expect("an admin port");

    assert_eq!(get(admin, "/healthz").await.0, 200);
    let (status, body) = get(admin, "/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(get(admin, "/nothing").await.0, 404);

    let mut window = WindowClient::new(sandbox.client(HANTAI, clerk(HANTAI, "wang")));
    let case = accepted_case(&mut window, YANTA).await;
    window_state(&mut window, &case.case_no, "HANDED_OFF").await;

    let partner = format!("{{partner=\"{YANTA}\"}}");
    // Counters follow the commit that makes the receipt visible: wait for it.
    let receipted = format!("tongban_handoffs_receipted_total{partner}");
    let m = eventually("the receipt counted", || async {
        let (status, m) = get(admin, "/metrics").await;
        assert_eq!(status, 200);
        (sample(&m, &receipted) == Some(1.0)).then_some(m)
    })
    .await;
    assert_eq!(
        value(&m, &format!("tongban_handoffs_sent_total{partner}")),
        1.0
    );
    assert_eq!(
        value(&m, &format!("tongban_handoffs_receipted_total{partner}")),
        1.0
    );
    assert_eq!(
        value(&m, &format!("tongban_handoffs_refused_total{partner}")),
        0.0
    );
    assert_eq!(
        value(&m, &format!("tongban_handoffs_parked_total{partner}")),
        0.0
    );
    assert_eq!(
        value(
            &m,
            &format!("tongban_receipt_verification_failures_total{partner}")
        ),
        0.0
    );
    assert_eq!(
        value(
            &m,
            &format!("tongban_handoff_latency_seconds_count{partner}")
        ),
        1.0
    );
    assert_eq!(value(&m, &format!("tongban_outbox_depth{partner}")), 0.0);
    assert_eq!(
        value(&m, &format!("tongban_outbox_oldest_age_seconds{partner}")),
        0.0
    );
    assert_eq!(
        value(&m, "tongban_cases{side=\"window\",state=\"HANDED_OFF\"}"),
        1.0
    );
    assert_eq!(
        value(&m, "tongban_cases{side=\"window\",state=\"QUEUED\"}"),
        0.0
    );
    assert_eq!(
        value(&m, "tongban_cases{side=\"home\",state=\"HANDED_OFF\"}"),
        0.0
    );
    assert_eq!(value(&m, "tongban_cases_overdue{side=\"window\"}"), 0.0);
    assert!(value(&m, "tongban_ledger_head_seq") >= 3.0, "{m}");
    assert!(value(&m, "tongban_data_dir_free_bytes") > 0.0, "{m}");
    // What the store's commits handed to sled: the apply, identity check,
    // accept and receipt each committed, every commit inserted something.
    let commits = value(&m, "tongban_store_commits_total");
    let writes = value(&m, "tongban_store_commit_writes_total");
    assert!(commits >= 4.0, "{m}");
    assert!(writes >= commits, "{m}");
    assert!(value(&m, "tongban_store_commit_reads_total") >= 1.0, "{m}");
    assert!(
        value(&m, "tongban_store_commit_bytes_total") > writes,
        "{m}"
    );
    // Copied from the store at each scrape, not added to.
    let (_, again) = get(admin, "/metrics").await;
    let commits_again = value(&again, "tongban_store_commits_total");
    assert!(
        commits_again >= commits && commits_again < 2.0 * commits,
        "{commits} then {commits_again} commits"
    );
    assert!(
        m.contains(&format!(
            "tongban_build_info{{version=\"{}\"",
            env!("CARGO_PKG_VERSION")
        )),
        "{m}"
    );
    // No case number, applicant name or resident id in any label.
    assert!(!m.contains(&case.case_no) && !m.contains(PERSON_ID) && !m.contains("张三"));

    // The home node holds the case on its side.
    let (_, home) = get(home_admin, "/metrics").await;
    let home_cases: f64 = home
        .lines()
        .filter(|l| l.starts_with("tongban_cases{side=\"home\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(home_cases, 1.0, "{home}");

    // The partner goes down: the next case waits in the outbox, and the
    // failed attempts are counted by cause.
    sandbox.stop(YANTA).await.expect("stop the home node");
    let queued = accepted_case(&mut window, YANTA).await;
    assert_eq!(queued.state, "QUEUED");
    let m = eventually("a failed attempt in the metrics", || async {
        let (_, m) = get(admin, "/metrics").await;
        let failed = sample(
            &m,
            &format!(
                "tongban_handoff_attempts_failed_total{{partner=\"{YANTA}\",cause=\"unavailable\"}}"
            ),
        )?;
        (failed >= 1.0).then_some(m)
    })
    .await;
    assert_eq!(value(&m, &format!("tongban_outbox_depth{partner}")), 1.0);
    assert!(value(&m, &format!("tongban_outbox_oldest_age_seconds{partner}")) > 0.0);
    assert_eq!(
        value(&m, &format!("tongban_handoffs_sent_total{partner}")),
        1.0
    );
    assert_eq!(
        value(&m, "tongban_cases{side=\"window\",state=\"QUEUED\"}"),
        1.0
    );
    sandbox
        .stop_all(std::time::Duration::from_secs(10))
        .await
        .expect("stop");
}

/// The outbox gauges, read only for partners with unparked entries, are
/// right after queueing, a restart, draining and parking: a partner whose
/// queue empties shows 0, not the depth it had.
#[tokio::test]
async fn outbox_gauges_follow_queueing_a_restart_draining_and_parking() {
    let mut sandbox = tongban_sandbox::Builder::new()
        .temp_prefix("tongban-ops-")
        .counties(&[HANTAI, YANTA])
        .node_config(
            "[delivery]\ninitial_backoff_ms = 20\nmax_backoff_ms = 200\nmax_attempts = 0\n",
        )
        .admin(true)
        .build()
        .expect("lay out the sandbox");
    sandbox.start_all().await.expect("start the nodes");
    let admin = sandbox.admin_addr(HANTAI).expect("an admin port");
    let partner = format!("{{partner=\"{YANTA}\"}}");
    let depth = format!("tongban_outbox_depth{partner}");
    let oldest = format!("tongban_outbox_oldest_age_seconds{partner}");
    let metrics = || async { get(admin, "/metrics").await.1 };

    // Queued: the accept's commit wrote the entries, the partner is down.
    sandbox.stop(YANTA).await.expect("stop the home node");
    let mut window = WindowClient::new(sandbox.client(HANTAI, clerk(HANTAI, "wang")));
    let first = accepted_case(&mut window, YANTA).await;
    accepted_case(&mut window, YANTA).await;
    let m = metrics().await;
    assert_eq!(value(&m, &depth), 2.0, "{m}");
    assert!(value(&m, &oldest) > 0.0, "{m}");

    // Read from the store again after a restart.
    sandbox
        .restart(HANTAI)
        .await
        .expect("restart the window node");
    let m = metrics().await;
    assert_eq!(value(&m, &depth), 2.0, "{m}");
    assert!(value(&m, &oldest) > 0.0, "{m}");

    // Drained: the partner is back and both are receipted.
    sandbox.start(YANTA).await.expect("start the home node");
    let mut window = WindowClient::new(sandbox.client(HANTAI, clerk(HANTAI, "wang")));
    window_state(&mut window, &first.case_no, "HANDED_OFF").await;
    let m = eventually("the outbox drained", || async {
        let m = metrics().await;
        (sample(&m, &depth) == Some(0.0)).then_some(m)
    })
    .await;
    assert_eq!(value(&m, &oldest), 0.0, "{m}");
    assert_eq!(
        value(&m, "tongban_cases{side=\"window\",state=\"HANDED_OFF\"}"),
        2.0
    );

    // Parked: with the partner down and two attempts allowed, the next
    // case's entry leaves the unparked queue.
    sandbox.stop(YANTA).await.expect("stop the home node");
    sandbox.stop(HANTAI).await.expect("stop the window node");
    let config = sandbox.config_path(HANTAI).to_owned();
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("max_attempts = 0"), "{text}");
    std::fs::write(
        &config,
        text.replace("max_attempts = 0", "max_attempts = 2"),
    )
    .unwrap();
    sandbox.start(HANTAI).await.expect("start the window node");
    let mut window = WindowClient::new(sandbox.client(HANTAI, clerk(HANTAI, "wang")));
    accepted_case(&mut window, YANTA).await;
    let parked = format!("tongban_handoffs_parked_total{partner}");
    let m = eventually("the handoff parked", || async {
        let m = metrics().await;
        (sample(&m, &parked) == Some(1.0)).then_some(m)
    })
    .await;
    assert_eq!(value(&m, &depth), 0.0, "{m}");
    assert_eq!(value(&m, &oldest), 0.0, "{m}");
    sandbox
        .stop_all(std::time::Duration::from_secs(10))
        .await
        .expect("stop");
}
