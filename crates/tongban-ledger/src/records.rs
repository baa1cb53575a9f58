//! The records the store keeps besides the ledger itself: cases, outbox
//! entries, received handoffs and client requests. Each is stored as one
//! format-version byte followed by the record: version 2 is postcard
//! (compact binary: no field names, numbers as varints, bytes as bytes);
//! version 1, JSON, is what stores wrote before and is still read, so a
//! data dir from before keeps working and its records move to version 2 as
//! they are next written.
//!
//! postcard writes fields in declaration order and enum variants by their
//! position, and a field skipped when empty would shift everything after
//! it: so no record field is skipped when serialising, fields are only ever
//! added at the end of a struct with `#[serde(default)]` (and a new record
//! version if one must go), and enum variants only at the end (the
//! `stored_positions_*` test pins them).

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use tongban_core::{
    CaseNo, CaseState, CountyCode, CreditCode, DeliveryMode, ItemCode, MailLeg, MailStatus, MailTo,
    Phone, ResidentId,
};

pub use tongban_core::Side;

use crate::StoreError;

/// Version byte of records written as JSON (read only).
pub(crate) const RECORD_JSON: u8 = 1;
/// Version byte in front of every record written now: postcard.
pub(crate) const RECORD_VERSION: u8 = 2;

pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.push(RECORD_VERSION);
    // Plain structs of strings, numbers and bytes always serialise.
    postcard::to_io(value, &mut out).expect("record serialises");
    out
}

pub(crate) fn decode<T: DeserializeOwned>(
    tree: &'static str,
    bytes: &[u8],
) -> Result<T, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt { tree, reason };
    match bytes.split_first() {
        Some((&RECORD_VERSION, rest)) => {
            let (value, left) =
                postcard::take_from_bytes(rest).map_err(|e| corrupt(e.to_string()))?;
            if !left.is_empty() {
                return Err(corrupt(format!(
                    "{} bytes after the end of the record",
                    left.len()
                )));
            }
            Ok(value)
        }
        Some((&RECORD_JSON, json)) => {
            serde_json::from_slice(json).map_err(|e| corrupt(e.to_string()))
        }
        Some((v, _)) => Err(corrupt(format!(
            "record format version {v} is not supported (this build reads {RECORD_JSON} and {RECORD_VERSION})"
        ))),
        None => Err(corrupt("empty record".into())),
    }
}

/// The applicant as stored (in full: the node is the custodian; views mask
/// it). In JSON (version 1 records) it is tagged by a `kind` field inside
/// it; postcard cannot read such a tag (it needs a self-describing format),
/// so in binary records it is tagged by variant position (see
/// [`applicant_serde`]).
#[derive(Debug, Clone, PartialEq, Eq)]
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

mod applicant_serde;

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
    #[serde(default)]
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
    #[serde(default)]
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
    #[serde(default)]
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
    #[serde(default)]
    pub commitment: Option<CommitmentRecord>,
    /// The video consultation held at intake (异地视频会商), if any.
    #[serde(default)]
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
    #[serde(default)]
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
    #[serde(default)]
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
    #[serde(default)]
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

/// Byte fields as hex strings in JSON, which would otherwise spell every
/// byte as a number in a list, several times larger and slower to decode;
/// as bytes in a binary format (postcard records).
pub(crate) mod hex_bytes {
    use serde::de::{Error, Visitor};
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&super::hex(bytes))
        } else {
            s.serialize_bytes(bytes)
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        if d.is_human_readable() {
            let text = String::deserialize(d)?;
            return super::unhex(&text).ok_or_else(|| Error::custom("not hex"));
        }
        struct Bytes;
        impl<'de> Visitor<'de> for Bytes {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E: Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E: Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
        }
        d.deserialize_byte_buf(Bytes)
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
    // Into a buffer of the right size in one pass: `hex::decode` collects
    // byte by byte through an iterator (1.6 % of the receiving node's CPU
    // in the drain, for the digests each receipt carries).
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let mut out = vec![0u8; text.len() / 2];
    ::hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}

#[cfg(test)]
mod hex_tests {
    use super::*;

    /// A case with every optional part filled, so that a field dropped or
    /// misplaced in the binary form shows.
    fn full_case() -> CaseRecord {
        let mut case = crate::testing::sample_case("a1", Side::Home, CaseState::UnderReview);
        let count = Some(Count {
            from: "2026-11-25".into(),
            days: 5,
            calendar: "cal".into(),
        });
        let material = MaterialRef {
            kind: "id-card".into(),
            filename: "身份证.pdf".into(),
            size: 16_384,
            sha256: "ab".repeat(32),
            log: Some(LogSpan {
                offset: 1 << 40,
                len: 16_384,
            }),
        };
        case.materials = vec![material.clone()];
        case.identity_check = Some(IdentityCheckRecord {
            method: "face".into(),
            by: "spiffe://x".into(),
            at: "t".into(),
        });
        case.handoffs = vec![HandoffRecord {
            handoff_id: "h".into(),
            kind: "application".into(),
            peer: "610702".parse().unwrap(),
            sent: false,
            receipt_seq: Some(7),
        }];
        case.review = ReviewRecord {
            accepted_at: Some("t".into()),
            due_date: Some("2026-12-09".into()),
            paused_days_left: Some(-3),
            clock_running: true,
            clock: Some(ClockRecord {
                days: 10,
                runs: vec![ClockRun {
                    started: "2026-11-25".into(),
                    paused: None,
                }],
                calendar: "cal".into(),
            }),
            corrections: vec![CorrectionRecord {
                needs: vec![("id-card".into(), "blurred".into())],
                deadline: "2026-12-01".into(),
                requested_at: "t".into(),
                answered_at: None,
                supplied: vec!["id-card".into()],
                count: count.clone(),
            }],
            paper_received_at: None,
            licence_no: "L1".into(),
            result: Some(material),
            denial_reason: String::new(),
        };
        case.mail = vec![MailLegRecord {
            leg: MailLeg::Result,
            carrier: "EMS".into(),
            waybill: "W1".into(),
            to: MailTo::Applicant,
            sent_at: "t".into(),
            status: MailStatus::InTransit,
            events: vec![MailEventRecord {
                status: MailStatus::Posted,
                at: "t".into(),
                note: "n".into(),
            }],
        }];
        case.commitment = Some(CommitmentRecord {
            signer: "张三".into(),
            kinds: vec!["k".into()],
            due_date: "2026-12-20".into(),
            signed_at: "t".into(),
            by: "b".into(),
            fulfilled_at: None,
            count,
        });
        case.consultation = Some(ConsultationRecord {
            at: "t".into(),
            reviewer: "r".into(),
            outcome: "o".into(),
            recorded_by: "c".into(),
        });
        case
    }

    #[test]
    fn records_round_trip_in_binary_smaller_than_json() {
        let mut company = full_case();
        company.applicant = ApplicantRecord::Company {
            name: "某公司".into(),
            credit_code: "91350100M000100Y43".parse().unwrap(),
            legal_rep_name: "李四".into(),
            legal_rep_id: "11010519491231002X".parse().unwrap(),
            phone: "13812345678".parse().unwrap(),
            address: "a".into(),
        };
        for case in [full_case(), company] {
            let bytes = encode(&case);
            assert_eq!(bytes[0], RECORD_VERSION);
            assert_eq!(decode::<CaseRecord>("cases", &bytes).unwrap(), case);
            let json = serde_json::to_vec(&case).unwrap();
            assert!(
                bytes.len() * 10 < json.len() * 7,
                "{} vs {}",
                bytes.len(),
                json.len()
            );
        }
        let received = ReceivedHandoff {
            envelope_sha256: "cd".repeat(32),
            signed_receipt: vec![0, 1, 255],
            application_id: "a1".into(),
        };
        let bytes = encode(&received);
        assert_eq!(
            decode::<ReceivedHandoff>("received", &bytes).unwrap(),
            received
        );
        // Bytes are bytes in binary, not hex.
        assert!(bytes.windows(3).any(|w| w == [0, 1, 255]));
    }

    #[test]
    fn records_written_as_json_are_still_read() {
        let case = full_case();
        let mut v1 = vec![RECORD_JSON];
        v1.extend(serde_json::to_vec(&case).unwrap());
        assert_eq!(decode::<CaseRecord>("cases", &v1).unwrap(), case);
        // As a store from before wrote them: optional parts left out, the
        // applicant tagged by `kind`, bytes as hex.
        let old = br#"{"handoff_id":"h","application_id":"a","to":"610113","envelope":"00ff","kind":"application","materials":[{"kind":"k","filename":"f","size":1,"sha256":"ab"}],"parked":null}"#;
        let mut v1 = vec![RECORD_JSON];
        v1.extend_from_slice(old);
        let entry: OutboxEntry = decode("outbox", &v1).unwrap();
        assert_eq!(entry.envelope, [0, 255]);
        assert_eq!(entry.materials[0].log, None);
        let json = serde_json::to_value(&case.applicant).unwrap();
        assert_eq!(json["kind"], "person");
        assert_eq!(json["resident_id"], "11010519491231002X");
        let err = decode::<CaseRecord>("cases", &[9, 1]).unwrap_err();
        assert!(err.to_string().contains("version 9"), "{err}");
        let mut trailing = encode(&case);
        trailing.push(0);
        assert!(decode::<CaseRecord>("cases", &trailing).is_err());
    }

    /// postcard stores an enum variant by its position: a variant inserted
    /// or moved would make every stored record read as another. New
    /// variants go at the end; this pins the stored positions.
    #[test]
    fn stored_positions_of_enum_variants_never_change() {
        fn at<T: Serialize>(v: T) -> u8 {
            let bytes = postcard::to_allocvec(&v).unwrap();
            assert_eq!(bytes.len(), 1);
            bytes[0]
        }
        assert_eq!(
            CaseState::ALL.map(at),
            [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]
        );
        assert_eq!(
            CaseState::ALL.map(|s| s.as_str()),
            [
                "CORRECTION_AT_WINDOW",
                "READY_AT_WINDOW",
                "QUEUED",
                "HANDED_OFF",
                "UNDER_REVIEW",
                "CORRECTION_REQUESTED",
                "APPROVED",
                "DENIED",
                "RESULT_IN_TRANSIT",
                "READY_FOR_PICKUP",
                "MAIL_RETURNED",
                "CLOSED"
            ]
        );
        assert_eq!([at(Side::Window), at(Side::Home)], [0, 1]);
        assert_eq!(
            [
                at(DeliveryMode::MailApplicant),
                at(DeliveryMode::MailWindow),
                at(DeliveryMode::CollectHome)
            ],
            [0, 1, 2]
        );
        assert_eq!([at(MailLeg::Materials), at(MailLeg::Result)], [0, 1]);
        assert_eq!(
            [
                at(MailStatus::Posted),
                at(MailStatus::InTransit),
                at(MailStatus::Delivered),
                at(MailStatus::Returned),
                at(MailStatus::Lost)
            ],
            [0, 1, 2, 3, 4]
        );
        assert_eq!(
            [at(MailTo::Home), at(MailTo::Applicant), at(MailTo::Window)],
            [0, 1, 2]
        );
    }

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
