//! The peer side of the in-process demo: simulated sources → health tests → HMAC-SHA-256
//! conditioning → blocks of four 256-bit outputs with their accounting.

use peer::pipeline::{HarvestedBlock, PipelineOutput, SourcePipeline};
use peer::sources::simulated::{SimulatedKind, SimulatedSource};

/// Samples a source may use per block before it is considered too slow for this round.
const MAX_SAMPLES_PER_BLOCK: u64 = 2_000_000;

/// A simulated device: labels and its sources, each with its own pipeline.
pub struct DemoPeer {
    pub name: String,
    pub region: &'static str,
    pub operator: &'static str,
    pub sources: Vec<SourcePipeline>,
}

const REGIONS: [&str; 3] = ["eu-west", "us-east", "ap-south"];
const OPERATORS: [&str; 3] = ["alpha", "bravo", "charlie"];

impl DemoPeer {
    /// Builds peer `i`. Peer 2 also carries a stuck sensor; the peer with `clone_of` copies another's seeds.
    pub fn new(i: usize, seed: u64, clone_of: Option<usize>) -> anyhow::Result<Self> {
        let seed_peer = clone_of.unwrap_or(i);
        let seed_for = |source: u8| {
            let mut s = [0u8; 32];
            s[..8].copy_from_slice(&seed.to_le_bytes());
            s[8..16].copy_from_slice(&(seed_peer as u64).to_le_bytes());
            s[16] = source;
            s
        };
        let p_one = 0.55 + 0.05 * (seed_peer % 3) as f64;
        let mut sources = vec![
            SimulatedSource::new(
                "sim:timing-jitter",
                SimulatedKind::Biased { p_one },
                seed_for(0),
            )?,
            SimulatedSource::new(
                "sim:sensor-lsb",
                SimulatedKind::Correlated {
                    bits: 4,
                    p_repeat: 0.2,
                },
                seed_for(1),
            )?,
        ];
        if i == 2 {
            sources.push(SimulatedSource::new(
                "sim:stuck-adc",
                SimulatedKind::Stuck { value: 1 },
                seed_for(2),
            )?);
        }
        // A cloned image carries everything of its original, the conditioning key included:
        // the key is derived from the peer's seed (a real device draws it from the OS).
        let key = protocols::entropy::ConditioningKey::from_random(seed_for(255));
        let sources = sources
            .into_iter()
            .map(|s| SourcePipeline::new(Box::new(s), key.clone()).map_err(anyhow::Error::from))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Self {
            name: format!("peer-{i}"),
            region: REGIONS[i % REGIONS.len()],
            operator: OPERATORS[(i + i / 3) % OPERATORS.len()],
            sources,
        })
    }

    /// Produces one block from every healthy source.
    pub fn harvest_round(&mut self) -> anyhow::Result<Vec<HarvestedBlock>> {
        let mut out = Vec::new();
        for (index, pipeline) in self.sources.iter_mut().enumerate() {
            if pipeline.cut_off_at().is_some() {
                continue;
            }
            if let PipelineOutput::Block(harvested) =
                pipeline.next_block(index as u32, MAX_SAMPLES_PER_BLOCK)?
            {
                out.push(harvested);
            }
        }
        Ok(out)
    }
}
