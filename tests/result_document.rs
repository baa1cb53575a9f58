//! The approval's result document (kind `result`) over real nodes: before
//! the approval there is none, on either node; after it the reviewer
//! re-opens it at home and the clerk gets it at the window (it travelled
//! with the decision) byte for byte, through `tongban window material` and
//! `tongban review material`; both nodes' stored copies re-hash to its digest
//! and the auditor's trace verifies. A partner's update whose document is
//! not the one its digest declares is refused at the window and changes
//! nothing.

use std::path::Path;
use std::process::Command;

use prost::Message;
use tongban_proto::audit::v1::audit_client::AuditClient;
use tongban_proto::audit::v1::{EvidenceRequest, evidence_frame};
use tongban_proto::common::v1::{CaseView, MaterialChunk, MaterialDigest, MaterialRequest};
use tongban_proto::federation::v1::refusal::Code as RefusalCode;
use tongban_proto::federation::v1::{
    CaseUpdate, Envelope, HandoffFrame, envelope::Body, handoff_frame::Frame,
};
use tongban_proto::review::v1::{ApproveFrame, ApproveHeader, approve_frame};

use crate::review::{Review, under_review};
use crate::support::*;

const BIN: &str = env!("CARGO_BIN_EXE_tongban");

/// `tongban ROLE material CASE result --out OUT --profile P --json`: (exit
/// code, stdout, stderr).
async fn read_result(role: &str, profile: &Path, case: &str, out: &Path) -> (i32, String, String) {
    let args: Vec<String> = vec![
        role.into(),
        "material".into(),
        case.into(),
        "result".into(),
        "--out".into(),
        out.display().to_string(),
        "--profile".into(),
        profile.display().to_string(),
        "--json".into(),
    ];
    tokio::task::spawn_blocking(move || {
        let out = Command::new(BIN)
            .args(&args)
            .env_remove("TONGBAN_PROFILE")
            .output()
            .expect("run tongban");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .unwrap()
}

/// Approves with `doc` as the result document (`licence.pdf`), in 64 KiB chunks.
async fn approve_with(review: &mut Review, case_no: &str, doc: &[u8]) -> CaseView {
    let mut frames = vec![ApproveFrame {
        frame: Some(approve_frame::Frame::Header(ApproveHeader {
            case_no: case_no.into(),
            licence_no: "92610702MA6YX0001A".into(),
            result: Some(tongban_proto::common::v1::MaterialHeader {
                kind: "result".into(),
                filename: "licence.pdf".into(),
                size: doc.len() as u64,
                sha256: sha256(doc),
            }),
            request_id: String::new(),
        })),
    }];
    for piece in doc.chunks(64 * 1024) {
        frames.push(ApproveFrame {
            frame: Some(approve_frame::Frame::Chunk(MaterialChunk {
                material: 0,
                data: piece.to_vec().into(),
            })),
        });
    }
    review
        .approve(tokio_stream::iter(frames))
        .await
        .expect("approve")
        .into_inner()
}

/// The result document's checks in a node's evidence: (recorded sha256,
/// re-hashed sha256, problem).
async fn result_evidence(
    cluster: &Cluster,
    county: &str,
    case_no: &str,
) -> Vec<(String, String, String)> {
    let mut audit = AuditClient::new(
        cluster
            .client(
                county,
                tongban_pki::Principal::Auditor {
                    county: None,
                    name: "zhao".into(),
                },
            )
            .await,
    );
    let mut frames = audit
        .evidence(EvidenceRequest {
            case_no: case_no.into(),
        })
        .await
        .expect("evidence")
        .into_inner();
    let mut out = Vec::new();
    while let Some(f) = frames.message().await.expect("evidence frame") {
        if let Some(evidence_frame::Frame::Material(m)) = f.frame
            && m.kind == "result"
        {
            out.push((m.recorded_sha256, m.sha256, m.problem));
        }
    }
    out
}

#[tokio::test]
async fn after_the_approval_the_clerk_and_the_reviewer_read_the_result_document() {
    let cluster = Cluster::start().await;
    let (mut window, mut review, case_no) = under_review(&cluster, "mail-window").await;
    let clerk_p = profile(&cluster, HANTAI, "clerk", clerk(HANTAI, "wang"));
    let reviewer_p = profile(&cluster, YANTA, "reviewer", reviewer(YANTA, "li"));

    // Before the decision there is none, on either node.
    let out = cluster.root().join("too-early.pdf");
    for (role, p) in [("window", &clerk_p), ("review", &reviewer_p)] {
        let (code, stdout, stderr) = read_result(role, p, &case_no, &out).await;
        assert_eq!(code, 1, "{role}: {stdout}{stderr}");
        assert!(
            stderr.contains("FailedPrecondition")
                && stderr.contains("no result document")
                && stderr.contains("UNDER_REVIEW"),
            "{role}: {stderr}"
        );
        assert!(!out.exists());
    }

    // GT-0001 has paper originals: they arrive before the approval.
    crate::mail::paper(&cluster, &mut review, &case_no, "EA473124829CN").await;
    // Larger than the material log takes: a blob file on both nodes, sent
    // in several chunks.
    let doc: Vec<u8> = (0..tongban_ledger::INLINE_MAX as usize + 150_003)
        .map(|i| (i * 13 % 251) as u8)
        .collect();
    let approved = approve_with(&mut review, &case_no, &doc).await;
    assert_eq!(approved.state, "APPROVED");
    let at_window = window_state(&mut window, &case_no, "APPROVED").await;
    let digest = at_window
        .result
        .expect("the window's view names the result");
    assert_eq!(digest.sha256, sha256(&doc));
    assert_eq!(digest.kind, "result");

    for (role, p) in [("window", &clerk_p), ("review", &reviewer_p)] {
        let out = cluster.root().join(format!("{role}-licence.pdf"));
        let (code, stdout, stderr) = read_result(role, p, &case_no, &out).await;
        assert_eq!(code, 0, "{role}: {stdout}{stderr}");
        assert!(std::fs::read(&out).unwrap() == doc, "{role}: other bytes");
        let facts: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON document");
        assert_eq!(facts["kind"], "result", "{role}");
        assert_eq!(facts["filename"], "licence.pdf", "{role}");
        assert_eq!(facts["sha256"], hex::encode(sha256(&doc)), "{role}");
        assert_eq!(facts["content_type"], "application/pdf", "{role}");
    }

    // Each node stores its own copy, which re-hashes to the signed digest.
    for county in [HANTAI, YANTA] {
        let checks = result_evidence(&cluster, county, &case_no).await;
        assert_eq!(checks.len(), 1, "{county}: {checks:?}");
        let (recorded, rehashed, problem) = &checks[0];
        assert_eq!(recorded, &hex::encode(sha256(&doc)), "{county}");
        assert_eq!(rehashed, recorded, "{county}");
        assert!(problem.is_empty(), "{county}: {problem}");
    }
    let creds = crate::audit::auditor(&cluster, None, "zhao");
    let (code, out) = crate::audit::audit(crate::audit::trace_args(
        &creds,
        &case_no,
        &[
            crate::audit::url(&cluster, HANTAI),
            crate::audit::url(&cluster, YANTA),
        ],
    ))
    .await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("VERIFIED"), "{out}");

    // Another county's clerk is refused as for any material.
    let mut stranger = tongban_proto::window::v1::window_client::WindowClient::new(
        cluster.client(HANTAI, clerk(YANTA, "sun")).await,
    );
    let status = stranger
        .material(MaterialRequest {
            case_no: case_no.clone(),
            kind: "result".into(),
        })
        .await
        .expect_err("a clerk of another county");
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
}

#[tokio::test]
async fn an_approval_whose_document_is_not_the_declared_one_is_refused_at_the_window() {
    let cluster = Cluster::start().await;
    let (mut window, _review, case_no) = under_review(&cluster, "mail-window").await;
    let case = window_state(&mut window, &case_no, "UNDER_REVIEW").await;
    let doc = b"the real licence".to_vec();
    let forged = b"another document".to_vec();
    let envelope = |header_doc: &[u8], with_material: bool| {
        Envelope {
            version: 1,
            handoff_id: uuid::Uuid::now_v7().to_string(),
            application_id: case.application_id.clone(),
            case_no: case.case_no.clone(),
            receiving_county: case.receiving_county.clone(),
            home_county: case.home_county.clone(),
            sent_at: "2026-11-25T08:00:00Z".into(),
            actor: format!("spiffe://{TD}/county/{YANTA}/reviewer/li"),
            body: Some(Body::Update(CaseUpdate {
                event: "review.approved".into(),
                state: "APPROVED".into(),
                licence_no: "L-1".into(),
                result: Some(MaterialDigest {
                    kind: "result".into(),
                    filename: "licence.pdf".into(),
                    size: doc.len() as u64,
                    sha256: sha256(&doc),
                }),
                ..Default::default()
            })),
            materials: if with_material {
                vec![tongban_proto::common::v1::MaterialHeader {
                    kind: "result".into(),
                    filename: "licence.pdf".into(),
                    size: header_doc.len() as u64,
                    sha256: sha256(header_doc),
                }]
            } else {
                Vec::new()
            },
        }
        .encode_to_vec()
    };
    let frames = |envelope: Vec<u8>, content: &[u8]| {
        let mut frames = vec![HandoffFrame {
            frame: Some(Frame::Envelope(envelope)),
        }];
        if !content.is_empty() {
            frames.push(HandoffFrame {
                frame: Some(Frame::Chunk(MaterialChunk {
                    material: 0,
                    data: content.to_vec().into(),
                })),
            });
        }
        frames
    };
    // A header that is not the declared document.
    let result = handoff_as(
        &cluster,
        HANTAI,
        YANTA,
        frames(envelope(&forged, true), &forged),
    )
    .await;
    let (code, message) = refusal(&result);
    assert_eq!(code, RefusalCode::Invalid, "{message}");
    assert!(message.contains("not the result document"), "{message}");
    // The declared header, other bytes behind it.
    let mut other = doc.clone();
    other[0] ^= 1;
    let result = handoff_as(
        &cluster,
        HANTAI,
        YANTA,
        frames(envelope(&doc, true), &other),
    )
    .await;
    assert_eq!(refusal(&result).0, RefusalCode::Invalid);
    // No document at all.
    let result = handoff_as(&cluster, HANTAI, YANTA, frames(envelope(&doc, false), &[])).await;
    let (code, message) = refusal(&result);
    assert_eq!(code, RefusalCode::Invalid, "{message}");
    assert!(message.contains("no result document"), "{message}");

    // Nothing of them was taken.
    let after = window_state(&mut window, &case_no, "UNDER_REVIEW").await;
    assert!(after.result.is_none(), "{:?}", after.result);
    assert!(after.licence_no.is_empty());
    assert_eq!(after.history.len(), case.history.len());
}

/// The home's ledger says which result document it approved and sent; the
/// window's receipt says which it signed for. The auditor holds one against
/// the other, as the courier does before it takes the receipt: a home
/// whose record no longer names the document the window signed for (its
/// ledger rewritten and re-chained, so the chain alone still verifies) is
/// named by `audit verify`.
#[tokio::test]
async fn the_auditor_holds_the_home_s_record_of_the_result_against_the_receipt() {
    use crate::audit::{auditor, find, rewrite, verify};
    let mut cluster = Cluster::start().await;
    let (mut window, mut review, case_no) = under_review(&cluster, "mail-applicant").await;
    review
        .paper_received(crate::review::case_ref(&case_no))
        .await
        .unwrap();
    crate::review::approve(&mut review, &case_no)
        .await
        .expect("approve");
    window_state(&mut window, &case_no, "APPROVED").await;
    home_case_until(&mut review, &case_no, "the approval receipted", |c| {
        let at = c.history.iter().position(|h| h.event == "review.approved");
        at.is_some_and(|i| {
            c.history[i..]
                .iter()
                .any(|h| h.event == "handoff.receipted")
        })
    })
    .await;
    let creds = auditor(&cluster, None, "zhao");
    let (code, out) = verify(&cluster, &creds, YANTA).await;
    assert_eq!(code, 0, "{out}");

    cluster.stop(YANTA).await;
    let seq = find(cluster.data_dir(YANTA), &case_no, "review.approved");
    let forged = "ab".repeat(32);
    rewrite(cluster.data_dir(YANTA), seq, true, |_, payload| {
        let mut p: serde_json::Value = serde_json::from_slice(payload).unwrap();
        p["result_sha256"] = forged.clone().into();
        *payload = serde_json::to_vec(&p).unwrap();
    });
    cluster.restart(YANTA).await;
    let (code, out) = verify(&cluster, &creds, YANTA).await;
    assert_eq!(code, 1, "{out}");
    let size = b"business licence PDF".len();
    let signed = hex::encode(sha256(b"business licence PDF"));
    assert!(
        out.contains(&format!(
            "the result document {YANTA} recorded approving (entry {seq}: {size} bytes, sha256 {forged}) is not the one {HANTAI} signed for ({size} bytes, sha256 {signed}) (field result)"
        )),
        "{out}"
    );
}
