//! Reading a material from a node (Review.Material, Window.Material), for
//! the CLI and the console alike: the first frame's facts, then the content
//! checked as it arrives — in order, no longer than declared, and at the end
//! against the declared size and SHA-256 — and saving it to a file that
//! appears only once it is whole and checked.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use sha2::{Digest, Sha256};
use tongban_proto::common::v1::{MaterialFrame, material_frame};
use tonic::Streaming;

use crate::cmd::status_error;

/// What the node says about a material before its content.
#[derive(Debug, Clone)]
pub(crate) struct Facts {
    /// Material kind.
    pub(crate) kind: String,
    /// File name as declared at the window (untrusted text).
    pub(crate) filename: String,
    /// Size in bytes.
    pub(crate) size: u64,
    /// Lowercase hex SHA-256.
    pub(crate) sha256: String,
    /// The node's guess from the file name; empty if none.
    pub(crate) content_type: String,
}

/// A material being read: its facts, and the rest of the stream.
pub(crate) struct Reading {
    pub(crate) facts: Facts,
    frames: Streaming<MaterialFrame>,
    hasher: Sha256,
    received: u64,
    done: bool,
}

/// Starts reading from a Material call's reply: takes the first frame,
/// which must be the facts.
pub(crate) async fn open(
    reply: Result<tonic::Response<Streaming<MaterialFrame>>, tonic::Status>,
) -> Result<Reading> {
    let mut frames = reply.map_err(status_error)?.into_inner();
    let first = frames
        .message()
        .await
        .map_err(status_error)?
        .ok_or_else(|| anyhow!("the node ended the material stream before saying what it is"))?;
    let Some(material_frame::Frame::Facts(facts)) = first.frame else {
        bail!("the node's material stream did not start with the material's facts");
    };
    let header = facts
        .material
        .ok_or_else(|| anyhow!("the node's material facts carry no material"))?;
    if header.sha256.len() != 32 {
        bail!(
            "the node declared a SHA-256 of {} bytes for material {}",
            header.sha256.len(),
            header.kind
        );
    }
    Ok(Reading {
        facts: Facts {
            kind: header.kind,
            filename: header.filename,
            size: header.size,
            sha256: hex::encode(&header.sha256),
            content_type: facts.content_type,
        },
        frames,
        hasher: Sha256::new(),
        received: 0,
        done: false,
    })
}

impl Reading {
    /// The next piece of content, `None` once all of it has arrived and
    /// matched the declared size and SHA-256. An error from the node (such
    /// as DATA_LOSS for a damaged stored copy), a frame out of place, more
    /// bytes than declared or a mismatch at the end is an error.
    pub(crate) async fn next(&mut self) -> Result<Option<Bytes>> {
        if self.done {
            return Ok(None);
        }
        let kind = &self.facts.kind;
        match self.frames.message().await.map_err(status_error)? {
            Some(MaterialFrame {
                frame: Some(material_frame::Frame::Chunk(chunk)),
            }) => {
                self.received += chunk.data.len() as u64;
                if self.received > self.facts.size {
                    bail!(
                        "the node sent more of material {kind} than its declared {} bytes",
                        self.facts.size
                    );
                }
                self.hasher.update(&chunk.data);
                Ok(Some(chunk.data))
            }
            Some(_) => bail!("the node sent a frame out of place in material {kind}"),
            None => {
                self.done = true;
                if self.received != self.facts.size {
                    bail!(
                        "the node sent {} bytes of material {kind}, not its declared {}",
                        self.received,
                        self.facts.size
                    );
                }
                let got = hex::encode(self.hasher.finalize_reset());
                if got != self.facts.sha256 {
                    bail!(
                        "material {kind} as received has SHA-256 {got}, not the declared {}",
                        self.facts.sha256
                    );
                }
                Ok(None)
            }
        }
    }

    /// Receives the whole material into `out`, which must not exist unless
    /// `force`: written beside it under a temporary name and renamed only
    /// once checked, so a failed read leaves nothing at `out`.
    pub(crate) async fn save(mut self, out: &Path, force: bool) -> Result<Facts> {
        refuse_existing(out, force)?;
        let dir = match out.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let mut file = tempfile::NamedTempFile::new_in(dir)
            .with_context(|| format!("cannot create a file in {}", dir.display()))?;
        while let Some(piece) = self.next().await? {
            file.write_all(&piece)
                .with_context(|| format!("cannot write beside {}", out.display()))?;
        }
        file.as_file()
            .sync_all()
            .with_context(|| format!("cannot write beside {}", out.display()))?;
        let placed = if force {
            file.persist(out).map(|_| ())
        } else {
            file.persist_noclobber(out).map(|_| ())
        };
        placed.map_err(|e| anyhow!("cannot write {}: {}", out.display(), e.error))?;
        Ok(self.facts)
    }
}

/// `tongban window|review material`: refuses an existing `out` unless
/// `force` before the node is asked, then reads the material through `call`
/// (the window's or the review's Material RPC), saves it checked, and
/// reports what was saved.
pub(crate) async fn download<F, Fut>(
    case_no: String,
    kind: String,
    out: &Path,
    force: bool,
    json: bool,
    call: F,
) -> Result<()>
where
    F: FnOnce(tongban_proto::common::v1::MaterialRequest) -> Fut,
    Fut: std::future::Future<
            Output = Result<tonic::Response<Streaming<MaterialFrame>>, tonic::Status>,
        >,
{
    refuse_existing(out, force)?;
    let request = tongban_proto::common::v1::MaterialRequest { case_no, kind };
    let reading = open(call(request).await).await?;
    let facts = reading.save(out, force).await?;
    report(&facts, out, json)
}

/// Refuses an existing `out` unless `force`, before anything is asked of
/// the node.
pub(crate) fn refuse_existing(out: &Path, force: bool) -> Result<()> {
    if !force && out.exists() {
        bail!(
            "{} already exists; pass --force to overwrite it",
            out.display()
        );
    }
    Ok(())
}

/// Prints what was saved: for a person, or one JSON document.
pub(crate) fn report(facts: &Facts, out: &Path, json: bool) -> Result<()> {
    if json {
        return crate::output::print_json(&serde_json::json!({
            "out": out.display().to_string(),
            "kind": facts.kind,
            "filename": facts.filename,
            "size": facts.size,
            "sha256": facts.sha256,
            "content_type": facts.content_type,
        }));
    }
    println!(
        "{}: material {} ({}), {} bytes, SHA-256 {} (checked)",
        out.display(),
        crate::sanitize::text(&facts.kind),
        crate::sanitize::text(&facts.filename),
        facts.size,
        facts.sha256
    );
    Ok(())
}
