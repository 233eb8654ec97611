//! Sorted-suffix LCP arrays for the t-Tuple and LRS estimators, in about `4.5 n` bytes beside the text.
//!
//! Either route builds the LCP array in the one `u32` array of `n` entries that held the
//! sorted positions. Besides it: packed bits (`n / 8` bytes) for the window route; type bits
//! (`n / 8` bytes), per-level bucket offsets (8 bytes per distinct symbol or name, a few
//! hundred KiB on real data) and PLCP samples (`n / 2` bytes) for SA-IS.
//!
//! * Bit strings whose repeats are all shorter than 64 bits (random data): positions are
//!   ordered by their 64-bit windows, read from a packed copy of the bits (`n / 8` bytes)
//!   and never stored: a counting pass on the top 16 bits distributes the positions into
//!   buckets, and each bucket is sorted by whole windows. `O(n log n)` in the worst case,
//!   a few comparisons per position on random data. Adjacent windows give the LCP.
//! * Everything else: SA-IS (Nong, Zhang and Chan, 2009) with an implicit sentinel smaller
//!   than every symbol, `O(n)`. It classifies suffixes as S/L-type (one bit each), places the
//!   LMS suffixes, induce-sorts, names the LMS substrings, recurses on the reduced string
//!   when names repeat, and induces again from the sorted LMS suffixes. As in Nong's own
//!   implementation, the sorted LMS suffixes, their names, the reduced string and its suffix
//!   array all live inside the suffix array being built (there are at most `n / 2` LMS
//!   suffixes); each level adds only its type bits and its bucket offsets. The text is read
//!   as it is (`u8` symbols); reduced strings hold `u32` names.
//!   The LCP array then comes from the permuted LCP array PLCP (Kärkkäinen, Manzini and
//!   Puglisi, 2009) kept at one text position in [`PLCP_SAMPLE`] (`n / 2` bytes):
//!   `PLCP[i + 1] >= PLCP[i] - 1`, so a sample bounds the next positions' values from
//!   below and each LCP is finished by direct comparison, at most `2 · PLCP_SAMPLE · n`
//!   symbol comparisons in all, a few per suffix on ordinary data.
//!
//! For 8 million bits the live peak is 32 MiB (window route, random bits) or 34 MiB (SA-IS,
//! random-walk bytes) beside the text, where 64-bit keys with a radix buffer, or a `u32`
//! copy of the text with SA-IS's own arrays and Kasai's rank array, took 122 and 166 MiB.
//! Indices are `u32`; callers keep inputs below `u32::MAX`.

/// Marks an empty suffix-array slot during induced sorting.
const EMPTY: u32 = u32::MAX;
/// Below this length a comparison sort is used (simpler and just as fast).
const NAIVE_BELOW: usize = 32;
/// One text position in `PLCP_SAMPLE` keeps its permuted LCP value while the LCP array is
/// built: `4 n / PLCP_SAMPLE` bytes, about `PLCP_SAMPLE / 2` extra symbol comparisons per
/// suffix on ordinary data, `2 · PLCP_SAMPLE · n` in all at worst.
const PLCP_SAMPLE: usize = 8;
/// The window route buckets positions by this many leading bits of their window.
const BUCKET_BITS: u32 = 16;
/// Window-route buckets up to this size are sorted on cached keys (a 64 KiB buffer); larger
/// ones, which only skewed bit strings produce, recompute keys in each comparison.
const SORT_BUFFER: usize = 1 << 12;

/// The LCP array of `text` in suffix order: entry `i` is the longest common prefix of the
/// `i`-th and `(i-1)`-th smallest suffixes (entry 0 is 0). `None` if `text` is longer than
/// `u32::MAX - 1`. Bit strings whose repeats are all shorter than 64 bits take a faster
/// route (sorting by 64-bit windows); everything else goes through SA-IS and the sampled
/// PLCP.
pub(super) fn sorted_lcp(text: &[u8]) -> Option<Vec<u32>> {
    if text.len() >= u32::MAX as usize {
        return None;
    }
    if text.iter().all(|&b| b <= 1)
        && let Some(lcp) = binary_window_lcp(text, BUCKET_BITS, SORT_BUFFER)
    {
        return Some(lcp);
    }
    let mut array = suffix_array(text)?;
    lcp_over_suffix_array(text, &mut array, PLCP_SAMPLE);
    Some(array)
}

/// Suffix array of `text`: suffix start positions in lexicographic order (a proper prefix
/// sorts first). `None` if `text` is longer than `u32::MAX - 1`.
pub(super) fn suffix_array(text: &[u8]) -> Option<Vec<u32>> {
    if text.len() >= u32::MAX as usize {
        return None;
    }
    let upper = text.iter().copied().max().unwrap_or(0);
    let mut sa = vec![EMPTY; text.len()];
    sa_is(text, usize::from(upper), &mut sa);
    Some(sa)
}

/// Suffix array and LCP array of `text` (`lcp[i]` is the longest common prefix of suffixes
/// `sa[i - 1]` and `sa[i]`, `lcp[0] = 0`), the LCP computed with permuted-LCP samples every
/// `sample` positions.
#[cfg(test)]
pub(super) fn suffix_and_lcp(text: &[u8], sample: usize) -> Option<(Vec<u32>, Vec<u32>)> {
    let sa = suffix_array(text)?;
    let mut lcp = sa.clone();
    lcp_over_suffix_array(text, &mut lcp, sample);
    Some((sa, lcp))
}

/// The window-sort route for bit strings with `bucket_bits` leading bits per bucket (0 to
/// 16) and cached keys for buckets up to `sort_buffer` entries, exposed so tests can check
/// it on its own: `None` when some repeat is 64 bits or longer.
#[cfg(test)]
pub(super) fn binary_window_lcp_for_test(
    bits: &[u8],
    bucket_bits: u32,
    sort_buffer: usize,
) -> Option<Vec<u32>> {
    binary_window_lcp(bits, bucket_bits.min(BUCKET_BITS), sort_buffer)
}

/// Sorted-order LCP array of a bit string from its 64-bit windows, or `None` when two full
/// windows are equal (some repeat is 64 bits or longer, so 64 bits cannot order them).
///
/// Position `i` is keyed by bits `i..i+64` packed most significant first, zero-padded past
/// the end, with its true length `min(64, n - i)`. Ordering by (key, length) is suffix order:
/// keys differing within both lengths differ at the first differing bit; otherwise one suffix
/// is a prefix of the other's window and the shorter sorts first. Adjacent LCPs are then
/// `min(leading_zeros(a ^ b), len_a, len_b)`.
///
/// The positions are first distributed by the top `bucket_bits` bits of their key (a
/// counting sort, reading positions in text order), then each bucket is sorted by
/// (key, length); keys are recomputed from the packed bits, and cached only for a bucket of
/// at most `sort_buffer` entries. A bucket holding two equal full windows ends the route at
/// once.
fn binary_window_lcp(bits: &[u8], bucket_bits: u32, sort_buffer: usize) -> Option<Vec<u32>> {
    let n = bits.len();
    let mut words = vec![0u64; n.div_ceil(64)];
    for (word, chunk) in words.iter_mut().zip(bits.chunks(64)) {
        *word = chunk
            .iter()
            .enumerate()
            .fold(0u64, |acc, (k, &b)| acc | (u64::from(b & 1) << (63 - k)));
    }
    let window = |i: usize| -> u64 {
        let (w, r) = (i / 64, i % 64);
        let high = words.get(w).copied().unwrap_or(0);
        if r == 0 {
            high
        } else {
            (high << r) | (words.get(w + 1).copied().unwrap_or(0) >> (64 - r))
        }
    };
    let length = |i: usize| n.saturating_sub(i).min(64) as u32;
    let bucket_of = |i: usize| window(i).checked_shr(64 - bucket_bits).unwrap_or(0) as usize;

    // `start[b]..start[b + 1]` is bucket b's range in `order`.
    let buckets = 1usize << bucket_bits;
    let mut start = vec![0u32; buckets + 1];
    for i in 0..n {
        if let Some(count) = start.get_mut(bucket_of(i) + 1) {
            *count += 1;
        }
    }
    for b in 0..buckets {
        let before = start.get(b).copied().unwrap_or(0);
        if let Some(slot) = start.get_mut(b + 1) {
            *slot += before;
        }
    }
    let mut order = vec![0u32; n];
    let mut next = start.clone();
    for i in 0..n {
        if let Some(slot) = next.get_mut(bucket_of(i)) {
            if let Some(out) = order.get_mut(*slot as usize) {
                *out = i as u32;
            }
            *slot += 1;
        }
    }
    drop(next);
    // Buckets up to `sort_buffer` entries are sorted on cached (key, length) pairs.
    let mut cached: Vec<(u64, u32, u32)> = Vec::new();
    for range in start.windows(2) {
        let Some(bucket) = order.get_mut(range[0] as usize..range[1] as usize) else {
            continue;
        };
        let repeat = if bucket.len() <= sort_buffer {
            cached.clear();
            cached.extend(
                bucket
                    .iter()
                    .map(|&p| (window(p as usize), length(p as usize), p)),
            );
            cached.sort_unstable();
            for (slot, &(_, _, p)) in bucket.iter_mut().zip(&cached) {
                *slot = p;
            }
            cached
                .windows(2)
                .any(|pair| pair[0].0 == pair[1].0 && pair[0].1 == 64 && pair[1].1 == 64)
        } else {
            bucket.sort_unstable_by_key(|&p| (window(p as usize), length(p as usize)));
            bucket.windows(2).any(|pair| {
                let (a, b) = (pair[0] as usize, pair[1] as usize);
                length(a) == 64 && length(b) == 64 && window(a) == window(b)
            })
        };
        if repeat {
            return None;
        }
    }
    // Overwrite each position with its LCP against the position before it.
    let mut prev: Option<(u64, u32)> = None;
    for slot in order.iter_mut() {
        let i = *slot as usize;
        let (key, len) = (window(i), length(i));
        *slot = prev.map_or(0, |(pk, plen)| {
            (pk ^ key).leading_zeros().min(plen).min(len)
        });
        prev = Some((key, len));
    }
    Some(order)
}

/// Turns the suffix array `sa` of `text` into its LCP array, in place: entry `i` becomes the
/// longest common prefix of suffixes `sa[i - 1]` and `sa[i]` (entry 0 becomes 0).
///
/// `PLCP[j]`, the LCP of suffix `j` with the suffix just before it in `sa` (`Φ[j]`), satisfies
/// `PLCP[j + 1] >= PLCP[j] - 1` (Kasai et al.). First `Φ` is recorded for every `sample`-th
/// text position and their PLCP values are computed in text order, each starting from the
/// previous sample's value minus `sample` (`O(n)` comparisons in all, `4 n / sample` bytes).
/// Then, walking `sa`, suffix `j` and its predecessor share at least `PLCP[k] - (j - k)`
/// symbols, `k` the sample at or before `j`, and the rest is compared directly: per sample
/// block the comparisons stay below `sample · (PLCP[k + sample] - PLCP[k] + sample)`, so at
/// most `2 · sample · n` in all.
fn lcp_over_suffix_array(text: &[u8], sa: &mut [u32], sample: usize) {
    let sample = sample.max(1);
    let mut plcp = vec![EMPTY; text.len().div_ceil(sample)];
    for pair in sa.windows(2) {
        let (before, j) = (pair[0], pair[1] as usize);
        if j % sample == 0
            && let Some(slot) = plcp.get_mut(j / sample)
        {
            *slot = before;
        }
    }
    // The smallest suffix keeps `EMPTY` as Φ: it has no predecessor and PLCP 0.
    let mut h = 0usize;
    for (k, slot) in plcp.iter_mut().enumerate() {
        let phi = *slot;
        if phi == EMPTY {
            h = 0;
        } else {
            h += common_prefix(text, k * sample + h, phi as usize + h);
        }
        *slot = h as u32;
        h = h.saturating_sub(sample);
    }
    let mut before: Option<usize> = None;
    for slot in sa.iter_mut() {
        let j = *slot as usize;
        *slot = match before {
            None => 0,
            Some(b) => {
                let known = plcp.get(j / sample).map_or(0, |&p| p as usize);
                let lower = known.saturating_sub(j % sample);
                (lower + common_prefix(text, j + lower, b + lower)) as u32
            }
        };
        before = Some(j);
    }
}

/// Length of the common prefix of `text[a..]` and `text[b..]`.
fn common_prefix(text: &[u8], a: usize, b: usize) -> usize {
    match (text.get(a..), text.get(b..)) {
        (Some(x), Some(y)) => x.iter().zip(y).take_while(|(p, q)| p == q).count(),
        _ => 0,
    }
}

/// A symbol of a string SA-IS sorts: the text's bytes, or the names of a reduced string.
trait Symbol: Copy + Ord {
    fn index(self) -> usize;
}

impl Symbol for u8 {
    fn index(self) -> usize {
        usize::from(self)
    }
}

impl Symbol for u32 {
    fn index(self) -> usize {
        self as usize
    }
}

/// One bit per suffix: set for S-type.
struct TypeBits(Vec<u64>);

impl TypeBits {
    fn new(len: usize) -> Self {
        TypeBits(vec![0; len.div_ceil(64)])
    }

    fn set(&mut self, i: usize) {
        if let Some(word) = self.0.get_mut(i / 64) {
            *word |= 1 << (i % 64);
        }
    }

    fn is_s(&self, i: usize) -> bool {
        self.0.get(i / 64).is_some_and(|w| (w >> (i % 64)) & 1 == 1)
    }

    /// Leftmost-S: S-type with an L-type suffix before it.
    fn is_lms(&self, i: usize) -> bool {
        i > 0 && self.is_s(i) && !self.is_s(i - 1)
    }
}

/// Writes the suffix array of `s` (every symbol `<= upper`) into `sa` (`sa.len() == s.len()`).
///
/// The slice indexing here is in bounds by construction: symbols index the `upper + 2`
/// bucket arrays (`c + 1 <= upper + 1`), bucket offsets are prefix sums of symbol counts and
/// so stay within `0..=n` while each bucket receives at most its count of suffixes,
/// suffix-array entries other than `EMPTY` are positions `< n`, names are `< m`, and the
/// `m <= n / 2` LMS suffixes keep `m + p / 2 < n` for every LMS position `p`. The property
/// tests compare the result with a direct sort.
fn sa_is<S: Symbol>(s: &[S], upper: usize, sa: &mut [u32]) {
    let n = s.len();
    if n < NAIVE_BELOW {
        for (i, slot) in sa.iter_mut().enumerate() {
            *slot = i as u32;
        }
        sa.sort_unstable_by(|&a, &b| s[a as usize..].cmp(&s[b as usize..]));
        return;
    }
    // Suffix types: S-type if smaller than the next suffix. The last suffix is L-type
    // because the implicit sentinel after it is smaller than every symbol.
    let mut types = TypeBits::new(n);
    let mut next_is_s = false;
    for i in (0..n - 1).rev() {
        let is_s = match s[i].cmp(&s[i + 1]) {
            std::cmp::Ordering::Less => true,
            std::cmp::Ordering::Equal => next_is_s,
            std::cmp::Ordering::Greater => false,
        };
        if is_s {
            types.set(i);
        }
        next_is_s = is_s;
    }
    // Bucket c is `bucket[c]..bucket[c + 1]`; `next` holds the moving insertion points.
    let mut bucket = vec![0u32; upper + 2];
    for &c in s {
        bucket[c.index() + 1] += 1;
    }
    for c in 0..=upper {
        bucket[c + 1] += bucket[c];
    }
    let mut next = bucket.clone();

    // Stage 1: LMS suffixes in text order at their bucket ends, then induce. This sorts the
    // LMS substrings (an LMS position up to and including the next one).
    sa.fill(EMPTY);
    let mut m = 0usize;
    for (i, &symbol) in s.iter().enumerate().skip(1) {
        if types.is_lms(i) {
            let c = symbol.index() + 1;
            next[c] -= 1;
            sa[next[c] as usize] = i as u32;
            m += 1;
        }
    }
    induce(s, &types, &bucket, &mut next, sa);
    if m == 0 {
        return;
    }

    // Gather the sorted LMS suffixes in `sa[..m]` (reading ahead of the writes).
    let mut filled = 0;
    for i in 0..n {
        let v = sa[i];
        if v != EMPTY && types.is_lms(v as usize) {
            sa[filled] = v;
            filled += 1;
        }
    }
    // Name the LMS substrings in sorted order, equal substrings equally; the name of the
    // LMS suffix at `p` goes to `sa[m + p / 2]` (LMS positions are at least 2 apart).
    sa[m..].fill(EMPTY);
    let mut name = 0u32;
    for k in 0..m {
        let p = sa[k] as usize;
        if k > 0 && !lms_substrings_equal(s, &types, sa[k - 1] as usize, p) {
            name += 1;
        }
        sa[m + p / 2] = name;
    }
    // The reduced string (names in text order) goes to `sa[n - m..]`.
    let mut to = n;
    for i in (m..n).rev() {
        if sa[i] != EMPTY {
            to -= 1;
            sa[to] = sa[i];
        }
    }
    let names = name as usize + 1;
    {
        let (head, reduced) = sa.split_at_mut(n - m);
        let reduced_sa = &mut head[..m];
        if names < m {
            sa_is(&*reduced, names - 1, reduced_sa);
        } else {
            // All names distinct: the names are the ranks.
            for (k, &r) in reduced.iter().enumerate() {
                reduced_sa[r as usize] = k as u32;
            }
        }
    }
    // Map reduced-string ranks back to LMS positions, stored in text order over the (no
    // longer needed) reduced string.
    let mut at = n - m;
    for i in 1..n {
        if types.is_lms(i) {
            sa[at] = i as u32;
            at += 1;
        }
    }
    for k in 0..m {
        sa[k] = sa[n - m + sa[k] as usize];
    }

    // Stage 2: the sorted LMS suffixes at their bucket ends (last first, so each lands at or
    // after its current slot), then induce the whole suffix array.
    sa[m..].fill(EMPTY);
    next.copy_from_slice(&bucket);
    for k in (0..m).rev() {
        let p = sa[k];
        sa[k] = EMPTY;
        let c = s[p as usize].index() + 1;
        next[c] -= 1;
        sa[next[c] as usize] = p;
    }
    induce(s, &types, &bucket, &mut next, sa);
}

/// Induced sorting from the LMS suffixes already placed at their bucket ends: L-type
/// suffixes left to right from the bucket starts (beginning with the last suffix, which the
/// implicit sentinel induces), then S-type suffixes right to left from the bucket ends.
/// Indexing is in bounds for the reasons given at [`sa_is`].
fn induce<S: Symbol>(s: &[S], types: &TypeBits, bucket: &[u32], next: &mut [u32], sa: &mut [u32]) {
    let n = s.len();
    next.copy_from_slice(bucket);
    let last = s[n - 1].index();
    sa[next[last] as usize] = (n - 1) as u32;
    next[last] += 1;
    for i in 0..n {
        let v = sa[i];
        if v != EMPTY && v >= 1 && !types.is_s(v as usize - 1) {
            let c = s[v as usize - 1].index();
            sa[next[c] as usize] = v - 1;
            next[c] += 1;
        }
    }
    next.copy_from_slice(bucket);
    for i in (0..n).rev() {
        let v = sa[i];
        if v != EMPTY && v >= 1 && types.is_s(v as usize - 1) {
            let c = s[v as usize - 1].index() + 1;
            next[c] -= 1;
            sa[next[c] as usize] = v - 1;
        }
    }
}

/// Whether the LMS substrings starting at `a` and `b` (each up to and including the next LMS
/// position) are equal. Running into the end of the text (the sentinel, which is unique)
/// makes them differ. The comparison stops within the substring at `a`, so naming all LMS
/// substrings costs `O(n)`.
fn lms_substrings_equal<S: Symbol>(s: &[S], types: &TypeBits, a: usize, b: usize) -> bool {
    let mut d = 0;
    loop {
        let (x, y) = (a + d, b + d);
        match (s.get(x), s.get(y)) {
            (Some(p), Some(q)) if p == q && types.is_s(x) == types.is_s(y) => {}
            _ => return false,
        }
        // Equal symbols and types so far, so `y` is LMS exactly when `x` is.
        if d > 0 && types.is_lms(x) {
            return true;
        }
        d += 1;
    }
}
