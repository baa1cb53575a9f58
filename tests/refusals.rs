//! Refusals a clerk or reviewer meets at the console, coded over gRPC so
//! that the console words them in Chinese at their field: an item not in
//! the catalogue, an upload without a material, paper originals received
//! for an item that has none, a mail leg without its carrier, a carrier
//! event at a time that is not one, that is the other side's to record or
//! that the case can no longer take, a case number or waybill the node does
//! not have, a request id that is not a UUID, a broken upload, and the home
//! authority's refusal of a handoff's application time, which reaches the
//! window's clerk as the home's coded report. The English messages stay the
//! CLI's.

use tongban_ledger::{EntryBody, Payload};
use tongban_proto::common::v1::{CaseView, MaterialChunk};
use tongban_proto::mail::v1::{EventRequest, SendRequest};
use tongban_proto::window::v1::{AttachFrame, AttachHeader, CaseRef, attach_frame};
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

#[tokio::test]
async fn a_carrier_event_after_the_result_leg_ended_is_refused_and_not_recorded() {
    let cluster = Cluster::start().await;
    let (_window, mut review, case_no) =
        crate::review::under_review(&cluster, "mail-applicant").await;
    crate::mail::paper(&cluster, &mut review, &case_no, WAYBILL_1).await;
    crate::review::approve(&mut review, &case_no)
        .await
        .expect("approve");
    crate::mail::send_result(&cluster, &case_no, crate::mail::WAYBILL_2)
        .await
        .expect("result leg");
    let closed = crate::mail::event(&cluster, YANTA, crate::mail::WAYBILL_2, "delivered").await;
    assert_eq!(closed.state, "CLOSED");
    let mut mail = cluster.mail(YANTA).await;
    let returned = |status: &str| EventRequest {
        waybill: crate::mail::WAYBILL_2.into(),
        status: status.into(),
        at: String::new(),
        note: String::new(),
        request_id: String::new(),
    };
    let facts = refused_coded(
        mail.event(returned("returned")).await,
        Code::FailedPrecondition,
        "a returned event cannot be recorded on it",
        "mail.event-state",
        "status",
    );
    assert_eq!(
        (
            facts["state"].as_str(),
            facts["current"].as_str(),
            facts["status"].as_str(),
            facts["replaced"].as_str()
        ),
        ("CLOSED", "delivered", "returned", "no")
    );
    // Nothing of it was kept; the same end said again changes nothing and
    // is taken (a carrier and a clerk both saying delivered).
    let after = review
        .get_case(crate::review::case_ref(&case_no))
        .await
        .expect("case")
        .into_inner();
    // (Receipts of the window's may still arrive: count carrier events.)
    let events = |c: &CaseView| c.history.iter().filter(|e| e.event == "mail.event").count();
    assert_eq!(after.state, "CLOSED");
    assert_eq!(events(&after), events(&closed), "nothing recorded");
    let leg = after.mail.iter().find(|m| m.leg == "result").unwrap();
    assert_eq!(leg.status, "delivered");
    let again = mail
        .event(returned("delivered"))
        .await
        .expect("the same end again")
        .into_inner();
    assert_eq!(again.state, "CLOSED");
}

#[tokio::test]
async fn a_case_number_or_waybill_the_node_lacks_is_named_and_a_bad_request_id_is_coded() {
    let cluster = Cluster::start().await;
    let mut window = cluster.window(HANTAI).await;
    let get = |case_no: &str| CaseRef {
        case_no: case_no.into(),
        request_id: String::new(),
    };
    // A number in the right shape that no case has: what was looked for,
    // where, and the county the number names.
    let facts = refused_coded(
        window.get_case(get("610113-20261125-7")).await,
        Code::NotFound,
        "no case 610113-20261125-7 on the node of 610702",
        "case.not-found",
        "case_no",
    );
    assert_eq!(
        (
            facts["case_no"].as_str(),
            facts["county"].as_str(),
            facts["issuer"].as_str()
        ),
        ("610113-20261125-7", "610702", "610113")
    );
    // A number not in the shape is named as such, at the same field.
    let facts = refused_coded(
        window.get_case(get("610702-2026112-7")).await,
        Code::InvalidArgument,
        "case number",
        "code.format",
        "case_no",
    );
    assert_eq!(facts["what"], "case number");
    // A case of this node, but on its other side.
    let case = accepted_case(&mut window, YANTA).await;
    home_state(
        &mut cluster.review(YANTA).await,
        &case.case_no,
        "HANDED_OFF",
    )
    .await;
    let facts = refused_coded(
        cluster
            .review(HANTAI)
            .await
            .get_case(crate::review::case_ref(&case.case_no))
            .await,
        Code::NotFound,
        "was not handed to 610702 for review",
        "case.not-here",
        "case_no",
    );
    assert_eq!(facts["side"], "home");
    // A waybill with a right check digit that no leg has; one with a wrong
    // check digit is the code's refusal, before any look-up.
    let mut mail = cluster.mail(HANTAI).await;
    let event = |waybill: &str| EventRequest {
        waybill: waybill.into(),
        status: "in-transit".into(),
        at: String::new(),
        note: String::new(),
        request_id: String::new(),
    };
    let facts = refused_coded(
        mail.event(event(WAYBILL_1)).await,
        Code::NotFound,
        "is not known on the node of 610702",
        "waybill.not-found",
        "waybill",
    );
    assert_eq!(
        (facts["waybill"].as_str(), facts["county"].as_str()),
        (WAYBILL_1, "610702")
    );
    refused_coded(
        mail.event(event("EA473124828CN")).await,
        Code::InvalidArgument,
        "waybill",
        "code.check-character",
        "waybill",
    );
    // A request id that is not a UUID, before anything is looked up.
    let facts = refused_coded(
        window
            .accept(CaseRef {
                case_no: case.case_no.clone(),
                request_id: "2026-11-25-1".into(),
            })
            .await,
        Code::InvalidArgument,
        "is not a UUID",
        "request-id.format",
        "request_id",
    );
    assert_eq!(facts["value"], "2026-11-25-1");
}

#[tokio::test]
async fn a_broken_upload_is_refused_at_its_material_and_leaves_nothing() {
    let cluster = Cluster::start().await;
    let mut window = cluster.window(HANTAI).await;
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
    let scan = b"id card scan".to_vec();
    // An attach of `header` (declared) carrying `data`.
    let attach = |header: tongban_proto::common::v1::MaterialHeader, data: Vec<u8>| {
        let mut frames = vec![AttachFrame {
            frame: Some(attach_frame::Frame::Header(AttachHeader {
                request_id: String::new(),
                case_no: case.case_no.clone(),
                materials: vec![header],
            })),
        }];
        if !data.is_empty() {
            frames.push(AttachFrame {
                frame: Some(attach_frame::Frame::Chunk(MaterialChunk {
                    material: 0,
                    data: data.into(),
                })),
            });
        }
        tokio_stream::iter(frames)
    };
    let facts = refused_coded(
        window
            .attach(attach(header("id-card", &scan), scan[..5].to_vec()))
            .await,
        Code::InvalidArgument,
        "material[0] (id-card) is truncated: 5 of 12 bytes received",
        "upload.truncated",
        "materials[0]",
    );
    assert_eq!(
        (facts["received"].as_str(), facts["declared"].as_str()),
        ("5", "12")
    );
    let mut longer = scan.clone();
    longer.extend_from_slice(b" and more");
    let facts = refused_coded(
        window
            .attach(attach(header("id-card", &scan), longer))
            .await,
        Code::InvalidArgument,
        "is longer than its declared size of 12 bytes",
        "upload.too-long",
        "materials[0]",
    );
    assert_eq!(facts["kind"], "id-card");
    let facts = refused_coded(
        window
            .attach(attach(header("id-card", b"id card scaN"), scan.clone()))
            .await,
        Code::InvalidArgument,
        "does not match its declared SHA-256",
        "upload.digest-mismatch",
        "materials[0]",
    );
    assert_eq!(facts["declared"], hex::encode(sha256(b"id card scaN")));
    assert_eq!(facts["received"], hex::encode(sha256(&scan)));
    let mut short_digest = header("id-card", &scan);
    short_digest.sha256.truncate(16);
    let facts = refused_coded(
        window.attach(attach(short_digest, scan.clone())).await,
        Code::InvalidArgument,
        "sha256 must be 32 bytes, got 16",
        "upload.digest-length",
        "materials[0]",
    );
    assert_eq!(facts["got"], "16");
    // Nothing half-stored: no material, no entry, no blob.
    let after = window
        .get_case(CaseRef {
            case_no: case.case_no.clone(),
            request_id: String::new(),
        })
        .await
        .expect("case")
        .into_inner();
    assert!(after.materials.is_empty(), "{:?}", after.materials);
    assert_eq!(after.history.len(), case.history.len());
    assert_blob_dir_empty(cluster.data_dir(HANTAI));
}

#[tokio::test]
async fn the_home_s_refusal_of_an_application_time_reaches_the_window_coded_as_its_report() {
    let mut cluster = Cluster::start().await;
    // 汉台's clock runs two hours ahead of 雁塔's.
    hantai_two_hours_ahead(&mut cluster).await;
    let mut window = cluster.window(HANTAI).await;
    let case = accepted_case(&mut window, YANTA).await;
    let parked = window_case_until(&mut window, &case.case_no, "refused", |c| {
        c.history.iter().any(|e| e.event == "handoff.refused")
    })
    .await;
    let entry = parked
        .history
        .iter()
        .find(|e| e.event == "handoff.refused")
        .unwrap();
    // The entry is the window's record of what the home said: the home's
    // county, its English words in the detail, its code and facts apart.
    assert!(
        entry
            .detail
            .starts_with("refused by 610113 (INVALID): applied_at"),
        "{}",
        entry.detail
    );
    let payload = Payload::decode(&entry.event, &entry.payload).expect("payload");
    let EntryBody::HandoffRefused { to, reported, .. } = payload.body else {
        panic!("{:?}", payload.body)
    };
    assert_eq!(to.as_str(), YANTA);
    let reported = reported.expect("the home's coded reason");
    assert_eq!(
        (reported.reason.as_str(), reported.field.as_str()),
        ("application-time.ahead", "applied_at")
    );
    assert_eq!(reported.args["skew_s"], "300");
    let ahead: i64 = reported.args["ahead_s"].parse().unwrap();
    assert!((7000..=7300).contains(&ahead), "{ahead}");
    assert_eq!(parked.state, "QUEUED", "not handed off");
}
