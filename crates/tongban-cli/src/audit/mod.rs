//! Auditing across counties: an evidence bundle (what each node showed the
//! auditor: its signed checkpoint, a verified range of its ledger, the
//! case's entries, the partner checkpoints it holds, the case's materials
//! as it re-hashed them and the receipts it gave), fetched over mutual
//! TLS or read from a file, and one verifier for both. `trace` is fetch +
//! verify, `export` is fetch + write, `verify-bundle` is read + verify, so
//! online and offline checks can never disagree. `node` verifies one node's
//! whole ledger and evidence (`audit verify`, the console's verify page).

pub(crate) mod evidence;
pub(crate) mod fetch;
mod handoffs;
pub(crate) mod html;
pub(crate) mod known;
pub(crate) mod node;
mod receipt;
pub(crate) mod verify;

use serde::{Deserialize, Serialize};

/// The bundle format named in the file.
pub(crate) const BUNDLE_FORMAT: &str = "tongban-audit-bundle-v1";

/// Everything an auditor needs to check one case offline.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Bundle {
    /// Always [`BUNDLE_FORMAT`].
    pub(crate) format: String,
    /// The case.
    pub(crate) case_no: String,
    /// RFC 3339 time of the export.
    pub(crate) created_at: String,
    /// The federation CA the auditor trusted, DER hex.
    pub(crate) ca_certificate: String,
    /// What each node showed.
    pub(crate) nodes: Vec<NodeEvidence>,
}

/// What one node showed the auditor.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct NodeEvidence {
    /// The URL asked.
    pub(crate) url: String,
    /// The node's county (as it says; checked against its signatures).
    pub(crate) county: String,
    /// The case's receiving county, as the node holds it.
    pub(crate) receiving_county: String,
    /// The case's home county, as the node holds it.
    pub(crate) home_county: String,
    /// The receiving county's name in the node's directory (for people;
    /// not checked), empty if it has none.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) receiving_county_name: String,
    /// The home county's name in the node's directory (for people; not checked).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) home_county_name: String,
    /// The applicant as shown (masked unless revealed).
    pub(crate) applicant: serde_json::Value,
    /// The node's checkpoint, signed at the time of the audit.
    pub(crate) checkpoint: Signed,
    /// Every ledger entry from `entries[0].seq` to the checkpoint's seq.
    pub(crate) entries: Vec<EntryHex>,
    /// The case's entries as the node listed them.
    pub(crate) case_entries: Vec<EntryHex>,
    /// The partner checkpoints the node holds.
    pub(crate) partner_checkpoints: Vec<Signed>,
    /// Sequence numbers the node's case index names that its ledger does
    /// not hold.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) missing_seqs: Vec<u64>,
    /// The case's stored materials, as the node re-hashed them.
    #[serde(default)]
    pub(crate) materials: Vec<evidence::MaterialHash>,
    /// The receipts the node gave for the case's handoffs it received.
    #[serde(default)]
    pub(crate) given_receipts: Vec<evidence::GivenHex>,
}

/// A signed message: body, signature and signer certificate, all hex.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Signed {
    pub(crate) body: String,
    pub(crate) signature: String,
    pub(crate) signer_certificate: String,
}

/// A ledger entry and its payload, hex.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct EntryHex {
    pub(crate) seq: u64,
    pub(crate) entry: String,
    pub(crate) payload: String,
}

impl Bundle {
    /// County names by code, as the nodes' directories give them: for
    /// showing beside codes, never for checking.
    pub(crate) fn county_names(&self) -> std::collections::BTreeMap<String, String> {
        let mut names = std::collections::BTreeMap::new();
        for n in &self.nodes {
            for (code, name) in [
                (&n.receiving_county, &n.receiving_county_name),
                (&n.home_county, &n.home_county_name),
            ] {
                if !name.is_empty() {
                    names.entry(code.clone()).or_insert_with(|| name.clone());
                }
            }
        }
        names
    }
}

/// Lowercase hex, as every byte field of a bundle is written.
pub(crate) fn hex(bytes: &[u8]) -> String {
    ::hex::encode(bytes)
}

/// A byte field of a bundle or of a ledger payload that is not hex.
#[derive(Debug, thiserror::Error)]
#[error("{field} is not hex ({reason})")]
pub(crate) struct BadHex {
    /// The field, e.g. `signature` or `ca_certificate`.
    pub(crate) field: &'static str,
    /// What is wrong with it (odd length, a character that is not a digit).
    pub(crate) reason: ::hex::FromHexError,
}

/// Decodes the hex of the named field.
pub(crate) fn unhex(field: &'static str, text: &str) -> Result<Vec<u8>, BadHex> {
    ::hex::decode(text).map_err(|reason| BadHex { field, reason })
}

impl From<&tongban_proto::common::v1::SignedCheckpoint> for Signed {
    fn from(s: &tongban_proto::common::v1::SignedCheckpoint) -> Self {
        Self {
            body: hex(&s.checkpoint),
            signature: hex(&s.signature),
            signer_certificate: hex(&s.signer_certificate),
        }
    }
}

impl From<&tongban_proto::audit::v1::AuditEntry> for EntryHex {
    fn from(e: &tongban_proto::audit::v1::AuditEntry) -> Self {
        Self {
            seq: e.seq,
            entry: hex(&e.entry),
            payload: hex(&e.payload),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_hex_is_an_error_naming_the_field() {
        assert_eq!(unhex("body", &hex(&[0, 0xab])).unwrap(), vec![0, 0xab]);
        let err = unhex("signature", "abz1").unwrap_err().to_string();
        assert!(err.starts_with("signature is not hex"), "{err}");
        let err = unhex("ca_certificate", "abc").unwrap_err().to_string();
        assert!(err.starts_with("ca_certificate is not hex"), "{err}");
    }
}
