//! What a ledger entry says, typed: one [`EntryBody`] variant per kind of
//! entry, with the fields that kind records, and the [`Payload`] that holds
//! it beside the human detail.
//!
//! The node writes entries only through these types ([`NewEntry::record`]),
//! and the offline auditor reads them back with the same definitions, so the
//! entry's `kind` and its payload can never disagree and a field renamed on
//! one side cannot silently go missing on the other. The kind strings are
//! the ones on the wire and in stored ledgers (`case.accepted`, ...): they
//! never change once released.
//!
//! A payload is JSON: `{"detail": ..., "kind": ..., <the body's fields>,
//! "sent": {...}?, "received": {...}?}`. The entry holds its SHA-256; the
//! payload itself can be withheld from an auditor without breaking the chain.

use serde::{Deserialize, Serialize};
use tongban_core::{CaseState, CountyCode, DeliveryMode, ItemCode, MailLeg, MailStatus, MailTo};

use crate::records::{CaseRecord, MaterialRef, hex_bytes};
use crate::store::NewEntry;

/// A material as an entry records it: what it was and its digest, never
/// where this node keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaterialFact {
    /// Material kind from the item catalogue.
    pub kind: String,
    /// Size in bytes.
    pub size: u64,
    /// Lowercase hex SHA-256.
    pub sha256: String,
}

/// A coded refusal a partner node reported (`HandoffResult.Refusal.reason`):
/// untrusted text, recorded as that node's report. The reason is kept as a
/// string, since a newer partner may send one this build does not know.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportedRefusal {
    /// The reason code (`application-time.ahead`).
    pub reason: String,
    /// The field of the envelope it concerns, as a proto path; may be empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub field: String,
    /// The facts, by name, in name order.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub args: std::collections::BTreeMap<String, String>,
}

impl ReportedRefusal {
    /// At most this many facts are kept.
    pub const MAX_ARGS: usize = 16;
    /// At most this many characters of a reason, field, name or fact.
    pub const MAX_CHARS: usize = 256;

    /// The report, if it is one worth keeping: a reason in the shape of the
    /// codes (lowercase ASCII letters, digits, `.` and `-`) and everything
    /// within the bounds above. A partner sends its own refusals' codes;
    /// anything else is dropped and its English message alone is kept.
    pub fn check(
        reason: String,
        field: String,
        args: impl IntoIterator<Item = (String, String)>,
    ) -> Option<Self> {
        let short = |s: &str| s.chars().count() <= Self::MAX_CHARS;
        let code_like = !reason.is_empty()
            && short(&reason)
            && reason
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
        let args: std::collections::BTreeMap<String, String> = args.into_iter().collect();
        let bounded = short(&field)
            && args.len() <= Self::MAX_ARGS
            && args.iter().all(|(k, v)| short(k) && short(v));
        (code_like && bounded).then_some(Self {
            reason,
            field,
            args,
        })
    }
}

impl From<&MaterialRef> for MaterialFact {
    fn from(m: &MaterialRef) -> Self {
        Self {
            kind: m.kind.clone(),
            size: m.size,
            sha256: m.sha256.clone(),
        }
    }
}

/// The facts of a list of materials.
pub fn facts(materials: &[MaterialRef]) -> Vec<MaterialFact> {
    materials.iter().map(MaterialFact::from).collect()
}

/// The sender's side of a handoff queued by this entry's change: what an
/// auditor matches with the receiver's receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sent {
    /// The handoff id.
    pub handoff_id: String,
    /// The county it goes to.
    pub to: CountyCode,
    /// Lowercase hex SHA-256 of the envelope bytes.
    pub envelope_sha256: String,
}

/// The receiver's side of a handoff this entry records receiving.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Received {
    /// The handoff id.
    pub handoff_id: String,
    /// The county that sent it (from its certificate).
    pub from: CountyCode,
    /// Lowercase hex SHA-256 of the envelope bytes.
    pub envelope_sha256: String,
    /// Materials that came with it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub materials: Vec<MaterialFact>,
    /// Who the sender says acted (its envelope's `actor`): the partner's
    /// claim, not an identity this node checked.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub claimed_actor: String,
    /// For an application: the time the sender says the clerk took it in
    /// (its `applied_at`), as sent; empty when it said none. The partner's
    /// claim, which this node checked against its clock and the case number.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub claimed_applied_at: String,
}

/// Which running date of a case was counted again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DueClock {
    /// The promised date (承诺时限) of a running clock: old and new are
    /// `YYYY-MM-DD`.
    Promise,
    /// A clock paused for a correction: old and new are the working days
    /// left.
    PausedPromise,
    /// The open correction request's deadline.
    Correction,
    /// The commitment's (告知承诺) deadline.
    Commitment,
}

impl DueClock {
    /// How people read it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Promise => "promised date",
            Self::PausedPromise => "working days left (paused)",
            Self::Correction => "correction deadline",
            Self::Commitment => "commitment deadline",
        }
    }
}

/// One date that moved when counted again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DueChange {
    /// Which date.
    pub clock: DueClock,
    /// What it was.
    pub old: String,
    /// What it is now.
    pub new: String,
}

/// What one kind of entry records. The serde tag is the entry's kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind")]
pub enum EntryBody {
    /// A clerk took in an application.
    #[serde(rename = "case.applied")]
    CaseApplied {
        /// The item applied for.
        item: ItemCode,
        /// The home authority's county.
        home: CountyCode,
        /// How the result is delivered.
        delivery: DeliveryMode,
        /// Materials taken in.
        materials: Vec<MaterialFact>,
        /// Material kinds still missing (一次性补正).
        missing: Vec<String>,
    },
    /// A clerk attached materials.
    #[serde(rename = "case.attached")]
    CaseAttached {
        /// Materials attached.
        materials: Vec<MaterialFact>,
        /// Material kinds still missing.
        missing: Vec<String>,
    },
    /// A clerk verified the applicant's identity.
    #[serde(rename = "case.identity-verified")]
    IdentityVerified {
        /// The method used.
        method: String,
    },
    /// The window accepted the case and queued its handoff.
    #[serde(rename = "case.accepted")]
    CaseAccepted {
        /// Materials handed over.
        materials: Vec<MaterialFact>,
    },
    /// The applicant signed a commitment (告知承诺) to supply missing
    /// waivable materials by a deadline; the window may accept without them.
    #[serde(rename = "case.commitment-signed")]
    CommitmentSigned {
        /// Name of the person who signed.
        signer: String,
        /// The committed material kinds.
        kinds: Vec<String>,
        /// The deadline, `YYYY-MM-DD`.
        due_date: String,
    },
    /// The clerk recorded the video consultation with the home authority
    /// at intake (异地视频会商).
    #[serde(rename = "case.video-consultation")]
    ConsultationRecorded {
        /// RFC 3339 time it took place.
        at: String,
        /// The home authority's reviewer.
        reviewer: String,
        /// What was agreed.
        outcome: String,
    },
    /// Committed materials were supplied after acceptance (sent by the
    /// window, taken in at home).
    #[serde(rename = "case.commitment-supplied")]
    CommitmentSupplied {
        /// Materials supplied.
        materials: Vec<MaterialFact>,
        /// Committed kinds still outstanding (empty: fulfilled).
        outstanding: Vec<String>,
    },
    /// The window sent the supplement of a correction request.
    #[serde(rename = "case.resubmitted")]
    CaseResubmitted {
        /// Materials supplied.
        materials: Vec<MaterialFact>,
    },
    /// The result was handed out and the case closed.
    #[serde(rename = "case.closed")]
    CaseClosed {
        /// The recipient's ID, masked.
        recipient: String,
    },
    /// The receiver's signed receipt for a handoff this node sent.
    #[serde(rename = "handoff.receipted")]
    HandoffReceipted {
        /// The handoff id.
        handoff_id: String,
        /// The county that receipted it.
        to: CountyCode,
        /// The encoded `Receipt`, exactly as signed.
        #[serde(with = "hex_bytes")]
        receipt: Vec<u8>,
        /// The signature over it.
        #[serde(with = "hex_bytes")]
        signature: Vec<u8>,
        /// The signer's DER certificate.
        #[serde(with = "hex_bytes")]
        signer_certificate: Vec<u8>,
        /// The batch the receipt was signed in (an encoded `ReceiptBatch`:
        /// root, its signature, leaf index, tree size, inclusion path);
        /// empty for a receipt signed on its own, whose `signature` covers it.
        #[serde(default, skip_serializing_if = "Vec::is_empty", with = "hex_bytes")]
        batch: Vec<u8>,
        /// The receiver's ledger seq the receipt names.
        receiver_seq: u64,
    },
    /// The receiver refused a handoff: it is parked.
    #[serde(rename = "handoff.refused")]
    HandoffRefused {
        /// The handoff id.
        handoff_id: String,
        /// The county that refused it.
        to: CountyCode,
        /// The refusal's reason code and facts as the receiver reported
        /// them, if it sent any: its words, not this node's, kept as sent
        /// (within [`ReportedRefusal::check`]'s bounds).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reported: Option<ReportedRefusal>,
    },
    /// The courier gave up on a handoff for now: it is parked.
    #[serde(rename = "handoff.parked")]
    HandoffParked {
        /// The handoff id.
        handoff_id: String,
        /// The county it was for.
        to: CountyCode,
    },
    /// An operator queued parked handoffs again.
    #[serde(rename = "handoff.retried")]
    HandoffRetried {
        /// The handoff ids queued again.
        handoff_ids: Vec<String>,
    },
    /// A new case arrived from its receiving window.
    #[serde(rename = "handoff.received")]
    HandoffReceived,
    /// The supplement of a correction request arrived.
    #[serde(rename = "supplement.received")]
    SupplementReceived,
    /// The other node reported a step of the case.
    #[serde(rename = "update.received")]
    UpdateReceived {
        /// The event it reported (`review.approved`, ...).
        event: String,
    },
    /// A reviewer accepted the case (受理): the promised-time clock starts.
    #[serde(rename = "review.accepted")]
    ReviewAccepted {
        /// The promised date, `YYYY-MM-DD`.
        due_date: String,
        /// Promised working days.
        promised_days: u32,
    },
    /// A reviewer asked for corrections: the clock pauses.
    #[serde(rename = "review.correction-requested")]
    CorrectionRequested {
        /// (material kind, reason) pairs.
        needs: Vec<(String, String)>,
        /// Deadline for the applicant, `YYYY-MM-DD`.
        deadline: String,
        /// Working days left when the clock paused.
        paused_days_left: Option<i64>,
    },
    /// The home node took in the supplement: the clock runs again.
    #[serde(rename = "review.supplement-received")]
    SupplementTaken,
    /// The paper originals arrived at home.
    #[serde(rename = "review.paper-received")]
    PaperReceived {
        /// The material kinds whose originals arrived.
        kinds: Vec<String>,
    },
    /// A reviewer approved the case.
    #[serde(rename = "review.approved")]
    Approved {
        /// Licence number given.
        licence_no: String,
        /// Lowercase hex SHA-256 of the result document.
        result_sha256: String,
        /// Its size in bytes.
        result_size: u64,
    },
    /// A reviewer denied the case.
    #[serde(rename = "review.denied")]
    Denied {
        /// The reason given.
        reason: String,
    },
    /// A postal leg was sent.
    #[serde(rename = "mail.sent")]
    MailSent {
        /// Which leg.
        leg: MailLeg,
        /// Carrier name.
        carrier: String,
        /// Waybill number.
        waybill: String,
        /// Who it is addressed to.
        to: MailTo,
    },
    /// A carrier reported a postal event.
    #[serde(rename = "mail.event")]
    MailEvent {
        /// Waybill number.
        waybill: String,
        /// The status reported.
        status: MailStatus,
        /// RFC 3339 time of the event.
        at: String,
        /// The carrier's note.
        note: String,
    },
    /// This node's operator re-issued the receipt of a handoff it had
    /// received (its first receipt was bad, e.g. dated by a wrong clock):
    /// the new receipt replaces the one replayed to the sender.
    #[serde(rename = "receipt.reissued")]
    ReceiptReissued {
        /// The handoff id.
        handoff_id: String,
        /// The county that sent it.
        from: CountyCode,
        /// Lowercase hex SHA-256 of the encoded signed receipt replaced.
        replaced_sha256: String,
        /// The new receipt, encoded `SignedReceipt`.
        #[serde(with = "hex_bytes")]
        receipt: Vec<u8>,
    },
    /// The home authority counted the case's running dates again with the
    /// holiday calendar now in force, and these moved.
    #[serde(rename = "case.due-recomputed")]
    DueRecomputed {
        /// Each date that moved.
        changes: Vec<DueChange>,
        /// The calendar they were counted with (`Calendar::identity`).
        calendar: String,
    },
    /// An auditor queried this node.
    #[serde(rename = "audit.query")]
    AuditQuery {
        /// What was asked.
        query: String,
    },
}

impl EntryBody {
    /// The entry kind this body records, as stored in the ledger entry.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::CaseApplied { .. } => "case.applied",
            Self::CaseAttached { .. } => "case.attached",
            Self::IdentityVerified { .. } => "case.identity-verified",
            Self::CaseAccepted { .. } => "case.accepted",
            Self::CommitmentSigned { .. } => "case.commitment-signed",
            Self::CommitmentSupplied { .. } => "case.commitment-supplied",
            Self::ConsultationRecorded { .. } => "case.video-consultation",
            Self::CaseResubmitted { .. } => "case.resubmitted",
            Self::CaseClosed { .. } => "case.closed",
            Self::HandoffReceipted { .. } => "handoff.receipted",
            Self::HandoffRefused { .. } => "handoff.refused",
            Self::HandoffParked { .. } => "handoff.parked",
            Self::HandoffRetried { .. } => "handoff.retried",
            Self::HandoffReceived => "handoff.received",
            Self::SupplementReceived => "supplement.received",
            Self::UpdateReceived { .. } => "update.received",
            Self::ReviewAccepted { .. } => "review.accepted",
            Self::CorrectionRequested { .. } => "review.correction-requested",
            Self::SupplementTaken => "review.supplement-received",
            Self::PaperReceived { .. } => "review.paper-received",
            Self::Approved { .. } => "review.approved",
            Self::Denied { .. } => "review.denied",
            Self::MailSent { .. } => "mail.sent",
            Self::MailEvent { .. } => "mail.event",
            Self::ReceiptReissued { .. } => "receipt.reissued",
            Self::DueRecomputed { .. } => "case.due-recomputed",
            Self::AuditQuery { .. } => "audit.query",
        }
    }
}

/// A ledger entry's payload: the human detail, the typed body, and the
/// handoff sent or received with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payload {
    /// One line for people (personal data masked).
    pub detail: String,
    /// The handoff this change queued to the other node, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent: Option<Sent>,
    /// The handoff this entry records receiving, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received: Option<Received>,
    /// What the entry records.
    #[serde(flatten)]
    pub body: EntryBody,
}

/// Why a stored payload could not be read as a [`Payload`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// The bytes are not a payload of any known kind.
    #[error("payload does not decode: {0}")]
    Decode(String),
    /// The payload is of another kind than its entry.
    #[error("payload is of kind {payload}, its entry of kind {entry}")]
    KindMismatch {
        /// The entry's kind.
        entry: String,
        /// The payload's kind.
        payload: &'static str,
    },
}

impl Payload {
    /// A payload with nothing sent or received.
    pub fn new(detail: impl Into<String>, body: EntryBody) -> Self {
        Self {
            detail: detail.into(),
            sent: None,
            received: None,
            body,
        }
    }

    /// The bytes stored (and hashed) for this payload.
    pub fn encode(&self) -> Vec<u8> {
        // Plain structs of strings and numbers always serialise.
        serde_json::to_vec(self).expect("payload serialises")
    }

    /// Reads the payload of an entry of kind `kind`, refusing one of
    /// another kind.
    pub fn decode(kind: &str, bytes: &[u8]) -> Result<Self, PayloadError> {
        let payload: Self =
            serde_json::from_slice(bytes).map_err(|e| PayloadError::Decode(e.to_string()))?;
        if payload.body.kind() != kind {
            return Err(PayloadError::KindMismatch {
                entry: kind.to_owned(),
                payload: payload.body.kind(),
            });
        }
        Ok(payload)
    }

    /// The signer certificate this payload carries (a receipt's), or empty.
    pub fn signer_certificate(&self) -> &[u8] {
        match &self.body {
            EntryBody::HandoffReceipted {
                signer_certificate, ..
            } => signer_certificate,
            _ => &[],
        }
    }

    /// The handoff id this entry sends, receives or receipts, if any.
    pub fn handoff_id(&self) -> Option<&str> {
        if let Some(s) = &self.sent {
            return Some(&s.handoff_id);
        }
        if let Some(r) = &self.received {
            return Some(&r.handoff_id);
        }
        match &self.body {
            EntryBody::HandoffReceipted { handoff_id, .. }
            | EntryBody::HandoffRefused { handoff_id, .. }
            | EntryBody::HandoffParked { handoff_id, .. }
            | EntryBody::ReceiptReissued { handoff_id, .. } => Some(handoff_id),
            _ => None,
        }
    }
}

impl NewEntry {
    /// The entry recording `payload` for `case`, by `actor`, moving the
    /// case to `state` if set. The kind comes from the payload's body.
    pub fn record(
        case: &CaseRecord,
        actor: impl Into<String>,
        state: Option<CaseState>,
        payload: &Payload,
    ) -> Self {
        Self {
            application_id: case.application_id.clone(),
            case_no: case.case_no.to_string(),
            actor: actor.into(),
            kind: payload.body.kind().to_owned(),
            state,
            payload: payload.encode(),
            signer_certificate: payload.signer_certificate().to_vec(),
        }
    }

    /// A node-level entry (no case), such as an auditor's query.
    pub fn node(actor: impl Into<String>, payload: &Payload) -> Self {
        Self {
            application_id: String::new(),
            case_no: String::new(),
            actor: actor.into(),
            kind: payload.body.kind().to_owned(),
            state: None,
            payload: payload.encode(),
            signer_certificate: payload.signer_certificate().to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payload_round_trips_and_names_its_kind() {
        let mut p = Payload::new(
            "accepted",
            EntryBody::CaseAccepted {
                materials: vec![MaterialFact {
                    kind: "id-card".into(),
                    size: 3,
                    sha256: "ab".into(),
                }],
            },
        );
        p.sent = Some(Sent {
            handoff_id: "h".into(),
            to: "610113".parse().unwrap(),
            envelope_sha256: "cd".into(),
        });
        let bytes = p.encode();
        let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(json["kind"], "case.accepted");
        assert_eq!(json["sent"]["to"], "610113");
        assert_eq!(json["materials"][0]["kind"], "id-card");
        assert_eq!(Payload::decode("case.accepted", &bytes).unwrap(), p);
        assert_eq!(p.handoff_id(), Some("h"));
        let err = Payload::decode("case.applied", &bytes).unwrap_err();
        assert!(err.to_string().contains("case.accepted"), "{err}");
        assert!(Payload::decode("case.accepted", b"{\"kind\":\"nope\"}").is_err());
    }

    #[test]
    fn unit_bodies_and_bytes_round_trip() {
        for body in [
            EntryBody::HandoffReceived,
            EntryBody::SupplementTaken,
            EntryBody::CommitmentSigned {
                signer: "张三".into(),
                kinds: vec!["marriage-certificate".into()],
                due_date: "2026-10-09".into(),
            },
            EntryBody::CommitmentSupplied {
                materials: Vec::new(),
                outstanding: Vec::new(),
            },
            EntryBody::ConsultationRecorded {
                at: "2026-12-01T09:00:00+08:00".into(),
                reviewer: "李审".into(),
                outcome: "materials agreed".into(),
            },
            EntryBody::HandoffReceipted {
                handoff_id: "h".into(),
                to: "610113".parse().unwrap(),
                receipt: vec![1, 2, 255],
                signature: vec![0],
                signer_certificate: vec![],
                batch: vec![],
                receiver_seq: 7,
            },
        ] {
            let p = Payload::new("d", body);
            assert_eq!(Payload::decode(p.body.kind(), &p.encode()).unwrap(), p);
        }
    }
}
