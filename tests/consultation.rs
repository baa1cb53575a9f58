//! Video consultation at intake (异地视频会商) for complex items: the window
//! records it before acceptance, and it travels to the home authority.

use time::format_description::well_known::Rfc3339;
use tongban_proto::window::v1::{CaseRef, ConsultRequest, VerifyIdentityRequest};
use tonic::Code;
use tonic::transport::Channel;

use crate::support::*;

type Window = tongban_proto::window::v1::window_client::WindowClient<Channel>;

const REVIEWER: &str = "spiffe://shaanxi.tongban/county/610113/reviewer/li";

fn wh_materials() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("application-form", b"signed application form".to_vec()),
        ("safety-assessment", b"safety assessment report".to_vec()),
        ("storage-proof", b"storage facility certificate".to_vec()),
        (
            "legal-rep-id",
            b"scan of the legal representative's id".to_vec(),
        ),
    ]
}

async fn consult(
    window: &mut Window,
    case_no: &str,
    at: &str,
    outcome: &str,
) -> Result<(), tonic::Status> {
    window
        .consult(ConsultRequest {
            request_id: String::new(),
            case_no: case_no.into(),
            at: at.into(),
            reviewer: REVIEWER.into(),
            outcome: outcome.into(),
        })
        .await
        .map(|_| ())
}

#[tokio::test]
async fn a_video_consultation_is_recorded_before_acceptance_and_reaches_the_home_node() {
    let cluster = Cluster::start().await;
    let mut window = cluster.window(HANTAI).await;
    let mut review = cluster.review(YANTA).await;
    let case = apply(
        &mut window,
        "WH-0001",
        YANTA,
        "collect-home",
        person(),
        &wh_materials(),
    )
    .await
    .expect("apply");
    let case_no = case.case_no;
    window
        .verify_identity(VerifyIdentityRequest {
            request_id: String::new(),
            case_no: case_no.clone(),
            method: "face".into(),
        })
        .await
        .expect("verify identity");
    let accept = |w: &mut Window| {
        let mut w = w.clone();
        let case_no = case_no.clone();
        async move {
            w.accept(CaseRef {
                case_no,
                request_id: String::new(),
            })
            .await
        }
    };
    let err = accept(&mut window).await.expect_err("no consultation yet");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(
        err.message().contains("video consultation"),
        "{}",
        err.message()
    );

    let past = (time::OffsetDateTime::now_utc() - time::Duration::hours(1))
        .format(&Rfc3339)
        .unwrap();
    let future = (time::OffsetDateTime::now_utc() + time::Duration::days(1))
        .format(&Rfc3339)
        .unwrap();
    for (at, reason) in [
        (future.as_str(), "consultation.in-future"),
        ("yesterday", "time.format"),
    ] {
        refused_coded(
            consult(&mut window, &case_no, at, "agreed").await,
            Code::InvalidArgument,
            "at: ",
            reason,
            "at",
        );
    }
    for (at, outcome, says) in [
        (future.as_str(), "agreed", "in the future"),
        ("yesterday", "agreed", "not an RFC 3339 time"),
        (past.as_str(), "agreed\u{7}", "control character"),
        (past.as_str(), " ", "outcome"),
    ] {
        let err = consult(&mut window, &case_no, at, outcome)
            .await
            .expect_err("refused");
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
        assert!(
            err.message().contains(says),
            "{says:?} in {}",
            err.message()
        );
    }
    // A counter item has no consultation, at intake as after it.
    let counter = apply(
        &mut window,
        "GT-0001",
        YANTA,
        "mail-applicant",
        person(),
        &gt_materials(),
    )
    .await
    .expect("apply");
    let facts = refused_coded(
        consult(&mut window, &counter.case_no, &past, "agreed").await,
        Code::FailedPrecondition,
        "taken in at the counter",
        "consultation.not-needed",
        "",
    );
    assert_eq!(facts["item"], counter.item_code);

    consult(
        &mut window,
        &case_no,
        &past,
        "材料齐全, storage plan agreed",
    )
    .await
    .expect("consultation recorded");
    accept(&mut window)
        .await
        .expect("accept after the consultation");
    let at_home = home_state(&mut review, &case_no, "HANDED_OFF").await;
    let c = at_home
        .consultation
        .expect("the consultation travels with the application");
    assert_eq!(c.reviewer, REVIEWER);
    assert_eq!(c.outcome, "材料齐全, storage plan agreed");
    assert!(c.recorded_by.ends_with("/clerk/wang"), "{}", c.recorded_by);
    let at_window = window_state(&mut window, &case_no, "HANDED_OFF").await;
    let events: Vec<&str> = at_window.history.iter().map(|h| h.event.as_str()).collect();
    assert!(events.contains(&"case.video-consultation"), "{events:?}");
}
