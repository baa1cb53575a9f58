//! The case state machine: the twelve states of docs/cli.md, their wire
//! names, and which transitions are allowed.
//!
//! This module only says whether a move is legal; recording it (ledger,
//! handoffs) belongs to the node and ledger crates.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why a state string or a transition was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// The string is not the name of a case state.
    #[error(
        "unknown case state {value:?}; expected one of CORRECTION_AT_WINDOW, READY_AT_WINDOW, \
         QUEUED, HANDED_OFF, UNDER_REVIEW, CORRECTION_REQUESTED, APPROVED, DENIED, \
         RESULT_IN_TRANSIT, READY_FOR_PICKUP, MAIL_RETURNED, CLOSED"
    )]
    Unknown {
        /// The string given.
        value: String,
    },
    /// The transition is not allowed from the case's current state.
    #[error("case is {from}; cannot move to {to}")]
    Transition {
        /// The case's current state.
        from: CaseState,
        /// The state asked for.
        to: CaseState,
    },
}

/// Where a case stands. The wire form (`as_str`, serde) is SCREAMING_SNAKE,
/// e.g. `HANDED_OFF`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CaseState {
    /// Materials missing (or identity unchecked) at intake.
    CorrectionAtWindow,
    /// Complete and identity checked at the window, not yet accepted.
    ReadyAtWindow,
    /// Accepted at the window; the home node's receipt for the handoff is not
    /// yet held.
    Queued,
    /// The home node's receipt for the handoff is held.
    HandedOff,
    /// Accepted for review at the home county.
    UnderReview,
    /// The home county asked for corrected or further materials.
    CorrectionRequested,
    /// Approved; the result is about to be delivered.
    Approved,
    /// Denied; the written denial is delivered like a result (mailed, or
    /// collected at home) and the case then closes.
    Denied,
    /// The result is in the mail.
    ResultInTransit,
    /// The result waits for the applicant to collect it.
    ReadyForPickup,
    /// The mail carrying the result came back undelivered.
    MailReturned,
    /// The result was handed to the applicant (terminal).
    Closed,
}

impl CaseState {
    /// Every state, in the order of the case's usual life.
    pub const ALL: [CaseState; 12] = [
        Self::CorrectionAtWindow,
        Self::ReadyAtWindow,
        Self::Queued,
        Self::HandedOff,
        Self::UnderReview,
        Self::CorrectionRequested,
        Self::Approved,
        Self::Denied,
        Self::ResultInTransit,
        Self::ReadyForPickup,
        Self::MailReturned,
        Self::Closed,
    ];

    /// The wire name, e.g. `READY_FOR_PICKUP`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CorrectionAtWindow => "CORRECTION_AT_WINDOW",
            Self::ReadyAtWindow => "READY_AT_WINDOW",
            Self::Queued => "QUEUED",
            Self::HandedOff => "HANDED_OFF",
            Self::UnderReview => "UNDER_REVIEW",
            Self::CorrectionRequested => "CORRECTION_REQUESTED",
            Self::Approved => "APPROVED",
            Self::Denied => "DENIED",
            Self::ResultInTransit => "RESULT_IN_TRANSIT",
            Self::ReadyForPickup => "READY_FOR_PICKUP",
            Self::MailReturned => "MAIL_RETURNED",
            Self::Closed => "CLOSED",
        }
    }

    /// Whether no further transition is possible (`CLOSED`).
    pub fn is_terminal(self) -> bool {
        self == Self::Closed
    }

    /// Whether the home authority has decided the case (approved or
    /// denied, and every state after): the promised-time clock stopped for
    /// good, so a count of days left to the old due date means nothing.
    pub fn is_decided(self) -> bool {
        matches!(
            self,
            Self::Approved
                | Self::Denied
                | Self::ResultInTransit
                | Self::ReadyForPickup
                | Self::MailReturned
                | Self::Closed
        )
    }

    /// Whether a case in this state may move to `next`.
    pub fn can_move_to(self, next: CaseState) -> bool {
        use CaseState::*;
        match self {
            // Staying put lets the window attach materials one at a time.
            CorrectionAtWindow => matches!(next, CorrectionAtWindow | ReadyAtWindow),
            ReadyAtWindow => matches!(next, Queued | CorrectionAtWindow),
            Queued => matches!(next, HandedOff),
            HandedOff => matches!(next, UnderReview | CorrectionRequested | Denied),
            UnderReview => matches!(next, CorrectionRequested | Approved | Denied),
            // Resubmitted materials go back through the window's outbox
            // (Queued), or straight on once the home node holds them.
            CorrectionRequested => matches!(next, Queued | HandedOff | UnderReview | Denied),
            Approved => matches!(next, ResultInTransit | ReadyForPickup),
            // The written denial is mailed (to the applicant or the window)
            // or collected at home, where handing it out closes the case.
            Denied => matches!(next, ResultInTransit | Closed),
            ResultInTransit => matches!(next, ReadyForPickup | Closed | MailReturned),
            MailReturned => matches!(next, ResultInTransit | ReadyForPickup),
            ReadyForPickup => matches!(next, Closed),
            Closed => false,
        }
    }

    /// Returns `next` if the move is allowed, else an error naming both states.
    pub fn move_to(self, next: CaseState) -> Result<CaseState, StateError> {
        if self.can_move_to(next) {
            Ok(next)
        } else {
            Err(StateError::Transition {
                from: self,
                to: next,
            })
        }
    }
}

/// The state of a case at the window after intake or an attachment: ready
/// only once every material is in and the applicant's identity is checked.
pub fn window_state(materials_complete: bool, identity_checked: bool) -> CaseState {
    if materials_complete && identity_checked {
        CaseState::ReadyAtWindow
    } else {
        CaseState::CorrectionAtWindow
    }
}

impl fmt::Display for CaseState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl CaseState {
    /// Parses a state name exactly as the wire spells it (`HANDED_OFF`),
    /// for what partner nodes send; people may type any case ([`FromStr`]).
    pub fn parse_wire(s: &str) -> Result<Self, StateError> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| StateError::Unknown {
                value: s.to_owned(),
            })
    }
}

impl FromStr for CaseState {
    type Err = StateError;
    /// Case-insensitive, so `--state queued` works on the command line.
    fn from_str(s: &str) -> Result<Self, StateError> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| StateError::Unknown {
                value: s.to_owned(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::CaseState::*;
    use super::*;

    #[test]
    fn decided_is_approval_or_denial_and_everything_after() {
        let decided: Vec<CaseState> = CaseState::ALL
            .into_iter()
            .filter(|s| s.is_decided())
            .collect();
        assert_eq!(
            decided,
            [
                Approved,
                Denied,
                ResultInTransit,
                ReadyForPickup,
                MailReturned,
                Closed
            ]
        );
        // No decided state leads back to one that is not.
        for s in decided {
            for next in CaseState::ALL {
                if s.can_move_to(next) {
                    assert!(next.is_decided(), "{s} -> {next}");
                }
            }
        }
    }

    #[test]
    fn names_round_trip() {
        for s in CaseState::ALL {
            assert_eq!(s.as_str().parse::<CaseState>().unwrap(), s);
            assert_eq!(s.as_str().to_lowercase().parse::<CaseState>().unwrap(), s);
            assert_eq!(s.to_string(), s.as_str());
            #[derive(Serialize, Deserialize)]
            struct W {
                s: CaseState,
            }
            let text = toml::to_string(&W { s }).unwrap();
            assert_eq!(text.trim(), format!("s = \"{}\"", s.as_str()));
            assert_eq!(toml::from_str::<W>(&text).unwrap().s, s);
        }
        assert_eq!(HandedOff.as_str(), "HANDED_OFF");
        let err = "DONE".parse::<CaseState>().unwrap_err().to_string();
        assert!(
            err.starts_with("unknown case state \"DONE\"; expected one of CORRECTION_AT_WINDOW"),
            "{err}"
        );
        assert!(err.ends_with("MAIL_RETURNED, CLOSED"), "{err}");
    }

    #[test]
    fn transitions() {
        let allowed = [
            (CorrectionAtWindow, CorrectionAtWindow),
            (CorrectionAtWindow, ReadyAtWindow),
            (ReadyAtWindow, Queued),
            (ReadyAtWindow, CorrectionAtWindow),
            (Queued, HandedOff),
            (HandedOff, UnderReview),
            (HandedOff, CorrectionRequested),
            (HandedOff, Denied),
            (UnderReview, CorrectionRequested),
            (UnderReview, Approved),
            (UnderReview, Denied),
            (CorrectionRequested, Queued),
            (CorrectionRequested, HandedOff),
            (CorrectionRequested, UnderReview),
            (CorrectionRequested, Denied),
            (Approved, ResultInTransit),
            (Approved, ReadyForPickup),
            (Denied, ResultInTransit),
            (Denied, Closed),
            (ResultInTransit, ReadyForPickup),
            (ResultInTransit, Closed),
            (ResultInTransit, MailReturned),
            (MailReturned, ResultInTransit),
            (MailReturned, ReadyForPickup),
            (ReadyForPickup, Closed),
        ];
        for from in CaseState::ALL {
            for to in CaseState::ALL {
                let ok = allowed.contains(&(from, to));
                assert_eq!(from.can_move_to(to), ok, "{from} -> {to}");
                assert_eq!(from.move_to(to).is_ok(), ok, "{from} -> {to}");
            }
        }
        assert_eq!(
            Queued.move_to(Approved).unwrap_err().to_string(),
            "case is QUEUED; cannot move to APPROVED"
        );
        assert_eq!(UnderReview.move_to(Approved), Ok(Approved));
    }

    #[test]
    fn terminal_states_have_no_way_out() {
        for s in CaseState::ALL {
            let stuck = CaseState::ALL.iter().all(|&n| !s.can_move_to(n));
            assert_eq!(s.is_terminal(), stuck, "{s}");
        }
    }

    #[test]
    fn window_state_needs_both() {
        assert_eq!(window_state(true, true), ReadyAtWindow);
        assert_eq!(window_state(true, false), CorrectionAtWindow);
        assert_eq!(window_state(false, true), CorrectionAtWindow);
        assert_eq!(window_state(false, false), CorrectionAtWindow);
    }
}
