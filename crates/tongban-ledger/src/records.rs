//! The records the store keeps besides the ledger itself: cases, outbox
//! entries and received handoffs. Each is stored as one format-version byte
//! followed by JSON, so a later version can read (or refuse) older data.

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use tongban_core::{
    CaseNo, CaseState, CountyCode, CreditCode, DeliveryMode, ItemCode, MailLeg, MailStatus, MailTo,
    Phone, ResidentId,
};

pub use tongban_core::Side;

use crate::StoreError;

/// Version byte in front of every record.
pub(crate) const RECORD_VERSION: u8 = 1;

pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = vec![RECORD_VERSION];
    // Serialising plain structs of strings and numbers to a Vec cannot fail.
    serde_json::to_writer(&mut out, value).expect("record serialises");
    out
}

pub(crate) fn decode<T: DeserializeOwned>(
    tree: &'static str,
    bytes: &[u8],
) -> Result<T, StoreError> {
    match bytes.split_first() {
        Some((&RECORD_VERSION, json)) => {
            serde_json::from_slice(json).map_err(|e| StoreError::Corrupt {
                tree,
                reason: e.to_string(),
            })
        }
        Some((v, _)) => Err(StoreError::Corrupt {
            tree,
            reason: format!(
                "record format version {v} is not supported (this build reads {RECORD_VERSION})"
            ),
        }),
        None => Err(StoreError::Corrupt {
            tree,
            reason: "empty record".into(),
        }),
    }
}

/// The applicant as stored (in full: the node is the custodian; views mask it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ApplicantRecord {
    /// A natural person.
    Person {
        /// Name.
        name: String,
        /// GB 11643 resident ID.
        resident_id: ResidentId,
        /// Phone.
        phone: Phone,
        /// Postal address.
        address: String,
    },
    /// A company.
    Company {
        /// Registered name.
        name: String,
        /// GB 32100 unified social credit code.
        credit_code: CreditCode,
        /// Legal representative's name.
        legal_rep_name: String,
        /// Legal representative's resident ID.
        legal_rep_id: ResidentId,
        /// Phone.
        phone: Phone,
        /// Postal address.
        address: String,
    },
}

/// A material held for a case: where its content is on this node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaterialRef {
    /// Material kind from the item catalogue.
    pub kind: String,
    /// File name given at the window.
    pub filename: String,
    /// Size in bytes.
    pub size: u64,
    /// Lowercase hex SHA-256.
    pub sha256: String,
    /// For a small material, where its bytes are in this node's material
    /// log; otherwise the content is the blob file named by `sha256`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<LogSpan>,
}

/// A stretch of the material log (`materials.log`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogSpan {
    /// Byte offset in the log.
    pub offset: u64,
    /// Length in bytes.
    pub len: u64,
}

/// The identity check done at the window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityCheckRecord {
    /// Method used.
    pub method: String,
    /// SPIFFE ID of the clerk.
    pub by: String,
    /// RFC 3339 time.
    pub at: String,
}

/// A handoff of this case, sent or received, with the receipt when held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandoffRecord {
    /// The handoff id.
    pub handoff_id: String,
    /// What it carried ("application", ...).
    pub kind: String,
    /// County it went to (sent) or came from (received).
    pub peer: CountyCode,
    /// Whether this node sent it.
    pub sent: bool,
    /// The receiver's ledger seq its receipt names, once the receipt is held
    /// (sent) or given (received). The signed receipt itself is kept once,
    /// in the ledger: the `handoff.receipted` payload at the sender, the
    /// `received` record at the receiver. (Kept here too, it made every
    /// later rewrite of the case carry every receipt of its history.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt_seq: Option<u64>,
}

impl HandoffRecord {
    /// Whether the receipt is held (sent) or was given (received).
    pub fn receipted(&self) -> bool {
        self.receipt_seq.is_some()
    }
}

/// A case as one node holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseRecord {
    /// Application id (UUID v7).
    pub application_id: String,
    /// Case number.
    pub case_no: CaseNo,
    /// Which end this node is.
    pub side: Side,
    /// Item code.
    pub item_code: ItemCode,
    /// Receiving window's county.
    pub receiving_county: CountyCode,
    /// Home authority's county.
    pub home_county: CountyCode,
    /// How the result is delivered.
    pub delivery: DeliveryMode,
    /// The applicant.
    pub applicant: ApplicantRecord,
    /// Materials held, one per kind.
    pub materials: Vec<MaterialRef>,
    /// The identity check, once done.
    pub identity_check: Option<IdentityCheckRecord>,
    /// Current state.
    pub state: CaseState,
    /// RFC 3339 UTC time the application was taken in at the window
    /// (申请时间). On the home node: the time the window's handoff stated,
    /// once checked, or the handoff's arrival when it stated none (then
    /// `created_at_is_arrival`).
    pub created_at: String,
    /// Home side: the window's handoff stated no application time, so
    /// `created_at` is when the handoff arrived here.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub created_at_is_arrival: bool,
    /// RFC 3339 time of acceptance at the window.
    pub accepted_at: Option<String>,
    /// The next step, or the last delivery problem.
    pub note: String,
    /// Handoffs of this case.
    pub handoffs: Vec<HandoffRecord>,
    /// Review at the home authority (mirrored on the window's node).
    pub review: ReviewRecord,
    /// Mail legs.
    pub mail: Vec<MailLegRecord>,
    /// RFC 3339 time the case was closed.
    pub closed_at: Option<String>,
    /// The applicant's commitment to supply missing materials (告知承诺),
    /// if the case is accepted under one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commitment: Option<CommitmentRecord>,
    /// The video consultation held at intake (异地视频会商), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consultation: Option<ConsultationRecord>,
}

/// A video consultation with the home authority at intake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsultationRecord {
    /// RFC 3339 time it took place.
    pub at: String,
    /// The home authority's reviewer (SPIFFE ID or name).
    pub reviewer: String,
    /// What was agreed.
    pub outcome: String,
    /// SPIFFE ID of the clerk who recorded it.
    pub recorded_by: String,
}

/// A commitment signed at the window (告知承诺), as both nodes hold it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitmentRecord {
    /// Name of the person who signed it.
    pub signer: String,
    /// The committed (waivable, missing) material kinds.
    pub kinds: Vec<String>,
    /// The deadline, `YYYY-MM-DD`.
    pub due_date: String,
    /// RFC 3339 time it was recorded at the window.
    pub signed_at: String,
    /// SPIFFE ID of the clerk who recorded it.
    pub by: String,
    /// RFC 3339 time the last committed material arrived.
    pub fulfilled_at: Option<String>,
    /// How the deadline was counted (home side), to count it again when
    /// the holiday calendar changes; None where the sender did not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<Count>,
}

/// How a working-day date was counted, kept beside it so that it can be
/// counted again when the directory's holiday calendar changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Count {
    /// The day counting starts after, `YYYY-MM-DD` (期间开始之日不计算在内).
    pub from: String,
    /// Working days counted.
    pub days: u32,
    /// The calendar it was counted with (`Calendar::identity` of the years
    /// counted), or empty if not known: then it is counted again at the
    /// node's next start.
    pub calendar: String,
}

/// The promised-time clock (承诺时限) as the home authority runs it: what it
/// was promised and when it ran, so that its due date (or the days left
/// while paused) can be counted again when the holiday calendar changes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockRecord {
    /// Working days promised when it started (or left when it was first
    /// recorded, for a case accepted before clocks were recorded).
    pub days: u32,
    /// When it ran, oldest first.
    pub runs: Vec<ClockRun>,
    /// The calendar its current date was counted with
    /// (`Calendar::identity` of the years from its start to its due date
    /// or last pause).
    pub calendar: String,
}

/// One stretch of the promised-time clock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockRun {
    /// The day it started or resumed, `YYYY-MM-DD` (not itself counted).
    pub started: String,
    /// The day it paused for a correction, `YYYY-MM-DD` (counted as used);
    /// None while it runs or once it stopped for a decision.
    pub paused: Option<String>,
}

/// Review at the home authority.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewRecord {
    /// RFC 3339 time of acceptance at home (受理).
    pub accepted_at: Option<String>,
    /// Promised completion date, `YYYY-MM-DD`, while the clock runs.
    pub due_date: Option<String>,
    /// Working days left when the clock was paused for a correction, or
    /// stopped by the decision (frozen there; on the window's node, as the
    /// home reported them).
    pub paused_days_left: Option<i64>,
    /// Whether the promised-time clock is running.
    pub clock_running: bool,
    /// How the clock ran (home side; the window mirrors the dates only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock: Option<ClockRecord>,
    /// Correction requests, oldest first.
    pub corrections: Vec<CorrectionRecord>,
    /// RFC 3339 time the paper originals arrived at home.
    pub paper_received_at: Option<String>,
    /// Licence number given with an approval.
    pub licence_no: String,
    /// The result document of an approval.
    pub result: Option<MaterialRef>,
    /// Reason given with a denial.
    pub denial_reason: String,
}

/// One correction request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorrectionRecord {
    /// (material kind, reason) pairs.
    pub needs: Vec<(String, String)>,
    /// Deadline for the applicant, `YYYY-MM-DD`.
    pub deadline: String,
    /// RFC 3339 time of the request.
    pub requested_at: String,
    /// RFC 3339 time the supplement arrived (home) or was resubmitted (window).
    pub answered_at: Option<String>,
    /// Kinds attached at the window since the request (window side).
    pub supplied: Vec<String>,
    /// How the deadline was counted (home side).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<Count>,
}

/// A tracked postal leg.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailLegRecord {
    /// Which leg.
    pub leg: MailLeg,
    /// Carrier name.
    pub carrier: String,
    /// Waybill number.
    pub waybill: String,
    /// Who it is addressed to.
    pub to: MailTo,
    /// RFC 3339 time recorded as sent.
    pub sent_at: String,
    /// Latest status.
    pub status: MailStatus,
    /// Carrier events, oldest first.
    pub events: Vec<MailEventRecord>,
}

/// A carrier event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailEventRecord {
    /// Status.
    pub status: MailStatus,
    /// RFC 3339 time.
    pub at: String,
    /// Carrier's note.
    pub note: String,
}

/// A handoff waiting in the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxEntry {
    /// The handoff id.
    pub handoff_id: String,
    /// Application id of the case.
    pub application_id: String,
    /// Destination county.
    pub to: CountyCode,
    /// The encoded envelope, built once so every retry sends the same bytes.
    #[serde(with = "hex_bytes")]
    pub envelope: Vec<u8>,
    /// What the envelope carries: `application`, `supplement` or `update`.
    pub kind: String,
    /// The materials whose blobs follow the envelope, in order.
    pub materials: Vec<MaterialRef>,
    /// Set when the receiver refused it (final) or attempts ran out: the
    /// worker leaves a parked entry alone.
    pub parked: Option<String>,
}

/// A handoff this node received and receipted, kept for deduplication.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceivedHandoff {
    /// Lowercase hex SHA-256 of the envelope bytes.
    pub envelope_sha256: String,
    /// The encoded `SignedReceipt` given, replayed byte for byte to a duplicate.
    #[serde(with = "hex_bytes")]
    pub signed_receipt: Vec<u8>,
    /// Application id of the case.
    pub application_id: String,
}

/// A client request this node carried out, kept under (caller, request id)
/// in the same commit as the change it made, so that a repeat of the request
/// is answered with the same reply instead of being applied again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// Lowercase hex SHA-256 of what the request asked for (the node defines
    /// the content), to tell a repeat from another request under the same id.
    pub content_sha256: String,
    /// The encoded reply given, replayed byte for byte to a repeat.
    #[serde(with = "hex_bytes")]
    pub reply: Vec<u8>,
}

/// Byte fields as hex strings: JSON would otherwise spell every byte as a
/// number in a list, several times larger and slower to decode.
pub(crate) mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::hex(bytes))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        super::unhex(&text).ok_or_else(|| serde::de::Error::custom("not hex"))
    }
}

/// Lowercase hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    // In one pass into a buffer of the right size: `hex::encode` builds
    // the string a char at a time (2.7 % of the drain's CPU in perf, for
    // the digests of every envelope and material).
    let mut out = vec![0u8; bytes.len() * 2];
    ::hex::encode_to_slice(bytes, &mut out).expect("the buffer is twice the input");
    String::from_utf8(out).expect("hex digits are ASCII")
}

/// Parses lowercase or uppercase hex; `None` for an odd length or a
/// non-hex digit.
pub fn unhex(text: &str) -> Option<Vec<u8>> {
    ::hex::decode(text).ok()
}

#[cfg(test)]
mod hex_tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_refuses_bad_input() {
        let bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(unhex(&hex(&bytes)).unwrap(), bytes);
        assert_eq!(hex(&[0xab, 0x01]), "ab01");
        assert_eq!(unhex("AB01").unwrap(), vec![0xab, 0x01]);
        assert!(unhex("abc").is_none());
        assert!(unhex("zz").is_none());
    }
}
