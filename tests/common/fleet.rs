//! The right to run a fleet of processes (a coordinator and its peers, a NAT testbed mesh, a demo,
//! a bench) on a machine of few cores: two fleets never start at once, at most two run at once,
//! and a second runs beside a first only when the machine has a core to spare, so on a busy
//! machine fleets run one at a time (docs/decisions/0070).
//!
//! Three kinds of `flock` on files in the build's test directory, so they hold across the test
//! threads of one binary and across the processes `cargo nextest` runs tests in:
//! `entroshard-fleet-start.lock` (one fleet starting), `entroshard-fleet-run-{0,1}.lock` (the
//! fleets running). A slot is asked for in that order and the start lock is released first, so no
//! two tests wait for each other in a circle.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Fleets that may run at once (each keeps about a core busy: decision 0059).
const RUN_SLOTS: usize = 2;

/// Idle CPU, in cores, over the last second, that lets a second fleet in beside a running one.
const SPARE_CORES: f64 = 1.0;

/// Per-test fleet times in the build's test directory, one line per [`FleetSlot`]: seconds held,
/// seconds waited, the test's name, when the slot was taken (Unix seconds; tab-separated).
pub const FLEET_TIMES: &str = "fleet-times.tsv";

/// A running fleet's slot: released when dropped, when it also appends how long the test waited
/// for it and held it to [`FLEET_TIMES`] (a stable libtest prints no per-test times; `.ci/run`
/// prints this file after the tests).
pub struct FleetSlot {
    _running: File,
    test: String,
    waited: Duration,
    held_since: Instant,
    taken_at: std::time::SystemTime,
}

/// The start locks of this process's fleets still starting, by test name (the test's thread is
/// named after it, under libtest and under nextest).
static STARTING: Mutex<BTreeMap<String, File>> = Mutex::new(BTreeMap::new());

/// `name` in the build's test directory.
fn tmp_path(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join(name)
}

/// The file at `path`, created if missing and never truncated, opened to be `flock`ed.
pub fn lock_file_at(path: impl AsRef<Path>) -> File {
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .unwrap()
}

fn lock_file(name: &str) -> File {
    lock_file_at(tmp_path(name))
}

fn run_lock(slot: usize) -> File {
    lock_file(&format!("entroshard-fleet-run-{slot}.lock"))
}

fn this_test() -> String {
    std::thread::current()
        .name()
        .unwrap_or("(unnamed test thread)")
        .to_string()
}

/// Waits for a [`FleetSlot`]: until no other fleet is starting, a run slot is free, and either no
/// other fleet runs or the machine has [`SPARE_CORES`] idle. The slot counts as starting until
/// [`fleet_started`] is called on this test's thread (the shared helpers call it once the fleet's
/// peers are trusted or its first session is made) or the slot is dropped.
pub fn fleet_slot() -> FleetSlot {
    let asked = Instant::now();
    let start = lock_file("entroshard-fleet-start.lock");
    start.lock().unwrap();
    let running = loop {
        if let Some(file) = (0..RUN_SLOTS).find_map(|slot| {
            let file = run_lock(slot);
            file.try_lock().is_ok().then_some(file)
        }) {
            break file;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    while fleets_running() > 1 && idle_cores(Duration::from_secs(1)) < SPARE_CORES {}
    let test = this_test();
    STARTING
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(test.clone(), start);
    FleetSlot {
        _running: running,
        test,
        waited: asked.elapsed(),
        held_since: Instant::now(),
        taken_at: std::time::SystemTime::now(),
    }
}

/// This test's fleet has started (its peers trusted, or its first session made): another fleet
/// may start. Does nothing when the fleet was marked started already or this thread holds none.
pub fn fleet_started() {
    release_start(&this_test());
}

impl FleetSlot {
    /// [`fleet_started`] for this slot, from any thread.
    pub fn started(&self) {
        release_start(&self.test);
    }
}

/// Drops `test`'s start lock, if it still holds it.
fn release_start(test: &str) {
    STARTING
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(test);
}

/// Run slots held, this process's included.
fn fleets_running() -> usize {
    (0..RUN_SLOTS)
        .filter(|slot| run_lock(*slot).try_lock().is_err())
        .count()
}

/// CPU ticks of the whole machine from `/proc/stat`: (idle and waiting for I/O, all), and the
/// number of CPUs they are summed over. `None` where there is no such file (then fleets run one
/// at a time).
fn cpu_ticks() -> Option<(u64, u64, usize)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let mut lines = stat.lines();
    let total: Vec<u64> = lines
        .next()?
        .strip_prefix("cpu ")?
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    let cpus = lines.filter(|l| l.starts_with("cpu")).count();
    // user nice system idle iowait irq softirq steal (guest time is inside user and nice).
    let all = total.iter().take(8).sum();
    let idle = total.get(3)? + total.get(4)?;
    Some((idle, all, cpus.max(1)))
}

/// Idle cores over the next `window` (0 when unknown).
fn idle_cores(window: Duration) -> f64 {
    let before = cpu_ticks();
    std::thread::sleep(window);
    match (before, cpu_ticks()) {
        (Some((idle0, all0, cpus)), Some((idle1, all1, _))) if all1 > all0 => {
            idle1.saturating_sub(idle0) as f64 / (all1 - all0) as f64 * cpus as f64
        }
        _ => 0.0,
    }
}

impl Drop for FleetSlot {
    fn drop(&mut self) {
        use std::io::Write;
        release_start(&self.test);
        let line = format!(
            "{:.1}\t{:.1}\t{}\t{:.1}\n",
            self.held_since.elapsed().as_secs_f64(),
            self.waited.as_secs_f64(),
            self.test,
            self.taken_at
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs_f64()
        );
        // One short append per line, so lines of tests ending at once do not interleave; a
        // failure to record a time fails no test.
        let _ = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(tmp_path(FLEET_TIMES))
            .and_then(|mut f| f.write_all(line.as_bytes()));
    }
}
