//! The peer side of the in-process demo: simulated sources → health tests → Von Neumann → 20,000-bit blocks.

use peer::sources::EntropySource;
use peer::sources::simulated::{SimulatedKind, SimulatedSource};
use protocols::entropy::{
    DebiasedBlock, Debiaser, HealthTester, HealthVerdict, SlidingMcv, SourceClaim,
};

/// Samples read from a source per pass.
const CHUNK: usize = 4096;
/// Samples a source may use per block before it is considered too slow for this round.
const MAX_SAMPLES_PER_BLOCK: u64 = 2_000_000;

/// A simulated device: labels and its sources, each with its own pipeline.
pub struct DemoPeer {
    pub name: String,
    pub region: &'static str,
    pub operator: &'static str,
    pub sources: Vec<SourcePipeline>,
}

/// One source with its health tester, MCV window and debiaser.
pub struct SourcePipeline {
    pub source: SimulatedSource,
    pub health: HealthTester,
    mcv: SlidingMcv,
    debias: Debiaser,
    samples_since_block: u64,
    pub cut_off_at: Option<u64>,
}

/// One debiased block with the claim the coordinator will weigh.
pub struct HarvestedBlock {
    pub source_index: u32,
    pub block: DebiasedBlock,
    pub claim: SourceClaim,
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
        let sources = sources
            .into_iter()
            .map(SourcePipeline::new)
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
            if let Some(harvested) = pipeline.next_block(index as u32)? {
                out.push(harvested);
            }
        }
        Ok(out)
    }
}

impl SourcePipeline {
    fn new(source: SimulatedSource) -> anyhow::Result<Self> {
        let spec = source.spec();
        Ok(Self {
            health: HealthTester::new(spec),
            mcv: SlidingMcv::new(4096)?,
            debias: Debiaser::new(spec.bits_per_sample())?,
            samples_since_block: 0,
            cut_off_at: None,
            source,
        })
    }

    /// Feeds samples through health tests and the debiaser until a block is full or the source fails.
    fn next_block(&mut self, source_index: u32) -> anyhow::Result<Option<HarvestedBlock>> {
        let mut buf = Vec::with_capacity(CHUNK);
        while self.cut_off_at.is_none() && self.samples_since_block < MAX_SAMPLES_PER_BLOCK {
            buf.clear();
            self.source.read_samples(&mut buf, CHUNK)?;
            for &sample in &buf {
                match self.health.feed(sample) {
                    HealthVerdict::Failed(_) => {
                        self.cut_off_at = Some(self.health.counters().samples_seen);
                        return Ok(None);
                    }
                    HealthVerdict::Startup => continue,
                    HealthVerdict::Healthy => {}
                }
                self.mcv.push(sample);
                self.samples_since_block += 1;
                if let Some(block) = self.debias.push_sample(sample) {
                    return Ok(Some(self.finish_block(source_index, block)));
                }
            }
        }
        Ok(None)
    }

    fn finish_block(&mut self, source_index: u32, block: DebiasedBlock) -> HarvestedBlock {
        let spec = self.source.spec();
        let bits = protocols::entropy::BLOCK_BITS as f64;
        let raw = self.samples_since_block as f64;
        let per_bit = |h_per_sample: f64| (h_per_sample * raw / bits).min(1.0);
        let claim = SourceClaim {
            debiased_bits: protocols::entropy::BLOCK_BITS as u64,
            claimed_min_entropy_per_bit: per_bit(spec.min_entropy_per_sample()),
            measured_min_entropy_per_bit: self.mcv.estimate().map(per_bit),
        };
        self.samples_since_block = 0;
        HarvestedBlock {
            source_index,
            block,
            claim,
        }
    }
}
