//! Size bounds for generated test values: proptest's default collections (up to 100 elements,
//! nested) make one wire value megabytes and a round-trip property tens of seconds.

use proptest::prelude::*;

/// A vector of up to eight arbitrary elements: enough to cover empty, one and many.
pub fn small_vec<T: Arbitrary>() -> impl Strategy<Value = Vec<T>> {
    proptest::collection::vec(any::<T>(), 0..8)
}
