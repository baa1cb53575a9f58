//! The postal side of a case (两地专窗互相寄件, 邮寄送达): which leg a mailing
//! is and what a carrier says happened to it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A name that is not one of a closed set of values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}: {value:?} is not one of {allowed}")]
pub struct UnknownValue {
    /// What was being parsed.
    pub what: &'static str,
    /// The text given.
    pub value: String,
    /// The values allowed, comma-separated.
    pub allowed: String,
}

/// Implements `as_str`, `Display` and `FromStr` for a closed set of names.
macro_rules! named {
    ($ty:ident, $what:literal, [$($variant:ident => $name:literal),+ $(,)?]) => {
        impl $ty {
            /// Every value.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            /// The wire and CLI name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $name),+
                }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $ty {
            type Err = UnknownValue;
            fn from_str(s: &str) -> Result<Self, UnknownValue> {
                Self::ALL.iter().copied().find(|v| v.as_str() == s).ok_or_else(|| UnknownValue {
                    what: $what,
                    value: s.to_owned(),
                    allowed: Self::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", "),
                })
            }
        }
    };
}

/// Which way a mailing goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MailLeg {
    /// The paper originals, from the receiving window to the home authority.
    Materials,
    /// The result (or the written denial), from the home authority.
    Result,
}

named!(MailLeg, "leg", [Materials => "materials", Result => "result"]);

/// What a carrier reports of a mailing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MailStatus {
    /// Handed to the carrier.
    Posted,
    /// On its way.
    InTransit,
    /// Delivered to the addressee.
    Delivered,
    /// Sent back to the sender.
    Returned,
    /// Lost by the carrier.
    Lost,
}

named!(MailStatus, "status", [
    Posted => "posted",
    InTransit => "in-transit",
    Delivered => "delivered",
    Returned => "returned",
    Lost => "lost",
]);

impl MailStatus {
    /// Whether the mailing is over (nothing more will happen to it).
    pub fn is_final(self) -> bool {
        matches!(self, Self::Delivered | Self::Returned | Self::Lost)
    }
}

/// Who a mailing is addressed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MailTo {
    /// The home authority (the paper originals).
    Home,
    /// The applicant's address (delivery `mail-applicant`).
    Applicant,
    /// The receiving window (delivery `mail-window`).
    Window,
}

named!(MailTo, "addressee", [Home => "home", Applicant => "applicant", Window => "window"]);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_exactly_and_refusals_list_the_values() {
        for s in MailStatus::ALL {
            assert_eq!(s.as_str().parse::<MailStatus>().unwrap(), *s);
        }
        assert_eq!("result".parse::<MailLeg>().unwrap(), MailLeg::Result);
        let err = "paper".parse::<MailLeg>().unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"leg: "paper" is not one of materials, result"#
        );
        assert!("Delivered".parse::<MailStatus>().is_err());
        assert_eq!(
            serde_json::to_string(&MailStatus::InTransit).unwrap(),
            "\"in-transit\""
        );
    }
}
