//! `tongban certs`: create the CA, issue node, user and auditor
//! certificates, and list a directory's certificates with their problems.

use anyhow::{Context, Result};
use serde_json::json;
use tongban_pki::Principal;
use tongban_pki::issue::{Ca, Issued};

use crate::args::{CertsCommand, UserRole};
use crate::output::print_json;

fn county(code: &str) -> Result<tongban_core::CountyCode> {
    // The parse error names the value; the context names the flag.
    code.parse().context("--county")
}

fn report(issued: &Issued) {
    println!("wrote {}", issued.cert_path.display());
    println!("wrote {} (mode 0600)", issued.key_path.display());
    println!("identity  {}", issued.spiffe_id);
    println!("not after {}", issued.not_after);
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
            if json {
                print_json(&json!(
                    reports
                        .iter()
                        .map(|r| json!({"file": r.file, "identity": r.identity,
                        "not_after": r.not_after.map(|t| t.to_string()), "problems": r.problems}))
                        .collect::<Vec<_>>()
                ))?;
            } else {
                println!(
                    "{:<32} {:<58} {:<12} PROBLEMS",
                    "FILE", "IDENTITY", "NOT AFTER"
                );
                for r in &reports {
                    let not_after = r
                        .not_after
                        .map(|t| t.date().to_string())
                        .unwrap_or_else(|| "-".into());
                    let problems = if r.problems.is_empty() {
                        "-".to_owned()
                    } else {
                        r.problems.join("; ")
                    };
                    println!(
                        "{:<32} {:<58} {:<12} {problems}",
                        r.file, r.identity, not_after
                    );
                }
            }
        }
    }
    Ok(())
}
