//! Receipts: what a receiver signs for a handoff, and the one check every
//! holder of one makes — the courier when it arrives, the receiver's
//! operator when re-issuing one, and the offline auditor years later.
//!
//! A receipt is trusted only as far as this module checks it: signed under
//! the receipt domain by the node certificate of the county it names as
//! receiver, naming the handoff, the two counties, the envelope digest and
//! every material exactly as the holder sent them, and dated close to the
//! holder's clock when it arrived (a receiver whose clock is off would
//! otherwise sign receipts an auditor cannot place in time).
//!
//! A receiver signs either each receipt (`tongban-receipt-v1`) or, since
//! format 2 of the receipt signature, the Merkle root of a stream batch's
//! receipts once (`tongban-receipt-batch-v1`, [`crate::merkle`]); each
//! receipt of a batch carries its leaf index, its inclusion path and the
//! signed root, so it verifies on its own. Both are accepted.

use std::time::{Duration, SystemTime};

use prost::Message;
use tongban_pki::Identity;
use tongban_pki::{NodeSigner, PkiError, Principal, TrustAnchor};
use tongban_proto::common::v1::{MaterialDigest, Receipt, ReceiptBatch, SignedReceipt};

use crate::merkle;
use crate::protocol::{FORMAT_VERSION, RECEIPT_BATCH_DOMAIN, RECEIPT_DOMAIN};

/// Why a receipt is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    /// The signature or the signer's certificate does not verify.
    #[error("its signature does not verify: {0}")]
    Signature(String),
    /// Signed by someone else than the receiver it names.
    #[error("signed by {signer}, not by the node of {receiver}")]
    Signer {
        /// Who signed.
        signer: String,
        /// The county it names as receiver.
        receiver: String,
    },
    /// The signed bytes are not a receipt.
    #[error("does not decode: {0}")]
    Decode(String),
    /// Its inclusion path does not lead to the signed batch root.
    #[error("its inclusion path does not reach the signed batch root")]
    Path,
    /// A field differs from what the holder sent.
    #[error("{0} does not match what was sent")]
    Mismatch(String),
    /// Dated too far from the holder's clock.
    #[error(
        "is dated {received_at}, {off_by_s} s from this node's clock (at most {allowed_s} s allowed)"
    )]
    Skew {
        /// The receipt's time.
        received_at: String,
        /// How far off, in seconds.
        off_by_s: u64,
        /// The configured allowance, in seconds.
        allowed_s: u64,
    },
}

/// Signs `receipt` with this node's key.
pub fn sign(signer: &NodeSigner, receipt: &Receipt) -> Result<SignedReceipt, PkiError> {
    let bytes = receipt.encode_to_vec();
    let signature = signer.sign(RECEIPT_DOMAIN, &bytes)?;
    Ok(SignedReceipt {
        receipt: bytes,
        signature,
        signer_certificate: signer.certificate_der().to_vec(),
        batch: None,
    })
}

/// The bytes a batch signature covers after its domain: the tree size
/// (8 bytes, big-endian), then the 32-byte root.
fn batch_message(tree_size: u64, root: &merkle::Hash) -> [u8; 40] {
    let mut m = [0u8; 40];
    m[..8].copy_from_slice(&tree_size.to_be_bytes());
    m[8..].copy_from_slice(root);
    m
}

/// Signs the receipts of one stream batch with one signature over their
/// Merkle root; the signed receipts come back in the order given, each with
/// its leaf index and inclusion path. Empty in, empty out.
pub fn sign_batch(
    signer: &NodeSigner,
    receipts: &[Receipt],
) -> Result<Vec<SignedReceipt>, PkiError> {
    let encoded: Vec<Vec<u8>> = receipts.iter().map(|r| r.encode_to_vec()).collect();
    let leaves: Vec<merkle::Hash> = encoded.iter().map(|b| merkle::leaf_hash(b)).collect();
    let Some((root, paths)) = merkle::root_and_paths(&leaves) else {
        return Ok(Vec::new());
    };
    let size = leaves.len() as u64;
    let signature = signer.sign(RECEIPT_BATCH_DOMAIN, &batch_message(size, &root))?;
    Ok(encoded
        .into_iter()
        .zip(paths)
        .enumerate()
        .map(|(i, (receipt, path))| SignedReceipt {
            receipt,
            signature: Vec::new(),
            signer_certificate: signer.certificate_der().to_vec(),
            batch: Some(ReceiptBatch {
                root: root.to_vec(),
                signature: signature.clone(),
                leaf_index: i as u64,
                tree_size: size,
                path: path.into_iter().map(|h| h.to_vec()).collect(),
            }),
        })
        .collect())
}

/// Batch signatures already verified, so that the receipts of one batch
/// cost one signature check, not one each. Only a root, its signature and
/// its signer's certificate that verified are kept.
#[derive(Debug, Default)]
pub struct Verified {
    roots: Vec<VerifiedRoot>,
}

/// A batch root whose signature verified, and who signed it.
#[derive(Debug)]
struct VerifiedRoot {
    root: Vec<u8>,
    signature: Vec<u8>,
    certificate: Vec<u8>,
    signer: Identity,
}

/// A receipt whose signature is checked: signed by the node of the county
/// it names as receiver, with a certificate of the federation valid `at`.
pub fn verify(
    anchor: &TrustAnchor,
    signed: &SignedReceipt,
    at: SystemTime,
) -> Result<Receipt, ReceiptError> {
    verify_with(anchor, signed, at, &mut Verified::default())
}

/// [`verify`], remembering in `seen` the batch signatures it checked (use
/// one `Verified` per point in time `at`).
pub fn verify_with(
    anchor: &TrustAnchor,
    signed: &SignedReceipt,
    at: SystemTime,
    seen: &mut Verified,
) -> Result<Receipt, ReceiptError> {
    let bad = |e: PkiError| ReceiptError::Signature(e.to_string());
    let signer = match &signed.batch {
        None => anchor
            .verify_signed(
                &signed.signer_certificate,
                RECEIPT_DOMAIN,
                &signed.receipt,
                &signed.signature,
                at,
            )
            .map_err(bad)?,
        Some(b) => {
            let path: Vec<merkle::Hash> = b
                .path
                .iter()
                .map(|h| merkle::Hash::try_from(h.as_slice()))
                .collect::<Result<_, _>>()
                .map_err(|_| ReceiptError::Path)?;
            let leaf = merkle::leaf_hash(&signed.receipt);
            let reached = merkle::root_from_path(&leaf, b.leaf_index, b.tree_size, &path)
                .ok_or(ReceiptError::Path)?;
            if reached.as_slice() != b.root.as_slice() {
                return Err(ReceiptError::Path);
            }
            let known = seen.roots.iter().find(|v| {
                v.root == b.root
                    && v.signature == b.signature
                    && v.certificate == signed.signer_certificate
            });
            match known {
                Some(v) => v.signer.clone(),
                None => {
                    let signer = anchor
                        .verify_signed(
                            &signed.signer_certificate,
                            RECEIPT_BATCH_DOMAIN,
                            &batch_message(b.tree_size, &reached),
                            &b.signature,
                            at,
                        )
                        .map_err(bad)?;
                    seen.roots.push(VerifiedRoot {
                        root: b.root.clone(),
                        signature: b.signature.clone(),
                        certificate: signed.signer_certificate.clone(),
                        signer: signer.clone(),
                    });
                    signer
                }
            }
        }
    };
    let receipt = Receipt::decode(signed.receipt.as_slice())
        .map_err(|e| ReceiptError::Decode(e.to_string()))?;
    match &signer.principal {
        Principal::Node { county } if county.as_str() == receipt.receiver_county => Ok(receipt),
        _ => Err(ReceiptError::Signer {
            signer: signer.to_string(),
            receiver: receipt.receiver_county,
        }),
    }
}

/// What the holder of a receipt sent, to compare it with.
#[derive(Debug, Clone, Copy)]
pub struct Sent<'a> {
    /// The handoff id.
    pub handoff_id: &'a str,
    /// The case's application id, where the holder knows it.
    pub application_id: Option<&'a str>,
    /// The sending county.
    pub sender: &'a str,
    /// The receiving county.
    pub receiver: &'a str,
    /// SHA-256 of the envelope bytes sent.
    pub envelope_sha256: &'a [u8],
    /// The materials sent, where the holder recorded them: (kind, size,
    /// SHA-256).
    pub materials: Option<&'a [(String, u64, Vec<u8>)]>,
}

/// Checks that `receipt` names exactly what was `sent`.
pub fn matches(receipt: &Receipt, sent: &Sent<'_>) -> Result<(), ReceiptError> {
    let expect = |ok: bool, field: &str| {
        if ok {
            Ok(())
        } else {
            Err(ReceiptError::Mismatch(field.to_owned()))
        }
    };
    expect(receipt.version == FORMAT_VERSION, "version")?;
    expect(receipt.handoff_id == sent.handoff_id, "handoff_id")?;
    if let Some(id) = sent.application_id {
        expect(receipt.application_id == id, "application_id")?;
    }
    expect(receipt.sender_county == sent.sender, "sender_county")?;
    expect(receipt.receiver_county == sent.receiver, "receiver_county")?;
    expect(
        receipt.envelope_sha256 == sent.envelope_sha256,
        "envelope_sha256",
    )?;
    if let Some(materials) = sent.materials {
        expect(receipt.materials.len() == materials.len(), "materials")?;
        for (got, (kind, size, sha256)) in receipt.materials.iter().zip(materials) {
            let same = got.kind == *kind && got.size == *size && got.sha256 == *sha256;
            expect(same, &format!("material {kind}"))?;
        }
    }
    Ok(())
}

/// Checks that the receipt is dated within `allowed` of `now`.
pub fn check_time(
    receipt: &Receipt,
    now: SystemTime,
    allowed: Duration,
) -> Result<(), ReceiptError> {
    let skew = |off: Duration| ReceiptError::Skew {
        received_at: receipt.received_at.clone(),
        off_by_s: off.as_secs(),
        allowed_s: allowed.as_secs(),
    };
    let at = time::OffsetDateTime::parse(
        &receipt.received_at,
        &time::format_description::well_known::Rfc3339,
    )
    .map_err(|e| ReceiptError::Decode(format!("received_at {:?}: {e}", receipt.received_at)))?;
    let at = SystemTime::from(at);
    let off = match at.duration_since(now) {
        Ok(ahead) => ahead,
        Err(behind) => behind.duration(),
    };
    if off > allowed {
        return Err(skew(off));
    }
    Ok(())
}

/// The (kind, size, SHA-256) of wire material digests, as [`Sent`] takes them.
pub fn digests(materials: &[MaterialDigest]) -> Vec<(String, u64, Vec<u8>)> {
    materials
        .iter()
        .map(|m| (m.kind.clone(), m.size, m.sha256.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tongban_pki::issue::Ca;

    fn receipt(at: &str) -> Receipt {
        Receipt {
            version: FORMAT_VERSION,
            handoff_id: "h".into(),
            application_id: "a".into(),
            sender_county: "610702".into(),
            receiver_county: "610113".into(),
            received_at: at.into(),
            envelope_sha256: vec![1; 32],
            materials: vec![MaterialDigest {
                kind: "id-card".into(),
                filename: "x".into(),
                size: 3,
                sha256: vec![2; 32],
            }],
            ..Default::default()
        }
    }

    #[test]
    fn a_receipt_must_name_what_was_sent() {
        let r = receipt("2026-12-01T00:00:00Z");
        let materials = vec![("id-card".to_owned(), 3, vec![2; 32])];
        let sent = Sent {
            handoff_id: "h",
            application_id: Some("a"),
            sender: "610702",
            receiver: "610113",
            envelope_sha256: &[1; 32],
            materials: Some(&materials),
        };
        assert_eq!(matches(&r, &sent), Ok(()));
        let other = vec![("id-card".to_owned(), 4, vec![2; 32])];
        assert_eq!(
            matches(
                &r,
                &Sent {
                    materials: Some(&other),
                    ..sent
                }
            ),
            Err(ReceiptError::Mismatch("material id-card".into()))
        );
        assert_eq!(
            matches(
                &r,
                &Sent {
                    receiver: "611002",
                    ..sent
                }
            )
            .unwrap_err()
            .to_string(),
            "receiver_county does not match what was sent"
        );
    }

    #[test]
    fn a_receipt_an_hour_off_is_refused() {
        let now = SystemTime::from(time::macros::datetime!(2026-12-01 01:00 UTC));
        let five = Duration::from_secs(300);
        assert_eq!(
            check_time(&receipt("2026-12-01T00:57:00Z"), now, five),
            Ok(())
        );
        assert_eq!(
            check_time(&receipt("2026-12-01T01:04:00+00:00"), now, five),
            Ok(())
        );
        let err = check_time(&receipt("2026-12-01T00:00:00Z"), now, five).unwrap_err();
        assert_eq!(
            err.to_string(),
            "is dated 2026-12-01T00:00:00Z, 3600 s from this node's clock (at most 300 s allowed)"
        );
        assert!(check_time(&receipt("2026-12-01T02:00:00Z"), now, five).is_err());
        assert!(matches!(
            check_time(&receipt("yesterday"), now, five),
            Err(ReceiptError::Decode(_))
        ));
    }

    /// A CA, the signer of 610113's node and an anchor trusting the CA.
    fn signer() -> (NodeSigner, TrustAnchor) {
        let ca = Ca::generate("test.tongban", 30).unwrap();
        let county = "610113".parse().unwrap();
        let pair = ca
            .issue(Principal::Node { county }, &["127.0.0.1".into()], 10)
            .unwrap();
        let signer = NodeSigner::from_pem(&pair.cert_pem, &pair.key_pem).unwrap();
        let anchor = TrustAnchor::from_pem(ca.cert_pem()).unwrap();
        (signer, anchor)
    }

    fn batch_of(n: usize) -> Vec<Receipt> {
        (0..n)
            .map(|i| Receipt {
                handoff_id: format!("h{i}"),
                ledger_seq: i as u64,
                ..receipt("2026-12-01T00:00:00Z")
            })
            .collect()
    }

    #[test]
    fn every_receipt_of_a_batch_verifies_on_its_own() {
        let (signer, anchor) = signer();
        let now = SystemTime::now();
        for n in [1, 2, 3, 5, 64] {
            let receipts = batch_of(n);
            let signed = sign_batch(&signer, &receipts).unwrap();
            assert_eq!(signed.len(), n);
            let mut seen = Verified::default();
            for (s, r) in signed.iter().zip(&receipts) {
                assert!(s.signature.is_empty(), "one signature, on the root");
                assert_eq!(verify(&anchor, s, now).as_ref(), Ok(r));
                assert_eq!(verify_with(&anchor, s, now, &mut seen).as_ref(), Ok(r));
            }
            assert_eq!(seen.roots.len(), 1, "the root was checked once");
        }
        // Single-signed receipts, as partners that do not batch send them.
        let single = sign(&signer, &batch_of(1)[0]).unwrap();
        assert!(single.batch.is_none());
        assert!(verify(&anchor, &single, now).is_ok());
    }

    #[test]
    fn a_receipt_moved_to_another_batch_is_refused() {
        let (signer, anchor) = signer();
        let now = SystemTime::now();
        let one = sign_batch(&signer, &batch_of(3)).unwrap();
        let other = sign_batch(&signer, &batch_of(5)[3..]).unwrap();
        // The receipt of one batch under the other's root and signature.
        let mut moved = one[1].clone();
        moved.batch = other[1].batch.clone();
        assert_eq!(verify(&anchor, &moved, now), Err(ReceiptError::Path));
        // Its own path, another batch's signed root.
        let mut moved = one[1].clone();
        let b = moved.batch.as_mut().unwrap();
        b.root = other[0].batch.as_ref().unwrap().root.clone();
        b.signature = other[0].batch.as_ref().unwrap().signature.clone();
        assert_eq!(verify(&anchor, &moved, now), Err(ReceiptError::Path));
        // A root changed to what the path reaches, without a signature for it.
        let mut forged = one[0].clone();
        forged.receipt = batch_of(4)[3].encode_to_vec();
        let leaf = merkle::leaf_hash(&forged.receipt);
        let b = forged.batch.as_mut().unwrap();
        b.tree_size = 1;
        b.leaf_index = 0;
        b.path.clear();
        b.root = leaf.to_vec();
        assert!(matches!(
            verify(&anchor, &forged, now),
            Err(ReceiptError::Signature(_))
        ));
        // A path element that is not 32 bytes.
        let mut short = one[2].clone();
        short.batch.as_mut().unwrap().path[0].pop();
        assert_eq!(verify(&anchor, &short, now), Err(ReceiptError::Path));
    }
}
