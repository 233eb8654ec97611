//! `entroshard`: one binary for every role. This file only parses the command line and dispatches.

#[macro_use]
mod out;

#[cfg(feature = "lab")]
mod bench;
mod cli;
mod demo;
mod fleet;

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
    /// A requester identity pinned to a coordinator.
    #[command(subcommand)]
    Requester(cli::requester::RequesterCommand),
    /// Create sessions and inspect ticket files.
    #[command(subcommand)]
    Session(cli::requester::SessionCommand),
    /// Fetch a session key from its holders.
    Fetch(cli::requester::FetchArgs),
    /// Measure fetch latency against the bare QUIC stack, sessions per second, rotation time, RSS.
    #[cfg(feature = "lab")]
    Bench(bench::BenchArgs),
    /// Not in this build (built without the `lab` feature); says so and exits 1.
    #[cfg(not(feature = "lab"))]
    #[command(hide = true)]
    Bench(cli::lab::LeftOut),
    /// A Noise channel keyed by a session key, like `nc`.
    #[command(subcommand)]
    Tunnel(cli::tunnel::TunnelCommand),
    /// Inspect, sample and assess this device's entropy sources.
    #[command(subcommand)]
    Entropy(cli::entropy::EntropyCommand),
    /// Thousands of real devices in one process with churn, partitions and misbehaviour; a report with plots.
    #[cfg(feature = "lab")]
    Simulate(cli::simulate::SimulateArgs),
    /// Not in this build (built without the `lab` feature); says so and exits 1.
    #[cfg(not(feature = "lab"))]
    #[command(hide = true)]
    Simulate(cli::lab::LeftOut),
    /// Print a shell completion script (bash, zsh, fish, …) for the packaged command line.
    #[cfg(feature = "lab")]
    #[command(hide = true)]
    Completions(cli::docs::CompletionsArgs),
    /// Not in this build (built without the `lab` feature); says so and exits 1.
    #[cfg(not(feature = "lab"))]
    #[command(hide = true)]
    Completions(cli::lab::LeftOut),
    /// Write man pages for the command and every subcommand into a directory.
    #[cfg(feature = "lab")]
    #[command(hide = true)]
    Man(cli::docs::ManArgs),
    /// Not in this build (built without the `lab` feature); says so and exits 1.
    #[cfg(not(feature = "lab"))]
    #[command(hide = true)]
    Man(cli::lab::LeftOut),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    fleet::exit_with_parent();
    let result = match cli.command {
        Command::Demo(args) => demo::run(args),
        Command::Peer(command) => cli::peer::run(command),
        Command::Coordinator(command) => cli::coordinator::run(command),
        Command::Entropy(command) => cli::entropy::run(command),
        Command::Requester(command) => cli::requester::run_requester(command),
        Command::Session(command) => cli::requester::run_session(command),
        Command::Fetch(args) => {
            // Quiet by default (the key or its errors only); RUST_LOG asks for the node's log,
            // on stderr like the progress lines (the NAT testbed reads why a fetch was slow).
            if std::env::var_os("RUST_LOG").is_some() {
                cli::init_tracing(cli::LogFormat::Human);
            }
            cli::requester::run_fetch(args)
        }
        Command::Tunnel(command) => cli::tunnel::run(command),
        #[cfg(feature = "lab")]
        Command::Bench(args) => bench::run(args),
        #[cfg(feature = "lab")]
        Command::Simulate(args) => cli::simulate::run(args),
        #[cfg(not(feature = "lab"))]
        Command::Bench(_) => cli::lab::left_out("bench"),
        #[cfg(not(feature = "lab"))]
        Command::Simulate(_) => cli::lab::left_out("simulate"),
        #[cfg(feature = "lab")]
        Command::Completions(args) => {
            cli::docs::completions(args, &<Cli as clap::CommandFactory>::command())
        }
        #[cfg(feature = "lab")]
        Command::Man(args) => cli::docs::man(args, &<Cli as clap::CommandFactory>::command()),
        #[cfg(not(feature = "lab"))]
        Command::Completions(_) => cli::lab::left_out("completions"),
        #[cfg(not(feature = "lab"))]
        Command::Man(_) => cli::lab::left_out("man"),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(all(test, not(feature = "lab")))]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_device_build_parses_lab_subcommands_and_refuses_them_naming_the_feature() {
        for (name, args) in [
            ("simulate", &["--peers", "3", "--no-plots"][..]),
            ("bench", &["--json", "--no-large"][..]),
            ("completions", &["bash"][..]),
            ("man", &["/tmp/man"][..]),
        ] {
            let argv = std::iter::once("entroshard")
                .chain(std::iter::once(name))
                .chain(args.iter().copied());
            let parsed = match Cli::try_parse_from(argv).unwrap().command {
                Command::Simulate(_) => "simulate",
                Command::Bench(_) => "bench",
                Command::Completions(_) => "completions",
                Command::Man(_) => "man",
                _ => "another subcommand",
            };
            assert_eq!(parsed, name);
            let refusal = cli::lab::left_out(name).unwrap_err().to_string();
            assert!(
                refusal.contains(&format!("`{name}`")) && refusal.contains("`lab` feature"),
                "{refusal}"
            );
        }
    }
}
