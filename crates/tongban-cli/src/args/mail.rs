//! `tongban mail`: tracked post on either side, and its leg and carrier
//! event values.

use clap::{Subcommand, ValueEnum};

#[derive(Debug, Subcommand)]
pub(crate) enum MailCommand {
    /// Record a leg as sent.
    #[command(
        after_help = "Example: tongban mail send 610702-20261201-1 --leg result --carrier EMS --waybill EA473124829CN"
    )]
    Send {
        /// Case number.
        case: String,
        /// materials (paper originals to home) or result (result back).
        #[arg(long, value_enum)]
        leg: Leg,
        /// Carrier name, e.g. EMS.
        #[arg(long)]
        carrier: String,
        /// Waybill number (UPU S10 like EA473124829CN, or 13 digits).
        #[arg(long)]
        waybill: String,
    },
    /// Record a carrier event.
    #[command(
        after_help = "Example: tongban mail event --waybill EA473124829CN --status in-transit --note 'arrived at Xi an'"
    )]
    Event {
        /// Waybill number.
        #[arg(long)]
        waybill: String,
        /// What happened to the item.
        #[arg(long, value_enum)]
        status: MailStatus,
        /// RFC 3339 time of the event (default: now).
        #[arg(long)]
        at: Option<String>,
        /// Carrier's note.
        #[arg(long)]
        note: Option<String>,
    },
}

/// A mail leg.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum Leg {
    /// The paper originals, from the window to the home authority.
    Materials,
    /// The result, from the home authority to the applicant or the window.
    Result,
}

/// A carrier's event for a waybill.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum MailStatus {
    /// Handed to the carrier.
    Posted,
    /// On its way.
    InTransit,
    /// Delivered.
    Delivered,
    /// Returned to the sender.
    Returned,
    /// Lost by the carrier.
    Lost,
}
