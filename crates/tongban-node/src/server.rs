//! Starting and stopping a node: open the store, build the services behind
//! their identity gates, serve mutual TLS on the given listener until the
//! shutdown future resolves.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::net::TcpListener;
use tongban_ledger::Store;
use tongban_proto::audit::v1::audit_server::AuditServer;
use tongban_proto::federation::v1::federation_server::FederationServer;
use tongban_proto::mail::v1::mail_server::MailServer;
use tongban_proto::review::v1::review_server::ReviewServer;
use tongban_proto::window::v1::window_server::WindowServer;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Server;

use crate::auth::{Access, Gate};
use crate::courier::Courier;
use crate::ctx::Ctx;
use crate::service::{AuditService, FederationService, MailService, ReviewService, WindowService};
use crate::{NodeConfig, NodeError};

/// How long in-flight calls may take to finish after a shutdown signal.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// How often a node whose storage refuses writes tries a small write again.
const STORAGE_PROBE_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// Every service the node serves, by its gRPC name, and the whole server
/// (`""`): all of them need the store to write.
const SERVICES: [&str; 6] = [
    "",
    <FederationServer<FederationService> as tonic::server::NamedService>::NAME,
    <WindowServer<WindowService> as tonic::server::NamedService>::NAME,
    <ReviewServer<ReviewService> as tonic::server::NamedService>::NAME,
    <AuditServer<AuditService> as tonic::server::NamedService>::NAME,
    <MailServer<MailService> as tonic::server::NamedService>::NAME,
];

async fn set_health(
    reporter: &tonic_health::server::HealthReporter,
    status: tonic_health::ServingStatus,
) {
    for name in SERVICES {
        reporter.set_service_status(name, status).await;
    }
}

/// Health follows the store: `NOT_SERVING` from a write that did not reach
/// the disk until one does. Meanwhile a small write is tried every
/// [`STORAGE_PROBE_EVERY`], so the node takes writes again by itself once
/// the disk has room (see docs/operations.md, "Disk full and I/O errors").
async fn watch_storage(
    store: Arc<Store>,
    reporter: tonic_health::server::HealthReporter,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut writable = store.writable();
    loop {
        let ok = *writable.borrow_and_update();
        let status = if ok {
            tonic_health::ServingStatus::Serving
        } else {
            tonic_health::ServingStatus::NotServing
        };
        set_health(&reporter, status).await;
        let stopped = if ok {
            tokio::select! {
                _ = stop.wait_for(|s| *s) => true,
                changed = writable.changed() => changed.is_err(),
            }
        } else {
            let stopped = tokio::select! {
                _ = stop.wait_for(|s| *s) => true,
                () = tokio::time::sleep(STORAGE_PROBE_EVERY) => false,
            };
            if !stopped && let Err(e) = store.probe().await {
                tracing::debug!(error = %e, "storage still refuses writes");
            }
            stopped
        };
        if stopped {
            return;
        }
    }
}

/// The listening sockets of a node, bound by the caller (tests bind
/// `127.0.0.1:0` and pass them in).
#[derive(Debug)]
pub struct Listeners {
    /// The gRPC port (mutual TLS).
    pub grpc: TcpListener,
    /// The carrier push port (`[mail] push_listen`), if served.
    pub carrier: Option<TcpListener>,
    /// The admin port (`[admin] listen`: metrics and health), if served.
    pub admin: Option<TcpListener>,
}

/// Runs a node on `listener` until `shutdown` resolves, then stops accepting,
/// lets in-flight calls finish and returns. The carrier push port and the
/// admin port, if the config sets `[mail] push_listen` or `[admin] listen`,
/// are bound here.
pub async fn run(
    config: NodeConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), NodeError> {
    let carrier = match config.carrier_listen {
        Some(addr) => Some(TcpListener::bind(addr).await.map_err(|e| {
            NodeError::Server(format!("cannot listen for carrier pushes on {addr}: {e}"))
        })?),
        None => None,
    };
    let admin = match config.admin_listen {
        Some(addr) => Some(TcpListener::bind(addr).await.map_err(|e| {
            NodeError::Server(format!("cannot listen for the admin port on {addr}: {e}"))
        })?),
        None => None,
    };
    let listeners = Listeners {
        grpc: listener,
        carrier,
        admin,
    };
    run_with(config, listeners, shutdown).await
}

/// Like [`run`], with the carrier push listener bound by the caller and no
/// admin port.
pub async fn run_with_carrier(
    config: NodeConfig,
    listener: TcpListener,
    carrier_listener: Option<TcpListener>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), NodeError> {
    let listeners = Listeners {
        grpc: listener,
        carrier: carrier_listener,
        admin: None,
    };
    run_with(config, listeners, shutdown).await
}

/// Like [`run`], with every listener bound by the caller.
pub async fn run_with(
    config: NodeConfig,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), NodeError> {
    let Listeners {
        grpc: listener,
        carrier: carrier_listener,
        admin: admin_listener,
    } = listeners;
    // Before the store opens: a second node on this data dir is told who
    // has it, not sled's lock error.
    let pid_lock = crate::pidlock::data_dir(&config.data_dir)?;
    let store = Arc::new(Store::open(&config.data_dir)?);
    let acceptor = config.tls.server_acceptor()?;
    let addr = listener
        .local_addr()
        .map_err(|e| NodeError::Server(e.to_string()))?;
    let gate = |access| Gate::new(access, config.county.clone(), config.directory.clone());

    let (health_reporter, health) = tonic_health::server::health_reporter();
    set_health(&health_reporter, tonic_health::ServingStatus::Serving).await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(tongban_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| NodeError::Server(format!("reflection: {e}")))?;

    let ctx = Arc::new(Ctx::new(&config, store.clone()));
    // Before anyone is served: dates counted with another holiday calendar
    // are counted again with this directory's (see `recount`).
    crate::recount::at_start(&ctx).await?;
    let federation = FederationService::new(ctx.clone());
    let window = WindowService::new(ctx.clone());
    let review = ReviewService::new(ctx.clone());
    let audit = AuditService::new(ctx.clone());
    let mail = MailService::new(ctx.clone());

    // The courier stops when the server does; it holds nothing that is not
    // on disk, so stopping it mid-batch loses nothing.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stop_rx_grace = stop_rx.clone();
    let courier = tokio::spawn(Courier::new(ctx.clone()).run(stop_rx.clone()));
    // Periodic checkpoints: evidence of the ledger head even when no
    // handoff carries one.
    {
        let (ctx, mut stop) = (ctx.clone(), stop_rx.clone());
        let every = std::time::Duration::from_secs(config.audit.checkpoint_interval_secs);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            loop {
                let stopped = tokio::select! {
                    _ = stop.wait_for(|s| *s) => true,
                    _ = ticks.tick() => false,
                };
                if stopped {
                    return;
                }
                if let Err(e) = ctx.checkpoint(true) {
                    tracing::error!(error = %e, "cannot sign a checkpoint");
                }
            }
        });
    }
    tokio::spawn(watch_storage(
        store.clone(),
        health_reporter,
        stop_rx.clone(),
    ));
    if let Some(carrier_listener) = carrier_listener {
        let carrier_addr = carrier_listener
            .local_addr()
            .map_err(|e| NodeError::Server(e.to_string()))?;
        let acceptor = config.tls.carrier_acceptor()?;
        tracing::info!(addr = %carrier_addr, carriers = config.carriers.len(), "carrier push serving");
        tokio::spawn(crate::carrier::serve(
            ctx.clone(),
            Arc::new(config.carriers.clone()),
            carrier_listener,
            acceptor,
            stop_rx.clone(),
        ));
    }
    let serving = Arc::new(AtomicBool::new(false));
    let admin = match admin_listener {
        Some(admin_listener) => {
            let admin_addr = admin_listener
                .local_addr()
                .map_err(|e| NodeError::Server(e.to_string()))?;
            tracing::info!(addr = %admin_addr, "admin port serving");
            Some(tokio::spawn(crate::admin::serve(
                ctx.clone(),
                config.data_dir.clone(),
                serving.clone(),
                admin_listener,
                stop_rx.clone(),
            )))
        }
        None => None,
    };
    let shutdown = {
        let serving = serving.clone();
        async move {
            shutdown.await;
            serving.store(false, Ordering::SeqCst);
            let _ = stop_tx.send(true);
        }
    };

    tracing::info!(county = %config.county, %addr, data_dir = %config.data_dir.display(), "node serving");
    // The listener is bound, so calls queue from here on until the server
    // below takes them.
    serving.store(true, Ordering::SeqCst);
    let server = Server::builder()
        .layer(crate::error::DecodeErrors)
        .add_service(InterceptedService::new(health, gate(Access::Member)))
        .add_service(InterceptedService::new(reflection, gate(Access::Member)))
        .add_service(FederationServer::with_interceptor(
            federation,
            gate(Access::Federation),
        ))
        .add_service(WindowServer::with_interceptor(window, gate(Access::Window)))
        .add_service(ReviewServer::with_interceptor(review, gate(Access::Review)))
        .add_service(MailServer::with_interceptor(mail, gate(Access::Mail)))
        .add_service(AuditServer::with_interceptor(audit, gate(Access::Audit)))
        .serve_with_incoming_shutdown(tongban_pki::tls::incoming(listener, acceptor), shutdown);
    // Graceful shutdown waits for open connections; a client that keeps one
    // open must not keep the node from stopping.
    let mut grace = stop_rx_grace;
    let forced = async move {
        let _ = grace.wait_for(|stop| *stop).await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        result = server => result.map_err(|e| NodeError::Server(e.to_string()))?,
        () = forced => tracing::warn!(grace = ?SHUTDOWN_GRACE, "connections still open after the grace period; stopping anyway"),
    }
    // The courier finishes its current batch; a partner that hangs must not
    // keep the node from stopping (the outbox is on disk either way).
    let abort = courier.abort_handle();
    if tokio::time::timeout(SHUTDOWN_GRACE, courier).await.is_err() {
        abort.abort();
    }
    // The admin port stops on the same signal; it holds the store too.
    if let Some(admin) = admin {
        let abort = admin.abort_handle();
        if tokio::time::timeout(SHUTDOWN_GRACE, admin).await.is_err() {
            abort.abort();
        }
    }
    // Tasks that still hold the store (a delivery's file reader, a
    // connection finishing) end within moments. Wait for them, so that the
    // database is closed when `run` returns and can be opened again at once.
    drop(ctx);
    let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
    while Arc::strong_count(&store) > 1 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    drop(store);
    drop(pid_lock);
    tracing::info!(county = %config.county, "node stopped");
    Ok(())
}
