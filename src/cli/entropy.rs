//! `entroshard entropy …`: inspect this device's sources, sample them, assess samples offline.

/// `entropy` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum EntropyCommand {}

/// Runs an `entropy` subcommand.
pub fn run(command: EntropyCommand) -> anyhow::Result<()> {
    match command {}
}
