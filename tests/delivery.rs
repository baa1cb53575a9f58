//! How the courier delivers: only to the named partner, in bounded
//! attempts, backing off per partner, parking only what cannot be sent.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tongban_ledger::records::MaterialRef;
use tongban_proto::common::v1::CaseView;
use tongban_proto::review::v1::InboxRequest;
use tongban_proto::window::v1::window_client::WindowClient;
use tonic::transport::Channel;

use crate::support::*;

/// Rewrites `code`'s directory (stopping and restarting its node) so that
/// the endpoint of `partner` is `endpoint`.
async fn point_partner(cluster: &mut Cluster, code: &str, partner: &str, endpoint: &str) {
    cluster.stop(code).await;
    let path = cluster.directory_path();
    let text = std::fs::read_to_string(&path).unwrap();
    let mut changed = String::new();
    let mut in_partner = false;
    for line in text.lines() {
        if line.starts_with("code = ") {
            in_partner = line == format!("code = \"{partner}\"");
        }
        if in_partner && line.starts_with("endpoint = ") {
            changed.push_str(&format!("endpoint = \"{endpoint}\"\n"));
            in_partner = false;
            continue;
        }
        changed.push_str(line);
        changed.push('\n');
    }
    assert_ne!(changed, text, "{partner} is in the directory");
    std::fs::write(&path, changed).unwrap();
    cluster.restart(code).await;
}

async fn inbox_case_nos(cluster: &Cluster, code: &str) -> Vec<String> {
    let mut review = cluster.review(code).await;
    let mut nos: Vec<String> = review
        .inbox(InboxRequest::default())
        .await
        .expect("inbox")
        .into_inner()
        .cases
        .into_iter()
        .map(|c| c.case_no)
        .collect();
    nos.sort();
    nos
}

#[tokio::test]
async fn a_case_goes_only_to_the_node_of_its_destination() {
    let mut cluster = Cluster::start().await;
    // 雁塔's directory says 汉台 is at 商州's address, where 商州's real node
    // answers with its valid federation certificate.
    let shangzhou = format!("https://{}", cluster.addr(SHANGZHOU));
    point_partner(&mut cluster, YANTA, HANTAI, &shangzhou).await;
    let mut window = cluster.window(YANTA).await;
    let to_hantai = accepted_case(&mut window, HANTAI).await;
    let to_shangzhou = accepted_case(&mut window, SHANGZHOU).await;

    // 商州 is served in the same run...
    window_state(&mut window, &to_shangzhou.case_no, "HANDED_OFF").await;
    // ...while the case for 汉台 waits, noting whom it found instead.
    let waiting = window_case_until(
        &mut window,
        &to_hantai.case_no,
        "a wrong-partner note",
        |c| {
            c.note
                .contains(&format!("expected spiffe://{TD}/county/{HANTAI}/node"))
        },
    )
    .await;
    assert_eq!(waiting.state, "QUEUED");
    assert!(
        waiting.note.contains(&format!(
            "server certificate is spiffe://{TD}/county/{SHANGZHOU}/node"
        )),
        "{}",
        waiting.note
    );
    assert!(waiting.note.contains("next try in"), "{}", waiting.note);
    // The impostor holds only the case that was for it.
    assert_eq!(
        inbox_case_nos(&cluster, SHANGZHOU).await,
        std::slice::from_ref(&to_shangzhou.case_no)
    );
    assert!(inbox_case_nos(&cluster, HANTAI).await.is_empty());

    // A wrong endpoint is an operator's fix, not a refusal: once the
    // directory is right, the case goes through.
    let hantai = format!("https://{}", cluster.addr(HANTAI));
    point_partner(&mut cluster, YANTA, HANTAI, &hantai).await;
    let mut window = cluster.window(YANTA).await;
    window_state(&mut window, &to_hantai.case_no, "HANDED_OFF").await;
    assert_eq!(
        inbox_case_nos(&cluster, HANTAI).await,
        std::slice::from_ref(&to_hantai.case_no)
    );
    assert_eq!(
        inbox_case_nos(&cluster, SHANGZHOU).await,
        [to_shangzhou.case_no]
    );
}

/// A TCP listener that accepts connections and never says a word; counts them.
async fn hung_partner() -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            held.push(stream);
        }
    });
    (addr, accepted)
}

#[tokio::test]
async fn a_hung_partner_fails_its_attempt_in_time_and_delays_no_one_else() {
    const ATTEMPT: Duration = Duration::from_millis(3000);
    let mut options = Options::default();
    options
        .extra
        .push_str(&format!("attempt_timeout_ms = {}\n", ATTEMPT.as_millis()));
    let mut cluster = Cluster::start_with(options).await;
    let (hung, accepted) = hung_partner().await;
    point_partner(&mut cluster, YANTA, HANTAI, &format!("https://{hung}")).await;
    let mut window = cluster.window(YANTA).await;
    let to_hantai = accepted_case(&mut window, HANTAI).await;
    let queued_at = tokio::time::Instant::now();
    let to_shangzhou = accepted_case(&mut window, SHANGZHOU).await;

    // 商州 is served while the attempt to 汉台 still hangs.
    window_state(&mut window, &to_shangzhou.case_no, "HANDED_OFF").await;
    let meanwhile = window
        .get_case(tongban_proto::window::v1::CaseRef {
            case_no: to_hantai.case_no.clone(),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        !meanwhile.note.contains("not yet delivered"),
        "{}",
        meanwhile.note
    );

    // The hung attempt ends at its deadline, noted on its case.
    let failed = tokio::time::timeout(
        ATTEMPT * 2,
        window_case_until(&mut window, &to_hantai.case_no, "a failed attempt", |c| {
            c.note.contains("not yet delivered to 610702")
        }),
    )
    .await
    .expect("the attempt fails within its deadline");
    let took = queued_at.elapsed();
    assert!(took >= ATTEMPT - Duration::from_millis(100), "{took:?}");
    assert!(
        failed
            .note
            .contains("no connection (TCP, TLS, HTTP/2) within 3s"),
        "{}",
        failed.note
    );
    assert_eq!(failed.state, "QUEUED");
    assert!(accepted.load(std::sync::atomic::Ordering::SeqCst) >= 1);
}

/// A TCP relay to `upstream` that can go dark: while dark it drops every
/// byte in both directions but keeps the connections open, like a link
/// whose packets are lost.
async fn relay(upstream: SocketAddr) -> (SocketAddr, Arc<AtomicBool>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let dark = Arc::new(AtomicBool::new(false));
    let is_dark = dark.clone();
    tokio::spawn(async move {
        while let Ok((inbound, _)) = listener.accept().await {
            let Ok(outbound) = tokio::net::TcpStream::connect(upstream).await else {
                continue;
            };
            let (ir, iw) = inbound.into_split();
            let (or, ow) = outbound.into_split();
            tokio::spawn(pipe(ir, ow, is_dark.clone()));
            tokio::spawn(pipe(or, iw, is_dark.clone()));
        }
    });
    (addr, dark)
}

async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    dark: Arc<AtomicBool>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if !dark.load(Ordering::SeqCst) && to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

#[tokio::test]
async fn a_connection_that_goes_dark_fails_its_stream_in_time() {
    const ATTEMPT: Duration = Duration::from_millis(1000);
    let mut options = Options::default();
    options
        .extra
        .push_str(&format!("attempt_timeout_ms = {}\n", ATTEMPT.as_millis()));
    let mut cluster = Cluster::start_with(options).await;
    let (relayed, dark) = relay(cluster.addr(HANTAI)).await;
    point_partner(&mut cluster, YANTA, HANTAI, &format!("https://{relayed}")).await;
    let mut window = cluster.window(YANTA).await;
    let first = accepted_case(&mut window, HANTAI).await;
    window_state(&mut window, &first.case_no, "HANDED_OFF").await;

    // The connection stays open, and then nothing gets through any more.
    dark.store(true, Ordering::SeqCst);
    let second = accepted_case(&mut window, HANTAI).await;
    let failed = tokio::time::timeout(
        ATTEMPT * 4,
        window_case_until(&mut window, &second.case_no, "a failed attempt", |c| {
            c.note.contains("not yet delivered to 610702")
        }),
    )
    .await
    .expect("the dark connection is noticed within the stream's deadline");
    assert_eq!(failed.state, "QUEUED");

    // Light again: the next attempt dials a new connection and delivers.
    dark.store(false, Ordering::SeqCst);
    window_state(&mut window, &second.case_no, "HANDED_OFF").await;
}

#[tokio::test]
async fn after_an_outage_the_queue_drains_at_once_with_the_shipped_backoff() {
    // Shipped backoff (500 ms doubling, up to 25 % jitter); batches of two,
    // so four streams fail in each round.
    let mut cluster = Cluster::start_with(Options {
        extra: "[delivery]\nbatch_size = 2\n".into(),
        ..Options::default()
    })
    .await;
    let outage = std::time::Instant::now();
    cluster.stop(YANTA).await;
    let mut window = cluster.window(HANTAI).await;
    let mut queued = Vec::new();
    for _ in 0..8 {
        queued.push(accepted_case(&mut window, YANTA).await.case_no);
    }
    // The node's own schedule, as each case's note announces it: the wait
    // before its next try. With the failed streams of a round counted once,
    // the k-th round fails no earlier than 0.5 s × (2^(k-1) - 1) after the
    // first, so no announced wait exceeds 1.25 × (outage + 0.5 s), however
    // slowly a loaded machine got through the rounds (a longer outage only
    // allows more). Counting each failed stream announced 4 s after the
    // first round and the 60 s maximum after the second.
    for case_no in &queued {
        let case = window_case_until(&mut window, case_no, "a failed attempt", |c| {
            c.note.contains("not yet delivered to 610113")
        })
        .await;
        let announced = next_try_in(&case.note);
        let bound = (outage.elapsed() + Duration::from_millis(500)).mul_f64(1.25);
        // The note rounds to a tenth of a second.
        assert!(
            announced <= bound + Duration::from_millis(50),
            "{case_no}: {:?} announced after an outage of {:?}: {}",
            announced,
            outage.elapsed(),
            case.note
        );
    }
    cluster.restart(YANTA).await;
    // The partner's port takes connections again: the next try delivers.
    for case_no in &queued {
        window_state(&mut window, case_no, "HANDED_OFF").await;
    }
}

/// The wait a courier's note announces: `… next try in 512ms` or `… in 2.3s`.
fn next_try_in(note: &str) -> Duration {
    let (_, wait) = note
        .rsplit_once("next try in ")
        .unwrap_or_else(|| panic!("no next try in {note:?}"));
    let parse = |v: &str| -> f64 {
        v.parse()
            .unwrap_or_else(|e| panic!("{v:?} in {note:?}: {e}"))
    };
    match wait.strip_suffix("ms") {
        Some(ms) => Duration::from_millis(parse(ms) as u64),
        None => Duration::from_secs_f64(parse(wait.strip_suffix('s').unwrap_or(wait))),
    }
}

/// The stored materials of a case at a stopped node, each with the path
/// its file would have.
fn stored_materials(
    data_dir: &std::path::Path,
    application_id: &str,
) -> Vec<(MaterialRef, std::path::PathBuf)> {
    let store = tongban_ledger::Store::open(data_dir).expect("open the stopped node's store");
    let case = store
        .case(application_id)
        .unwrap()
        .expect("the case is stored");
    case.materials
        .into_iter()
        .map(|m| {
            let path = tongban_ledger::testing::blob_path(data_dir, &m.sha256);
            (m, path)
        })
        .collect()
}

/// Overwrites `len` bytes of `path` at `offset` with their complement.
fn damage(path: &std::path::Path, offset: u64, len: usize) {
    use std::os::unix::fs::FileExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut buf = vec![0u8; len];
    file.read_exact_at(&mut buf, offset).unwrap();
    for b in &mut buf {
        *b = !*b;
    }
    file.write_all_at(&buf, offset).unwrap();
}

/// Waits until the window's case is parked, and returns it.
async fn parked(window: &mut WindowClient<Channel>, case_no: &str) -> CaseView {
    let case = window_case_until(window, case_no, "parked", |c| {
        c.history.iter().any(|h| h.event == "handoff.parked")
    })
    .await;
    assert_eq!(case.state, "QUEUED", "not handed off");
    assert!(case.note.contains("the handoff is parked"), "{}", case.note);
    case
}

#[tokio::test]
async fn a_damaged_record_in_the_material_log_parks_its_handoff_and_the_batch_goes_on() {
    let mut cluster = Cluster::start().await;
    cluster.stop(YANTA).await;
    let mut window = cluster.window(HANTAI).await;
    let mut cases = Vec::new();
    for _ in 0..3 {
        cases.push(accepted_case(&mut window, YANTA).await);
    }
    // Damage the second case's application form where the log holds it.
    cluster.stop(HANTAI).await;
    let data_dir = cluster.data_dir(HANTAI).to_path_buf();
    let form = stored_materials(&data_dir, &cases[1].application_id)
        .into_iter()
        .find(|(m, _)| m.kind == "application-form")
        .unwrap()
        .0;
    let span = form.log.expect("a small material is in the log");
    damage(&data_dir.join("materials.log"), span.offset, 4);
    cluster.restart(YANTA).await;
    cluster.restart(HANTAI).await;

    let mut window = cluster.window(HANTAI).await;
    for ok in [&cases[0], &cases[2]] {
        window_state(&mut window, &ok.case_no, "HANDED_OFF").await;
    }
    let bad = parked(&mut window, &cases[1].case_no).await;
    assert!(
        bad.note.contains("cannot send material application-form: "),
        "{}",
        bad.note
    );
    assert!(bad.note.contains("materials.log"), "{}", bad.note);
    assert_eq!(
        inbox_case_nos(&cluster, YANTA).await,
        sorted([cases[0].case_no.clone(), cases[2].case_no.clone()])
    );
}

#[tokio::test]
async fn a_material_file_gone_or_changed_parks_only_its_handoff() {
    let mut cluster = Cluster::start().await;
    cluster.stop(YANTA).await;
    let mut window = cluster.window(HANTAI).await;
    // Over the log's limit: each id card is a file of its own.
    let materials = |fill: u8| {
        vec![
            ("id-card", vec![fill; 300_000]),
            ("application-form", b"signed application form".to_vec()),
            ("premises-proof", b"lease contract".to_vec()),
        ]
    };
    let mut cases = Vec::new();
    for fill in 1..=3 {
        let case = apply(
            &mut window,
            "GT-0001",
            YANTA,
            "mail-applicant",
            person(),
            &materials(fill),
        )
        .await
        .expect("apply");
        window
            .verify_identity(tongban_proto::window::v1::VerifyIdentityRequest {
                case_no: case.case_no.clone(),
                method: "id-card-reader".into(),
                request_id: String::new(),
            })
            .await
            .unwrap();
        window
            .accept(tongban_proto::window::v1::CaseRef {
                case_no: case.case_no.clone(),
                request_id: String::new(),
            })
            .await
            .unwrap();
        cases.push(case);
    }
    cluster.stop(HANTAI).await;
    let data_dir = cluster.data_dir(HANTAI).to_path_buf();
    let id_card = |case: &CaseView| {
        stored_materials(&data_dir, &case.application_id)
            .into_iter()
            .find(|(m, _)| m.kind == "id-card")
            .unwrap()
    };
    // The first case's file is changed in place (same size), the third's is gone.
    let (changed, path) = id_card(&cases[0]);
    assert!(changed.log.is_none(), "a file");
    damage(&path, 1000, 8);
    std::fs::remove_file(id_card(&cases[2]).1).unwrap();
    cluster.restart(YANTA).await;
    cluster.restart(HANTAI).await;

    let mut window = cluster.window(HANTAI).await;
    window_state(&mut window, &cases[1].case_no, "HANDED_OFF").await;
    let changed = parked(&mut window, &cases[0].case_no).await;
    assert!(
        changed
            .note
            .contains("material id-card no longer matches its digest"),
        "{}",
        changed.note
    );
    let gone = parked(&mut window, &cases[2].case_no).await;
    assert!(
        gone.note.contains("cannot send material id-card: "),
        "{}",
        gone.note
    );
    assert_eq!(
        inbox_case_nos(&cluster, YANTA).await,
        [cases[1].case_no.clone()]
    );
}

fn sorted<const N: usize>(mut v: [String; N]) -> [String; N] {
    v.sort();
    v
}
