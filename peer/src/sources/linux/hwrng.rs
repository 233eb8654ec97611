//! The board's hardware random number generator (`/dev/hwrng`): one byte per sample, never trusted blindly.
//!
//! The kernel's hw_random framework exposes the SoC's generator at `/dev/hwrng` and names the
//! driver in `/sys/class/misc/hw_random/rng_current` (`bcm2835-rng` on Pi 3 and Zero 2 W,
//! `iproc-rng200` on Pi 4; `none` when no driver is bound). The generator is a black box, so
//! its bytes go through the same continuous health tests, min-entropy estimate and debiasing
//! as every other source, against a deliberately modest claim: 8-bit samples credited with
//! [`HWRNG_MIN_ENTROPY`] bits each. A stuck or biased generator trips the tests like a stuck
//! sensor; the coordinator's battery and per-peer credit cap apply as for any contribution.

use super::{DetectConfig, Detected, OpenError, SysfsError, read_text, unavailable};
use crate::sources::{EntropySource, SourceError};
use protocols::entropy::SourceSpec;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// Bits kept from each byte of the generator (all of them).
pub const HWRNG_BITS_PER_SAMPLE: u8 = 8;
/// Min-entropy claimed per byte: one bit of the ideal eight, since the design is unaudited (every
/// built-in claim stays at or under one bit per sample).
pub const HWRNG_MIN_ENTROPY: f64 = 1.0;
/// Bytes read at open to check that the device delivers and is not stuck.
const PROBE_BYTES: usize = 64;

/// The hardware generator behind `/dev/hwrng`, named `hwrng:<driver>` (or `hwrng`).
pub struct HwrngSource {
    name: String,
    path: PathBuf,
    spec: SourceSpec,
    device: File,
}

impl HwrngSource {
    /// Opens `path` and reads a few bytes to check that a generator answers and is not stuck.
    pub fn open(path: PathBuf, name: String) -> Result<Self, OpenError> {
        let spec = SourceSpec::new(HWRNG_BITS_PER_SAMPLE, HWRNG_MIN_ENTROPY)?;
        let io_error = |source| SysfsError::Io {
            path: path.clone(),
            source,
        };
        let mut device = File::open(&path).map_err(io_error)?;
        let mut probe = [0u8; PROBE_BYTES];
        read_exactly(&mut device, &mut probe).map_err(io_error)?;
        if probe.iter().all(|b| *b == probe[0]) {
            return Err(OpenError::Unsuitable(format!(
                "{} returned {PROBE_BYTES} identical bytes ({:#04x})",
                path.display(),
                probe[0]
            )));
        }
        Ok(Self {
            name,
            path,
            spec,
            device,
        })
    }
}

/// Fills `buf`, retrying short and interrupted reads; the end of the stream is an error.
fn read_exactly(device: &mut File, buf: &mut [u8]) -> io::Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        match device.read(&mut buf[filled..]) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the generator stopped delivering bytes",
                ));
            }
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

impl EntropySource for HwrngSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn spec(&self) -> SourceSpec {
        self.spec
    }

    /// Appends exactly `max` bytes, blocking while the generator refills.
    fn read_samples(&mut self, out: &mut Vec<u8>, max: usize) -> Result<(), SourceError> {
        let start = out.len();
        out.resize(start + max, 0);
        if let Err(e) = read_exactly(&mut self.device, &mut out[start..]) {
            out.truncate(start);
            return Err(unavailable(
                &self.name,
                format!("{}: {e}", self.path.display()),
            ));
        }
        Ok(())
    }
}

/// The bound driver's name from `rng_current`, `None` when the file is absent or says `none`.
fn current_driver(root: &Path) -> Result<Option<String>, SysfsError> {
    let path = root.join("sys/class/misc/hw_random/rng_current");
    if !path.exists() {
        return Ok(None);
    }
    let driver = read_text(&path)?.trim().to_owned();
    Ok((!driver.is_empty() && driver != "none").then_some(driver))
}

pub(super) fn probe(config: &DetectConfig, found: &mut Detected) {
    let device = config.root.join("dev/hwrng");
    if !device.exists() {
        found.skip("hwrng", format!("{} does not exist", device.display()));
        return;
    }
    let driver_file_present = config
        .root
        .join("sys/class/misc/hw_random/rng_current")
        .exists();
    let name = match current_driver(&config.root) {
        Ok(Some(driver)) => format!("hwrng:{driver}"),
        Ok(None) if driver_file_present => {
            found.skip(
                "hwrng",
                "no hardware RNG driver is bound (rng_current is none)",
            );
            return;
        }
        Ok(None) => "hwrng".to_owned(),
        Err(e) => {
            found.skip("hwrng", e);
            return;
        }
    };
    match HwrngSource::open(device, name.clone()) {
        Ok(source) => found.add(Box::new(source)),
        Err(e) => found.skip(&name, e),
    }
}
