//! The subcommands, one module each, and the mapping of failures to exit codes.

mod audit;
mod certs;
mod dev;
mod directory;
mod mail;
mod node;
mod notice;
mod review;
pub(crate) mod sockets;
mod window;

use anyhow::{Context, Result};

use crate::args::Command;

/// A configuration problem (a node config, a client profile): exit code 64.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct BadConfig(pub(crate) String);

/// A usage error clap cannot see, such as a connection flag that neither
/// the command line nor a profile gives: exit code 2, as clap's own.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Usage(pub(crate) String);

/// Runs one command; `inherited` are the sockets a parent passed (used by
/// `tongban node` only).
pub(crate) async fn run(command: Command, inherited: sockets::Inherited) -> Result<()> {
    match command {
        Command::Certs(c) => certs::run(c),
        Command::Node { config, check, .. } if check => node::check(&config),
        Command::Node {
            config,
            reissue_receipt: Some(handoff),
            from: Some(from),
            ..
        } => node::reissue(&config, &handoff, &from).await,
        Command::Node { config, .. } => node::run(&config, inherited).await,
        Command::Window { conn, command } => window::run(&conn, command).await,
        Command::Review { conn, command } => review::run(&conn, command).await,
        Command::Mail { conn, command } => mail::run(&conn, command).await,
        Command::Notice {
            conn,
            case,
            kind,
            out,
        } => notice::run(&conn, &case, kind, &out).await,
        Command::Directory(c) => directory::run(c),
        Command::Console(a) => crate::console::run(a).await,
        Command::Dev { dir, base_port } => dev::run(&dir, base_port).await,
        Command::Audit { auth, command } => audit::run(&auth, command).await,
        Command::Completions { shell } => {
            let mut cli = <crate::args::Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cli, "tongban", &mut std::io::stdout());
            Ok(())
        }
        Command::Man => {
            let cli = <crate::args::Cli as clap::CommandFactory>::command();
            clap_mangen::Man::new(cli)
                .render(&mut std::io::stdout())
                .context("cannot write the manual page")
        }
    }
}

/// 64 for configuration problems (a data dir another node holds is one),
/// 2 for usage errors (clap exits 2 itself for those it finds), 75 when a
/// state-changing call was never answered (its outcome is unknown), 1 for
/// everything else.
pub(crate) fn exit_code(err: &anyhow::Error) -> u8 {
    if err.downcast_ref::<BadConfig>().is_some()
        || matches!(
            err.downcast_ref::<tongban_node::NodeError>(),
            Some(tongban_node::NodeError::DataDirInUse { .. })
        )
    {
        64
    } else if err
        .downcast_ref::<crate::client::OutcomeUnknown>()
        .is_some()
    {
        75
    } else if err.downcast_ref::<Usage>().is_some() {
        2
    } else {
        1
    }
}

/// Turns a gRPC status into an error a person can act on.
pub(crate) fn status_error(status: tonic::Status) -> anyhow::Error {
    let code = status.code();
    let msg = status.message();
    let hint = match code {
        tonic::Code::Unauthenticated => " (the node did not accept your certificate)",
        tonic::Code::Unavailable => " (is the node running and reachable?)",
        _ => "",
    };
    if msg.is_empty() {
        anyhow::anyhow!("{code:?}{hint}")
    } else {
        anyhow::anyhow!("{msg}{hint} [{code:?}]")
    }
}
