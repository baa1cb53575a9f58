//! Review at the home authority, correction round trips, decisions and
//! tracked mail, across two nodes over mutual TLS.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tongban_proto::common::v1::{CaseView, CorrectionNeed, MaterialChunk};
use tongban_proto::mail::v1::{EventRequest, SendRequest};
use tongban_proto::review::v1::{
    ApproveFrame, ApproveHeader, CaseRef, CorrectRequest, DenyRequest, HandoutRequest,
    InboxRequest, OverdueRequest, approve_frame,
};
use tongban_proto::window::v1::{AttachFrame, AttachHeader, ListCasesRequest, attach_frame};
use tonic::Code;
use tonic::transport::Channel;

use crate::support::*;

type Review = tongban_proto::review::v1::review_client::ReviewClient<Channel>;
type Window = tongban_proto::window::v1::window_client::WindowClient<Channel>;

fn case_ref(case_no: &str) -> CaseRef {
    CaseRef {
        case_no: case_no.into(),
        request_id: String::new(),
    }
}

/// A GT-0001 case from 汉台 handed off to 雁塔 and accepted there for review.
async fn under_review(cluster: &Cluster, delivery: &str) -> (Window, Review, String) {
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

async fn approve(review: &mut Review, case_no: &str) -> Result<CaseView, tonic::Status> {
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

/// Paper originals mailed by the window and received at home.
async fn paper(cluster: &Cluster, review: &mut Review, case_no: &str, waybill: &str) {
    let mut mail = cluster.mail(HANTAI).await;
    let sent = mail
        .send(SendRequest {
            case_no: case_no.into(),
            leg: "materials".into(),
            carrier: "EMS".into(),
            waybill: waybill.into(),
            request_id: String::new(),
        })
        .await
        .expect("materials leg")
        .into_inner();
    assert_eq!(sent.mail[0].to, "home");
    review
        .paper_received(case_ref(case_no))
        .await
        .expect("paper received");
}

async fn send_result(
    cluster: &Cluster,
    case_no: &str,
    waybill: &str,
) -> Result<CaseView, tonic::Status> {
    let mut mail = cluster.mail_as_reviewer(YANTA).await;
    mail.send(SendRequest {
        case_no: case_no.into(),
        leg: "result".into(),
        carrier: "EMS".into(),
        waybill: waybill.into(),
        request_id: String::new(),
    })
    .await
    .map(|r| r.into_inner())
}

async fn event(cluster: &Cluster, county: &str, waybill: &str, status: &str) -> CaseView {
    let mut mail = cluster.mail(county).await;
    mail.event(EventRequest {
        waybill: waybill.into(),
        status: status.into(),
        at: String::new(),
        note: String::new(),
        request_id: String::new(),
    })
    .await
    .expect("event")
    .into_inner()
}

// Valid UPU S10 numbers (check digits computed by the S10 rule).
const WAYBILL_1: &str = "EA473124829CN";
const WAYBILL_2: &str = "RR123456785CN";
const WAYBILL_3: &str = "EE100000003CN";
const DOMESTIC_1: &str = "9876543210123";
const DOMESTIC_2: &str = "9876543210124";

#[tokio::test]
async fn each_delivery_mode_runs_from_intake_to_closed_on_both_nodes() {
    let cluster = Cluster::start().await;

    // 邮寄送达: result mailed to the applicant; delivery closes the case.
    let (mut window, mut review, case_no) = under_review(&cluster, "mail-applicant").await;
    paper(&cluster, &mut review, &case_no, WAYBILL_1).await;
    let approved = approve(&mut review, &case_no).await.expect("approve");
    assert_eq!(approved.state, "APPROVED");
    assert_eq!(approved.licence_no, "92610702MA6YX0001A");
    let sent = send_result(&cluster, &case_no, WAYBILL_2)
        .await
        .expect("result leg");
    assert_eq!(sent.state, "RESULT_IN_TRANSIT");
    window_state(&mut window, &case_no, "RESULT_IN_TRANSIT").await;
    let closed = event(&cluster, YANTA, WAYBILL_2, "delivered").await;
    assert_eq!(closed.state, "CLOSED");
    let at_a = window_state(&mut window, &case_no, "CLOSED").await;
    assert_eq!(
        at_a.licence_no, "92610702MA6YX0001A",
        "the window sees the decision"
    );

    // 本地专窗出件: result mailed back to the window, handed out there.
    let (mut window, mut review, case_no) = under_review(&cluster, "mail-window").await;
    paper(&cluster, &mut review, &case_no, DOMESTIC_1).await;
    approve(&mut review, &case_no).await.expect("approve");
    let sent = send_result(&cluster, &case_no, WAYBILL_3)
        .await
        .expect("result leg");
    assert_eq!(
        sent.mail.iter().find(|m| m.leg == "result").unwrap().to,
        "window"
    );
    window_state(&mut window, &case_no, "RESULT_IN_TRANSIT").await;
    // The clerk at the receiving window records the parcel's arrival.
    let arrived = event(&cluster, HANTAI, WAYBILL_3, "delivered").await;
    assert_eq!(arrived.state, "READY_FOR_PICKUP");
    home_state(&mut review, &case_no, "READY_FOR_PICKUP").await;
    let err = window
        .handout(tongban_proto::window::v1::HandoutRequest {
            case_no: case_no.clone(),
            recipient_id: "110105194912310021".into(),
            request_id: String::new(),
        })
        .await
        .expect_err("wrong person");
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(
        err.message().contains("110***********0021"),
        "masked in the message: {}",
        err.message()
    );
    let closed = window
        .handout(tongban_proto::window::v1::HandoutRequest {
            case_no: case_no.clone(),
            recipient_id: PERSON_ID.to_lowercase(),
            request_id: String::new(),
        })
        .await
        .expect("handout")
        .into_inner();
    assert_eq!(closed.state, "CLOSED");
    home_state(&mut review, &case_no, "CLOSED").await;

    // Collected at the home authority: no result leg.
    let (mut window, mut review, case_no) = under_review(&cluster, "collect-home").await;
    paper(&cluster, &mut review, &case_no, DOMESTIC_2).await;
    let approved = approve(&mut review, &case_no).await.expect("approve");
    assert_eq!(approved.state, "READY_FOR_PICKUP");
    let err = send_result(&cluster, &case_no, "EA000000005CN")
        .await
        .expect_err("no result leg");
    assert!(
        matches!(err.code(), Code::FailedPrecondition | Code::InvalidArgument),
        "{err:?}"
    );
    window_state(&mut window, &case_no, "READY_FOR_PICKUP").await;
    let closed = review
        .handout(HandoutRequest {
            case_no: case_no.clone(),
            recipient_id: PERSON_ID.into(),
            request_id: String::new(),
        })
        .await
        .expect("handout at home")
        .into_inner();
    assert_eq!(closed.state, "CLOSED");
    let at_a = window_state(&mut window, &case_no, "CLOSED").await;
    let events: Vec<&str> = at_a.history.iter().map(|h| h.event.as_str()).collect();
    for expected in ["case.accepted", "handoff.receipted", "update.received"] {
        assert!(events.contains(&expected), "{expected} in {events:?}");
    }
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

async fn request_correction(review: &mut Review, case_no: &str) -> CaseView {
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
fn set_today(clock: &TestClock, day: time::Date) {
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
    let cluster = Cluster::start_with(Options {
        clock: Some(clock.clock()),
        ..Options::default()
    })
    .await;
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
    let cluster = Cluster::start_with(Options {
        clock: Some(clock.clock()),
        ..Options::default()
    })
    .await;
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
    assert_eq!(err.code(), Code::InvalidArgument);
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

async fn deny(review: &mut Review, case_no: &str) -> CaseView {
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
async fn a_denied_case_is_delivered_and_closes_in_each_delivery_mode_on_both_nodes() {
    let cluster = Cluster::start().await;

    // Mailed to the applicant: delivery closes the case.
    let (mut window, mut review, case_no) = under_review(&cluster, "mail-applicant").await;
    assert_eq!(deny(&mut review, &case_no).await.state, "DENIED");
    window_state(&mut window, &case_no, "DENIED").await;
    let inbox = review
        .inbox(InboxRequest::default())
        .await
        .expect("inbox")
        .into_inner();
    assert!(
        inbox.cases.iter().any(|c| c.case_no == case_no),
        "a denial still to deliver stays in the inbox"
    );
    let sent = send_result(&cluster, &case_no, WAYBILL_1)
        .await
        .expect("the written denial is mailed");
    assert_eq!(sent.state, "RESULT_IN_TRANSIT");
    window_state(&mut window, &case_no, "RESULT_IN_TRANSIT").await;
    let closed = event(&cluster, YANTA, WAYBILL_1, "delivered").await;
    assert_eq!(closed.state, "CLOSED");
    let at_a = window_state(&mut window, &case_no, "CLOSED").await;
    assert!(at_a.denial_reason.contains("prior licence"));

    // Mailed to the window and handed out there.
    let (mut window, mut review, case_no) = under_review(&cluster, "mail-window").await;
    deny(&mut review, &case_no).await;
    window_state(&mut window, &case_no, "DENIED").await;
    let sent = send_result(&cluster, &case_no, WAYBILL_2)
        .await
        .expect("the written denial is mailed to the window");
    assert_eq!(
        sent.mail.iter().find(|m| m.leg == "result").unwrap().to,
        "window"
    );
    window_state(&mut window, &case_no, "RESULT_IN_TRANSIT").await;
    let arrived = event(&cluster, HANTAI, WAYBILL_2, "delivered").await;
    assert_eq!(arrived.state, "READY_FOR_PICKUP");
    home_state(&mut review, &case_no, "READY_FOR_PICKUP").await;
    let closed = window
        .handout(tongban_proto::window::v1::HandoutRequest {
            request_id: String::new(),
            case_no: case_no.clone(),
            recipient_id: PERSON_ID.into(),
        })
        .await
        .expect("handout at the window")
        .into_inner();
    assert_eq!(closed.state, "CLOSED");
    home_state(&mut review, &case_no, "CLOSED").await;

    // Collected at home: no result leg; handed out from DENIED.
    let (mut window, mut review, case_no) = under_review(&cluster, "collect-home").await;
    deny(&mut review, &case_no).await;
    window_state(&mut window, &case_no, "DENIED").await;
    let err = send_result(&cluster, &case_no, WAYBILL_3)
        .await
        .expect_err("no result leg for collect-home");
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    let err = window
        .handout(tongban_proto::window::v1::HandoutRequest {
            request_id: String::new(),
            case_no: case_no.clone(),
            recipient_id: PERSON_ID.into(),
        })
        .await
        .expect_err("not handed out at the window");
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    let closed = review
        .handout(HandoutRequest {
            request_id: String::new(),
            case_no: case_no.clone(),
            recipient_id: PERSON_ID.into(),
        })
        .await
        .expect("handout at home")
        .into_inner();
    assert_eq!(closed.state, "CLOSED");
    window_state(&mut window, &case_no, "CLOSED").await;
}

#[tokio::test]
async fn approval_waits_for_the_paper_originals() {
    let cluster = Cluster::start().await;
    let (_window, mut review, case_no) = under_review(&cluster, "collect-home").await;
    let err = approve(&mut review, &case_no)
        .await
        .expect_err("paper not arrived");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(
        err.message().contains("application-form"),
        "{}",
        err.message()
    );
    review
        .paper_received(case_ref(&case_no))
        .await
        .expect("paper received");
    approve(&mut review, &case_no)
        .await
        .expect("approve after paper");
}

#[tokio::test]
async fn a_returned_result_is_sent_again_with_a_new_waybill() {
    let cluster = Cluster::start().await;
    let (mut window, mut review, case_no) = under_review(&cluster, "mail-applicant").await;
    review.paper_received(case_ref(&case_no)).await.unwrap();
    approve(&mut review, &case_no).await.unwrap();
    send_result(&cluster, &case_no, WAYBILL_1)
        .await
        .expect("first leg");
    let returned = event(&cluster, YANTA, WAYBILL_1, "returned").await;
    assert_eq!(returned.state, "MAIL_RETURNED");
    assert!(returned.note.contains("new waybill"), "{}", returned.note);
    window_state(&mut window, &case_no, "MAIL_RETURNED").await;

    let err = send_result(&cluster, &case_no, WAYBILL_1)
        .await
        .expect_err("same waybill");
    assert_eq!(err.code(), Code::AlreadyExists);
    let again = send_result(&cluster, &case_no, WAYBILL_2)
        .await
        .expect("new waybill");
    assert_eq!(again.state, "RESULT_IN_TRANSIT");
    assert_eq!(again.mail.iter().filter(|m| m.leg == "result").count(), 2);
    event(&cluster, YANTA, WAYBILL_2, "delivered").await;
    window_state(&mut window, &case_no, "CLOSED").await;
}

#[tokio::test]
async fn waybill_numbers_are_checked() {
    let cluster = Cluster::start().await;
    let (_window, mut review, case_no) = under_review(&cluster, "mail-applicant").await;
    review.paper_received(case_ref(&case_no)).await.unwrap();
    approve(&mut review, &case_no).await.unwrap();
    for bad in ["EA473124828CN", "EA47312482CN", "123456789012"] {
        let err = send_result(&cluster, &case_no, bad).await.expect_err(bad);
        assert_eq!(
            err.code(),
            Code::InvalidArgument,
            "{bad}: {}",
            err.message()
        );
        assert!(err.message().contains("waybill"), "{}", err.message());
    }
    // A waybill already used by another case is refused.
    let (_w2, mut review2, other) = under_review(&cluster, "mail-applicant").await;
    review2.paper_received(case_ref(&other)).await.unwrap();
    approve(&mut review2, &other).await.unwrap();
    send_result(&cluster, &case_no, WAYBILL_1)
        .await
        .expect("first use");
    let err = send_result(&cluster, &other, WAYBILL_1)
        .await
        .expect_err("reused");
    assert_eq!(err.code(), Code::AlreadyExists);
    assert!(err.message().contains(&case_no), "{}", err.message());
}

/// POSTs a carrier push over HTTPS and returns the status code and body.
async fn push(cluster: &Cluster, body: &str, signature: Option<String>) -> (u16, String) {
    let mut tls = tongban_pki::tls::connect_server_only(
        cluster.carrier_addr(YANTA),
        cluster.pki().ca.cert_pem(),
        "127.0.0.1",
    )
    .await
    .expect("https");
    let sig = signature
        .map(|s| format!("X-Tongban-Signature: sha256={s}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "POST /v1/carriers/EMS/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n{sig}Connection: close\r\n\r\n{body}",
        body.len()
    );
    tls.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    let _ = tls.read_to_string(&mut response).await;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, response)
}

#[tokio::test]
async fn carrier_pushes_are_authenticated_and_recorded_once() {
    let cluster = Cluster::start_with(Options {
        carriers: true,
        ..Options::default()
    })
    .await;
    let (mut window, mut review, case_no) = under_review(&cluster, "mail-applicant").await;
    review.paper_received(case_ref(&case_no)).await.unwrap();
    approve(&mut review, &case_no).await.unwrap();
    send_result(&cluster, &case_no, WAYBILL_1).await.unwrap();

    let body = format!(
        r#"{{"waybill":"{WAYBILL_1}","status":"delivered","at":"2026-11-26T10:00:00+08:00","note":"签收"}}"#
    );
    let forged = tongban_pki::hmac::sign_hex(b"not-the-carrier-secret-at-all", body.as_bytes());
    let (status, response) = push(&cluster, &body, Some(forged)).await;
    assert_eq!(status, 401, "{response}");
    let (status, _) = push(&cluster, &body, None).await;
    assert_eq!(status, 401);
    home_state(&mut review, &case_no, "RESULT_IN_TRANSIT").await;

    let good = tongban_pki::hmac::sign_hex(CARRIER_SECRET.as_bytes(), body.as_bytes());
    let (status, response) = push(&cluster, &body, Some(good.clone())).await;
    assert_eq!(status, 200, "{response}");
    assert!(response.contains("CLOSED"), "{response}");
    let (status, _) = push(&cluster, &body, Some(good)).await;
    assert_eq!(status, 200, "a repeat is accepted");
    let closed = home_state(&mut review, &case_no, "CLOSED").await;
    assert_eq!(
        closed
            .history
            .iter()
            .filter(|h| h.event == "mail.event")
            .count(),
        1,
        "recorded once"
    );
    window_state(&mut window, &case_no, "CLOSED").await;

    let unknown = r#"{"waybill":"RR123456785CN","status":"delivered"}"#;
    let sig = tongban_pki::hmac::sign_hex(CARRIER_SECRET.as_bytes(), unknown.as_bytes());
    assert_eq!(push(&cluster, unknown, Some(sig)).await.0, 404);
    let malformed = r#"{"waybill": 7}"#;
    let sig = tongban_pki::hmac::sign_hex(CARRIER_SECRET.as_bytes(), malformed.as_bytes());
    assert_eq!(push(&cluster, malformed, Some(sig)).await.0, 400);
}

#[tokio::test]
async fn overdue_cases_are_listed_under_a_controlled_clock() {
    let clock = TestClock::default();
    let cluster = Cluster::start_with(Options {
        clock: Some(clock.clock()),
        ..Options::default()
    })
    .await;
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
    refused(
        review.correct(correct(vec![])).await,
        Code::InvalidArgument,
        "at least one --need",
    );
    refused(
        review
            .correct(correct(vec![need("business-plan", "x")]))
            .await,
        Code::InvalidArgument,
        "no such material kind",
    );
    refused(
        review.correct(correct(vec![need("id-card", " ")])).await,
        Code::InvalidArgument,
        "give the reason",
    );

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
    refused(
        review.approve(tokio_stream::iter(oversized)).await,
        Code::ResourceExhausted,
        "over the limit",
    );
    let no_result = vec![ApproveFrame {
        frame: Some(approve_frame::Frame::Header(ApproveHeader {
            case_no: case_no.clone(),
            licence_no: String::new(),
            result: None,
            request_id: String::new(),
        })),
    }];
    refused(
        review.approve(tokio_stream::iter(no_result)).await,
        Code::InvalidArgument,
        "result document",
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

/// A valid UPU S10 number with `serial` (8 digits) and its check digit.
fn s10(prefix: &str, serial: u32) -> String {
    tongban_core::Waybill::s10(prefix, serial.into())
        .unwrap()
        .to_string()
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
