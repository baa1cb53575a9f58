//! What the CLI prints: logging setup, human tables, and the JSON documents
//! `--json` promises (one per command, on stdout).

use anyhow::Context;
use serde::Serialize;
use tongban_proto::common::v1::{Applicant, CaseView, applicant::Who};

use crate::args::LogFormat;
use crate::page::cst_time;

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

pub(crate) use tongban_core::limits::binary_size;

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
    if !c.created_at.is_empty() {
        let arrival = if c.created_at_is_arrival {
            " (the handoff's arrival here: the window did not state the time)"
        } else {
            ""
        };
        println!("applied         {}{arrival}", cst_time(&c.created_at));
    }
    if let Some(i) = &c.identity_check {
        println!(
            "identity        {} by {} at {}",
            i.method,
            i.by,
            cst_time(&i.at)
        );
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
            "material        {:<20} {:>10}  sha256 {}  {}",
            m.kind,
            binary_size(m.size),
            hex(&m.sha256),
            m.filename
        );
    }
    if !c.paper_kinds.is_empty() {
        let received = if c.paper_received_at.is_empty() {
            "not yet received at home".to_owned()
        } else {
            format!("received {}", cst_time(&c.paper_received_at))
        };
        println!("paper originals {} ({received})", c.paper_kinds.join(", "));
    }
    if let Some(line) = due_line(c) {
        println!("due             {line}");
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
            format!("answered {}", cst_time(&k.answered_at))
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
        println!(
            "result          {}  sha256 {}",
            binary_size(r.size),
            hex(&r.sha256)
        );
    }
    if !c.denial_reason.is_empty() {
        println!("denied          {}", c.denial_reason);
    }
    if let Some(v) = &c.consultation {
        println!(
            "consultation    视频会商 {} with {}: {}",
            cst_time(&v.at),
            v.reviewer,
            v.outcome
        );
    }
    if let Some(k) = &c.commitment {
        let status = match k.fulfilled_at.as_str() {
            "" => format!("due {}", k.due_date),
            at => format!("fulfilled {}", cst_time(at)),
        };
        println!(
            "commitment      告知承诺 by {}: {} {status}",
            k.signer,
            k.kinds.join(", ")
        );
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
                h.seq,
                cst_time(&h.at),
                h.county,
                h.event,
                h.detail
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
    print!("{}", cases_table(cases).render());
    Ok(())
}

/// After a page of a case list, the command for the next one: `command`
/// (the list's own command line with its filter and limit) with the
/// node's `next_page_token`; nothing on the last page (an empty token).
pub(crate) fn print_next_page(command: &str, next_page_token: &str) {
    if next_page_token.is_empty() {
        return;
    }
    // The token comes from the node: printed cleaned, as any text of its.
    let token = crate::sanitize::text(next_page_token);
    println!("more cases: {command} --page-token {token}");
}

/// Whether the case is decided (its clock stopped for good).
fn decided(c: &CaseView) -> bool {
    tongban_core::state::CaseState::parse_wire(&c.state).is_ok_and(|s| s.is_decided())
}

/// The promise as `status` prints it after `due`: the due date and the
/// working days left, or by how many the case is overdue; None when the
/// case has neither (not yet accepted). A decided case's count is the one
/// the node froze at the decision (its clock stopped then): how the promise
/// was kept, not time that is left; the console words it the same way
/// (`console/pages` `days_left`).
pub(crate) fn due_line(c: &CaseView) -> Option<String> {
    let n = c.working_days_left;
    let count = if decided(c) {
        if n < 0 {
            format!("decided {} working days late; clock stopped", -n)
        } else {
            format!("decided with {n} working days left; clock stopped")
        }
    } else if n < 0 {
        format!("{} working days overdue", -n)
    } else {
        format!("{n} working days left")
    };
    let paused = !decided(c) && !c.clock_running;
    match c.due_date.as_str() {
        // A case decided or paused for a correction has no due date
        // (paused: until the clock runs again), but its count; one not yet
        // accepted has neither.
        "" if n == 0 || !(paused || decided(c)) => None,
        "" if paused && n > 0 => Some(format!("clock paused with {count}")),
        "" if paused => Some(format!("clock paused, {count}")),
        "" => Some(count),
        due if paused => Some(format!("{due} ({count}, clock paused)")),
        due => Some(format!("{due} ({count})")),
    }
}

/// The cases as a table: number, state, item, counties, due date, working
/// days left (`decided` once the clock stopped at the decision), note.
fn cases_table(cases: &[CaseView]) -> Table {
    let mut table = Table::new(&[
        "CASE", "STATE", "ITEM", "FROM", "HOME", "DUE", "LEFT", "NOTE",
    ]);
    for c in cases {
        let c = &crate::sanitize::case_view(c);
        let left = if decided(c) {
            "decided".to_owned()
        } else if c.due_date.is_empty() && c.working_days_left == 0 {
            String::new()
        } else {
            c.working_days_left.to_string()
        };
        table.row([
            c.case_no.clone(),
            c.state.clone(),
            c.item_code.clone(),
            c.receiving_county.clone(),
            c.home_county.clone(),
            c.due_date.clone(),
            left,
            c.note.clone(),
        ]);
    }
    table
}

/// A table for people: a header over every column, each column as wide as
/// its widest cell (in characters), an empty cell shown as `-`, the last
/// column not padded.
pub(crate) struct Table {
    header: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headers.
    pub(crate) fn new(header: &[&'static str]) -> Self {
        Self {
            header: header.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; it must have a cell for every column.
    pub(crate) fn row<const N: usize>(&mut self, cells: [String; N]) {
        assert_eq!(N, self.header.len(), "a cell for every column");
        self.rows.push(
            cells
                .into_iter()
                .map(|c| if c.is_empty() { "-".to_owned() } else { c })
                .collect(),
        );
    }

    /// The header line and the rows, each ending in a newline.
    pub(crate) fn render(&self) -> String {
        let width = |i: usize| {
            self.rows
                .iter()
                .map(|r| r[i].chars().count())
                .chain([self.header[i].chars().count()])
                .max()
                .unwrap_or_default()
        };
        let widths: Vec<usize> = (0..self.header.len()).map(width).collect();
        let line = |cells: Vec<&str>| {
            let mut out = String::new();
            for (i, cell) in cells.iter().enumerate() {
                if i + 1 == cells.len() {
                    out.push_str(cell);
                } else {
                    let pad = widths[i] - cell.chars().count();
                    out.push_str(cell);
                    out.push_str(&" ".repeat(pad + 2));
                }
            }
            out.push('\n');
            out
        };
        let mut out = line(self.header.clone());
        for r in &self.rows {
            out.push_str(&line(r.iter().map(String::as_str).collect()));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(state: &str, due: &str, left: i32, running: bool) -> CaseView {
        CaseView {
            state: state.into(),
            due_date: due.into(),
            working_days_left: left,
            clock_running: running,
            ..CaseView::default()
        }
    }

    #[test]
    fn the_due_line_says_late_rather_than_negative_days_left() {
        let line = |c: CaseView| due_line(&c).unwrap_or_default();
        assert_eq!(
            line(case("APPROVED", "2026-11-09", -2, false)),
            "2026-11-09 (decided 2 working days late; clock stopped)"
        );
        assert_eq!(
            line(case("DENIED", "", -1, false)),
            "decided 1 working days late; clock stopped"
        );
        assert_eq!(
            line(case("CLOSED", "2026-11-09", 3, false)),
            "2026-11-09 (decided with 3 working days left; clock stopped)"
        );
        assert_eq!(
            line(case("UNDER_REVIEW", "2026-11-09", -2, true)),
            "2026-11-09 (2 working days overdue)"
        );
        assert_eq!(
            line(case("UNDER_REVIEW", "2026-11-09", 4, true)),
            "2026-11-09 (4 working days left)"
        );
        assert_eq!(
            line(case("CORRECTION_REQUESTED", "", 3, false)),
            "clock paused with 3 working days left"
        );
        assert_eq!(
            line(case("CORRECTION_REQUESTED", "", -3, false)),
            "clock paused, 3 working days overdue"
        );
        assert_eq!(due_line(&case("HANDED_OFF", "", 0, false)), None);
        assert_eq!(due_line(&case("DENIED", "", 0, false)), None);
    }

    #[test]
    fn sizes_are_in_binary_units() {
        assert_eq!(binary_size(0), "0 B");
        assert_eq!(binary_size(1023), "1023 B");
        assert_eq!(binary_size(1024), "1 KiB");
        assert_eq!(binary_size(1536), "1.5 KiB");
        assert_eq!(binary_size(64 * 1024 * 1024), "64 MiB");
        assert_eq!(binary_size(67_108_864 + 10 * 1024 * 1024), "74 MiB");
        assert_eq!(binary_size(5 << 40), "5 TiB");
    }

    #[test]
    fn every_column_has_a_header_and_columns_line_up() {
        let mut t = Table::new(&["CASE", "STATE", "LEFT", "NOTE"]);
        t.row([
            "610702-20261201-1".into(),
            "QUEUED".into(),
            "5".into(),
            "waiting for 雁塔区".into(),
        ]);
        t.row([
            "610702-20261201-10".into(),
            "CORRECTION_AT_WINDOW".into(),
            String::new(),
            String::new(),
        ]);
        let text = t.render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0].split_whitespace().count(), 4, "{text}");
        let starts = |l: &str| -> Vec<usize> {
            let chars: Vec<char> = l.chars().collect();
            (0..chars.len())
                .filter(|&i| chars[i] != ' ' && (i == 0 || chars[i - 1] == ' '))
                .collect()
        };
        let header = starts(lines[0]);
        assert_eq!(starts(lines[2]), header, "{text}");
        // The free text of the last column may have spaces; its start still lines up.
        assert_eq!(&starts(lines[1])[..4], &header[..], "{text}");
        assert!(lines[2].ends_with("  -"), "an empty cell is '-': {text}");
    }

    #[test]
    fn a_case_list_has_a_header_over_every_column() {
        let case = CaseView {
            case_no: "610702-20261201-1".into(),
            state: "UNDER_REVIEW".into(),
            item_code: "GT-0001".into(),
            receiving_county: "610702".into(),
            home_county: "610113".into(),
            due_date: "2026-12-08".into(),
            working_days_left: 5,
            note: "ok".into(),
            ..Default::default()
        };
        let paused = CaseView {
            case_no: "610702-20261201-2".into(),
            state: "CORRECTION_REQUESTED".into(),
            ..case.clone()
        };
        let closed = CaseView {
            case_no: "610702-20261201-3".into(),
            state: "CLOSED".into(),
            working_days_left: -4,
            ..case.clone()
        };
        let t = cases_table(&[case, paused, closed]);
        let text = t.render();
        let lines: Vec<&str> = text.lines().collect();
        // A closed case's clock stopped at the decision: no days left, and
        // never "overdue" (-4) however long ago it closed.
        assert!(
            lines[3].contains("decided") && !lines[3].contains("-4"),
            "{text}"
        );
        assert_eq!(lines[0].split_whitespace().count(), 8, "{text}");
        for row in &lines[1..] {
            assert_eq!(row.split_whitespace().count(), 8, "{text}");
            assert_eq!(row.find("2026-12-08"), lines[0].find("DUE"), "{text}");
            assert_eq!(row.find("ok"), lines[0].find("NOTE"), "{text}");
        }
    }
}
