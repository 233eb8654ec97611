//! External feeds: raw bytes from a file, FIFO, character device or stdin (`-`), one sample per byte.
//!
//! The operator configures the sample width and the min-entropy claim (e.g. for a USB noise
//! diode behind a FIFO); each byte is masked to its low `bits_per_sample` bits. A regular file is
//! read once: when it is used up the source reports [`SourceError::Unavailable`]. A FIFO,
//! character device or stdin blocks until data arrives; a FIFO whose writers all closed is
//! reopened (blocking until the next writer), while end of stdin or of a device is final.

use super::{EntropySource, SourceError};
use protocols::entropy::SourceSpec;
use protocols::entropy::health::SpecError;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// One configured external feed.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedConfig {
    /// File, FIFO or device to read, or `-` for standard input.
    pub path: PathBuf,
    /// Significant low bits of each byte, 1..=8.
    pub bits_per_sample: u8,
    /// Min-entropy the operator claims per sample.
    pub min_entropy_per_sample: f64,
}

/// Why a feed could not be opened.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum FeedError {
    /// The configured width or claim is invalid.
    #[error("invalid feed spec: {0}")]
    Spec(#[from] SpecError),
    /// The path could not be inspected or opened.
    #[error("cannot open feed {}: {source}", path.display())]
    Io {
        /// The feed path.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The path is a directory (or another thing that yields no bytes).
    #[error("feed {} is not a file, FIFO, device or stdin", path.display())]
    NotReadable {
        /// The feed path.
        path: PathBuf,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FeedKind {
    /// A regular file: read to its end, then exhausted.
    File,
    /// A named pipe: blocks for data, reopened when its writers go away.
    Fifo,
    /// A character device or stdin: blocks for data, end of stream is final.
    Stream,
}

/// A source reading bytes from an external feed, named `feed:<path>`.
pub struct FeedSource {
    name: String,
    path: PathBuf,
    spec: SourceSpec,
    kind: FeedKind,
    reader: Option<Box<dyn Read + Send>>,
    exhausted: bool,
}

impl std::fmt::Debug for FeedSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeedSource")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("exhausted", &self.exhausted)
            .finish_non_exhaustive()
    }
}

impl FeedSource {
    /// The source name for a feed path.
    pub fn name_for(path: &Path) -> String {
        format!("feed:{}", path.display())
    }

    /// Validates the claim and the path. Regular files are opened now; a FIFO is opened on
    /// the first read (opening one blocks until a writer appears).
    pub fn open(config: &FeedConfig) -> Result<Self, FeedError> {
        let spec = SourceSpec::new(config.bits_per_sample, config.min_entropy_per_sample)?;
        let path = config.path.clone();
        let io_err = |source| FeedError::Io {
            path: path.clone(),
            source,
        };
        let (kind, reader): (FeedKind, Option<Box<dyn Read + Send>>) = if path.as_os_str() == "-" {
            (FeedKind::Stream, Some(Box::new(io::stdin())))
        } else {
            let file_type = std::fs::metadata(&path).map_err(io_err)?.file_type();
            if file_type.is_file() {
                (
                    FeedKind::File,
                    Some(Box::new(File::open(&path).map_err(io_err)?)),
                )
            } else if file_type.is_fifo() {
                (FeedKind::Fifo, None)
            } else if file_type.is_char_device() {
                (
                    FeedKind::Stream,
                    Some(Box::new(File::open(&path).map_err(io_err)?)),
                )
            } else {
                return Err(FeedError::NotReadable { path });
            }
        };
        Ok(Self {
            name: Self::name_for(&path),
            path,
            spec,
            kind,
            reader,
            exhausted: false,
        })
    }

    fn unavailable(&self, reason: impl std::fmt::Display) -> SourceError {
        SourceError::Unavailable {
            source_name: self.name.clone(),
            reason: reason.to_string(),
        }
    }

    /// Reads once into `buf`, (re)opening a FIFO first; `Ok(0)` means end of stream.
    fn read_once(&mut self, buf: &mut [u8]) -> Result<usize, SourceError> {
        if self.reader.is_none() {
            let file = File::open(&self.path).map_err(|e| self.unavailable(e))?;
            self.reader = Some(Box::new(file));
        }
        let Some(reader) = self.reader.as_mut() else {
            return Ok(0);
        };
        loop {
            match reader.read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.unavailable(e)),
            }
        }
    }
}

impl EntropySource for FeedSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn spec(&self) -> SourceSpec {
        self.spec
    }

    /// A regular file fills `max` unless it ends first; a FIFO, device or stdin returns after
    /// the first read that yields data (blocking until then). Once a file or stream has ended
    /// and nothing was read, returns [`SourceError::Unavailable`].
    fn read_samples(&mut self, out: &mut Vec<u8>, max: usize) -> Result<(), SourceError> {
        if self.exhausted {
            return Err(self.unavailable("feed exhausted"));
        }
        let mut buf = vec![0u8; max];
        let mut filled = 0;
        while filled < max {
            let n = self.read_once(&mut buf[filled..])?;
            if n == 0 {
                match self.kind {
                    FeedKind::Fifo if filled == 0 => self.reader = None,
                    FeedKind::Fifo => {
                        self.reader = None;
                        break;
                    }
                    FeedKind::File | FeedKind::Stream => {
                        self.exhausted = true;
                        self.reader = None;
                        break;
                    }
                }
                continue;
            }
            filled += n;
            if self.kind != FeedKind::File {
                break;
            }
        }
        if filled == 0 && self.exhausted && max > 0 {
            return Err(self.unavailable("feed exhausted"));
        }
        let mask = self.spec.sample_mask();
        out.extend(buf[..filled].iter().map(|b| b & mask));
        Ok(())
    }
}

#[cfg(test)]
#[path = "feed_tests.rs"]
mod tests;
