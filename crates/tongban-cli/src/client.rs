//! Reaching a node as a client: connection settings from flags, a profile
//! file or `TONGBAN_PROFILE`; mutual TLS; streaming material files; and
//! state-changing calls made idempotent by a request id, retried with it
//! when the node does not answer.

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tongban_pki::tls::TlsMaterial;
use tongban_proto::common::v1::{MaterialChunk, MaterialHeader};
use tonic::transport::{Channel, Endpoint};

use crate::args::ConnArgs;
use crate::cmd::{BadConfig, Usage};
use crate::output::binary_size;

/// Chunk size for uploads.
const CHUNK: usize = 64 * 1024;
/// Hashing and uploads above this show a progress bar on a terminal.
const PROGRESS_ABOVE: u64 = 4 * 1024 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Profile {
    /// Not used by audit commands, which name their nodes.
    #[serde(default)]
    node: String,
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

impl Profile {
    /// Reads a profile; its relative paths become relative to its directory.
    /// A missing or invalid profile is a configuration problem (exit 64).
    fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| BadConfig(format!("cannot read profile {}: {e}", path.display())))?;
        let p: Profile = toml::from_str(&text).map_err(|e| {
            let line = e
                .span()
                .map(|span| format!("line {}: ", text[..span.start].matches('\n').count() + 1))
                .unwrap_or_default();
            BadConfig(format!(
                "profile {} is not valid: {line}{}",
                path.display(),
                e.message()
            ))
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Ok(Profile {
            node: p.node,
            ca: base.join(p.ca),
            cert: base.join(p.cert),
            key: base.join(p.key),
        })
    }
}

/// What a newcomer without flags is missing: a profile, which names them
/// all (and where the local federation put its profiles).
const PROFILE_HINT: &str = "or --profile FILE / TONGBAN_PROFILE=FILE; \
    `tongban dev` writes one per identity to tongban-dev/profiles/";

/// Opens a mutual-TLS channel to the node the arguments name. Flags win
/// over the profile; relative paths in a profile are relative to it.
pub(crate) async fn connect(conn: &ConnArgs) -> Result<Channel> {
    let (node, tls) = credentials(
        conn.node.as_deref(),
        &conn.ca,
        &conn.cert,
        &conn.key,
        conn.profile.as_deref(),
    )?;
    let node = node.ok_or_else(|| Usage(format!("--node is required ({PROFILE_HINT})")))?;
    channel(&node, &tls).await
}

/// Reads the CA, certificate and key named by flags or a profile, and the
/// profile's node URL unless `node` is given.
pub(crate) fn credentials(
    node: Option<&str>,
    ca: &Option<PathBuf>,
    cert: &Option<PathBuf>,
    key: &Option<PathBuf>,
    profile: Option<&Path>,
) -> Result<(Option<String>, TlsMaterial)> {
    let profile = profile.map(Profile::load).transpose()?;
    let pick = |flag: &Option<PathBuf>, from: Option<&PathBuf>, name: &str| -> Result<PathBuf> {
        flag.clone()
            .or_else(|| from.cloned())
            .ok_or_else(|| Usage(format!("--{name} is required ({PROFILE_HINT})")).into())
    };
    let node = node.map(str::to_owned).or_else(|| {
        profile
            .as_ref()
            .map(|p| p.node.clone())
            .filter(|n| !n.is_empty())
    });
    let ca = pick(ca, profile.as_ref().map(|p| &p.ca), "ca")?;
    let cert = pick(cert, profile.as_ref().map(|p| &p.cert), "cert")?;
    let key = pick(key, profile.as_ref().map(|p| &p.key), "key")?;
    Ok((node, TlsMaterial::load(&ca, &cert, &key)?))
}

/// Reads only the federation CA named by `--ca` or a profile (offline
/// verification needs nothing else).
pub(crate) fn ca_only(ca: &Option<PathBuf>, profile: Option<&Path>) -> Result<String> {
    let path = match (ca, profile) {
        (Some(ca), _) => ca.clone(),
        (None, Some(path)) => Profile::load(path)?.ca,
        (None, None) => {
            return Err(Usage(format!("--ca is required ({PROFILE_HINT})")).into());
        }
    };
    std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))
}

/// Opens a mutual-TLS channel to `url` with the given material.
pub(crate) async fn channel(url: &str, tls: &TlsMaterial) -> Result<Channel> {
    if !url.starts_with("https://") {
        bail!("node url {url:?} must start with https:// (every port is mutual TLS)");
    }
    let host = url
        .trim_start_matches("https://")
        .split('/')
        .next()
        .map(|a| a.rsplit_once(':').map_or(a, |(h, _)| h))
        .unwrap_or_default()
        .trim_matches(|c| c == '[' || c == ']')
        .to_owned();
    // A clerk or a reviewer talks only to their own county's node, checked
    // in the handshake before anything of the call (an applicant's data) is
    // sent. Auditors ask whichever nodes hold a case; their peers are
    // checked against the federation CA as for everyone.
    let me = tongban_pki::Identity::from_cert_pem(&tls.cert_pem)
        .context("cannot read the identity of the client certificate")?;
    let endpoint = Endpoint::from_shared(url.to_owned())
        .with_context(|| format!("bad node url {url:?}"))?
        .connect_timeout(std::time::Duration::from_secs(10));
    let own_county = match &me.principal {
        tongban_pki::Principal::Clerk { county, .. }
        | tongban_pki::Principal::Reviewer { county, .. } => Some(county),
        _ => None,
    };
    let connected = match own_county {
        Some(county) => {
            let expected = tongban_pki::Identity {
                trust_domain: me.trust_domain.clone(),
                principal: tongban_pki::Principal::Node {
                    county: county.clone(),
                },
            };
            let connector = tls
                .partner_connector(&host, expected)
                .context("tls configuration")?;
            let addr = url
                .trim_start_matches("https://")
                .split('/')
                .next()
                .unwrap_or_default()
                .to_owned();
            Endpoint::from_shared(format!("http://{addr}"))
                .with_context(|| format!("bad node url {url:?}"))?
                .connect_timeout(std::time::Duration::from_secs(10))
                .connect_with_connector(tongban_node::dial::Dial::new(addr, connector))
                .await
        }
        None => {
            endpoint
                .tls_config(tls.client_config(&host))
                .context("tls configuration")?
                .connect()
                .await
        }
    };
    connected.map_err(|err| {
        // tonic and hyper wrap the socket's error in layers that repeat
        // each other ("transport error: tcp connect error: tcp connect
        // error: ..."); the innermost one says what happened.
        let root = std::iter::successors(Some(&err as &dyn std::error::Error), |e| e.source())
            .last()
            .map(ToString::to_string)
            .unwrap_or_default();
        anyhow::anyhow!("cannot reach the node at {url}: {root}")
    })
}

/// Attempts of a state-changing call whose node does not answer.
const ATTEMPTS: u32 = 4;
/// The wait before the second attempt; doubled before each further one.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// How long one attempt of a unary call may take.
const UNARY_TIMEOUT: Duration = Duration::from_secs(30);

/// The request id of this invocation's state-changing call: `--request-id`,
/// or a new random UUID.
pub(crate) fn request_id(conn: &ConnArgs) -> String {
    conn.request_id
        .unwrap_or_else(uuid::Uuid::new_v4)
        .hyphenated()
        .to_string()
}

/// A unary request with a deadline per attempt (uploads have none: a large
/// one may take long).
pub(crate) fn unary<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(UNARY_TIMEOUT);
    request
}

/// Whether a status means the node did not answer (so the request may or
/// may not have been applied), rather than an answer.
pub(crate) fn unanswered(status: &tonic::Status) -> bool {
    matches!(
        status.code(),
        tonic::Code::Unavailable
            | tonic::Code::DeadlineExceeded
            | tonic::Code::Cancelled
            | tonic::Code::Unknown
    )
}

/// One unary state-changing call on `client`, retried with its request id
/// (see [`idempotent`]); the reply's message, or the command's error.
macro_rules! call_unary {
    ($id:expr, $client:expr, $method:ident, $request:expr) => {{
        let request = $request;
        $crate::client::idempotent($id, || {
            let mut client = $client.clone();
            let request = $crate::client::unary(request.clone());
            async move { client.$method(request).await }
        })
        .await?
    }};
}
pub(crate) use call_unary;

/// Makes a state-changing call that carries `request_id`: when the node
/// does not answer (unavailable, connection lost, deadline), the same call
/// with the same id is made again, [`ATTEMPTS`] times in all with doubling
/// waits; the node applies a request id once and answers a repeat with the
/// original reply, so this is safe. If it never answers, the error says the
/// outcome is unknown and how to find out safely.
pub(crate) async fn idempotent<T, F, Fut>(request_id: &str, call: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
{
    match retried(request_id, call).await {
        Ok(reply) => Ok(reply.into_inner()),
        Err(status) if unanswered(&status) => Err(OutcomeUnknown {
            request_id: request_id.to_owned(),
            attempts: ATTEMPTS,
            status,
        }
        .into()),
        Err(status) => Err(crate::cmd::status_error(status)),
    }
}

/// The attempts of [`idempotent`], ending in the node's reply or in its
/// last status (an unanswered one after [`ATTEMPTS`]), for a caller that
/// shows the outcome its own way (the console).
pub(crate) async fn retried<T, F, Fut>(
    request_id: &str,
    mut call: F,
) -> Result<tonic::Response<T>, tonic::Status>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
{
    let mut backoff = FIRST_BACKOFF;
    let mut attempt = 1;
    loop {
        let status = match call().await {
            Err(status) if unanswered(&status) && attempt < ATTEMPTS => status,
            done => return done,
        };
        tracing::warn!(attempt, request = %request_id, code = ?status.code(), "the node did not answer; trying again with the same request id");
        tokio::time::sleep(backoff).await;
        backoff *= 2;
        attempt += 1;
    }
}

/// A state-changing call the node never answered: exit code 75.
#[derive(Debug, thiserror::Error)]
#[error(
    "the node did not answer after {attempts} attempts ({}); the request may or may not have been applied. Run the same command again with --request-id {request_id}: that is safe, the node applies one request id once and answers a repeat with the original reply",
    crate::cmd::status_error(status.clone())
)]
pub(crate) struct OutcomeUnknown {
    request_id: String,
    attempts: u32,
    status: tonic::Status,
}

/// A material file to upload, hashed up front.
#[derive(Clone)]
pub(crate) struct MaterialFile {
    pub(crate) header: MaterialHeader,
    pub(crate) path: PathBuf,
}

/// Parses `KIND=PATH` arguments and hashes each file, with a progress
/// bar when they are large.
pub(crate) fn materials(args: &[String]) -> Result<Vec<MaterialFile>> {
    let parsed = args
        .iter()
        .map(|arg| {
            let (kind, path) = arg
                .split_once('=')
                .ok_or_else(|| Usage(format!("--material {arg:?}: expected KIND=PATH")))?;
            let path = PathBuf::from(path);
            let size = std::fs::metadata(&path)
                .with_context(|| format!("cannot open material {}", path.display()))?
                .len();
            Ok((kind.to_owned(), path, size))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut bar = Progress::new("hashing", parsed.iter().map(|(_, _, size)| size).sum());
    let files = parsed
        .into_iter()
        .map(|(kind, path, _)| {
            let mut file = std::fs::File::open(&path)
                .with_context(|| format!("cannot open material {}", path.display()))?;
            let mut hasher = Sha256::new();
            let mut size = 0u64;
            let mut buf = vec![0u8; CHUNK];
            loop {
                let n = file
                    .read(&mut buf)
                    .with_context(|| format!("cannot read material {}", path.display()))?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
                size += n as u64;
                bar.inc(n as u64);
            }
            Ok(MaterialFile {
                header: MaterialHeader {
                    kind,
                    filename: path
                        .file_name()
                        .map(|f| f.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                    size,
                    sha256: hasher.finalize().to_vec(),
                },
                path,
            })
        })
        .collect::<Result<Vec<_>>>();
    bar.finish();
    files
}

/// Streams a header frame and then every file's chunks, built by `frame`,
/// with a progress bar when they are large.
pub(crate) fn upload<F: Send + 'static>(
    first: F,
    files: Vec<MaterialFile>,
    frame: fn(MaterialChunk) -> F,
) -> tokio_stream::wrappers::ReceiverStream<F> {
    let (tx, rx) = mpsc::channel(16);
    let mut bar = Progress::new("sending", files.iter().map(|f| f.header.size).sum());
    tokio::task::spawn_blocking(move || {
        if tx.blocking_send(first).is_err() {
            return;
        }
        for (index, f) in files.iter().enumerate() {
            // A file that changed or vanished since it was hashed is sent
            // short; the node then refuses the upload, naming the material.
            let Ok(mut file) = std::fs::File::open(&f.path) else {
                return;
            };
            loop {
                let mut buf = vec![0u8; CHUNK];
                let n = match file.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                buf.truncate(n);
                let chunk = MaterialChunk {
                    material: index as u32,
                    data: buf.into(),
                };
                if tx.blocking_send(frame(chunk)).is_err() {
                    return;
                }
                bar.inc(n as u64);
            }
        }
        bar.finish();
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

/// A progress bar on stderr for `total` bytes, shown only above
/// [`PROGRESS_ABOVE`] and when stderr is a terminal; sizes in binary units.
/// ([`Progress::count`] counts things instead, such as ledger entries.)
pub(crate) struct Progress {
    bar: ProgressBar,
    done: u64,
    drawn: Instant,
}

/// The bar is redrawn at most this often. indicatif's own rate limit
/// lets bursts through: measured 26 redraws a second while hashing.
const REDRAW: Duration = Duration::from_millis(100);

impl Progress {
    /// A bar for `total` things (`what` names them), shown when stderr is a
    /// terminal and there are more than a few thousand.
    pub(crate) fn count(what: &'static str, total: u64) -> Self {
        Self::shown_above(4096, what, total, || {
            ProgressStyle::with_template("{prefix:>7} [{bar:30}] {percent:>3}% {pos} of {len}")
        })
    }

    /// A bar for `total` bytes (`what` names them) with sizes and rate,
    /// shown when stderr is a terminal and there are more than
    /// [`PROGRESS_ABOVE`].
    pub(crate) fn new(what: &'static str, total: u64) -> Self {
        Self::shown_above(PROGRESS_ABOVE, what, total, || {
            let style = ProgressStyle::with_template(
                "{prefix:>7} [{bar:30}] {percent:>3}% {done} of {size}, {rate}",
            )?;
            Ok(style
                .with_key("done", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = w.write_str(&binary_size(s.pos()));
                })
                .with_key("size", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = w.write_str(&binary_size(s.len().unwrap_or_default()));
                })
                .with_key("rate", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = write!(w, "{}/s", binary_size(s.per_sec() as u64));
                }))
        })
    }

    /// A bar of `style` for `total`, shown when stderr is a terminal and
    /// `total` is more than `above`; hidden otherwise.
    fn shown_above(
        above: u64,
        what: &'static str,
        total: u64,
        style: impl FnOnce() -> Result<ProgressStyle, indicatif::style::TemplateError>,
    ) -> Self {
        let bar = if total <= above || !std::io::stderr().is_terminal() {
            ProgressBar::hidden()
        } else {
            let style = style()
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("#> ");
            let bar =
                ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr_with_hz(10));
            bar.set_style(style);
            bar.set_prefix(what);
            bar
        };
        Self {
            bar,
            done: 0,
            drawn: Instant::now(),
        }
    }

    /// Counts `n` more bytes; redraws if the last redraw is [`REDRAW`] old.
    pub(crate) fn inc(&mut self, n: u64) {
        self.done += n;
        if self.drawn.elapsed() >= REDRAW {
            self.bar.set_position(self.done);
            self.drawn = Instant::now();
        }
    }

    pub(crate) fn finish(&self) {
        self.bar.finish();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn an_unanswered_call_is_made_again_with_backoff_and_then_said_to_be_unknown() {
        let calls = Mutex::new(Vec::new());
        let answer_after = |n: usize| {
            let calls = &calls;
            move || {
                let mut calls = calls.lock().unwrap();
                calls.push(tokio::time::Instant::now());
                let reply = if calls.len() > n {
                    Ok(tonic::Response::new(7))
                } else {
                    Err(tonic::Status::unavailable("connection refused"))
                };
                async move { reply }
            }
        };
        assert_eq!(idempotent("r", answer_after(2)).await.unwrap(), 7);
        let at = std::mem::take(&mut *calls.lock().unwrap());
        assert_eq!(at.len(), 3);
        assert_eq!(at[1] - at[0], FIRST_BACKOFF);
        assert_eq!(at[2] - at[1], FIRST_BACKOFF * 2);

        let err = idempotent("0192f0c4-8a9b-4c3d-9e1f-0a1b2c3d4e5f", answer_after(99))
            .await
            .unwrap_err();
        assert_eq!(calls.lock().unwrap().len(), ATTEMPTS as usize);
        assert_eq!(crate::cmd::exit_code(&err), 75);
        let text = format!("{err:#}");
        assert!(text.contains("may or may not have been applied"), "{text}");
        assert!(
            text.contains("--request-id 0192f0c4-8a9b-4c3d-9e1f-0a1b2c3d4e5f"),
            "{text}"
        );

        // An answer, even a refusal, is not retried.
        calls.lock().unwrap().clear();
        let refusal = || {
            calls.lock().unwrap().push(tokio::time::Instant::now());
            async { Err::<tonic::Response<()>, _>(tonic::Status::failed_precondition("no")) }
        };
        let err = idempotent("r", refusal).await.unwrap_err();
        assert_eq!(calls.lock().unwrap().len(), 1);
        assert_eq!(crate::cmd::exit_code(&err), 1);
    }
}
