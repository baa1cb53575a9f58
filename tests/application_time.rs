//! The application time (申请时间) a window's handoff states: the home
//! records the window's time, refuses a claim it cannot believe (ahead of
//! its clock, off the case number's date, after the acceptance) with the
//! reason, keeps the claim as sent in its ledger, and marks the arrival
//! when a sender states none; `tongban audit trace` shows the claim.

use prost::Message;
use tongban_proto::federation::v1::refusal::Code as RefusalCode;
use tongban_proto::federation::v1::{Envelope, envelope::Body, handoff_result::Outcome};
use tongban_proto::review::v1::InboxRequest;

use crate::handoff::{frames, fresh_envelope, inbox};
use crate::support::*;

#[tokio::test]
async fn an_application_time_in_the_future_is_refused_with_the_reason() {
    let mut cluster = Cluster::start().await;
    // 汉台's clock runs two hours ahead: the application time its handoff
    // states is two hours in 雁塔's future.
    hantai_two_hours_ahead(&mut cluster).await;
    let mut window = cluster.window(HANTAI).await;
    let case = accepted_case(&mut window, YANTA).await;
    let parked = window_case_until(&mut window, &case.case_no, "refused", |c| {
        c.note.contains("refused")
    })
    .await;
    assert!(
        parked.note.contains("applied_at")
            && parked
                .note
                .contains("ahead of this node's clock (allowed skew 300 s)"),
        "{}",
        parked.note
    );
    assert_eq!(parked.state, "QUEUED", "not handed off");
    let mut review = cluster.review(YANTA).await;
    let inbox = review
        .inbox(InboxRequest::default())
        .await
        .expect("inbox")
        .into_inner();
    assert!(inbox.cases.is_empty(), "nothing stored at home: {inbox:?}");
}

/// `envelope` with its application's `applied_at` set to `at`.
fn applied_at(envelope: &[u8], at: &str) -> Vec<u8> {
    let mut env = Envelope::decode(envelope).unwrap();
    let Some(Body::Application(app)) = &mut env.body else {
        panic!("an application")
    };
    app.applied_at = at.into();
    env.encode_to_vec()
}

#[tokio::test]
async fn an_application_time_off_its_case_number_or_after_acceptance_is_refused() {
    let cluster = Cluster::start().await;
    let materials = gt_materials();
    // accepted_at is 2026-11-25T08:00:00Z, 16:00 CST on the case number's date.
    for (case_no, at, says) in [
        (
            "610702-20261125-11",
            "2026-11-24T08:00:00Z",
            "falls on 2026-11-24 in China Standard Time, but case number 610702-20261125-11 was issued on 2026-11-25",
        ),
        (
            "610702-20261125-12",
            "2026-11-25T09:00:00Z",
            "is after the application's accepted_at 2026-11-25T08:00:00Z",
        ),
        ("610702-20261125-13", "yesterday", "is not an RFC 3339 time"),
    ] {
        let env = applied_at(&fresh_envelope(case_no, &materials), at);
        let result = handoff_as(&cluster, YANTA, HANTAI, frames(env, &materials)).await;
        let (code, message) = refusal(&result);
        assert_eq!(code, RefusalCode::Invalid, "{at}: {message}");
        assert!(message.contains(says), "{at}: {says:?} in {message}");
    }
    assert!(inbox(&cluster).await.cases.is_empty(), "nothing stored");

    // A stated time that fits is the home's 申请时间; one not stated is
    // recorded as the arrival, and said to be.
    let env = applied_at(
        &fresh_envelope("610702-20261125-14", &materials),
        "2026-11-25T15:30:00+08:00",
    );
    let result = handoff_as(&cluster, YANTA, HANTAI, frames(env, &materials)).await;
    assert!(
        matches!(result.outcome, Some(Outcome::Receipt(_))),
        "{result:?}"
    );
    let env = fresh_envelope("610702-20261125-15", &materials);
    let result = handoff_as(&cluster, YANTA, HANTAI, frames(env, &materials)).await;
    assert!(
        matches!(result.outcome, Some(Outcome::Receipt(_))),
        "{result:?}"
    );
    let mut review = cluster.review(YANTA).await;
    let stated = home_state(&mut review, "610702-20261125-14", "HANDED_OFF").await;
    assert_eq!(stated.created_at, "2026-11-25T07:30:00Z");
    assert!(!stated.created_at_is_arrival);
    let unstated = home_state(&mut review, "610702-20261125-15", "HANDED_OFF").await;
    assert!(unstated.created_at_is_arrival, "{unstated:?}");
    assert!(
        unstated.created_at.as_str() > "2026-11-30",
        "the arrival: {}",
        unstated.created_at
    );
    // The ledger keeps what the partner claimed, as sent, as its claim.
    let mut audit = tongban_proto::audit::v1::audit_client::AuditClient::new(
        cluster
            .client(YANTA, tongban_sandbox::auditor(None, "zhao"))
            .await,
    );
    let entries = audit
        .case_entries(tongban_proto::audit::v1::CaseEntriesRequest {
            case_no: "610702-20261125-14".into(),
            reveal: false,
        })
        .await
        .expect("case entries")
        .into_inner();
    let claims: Vec<String> = entries
        .entries
        .iter()
        .filter_map(|e| {
            let payload: serde_json::Value = serde_json::from_slice(&e.payload).ok()?;
            Some(
                payload["received"]["claimed_applied_at"]
                    .as_str()?
                    .to_owned(),
            )
        })
        .collect();
    assert_eq!(claims, ["2026-11-25T15:30:00+08:00"]);
}

#[tokio::test]
async fn the_trace_shows_the_application_time_the_window_stated() {
    let cluster = Cluster::start().await;
    let mut window = cluster.window(HANTAI).await;
    let case = accepted_case(&mut window, YANTA).await;
    let mut review = cluster.review(YANTA).await;
    home_state(&mut review, &case.case_no, "HANDED_OFF").await;
    window_state(&mut window, &case.case_no, "HANDED_OFF").await;
    let creds = crate::audit::auditor(&cluster, None, "zhao");
    let nodes = [HANTAI, YANTA].map(|c| crate::audit::url(&cluster, c));
    let args = crate::audit::trace_args(&creds, &case.case_no, &nodes);

    // For people: the home's receiving entry, and only it, carries the
    // window's claim in China Standard Time beside the entry's own time.
    let (code, out) = crate::audit::audit(args.clone()).await;
    assert_eq!(code, 0, "{out}");
    let claimed = format!("(window states applied {})", cst(&case.created_at));
    let received: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("handoff.received"))
        .collect();
    assert_eq!(received.len(), 1, "{out}");
    assert!(received[0].ends_with(&claimed), "{claimed} in {out}");
    assert_eq!(out.matches("window states applied").count(), 1, "{out}");

    // --json: the claim as the window sent it, on that entry alone.
    let (code, out) = crate::audit::audit([args, vec!["--json".into()]].concat()).await;
    assert_eq!(code, 0, "{out}");
    let report: serde_json::Value = serde_json::from_str(&out).expect("json");
    let claims: Vec<(&str, &str, &str)> = report["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["county"].as_str().unwrap(),
                e["event"].as_str().unwrap(),
                e["claimed_applied_at"].as_str().expect("on every event"),
            )
        })
        .filter(|(_, _, at)| !at.is_empty())
        .collect();
    assert_eq!(
        claims,
        [(YANTA, "handoff.received", case.created_at.as_str())],
        "{report:#}"
    );
}
