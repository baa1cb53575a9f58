//! Text that came over the network, made safe for a terminal.
//!
//! Nodes refuse control characters in the free text they take in, but the
//! CLI prints what any node of the federation sends back (case notes,
//! names, addresses, reasons, history details, error messages), and a
//! partner's node may be older, buggy or hostile. A control character
//! printed as is can rewrite a clerk's screen (an ESC sequence), hide a
//! line (a carriage return) or forge one (a newline). So human output goes
//! through [`text`], which prints each control character as a visible
//! escape (`\u{1b}`, `\n`) and leaves everything else as it is. JSON output
//! needs none of this: JSON escapes control characters itself.

use std::borrow::Cow;

use tongban_proto::common::v1::{CaseView, applicant::Who};

/// `s` with every control character written as its escape.
pub(crate) fn text(s: &str) -> Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn clean(s: &mut String) {
    if let Cow::Owned(clean) = text(s) {
        *s = clean;
    }
}

/// A copy of `c` with every text field passed through [`text`], for human
/// output. The destructuring names every field, so a field added to the
/// message does not compile until it is decided here.
pub(crate) fn case_view(c: &CaseView) -> CaseView {
    let mut c = c.clone();
    let CaseView {
        case_no,
        application_id,
        item_code,
        item_name,
        receiving_county,
        home_county,
        delivery,
        state,
        missing,
        materials,
        applicant,
        identity_check,
        created_at,
        promised_days: _,
        note,
        history,
        due_date,
        working_days_left: _,
        clock_running: _,
        corrections,
        licence_no,
        result,
        denial_reason,
        mail,
        paper_received_at,
        paper_kinds,
        receiving_county_name,
        home_county_name,
        required_materials,
        commitment,
        consultation,
        created_at_is_arrival: _,
    } = &mut c;
    for s in [
        case_no,
        application_id,
        item_code,
        item_name,
        receiving_county,
        home_county,
        delivery,
        state,
        created_at,
        note,
        due_date,
        licence_no,
        denial_reason,
        paper_received_at,
        receiving_county_name,
        home_county_name,
    ] {
        clean(s);
    }
    if let Some(c) = commitment {
        for s in [
            &mut c.signer,
            &mut c.due_date,
            &mut c.signed_at,
            &mut c.by,
            &mut c.fulfilled_at,
        ] {
            clean(s);
        }
        c.kinds.iter_mut().for_each(clean);
    }
    if let Some(v) = consultation {
        for s in [
            &mut v.at,
            &mut v.reviewer,
            &mut v.outcome,
            &mut v.recorded_by,
        ] {
            clean(s);
        }
    }
    for m in required_materials {
        clean(&mut m.kind);
        clean(&mut m.name);
    }
    missing
        .iter_mut()
        .chain(paper_kinds.iter_mut())
        .for_each(clean);
    for m in materials.iter_mut().chain(result.iter_mut()) {
        clean(&mut m.kind);
        clean(&mut m.filename);
    }
    if let Some(a) = applicant {
        clean(&mut a.phone);
        clean(&mut a.address);
        match &mut a.who {
            Some(Who::Person(p)) => {
                clean(&mut p.name);
                clean(&mut p.resident_id);
            }
            Some(Who::Company(co)) => {
                for s in [
                    &mut co.name,
                    &mut co.credit_code,
                    &mut co.legal_rep_name,
                    &mut co.legal_rep_id,
                ] {
                    clean(s);
                }
            }
            None => {}
        }
    }
    if let Some(i) = identity_check {
        for s in [&mut i.method, &mut i.by, &mut i.at] {
            clean(s);
        }
    }
    for h in history {
        for s in [
            &mut h.at,
            &mut h.county,
            &mut h.actor,
            &mut h.event,
            &mut h.detail,
            &mut h.state,
        ] {
            clean(s);
        }
    }
    for k in corrections {
        for n in &mut k.needs {
            clean(&mut n.kind);
            clean(&mut n.reason);
        }
        for s in [&mut k.deadline, &mut k.requested_at, &mut k.answered_at] {
            clean(s);
        }
    }
    for m in mail {
        for s in [
            &mut m.leg,
            &mut m.carrier,
            &mut m.waybill,
            &mut m.sent_at,
            &mut m.status,
            &mut m.to,
        ] {
            clean(s);
        }
        for e in &mut m.events {
            for s in [&mut e.status, &mut e.at, &mut e.note] {
                clean(s);
            }
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use tongban_proto::common::v1::{Applicant, CaseEvent, MailEvent, MailLeg, Person};

    #[test]
    fn control_characters_become_visible_escapes() {
        assert!(matches!(text("张三 ok"), Cow::Borrowed("张三 ok")));
        assert_eq!(text("a\u{1b}[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(text("line\r\nforged"), "line\\r\\nforged");
        assert_eq!(text("\u{7}\u{9b}\t"), "\\u{7}\\u{9b}\\t");
    }

    #[test]
    fn every_text_field_of_a_case_is_cleaned() {
        let esc = "x\u{1b}[31m";
        let c = CaseView {
            note: esc.into(),
            denial_reason: esc.into(),
            applicant: Some(Applicant {
                who: Some(Who::Person(Person {
                    name: esc.into(),
                    resident_id: "110***********002X".into(),
                })),
                phone: String::new(),
                address: "a\nb".into(),
            }),
            history: vec![CaseEvent {
                detail: esc.into(),
                ..Default::default()
            }],
            mail: vec![MailLeg {
                carrier: esc.into(),
                events: vec![MailEvent {
                    note: esc.into(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let clean = case_view(&c);
        assert_eq!(clean.note, "x\\u{1b}[31m");
        assert_eq!(clean.denial_reason, clean.note);
        assert_eq!(clean.history[0].detail, clean.note);
        assert_eq!(clean.mail[0].carrier, clean.note);
        assert_eq!(clean.mail[0].events[0].note, clean.note);
        let a = clean.applicant.unwrap();
        assert_eq!(a.address, "a\\nb");
        match a.who {
            Some(Who::Person(p)) => {
                assert_eq!(p.name, "x\\u{1b}[31m");
                assert_eq!(p.resident_id, "110***********002X");
            }
            other => panic!("{other:?}"),
        }
    }
}
