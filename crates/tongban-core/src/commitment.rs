//! 容缺受理 with 告知承诺: the window accepts a case with minor materials
//! missing when the applicant signs a commitment to supply them by a
//! deadline. This module decides whether a commitment is acceptable for an
//! item and computes its deadline in working days; recording it and
//! enforcing it (accept, approve, overdue) belong to the node.
//!
//! Only materials the directory marks `waivable` may be committed (洛南: no
//! 容缺 where 国家安全、公共安全、生态安全 are concerned, seed L3247-3250).

use time::Date;

use crate::calendar::Calendar;
use crate::directory::Item;
use crate::state::CaseState;
use crate::text::{TextError, free_text};

/// The longest signer name accepted, in characters.
const SIGNER_CHARS: usize = 200;

/// Why a commitment is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommitmentError {
    /// The signer's name is empty or holds a control character.
    #[error(transparent)]
    Signer(#[from] TextError),
    /// No material kind is named.
    #[error("commitment kinds: name at least one missing material the applicant commits to supply")]
    NoKinds,
    /// A kind is not a material of the item.
    #[error("commitment kinds: {kind:?} is not a material of item {item}")]
    UnknownKind {
        /// The kind given.
        kind: String,
        /// The item's code.
        item: String,
    },
    /// The material may not be waived.
    #[error(
        "commitment kinds: {kind} ({name}) is not waivable for item {item}; it must be supplied before acceptance"
    )]
    NotWaivable {
        /// The kind.
        kind: String,
        /// Its human name.
        name: String,
        /// The item's code.
        item: String,
    },
    /// The material is not missing.
    #[error("commitment kinds: {kind} is not missing; only missing materials are committed")]
    NotMissing {
        /// The kind.
        kind: String,
    },
    /// A kind is named twice.
    #[error("commitment kinds: {kind} is named twice")]
    Repeated {
        /// The kind.
        kind: String,
    },
    /// A missing material the commitment does not cover.
    #[error("material {kind} ({name}) is missing and the commitment does not cover it")]
    NotCovered {
        /// The kind.
        kind: String,
        /// Its human name.
        name: String,
    },
    /// The deadline is today or in the past.
    #[error("commitment days: {days} would put the deadline {when}; give at least 1 working day")]
    Deadline {
        /// The working days given.
        days: i64,
        /// `today` or `in the past`.
        when: &'static str,
    },
}

/// A commitment found acceptable: who signed, the kinds, the deadline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commitment {
    /// The signer's name, trimmed.
    pub signer: String,
    /// The committed material kinds, in the order given.
    pub kinds: Vec<String>,
    /// The last day to supply them.
    pub due: Date,
}

/// Checks a commitment for `item` whose `missing` kinds are not yet in:
/// every named kind must be a waivable, missing material of the item, every
/// missing material must be named, and the deadline must be at least one
/// working day after `today` (counted with `calendar`).
pub fn check(
    item: &Item,
    missing: &[String],
    signer: &str,
    kinds: &[String],
    days: i64,
    today: Date,
    calendar: &Calendar,
) -> Result<Commitment, CommitmentError> {
    let signer = free_text("commitment signer", signer, SIGNER_CHARS)?;
    if kinds.is_empty() {
        return Err(CommitmentError::NoKinds);
    }
    let item_code = item.code.as_str().to_owned();
    let mut out: Vec<String> = Vec::new();
    for kind in kinds {
        let kind = kind.trim();
        let spec = item
            .material(kind)
            .ok_or_else(|| CommitmentError::UnknownKind {
                kind: kind.to_owned(),
                item: item_code.clone(),
            })?;
        if !spec.waivable {
            return Err(CommitmentError::NotWaivable {
                kind: kind.to_owned(),
                name: spec.name.clone(),
                item: item_code,
            });
        }
        if !missing.iter().any(|m| m == kind) {
            return Err(CommitmentError::NotMissing {
                kind: kind.to_owned(),
            });
        }
        if out.iter().any(|k| k == kind) {
            return Err(CommitmentError::Repeated {
                kind: kind.to_owned(),
            });
        }
        out.push(kind.to_owned());
    }
    if let Some(kind) = missing.iter().find(|m| !out.contains(m)) {
        let name = item
            .material(kind)
            .map(|m| m.name.clone())
            .unwrap_or_default();
        return Err(CommitmentError::NotCovered {
            kind: kind.clone(),
            name,
        });
    }
    if days <= 0 {
        return Err(CommitmentError::Deadline {
            days,
            when: if days == 0 { "today" } else { "in the past" },
        });
    }
    let days = u32::try_from(days).unwrap_or(u32::MAX);
    Ok(Commitment {
        signer,
        kinds: out,
        due: calendar.add_working_days(today, days),
    })
}

/// Why committed materials cannot be supplied in a case's state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SupplyRefused {
    /// Not yet accepted: materials are attached at the window.
    #[error(
        "it is {0}; committed materials are supplied after acceptance (before acceptance: window attach)"
    )]
    NotAccepted(CaseState),
    /// Decided, and the item is not approved before its committed materials.
    #[error(
        "it is {state}; item {item} is not approved before its committed materials, so none are supplied after the decision"
    )]
    Decided {
        /// The case's state.
        state: CaseState,
        /// The item's code.
        item: String,
    },
    /// Denied: nothing is owed any more.
    #[error("it is DENIED; nothing is supplied after a denial")]
    Denied,
}

/// Whether committed materials may be supplied while a case of `item` is
/// in `state`: after acceptance and before the decision; and after an
/// approval too when the item is approved before them
/// (`approve_before_commitment`, 先证后核: the licence first, the material
/// checked when it comes), even after the hand-out, since the applicant
/// still owes it. Never after a denial.
pub fn may_supply(state: CaseState, item: &Item) -> Result<(), SupplyRefused> {
    use CaseState as S;
    match state {
        S::Queued | S::HandedOff | S::UnderReview | S::CorrectionRequested => Ok(()),
        S::Approved | S::ResultInTransit | S::ReadyForPickup | S::MailReturned | S::Closed
            if item.approve_before_commitment =>
        {
            Ok(())
        }
        S::Approved | S::ResultInTransit | S::ReadyForPickup | S::MailReturned | S::Closed => {
            Err(SupplyRefused::Decided {
                state,
                item: item.code.as_str().to_owned(),
            })
        }
        S::Denied => Err(SupplyRefused::Denied),
        S::CorrectionAtWindow | S::ReadyAtWindow => Err(SupplyRefused::NotAccepted(state)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Directory;
    use time::macros::date;

    const DIR: &str = r#"
trust_domain = "t"
[[county]]
code = "610702"
name = "汉台区"
endpoint = "https://a"
[[item]]
code = "HZ-0101"
name = "户口迁移"
category = "户政"
promised_days = 10
delivery = ["mail-applicant"]
[[item.material]]
kind = "household-register"
name = "户口簿"
[[item.material]]
kind = "marriage-certificate"
name = "结婚证"
waivable = true
[[calendar]]
year = 2026
holidays = ["2026-10-01..2026-10-07"]
workdays = ["2026-10-10"]
"#;

    fn run(missing: &[&str], kinds: &[&str], days: i64) -> Result<Commitment, CommitmentError> {
        let d = Directory::from_toml_str(DIR).unwrap();
        let item = d.item_str("HZ-0101").unwrap();
        let missing: Vec<String> = missing.iter().map(|s| s.to_string()).collect();
        let kinds: Vec<String> = kinds.iter().map(|s| s.to_string()).collect();
        check(
            item,
            &missing,
            " 张三 ",
            &kinds,
            days,
            date!(2026 - 09 - 30),
            &d.calendar,
        )
    }

    #[test]
    fn a_waivable_missing_material_is_committed_with_a_working_day_deadline() {
        let c = run(&["marriage-certificate"], &["marriage-certificate"], 2).unwrap();
        assert_eq!(c.signer, "张三");
        assert_eq!(c.kinds, ["marriage-certificate"]);
        // 10-01..07 are holidays; 10-08 and 10-09 are the next working days.
        assert_eq!(c.due, date!(2026 - 10 - 09));
    }

    #[test]
    fn bad_commitments_name_the_kind() {
        let msg = |r: Result<Commitment, CommitmentError>| r.unwrap_err().to_string();
        assert_eq!(
            msg(run(&["household-register"], &["household-register"], 5)),
            "commitment kinds: household-register (户口簿) is not waivable for item HZ-0101; it must be supplied before acceptance"
        );
        assert_eq!(
            msg(run(&["marriage-certificate"], &["passport"], 5)),
            "commitment kinds: \"passport\" is not a material of item HZ-0101"
        );
        assert_eq!(
            msg(run(&[], &["marriage-certificate"], 5)),
            "commitment kinds: marriage-certificate is not missing; only missing materials are committed"
        );
        assert_eq!(
            msg(run(
                &["marriage-certificate"],
                &["marriage-certificate", "marriage-certificate"],
                5
            )),
            "commitment kinds: marriage-certificate is named twice"
        );
        assert_eq!(
            msg(run(
                &["household-register", "marriage-certificate"],
                &["marriage-certificate"],
                5
            )),
            "material household-register (户口簿) is missing and the commitment does not cover it"
        );
        assert_eq!(
            msg(run(&["marriage-certificate"], &["marriage-certificate"], 0)),
            "commitment days: 0 would put the deadline today; give at least 1 working day"
        );
        assert_eq!(
            msg(run(
                &["marriage-certificate"],
                &["marriage-certificate"],
                -3
            )),
            "commitment days: -3 would put the deadline in the past; give at least 1 working day"
        );
        assert!(matches!(
            run(&["marriage-certificate"], &[], 5),
            Err(CommitmentError::NoKinds)
        ));
    }

    #[test]
    fn supplied_after_the_decision_only_where_approved_first() {
        let d = Directory::from_toml_str(DIR).unwrap();
        let mut item = d.item_str("HZ-0101").unwrap().clone();
        assert_eq!(may_supply(CaseState::UnderReview, &item), Ok(()));
        let err = may_supply(CaseState::Approved, &item).unwrap_err();
        assert_eq!(
            err.to_string(),
            "it is APPROVED; item HZ-0101 is not approved before its committed materials, so none are supplied after the decision"
        );
        assert!(matches!(
            may_supply(CaseState::ReadyAtWindow, &item),
            Err(SupplyRefused::NotAccepted(_))
        ));
        item.approve_before_commitment = true;
        for state in [
            CaseState::Approved,
            CaseState::ReadyForPickup,
            CaseState::Closed,
        ] {
            assert_eq!(may_supply(state, &item), Ok(()), "{state}");
        }
        assert_eq!(
            may_supply(CaseState::Denied, &item),
            Err(SupplyRefused::Denied)
        );
    }
}
