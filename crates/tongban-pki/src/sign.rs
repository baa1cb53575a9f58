//! Node signatures over receipts and checkpoints, and verification of a
//! signer's certificate against the federation CA.
//!
//! A signature is ECDSA P-256 with SHA-256 (ASN.1 DER) over
//! `domain || 0x00 || message`, where `domain` names what is signed
//! (`tongban-receipt-v1`, `tongban-checkpoint-v1`) so that a signature over
//! one kind of message can never be replayed as another.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, UnparsedPublicKey,
};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::identity::uri_sans;
use crate::issue::pem_to_der;
use crate::seen::{Proved, Seen};
use crate::{Identity, PkiError};

fn signed_bytes(domain: &str, message: &[u8]) -> Vec<u8> {
    let mut data = Vec::with_capacity(domain.len() + 1 + message.len());
    data.extend_from_slice(domain.as_bytes());
    data.push(0);
    data.extend_from_slice(message);
    data
}

/// A node's signing key with its certificate.
pub struct NodeSigner {
    key: EcdsaKeyPair,
    rng: SystemRandom,
    cert_der: Vec<u8>,
    identity: Identity,
}

impl std::fmt::Debug for NodeSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeSigner")
            .field("identity", &self.identity.to_string())
            .finish()
    }
}

impl NodeSigner {
    /// Builds a signer from the node's certificate and PKCS#8 key (PEM).
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, PkiError> {
        let cert_der = pem_to_der(cert_pem, "node certificate")?;
        let identity = Identity::from_cert_der(&cert_der)?;
        let key_der = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
            .map_err(|e| PkiError::malformed("node key", format!("{e:?}")))?;
        let PrivateKeyDer::Pkcs8(pkcs8) = key_der else {
            return Err(PkiError::malformed("node key", "not a PKCS#8 key"));
        };
        let rng = SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_ASN1_SIGNING,
            pkcs8.secret_pkcs8_der(),
            &rng,
        )
        .map_err(|e| PkiError::malformed("node key", format!("not an ECDSA P-256 key: {e}")))?;
        let (_, cert) = X509Certificate::from_der(&cert_der)
            .map_err(|e| PkiError::malformed("node certificate", e))?;
        if cert.public_key().subject_public_key.data.as_ref()
            != ring::signature::KeyPair::public_key(&key).as_ref()
        {
            return Err(PkiError::malformed(
                "node key",
                "does not match the node certificate",
            ));
        }
        Ok(Self {
            key,
            rng,
            cert_der,
            identity,
        })
    }

    /// Signs `domain || 0x00 || message`.
    pub fn sign(&self, domain: &str, message: &[u8]) -> Result<Vec<u8>, PkiError> {
        self.key
            .sign(&self.rng, &signed_bytes(domain, message))
            .map(|s| s.as_ref().to_vec())
            .map_err(|_| PkiError::Signature("signing failed (no randomness)".into()))
    }

    /// The signer's certificate, DER.
    pub fn certificate_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// The signer's identity.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }
}

/// Verifies `signature` over `domain || 0x00 || message` with the public key
/// of `cert_der`. Does not check the certificate itself: see [`TrustAnchor`].
pub fn verify_signature(
    cert_der: &[u8],
    domain: &str,
    message: &[u8],
    signature: &[u8],
) -> Result<(), PkiError> {
    let (_, cert) = X509Certificate::from_der(cert_der)
        .map_err(|e| PkiError::malformed("signer certificate", e))?;
    let key = UnparsedPublicKey::new(
        &ECDSA_P256_SHA256_ASN1,
        cert.public_key().subject_public_key.data.as_ref(),
    );
    key.verify(&signed_bytes(domain, message), signature)
        .map_err(|_| PkiError::Signature(format!("{domain} signature does not verify")))
}

/// The federation CA as a verifier of certificates met outside a TLS
/// handshake (receipt and checkpoint signers, exported bundles).
#[derive(Clone)]
pub struct TrustAnchor {
    verifier: Arc<dyn ClientCertVerifier>,
    trust_domain: String,
    ca_der: Vec<u8>,
    ca_validity: (SystemTime, SystemTime),
    verified: Arc<Mutex<HashMap<[u8; 32], Verified>>>,
    /// Signatures verified once, when the holder asked for that
    /// ([`TrustAnchor::with_signature_cache`]); shared by clones.
    seen: Option<Arc<Seen>>,
}

/// A certificate that chained to the CA once. A node sees the same few
/// signer certificates on every receipt and checkpoint; building the chain
/// again (an ECDSA verification and an X.509 parse) each time was a tenth
/// of the sender's CPU in the drain benchmark. Only the chain is
/// remembered: validity is checked against each call's time, and the
/// signature is verified every time.
#[derive(Clone)]
struct Verified {
    identity: Identity,
    /// When both the certificate and the CA are valid.
    valid: (SystemTime, SystemTime),
    public_key: Vec<u8>,
}

/// More distinct signers than a federation has nodes and auditors; past it
/// the cache starts afresh rather than growing without bound.
const VERIFIED_MAX: usize = 4096;

fn validity(cert: &X509Certificate<'_>) -> (SystemTime, SystemTime) {
    let at = |t: x509_parser::time::ASN1Time| {
        let secs = t.timestamp();
        if secs >= 0 {
            SystemTime::UNIX_EPOCH + Duration::from_secs(secs as u64)
        } else {
            SystemTime::UNIX_EPOCH
        }
    };
    (
        at(cert.validity().not_before),
        at(cert.validity().not_after),
    )
}

impl std::fmt::Debug for TrustAnchor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustAnchor")
            .field("trust_domain", &self.trust_domain)
            .finish()
    }
}

impl TrustAnchor {
    /// Builds the anchor from the CA certificate (PEM); the trust domain is
    /// the CA's `spiffe://TD` URI SAN.
    pub fn from_pem(ca_pem: &str) -> Result<Self, PkiError> {
        let ca_der = pem_to_der(ca_pem, "ca certificate")?;
        Self::from_der(ca_der)
    }

    /// Builds the anchor from the CA certificate (DER).
    pub fn from_der(ca_der: Vec<u8>) -> Result<Self, PkiError> {
        let (_, cert) = X509Certificate::from_der(&ca_der)
            .map_err(|e| PkiError::malformed("ca certificate", e))?;
        let ca_validity = validity(&cert);
        let trust_domain = match uri_sans(&cert)?.as_slice() {
            [uri] => uri
                .strip_prefix("spiffe://")
                .filter(|td| !td.is_empty() && !td.contains('/'))
                .map(str::to_owned),
            _ => None,
        }
        .ok_or_else(|| {
            PkiError::Identity("ca certificate must carry one URI SAN spiffe://TRUST-DOMAIN".into())
        })?;
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from(ca_der.clone()))
            .map_err(|e| PkiError::Tls(format!("ca certificate not usable as a root: {e}")))?;
        let verifier = WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::new(rustls::crypto::ring::default_provider()),
        )
        .build()
        .map_err(|e| PkiError::Tls(e.to_string()))?;
        Ok(Self {
            verifier,
            trust_domain,
            ca_der,
            ca_validity,
            verified: Arc::new(Mutex::new(HashMap::new())),
            seen: None,
        })
    }

    /// This anchor, keeping up to `capacity` signatures it verified (least
    /// recently used first out), so the same signed bytes with the same
    /// signature and signer certificate are not verified again while the
    /// certificate and the CA are valid at the time asked about. For a
    /// long-lived verifier that meets the same signed things repeatedly
    /// (the console's traces); a one-shot check needs none.
    pub fn with_signature_cache(mut self, capacity: NonZeroUsize) -> Self {
        self.seen = Some(Arc::new(Seen::new(capacity)));
        self
    }

    /// How many signatures were verified in full (not answered from the
    /// cache) since [`TrustAnchor::with_signature_cache`]; `None` without one.
    pub fn signature_checks(&self) -> Option<u64> {
        self.seen.as_ref().map(|s| s.checks())
    }

    /// The federation's trust domain.
    pub fn trust_domain(&self) -> &str {
        &self.trust_domain
    }

    /// The CA certificate, DER.
    pub fn ca_der(&self) -> &[u8] {
        &self.ca_der
    }

    /// The rustls verifier for client certificates (used by the TLS server).
    pub(crate) fn client_verifier(&self) -> Arc<dyn ClientCertVerifier> {
        self.verifier.clone()
    }

    /// Checks that `cert_der` chains to the CA and was valid at `at`, and
    /// returns its identity (which must be in this trust domain).
    pub fn verify_cert(&self, cert_der: &[u8], at: SystemTime) -> Result<Identity, PkiError> {
        self.verified(cert_der, at).map(|v| v.identity)
    }

    /// [`TrustAnchor::verify_cert`] through the cache of chains already built.
    fn verified(&self, cert_der: &[u8], at: SystemTime) -> Result<Verified, PkiError> {
        let digest: [u8; 32] = ring::digest::digest(&ring::digest::SHA256, cert_der)
            .as_ref()
            .try_into()
            .expect("SHA-256 is 32 bytes");
        let cached = self
            .verified
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&digest)
            .cloned();
        if let Some(v) = cached
            && v.valid.0 <= at
            && at <= v.valid.1
        {
            return Ok(v);
        }
        // Outside the remembered window (or never seen): the full check,
        // which also names the reason (expired, not yet valid, ...).
        let identity = self.verify_chain(cert_der, at)?;
        let (_, cert) = X509Certificate::from_der(cert_der)
            .map_err(|e| PkiError::malformed("signer certificate", e))?;
        let (nb, na) = validity(&cert);
        let v = Verified {
            identity,
            valid: (nb.max(self.ca_validity.0), na.min(self.ca_validity.1)),
            public_key: cert.public_key().subject_public_key.data.to_vec(),
        };
        let mut cache = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= VERIFIED_MAX {
            cache.clear();
        }
        cache.insert(digest, v.clone());
        Ok(v)
    }

    fn verify_chain(&self, cert_der: &[u8], at: SystemTime) -> Result<Identity, PkiError> {
        let since = at
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        self.verifier
            .verify_client_cert(
                &CertificateDer::from(cert_der),
                &[],
                UnixTime::since_unix_epoch(since),
            )
            .map_err(|e| PkiError::Untrusted(e.to_string()))?;
        let identity = Identity::from_cert_der(cert_der)?;
        if identity.trust_domain != self.trust_domain {
            return Err(PkiError::Identity(format!(
                "{identity} is not in trust domain {}",
                self.trust_domain
            )));
        }
        Ok(identity)
    }

    /// Verifies a signature made by a certificate of this federation: the
    /// certificate chain and validity at `at`, then the signature. Returns the
    /// signer's identity.
    pub fn verify_signed(
        &self,
        cert_der: &[u8],
        domain: &str,
        message: &[u8],
        signature: &[u8],
        at: SystemTime,
    ) -> Result<Identity, PkiError> {
        let key = self
            .seen
            .as_ref()
            .map(|_| Seen::key(cert_der, domain, message, signature));
        if let (Some(seen), Some(key)) = (&self.seen, &key)
            && let Some(identity) = seen.get(key, at)
        {
            return Ok(identity);
        }
        // Never seen, or asked about a time outside the window it held in:
        // the full check (chain, validity at `at`, signature).
        let v = self.verified(cert_der, at)?;
        if let Some(seen) = &self.seen {
            seen.count_check();
        }
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &v.public_key)
            .verify(&signed_bytes(domain, message), signature)
            .map_err(|_| PkiError::Signature(format!("{domain} signature does not verify")))?;
        if let (Some(seen), Some(key)) = (&self.seen, key) {
            seen.put(
                key,
                Proved {
                    identity: v.identity.clone(),
                    valid: v.valid,
                },
            );
        }
        Ok(v.identity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Principal;
    use crate::issue::Ca;
    use tongban_core::CountyCode;

    /// The signer of 610113's node, certified by `ca` for ten days.
    fn node_signer(ca: &Ca) -> NodeSigner {
        let county: CountyCode = "610113".parse().unwrap();
        let pair = ca
            .issue(Principal::Node { county }, &["127.0.0.1".into()], 10)
            .unwrap();
        NodeSigner::from_pem(&pair.cert_pem, &pair.key_pem).unwrap()
    }

    #[test]
    fn a_remembered_chain_still_checks_validity_and_every_signature() {
        let ca = Ca::generate("tongban.test", 30).unwrap();
        let signer = node_signer(&ca);
        let anchor = TrustAnchor::from_pem(ca.cert_pem()).unwrap();
        let cert = signer.certificate_der();
        let sig = signer.sign("d", b"message").unwrap();
        let now = SystemTime::now();
        for _ in 0..2 {
            // The second round is answered from the cache.
            let who = anchor
                .verify_signed(cert, "d", b"message", &sig, now)
                .unwrap();
            assert_eq!(who, *signer.identity());
        }
        let err = anchor
            .verify_signed(cert, "d", b"massage", &sig, now)
            .unwrap_err();
        assert!(matches!(err, PkiError::Signature(_)), "{err}");
        let err = anchor
            .verify_signed(cert, "other", b"message", &sig, now)
            .unwrap_err();
        assert!(matches!(err, PkiError::Signature(_)), "{err}");
        let later = now + Duration::from_secs(11 * 86_400);
        let err = anchor
            .verify_signed(cert, "d", b"message", &sig, later)
            .unwrap_err();
        assert!(matches!(err, PkiError::Untrusted(_)), "expired: {err}");
        let earlier = now - Duration::from_secs(86_400);
        let err = anchor.verify_cert(cert, earlier).unwrap_err();
        assert!(
            matches!(err, PkiError::Untrusted(_)),
            "not yet valid: {err}"
        );

        // A certificate of another CA is not trusted, cache or not.
        let forged = node_signer(&Ca::generate("tongban.test", 30).unwrap());
        let sig = forged.sign("d", b"message").unwrap();
        let err = anchor
            .verify_signed(forged.certificate_der(), "d", b"message", &sig, now)
            .unwrap_err();
        assert!(matches!(err, PkiError::Untrusted(_)), "{err}");
    }

    #[test]
    fn a_cached_signature_is_reused_only_for_the_same_bytes_and_valid_time() {
        let ca = Ca::generate("tongban.test", 30).unwrap();
        let signer = node_signer(&ca);
        let anchor = TrustAnchor::from_pem(ca.cert_pem())
            .unwrap()
            .with_signature_cache(NonZeroUsize::new(2).unwrap());
        let cert = signer.certificate_der();
        let sig = signer.sign("d", b"message").unwrap();
        let now = SystemTime::now();
        let checks = |a: &TrustAnchor| a.signature_checks().unwrap();
        assert_eq!(checks(&anchor), 0);
        for _ in 0..3 {
            let who = anchor
                .verify_signed(cert, "d", b"message", &sig, now)
                .unwrap();
            assert_eq!(who, *signer.identity());
        }
        assert_eq!(checks(&anchor), 1, "the same signed thing is verified once");
        // A clone shares the cache (the console hands its anchor around).
        anchor
            .clone()
            .verify_signed(cert, "d", b"message", &sig, now)
            .unwrap();
        assert_eq!(checks(&anchor), 1);

        // Other bytes, another domain or another signature: verified again.
        assert!(
            anchor
                .verify_signed(cert, "d", b"massage", &sig, now)
                .is_err()
        );
        assert!(
            anchor
                .verify_signed(cert, "e", b"message", &sig, now)
                .is_err()
        );
        let other = signer.sign("d", b"message").unwrap();
        assert_ne!(other, sig, "ECDSA signatures are randomized");
        anchor
            .verify_signed(cert, "d", b"message", &other, now)
            .unwrap();
        assert_eq!(checks(&anchor), 4);
        // A failure is not kept: asking again checks again.
        assert!(
            anchor
                .verify_signed(cert, "d", b"massage", &sig, now)
                .is_err()
        );
        assert_eq!(checks(&anchor), 5);

        // Cached before expiry, asked about after it: refused as expired.
        anchor
            .verify_signed(cert, "d", b"message", &sig, now)
            .unwrap();
        let later = now + Duration::from_secs(11 * 86_400);
        let err = anchor
            .verify_signed(cert, "d", b"message", &sig, later)
            .unwrap_err();
        assert!(matches!(err, PkiError::Untrusted(_)), "expired: {err}");
        let earlier = now - Duration::from_secs(86_400);
        let err = anchor
            .verify_signed(cert, "d", b"message", &sig, earlier)
            .unwrap_err();
        assert!(
            matches!(err, PkiError::Untrusted(_)),
            "not yet valid: {err}"
        );

        // Bounded: with room for two, the least recently used goes first.
        let checked = checks(&anchor);
        let a = signer.sign("d", b"a").unwrap();
        let b = signer.sign("d", b"b").unwrap();
        anchor.verify_signed(cert, "d", b"a", &a, now).unwrap();
        anchor.verify_signed(cert, "d", b"b", &b, now).unwrap();
        anchor
            .verify_signed(cert, "d", b"message", &sig, now)
            .unwrap();
        assert_eq!(checks(&anchor), checked + 3, "message was pushed out");
        anchor.verify_signed(cert, "d", b"b", &b, now).unwrap();
        assert_eq!(checks(&anchor), checked + 3, "b is still kept");

        // Without a cache nothing is counted or kept.
        assert_eq!(
            TrustAnchor::from_pem(ca.cert_pem())
                .unwrap()
                .signature_checks(),
            None
        );
    }
}
