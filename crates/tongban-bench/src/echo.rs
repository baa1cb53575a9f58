//! The baseline: bare tonic over the same mutual TLS as a node (a per-run
//! CA, `TlsMaterial::server_acceptor`, `tls::incoming`, `client_config`),
//! serving the generated `Window` trait with no tongban logic at all.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tongban_pki::Principal;
use tongban_pki::issue::Ca;
use tongban_pki::tls::TlsMaterial;
use tongban_proto::common::v1::{CaseView, MaterialChunk};
use tongban_proto::window::v1::window_client::WindowClient;
use tongban_proto::window::v1::window_server::{Window, WindowServer};
use tongban_proto::window::v1::{
    ApplyFrame, AttachFrame, CaseRef, CommitRequest, ConsultRequest, HandoutRequest, IntakeReceipt,
    ListCasesReply, ListCasesRequest, OverdueRequest, VerifyIdentityRequest, apply_frame,
};
use tonic::codegen::Bytes;
use tonic::transport::{Channel, Endpoint, Server};
use tonic::{Request, Response, Status, Streaming};

use crate::stats::{latencies, mb_per_s, rate};
use crate::{Options, Report};

/// The echo payload: the size of one benchmark case (1 KiB data + 16 KiB material).
pub(crate) const ECHO_PAYLOAD: usize = 17 * 1024;
const SECTION: &str = "1. baseline";
/// Figure names the other sections compare with.
pub(crate) const ECHO_C64: &str = "echo 17 KiB c=64 rate";
pub(crate) const ECHO_C1_P50: &str = "echo 17 KiB c=1 p50";
pub(crate) const UPLOAD: &str = "bare upload, 64 KiB chunks";
pub(crate) const ECHO_CPU: &str = "echo 17 KiB c=64 CPU per request (client + server)";

/// A trivial `Window`: `get_case` answers a fixed 17 KiB view, `apply`
/// counts streamed bytes (and hashes them, if `hash`).
struct Echo {
    view: CaseView,
    hash: bool,
}

type R<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl Window for Echo {
    async fn apply(&self, request: Request<Streaming<ApplyFrame>>) -> R<CaseView> {
        let mut stream = request.into_inner();
        let mut bytes = 0u64;
        // Hashing on a thread of its own, fed without a copy, pipelined
        // with the network (as the node's blob writer does): hashing on
        // the receiving task would keep the receiver to one core.
        let hasher = self.hash.then(|| {
            let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(32);
            let thread = tokio::task::spawn_blocking(move || {
                let mut sha = Sha256::new();
                while let Some(chunk) = rx.blocking_recv() {
                    sha.update(&chunk);
                }
                sha.finalize()
            });
            (tx, thread)
        });
        while let Some(frame) = stream.message().await? {
            if let Some(apply_frame::Frame::Chunk(c)) = frame.frame {
                bytes += c.data.len() as u64;
                if let Some((tx, _)) = &hasher {
                    tx.send(c.data)
                        .await
                        .map_err(|_| Status::internal("the hashing thread stopped"))?;
                }
            }
        }
        let note = match hasher {
            Some((tx, thread)) => {
                drop(tx);
                let digest = thread
                    .await
                    .map_err(|e| Status::internal(format!("the hashing thread failed: {e}")))?;
                format!("{bytes} {}", tongban_ledger::records::hex(&digest))
            }
            None => bytes.to_string(),
        };
        Ok(Response::new(CaseView {
            note,
            ..Default::default()
        }))
    }
    async fn attach(&self, _: Request<Streaming<AttachFrame>>) -> R<CaseView> {
        Err(Status::unimplemented("echo"))
    }
    type MaterialStream = tonic::codegen::tokio_stream::Empty<
        Result<tongban_proto::common::v1::MaterialFrame, Status>,
    >;
    async fn material(
        &self,
        _: Request<tongban_proto::common::v1::MaterialRequest>,
    ) -> R<Self::MaterialStream> {
        Err(Status::unimplemented("echo"))
    }
    async fn verify_identity(&self, _: Request<VerifyIdentityRequest>) -> R<CaseView> {
        Err(Status::unimplemented("echo"))
    }
    async fn accept(&self, _: Request<CaseRef>) -> R<IntakeReceipt> {
        Err(Status::unimplemented("echo"))
    }
    async fn resubmit(&self, _: Request<CaseRef>) -> R<CaseView> {
        Err(Status::unimplemented("echo"))
    }
    async fn commit(&self, _: Request<CommitRequest>) -> R<CaseView> {
        Err(Status::unimplemented("echo"))
    }
    async fn supply(&self, _: Request<Streaming<AttachFrame>>) -> R<CaseView> {
        Err(Status::unimplemented("echo"))
    }
    async fn consult(&self, _: Request<ConsultRequest>) -> R<CaseView> {
        Err(Status::unimplemented("echo"))
    }
    async fn handout(&self, _: Request<HandoutRequest>) -> R<CaseView> {
        Err(Status::unimplemented("echo"))
    }
    async fn get_case(&self, _: Request<CaseRef>) -> R<CaseView> {
        Ok(Response::new(self.view.clone()))
    }
    async fn list_cases(&self, _: Request<ListCasesRequest>) -> R<ListCasesReply> {
        Err(Status::unimplemented("echo"))
    }
    async fn overdue(&self, _: Request<OverdueRequest>) -> R<ListCasesReply> {
        Err(Status::unimplemented("echo"))
    }
    async fn retry(&self, _: Request<CaseRef>) -> R<CaseView> {
        Err(Status::unimplemented("echo"))
    }
}

/// A running echo server and a client channel to it.
struct EchoServer {
    channel: Channel,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

async fn start(hash: bool) -> anyhow::Result<EchoServer> {
    let ca = Ca::generate("bench.tongban", 2)?;
    let hosts = vec!["127.0.0.1".to_owned()];
    let material = |p: Principal| -> anyhow::Result<TlsMaterial> {
        let pair = ca.issue(p, &hosts, 1)?;
        Ok(TlsMaterial {
            ca_pem: ca.cert_pem().to_owned(),
            cert_pem: pair.cert_pem,
            key_pem: pair.key_pem,
        })
    };
    let county: tongban_core::CountyCode = "610702".parse()?;
    let server_tls = material(Principal::Node {
        county: county.clone(),
    })?;
    let client_tls = material(Principal::Clerk {
        county,
        name: "wang".into(),
    })?;
    let acceptor = server_tls.server_acceptor()?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let view = CaseView {
        case_no: "610702-20260101-1".into(),
        note: "x".repeat(ECHO_PAYLOAD),
        ..Default::default()
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let incoming = tongban_pki::tls::incoming(listener, acceptor);
    let task = tokio::spawn(async move {
        let _ = Server::builder()
            .add_service(WindowServer::new(Echo { view, hash }))
            .serve_with_incoming_shutdown(incoming, async {
                let _ = stopped.await;
            })
            .await;
    });
    let channel = Endpoint::from_shared(format!("https://{addr}"))?
        .tls_config(client_tls.client_config("127.0.0.1"))?
        .connect()
        .await?;
    Ok(EchoServer {
        channel,
        stop,
        task,
    })
}

/// Unary echo at `concurrency` over one channel: (req/s, p50 µs, p99 µs).
async fn unary(
    channel: &Channel,
    concurrency: usize,
    requests: usize,
    limit: Duration,
) -> anyhow::Result<(f64, crate::stats::Latencies)> {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + limit;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let mut client = WindowClient::new(channel.clone());
        let next = next.clone();
        tasks.spawn(async move {
            let mut samples = Vec::new();
            while next.fetch_add(1, Ordering::Relaxed) < requests && Instant::now() < deadline {
                let t = Instant::now();
                let view = client
                    .get_case(CaseRef {
                        case_no: "610702-20260101-1".into(),
                        request_id: String::new(),
                    })
                    .await?
                    .into_inner();
                samples.push(t.elapsed());
                anyhow::ensure!(view.note.len() == ECHO_PAYLOAD, "short echo");
            }
            Ok::<_, anyhow::Error>(samples)
        });
    }
    let mut samples = Vec::with_capacity(requests);
    while let Some(joined) = tasks.join_next().await {
        samples.extend(joined??);
    }
    let elapsed = started.elapsed();
    let n = samples.len();
    Ok((rate(n as f64, elapsed), latencies(&mut samples)))
}

/// Client-streaming upload of `bytes` in 64 KiB chunks: MB/s. `hashed`:
/// the server hashes them (started with `hash`). `sender_hashes`: the
/// client hashes them too, as a node's courier checks a stored material
/// while it reads it: a megabyte at a time on a blocking thread that cuts
/// it into chunks (`courier::stream::produce`).
async fn upload(
    channel: &Channel,
    bytes: usize,
    hashed: bool,
    sender_hashes: bool,
) -> anyhow::Result<f64> {
    let data = Bytes::from(crate::flows::pseudo_random(bytes, 7));
    let digest = Sha256::digest(&data);
    let expected = if hashed {
        format!("{bytes} {}", tongban_ledger::records::hex(&digest))
    } else {
        bytes.to_string()
    };
    // The 64 KiB chunk at `at`, sharing `data`'s buffer.
    fn chunk(data: &Bytes, at: usize) -> ApplyFrame {
        ApplyFrame {
            frame: Some(apply_frame::Frame::Chunk(MaterialChunk {
                material: 0,
                data: data.slice(at..(at + 64 * 1024).min(data.len())),
            })),
        }
    }
    let mut client = WindowClient::new(channel.clone());
    let started = Instant::now();
    let reply = if sender_hashes {
        let (tx, rx) = tokio::sync::mpsc::channel::<ApplyFrame>(16);
        let data = data.clone();
        let producer = tokio::task::spawn_blocking(move || {
            let mut sha = Sha256::new();
            for mib in (0..bytes).step_by(1 << 20) {
                let end = (mib + (1 << 20)).min(bytes);
                sha.update(&data[mib..end]);
                for at in (mib..end).step_by(64 * 1024) {
                    if tx.blocking_send(chunk(&data, at)).is_err() {
                        return None;
                    }
                }
            }
            Some(sha.finalize())
        });
        let reply = client
            .apply(tonic::codegen::tokio_stream::wrappers::ReceiverStream::new(
                rx,
            ))
            .await?
            .into_inner();
        anyhow::ensure!(
            producer.await? == Some(digest),
            "the sender's digest differs"
        );
        reply
    } else {
        let frames: Vec<ApplyFrame> = (0..bytes)
            .step_by(64 * 1024)
            .map(|at| chunk(&data, at))
            .collect();
        client
            .apply(tonic::codegen::tokio_stream::iter(frames))
            .await?
            .into_inner()
    };
    let elapsed = started.elapsed();
    anyhow::ensure!(
        reply.note == expected,
        "the echo counted {}, sent {expected}",
        reply.note
    );
    Ok(mb_per_s(bytes, elapsed))
}

/// A bare upload of `bytes` to an echo whose `apply` hashes every chunk
/// (SHA-256) as it arrives, on a thread of its own: what a receiver that
/// checks a material's digest does at least, on a server of its own
/// started for it (MB/s). With `sender_hashes`, the sender hashes what it
/// sends as well (what a handoff between two nodes on one machine does).
/// The streaming floor takes it right before and right after the handoff.
pub(crate) async fn hashed_upload(bytes: usize, sender_hashes: bool) -> anyhow::Result<f64> {
    let server = start(true).await?;
    let rate = upload(&server.channel, bytes, true, sender_hashes).await;
    server.stop().await;
    rate
}

impl EchoServer {
    async fn stop(self) {
        let _ = self.stop.send(());
        drop(self.channel);
        let _ = tokio::time::timeout(Duration::from_secs(5), self.task).await;
    }
}

pub(crate) async fn run(opts: &Options, report: &mut Report) -> anyhow::Result<()> {
    let server = start(false).await?;
    let limit = Duration::from_secs(20).min(opts.max_phase);
    // Warm the connection and the allocator.
    unary(&server.channel, 4, 200.min(opts.echo_requests), limit).await?;
    for c in [1usize, 16, 64] {
        let cpu_before = crate::cpu::process_cpu_s();
        let (rps, lat) = unary(&server.channel, c, opts.echo_requests, limit).await?;
        let cpu = crate::cpu::process_cpu_s() - cpu_before;
        report.add(SECTION, &format!("echo 17 KiB c={c} rate"), rps, "req/s");
        report.show_last();
        report.add(SECTION, &format!("echo 17 KiB c={c} p50"), lat.p50_us, "µs");
        report.show_last();
        report.add(SECTION, &format!("echo 17 KiB c={c} p99"), lat.p99_us, "µs");
        report.show_last();
        if c == 64 {
            // What one request costs both ends in CPU: the share of a
            // handoff's floor that is TLS, HTTP/2 and protobuf.
            report.add(SECTION, ECHO_CPU, cpu * 1e6 / lat.count.max(1) as f64, "µs");
            report.show_last();
        }
        if lat.count < opts.echo_requests {
            report.note(format!(
                "echo c={c}: stopped by the time bound after {} of {} requests",
                lat.count, opts.echo_requests
            ));
        }
    }
    let mbps = upload(&server.channel, opts.upload_bytes, false, false).await?;
    report.add(SECTION, UPLOAD, mbps, "MB/s");
    report.show_last();
    report.note(format!(
        "bare upload: {} MiB streamed to a trivial `apply` that only counts bytes",
        opts.upload_bytes >> 20
    ));
    server.stop().await;
    Ok(())
}
