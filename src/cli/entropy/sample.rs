//! `entropy sample`: raw samples from one source into a file, one byte per sample.

use super::{chunk_size, open_source};
use anyhow::{Context, bail};
use std::fs::{File, OpenOptions, Permissions};
use std::io::{BufWriter, IsTerminal, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long one read from the source should take, so progress stays fresh.
const CHUNK_TIME: Duration = Duration::from_millis(100);
/// Least time between two progress updates.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// Options of `entropy sample`.
#[derive(Debug, clap::Args)]
pub struct SampleArgs {
    /// Source name as `entropy sources` lists it (e.g. `jitter`, `thermal:thermal_zone0`), or a
    /// simulated source: `sim:biased:P:SEED`, `sim:stuck:V`, `sim:correlated:BITS:P:SEED`, or a
    /// sensor model `sim:walk:BITS:STEP:SEED`, `sim:periodic:BITS:PERIOD:NOISE:SEED`,
    /// `sim:jitter:BITS:SPREAD:SEED`.
    #[arg(long)]
    pub source: String,
    /// Number of samples to read.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1 << 32))]
    pub count: u64,
    /// Write raw samples, one byte each with the low bits significant (the only format).
    #[arg(long)]
    pub raw: bool,
    /// Output file (created or truncated, mode 0600).
    #[arg(short = 'o', long = "output")]
    pub output: PathBuf,
    /// Filesystem root under which sys/ and proc/ are probed.
    #[arg(long, default_value = "/")]
    pub system_root: PathBuf,
}

/// Runs `entropy sample`.
pub fn run(args: SampleArgs) -> anyhow::Result<()> {
    if !args.raw {
        bail!(
            "only raw output is supported: pass --raw to write one byte per sample \
             (its low bits-per-sample bits significant), the format `entropy assess` reads"
        );
    }
    let mut source = open_source(&args.source, &args.system_root)?;
    let spec = source.spec();
    let mut out = BufWriter::new(create_private(&args.output)?);
    let progress = std::io::stderr().is_terminal();
    let start = Instant::now();
    let mut last_progress = start;
    let mut buf = Vec::with_capacity(super::MAX_CHUNK);
    let mut read = 0u64;
    while read < args.count {
        let remaining = usize::try_from(args.count - read).unwrap_or(usize::MAX);
        let n = chunk_size(read, start.elapsed(), CHUNK_TIME).min(remaining);
        buf.clear();
        source
            .read_samples(&mut buf, n)
            .with_context(|| format!("reading {} after {read} samples", args.source))?;
        if buf.is_empty() {
            bail!("source {} returned no samples after {read}", args.source);
        }
        buf.truncate(n);
        out.write_all(&buf)
            .with_context(|| format!("writing {}", args.output.display()))?;
        read += buf.len() as u64;
        if progress && last_progress.elapsed() >= PROGRESS_EVERY {
            last_progress = Instant::now();
            eprint!("\r{}", progress_line(read, args.count, start.elapsed()));
        }
    }
    out.flush()
        .with_context(|| format!("writing {}", args.output.display()))?;
    let seconds = start.elapsed().as_secs_f64();
    if progress && last_progress != start {
        eprintln!("\r{}", progress_line(read, args.count, start.elapsed()));
    }
    let bits = spec.bits_per_sample();
    eprintln!(
        "wrote {read} samples from {} to {}: {bits} bit(s) per sample (claimed min-entropy {:.3}), {seconds:.2} s, {:.0} samples/s",
        args.source,
        args.output.display(),
        spec.min_entropy_per_sample(),
        read as f64 / seconds.max(1e-9),
    );
    eprintln!(
        "assess with: entroshard entropy assess {} --bits {bits}",
        args.output.display()
    );
    Ok(())
}

/// Creates or truncates `path` for writing, readable by its owner only (a regular file that
/// already exists is narrowed to 0600 too; a device or FIFO is written as it is).
fn create_private(path: &Path) -> anyhow::Result<File> {
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    let meta = file
        .metadata()
        .with_context(|| format!("inspecting {}", path.display()))?;
    if meta.is_file() && meta.permissions().mode() & 0o777 != 0o600 {
        file.set_permissions(Permissions::from_mode(0o600))
            .with_context(|| format!("restricting {} to mode 0600", path.display()))?;
    }
    Ok(file)
}

fn progress_line(done: u64, total: u64, elapsed: Duration) -> String {
    let rate = done as f64 / elapsed.as_secs_f64().max(1e-9);
    let eta = (total - done.min(total)) as f64 / rate.max(1e-9);
    format!(
        "{done}/{total} samples ({:.0} %), {rate:.0} samples/s, {eta:.0} s left   ",
        done as f64 * 100.0 / total as f64
    )
}
