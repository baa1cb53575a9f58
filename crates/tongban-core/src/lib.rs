//! The tongban domain, with no I/O: identifier codes and their validation,
//! the federation directory, the case state machine, working-day arithmetic
//! over the published holiday calendar, size limits and the check on free
//! text.
//!
//! Everything here is pure: callers read files and clocks and pass text and
//! dates in, which keeps this crate fast to test and safe to share between
//! the node, the ledger and the CLI.

#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod authority;
pub mod calendar;
pub mod codes;
pub mod commitment;
pub mod directory;
pub mod event;
pub mod filetype;
pub mod limits;
pub mod mail;
pub mod refusal;
pub mod state;
pub mod text;

pub use authority::{AuthorityError, Report, Side};
pub use calendar::Calendar;
pub use codes::{
    CaseNo, CodeError, CountyCode, CreditCode, ItemCode, Phone, ResidentId, Waybill, mask_id,
    mask_phone,
};
pub use commitment::{Commitment, CommitmentError};
pub use directory::{
    Agreement, County, DeliveryMode, Directory, DirectoryError, IntakeMode, Item, MaterialSpec,
};
pub use event::{CaseEvent, UnknownEvent};
pub use limits::{DEFAULT_MAX_CASE_BYTES, DEFAULT_MAX_MATERIAL_BYTES};
pub use mail::{MailLeg, MailStatus, MailTo, UnknownValue};
pub use refusal::{Reason, Refusal};
pub use state::{CaseState, StateError, window_state};
pub use text::{TextError, free_text, optional_text};
