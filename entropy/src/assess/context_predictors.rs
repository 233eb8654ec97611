//! §6.3.9 MultiMMC and §6.3.10 LZ78Y prediction estimates (context-model predictors).
//!
//! Both keep, per context (the last `d` symbols), counts of the symbols that followed it
//! (see `context_tables`).
//!
//! Both follow 90B's order of operations, with each context's update folded into the
//! lookup that predicts from it: in 90B the pair (context ending at `s_{i-1}`, `s_i`) is
//! counted at the start of step `i + 1`, after the prediction of `s_i` and before any
//! prediction that could see it, which is when it is counted here. Ties between followers
//! with equal counts go to the larger symbol value.

use super::MAX_SEQUENCE_LEN;
use super::common::{distinct_symbols, is_binary};
use super::context_tables::{BinaryTable, ContextTable, Orphans, SymbolTable, context_keys};
use super::predictors::{Tally, prediction_entropy};

/// Maximum context length D of §6.3.9 step 1.
const MMC_DEPTH: usize = 16;
/// MAXentries of §6.3.9 step 2: (context, follower) pairs per model.
const MMC_MAX_ENTRIES: usize = 100_000;

/// §6.3.9 MultiMMC prediction estimate, bits per symbol. `None` for fewer than four symbols.
pub fn multi_mmc_prediction(symbols: &[u8]) -> Option<f64> {
    if symbols.len() < 4 || symbols.len() > MAX_SEQUENCE_LEN {
        return None;
    }
    let tally = if is_binary(symbols) {
        multi_mmc_tally::<BinaryTable>(symbols, MMC_MAX_ENTRIES)
    } else {
        multi_mmc_tally::<SymbolTable>(symbols, MMC_MAX_ENTRIES)
    };
    // Steps 4–10 (N = L - 2).
    prediction_entropy(&tally, distinct_symbols(symbols))
}

fn multi_mmc_tally<T: ContextTable>(symbols: &[u8], max_entries: usize) -> Tally {
    // The D models are independent of one another: model d's subprediction at step i
    // depends only on the symbols and on model d's own table. So the models run one after
    // the other, each keeping only whether its subprediction hit (one bit per step), and
    // the scoreboard replays those bits afterwards. One table is alive at a time: on
    // 8-bit data each can hold MAXentries contexts, and sixteen at once cost ~200 MB.
    let n = symbols.len();
    let mut hits: Vec<BitVec> = Vec::with_capacity(MMC_DEPTH);
    // Steps where the one-shorter model's context was absent (after counting); model 1
    // has no shorter one.
    let mut shorter_absent = BitVec::zeros(n);
    for d in 1..=MMC_DEPTH {
        let mut model = T::with_length(d as u32);
        let mut entries = 0usize;
        let mut orphans = Orphans::default();
        let mut hit = BitVec::zeros(n);
        let mut absent = BitVec::zeros(n);
        let mask = context_mask::<T>(d);
        let mut key = 0u128;
        for (i, pair) in symbols.windows(2).enumerate() {
            let (i, previous, x) = (i + 1, pair[0], pair[1]);
            // The context s[i-d..i], most recent symbol in the low bits.
            key = ((key << T::SYMBOL_BITS) | u128::from(previous)) & mask;
            if i < d {
                continue;
            }
            // Step 3b: subpredict_d from the context; step 3a (for the next step): count
            // s_i after it, adding a new pair only while the model has < MAXentries.
            let allow = entries < max_entries;
            let below_absent = shorter_absent.get(i);
            if below_absent && !allow && orphans.rules_out(key) {
                // Provably absent and not insertable: the lookup would change nothing.
                absent.set(i);
                continue;
            }
            let lookup = model.predict_then_count(key, x, allow, allow);
            entries += usize::from(lookup.pair_created);
            if lookup.context_created && below_absent {
                orphans.add(key);
            }
            if lookup.prediction.is_none() && !lookup.pair_created {
                absent.set(i);
            }
            if lookup.prediction.map(|(y, _)| y) == Some(x) {
                hit.set(i);
            }
        }
        hits.push(hit);
        shorter_absent = absent;
    }
    // Steps 3c–3e replayed: predict with the winner (initially the order-1 model), then
    // update the scoreboard in order d = 1..D (`winner_score` mirrors scoreboard[winner]).
    let mut scoreboard = [0u64; MMC_DEPTH];
    let mut winner = 0usize;
    let mut winner_score = 0u64;
    let mut tally = Tally::default();
    for i in 2..n {
        tally.record(hits.get(winner).is_some_and(|h| h.get(i)));
        for (d, (h, score)) in hits.iter().zip(&mut scoreboard).enumerate() {
            let hit = h.get(i);
            *score += u64::from(hit);
            let take = hit && *score >= winner_score;
            winner = if take { d } else { winner };
            winner_score = if take { *score } else { winner_score };
        }
    }
    tally
}

/// Mask keeping the `d` most recent symbols of a packed context key.
fn context_mask<T: ContextTable>(d: usize) -> u128 {
    let bits = T::SYMBOL_BITS * d as u32;
    if bits >= 128 {
        u128::MAX
    } else {
        (1u128 << bits) - 1
    }
}

/// A fixed-length vector of bits, all clear at the start.
struct BitVec(Vec<u64>);

impl BitVec {
    fn zeros(len: usize) -> Self {
        BitVec(vec![0; len.div_ceil(64)])
    }

    fn set(&mut self, i: usize) {
        if let Some(word) = self.0.get_mut(i / 64) {
            *word |= 1 << (i % 64);
        }
    }

    fn get(&self, i: usize) -> bool {
        self.0.get(i / 64).is_some_and(|w| w >> (i % 64) & 1 == 1)
    }
}

/// Maximum context length B of §6.3.10 step 1.
const LZ_DEPTH: usize = 16;
/// maxDictionarySize of §6.3.10 step 1: contexts over all lengths.
const LZ_MAX_DICTIONARY: usize = 65_536;

/// §6.3.10 LZ78Y prediction estimate, bits per symbol. `None` for fewer than 19 symbols.
pub fn lz78y_prediction(symbols: &[u8]) -> Option<f64> {
    if symbols.len() < LZ_DEPTH + 3 || symbols.len() > MAX_SEQUENCE_LEN {
        return None;
    }
    let tally = if is_binary(symbols) {
        lz78y_tally::<BinaryTable>(symbols, LZ_MAX_DICTIONARY)
    } else {
        lz78y_tally::<SymbolTable>(symbols, LZ_MAX_DICTIONARY)
    };
    // Steps 4–10 (N = L - B - 1).
    prediction_entropy(&tally, distinct_symbols(symbols))
}

fn lz78y_tally<T: ContextTable>(symbols: &[u8], max_dictionary: usize) -> Tally {
    // Steps 1–2: one dictionary (a table per context length), size counted in contexts.
    let mut dictionary: Vec<T> = (1..=LZ_DEPTH as u32).map(T::with_length).collect();
    let mut size = 0usize;
    let mut orphans: Vec<Orphans> = (0..LZ_DEPTH).map(|_| Orphans::default()).collect();
    let mut tally = Tally::default();
    for (i, &x) in symbols.iter().enumerate().skip(LZ_DEPTH) {
        let (keys, _) = context_keys::<T, LZ_DEPTH>(symbols, i);
        // Step 3c: for j = B down to 1, the longest context with the strictly largest
        // follower count gives the prediction. Step 3a (for the next step): count s_i after
        // each context; a new context enters only while the dictionary has room.
        let mut best: Option<(u8, u32)> = None;
        if size < max_dictionary {
            let mut created = [false; LZ_DEPTH];
            let mut present = [false; LZ_DEPTH];
            let per_length = dictionary.iter_mut().zip(&keys).zip(&mut created);
            for (((table, &key), created), present) in per_length.zip(&mut present).rev() {
                let lookup = table.predict_then_count(key, x, size < max_dictionary, true);
                size += usize::from(lookup.context_created);
                *created = lookup.context_created;
                *present = lookup.prediction.is_some() || lookup.context_created;
                if let Some((y, c)) = lookup.prediction
                    && best.is_none_or(|(_, bc)| c > bc)
                {
                    best = Some((y, c));
                }
            }
            // A context created while its one-shorter suffix stayed out is an orphan.
            let longer = created.iter().zip(&keys).zip(&mut orphans).skip(1);
            for (((&was_created, &key), orphans), &shorter_present) in longer.zip(&present) {
                if was_created && !shorter_present {
                    orphans.add(key);
                }
            }
        } else {
            // The dictionary is full, so no context is created any more and the order of the
            // lookups no longer matters. Visit the lengths shortest first (a tie now goes to
            // the later, longer context, as the strict ">" of the descending scan gives) and
            // skip lengths whose context is provably absent.
            let mut shorter_absent = false;
            for ((table, &key), orphans) in dictionary.iter_mut().zip(&keys).zip(&orphans) {
                if shorter_absent && orphans.rules_out(key) {
                    continue;
                }
                let lookup = table.predict_then_count(key, x, false, true);
                shorter_absent = lookup.prediction.is_none();
                if let Some((y, c)) = lookup.prediction
                    && best.is_none_or(|(_, bc)| c >= bc)
                {
                    best = Some((y, c));
                }
            }
        }
        // Step 3d: the first prediction is for s_{B+1} (0-based), so position B only counts.
        if i > LZ_DEPTH {
            tally.record(best.map(|(y, _)| y) == Some(x));
        }
    }
    tally
}

/// MultiMMC tally with a custom MAXentries, for tests.
#[cfg(test)]
pub(super) fn multi_mmc_tally_with_cap(symbols: &[u8], max_entries: usize) -> Tally {
    if is_binary(symbols) {
        multi_mmc_tally::<BinaryTable>(symbols, max_entries)
    } else {
        multi_mmc_tally::<SymbolTable>(symbols, max_entries)
    }
}

/// LZ78Y tally with a custom maxDictionarySize, for tests.
#[cfg(test)]
pub(super) fn lz78y_tally_with_cap(symbols: &[u8], max_dictionary: usize) -> Tally {
    if is_binary(symbols) {
        lz78y_tally::<BinaryTable>(symbols, max_dictionary)
    } else {
        lz78y_tally::<SymbolTable>(symbols, max_dictionary)
    }
}
