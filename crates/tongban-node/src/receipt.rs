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

use std::time::{Duration, SystemTime};

use prost::Message;
use tongban_pki::{NodeSigner, PkiError, Principal, TrustAnchor};
use tongban_proto::common::v1::{MaterialDigest, Receipt, SignedReceipt};

use crate::protocol::{FORMAT_VERSION, RECEIPT_DOMAIN};

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
    })
}

/// A receipt whose signature is checked: signed by the node of the county
/// it names as receiver, with a certificate of the federation valid `at`.
pub fn verify(
    anchor: &TrustAnchor,
    signed: &SignedReceipt,
    at: SystemTime,
) -> Result<Receipt, ReceiptError> {
    let signer = anchor
        .verify_signed(
            &signed.signer_certificate,
            RECEIPT_DOMAIN,
            &signed.receipt,
            &signed.signature,
            at,
        )
        .map_err(|e| ReceiptError::Signature(e.to_string()))?;
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
}
