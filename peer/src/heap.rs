//! Giving back to the system the heap a one-off computation freed. glibc's allocator keeps freed
//! pages in its arenas: after the first-start SP 800-90B assessment of its sources (up to a
//! million samples each through ten estimators) a peer stayed at 25–43 MiB of anonymous memory
//! for as long as it ran, against a board's budget of 4 MiB (3.8 MiB when it starts on stored
//! models). `malloc_trim(0)` hands every whole free page back; the packaged unit also fixes
//! glibc's mmap threshold so large buffers are unmapped when freed (decision 0066).

/// Hands the allocator's free pages back to the system; whether any came back. Call it after a
/// large, one-off computation, not on a hot path (it walks and locks every arena).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn release_freed() -> bool {
    // SAFETY: malloc_trim takes no pointer and reads no caller memory; glibc serialises it with
    // every other allocator call, so it is sound from any thread at any time.
    unsafe { libc::malloc_trim(0) == 1 }
}

/// Other allocators (musl's, the system's elsewhere) keep no such pages or have no such call.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn release_freed() -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn pages_freed_by_a_large_computation_are_handed_back() {
        // Many mid-sized blocks (under glibc's mmap threshold, so they live in an arena), all
        // freed but the last: the arena holds tens of MiB of free pages below a live block.
        let mut blocks: Vec<Vec<u8>> = (0..256).map(|i| vec![i as u8; 100 * 1024]).collect();
        let keep = blocks.pop();
        drop(blocks);
        assert!(
            release_freed(),
            "malloc_trim found no free page to hand back"
        );
        drop(keep);
    }
}
