//! Input hygiene and personal data at rest, over real nodes: free text with
//! control characters and implausible resident IDs refused at every edge
//! (the window, the reviewer, the mail service, a partner's envelope, the
//! `tongban` command) with the field named and nothing stored; the data
//! dir readable only by the node's user, and put right at a restart.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use prost::Message;
use tongban_proto::common::v1::{Applicant, CorrectionNeed, IdentityCheck, applicant::Who};
use tongban_proto::federation::v1::handoff_result::Outcome;
use tongban_proto::federation::v1::refusal::Code as RefusalCode;
use tongban_proto::federation::v1::{
    Application, Envelope, HandoffFrame, envelope::Body, handoff_frame::Frame,
};
use tongban_proto::mail::v1::{EventRequest, SendRequest};
use tongban_proto::review::v1::{
    ApproveFrame, ApproveHeader, CorrectRequest, DenyRequest, InboxRequest, approve_frame,
};
use tongban_proto::window::v1::{CaseRef, HandoutRequest, ListCasesRequest};
use tonic::Code;

use crate::support::*;

const BIN: &str = env!("CARGO_BIN_EXE_tongban");

/// A person applicant with `f` applied.
fn person_with(
    f: impl FnOnce(&mut Applicant, &mut tongban_proto::common::v1::Person),
) -> Applicant {
    let mut a = person();
    let Some(Who::Person(mut p)) = a.who.take() else {
        unreachable!("person() is a person")
    };
    f(&mut a, &mut p);
    a.who = Some(Who::Person(p));
    a
}

/// The GB 11643 check character appended to 17 digits.
fn with_check(first17: &str) -> String {
    const W: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const C: &[u8; 11] = b"10X98765432";
    let sum: u32 = first17
        .bytes()
        .zip(W)
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    format!("{first17}{}", C[(sum % 11) as usize] as char)
}

#[tokio::test]
async fn control_characters_and_implausible_ids_are_refused_at_the_window() {
    let cluster = Cluster::start().await;
    let mut window = cluster.window(HANTAI).await;
    let cases = [
        (
            person_with(|_, p| p.name = "张\u{1b}[2J三".into()),
            "person name: contains a control character (U+001B) at position 2",
        ),
        (
            person_with(|a, _| a.address = "陕西省汉中市\n汉台区北大街1号".into()),
            "address: contains a control character (U+000A) at position 7",
        ),
        (
            // Born 2099-01-01: the check character is right.
            person_with(|_, p| p.resident_id = with_check("11010520990101001")),
            "person id: resident id birth date 20990101 is after today",
        ),
        (
            person_with(|_, p| p.resident_id = with_check("00010519491231002")),
            "person id: resident id 000",
        ),
    ];
    for (applicant, message) in cases {
        refused(
            apply(
                &mut window,
                "GT-0001",
                YANTA,
                "mail-applicant",
                applicant,
                &gt_materials(),
            )
            .await,
            Code::InvalidArgument,
            message,
        );
    }
    let err = apply(
        &mut window,
        "GT-0001",
        YANTA,
        "mail-applicant",
        person_with(|_, p| p.resident_id = with_check("00010519491231002")),
        &[],
    )
    .await
    .unwrap_err();
    assert!(
        err.message().ends_with("00 is not a province prefix"),
        "{}",
        err.message()
    );
    // A company's names are free text too.
    let mut company = company();
    if let Some(Who::Company(c)) = &mut company.who {
        c.legal_rep_name = "李四\u{7}".into();
    }
    refused(
        apply(
            &mut window,
            "GT-0001",
            YANTA,
            "mail-applicant",
            company,
            &[],
        )
        .await,
        Code::InvalidArgument,
        "legal representative name: contains a control character (U+0007) at position 3",
    );
    let listed = window
        .list_cases(ListCasesRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(
        listed.cases.is_empty(),
        "nothing stored: {:?}",
        listed.cases
    );
    assert_blob_dir_empty(cluster.data_dir(HANTAI));

    // A lower-case x is the same ID, stored in capitals.
    let case = apply(
        &mut window,
        "GT-0001",
        YANTA,
        "mail-applicant",
        person_with(|_, p| p.resident_id = PERSON_ID.to_lowercase()),
        &gt_materials(),
    )
    .await
    .expect("a lower-case x is accepted");
    let mut review = cluster.review(YANTA).await;
    window
        .verify_identity(tongban_proto::window::v1::VerifyIdentityRequest {
            case_no: case.case_no.clone(),
            method: "manual".into(),
            request_id: String::new(),
        })
        .await
        .unwrap();
    window
        .accept(CaseRef {
            case_no: case.case_no.clone(),
            request_id: String::new(),
        })
        .await
        .unwrap();
    // Stored, and sent to the home authority, with a capital X (views
    // show it masked).
    let home = home_state(&mut review, &case.case_no, "HANDED_OFF").await;
    match home.applicant.and_then(|a| a.who) {
        Some(Who::Person(p)) => assert_eq!(p.resident_id, "110***********002X"),
        other => panic!("expected a person, got {other:?}"),
    }
}

#[tokio::test]
async fn reviewers_and_mail_get_the_same_free_text_rules() {
    let cluster = Cluster::start().await;
    let mut window = cluster.window(HANTAI).await;
    let mut review = cluster.review(YANTA).await;
    let case = accepted_case(&mut window, YANTA).await;
    home_state(&mut review, &case.case_no, "HANDED_OFF").await;
    let case_no = case.case_no.clone();
    review
        .accept(tongban_proto::review::v1::CaseRef {
            case_no: case_no.clone(),
            request_id: String::new(),
        })
        .await
        .expect("accept for review");

    refused(
        review
            .correct(CorrectRequest {
                case_no: case_no.clone(),
                needs: vec![CorrectionNeed {
                    kind: "premises-proof".into(),
                    reason: "unsigned\u{1b}]8;;http://x\u{7}".into(),
                }],
                deadline_days: 0,
                request_id: String::new(),
            })
            .await,
        Code::InvalidArgument,
        "need \"premises-proof\" reason: contains a control character (U+001B) at position 9",
    );
    refused(
        review
            .deny(DenyRequest {
                case_no: case_no.clone(),
                reason: "not eligible\r\nforged line".into(),
                request_id: String::new(),
            })
            .await,
        Code::InvalidArgument,
        "reason: contains a control character (U+000D) at position 13",
    );
    let result = b"licence document".to_vec();
    let frames = vec![
        ApproveFrame {
            frame: Some(approve_frame::Frame::Header(ApproveHeader {
                case_no: case_no.clone(),
                licence_no: "JY6107\u{0}02".into(),
                result: Some(header("result", &result)),
                request_id: String::new(),
            })),
        },
        ApproveFrame {
            frame: Some(approve_frame::Frame::Chunk(
                tongban_proto::common::v1::MaterialChunk {
                    material: 0,
                    data: result.into(),
                },
            )),
        },
    ];
    refused(
        review.approve(tokio_stream::iter(frames)).await,
        Code::InvalidArgument,
        "licence number: contains a control character (U+0000) at position 7",
    );
    let mut mail = cluster.mail(HANTAI).await;
    refused(
        mail.send(SendRequest {
            case_no: case_no.clone(),
            leg: "materials".into(),
            carrier: "EMS\u{9b}".into(),
            waybill: "EA473124829CN".into(),
            request_id: String::new(),
        })
        .await,
        Code::InvalidArgument,
        "carrier: contains a control character (U+009B) at position 4",
    );
    refused(
        mail.event(EventRequest {
            waybill: "EA473124829CN".into(),
            status: "in-transit".into(),
            at: String::new(),
            note: "sorted\u{8}\u{8}lost".into(),
            request_id: String::new(),
        })
        .await,
        Code::InvalidArgument,
        "note: contains a control character (U+0008) at position 7",
    );
    refused(
        window
            .handout(HandoutRequest {
                case_no: case_no.clone(),
                recipient_id: format!("{PERSON_ID}\u{1b}"),
                request_id: String::new(),
            })
            .await,
        Code::InvalidArgument,
        "recipient id: contains a control character (U+001B) at position 19",
    );
    // Nothing moved: still under review, no decision, no correction, no mail.
    let home = review
        .get_case(tongban_proto::review::v1::CaseRef {
            case_no: case_no.clone(),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(home.state, "UNDER_REVIEW");
    assert!(home.corrections.is_empty() && home.denial_reason.is_empty());
    assert!(home.licence_no.is_empty() && home.result.is_none());
    let at_window = window
        .get_case(CaseRef {
            case_no,
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(at_window.mail.is_empty(), "{:?}", at_window.mail);
}

/// An application envelope from 汉台 to 雁塔 for `applicant`.
fn envelope(case_no: &str, applicant: Applicant, materials: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let at = "2026-11-25T08:00:00Z";
    let actor = format!("spiffe://{TD}/county/{HANTAI}/clerk/wang");
    Envelope {
        version: 1,
        handoff_id: uuid::Uuid::now_v7().to_string(),
        application_id: uuid::Uuid::now_v7().to_string(),
        case_no: case_no.into(),
        receiving_county: HANTAI.into(),
        home_county: YANTA.into(),
        sent_at: at.into(),
        actor: actor.clone(),
        body: Some(Body::Application(Application {
            item_code: "GT-0001".into(),
            delivery: "mail-applicant".into(),
            applicant: Some(applicant),
            identity_check: Some(IdentityCheck {
                method: "manual".into(),
                by: actor,
                at: at.into(),
            }),
            accepted_at: at.into(),
            applied_at: String::new(),
            commitment: None,
            consultation: None,
        })),
        materials: materials.iter().map(|(k, d)| header(k, d)).collect(),
    }
    .encode_to_vec()
}

#[tokio::test]
async fn a_partners_envelope_gets_the_same_rules() {
    let cluster = Cluster::start().await;
    let materials = gt_materials();
    let cases = [
        (
            person_with(|_, p| p.name = "张三\u{1b}[8m".into()),
            "person name: contains a control character (U+001B) at position 3",
        ),
        (
            person_with(|_, p| p.resident_id = with_check("11010520990101001")),
            "birth date 20990101 is after today",
        ),
        (
            person_with(|_, p| p.resident_id = with_check("00010519491231002")),
            "00 is not a province prefix",
        ),
    ];
    for (n, (applicant, message)) in cases.into_iter().enumerate() {
        let mut frames = vec![HandoffFrame {
            frame: Some(Frame::Envelope(envelope(
                &format!("610702-20261125-{}", n + 1),
                applicant,
                &materials,
            ))),
        }];
        frames.extend(chunks(&materials).into_iter().map(|c| HandoffFrame {
            frame: Some(Frame::Chunk(c)),
        }));
        let mut fed = cluster.federation_as(YANTA, HANTAI).await;
        let mut reply = fed
            .handoff(tokio_stream::iter(frames))
            .await
            .expect("handoff call")
            .into_inner();
        assert_eq!(reply.results.len(), 1);
        match reply.results.remove(0).outcome {
            Some(Outcome::Refusal(r)) => {
                assert_eq!(r.code(), RefusalCode::Invalid, "{}", r.message);
                assert!(
                    r.message.contains(message),
                    "{message:?} in {:?}",
                    r.message
                );
            }
            other => panic!("expected a refusal for {message:?}, got {other:?}"),
        }
    }
    let mut review = cluster.review(YANTA).await;
    let inbox = review
        .inbox(InboxRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(inbox.cases.is_empty(), "nothing stored: {:?}", inbox.cases);
    assert_blob_dir_empty(cluster.data_dir(YANTA));
}

#[tokio::test]
async fn a_partners_case_update_with_a_control_character_is_refused() {
    let cluster = Cluster::start().await;
    let mut window = cluster.window(HANTAI).await;
    let mut review = cluster.review(YANTA).await;
    let case = accepted_case(&mut window, YANTA).await;
    home_state(&mut review, &case.case_no, "HANDED_OFF").await;
    // The window holds the receipt (else its state may still be QUEUED).
    window_state(&mut window, &case.case_no, "HANDED_OFF").await;
    // 雁塔's node (or something holding its certificate) denies with a
    // reason that would repaint the clerk's terminal.
    let update = Envelope {
        version: 1,
        handoff_id: uuid::Uuid::now_v7().to_string(),
        application_id: case.application_id.clone(),
        case_no: case.case_no.clone(),
        receiving_county: HANTAI.into(),
        home_county: YANTA.into(),
        sent_at: "2026-11-25T08:00:00Z".into(),
        actor: format!("spiffe://{TD}/county/{YANTA}/reviewer/li"),
        body: Some(Body::Update(tongban_proto::federation::v1::CaseUpdate {
            event: "review.denied".into(),
            state: "DENIED".into(),
            reason: "denied\u{1b}[2J".into(),
            ..Default::default()
        })),
        materials: Vec::new(),
    };
    let mut fed = cluster.federation_as(HANTAI, YANTA).await;
    let frames = vec![HandoffFrame {
        frame: Some(Frame::Envelope(update.encode_to_vec())),
    }];
    let mut reply = fed
        .handoff(tokio_stream::iter(frames))
        .await
        .expect("handoff call")
        .into_inner();
    match reply.results.remove(0).outcome {
        Some(Outcome::Refusal(r)) => {
            assert_eq!(r.code(), RefusalCode::Invalid, "{}", r.message);
            assert!(
                r.message
                    .contains("update reason: contains a control character (U+001B) at position 7"),
                "{}",
                r.message
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    let at_window = window
        .get_case(CaseRef {
            case_no: case.case_no.clone(),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(at_window.state, "HANDED_OFF");
    assert!(at_window.denial_reason.is_empty());
}

#[tokio::test]
async fn the_tongban_command_exits_1_naming_the_field() {
    let cluster = Cluster::start().await;
    let dir = cluster.root();
    let tls = cluster.pki().issue(clerk(HANTAI, "wang"));
    std::fs::write(dir.join("wang.crt"), &tls.cert_pem).unwrap();
    std::fs::write(dir.join("wang.key"), &tls.key_pem).unwrap();
    let mut args: Vec<String> = [
        "window",
        "apply",
        "--item",
        "GT-0001",
        "--home",
        YANTA,
        "--delivery",
        "mail-applicant",
        "--person-name",
        "张三",
        "--person-id",
        PERSON_ID,
        "--phone",
        "13812345678",
        "--address",
        "北大街1号\u{1b}[2J",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    for (kind, data) in gt_materials() {
        let path = dir.join(format!("{kind}.pdf"));
        std::fs::write(&path, data).unwrap();
        args.push("--material".into());
        args.push(format!("{kind}={}", path.display()));
    }
    for (flag, path) in [
        ("--node", cluster.endpoint(HANTAI)),
        ("--ca", cluster.ca_path().display().to_string()),
        ("--cert", dir.join("wang.crt").display().to_string()),
        ("--key", dir.join("wang.key").display().to_string()),
    ] {
        args.push(flag.into());
        args.push(path);
    }
    let out = tokio::task::spawn_blocking(move || {
        Command::new(BIN)
            .args(&args)
            .env_remove("TONGBAN_PROFILE")
            .output()
            .expect("run tongban")
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("address: contains a control character (U+001B) at position 6"),
        "{stderr}"
    );
    assert!(!stderr.contains('\u{1b}'), "no raw ESC printed: {stderr:?}");
    let mut window = cluster.window(HANTAI).await;
    let listed = window
        .list_cases(ListCasesRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(listed.cases.is_empty());
}

/// Paths with their modes.
type Modes = Vec<(String, u32)>;

/// Every directory under `root` (and itself) with its mode, and every file.
fn modes(root: &Path) -> (Modes, Modes) {
    let mode = |p: &Path| std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777;
    let mut dirs = vec![(root.display().to_string(), mode(root))];
    let mut files = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push((path.display().to_string(), mode(&path)));
                stack.push(path);
            } else {
                files.push((path.display().to_string(), mode(&path)));
            }
        }
    }
    (dirs, files)
}

fn assert_private(root: &Path) {
    let (dirs, files) = modes(root);
    let open: Vec<_> = dirs
        .iter()
        .filter(|(_, m)| *m != 0o700)
        .chain(files.iter().filter(|(_, m)| *m != 0o600))
        .map(|(p, m)| format!("{p} {m:04o}"))
        .collect();
    assert!(open.is_empty(), "not private: {open:#?}");
    assert!(
        files.iter().any(|(p, _)| p.ends_with("materials.log")),
        "{files:?}"
    );
}

#[tokio::test]
async fn the_data_dir_is_private_and_a_loosened_mode_is_fixed_at_restart() {
    let mut cluster = Cluster::start().await;
    let mut window = cluster.window(HANTAI).await;
    let mut review = cluster.review(YANTA).await;
    // id-card is over the inline limit: a blob file of its own.
    let mut materials = gt_materials();
    materials[0].1 = vec![7; 300 * 1024];
    let case = apply(
        &mut window,
        "GT-0001",
        YANTA,
        "mail-applicant",
        person(),
        &materials,
    )
    .await
    .unwrap();
    window
        .verify_identity(tongban_proto::window::v1::VerifyIdentityRequest {
            case_no: case.case_no.clone(),
            method: "manual".into(),
            request_id: String::new(),
        })
        .await
        .unwrap();
    window
        .accept(CaseRef {
            case_no: case.case_no.clone(),
            request_id: String::new(),
        })
        .await
        .unwrap();
    home_state(&mut review, &case.case_no, "HANDED_OFF").await;
    for code in [HANTAI, YANTA] {
        let data = cluster.data_dir(code);
        assert!(
            walk(&data.join("blobs"))
                .iter()
                .any(|p| !p.starts_with(data.join("blobs/tmp"))),
            "a blob file was written on {code}"
        );
        assert_private(data);
    }

    // Someone loosens the modes (a restore without -p, a careless chmod).
    let data = cluster.data_dir(YANTA).to_owned();
    let blob = walk(&data.join("blobs"))
        .into_iter()
        .next()
        .expect("a blob");
    let set =
        |p: &Path, m: u32| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
    cluster.stop(YANTA).await;
    set(&data, 0o755);
    set(&data.join("materials.log"), 0o644);
    set(&data.join("ledger.sled"), 0o775);
    set(&blob, 0o664);
    cluster.restart(YANTA).await;
    // Once it serves again (the store is open), the modes are right.
    home_state(&mut review, &case.case_no, "HANDED_OFF").await;
    assert_private(&data);
}
