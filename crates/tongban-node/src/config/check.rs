//! `tongban node --check`: every problem of a config collected instead of
//! the first one — the TLS files (chain, identity, expiry, key) and the
//! data dir (exists or can be created, who may read it).

use std::path::Path;
use tongban_core::{CountyCode, Directory};
use tongban_pki::check::Part;
use tongban_pki::tls::TlsMaterial;
use tongban_pki::{Identity, NodeSigner, Principal, TrustAnchor};

use super::ConfigError;

/// Everything wrong with a config, as `tongban node --check` reports it.
#[derive(Debug, Default)]
pub struct Check {
    /// Problems that stop the node (exit 64).
    pub errors: Vec<ConfigError>,
    /// Problems it can run with (a certificate expiring soon, a data dir
    /// others can read).
    pub warnings: Vec<ConfigError>,
}

impl Check {
    pub(super) fn error(&mut self, e: ConfigError) {
        self.errors.push(e);
    }

    pub(super) fn warn(&mut self, e: ConfigError) {
        self.warnings.push(e);
    }

    /// Records `result`'s error, if any, and passes its value on.
    pub(super) fn ok<T>(&mut self, result: Result<T, ConfigError>) -> Option<T> {
        result.map_err(|e| self.error(e)).ok()
    }
}

/// The TLS files against the CA and this county's node identity (in the
/// directory's trust domain, or the CA's when the directory did not load):
/// every problem goes into `check`; the trust anchor and signer if none is
/// an error.
pub(super) fn check_tls(
    path: &Path,
    tls: &TlsMaterial,
    key_path: &Path,
    county: Option<&CountyCode>,
    directory: Option<&Directory>,
    check: &mut Check,
) -> Option<(TrustAnchor, NodeSigner)> {
    let anchor = tls.trust_anchor().ok();
    if let (Some(anchor), Some(directory)) = (&anchor, directory)
        && anchor.trust_domain() != directory.trust_domain
    {
        check.error(ConfigError::new(
            path,
            "tls.ca",
            format!(
                "the CA is for trust domain {:?} but the directory says {:?}",
                anchor.trust_domain(),
                directory.trust_domain
            ),
        ));
    }
    let trust_domain = directory
        .map(|d| d.trust_domain.clone())
        .or_else(|| anchor.as_ref().map(|a| a.trust_domain().to_owned()));
    let (Some(county), Some(trust_domain)) = (county, trust_domain) else {
        // Without the county or any trust domain only the CA can be checked.
        if anchor.is_none()
            && let Err(e) = tls.trust_anchor()
        {
            check.error(ConfigError::new(path, "tls.ca", e));
        }
        return None;
    };
    let expected = Identity {
        trust_domain,
        principal: Principal::Node {
            county: county.clone(),
        },
    };
    let findings = tongban_pki::check::node_files(
        tls,
        Some(key_path),
        &expected,
        std::time::SystemTime::now(),
    );
    let failed = findings.iter().any(|f| !f.warning);
    for f in findings {
        let field = match f.part {
            Part::Ca => "tls.ca",
            Part::Cert => "tls.cert",
            Part::Key => "tls.key",
        };
        let e = ConfigError::new(path, field, f.message);
        if f.warning {
            check.warn(e);
        } else {
            check.error(e);
        }
    }
    if failed {
        return None;
    }
    let signer = check.ok(NodeSigner::from_pem(&tls.cert_pem, &tls.key_pem)
        .map_err(|e| ConfigError::new(path, "tls.key", e)))?;
    // Fail now rather than at the first connection.
    check.ok(tls
        .server_acceptor()
        .map_err(|e| ConfigError::new(path, "tls", e)))?;
    Some((anchor?, signer))
}

/// The data dir exists as a directory this user may write, or its nearest
/// existing parent does (so it can be created); a warning if group or
/// others have any access to it. Reads only.
pub(super) fn check_data_dir(path: &Path, data_dir: &Path, check: &mut Check) {
    use std::os::unix::fs::PermissionsExt;
    let field = "data_dir";
    let mut existing = data_dir;
    while !existing.exists() {
        match existing.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => existing = parent,
            _ => {
                existing = Path::new(".");
                break;
            }
        }
    }
    let meta = match std::fs::metadata(existing) {
        Ok(m) => m,
        Err(e) => {
            check.error(ConfigError::new(
                path,
                field,
                format!("cannot read {}: {e}", existing.display()),
            ));
            return;
        }
    };
    if !meta.is_dir() {
        check.error(ConfigError::new(
            path,
            field,
            format!("{} is not a directory", existing.display()),
        ));
        return;
    }
    let writable = rustix::fs::access(
        existing,
        rustix::fs::Access::WRITE_OK | rustix::fs::Access::EXEC_OK,
    );
    if let Err(e) = writable {
        let what = if existing == data_dir {
            format!("{} is not writable by this user: {e}", data_dir.display())
        } else {
            format!(
                "{} does not exist and cannot be created: {} is not writable by this user: {e}",
                data_dir.display(),
                existing.display()
            )
        };
        check.error(ConfigError::new(path, field, what));
    }
    if existing == data_dir {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            check.warn(ConfigError::new(
                path,
                field,
                format!(
                    "{} is open to group or others (mode {mode:o}); chmod 700 it",
                    data_dir.display()
                ),
            ));
        }
    }
}
