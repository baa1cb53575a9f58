//! Tracked post across two nodes over mutual TLS: paper originals to the
//! home authority, results by post in each delivery mode, waybill checks,
//! returned results sent again, and the carrier's signed pushes.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tongban_proto::common::v1::CaseView;
use tongban_proto::mail::v1::{EventRequest, SendRequest};
use tongban_proto::review::v1::{HandoutRequest, InboxRequest};
use tonic::Code;

use crate::review::*;
use crate::support::*;

/// Paper originals mailed by the window and received at home.
pub(crate) async fn paper(cluster: &Cluster, review: &mut Review, case_no: &str, waybill: &str) {
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

pub(crate) async fn send_result(
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

pub(crate) async fn event(
    cluster: &Cluster,
    county: &str,
    waybill: &str,
    status: &str,
) -> CaseView {
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
pub(crate) const WAYBILL_1: &str = "EA473124829CN";
pub(crate) const WAYBILL_2: &str = "RR123456785CN";
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
    refused_coded(
        Err::<(), _>(err),
        Code::FailedPrecondition,
        "there is no result leg",
        "mail.no-result-leg",
        "leg",
    );
    let err = window
        .handout(tongban_proto::window::v1::HandoutRequest {
            request_id: String::new(),
            case_no: case_no.clone(),
            recipient_id: PERSON_ID.into(),
        })
        .await
        .expect_err("not handed out at the window");
    let facts = refused_coded(
        Err::<(), _>(err),
        Code::FailedPrecondition,
        "results are handed out",
        "handout.not-here",
        "",
    );
    assert_eq!(
        (
            facts["state"].as_str(),
            facts["delivery"].as_str(),
            facts["side"].as_str()
        ),
        ("DENIED", "collect-home", "window")
    );
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
    let facts = refused_coded(
        review.paper_received(case_ref(&case_no)).await,
        Code::FailedPrecondition,
        "were already recorded at",
        "paper.already-received",
        "",
    );
    assert!(facts["at"].ends_with('Z'), "RFC 3339: {facts:?}");
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

/// A valid UPU S10 number with `serial` (8 digits) and its check digit.
pub(crate) fn s10(prefix: &str, serial: u32) -> String {
    tongban_core::Waybill::s10(prefix, serial.into())
        .unwrap()
        .to_string()
}
