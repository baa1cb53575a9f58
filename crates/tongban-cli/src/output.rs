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

/// `tongban window list | head` closes stdout early; `println!` then panics.
/// Treat that as the reader being done (exit 0, as Unix tools do) instead
/// of printing a panic.
pub(crate) fn quiet_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.contains("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info);
    }));
}

/// The error and its causes on one line, each said once: library errors
/// often repeat their cause in their own message, and `{:#}` would print it
/// again for every level.
pub(crate) fn error_chain(err: &anyhow::Error) -> String {
    let mut line = err.to_string();
    for cause in err.chain().skip(1) {
        let text = cause.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
    }
    line
}

/// Lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn material_json(m: &MaterialDigest) -> Value {
    json!({"kind": m.kind, "filename": m.filename, "size": m.size, "sha256": hex(&m.sha256)})
}

pub(crate) fn applicant_json(a: &Applicant) -> Value {
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
        "due_date": c.due_date,
        "working_days_left": c.working_days_left,
        "clock_running": c.clock_running,
        "corrections": c.corrections.iter().map(|k| json!({"needs": k.needs.iter().map(|n| json!({"kind": n.kind, "reason": n.reason})).collect::<Vec<_>>(),
            "deadline": k.deadline, "requested_at": k.requested_at, "answered_at": k.answered_at})).collect::<Vec<_>>(),
        "licence_no": c.licence_no,
        "result": c.result.as_ref().map(material_json),
        "denial_reason": c.denial_reason,
        "paper_kinds": c.paper_kinds,
        "paper_received_at": c.paper_received_at,
        "mail": c.mail.iter().map(|m| json!({"leg": m.leg, "to": m.to, "carrier": m.carrier, "waybill": m.waybill,
            "sent_at": m.sent_at, "status": m.status,
            "events": m.events.iter().map(|e| json!({"status": e.status, "at": e.at, "note": e.note})).collect::<Vec<_>>()})).collect::<Vec<_>>(),
        "history": c.history.iter().map(|h| json!({"at": h.at, "county": h.county, "actor": h.actor,
            "event": h.event, "detail": h.detail, "seq": h.seq})).collect::<Vec<_>>(),
    })
}

/// Prints a case for a person, or as one JSON document with `--json`.
pub(crate) fn show_case(c: &CaseView, as_json: bool) {
    if as_json {
        print_json(&case_json(c));
    } else {
        print_case(c);
    }
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
    let c = &crate::sanitize::case_view(c);
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
    if !c.paper_kinds.is_empty() {
        let received = if c.paper_received_at.is_empty() {
            "not yet received at home".to_owned()
        } else {
            format!("received {}", c.paper_received_at)
        };
        println!("paper originals {} ({received})", c.paper_kinds.join(", "));
    }
    if !c.due_date.is_empty() {
        println!(
            "due             {} ({} working days left{})",
            c.due_date,
            c.working_days_left,
            if c.clock_running {
                ""
            } else {
                ", clock paused"
            }
        );
    } else if !c.clock_running && c.working_days_left != 0 {
        println!(
            "due             clock paused with {} working days left",
            c.working_days_left
        );
    }
    for k in &c.corrections {
        let needs: Vec<String> = k
            .needs
            .iter()
            .map(|n| format!("{}: {}", n.kind, n.reason))
            .collect();
        let answered = if k.answered_at.is_empty() {
            "open".to_owned()
        } else {
            format!("answered {}", k.answered_at)
        };
        println!(
            "correction      {} — by {} ({answered})",
            needs.join("; "),
            k.deadline
        );
    }
    if !c.licence_no.is_empty() {
        println!("licence         {}", c.licence_no);
    }
    if let Some(r) = &c.result {
        println!("result          {} B  sha256 {}", r.size, hex(&r.sha256));
    }
    if !c.denial_reason.is_empty() {
        println!("denied          {}", c.denial_reason);
    }
    for m in &c.mail {
        println!(
            "mail            {} leg to {} by {} waybill {}: {}",
            m.leg, m.to, m.carrier, m.waybill, m.status
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
        let c = &crate::sanitize::case_view(c);
        let due = if c.due_date.is_empty() {
            "-"
        } else {
            c.due_date.as_str()
        };
        let left = if c.due_date.is_empty() && c.working_days_left == 0 {
            "-".to_owned()
        } else {
            c.working_days_left.to_string()
        };
        println!(
            "{:<22} {:<22} {:<10} {:<7} {:<7} {:<11} {:>5} {}",
            c.case_no, c.state, c.item_code, c.receiving_county, c.home_county, due, left, c.note
        );
    }
}
