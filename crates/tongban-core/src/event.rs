//! The steps of a case that one node reports to the other (`CaseUpdate`
//! events on the wire), as a closed set: a name that is not here is refused
//! where it is parsed, and every `match` over them is exhaustive.

use std::fmt;
use std::str::FromStr;

/// A step of a case reported to the node at its other end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CaseEvent {
    /// The home authority accepted the case for review (受理).
    ReviewAccepted,
    /// The home authority asked for corrections (一次性补正).
    CorrectionRequested,
    /// The home node took in the supplement of a correction request.
    SupplementReceived,
    /// The paper originals arrived at the home authority.
    PaperReceived,
    /// The home authority approved the case.
    Approved,
    /// The home authority denied the case.
    Denied,
    /// A postal leg was sent.
    MailSent,
    /// A carrier reported an event on a postal leg.
    MailEvent,
    /// The result was handed out (or delivered) and the case closed.
    Closed,
    /// The home authority counted the case's running dates again with a
    /// new holiday calendar (its promise, an open correction's deadline, a
    /// commitment's deadline) and some moved.
    DueRecomputed,
}

/// A name that is not a [`CaseEvent`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a case event this node knows (one of {names})", names = CaseEvent::names())]
pub struct UnknownEvent(pub String);

impl CaseEvent {
    /// Every event, in the order of a case's life.
    pub const ALL: [CaseEvent; 10] = [
        Self::ReviewAccepted,
        Self::CorrectionRequested,
        Self::SupplementReceived,
        Self::PaperReceived,
        Self::Approved,
        Self::Denied,
        Self::MailSent,
        Self::MailEvent,
        Self::Closed,
        Self::DueRecomputed,
    ];

    /// The wire name (`review.approved`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ReviewAccepted => "review.accepted",
            Self::CorrectionRequested => "review.correction-requested",
            Self::SupplementReceived => "review.supplement-received",
            Self::PaperReceived => "review.paper-received",
            Self::Approved => "review.approved",
            Self::Denied => "review.denied",
            Self::MailSent => "mail.sent",
            Self::MailEvent => "mail.event",
            Self::Closed => "case.closed",
            Self::DueRecomputed => "case.due-recomputed",
        }
    }

    fn names() -> String {
        Self::ALL.map(|e| e.as_str()).join(", ")
    }
}

impl fmt::Display for CaseEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CaseEvent {
    type Err = UnknownEvent;
    fn from_str(s: &str) -> Result<Self, UnknownEvent> {
        Self::ALL
            .into_iter()
            .find(|e| e.as_str() == s)
            .ok_or_else(|| UnknownEvent(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_exactly() {
        for e in CaseEvent::ALL {
            assert_eq!(e.as_str().parse::<CaseEvent>().unwrap(), e);
        }
        let err = "review.Approved".parse::<CaseEvent>().unwrap_err();
        assert!(err.to_string().contains("review.approved"), "{err}");
        assert!("".parse::<CaseEvent>().is_err());
    }
}
