//! `entroshard bench`: end-to-end figures on loopback (work in progress).

/// Options of `entroshard bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Runs the benchmark.
pub fn run(_args: BenchArgs) -> anyhow::Result<()> {
    anyhow::bail!("entroshard bench is not implemented yet")
}
