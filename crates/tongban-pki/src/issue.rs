//! The federation CA and certificate issuance (`tongban certs`): ECDSA P-256
//! keys, exactly one URI SAN (the SPIFFE ID) per certificate, keys written
//! with mode 0600, and inspection of a certificate directory.

use std::fs;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, PublicKeyData, SanType,
};
use time::{Duration, OffsetDateTime};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::identity::{check_trust_domain, uri_sans};
use crate::{Identity, PkiError, Principal};

/// File name of the CA certificate in a certificate directory.
pub const CA_CERT: &str = "ca.crt";
/// File name of the CA key in a certificate directory.
pub const CA_KEY: &str = "ca.key";

/// A certificate that was written to disk.
#[derive(Debug, Clone)]
pub struct Issued {
    /// Where the certificate (PEM) is.
    pub cert_path: PathBuf,
    /// Where the key (PKCS#8 PEM, mode 0600) is.
    pub key_path: PathBuf,
    /// The SPIFFE ID it carries.
    pub spiffe_id: String,
    /// End of validity.
    pub not_after: OffsetDateTime,
}

/// What a leaf certificate should contain. [`Ca::issue`] builds one from a
/// [`Principal`]; tests build odd ones by hand (two URI SANs, expired).
#[derive(Debug, Clone)]
pub struct LeafSpec {
    /// URI SANs; a valid federation certificate has exactly one.
    pub uris: Vec<String>,
    /// DNS names or IP addresses the certificate serves (nodes only).
    pub hosts: Vec<String>,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
    /// Whether the certificate may authenticate a TLS server (nodes).
    pub server: bool,
}

/// A PEM certificate and its PEM key, in memory.
#[derive(Debug, Clone)]
pub struct PemPair {
    /// Certificate, PEM.
    pub cert_pem: String,
    /// PKCS#8 private key, PEM.
    pub key_pem: String,
}

/// The federation CA: its certificate, key and trust domain.
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
    key_pem: String,
    trust_domain: String,
    not_after: OffsetDateTime,
}

impl Ca {
    /// Generates a new CA for `trust_domain`, valid from now for `days`.
    pub fn generate(trust_domain: &str, days: u32) -> Result<Self, PkiError> {
        let now = OffsetDateTime::now_utc();
        Self::generate_between(
            trust_domain,
            now - Duration::minutes(5),
            now + Duration::days(days.into()),
        )
    }

    /// Generates a new CA valid between the given times.
    pub fn generate_between(
        trust_domain: &str,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> Result<Self, PkiError> {
        check_trust_domain(trust_domain)?;
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let mut params = CertificateParams::default();
        params.distinguished_name.push(
            DnType::CommonName,
            format!("tongban federation CA {trust_domain}"),
        );
        params.subject_alt_names = vec![SanType::URI(
            format!("spiffe://{trust_domain}")
                .try_into()
                .map_err(|e| PkiError::malformed("trust domain", e))?,
        )];
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.not_before = not_before;
        params.not_after = not_after;
        let cert = params.self_signed(&key)?;
        let cert_pem = cert.pem();
        let key_pem = key.serialize_pem();
        Ok(Self {
            issuer: Issuer::new(params, key),
            cert_pem,
            key_pem,
            trust_domain: trust_domain.to_owned(),
            not_after,
        })
    }

    /// Loads `ca.crt` and `ca.key` from a certificate directory.
    pub fn load(dir: &Path) -> Result<Self, PkiError> {
        let cert_path = dir.join(CA_CERT);
        let key_path = dir.join(CA_KEY);
        let cert_pem = fs::read_to_string(&cert_path)
            .map_err(|e| PkiError::io("failed to read", &cert_path, e))?;
        let key_pem = fs::read_to_string(&key_path)
            .map_err(|e| PkiError::io("failed to read", &key_path, e))?;
        Self::from_pem(&cert_pem, &key_pem)
            .map_err(|e| PkiError::malformed(cert_path.display().to_string(), e))
    }

    /// Builds a CA from PEM text.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, PkiError> {
        let key = KeyPair::from_pem(key_pem).map_err(|e| PkiError::malformed("ca key", e))?;
        let der = pem_to_der(cert_pem, "ca certificate")?;
        let (_, cert) = X509Certificate::from_der(&der)
            .map_err(|e| PkiError::malformed("ca certificate", e))?;
        let trust_domain = match uri_sans(&cert)?.as_slice() {
            [uri] => uri
                .strip_prefix("spiffe://")
                .filter(|td| !td.contains('/'))
                .map(str::to_owned)
                .ok_or_else(|| {
                    PkiError::Identity(format!("ca URI SAN {uri:?} is not spiffe://TRUST-DOMAIN"))
                })?,
            _ => {
                return Err(PkiError::Identity(
                    "ca certificate must carry exactly one URI SAN, spiffe://TRUST-DOMAIN".into(),
                ));
            }
        };
        if key.subject_public_key_info() != cert.tbs_certificate.subject_pki.raw {
            return Err(PkiError::malformed(
                "ca key",
                "does not match the ca certificate",
            ));
        }
        let not_after = cert.validity().not_after.to_datetime();
        let issuer = Issuer::from_ca_cert_der(&der.into(), key)?;
        Ok(Self {
            issuer,
            cert_pem: cert_pem.to_owned(),
            key_pem: key_pem.to_owned(),
            trust_domain,
            not_after,
        })
    }

    /// The trust domain this CA speaks for.
    pub fn trust_domain(&self) -> &str {
        &self.trust_domain
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// End of the CA's validity.
    pub fn not_after(&self) -> OffsetDateTime {
        self.not_after
    }

    /// Issues a certificate for `principal`, valid from now for `days`.
    /// Refused when it would outlive the CA.
    pub fn issue(
        &self,
        principal: Principal,
        hosts: &[String],
        days: u32,
    ) -> Result<PemPair, PkiError> {
        let identity = Identity::new(&self.trust_domain, principal)?;
        let now = OffsetDateTime::now_utc();
        let not_after = now + Duration::days(days.into());
        if not_after > self.not_after {
            return Err(PkiError::Refused(format!(
                "a certificate valid for {days} days would outlive the CA (valid until {}); use --days {} or less",
                self.not_after.date(),
                (self.not_after - now).whole_days()
            )));
        }
        let server = matches!(identity.principal, Principal::Node { .. });
        if server && hosts.is_empty() {
            return Err(PkiError::Refused(
                "a node certificate needs at least one --host".into(),
            ));
        }
        self.issue_leaf(&LeafSpec {
            uris: vec![identity.spiffe_id()],
            hosts: hosts.to_vec(),
            not_before: now - Duration::minutes(5),
            not_after,
            server,
        })
    }

    /// Issues a certificate exactly as specified, without policy checks.
    pub fn issue_leaf(&self, spec: &LeafSpec) -> Result<PemPair, PkiError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let mut params = CertificateParams::default();
        let cn = spec
            .uris
            .first()
            .cloned()
            .unwrap_or_else(|| "tongban".into());
        params.distinguished_name.push(DnType::CommonName, cn);
        for uri in &spec.uris {
            params.subject_alt_names.push(SanType::URI(
                uri.clone()
                    .try_into()
                    .map_err(|e| PkiError::malformed("uri", e))?,
            ));
        }
        for host in &spec.hosts {
            params.subject_alt_names.push(match host.parse::<IpAddr>() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName(
                    host.clone()
                        .try_into()
                        .map_err(|e| PkiError::malformed(format!("host {host:?}"), e))?,
                ),
            });
        }
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = if spec.server {
            vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ]
        } else {
            vec![ExtendedKeyUsagePurpose::ClientAuth]
        };
        params.use_authority_key_identifier_extension = true;
        params.not_before = spec.not_before;
        params.not_after = spec.not_after;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(PemPair {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// Writes `ca.crt` and `ca.key` into `dir`.
    pub fn write(&self, dir: &Path, overwrite: bool) -> Result<Issued, PkiError> {
        let pair = PemPair {
            cert_pem: self.cert_pem.clone(),
            key_pem: self.key_pem.clone(),
        };
        let (cert_path, key_path) = write_pair(dir, "ca", &pair, overwrite)?;
        Ok(Issued {
            cert_path,
            key_path,
            spiffe_id: format!("spiffe://{}", self.trust_domain),
            not_after: self.not_after,
        })
    }

    /// Issues for `principal` and writes the pair into `dir` under the
    /// docs/cli.md file name (`node-CODE`, `clerk-CODE-NAME`, ...).
    pub fn issue_to_dir(
        &self,
        dir: &Path,
        principal: Principal,
        hosts: &[String],
        days: u32,
        overwrite: bool,
    ) -> Result<Issued, PkiError> {
        let identity = Identity::new(&self.trust_domain, principal)?;
        let stem = file_stem(&identity.principal);
        let (cert_path, key_path) = (
            dir.join(format!("{stem}.crt")),
            dir.join(format!("{stem}.key")),
        );
        if !overwrite {
            refuse_existing(&[&cert_path, &key_path])?;
        }
        let pair = self.issue(identity.principal.clone(), hosts, days)?;
        let not_after = cert_not_after(&pair.cert_pem)?;
        write_pair(dir, &stem, &pair, overwrite)?;
        Ok(Issued {
            cert_path,
            key_path,
            spiffe_id: identity.spiffe_id(),
            not_after,
        })
    }
}

/// The file stem docs/cli.md gives each kind of certificate.
pub fn file_stem(principal: &Principal) -> String {
    match principal {
        Principal::Node { county } => format!("node-{county}"),
        Principal::Clerk { county, name } => format!("clerk-{county}-{name}"),
        Principal::Reviewer { county, name } => format!("reviewer-{county}-{name}"),
        Principal::Auditor { county: None, name } => format!("auditor-{name}"),
        Principal::Auditor {
            county: Some(county),
            name,
        } => format!("auditor-{county}-{name}"),
    }
}

fn refuse_existing(paths: &[&Path]) -> Result<(), PkiError> {
    for path in paths {
        if path.exists() {
            return Err(PkiError::Exists {
                path: path.to_path_buf(),
            });
        }
    }
    Ok(())
}

fn write_pair(
    dir: &Path,
    stem: &str,
    pair: &PemPair,
    overwrite: bool,
) -> Result<(PathBuf, PathBuf), PkiError> {
    let cert_path = dir.join(format!("{stem}.crt"));
    let key_path = dir.join(format!("{stem}.key"));
    if !overwrite {
        refuse_existing(&[&cert_path, &key_path])?;
    }
    fs::create_dir_all(dir).map_err(|e| PkiError::io("failed to create", dir, e))?;
    // The key first: a certificate without its key is useless, and a reader
    // that finds the certificate expects the key beside it.
    write_file(&key_path, pair.key_pem.as_bytes(), 0o600)?;
    write_file(&cert_path, pair.cert_pem.as_bytes(), 0o644)?;
    Ok((cert_path, key_path))
}

fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), PkiError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .map_err(|e| PkiError::io("failed to create", path, e))?;
    // `mode` applies only to new files; an overwritten key must not keep a
    // looser mode it had before.
    file.set_permissions(fs::Permissions::from_mode(mode))
        .and_then(|()| file.write_all(bytes))
        .and_then(|()| file.sync_all())
        .map_err(|e| PkiError::io("failed to write", path, e))
}

/// Decodes the first PEM certificate in `pem`.
pub(crate) fn pem_to_der(pem: &str, what: &str) -> Result<Vec<u8>, PkiError> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    CertificateDer::from_pem_slice(pem.as_bytes())
        .map(|c| c.to_vec())
        .map_err(|e| PkiError::malformed(what.to_owned(), format!("{e:?}")))
}

fn cert_not_after(pem: &str) -> Result<OffsetDateTime, PkiError> {
    let der = pem_to_der(pem, "certificate")?;
    let (_, cert) =
        X509Certificate::from_der(&der).map_err(|e| PkiError::malformed("certificate", e))?;
    Ok(cert.validity().not_after.to_datetime())
}

/// One certificate file as `tongban certs list` reports it.
#[derive(Debug, Clone)]
pub struct CertFileReport {
    /// The certificate's file name.
    pub file: String,
    /// Its SPIFFE ID, or why it has none.
    pub identity: String,
    /// End of validity, if the file parsed.
    pub not_after: Option<OffsetDateTime>,
    /// Everything wrong with it (empty when fine).
    pub problems: Vec<String>,
}

/// Inspects every `*.crt` in `dir`: identity, expiry, and problems (expired,
/// expiring within 30 days, key missing or not matching, key readable by
/// others, not issued by `ca.crt`, not exactly one URI SAN).
pub fn list(dir: &Path) -> Result<Vec<CertFileReport>, PkiError> {
    let entries = fs::read_dir(dir).map_err(|e| PkiError::io("failed to read", dir, e))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "crt"))
        .collect();
    files.sort();
    let ca_der = fs::read_to_string(dir.join(CA_CERT))
        .ok()
        .and_then(|pem| pem_to_der(&pem, "ca").ok());
    Ok(files
        .iter()
        .map(|path| inspect(path, ca_der.as_deref()))
        .collect())
}

fn inspect(path: &Path, ca_der: Option<&[u8]>) -> CertFileReport {
    let file = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut report = CertFileReport {
        file,
        identity: String::new(),
        not_after: None,
        problems: Vec::new(),
    };
    let der = match fs::read_to_string(path)
        .map_err(|e| e.to_string())
        .and_then(|pem| pem_to_der(&pem, "certificate").map_err(|e| e.to_string()))
    {
        Ok(der) => der,
        Err(e) => {
            report.identity = "-".into();
            report.problems.push(format!("unreadable: {e}"));
            return report;
        }
    };
    let Ok((_, cert)) = X509Certificate::from_der(&der) else {
        report.identity = "-".into();
        report.problems.push("not a valid X.509 certificate".into());
        return report;
    };
    let is_ca = cert.is_ca();
    report.identity = if is_ca {
        match uri_sans(&cert).as_deref() {
            Ok([uri]) => format!("CA {uri}"),
            _ => "CA (no spiffe trust domain)".into(),
        }
    } else {
        match Identity::from_cert(&cert) {
            Ok(id) => id.spiffe_id(),
            Err(e) => {
                report.problems.push(e.to_string());
                "-".into()
            }
        }
    };
    let now = OffsetDateTime::now_utc();
    let validity = cert.validity();
    let not_after = validity.not_after.to_datetime();
    report.not_after = Some(not_after);
    if not_after < now {
        report.problems.push("expired".into());
    } else if not_after - now < Duration::days(30) {
        report.problems.push(format!(
            "expires in {} days",
            (not_after - now).whole_days()
        ));
    }
    if validity.not_before.to_datetime() > now {
        report.problems.push("not yet valid".into());
    }
    match ca_der.map(X509Certificate::from_der) {
        Some(Ok((_, ca))) if cert.verify_signature(Some(ca.public_key())).is_err() => {
            report.problems.push("not issued by ca.crt".into());
        }
        Some(Ok(_)) => {}
        _ if !is_ca => report.problems.push("no readable ca.crt beside it".into()),
        _ => {}
    }
    let key_path = path.with_extension("key");
    match fs::read_to_string(&key_path) {
        Err(_) => report.problems.push("key file missing".into()),
        Ok(key_pem) => {
            match KeyPair::from_pem(&key_pem) {
                Ok(key)
                    if key.subject_public_key_info() == cert.tbs_certificate.subject_pki.raw => {}
                Ok(_) => report
                    .problems
                    .push("key does not match certificate".into()),
                Err(_) => report.problems.push("key file unreadable".into()),
            }
            use std::os::unix::fs::PermissionsExt;
            if let Ok(meta) = fs::metadata(&key_path) {
                let mode = meta.permissions().mode() & 0o777;
                if mode & 0o077 != 0 {
                    report
                        .problems
                        .push(format!("key readable by others (mode {mode:o})"));
                }
            }
        }
    }
    report
}
