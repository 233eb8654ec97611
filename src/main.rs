//! `entroshard`: one binary for every role. This file only parses the command line and dispatches.
#![forbid(unsafe_code)]
#![deny(clippy::unwrap_used, clippy::expect_used)]

mod cli;
mod demo;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "entroshard",
    version,
    about = "Session keys from device entropy, held as verifiable shares by a rotating quorum"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole pipeline end to end and narrate it.
    Demo(demo::DemoArgs),
    /// The device agent: harvest, contribute, hold and serve shares.
    #[command(subcommand)]
    Peer(cli::peer::PeerCommand),
    /// The aggregation service: enrolment, attestation, mixing, sessions, tickets.
    #[command(subcommand)]
    Coordinator(cli::coordinator::CoordinatorCommand),
    /// Inspect, sample and assess this device's entropy sources.
    #[command(subcommand)]
    Entropy(cli::entropy::EntropyCommand),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(args) => demo::run(args),
        Command::Peer(command) => cli::peer::run(command),
        Command::Coordinator(command) => cli::coordinator::run(command),
        Command::Entropy(command) => cli::entropy::run(command),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
