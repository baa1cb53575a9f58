//! Who may say what (收受分离), over real mutual TLS: a partner node that
//! reports a step that is the other side's, or a step that cannot happen in
//! the receiver's state, is refused and changes nothing; what a partner
//! reports is recorded as its report.

use prost::Message;
use tongban_proto::common::v1::{CaseView, MailLeg};
use tongban_proto::federation::v1::refusal::Code as RefusalCode;
use tongban_proto::federation::v1::{
    CaseUpdate, Envelope, HandoffFrame, HandoffResult, envelope::Body, handoff_frame::Frame,
};
use tongban_proto::review::v1::{CaseRef as ReviewRef, InboxRequest};
use tongban_proto::window::v1::CaseRef;

use crate::support::*;

/// An update envelope for `case`, as the node of `from` would send it.
fn update(case: &CaseView, from: &str, update: CaseUpdate) -> Vec<u8> {
    Envelope {
        version: 1,
        handoff_id: uuid::Uuid::now_v7().to_string(),
        application_id: case.application_id.clone(),
        case_no: case.case_no.clone(),
        receiving_county: case.receiving_county.clone(),
        home_county: case.home_county.clone(),
        sent_at: "2026-11-25T08:00:00Z".into(),
        actor: format!("spiffe://{TD}/county/{from}/reviewer/li"),
        body: Some(Body::Update(update)),
        materials: Vec::new(),
    }
    .encode_to_vec()
}

/// Sends one envelope to `to` as the node of `from`; returns its result.
async fn send(cluster: &Cluster, to: &str, from: &str, envelope: Vec<u8>) -> HandoffResult {
    let frames = vec![HandoffFrame {
        frame: Some(Frame::Envelope(envelope)),
    }];
    handoff_as(cluster, to, from, frames).await
}

fn leg(leg: &str) -> Option<MailLeg> {
    Some(MailLeg {
        leg: leg.into(),
        carrier: "EMS".into(),
        waybill: "EA473124829CN".into(),
        to: if leg == "result" { "applicant" } else { "home" }.into(),
        sent_at: "2026-11-25T08:00:00Z".into(),
        status: "posted".into(),
        events: Vec::new(),
    })
}

/// Every step only the home authority may report, each claiming a state.
fn home_only() -> Vec<(&'static str, CaseUpdate)> {
    let step = |event: &str, state: &str| CaseUpdate {
        event: event.into(),
        state: state.into(),
        ..Default::default()
    };
    vec![
        ("review.accepted", step("review.accepted", "UNDER_REVIEW")),
        (
            "review.correction-requested",
            step("review.correction-requested", "CORRECTION_REQUESTED"),
        ),
        (
            "review.supplement-received",
            step("review.supplement-received", "UNDER_REVIEW"),
        ),
        ("review.paper-received", step("review.paper-received", "")),
        (
            "review.approved",
            CaseUpdate {
                licence_no: "FORGED-1".into(),
                ..step("review.approved", "APPROVED")
            },
        ),
        ("review.denied", step("review.denied", "DENIED")),
        (
            "mail.sent (result leg)",
            CaseUpdate {
                mail: leg("result"),
                ..step("mail.sent", "RESULT_IN_TRANSIT")
            },
        ),
        ("case.closed", step("case.closed", "CLOSED")),
    ]
}

/// What the home node shows of a case, and its inbox.
async fn home_view(cluster: &Cluster, case_no: &str) -> (CaseView, Vec<(String, String)>) {
    let mut review = cluster.review(YANTA).await;
    let case = review
        .get_case(ReviewRef {
            case_no: case_no.into(),
            request_id: String::new(),
        })
        .await
        .expect("home case")
        .into_inner();
    let inbox = review
        .inbox(InboxRequest::default())
        .await
        .expect("inbox")
        .into_inner()
        .cases
        .into_iter()
        .map(|c| (c.case_no, c.state))
        .collect();
    (case, inbox)
}

#[tokio::test]
async fn the_window_node_cannot_decide_for_the_home_authority() {
    let cluster = Cluster::start().await;
    let mut window = cluster.window(HANTAI).await;
    let case = accepted_case(&mut window, YANTA).await;
    let mut review = cluster.review(YANTA).await;
    home_state(&mut review, &case.case_no, "HANDED_OFF").await;
    let before = home_view(&cluster, &case.case_no).await;

    for (name, step) in home_only() {
        let result = send(&cluster, YANTA, HANTAI, update(&case, HANTAI, step)).await;
        let (code, message) = refusal(&result);
        assert_eq!(code, RefusalCode::NotPermitted, "{name}: {message}");
        assert!(
            message.contains(name) && message.contains("home authority"),
            "{name}: {message}"
        );
    }
    let after = home_view(&cluster, &case.case_no).await;
    assert_eq!(after.0.state, "HANDED_OFF");
    assert_eq!(after.0.licence_no, "", "no forged licence");
    assert_eq!(
        after.0.history.len(),
        before.0.history.len(),
        "nothing recorded in the home ledger"
    );
    assert_eq!(after.1, before.1, "the inbox is unchanged");
}

#[tokio::test]
async fn the_home_node_cannot_speak_for_the_window() {
    let cluster = Cluster::start().await;
    let mut window = cluster.window(HANTAI).await;
    let case = accepted_case(&mut window, YANTA).await;
    let mut review = cluster.review(YANTA).await;
    home_state(&mut review, &case.case_no, "HANDED_OFF").await;
    let handed = window_state(&mut window, &case.case_no, "HANDED_OFF").await;

    // The materials leg is the window's to send.
    let step = CaseUpdate {
        event: "mail.sent".into(),
        mail: leg("materials"),
        ..Default::default()
    };
    let result = send(&cluster, HANTAI, YANTA, update(&case, YANTA, step)).await;
    let (code, message) = refusal(&result);
    assert_eq!(code, RefusalCode::NotPermitted, "{message}");
    assert!(
        message.contains("mail.sent (materials leg)") && message.contains("receiving window"),
        "{message}"
    );
    // So is an application: the home node cannot originate a case.
    let mut app = Envelope::decode(update(&case, YANTA, CaseUpdate::default()).as_slice()).unwrap();
    app.body = Some(Body::Application(Default::default()));
    let result = send(&cluster, HANTAI, YANTA, app.encode_to_vec()).await;
    assert_eq!(refusal(&result).0, RefusalCode::NotPermitted);

    let after = window
        .get_case(CaseRef {
            case_no: case.case_no.clone(),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(after.state, "HANDED_OFF");
    assert!(after.mail.is_empty(), "no mail leg recorded");
    assert_eq!(after.history.len(), handed.history.len());
}

#[tokio::test]
async fn a_step_that_cannot_happen_now_or_names_no_known_event_is_refused() {
    let cluster = Cluster::start().await;
    let mut window = cluster.window(HANTAI).await;
    let case = accepted_case(&mut window, YANTA).await;
    let handed = window_state(&mut window, &case.case_no, "HANDED_OFF").await;

    // Approval before acceptance for review: the window's case is HANDED_OFF.
    let step = CaseUpdate {
        event: "review.approved".into(),
        state: "APPROVED".into(),
        ..Default::default()
    };
    let result = send(&cluster, HANTAI, YANTA, update(&case, YANTA, step)).await;
    let (code, message) = refusal(&result);
    assert_eq!(code, RefusalCode::NotPermitted, "{message}");
    assert!(
        message.contains("review.approved") && message.contains("HANDED_OFF"),
        "{message}"
    );
    // A paper-received report that claims to approve the case.
    let step = CaseUpdate {
        event: "review.paper-received".into(),
        state: "APPROVED".into(),
        ..Default::default()
    };
    let result = send(&cluster, HANTAI, YANTA, update(&case, YANTA, step)).await;
    assert_eq!(refusal(&result).0, RefusalCode::NotPermitted);
    // Names on the wire are exact.
    for (event, state) in [("review.Approved", ""), ("review.accepted", "under_review")] {
        let step = CaseUpdate {
            event: event.into(),
            state: state.into(),
            ..Default::default()
        };
        let result = send(&cluster, HANTAI, YANTA, update(&case, YANTA, step)).await;
        let (code, message) = refusal(&result);
        assert_eq!(code, RefusalCode::Invalid, "{event}/{state}: {message}");
    }
    let after = window
        .get_case(CaseRef {
            case_no: case.case_no.clone(),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(after.state, "HANDED_OFF");
    assert_eq!(after.history.len(), handed.history.len());
}

#[tokio::test]
async fn a_partners_report_is_recorded_as_the_partner_nodes() {
    let cluster = Cluster::start().await;
    let mut window = cluster.window(HANTAI).await;
    let case = accepted_case(&mut window, YANTA).await;
    let mut review = cluster.review(YANTA).await;
    home_state(&mut review, &case.case_no, "HANDED_OFF").await;
    review
        .accept(ReviewRef {
            case_no: case.case_no.clone(),
            request_id: String::new(),
        })
        .await
        .expect("accept for review");
    let seen = window_state(&mut window, &case.case_no, "UNDER_REVIEW").await;
    let mirrored = seen
        .history
        .iter()
        .find(|h| h.event == "update.received")
        .expect("the window recorded the home node's report");
    assert_eq!(
        mirrored.actor,
        format!("spiffe://{TD}/county/{YANTA}/node"),
        "the partner node acted here, not its reviewer"
    );
    // The home node's own entry names its reviewer.
    let home = review
        .get_case(ReviewRef {
            case_no: case.case_no.clone(),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let accepted = home
        .history
        .iter()
        .find(|h| h.event == "review.accepted")
        .unwrap();
    assert!(
        accepted.actor.ends_with("/reviewer/li"),
        "{}",
        accepted.actor
    );
}

#[tokio::test]
async fn a_receipt_an_hour_off_is_parked_and_a_reissued_one_is_taken() {
    let mut cluster = Cluster::start().await;
    // 雁塔's clock runs an hour ahead: its receipts are dated an hour off.
    cluster.stop(YANTA).await;
    cluster.set_clock(
        YANTA,
        tongban_node::Clock::from_fn(|| time::OffsetDateTime::now_utc() + time::Duration::hours(1)),
    );
    cluster.restart(YANTA).await;
    let mut window = cluster.window(HANTAI).await;
    let case = accepted_case(&mut window, YANTA).await;
    let parked = window_case_until(&mut window, &case.case_no, "parked", |c| {
        c.note.contains("parked")
    })
    .await;
    assert!(
        parked
            .note
            .contains("from this node's clock (at most 300 s allowed)"),
        "{}",
        parked.note
    );
    assert_eq!(parked.state, "QUEUED", "no receipt is held");

    // 雁塔's operator fixes the clock and re-issues the receipt, node stopped.
    cluster.stop(YANTA).await;
    let handoff_id = {
        let store = tongban_ledger::Store::open(cluster.data_dir(YANTA)).unwrap();
        let held = store.case_by_no(&case.case_no).unwrap().expect("received");
        held.handoffs[0].handoff_id.clone()
    };
    let config = tongban_node::NodeConfig::load(cluster.config_path(YANTA)).unwrap();
    let done = tongban_node::operator::reissue_receipt(&config, &county(HANTAI), &handoff_id)
        .await
        .expect("re-issue");
    assert_eq!(done.case_no, case.case_no);
    cluster.set_clock(YANTA, tongban_node::Clock::system());
    cluster.restart(YANTA).await;

    // The window's retry gets the new receipt, which it takes.
    window
        .retry(CaseRef {
            case_no: case.case_no.clone(),
            request_id: String::new(),
        })
        .await
        .expect("retry");
    let handed = window_state(&mut window, &case.case_no, "HANDED_OFF").await;
    assert_eq!(receipts(&handed), 1);
    let mut review = cluster.review(YANTA).await;
    let home = home_state(&mut review, &case.case_no, "HANDED_OFF").await;
    assert!(
        home.history.iter().any(|h| h.event == "receipt.reissued"),
        "the home ledger records the re-issue"
    );
}
