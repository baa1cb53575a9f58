//! `tongban window`: the clerk's commands at the receiving window, and the
//! values they take (identity check method, delivery mode, case state).

use clap::{Args, Subcommand, ValueEnum};

#[derive(Debug, Subcommand)]
pub(crate) enum WindowCommand {
    /// Take in an application.
    #[command(
        after_help = "Example: tongban window apply --item GT-0001 --home 610113 --delivery mail-applicant --person-name 张三 --person-id 11010519491231002X --phone 13812345678 --address 汉中市汉台区 --material id-card=scan.jpg"
    )]
    Apply(ApplyArgs),
    /// Add materials to a case.
    #[command(
        after_help = "Example: tongban window attach 610702-20261201-1 --material premises-proof=lease.pdf"
    )]
    Attach {
        /// Case number.
        case: String,
        /// KIND=PATH (repeatable).
        #[arg(long = "material", required = true)]
        materials: Vec<String>,
    },
    /// Record the identity check.
    #[command(
        after_help = "Example: tongban window verify-identity 610702-20261201-1 --method face"
    )]
    VerifyIdentity {
        /// Case number.
        case: String,
        /// How the applicant's identity was checked.
        #[arg(long, value_enum)]
        method: IdMethod,
    },
    /// Accept a complete case and queue its handoff; prints the intake receipt.
    /// With --commitment-*, first records the applicant's signed commitment
    /// (告知承诺) to supply missing waivable materials (容缺受理).
    #[command(
        after_help = "Examples: tongban window accept 610702-20261201-1\n  tongban window accept 610702-20261201-1 --commitment-signer 张三 --commitment-kinds marriage-certificate --commitment-days 10"
    )]
    Accept {
        /// Case number.
        case: String,
        /// Who signed the commitment (the applicant or the company's representative).
        #[arg(long, requires_all = ["commitment_kinds", "commitment_days"])]
        commitment_signer: Option<String>,
        /// The missing material kinds committed, comma-separated; each must be waivable.
        #[arg(long, value_delimiter = ',', requires = "commitment_signer")]
        commitment_kinds: Vec<String>,
        /// Working days from today to the deadline (at least 1; holidays of the directory's calendar do not count).
        #[arg(long, allow_negative_numbers = true, requires = "commitment_signer")]
        commitment_days: Option<i64>,
    },
    /// Record the video consultation with the home authority (异地视频会商)
    /// that items taken in by video consultation need before acceptance.
    #[command(
        after_help = "Example: tongban window consult 610702-20261201-1 --at 2026-12-01T10:00:00+08:00 --reviewer spiffe://shaanxi.tongban/county/610113/reviewer/li --outcome \"materials agreed; storage plan to follow\""
    )]
    Consult {
        /// Case number.
        case: String,
        /// When it took place (RFC 3339).
        #[arg(long)]
        at: String,
        /// The home authority's reviewer: a SPIFFE ID or a name.
        #[arg(long)]
        reviewer: String,
        /// What was agreed.
        #[arg(long)]
        outcome: String,
    },
    /// Deliver committed materials (告知承诺) after acceptance; they go to the
    /// home authority at once.
    #[command(
        after_help = "Example: tongban window supply 610702-20261201-1 --material marriage-certificate=cert.pdf"
    )]
    Supply {
        /// Case number.
        case: String,
        /// KIND=PATH (repeatable), committed kinds only.
        #[arg(long = "material", required = true)]
        materials: Vec<String>,
    },
    /// Send the supplement of a correction request.
    #[command(after_help = "Example: tongban window resubmit 610702-20261201-1")]
    Resubmit {
        /// Case number.
        case: String,
    },
    /// Hand the result out and close the case.
    #[command(
        after_help = "Example: tongban window handout 610702-20261201-1 --to-id 11010519491231002X"
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
        after_help = "Example: tongban window material 610702-20261201-1 id-card --out id-card.png"
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
    #[command(after_help = "Example: tongban window status 610702-20261201-1")]
    Status {
        /// Case number.
        case: String,
    },
    /// Cases taken in at this window.
    #[command(
        after_help = "Example: tongban window list --state QUEUED --limit 20\n         tongban window list --state QUEUED --limit 20 --page-token TOKEN   (the next page, as the previous one said)"
    )]
    List {
        /// Only cases in this state.
        #[arg(long, value_enum, ignore_case = true)]
        state: Option<CaseState>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// Start after the previous page: the token that page printed (or its
        /// `next_page_token` with `--json`), with the same --state.
        #[arg(long, value_name = "TOKEN")]
        page_token: Option<String>,
    },
    /// Cases past their promised date.
    #[command(after_help = "Example: tongban window overdue --json")]
    Overdue,
    /// Send again this case's parked handoffs (after fixing the cause).
    #[command(after_help = "Example: tongban window retry 610702-20261201-1")]
    Retry {
        /// Case number.
        case: String,
    },
}

#[derive(Debug, Args)]
pub(crate) struct ApplyArgs {
    /// Item code from the directory, e.g. GT-0001.
    #[arg(long)]
    pub(crate) item: String,
    /// Home county code.
    #[arg(long)]
    pub(crate) home: String,
    /// How the result reaches the applicant.
    #[arg(long, value_enum)]
    pub(crate) delivery: Delivery,
    /// Applicant's name (a person).
    #[arg(long, requires = "person_id", conflicts_with = "company_name")]
    pub(crate) person_name: Option<String>,
    /// Applicant's resident ID.
    #[arg(long, requires = "person_name")]
    pub(crate) person_id: Option<String>,
    /// Company name.
    #[arg(long, requires_all = ["credit_code", "legal_rep", "legal_rep_id"])]
    pub(crate) company_name: Option<String>,
    /// Unified social credit code.
    #[arg(long)]
    pub(crate) credit_code: Option<String>,
    /// Legal representative's name.
    #[arg(long)]
    pub(crate) legal_rep: Option<String>,
    /// Legal representative's resident ID.
    #[arg(long)]
    pub(crate) legal_rep_id: Option<String>,
    /// Contact phone.
    #[arg(long)]
    pub(crate) phone: String,
    /// Postal address.
    #[arg(long)]
    pub(crate) address: String,
    /// KIND=PATH (repeatable).
    #[arg(long = "material")]
    pub(crate) materials: Vec<String>,
}

/// How an applicant's identity was checked at the window.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum IdMethod {
    /// The resident ID card's chip, read by a card reader.
    IdCardReader,
    /// Face comparison against the ID photo.
    Face,
    /// Checked by the clerk by hand.
    Manual,
}

/// How the result reaches the applicant.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum Delivery {
    /// Mailed to the applicant.
    MailApplicant,
    /// Mailed to the receiving window, collected there.
    MailWindow,
    /// Collected at the home authority.
    CollectHome,
}

/// A case state, as docs/cli.md names it.
#[derive(Debug, Clone, Copy, ValueEnum)]
#[value(rename_all = "SCREAMING_SNAKE_CASE")]
pub(crate) enum CaseState {
    /// Materials missing at intake.
    CorrectionAtWindow,
    /// Complete, identity checked, not yet accepted.
    ReadyAtWindow,
    /// Accepted at the window, handoff not yet receipted.
    Queued,
    /// The home node's receipt is held.
    HandedOff,
    /// Accepted at home.
    UnderReview,
    /// The reviewer asked for a correction.
    CorrectionRequested,
    /// Approved.
    Approved,
    /// Denied.
    Denied,
    /// The result is in the post.
    ResultInTransit,
    /// The result waits at a window.
    ReadyForPickup,
    /// The post returned the result.
    MailReturned,
    /// Handed out.
    Closed,
}
