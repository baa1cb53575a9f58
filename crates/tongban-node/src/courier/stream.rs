//! One handoff stream on the wire: the frames produced from the outbox
//! and the stored materials, checked as they go, and aborted (never ended
//! cleanly) when something cannot be sent.

use prost::Message;
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tongban_ledger::MaterialRef;
use tongban_proto::common::v1::MaterialChunk;
use tongban_proto::federation::v1::federation_server;
use tongban_proto::federation::v1::{HandoffFrame, HandoffReply, handoff_frame::Frame};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::codegen::{Context, Pin, Poll};

use super::link::Conn;
use crate::protocol::CHUNK_SIZE;

/// The frames of a stream on their way out, checked: the stream ends
/// cleanly only once the producer ([`produce`]) has sent every frame, and
/// the producer sends a handoff's next envelope only after each of its
/// materials proved to have the size and SHA-256 its envelope declares
/// (a file is hashed as it is read; the material log checks a digest on
/// reading). If the producer stopped (a mismatch, a failed read, a
/// panic), the failure is reported and the stream aborted
/// ([`Outgoing::Abort`]), so the receiver keeps nothing of it. Also tells
/// when the first frame is taken (the stream has started).
pub(super) struct Checked {
    inner: ReceiverStream<HandoffFrame>,
    /// How many handoffs the stream carries.
    items: usize,
    /// The handoff whose frames are going out.
    item: Option<usize>,
    first: Option<oneshot::Sender<()>>,
    done: oneshot::Receiver<()>,
    fail: mpsc::Sender<(usize, String)>,
    aborted: bool,
}

impl Checked {
    pub(super) fn new(
        inner: ReceiverStream<HandoffFrame>,
        items: usize,
        first: oneshot::Sender<()>,
        done: oneshot::Receiver<()>,
        fail: mpsc::Sender<(usize, String)>,
    ) -> Self {
        Self {
            inner,
            items,
            item: None,
            first: Some(first),
            done,
            fail,
            aborted: false,
        }
    }

    /// Reports `failure` and aborts the stream.
    fn abort(&mut self, failure: (usize, String)) -> Poll<Option<Outgoing>> {
        self.aborted = true;
        let _ = self.fail.try_send(failure);
        Poll::Ready(Some(Outgoing::Abort))
    }
}

impl tokio_stream::Stream for Checked {
    type Item = Outgoing;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Outgoing>> {
        let this = self.get_mut();
        if this.aborted {
            // Never a clean end after an abort (the transport stops
            // polling at the abort anyway).
            return Poll::Pending;
        }
        let Poll::Ready(next) = Pin::new(&mut this.inner).poll_next(cx) else {
            return Poll::Pending;
        };
        let Some(frame) = next else {
            if this.done.try_recv().is_err() {
                // The producer stopped without finishing; it reported why
                // (or panicked): the receiver must not see a clean end.
                let index = this.item.unwrap_or(0);
                return this.abort((index, "the stream was not produced to its end".into()));
            }
            return Poll::Ready(None);
        };
        if let Some(Frame::Envelope(_)) = &frame.frame {
            let index = this.item.map_or(0, |i| i + 1);
            this.item = Some(index.min(this.items.saturating_sub(1)));
        }
        if let Some(first) = this.first.take() {
            let _ = first.send(());
        }
        Poll::Ready(Some(Outgoing::Frame(frame)))
    }
}

/// Calls `Handoff` on `conn` with `frames` (the generated client's call,
/// with [`HandoffCodec`]).
pub(super) async fn handoff(
    conn: Conn,
    frames: Checked,
) -> Result<tonic::Response<HandoffReply>, tonic::Status> {
    let origin = conn.origin.clone();
    let mut grpc = tonic::client::Grpc::with_origin(conn, origin);
    grpc.ready()
        .await
        .map_err(|e| tonic::Status::unavailable(format!("connection not ready: {e}")))?;
    let mut request = tonic::Request::new(frames);
    request.extensions_mut().insert(tonic::GrpcMethod::new(
        federation_server::SERVICE_NAME,
        "Handoff",
    ));
    grpc.client_streaming(
        request,
        PathAndQuery::from_static(HANDOFF_PATH),
        HandoffCodec,
    )
    .await
}

/// What goes into a handoff stream: a frame, or the order to abort it.
///
/// Dropping a call is not enough to abort: the transport then sends
/// RST_STREAM(CANCEL), which hyper and tonic servers read as a clean end of
/// the client's stream, so the receiver would commit and receipt the
/// envelopes it had so far. An error from the request body instead makes
/// the transport send RST_STREAM(INTERNAL_ERROR), which every receiver
/// sees as a broken stream and stores nothing of (protocol §7.4).
pub(super) enum Outgoing {
    Frame(HandoffFrame),
    Abort,
}

/// The `Handoff` call with [`Outgoing`] items: frames encoded as protobuf,
/// `Abort` failing the encoder (hence the request body).
pub(super) struct HandoffCodec;

/// The method's path, as the generated client has it.
pub(super) const HANDOFF_PATH: &str = "/tongban.federation.v1.Federation/Handoff";

pub(super) struct HandoffEncoder;

pub(super) struct ReplyDecoder;

impl Codec for HandoffCodec {
    type Encode = Outgoing;
    type Decode = HandoffReply;
    type Encoder = HandoffEncoder;
    type Decoder = ReplyDecoder;

    fn encoder(&mut self) -> HandoffEncoder {
        HandoffEncoder
    }

    fn decoder(&mut self) -> ReplyDecoder {
        ReplyDecoder
    }
}

impl Encoder for HandoffEncoder {
    type Item = Outgoing;
    type Error = tonic::Status;

    fn encode(&mut self, item: Outgoing, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        match item {
            // The buffer grows as needed: encoding cannot run out of room.
            Outgoing::Frame(frame) => frame
                .encode(dst)
                .map_err(|e| tonic::Status::internal(format!("encoding a frame: {e}"))),
            Outgoing::Abort => Err(tonic::Status::aborted(
                "the sender aborted the handoff stream",
            )),
        }
    }
}

impl Decoder for ReplyDecoder {
    type Item = HandoffReply;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<HandoffReply>, tonic::Status> {
        HandoffReply::decode(src)
            .map(Some)
            .map_err(|e| tonic::Status::internal(format!("decoding the reply: {e}")))
    }
}

/// Feeds one handoff: its envelope, then its materials' chunks, read from
/// the blob store.
pub(super) async fn produce(
    store: &tongban_ledger::Store,
    envelope: &[u8],
    blobs: &[MaterialRef],
    tx: &mpsc::Sender<HandoffFrame>,
) -> Result<(), String> {
    if tx
        .send(HandoffFrame {
            frame: Some(Frame::Envelope(envelope.to_vec())),
        })
        .await
        .is_err()
    {
        return Ok(()); // the call ended; its outcome is reported there
    }
    for (index, material) in blobs.iter().enumerate() {
        let sha = &material.sha256;
        let mut reader = store.open_material(material).map_err(|e| e.to_string())?;
        // Small materials come from the material log, already in memory.
        if reader.in_memory() {
            while let Some(piece) = reader.read_chunk(CHUNK_SIZE).map_err(|e| e.to_string())? {
                let chunk = MaterialChunk {
                    material: index as u32,
                    data: piece,
                };
                if tx
                    .send(HandoffFrame {
                        frame: Some(Frame::Chunk(chunk)),
                    })
                    .await
                    .is_err()
                {
                    return Ok(());
                }
            }
            continue;
        }
        // Large materials are files: read them on a blocking thread a
        // megabyte at a time, hash them and cut them into chunks there,
        // so that the runtime thread sending the stream only encrypts
        // (hashing there too kept a large handoff to one core) and
        // never waits on the disk. Each megabyte is read into a buffer
        // of its own that the chunks share (no copy).
        let tx = tx.clone();
        let (kind, size, want) = (material.kind.clone(), material.size, sha.clone());
        let sent = tokio::task::spawn_blocking(move || -> Result<bool, String> {
            const READ: usize = 1 << 20;
            let (mut sum, mut read) = (Sha256::new(), 0u64);
            while let Some(buf) = reader.read_chunk(READ).map_err(|e| e.to_string())? {
                let filled = buf.len();
                sum.update(&buf);
                read += filled as u64;
                for start in (0..filled).step_by(CHUNK_SIZE) {
                    let chunk = MaterialChunk {
                        material: index as u32,
                        data: buf.slice(start..filled.min(start + CHUNK_SIZE)),
                    };
                    if tx
                        .blocking_send(HandoffFrame {
                            frame: Some(Frame::Chunk(chunk)),
                        })
                        .is_err()
                    {
                        return Ok(false);
                    }
                }
            }
            // Before the next envelope may go out (see `Checked`).
            let got = tongban_ledger::records::hex(&sum.finalize());
            if read != size || got != want {
                return Err(format!(
                    "material {kind} no longer matches its digest: {read} bytes with SHA-256 {got}, stored as {size} bytes with {want}"
                ));
            }
            Ok(true)
        })
        .await
        .map_err(|e| format!("reading {sha}: {e}"))??;
        if !sent {
            return Ok(()); // the call ended; its outcome is reported there
        }
    }
    Ok(())
}
