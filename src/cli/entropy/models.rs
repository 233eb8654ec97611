//! `entroshard entropy models` and `entropy reassess`: the per-source SP 800-90B models a peer
//! stored at its first start, and removing them so the next start assesses every source again.

use peer::sources::models::ModelStore;
use protocols::entropy::health::{alpha_log2_for_rate, false_alarm_period_s};
use std::path::PathBuf;

/// Where the peer keeps its data.
#[derive(Debug, clap::Args)]
pub struct ModelsArgs {
    /// The peer's data directory.
    #[arg(long, default_value = "entroshard-peer")]
    pub data_dir: PathBuf,
    /// Print JSON lines instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Prints every stored model.
pub fn show(args: ModelsArgs) -> anyhow::Result<()> {
    let models = ModelStore::in_data_dir(&args.data_dir).all();
    if models.is_empty() {
        outln!(
            "no stored models in {} (a peer assesses its sources at its first start)",
            args.data_dir.join("entropy-models").display()
        );
        return Ok(());
    }
    if !args.json {
        outln!(
            "{:<20} {:>4} {:>8} {:>9} {:>11} {:>6} {:>14}  ESTIMATOR",
            "SOURCE",
            "BITS",
            "H",
            "SAMPLES",
            "SAMPLES/S",
            "ALPHA",
            "FALSE ALARM"
        );
    }
    for m in models {
        let rate = peer::pipeline::tested_rate(&m);
        let a = alpha_log2_for_rate(rate);
        let days = false_alarm_period_s(rate, a) / 86_400.0;
        if args.json {
            outln!(
                "{{\"source\":{:?},\"bits_per_sample\":{},\"h_per_sample\":{},\"estimator\":{:?},\"samples\":{},\"samples_per_s\":{},\"alpha_log2\":{a},\"binary_sha256\":{:?},\"assessed_at_ms\":{}}}",
                m.source,
                m.bits_per_sample,
                m.h_per_sample,
                m.estimator,
                m.samples,
                m.samples_per_s,
                m.binary_sha256,
                m.assessed_at_ms
            );
        } else {
            outln!(
                "{:<20} {:>4} {:>8.4} {:>9} {:>11.0} {:>6} {:>10.0} days  {}",
                m.source,
                m.bits_per_sample,
                m.h_per_sample,
                m.samples,
                m.samples_per_s,
                format!("2^-{a}"),
                days,
                m.estimator
            );
        }
    }
    Ok(())
}

/// Removes every stored model.
pub fn reassess(args: ModelsArgs) -> anyhow::Result<()> {
    let removed = ModelStore::in_data_dir(&args.data_dir).clear()?;
    outln!(
        "removed {removed} stored model(s); each source is assessed again at the next `peer run`"
    );
    Ok(())
}
