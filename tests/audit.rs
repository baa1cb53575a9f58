//! Auditors trace cases across counties and catch altered, forged and
//! dropped history: the real `tongban audit` command against real nodes.

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};
use tongban_ledger::testing::Tamper;
use tongban_pki::Principal;
use tongban_proto::common::v1::LedgerEntry;

use crate::support::*;

const BIN: &str = env!("CARGO_BIN_EXE_tongban");

/// Writes an auditor's certificate and key into the cluster's directory and
/// returns the flags that use them.
pub(crate) fn auditor(cluster: &Cluster, county: Option<&str>, name: &str) -> Vec<String> {
    let tls = cluster.pki().issue(Principal::Auditor {
        county: county.map(crate::support::county),
        name: name.into(),
    });
    let dir = cluster.root();
    std::fs::write(dir.join(format!("{name}.crt")), &tls.cert_pem).unwrap();
    std::fs::write(dir.join(format!("{name}.key")), &tls.key_pem).unwrap();
    vec![
        "--ca".into(),
        cluster.ca_path().display().to_string(),
        "--cert".into(),
        dir.join(format!("{name}.crt")).display().to_string(),
        "--key".into(),
        dir.join(format!("{name}.key")).display().to_string(),
    ]
}

pub(crate) fn url(cluster: &Cluster, county: &str) -> String {
    format!("https://{}", cluster.addr(county))
}

/// Runs `tongban audit ARGS` off the async runtime; returns (exit code, stdout + stderr).
pub(crate) async fn audit(args: Vec<String>) -> (i32, String) {
    tokio::task::spawn_blocking(move || {
        let out = Command::new(BIN)
            .arg("audit")
            .args(&args)
            .output()
            .expect("run tongban");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code().unwrap_or(-1), text)
    })
    .await
    .unwrap()
}

pub(crate) fn trace_args(creds: &[String], case_no: &str, nodes: &[String]) -> Vec<String> {
    let mut a = vec!["trace".to_owned(), case_no.to_owned()];
    for n in nodes {
        a.push("--node".into());
        a.push(n.clone());
    }
    a.extend(creds.iter().cloned());
    a
}

/// Runs `tongban audit trace CASE` against the nodes of `counties`.
async fn trace(
    cluster: &Cluster,
    creds: &[String],
    case_no: &str,
    counties: &[&str],
) -> (i32, String) {
    let nodes: Vec<String> = counties.iter().map(|c| url(cluster, c)).collect();
    audit(trace_args(creds, case_no, &nodes)).await
}

/// A case from `from` to 雁塔, handed off.
pub(crate) async fn handed_off(cluster: &Cluster, from: &str) -> String {
    let mut window = cluster.window(from).await;
    let case = accepted_case(&mut window, YANTA).await;
    window_state(&mut window, &case.case_no, "HANDED_OFF").await;
    case.case_no
}

/// Rewrites a stopped node's ledger as a dishonest operator would: `edit`
/// changes the entry at `seq` (and may change its payload); with
/// `rechain`, its payload digest, every later entry and the head are
/// recomputed so the chain is internally consistent again.
pub(crate) fn rewrite(
    data_dir: &Path,
    seq: u64,
    rechain: bool,
    edit: impl FnOnce(&mut LedgerEntry, &mut Vec<u8>),
) {
    let tamper = Tamper::open(data_dir).unwrap();
    let (mut entry, mut payload) = tamper.entry(seq).unwrap();
    edit(&mut entry, &mut payload);
    if rechain {
        entry.payload_sha256 = Sha256::digest(&payload).to_vec();
    }
    tamper.overwrite(seq, &entry, &payload).unwrap();
    if rechain {
        tamper.rechain_after(seq).unwrap();
    }
}

/// Drops a stopped node's entries after `keep`, resetting its head.
fn truncate(data_dir: &Path, keep: u64) {
    Tamper::open(data_dir)
        .unwrap()
        .truncate_after(keep)
        .unwrap();
}

/// The seq of the first entry of `kind` for `case_no` in a stopped node's ledger.
pub(crate) fn find(data_dir: &Path, case_no: &str, kind: &str) -> u64 {
    Tamper::open(data_dir)
        .unwrap()
        .find(|e| e.case_no == case_no && e.kind == kind)
        .unwrap()
        .unwrap_or_else(|| panic!("no {kind} for {case_no}"))
}

#[tokio::test]
async fn a_trace_over_three_counties_verifies_and_draws_every_event() {
    let cluster = Cluster::start().await;
    let first = handed_off(&cluster, HANTAI).await;
    let second = handed_off(&cluster, SHANGZHOU).await;
    let creds = auditor(&cluster, None, "zhao");
    let html = cluster.root().join("trace.html");
    let mut args = trace_args(
        &creds,
        &first,
        &[url(&cluster, HANTAI), url(&cluster, YANTA)],
    );
    args.extend(["--html".into(), html.display().to_string()]);
    let (code, out) = audit(args).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("VERIFIED"), "{out}");
    assert!(out.contains("handoffs: 1 of 1 matched"), "{out}");
    for event in [
        "case.applied",
        "case.identity-verified",
        "case.accepted",
        "handoff.received",
        "handoff.receipted",
        "audit.query",
    ] {
        assert!(out.contains(event), "{event} in the trace: {out}");
    }
    // What 雁塔 received is 汉台's node's report of its clerk's act.
    assert!(out.contains("610702/node reports clerk wang"), "{out}");
    // Every event of the trace (as --json lists it) is drawn on the page.
    let mut json_args = trace_args(
        &creds,
        &first,
        &[url(&cluster, HANTAI), url(&cluster, YANTA)],
    );
    json_args.extend(["--json".into(), "--html".into(), html.display().to_string()]);
    let (code, out_json) = audit(json_args).await;
    assert_eq!(code, 0, "{out_json}");
    let report: serde_json::Value = serde_json::from_str(&out_json).expect("one JSON document");
    let page = std::fs::read_to_string(&html).unwrap();
    let timeline = report["timeline"].as_array().unwrap();
    assert!(timeline.len() >= 8, "{timeline:?}");
    for e in timeline {
        let label = format!("#{} {}", e["seq"], e["event"].as_str().unwrap());
        assert!(page.contains(&label), "{label} drawn on the page");
        // People read China Standard Time to the second; --json keeps the
        // node's RFC 3339 UTC. (The auditor's own queries differ: the
        // --json run recorded one more.)
        if e["event"] == "audit.query" {
            continue;
        }
        let at = e["at"].as_str().unwrap();
        assert!(at.ends_with('Z'), "{at}");
        assert!(
            out.lines()
                .any(|l| l.starts_with(&cst(at)) && l.contains(&label)),
            "{label} at {} in: {out}",
            cst(at)
        );
    }
    assert!(
        page.contains("<svg") && page.contains("marker-end"),
        "lanes and arrows"
    );
    assert!(
        page.contains("610702/node reports clerk wang"),
        "the report's actor on the page"
    );

    // Asked alone, the sender claims only what it can show.
    let (code, out) = trace(&cluster, &creds, &first, &[HANTAI]).await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("nodes asked: 610702")
            && out.contains("0 of 1 matched on both sides; 1 checked on the sender's side only"),
        "{out}"
    );
    let (code, out) = trace(&cluster, &creds, &second, &[SHANGZHOU, YANTA]).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("611002") && out.contains("VERIFIED"), "{out}");
    // Personal data is masked by default.
    assert!(
        out.contains("110***********002X") && !out.contains(PERSON_ID),
        "{out}"
    );
}

#[tokio::test]
async fn a_county_auditor_may_not_read_a_case_outside_its_county() {
    let cluster = Cluster::start().await;
    let case_no = handed_off(&cluster, HANTAI).await;
    let creds = auditor(&cluster, Some(SHANGZHOU), "sun");
    let (code, out) = trace(&cluster, &creds, &case_no, &[YANTA]).await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("may read only cases that touched 611002"),
        "{out}"
    );
    // An auditor of 汉台 may.
    let creds = auditor(&cluster, Some(HANTAI), "wu");
    let (code, out) = trace(&cluster, &creds, &case_no, &[YANTA]).await;
    assert_eq!(code, 0, "{out}");
    let mut reveal = trace_args(&creds, &case_no, &[url(&cluster, YANTA)]);
    reveal.push("--reveal".into());
    let (code, out) = audit(reveal).await;
    assert_eq!(code, 1);
    assert!(out.contains("only province auditors may reveal"), "{out}");
}

#[tokio::test]
async fn an_entry_altered_on_disk_is_named_by_verify_and_trace() {
    let mut cluster = Cluster::start().await;
    let case_no = handed_off(&cluster, HANTAI).await;
    let creds = auditor(&cluster, None, "zhao");
    cluster.stop(YANTA).await;
    let seq = find(cluster.data_dir(YANTA), &case_no, "handoff.received");
    rewrite(cluster.data_dir(YANTA), seq, false, |e, _| {
        e.actor = "spiffe://shaanxi.tongban/county/610113/clerk/forger".into()
    });
    cluster.restart(YANTA).await;

    let mut verify = vec!["verify".to_owned(), "--node".into(), url(&cluster, YANTA)];
    verify.extend(creds.iter().cloned());
    let (code, out) = audit(verify).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(&format!("FAILED at entry {seq}")), "{out}");
    assert!(
        out.contains(&format!("checked entries 1..={}", seq - 1)),
        "{out}"
    );

    let (code, out) = trace(&cluster, &creds, &case_no, &[HANTAI, YANTA]).await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("ledger entry {seq} was altered")),
        "{out}"
    );
}

#[tokio::test]
async fn a_forged_receipt_in_a_rewritten_ledger_is_caught() {
    let mut cluster = Cluster::start().await;
    let case_no = handed_off(&cluster, HANTAI).await;
    let creds = auditor(&cluster, None, "zhao");
    cluster.stop(HANTAI).await;
    let seq = find(cluster.data_dir(HANTAI), &case_no, "handoff.receipted");
    // A dishonest 汉台 replaces the receipt's signature (that of its
    // batch's root: 雁塔 signs receipts in batches) and re-chains its ledger
    // so that its own chain is consistent again.
    rewrite(cluster.data_dir(HANTAI), seq, true, |_, payload| {
        use prost::Message;
        let mut p: serde_json::Value = serde_json::from_slice(payload).unwrap();
        let held = hex::decode(p["batch"].as_str().unwrap()).unwrap();
        let mut batch = tongban_proto::common::v1::ReceiptBatch::decode(held.as_slice()).unwrap();
        *batch.signature.last_mut().unwrap() ^= 1;
        p["batch"] = hex::encode(batch.encode_to_vec()).into();
        *payload = serde_json::to_vec(&p).unwrap();
    });
    cluster.restart(HANTAI).await;
    let (code, out) = trace(&cluster, &creds, &case_no, &[HANTAI, YANTA]).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("bad signature"), "{out}");
}

#[tokio::test]
async fn a_node_that_drops_entries_a_partner_saw_is_caught() {
    let mut cluster = Cluster::start().await;
    let case_no = handed_off(&cluster, HANTAI).await;
    // A second handoff makes 汉台 send a checkpoint covering the first case.
    handed_off(&cluster, HANTAI).await;
    let creds = auditor(&cluster, None, "zhao");
    cluster.stop(HANTAI).await;
    let keep = find(cluster.data_dir(HANTAI), &case_no, "case.accepted");
    truncate(cluster.data_dir(HANTAI), keep);
    cluster.restart(HANTAI).await;
    let (code, out) = trace(&cluster, &creds, &case_no, &[HANTAI, YANTA]).await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("node 610702") && (out.contains("dropped") || out.contains("rewritten")),
        "{out}"
    );
}

#[tokio::test]
async fn an_exported_bundle_verifies_offline_and_fails_after_one_byte_changes() {
    let mut cluster = Cluster::start().await;
    let case_no = handed_off(&cluster, HANTAI).await;
    let creds = auditor(&cluster, None, "zhao");
    let bundle: PathBuf = cluster.root().join("case.bundle.json");
    let mut export = vec![
        "export".to_owned(),
        case_no.clone(),
        "--out".into(),
        bundle.display().to_string(),
    ];
    for county in [HANTAI, YANTA] {
        export.push("--node".into());
        export.push(url(&cluster, county));
    }
    export.extend(creds.iter().cloned());
    export.push("--json".into());
    let (code, out) = audit(export).await;
    assert_eq!(code, 0, "{out}");
    let written: serde_json::Value = serde_json::from_str(&out).expect("one JSON document");
    assert_eq!(written["out"], bundle.display().to_string(), "{out}");
    assert_eq!(written["nodes"], 2, "{out}");
    assert_eq!(written["verified"], true, "{out}");
    // Offline: the nodes are gone.
    cluster.stop(HANTAI).await;
    cluster.stop(YANTA).await;
    let mut verify = vec!["verify-bundle".to_owned(), bundle.display().to_string()];
    verify.extend(creds.iter().cloned());
    let (code, out) = audit(verify.clone()).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("VERIFIED"), "{out}");

    // A node that leaves a step out of what it lists for the case is caught.
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&bundle).unwrap()).unwrap();
    doc["nodes"][0]["case_entries"]
        .as_array_mut()
        .unwrap()
        .remove(0);
    let omitted = cluster.root().join("omitted.bundle.json");
    std::fs::write(&omitted, serde_json::to_string(&doc).unwrap()).unwrap();
    let mut check = vec!["verify-bundle".to_owned(), omitted.display().to_string()];
    check.extend(creds[..2].iter().cloned());
    let (code, out) = audit(check).await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("was left out of what the node listed"),
        "{out}"
    );

    // Change one byte inside an entry.
    let text = std::fs::read_to_string(&bundle).unwrap();
    let at = text.find("\"entry\": \"").unwrap() + "\"entry\": \"".len() + 40;
    let mut bytes = text.into_bytes();
    bytes[at] = if bytes[at] == b'0' { b'1' } else { b'0' };
    std::fs::write(&bundle, bytes).unwrap();
    let (code, out) = audit(verify).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAILED"), "{out}");
}

#[tokio::test]
async fn a_correction_round_trip_traces_with_every_handoff_matched() {
    let cluster = Cluster::start().await;
    let case_no = handed_off(&cluster, HANTAI).await;
    let mut review = cluster.review(YANTA).await;
    let mut window = cluster.window(HANTAI).await;
    let r = |case_no: &str| tongban_proto::review::v1::CaseRef {
        case_no: case_no.into(),
        request_id: String::new(),
    };
    review.accept(r(&case_no)).await.unwrap();
    review
        .correct(tongban_proto::review::v1::CorrectRequest {
            case_no: case_no.clone(),
            needs: vec![tongban_proto::common::v1::CorrectionNeed {
                kind: "premises-proof".into(),
                reason: "unsigned".into(),
            }],
            deadline_days: 0,
            request_id: String::new(),
        })
        .await
        .unwrap();
    window_state(&mut window, &case_no, "CORRECTION_REQUESTED").await;
    let data = b"signed lease".to_vec();
    let frames = vec![
        tongban_proto::window::v1::AttachFrame {
            frame: Some(tongban_proto::window::v1::attach_frame::Frame::Header(
                tongban_proto::window::v1::AttachHeader {
                    case_no: case_no.clone(),
                    materials: vec![header("premises-proof", &data)],
                    request_id: String::new(),
                },
            )),
        },
        tongban_proto::window::v1::AttachFrame {
            frame: Some(tongban_proto::window::v1::attach_frame::Frame::Chunk(
                tongban_proto::common::v1::MaterialChunk {
                    material: 0,
                    data: data.into(),
                },
            )),
        },
    ];
    window.attach(tokio_stream::iter(frames)).await.unwrap();
    window
        .resubmit(tongban_proto::window::v1::CaseRef {
            case_no: case_no.clone(),
            request_id: String::new(),
        })
        .await
        .unwrap();
    // Wait until both sides hold their receipts: 雁塔's three reports, then
    // 汉台's application and supplement.
    home_case_until(&mut review, &case_no, "receipts", |c| receipts(c) >= 3).await;
    window_case_until(&mut window, &case_no, "receipts", |c| receipts(c) >= 2).await;
    let creds = auditor(&cluster, None, "zhao");
    let (code, out) = trace(&cluster, &creds, &case_no, &[HANTAI, YANTA]).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("handoffs: 5 of 5 matched"), "{out}");
}

/// Runs `tongban audit verify` against the node of `county`.
pub(crate) async fn verify(cluster: &Cluster, creds: &[String], county: &str) -> (i32, String) {
    let mut args = vec!["verify".to_owned(), "--node".into(), url(cluster, county)];
    args.extend(creds.iter().cloned());
    audit(args).await
}

/// A case from 汉台 to 雁塔, handed off, whose id-card scan is large enough
/// to be a blob file at both nodes (over `INLINE_MAX`); the others are in
/// the material log. Returns the case number and the scan.
async fn handed_off_with_a_blob(cluster: &Cluster) -> (String, Vec<u8>) {
    let mut window = cluster.window(HANTAI).await;
    let scan: Vec<u8> = (0..tongban_ledger::INLINE_MAX as usize + 12_345)
        .map(|i| (i % 253) as u8)
        .collect();
    let mut materials = gt_materials();
    materials[0].1 = scan.clone();
    let case = apply(
        &mut window,
        "GT-0001",
        YANTA,
        "mail-applicant",
        person(),
        &materials,
    )
    .await
    .expect("apply");
    window
        .verify_identity(tongban_proto::window::v1::VerifyIdentityRequest {
            request_id: String::new(),
            case_no: case.case_no.clone(),
            method: "id-card-reader".into(),
        })
        .await
        .expect("verify identity");
    window
        .accept(tongban_proto::window::v1::CaseRef {
            request_id: String::new(),
            case_no: case.case_no.clone(),
        })
        .await
        .expect("accept");
    window_state(&mut window, &case.case_no, "HANDED_OFF").await;
    (case.case_no, scan)
}

/// The handoff id an entry of a stopped node records receiving.
fn received_handoff_id(data_dir: &Path, seq: u64) -> String {
    let (_, payload) = Tamper::open(data_dir).unwrap().entry(seq).unwrap();
    let p: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    p["received"]["handoff_id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn verify_rehashes_every_material_and_checks_every_receipt_on_both_nodes() {
    let cluster = Cluster::start().await;
    let (case_no, _) = handed_off_with_a_blob(&cluster).await;
    let creds = auditor(&cluster, None, "zhao");
    let (code, out) = verify(&cluster, &creds, HANTAI).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("materials: 3 re-hashed by the node"), "{out}");
    assert!(out.contains("receipts: 1 held as sender, 0 given"), "{out}");
    assert!(out.contains("VERIFIED entries 1..="), "{out}");
    let (code, out) = verify(&cluster, &creds, YANTA).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("materials: 3 re-hashed by the node"), "{out}");
    assert!(out.contains("receipts: 0 held as sender, 1 given"), "{out}");
    let (code, out) = trace(&cluster, &creds, &case_no, &[HANTAI, YANTA]).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("VERIFIED"), "{out}");
    // --quick checks the chain only.
    let mut quick = vec!["verify".to_owned(), "--quick".into(), "--node".into()];
    quick.push(url(&cluster, YANTA));
    quick.extend(creds.iter().cloned());
    let (code, out) = audit(quick).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("evidence not checked (--quick)"), "{out}");
    // The checkpoint's time as people read every time the CLI shows.
    let signed = out
        .lines()
        .find_map(|l| l.split_once(" signed ").map(|(_, at)| at.to_owned()))
        .unwrap_or_else(|| panic!("the checkpoint line: {out}"));
    assert!(
        time::PrimitiveDateTime::parse(
            signed
                .strip_suffix(" CST")
                .unwrap_or_else(|| panic!("{signed}")),
            time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]"),
        )
        .is_ok(),
        "{signed}"
    );
}

#[tokio::test]
async fn a_byte_flipped_in_the_material_log_at_the_window_is_named_by_verify_and_trace() {
    let mut cluster = Cluster::start().await;
    let case_no = handed_off(&cluster, HANTAI).await;
    let creds = auditor(&cluster, None, "zhao");
    cluster.stop(HANTAI).await;
    let dir = cluster.data_dir(HANTAI);
    let span = Tamper::open(dir)
        .unwrap()
        .material(&case_no, "application-form")
        .unwrap()
        .expect("the case holds its application form")
        .log
        .expect("a small material is in the log");
    let log = tongban_ledger::testing::material_log_path(dir);
    let mut bytes = std::fs::read(&log).unwrap();
    bytes[span.offset as usize + 3] ^= 0x20;
    std::fs::write(&log, bytes).unwrap();
    let seq = find(dir, &case_no, "case.accepted");
    cluster.restart(HANTAI).await;

    let named = format!(
        "node 610702: case {case_no} material application-form (ledger entry {seq}) was altered"
    );
    let (code, out) = verify(&cluster, &creds, HANTAI).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(&named), "{out}");
    assert!(out.contains("in materials.log hash to"), "{out}");
    assert!(!out.contains("VERIFIED"), "{out}");
    let (code, out) = trace(&cluster, &creds, &case_no, &[HANTAI, YANTA]).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAILED") && out.contains(&named), "{out}");
}

#[tokio::test]
async fn a_truncated_blob_at_home_and_a_deleted_one_at_the_window_are_named() {
    let mut cluster = Cluster::start().await;
    let (case_no, scan) = handed_off_with_a_blob(&cluster).await;
    let digest = hex::encode(sha256(&scan));
    let creds = auditor(&cluster, None, "zhao");
    cluster.stop(YANTA).await;
    let home = tongban_ledger::testing::blob_path(cluster.data_dir(YANTA), &digest);
    let half = std::fs::read(&home).unwrap()[..scan.len() / 2].to_vec();
    std::fs::write(&home, half).unwrap();
    let home_seq = find(cluster.data_dir(YANTA), &case_no, "handoff.received");
    cluster.restart(YANTA).await;
    cluster.stop(HANTAI).await;
    std::fs::remove_file(tongban_ledger::testing::blob_path(
        cluster.data_dir(HANTAI),
        &digest,
    ))
    .unwrap();
    let window_seq = find(cluster.data_dir(HANTAI), &case_no, "case.accepted");
    cluster.restart(HANTAI).await;

    let truncated = format!(
        "node 610113: case {case_no} material id-card (ledger entry {home_seq}) was altered: its {} bytes in its file",
        scan.len() / 2
    );
    let deleted = format!(
        "node 610702: case {case_no} material id-card (ledger entry {window_seq}) cannot be read in its file"
    );
    let (code, out) = verify(&cluster, &creds, YANTA).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(&truncated), "{out}");
    let (code, out) = verify(&cluster, &creds, HANTAI).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(&deleted) && out.contains("missing"), "{out}");
    let (code, out) = trace(&cluster, &creds, &case_no, &[HANTAI, YANTA]).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(&truncated) && out.contains(&deleted), "{out}");
}

#[tokio::test]
async fn a_byte_flipped_in_the_receivers_replay_receipt_is_named() {
    let mut cluster = Cluster::start().await;
    let case_no = handed_off(&cluster, HANTAI).await;
    let creds = auditor(&cluster, None, "zhao");
    cluster.stop(YANTA).await;
    let dir = cluster.data_dir(YANTA);
    let seq = find(dir, &case_no, "handoff.received");
    let id = received_handoff_id(dir, seq);
    let tamper = Tamper::open(dir).unwrap();
    let mut record = tamper.received(&id).unwrap().expect("a received record");
    // A byte of the receipt body, which the signature covers.
    record.signed_receipt[10] ^= 0x01;
    tamper.overwrite_received(&id, &record).unwrap();
    drop(tamper);
    cluster.restart(YANTA).await;

    let named =
        format!("handoff {id}: the receipt 610113 gave for case {case_no} (its entry {seq})");
    let (code, out) = verify(&cluster, &creds, YANTA).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(&named), "{out}");
    let (code, out) = trace(&cluster, &creds, &case_no, &[HANTAI, YANTA]).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAILED") && out.contains(&named), "{out}");
}

#[tokio::test]
async fn a_dropped_middle_entry_is_named_by_trace_as_by_verify() {
    let mut cluster = Cluster::start().await;
    let case_no = handed_off(&cluster, HANTAI).await;
    let creds = auditor(&cluster, None, "zhao");
    cluster.stop(HANTAI).await;
    let seq = find(cluster.data_dir(HANTAI), &case_no, "case.identity-verified");
    Tamper::open(cluster.data_dir(HANTAI))
        .unwrap()
        .remove_entry(seq)
        .unwrap();
    cluster.restart(HANTAI).await;

    let (code, out) = verify(&cluster, &creds, HANTAI).await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("FAILED at entry {seq}: it is missing")),
        "{out}"
    );
    let (code, out) = trace(&cluster, &creds, &case_no, &[HANTAI, YANTA]).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAILED"), "{out}");
    assert!(
        out.contains(&format!("node 610702: ledger entry {seq} is missing")),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "node 610702: ledger entry {seq} of the case is missing"
        )),
        "{out}"
    );
    assert!(!out.to_lowercase().contains("internal"), "{out}");
}

/// Dates counted again when the holiday calendar changes are ordinary
/// ledger history: both nodes verify and the trace names the entry. On the
/// real clock (receipts are checked against the certificates' validity),
/// so the new calendar is made for today: the first weekday after it
/// becomes a holiday.
#[tokio::test]
async fn dates_counted_again_verify_on_both_nodes_and_show_in_the_trace() {
    let clock = TestClock::default();
    let (mut cluster, _) = crate::calendar::cluster_without_calendar(&clock).await;
    let case_no = crate::calendar::under_review(&cluster).await;
    let today = time::OffsetDateTime::now_utc()
        .to_offset(time::UtcOffset::from_hms(8, 0, 0).unwrap())
        .date();
    let weekdays_after = |n: usize| {
        let mut d = today;
        let mut seen = 0;
        while seen < n {
            d = d.next_day().unwrap();
            if !matches!(d.weekday(), time::Weekday::Saturday | time::Weekday::Sunday) {
                seen += 1;
            }
        }
        d
    };
    let mut review = cluster.review(YANTA).await;
    home_case_until(&mut review, &case_no, "Monday to Friday", |c| {
        c.due_date == weekdays_after(5).to_string()
    })
    .await;
    let holiday = weekdays_after(1);
    let text = std::fs::read_to_string(cluster.directory_path()).unwrap();
    let with = format!(
        "{text}\n[[calendar]]\nyear = {}\nholidays = [\"{holiday}\"]\n",
        holiday.year()
    );
    crate::calendar::restart_home_with(&mut cluster, &with).await;
    let mut review = cluster.review(YANTA).await;
    let moved = weekdays_after(6).to_string();
    let home = home_case_until(&mut review, &case_no, "recounted", |c| c.due_date == moved).await;
    assert_eq!(crate::calendar::recounts(&home).len(), 1);
    let mut window = cluster.window(HANTAI).await;
    window_case_until(&mut window, &case_no, "mirrored", |c| c.due_date == moved).await;
    home_case_until(&mut review, &case_no, "receipts", |c| receipts(c) >= 2).await;

    let creds = auditor(&cluster, None, "zhao");
    for county in [YANTA, HANTAI] {
        let (code, out) = verify(&cluster, &creds, county).await;
        assert_eq!(code, 0, "{county}: {out}");
        assert!(out.contains("VERIFIED"), "{out}");
    }
    let html = cluster.root().join("trace.html");
    let mut args = trace_args(
        &creds,
        &case_no,
        &[url(&cluster, HANTAI), url(&cluster, YANTA)],
    );
    args.extend(["--html".into(), html.display().to_string()]);
    let (code, out) = audit(args).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("case.due-recomputed"), "{out}");
    assert!(out.contains("handoffs: 3 of 3 matched"), "{out}");
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        page.contains("重算期限 · due dates counted again (new holiday calendar)"),
        "labelled on the page"
    );
}
