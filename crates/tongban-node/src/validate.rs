//! Parsing what arrives on the wire into checked domain values, once, at the
//! edge: applicants, material declarations, codes, free text. Everything
//! here returns [`NodeError::Invalid`] naming the field and what was wrong
//! with it, or, where the core has a reason code for it (a code's check
//! character, a required text), [`NodeError::Refused`] with that code and
//! the request field's proto path beside the same words. The receiver checks a partner's envelope with the same functions
//! as the window checks a clerk's input.

use std::collections::HashSet;

use time::Date;
use tongban_core::{
    CountyCode, CreditCode, DeliveryMode, Item, Phone, Reason, Refusal, ResidentId,
};
use tongban_ledger::ApplicantRecord;
use tongban_proto::common::v1::{Applicant, MaterialHeader, applicant::Who};
use tongban_proto::federation::v1::CaseUpdate;

use crate::NodeError;
use crate::config::Limits;

/// Parses a county code field (`path` the request field, `label` how the
/// message names it).
pub(crate) fn county(path: &str, label: &str, value: &str) -> Result<CountyCode, NodeError> {
    value.parse().map_err(|e| NodeError::at(path, label, &e))
}

/// Parses a delivery mode the item must allow.
pub(crate) fn delivery(item: &Item, value: &str) -> Result<DeliveryMode, NodeError> {
    let mode: DeliveryMode = value
        .parse()
        .map_err(|e| NodeError::Invalid(format!("delivery: {e}")))?;
    if !item.allows(mode) {
        let allowed: Vec<&str> = item.delivery.iter().map(|m| m.as_str()).collect();
        return Err(NodeError::refused(
            Refusal::new(
                Reason::DeliveryNotAllowed,
                vec![
                    ("item", item.code.to_string()),
                    ("mode", mode.as_str().to_owned()),
                    ("allowed", allowed.join(",")),
                ],
            )
            .at("delivery"),
            format!(
                "delivery: item {} ({}) does not allow {mode}; allowed: {}",
                item.code,
                item.name,
                allowed.join(", ")
            ),
        ));
    }
    Ok(mode)
}

/// Length limits of free-text fields, in characters.
pub(crate) const NAME_CHARS: usize = 200;
/// A reason for a correction or a denial.
pub(crate) const REASON_CHARS: usize = 1000;
/// A note on a mail event.
pub(crate) const NOTE_CHARS: usize = 500;
/// A carrier's name, a licence number, a hand-out recipient's ID as typed.
pub(crate) const SHORT_CHARS: usize = 64;

/// A required free-text field (see [`tongban_core::text`]), trimmed:
/// `path` is the request field, `label` how the message names it.
pub(crate) fn text(
    path: &str,
    label: &str,
    value: &str,
    max_chars: usize,
) -> Result<String, NodeError> {
    tongban_core::free_text(label, value, max_chars).map_err(|e| text_refused(path, &e))
}

/// A text field's refusal: the core's words, its reason at `path`.
fn text_refused(path: &str, e: &tongban_core::TextError) -> NodeError {
    NodeError::refused(tongban_core::Refusal::from(e).at(path), e.to_string())
}

/// A free-text field that may be empty, trimmed.
pub(crate) fn optional_text(
    path: &str,
    label: &str,
    value: &str,
    max_chars: usize,
) -> Result<String, NodeError> {
    tongban_core::optional_text(label, value, max_chars).map_err(|e| text_refused(path, &e))
}

/// A resident ID given on `today`.
fn resident_id(path: &str, label: &str, value: &str, today: Date) -> Result<ResidentId, NodeError> {
    ResidentId::parse_on(value, today).map_err(|e| NodeError::at(path, label, &e))
}

/// Checks every field of an applicant as given on `today`: names and
/// address present and free of control characters, IDs (check character,
/// province, birth date not after today), credit code check character,
/// phone.
pub(crate) fn applicant(a: Option<&Applicant>, today: Date) -> Result<ApplicantRecord, NodeError> {
    let a = a.ok_or_else(|| NodeError::Invalid("applicant is required".into()))?;
    let phone =
        Phone::parse(&a.phone).map_err(|e| NodeError::at("applicant.phone", "phone", &e))?;
    let address = text("applicant.address", "address", &a.address, NAME_CHARS)?;
    match &a.who {
        Some(Who::Person(p)) => Ok(ApplicantRecord::Person {
            name: text("applicant.person.name", "person name", &p.name, NAME_CHARS)?,
            resident_id: resident_id(
                "applicant.person.resident_id",
                "person id",
                &p.resident_id,
                today,
            )?,
            phone,
            address,
        }),
        Some(Who::Company(c)) => Ok(ApplicantRecord::Company {
            name: text(
                "applicant.company.name",
                "company name",
                &c.name,
                NAME_CHARS,
            )?,
            credit_code: CreditCode::parse(&c.credit_code)
                .map_err(|e| NodeError::at("applicant.company.credit_code", "credit code", &e))?,
            legal_rep_name: text(
                "applicant.company.legal_rep_name",
                "legal representative name",
                &c.legal_rep_name,
                NAME_CHARS,
            )?,
            legal_rep_id: resident_id(
                "applicant.company.legal_rep_id",
                "legal representative id",
                &c.legal_rep_id,
                today,
            )?,
            phone,
            address,
        }),
        None => Err(NodeError::Invalid(
            "applicant must be a person or a company".into(),
        )),
    }
}

/// Checks the free text of a partner's case update for control characters
/// (its lengths are the sender's business: it checked them at its edge).
pub(crate) fn update(u: &CaseUpdate) -> Result<(), NodeError> {
    let mut fields: Vec<(String, &str)> = vec![
        ("update detail".into(), &u.detail),
        ("update licence number".into(), &u.licence_no),
        ("update reason".into(), &u.reason),
    ];
    if let Some(c) = &u.correction {
        for n in &c.needs {
            fields.push((format!("update need {:?} reason", n.kind), &n.reason));
        }
    }
    if let Some(m) = &u.mail {
        fields.push(("update mail carrier".into(), &m.carrier));
        for e in &m.events {
            fields.push(("update mail event note".into(), &e.note));
        }
    }
    for (field, value) in fields {
        optional_text("", &field, value, usize::MAX)?;
    }
    Ok(())
}

/// Checks the materials a partner's update declares, before their chunks
/// are read: only an approval carries one, its result document, declared as
/// the update's `result` digest declares it (kind `result`, file name, size
/// and SHA-256, the size within the per-material limit). The content is
/// checked against the header as it arrives (`ingest`); that an approval
/// carries its document at all is checked when it is applied, after who may
/// report it (`service::federation::apply`).
pub(crate) fn update_materials(
    u: &CaseUpdate,
    headers: &[MaterialHeader],
    limits: &Limits,
) -> Result<(), NodeError> {
    if headers.is_empty() {
        return Ok(());
    }
    if u.event != tongban_core::CaseEvent::Approved.as_str() {
        return Err(NodeError::Invalid(format!(
            "a case update {:?} carries no materials; only an approval carries its result document",
            u.event
        )));
    }
    let declared = u
        .result
        .as_ref()
        .ok_or_else(|| NodeError::Invalid("approval update without its result digest".into()))?;
    let [h] = headers else {
        return Err(NodeError::Invalid(format!(
            "an approval carries exactly one material, its result document; this one declares {}",
            headers.len()
        )));
    };
    optional_text(
        "filename",
        "result document filename",
        &h.filename,
        NAME_CHARS,
    )?;
    if h.kind != tongban_core::RESULT_KIND
        || declared.kind != h.kind
        || declared.filename != h.filename
        || declared.size != h.size
        || declared.sha256 != h.sha256
    {
        return Err(NodeError::Invalid(format!(
            "the approval's material ({:?}, {} bytes) is not the result document its update declares ({:?}, {} bytes)",
            h.kind, h.size, declared.kind, declared.size
        )));
    }
    if h.size == 0 || h.sha256.len() != 32 {
        return Err(NodeError::Invalid(
            "the result document is empty or its sha256 is not 32 bytes".into(),
        ));
    }
    if h.size > limits.max_material_bytes {
        return Err(NodeError::TooLarge(format!(
            "the result document's {} are over the limit of {} per material",
            tongban_core::limits::binary_size(h.size),
            tongban_core::limits::binary_size(limits.max_material_bytes)
        )));
    }
    Ok(())
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
        optional_text(
            &format!("materials[{i}].filename"),
            &format!("{field} filename"),
            &h.filename,
            NAME_CHARS,
        )?;
        let at = format!("materials[{i}].kind");
        let Some(spec) = item.material(&h.kind) else {
            let kinds: Vec<&str> = item.materials.iter().map(|m| m.kind.as_str()).collect();
            return Err(NodeError::refused(
                Refusal::new(
                    Reason::MaterialUnknownKind,
                    vec![
                        ("item", item.code.to_string()),
                        ("kind", h.kind.clone()),
                        ("kinds", kinds.join(",")),
                    ],
                )
                .at(at),
                format!(
                    "{field}: item {} has no material kind {:?}; its kinds are: {}",
                    item.code,
                    h.kind,
                    kinds.join(", ")
                ),
            ));
        };
        // The item's name of the material, for a reader that words it.
        let named = |reason: Reason, more: Vec<(&'static str, String)>| {
            let mut args = vec![("kind", h.kind.clone()), ("name", spec.name.clone())];
            args.extend(more);
            Refusal::new(reason, args).at(format!("materials[{i}]"))
        };
        if !seen.insert(h.kind.as_str()) {
            return Err(NodeError::refused(
                named(Reason::MaterialDuplicate, Vec::new()),
                format!("{field}: material kind {:?} given twice", h.kind),
            ));
        }
        if h.size == 0 {
            return Err(NodeError::refused(
                named(Reason::MaterialEmpty, Vec::new()),
                format!("{field} ({}): the file is empty", h.kind),
            ));
        }
        if h.sha256.len() != 32 {
            return Err(NodeError::refused(
                named(
                    Reason::UploadDigestLength,
                    vec![("got", h.sha256.len().to_string())],
                ),
                format!(
                    "{field} ({}): sha256 must be 32 bytes, got {}",
                    h.kind,
                    h.sha256.len()
                ),
            ));
        }
        if h.size > limits.max_material_bytes {
            let size = tongban_core::limits::binary_size(h.size);
            let max = tongban_core::limits::binary_size(limits.max_material_bytes);
            return Err(NodeError::refused(
                named(
                    Reason::MaterialTooLarge,
                    vec![("size", size.clone()), ("max", max.clone())],
                ),
                format!(
                    "{field} ({}): {size} is over the limit of {max} per material",
                    h.kind
                ),
            ));
        }
        total += h.size;
    }
    if total > limits.max_case_bytes {
        let size = tongban_core::limits::binary_size(total);
        let max = tongban_core::limits::binary_size(limits.max_case_bytes);
        return Err(NodeError::refused(
            Refusal::new(
                Reason::CaseTooLarge,
                vec![("size", size.clone()), ("max", max.clone())],
            ),
            format!("the case's materials come to {size}, over the limit of {max} per case"),
        ));
    }
    Ok(())
}

/// The application time (申请时间) a window's handoff states, checked
/// against what this node can know, and returned as RFC 3339 UTC. The
/// window's clock is not this node's, so a time ahead of `now` by more
/// than `skew` (the skew allowed on receipts, `[delivery] receipt_skew_s`)
/// is refused rather than recorded; the case number carries the window's
/// China Standard Time date of the application, so a time on another date
/// is refused too (it bounds a claim "long before"); and a clerk takes an
/// application in before accepting it, so a time after `accepted_at` is
/// refused.
pub(crate) fn applied_at(
    claimed: &str,
    case_no: &tongban_core::CaseNo,
    accepted_at: &str,
    now: time::OffsetDateTime,
    skew: std::time::Duration,
) -> Result<String, NodeError> {
    use time::format_description::well_known::Rfc3339;
    use tongban_core::{Reason, Refusal};
    let at = time::OffsetDateTime::parse(claimed, &Rfc3339).map_err(|e| {
        NodeError::refused(
            Refusal::new(Reason::TimeFormat, vec![("value", claimed.to_owned())]).at("applied_at"),
            format!("applied_at {claimed:?} is not an RFC 3339 time: {e}"),
        )
    })?;
    let ahead = at - now;
    if ahead > skew {
        return Err(NodeError::refused(
            Refusal::new(
                Reason::ApplicationTimeAhead,
                vec![
                    ("at", claimed.to_owned()),
                    ("ahead_s", ahead.whole_seconds().to_string()),
                    ("skew_s", skew.as_secs().to_string()),
                ],
            )
            .at("applied_at"),
            format!(
                "applied_at {claimed} is {} s ahead of this node's clock (allowed skew {} s): an application cannot be taken in in the future",
                ahead.whole_seconds(),
                skew.as_secs()
            ),
        ));
    }
    let date = at.to_offset(crate::clock::CST).date();
    if date != case_no.date() {
        return Err(NodeError::refused(
            Refusal::new(
                Reason::ApplicationTimeOffDate,
                vec![
                    ("at", claimed.to_owned()),
                    ("date", date.to_string()),
                    ("case_date", case_no.date().to_string()),
                    ("case_no", case_no.to_string()),
                ],
            )
            .at("applied_at"),
            format!(
                "applied_at {claimed} falls on {date} in China Standard Time, but case number {case_no} was issued on {}",
                case_no.date()
            ),
        ));
    }
    if let Ok(accepted) = time::OffsetDateTime::parse(accepted_at, &Rfc3339)
        && at > accepted
    {
        return Err(NodeError::refused(
            Refusal::new(
                Reason::ApplicationTimeAfterAcceptance,
                vec![
                    ("at", claimed.to_owned()),
                    ("accepted_at", accepted_at.to_owned()),
                ],
            )
            .at("applied_at"),
            format!("applied_at {claimed} is after the application's accepted_at {accepted_at}"),
        ));
    }
    Ok(crate::clock::rfc3339(at))
}
