//! The command line, as docs/cli.md names it for users.

// Parsed once per process; boxing variants would only obscure the definitions.
#![allow(clippy::large_enum_variant)]

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// The help heading of the flags that say how to reach a node.
const CONNECTION: &str = "Connection";
/// The help heading of the logging flags.
const LOGGING: &str = "Logging";

/// The name a value has on the command line, which is also its name on the
/// wire (`mail-applicant`, `in-transit`, `QUEUED`).
pub(crate) fn wire<T: ValueEnum>(value: &T) -> String {
    value
        .to_possible_value()
        .map(|v| v.get_name().to_owned())
        .unwrap_or_default()
}

/// `tongban 0.1.0 (COMMIT)`: the commit is read by build.rs, or `unknown`.
const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("TONGBAN_COMMIT"), ")");

/// tongban: cross-region joint handling of government applications (跨域通办)
/// between county nodes over mutual TLS.
#[derive(Debug, Parser)]
#[command(
    name = "tongban",
    version = VERSION,
    about,
    propagate_version = true,
    after_help = "Exit codes: 0 ok, 1 refused or failed, 2 usage, 64 bad configuration or profile.\n\
                  Example: tongban window status 610702-20261201-1 --profile clerk.toml"
)]
pub(crate) struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, help_heading = LOGGING)]
    pub(crate) log_format: LogFormat,
    /// Log filter (tracing env-filter syntax), e.g. `info` or `tongban_node=debug`.
    #[arg(long, global = true, env = "TONGBAN_LOG", default_value = "info", help_heading = LOGGING)]
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
    #[command(
        subcommand,
        after_help = "Example: tongban certs create-ca --dir certs --trust-domain shaanxi.tongban"
    )]
    Certs(CertsCommand),
    /// Run a county node (or, with it stopped, re-issue a receipt).
    #[command(after_help = "Example: tongban node --config /etc/tongban/node.toml\n\
        Re-issue a bad receipt (node stopped): tongban node --config node.toml \\\n  \
        --reissue-receipt 0193a5c2-7d4e-7c1a-9f00-6a2b9d1e4f10 --from 610702")]
    Node {
        /// The node's config file (TOML).
        #[arg(long)]
        config: PathBuf,
        /// Only check the config, directory, certificates and data dir;
        /// print every problem; exit 0 (warnings allowed) or 64.
        #[arg(long)]
        check: bool,
        /// Instead of serving: re-issue this node's receipt for the handoff
        /// with this id, dated now (the node must be stopped; the sender's
        /// `retry` then gets the new receipt).
        #[arg(long, value_name = "HANDOFF_ID", requires = "from")]
        reissue_receipt: Option<String>,
        /// The county that sent the handoff (with --reissue-receipt).
        #[arg(long, value_name = "COUNTY", requires = "reissue_receipt")]
        from: Option<String>,
    },
    /// Window clerk commands (receiving county).
    #[command(after_help = "Example: tongban window list --state QUEUED --profile clerk.toml")]
    Window {
        #[command(flatten)]
        conn: ConnArgs,
        #[command(subcommand)]
        command: WindowCommand,
    },
    /// Reviewer commands (home authority).
    #[command(after_help = "Example: tongban review inbox --profile reviewer.toml")]
    Review {
        #[command(flatten)]
        conn: ConnArgs,
        #[command(subcommand)]
        command: ReviewCommand,
    },
    /// Auditor commands: trace a case across counties, verify ledgers, export evidence.
    #[command(
        after_help = "Example: tongban audit trace 610702-20261201-1 --node https://10.0.0.5:7001 --node https://10.0.1.5:7001 --profile auditor.toml"
    )]
    Audit {
        #[command(flatten)]
        auth: AuditAuth,
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Print a formal notice of a case as an HTML page (clerks and reviewers):
    /// the intake receipt (受理回执), the one-time correction notice
    /// (补正材料通知书), the acceptance notice (受理通知书) or the denial
    /// decision (不予许可决定书), with a verification code an auditor checks
    /// with `tongban audit check-notice`.
    #[command(
        after_help = "Example: tongban notice 610702-20261201-1 --kind intake-receipt --out receipt.html --profile clerk.toml"
    )]
    Notice {
        #[command(flatten)]
        conn: ConnArgs,
        /// Case number.
        case: String,
        /// Which notice.
        #[arg(long, value_enum)]
        kind: crate::notice::Kind,
        /// The HTML file to write (A4, prints as it looks).
        #[arg(long)]
        out: PathBuf,
    },
    /// Tracked post, on either side.
    #[command(
        after_help = "Example: tongban mail event --waybill EA473124829CN --status delivered --profile clerk.toml"
    )]
    Mail {
        #[command(flatten)]
        conn: ConnArgs,
        #[command(subcommand)]
        command: MailCommand,
    },
    /// Read the federation directory file offline: item guides (办事指南).
    #[command(subcommand)]
    Directory(DirectoryCommand),
    /// Run a whole local federation for trying tongban: creates (or reuses)
    /// a CA, certificates, configs and client profiles in DIR, starts three
    /// county nodes on loopback, runs a sample case to CLOSED, prints its
    /// trace and the commands to try by hand, and serves until Ctrl-C.
    #[command(after_help = "Example: tongban dev --dir /tmp/tongban-dev --base-port 7101")]
    Dev {
        /// Directory of the federation (certificates, configs, profiles, data).
        #[arg(long, default_value = "tongban-dev")]
        dir: PathBuf,
        /// The nodes listen on 127.0.0.1 at this port and the next two.
        #[arg(long, default_value_t = 7001)]
        base_port: u16,
    },
    /// Serve a web console for one identity (clerk, reviewer or auditor)
    /// on this machine; prints one URL with a one-time login token.
    #[command(
        after_help = "Example: tongban console --profile tongban-dev/profiles/clerk-610702.toml --listen 127.0.0.1:8080"
    )]
    Console(ConsoleArgs),
    /// Print a shell completion script on stdout.
    #[command(after_help = "Example: tongban completions bash > /etc/bash_completion.d/tongban")]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff) on stdout.
    #[command(after_help = "Example: tongban man > /usr/local/share/man/man1/tongban.1")]
    Man,
}

#[derive(Debug, Subcommand)]
pub(crate) enum DirectoryCommand {
    /// An item's guide (办事指南): category, materials (which paper originals
    /// are mailed), promised working days, delivery modes, and which counties
    /// take it in for which.
    Guide {
        /// The item's code, e.g. GT-0001.
        item: String,
        /// The federation directory file.
        #[arg(long, default_value = "federation.toml")]
        directory: PathBuf,
        /// One JSON document on stdout instead of human output.
        #[arg(long)]
        json: bool,
    },
    /// The item catalogue: code, name, category, promised working days.
    Items {
        /// The federation directory file.
        #[arg(long, default_value = "federation.toml")]
        directory: PathBuf,
        /// One JSON document on stdout instead of human output.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ReviewCommand {
    /// Cases handed to this county, oldest first, with working days left.
    #[command(after_help = "Example: tongban review inbox --json")]
    Inbox,
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

#[derive(Debug, Subcommand)]
pub(crate) enum CertsCommand {
    /// Create the federation CA (ca.crt, ca.key).
    #[command(
        after_help = "Example: tongban certs create-ca --dir certs --trust-domain shaanxi.tongban"
    )]
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
    #[command(
        after_help = "Example: tongban certs create-node --dir certs --county 610702 --host node.hantai.example --host 10.0.0.5"
    )]
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
    #[command(
        after_help = "Example: tongban certs create-user --dir certs --county 610702 --role clerk --name wang"
    )]
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
    #[command(after_help = "Example: tongban certs create-auditor --dir certs --name zhao")]
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
    #[command(after_help = "Example: tongban certs list --dir certs")]
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
    #[arg(long, global = true, help_heading = CONNECTION)]
    pub(crate) node: Option<String>,
    /// Federation CA certificate.
    #[arg(long, global = true, help_heading = CONNECTION)]
    pub(crate) ca: Option<PathBuf>,
    /// Your certificate.
    #[arg(long, global = true, help_heading = CONNECTION)]
    pub(crate) cert: Option<PathBuf>,
    /// Your key.
    #[arg(long, global = true, help_heading = CONNECTION)]
    pub(crate) key: Option<PathBuf>,
    /// A TOML profile with node, ca, cert, key.
    #[arg(long, global = true, env = "TONGBAN_PROFILE", help_heading = CONNECTION)]
    pub(crate) profile: Option<PathBuf>,
    /// One JSON document on stdout instead of human output.
    #[arg(long, global = true, help_heading = "Output")]
    pub(crate) json: bool,
    /// Request id (a UUID) of a state-changing command instead of a new one:
    /// the node applies one id once and answers a repeat with the original
    /// reply. Read-only commands ignore it.
    #[arg(long, global = true, value_name = "UUID", value_parser = request_id, help_heading = "Retries")]
    pub(crate) request_id: Option<uuid::Uuid>,
}

/// A `--request-id`: a UUID in 8-4-4-4-12 hex, as the node requires.
fn request_id(text: &str) -> Result<uuid::Uuid, String> {
    match uuid::Uuid::try_parse(text) {
        Ok(id) if text.len() == 36 => Ok(id),
        _ => Err(
            "expected a UUID in 8-4-4-4-12 hex, e.g. 0192f0c4-8a9b-4c3d-9e1f-0a1b2c3d4e5f".into(),
        ),
    }
}

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
    /// One case with its history.
    #[command(after_help = "Example: tongban window status 610702-20261201-1")]
    Status {
        /// Case number.
        case: String,
    },
    /// Cases taken in at this window.
    #[command(after_help = "Example: tongban window list --state QUEUED --limit 20")]
    List {
        /// Only cases in this state.
        #[arg(long, value_enum, ignore_case = true)]
        state: Option<CaseState>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: u32,
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

/// The auditor's credentials (the node URLs are given per command).
#[derive(Debug, Clone, Args)]
pub(crate) struct AuditAuth {
    /// Federation CA certificate.
    #[arg(long, global = true, help_heading = CONNECTION)]
    pub(crate) ca: Option<PathBuf>,
    /// Your auditor certificate.
    #[arg(long, global = true, help_heading = CONNECTION)]
    pub(crate) cert: Option<PathBuf>,
    /// Your key.
    #[arg(long, global = true, help_heading = CONNECTION)]
    pub(crate) key: Option<PathBuf>,
    /// A TOML profile with ca, cert, key (its node is not used).
    #[arg(long, global = true, env = "TONGBAN_PROFILE", help_heading = CONNECTION)]
    pub(crate) profile: Option<PathBuf>,
    /// One JSON document on stdout instead of human output.
    #[arg(long, global = true, help_heading = "Output")]
    pub(crate) json: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum AuditCommand {
    /// Trace one case across the nodes it touched and verify everything.
    #[command(
        after_help = "Example: tongban audit trace 610702-20261201-1 --node https://10.0.0.5:7001 --node https://10.0.1.5:7001 --html trace.html"
    )]
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
    /// Verify a node's whole ledger against its signed checkpoint, and the
    /// evidence behind it: every stored material re-hashed by the node
    /// against the digest its ledger names, every receipt it holds or gave.
    #[command(after_help = "Example: tongban audit verify --node https://10.0.0.5:7001")]
    Verify {
        /// The node's URL.
        #[arg(long)]
        node: String,
        /// Check only the hash chain, not the materials and receipts.
        #[arg(long)]
        quick: bool,
    },
    /// Write the evidence of one case (entries, receipts, checkpoints,
    /// certificates) to a bundle that verify-bundle checks offline.
    #[command(
        after_help = "Example: tongban audit export 610702-20261201-1 --node https://10.0.0.5:7001 --node https://10.0.1.5:7001 --out case.bundle.json"
    )]
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
    /// Check a notice's verification code against the case's ledger entries:
    /// it must name a real entry, of the kind the notice rests on, in a
    /// ledger that verifies.
    #[command(
        name = "check-notice",
        after_help = "Example: tongban audit check-notice 610702-20261201-1 3f2a-9c41-0b7e-d215 --node https://10.0.0.5:7001 --node https://10.0.1.5:7001"
    )]
    CheckNotice {
        /// Case number.
        case: String,
        /// The verification code printed on the notice (dashes optional).
        code: String,
        /// A node's URL (repeatable: the counties the case touched).
        #[arg(long = "node", required = true)]
        nodes: Vec<String>,
    },
    /// Verify an exported bundle with no network.
    #[command(after_help = "Example: tongban audit verify-bundle case.bundle.json --ca ca.crt")]
    VerifyBundle {
        /// The bundle file.
        file: PathBuf,
        /// Also write the timeline as HTML.
        #[arg(long)]
        html: Option<PathBuf>,
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

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn enumerated_values_have_their_wire_names() {
        assert_eq!(wire(&Delivery::MailApplicant), "mail-applicant");
        assert_eq!(wire(&MailStatus::InTransit), "in-transit");
        assert_eq!(wire(&IdMethod::IdCardReader), "id-card-reader");
        assert_eq!(wire(&CaseState::CorrectionAtWindow), "CORRECTION_AT_WINDOW");
        assert_eq!(wire(&Leg::Result), "result");
        // Every state name the core knows is accepted by --state, and no other.
        let names: Vec<String> = CaseState::value_variants().iter().map(wire).collect();
        assert_eq!(names.len(), 12);
        for d in Delivery::value_variants() {
            assert!(
                wire(d).parse::<tongban_core::DeliveryMode>().is_ok(),
                "{d:?}"
            );
        }
        for name in &names {
            assert!(name.parse::<tongban_core::CaseState>().is_ok(), "{name}");
        }
    }
}

/// `tongban console`.
#[derive(Debug, clap::Args)]
pub(crate) struct ConsoleArgs {
    /// A TOML profile with node, ca, cert, key; the certificate decides
    /// the role and so the pages.
    #[arg(long, env = "TONGBAN_PROFILE")]
    pub(crate) profile: PathBuf,
    /// Where to listen; port 0 picks a free one. Any address but loopback
    /// needs --tls-cert and --tls-key (the console then serves HTTPS).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub(crate) listen: std::net::SocketAddr,
    /// The console's HTTPS certificate (PEM, chain first), for the names
    /// browsers reach it by; with --tls-key the console serves HTTPS, on
    /// loopback too.
    #[arg(long, requires = "tls_key")]
    pub(crate) tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub(crate) tls_key: Option<PathBuf>,
    /// End a session after this long without a request (s, m or h).
    #[arg(long, default_value = "30m", value_parser = crate::console::parse_duration)]
    pub(crate) session_idle: std::time::Duration,
    /// End a session this long after sign-in, however busy (s, m or h).
    #[arg(long, default_value = "8h", value_parser = crate::console::parse_duration)]
    pub(crate) session_max: std::time::Duration,
    /// The federation directory (items, counties, agreements) for the
    /// application form and the auditor's node list; default:
    /// `federation.toml` beside the profile or in its parent directory.
    #[arg(long)]
    pub(crate) directory: Option<PathBuf>,
}
