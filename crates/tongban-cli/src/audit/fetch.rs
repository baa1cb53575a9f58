//! Collecting the evidence of one case from the nodes it touched.

use anyhow::{Context, Result, bail};
use prost::Message;
use tongban_pki::tls::TlsMaterial;
use tongban_proto::audit::v1::audit_client::AuditClient;
use tongban_proto::audit::v1::{
    CaseEntriesRequest, CheckpointRequest, EvidenceRequest, PartnerCheckpointsRequest,
    RangeRequest, evidence_frame,
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
    fetch_with(case_no, urls, tls, reveal, None).await
}

/// [`fetch`] for a trace that keeps what it verified: with `known`, the
/// range of a node starts after the head verified before (when the node's
/// ledger still reaches it), or at entry 1 when nothing is known of the
/// node yet, so that the whole chain gets known. The bundle then holds only
/// the new entries and verifies only with the same `known`
/// ([`super::verify::verify_with`]); `export` never uses this.
pub(crate) async fn fetch_with(
    case_no: &str,
    urls: &[String],
    tls: &TlsMaterial,
    reveal: bool,
    known: Option<&Known>,
) -> Result<Bundle> {
    struct Partial {
        url: String,
        client: AuditClient<Channel>,
        reply: tongban_proto::audit::v1::CaseEntriesReply,
        partners: Vec<SignedCheckpoint>,
        materials: Vec<MaterialHash>,
        given: Vec<GivenHex>,
    }
    let mut partials = Vec::new();
    for url in urls {
        let mut client = AuditClient::new(channel(url, tls).await?);
        let reply = client
            .case_entries(CaseEntriesRequest {
                case_no: case_no.to_owned(),
                reveal,
            })
            .await
            .map_err(status_error)
            .with_context(|| format!("reading case {case_no} from {url}"))?
            .into_inner();
        let partners = client
            .partner_checkpoints(PartnerCheckpointsRequest {})
            .await
            .map_err(status_error)
            .with_context(|| format!("reading partner checkpoints from {url}"))?
            .into_inner()
            .checkpoints;
        let (materials, given, _) = evidence(&mut client, case_no, &mut |_| {})
            .await
            .with_context(|| format!("reading the evidence of case {case_no} from {url}"))?;
        partials.push(Partial {
            url: url.clone(),
            client,
            reply,
            partners,
            materials,
            given,
        });
    }
    // Checkpoints other nodes hold about each county: that county's range
    // must reach back to them.
    let mut held: Vec<(String, u64)> = Vec::new();
    for p in &partials {
        for c in &p.partners {
            if let Ok(cp) = Checkpoint::decode(c.checkpoint.as_slice()) {
                held.push((cp.county, cp.seq));
            }
        }
    }
    let mut nodes = Vec::new();
    for mut p in partials {
        let signed = p
            .client
            .latest_checkpoint(CheckpointRequest {})
            .await
            .map_err(status_error)
            .with_context(|| format!("reading the checkpoint of {}", p.url))?
            .into_inner();
        let cp = Checkpoint::decode(signed.checkpoint.as_slice())
            .context("checkpoint does not decode")?;
        let county = p.reply.county.clone();
        let first_case = p
            .reply
            .entries
            .iter()
            .map(|e| e.seq)
            .min()
            .unwrap_or(cp.seq);
        let first_held = held
            .iter()
            .filter(|(c, _)| *c == county)
            .map(|(_, s)| *s)
            .min()
            .unwrap_or(u64::MAX);
        let from = match known.map(|k| k.get(&p.url)) {
            None => first_case.min(first_held).max(1),
            Some(None) => 1,
            // A ledger shorter than what was verified: show it from the
            // case on, as without a cache; the verifier names the drop.
            Some(Some(prefix)) if cp.seq < prefix.head() => first_case.min(first_held).max(1),
            Some(Some(prefix)) => prefix.head() + 1,
        };
        let entries = if from > cp.seq {
            Vec::new()
        } else {
            range(&mut p.client, from, cp.seq)
                .await
                .with_context(|| format!("reading the ledger of {}", p.url))?
        };
        let applicant = match &p.reply.applicant {
            Some(a) => serde_json::to_value(a).context("cannot encode the applicant as JSON")?,
            None => serde_json::Value::Null,
        };
        nodes.push(NodeEvidence {
            url: p.url,
            county,
            receiving_county: p.reply.receiving_county.clone(),
            home_county: p.reply.home_county.clone(),
            receiving_county_name: p.reply.receiving_county_name.clone(),
            home_county_name: p.reply.home_county_name.clone(),
            applicant,
            checkpoint: Signed::from(&signed),
            entries: entries.iter().map(EntryHex::from).collect(),
            case_entries: p.reply.entries.iter().map(EntryHex::from).collect(),
            partner_checkpoints: p.partners.iter().map(Signed::from).collect(),
            missing_seqs: p.reply.missing_seqs.clone(),
            materials: p.materials,
            given_receipts: p.given,
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
        &tls.trust_anchor()?,
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
