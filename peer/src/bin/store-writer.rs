//! Crash-test helper: `store-writer PATH` puts shares into the store forever, printing `ACK i` after each durable put.

use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(path) = std::env::args_os().nth(1) else {
        eprintln!("usage: store-writer PATH");
        return ExitCode::from(2);
    };
    match peer::store::run_ack_writer(Path::new(&path), std::io::stdout().lock()) {
        Ok(never) => match never {},
        Err(e) => {
            eprintln!("store-writer: {e}");
            ExitCode::FAILURE
        }
    }
}
