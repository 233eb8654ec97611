//! Measures one durable `put` (median and spread over N puts): `cargo run --release --example put_latency [N] [DIR]`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use peer::store::{ShareStore, ack_writer_share};
use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u64 = args
        .next()
        .map_or(200, |a| a.parse().expect("N must be a number"));
    let dir = match args.next() {
        Some(d) => tempfile::tempdir_in(d).unwrap(),
        None => tempfile::tempdir().unwrap(),
    };
    let path = dir.path().join("shares.redb");

    let t = Instant::now();
    let store = ShareStore::open(&path, u32::MAX).unwrap();
    let create = t.elapsed();

    let mut micros: Vec<u128> = (0..n)
        .map(|i| {
            let share = ack_writer_share(i);
            let t = Instant::now();
            store.put(&share, u64::MAX).unwrap();
            t.elapsed().as_micros()
        })
        .collect();
    micros.sort_unstable();
    let pct = |p: f64| micros[((micros.len() - 1) as f64 * p).round() as usize];

    let t = Instant::now();
    let got = store.get(
        &ack_writer_share(n / 2).slot.session,
        ack_writer_share(n / 2).slot.epoch,
    );
    let get = t.elapsed();
    assert!(got.unwrap().is_some());
    drop(store);
    let t = Instant::now();
    let store = ShareStore::open(&path, u32::MAX).unwrap();
    let reopen = t.elapsed();
    assert_eq!(u64::from(store.len().unwrap()), n);

    println!("store on {}", dir.path().display());
    println!(
        "durable put over {n} puts: median {} us, p10 {} us, p90 {} us, max {} us",
        pct(0.5),
        pct(0.1),
        pct(0.9),
        pct(1.0)
    );
    println!("create {create:?}, one get {get:?}, reopen of {n} shares {reopen:?}");
}
