//! 容缺受理 with 告知承诺: a case accepted at the window with a waivable
//! material missing under the applicant's signed commitment, across two
//! nodes over mutual TLS.

use tongban_proto::common::v1::{CaseView, MaterialChunk};
use tongban_proto::mail::v1::SendRequest;
use tongban_proto::review::v1::{
    ApproveFrame, ApproveHeader, CaseRef as ReviewRef, DenyRequest, OverdueRequest, approve_frame,
};
use tongban_proto::window::v1::{
    AttachFrame, AttachHeader, CaseRef, CommitRequest, VerifyIdentityRequest, attach_frame,
};
use tonic::Code;
use tonic::transport::Channel;

use crate::support::*;

type Window = tongban_proto::window::v1::window_client::WindowClient<Channel>;
type Review = tongban_proto::review::v1::review_client::ReviewClient<Channel>;

/// A GT-0001 case at the window with `materials` only, identity verified.
async fn without(window: &mut Window, kinds: &[&str]) -> String {
    let materials: Vec<_> = gt_materials()
        .into_iter()
        .filter(|(k, _)| !kinds.contains(k))
        .collect();
    let case = apply(
        window,
        "GT-0001",
        YANTA,
        "mail-applicant",
        person(),
        &materials,
    )
    .await
    .expect("apply");
    window
        .verify_identity(VerifyIdentityRequest {
            request_id: String::new(),
            case_no: case.case_no.clone(),
            method: "id-card-reader".into(),
        })
        .await
        .expect("verify identity");
    case.case_no
}

async fn commit(
    window: &mut Window,
    case_no: &str,
    kinds: &[&str],
    days: i64,
) -> Result<CaseView, tonic::Status> {
    window
        .commit(CommitRequest {
            request_id: String::new(),
            case_no: case_no.into(),
            signer: "张三".into(),
            kinds: kinds.iter().map(|k| k.to_string()).collect(),
            days,
        })
        .await
        .map(|r| r.into_inner())
}

async fn approve(review: &mut Review, case_no: &str) -> Result<CaseView, tonic::Status> {
    let doc = b"business licence PDF".to_vec();
    let frames = vec![
        ApproveFrame {
            frame: Some(approve_frame::Frame::Header(ApproveHeader {
                request_id: String::new(),
                case_no: case_no.into(),
                licence_no: "92610702MA6YX0001A".into(),
                result: Some(header("result", &doc)),
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

#[tokio::test]
async fn bad_commitments_are_refused_naming_the_kind_and_change_nothing() {
    let cluster = Cluster::start().await;
    let mut window = cluster.window(HANTAI).await;
    let case_no = without(&mut window, &["premises-proof"]).await;
    let refused = |r: Result<CaseView, tonic::Status>| {
        let err = r.expect_err("refused");
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
        err.message().to_owned()
    };
    let msg = refused(commit(&mut window, &case_no, &["passport"], 5).await);
    assert!(
        msg.contains("\"passport\" is not a material of item GT-0001"),
        "{msg}"
    );
    let msg = refused(commit(&mut window, &case_no, &["premises-proof"], 0).await);
    assert!(msg.contains("deadline today"), "{msg}");
    let msg = refused(commit(&mut window, &case_no, &["premises-proof"], -2).await);
    assert!(msg.contains("deadline in the past"), "{msg}");
    let facts = refused_coded(
        commit(&mut window, &case_no, &["id-card"], 5).await,
        Code::InvalidArgument,
        "id-card (经营者身份证明) is not waivable",
        "commitment.not-waivable",
        "kinds",
    );
    assert_eq!(facts["name"], "经营者身份证明", "{facts:?}");
    refused_coded(
        commit(&mut window, &case_no, &["premises-proof"], 0).await,
        Code::InvalidArgument,
        "deadline today",
        "commitment.deadline",
        "days",
    );
    // Without a commitment the case cannot be accepted.
    let err = window
        .accept(CaseRef {
            request_id: String::new(),
            case_no: case_no.clone(),
        })
        .await
        .expect_err("incomplete");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(
        err.message().contains("premises-proof"),
        "{}",
        err.message()
    );
    let case = window_state(&mut window, &case_no, "CORRECTION_AT_WINDOW").await;
    assert!(case.commitment.is_none(), "nothing stored");

    // A non-waivable material missing too: it is named, not waived.
    let other = without(&mut window, &["premises-proof", "application-form"]).await;
    let msg = refused(commit(&mut window, &other, &["application-form"], 5).await);
    assert!(
        msg.contains("application-form (个体工商户登记申请书) is not waivable"),
        "{msg}"
    );
    let msg = refused(commit(&mut window, &other, &["premises-proof"], 5).await);
    assert!(
        msg.contains("application-form (个体工商户登记申请书) is missing and the commitment does not cover it"),
        "{msg}"
    );
}

#[tokio::test]
async fn a_committed_material_is_supplied_later_and_gates_the_approval() {
    let clock = TestClock::default();
    let cluster = Cluster::on_clock(&clock).await;
    let mut window = cluster.window(HANTAI).await;
    let mut review = cluster.review(YANTA).await;
    let case_no = without(&mut window, &["premises-proof"]).await;
    let committed = commit(&mut window, &case_no, &["premises-proof"], 3)
        .await
        .expect("commitment");
    assert_eq!(committed.state, "READY_AT_WINDOW");
    let due = committed
        .commitment
        .as_ref()
        .expect("shown")
        .due_date
        .clone();
    assert!(!due.is_empty());
    // The same commitment sent again with one request id is applied once:
    // the repeat gets the first reply, not a second entry.
    let repeat = CommitRequest {
        request_id: uuid::Uuid::new_v4().to_string(),
        case_no: case_no.clone(),
        signer: "张三".into(),
        kinds: vec!["premises-proof".into()],
        days: 3,
    };
    let first = window.commit(repeat.clone()).await.unwrap().into_inner();
    let again = window.commit(repeat).await.unwrap().into_inner();
    assert_eq!(first, again, "the original reply");
    // Not yet accepted: a missing material is attached, not supplied.
    let facts = refused_coded(
        supply(&mut window, &case_no).await,
        Code::FailedPrecondition,
        "supplied after acceptance",
        "supply.not-accepted",
        "",
    );
    assert_eq!(facts["state"], "READY_AT_WINDOW");
    window
        .accept(CaseRef {
            request_id: String::new(),
            case_no: case_no.clone(),
        })
        .await
        .expect("accept under the commitment");
    // A supply without a material, or of one not committed.
    refused_coded(
        supply_of(&mut window, &case_no, Vec::new()).await,
        Code::InvalidArgument,
        "supply needs at least one material",
        "material.none",
        "materials",
    );
    let facts = refused_coded(
        supply_of(
            &mut window,
            &case_no,
            vec![("application-form", b"x".to_vec())],
        )
        .await,
        Code::InvalidArgument,
        "is not a committed material still outstanding",
        "supply.not-outstanding",
        "materials[0].kind",
    );
    assert_eq!(facts["outstanding"], "premises-proof");

    // The reviewer sees the commitment.
    let at_home = home_state(&mut review, &case_no, "HANDED_OFF").await;
    let c = at_home
        .commitment
        .expect("the commitment travels with the application");
    assert_eq!(c.kinds, ["premises-proof"]);
    assert_eq!(c.signer, "张三");
    assert_eq!(c.due_date, due);
    assert!(c.fulfilled_at.is_empty());
    review
        .accept(ReviewRef {
            request_id: String::new(),
            case_no: case_no.clone(),
        })
        .await
        .expect("review accept");
    // The paper originals of the application form.
    cluster
        .mail(HANTAI)
        .await
        .send(SendRequest {
            request_id: String::new(),
            case_no: case_no.clone(),
            leg: "materials".into(),
            carrier: "EMS".into(),
            waybill: "EA473124829CN".into(),
        })
        .await
        .expect("materials leg");
    review
        .paper_received(ReviewRef {
            request_id: String::new(),
            case_no: case_no.clone(),
        })
        .await
        .expect("paper received");

    // Past the deadline and still missing: overdue at both nodes.
    clock.advance_days(10);
    let listed = |cases: &[CaseView]| {
        cases.iter().any(|c| {
            c.case_no == case_no && c.note.contains("committed materials (premises-proof)")
        })
    };
    let home_overdue = review
        .overdue(OverdueRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(listed(&home_overdue.cases), "{:?}", home_overdue.cases);
    let window_overdue = window
        .overdue(tongban_proto::window::v1::OverdueRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(listed(&window_overdue.cases), "{:?}", window_overdue.cases);

    // The item does not allow approval before the material arrives.
    let err = approve(&mut review, &case_no).await.expect_err("gated");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(
        err.message().contains("premises-proof"),
        "{}",
        err.message()
    );

    // Supplied at the window: fulfilled at both nodes.
    let data = b"lease contract".to_vec();
    let frames = vec![
        AttachFrame {
            frame: Some(attach_frame::Frame::Header(AttachHeader {
                request_id: String::new(),
                case_no: case_no.clone(),
                materials: vec![header("premises-proof", &data)],
            })),
        },
        AttachFrame {
            frame: Some(attach_frame::Frame::Chunk(MaterialChunk {
                material: 0,
                data: data.into(),
            })),
        },
    ];
    let supplied = window
        .supply(tokio_stream::iter(frames))
        .await
        .expect("supply")
        .into_inner();
    assert!(!supplied.commitment.unwrap().fulfilled_at.is_empty());
    let at_home = home_case_until(&mut review, &case_no, "commitment fulfilled", |c| {
        c.commitment
            .as_ref()
            .is_some_and(|k| !k.fulfilled_at.is_empty())
    })
    .await;
    assert!(at_home.materials.iter().any(|m| m.kind == "premises-proof"));
    assert_eq!(at_home.state, "UNDER_REVIEW");
    let events: Vec<&str> = at_home.history.iter().map(|h| h.event.as_str()).collect();
    assert!(events.contains(&"case.commitment-supplied"), "{events:?}");
    let approved = approve(&mut review, &case_no).await.expect("approve");
    assert_eq!(approved.state, "APPROVED");
}

/// The committed premises-proof supplied at the window.
async fn supply(window: &mut Window, case_no: &str) -> Result<CaseView, tonic::Status> {
    supply_of(
        window,
        case_no,
        vec![("premises-proof", b"lease contract".to_vec())],
    )
    .await
}

/// `materials` supplied at the window.
async fn supply_of(
    window: &mut Window,
    case_no: &str,
    materials: Vec<(&str, Vec<u8>)>,
) -> Result<CaseView, tonic::Status> {
    let mut frames = vec![AttachFrame {
        frame: Some(attach_frame::Frame::Header(AttachHeader {
            request_id: String::new(),
            case_no: case_no.into(),
            materials: materials.iter().map(|(k, d)| header(k, d)).collect(),
        })),
    }];
    frames.extend(chunks(&materials).into_iter().map(|c| AttachFrame {
        frame: Some(attach_frame::Frame::Chunk(c)),
    }));
    window
        .supply(tokio_stream::iter(frames))
        .await
        .map(|r| r.into_inner())
}

/// A case accepted under a commitment for premises-proof, accepted for
/// review at home, its paper originals received.
async fn committed_under_review(cluster: &Cluster) -> String {
    let mut window = cluster.window(HANTAI).await;
    let mut review = cluster.review(YANTA).await;
    let case_no = without(&mut window, &["premises-proof"]).await;
    commit(&mut window, &case_no, &["premises-proof"], 3)
        .await
        .expect("commitment");
    window
        .accept(CaseRef {
            request_id: String::new(),
            case_no: case_no.clone(),
        })
        .await
        .expect("accept under the commitment");
    home_state(&mut review, &case_no, "HANDED_OFF").await;
    review
        .accept(ReviewRef {
            request_id: String::new(),
            case_no: case_no.clone(),
        })
        .await
        .expect("review accept");
    case_no
}

#[tokio::test]
async fn an_item_approved_before_its_commitment_takes_the_material_after_the_approval() {
    // 先证后核: GT-0001 marked so in the directory.
    let cluster = Cluster::start_after(Options::default(), |sb| {
        let text = std::fs::read_to_string(sb.directory_path()).unwrap();
        let flagged = text.replacen(
            "code = \"GT-0001\"\n",
            "code = \"GT-0001\"\napprove_before_commitment = true\n",
            1,
        );
        assert_ne!(flagged, text);
        std::fs::write(sb.directory_path(), flagged).unwrap();
    })
    .await;
    let mut window = cluster.window(HANTAI).await;
    let mut review = cluster.review(YANTA).await;
    let case_no = committed_under_review(&cluster).await;
    cluster
        .mail(HANTAI)
        .await
        .send(SendRequest {
            request_id: String::new(),
            case_no: case_no.clone(),
            leg: "materials".into(),
            carrier: "EMS".into(),
            waybill: "EA473124829CN".into(),
        })
        .await
        .expect("materials leg");
    review
        .paper_received(ReviewRef {
            request_id: String::new(),
            case_no: case_no.clone(),
        })
        .await
        .expect("paper received");

    // Approved with the committed material still missing.
    let approved = approve(&mut review, &case_no)
        .await
        .expect("approved before the commitment is fulfilled");
    assert_eq!(approved.state, "APPROVED");
    let open = approved.commitment.expect("still there");
    assert!(
        open.fulfilled_at.is_empty(),
        "not fulfilled by the approval"
    );
    window_state(&mut window, &case_no, "APPROVED").await;

    // The material comes after the approval: taken in and recorded at
    // both nodes; the case stays APPROVED.
    let supplied = supply(&mut window, &case_no)
        .await
        .expect("supply after approval");
    assert_eq!(supplied.state, "APPROVED");
    assert!(!supplied.commitment.unwrap().fulfilled_at.is_empty());
    let at_home = home_case_until(&mut review, &case_no, "commitment fulfilled", |c| {
        c.commitment
            .as_ref()
            .is_some_and(|k| !k.fulfilled_at.is_empty())
    })
    .await;
    assert_eq!(at_home.state, "APPROVED");
    assert!(at_home.materials.iter().any(|m| m.kind == "premises-proof"));
    assert!(
        at_home
            .history
            .iter()
            .any(|h| h.event == "case.commitment-supplied"
                && h.detail.contains("commitment (告知承诺) fulfilled")),
        "{:?}",
        at_home.history
    );
    // Nothing is outstanding any more, so a second supply is refused.
    let err = supply(&mut window, &case_no)
        .await
        .expect_err("nothing open");
    refused_coded(
        Err::<(), _>(err),
        Code::FailedPrecondition,
        "no open commitment",
        "commitment.none-open",
        "",
    );

    // A denied case owes nothing: its committed material is refused.
    let denied = committed_under_review(&cluster).await;
    review
        .deny(DenyRequest {
            request_id: String::new(),
            case_no: denied.clone(),
            reason: "经营场所不符合规定".into(),
        })
        .await
        .expect("deny");
    window_state(&mut window, &denied, "DENIED").await;
    refused_coded(
        supply(&mut window, &denied).await,
        Code::FailedPrecondition,
        "nothing is supplied after a denial",
        "supply.after-denial",
        "",
    );
}
