//! Looks for a secret's bytes where a process keeps things: every writable mapping of its memory
//! (`/proc/<pid>/mem`, which a parent may read of its child) and every file under a directory.
//! The demo uses it to show that the coordinator holds no copy of a session key after dealing.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// What one search covered, and whether it found the needle.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Searched {
    /// Regions or files read.
    pub places: usize,
    /// Bytes read.
    pub bytes: u64,
    /// How many times the needle occurred.
    pub found: usize,
}

/// Bytes read at a time; consecutive reads overlap by the needle's length less one.
const CHUNK: usize = 1 << 20;

/// Counts `needle` in `reader` from its current position up to `len` bytes.
fn count_in(reader: &mut impl Read, len: u64, needle: &[u8], into: &mut Searched) {
    let finder = memchr::memmem::Finder::new(needle);
    let keep = needle.len().saturating_sub(1);
    let mut buf = vec![0u8; CHUNK + keep];
    let mut carried = 0usize;
    let mut left = len;
    while left > 0 {
        let want = CHUNK.min(usize::try_from(left).unwrap_or(CHUNK));
        let got = match reader.read(&mut buf[carried..carried + want]) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        left = left.saturating_sub(got as u64);
        into.bytes += got as u64;
        let filled = carried + got;
        into.found += finder.find_iter(&buf[..filled]).count();
        // Carry the tail so a match across two reads is seen (and not counted twice: a match
        // lies wholly in the tail only if it is shorter than the needle, which it is not).
        carried = keep.min(filled);
        buf.copy_within(filled - carried..filled, 0);
    }
}

/// Searches every writable mapping of process `pid` for `needle`.
pub fn in_process(pid: u32, needle: &[u8]) -> std::io::Result<Searched> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps"))?;
    let mut mem = std::fs::File::open(format!("/proc/{pid}/mem"))?;
    let mut searched = Searched::default();
    for line in maps.lines() {
        let mut fields = line.split_whitespace();
        let (Some(range), Some(perms)) = (fields.next(), fields.next()) else {
            continue;
        };
        if !perms.starts_with("rw") {
            continue;
        }
        let Some((start, end)) = range.split_once('-') else {
            continue;
        };
        let (Ok(start), Ok(end)) = (u64::from_str_radix(start, 16), u64::from_str_radix(end, 16))
        else {
            continue;
        };
        if mem.seek(SeekFrom::Start(start)).is_err() {
            continue;
        }
        searched.places += 1;
        count_in(&mut mem, end.saturating_sub(start), needle, &mut searched);
    }
    Ok(searched)
}

/// Searches every file under `dir` (recursively) for `needle`.
pub fn in_files(dir: &Path, needle: &[u8]) -> std::io::Result<Searched> {
    let mut searched = Searched::default();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            if kind.is_dir() {
                pending.push(entry.path());
            } else if kind.is_file() {
                let mut f = std::fs::File::open(entry.path())?;
                let len = f.metadata()?.len();
                searched.places += 1;
                count_in(&mut f, len, needle, &mut searched);
            }
        }
    }
    Ok(searched)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_needle_is_found_in_a_file_across_read_boundaries_and_in_this_processes_memory() {
        let dir = tempfile::tempdir().unwrap();
        let needle: Vec<u8> = (0u8..32).map(|b| b.wrapping_mul(37) ^ 0xa5).collect();
        let mut data = vec![0u8; CHUNK * 2 + 100];
        // Straddling the first read's end, and once more further on.
        data[CHUNK - 10..CHUNK + 22].copy_from_slice(&needle);
        data[CHUNK + 50..CHUNK + 82].copy_from_slice(&needle);
        std::fs::write(dir.path().join("a"), &data).unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/b"), b"nothing here").unwrap();
        let files = in_files(dir.path(), &needle).unwrap();
        assert_eq!((files.places, files.found), (2, 2));
        assert_eq!(files.bytes, data.len() as u64 + 12);
        // `data` holds it twice; the heap of this process at least that often.
        let own = in_process(std::process::id(), &needle).unwrap();
        assert!(own.found >= 2, "{own:?}");
        let absent = [0x5au8; 32];
        let none = in_files(dir.path(), &absent).unwrap();
        assert_eq!(none.found, 0);
    }
}
