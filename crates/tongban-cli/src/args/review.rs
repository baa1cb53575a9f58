//! `tongban review`: the reviewer's commands at the home authority.

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub(crate) enum ReviewCommand {
    /// Cases handed to this county, oldest first, with working days left.
    #[command(
        after_help = "Example: tongban review inbox --limit 20\n         tongban review inbox --limit 20 --page-token TOKEN   (the next page, as the previous one said)"
    )]
    Inbox {
        /// At most this many per page.
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// Start after the previous page: the token that page printed (or its
        /// `next_page_token` with `--json`).
        #[arg(long, value_name = "TOKEN")]
        page_token: Option<String>,
    },
    /// Accept a case for review (受理); starts the promised-time clock.
    #[command(after_help = "Example: tongban review accept 610702-20261201-1")]
    Accept {
        /// Case number.
        case: String,
    },
    /// Ask for a correction naming everything needed at once (一次性补正).
    #[command(
        after_help = "Example: tongban review correct 610702-20261201-1 --need 'premises-proof:the lease is not signed' --deadline 5"
    )]
    Correct {
        /// Case number.
        case: String,
        /// KIND:REASON (repeatable).
        #[arg(long = "need", required = true)]
        needs: Vec<String>,
        /// Working days the applicant has (default: the node's policy).
        #[arg(long)]
        deadline: Option<u32>,
    },
    /// Record that the paper originals arrived.
    #[command(after_help = "Example: tongban review paper-received 610702-20261201-1")]
    PaperReceived {
        /// Case number.
        case: String,
    },
    /// Approve with the result document.
    #[command(
        after_help = "Example: tongban review approve 610702-20261201-1 --result licence.pdf --licence-no 610113600012345"
    )]
    Approve {
        /// Case number.
        case: String,
        /// The result document (licence, certificate, decision).
        #[arg(long)]
        result: std::path::PathBuf,
        /// Licence or certificate number.
        #[arg(long)]
        licence_no: Option<String>,
    },
    /// Deny with a reason.
    #[command(
        after_help = "Example: tongban review deny 610702-20261201-1 --reason 'the premises are not commercial'"
    )]
    Deny {
        /// Case number.
        case: String,
        /// The reason given to the applicant.
        #[arg(long)]
        reason: String,
    },
    /// Hand the result out at the home authority and close the case.
    #[command(
        after_help = "Example: tongban review handout 610702-20261201-1 --to-id 11010519491231002X"
    )]
    Handout {
        /// Case number.
        case: String,
        /// ID number of the person collecting.
        #[arg(long)]
        to_id: String,
    },
    /// Save one material of a case to a file, checked against its SHA-256.
    #[command(
        after_help = "Example: tongban review material 610702-20261201-1 business-licence --out licence.pdf"
    )]
    Material {
        /// Case number.
        case: String,
        /// Material kind (see the case's materials in `status`), or `result` for the
        /// approval's result document once the case is approved.
        kind: String,
        /// The file to write; refused if it exists, unless --force.
        #[arg(long)]
        out: std::path::PathBuf,
        /// Overwrite --out if it exists.
        #[arg(long)]
        force: bool,
    },
    /// One case with its history.
    #[command(after_help = "Example: tongban review status 610702-20261201-1 --json")]
    Status {
        /// Case number.
        case: String,
    },
    /// Cases past their promised date, and mail legs in transit too long.
    #[command(after_help = "Example: tongban review overdue")]
    Overdue,
    /// Send again this case's parked reports (after fixing the cause).
    #[command(after_help = "Example: tongban review retry 610702-20261201-1")]
    Retry {
        /// Case number.
        case: String,
    },
}
