//! A new holiday calendar and the cases already running: the home node
//! counts their dates again at start, records what moved in its ledger and
//! tells the window, once. Real nodes over mutual TLS, real sled; the
//! nodes' clock is set to the dates of the 2026 National Day holiday.

use time::macros::datetime;
use tongban_proto::common::v1::CaseView;
use tongban_proto::review::v1::{CaseRef as ReviewRef, CorrectRequest};
use tongban_proto::window::v1::{AttachFrame, AttachHeader, CaseRef, attach_frame};

use crate::support::*;

/// The federation directory with its `[[calendar]]` tables (the file ends
/// with them) taken out: every year counts Monday to Friday.
pub(crate) fn without_calendar(full: &str) -> String {
    let at = full
        .find("\n[[calendar]]")
        .expect("the example has a calendar");
    // Keep the comment lines above the table out too.
    let head = &full[..at];
    let cut = head.rfind("\n\n").unwrap_or(at);
    format!("{}\n", &full[..cut])
}

/// Starts 汉台 and 雁塔 on a directory without the calendar, at `at`.
/// Returns the cluster and the full directory text to put back.
pub(crate) async fn cluster_without_calendar(clock: &TestClock) -> (Cluster, String) {
    let mut full = String::new();
    let cluster = Cluster::start_after(
        Options {
            clock: Some(clock.clock()),
            ..Options::default()
        },
        |sb| {
            full = std::fs::read_to_string(sb.directory_path()).unwrap();
            std::fs::write(sb.directory_path(), without_calendar(&full)).unwrap();
        },
    )
    .await;
    (cluster, full)
}

/// Restarts 雁塔 on the directory `text`.
pub(crate) async fn restart_home_with(cluster: &mut Cluster, text: &str) {
    cluster.stop(YANTA).await;
    std::fs::write(cluster.directory_path(), text).unwrap();
    cluster.restart(YANTA).await;
}

pub(crate) fn recounts(c: &CaseView) -> Vec<&str> {
    c.history
        .iter()
        .filter(|h| h.event == "case.due-recomputed")
        .map(|h| h.detail.as_str())
        .collect()
}

/// A case handed off to 雁塔 and accepted for review there.
pub(crate) async fn under_review(cluster: &Cluster) -> String {
    let mut window = cluster.window(HANTAI).await;
    let mut review = cluster.review(YANTA).await;
    let case = accepted_case(&mut window, YANTA).await;
    home_state(&mut review, &case.case_no, "HANDED_OFF").await;
    review
        .accept(ReviewRef {
            request_id: String::new(),
            case_no: case.case_no.clone(),
        })
        .await
        .expect("review accept");
    case.case_no
}

#[tokio::test]
async fn a_promise_counted_monday_to_friday_moves_once_when_the_calendar_arrives() {
    // Wednesday 30 September 2026, 10:00 China Standard Time.
    let clock = TestClock::at(datetime!(2026-09-30 02:00 UTC));
    let (mut cluster, full) = cluster_without_calendar(&clock).await;
    let case_no = under_review(&cluster).await;
    let mut review = cluster.review(YANTA).await;
    let mut window = cluster.window(HANTAI).await;
    let home = review
        .get_case(ReviewRef {
            request_id: String::new(),
            case_no: case_no.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        home.due_date, "2026-10-07",
        "Monday to Friday: in the holiday"
    );
    // The acceptance says how it was counted (the note may already say
    // that the window holds the report).
    assert!(
        home.history.iter().any(|h| h.event == "review.accepted"
            && h.detail.contains("without a holiday calendar for 2026")),
        "{:?}",
        home.history
    );
    window_case_until(&mut window, &case_no, "the promise mirrored", |c| {
        c.due_date == "2026-10-07"
    })
    .await;

    // The province's 2026 calendar arrives; 雁塔 restarts with it.
    restart_home_with(&mut cluster, &full).await;
    let mut review = cluster.review(YANTA).await;
    let home = home_case_until(&mut review, &case_no, "due date recounted", |c| {
        c.due_date == "2026-10-13"
    })
    .await;
    let entries = recounts(&home);
    assert_eq!(entries.len(), 1, "one entry: {entries:?}");
    assert!(
        entries[0].contains("promised date 2026-10-07 → 2026-10-13")
            && entries[0].contains("(2026:"),
        "{}",
        entries[0]
    );
    assert_eq!(home.state, "UNDER_REVIEW", "the case did not move");
    // 8, 9, 10 (a make-up Saturday), 12, 13 October are left from today.
    assert_eq!(home.working_days_left, 5);
    // The window learns of it from 雁塔 and records the report.
    let at_window = window_case_until(&mut window, &case_no, "due date mirrored", |c| {
        c.due_date == "2026-10-13"
    })
    .await;
    assert!(
        at_window
            .history
            .iter()
            .any(|h| h.event == "update.received"
                && h.detail.starts_with("case.due-recomputed at 610113")),
        "{:?}",
        at_window.history
    );
    assert!(at_window.clock_running);

    // A second restart with the same calendar writes nothing; the ledger's
    // chain verifies. (Once 雁塔 holds the window's receipts for its two
    // reports, so the courier has nothing left to record either.)
    home_case_until(&mut review, &case_no, "receipts", |c| receipts(c) >= 2).await;
    cluster.stop(YANTA).await;
    let head = {
        let store = tongban_ledger::Store::open(cluster.data_dir(YANTA)).unwrap();
        let checked = store.verify().unwrap().expect("the chain verifies");
        assert_eq!(checked, store.head().unwrap().0);
        checked
    };
    cluster.restart(YANTA).await;
    let mut review = cluster.review(YANTA).await;
    let home = review
        .get_case(ReviewRef {
            request_id: String::new(),
            case_no: case_no.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(recounts(&home).len(), 1, "nothing recorded again");
    assert_eq!(home.due_date, "2026-10-13");
    cluster.stop(YANTA).await;
    let store = tongban_ledger::Store::open(cluster.data_dir(YANTA)).unwrap();
    assert_eq!(
        store.head().unwrap().0,
        head,
        "no entry at all on the restart"
    );
}

#[tokio::test]
async fn a_clock_paused_for_a_correction_is_counted_again_and_resumes_on_the_calendar() {
    // Thursday 24 September 2026: five days Monday to Friday end on 1 October.
    let clock = TestClock::at(datetime!(2026-09-24 02:00 UTC));
    let (mut cluster, full) = cluster_without_calendar(&clock).await;
    let case_no = under_review(&cluster).await;
    let mut review = cluster.review(YANTA).await;
    let mut window = cluster.window(HANTAI).await;
    // Tuesday 29th: the reviewer asks for a correction; 30 September and 1
    // October are left Monday to Friday, and the correction is due in 5.
    clock.set(datetime!(2026-09-29 02:00 UTC));
    let asked = review
        .correct(CorrectRequest {
            request_id: String::new(),
            case_no: case_no.clone(),
            needs: vec![tongban_proto::common::v1::CorrectionNeed {
                kind: "premises-proof".into(),
                reason: "租赁合同未签字".into(),
            }],
            deadline_days: 5,
        })
        .await
        .expect("correct")
        .into_inner();
    assert_eq!(asked.working_days_left, 2);
    assert_eq!(asked.corrections[0].deadline, "2026-10-06");
    window_state(&mut window, &case_no, "CORRECTION_REQUESTED").await;

    restart_home_with(&mut cluster, &full).await;
    let mut review = cluster.review(YANTA).await;
    let home = home_case_until(&mut review, &case_no, "recounted", |c| {
        !recounts(c).is_empty()
    })
    .await;
    // With the calendar the clock had used only the 28th and 29th (the
    // 25th is 中秋节): 3 days left; the correction is due 30 September, 8,
    // 9, 10 and 12 October.
    assert_eq!(home.working_days_left, 3);
    assert!(!home.clock_running);
    assert_eq!(home.corrections[0].deadline, "2026-10-12");
    let entries = recounts(&home);
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert!(
        entries[0].contains("working days left (paused) 2 → 3")
            && entries[0].contains("correction deadline 2026-10-06 → 2026-10-12"),
        "{}",
        entries[0]
    );
    let at_window = window_case_until(&mut window, &case_no, "deadline mirrored", |c| {
        c.corrections
            .first()
            .is_some_and(|k| k.deadline == "2026-10-12")
    })
    .await;
    assert!(
        !at_window.note.contains("dates counted again"),
        "the window's note still says what the case waits for: {}",
        at_window.note
    );

    // Wednesday 30th the supplement arrives: 3 days from then are 8, 9 and
    // the make-up Saturday 10 October.
    clock.set(datetime!(2026-09-30 02:00 UTC));
    let lease = b"signed lease".to_vec();
    let frames = vec![
        AttachFrame {
            frame: Some(attach_frame::Frame::Header(AttachHeader {
                request_id: String::new(),
                case_no: case_no.clone(),
                materials: vec![header("premises-proof", &lease)],
            })),
        },
        AttachFrame {
            frame: Some(attach_frame::Frame::Chunk(
                tongban_proto::common::v1::MaterialChunk {
                    material: 0,
                    data: lease.into(),
                },
            )),
        },
    ];
    window
        .attach(tokio_stream::iter(frames))
        .await
        .expect("attach");
    window
        .resubmit(CaseRef {
            request_id: String::new(),
            case_no: case_no.clone(),
        })
        .await
        .expect("resubmit");
    let home = home_case_until(&mut review, &case_no, "clock running again", |c| {
        c.clock_running
    })
    .await;
    assert_eq!(home.due_date, "2026-10-10");
    window_case_until(&mut window, &case_no, "resumed promise mirrored", |c| {
        c.due_date == "2026-10-10"
    })
    .await;
}

#[tokio::test]
async fn a_commitment_deadline_set_at_the_window_is_counted_again_by_the_home_node() {
    // Wednesday 30 September 2026: 3 working days Monday to Friday are 1, 2
    // and 5 October; with the calendar 8, 9 and the make-up Saturday 10th.
    let clock = TestClock::at(datetime!(2026-09-30 02:00 UTC));
    let (mut cluster, full) = cluster_without_calendar(&clock).await;
    let mut window = cluster.window(HANTAI).await;
    let materials: Vec<_> = gt_materials()
        .into_iter()
        .filter(|(k, _)| *k != "premises-proof")
        .collect();
    let case = apply(
        &mut window,
        "GT-0001",
        YANTA,
        "mail-applicant",
        person(),
        &materials,
    )
    .await
    .expect("apply");
    let case_no = case.case_no.clone();
    window
        .verify_identity(tongban_proto::window::v1::VerifyIdentityRequest {
            request_id: String::new(),
            case_no: case_no.clone(),
            method: "id-card-reader".into(),
        })
        .await
        .expect("verify identity");
    let committed = window
        .commit(tongban_proto::window::v1::CommitRequest {
            request_id: String::new(),
            case_no: case_no.clone(),
            signer: "张三".into(),
            kinds: vec!["premises-proof".into()],
            days: 3,
        })
        .await
        .expect("commit")
        .into_inner();
    assert_eq!(committed.commitment.unwrap().due_date, "2026-10-05");
    window
        .accept(CaseRef {
            request_id: String::new(),
            case_no: case_no.clone(),
        })
        .await
        .expect("accept");
    let mut review = cluster.review(YANTA).await;
    let home = home_state(&mut review, &case_no, "HANDED_OFF").await;
    assert_eq!(home.commitment.unwrap().days, 3, "the days travel with it");

    restart_home_with(&mut cluster, &full).await;
    let mut review = cluster.review(YANTA).await;
    let home = home_case_until(&mut review, &case_no, "recounted", |c| {
        c.commitment
            .as_ref()
            .is_some_and(|k| k.due_date == "2026-10-10")
    })
    .await;
    let entries = recounts(&home);
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert!(
        entries[0].contains("commitment deadline 2026-10-05 → 2026-10-10"),
        "{}",
        entries[0]
    );
    window_case_until(&mut window, &case_no, "commitment deadline mirrored", |c| {
        c.commitment
            .as_ref()
            .is_some_and(|k| k.due_date == "2026-10-10")
    })
    .await;
}

#[tokio::test]
async fn a_recount_that_moves_the_promise_past_today_takes_the_case_off_the_overdue_list() {
    // Accepted Wednesday 30 September 2026 without a calendar: due 7 October.
    let clock = TestClock::at(datetime!(2026-09-30 02:00 UTC));
    let (mut cluster, full) = cluster_without_calendar(&clock).await;
    let case_no = under_review(&cluster).await;
    // Friday 9 October: two weekdays past the Monday-to-Friday date.
    clock.set(datetime!(2026-10-09 02:00 UTC));
    let mut review = cluster.review(YANTA).await;
    let overdue = |nos: Vec<CaseView>| nos.into_iter().map(|c| c.case_no).collect::<Vec<_>>();
    let listed = review
        .overdue(tongban_proto::review::v1::OverdueRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(overdue(listed.cases), std::slice::from_ref(&case_no));

    // With the calendar the promise is 13 October: the recount's write
    // moves the case's deadline key with it.
    restart_home_with(&mut cluster, &full).await;
    let mut review = cluster.review(YANTA).await;
    home_case_until(&mut review, &case_no, "due date recounted", |c| {
        c.due_date == "2026-10-13"
    })
    .await;
    let listed = review
        .overdue(tongban_proto::review::v1::OverdueRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(listed.cases.is_empty(), "{:?}", overdue(listed.cases));
}
