//! `tongban node --config FILE`: load and validate the configuration (exit
//! 64 if it is bad), take the listeners (passed by the parent, or bound
//! here: `sockets`), serve until SIGINT or SIGTERM.
//! With `--check`, only print every problem of the configuration; with
//! `--reissue-receipt`, re-issue one receipt instead (node stopped).

use std::path::Path;

use anyhow::{Context, Result};
use tongban_node::NodeConfig;

use super::BadConfig;
use super::sockets::Inherited;

pub(crate) async fn run(config: &Path, inherited: Inherited) -> Result<()> {
    let config = NodeConfig::load(config).map_err(|e| BadConfig(e.to_string()))?;
    let listeners = inherited.listeners(&config).await?;
    tongban_node::run_with(config, listeners, shutdown_signal()).await?;
    Ok(())
}

/// Re-issues this node's receipt for handoff `handoff` from `from`.
pub(crate) async fn reissue(config: &Path, handoff: &str, from: &str) -> Result<()> {
    let config = NodeConfig::load(config).map_err(|e| BadConfig(e.to_string()))?;
    let from = from
        .parse()
        .map_err(|e| super::Usage(format!("--from: {e}")))?;
    let done = tongban_node::operator::reissue_receipt(&config, &from, handoff)
        .await
        .with_context(|| format!("cannot re-issue the receipt of handoff {handoff} from {from}"))?;
    println!(
        "receipt of handoff {handoff} (case {}) re-issued, dated {}, ledger entry {}; \
         start the node, then ask {from} to retry the case",
        done.case_no,
        crate::page::cst_time(&done.received_at),
        done.seq
    );
    Ok(())
}

/// `--check`: every problem on stdout, one a line; 64 if any is an error.
pub(crate) fn check(config: &Path) -> Result<()> {
    let check = NodeConfig::check(config);
    for e in &check.errors {
        println!("error: {e}");
    }
    for w in &check.warnings {
        println!("warning: {w}");
    }
    let (errors, warnings) = (check.errors.len(), check.warnings.len());
    if errors > 0 {
        return Err(BadConfig(format!(
            "{}: {errors} error(s), {warnings} warning(s)",
            config.display()
        ))
        .into());
    }
    println!("{}: ok, {warnings} warning(s)", config.display());
    Ok(())
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutdown signal received");
}
