//! The `tongban` command. This file only wires: parse arguments, set up
//! logging and the crypto provider, run the command, map the outcome to an
//! exit code (0 ok, 1 refused or failed, 2 usage, 64 bad configuration).

use std::process::ExitCode;

use clap::Parser;

mod args;
mod audit;
mod client;
mod cmd;
mod console;
mod material;
mod notice;
mod output;
mod page;
mod sanitize;

// The node allocates and frees many short buffers per handoff (frames,
// records, sled pages) from both runtime threads at once; glibc's malloc
// was a sixth of the drain benchmark's CPU, much of it in arena locks.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = args::Cli::parse();
    output::quiet_broken_pipe();
    tongban_pki::install_crypto_provider();
    output::init_logging(cli.log_format, &cli.log_level);
    // Before the runtime's threads start: it clears LISTEN_FDS from the environment.
    let inherited = cmd::sockets::Inherited::from_env();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cmd::run(cli.command, inherited)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // Each cause once: library errors keep their cause out of
            // `source()` when their message already says it. What came over
            // the network is shown without control characters.
            eprintln!("error: {}", sanitize::text(&format!("{err:#}")));
            ExitCode::from(cmd::exit_code(&err))
        }
    }
}
