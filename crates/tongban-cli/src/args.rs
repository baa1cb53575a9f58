//! The command line, as docs/cli.md names it for users.

// Parsed once per process; boxing variants would only obscure the definitions.
#![allow(clippy::large_enum_variant)]

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// tongban: cross-region joint handling of government applications (跨域通办)
/// between county nodes over mutual TLS.
#[derive(Debug, Parser)]
#[command(name = "tongban", version, about, propagate_version = true)]
pub(crate) struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub(crate) log_format: LogFormat,
    /// Log filter (tracing env-filter syntax), e.g. `info` or `tongban_node=debug`.
    #[arg(long, global = true, env = "TONGBAN_LOG", default_value = "info")]
    pub(crate) log_level: String,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Log output format.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Issue and inspect federation certificates.
    #[command(subcommand)]
    Certs(CertsCommand),
    /// Run a county node.
    Node {
        /// The node's config file (TOML).
        #[arg(long)]
        config: PathBuf,
    },
    /// Window clerk commands (receiving county).
    Window {
        #[command(flatten)]
        conn: ConnArgs,
        #[command(subcommand)]
        command: WindowCommand,
    },
    /// Reviewer commands (home authority).
    Review {
        #[command(flatten)]
        conn: ConnArgs,
        #[command(subcommand)]
        command: ReviewCommand,
    },
    /// Auditor commands: trace a case across counties, verify ledgers, export evidence.
    Audit {
        #[command(flatten)]
        auth: AuditAuth,
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Tracked post, on either side.
    Mail {
        #[command(flatten)]
        conn: ConnArgs,
        #[command(subcommand)]
        command: MailCommand,
    },
    /// Run a whole local federation for trying tongban: creates (or reuses)
    /// a CA, certificates, configs and client profiles in DIR, starts three
    /// county nodes on loopback, runs a sample case to CLOSED, prints its
    /// trace and the commands to try by hand, and serves until Ctrl-C.
    Dev {
        /// Directory of the federation (certificates, configs, profiles, data).
        #[arg(long, default_value = "tongban-dev")]
        dir: PathBuf,
        /// The nodes listen on 127.0.0.1 at this port and the next two.
        #[arg(long, default_value_t = 7001)]
        base_port: u16,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ReviewCommand {
    /// Cases handed to this county, oldest first, with working days left.
    Inbox,
    /// Accept a case for review (受理); starts the promised-time clock.
    Accept {
        /// Case number.
        case: String,
    },
    /// Ask for a correction naming everything needed at once (一次性补正).
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
    PaperReceived {
        /// Case number.
        case: String,
    },
    /// Approve with the result document.
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
    Deny {
        /// Case number.
        case: String,
        /// The reason given to the applicant.
        #[arg(long)]
        reason: String,
    },
    /// Hand the result out at the home authority and close the case.
    Handout {
        /// Case number.
        case: String,
        /// ID number of the person collecting.
        #[arg(long)]
        to_id: String,
    },
    /// One case with its history.
    Status {
        /// Case number.
        case: String,
    },
    /// Cases past their promised date, and mail legs in transit too long.
    Overdue,
    /// Send again this case's parked reports (after fixing the cause).
    Retry {
        /// Case number.
        case: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum MailCommand {
    /// Record a leg as sent.
    Send {
        /// Case number.
        case: String,
        /// materials (paper originals to home) or result (result back).
        #[arg(long)]
        leg: String,
        /// Carrier name, e.g. EMS.
        #[arg(long)]
        carrier: String,
        /// Waybill number (UPU S10 like EA473124829CN, or 13 digits).
        #[arg(long)]
        waybill: String,
    },
    /// Record a carrier event.
    Event {
        /// Waybill number.
        #[arg(long)]
        waybill: String,
        /// posted, in-transit, delivered, returned or lost.
        #[arg(long)]
        status: String,
        /// RFC 3339 time of the event (default: now).
        #[arg(long)]
        at: Option<String>,
        /// Carrier's note.
        #[arg(long)]
        note: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum CertsCommand {
    /// Create the federation CA (ca.crt, ca.key).
    CreateCa {
        /// Directory to write into.
        #[arg(long)]
        dir: PathBuf,
        /// SPIFFE trust domain, e.g. shaanxi.tongban.
        #[arg(long)]
        trust_domain: String,
        /// Validity in days.
        #[arg(long, default_value_t = 3650)]
        days: u32,
        /// Replace existing files.
        #[arg(long)]
        overwrite: bool,
    },
    /// Issue a node certificate (node-CODE.crt, node-CODE.key).
    CreateNode {
        /// Directory holding ca.crt and ca.key; the certificate is written there.
        #[arg(long)]
        dir: PathBuf,
        /// GB/T 2260 county code.
        #[arg(long)]
        county: String,
        /// DNS name or IP address the node serves on (repeatable).
        #[arg(long = "host", required = true)]
        hosts: Vec<String>,
        /// Validity in days.
        #[arg(long, default_value_t = 365)]
        days: u32,
        /// Replace existing files.
        #[arg(long)]
        overwrite: bool,
    },
    /// Issue a clerk or reviewer certificate (ROLE-CODE-NAME.crt/.key).
    CreateUser {
        /// Directory holding ca.crt and ca.key.
        #[arg(long)]
        dir: PathBuf,
        /// GB/T 2260 county code.
        #[arg(long)]
        county: String,
        /// clerk or reviewer.
        #[arg(long, value_enum)]
        role: UserRole,
        /// The person's name (letters, digits, '.', '-', '_').
        #[arg(long)]
        name: String,
        /// Validity in days.
        #[arg(long, default_value_t = 365)]
        days: u32,
        /// Replace existing files.
        #[arg(long)]
        overwrite: bool,
    },
    /// Issue an auditor certificate (auditor-NAME or auditor-CODE-NAME).
    CreateAuditor {
        /// Directory holding ca.crt and ca.key.
        #[arg(long)]
        dir: PathBuf,
        /// The auditor's name.
        #[arg(long)]
        name: String,
        /// Limit the auditor to one county (omit for province-wide).
        #[arg(long)]
        county: Option<String>,
        /// Validity in days.
        #[arg(long, default_value_t = 365)]
        days: u32,
        /// Replace existing files.
        #[arg(long)]
        overwrite: bool,
    },
    /// List the certificates in a directory with their identity, expiry and problems.
    List {
        /// The directory.
        #[arg(long)]
        dir: PathBuf,
        /// One JSON document on stdout.
        #[arg(long)]
        json: bool,
    },
}

/// A user role.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum UserRole {
    /// Window clerk.
    Clerk,
    /// Home-authority reviewer.
    Reviewer,
}

/// How a client reaches its node: flags, a profile file, or TONGBAN_PROFILE.
#[derive(Debug, Clone, Args)]
pub(crate) struct ConnArgs {
    /// Node URL, e.g. https://127.0.0.1:7001.
    #[arg(long, global = true)]
    pub(crate) node: Option<String>,
    /// Federation CA certificate.
    #[arg(long, global = true)]
    pub(crate) ca: Option<PathBuf>,
    /// Your certificate.
    #[arg(long, global = true)]
    pub(crate) cert: Option<PathBuf>,
    /// Your key.
    #[arg(long, global = true)]
    pub(crate) key: Option<PathBuf>,
    /// A TOML profile with node, ca, cert, key.
    #[arg(long, global = true, env = "TONGBAN_PROFILE")]
    pub(crate) profile: Option<PathBuf>,
    /// One JSON document on stdout instead of human output.
    #[arg(long, global = true)]
    pub(crate) json: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum WindowCommand {
    /// Take in an application.
    Apply(ApplyArgs),
    /// Add materials to a case.
    Attach {
        /// Case number.
        case: String,
        /// KIND=PATH (repeatable).
        #[arg(long = "material", required = true)]
        materials: Vec<String>,
    },
    /// Record the identity check.
    VerifyIdentity {
        /// Case number.
        case: String,
        /// id-card-reader, face or manual.
        #[arg(long)]
        method: String,
    },
    /// Accept a complete case and queue its handoff; prints the intake receipt.
    Accept {
        /// Case number.
        case: String,
    },
    /// Send the supplement of a correction request.
    Resubmit {
        /// Case number.
        case: String,
    },
    /// Hand the result out and close the case.
    Handout {
        /// Case number.
        case: String,
        /// ID number of the person collecting.
        #[arg(long)]
        to_id: String,
    },
    /// One case with its history.
    Status {
        /// Case number.
        case: String,
    },
    /// Cases taken in at this window.
    List {
        /// Only this state (e.g. QUEUED).
        #[arg(long)]
        state: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Cases past their promised date.
    Overdue,
    /// Send again this case's parked handoffs (after fixing the cause).
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
    /// mail-applicant, mail-window or collect-home.
    #[arg(long)]
    pub(crate) delivery: String,
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

/// The auditor's credentials (the node URLs are given per command).
#[derive(Debug, Clone, Args)]
pub(crate) struct AuditAuth {
    /// Federation CA certificate.
    #[arg(long, global = true)]
    pub(crate) ca: Option<PathBuf>,
    /// Your auditor certificate.
    #[arg(long, global = true)]
    pub(crate) cert: Option<PathBuf>,
    /// Your key.
    #[arg(long, global = true)]
    pub(crate) key: Option<PathBuf>,
    /// A TOML profile with ca, cert, key (its node is not used).
    #[arg(long, global = true, env = "TONGBAN_PROFILE")]
    pub(crate) profile: Option<PathBuf>,
    /// One JSON document on stdout instead of human output.
    #[arg(long, global = true)]
    pub(crate) json: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum AuditCommand {
    /// Trace one case across the nodes it touched and verify everything.
    Trace {
        /// Case number.
        case: String,
        /// A node's URL (repeatable: every county the case touched).
        #[arg(long = "node", required = true)]
        nodes: Vec<String>,
        /// Also write the timeline as a self-contained HTML page.
        #[arg(long)]
        html: Option<PathBuf>,
        /// Show personal data unmasked (province auditors; recorded by the nodes).
        #[arg(long)]
        reveal: bool,
    },
    /// Verify a node's whole ledger against its signed checkpoint.
    Verify {
        /// The node's URL.
        #[arg(long)]
        node: String,
    },
    /// Write the evidence of one case (entries, receipts, checkpoints,
    /// certificates) to a bundle that verify-bundle checks offline.
    Export {
        /// Case number.
        case: String,
        /// A node's URL (repeatable).
        #[arg(long = "node", required = true)]
        nodes: Vec<String>,
        /// The bundle file to write.
        #[arg(long)]
        out: PathBuf,
        /// Include personal data unmasked (province auditors; recorded).
        #[arg(long)]
        reveal: bool,
    },
    /// Verify an exported bundle with no network.
    VerifyBundle {
        /// The bundle file.
        file: PathBuf,
        /// Also write the timeline as HTML.
        #[arg(long)]
        html: Option<PathBuf>,
    },
}
