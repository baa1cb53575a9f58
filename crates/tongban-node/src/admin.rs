//! The admin port (`[admin] listen`): plain HTTP on loopback for the
//! machine's own monitoring. `GET /metrics` (Prometheus, OpenMetrics text),
//! `GET /healthz` (the process is up) and `GET /readyz` (the node serves and
//! its data dir takes writes). It serves nothing about cases and takes no
//! requests that change anything, which is why it may go without TLS.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::ctx::Ctx;
use crate::metrics::CONTENT_TYPE;

/// The file `/readyz` writes, syncs and removes to see that the data dir
/// takes writes (a full disk or a read-only remount fails it).
const PROBE_FILE: &str = ".readyz-probe";

#[derive(Clone)]
struct Admin {
    ctx: Arc<Ctx>,
    data_dir: PathBuf,
    /// True while the gRPC server serves: set before it starts, cleared at
    /// the shutdown signal.
    serving: Arc<AtomicBool>,
}

/// Serves the admin port on `listener` until `stop` turns true.
pub(crate) async fn serve(
    ctx: Arc<Ctx>,
    data_dir: PathBuf,
    serving: Arc<AtomicBool>,
    listener: TcpListener,
    mut stop: watch::Receiver<bool>,
) {
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(Admin {
            ctx,
            data_dir,
            serving,
        });
    let stopped = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(stopped)
        .await
    {
        tracing::error!(error = %e, "admin port failed");
    }
}

async fn metrics(State(admin): State<Admin>) -> Response {
    let ctx = admin.ctx.clone();
    match tokio::task::spawn_blocking(move || ctx.metrics.render(&ctx)).await {
        Ok(Ok(text)) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "cannot compute metrics");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "cannot compute metrics\n",
            )
                .into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "metrics task failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "cannot compute metrics\n",
            )
                .into_response()
        }
    }
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(admin): State<Admin>) -> (StatusCode, String) {
    if !admin.serving.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "not serving\n".into());
    }
    if !*admin.ctx.store.writable().borrow() {
        // Refused since a write failed; the store's probe ends it.
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "the node's storage refuses writes since a write failed (see the log)\n".into(),
        );
    }
    let ctx = admin.ctx.clone();
    let probe = admin.data_dir.join(PROBE_FILE);
    let checked = tokio::task::spawn_blocking(move || -> Result<(), String> {
        ctx.store
            .head()
            .map_err(|e| format!("cannot read the ledger: {e}"))?;
        let write = || -> std::io::Result<()> {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            // The data dir's file mode (the store sets and checks 0600).
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&probe)?;
            f.write_all(b"ready?\n")?;
            f.sync_all()?;
            std::fs::remove_file(&probe)
        };
        write().map_err(|e| format!("cannot write to {}: {e}", probe.display()))
    })
    .await
    .unwrap_or_else(|e| Err(format!("readiness check failed: {e}")));
    match checked {
        Ok(()) => (StatusCode::OK, "ready\n".into()),
        Err(reason) => {
            tracing::warn!(%reason, "not ready");
            (StatusCode::SERVICE_UNAVAILABLE, format!("{reason}\n"))
        }
    }
}
