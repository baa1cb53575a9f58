//! Parsing what arrives on the wire into checked domain values, once, at the
//! edge: applicants, material declarations, codes. Everything here returns
//! [`NodeError::Invalid`] naming the field and what was wrong with it.

use std::collections::HashSet;

use tongban_core::{CountyCode, CreditCode, DeliveryMode, Item, Phone, ResidentId};
use tongban_ledger::ApplicantRecord;
use tongban_proto::common::v1::{Applicant, MaterialHeader, applicant::Who};

use crate::NodeError;
use crate::config::Limits;

/// Parses a county code field.
pub(crate) fn county(field: &str, value: &str) -> Result<CountyCode, NodeError> {
    value
        .parse()
        .map_err(|e| NodeError::Invalid(format!("{field}: {e}")))
}

/// Parses a delivery mode the item must allow.
pub(crate) fn delivery(item: &Item, value: &str) -> Result<DeliveryMode, NodeError> {
    let mode: DeliveryMode = value
        .parse()
        .map_err(|e| NodeError::Invalid(format!("delivery: {e}")))?;
    if !item.allows(mode) {
        let allowed: Vec<&str> = item.delivery.iter().map(|m| m.as_str()).collect();
        return Err(NodeError::Invalid(format!(
            "delivery: item {} ({}) does not allow {mode}; allowed: {}",
            item.code,
            item.name,
            allowed.join(", ")
        )));
    }
    Ok(mode)
}

fn non_empty(field: &str, value: &str) -> Result<String, NodeError> {
    let v = value.trim();
    if v.is_empty() {
        return Err(NodeError::Invalid(format!("{field} is required")));
    }
    if v.chars().count() > 200 {
        return Err(NodeError::Invalid(format!(
            "{field} is longer than 200 characters"
        )));
    }
    Ok(v.to_owned())
}

/// Checks every field of an applicant: names present, ID check characters
/// and birth dates, credit code check character, phone.
pub(crate) fn applicant(a: Option<&Applicant>) -> Result<ApplicantRecord, NodeError> {
    let a = a.ok_or_else(|| NodeError::Invalid("applicant is required".into()))?;
    let phone = Phone::parse(&a.phone).map_err(|e| NodeError::Invalid(format!("phone: {e}")))?;
    let address = non_empty("address", &a.address)?;
    match &a.who {
        Some(Who::Person(p)) => Ok(ApplicantRecord::Person {
            name: non_empty("person name", &p.name)?,
            resident_id: ResidentId::parse(&p.resident_id)
                .map_err(|e| NodeError::Invalid(format!("person id: {e}")))?,
            phone,
            address,
        }),
        Some(Who::Company(c)) => Ok(ApplicantRecord::Company {
            name: non_empty("company name", &c.name)?,
            credit_code: CreditCode::parse(&c.credit_code)
                .map_err(|e| NodeError::Invalid(format!("credit code: {e}")))?,
            legal_rep_name: non_empty("legal representative name", &c.legal_rep_name)?,
            legal_rep_id: ResidentId::parse(&c.legal_rep_id)
                .map_err(|e| NodeError::Invalid(format!("legal representative id: {e}")))?,
            phone,
            address,
        }),
        None => Err(NodeError::Invalid(
            "applicant must be a person or a company".into(),
        )),
    }
}

/// Checks material declarations against the item's material list and the
/// node's limits: known kinds, no kind twice, non-empty, 32-byte digests,
/// sizes within the per-material and per-case limits (counting `already`
/// bytes the case holds).
pub(crate) fn materials(
    item: &Item,
    headers: &[MaterialHeader],
    limits: &Limits,
    already: u64,
) -> Result<(), NodeError> {
    let mut seen = HashSet::new();
    let mut total = already;
    for (i, h) in headers.iter().enumerate() {
        let field = format!("material[{i}]");
        if item.material(&h.kind).is_none() {
            let kinds: Vec<&str> = item.materials.iter().map(|m| m.kind.as_str()).collect();
            return Err(NodeError::Invalid(format!(
                "{field}: item {} has no material kind {:?}; its kinds are: {}",
                item.code,
                h.kind,
                kinds.join(", ")
            )));
        }
        if !seen.insert(h.kind.as_str()) {
            return Err(NodeError::Invalid(format!(
                "{field}: material kind {:?} given twice",
                h.kind
            )));
        }
        if h.size == 0 {
            return Err(NodeError::Invalid(format!(
                "{field} ({}): the file is empty",
                h.kind
            )));
        }
        if h.sha256.len() != 32 {
            return Err(NodeError::Invalid(format!(
                "{field} ({}): sha256 must be 32 bytes, got {}",
                h.kind,
                h.sha256.len()
            )));
        }
        if h.size > limits.max_material_bytes {
            return Err(NodeError::TooLarge(format!(
                "{field} ({}): {} bytes is over the limit of {} bytes per material",
                h.kind, h.size, limits.max_material_bytes
            )));
        }
        total += h.size;
    }
    if total > limits.max_case_bytes {
        return Err(NodeError::TooLarge(format!(
            "the case's materials come to {total} bytes, over the limit of {} bytes per case",
            limits.max_case_bytes
        )));
    }
    Ok(())
}
