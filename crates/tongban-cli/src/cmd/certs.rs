//! `tongban certs`: create the CA, issue node, user and auditor
//! certificates, and list a directory's certificates with their problems.

use anyhow::{Context, Result, bail};
use serde_json::json;
use tongban_pki::Principal;
use tongban_pki::issue::{Ca, Issued};

use crate::args::{CertsCommand, UserRole};
use crate::output::{Table, print_json};

fn county(code: &str) -> Result<tongban_core::CountyCode> {
    // The parse error names the value; the context names the flag.
    code.parse().context("--county")
}

fn report(issued: &Issued) {
    println!("wrote {}", issued.cert_path.display());
    println!("wrote {} (mode 0600)", issued.key_path.display());
    println!("identity  {}", issued.spiffe_id);
    println!("not after {}", crate::page::cst_time_of(issued.not_after));
}

pub(crate) fn run(command: CertsCommand) -> Result<()> {
    match command {
        CertsCommand::CreateCa {
            dir,
            trust_domain,
            days,
            overwrite,
        } => {
            let ca = Ca::generate(&trust_domain, days)?;
            report(&ca.write(&dir, overwrite)?);
        }
        CertsCommand::CreateNode {
            dir,
            county: code,
            hosts,
            days,
            overwrite,
        } => {
            let principal = Principal::Node {
                county: county(&code)?,
            };
            report(&Ca::load(&dir)?.issue_to_dir(&dir, principal, &hosts, days, overwrite)?);
        }
        CertsCommand::CreateUser {
            dir,
            county: code,
            role,
            name,
            days,
            overwrite,
        } => {
            let county = county(&code)?;
            let principal = match role {
                UserRole::Clerk => Principal::Clerk { county, name },
                UserRole::Reviewer => Principal::Reviewer { county, name },
            };
            report(&Ca::load(&dir)?.issue_to_dir(&dir, principal, &[], days, overwrite)?);
        }
        CertsCommand::CreateAuditor {
            dir,
            name,
            county: code,
            days,
            overwrite,
        } => {
            let county = code.as_deref().map(county).transpose()?;
            let principal = Principal::Auditor { county, name };
            report(&Ca::load(&dir)?.issue_to_dir(&dir, principal, &[], days, overwrite)?);
        }
        CertsCommand::List { dir, json } => {
            let reports = tongban_pki::issue::list(&dir)?;
            let rfc3339 = |t: &time::OffsetDateTime| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_else(|_| t.to_string())
            };
            if json {
                print_json(&json!(
                    reports
                        .iter()
                        .map(|r| json!({"file": r.file, "identity": r.identity,
                        "not_after": r.not_after.as_ref().map(rfc3339), "problems": r.problems}))
                        .collect::<Vec<_>>()
                ))?;
            } else {
                let mut table = Table::new(&["FILE", "IDENTITY", "NOT AFTER", "PROBLEMS"]);
                for r in &reports {
                    table.row([
                        r.file.clone(),
                        r.identity.clone(),
                        r.not_after
                            .map(crate::page::cst_time_of)
                            .unwrap_or_default(),
                        r.problems.join("; "),
                    ]);
                }
                print!("{}", table.render());
            }
            let with_problems = reports.iter().filter(|r| !r.problems.is_empty()).count();
            if with_problems > 0 {
                bail!(
                    "{with_problems} of {} certificates in {} have problems",
                    reports.len(),
                    dir.display()
                );
            }
        }
    }
    Ok(())
}
