//! Why a request was refused, as a stable reason code with named facts.
//!
//! The node's messages are English prose for the CLI and the logs; a reader
//! that speaks another language (the console, in Chinese) words a refusal
//! from its [`Reason`] and facts instead, and places it at the request
//! field it concerns. Each error type of this crate says its own refusal
//! here (one `From` each); the node adds the field, which only it knows,
//! and sends the result beside its message (docs/protocol.md, "Refusals").
//! A reason is never renamed once sent: a reader that does not know one
//! shows the English message.

use crate::commitment::SupplyRefused;
use crate::{CodeError, CommitmentError, StateError, TextError, UnknownValue};

/// A stable refusal reason. The wire form is [`Reason::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// A code (ID, credit code, phone, county, waybill, ...) was empty.
    CodeEmpty,
    /// A code has the wrong number of characters (`expected`, `got`).
    CodeLength,
    /// A code's length is outside its range (`min`, `max`, `got`).
    CodeLengthRange,
    /// A character of a code is not allowed at its place (`position`,
    /// `found`, `allowed`).
    CodeCharacter,
    /// A code's check character is wrong (`expected`, `found`).
    CodeCheckCharacter,
    /// A resident ID's birth date is not a real date.
    CodeBirthDate,
    /// A code does not start with a province prefix (`prefix`).
    CodeProvince,
    /// A resident ID's birth date is after today (`today`).
    CodeFutureBirthDate,
    /// A division code names a prefecture, not a county.
    CodeNotCounty,
    /// A code is not in its shape (`detail`, English).
    CodeFormat,
    /// A required text field was empty.
    TextRequired,
    /// A text field is over its limit (`max`, `got`).
    TextTooLong,
    /// A text field holds a control character (`position`).
    TextControl,
    /// A name is not one of the values allowed (`allowed`).
    ValueUnknown,
    /// A state name is not a case state.
    StateUnknown,
    /// The case's state does not allow the step (`from`, `to`).
    StateTransition,
    /// The case's state (`state`) does not allow the step asked for.
    StateNotAllowed,
    /// Approval waits for the paper originals (`kinds`, comma-separated).
    PaperNotReceived,
    /// Approval waits for the committed materials (`kinds`, `due`).
    CommitmentOutstanding,
    /// The ID given at hand-out (`id`, masked) is not the applicant's or
    /// the legal representative's.
    RecipientMismatch,
    /// Acceptance at the window before the case is complete (`missing`,
    /// comma-separated kinds; `identity`: `verified` or `not-verified`).
    IntakeIncomplete,
    /// Acceptance before the video consultation the item needs.
    ConsultationNeeded,
    /// Resubmitting before every material the correction asks for is
    /// attached (`kinds`).
    CorrectionIncomplete,
    /// The item does not allow the delivery mode (`item`, `mode`,
    /// `allowed`, comma-separated).
    DeliveryNotAllowed,
    /// The item has no such material kind (`item`, `kind`, `kinds`).
    MaterialUnknownKind,
    /// A material kind is declared twice (`kind`, `name`).
    MaterialDuplicate,
    /// A material's file is empty (`kind`, `name`).
    MaterialEmpty,
    /// A material is over the per-material limit (`kind`, `name`, `size`,
    /// `max`, both as binary sizes).
    MaterialTooLarge,
    /// A case's materials together are over the per-case limit (`size`,
    /// `max`).
    CaseTooLarge,
    /// An approval without its result document.
    ResultMissing,
    /// The result document is empty (or its digest is not 32 bytes).
    ResultEmpty,
    /// A denial without its reason.
    DenialReasonMissing,
    /// A correction request that names no material.
    CorrectionNoNeeds,
    /// A correction need without its reason (`kind`, `name`).
    CorrectionReasonMissing,
    /// A commitment (告知承诺) naming no material.
    CommitmentNoKinds,
    /// A commitment naming a kind the item does not have (`item`, `kind`).
    CommitmentUnknownKind,
    /// A commitment naming a material that may not be waived (`item`,
    /// `kind`, `name`).
    CommitmentNotWaivable,
    /// A commitment naming a material that is not missing (`kind`).
    CommitmentNotMissing,
    /// A commitment naming a kind twice (`kind`).
    CommitmentRepeated,
    /// A missing material the commitment does not cover (`kind`, `name`).
    CommitmentNotCovered,
    /// A commitment's deadline today or in the past (`days`, `when`:
    /// `today` or `in the past`).
    CommitmentDeadline,
    /// No agreement lets this window take in the item for that home county
    /// (`county`, `item`, `home`).
    AgreementMissing,
    /// The home county is the window's own county (`home`).
    HomeIsOwnCounty,
    /// The home county is not a county of the federation (`home`).
    HomeUnknown,
    /// Resubmitting a case with no open correction request.
    CorrectionNoneOpen,
    /// Supplying materials for a case with no open commitment.
    CommitmentNoneOpen,
    /// Mailing the paper originals of an item that has none (`item`).
    MailNoPaper,
    /// Mailing the result of a case collected at the home authority.
    MailNoResultLeg,
    /// A mail leg sent by the other side (`leg`: `materials` is the
    /// window's, `result` the home authority's).
    MailWrongSide,
    /// A hand-out where or when the result is not handed out (`state`,
    /// `delivery`, `side`: `window` or `home`).
    HandoutNotHere,
    /// Committed materials supplied before acceptance (`state`): they are
    /// attached at the window then.
    SupplyNotAccepted,
    /// Committed materials supplied after the decision of an item that is
    /// not approved before them (`state`, `item`).
    SupplyAfterDecision,
    /// Committed materials supplied after a denial.
    SupplyAfterDenial,
    /// A supplied material that is not a committed one still outstanding
    /// (`kind`, `outstanding`, comma-separated).
    SupplyNotOutstanding,
    /// An upload (attach, supply) that carries no material.
    MaterialNone,
    /// A time that is not an RFC 3339 time (`value`).
    TimeFormat,
    /// A video consultation recorded before it took place (`at`).
    ConsultationInFuture,
    /// A video consultation for an item taken in at the counter (`item`).
    ConsultationNotNeeded,
    /// Sending parked handoffs again for a case with none parked.
    RetryNoneParked,
    /// An item code that is not in the federation's catalogue (`item`).
    ItemUnknown,
    /// A step on a case whose item the directory no longer lists (`item`).
    ItemWithdrawn,
    /// Paper originals received for an item that has none (`item`).
    PaperNone,
    /// Paper originals received a second time (`at`, RFC 3339).
    PaperAlreadyReceived,
    /// A result document over the per-material limit (`size`, `max`, both
    /// as binary sizes).
    ResultTooLarge,
    /// The result document asked for before the case is approved
    /// (`state`).
    ResultNotYet,
    /// A page token the node did not give.
    PageTokenUnknown,
    /// A carrier event that is the other side's to report (`leg`,
    /// `status`, `owner`: `window` or `home`).
    MailEventWrongSide,
    /// A carrier event on a result leg whose outcome the case already took
    /// (`leg`, `status`, `state`, `waybill`).
    MailEventState,
    /// No case of that number on this node (`case_no`, `county`: this
    /// node's; `issuer`: the county the number names).
    CaseNotFound,
    /// The case is on this node, but on its other side (`case_no`,
    /// `county`, `side`: `window` or `home`, the side asked for).
    CaseNotHere,
    /// No mail leg of this node has that waybill (`waybill`, `county`).
    WaybillNotFound,
    /// A request id that is not a UUID (`value`, at most 40 characters).
    RequestIdFormat,
    /// An upload stream ended before a material was whole (`kind`,
    /// `received`, `declared`, in bytes).
    UploadTruncated,
    /// A material's bytes ran past its declared size (`kind`, `declared`).
    UploadTooLong,
    /// A material's bytes do not hash to its declared SHA-256 (`kind`,
    /// `declared`, `received`, lowercase hex).
    UploadDigestMismatch,
    /// A declared SHA-256 that is not 32 bytes (`kind`, `got`).
    UploadDigestLength,
    /// A chunk for a material not declared, or after a later one began
    /// (`material`, `declared` or `current`).
    UploadChunk,
    /// The application time a handoff states is ahead of the home's clock
    /// by more than the allowed skew (`at`, `ahead_s`, `skew_s`).
    ApplicationTimeAhead,
    /// The application time falls on another date (China Standard Time)
    /// than the case number's (`at`, `date`, `case_date`).
    ApplicationTimeOffDate,
    /// The application time is after the acceptance (`at`, `accepted_at`).
    ApplicationTimeAfterAcceptance,
}

/// What kind of refusal a reason is, which decides its gRPC code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// The request names invalid data (`INVALID_ARGUMENT`).
    Invalid,
    /// Where the case stands does not allow the step (`FAILED_PRECONDITION`).
    Precondition,
    /// No rule lets this caller do it (`PERMISSION_DENIED`).
    NotPermitted,
    /// Over a size limit (`RESOURCE_EXHAUSTED`).
    TooLarge,
    /// The case or waybill named is not on this node (`NOT_FOUND`).
    NotFound,
}

impl Reason {
    /// Every reason, so a reader can check it words each one.
    pub const ALL: [Reason; 80] = [
        Reason::CodeEmpty,
        Reason::CodeLength,
        Reason::CodeLengthRange,
        Reason::CodeCharacter,
        Reason::CodeCheckCharacter,
        Reason::CodeBirthDate,
        Reason::CodeProvince,
        Reason::CodeFutureBirthDate,
        Reason::CodeNotCounty,
        Reason::CodeFormat,
        Reason::TextRequired,
        Reason::TextTooLong,
        Reason::TextControl,
        Reason::ValueUnknown,
        Reason::StateUnknown,
        Reason::StateTransition,
        Reason::StateNotAllowed,
        Reason::PaperNotReceived,
        Reason::CommitmentOutstanding,
        Reason::RecipientMismatch,
        Reason::IntakeIncomplete,
        Reason::ConsultationNeeded,
        Reason::CorrectionIncomplete,
        Reason::DeliveryNotAllowed,
        Reason::MaterialUnknownKind,
        Reason::MaterialDuplicate,
        Reason::MaterialEmpty,
        Reason::MaterialTooLarge,
        Reason::CaseTooLarge,
        Reason::ResultMissing,
        Reason::ResultEmpty,
        Reason::DenialReasonMissing,
        Reason::CorrectionNoNeeds,
        Reason::CorrectionReasonMissing,
        Reason::CommitmentNoKinds,
        Reason::CommitmentUnknownKind,
        Reason::CommitmentNotWaivable,
        Reason::CommitmentNotMissing,
        Reason::CommitmentRepeated,
        Reason::CommitmentNotCovered,
        Reason::CommitmentDeadline,
        Reason::AgreementMissing,
        Reason::HomeIsOwnCounty,
        Reason::HomeUnknown,
        Reason::CorrectionNoneOpen,
        Reason::CommitmentNoneOpen,
        Reason::MailNoPaper,
        Reason::MailNoResultLeg,
        Reason::MailWrongSide,
        Reason::HandoutNotHere,
        Reason::SupplyNotAccepted,
        Reason::SupplyAfterDecision,
        Reason::SupplyAfterDenial,
        Reason::SupplyNotOutstanding,
        Reason::MaterialNone,
        Reason::TimeFormat,
        Reason::ConsultationInFuture,
        Reason::ConsultationNotNeeded,
        Reason::RetryNoneParked,
        Reason::ItemUnknown,
        Reason::ItemWithdrawn,
        Reason::PaperNone,
        Reason::PaperAlreadyReceived,
        Reason::ResultTooLarge,
        Reason::ResultNotYet,
        Reason::PageTokenUnknown,
        Reason::MailEventWrongSide,
        Reason::MailEventState,
        Reason::CaseNotFound,
        Reason::CaseNotHere,
        Reason::WaybillNotFound,
        Reason::RequestIdFormat,
        Reason::UploadTruncated,
        Reason::UploadTooLong,
        Reason::UploadDigestMismatch,
        Reason::UploadDigestLength,
        Reason::UploadChunk,
        Reason::ApplicationTimeAhead,
        Reason::ApplicationTimeOffDate,
        Reason::ApplicationTimeAfterAcceptance,
    ];

    /// The code as sent.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::CodeEmpty => "code.empty",
            Reason::CodeLength => "code.length",
            Reason::CodeLengthRange => "code.length-range",
            Reason::CodeCharacter => "code.character",
            Reason::CodeCheckCharacter => "code.check-character",
            Reason::CodeBirthDate => "code.birth-date",
            Reason::CodeProvince => "code.province",
            Reason::CodeFutureBirthDate => "code.future-birth-date",
            Reason::CodeNotCounty => "code.not-county",
            Reason::CodeFormat => "code.format",
            Reason::TextRequired => "text.required",
            Reason::TextTooLong => "text.too-long",
            Reason::TextControl => "text.control-character",
            Reason::ValueUnknown => "value.unknown",
            Reason::StateUnknown => "state.unknown",
            Reason::StateTransition => "state.transition",
            Reason::StateNotAllowed => "state.not-allowed",
            Reason::PaperNotReceived => "paper.not-received",
            Reason::CommitmentOutstanding => "commitment.outstanding",
            Reason::RecipientMismatch => "handout.recipient-mismatch",
            Reason::IntakeIncomplete => "intake.incomplete",
            Reason::ConsultationNeeded => "intake.consultation-needed",
            Reason::CorrectionIncomplete => "correction.incomplete",
            Reason::DeliveryNotAllowed => "delivery.not-allowed",
            Reason::MaterialUnknownKind => "material.unknown-kind",
            Reason::MaterialDuplicate => "material.duplicate",
            Reason::MaterialEmpty => "material.empty",
            Reason::MaterialTooLarge => "material.too-large",
            Reason::CaseTooLarge => "case.too-large",
            Reason::ResultMissing => "result.missing",
            Reason::ResultEmpty => "result.empty",
            Reason::DenialReasonMissing => "denial.reason-missing",
            Reason::CorrectionNoNeeds => "correction.no-needs",
            Reason::CorrectionReasonMissing => "correction.reason-missing",
            Reason::CommitmentNoKinds => "commitment.no-kinds",
            Reason::CommitmentUnknownKind => "commitment.unknown-kind",
            Reason::CommitmentNotWaivable => "commitment.not-waivable",
            Reason::CommitmentNotMissing => "commitment.not-missing",
            Reason::CommitmentRepeated => "commitment.repeated",
            Reason::CommitmentNotCovered => "commitment.not-covered",
            Reason::CommitmentDeadline => "commitment.deadline",
            Reason::AgreementMissing => "authority.no-agreement",
            Reason::HomeIsOwnCounty => "authority.own-county",
            Reason::HomeUnknown => "authority.unknown-county",
            Reason::CorrectionNoneOpen => "correction.none-open",
            Reason::CommitmentNoneOpen => "commitment.none-open",
            Reason::MailNoPaper => "mail.no-paper",
            Reason::MailNoResultLeg => "mail.no-result-leg",
            Reason::MailWrongSide => "mail.wrong-side",
            Reason::HandoutNotHere => "handout.not-here",
            Reason::SupplyNotAccepted => "supply.not-accepted",
            Reason::SupplyAfterDecision => "supply.after-decision",
            Reason::SupplyAfterDenial => "supply.after-denial",
            Reason::SupplyNotOutstanding => "supply.not-outstanding",
            Reason::MaterialNone => "material.none",
            Reason::TimeFormat => "time.format",
            Reason::ConsultationInFuture => "consultation.in-future",
            Reason::ConsultationNotNeeded => "consultation.not-needed",
            Reason::RetryNoneParked => "retry.none-parked",
            Reason::ItemUnknown => "item.unknown",
            Reason::ItemWithdrawn => "item.withdrawn",
            Reason::PaperNone => "paper.none",
            Reason::PaperAlreadyReceived => "paper.already-received",
            Reason::ResultTooLarge => "result.too-large",
            Reason::ResultNotYet => "result.not-yet",
            Reason::PageTokenUnknown => "page.token-unknown",
            Reason::MailEventWrongSide => "mail.event-wrong-side",
            Reason::MailEventState => "mail.event-state",
            Reason::CaseNotFound => "case.not-found",
            Reason::CaseNotHere => "case.not-here",
            Reason::WaybillNotFound => "waybill.not-found",
            Reason::RequestIdFormat => "request-id.format",
            Reason::UploadTruncated => "upload.truncated",
            Reason::UploadTooLong => "upload.too-long",
            Reason::UploadDigestMismatch => "upload.digest-mismatch",
            Reason::UploadDigestLength => "upload.digest-length",
            Reason::UploadChunk => "upload.chunk-order",
            Reason::ApplicationTimeAhead => "application-time.ahead",
            Reason::ApplicationTimeOffDate => "application-time.off-date",
            Reason::ApplicationTimeAfterAcceptance => "application-time.after-acceptance",
        }
    }

    /// The reason a code names, if it is one this build knows.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// What kind of refusal it is.
    pub fn class(self) -> Class {
        match self {
            Reason::StateTransition
            | Reason::StateNotAllowed
            | Reason::PaperNotReceived
            | Reason::CommitmentOutstanding
            | Reason::IntakeIncomplete
            | Reason::ConsultationNeeded
            | Reason::CorrectionIncomplete
            | Reason::CorrectionNoneOpen
            | Reason::CommitmentNoneOpen
            | Reason::MailNoPaper
            | Reason::MailNoResultLeg
            | Reason::MailWrongSide
            | Reason::HandoutNotHere
            | Reason::SupplyNotAccepted
            | Reason::SupplyAfterDecision
            | Reason::SupplyAfterDenial
            | Reason::ConsultationNotNeeded
            | Reason::RetryNoneParked
            | Reason::ItemWithdrawn
            | Reason::PaperNone
            | Reason::PaperAlreadyReceived
            | Reason::ResultNotYet
            | Reason::MailEventState => Class::Precondition,
            Reason::RecipientMismatch | Reason::AgreementMissing | Reason::MailEventWrongSide => {
                Class::NotPermitted
            }
            Reason::MaterialTooLarge | Reason::CaseTooLarge | Reason::ResultTooLarge => {
                Class::TooLarge
            }
            Reason::CaseNotFound | Reason::CaseNotHere | Reason::WaybillNotFound => Class::NotFound,
            _ => Class::Invalid,
        }
    }
}

/// A refusal: its reason, the request field it concerns and the facts its
/// words need. Personal data in the facts is masked as in the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Why.
    pub reason: Reason,
    /// The request field, as a path of proto field names
    /// (`applicant.person.resident_id`); empty when no one field.
    pub field: String,
    /// Named facts, e.g. `("expected", "X")`.
    pub args: Vec<(&'static str, String)>,
}

impl Refusal {
    /// A refusal for `reason` with `args`, at no field yet.
    pub fn new(reason: Reason, args: Vec<(&'static str, String)>) -> Self {
        Self {
            reason,
            field: String::new(),
            args,
        }
    }

    /// The same refusal at request field `field`.
    pub fn at(mut self, field: impl Into<String>) -> Self {
        self.field = field.into();
        self
    }

    /// The fact called `name`, if given.
    pub fn arg(&self, name: &str) -> Option<&str> {
        self.args
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

impl From<&CodeError> for Refusal {
    fn from(e: &CodeError) -> Self {
        let what = |w: &str| ("what", w.to_owned());
        match e {
            CodeError::Empty { what: w } => Refusal::new(Reason::CodeEmpty, vec![what(w)]),
            CodeError::Length {
                what: w,
                value,
                expected,
                got,
            } => Refusal::new(
                Reason::CodeLength,
                vec![
                    what(w),
                    ("value", value.clone()),
                    ("expected", expected.to_string()),
                    ("got", got.to_string()),
                ],
            ),
            CodeError::LengthRange {
                what: w,
                value,
                min,
                max,
                got,
            } => Refusal::new(
                Reason::CodeLengthRange,
                vec![
                    what(w),
                    ("value", value.clone()),
                    ("min", min.to_string()),
                    ("max", max.to_string()),
                    ("got", got.to_string()),
                ],
            ),
            CodeError::Character {
                what: w,
                value,
                position,
                found,
                expected,
            } => Refusal::new(
                Reason::CodeCharacter,
                vec![
                    what(w),
                    ("value", value.clone()),
                    ("position", position.to_string()),
                    ("found", found.to_string()),
                    ("allowed", (*expected).to_owned()),
                ],
            ),
            CodeError::CheckCharacter {
                what: w,
                value,
                expected,
                found,
            } => Refusal::new(
                Reason::CodeCheckCharacter,
                vec![
                    what(w),
                    ("value", value.clone()),
                    ("expected", expected.to_string()),
                    ("found", found.to_string()),
                ],
            ),
            CodeError::BirthDate { value } => Refusal::new(
                Reason::CodeBirthDate,
                vec![what("resident id"), ("date", value.clone())],
            ),
            CodeError::Province {
                what: w,
                value,
                prefix,
            } => Refusal::new(
                Reason::CodeProvince,
                vec![
                    what(w),
                    ("value", value.clone()),
                    ("prefix", prefix.clone()),
                ],
            ),
            CodeError::FutureBirthDate { value, today } => Refusal::new(
                Reason::CodeFutureBirthDate,
                vec![
                    what("resident id"),
                    ("date", value.clone()),
                    ("today", today.to_string()),
                ],
            ),
            CodeError::NotCounty { value } => Refusal::new(
                Reason::CodeNotCounty,
                vec![what("county code"), ("value", value.clone())],
            ),
            CodeError::Format {
                what: w,
                value,
                reason,
            } => Refusal::new(
                Reason::CodeFormat,
                vec![
                    what(w),
                    ("value", value.clone()),
                    ("detail", reason.clone()),
                ],
            ),
        }
    }
}

impl From<&TextError> for Refusal {
    fn from(e: &TextError) -> Self {
        match e {
            TextError::Empty { .. } => Refusal::new(Reason::TextRequired, Vec::new()),
            TextError::TooLong { max, got, .. } => Refusal::new(
                Reason::TextTooLong,
                vec![("max", max.to_string()), ("got", got.to_string())],
            ),
            TextError::Control {
                found, position, ..
            } => Refusal::new(
                Reason::TextControl,
                vec![
                    ("position", position.to_string()),
                    ("found", format!("U+{:04X}", u32::from(*found))),
                ],
            ),
        }
    }
}

impl From<&StateError> for Refusal {
    fn from(e: &StateError) -> Self {
        match e {
            StateError::Unknown { value } => {
                Refusal::new(Reason::StateUnknown, vec![("value", value.clone())])
            }
            StateError::Transition { from, to } => Refusal::new(
                Reason::StateTransition,
                vec![
                    ("from", from.as_str().to_owned()),
                    ("to", to.as_str().to_owned()),
                ],
            ),
        }
    }
}

impl From<&CommitmentError> for Refusal {
    fn from(e: &CommitmentError) -> Self {
        let s = |v: &str| v.to_owned();
        match e {
            CommitmentError::Signer(t) => Refusal::from(t).at("signer"),
            CommitmentError::NoKinds => {
                Refusal::new(Reason::CommitmentNoKinds, Vec::new()).at("kinds")
            }
            CommitmentError::UnknownKind { kind, item } => Refusal::new(
                Reason::CommitmentUnknownKind,
                vec![("item", s(item)), ("kind", s(kind))],
            )
            .at("kinds"),
            CommitmentError::NotWaivable { kind, name, item } => Refusal::new(
                Reason::CommitmentNotWaivable,
                vec![("item", s(item)), ("kind", s(kind)), ("name", s(name))],
            )
            .at("kinds"),
            CommitmentError::NotMissing { kind } => {
                Refusal::new(Reason::CommitmentNotMissing, vec![("kind", s(kind))]).at("kinds")
            }
            CommitmentError::Repeated { kind } => {
                Refusal::new(Reason::CommitmentRepeated, vec![("kind", s(kind))]).at("kinds")
            }
            CommitmentError::NotCovered { kind, name } => Refusal::new(
                Reason::CommitmentNotCovered,
                vec![("kind", s(kind)), ("name", s(name))],
            )
            .at("kinds"),
            CommitmentError::Deadline { days, when } => Refusal::new(
                Reason::CommitmentDeadline,
                vec![("days", days.to_string()), ("when", s(when))],
            )
            .at("days"),
        }
    }
}

impl From<&SupplyRefused> for Refusal {
    fn from(e: &SupplyRefused) -> Self {
        match e {
            SupplyRefused::NotAccepted(state) => Refusal::new(
                Reason::SupplyNotAccepted,
                vec![("state", state.as_str().to_owned())],
            ),
            SupplyRefused::Decided { state, item } => Refusal::new(
                Reason::SupplyAfterDecision,
                vec![("state", state.as_str().to_owned()), ("item", item.clone())],
            ),
            SupplyRefused::Denied => Refusal::new(Reason::SupplyAfterDenial, Vec::new()),
        }
    }
}

impl From<&UnknownValue> for Refusal {
    fn from(e: &UnknownValue) -> Self {
        Refusal::new(
            Reason::ValueUnknown,
            vec![
                ("what", e.what.to_owned()),
                ("value", e.value.clone()),
                ("allowed", e.allowed.clone()),
            ],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ResidentId;

    #[test]
    fn reasons_round_trip_and_are_distinct() {
        for r in Reason::ALL {
            assert_eq!(Reason::parse(r.as_str()), Some(r));
        }
        let mut names: Vec<_> = Reason::ALL.iter().map(|r| r.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Reason::ALL.len());
        assert_eq!(Reason::parse("no.such"), None);
    }

    #[test]
    fn a_wrong_check_character_keeps_its_facts_masked() {
        let e = "11010519491231002Y".parse::<ResidentId>().unwrap_err();
        let r = Refusal::from(&e).at("applicant.person.resident_id");
        assert_eq!(r.reason, Reason::CodeCharacter, "{e}");
        let e = "110105194912310021".parse::<ResidentId>().unwrap_err();
        let r = Refusal::from(&e);
        assert_eq!(r.reason, Reason::CodeCheckCharacter, "{e}");
        assert_eq!(r.arg("expected"), Some("X"));
        assert_eq!(r.arg("found"), Some("1"));
        assert!(!r.arg("value").unwrap().contains("19491231"), "{r:?}");
    }
}
