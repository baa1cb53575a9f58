//! Refusals a clerk or reviewer meets at the console, coded over gRPC so
//! that the console words them in Chinese at their field: an item not in
//! the catalogue, an upload without a material, paper originals received
//! for an item that has none, a mail leg without its carrier, a carrier
//! event at a time that is not one or that is the other side's to record.
//! The English messages stay the CLI's.

use tongban_proto::common::v1::CaseView;
use tongban_proto::mail::v1::{EventRequest, SendRequest};
use tongban_proto::window::v1::{AttachFrame, AttachHeader, attach_frame};
use tonic::Code;

use crate::mail::WAYBILL_1;
use crate::review::case_ref;
use crate::support::*;

#[tokio::test]
async fn an_unknown_item_and_an_empty_upload_are_refused_at_their_field() {
    let cluster = Cluster::start().await;
    let mut window = cluster.window(HANTAI).await;
    let facts = refused_coded(
        apply(
            &mut window,
            "XX-9999",
            YANTA,
            "mail-applicant",
            person(),
            &gt_materials(),
        )
        .await,
        Code::InvalidArgument,
        "is not in the federation's item catalogue",
        "item.unknown",
        "item_code",
    );
    assert_eq!(facts["item"], "XX-9999");

    let case = apply(
        &mut window,
        "GT-0001",
        YANTA,
        "mail-applicant",
        person(),
        &[],
    )
    .await
    .expect("an application missing its materials is taken in");
    let empty = vec![AttachFrame {
        frame: Some(attach_frame::Frame::Header(AttachHeader {
            request_id: String::new(),
            case_no: case.case_no.clone(),
            materials: Vec::new(),
        })),
    }];
    refused_coded(
        window.attach(tokio_stream::iter(empty)).await,
        Code::InvalidArgument,
        "attach needs at least one material",
        "material.none",
        "materials",
    );
}

#[tokio::test]
async fn paper_for_an_item_without_paper_and_mail_without_its_facts_are_refused() {
    let cluster = Cluster::start().await;
    let mut window = cluster.window(HANTAI).await;
    // 纳税申报 has no paper originals.
    let materials = [
        ("tax-return", b"tax return".to_vec()),
        ("id-card", b"id card scan".to_vec()),
    ];
    let case: CaseView = apply(
        &mut window,
        "SW-0001",
        YANTA,
        "mail-applicant",
        person(),
        &materials,
    )
    .await
    .expect("apply");
    verify_and_accept(&mut window, &case.case_no).await;
    let mut review = cluster.review(YANTA).await;
    home_state(&mut review, &case.case_no, "HANDED_OFF").await;
    let facts = refused_coded(
        review.paper_received(case_ref(&case.case_no)).await,
        Code::FailedPrecondition,
        "has no materials whose paper originals are mailed",
        "paper.none",
        "",
    );
    assert_eq!(facts["item"], "SW-0001");

    // A paper leg of an item that has paper, without its carrier; then a
    // carrier event at a time that is not one.
    let paper = accepted_case(&mut window, YANTA).await;
    window_state(&mut window, &paper.case_no, "HANDED_OFF").await;
    let mut mail = cluster.mail(HANTAI).await;
    let send = |carrier: &str| SendRequest {
        case_no: paper.case_no.clone(),
        leg: "materials".into(),
        carrier: carrier.into(),
        waybill: WAYBILL_1.into(),
        request_id: String::new(),
    };
    refused_coded(
        mail.send(send(" ")).await,
        Code::InvalidArgument,
        "name the carrier",
        "text.required",
        "carrier",
    );
    mail.send(send("EMS")).await.expect("materials leg");
    let facts = refused_coded(
        mail.event(EventRequest {
            waybill: WAYBILL_1.into(),
            status: "in-transit".into(),
            at: "yesterday noon".into(),
            note: String::new(),
            request_id: String::new(),
        })
        .await,
        Code::InvalidArgument,
        "is not an RFC 3339 time",
        "time.format",
        "at",
    );
    assert_eq!(facts["value"], "yesterday noon");
}

#[tokio::test]
async fn a_carrier_event_that_is_the_other_side_s_is_refused_naming_whose_it_is() {
    let cluster = Cluster::start().await;
    let (mut window, mut review, case_no) =
        crate::review::under_review(&cluster, "mail-applicant").await;
    crate::mail::paper(&cluster, &mut review, &case_no, WAYBILL_1).await;
    crate::review::approve(&mut review, &case_no)
        .await
        .expect("approve");
    crate::mail::send_result(&cluster, &case_no, crate::mail::WAYBILL_2)
        .await
        .expect("result leg");
    window_state(&mut window, &case_no, "RESULT_IN_TRANSIT").await;
    // The result goes to the applicant: its carrier events are the home
    // authority's to record, not the window's.
    let mut mail = cluster.mail(HANTAI).await;
    let facts = refused_coded(
        mail.event(EventRequest {
            waybill: crate::mail::WAYBILL_2.into(),
            status: "in-transit".into(),
            at: String::new(),
            note: String::new(),
            request_id: String::new(),
        })
        .await,
        Code::PermissionDenied,
        "may be reported only by the home authority's node",
        "mail.event-wrong-side",
        "status",
    );
    assert_eq!(
        (facts["leg"].as_str(), facts["owner"].as_str()),
        ("result", "home")
    );
}
