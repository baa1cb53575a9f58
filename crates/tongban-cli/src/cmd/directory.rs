//! `tongban directory`: read the federation directory file offline, with no
//! node and no certificate. `guide ITEM` prints an item's guide (办事指南):
//! what it is, the materials (and which originals must be mailed), the
//! promised working days, the delivery modes, and which counties take it in
//! for which under the agreements; `items` lists the catalogue.

use std::path::Path;

use anyhow::{Result, bail};
use serde_json::{Value, json};
use tongban_core::{County, DeliveryMode, Directory, Item};

use super::BadConfig;
use crate::args::DirectoryCommand;
use crate::output::print_json;

pub(crate) fn run(command: DirectoryCommand) -> Result<()> {
    match command {
        DirectoryCommand::Guide {
            item,
            directory,
            json,
        } => {
            let dir = load(&directory)?;
            let Some(found) = dir.item_str(&item) else {
                bail!("{}", unknown_item(&dir, &item, &directory));
            };
            let intake = intake(&dir, found);
            if json {
                print_json(&guide_json(&dir, found, &intake))?;
            } else {
                print!("{}", guide_text(&dir, found, &intake));
            }
        }
        DirectoryCommand::Items { directory, json } => {
            let dir = load(&directory)?;
            if json {
                let items: Vec<Value> = dir
                    .items
                    .iter()
                    .map(|i| json!({"code": i.code.as_str(), "name": i.name, "category": i.category, "promised_days": i.promised_days}))
                    .collect();
                print_json(&json!({ "items": items }))?;
            } else {
                for i in &dir.items {
                    println!(
                        "{:<10} {}  ({}, {} working days)",
                        i.code.as_str(),
                        i.name,
                        i.category,
                        i.promised_days
                    );
                }
            }
        }
    }
    Ok(())
}

/// Reads the directory file; a missing or bad file is a configuration
/// problem (exit 64).
fn load(path: &Path) -> Result<Directory> {
    tongban_node::config::load_directory(path).map_err(|e| {
        let what = if e.field == "-" {
            e.reason
        } else {
            format!("{}: {}", e.field, e.reason)
        };
        BadConfig(format!(
            "failed to load the federation directory {}: {what} (give its path with --directory)",
            path.display()
        ))
        .into()
    })
}

/// Each county that takes in `item`, with the counties it takes it in for.
fn intake<'d>(dir: &'d Directory, item: &Item) -> Vec<(&'d County, Vec<&'d County>)> {
    dir.counties
        .iter()
        .map(|receiving| {
            let homes = dir
                .counties
                .iter()
                .filter(|home| dir.covers(&receiving.code, &home.code, &item.code))
                .collect::<Vec<_>>();
            (receiving, homes)
        })
        .filter(|(_, homes)| !homes.is_empty())
        .collect()
}

/// What each delivery mode means to an applicant.
fn delivery_text(mode: DeliveryMode) -> &'static str {
    match mode {
        DeliveryMode::MailApplicant => "mailed to the applicant (邮寄送达)",
        DeliveryMode::MailWindow => {
            "mailed to the receiving window for collection there (本地专窗出件)"
        }
        DeliveryMode::CollectHome => "collected at the home county",
    }
}

fn county_name(c: &County) -> String {
    format!("{} {}", c.name, c.code)
}

fn guide_text(dir: &Directory, item: &Item, intake: &[(&County, Vec<&County>)]) -> String {
    let mut out = format!("{} {} (办事指南)\n", item.code.as_str(), item.name);
    out += &format!("category   {}\n", item.category);
    out += &format!(
        "promised   {} working days from acceptance at the home county, not counting that day (holiday calendar: {})\n",
        item.promised_days, dir.calendar
    );
    if item.intake == tongban_core::IntakeMode::VideoConsultation {
        out += "intake     by video consultation with the home authority before acceptance (异地视频会商; window consult)\n";
    }
    out += "delivery\n";
    for mode in &item.delivery {
        out += &format!("  {:<15} {}\n", mode.as_str(), delivery_text(*mode));
    }
    out += "materials\n";
    if item.materials.is_empty() {
        out += "  none\n";
    }
    let width = item
        .materials
        .iter()
        .map(|m| m.kind.len())
        .max()
        .unwrap_or(0);
    for m in &item.materials {
        let how = if m.paper {
            "paper original, mailed to the home county"
        } else {
            "electronic copy"
        };
        let waivable = if m.waivable {
            "; may follow under a signed commitment (容缺受理, 告知承诺)"
        } else {
            ""
        };
        out += &format!("  {:<width$} {}: {how}{waivable}\n", m.kind, m.name);
    }
    out += "taken in\n";
    if intake.is_empty() {
        out += "  nowhere: no agreement covers this item\n";
    }
    for (receiving, homes) in intake {
        let homes: Vec<String> = homes.iter().map(|h| county_name(h)).collect();
        out += &format!("  at {} for {}\n", county_name(receiving), homes.join(", "));
    }
    out
}

fn guide_json(dir: &Directory, item: &Item, intake: &[(&County, Vec<&County>)]) -> Value {
    let county = |c: &County| json!({"code": c.code.as_str(), "name": c.name});
    json!({
        "code": item.code.as_str(),
        "name": item.name,
        "category": item.category,
        "promised_days": item.promised_days,
        "calendar_years": dir.calendar.years().collect::<Vec<_>>(),
        "delivery": item.delivery.iter().map(|m| m.as_str()).collect::<Vec<_>>(),
        "intake_mode": item.intake.as_str(),
        "approve_before_commitment": item.approve_before_commitment,
        "materials": item.materials.iter().map(|m| json!({"kind": m.kind, "name": m.name, "paper": m.paper, "waivable": m.waivable})).collect::<Vec<_>>(),
        "intake": intake.iter().map(|(receiving, homes)| json!({
            "county": county(receiving),
            "for": homes.iter().map(|h| county(h)).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

/// The refusal for an item not in the catalogue: close matches by code or
/// name if there are any, and how to list the items either way.
fn unknown_item(dir: &Directory, wanted: &str, path: &Path) -> String {
    let lower = wanted.to_lowercase();
    let close: Vec<String> = dir
        .items
        .iter()
        .filter(|i| {
            let code = i.code.as_str().to_lowercase();
            edit_distance(&code, &lower) <= 2
                || (!wanted.is_empty() && (i.name.contains(wanted) || wanted.contains(&i.name)))
        })
        .map(|i| format!("{} ({})", i.code.as_str(), i.name))
        .collect();
    let hint = if close.is_empty() {
        String::new()
    } else {
        format!("; did you mean {}?", close.join(", "))
    };
    format!(
        "failed to find item {wanted:?} in {}{hint} (list the items with `tongban directory items --directory {}`)",
        path.display(),
        path.display()
    )
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let up = row[j + 1];
            row[j + 1] = (diag + usize::from(ca != *cb)).min(up + 1).min(row[j] + 1);
            diag = up;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distances() {
        assert_eq!(edit_distance("gt-0001", "gt-0001"), 0);
        assert_eq!(edit_distance("gt-0001", "gt-001"), 1);
        assert_eq!(edit_distance("gt-0001", "tg-0001"), 2);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("户口迁移", "户口迁"), 1);
    }
}
