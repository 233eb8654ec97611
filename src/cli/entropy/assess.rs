//! `entropy assess`: the SP 800-90B §6.3 estimators on a file of raw samples.

use anyhow::{Context, bail};
use protocols::entropy::assess::{
    AppliedTo, AssessError, Assessment, MAX_SAMPLES, MIN_SAMPLES, assess,
};
use serde::Serialize;
use std::fmt::Write as _;
use std::path::PathBuf;

/// Options of `entropy assess`.
#[derive(Debug, clap::Args)]
pub struct AssessArgs {
    /// File of raw samples, one byte per sample (as `entropy sample --raw` writes).
    pub file: PathBuf,
    /// Significant low bits of each sample, 1..=8.
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=8))]
    pub bits: u8,
    /// Print one JSON document instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct Report<'a> {
    file: String,
    #[serde(flatten)]
    assessment: &'a Assessment,
}

/// Runs `entropy assess`.
pub fn run(args: AssessArgs) -> anyhow::Result<()> {
    let file = args.file.display().to_string();
    let meta = std::fs::metadata(&args.file).with_context(|| format!("cannot read {file}"))?;
    if meta.is_file() && meta.len() > MAX_SAMPLES as u64 {
        bail!(
            "{file} holds {} samples; at most {MAX_SAMPLES} can be assessed at once (split it)",
            meta.len()
        );
    }
    let samples = std::fs::read(&args.file).with_context(|| format!("cannot read {file}"))?;
    let assessment = assess(&samples, args.bits).map_err(|e| explain(e, &file))?;
    if args.json {
        let report = Report {
            file,
            assessment: &assessment,
        };
        super::emit(&(serde_json::to_string_pretty(&report)? + "\n"))?;
    } else {
        super::emit(&table(&file, &assessment)?)?;
    }
    Ok(())
}

fn explain(error: AssessError, file: &str) -> anyhow::Error {
    match error {
        AssessError::TooFewSamples { got, min } => anyhow::anyhow!(
            "too few samples: {file} holds {got}, the estimators need at least {min} \
             (SP 800-90B validation wants 1,000,000)"
        ),
        AssessError::TooManySamples { got, max } => {
            anyhow::anyhow!("too many samples: {file} holds {got}, at most {max} are accepted")
        }
        AssessError::SampleOutOfRange { index, value, bits } => anyhow::anyhow!(
            "sample {index} of {file} is {value}, wider than --bits {bits}: the file must hold \
             one sample per byte with only the low {bits} bit(s) set (is --bits right?)"
        ),
        other => anyhow::anyhow!("{file}: {other}"),
    }
}

fn applied(to: AppliedTo) -> &'static str {
    match to {
        AppliedTo::Samples => "samples",
        AppliedTo::Bitstring => "bitstring",
    }
}

fn table(file: &str, a: &Assessment) -> Result<String, std::fmt::Error> {
    let mut out = String::new();
    let bits = a.bits_per_sample;
    writeln!(out, "{file}: {} samples of {bits} bit(s)", a.samples)?;
    let width = a
        .estimates
        .iter()
        .map(|e| e.name.len())
        .chain(["ESTIMATOR".len()])
        .max()
        .unwrap_or(9);
    writeln!(
        out,
        "{:<width$}  {:<7}  {:<10}  {:>10}  {:>10}",
        "ESTIMATOR", "SECTION", "APPLIED TO", "ESTIMATE", "PER SAMPLE"
    )?;
    let lowest = a.estimates.iter().min_by(|x, y| {
        x.min_entropy_per_sample
            .total_cmp(&y.min_entropy_per_sample)
    });
    for e in &a.estimates {
        let marker = if lowest.is_some_and(|l| std::ptr::eq(l, e)) {
            "  <- minimum"
        } else {
            ""
        };
        writeln!(
            out,
            "{:<width$}  {:<7}  {:<10}  {:>10.6}  {:>10.6}{marker}",
            e.name,
            e.section,
            applied(e.applied_to),
            e.estimate,
            e.min_entropy_per_sample,
        )?;
    }
    for s in &a.skipped {
        writeln!(
            out,
            "not defined for this much data: {} ({}, on the {})",
            s.name,
            s.section,
            applied(s.applied_to)
        )?;
    }
    writeln!(
        out,
        "ESTIMATE is bits per symbol of the sequence the estimator ran on (per bit for the bitstring)."
    )?;
    writeln!(out, "H_original: {:.6} bits per sample", a.h_original)?;
    if let Some(h) = a.h_bitstring {
        writeln!(
            out,
            "H_bitstring: {h:.6} bits per bit ({:.6} bits per sample)",
            h * f64::from(bits)
        )?;
    }
    writeln!(
        out,
        "min-entropy: {:.6} bits per sample (of {bits}){}",
        a.min_entropy_per_sample,
        lowest.map_or(String::new(), |l| format!(
            ", from {} ({})",
            l.name, l.section
        ))
    )?;
    if a.samples < 1_000_000 {
        writeln!(
            out,
            "note: {} samples; SP 800-90B validation wants at least 1,000,000 (and {MIN_SAMPLES} is the floor here)",
            a.samples
        )?;
    }
    Ok(out)
}
