//! `tongban audit`: trace a case across the nodes it touched, verify a
//! node's whole ledger, export evidence bundles and verify them offline.

use anyhow::{Context, Result, bail};
use prost::Message;
use tongban_pki::TrustAnchor;
use tongban_proto::common::v1::LedgerEntry;

use super::Usage;
use crate::args::{AuditAuth, AuditCommand};
use crate::audit::node::{self, Step};
use crate::audit::verify::{self, Report};
use crate::audit::{BUNDLE_FORMAT, Bundle, fetch, html, unhex};
use crate::client::{Progress, ca_only, credentials};
use crate::notice;
use crate::output::print_json;
use crate::sanitize::text;

/// A failed verification: the report was printed, the exit code is 1.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Failed(String);

pub(crate) async fn run(auth: &AuditAuth, command: AuditCommand) -> Result<()> {
    if let AuditCommand::VerifyBundle { file, html } = &command {
        return verify_bundle(auth, file, html.as_deref());
    }
    let (_, tls) = credentials(
        None,
        &auth.ca,
        &auth.cert,
        &auth.key,
        auth.profile.as_deref(),
    )?;
    match command {
        AuditCommand::Trace {
            case,
            nodes,
            html,
            reveal,
        } => {
            let bundle = fetch::fetch(&case, &nodes, &tls, reveal).await?;
            let report = verify::verify(&bundle, &tls.trust_anchor()?);
            finish(&report, &bundle, auth.json, html.as_deref())
        }
        AuditCommand::Export {
            case,
            nodes,
            out,
            reveal,
        } => {
            let bundle = fetch::fetch(&case, &nodes, &tls, reveal).await?;
            let text = serde_json::to_string_pretty(&bundle)?;
            std::fs::write(&out, text)
                .with_context(|| format!("cannot write {}", out.display()))?;
            let report = verify::verify(&bundle, &tls.trust_anchor()?);
            if auth.json {
                return print_json(&serde_json::json!({
                    "out": out.display().to_string(),
                    "case_no": bundle.case_no,
                    "nodes": bundle.nodes.len(),
                    "verified": report.verified,
                    "problems": report.problems,
                }));
            }
            println!(
                "wrote {} ({} nodes; {})",
                out.display(),
                bundle.nodes.len(),
                if report.verified {
                    "verifies"
                } else {
                    "DOES NOT verify: run verify-bundle for details"
                }
            );
            Ok(())
        }
        AuditCommand::VerifyBundle { .. } => unreachable!("handled above: it needs no credentials"),
        AuditCommand::Verify { node, quick } => verify_node(&node, &tls, auth.json, quick).await,
        AuditCommand::CheckNotice { case, code, nodes } => {
            check_notice(&case, &code, &nodes, &tls, auth.json).await
        }
    }
}

/// The entry a notice's code names, and the notice it is.
struct Named {
    kind: notice::Kind,
    county: String,
    entry: LedgerEntry,
    reported: Option<String>,
}

/// Finds the case entry whose verification code for some notice kind is
/// `code` (docs/audit.md, "Notice verification codes").
fn find_notice(bundle: &Bundle, code: &str) -> Result<Option<Named>> {
    for node in &bundle.nodes {
        for e in &node.case_entries {
            let bytes = unhex("entry", &e.entry)?;
            let entry = LedgerEntry::decode(bytes.as_slice())
                .with_context(|| format!("entry {} of {} does not decode", e.seq, node.county))?;
            let hash = tongban_ledger::chain::entry_hash(&bytes);
            let Some(kind) = notice::Kind::ALL
                .into_iter()
                .find(|k| notice::code(*k, &node.county, entry.seq, &hash) == code)
            else {
                continue;
            };
            // A partner's report names the event it reports in the payload.
            let reported = unhex("payload", &e.payload)
                .ok()
                .and_then(|p| tongban_ledger::Payload::decode(&entry.kind, &p).ok())
                .and_then(|p| match p.body {
                    tongban_ledger::EntryBody::UpdateReceived { event } => Some(event),
                    _ => None,
                });
            return Ok(Some(Named {
                kind,
                county: node.county.clone(),
                entry,
                reported,
            }));
        }
    }
    Ok(None)
}

/// `audit check-notice`: the code must name an entry of the case, of a
/// kind that carries that notice, in ledgers that verify.
async fn check_notice(
    case: &str,
    typed: &str,
    nodes: &[String],
    tls: &tongban_pki::tls::TlsMaterial,
    json: bool,
) -> Result<()> {
    let code = notice::normalize_code(typed).ok_or_else(|| {
        Usage(format!(
            "{typed:?} is not a verification code (16 hex digits, e.g. 3f2a-9c41-0b7e-d215)"
        ))
    })?;
    let bundle = fetch::fetch(case, nodes, tls, false).await?;
    let report = verify::verify(&bundle, &tls.trust_anchor()?);
    let named = find_notice(&bundle, &code)?;
    let problem = match &named {
        None => Some(format!(
            "no notice of case {case} has verification code {code} on the nodes asked"
        )),
        Some(n) if n.entry.case_no != case => Some(format!(
            "code {code} names entry {} of {}, which is not of case {case}",
            n.entry.seq, n.county
        )),
        Some(n) if !notice::fits(n.kind, &n.entry.kind, &n.entry.state, n.reported.as_deref()) => {
            Some(format!(
                "code {code} names entry {} of {} ({}), which carries no {} notice",
                n.entry.seq,
                n.county,
                n.entry.kind,
                n.kind.as_str()
            ))
        }
        Some(_) if !report.verified => Some(format!(
            "the ledgers of case {case} do not verify ({} problem(s); run audit trace for details)",
            report.problems.len()
        )),
        Some(_) => None,
    };
    if json {
        print_json(&serde_json::json!({
            "case_no": case,
            "code": code,
            "valid": problem.is_none(),
            "notice": named.as_ref().map(|n| n.kind.as_str()),
            "county": named.as_ref().map(|n| n.county.clone()),
            "seq": named.as_ref().map(|n| n.entry.seq),
            "entry_kind": named.as_ref().map(|n| n.entry.kind.clone()),
            "at": named.as_ref().map(|n| n.entry.at.clone()),
            "verified": report.verified,
            "problem": problem,
        }))?;
    } else if let (None, Some(n)) = (&problem, &named) {
        println!(
            "VALID {code}: the {} ({}) of case {} rests on entry {} of {}'s ledger ({}, {}), which verifies",
            n.kind.as_str(),
            n.kind.title(),
            text(case),
            n.entry.seq,
            text(&n.county),
            text(&n.entry.kind),
            text(&crate::page::cst_time(&n.entry.at)),
        );
    }
    match problem {
        None => Ok(()),
        Some(p) => Err(Failed(p).into()),
    }
}

/// Checks a bundle with no network; only the auditor's CA is needed.
fn verify_bundle(
    auth: &AuditAuth,
    file: &std::path::Path,
    html: Option<&std::path::Path>,
) -> Result<()> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let bundle: Bundle = serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not a tongban audit bundle (or was damaged)",
            file.display()
        )
    })?;
    if bundle.format != BUNDLE_FORMAT {
        bail!(
            "{}: format {:?} is not {BUNDLE_FORMAT}",
            file.display(),
            bundle.format
        );
    }
    // The auditor's own CA is the trust root; a bundle made under another
    // CA fails here rather than vouching for itself.
    let anchor = TrustAnchor::from_pem(&ca_only(&auth.ca, auth.profile.as_deref())?)?;
    let bundle_ca = unhex("ca_certificate", &bundle.ca_certificate)
        .with_context(|| format!("{} is damaged", file.display()))?;
    if bundle_ca != anchor.ca_der() {
        bail!(
            "{} was made under another federation CA than --ca",
            file.display()
        );
    }
    let report = verify::verify(&bundle, &anchor);
    finish(&report, &bundle, auth.json, html)
}

fn finish(
    report: &Report,
    bundle: &Bundle,
    json: bool,
    html_out: Option<&std::path::Path>,
) -> Result<()> {
    if let Some(path) = html_out {
        std::fs::write(path, html::render(report, &bundle.county_names()))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if json {
        print_json(report)?;
    } else {
        print_report(report);
    }
    if report.verified {
        Ok(())
    } else {
        Err(Failed(format!(
            "case {} does not verify: {} problem(s)",
            report.case_no,
            report.problems.len()
        ))
        .into())
    }
}

/// A report for a person. Everything in it came from nodes, so text goes
/// through [`text`] (the applicant is JSON, escaped already).
fn print_report(r: &Report) {
    println!("case {}", text(&r.case_no));
    if !r.applicant.is_null() {
        println!("applicant {}", r.applicant);
    }
    println!();
    println!(
        "{:<23} {:<7} {:<36} {:<28} DETAIL",
        "TIME", "COUNTY", "ACTOR", "EVENT"
    );
    for e in &r.timeline {
        // The application time the window stated is its claim, beside the
        // home's own record of the arrival (the entry's time).
        let claimed = if e.claimed_applied_at.is_empty() {
            String::new()
        } else {
            format!(
                " (window states applied {})",
                text(&crate::page::cst_time(&e.claimed_applied_at))
            )
        };
        println!(
            "{:<23} {:<7} {:<36} {:<28} {}{claimed}",
            text(&crate::page::cst_time(&e.at)),
            text(&e.county),
            text(&e.who()),
            format!("#{} {}", e.seq, text(&e.event)),
            text(&e.detail)
        );
    }
    println!();
    for c in &r.coverage {
        println!(
            "ledger of {}: entries {}..={} checked against its signed checkpoint",
            text(&c.county),
            c.from_seq,
            c.to_seq
        );
    }
    let asked: Vec<&str> = r.coverage.iter().map(|c| c.county.as_str()).collect();
    println!("nodes asked: {}", text(&asked.join(", ")));
    let both = r
        .handoffs
        .iter()
        .filter(|a| a.matched && a.both_sides)
        .count();
    let one = r
        .handoffs
        .iter()
        .filter(|a| a.matched && !a.both_sides)
        .count();
    print!(
        "handoffs: {both} of {} matched on both sides",
        r.handoffs.len()
    );
    if one > 0 {
        print!("; {one} checked on the sender's side only (the receiver was not asked)");
    }
    println!();
    for n in &r.notes {
        println!("note: {}", text(n));
    }
    if r.verified {
        println!("VERIFIED");
    } else {
        println!("FAILED");
        for p in &r.problems {
            println!("  - {}", text(p));
        }
    }
}

/// Verifies the node at `url` ([`crate::audit::node`]), with progress
/// bars on a terminal, and prints the verdict.
async fn verify_node(
    url: &str,
    tls: &tongban_pki::tls::TlsMaterial,
    json: bool,
    quick: bool,
) -> Result<()> {
    let mut ledger: Option<Progress> = None;
    let mut rehash: Option<Progress> = None;
    let mut on = |step: Step<'_>| match step {
        Step::Checkpoint { total, .. } if !json => ledger = Some(Progress::count("ledger", total)),
        Step::Entry => {
            if let Some(p) = &mut ledger {
                p.inc(1);
            }
        }
        Step::ChainDone => {
            if let Some(p) = &ledger {
                p.finish();
            }
        }
        Step::Evidence { material_bytes } if !json => {
            rehash = Some(Progress::new("rehash", material_bytes));
        }
        Step::Rehashed { bytes } => {
            if let Some(p) = &mut rehash {
                p.inc(bytes);
            }
        }
        _ => {}
    };
    let verdict = node::verify(url, tls, quick, false, &mut on).await;
    if let Some(p) = &rehash {
        p.finish();
    }
    let v = verdict?;
    if json {
        print_json(&v.to_json())?;
    } else {
        print_verdict(&v);
    }
    match &v.bad {
        Some(b) => Err(Failed(format!(
            "the ledger of {url} does not verify: first bad entry {}",
            b.seq
        ))
        .into()),
        None if !v.problems.is_empty() => Err(Failed(format!(
            "the evidence of {url} does not verify: {} problem(s)",
            v.problems.len()
        ))
        .into()),
        None => Ok(()),
    }
}

/// A node's verdict for a person.
fn print_verdict(v: &node::Verdict) {
    println!(
        "node {} ({}), checkpoint at seq {} signed {}",
        v.url,
        v.signer,
        v.checkpoint_seq,
        text(&crate::page::cst_time(&v.checkpoint_at))
    );
    match &v.evidence {
        None => println!("evidence not checked (--quick): materials and receipts"),
        Some(s) => {
            let mb = s.material_bytes as f64 / 1e6;
            println!(
                "materials: {} re-hashed by the node, {mb:.1} MB at {:.0} MB/s",
                s.materials,
                mb / s.seconds.max(1e-6)
            );
            println!(
                "receipts: {} held as sender, {} given as receiver",
                s.held, s.given
            );
        }
    }
    match &v.bad {
        None if v.problems.is_empty() => println!("VERIFIED entries 1..={}", v.chained_to),
        None => println!(
            "FAILED: entries 1..={} verify, the evidence does not",
            v.chained_to
        ),
        Some(b) => {
            println!("FAILED at entry {}: it {}", b.seq, b.why);
            println!("checked entries 1..={} before it", v.checked_to());
        }
    }
    for p in &v.problems {
        println!("  - {}", text(&p.text));
    }
}
