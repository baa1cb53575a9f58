//! What the CLI prints: logging setup, human tables, and the JSON documents
//! `--json` promises (one per command, on stdout).

use serde_json::{Value, json};
use tongban_proto::common::v1::{Applicant, CaseView, MaterialDigest, applicant::Who};

use crate::args::LogFormat;

/// Logs go to stderr so stdout stays for results.
pub(crate) fn init_logging(format: LogFormat, filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn material_json(m: &MaterialDigest) -> Value {
    json!({"kind": m.kind, "filename": m.filename, "size": m.size, "sha256": hex(&m.sha256)})
}

fn applicant_json(a: &Applicant) -> Value {
    let who = match &a.who {
        Some(Who::Person(p)) => {
            json!({"kind": "person", "name": p.name, "resident_id": p.resident_id})
        }
        Some(Who::Company(c)) => {
            json!({"kind": "company", "name": c.name, "credit_code": c.credit_code,
            "legal_rep_name": c.legal_rep_name, "legal_rep_id": c.legal_rep_id})
        }
        None => json!(null),
    };
    json!({"who": who, "phone": a.phone, "address": a.address})
}

/// A case as JSON.
pub(crate) fn case_json(c: &CaseView) -> Value {
    json!({
        "case_no": c.case_no,
        "application_id": c.application_id,
        "state": c.state,
        "item_code": c.item_code,
        "item_name": c.item_name,
        "receiving_county": c.receiving_county,
        "home_county": c.home_county,
        "delivery": c.delivery,
        "missing": c.missing,
        "materials": c.materials.iter().map(material_json).collect::<Vec<_>>(),
        "applicant": c.applicant.as_ref().map(applicant_json),
        "identity_check": c.identity_check.as_ref().map(|i| json!({"method": i.method, "by": i.by, "at": i.at})),
        "created_at": c.created_at,
        "promised_days": c.promised_days,
        "note": c.note,
        "history": c.history.iter().map(|h| json!({"at": h.at, "county": h.county, "actor": h.actor,
            "event": h.event, "detail": h.detail, "seq": h.seq})).collect::<Vec<_>>(),
    })
}

/// Prints one JSON document.
pub(crate) fn print_json(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

fn applicant_line(a: Option<&Applicant>) -> String {
    match a.and_then(|a| a.who.as_ref()) {
        Some(Who::Person(p)) => format!("{} ({})", p.name, p.resident_id),
        Some(Who::Company(c)) => format!(
            "{} ({}), legal rep {} ({})",
            c.name, c.credit_code, c.legal_rep_name, c.legal_rep_id
        ),
        None => "-".into(),
    }
}

/// Prints a case for a person at a window.
pub(crate) fn print_case(c: &CaseView) {
    println!("case_no         {}", c.case_no);
    println!("application_id  {}", c.application_id);
    println!("state           {}", c.state);
    println!("item            {} {}", c.item_code, c.item_name);
    println!(
        "counties        {} -> {} (home)",
        c.receiving_county, c.home_county
    );
    println!("delivery        {}", c.delivery);
    println!("applicant       {}", applicant_line(c.applicant.as_ref()));
    if let Some(i) = &c.identity_check {
        println!("identity        {} by {} at {}", i.method, i.by, i.at);
    }
    println!(
        "promised        {} working days from acceptance at home",
        c.promised_days
    );
    if c.missing.is_empty() {
        println!("missing         none");
    } else {
        println!(
            "missing         {}  (一次性补正: all missing materials at once)",
            c.missing.join(", ")
        );
    }
    for m in &c.materials {
        println!(
            "material        {:<20} {:>10} B  sha256 {}  {}",
            m.kind,
            m.size,
            hex(&m.sha256),
            m.filename
        );
    }
    if !c.note.is_empty() {
        println!("note            {}", c.note);
    }
    if !c.history.is_empty() {
        println!("history");
        for h in &c.history {
            println!(
                "  {:>5}  {}  {}  {:<24} {}",
                h.seq, h.at, h.county, h.event, h.detail
            );
        }
    }
}

/// Prints cases as a table, or as `{"cases": [...]}` with `--json`.
pub(crate) fn print_cases(cases: &[CaseView], as_json: bool) {
    if as_json {
        print_json(&json!({"cases": cases.iter().map(case_json).collect::<Vec<_>>()}));
        return;
    }
    if cases.is_empty() {
        println!("no cases");
        return;
    }
    println!(
        "{:<22} {:<22} {:<10} {:<7} {:<7} NOTE",
        "CASE", "STATE", "ITEM", "FROM", "HOME"
    );
    for c in cases {
        println!(
            "{:<22} {:<22} {:<10} {:<7} {:<7} {}",
            c.case_no, c.state, c.item_code, c.receiving_county, c.home_county, c.note
        );
    }
}
