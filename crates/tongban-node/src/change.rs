//! A change to a case: the one way anything at this node — a clerk's or a
//! reviewer's request, a handoff received, a receipt the courier holds —
//! makes a case change durable.
//!
//! A [`Change`] names who acted, the typed ledger entry and, when the other
//! county must hear of it, the handoff to send ([`Outgoing`]). [`stage`]
//! writes all of it into one [`Batch`]: the case record, its ledger entry
//! (with the handoff's id and envelope digest for auditors), the outbox entry
//! and the case's handoff list. [`save`] commits that batch, with the
//! client request it carries out (see `requests`), and wakes the courier. No handler builds ledger entries or outbox entries by hand.

use prost::Message;
use tongban_core::{CaseEvent, CaseState, CountyCode};
use tongban_ledger::{
    Batch, CaseRecord, EntryBody, HandoffRecord, MaterialRef, NewEntry, OutboxEntry, Payload,
    Received, Sent,
};
use tongban_proto::common::v1::CaseView;
use tongban_proto::federation::v1::{
    Application, CaseUpdate, Envelope, Supplement, envelope::Body,
};

use crate::ctx::Ctx;
use crate::protocol::FORMAT_VERSION;
use crate::requests::Ticket;
use crate::{NodeError, view};

/// What a change sends to the node at the case's other end.
pub(crate) enum Outgoing {
    /// The first handoff, from the window: the application and its materials.
    Application(Box<Application>, Vec<MaterialRef>),
    /// A correction's supplement, from the window, with the materials supplied.
    Supplement(Supplement, Vec<MaterialRef>),
    /// A step the other node mirrors.
    Update(CaseEvent, Box<CaseUpdate>),
    /// The approval, from home, with its result document: the window hands
    /// the result out (出件) and prints it, so it gets the document itself,
    /// which it checks against the digest the update declares.
    Approval(Box<CaseUpdate>, MaterialRef),
}

impl Outgoing {
    /// The handoff kind recorded in the outbox and the case's handoff list.
    fn kind(&self) -> &'static str {
        match self {
            Self::Application(..) => "application",
            Self::Supplement(..) => "supplement",
            Self::Update(..) | Self::Approval(..) => "update",
        }
    }
}

/// One change to one case.
pub(crate) struct Change {
    actor: String,
    detail: String,
    body: EntryBody,
    note: Option<String>,
    send: Option<Outgoing>,
    received: Option<Received>,
    with_state: bool,
}

impl Change {
    /// A change made by `actor`, recorded as `body` with `detail` (which
    /// also becomes the case's note unless [`Change::note`] says otherwise).
    pub(crate) fn new(
        actor: impl Into<String>,
        detail: impl Into<String>,
        body: EntryBody,
    ) -> Self {
        Self {
            actor: actor.into(),
            detail: detail.into(),
            body,
            note: None,
            send: None,
            received: None,
            with_state: true,
        }
    }

    /// Sends `outgoing` to the other county with this change.
    pub(crate) fn send(mut self, outgoing: Outgoing) -> Self {
        self.send = Some(outgoing);
        self
    }

    /// Sets the case's note to `note` instead of the detail.
    pub(crate) fn note(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }

    /// Records the handoff this change came in.
    pub(crate) fn received(mut self, received: Received) -> Self {
        self.received = Some(received);
        self
    }

    /// Records the entry without a case state (the case did not move here:
    /// a park, the receipt of an update).
    pub(crate) fn without_state(mut self) -> Self {
        self.with_state = false;
        self
    }
}

/// The county at the other end of a case.
pub(crate) fn peer_of(ctx: &Ctx, case: &CaseRecord) -> CountyCode {
    if case.receiving_county == ctx.county {
        case.home_county.clone()
    } else {
        case.receiving_county.clone()
    }
}

/// Lowercase hex SHA-256 of an envelope.
pub(crate) fn envelope_sha(envelope: &[u8]) -> String {
    use sha2::Digest;
    tongban_ledger::records::hex(&sha2::Sha256::digest(envelope))
}

/// The outbox entry carrying `body` (with `materials`) from `actor` to the
/// other county; the envelope is encoded once, so every retry sends the
/// same bytes.
pub(crate) fn outbox_entry(
    ctx: &Ctx,
    case: &CaseRecord,
    actor: &str,
    kind: &str,
    body: Body,
    materials: Vec<MaterialRef>,
) -> OutboxEntry {
    let handoff_id = uuid::Uuid::now_v7().to_string();
    let envelope = Envelope {
        version: FORMAT_VERSION,
        handoff_id: handoff_id.clone(),
        application_id: case.application_id.clone(),
        case_no: case.case_no.to_string(),
        receiving_county: case.receiving_county.to_string(),
        home_county: case.home_county.to_string(),
        sent_at: ctx.clock.now_rfc3339(),
        actor: actor.to_owned(),
        body: Some(body),
        materials: materials.iter().map(view::header).collect(),
    }
    .encode_to_vec();
    OutboxEntry {
        handoff_id,
        application_id: case.application_id.clone(),
        to: peer_of(ctx, case),
        envelope,
        kind: kind.to_owned(),
        materials,
        parked: None,
    }
}

/// `update` as it reports `event`: the case's state only if the change
/// moved it (see [`stage`]), and the change's detail.
fn reported(
    mut update: CaseUpdate,
    event: CaseEvent,
    before: Option<CaseState>,
    case: &CaseRecord,
    detail: &str,
) -> CaseUpdate {
    update.event = event.as_str().to_owned();
    update.state = if before == Some(case.state) {
        String::new()
    } else {
        case.state.as_str().to_owned()
    };
    update.detail = detail.to_owned();
    update
}

/// Writes `change` of `case` into `batch`: the handoff to send (if any) and
/// the ledger entry; the caller puts the case record itself, once, after its
/// last change in the batch (the receiver and the courier change several
/// cases, some more than once, in one commit). `before` is the case's state before
/// the change (None for a new case): an update reports a state only when
/// the change moved the case, since a step that did not (a paper-originals
/// leg, paper received) must not set the other node's newer state back.
/// Returns the partner the change sends to, if it sends something.
pub(crate) fn stage(
    ctx: &Ctx,
    case: &mut CaseRecord,
    before: Option<CaseState>,
    change: Change,
    batch: &mut Batch,
) -> Option<CountyCode> {
    let Change {
        actor,
        detail,
        body,
        note,
        send,
        received,
        with_state,
    } = change;
    match note {
        Some(note) => case.note = note,
        None if !detail.is_empty() => case.note = detail.clone(),
        None => {}
    }
    let mut payload = Payload::new(detail, body);
    payload.received = received;
    let mut sends = None;
    if let Some(outgoing) = send {
        let kind = outgoing.kind();
        let (body, materials) = match outgoing {
            Outgoing::Application(app, materials) => (Body::Application(*app), materials),
            Outgoing::Supplement(sup, materials) => (Body::Supplement(sup), materials),
            Outgoing::Update(event, update) => {
                let update = reported(*update, event, before, case, &payload.detail);
                (Body::Update(update), Vec::new())
            }
            Outgoing::Approval(update, result) => {
                let update = reported(*update, CaseEvent::Approved, before, case, &payload.detail);
                (Body::Update(update), vec![result])
            }
        };
        let entry = outbox_entry(ctx, case, &actor, kind, body, materials);
        payload.sent = Some(Sent {
            handoff_id: entry.handoff_id.clone(),
            to: entry.to.clone(),
            envelope_sha256: envelope_sha(&entry.envelope),
        });
        case.handoffs.push(HandoffRecord {
            handoff_id: entry.handoff_id.clone(),
            kind: kind.into(),
            peer: entry.to.clone(),
            sent: true,
            receipt_seq: None,
        });
        sends = Some(entry.to.clone());
        batch.enqueue(entry);
    }
    let state = with_state.then_some(case.state);
    batch.append(NewEntry::record(case, actor, state, &payload));
    sends
}

/// Commits `change` of `case` with whatever `batch` already holds (a waybill
/// index, outbox updates), flushed before it returns; then wakes the
/// courier for the partner if the change sends something. Returns the caller's reply:
/// `reply` of the case's view after the change (with its history, the new
/// entry included). When `request` carries a request id, the reply is
/// remembered with it in the same commit (see `requests`), and what is
/// returned is exactly what a repeat of the request will get: the message
/// whose encoding was remembered (a repeat decodes that encoding, which
/// gives the same message back), handed out of the commit as it is rather
/// than encoded and decoded again. Without a request id nothing is encoded.
pub(crate) async fn save<M>(
    ctx: &Ctx,
    case: &mut CaseRecord,
    change: Change,
    mut batch: Batch,
    request: &Ticket,
    reply: impl FnOnce(CaseView) -> M + Send + 'static,
) -> Result<M, NodeError>
where
    M: Message + Default + Send + 'static,
{
    let before = ctx.store.case(&case.application_id)?.map(|c| c.state);
    let first = batch.entries().len();
    let sends = stage(ctx, case, before, change, &mut batch);
    batch.put_case(case.clone());
    // The view with the history committed so far; the entries this commit
    // appends join it as the store is about to write them (seq, time, chain
    // hash), so the reply is the view a read after the commit gives.
    let mut view = view::case_view(ctx, case, true)?;
    let county = ctx.county.to_string();
    let application_id = case.application_id.clone();
    let remembered = request.remember().is_some();
    // The reply is built under the commit's write lock (it shows the new
    // entries as stored); it leaves the commit through this channel.
    let (built, mut out) = tokio::sync::oneshot::channel();
    batch.reply(move |stored| {
        for entry in stored.iter().skip(first) {
            if entry.decode()?.application_id == application_id {
                view.history.push(view::event(&county, entry)?);
            }
        }
        let message = reply(view);
        let bytes = if remembered {
            message.encode_to_vec()
        } else {
            Vec::new()
        };
        // The receiver waits below; it is gone only if this call was
        // dropped, and then no one wants the reply.
        let _ = built.send(message);
        Ok(bytes)
    });
    if let Some(r) = request.remember() {
        batch.remember(&r.caller, &r.request_id, r.content_sha256.clone());
    }
    ctx.store.commit(batch).await?;
    if let Some(to) = sends {
        ctx.wake.send_to(to.as_str());
    }
    out.try_recv()
        .map_err(|_| NodeError::Server("the commit built no reply".into()))
}
