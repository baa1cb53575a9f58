//! Intake at the window and the durable handoff to the home authority.

use prost::Message;
use tongban_proto::common::v1::{IdentityCheck, SignedReceipt};
use tongban_proto::federation::v1::refusal::Code as RefusalCode;
use tongban_proto::federation::v1::{
    Application, Envelope, HandoffFrame, envelope::Body, handoff_frame::Frame,
    handoff_result::Outcome,
};
use tongban_proto::review::v1::InboxRequest;
use tongban_proto::window::v1::{CaseRef, ListCasesRequest};
use tonic::Code;

use crate::support::*;

/// Computes the GB 11643 check character for 17 digits.
fn with_check(first17: &str) -> String {
    const W: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const C: &[u8; 11] = b"10X98765432";
    let sum: u32 = first17
        .bytes()
        .zip(W)
        .map(|(b, w)| (b - b'0') as u32 * w)
        .sum();
    format!("{first17}{}", C[(sum % 11) as usize] as char)
}

#[tokio::test]
async fn a_person_case_is_handed_off_with_a_receipt_on_both_sides() {
    let cluster = Cluster::start().await;
    let mut window = cluster.window(HANTAI).await;
    let accepted = accepted_case(&mut window, YANTA).await;
    assert_eq!(accepted.state, "QUEUED");
    assert!(
        accepted.case_no.starts_with("610702-"),
        "{}",
        accepted.case_no
    );

    let at_a = window_state(&mut window, &accepted.case_no, "HANDED_OFF").await;
    let events: Vec<_> = at_a.history.iter().map(|h| h.event.as_str()).collect();
    assert_eq!(
        events,
        [
            "case.applied",
            "case.identity-verified",
            "case.accepted",
            "handoff.receipted"
        ]
    );

    let mut review = cluster.review(YANTA).await;
    let at_b = review
        .get_case(tongban_proto::review::v1::CaseRef {
            case_no: accepted.case_no.clone(),
            request_id: String::new(),
        })
        .await
        .expect("the home node holds the case")
        .into_inner();
    assert_eq!(at_b.state, "HANDED_OFF");
    assert_eq!(at_b.application_id, accepted.application_id);
    assert_eq!(
        at_b.materials, at_a.materials,
        "same materials and digests on both sides"
    );
    assert_eq!(
        at_b.history
            .iter()
            .filter(|h| h.event == "handoff.received")
            .count(),
        1
    );
    // Personal data is masked in views.
    let Some(tongban_proto::common::v1::applicant::Who::Person(p)) =
        at_b.applicant.and_then(|a| a.who)
    else {
        panic!("person")
    };
    assert_eq!(p.resident_id, "110***********002X");
}

#[tokio::test]
async fn a_company_case_is_handed_off() {
    let cluster = Cluster::start().await;
    let mut window = cluster.window(SHANGZHOU).await;
    let materials = vec![
        ("application-form", b"form".to_vec()),
        ("articles", b"articles of association".to_vec()),
        ("legal-rep-id", b"id card".to_vec()),
        ("premises-proof", vec![7u8; 600_000]), // over the inline limit: a file,
    ];
    let case = apply(
        &mut window,
        "SC-0001",
        YANTA,
        "mail-window",
        company(),
        &materials,
    )
    .await
    .expect("apply");
    assert_eq!(
        case.state, "CORRECTION_AT_WINDOW",
        "identity not yet verified"
    );
    assert!(case.missing.is_empty());
    window
        .verify_identity(tongban_proto::window::v1::VerifyIdentityRequest {
            case_no: case.case_no.clone(),
            method: "face".into(),
            request_id: String::new(),
        })
        .await
        .unwrap();
    let receipt = window
        .accept(CaseRef {
            case_no: case.case_no.clone(),
            request_id: String::new(),
        })
        .await
        .expect("accept")
        .into_inner();
    assert_eq!(receipt.home_county_name, "雁塔区");
    let queued = receipt.case.unwrap();
    assert_eq!(queued.promised_days, 3);
    assert_eq!(queued.materials.len(), 4);
    window_state(&mut window, &case.case_no, "HANDED_OFF").await;
    let inbox = inbox(&cluster).await;
    assert_eq!(inbox.cases.len(), 1);
    assert_eq!(inbox.cases[0].item_code, "SC-0001");
}

#[tokio::test]
async fn invalid_applications_are_refused_with_a_clear_error_and_nothing_stored() {
    let cluster = Cluster::start().await;
    let mut window = cluster.window(HANTAI).await;
    let mut bad_id = person();
    if let Some(tongban_proto::common::v1::applicant::Who::Person(p)) = &mut bad_id.who {
        p.resident_id = "110105194912310021".into();
    }
    let mut bad_date = person();
    if let Some(tongban_proto::common::v1::applicant::Who::Person(p)) = &mut bad_date.who {
        // 1949-02-30 does not exist; the check character is right.
        p.resident_id = with_check("11010519490230002");
    }
    let mut bad_credit = company();
    if let Some(tongban_proto::common::v1::applicant::Who::Company(c)) = &mut bad_credit.who {
        c.credit_code = "91350100M000100Y44".into();
    }
    let gt = gt_materials();
    #[allow(clippy::type_complexity)]
    let cases: Vec<(
        &str,
        &str,
        tongban_proto::common::v1::Applicant,
        Vec<(&str, Vec<u8>)>,
        Code,
        &str,
    )> = vec![
        (
            "GT-0001",
            "mail-applicant",
            bad_id,
            gt.clone(),
            Code::InvalidArgument,
            "check character",
        ),
        (
            "GT-0001",
            "mail-applicant",
            bad_date,
            gt.clone(),
            Code::InvalidArgument,
            "birth date",
        ),
        (
            "GT-0001",
            "mail-applicant",
            bad_credit,
            gt.clone(),
            Code::InvalidArgument,
            "credit code",
        ),
        // SC-0001 is only agreed between 商州 and 雁塔.
        (
            "SC-0001",
            "mail-applicant",
            person(),
            vec![],
            Code::PermissionDenied,
            "no agreement",
        ),
        // 户口迁移 allows mail-applicant and collect-home only.
        (
            "HJ-0001",
            "mail-window",
            person(),
            vec![],
            Code::InvalidArgument,
            "does not allow mail-window",
        ),
        (
            "GT-0001",
            "mail-applicant",
            person(),
            vec![("business-plan", b"x".to_vec())],
            Code::InvalidArgument,
            "no material kind \"business-plan\"",
        ),
        (
            "GT-0001",
            "teleport",
            person(),
            gt.clone(),
            Code::InvalidArgument,
            "delivery",
        ),
    ];
    for (item, delivery, applicant, materials, code, message) in cases {
        let err = apply(&mut window, item, YANTA, delivery, applicant, &materials)
            .await
            .expect_err(message);
        assert_eq!(err.code(), code, "{message}: {}", err.message());
        assert!(
            err.message().contains(message),
            "expected {message:?} in {:?}",
            err.message()
        );
        // The coded ones carry their reason at their field.
        let coded = match message {
            "does not allow mail-window" => Some(("delivery.not-allowed", "delivery")),
            "no agreement" => Some(("authority.no-agreement", "")),
            "no material kind \"business-plan\"" => {
                Some(("material.unknown-kind", "materials[0].kind"))
            }
            _ => None,
        };
        if let Some((reason, field)) = coded {
            refused_coded(Err::<(), _>(err), code, message, reason, field);
        }
    }
    let listed = window
        .list_cases(ListCasesRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(listed.cases.is_empty(), "nothing stored");
    assert_blob_dir_empty(cluster.data_dir(HANTAI));
}

#[tokio::test]
async fn missing_materials_give_one_notice_naming_all_of_them() {
    let cluster = Cluster::start().await;
    let mut window = cluster.window(HANTAI).await;
    let case = apply(
        &mut window,
        "GT-0001",
        YANTA,
        "collect-home",
        person(),
        &[("id-card", b"id".to_vec())],
    )
    .await
    .expect("apply");
    assert_eq!(case.state, "CORRECTION_AT_WINDOW");
    assert_eq!(case.missing, ["application-form", "premises-proof"]);
    let err = window
        .accept(CaseRef {
            case_no: case.case_no.clone(),
            request_id: String::new(),
        })
        .await
        .expect_err("incomplete case");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(
        err.message().contains("application-form, premises-proof"),
        "{}",
        err.message()
    );

    let frames = vec![
        tongban_proto::window::v1::AttachFrame {
            frame: Some(tongban_proto::window::v1::attach_frame::Frame::Header(
                tongban_proto::window::v1::AttachHeader {
                    case_no: case.case_no.clone(),
                    materials: vec![
                        header("application-form", b"f"),
                        header("premises-proof", b"p"),
                    ],
                    request_id: String::new(),
                },
            )),
        },
        tongban_proto::window::v1::AttachFrame {
            frame: Some(tongban_proto::window::v1::attach_frame::Frame::Chunk(
                tongban_proto::common::v1::MaterialChunk {
                    material: 0,
                    data: b"f".to_vec().into(),
                },
            )),
        },
        tongban_proto::window::v1::AttachFrame {
            frame: Some(tongban_proto::window::v1::attach_frame::Frame::Chunk(
                tongban_proto::common::v1::MaterialChunk {
                    material: 1,
                    data: b"p".to_vec().into(),
                },
            )),
        },
    ];
    let attached = window
        .attach(tokio_stream::iter(frames))
        .await
        .expect("attach")
        .into_inner();
    assert!(attached.missing.is_empty());
    assert_eq!(
        attached.state, "CORRECTION_AT_WINDOW",
        "identity still to verify"
    );
}

#[tokio::test]
async fn oversized_materials_are_refused_and_leave_nothing() {
    let mut options = Options::default();
    options
        .extra
        .push_str("[limits]\nmax_material_bytes = 1000\nmax_case_bytes = 1500\n");
    let cluster = Cluster::start_with(options).await;
    let mut window = cluster.window(HANTAI).await;
    let err = apply(
        &mut window,
        "GT-0001",
        YANTA,
        "mail-applicant",
        person(),
        &[("id-card", vec![1; 1001])],
    )
    .await
    .expect_err("too large");
    assert_eq!(err.code(), Code::ResourceExhausted);
    assert!(
        err.message().contains("1000 B per material"),
        "{}",
        err.message()
    );
    let err = apply(
        &mut window,
        "GT-0001",
        YANTA,
        "mail-applicant",
        person(),
        &[("id-card", vec![1; 900]), ("premises-proof", vec![2; 900])],
    )
    .await
    .expect_err("case too large");
    assert!(err.message().contains("per case"), "{}", err.message());
    assert!(
        window
            .list_cases(ListCasesRequest::default())
            .await
            .unwrap()
            .into_inner()
            .cases
            .is_empty()
    );
    assert_blob_dir_empty(cluster.data_dir(HANTAI));
}

#[tokio::test]
async fn a_case_waits_in_the_outbox_while_the_home_node_is_down() {
    let mut cluster = Cluster::start().await;
    cluster.stop(YANTA).await;
    let mut window = cluster.window(HANTAI).await;
    let case = accepted_case(&mut window, YANTA).await;
    // Let the courier fail a few times against the closed port.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let still = window
        .get_case(CaseRef {
            case_no: case.case_no.clone(),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(still.state, "QUEUED");

    cluster.restart(YANTA).await;
    window_state(&mut window, &case.case_no, "HANDED_OFF").await;
    let at_b = cluster
        .review(YANTA)
        .await
        .get_case(tongban_proto::review::v1::CaseRef {
            case_no: case.case_no.clone(),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        at_b.history
            .iter()
            .filter(|h| h.event == "handoff.received")
            .count(),
        1,
        "delivered once"
    );
}

#[tokio::test]
async fn a_restart_of_the_sender_between_accept_and_delivery_loses_nothing() {
    let mut cluster = Cluster::start().await;
    cluster.stop(YANTA).await;
    let mut window = cluster.window(HANTAI).await;
    let mut accepted = Vec::new();
    for _ in 0..3 {
        accepted.push(accepted_case(&mut window, YANTA).await.case_no);
    }
    cluster.stop(HANTAI).await;
    cluster.restart(HANTAI).await;
    cluster.restart(YANTA).await;
    let mut window = cluster.window(HANTAI).await;
    for case_no in &accepted {
        window_state(&mut window, case_no, "HANDED_OFF").await;
    }
    let inbox = inbox(&cluster).await;
    assert_eq!(inbox.cases.len(), 3);
}

/// An application envelope as 汉台's node would send it.
pub(crate) fn envelope(
    handoff_id: &str,
    application_id: &str,
    case_no: &str,
    materials: &[(&str, Vec<u8>)],
    sent_at: &str,
) -> Vec<u8> {
    Envelope {
        version: 1,
        handoff_id: handoff_id.into(),
        application_id: application_id.into(),
        case_no: case_no.into(),
        receiving_county: HANTAI.into(),
        home_county: YANTA.into(),
        sent_at: sent_at.into(),
        actor: format!("spiffe://{TD}/county/{HANTAI}/clerk/wang"),
        body: Some(Body::Application(Application {
            item_code: "GT-0001".into(),
            delivery: "mail-applicant".into(),
            applicant: Some(person()),
            identity_check: Some(IdentityCheck {
                method: "manual".into(),
                by: format!("spiffe://{TD}/county/{HANTAI}/clerk/wang"),
                at: sent_at.into(),
            }),
            accepted_at: sent_at.into(),
            // As a sender that predates the field: the home records the
            // arrival, marked as such.
            applied_at: String::new(),
            commitment: None,
            consultation: None,
        })),
        materials: materials.iter().map(|(k, d)| header(k, d)).collect(),
    }
    .encode_to_vec()
}

/// The cases in 雁塔's review inbox.
pub(crate) async fn inbox(cluster: &Cluster) -> tongban_proto::review::v1::InboxReply {
    let mut review = cluster.review(YANTA).await;
    review
        .inbox(InboxRequest::default())
        .await
        .expect("inbox")
        .into_inner()
}

/// An envelope with new handoff and application ids.
pub(crate) fn fresh_envelope(case_no: &str, materials: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let (handoff, app) = (
        uuid::Uuid::now_v7().to_string(),
        uuid::Uuid::now_v7().to_string(),
    );
    envelope(&handoff, &app, case_no, materials, "2026-11-25T08:00:00Z")
}

pub(crate) fn frames(envelope: Vec<u8>, materials: &[(&str, Vec<u8>)]) -> Vec<HandoffFrame> {
    let mut out = vec![HandoffFrame {
        frame: Some(Frame::Envelope(envelope)),
    }];
    out.extend(chunks(materials).into_iter().map(|c| HandoffFrame {
        frame: Some(Frame::Chunk(c)),
    }));
    out
}

#[tokio::test]
async fn a_duplicate_gets_the_same_receipt_and_other_content_is_refused() {
    let cluster = Cluster::start().await;
    let materials = gt_materials();
    let handoff_id = uuid::Uuid::now_v7().to_string();
    let app_id = uuid::Uuid::now_v7().to_string();
    let first = envelope(
        &handoff_id,
        &app_id,
        "610702-20261125-7",
        &materials,
        "2026-11-25T08:00:00Z",
    );
    let a = handoff_as(&cluster, YANTA, HANTAI, frames(first.clone(), &materials)).await;
    let b = handoff_as(&cluster, YANTA, HANTAI, frames(first, &materials)).await;
    let (Some(Outcome::Receipt(ra)), Some(Outcome::Receipt(rb))) = (&a.outcome, &b.outcome) else {
        panic!("receipts expected: {a:?} {b:?}");
    };
    assert_eq!(
        ra.encode_to_vec(),
        rb.encode_to_vec(),
        "byte-for-byte the same receipt"
    );
    let receipt = tongban_proto::common::v1::Receipt::decode(ra.receipt.as_slice()).unwrap();
    assert_eq!(receipt.handoff_id, handoff_id);
    assert_eq!(receipt.sender_county, HANTAI);
    assert_eq!(receipt.materials.len(), 3);
    assert_eq!(receipt.materials[0].sha256, sha256(&materials[0].1));

    let other = envelope(
        &handoff_id,
        &app_id,
        "610702-20261125-7",
        &materials,
        "2026-11-25T09:00:00Z",
    );
    let c = handoff_as(&cluster, YANTA, HANTAI, frames(other, &materials)).await;
    let (code, message) = refusal(&c);
    assert_eq!(code, RefusalCode::AlreadyExists);
    assert!(message.contains(&handoff_id), "{message}");
    let inbox = inbox(&cluster).await;
    assert_eq!(inbox.cases.len(), 1, "stored once");
}

#[tokio::test]
async fn a_receipt_verifies_against_the_receivers_certificate() {
    let cluster = Cluster::start().await;
    let materials = gt_materials();
    let env = fresh_envelope("610702-20261125-8", &materials);
    let result = handoff_as(&cluster, YANTA, HANTAI, frames(env, &materials)).await;
    let Some(Outcome::Receipt(signed)) = result.outcome else {
        panic!("receipt")
    };
    let anchor = tongban_pki::TrustAnchor::from_pem(cluster.pki().ca.cert_pem()).unwrap();
    // The receiver signs its stream's receipts as one batch (§8.5);
    // the receipt module checks that the signer is the receiver's node.
    let verify =
        |s: &SignedReceipt| tongban_node::receipt::verify(&anchor, s, std::time::SystemTime::now());
    assert!(signed.batch.is_some(), "signed in a batch");
    let receipt = verify(&signed).expect("signature verifies");
    assert_eq!(receipt.receiver_county, YANTA);
    let mut forged = SignedReceipt { ..signed.clone() };
    forged.receipt[5] ^= 1;
    assert!(
        verify(&forged).is_err(),
        "a changed receipt does not verify"
    );
}

#[tokio::test]
async fn a_tampered_or_truncated_upload_is_refused_and_nothing_is_stored() {
    let cluster = Cluster::start().await;
    let materials = gt_materials();
    let env = fresh_envelope("610702-20261125-9", &materials);
    let mut tampered = frames(env, &materials);
    if let Some(Frame::Chunk(c)) = &mut tampered[1].frame {
        let mut data = c.data.to_vec();
        data[10] ^= 0xff;
        c.data = data.into();
    }
    let (code, message) = refusal(&handoff_as(&cluster, YANTA, HANTAI, tampered).await);
    assert_eq!(code, RefusalCode::Invalid);
    assert!(message.contains("SHA-256"), "{message}");

    let env = fresh_envelope("610702-20261125-10", &materials);
    let mut truncated = frames(env, &materials);
    truncated.pop();
    let (code, message) = refusal(&handoff_as(&cluster, YANTA, HANTAI, truncated).await);
    assert_eq!(code, RefusalCode::Invalid);
    assert!(message.contains("truncated"), "{message}");

    let inbox = inbox(&cluster).await;
    assert!(inbox.cases.is_empty());
    assert_blob_dir_empty(cluster.data_dir(YANTA));
}

#[tokio::test]
async fn the_sender_county_comes_from_the_certificate() {
    let cluster = Cluster::start().await;
    let materials = gt_materials();
    let env = fresh_envelope("610702-20261125-11", &materials);
    // 商州's node sends an envelope that claims 汉台 took it in.
    let mut fed = cluster.federation_as(YANTA, SHANGZHOU).await;
    let reply = fed
        .handoff(tokio_stream::iter(frames(env, &materials)))
        .await
        .unwrap()
        .into_inner();
    let (code, message) = refusal(&reply.results[0]);
    assert_eq!(code, RefusalCode::NotPermitted);
    assert!(message.contains("611002"), "{message}");
}

#[tokio::test]
async fn a_handoff_is_parked_when_its_attempts_run_out() {
    let mut cluster = Cluster::start_with(Options {
        extra: "[delivery]\ninitial_backoff_ms = 10\nmax_backoff_ms = 20\nmax_attempts = 3\n"
            .into(),
        ..Options::default()
    })
    .await;
    cluster.stop(YANTA).await;
    let mut window = cluster.window(HANTAI).await;
    let case = accepted_case(&mut window, YANTA).await;
    let parked = eventually("the handoff to be parked", || {
        let mut w = window.clone();
        let case_no = case.case_no.clone();
        async move {
            let c = w
                .get_case(CaseRef {
                    case_no,
                    request_id: String::new(),
                })
                .await
                .ok()?
                .into_inner();
            c.note.contains("gave up after 3 attempts").then_some(c)
        }
    })
    .await;
    assert_eq!(parked.state, "QUEUED", "not handed off");
    assert!(parked.history.iter().any(|h| h.event == "handoff.parked"));
    // A parked handoff stays parked, even with the partner back...
    cluster.restart(YANTA).await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let still = window
        .get_case(CaseRef {
            case_no: case.case_no.clone(),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(still.state, "QUEUED");
    // ...until the clerk retries it.
    let retried = window
        .retry(CaseRef {
            case_no: case.case_no.clone(),
            request_id: String::new(),
        })
        .await
        .expect("retry")
        .into_inner();
    assert!(retried.note.contains("queued again"), "{}", retried.note);
    window_state(&mut window, &case.case_no, "HANDED_OFF").await;
    let err = window
        .retry(CaseRef {
            case_no: case.case_no,
            request_id: String::new(),
        })
        .await
        .expect_err("nothing parked any more");
    refused_coded(
        Err::<(), _>(err),
        Code::FailedPrecondition,
        "has no parked handoff",
        "retry.none-parked",
        "",
    );
}

#[tokio::test]
async fn garbage_from_a_partner_is_refused_and_stores_nothing() {
    let cluster = Cluster::start().await;
    // An envelope that does not decode gets a refusal; the stream goes on.
    let result = handoff_as(
        &cluster,
        YANTA,
        HANTAI,
        vec![HandoffFrame {
            frame: Some(Frame::Envelope(vec![0xff; 40])),
        }],
    )
    .await;
    let (code, message) = refusal(&result);
    assert_eq!(code, RefusalCode::Invalid);
    assert!(message.contains("does not decode"), "{message}");
    // A chunk before any envelope fails the stream.
    let mut fed = cluster.federation_as(YANTA, HANTAI).await;
    let stray = vec![HandoffFrame {
        frame: Some(Frame::Chunk(tongban_proto::common::v1::MaterialChunk {
            material: 0,
            data: b"x".to_vec().into(),
        })),
    }];
    refused(
        fed.handoff(tokio_stream::iter(stray)).await,
        Code::InvalidArgument,
        "before any envelope",
    );
    // A material declared with no content at all is refused as truncated.
    let materials = gt_materials();
    let env = fresh_envelope("610702-20261125-12", &materials);
    let (code, message) = refusal(
        &handoff_as(
            &cluster,
            YANTA,
            HANTAI,
            vec![HandoffFrame {
                frame: Some(Frame::Envelope(env)),
            }],
        )
        .await,
    );
    assert_eq!(code, RefusalCode::Invalid);
    assert!(message.contains("truncated"), "{message}");
    assert!(inbox(&cluster).await.cases.is_empty());
    assert_blob_dir_empty(cluster.data_dir(YANTA));
}
