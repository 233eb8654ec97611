//! Context tables for MultiMMC and LZ78Y: follower counts per context, dense for bits, hashed otherwise.
//!
//! Contexts are packed into a `u128` key (up to 16 symbols of up to 8 bits). Binary data use
//! dense tables indexed by the context bits (`2^d` slots); other data use hash maps with a
//! fixed, keyless hasher (no OS randomness, so results are deterministic).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Outcome of [`ContextTable::predict_then_count`].
pub(super) struct Lookup {
    /// `(most frequent follower, its count)` before counting, `None` if the context is absent.
    pub(super) prediction: Option<(u8, u32)>,
    /// A new context was stored.
    pub(super) context_created: bool,
    /// A new (context, follower) pair was stored.
    pub(super) pair_created: bool,
}

/// Per-context follower counts for one context length.
pub(super) trait ContextTable {
    /// Bits one symbol occupies in a context key.
    const SYMBOL_BITS: u32;
    fn with_length(d: u32) -> Self;
    /// Reads the prediction for `ctx`, then counts `y` after it. An absent context is created
    /// only if `new_context`; an absent (context, y) pair only if `new_pair`.
    fn predict_then_count(&mut self, ctx: u128, y: u8, new_context: bool, new_pair: bool)
    -> Lookup;
}

/// Dense table for binary data: slot `ctx` holds the counts of 0 and 1 after that context.
pub(super) struct BinaryTable(Vec<[u32; 2]>);

impl ContextTable for BinaryTable {
    const SYMBOL_BITS: u32 = 1;

    fn with_length(d: u32) -> Self {
        BinaryTable(vec![[0; 2]; 1usize << d.min(24)])
    }

    fn predict_then_count(
        &mut self,
        ctx: u128,
        y: u8,
        new_context: bool,
        new_pair: bool,
    ) -> Lookup {
        let Some(slot) = usize::try_from(ctx).ok().and_then(|i| self.0.get_mut(i)) else {
            return Lookup {
                prediction: None,
                context_created: false,
                pair_created: false,
            };
        };
        // Written without data-dependent branches: on random bits they would mispredict.
        let [c0, c1] = *slot;
        let present = (c0 | c1) != 0;
        // Ties go to the larger symbol, 1.
        let one = c1 >= c0;
        let best = if one { c1 } else { c0 };
        let prediction = present.then_some((u8::from(one), best));
        let yi = usize::from(y & 1);
        let cy = slot.get(yi).copied().unwrap_or(0);
        let allowed = new_pair && (present || new_context);
        let pair_created = cy == 0 && allowed;
        if let Some(count) = slot.get_mut(yi) {
            *count = cy + u32::from(cy > 0 || allowed);
        }
        Lookup {
            prediction,
            context_created: pair_created && !present,
            pair_created,
        }
    }
}

/// Followers of one context, with the running most-frequent one. Few followers are kept in
/// a short list; past [`DENSE_AFTER`] the list becomes a 256-slot array.
#[derive(Default)]
struct Followers {
    sparse: Vec<(u8, u32)>,
    dense: Option<Box<[u32; 256]>>,
    best: u8,
    best_count: u32,
}

/// Distinct followers beyond which a context switches to a dense array.
const DENSE_AFTER: usize = 24;

impl Followers {
    /// Counts `y`, adding it only if `new_pair`; returns whether it was added.
    fn count(&mut self, y: u8, new_pair: bool) -> bool {
        let slot = match self.dense.as_deref_mut() {
            Some(dense) => dense.get_mut(usize::from(y)),
            None => self
                .sparse
                .iter_mut()
                .find(|(s, _)| *s == y)
                .map(|(_, c)| c),
        };
        let (c, added) = match slot {
            Some(c) if *c > 0 => {
                *c += 1;
                (*c, false)
            }
            Some(c) if new_pair => {
                *c = 1;
                (1, true)
            }
            None if new_pair => {
                self.sparse.push((y, 1));
                if self.sparse.len() > DENSE_AFTER {
                    let mut dense = Box::new([0u32; 256]);
                    for &(s, c) in &self.sparse {
                        if let Some(d) = dense.get_mut(usize::from(s)) {
                            *d = c;
                        }
                    }
                    self.dense = Some(dense);
                    self.sparse = Vec::new();
                }
                (1, true)
            }
            _ => return false,
        };
        if c > self.best_count || (c == self.best_count && y > self.best) {
            self.best = y;
            self.best_count = c;
        }
        added
    }
}

/// Keyless hasher for `u128` context keys (the splitmix64 finaliser on each half).
#[derive(Default)]
struct KeyHasher(u64);

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = mix(self.0 ^ u64::from(b));
        }
    }
    fn write_u128(&mut self, v: u128) {
        self.0 = mix(self.0 ^ mix(v as u64) ^ (v >> 64) as u64);
    }
}

/// Hash-map table for non-binary data.
pub(super) struct SymbolTable(HashMap<u128, Followers, BuildHasherDefault<KeyHasher>>);

impl ContextTable for SymbolTable {
    const SYMBOL_BITS: u32 = 8;

    fn with_length(_d: u32) -> Self {
        SymbolTable(HashMap::default())
    }

    fn predict_then_count(
        &mut self,
        ctx: u128,
        y: u8,
        new_context: bool,
        new_pair: bool,
    ) -> Lookup {
        match self.0.get_mut(&ctx) {
            Some(f) => {
                let prediction = (f.best_count > 0).then_some((f.best, f.best_count));
                let pair_created = f.count(y, new_pair);
                Lookup {
                    prediction,
                    context_created: false,
                    pair_created,
                }
            }
            None => {
                let created = new_context && new_pair;
                if created {
                    let mut f = Followers::default();
                    f.count(y, true);
                    self.0.insert(ctx, f);
                }
                Lookup {
                    prediction: None,
                    context_created: created,
                    pair_created: created,
                }
            }
        }
    }
}

/// Keys of the contexts of lengths 1..=D ending just before position `i`: `keys[d - 1]`
/// packs `s[i-d..i]`. Lengths reaching before the start are left out (returns how many fit).
pub(super) fn context_keys<T: ContextTable, const D: usize>(
    symbols: &[u8],
    i: usize,
) -> ([u128; D], usize) {
    let mut keys = [0u128; D];
    let mut key = 0u128;
    let mut fit = 0;
    for (d, slot) in (1..=D).zip(keys.iter_mut()) {
        let Some(&s) = i.checked_sub(d).and_then(|j| symbols.get(j)) else {
            break;
        };
        key |= u128::from(s) << (T::SYMBOL_BITS * (d as u32 - 1));
        *slot = key;
        fit = d;
    }
    (keys, fit)
}

/// Contexts of one length that were created while their one-symbol-shorter suffix was
/// absent from its table. Any other context whose suffix is absent is itself absent, so a
/// table that can no longer grow need not be probed for it. Past a small limit the list
/// gives up and every lookup is made.
#[derive(Default)]
pub(super) struct Orphans {
    keys: Vec<u128>,
    overflowed: bool,
}

impl Orphans {
    const LIMIT: usize = 64;

    pub(super) fn add(&mut self, key: u128) {
        if self.keys.len() < Self::LIMIT {
            self.keys.push(key);
        } else {
            self.overflowed = true;
        }
    }

    /// True when a context whose suffix is absent is certainly absent.
    pub(super) fn rules_out(&self, key: u128) -> bool {
        !self.overflowed && !self.keys.contains(&key)
    }
}
