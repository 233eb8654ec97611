//! Sorted-suffix LCP arrays for the t-Tuple and LRS estimators: SA-IS + Kasai, or a radix sort for bit strings.
//!
//! SA-IS (Nong, Zhang and Chan, 2009) with an implicit sentinel smaller than every symbol:
//! classify suffixes as S/L-type, place the LMS suffixes, induce-sort, name the LMS
//! substrings, recurse on the reduced string when names repeat, and induce again from the
//! sorted LMS suffixes. Indices are `u32`; callers keep inputs below `u32::MAX`.

/// Marks an empty suffix-array slot during induced sorting.
const EMPTY: u32 = u32::MAX;
/// Below this length a comparison sort is used (simpler and just as fast).
const NAIVE_BELOW: usize = 32;

/// The LCP array of `text` in suffix order: entry `i` is the longest common prefix of the
/// `i`-th and `(i-1)`-th smallest suffixes (entry 0 is 0). `None` if `text` is longer than
/// `u32::MAX - 1`. Bit strings whose repeats are all shorter than 64 bits take a faster
/// route (radix sort of 64-bit windows); everything else goes through SA-IS and Kasai.
pub(super) fn sorted_lcp(text: &[u8]) -> Option<Vec<u32>> {
    if text.len() >= u32::MAX as usize {
        return None;
    }
    if text.iter().all(|&b| b <= 1)
        && let Some(lcp) = binary_window_lcp(text)
    {
        return Some(lcp);
    }
    suffix_and_lcp(text).map(|(_, lcp)| lcp)
}

/// Suffix array and LCP array of `text`: `sa` lists suffix start positions in lexicographic
/// order (a proper prefix sorts first) and `lcp[i]` is the longest common prefix of suffixes
/// `sa[i - 1]` and `sa[i]` (`lcp[0] = 0`). `None` if `text` is longer than `u32::MAX - 1`.
pub(super) fn suffix_and_lcp(text: &[u8]) -> Option<(Vec<u32>, Vec<u32>)> {
    if text.len() >= u32::MAX as usize {
        return None;
    }
    let s: Vec<u32> = text.iter().map(|&b| u32::from(b)).collect();
    let upper = s.iter().copied().max().unwrap_or(0);
    let sa = sa_is(&s, upper as usize);
    let lcp = kasai(text, &sa);
    Some((sa, lcp))
}

/// Sorted-order LCP array of a bit string from its 64-bit windows, or `None` when two full
/// windows are equal (some repeat is 64 bits or longer, so 64 bits cannot order them).
///
/// Position `i` is keyed by bits `i..i+64` packed most significant first, zero-padded past
/// the end, with its true length `min(64, n - i)`. Ordering by (key, length) is suffix order:
/// keys differing within both lengths differ at the first differing bit; otherwise one suffix
/// is a prefix of the other's window and the shorter sorts first. Adjacent LCPs are then
/// `min(leading_zeros(a ^ b), len_a, len_b)`.
fn binary_window_lcp(bits: &[u8]) -> Option<Vec<u32>> {
    let n = bits.len();
    let bit = |i: usize| u64::from(bits.get(i).copied().unwrap_or(0));
    let mut key = (0..64).fold(0u64, |acc, i| (acc << 1) | bit(i));
    let full = n.saturating_sub(63);
    let mut keys = Vec::with_capacity(full);
    let mut tail: Vec<(u64, u32)> = Vec::with_capacity(n - full);
    for i in 0..n {
        if i < full {
            keys.push(key);
        } else {
            tail.push((key, (n - i) as u32));
        }
        key = (key << 1) | bit(i + 64);
    }
    radix_sort(&mut keys);
    tail.sort_unstable();
    // Merge the full windows (length 64) with the short tail windows.
    let mut lcp = Vec::with_capacity(n);
    let mut prev: Option<(u64, u32)> = None;
    let (mut a, mut b) = (keys.iter().peekable(), tail.iter().peekable());
    loop {
        let next = match (a.peek(), b.peek()) {
            (Some(&&k), Some(&&(tk, tl))) if (k, 64) < (tk, tl) => a.next().map(|&k| (k, 64)),
            (_, Some(_)) => b.next().copied(),
            (Some(_), None) => a.next().map(|&k| (k, 64)),
            (None, None) => break,
        };
        let Some((k, len)) = next else { break };
        let common = match prev {
            None => 0,
            Some((pk, plen)) => {
                if pk == k && plen == 64 && len == 64 {
                    return None;
                }
                (pk ^ k).leading_zeros().min(plen).min(len)
            }
        };
        lcp.push(common);
        prev = Some((k, len));
    }
    Some(lcp)
}

/// LSD radix sort of `u64` keys, one byte per pass (passes where every key shares the
/// byte are skipped).
fn radix_sort(keys: &mut Vec<u64>) {
    let mut buf = vec![0u64; keys.len()];
    for shift in (0..64).step_by(8) {
        let mut offsets = [0usize; 256];
        for &k in keys.iter() {
            offsets[((k >> shift) & 0xFF) as usize] += 1;
        }
        if offsets.contains(&keys.len()) {
            continue;
        }
        let mut total = 0;
        for slot in offsets.iter_mut() {
            let count = *slot;
            *slot = total;
            total += count;
        }
        for &k in keys.iter() {
            let digit = ((k >> shift) & 0xFF) as usize;
            if let Some(out) = buf.get_mut(offsets[digit]) {
                *out = k;
            }
            offsets[digit] += 1;
        }
        std::mem::swap(keys, &mut buf);
    }
}

/// Kasai's algorithm: LCP of adjacent suffixes in `sa`, in O(n).
fn kasai(text: &[u8], sa: &[u32]) -> Vec<u32> {
    let n = text.len();
    let mut rank = vec![0u32; n];
    for (r, &p) in sa.iter().enumerate() {
        if let Some(slot) = rank.get_mut(p as usize) {
            *slot = r as u32;
        }
    }
    let mut lcp = vec![0u32; n];
    let mut h = 0usize;
    for (i, &r) in rank.iter().enumerate() {
        let r = r as usize;
        if r == 0 {
            h = 0;
            continue;
        }
        let Some(&prev) = sa.get(r - 1) else {
            h = 0;
            continue;
        };
        let j = prev as usize;
        while let (Some(a), Some(b)) = (text.get(i + h), text.get(j + h)) {
            if a != b {
                break;
            }
            h += 1;
        }
        if let Some(slot) = lcp.get_mut(r) {
            *slot = h as u32;
        }
        h = h.saturating_sub(1);
    }
    lcp
}

/// Suffix array of `s`, every symbol `<= upper`.
///
/// The slice indexing here is in bounds by construction: symbols index the `upper + 2`
/// bucket arrays (an S-type symbol is `< upper`, so `c + 1 <= upper`), bucket offsets are
/// prefix sums of symbol counts and so stay below `n` while each bucket receives at most its
/// count of suffixes, and suffix-array entries other than `EMPTY` are positions `< n`. The
/// property tests compare the result with a direct sort.
fn sa_is(s: &[u32], upper: usize) -> Vec<u32> {
    let n = s.len();
    if n < NAIVE_BELOW {
        let mut sa: Vec<u32> = (0..n as u32).collect();
        sa.sort_by(|&a, &b| s.get(a as usize..).cmp(&s.get(b as usize..)));
        return sa;
    }
    // Suffix types: S-type (true) if smaller than the next suffix. The last suffix is L-type
    // because the implicit sentinel after it is smaller than every symbol.
    let mut ls = vec![false; n];
    for i in (0..n - 1).rev() {
        ls[i] = if s[i] == s[i + 1] {
            ls[i + 1]
        } else {
            s[i] < s[i + 1]
        };
    }
    // Bucket layout: bucket c starts at `l_start[c]`; its S-type region starts at `s_start[c]`
    // (after its L-type suffixes). `l_start` has one extra entry so `l_start[c + 1]` is the
    // end of bucket c.
    let mut l_start = vec![0u32; upper + 2];
    let mut s_start = vec![0u32; upper + 2];
    for (&c, &is_s) in s.iter().zip(&ls) {
        if is_s {
            l_start[c as usize + 1] += 1;
        } else {
            s_start[c as usize] += 1;
        }
    }
    for c in 0..=upper {
        s_start[c] += l_start[c];
        l_start[c + 1] += s_start[c];
    }

    let mut sa = vec![EMPTY; n];
    let induce = |sa: &mut Vec<u32>, lms: &[u32]| {
        sa.fill(EMPTY);
        let mut buf = s_start.clone();
        for &d in lms {
            let c = s[d as usize] as usize;
            sa[buf[c] as usize] = d;
            buf[c] += 1;
        }
        // L-type suffixes, left to right, starting with the last suffix.
        buf.copy_from_slice(&l_start);
        let last = s[n - 1] as usize;
        sa[buf[last] as usize] = (n - 1) as u32;
        buf[last] += 1;
        for i in 0..n {
            let v = sa[i];
            if v != EMPTY && v >= 1 && !ls[v as usize - 1] {
                let c = s[v as usize - 1] as usize;
                sa[buf[c] as usize] = v - 1;
                buf[c] += 1;
            }
        }
        // S-type suffixes, right to left, filled from the end of each bucket.
        buf.copy_from_slice(&l_start);
        for i in (0..n).rev() {
            let v = sa[i];
            if v != EMPTY && v >= 1 && ls[v as usize - 1] {
                let c = s[v as usize - 1] as usize + 1;
                buf[c] -= 1;
                sa[buf[c] as usize] = v - 1;
            }
        }
    };

    // LMS positions (an S-type suffix preceded by an L-type one), in text order.
    let mut lms_index = vec![EMPTY; n];
    let mut lms: Vec<u32> = Vec::new();
    for i in 1..n {
        if !ls[i - 1] && ls[i] {
            lms_index[i] = lms.len() as u32;
            lms.push(i as u32);
        }
    }
    induce(&mut sa, &lms);
    if lms.is_empty() {
        return sa;
    }

    // Name the LMS substrings in their induced order; equal substrings get equal names.
    let sorted_lms: Vec<u32> = sa
        .iter()
        .copied()
        .filter(|&v| v != EMPTY && lms_index[v as usize] != EMPTY)
        .collect();
    let m = lms.len();
    let end_of = |p: u32| -> usize {
        let k = lms_index[p as usize] as usize + 1;
        lms.get(k).map_or(n, |&e| e as usize)
    };
    let mut reduced = vec![0u32; m];
    let mut name = 0u32;
    for pair in sorted_lms.windows(2) {
        let [a, b] = [pair[0], pair[1]];
        let (len_a, len_b) = (end_of(a) - a as usize, end_of(b) - b as usize);
        // Compare the substrings including their closing LMS symbol; running into the end of
        // the text (the sentinel) makes them differ.
        let same = len_a == len_b
            && (0..=len_a).all(|k| match (s.get(a as usize + k), s.get(b as usize + k)) {
                (Some(x), Some(y)) => x == y,
                _ => false,
            });
        if !same {
            name += 1;
        }
        reduced[lms_index[b as usize] as usize] = name;
    }
    // (The first sorted LMS substring keeps name 0.)

    let order: Vec<u32> = if (name as usize) + 1 < m {
        sa_is(&reduced, name as usize)
            .iter()
            .map(|&r| lms[r as usize])
            .collect()
    } else {
        // All names distinct: the names are the ranks.
        let mut order = vec![0u32; m];
        for (k, &r) in reduced.iter().enumerate() {
            order[r as usize] = lms[k];
        }
        order
    };
    induce(&mut sa, &order);
    sa
}
