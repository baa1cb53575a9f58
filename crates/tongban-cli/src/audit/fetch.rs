//! Collecting the evidence of one case from the nodes it touched. Every
//! node is asked at once, in two rounds: first what the case is on it (its
//! entries, which the node records, its partner checkpoints, the case's
//! evidence — three calls at once on one connection), then a fresh signed
//! checkpoint and the range of the ledger up to it. A trace so waits for
//! about three of a node's ledger writes, not for every call in turn.

use anyhow::{Context, Result, anyhow, bail};
use prost::Message;
use tongban_pki::tls::TlsMaterial;
use tongban_proto::audit::v1::audit_client::AuditClient;
use tongban_proto::audit::v1::{
    CaseEntriesReply, CaseEntriesRequest, CheckpointRequest, EvidenceRequest,
    PartnerCheckpointsRequest, RangeRequest, evidence_frame,
};
use tongban_proto::common::v1::{Checkpoint, SignedCheckpoint};
use tonic::transport::Channel;

use super::evidence::{GivenHex, MaterialHash};
use super::known::Known;
use super::node::Step;
use super::{BUNDLE_FORMAT, Bundle, EntryHex, NodeEvidence, Signed, hex};
use crate::client::channel;
use crate::cmd::status_error;

async fn range(
    client: &mut AuditClient<Channel>,
    from: u64,
    to: u64,
) -> Result<Vec<tongban_proto::audit::v1::AuditEntry>> {
    let mut stream = client
        .range(RangeRequest {
            from_seq: from,
            to_seq: to,
        })
        .await
        .map_err(status_error)?
        .into_inner();
    let mut out = Vec::new();
    while let Some(e) = stream.message().await.map_err(status_error)? {
        out.push(e);
    }
    Ok(out)
}

/// Streams a node's evidence (of one case, or every case for an empty
/// `case_no`): its re-hashed materials, telling `on` the bytes it will
/// re-hash and each material's as it comes, the receipts it gave, and the
/// seconds it took.
pub(crate) async fn evidence(
    client: &mut AuditClient<Channel>,
    case_no: &str,
    on: &mut (dyn FnMut(Step<'_>) + Send),
) -> Result<(Vec<MaterialHash>, Vec<GivenHex>, f64)> {
    let started = std::time::Instant::now();
    let mut stream = client
        .evidence(EvidenceRequest {
            case_no: case_no.to_owned(),
        })
        .await
        .map_err(status_error)?
        .into_inner();
    let mut materials = Vec::new();
    let mut given = Vec::new();
    while let Some(f) = stream.message().await.map_err(status_error)? {
        match f.frame {
            Some(evidence_frame::Frame::Header(h)) => on(Step::Evidence {
                material_bytes: h.material_bytes,
            }),
            Some(evidence_frame::Frame::Material(m)) => {
                on(Step::Rehashed {
                    bytes: m.recorded_size,
                });
                materials.push(MaterialHash::from(m));
            }
            Some(evidence_frame::Frame::Receipt(r)) => given.push(GivenHex::from(r)),
            None => bail!("the node sent an empty evidence frame"),
        }
    }
    Ok((materials, given, started.elapsed().as_secs_f64()))
}

/// A node to read a case from: its URL, a client on a channel to it, and
/// the case's listing if it was read already (the console reads the
/// receiving node's first, to learn the home county, and does not ask twice).
pub(crate) struct Source {
    /// The node's URL, as the bundle names it.
    pub(crate) url: String,
    /// An audit client on a channel to it.
    pub(crate) client: AuditClient<Channel>,
    /// The case's entries as the node listed them for this trace, if asked.
    pub(crate) listed: Option<CaseEntriesReply>,
}

impl Source {
    /// A source on a new channel to `url`.
    pub(crate) async fn open(url: &str, tls: &TlsMaterial) -> Result<Self> {
        Ok(Self {
            url: url.to_owned(),
            client: AuditClient::new(channel(url, tls).await?),
            listed: None,
        })
    }
}

/// What one node said of the case in the first round.
pub(crate) struct Read {
    url: String,
    client: AuditClient<Channel>,
    reply: CaseEntriesReply,
    partners: Vec<SignedCheckpoint>,
    materials: Vec<MaterialHash>,
    given: Vec<GivenHex>,
}

/// Fetches the case from every node: its entries first (which the node
/// records), the partner checkpoints, the case's evidence (its materials
/// re-hashed by the node, the receipts it gave), then a fresh checkpoint and
/// the range of the ledger from the earliest entry anyone needs up to that
/// checkpoint.
pub(crate) async fn fetch(
    case_no: &str,
    urls: &[String],
    tls: &TlsMaterial,
    reveal: bool,
) -> Result<Bundle> {
    let mut sources = Vec::with_capacity(urls.len());
    for url in urls {
        sources.push(Source::open(url, tls).await?);
    }
    let read = read_case(case_no, sources, reveal).await?;
    complete(case_no, read, tls, None).await
}

/// The first round: from every node at once, the case's entries (unless
/// its source holds them already), the partner checkpoints and the case's
/// evidence, in the order of `sources`. Needs nothing verified before, so a
/// trace runs it without holding what the console keeps.
pub(crate) async fn read_case(
    case_no: &str,
    sources: Vec<Source>,
    reveal: bool,
) -> Result<Vec<Read>> {
    let tasks: Vec<_> = sources
        .into_iter()
        .map(|s| tokio::spawn(read_one(case_no.to_owned(), s, reveal)))
        .collect();
    let mut read = Vec::with_capacity(tasks.len());
    for t in tasks {
        read.push(
            t.await
                .map_err(|e| anyhow!("reading a node failed: {e}"))??,
        );
    }
    Ok(read)
}

async fn read_one(case_no: String, source: Source, reveal: bool) -> Result<Read> {
    let Source {
        url,
        client,
        listed,
    } = source;
    let (mut for_entries, mut for_partners, mut for_evidence) =
        (client.clone(), client.clone(), client.clone());
    let entries = async {
        match listed {
            Some(reply) => Ok(reply),
            None => for_entries
                .case_entries(CaseEntriesRequest {
                    case_no: case_no.clone(),
                    reveal,
                })
                .await
                .map(tonic::Response::into_inner)
                .map_err(status_error)
                .with_context(|| format!("reading case {case_no} from {url}")),
        }
    };
    let partners = async {
        for_partners
            .partner_checkpoints(PartnerCheckpointsRequest {})
            .await
            .map(|r| r.into_inner().checkpoints)
            .map_err(status_error)
            .with_context(|| format!("reading partner checkpoints from {url}"))
    };
    let evidence = async {
        evidence(&mut for_evidence, &case_no, &mut |_| {})
            .await
            .with_context(|| format!("reading the evidence of case {case_no} from {url}"))
    };
    let (reply, partners, (materials, given, _)) = tokio::try_join!(entries, partners, evidence)?;
    Ok(Read {
        url,
        client,
        reply,
        partners,
        materials,
        given,
    })
}

/// The second round and the bundle: from every node at once, a fresh
/// checkpoint and the range up to it. Without `known`, the range of a node
/// starts at the earliest entry anyone needs (the case's first, or the
/// oldest checkpoint another node holds of it). With `known` (a trace that
/// keeps what it verified), it starts after the head verified before (when
/// the node's ledger still reaches it), or at entry 1 when nothing is known
/// of the node yet, so that the whole chain gets known; the bundle then
/// holds only the new entries and verifies only with the same `known`
/// ([`super::verify::verify_with`]); `export` never uses this.
pub(crate) async fn complete(
    case_no: &str,
    read: Vec<Read>,
    tls: &TlsMaterial,
    known: Option<&Known>,
) -> Result<Bundle> {
    // Checkpoints other nodes hold about each county: that county's range
    // must reach back to them.
    let mut held: Vec<(String, u64)> = Vec::new();
    for r in &read {
        for c in &r.partners {
            if let Ok(cp) = Checkpoint::decode(c.checkpoint.as_slice()) {
                held.push((cp.county, cp.seq));
            }
        }
    }
    let mut tasks = Vec::with_capacity(read.len());
    for r in &read {
        let county = &r.reply.county;
        let first_case = r.reply.entries.iter().map(|e| e.seq).min();
        let first_held = held
            .iter()
            .filter(|(c, _)| c == county)
            .map(|(_, s)| *s)
            .min();
        // The first entry to ask for, given the checkpoint's seq.
        let kept = known.map(|k| k.get(&r.url).map(|p| p.head()));
        let start = move |cp_seq: u64| {
            let without = first_case
                .unwrap_or(cp_seq)
                .min(first_held.unwrap_or(u64::MAX))
                .max(1);
            match kept {
                None => without,
                Some(None) => 1,
                // A ledger shorter than what was verified: show it from the
                // case on, as without a cache; the verifier names the drop.
                Some(Some(head)) if cp_seq < head => without,
                Some(Some(head)) => head + 1,
            }
        };
        let (mut client, url) = (r.client.clone(), r.url.clone());
        tasks.push(tokio::spawn(async move {
            let signed = client
                .latest_checkpoint(CheckpointRequest {})
                .await
                .map_err(status_error)
                .with_context(|| format!("reading the checkpoint of {url}"))?
                .into_inner();
            let cp = Checkpoint::decode(signed.checkpoint.as_slice())
                .context("checkpoint does not decode")?;
            let from = start(cp.seq);
            let entries = if from > cp.seq {
                Vec::new()
            } else {
                range(&mut client, from, cp.seq)
                    .await
                    .with_context(|| format!("reading the ledger of {url}"))?
            };
            anyhow::Ok((signed, entries))
        }));
    }
    let mut nodes = Vec::with_capacity(read.len());
    for (r, task) in read.into_iter().zip(tasks) {
        let (signed, entries) = task
            .await
            .map_err(|e| anyhow!("reading the ledger of {} failed: {e}", r.url))??;
        let applicant = match &r.reply.applicant {
            Some(a) => serde_json::to_value(a).context("cannot encode the applicant as JSON")?,
            None => serde_json::Value::Null,
        };
        nodes.push(NodeEvidence {
            url: r.url,
            county: r.reply.county.clone(),
            receiving_county: r.reply.receiving_county.clone(),
            home_county: r.reply.home_county.clone(),
            receiving_county_name: r.reply.receiving_county_name.clone(),
            home_county_name: r.reply.home_county_name.clone(),
            applicant,
            checkpoint: Signed::from(&signed),
            entries: entries.iter().map(EntryHex::from).collect(),
            case_entries: r.reply.entries.iter().map(EntryHex::from).collect(),
            partner_checkpoints: r.partners.iter().map(Signed::from).collect(),
            missing_seqs: r.reply.missing_seqs.clone(),
            materials: r.materials,
            given_receipts: r.given,
        });
    }
    let ca_der = rustls_free_der(&tls.ca_pem)?;
    Ok(Bundle {
        format: BUNDLE_FORMAT.into(),
        case_no: case_no.to_owned(),
        created_at: time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        ca_certificate: hex(&ca_der),
        nodes,
    })
}
/// Verifies the whole ledger of the node at `url` (of `county`) into
/// `known`, unless something of it is known already: the console does this
/// for every node of its directory at start, so the first trace is not the
/// one that pays for the whole ledger. The entries verified.
pub(crate) async fn warm(
    known: &tokio::sync::Mutex<Known>,
    url: &str,
    county: &str,
    tls: &TlsMaterial,
    anchor: &tongban_pki::TrustAnchor,
) -> Result<u64> {
    let mut known = known.lock().await;
    if let Some(p) = known.get(url) {
        return Ok(p.head());
    }
    let mut client = AuditClient::new(channel(url, tls).await?);
    let signed = client
        .latest_checkpoint(CheckpointRequest {})
        .await
        .map_err(status_error)
        .with_context(|| format!("reading the checkpoint of {url}"))?
        .into_inner();
    let cp =
        Checkpoint::decode(signed.checkpoint.as_slice()).context("checkpoint does not decode")?;
    let entries = if cp.seq == 0 {
        Vec::new()
    } else {
        range(&mut client, 1, cp.seq)
            .await
            .with_context(|| format!("reading the ledger of {url}"))?
    };
    let entries = entries.iter().map(EntryHex::from).collect();
    super::verify::learn(
        anchor,
        url,
        county,
        Signed::from(&signed),
        entries,
        &mut known,
    )
    .map_err(|problem| anyhow::anyhow!(problem))
}

/// The DER of the CA certificate, via the PKI crate's anchor.
fn rustls_free_der(ca_pem: &str) -> Result<Vec<u8>> {
    Ok(tongban_pki::TrustAnchor::from_pem(ca_pem)?
        .ca_der()
        .to_vec())
}
