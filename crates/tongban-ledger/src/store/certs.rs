//! Signer certificates kept once: a value that carries a signer's
//! certificate (the receipt in a `handoff.receipted` payload, the signed
//! receipt of a `received` record) is stored with the certificate cut out
//! and a reference in its place, the certificate itself once in the
//! `certs` tree under its SHA-256. Reading puts it back, so what comes out
//! is byte for byte what went in: the payload's digest in its ledger entry
//! still holds, and a receipt replayed or exported is whole and stands on
//! its own.
//!
//! A cut value is: the certificate's SHA-256 (32 bytes), the offset it was
//! cut at (u32, big-endian), its form there (0 the DER bytes, 1 their
//! lowercase hex), then the value without it. Where the value sits (which
//! tree, behind which version marker) is [`super::keys`]' and
//! [`super::commit`]'s.
//!
//! Owns the cut and the paste, and the cache of certificates seen in this
//! opening of the database (a few signers: one per partner and key).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sha2::Digest;

use crate::StoreError;

/// A certificate's key in the `certs` tree: SHA-256 of its DER.
pub(super) type Fingerprint = [u8; 32];

/// How the certificate is spelled inside the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Form {
    /// The DER bytes (inside an encoded protobuf message).
    Der = 0,
    /// Their lowercase hex (inside a JSON payload).
    Hex = 1,
}

/// A certificate, in both forms, with a searcher for each built once (a
/// searcher built per value was 1.3 % of the drain's CPU in perf).
#[derive(Debug)]
pub(super) struct Cert {
    pub(super) fingerprint: Fingerprint,
    der: Vec<u8>,
    hex: Vec<u8>,
    find_der: memchr::memmem::Finder<'static>,
    find_hex: memchr::memmem::Finder<'static>,
}

impl Cert {
    pub(super) fn new(der: &[u8]) -> Self {
        let hex = crate::records::hex(der).into_bytes();
        Self {
            fingerprint: sha2::Sha256::digest(der).into(),
            find_der: memchr::memmem::Finder::new(der).into_owned(),
            find_hex: memchr::memmem::Finder::new(&hex).into_owned(),
            der: der.to_vec(),
            hex,
        }
    }

    pub(super) fn find(&self, value: &[u8], form: Form) -> Option<usize> {
        match form {
            Form::Der => self.find_der.find(value),
            Form::Hex => self.find_hex.find(value),
        }
    }

    pub(super) fn der(&self) -> &[u8] {
        &self.der
    }

    fn spelled(&self, form: Form) -> &[u8] {
        match form {
            Form::Der => &self.der,
            Form::Hex => &self.hex,
        }
    }
}

/// The signer certificates one commit cuts out of its values: those this
/// opening already holds, and those it writes to the `certs` tree.
pub(super) struct Cutting<'a> {
    known: &'a Known,
    /// Certificates the commit writes (unless the tree has them already).
    pub(super) new: Vec<Arc<Cert>>,
    /// The certificate [`Cutting::of`] found last: a commit's values mostly
    /// carry one signer's (a batch of receipts from one partner, or this
    /// node's own), compared byte for byte instead of hashed for each.
    last: Option<Arc<Cert>>,
}

impl<'a> Cutting<'a> {
    pub(super) fn new(known: &'a Known) -> Self {
        Self {
            known,
            new: Vec::new(),
            last: None,
        }
    }

    /// The certificate [`Cutting::of`] found last, if any.
    pub(super) fn last(&self) -> Option<Arc<Cert>> {
        self.last.clone()
    }

    /// The certificate with this DER, or None for none.
    pub(super) fn of(&mut self, der: &[u8]) -> Option<Arc<Cert>> {
        if der.is_empty() {
            return None;
        }
        if let Some(last) = &self.last
            && last.der == der
        {
            return Some(last.clone());
        }
        let found = self.look_up(der);
        self.last.clone_from(&found);
        found
    }

    fn look_up(&self, der: &[u8]) -> Option<Arc<Cert>> {
        use sha2::Digest;
        let fingerprint: Fingerprint = sha2::Sha256::digest(der).into();
        self.known
            .get(&fingerprint)
            .or_else(|| {
                self.new
                    .iter()
                    .find(|c| c.fingerprint == fingerprint)
                    .cloned()
            })
            .or_else(|| Some(Arc::new(Cert::new(der))))
    }

    /// Notes that a value names `cert`: written with the commit if this
    /// opening does not know it yet.
    pub(super) fn used(&mut self, cert: Arc<Cert>) {
        let fingerprint = cert.fingerprint;
        if self.known.get(&fingerprint).is_none()
            && !self.new.iter().any(|c| c.fingerprint == fingerprint)
        {
            self.new.push(cert);
        }
    }
}

/// Length of the header of a cut value.
const HEADER: usize = 32 + 4 + 1;

/// Appends `value` to `out` with `cert` (in `form`) cut out: the header,
/// then the rest. False, and nothing appended, if `value` does not hold it.
pub(super) fn cut_into(out: &mut Vec<u8>, value: &[u8], cert: &Cert, form: Form) -> bool {
    let needle = cert.spelled(form);
    if needle.is_empty() {
        return false;
    }
    let Some(at) = cert.find(value, form) else {
        return false;
    };
    let Ok(offset) = u32::try_from(at) else {
        return false;
    };
    out.reserve(HEADER + value.len() - needle.len());
    out.extend_from_slice(&cert.fingerprint);
    out.extend_from_slice(&offset.to_be_bytes());
    out.push(form as u8);
    out.extend_from_slice(&value[..at]);
    out.extend_from_slice(&value[at + needle.len()..]);
    true
}

/// The value a [`cut_into`] wrote, whole again; `cert` finds a certificate
/// by its fingerprint.
pub(super) fn paste(
    tree: &'static str,
    cut: &[u8],
    cert: impl FnOnce(&Fingerprint) -> Result<Arc<Cert>, StoreError>,
) -> Result<Vec<u8>, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt { tree, reason };
    if cut.len() < HEADER {
        return Err(corrupt(
            "a value cut around its certificate is cut short".into(),
        ));
    }
    let fingerprint: Fingerprint = cut[..32].try_into().expect("32 bytes");
    let at = u32::from_be_bytes(cut[32..36].try_into().expect("4 bytes")) as usize;
    let form = match cut[36] {
        0 => Form::Der,
        1 => Form::Hex,
        f => return Err(corrupt(format!("unknown certificate form {f}"))),
    };
    let rest = &cut[HEADER..];
    if at > rest.len() {
        return Err(corrupt("a certificate's offset is past its value".into()));
    }
    let cert = cert(&fingerprint)?;
    let needle = cert.spelled(form);
    let mut out = Vec::with_capacity(rest.len() + needle.len());
    out.extend_from_slice(&rest[..at]);
    out.extend_from_slice(needle);
    out.extend_from_slice(&rest[at..]);
    Ok(out)
}

/// The certificates of one opening of the database that are known to be in
/// its `certs` tree (written by a commit that succeeded, or read back).
/// Replaced with the opening, so a commit lost with a failed flush never
/// leaves one here that the disk does not hold.
#[derive(Debug, Default)]
pub(super) struct Known(Mutex<HashMap<Fingerprint, Arc<Cert>>>);

impl Known {
    pub(super) fn get(&self, fingerprint: &Fingerprint) -> Option<Arc<Cert>> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(fingerprint)
            .cloned()
    }

    pub(super) fn add(&self, cert: Arc<Cert>) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(cert.fingerprint, cert);
    }

    /// The certificate under `fingerprint`, from memory or else from `tree`.
    pub(super) fn find(
        &self,
        tree: &sled::Tree,
        fingerprint: &Fingerprint,
    ) -> Result<Arc<Cert>, StoreError> {
        if let Some(cert) = self.get(fingerprint) {
            return Ok(cert);
        }
        let der = tree
            .get(fingerprint)
            .map_err(StoreError::db("failed to read a certificate"))?
            .ok_or_else(|| StoreError::Corrupt {
                tree: super::keys::CERTS,
                reason: format!(
                    "no certificate {} that a stored value names",
                    crate::records::hex(fingerprint)
                ),
            })?;
        let cert = Arc::new(Cert::new(&der));
        if cert.fingerprint != *fingerprint {
            return Err(StoreError::Corrupt {
                tree: super::keys::CERTS,
                reason: "a certificate does not match its key".into(),
            });
        }
        self.add(cert.clone());
        Ok(cert)
    }
}

/// [`paste`] with a certificate read from `tree` (the tamper tools, which
/// hold no [`Known`] of a running store).
#[cfg(any(test, feature = "testing"))]
pub(crate) fn paste_from(
    tree_name: &'static str,
    cut: &[u8],
    tree: &sled::Tree,
) -> Result<Vec<u8>, StoreError> {
    paste(tree_name, cut, |fp| Known::default().find(tree, fp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_cut_around_its_certificate_pastes_back_byte_for_byte() {
        let cert = Arc::new(Cert::new(&[0x30, 0x82, 1, 2, 3, 0xff]));
        for (form, value) in [
            (
                Form::Der,
                b"\x1a\x06\x30\x82\x01\x02\x03\xff\x22\x00".to_vec(),
            ),
            (Form::Hex, br#"{"a":"x","cert":"30820102 03ff"}"#.to_vec()),
            (Form::Hex, br#"{"cert":"3082010203ff","z":1}"#.to_vec()),
        ] {
            let mut out = Vec::new();
            let held = cut_into(&mut out, &value, &cert, form);
            if !held {
                assert_eq!(form, Form::Hex, "the spaced hex is not the certificate");
                assert!(out.is_empty());
                continue;
            }
            assert!(out.len() < HEADER + value.len());
            let back = paste("t", &out, |fp| {
                assert_eq!(fp, &cert.fingerprint);
                Ok(cert.clone())
            })
            .unwrap();
            assert_eq!(back, value);
        }
        let mut out = Vec::new();
        assert!(cut_into(
            &mut out,
            b"\x30\x82\x01\x02\x03\xff",
            &cert,
            Form::Der
        ));
        out[36] = 7;
        assert!(
            paste("t", &out, |_| Ok(cert.clone())).is_err(),
            "unknown form"
        );
        assert!(
            paste("t", &out[..10], |_| Ok(cert.clone())).is_err(),
            "cut short"
        );
    }

    #[tokio::test]
    async fn a_signer_certificate_is_kept_once_and_every_value_reads_back_whole() {
        use crate::entries::{EntryBody, Payload};
        use crate::records::{ReceivedHandoff, Side};
        use crate::store::{Batch, NewEntry, Store};
        use prost::Message;
        use tongban_core::CaseState;
        use tongban_proto::common::v1::SignedReceipt;

        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let der: Vec<u8> = (0..600u32).map(|i| (i * 7 % 251) as u8).collect();
        let case = crate::testing::sample_case("a1", Side::Window, CaseState::HandedOff);
        let receipted = |n: u8| {
            let payload = Payload::new(
                format!("receipt {n}"),
                EntryBody::HandoffReceipted {
                    handoff_id: format!("h{n}"),
                    to: "610113".parse().unwrap(),
                    receipt: vec![n; 40],
                    signature: vec![n; 70],
                    signer_certificate: der.clone(),
                    batch: Vec::new(),
                    receiver_seq: n.into(),
                },
            );
            NewEntry::record(&case, "node", None, &payload)
        };
        let signed = |n: u8| {
            SignedReceipt {
                receipt: vec![n; 40],
                signature: vec![n; 70],
                signer_certificate: der.clone(),
                batch: None,
            }
            .encode_to_vec()
        };
        let mut written = Vec::new();
        for n in 1..=3u8 {
            let entry = receipted(n);
            written.push(entry.payload.clone());
            let mut batch = Batch::default();
            batch.append(entry).put_received(
                "610113",
                &format!("h{n}"),
                ReceivedHandoff {
                    envelope_sha256: "ab".repeat(32),
                    signed_receipt: signed(n),
                    application_id: "a1".into(),
                },
            );
            let before = store.write_counts();
            store.commit(batch).await.unwrap();
            let c = store.write_counts().since(&before);
            // The first commit looks the certificate up and writes it;
            // later ones know it. Each value stores it no more.
            let cert_ops = if n == 1 { 2 } else { 0 };
            assert_eq!(c.reads + c.writes, 1 + 4 + cert_ops, "commit {n}: {c:?}");
            assert!(
                c.bytes < (der.len() + 2 * der.len()) as u64,
                "commit {n} wrote {} bytes",
                c.bytes
            );
        }
        drop(store);
        // Opened again: nothing in memory, every certificate from disk.
        let store = Store::open(dir.path()).unwrap();
        let entries = store.case_entries("a1").unwrap();
        let payloads: Vec<Vec<u8>> = entries.iter().map(|e| e.payload.clone()).collect();
        assert_eq!(payloads, written, "payloads byte for byte");
        assert_eq!(store.verify().unwrap(), Ok(3));
        for n in 1..=3u8 {
            let r = store.received("610113", &format!("h{n}")).unwrap().unwrap();
            assert_eq!(r.signed_receipt, signed(n), "receipt {n} byte for byte");
        }
        assert_eq!(store.received_all().unwrap().len(), 3);
        let trees = store.trees().unwrap();
        assert_eq!(trees.certs.len(), 1, "one certificate, kept once");
        let raw = trees.ledger.get(1u64.to_be_bytes()).unwrap().unwrap();
        assert!(
            memchr::memmem::find(&raw, crate::records::hex(&der).as_bytes()).is_none(),
            "the stored payload does not carry the certificate"
        );
    }
}
