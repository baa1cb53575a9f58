use tongban_proto::common::v1::{Applicant, Person, RequiredMaterial};

use super::*;

fn event(seq: u64, event: &str, state: &str) -> CaseEvent {
    CaseEvent {
        at: "2026-12-01T02:00:00Z".into(),
        county: "610702".into(),
        event: event.into(),
        seq,
        entry_hash: vec![seq as u8; 32],
        state: state.into(),
        ..Default::default()
    }
}

fn case(state: &str, history: Vec<CaseEvent>) -> CaseView {
    CaseView {
        case_no: "610702-20261201-1".into(),
        state: state.into(),
        item_code: "GT-0001".into(),
        item_name: "个体工商户登记".into(),
        receiving_county: "610702".into(),
        receiving_county_name: "汉台区".into(),
        home_county: "610113".into(),
        home_county_name: "雁塔区".into(),
        missing: vec!["premises-proof".into()],
        required_materials: vec![RequiredMaterial {
            kind: "premises-proof".into(),
            name: "经营场所证明".into(),
        }],
        applicant: Some(Applicant {
            who: Some(Who::Person(Person {
                name: "<b>张三</b>".into(),
                resident_id: "110***********002X".into(),
            })),
            phone: "138****5678".into(),
            address: String::new(),
        }),
        history,
        ..Default::default()
    }
}

fn ctx() -> Context {
    Context {
        printed_at: "2026-12-01T02:00:00Z".into(),
        check_hint: String::new(),
    }
}

#[test]
fn codes_depend_on_kind_county_seq_and_hash() {
    let c = code(Kind::Acceptance, "610113", 7, &[1; 32]);
    assert_eq!(c.len(), 19);
    assert_eq!(c.matches('-').count(), 3);
    assert_eq!(c, code(Kind::Acceptance, "610113", 7, &[1; 32]));
    assert_ne!(c, code(Kind::Denial, "610113", 7, &[1; 32]));
    assert_ne!(c, code(Kind::Acceptance, "610702", 7, &[1; 32]));
    assert_ne!(c, code(Kind::Acceptance, "610113", 8, &[1; 32]));
    assert_ne!(c, code(Kind::Acceptance, "610113", 7, &[2; 32]));
    assert_eq!(normalize_code(&c.to_uppercase().replace('-', " ")), Some(c));
    assert_eq!(normalize_code("12345"), None);
    assert_eq!(normalize_code("zzzzzzzzzzzzzzzz"), None);
}

#[test]
fn entries_fit_the_notices_they_can_carry() {
    assert!(fits(Kind::IntakeReceipt, "case.accepted", "QUEUED", None));
    assert!(fits(
        Kind::Correction,
        "case.applied",
        "CORRECTION_AT_WINDOW",
        None
    ));
    assert!(!fits(
        Kind::Correction,
        "case.applied",
        "READY_AT_WINDOW",
        None
    ));
    assert!(fits(
        Kind::Acceptance,
        "update.received",
        "UNDER_REVIEW",
        Some("review.accepted")
    ));
    assert!(!fits(
        Kind::Acceptance,
        "update.received",
        "UNDER_REVIEW",
        Some("review.supplement-received")
    ));
    assert!(fits(Kind::Denial, "review.denied", "DENIED", None));
    assert!(!fits(Kind::Denial, "review.accepted", "UNDER_REVIEW", None));
}

#[test]
fn a_notice_that_does_not_fit_the_state_is_refused() {
    let c = case("UNDER_REVIEW", vec![event(3, "case.accepted", "QUEUED")]);
    let err = render(Kind::Denial, &c, &ctx()).unwrap_err().to_string();
    assert!(err.contains("was not denied (state UNDER_REVIEW)"), "{err}");
    let err = render(Kind::Correction, &c, &ctx())
        .unwrap_err()
        .to_string();
    assert!(err.contains("CORRECTION_REQUESTED"), "{err}");
    let err = render(Kind::Acceptance, &c, &ctx())
        .unwrap_err()
        .to_string();
    assert!(err.contains("has not accepted"), "{err}");
}

#[test]
fn a_correction_at_the_window_lists_every_missing_material_escaped() {
    let c = case(
        "CORRECTION_AT_WINDOW",
        vec![event(1, "case.applied", "CORRECTION_AT_WINDOW")],
    );
    let page = render(Kind::Correction, &c, &ctx()).unwrap();
    assert!(page.contains("补正材料通知书"));
    assert!(page.contains("经营场所证明（premises-proof）"));
    assert!(page.contains("汉台区（610702）"));
    assert!(page.contains("&lt;b&gt;张三&lt;/b&gt;"));
    assert!(!page.contains("<b>张三"));
    assert!(page.contains("110***********002X"));
    assert!(page.contains(&code(Kind::Correction, "610702", 1, &[1; 32])));
    assert!(page.contains(r#"lang="zh-CN""#));
    assert!(page.contains(r#"<meta name="viewport""#));
    assert!(page.contains(r#""Noto Sans CJK SC""#));
}
