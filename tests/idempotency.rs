//! Request ids: a state-changing call repeated with the same id (a reply
//! lost, a retry) is carried out once and answered with the original reply,
//! byte for byte, also after a restart; the same id with other content is
//! ALREADY_EXISTS, an id that is not a UUID INVALID_ARGUMENT.

use prost::Message;
use tongban_proto::common::v1::CaseView;
use tongban_proto::window::v1::window_client::WindowClient;
use tongban_proto::window::v1::{
    ApplyFrame, ApplyHeader, CaseRef, ListCasesRequest, VerifyIdentityRequest, apply_frame,
};
use tonic::Code;
use tonic::transport::Channel;

use crate::support::*;

/// Applies for GT-0001 with every material, carrying `request_id`.
async fn apply_with_id(
    window: &mut WindowClient<Channel>,
    request_id: &str,
    phone: &str,
) -> Result<CaseView, tonic::Status> {
    let materials = gt_materials();
    let mut applicant = person();
    applicant.phone = phone.into();
    let header = ApplyHeader {
        item_code: "GT-0001".into(),
        home_county: YANTA.into(),
        delivery: "mail-applicant".into(),
        applicant: Some(applicant),
        materials: materials.iter().map(|(k, d)| header(k, d)).collect(),
        request_id: request_id.into(),
    };
    let mut frames = vec![ApplyFrame {
        frame: Some(apply_frame::Frame::Header(header)),
    }];
    frames.extend(chunks(&materials).into_iter().map(|c| ApplyFrame {
        frame: Some(apply_frame::Frame::Chunk(c)),
    }));
    window
        .apply(tokio_stream::iter(frames))
        .await
        .map(|r| r.into_inner())
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

async fn window_cases(window: &mut WindowClient<Channel>) -> usize {
    window
        .list_cases(ListCasesRequest {
            state: String::new(),
            limit: 1000,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .cases
        .len()
}

#[tokio::test]
async fn an_apply_repeated_with_its_id_makes_one_case_and_gets_the_same_reply() {
    let cluster = Cluster::start().await;
    let mut window = cluster.window(HANTAI).await;
    let id = new_id();
    let first = apply_with_id(&mut window, &id, "13812345678")
        .await
        .expect("apply");
    // Two more at once and one after: none applies again.
    let (mut w1, mut w2) = (window.clone(), window.clone());
    let (a, b) = tokio::join!(
        apply_with_id(&mut w1, &id, "13812345678"),
        apply_with_id(&mut w2, &id, "13812345678"),
    );
    let again = apply_with_id(&mut window, &id, "13812345678")
        .await
        .expect("repeat");
    for repeat in [
        a.expect("concurrent repeat"),
        b.expect("concurrent repeat"),
        again,
    ] {
        assert_eq!(
            repeat.encode_to_vec(),
            first.encode_to_vec(),
            "the original reply, byte for byte"
        );
    }
    assert_eq!(window_cases(&mut window).await, 1, "one case");
    // The reply built in the commit is what a read after it shows.
    let read = window
        .get_case(CaseRef {
            case_no: first.case_no.clone(),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(read.history, first.history);
    assert_eq!(read, first);

    // An upper-case spelling is the same id.
    let upper = apply_with_id(&mut window, &id.to_uppercase(), "13812345678")
        .await
        .expect("same id, other spelling");
    assert_eq!(upper.case_no, first.case_no);

    // Two concurrent applies under two new ids make two cases.
    let (id1, id2) = (new_id(), new_id());
    let (x, y) = tokio::join!(
        apply_with_id(&mut w1, &id1, "13812345678"),
        apply_with_id(&mut w2, &id2, "13812345678"),
    );
    assert_ne!(x.unwrap().case_no, y.unwrap().case_no);
    // No request id: today's behaviour, every call applies.
    apply(
        &mut window,
        "GT-0001",
        YANTA,
        "mail-applicant",
        person(),
        &gt_materials(),
    )
    .await
    .unwrap();
    assert_eq!(window_cases(&mut window).await, 4);
}

#[tokio::test]
async fn an_accept_repeated_gets_the_same_receipt_and_queues_one_handoff() {
    let cluster = Cluster::start().await;
    let mut window = cluster.window(HANTAI).await;
    let mut review = cluster.review(YANTA).await;
    let case = apply_with_id(&mut window, &new_id(), "13812345678")
        .await
        .unwrap();
    window
        .verify_identity(VerifyIdentityRequest {
            case_no: case.case_no.clone(),
            method: "face".into(),
            request_id: new_id(),
        })
        .await
        .unwrap();
    let accept = CaseRef {
        case_no: case.case_no.clone(),
        request_id: new_id(),
    };
    let receipt = window.accept(accept.clone()).await.unwrap().into_inner();
    let again = window.accept(accept.clone()).await.unwrap().into_inner();
    assert_eq!(again.encode_to_vec(), receipt.encode_to_vec());
    // Without the id, the second accept is refused: the case is QUEUED.
    refused(
        window
            .accept(CaseRef {
                case_no: case.case_no.clone(),
                request_id: String::new(),
            })
            .await,
        Code::FailedPrecondition,
        "only a READY_AT_WINDOW case",
    );

    let at_home = home_state(&mut review, &case.case_no, "HANDED_OFF").await;
    let window_case = window_case_until(&mut window, &case.case_no, "receipted", |c| {
        receipts(c) == 1
    })
    .await;
    let accepted = window_case
        .history
        .iter()
        .filter(|h| h.event == "case.accepted")
        .count();
    assert_eq!(accepted, 1, "one acceptance in the ledger");
    let inbox = review
        .inbox(tongban_proto::review::v1::InboxRequest::default())
        .await
        .unwrap()
        .into_inner()
        .cases;
    assert_eq!(inbox.len(), 1, "the home inbox holds one case");
    assert_eq!(inbox[0].case_no, at_home.case_no);

    // The review side too: accept (受理) repeated answers the same view.
    let accept = tongban_proto::review::v1::CaseRef {
        case_no: case.case_no.clone(),
        request_id: new_id(),
    };
    let first = review.accept(accept.clone()).await.unwrap().into_inner();
    let repeat = review.accept(accept).await.unwrap().into_inner();
    assert_eq!(repeat.encode_to_vec(), first.encode_to_vec());
    assert_eq!(first.state, "UNDER_REVIEW");
}

#[tokio::test]
async fn an_id_with_other_content_or_not_a_uuid_is_refused() {
    let cluster = Cluster::start().await;
    let mut window = cluster.window(HANTAI).await;
    let id = new_id();
    let case = apply_with_id(&mut window, &id, "13812345678")
        .await
        .unwrap();
    refused(
        apply_with_id(&mut window, &id, "13912345678").await,
        Code::AlreadyExists,
        &format!("request id {id} was already used"),
    );
    // One id, another method: not a repeat either.
    refused(
        window
            .verify_identity(VerifyIdentityRequest {
                case_no: case.case_no.clone(),
                method: "face".into(),
                request_id: id.clone(),
            })
            .await,
        Code::AlreadyExists,
        &id,
    );
    for bad in ["42", "not-a-uuid", "0192f0c48a9b4c3d9e1f0a1b2c3d4e5f"] {
        refused(
            apply_with_id(&mut window, bad, "13812345678").await,
            Code::InvalidArgument,
            "is not a UUID",
        );
    }
    assert_eq!(window_cases(&mut window).await, 1, "nothing else applied");
}

#[tokio::test]
async fn a_repeat_after_a_restart_gets_the_original_reply() {
    let mut cluster = Cluster::start().await;
    let mut window = cluster.window(HANTAI).await;
    let id = new_id();
    let first = apply_with_id(&mut window, &id, "13812345678")
        .await
        .unwrap();
    cluster.stop(HANTAI).await;
    cluster.restart(HANTAI).await;
    let mut window = cluster.window(HANTAI).await;
    let again = apply_with_id(&mut window, &id, "13812345678")
        .await
        .expect("repeat after restart");
    assert_eq!(again.encode_to_vec(), first.encode_to_vec());
    assert_eq!(window_cases(&mut window).await, 1);
}
