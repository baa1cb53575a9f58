//! What the CLI prints: logging setup, human tables, and the JSON documents
//! `--json` promises (one per command, on stdout).

use anyhow::Context;
use serde::Serialize;
use tongban_proto::common::v1::{Applicant, CaseView, applicant::Who};

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

/// Lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

/// Prints one JSON document: `value` as its serde impl has it (for proto
/// messages, the generated proto3 JSON mapping with `.proto` field names).
pub(crate) fn print_json<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value).context("cannot encode the reply as JSON")?;
    println!("{text}");
    Ok(())
}

/// Prints a case for a person, or as one JSON document with `--json`.
pub(crate) fn show_case(c: &CaseView, as_json: bool) -> anyhow::Result<()> {
    if as_json {
        print_json(c)
    } else {
        print_case(c);
        Ok(())
    }
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

/// Prints the cases of a list reply as a table, or the whole reply
/// (`{"cases": [...]}`) with `--json`.
pub(crate) fn print_cases<R: Serialize>(
    reply: &R,
    cases: &[CaseView],
    as_json: bool,
) -> anyhow::Result<()> {
    if as_json {
        return print_json(reply);
    }
    if cases.is_empty() {
        println!("no cases");
        return Ok(());
    }
    println!(
        "{:<22} {:<22} {:<10} {:<7} {:<7} NOTE",
        "CASE", "STATE", "ITEM", "FROM", "HOME"
    );
    for c in cases {
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
    Ok(())
}
