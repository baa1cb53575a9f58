//! `tongban notice` and `tongban audit check-notice` as real processes
//! against an in-process cluster: each kind of notice names the case, both
//! counties, the item and the masked applicant, carries a verification
//! code that the auditor's check confirms against the ledgers, and a
//! notice that does not fit the case's state, or a tampered code, is refused.

use std::path::Path;
use std::process::Command;

use tongban_proto::common::v1::CorrectionNeed;
use tongban_proto::review::v1::{CaseRef, CorrectRequest, DenyRequest};

use crate::support::*;

const BIN: &str = env!("CARGO_BIN_EXE_tongban");
/// The counties every case here touches.
const BOTH: &[&str] = &[HANTAI, YANTA];

/// Runs `tongban ARGS` off the async runtime: (exit code, stdout, stderr).
async fn run(args: Vec<String>) -> (i32, String, String) {
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

struct Printed {
    code: String,
    page: String,
}

/// Prints notice `kind` of `case` as the profile's user; returns its code
/// and the page.
async fn notice(profile: &Path, case: &str, kind: &str) -> Printed {
    let out = profile.with_file_name(format!("{case}-{kind}.html"));
    let (code, stdout, stderr) = run(vec![
        "notice".into(),
        case.into(),
        "--kind".into(),
        kind.into(),
        "--out".into(),
        out.display().to_string(),
        "--profile".into(),
        profile.display().to_string(),
        "--json".into(),
    ])
    .await;
    assert_eq!(code, 0, "notice {case} --kind {kind}: {stdout}{stderr}");
    let doc: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON document");
    assert_eq!(doc["kind"], kind);
    Printed {
        code: doc["code"].as_str().expect("code").to_owned(),
        page: std::fs::read_to_string(&out).expect("the page"),
    }
}

/// `tongban audit check-notice CASE CODE` against the nodes of `counties`.
async fn check(
    cluster: &Cluster,
    counties: &[&str],
    auditor: &Path,
    case: &str,
    code: &str,
) -> (i32, String, String) {
    let mut args: Vec<String> = vec![
        "audit".into(),
        "check-notice".into(),
        case.into(),
        code.into(),
        "--profile".into(),
        auditor.display().to_string(),
    ];
    for county in counties {
        args.push("--node".into());
        args.push(format!("https://{}", cluster.addr(county)));
    }
    run(args).await
}

/// Asserts what every notice shows, and that the auditor confirms its code.
async fn assert_notice(
    cluster: &Cluster,
    counties: &[&str],
    auditor: &Path,
    case: &str,
    printed: &Printed,
    title: &str,
) {
    let page = &printed.page;
    for text in [
        title,
        case,
        "汉台区（610702）",
        "雁塔区（610113）",
        "个体工商户登记（GT-0001）",
        "110***********002X",
        "138****5678",
        &printed.code,
        r#"<html lang="zh-CN">"#,
        r#"<meta name="viewport""#,
        r#"font-family: "Noto Sans CJK SC""#,
        "size: A4",
    ] {
        assert!(page.contains(text), "{title} shows {text:?}: {page}");
    }
    assert!(
        !page.contains(PERSON_ID),
        "the resident ID is masked: {page}"
    );
    let (code, out, err) = check(cluster, counties, auditor, case, &printed.code).await;
    assert_eq!(code, 0, "check-notice {}: {out}{err}", printed.code);
    assert!(out.starts_with("VALID"), "{out}");
    assert!(out.contains(title), "{out}");
}

#[tokio::test]
async fn every_kind_of_notice_is_printed_and_its_code_checks_out() {
    let cluster = Cluster::start().await;
    let clerk = profile(&cluster, HANTAI, "clerk", clerk(HANTAI, "wang"));
    let reviewer_p = profile(&cluster, YANTA, "reviewer", reviewer(YANTA, "li"));
    let auditor = profile(
        &cluster,
        HANTAI,
        "auditor",
        tongban_sandbox::auditor(None, "zhao"),
    );
    let mut window = cluster.window(HANTAI).await;
    let mut review = cluster.review(YANTA).await;

    // Incomplete at the window: the one-time correction notice lists what is missing.
    let incomplete = apply(
        &mut window,
        "GT-0001",
        YANTA,
        "mail-applicant",
        person(),
        &gt_materials()[..2],
    )
    .await
    .expect("apply");
    assert_eq!(incomplete.state, "CORRECTION_AT_WINDOW");
    let printed = notice(&clerk, &incomplete.case_no, "correction").await;
    assert_notice(
        &cluster,
        &[HANTAI],
        &auditor,
        &incomplete.case_no,
        &printed,
        "补正材料通知书",
    )
    .await;
    assert!(
        printed.page.contains("经营场所使用证明（premises-proof）"),
        "{}",
        printed.page
    );

    // Accepted at the window: the intake receipt.
    let case = accepted_case(&mut window, YANTA).await;
    let case_no = case.case_no.clone();
    home_state(&mut review, &case_no, "HANDED_OFF").await;
    let printed = notice(&clerk, &case_no, "intake-receipt").await;
    assert_notice(
        &cluster,
        BOTH,
        &auditor,
        &case_no,
        &printed,
        "跨域通办受理回执",
    )
    .await;

    // Accepted at home: the acceptance notice, from the reviewer's node.
    let accepted = review
        .accept(CaseRef {
            case_no: case_no.clone(),
            request_id: String::new(),
        })
        .await
        .expect("accept")
        .into_inner();
    let printed = notice(&reviewer_p, &case_no, "acceptance").await;
    assert_notice(&cluster, BOTH, &auditor, &case_no, &printed, "受理通知书").await;
    assert!(
        printed.page.contains(&{
            let d: Vec<u32> = accepted
                .due_date
                .split('-')
                .map(|p| p.parse().unwrap())
                .collect();
            format!("{}年{}月{}日", d[0], d[1], d[2])
        }),
        "the promised date: {}",
        printed.page
    );

    // Asked for a correction at home: the window prints every need, with
    // its reason (escaped) and the deadline.
    review
        .correct(CorrectRequest {
            case_no: case_no.clone(),
            needs: vec![CorrectionNeed {
                kind: "premises-proof".into(),
                reason: "<租赁合同未签字>".into(),
            }],
            deadline_days: 5,
            request_id: String::new(),
        })
        .await
        .expect("correct");
    window_state(&mut window, &case_no, "CORRECTION_REQUESTED").await;
    let printed = notice(&clerk, &case_no, "correction").await;
    assert_notice(
        &cluster,
        BOTH,
        &auditor,
        &case_no,
        &printed,
        "补正材料通知书",
    )
    .await;
    assert!(
        printed.page.contains("&lt;租赁合同未签字&gt;"),
        "{}",
        printed.page
    );
    assert!(!printed.page.contains("<租赁合同"), "{}", printed.page);
    assert!(printed.page.contains("补正期限"), "{}", printed.page);

    // Denied: the decision with its reason, at the window and at home.
    let denied = accepted_case(&mut window, YANTA).await.case_no;
    home_state(&mut review, &denied, "HANDED_OFF").await;
    review
        .accept(CaseRef {
            case_no: denied.clone(),
            request_id: String::new(),
        })
        .await
        .expect("accept");
    review
        .deny(DenyRequest {
            case_no: denied.clone(),
            reason: "经营场所位于住宅楼内".into(),
            request_id: String::new(),
        })
        .await
        .expect("deny");
    window_state(&mut window, &denied, "DENIED").await;
    for who in [&clerk, &reviewer_p] {
        let printed = notice(who, &denied, "denial").await;
        assert_notice(
            &cluster,
            BOTH,
            &auditor,
            &denied,
            &printed,
            "不予许可决定书",
        )
        .await;
        assert!(
            printed.page.contains("经营场所位于住宅楼内"),
            "{}",
            printed.page
        );
    }
}

#[tokio::test]
async fn a_notice_that_does_not_fit_the_case_and_a_tampered_code_are_refused() {
    let cluster = Cluster::start().await;
    let clerk = profile(&cluster, HANTAI, "clerk", clerk(HANTAI, "wang"));
    let auditor = profile(
        &cluster,
        HANTAI,
        "auditor",
        tongban_sandbox::auditor(None, "zhao"),
    );
    let mut window = cluster.window(HANTAI).await;
    let case_no = accepted_case(&mut window, YANTA).await.case_no;

    for (kind, says) in [
        ("denial", "it was not denied (state "),
        ("acceptance", "the home authority has not accepted it"),
        (
            "correction",
            "a correction notice fits CORRECTION_AT_WINDOW or CORRECTION_REQUESTED",
        ),
    ] {
        let out = cluster.root().join(format!("{kind}.html"));
        let (code, stdout, stderr) = run(vec![
            "notice".into(),
            case_no.clone(),
            "--kind".into(),
            kind.into(),
            "--out".into(),
            out.display().to_string(),
            "--profile".into(),
            clerk.display().to_string(),
        ])
        .await;
        assert_eq!(code, 1, "{kind}: {stdout}{stderr}");
        assert!(stderr.contains(says), "{kind}: {says:?} in {stderr}");
        assert!(!out.exists(), "{kind}: no page is written");
    }

    let mut review = cluster.review(YANTA).await;
    home_state(&mut review, &case_no, "HANDED_OFF").await;
    let printed = notice(&clerk, &case_no, "intake-receipt").await;
    let (code, out, err) = check(&cluster, BOTH, &auditor, &case_no, &printed.code).await;
    assert_eq!(code, 0, "{out}{err}");
    // One digit changed.
    let mut tampered: Vec<char> = printed.code.chars().collect();
    tampered[0] = if tampered[0] == '0' { '1' } else { '0' };
    let tampered: String = tampered.into_iter().collect();
    let (code, out, err) = check(&cluster, BOTH, &auditor, &case_no, &tampered).await;
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("has verification code"), "{err}");
    // The right code for another case.
    let other = accepted_case(&mut window, YANTA).await.case_no;
    home_state(&mut review, &other, "HANDED_OFF").await;
    let (code, out, err) = check(&cluster, BOTH, &auditor, &other, &printed.code).await;
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("has verification code"), "{err}");
    // Not a code at all: a usage error.
    let (code, _, err) = check(&cluster, BOTH, &auditor, &case_no, "12-34").await;
    assert_eq!(code, 2, "{err}");
}

/// The text of the notice's row headed `label`.
fn row<'a>(page: &'a str, label: &str) -> &'a str {
    let head = format!("<th>{label}</th><td>");
    let start = page
        .find(&head)
        .unwrap_or_else(|| panic!("{label} in {page}"))
        + head.len();
    let len = page[start..].find("</td>").expect("the row ends");
    &page[start..start + len]
}

#[tokio::test]
async fn both_nodes_notices_show_the_application_time_taken_at_the_window() {
    // The handoff reaches home an hour (by every node's clock) after the
    // clerk took the application in.
    let clock = TestClock::default();
    let cluster = Cluster::on_clock(&clock).await;
    let clerk = profile(&cluster, HANTAI, "clerk", clerk(HANTAI, "wang"));
    let reviewer_p = profile(&cluster, YANTA, "reviewer", reviewer(YANTA, "li"));
    let mut window = cluster.window(HANTAI).await;
    let mut review = cluster.review(YANTA).await;
    let applied = apply(
        &mut window,
        "GT-0001",
        YANTA,
        "mail-applicant",
        person(),
        &gt_materials(),
    )
    .await
    .expect("apply");
    clock.set(time::OffsetDateTime::now_utc() + time::Duration::hours(1));
    window
        .verify_identity(tongban_proto::window::v1::VerifyIdentityRequest {
            case_no: applied.case_no.clone(),
            method: "face".into(),
            request_id: String::new(),
        })
        .await
        .expect("verify identity");
    window
        .accept(tongban_proto::window::v1::CaseRef {
            case_no: applied.case_no.clone(),
            request_id: String::new(),
        })
        .await
        .expect("accept");
    let case_no = applied.case_no.clone();
    let home = home_state(&mut review, &case_no, "HANDED_OFF").await;
    assert_eq!(
        home.created_at, applied.created_at,
        "home records the window's time"
    );
    assert!(!home.created_at_is_arrival);
    review
        .accept(CaseRef {
            case_no: case_no.clone(),
            request_id: String::new(),
        })
        .await
        .expect("accept at home");
    let at_window = notice(&clerk, &case_no, "intake-receipt").await;
    let at_home = notice(&reviewer_p, &case_no, "acceptance").await;
    let shown = row(&at_window.page, "申请时间");
    assert_eq!(shown, row(&at_home.page, "申请时间"), "the same 申请时间");
    assert!(
        !shown.contains("到达"),
        "the window's time, not an arrival: {shown}"
    );
}
