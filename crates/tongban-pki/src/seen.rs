//! Signatures already verified, for a verifier that meets the same signed
//! things again and again (the console's auditor traces: partner
//! checkpoints, receipts and their signers come back in every trace of the
//! same nodes). Owns only the bounded map; [`crate::TrustAnchor`] decides
//! when to consult it.
//!
//! An entry is keyed by the SHA-256 of exactly what was verified — domain,
//! signed bytes, signature and signer certificate DER, each length-prefixed
//! so no two inputs share a key — and belongs to one anchor (one CA), so the
//! trust anchor is part of the key by construction. It keeps the window in
//! which the certificate and the CA were both valid: a hit counts only when
//! the time asked about lies inside it, so an expired certificate goes back
//! to the full check, which refuses it and names why.

use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use lru::LruCache;
use ring::digest::{Context, SHA256};

use crate::Identity;

/// The key of one verification: SHA-256 over the length-prefixed parts.
pub(crate) type Key = [u8; 32];

/// What a verification proved: who signed, and when that holds.
#[derive(Clone)]
pub(crate) struct Proved {
    pub(crate) identity: Identity,
    /// When both the signer's certificate and the CA are valid.
    pub(crate) valid: (SystemTime, SystemTime),
}

/// A bounded, least-recently-used map of signatures verified once.
pub(crate) struct Seen {
    entries: Mutex<LruCache<Key, Proved>>,
    /// ECDSA verifications made because nothing valid was kept.
    checks: AtomicU64,
}

impl Seen {
    pub(crate) fn new(capacity: NonZeroUsize) -> Self {
        Self {
            entries: Mutex::new(LruCache::new(capacity)),
            checks: AtomicU64::new(0),
        }
    }

    /// The key of verifying `signature` by `cert_der` over `domain`'s `message`.
    pub(crate) fn key(cert_der: &[u8], domain: &str, message: &[u8], signature: &[u8]) -> Key {
        let mut ctx = Context::new(&SHA256);
        for part in [domain.as_bytes(), message, signature, cert_der] {
            ctx.update(&(part.len() as u64).to_be_bytes());
            ctx.update(part);
        }
        ctx.finish()
            .as_ref()
            .try_into()
            .expect("SHA-256 is 32 bytes")
    }

    /// The signer proved before under `key`, if that holds at `at`.
    pub(crate) fn get(&self, key: &Key, at: SystemTime) -> Option<Identity> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(key)
            .filter(|p| p.valid.0 <= at && at <= p.valid.1)
            .map(|p| p.identity.clone())
    }

    /// Keeps what a full verification under `key` proved.
    pub(crate) fn put(&self, key: Key, proved: Proved) {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .put(key, proved);
    }

    /// Counts one full signature verification.
    pub(crate) fn count_check(&self) {
        self.checks.fetch_add(1, Ordering::Relaxed);
    }

    /// Full signature verifications made so far.
    pub(crate) fn checks(&self) -> u64 {
        self.checks.load(Ordering::Relaxed)
    }
}
