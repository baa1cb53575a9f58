//! Review at the home authority, correction round trips, the promised-time
//! clock and decisions, across two nodes over mutual TLS (tracked post is in
//! `mail`).

use tongban_proto::common::v1::{CaseView, CorrectionNeed, MaterialChunk};
use tongban_proto::mail::v1::{EventRequest, SendRequest};
use tongban_proto::review::v1::{
    ApproveFrame, ApproveHeader, CaseRef, CorrectRequest, DenyRequest, InboxRequest,
    OverdueRequest, approve_frame,
};
use tongban_proto::window::v1::{AttachFrame, AttachHeader, ListCasesRequest, attach_frame};
use tonic::Code;
use tonic::transport::Channel;

use crate::mail::*;
use crate::support::*;

pub(crate) type Review = tongban_proto::review::v1::review_client::ReviewClient<Channel>;
type Window = tongban_proto::window::v1::window_client::WindowClient<Channel>;

pub(crate) fn case_ref(case_no: &str) -> CaseRef {
    CaseRef {
        case_no: case_no.into(),
        request_id: String::new(),
    }
}

/// A GT-0001 case from 汉台 handed off to 雁塔 and accepted there for review.
pub(crate) async fn under_review(cluster: &Cluster, delivery: &str) -> (Window, Review, String) {
    let mut window = cluster.window(HANTAI).await;
    let mut review = cluster.review(YANTA).await;
    let case = accepted_case_with(&mut window, YANTA, delivery).await;
    home_state(&mut review, &case.case_no, "HANDED_OFF").await;
    let accepted = review
        .accept(case_ref(&case.case_no))
        .await
        .expect("accept")
        .into_inner();
    assert_eq!(accepted.state, "UNDER_REVIEW");
    assert!(accepted.clock_running);
    assert_eq!(accepted.working_days_left, 5, "promised_days of GT-0001");
    window_state(&mut window, &case.case_no, "UNDER_REVIEW").await;
    (window, review, case.case_no)
}

pub(crate) async fn approve(review: &mut Review, case_no: &str) -> Result<CaseView, tonic::Status> {
    let doc = b"business licence PDF".to_vec();
    let frames = vec![
        ApproveFrame {
            frame: Some(approve_frame::Frame::Header(ApproveHeader {
                case_no: case_no.into(),
                licence_no: "92610702MA6YX0001A".into(),
                result: Some(header("result", &doc)),
                request_id: String::new(),
            })),
        },
        ApproveFrame {
            frame: Some(approve_frame::Frame::Chunk(MaterialChunk {
                material: 0,
                data: doc.into(),
            })),
        },
    ];
    review
        .approve(tokio_stream::iter(frames))
        .await
        .map(|r| r.into_inner())
}

fn attach_frames(case_no: &str, kind: &str, data: &[u8]) -> Vec<AttachFrame> {
    vec![
        AttachFrame {
            frame: Some(attach_frame::Frame::Header(AttachHeader {
                case_no: case_no.into(),
                materials: vec![header(kind, data)],
                request_id: String::new(),
            })),
        },
        AttachFrame {
            frame: Some(attach_frame::Frame::Chunk(MaterialChunk {
                material: 0,
                data: data.to_vec().into(),
            })),
        },
    ]
}

pub(crate) async fn request_correction(review: &mut Review, case_no: &str) -> CaseView {
    review
        .correct(CorrectRequest {
            case_no: case_no.into(),
            needs: vec![CorrectionNeed {
                kind: "premises-proof".into(),
                reason: "租赁合同未签字 (the lease is not signed)".into(),
            }],
            deadline_days: 3,
            request_id: String::new(),
        })
        .await
        .expect("correct")
        .into_inner()
}

#[tokio::test]
async fn a_correction_round_trip_pauses_and_resumes_the_clock() {
    let cluster = Cluster::start().await;
    let (mut window, mut review, case_no) = under_review(&cluster, "mail-applicant").await;
    let asked = request_correction(&mut review, &case_no).await;
    assert_eq!(asked.state, "CORRECTION_REQUESTED");
    assert!(!asked.clock_running);
    assert_eq!(asked.working_days_left, 5, "paused with what was left");

    window_state(&mut window, &case_no, "CORRECTION_REQUESTED").await;
    let listed = window
        .list_cases(ListCasesRequest {
            state: "CORRECTION_REQUESTED".into(),
            limit: 0,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.cases.len(), 1);
    assert_eq!(
        listed.cases[0].corrections[0].needs[0].kind,
        "premises-proof"
    );

    let err = window
        .resubmit(tongban_proto::window::v1::CaseRef {
            case_no: case_no.clone(),
            request_id: String::new(),
        })
        .await
        .expect_err("nothing attached yet");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(
        err.message().contains("premises-proof"),
        "{}",
        err.message()
    );

    let signed = b"signed lease".to_vec();
    window
        .attach(tokio_stream::iter(attach_frames(
            &case_no,
            "premises-proof",
            &signed,
        )))
        .await
        .expect("attach");
    window
        .resubmit(tongban_proto::window::v1::CaseRef {
            case_no: case_no.clone(),
            request_id: String::new(),
        })
        .await
        .expect("resubmit");
    let back = home_state(&mut review, &case_no, "UNDER_REVIEW").await;
    assert!(back.clock_running);
    let proof = back
        .materials
        .iter()
        .find(|m| m.kind == "premises-proof")
        .unwrap();
    assert_eq!(
        proof.sha256,
        sha256(&signed),
        "the supplement replaced the material at home"
    );
    let inbox = review
        .inbox(InboxRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(
        inbox
            .cases
            .iter()
            .any(|c| c.case_no == case_no && c.state == "UNDER_REVIEW")
    );
    let at_a = eventually("the resumed due date at the window", || {
        let mut w = window.clone();
        let case_no = case_no.clone();
        async move {
            let c = w
                .get_case(tongban_proto::window::v1::CaseRef {
                    case_no,
                    request_id: String::new(),
                })
                .await
                .ok()?
                .into_inner();
            (c.state == "UNDER_REVIEW" && c.clock_running).then_some(c)
        }
    })
    .await;
    assert_eq!(at_a.due_date, back.due_date);
}

/// Moves the test clock to `day` (China Standard Time), keeping the time of day.
pub(crate) fn set_today(clock: &TestClock, day: time::Date) {
    clock.advance_days((day - clock.clock().today()).whole_days());
}

/// Sends a signed lease for the open correction request and resubmits.
async fn supplement(window: &mut Window, case_no: &str) {
    window
        .attach(tokio_stream::iter(attach_frames(
            case_no,
            "premises-proof",
            b"signed lease",
        )))
        .await
        .expect("attach");
    window
        .resubmit(tongban_proto::window::v1::CaseRef {
            case_no: case_no.to_owned(),
            request_id: String::new(),
        })
        .await
        .expect("resubmit");
}

#[tokio::test]
async fn the_clock_skips_the_national_day_holiday_across_a_correction_pause() {
    let clock = TestClock::default();
    set_today(&clock, time::macros::date!(2026 - 09 - 28));
    let cluster = Cluster::on_clock(&clock).await;
    // Accepted on Monday 28 September with 5 working days: 29 and 30
    // September, then 1-7 October are holidays, then 8, 9 and the make-up
    // Saturday 10 October.
    let (mut window, mut review, case_no) = under_review(&cluster, "mail-applicant").await;
    let accepted = home_state(&mut review, &case_no, "UNDER_REVIEW").await;
    assert_eq!(accepted.due_date, "2026-10-10");
    assert!(
        accepted
            .history
            .iter()
            .any(|h| h.event == "review.accepted" && h.detail.ends_with("by 2026-10-10")),
        "counted with the 2026 calendar, nothing to say: {:?}",
        accepted.history
    );

    // Paused on Wednesday 30 September: 8, 9 and 10 October are left.
    set_today(&clock, time::macros::date!(2026 - 09 - 30));
    let asked = request_correction(&mut review, &case_no).await;
    assert!(!asked.clock_running);
    assert_eq!(asked.working_days_left, 3);
    assert_eq!(
        asked.corrections[0].deadline, "2026-10-10",
        "3 working days for the applicant: 8, 9 and the make-up Saturday 10 October"
    );
    window_state(&mut window, &case_no, "CORRECTION_REQUESTED").await;

    // The supplement arrives on Monday 5 October, during the holiday: the
    // clock resumes, and the holiday days still do not count.
    set_today(&clock, time::macros::date!(2026 - 10 - 05));
    supplement(&mut window, &case_no).await;
    let back = home_case_until(&mut review, &case_no, "resumed", |c| c.clock_running).await;
    assert_eq!(
        back.due_date, "2026-10-10",
        "Monday to Friday would say 2026-10-08"
    );
    assert_eq!(back.working_days_left, 3);
    // The window hears of it with the new due date.
    let at_window = window_case_until(&mut window, &case_no, "resumed", |c| {
        c.clock_running
            && c.history
                .iter()
                .any(|h| h.detail.contains("the clock runs again, due 2026-10-10"))
    })
    .await;
    assert_eq!(at_window.due_date, "2026-10-10");
}

#[tokio::test]
async fn a_due_date_in_a_year_without_a_calendar_says_so() {
    let clock = TestClock::default();
    set_today(&clock, time::macros::date!(2026 - 12 - 28));
    let cluster = Cluster::on_clock(&clock).await;
    // Monday 28 December + 5: 29, 30, 31 December, then 2027, which the
    // example directory has no calendar for: Friday 1 and Monday 4 January.
    let (mut window, mut review, case_no) = under_review(&cluster, "mail-applicant").await;
    let accepted = home_state(&mut review, &case_no, "UNDER_REVIEW").await;
    assert_eq!(accepted.due_date, "2027-01-04");
    // The acceptance's entry in each node's history says so (the case note
    // moves on with the next event).
    let note = "due date computed without a holiday calendar for 2027 (monday to friday)";
    let says_so = |c: &CaseView, event: &str| {
        c.history
            .iter()
            .any(|h| h.event == event && h.detail.contains(note))
    };
    assert!(
        says_so(&accepted, "review.accepted"),
        "{:?}",
        accepted.history
    );
    window_case_until(&mut window, &case_no, "the note on the due date", |c| {
        c.due_date == "2027-01-04" && says_so(c, "update.received")
    })
    .await;
}

#[tokio::test]
async fn a_denial_reaches_both_nodes() {
    let cluster = Cluster::start().await;
    let (mut window, mut review, case_no) = under_review(&cluster, "mail-applicant").await;
    let err = review
        .deny(DenyRequest {
            case_no: case_no.clone(),
            reason: " ".into(),
            request_id: String::new(),
        })
        .await
        .expect_err("reason required");
    refused_coded(
        Err::<(), _>(err),
        Code::InvalidArgument,
        "a denial needs its reason",
        "denial.reason-missing",
        "reason",
    );
    let denied = review
        .deny(DenyRequest {
            case_no: case_no.clone(),
            reason: "经营范围涉及前置许可 (needs a prior licence)".into(),
            request_id: String::new(),
        })
        .await
        .expect("deny")
        .into_inner();
    assert_eq!(denied.state, "DENIED");
    let at_a = window_state(&mut window, &case_no, "DENIED").await;
    assert!(at_a.denial_reason.contains("prior licence"));
}

pub(crate) async fn deny(review: &mut Review, case_no: &str) -> CaseView {
    review
        .deny(DenyRequest {
            request_id: String::new(),
            case_no: case_no.into(),
            reason: "经营范围涉及前置许可 (needs a prior licence)".into(),
        })
        .await
        .expect("deny")
        .into_inner()
}

#[tokio::test]
async fn overdue_cases_are_listed_under_a_controlled_clock() {
    let clock = TestClock::default();
    let cluster = Cluster::on_clock(&clock).await;
    let (mut window, mut review, case_no) = under_review(&cluster, "collect-home").await;
    assert!(
        review
            .overdue(OverdueRequest::default())
            .await
            .unwrap()
            .into_inner()
            .cases
            .is_empty()
    );
    // Three weeks later: 5 promised working days are long gone.
    clock.advance_days(21);
    let overdue = review
        .overdue(OverdueRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(overdue.cases.len(), 1);
    assert!(
        overdue.cases[0]
            .note
            .contains("working days past the promised date"),
        "{}",
        overdue.cases[0].note
    );
    assert!(
        overdue.cases[0].working_days_left <= -9,
        "{}",
        overdue.cases[0].working_days_left
    );
    let at_window = window
        .overdue(tongban_proto::window::v1::OverdueRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(at_window.cases.len(), 1, "the window sees it too");
    assert_eq!(at_window.cases[0].case_no, case_no);
}

async fn overdue_page(review: &mut Review, limit: u32, token: &str) -> (Vec<String>, String) {
    let page = review
        .overdue(OverdueRequest {
            limit,
            page_token: token.into(),
        })
        .await
        .unwrap()
        .into_inner();
    let nos = page.cases.into_iter().map(|c| c.case_no).collect();
    (nos, page.next_page_token)
}

#[tokio::test]
async fn cases_enter_the_overdue_list_as_the_clock_passes_and_leave_it_when_decided() {
    let clock = TestClock::default();
    let cluster = Cluster::on_clock(&clock).await;
    let (_, mut review, first) = under_review(&cluster, "collect-home").await;
    let (_, _, second) = under_review(&cluster, "collect-home").await;
    assert_eq!(
        overdue_page(&mut review, 0, "").await.0,
        Vec::<String>::new()
    );
    // Entering needs no write: the promised date is in the index, and
    // today moving past it is enough.
    clock.advance_days(21);
    let (page1, token) = overdue_page(&mut review, 1, "").await;
    assert_eq!(
        page1,
        std::slice::from_ref(&first),
        "same deadline: in creation order"
    );
    assert!(!token.is_empty(), "a second page follows");
    let (page2, token) = overdue_page(&mut review, 1, &token).await;
    assert_eq!(
        page2,
        std::slice::from_ref(&second),
        "the next page starts after the last"
    );
    assert_eq!(token, "", "and is the last");
    let status = review
        .overdue(OverdueRequest {
            limit: 1,
            page_token: "3".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("page_token"), "{status:?}");

    // Leaving: a denial stops the clock, and the case's deadline key goes
    // in the same write.
    deny(&mut review, &first).await;
    assert_eq!(
        overdue_page(&mut review, 0, "").await,
        (vec![second], String::new())
    );
}

#[tokio::test]
async fn restarts_in_the_middle_of_a_correction_round_trip_lose_nothing() {
    let mut cluster = Cluster::start().await;
    let (mut window, mut review, case_no) = under_review(&cluster, "mail-applicant").await;
    request_correction(&mut review, &case_no).await;
    window_state(&mut window, &case_no, "CORRECTION_REQUESTED").await;
    // The home node goes down; the window attaches and resubmits meanwhile.
    cluster.stop(YANTA).await;
    window
        .attach(tokio_stream::iter(attach_frames(
            &case_no,
            "premises-proof",
            b"signed lease",
        )))
        .await
        .unwrap();
    window
        .resubmit(tongban_proto::window::v1::CaseRef {
            case_no: case_no.clone(),
            request_id: String::new(),
        })
        .await
        .unwrap();
    cluster.stop(HANTAI).await;
    cluster.restart(HANTAI).await;
    cluster.restart(YANTA).await;
    let mut window = cluster.window(HANTAI).await;
    let mut review = cluster.review(YANTA).await;
    home_state(&mut review, &case_no, "UNDER_REVIEW").await;
    window_state(&mut window, &case_no, "UNDER_REVIEW").await;
    let at_b = review
        .get_case(case_ref(&case_no))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        at_b.history
            .iter()
            .filter(|h| h.event == "supplement.received")
            .count(),
        1
    );
    assert!(at_b.corrections[0].answered_at.len() > 10);
}

#[tokio::test]
async fn review_and_mail_refuse_bad_input_and_change_nothing() {
    let cluster = Cluster::start().await;
    let (_window, mut review, case_no) = under_review(&cluster, "mail-applicant").await;
    let before = review
        .get_case(case_ref(&case_no))
        .await
        .unwrap()
        .into_inner();
    let need = |kind: &str, reason: &str| CorrectionNeed {
        kind: kind.into(),
        reason: reason.into(),
    };
    let correct = |needs: Vec<CorrectionNeed>| CorrectRequest {
        case_no: case_no.clone(),
        needs,
        deadline_days: 0,
        request_id: String::new(),
    };
    refused_coded(
        review.correct(correct(vec![])).await,
        Code::InvalidArgument,
        "at least one --need",
        "correction.no-needs",
        "needs",
    );
    let facts = refused_coded(
        review
            .correct(correct(vec![need("business-plan", "x")]))
            .await,
        Code::InvalidArgument,
        "no such material kind",
        "material.unknown-kind",
        "needs[0].kind",
    );
    assert_eq!(facts["kind"], "business-plan");
    assert!(
        facts["kinds"].split(',').any(|k| k == "id-card"),
        "{facts:?}"
    );
    let facts = refused_coded(
        review.correct(correct(vec![need("id-card", " ")])).await,
        Code::InvalidArgument,
        "give the reason",
        "correction.reason-missing",
        "needs[0].reason",
    );
    assert_eq!(facts["kind"], "id-card");
    assert!(!facts["name"].is_empty(), "the directory's name: {facts:?}");

    // A truncated result document (large enough to be a file) leaves nothing.
    review.paper_received(case_ref(&case_no)).await.unwrap();
    let doc = vec![3u8; 300 * 1024];
    let truncated = vec![
        ApproveFrame {
            frame: Some(approve_frame::Frame::Header(ApproveHeader {
                case_no: case_no.clone(),
                licence_no: "L".into(),
                result: Some(header("result", &doc)),
                request_id: String::new(),
            })),
        },
        ApproveFrame {
            frame: Some(approve_frame::Frame::Chunk(MaterialChunk {
                material: 0,
                data: doc[..100 * 1024].to_vec().into(),
            })),
        },
    ];
    refused(
        review.approve(tokio_stream::iter(truncated)).await,
        Code::InvalidArgument,
        "truncated",
    );
    let oversized = vec![ApproveFrame {
        frame: Some(approve_frame::Frame::Header(ApproveHeader {
            case_no: case_no.clone(),
            licence_no: String::new(),
            result: Some(tongban_proto::common::v1::MaterialHeader {
                kind: "result".into(),
                filename: "huge.pdf".into(),
                size: 1 << 40,
                sha256: vec![0; 32],
            }),
            request_id: String::new(),
        })),
    }];
    let facts = refused_coded(
        review.approve(tokio_stream::iter(oversized)).await,
        Code::ResourceExhausted,
        "over the limit",
        "result.too-large",
        "result",
    );
    assert_eq!(facts["size"], "1 TiB", "{facts:?}");
    let no_result = vec![ApproveFrame {
        frame: Some(approve_frame::Frame::Header(ApproveHeader {
            case_no: case_no.clone(),
            licence_no: String::new(),
            result: None,
            request_id: String::new(),
        })),
    }];
    refused_coded(
        review.approve(tokio_stream::iter(no_result)).await,
        Code::InvalidArgument,
        "result document",
        "result.missing",
        "result",
    );
    assert_blob_dir_empty(cluster.data_dir(YANTA));

    let mut mail = cluster.mail_as_reviewer(YANTA).await;
    let send = |leg: &str, carrier: &str, waybill: &str| SendRequest {
        case_no: case_no.clone(),
        leg: leg.into(),
        carrier: carrier.into(),
        waybill: waybill.into(),
        request_id: String::new(),
    };
    refused(
        mail.send(send("parcel", "EMS", WAYBILL_1)).await,
        Code::InvalidArgument,
        "is not one of materials, result",
    );
    refused(
        mail.send(send("result", " ", WAYBILL_1)).await,
        Code::InvalidArgument,
        "carrier",
    );
    refused(
        mail.send(send("materials", "EMS", WAYBILL_1)).await,
        Code::FailedPrecondition,
        "receiving window",
    );
    refused_coded(
        mail.send(send("materials", "EMS", WAYBILL_1)).await,
        Code::FailedPrecondition,
        "receiving window",
        "mail.wrong-side",
        "leg",
    );
    refused(
        mail.send(send("result", "EMS", WAYBILL_1)).await,
        Code::FailedPrecondition,
        "once APPROVED",
    );
    let event = |waybill: &str, status: &str, at: &str| EventRequest {
        waybill: waybill.into(),
        status: status.into(),
        at: at.into(),
        note: String::new(),
        request_id: String::new(),
    };
    refused(
        mail.event(event(WAYBILL_1, "delivered", "")).await,
        Code::NotFound,
        "not known",
    );
    refused(
        mail.event(event(WAYBILL_1, "teleported", "")).await,
        Code::InvalidArgument,
        "status",
    );
    refused(
        mail.event(event(WAYBILL_1, "delivered", "yesterday")).await,
        Code::InvalidArgument,
        "RFC 3339",
    );
    refused(
        mail.event(event("EA473124828CN", "delivered", "")).await,
        Code::InvalidArgument,
        "waybill",
    );

    refused(
        review.accept(case_ref("610702-20261125-999")).await,
        Code::NotFound,
        "no case",
    );
    refused(
        review.accept(case_ref("61070-2026-1")).await,
        Code::InvalidArgument,
        "case number",
    );

    let after = review
        .get_case(case_ref(&case_no))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(after.state, "UNDER_REVIEW");
    // Only the one good step (paper received) and its receipt were recorded.
    let new: Vec<&str> = after.history[before.history.len()..]
        .iter()
        .map(|h| h.event.as_str())
        .collect();
    assert!(
        new.iter()
            .all(|e| matches!(*e, "review.paper-received" | "handoff.receipted")),
        "{new:?}"
    );
    assert!(after.mail.is_empty() && after.corrections.is_empty() && after.result.is_none());
}

#[tokio::test]
async fn updates_queued_while_the_window_is_down_arrive_in_order_across_streams() {
    // Batches of two over four streams: a case's three updates cannot all
    // share one batch, so the courier must hold a case's later updates back
    // while its earlier ones are in flight in another stream.
    let mut cluster = Cluster::start_with(Options {
        extra: "[delivery]\ninitial_backoff_ms = 20\nmax_backoff_ms = 200\nbatch_size = 2\nstreams = 4\n"
            .into(),
        ..Options::default()
    })
    .await;
    let mut cases = Vec::new();
    for i in 0..5u32 {
        let (_, mut review, case_no) = under_review(&cluster, "mail-applicant").await;
        paper(&cluster, &mut review, &case_no, &s10("EA", 10_000 + i)).await;
        cases.push(case_no);
    }
    cluster.stop(HANTAI).await;
    let mut review = cluster.review(YANTA).await;
    for (i, case_no) in cases.iter().enumerate() {
        assert_eq!(
            approve(&mut review, case_no).await.unwrap().state,
            "APPROVED"
        );
        let waybill = s10("EB", 20_000 + i as u32);
        let sent = send_result(&cluster, case_no, &waybill).await.unwrap();
        assert_eq!(sent.state, "RESULT_IN_TRANSIT");
        assert_eq!(
            event(&cluster, YANTA, &waybill, "delivered").await.state,
            "CLOSED"
        );
    }
    cluster.restart(HANTAI).await;
    let mut window = cluster.window(HANTAI).await;
    for case_no in &cases {
        let at_a = window_state(&mut window, case_no, "CLOSED").await;
        // The updates were recorded at A in the order B made them.
        let order: Vec<&str> = at_a
            .history
            .iter()
            .filter(|h| h.event == "update.received")
            .filter_map(|h| {
                ["review.approved", "mail.sent", "mail.event"]
                    .into_iter()
                    .find(|e| h.detail.starts_with(e))
            })
            .collect();
        assert_eq!(
            order,
            ["review.approved", "mail.sent", "mail.event"],
            "{case_no}: {:?}",
            at_a.history
        );
        assert_eq!(at_a.licence_no, "92610702MA6YX0001A");
    }
}
