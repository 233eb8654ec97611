//! The coordinator's only readings of the outside world that are not messages: the wall clock
//! and the OS random generator. The core (`crate::core`) never calls these; its driver does and
//! passes the values in.

use rand_core::Rng;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Fills a buffer from the OS generator.
pub(crate) fn os_random<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    rand_core::UnwrapErr(rand::rngs::SysRng).fill_bytes(&mut out);
    out
}
