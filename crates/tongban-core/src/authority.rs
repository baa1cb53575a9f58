//! Who may say what (收受分离): which end of a case may report each step,
//! in which of the receiver's states it may arrive, and which state it may
//! move the receiver's copy to. Written once, here, and enforced by the
//! receiver for every step a partner node reports; the receiving window
//! takes in and forwards, the decision stays with the home authority.
//!
//! The sets of arrival states allow for the one race the protocol has: the
//! home node may answer a handoff before the window has stored the receipt
//! that moves its copy from `QUEUED` to `HANDED_OFF`.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{CaseEvent, CaseState, DeliveryMode, MailLeg, MailStatus};

/// Which end of a case a node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Side {
    /// The receiving window (county A): intake, form and identity checks,
    /// the materials leg, hand-out of results mailed to the window.
    Window,
    /// The home authority (county B): review decisions, paper received,
    /// the result leg, collection at home.
    Home,
}

impl Side {
    /// The other end.
    pub fn other(self) -> Self {
        match self {
            Self::Window => Self::Home,
            Self::Home => Self::Window,
        }
    }

    /// How messages name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Window => "receiving window",
            Self::Home => "home authority",
        }
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A reported step, with what the rules need to know about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    /// The step.
    pub event: CaseEvent,
    /// The mail leg, for `mail.sent` and `mail.event`.
    pub leg: Option<MailLeg>,
    /// The state the sender says the case moved to (None: it did not move).
    pub state: Option<CaseState>,
    /// The carrier status, for `mail.event`.
    pub status: Option<MailStatus>,
}

/// Why a reported step is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthorityError {
    /// The step is the other side's to report.
    #[error("{event} may be reported only by the {owner}'s node, not by the {from}'s")]
    WrongSide {
        /// The step (with its leg, if any).
        event: String,
        /// The side that owns it.
        owner: Side,
        /// The side that sent it.
        from: Side,
    },
    /// The step cannot happen while the case is in this state here.
    #[error("{event} cannot arrive while the case is {state} at the {at}")]
    WrongState {
        /// The step.
        event: String,
        /// This node's state of the case.
        state: CaseState,
        /// This node's side.
        at: Side,
    },
    /// The step cannot move the case to the state it names.
    #[error("{event} cannot move the case to {state}")]
    WrongTarget {
        /// The step.
        event: String,
        /// The state named.
        state: CaseState,
    },
    /// A mail step without its leg.
    #[error("{event} does not say which mail leg it concerns")]
    NoLeg {
        /// The step.
        event: String,
    },
}

impl Report {
    fn name(&self) -> String {
        match self.leg {
            Some(leg) => format!("{} ({leg} leg)", self.event),
            None => self.event.to_string(),
        }
    }

    /// The side whose node alone may report this step for a case in
    /// `state` at the receiver, delivered by `delivery`.
    pub fn owner(&self, state: CaseState, delivery: DeliveryMode) -> Result<Side, AuthorityError> {
        use CaseEvent::*;
        Ok(match self.event {
            ReviewAccepted | CorrectionRequested | SupplementReceived | PaperReceived
            | Approved | Denied | DueRecomputed => Side::Home,
            MailSent | MailEvent => match self.leg {
                Some(MailLeg::Materials) => Side::Window,
                Some(MailLeg::Result) => Side::Home,
                None => return Err(AuthorityError::NoLeg { event: self.name() }),
            },
            // A result mailed to the window is handed out there; everything
            // else (collected at home, a returned result) closes at home.
            Closed => {
                if delivery == DeliveryMode::MailWindow && state == CaseState::ReadyForPickup {
                    Side::Window
                } else {
                    Side::Home
                }
            }
        })
    }

    /// Whether the node of side `from` may report this step, for a case in
    /// `state` delivered by `delivery`. Besides the owner, the addressee of
    /// a result mailed to the window may confirm its delivery: the clerk
    /// holding the envelope says it arrived, which decides nothing.
    pub fn may_report(
        &self,
        from: Side,
        state: CaseState,
        delivery: DeliveryMode,
    ) -> Result<(), AuthorityError> {
        let owner = self.owner(state, delivery)?;
        let addressee_confirms = from == Side::Window
            && self.event == CaseEvent::MailEvent
            && self.leg == Some(MailLeg::Result)
            && self.status == Some(MailStatus::Delivered)
            && delivery == DeliveryMode::MailWindow;
        if from == owner || addressee_confirms {
            Ok(())
        } else {
            Err(AuthorityError::WrongSide {
                event: self.name(),
                owner,
                from,
            })
        }
    }

    /// Checks a step the node at the case's other end reported to this
    /// node, at `here`, whose copy of the case is in `state`.
    pub fn check(
        &self,
        here: Side,
        state: CaseState,
        delivery: DeliveryMode,
    ) -> Result<(), AuthorityError> {
        self.may_report(here.other(), state, delivery)?;
        if !self.may_arrive_in(state) {
            return Err(AuthorityError::WrongState {
                event: self.name(),
                state,
                at: here,
            });
        }
        if let Some(target) = self.state
            && target != state
            && !self.may_move_to(target)
        {
            return Err(AuthorityError::WrongTarget {
                event: self.name(),
                state: target,
            });
        }
        Ok(())
    }

    /// Whether the step can arrive while the receiver's copy is in `state`.
    fn may_arrive_in(&self, state: CaseState) -> bool {
        use CaseEvent as E;
        use CaseState as S;
        match (self.event, self.leg) {
            (E::ReviewAccepted, _) => matches!(state, S::Queued | S::HandedOff),
            (E::CorrectionRequested, _) => {
                matches!(state, S::Queued | S::HandedOff | S::UnderReview)
            }
            // The window may already hold the home node's state from the
            // receipt of its supplement.
            (E::SupplementReceived, _) => matches!(
                state,
                S::CorrectionRequested | S::HandedOff | S::UnderReview
            ),
            (E::PaperReceived, _) | (E::Denied, _) => matches!(
                state,
                S::Queued | S::HandedOff | S::UnderReview | S::CorrectionRequested
            ),
            (E::Approved, _) => state == S::UnderReview,
            // The written denial is mailed like a result.
            (E::MailSent, Some(MailLeg::Result)) => {
                matches!(state, S::Approved | S::Denied | S::MailReturned)
            }
            (E::MailEvent, Some(MailLeg::Result)) => matches!(
                state,
                S::ResultInTransit | S::ReadyForPickup | S::MailReturned | S::Closed
            ),
            // At home, where the paper originals go.
            (E::MailSent, _) => matches!(
                state,
                S::HandedOff | S::UnderReview | S::CorrectionRequested
            ),
            (E::MailEvent, _) => !matches!(state, S::CorrectionAtWindow | S::ReadyAtWindow),
            // A denial collected at home closes straight from DENIED.
            (E::Closed, _) => {
                matches!(state, S::MailReturned | S::ReadyForPickup | S::Denied)
            }
            // Dates counted again change no state and may cross any step
            // the window took meanwhile (a commitment stays open past an
            // approval, a hand-out may close the case before it arrives).
            (E::DueRecomputed, _) => true,
        }
    }

    /// Whether the step can move the receiver's copy to `target`.
    fn may_move_to(&self, target: CaseState) -> bool {
        use CaseEvent as E;
        use CaseState as S;
        match (self.event, self.leg) {
            (E::ReviewAccepted, _) => target == S::UnderReview,
            (E::CorrectionRequested, _) => target == S::CorrectionRequested,
            (E::SupplementReceived, _) => matches!(target, S::UnderReview | S::HandedOff),
            (E::Approved, _) => matches!(target, S::Approved | S::ReadyForPickup),
            (E::Denied, _) => target == S::Denied,
            (E::MailSent, Some(MailLeg::Result)) => target == S::ResultInTransit,
            (E::MailEvent, Some(MailLeg::Result)) => {
                matches!(target, S::Closed | S::ReadyForPickup | S::MailReturned)
            }
            (E::Closed, _) => target == S::Closed,
            // Paper received, the materials leg and dates counted again
            // never move the case.
            (E::PaperReceived, _)
            | (E::MailSent, _)
            | (E::MailEvent, _)
            | (E::DueRecomputed, _) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CaseState::*;
    use DeliveryMode::*;

    fn report(event: CaseEvent, leg: Option<MailLeg>, state: Option<CaseState>) -> Report {
        Report {
            event,
            leg,
            state,
            status: None,
        }
    }

    #[test]
    fn only_the_home_node_decides() {
        let approve = report(CaseEvent::Approved, None, Some(Approved));
        assert_eq!(
            approve.check(Side::Window, UnderReview, MailApplicant),
            Ok(())
        );
        let err = approve
            .check(Side::Home, UnderReview, MailApplicant)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "review.approved may be reported only by the home authority's node, not by the receiving window's"
        );
        for event in [
            CaseEvent::ReviewAccepted,
            CaseEvent::CorrectionRequested,
            CaseEvent::PaperReceived,
            CaseEvent::Denied,
            CaseEvent::DueRecomputed,
        ] {
            assert!(matches!(
                report(event, None, None).check(Side::Home, UnderReview, MailApplicant),
                Err(AuthorityError::WrongSide { .. })
            ));
        }
    }

    #[test]
    fn dates_counted_again_arrive_in_any_state_and_move_nothing() {
        let recount = report(CaseEvent::DueRecomputed, None, None);
        for state in [
            HandedOff,
            CorrectionRequested,
            Approved,
            ReadyForPickup,
            Closed,
        ] {
            assert_eq!(
                recount.check(Side::Window, state, MailWindow),
                Ok(()),
                "{state}"
            );
        }
        let moving = report(CaseEvent::DueRecomputed, None, Some(Approved));
        assert!(matches!(
            moving.check(Side::Window, UnderReview, MailApplicant),
            Err(AuthorityError::WrongTarget { .. })
        ));
    }

    #[test]
    fn legs_belong_to_their_side() {
        let materials = report(CaseEvent::MailSent, Some(MailLeg::Materials), None);
        assert_eq!(
            materials.check(Side::Home, UnderReview, MailApplicant),
            Ok(())
        );
        assert!(
            materials
                .check(Side::Window, UnderReview, MailApplicant)
                .is_err()
        );
        let result = report(
            CaseEvent::MailSent,
            Some(MailLeg::Result),
            Some(ResultInTransit),
        );
        assert_eq!(result.check(Side::Window, Approved, MailApplicant), Ok(()));
        assert!(result.check(Side::Home, Approved, MailApplicant).is_err());
        // The window confirms a result mailed to it arrived, nothing more.
        let mut arrived = report(
            CaseEvent::MailEvent,
            Some(MailLeg::Result),
            Some(ReadyForPickup),
        );
        arrived.status = Some(MailStatus::Delivered);
        assert_eq!(
            arrived.check(Side::Home, ResultInTransit, MailWindow),
            Ok(())
        );
        assert!(
            arrived
                .check(Side::Home, ResultInTransit, MailApplicant)
                .is_err()
        );
        arrived.status = Some(MailStatus::Returned);
        assert!(
            arrived
                .check(Side::Home, ResultInTransit, MailWindow)
                .is_err()
        );
        assert!(matches!(
            report(CaseEvent::MailEvent, None, None).check(Side::Window, Approved, MailApplicant),
            Err(AuthorityError::NoLeg { .. })
        ));
    }

    #[test]
    fn steps_in_impossible_states_or_to_wrong_states_are_refused() {
        let err = report(CaseEvent::Approved, None, Some(Approved))
            .check(Side::Window, Closed, MailApplicant)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "review.approved cannot arrive while the case is CLOSED at the receiving window"
        );
        // A materials leg that claims to approve the case.
        let err = report(
            CaseEvent::MailSent,
            Some(MailLeg::Materials),
            Some(Approved),
        )
        .check(Side::Home, UnderReview, MailApplicant)
        .unwrap_err();
        assert!(matches!(err, AuthorityError::WrongTarget { .. }), "{err}");
        assert!(
            report(CaseEvent::ReviewAccepted, None, Some(Denied))
                .check(Side::Window, HandedOff, MailApplicant)
                .is_err()
        );
    }

    #[test]
    fn a_case_closes_where_its_result_is_handed_out() {
        let closed = report(CaseEvent::Closed, None, Some(Closed));
        // Mailed to the window and arrived: the window hands it out.
        assert_eq!(closed.check(Side::Home, ReadyForPickup, MailWindow), Ok(()));
        assert!(
            closed
                .check(Side::Window, ReadyForPickup, MailWindow)
                .is_err()
        );
        // Collected at home, or returned and collected there.
        assert_eq!(
            closed.check(Side::Window, ReadyForPickup, CollectHome),
            Ok(())
        );
        assert_eq!(closed.check(Side::Window, MailReturned, MailWindow), Ok(()));
        assert!(closed.check(Side::Home, MailReturned, MailWindow).is_err());
        assert!(
            closed
                .check(Side::Window, UnderReview, CollectHome)
                .is_err()
        );
    }

    #[test]
    fn a_denial_is_delivered_like_a_result() {
        // Mailed from DENIED, by the home node only.
        let sent = report(
            CaseEvent::MailSent,
            Some(MailLeg::Result),
            Some(ResultInTransit),
        );
        for delivery in [MailApplicant, MailWindow] {
            assert_eq!(sent.check(Side::Window, Denied, delivery), Ok(()));
            assert!(matches!(
                sent.check(Side::Home, Denied, delivery),
                Err(AuthorityError::WrongSide { .. })
            ));
        }
        // Collected at home: closed straight from DENIED, by the home node.
        let closed = report(CaseEvent::Closed, None, Some(Closed));
        assert_eq!(closed.check(Side::Window, Denied, CollectHome), Ok(()));
        assert!(matches!(
            closed.check(Side::Home, Denied, CollectHome),
            Err(AuthorityError::WrongSide { .. })
        ));
        // A denial cannot be approved afterwards.
        assert!(matches!(
            report(CaseEvent::Approved, None, Some(Approved)).check(
                Side::Window,
                Denied,
                MailApplicant
            ),
            Err(AuthorityError::WrongState { .. })
        ));
    }
}
