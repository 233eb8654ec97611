//! Tests for external feeds: files, FIFOs and configuration errors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use std::io::Write;

fn config(path: impl Into<PathBuf>, bits: u8, h: f64) -> FeedConfig {
    FeedConfig {
        path: path.into(),
        bits_per_sample: bits,
        min_entropy_per_sample: h,
    }
}

#[test]
fn a_file_feed_reads_its_bytes_then_reports_exhaustion() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("noise.bin");
    std::fs::write(&path, [1u8, 2, 3, 4, 5, 6, 7, 8, 9, 10]).unwrap();
    let mut feed = FeedSource::open(&config(&path, 8, 2.0)).unwrap();
    assert_eq!(feed.name(), format!("feed:{}", path.display()));
    assert_eq!(feed.spec().bits_per_sample(), 8);

    let mut out = Vec::new();
    feed.read_samples(&mut out, 4).unwrap();
    assert_eq!(out, [1, 2, 3, 4]);
    feed.read_samples(&mut out, 100).unwrap();
    assert_eq!(out, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    let err = feed.read_samples(&mut out, 100).unwrap_err();
    let SourceError::Unavailable { reason, .. } = err;
    assert!(reason.contains("exhausted"), "{reason}");
    assert!(
        feed.read_samples(&mut out, 1).is_err(),
        "exhaustion is sticky"
    );
}

#[test]
fn an_empty_file_is_exhausted_on_the_first_read() {
    let file = tempfile::NamedTempFile::new().unwrap();
    let mut feed = FeedSource::open(&config(file.path(), 1, 0.5)).unwrap();
    assert!(feed.read_samples(&mut Vec::new(), 8).is_err());
}

#[test]
fn feed_bytes_are_masked_to_the_configured_width() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(&[0xff, 0x12, 0x80]).unwrap();
    let mut feed = FeedSource::open(&config(file.path(), 2, 0.5)).unwrap();
    let mut out = Vec::new();
    feed.read_samples(&mut out, 3).unwrap();
    assert_eq!(out, [3, 2, 0]);
}

#[test]
fn invalid_claims_missing_paths_and_directories_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f");
    std::fs::write(&file, "x").unwrap();
    assert!(matches!(
        FeedSource::open(&config(&file, 0, 0.5)),
        Err(FeedError::Spec(_))
    ));
    assert!(matches!(
        FeedSource::open(&config(&file, 1, 1.5)),
        Err(FeedError::Spec(_))
    ));
    assert!(matches!(
        FeedSource::open(&config(dir.path().join("missing"), 8, 1.0)),
        Err(FeedError::Io { .. })
    ));
    assert!(matches!(
        FeedSource::open(&config(dir.path(), 8, 1.0)),
        Err(FeedError::NotReadable { .. })
    ));
}

#[test]
fn stdin_is_named_feed_dash_and_opens_without_reading() {
    let feed = FeedSource::open(&config("-", 8, 1.0)).unwrap();
    assert_eq!(feed.name(), "feed:-");
}

#[test]
fn a_fifo_feed_blocks_for_data_and_survives_its_writer_closing() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    if !made.map(|s| s.success()).unwrap_or(false) {
        eprintln!("mkfifo unavailable; skipping");
        return;
    }
    let mut feed = FeedSource::open(&config(&fifo, 8, 1.0)).unwrap();
    let writer_path = fifo.clone();
    let writer = std::thread::spawn(move || {
        for chunk in [[7u8, 8, 9], [10, 11, 12]] {
            let mut w = std::fs::OpenOptions::new()
                .write(true)
                .open(&writer_path)
                .unwrap();
            w.write_all(&chunk).unwrap();
        }
    });
    let mut out = Vec::new();
    while out.len() < 6 {
        let want = 6 - out.len();
        feed.read_samples(&mut out, want).unwrap();
    }
    writer.join().unwrap();
    assert_eq!(out, [7, 8, 9, 10, 11, 12]);
}

#[test]
fn feeds_in_the_detect_config_are_offered_or_skipped() {
    use crate::sources::linux::{DetectConfig, detect};
    let dir = tempfile::tempdir().unwrap();
    let present = dir.path().join("feed.bin");
    std::fs::write(&present, "abc").unwrap();
    let absent = dir.path().join("absent.bin");
    let config = DetectConfig {
        root: dir.path().to_owned(),
        jitter: false,
        feeds: vec![config(&present, 8, 1.0), config(&absent, 8, 1.0)],
        ..DetectConfig::default()
    };
    let (sources, skipped) = detect(&config);
    let names: Vec<&str> = sources.iter().map(|s| s.name()).collect();
    assert_eq!(names, [FeedSource::name_for(&present)]);
    assert!(
        skipped
            .iter()
            .any(|s| s.name == FeedSource::name_for(&absent))
    );
}
