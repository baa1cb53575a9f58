//! The sample case's trace: `tongban audit trace` as province auditor
//! zhao against both nodes, verified against their signed checkpoints; when
//! that cannot be done, the history both nodes report, merged by time and
//! marked as not verified.

use std::fmt::Write as _;

use anyhow::{Context, Result};
use tongban_proto::common::v1::CaseEvent;
use tongban_sandbox::{HANTAI, YANTA};

use super::Federation;
use super::sample::{Clients, review_ref, window_ref};
use crate::cmd::status_error;

/// Prints the case's trace as `tongban audit trace` does, as province
/// auditor zhao, verified against both nodes' signed checkpoints; when that
/// cannot be done, the history both nodes report, merged by time.
pub(super) async fn trace(c: &Clients, fed: &Federation, case_no: &str) -> Result<()> {
    println!("Trace of {case_no} (tongban audit trace, as province auditor zhao):");
    let auth = crate::args::AuditAuth {
        ca: None,
        cert: None,
        key: None,
        profile: Some(fed.dir.join("profiles").join("auditor.toml")),
        json: false,
    };
    let command = crate::args::AuditCommand::Trace {
        case: case_no.to_owned(),
        nodes: vec![
            fed.endpoint(HANTAI).to_owned(),
            fed.endpoint(YANTA).to_owned(),
        ],
        html: None,
        reveal: false,
    };
    match crate::cmd::audit::run(&auth, command).await {
        Ok(()) => Ok(()),
        Err(e) => {
            println!("  ! the audit trace failed: {e:#}");
            println!();
            print_history(c, case_no).await
        }
    }
}

/// Prints the case's history from both nodes' ledgers, merged by time.
async fn print_history(c: &Clients, case_no: &str) -> Result<()> {
    let at_window = c
        .window
        .clone()
        .get_case(window_ref(case_no))
        .await
        .map_err(status_error)
        .context("the case at 汉台区")?
        .into_inner();
    let at_home = c
        .review
        .clone()
        .get_case(review_ref(case_no))
        .await
        .map_err(status_error)
        .context("the case at 雁塔区")?
        .into_inner();
    let mut events: Vec<CaseEvent> = at_window
        .history
        .into_iter()
        .chain(at_home.history)
        .collect();
    let time = |e: &CaseEvent| {
        time::OffsetDateTime::parse(&e.at, &time::format_description::well_known::Rfc3339).ok()
    };
    events.sort_by(|a, b| {
        time(a)
            .cmp(&time(b))
            .then_with(|| a.county.cmp(&b.county))
            .then(a.seq.cmp(&b.seq))
    });
    println!(
        "History of {case_no} ({} ledger entries on 汉台区 and 雁塔区, merged by time, not verified):",
        events.len()
    );
    let width = events.iter().map(|e| e.event.len()).max().unwrap_or(0);
    let mut out = String::new();
    for e in &events {
        let at = crate::page::cst_time(&e.at);
        let _ = writeln!(
            out,
            "  {at}  {}  {:<width$}  {}",
            e.county, e.event, e.detail
        );
    }
    print!("{out}");
    Ok(())
}
