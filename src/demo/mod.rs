//! `entroshard demo`: the whole protocol core in one process, narrated step by step with
//! the figures each step measured. Nothing is hard-coded: every number printed is computed.

mod harvest;
mod network;
mod session;

use anyhow::{Context, bail};
use coordinator::intake::Intake;
use harvest::DemoPeer;
use protocols::entropy::CreditPolicy;
use protocols::identity::NodeKey;
use rand::rngs::SysRng;
use rand_core::{Rng, UnwrapErr};
use std::time::Instant;

/// Options of the in-process demo.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Simulated devices (one of them is a clone of another, one carries a stuck sensor).
    #[arg(long, default_value_t = 7)]
    pub peers: usize,
    /// Shares per session.
    #[arg(long, default_value_t = 5)]
    pub n: u8,
    /// Shares needed to rebuild the key.
    #[arg(long, default_value_t = 3)]
    pub k: u8,
    /// Credited min-entropy (bits) the pool must hold before a key is derived.
    #[arg(long, default_value_t = 2048)]
    pub min_credited_bits: u64,
    /// Distinct contributing peers required before a key is derived.
    #[arg(long, default_value_t = 4)]
    pub min_contributors: usize,
    /// Seed of the simulated sources (the key material itself always mixes OS randomness).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Run the protocol core in one process instead of the networked demo.
    #[arg(long)]
    pub core: bool,
}

/// Prints one narrated step with its duration.
pub(crate) struct Narrator {
    step: usize,
    started: Instant,
}

impl Narrator {
    fn new() -> Self {
        Self {
            step: 0,
            started: Instant::now(),
        }
    }

    pub(crate) fn step<T>(
        &mut self,
        title: &str,
        f: impl FnOnce() -> anyhow::Result<(T, Vec<String>)>,
    ) -> anyhow::Result<T> {
        self.step += 1;
        let t0 = Instant::now();
        let (value, lines) = f().with_context(|| format!("step {} ({title}) failed", self.step))?;
        let elapsed = t0.elapsed();
        println!(
            "[{:>2}] {title:<44} {:>10.3} ms",
            self.step,
            elapsed.as_secs_f64() * 1e3
        );
        for line in lines {
            println!("       {line}");
        }
        Ok(value)
    }
}

/// Runs the demo; an error names the step that failed.
pub fn run(args: DemoArgs) -> anyhow::Result<()> {
    if args.core {
        return run_core(args);
    }
    if args.peers < usize::from(args.n) + 2 {
        bail!(
            "the networked demo needs at least n + 2 peers (n = {}, peers = {})",
            args.n,
            args.peers
        );
    }
    protocols::sharing::check_parameters(usize::from(args.n), usize::from(args.k))?;
    println!(
        "entroshard demo — a coordinator, {} peers in 3 regions under 3 operators, 2 requesters; real processes and sockets on loopback",
        args.peers
    );
    println!();
    let mut narrator = Narrator::new();
    network::run(&args, &mut narrator)?;
    println!();
    println!(
        "demo finished: every step did what it shows ({:.1} s in all)",
        narrator.started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The protocol core in one process, narrated (`demo --core`).
pub fn run_core(args: DemoArgs) -> anyhow::Result<()> {
    if args.peers < 4 {
        bail!("the demo needs at least 4 peers (one is a clone, one has a stuck sensor)");
    }
    protocols::sharing::check_parameters(usize::from(args.n), usize::from(args.k))?;
    if usize::from(args.n) > args.peers {
        bail!(
            "n = {} shares need at least as many peers (have {})",
            args.n,
            args.peers
        );
    }
    let mut os = UnwrapErr(SysRng);
    let seed = args.seed.unwrap_or_else(|| os.next_u64());
    println!(
        "entroshard demo — in-process protocol core, {} peers, n = {}, k = {}, seed {seed}",
        args.peers, args.n, args.k
    );
    println!();
    let mut narrator = Narrator::new();
    let clone_index = args.peers - 1;

    let mut peers = narrator.step("simulated devices and sources", || {
        let peers = (0..args.peers)
            .map(|i| DemoPeer::new(i, seed, (i == clone_index).then(|| i - 1)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let sources: usize = peers.iter().map(|p| p.sources.len()).sum();
        let lines = vec![
            format!(
                "{} devices, {sources} sources, regions/operators:",
                peers.len()
            ),
            peers
                .iter()
                .map(|p| format!("{}={}/{}", p.name, p.region, p.operator))
                .collect::<Vec<_>>()
                .join(" "),
            format!(
                "peer-2 carries a stuck ADC; {} is a cloned image of {}",
                peers[clone_index].name,
                peers[clone_index - 1].name
            ),
        ];
        Ok((peers, lines))
    })?;
    let keys: Vec<NodeKey> = (0..args.peers)
        .map(|_| NodeKey::generate(&mut os))
        .collect();

    let mut sketch_key = [0u8; 32];
    os.fill_bytes(&mut sketch_key);
    let mut intake =
        Intake::new(sketch_key, CreditPolicy::default()).map_err(anyhow::Error::msg)?;
    let mut now_ms = 0u64;

    let mut round = 0;
    while !intake.ready(args.min_credited_bits, args.min_contributors) {
        round += 1;
        if round > 16 {
            bail!(
                "pool not ready after 16 harvest rounds: {:?}",
                intake.stats()
            );
        }
        let harvested = narrator.step(
            &format!("harvest round {round}: health tests + conditioning"),
            || {
                let mut all = Vec::new();
                for (i, peer) in peers.iter_mut().enumerate() {
                    for h in peer.harvest_round()? {
                        all.push((i, h));
                    }
                }
                let mut lines = vec![format!(
                    "{} blocks of four HMAC-SHA-256 outputs (each from ≥ 320 bits of the model's H)",
                    all.len()
                )];
                if round == 1 {
                    for peer in &peers {
                        for s in &peer.sources {
                            let c = s.health().counters();
                            let spec = s.health().spec();
                            let state = match s.cut_off_at() {
                                Some(at) => format!(
                                    "CUT OFF at sample {at} (RCT cutoff {})",
                                    s.health().rct_cutoff()
                                ),
                                None => format!("healthy after {} samples", c.samples_seen),
                            };
                            lines.push(format!(
                            "{:<7} {:<18} H={:.2} bits/sample  α=2^-{}  RCT C={:<3} APT C={}/{}  {state}",
                            peer.name,
                            s.name(),
                            spec.min_entropy_per_sample(),
                            s.health().alpha_log2(),
                            s.health().rct_cutoff(),
                            s.health().apt_cutoff(),
                            s.health().apt_window()
                        ));
                        }
                    }
                }
                Ok((all, lines))
            },
        )?;
        narrator.step("coordinator intake: accounting, clones, credit, pools", || {
            let before = intake.stats().clone();
            for (i, h) in &harvested {
                now_ms += 250;
                let accounting = protocols::entropy::Accounting {
                    outputs: h.block.outputs(),
                    raw_samples: h.accounting.raw_samples,
                    h_per_sample: f64::from(h.accounting.h_millibits) / 1000.0,
                };
                // In one process there is no audit: the accounting alone is credited.
                let bits = protocols::entropy::credit_for_accounting(&accounting, f64::INFINITY);
                // Rejections are counted in the stats printed below.
                let _ = intake.take(&keys[*i].node_id(), h.source_index, &h.block, bits, now_ms);
            }
            intake.new_round();
            let s = intake.stats();
            let (pool_bits, pool_peers) = intake.pool_credit();
            Ok(((), vec![
                format!(
                    "blocks {}; clones flagged {}; credited this round {} bits",
                    s.blocks - before.blocks,
                    (s.clones + s.replays) - (before.clones + before.replays),
                    s.credited - before.credited
                ),
                format!(
                    "pools: {pool_bits} credited bits from {pool_peers} peers ({} still waiting in Fortuna pools; all are folded in before a key is drawn)",
                    intake.pending_bits()
                ),
            ]))
        })?;
    }
    session::run(&mut narrator, &args, &mut intake, &keys, &peers, &mut os)?;
    println!();
    println!(
        "demo finished: every step did what it shows ({:.1} ms in all)",
        narrator.started.elapsed().as_secs_f64() * 1e3
    );
    Ok(())
}
