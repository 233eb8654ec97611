//! Shell completions and man pages from the command line's own definition (`clap_complete`,
//! `clap_mangen`): the hidden `completions` and `man` subcommands of a build with the `lab`
//! feature, run on the build host by scripts/build-debs.sh. Never in the device binary
//! (docs/decisions/0047).

use anyhow::Context;
use std::path::PathBuf;

/// The subcommands only a `lab` build runs; left out of the pages unless asked for.
const LAB_TOOLS: [&str; 2] = ["bench", "simulate"];

/// `entroshard completions SHELL`.
#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// Shell to complete for.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
    /// Complete the lab tools (`bench`, `simulate`) too: for a package of the full binary.
    #[arg(long)]
    with_lab_tools: bool,
}

/// `entroshard man DIR`.
#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Directory to write `entroshard.1` and one page per subcommand into (created if missing).
    dir: PathBuf,
    /// Write pages for the lab tools (`bench`, `simulate`) too: for a package of the full binary.
    #[arg(long)]
    with_lab_tools: bool,
}

/// The command line as the packaged binary shows it: without hidden subcommands (the
/// generators, test helpers) and, unless `with_lab_tools`, without the lab tools, which the
/// device build refuses. Rebuilt rather than hidden: completion scripts list hidden subcommands.
fn as_shipped(cmd: &clap::Command, with_lab_tools: bool) -> clap::Command {
    let dropped: &[&str] = if with_lab_tools { &[] } else { &LAB_TOOLS };
    visible(cmd, dropped).version(env!("CARGO_PKG_VERSION"))
}

/// `cmd` (not yet built) with its arguments and groups and only its visible subcommands, less
/// those named in `dropped`, recursively.
fn visible(cmd: &clap::Command, dropped: &[&str]) -> clap::Command {
    let subcommands = cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && !dropped.contains(&s.get_name()))
        .map(|s| visible(s, &[]));
    let mut out = clap::Command::new(cmd.get_name().to_string())
        .args(cmd.get_arguments().cloned())
        .groups(cmd.get_groups().cloned())
        .subcommands(subcommands)
        .subcommand_required(cmd.is_subcommand_required_set());
    if let Some(about) = cmd.get_about() {
        out = out.about(about.clone());
    }
    if let Some(about) = cmd.get_long_about() {
        out = out.long_about(about.clone());
    }
    out
}

/// Writes the completion script for `args.shell` to standard output.
pub fn completions(args: CompletionsArgs, cmd: &clap::Command) -> anyhow::Result<()> {
    let mut cmd = as_shipped(cmd, args.with_lab_tools);
    let name = cmd.get_name().to_string();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, name, &mut script);
    crate::out::write_bytes(&script);
    Ok(())
}

/// Writes `entroshard.1` and a page for every visible subcommand (`entroshard-peer-run.1`, …)
/// into `args.dir`.
pub fn man(args: ManArgs, cmd: &clap::Command) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.dir).with_context(|| format!("create {}", args.dir.display()))?;
    clap_mangen::generate_to(as_shipped(cmd, args.with_lab_tools), &args.dir)
        .with_context(|| format!("write man pages into {}", args.dir.display()))?;
    outln!("man pages written to {}", args.dir.display());
    Ok(())
}
