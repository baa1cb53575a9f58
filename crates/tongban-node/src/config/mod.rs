//! The node configuration file (`tongban node --config FILE`, docs/cli.md)
//! and the federation directory it names, loaded and validated together so
//! that a bad file stops the node before it binds anything.
//!
//! Relative paths in the file are relative to the directory holding it, so a
//! config works whatever directory the node is started from.

mod check;

pub use check::Check;
use check::{check_data_dir, check_tls};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use time::Date;
use tongban_core::{CountyCode, Directory};
use tongban_pki::tls::TlsMaterial;
use tongban_pki::{NodeSigner, TrustAnchor};

use crate::clock::Clock;

/// A configuration problem, naming the file and the field.
#[derive(Debug)]
pub struct ConfigError {
    /// The file with the problem.
    pub path: PathBuf,
    /// The field (dotted path), or `-` for the whole file.
    pub field: String,
    /// What is wrong.
    pub reason: String,
}

/// `FILE: FIELD: REASON`, or `FILE: REASON` when the problem is the whole file.
impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.field.as_str() {
            "-" => write!(f, "{}: {}", self.path.display(), self.reason),
            field => write!(f, "{}: {field}: {}", self.path.display(), self.reason),
        }
    }
}

impl std::error::Error for ConfigError {}

impl ConfigError {
    fn new(path: &Path, field: &str, reason: impl std::fmt::Display) -> Self {
        Self {
            path: path.to_path_buf(),
            field: field.to_owned(),
            reason: reason.to_string(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    county: String,
    listen: String,
    data_dir: PathBuf,
    directory: PathBuf,
    tls: RawTls,
    #[serde(default)]
    limits: Limits,
    #[serde(default)]
    delivery: RawDelivery,
    #[serde(default)]
    review: Review,
    #[serde(default)]
    mail: RawMail,
    #[serde(default)]
    audit: Audit,
    #[serde(default)]
    admin: RawAdmin,
}

/// `[admin]`: the plain-HTTP port for Prometheus and health probes.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawAdmin {
    #[serde(default)]
    listen: Option<String>,
    /// The port is plain HTTP without authentication: an address other
    /// than loopback must be asked for in so many words.
    #[serde(default)]
    allow_non_loopback: bool,
}

/// Audit settings (`[audit]`).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Audit {
    /// Seconds between signed checkpoints of the ledger head (default 300;
    /// one is also signed for every handoff stream and on demand).
    pub checkpoint_interval_secs: u64,
}

impl Default for Audit {
    fn default() -> Self {
        Self {
            checkpoint_interval_secs: 300,
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawMail {
    #[serde(default)]
    max_transit_days: Option<u32>,
    #[serde(default)]
    push_listen: Option<String>,
    #[serde(default)]
    carrier: Vec<RawCarrier>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCarrier {
    name: String,
    secret_file: PathBuf,
}

/// A carrier allowed to push events (`[[mail.carrier]]`).
#[derive(Clone)]
pub struct Carrier {
    /// The carrier's name, as in its push URL.
    pub name: String,
    /// The shared HMAC secret (read from `secret_file`).
    pub secret: Vec<u8>,
}

impl std::fmt::Debug for Carrier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        f.debug_struct("Carrier")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Review policy (`[review]`).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Review {
    /// Working days an applicant gets for a correction when the reviewer
    /// gives no `--deadline` (default 5).
    pub correction_deadline_days: u32,
}

impl Default for Review {
    fn default() -> Self {
        Self {
            correction_deadline_days: 5,
        }
    }
}

/// Mail tracking policy (`[mail] max_transit_days`).
#[derive(Debug, Clone, Copy)]
pub struct MailPolicy {
    /// Calendar days after which a leg still in transit is listed as
    /// overdue (default 5).
    pub max_transit_days: u32,
}

impl Default for MailPolicy {
    fn default() -> Self {
        Self {
            max_transit_days: 5,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

/// Size limits (`[limits]`).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest single material, bytes (default 64 MiB).
    pub max_material_bytes: u64,
    /// Largest total of one case's materials, bytes (default 256 MiB).
    pub max_case_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_material_bytes: tongban_core::DEFAULT_MAX_MATERIAL_BYTES,
            max_case_bytes: tongban_core::DEFAULT_MAX_CASE_BYTES,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawDelivery {
    initial_backoff_ms: u64,
    max_backoff_ms: u64,
    max_attempts: u32,
    batch_size: usize,
    streams: usize,
    attempt_timeout_ms: u64,
    min_rate_bytes_per_s: u64,
    receipt_skew_s: u64,
}

impl Default for RawDelivery {
    fn default() -> Self {
        let d = Delivery::default();
        Self {
            initial_backoff_ms: d.initial_backoff.as_millis() as u64,
            max_backoff_ms: d.max_backoff.as_millis() as u64,
            max_attempts: d.max_attempts,
            batch_size: d.batch_size,
            streams: d.streams,
            attempt_timeout_ms: d.attempt_timeout.as_millis() as u64,
            min_rate_bytes_per_s: d.min_rate_bytes_per_s,
            receipt_skew_s: d.receipt_skew.as_secs(),
        }
    }
}

/// How the outbox worker delivers to partners (`[delivery]`).
#[derive(Debug, Clone, Copy)]
pub struct Delivery {
    /// First retry delay after a failed round of attempts to a partner
    /// (`initial_backoff_ms`, default 500).
    pub initial_backoff: Duration,
    /// Retry delays double up to this (`max_backoff_ms`, default 60000).
    pub max_backoff: Duration,
    /// Consecutive failed rounds to a partner before their batches are
    /// parked for an operator (`max_attempts`, default 0: never park, keep
    /// retrying at `max_backoff`).
    pub max_attempts: u32,
    /// Handoffs sent in one stream and made durable with one flush at the
    /// receiver (`batch_size`, default 64).
    pub batch_size: usize,
    /// Batches in flight to one partner at a time, each on its own stream
    /// (`streams`, default 4; four beat two by a quarter in the drain
    /// benchmark); a case never has entries in two batches at once.
    pub streams: usize,
    /// One deadline for the start of an attempt: TCP connect, TLS
    /// handshake with the partner's identity check, HTTP/2 set-up and the
    /// first frame of the stream (`attempt_timeout_ms`, default 10000).
    /// HTTP/2 pings every half of it detect a connection that goes dark.
    pub attempt_timeout: Duration,
    /// The slowest transfer a stream may make: its answer is due within
    /// `attempt_timeout` plus its bytes at this rate
    /// (`min_rate_bytes_per_s`, default 65536, i.e. 64 KiB/s).
    pub min_rate_bytes_per_s: u64,
    /// How far a receipt's `received_at` may be from this node's clock when
    /// it arrives (`receipt_skew_s`, default 300); a receipt further off is
    /// parked as invalid: a receiver with a wrong clock signs receipts an
    /// auditor cannot place in time.
    pub receipt_skew: Duration,
}

impl Default for Delivery {
    fn default() -> Self {
        Self {
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(60),
            max_attempts: 0,
            batch_size: 64,
            streams: 4,
            attempt_timeout: Duration::from_secs(10),
            min_rate_bytes_per_s: 64 * 1024,
            receipt_skew: Duration::from_secs(300),
        }
    }
}

/// A loaded, validated node configuration.
#[derive(Clone)]
pub struct NodeConfig {
    /// The file it came from.
    pub path: PathBuf,
    /// This node's county.
    pub county: CountyCode,
    /// The address to listen on.
    pub listen: SocketAddr,
    /// Where the ledger and material blobs live.
    pub data_dir: PathBuf,
    /// The federation directory.
    pub directory: Arc<Directory>,
    /// CA, certificate and key.
    pub tls: TlsMaterial,
    /// The federation CA as a verifier.
    pub anchor: TrustAnchor,
    /// This node's signing key.
    pub signer: Arc<NodeSigner>,
    /// Size limits.
    pub limits: Limits,
    /// Outbox delivery settings.
    pub delivery: Delivery,
    /// The clock (the system clock unless a test sets one).
    pub clock: Clock,
    /// Review policy.
    pub review: Review,
    /// Mail tracking policy.
    pub mail: MailPolicy,
    /// Where carriers push events over HTTPS (`[mail] push_listen`), if anywhere.
    pub carrier_listen: Option<SocketAddr>,
    /// Carriers allowed to push, with their secrets.
    pub carriers: Vec<Carrier>,
    /// Audit settings.
    pub audit: Audit,
    /// Where `/metrics`, `/healthz` and `/readyz` are served over plain
    /// HTTP (`[admin] listen`), if anywhere: loopback unless
    /// `allow_non_loopback` is set.
    pub admin_listen: Option<SocketAddr>,
}

impl std::fmt::Debug for NodeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeConfig")
            .field("path", &self.path)
            .field("county", &self.county)
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .finish_non_exhaustive()
    }
}

/// The years a due date or correction deadline set on `today` could reach
/// (the longest promised time of any item, or the correction deadline) that
/// the directory's calendar does not cover, today's year included.
pub fn years_without_calendar(directory: &Directory, review: &Review, today: Date) -> Vec<i32> {
    let longest = directory
        .items
        .iter()
        .map(|i| i.promised_days)
        .chain([review.correction_deadline_days])
        .max()
        .unwrap_or_default();
    let calendar = &directory.calendar;
    let last = calendar.add_working_days(today, longest);
    calendar.uncovered_years(today.previous_day().unwrap_or(today), last)
}

/// Reads and parses a federation directory file.
pub fn load_directory(path: &Path) -> Result<Directory, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new(path, "-", format!("cannot read the file: {e}")))?;
    Directory::from_toml_str(&text).map_err(|e| match e {
        tongban_core::DirectoryError::Invalid { field, reason } => {
            ConfigError::new(path, &field, reason)
        }
        other => ConfigError::new(path, "-", other),
    })
}

impl NodeConfig {
    /// Loads the config file, the directory and the TLS files it names, and
    /// checks that they agree: the county is in the directory, the
    /// certificate is this county's node certificate, and the CA's trust
    /// domain is the directory's. Fails with the first problem; warnings
    /// are logged.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let mut check = Check::default();
        let config = Self::validate(path, &mut check);
        for w in &check.warnings {
            tracing::warn!(file = %w.path.display(), field = %w.field, "{}", w.reason);
        }
        match (config, check.errors.into_iter().next()) {
            (Some(config), None) => Ok(config),
            (_, Some(e)) => Err(e),
            (None, None) => Err(ConfigError::new(path, "-", "invalid")),
        }
    }

    /// Every problem [`NodeConfig::load`] would find, and those of the data
    /// dir (exists or can be created; not open to group or others), without
    /// binding, creating or writing anything.
    pub fn check(path: &Path) -> Check {
        let mut check = Check::default();
        if let Some(config) = Self::validate(path, &mut check) {
            check_data_dir(path, &config.data_dir, &mut check);
        }
        check
    }

    /// Checks everything, recording each problem in `check`; the config if
    /// none is an error.
    fn validate(path: &Path, check: &mut Check) -> Option<Self> {
        let text = check.ok(std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new(path, "-", format!("cannot read the file: {e}"))))?;
        let raw: RawConfig = check.ok(toml::from_str(&text).map_err(|e| {
            let msg = e.message().to_owned();
            let field = e
                .span()
                .map(|s| {
                    let line = text[..s.start].lines().count().max(1);
                    format!("line {line}")
                })
                .unwrap_or_else(|| "-".into());
            ConfigError::new(path, &field, msg)
        }))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let resolve = |p: &Path| {
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                base.join(p)
            }
        };

        let county: Option<CountyCode> = check.ok(raw
            .county
            .parse()
            .map_err(|e| ConfigError::new(path, "county", e)));
        let listen: Option<SocketAddr> = check.ok(raw.listen.parse().map_err(|e| {
            ConfigError::new(
                path,
                "listen",
                format!(
                    "{:?} is not an address like 127.0.0.1:7001: {e}",
                    raw.listen
                ),
            )
        }));
        let directory_path = resolve(&raw.directory);
        let directory = match load_directory(&directory_path) {
            Ok(d) => Some(d),
            Err(e) => {
                // Named as the config's field, so that a missing file says
                // which setting points at it.
                let e = if e.field == "-" {
                    ConfigError::new(
                        path,
                        "directory",
                        format!("{}: {}", e.path.display(), e.reason),
                    )
                } else {
                    e
                };
                check.error(e);
                None
            }
        };
        if let (Some(directory), Some(county)) = (&directory, &county)
            && directory.county(county).is_none()
        {
            check.error(ConfigError::new(
                path,
                "county",
                format!("{county} is not a county in {}", directory_path.display()),
            ));
        }
        let (ca, cert, key) = (
            resolve(&raw.tls.ca),
            resolve(&raw.tls.cert),
            resolve(&raw.tls.key),
        );
        let mut read = |p: &Path, field: &str| {
            check.ok(std::fs::read_to_string(p).map_err(|e| {
                ConfigError::new(path, field, format!("cannot read {}: {e}", p.display()))
            }))
        };
        let (ca_pem, cert_pem, key_pem) = (
            read(&ca, "tls.ca"),
            read(&cert, "tls.cert"),
            read(&key, "tls.key"),
        );
        let mut pki = None;
        if let (Some(ca_pem), Some(cert_pem), Some(key_pem)) = (ca_pem, cert_pem, key_pem) {
            let tls = TlsMaterial {
                ca_pem,
                cert_pem,
                key_pem,
            };
            pki = check_tls(path, &tls, &key, county.as_ref(), directory.as_ref(), check)
                .map(|(anchor, signer)| (tls, anchor, signer));
        }
        if raw.limits.max_material_bytes == 0
            || raw.limits.max_case_bytes < raw.limits.max_material_bytes
        {
            check.error(ConfigError::new(
                path,
                "limits",
                "max_material_bytes must be positive and not above max_case_bytes",
            ));
        }
        let carrier_listen = match &raw.mail.push_listen {
            None => Some(None),
            Some(text) => check
                .ok(text.parse::<SocketAddr>().map_err(|e| {
                    ConfigError::new(
                        path,
                        "mail.push_listen",
                        format!("{text:?} is not an address like 127.0.0.1:7101: {e}"),
                    )
                }))
                .map(Some),
        };
        let mut carriers = Vec::new();
        for (i, c) in raw.mail.carrier.iter().enumerate() {
            let field = format!("mail.carrier[{i}].secret_file");
            let file = resolve(&c.secret_file);
            if c.name.is_empty()
                || !c
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                check.error(ConfigError::new(
                    path,
                    &format!("mail.carrier[{i}].name"),
                    "use letters, digits, '-' or '_'",
                ));
            }
            let Some(secret) = check.ok(std::fs::read(&file).map_err(|e| {
                ConfigError::new(path, &field, format!("cannot read {}: {e}", file.display()))
            })) else {
                continue;
            };
            let secret = String::from_utf8_lossy(&secret).trim().as_bytes().to_vec();
            if secret.len() < 16 {
                check.error(ConfigError::new(
                    path,
                    &field,
                    "the secret must be at least 16 bytes",
                ));
            }
            carriers.push(Carrier {
                name: c.name.clone(),
                secret,
            });
        }
        if raw.mail.push_listen.is_some() && raw.mail.carrier.is_empty() {
            check.error(ConfigError::new(
                path,
                "mail.push_listen",
                "set, but no [[mail.carrier]] may push",
            ));
        }
        if raw.audit.checkpoint_interval_secs == 0 {
            check.error(ConfigError::new(
                path,
                "audit.checkpoint_interval_secs",
                "must be positive",
            ));
        }
        let admin_listen = check.ok(admin_listen(path, &raw.admin));
        let d = raw.delivery;
        if d.initial_backoff_ms == 0
            || d.max_backoff_ms < d.initial_backoff_ms
            || d.batch_size == 0
            || d.streams == 0
            || d.attempt_timeout_ms == 0
            || d.min_rate_bytes_per_s == 0
        {
            check.error(ConfigError::new(
                path,
                "delivery",
                "initial_backoff_ms, batch_size, streams, attempt_timeout_ms and min_rate_bytes_per_s must be positive and max_backoff_ms not below initial_backoff_ms",
            ));
        }
        let directory = directory?;
        let uncovered = years_without_calendar(&directory, &raw.review, Clock::system().today());
        if !uncovered.is_empty() {
            tracing::warn!(
                directory = %directory_path.display(),
                years = ?uncovered,
                covered = %directory.calendar,
                "the directory has no holiday calendar for a year that due dates set now can reach; those years count monday to friday only"
            );
        }
        let (county, listen, (tls, anchor, signer), carrier_listen, admin_listen) =
            (county?, listen?, pki?, carrier_listen?, admin_listen?);
        if !check.errors.is_empty() {
            return None;
        }
        Some(Self {
            path: path.to_path_buf(),
            county,
            listen,
            data_dir: resolve(&raw.data_dir),
            directory: Arc::new(directory),
            tls,
            anchor,
            signer: Arc::new(signer),
            limits: raw.limits,
            delivery: Delivery {
                initial_backoff: Duration::from_millis(d.initial_backoff_ms),
                max_backoff: Duration::from_millis(d.max_backoff_ms),
                max_attempts: d.max_attempts,
                batch_size: d.batch_size,
                streams: d.streams,
                attempt_timeout: Duration::from_millis(d.attempt_timeout_ms),
                min_rate_bytes_per_s: d.min_rate_bytes_per_s,
                receipt_skew: Duration::from_secs(d.receipt_skew_s),
            },
            clock: Clock::system(),
            review: raw.review,
            mail: MailPolicy {
                max_transit_days: raw
                    .mail
                    .max_transit_days
                    .unwrap_or(MailPolicy::default().max_transit_days),
            },
            carrier_listen,
            carriers,
            audit: raw.audit,
            admin_listen,
        })
    }
}

/// `[admin] listen`, refused on an address other than loopback unless
/// `allow_non_loopback = true`: the port has no TLS and no authentication.
fn admin_listen(path: &Path, raw: &RawAdmin) -> Result<Option<SocketAddr>, ConfigError> {
    let Some(text) = &raw.listen else {
        return Ok(None);
    };
    let addr: SocketAddr = text.parse().map_err(|e| {
        ConfigError::new(
            path,
            "admin.listen",
            format!("{text:?} is not an address like 127.0.0.1:9101: {e}"),
        )
    })?;
    if !addr.ip().is_loopback() && !raw.allow_non_loopback {
        return Err(ConfigError::new(
            path,
            "admin.listen",
            format!(
                "{addr} is not a loopback address; the admin port is plain HTTP without authentication, so set admin.allow_non_loopback = true to serve it there"
            ),
        ));
    }
    Ok(Some(addr))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    fn example() -> Directory {
        Directory::from_toml_str(include_str!("../../../../examples/federation.toml")).unwrap()
    }

    #[test]
    fn the_admin_port_is_loopback_unless_allowed_otherwise() {
        let path = Path::new("node.toml");
        let admin = |listen: &str, allow| RawAdmin {
            listen: Some(listen.into()),
            allow_non_loopback: allow,
        };
        assert_eq!(admin_listen(path, &RawAdmin::default()).unwrap(), None);
        assert_eq!(
            admin_listen(path, &admin("127.0.0.1:9101", false)).unwrap(),
            Some("127.0.0.1:9101".parse().unwrap())
        );
        assert!(admin_listen(path, &admin("[::1]:9101", false)).is_ok());
        let err = admin_listen(path, &admin("0.0.0.0:9101", false)).unwrap_err();
        assert_eq!(err.field, "admin.listen");
        assert!(err.reason.contains("allow_non_loopback"), "{err}");
        assert!(admin_listen(path, &admin("10.1.2.3:9101", true)).is_ok());
        let err = admin_listen(path, &admin("localhost:9101", false)).unwrap_err();
        assert!(err.reason.contains("not an address"), "{err}");
    }

    #[test]
    fn the_example_directory_carries_the_2026_calendar() {
        let d = example();
        assert!(d.calendar.covers(2026));
        assert_eq!(
            d.calendar.add_working_days(date!(2026 - 09 - 30), 5),
            date!(2026 - 10 - 13)
        );
    }

    #[test]
    fn years_without_a_calendar_are_those_due_dates_can_reach() {
        let d = example();
        let review = Review::default();
        // Ten working days (户口迁移) from early November stay in 2026.
        assert!(years_without_calendar(&d, &review, date!(2026 - 11 - 02)).is_empty());
        // From mid-December they reach into 2027, which has no table yet.
        assert_eq!(
            years_without_calendar(&d, &review, date!(2026 - 12 - 21)),
            [2027]
        );
        assert_eq!(
            years_without_calendar(&d, &review, date!(2027 - 03 - 01)),
            [2027]
        );
        let long = Review {
            correction_deadline_days: 300,
        };
        assert_eq!(
            years_without_calendar(&d, &long, date!(2025 - 12 - 01)),
            [2025, 2027]
        );
    }
}
