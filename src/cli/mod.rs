//! Subcommand implementations; `main.rs` only parses and dispatches.

pub mod coordinator;
#[cfg(feature = "lab")]
pub mod docs;
pub mod entropy;
#[cfg(not(feature = "lab"))]
pub mod lab;
pub mod peer;
pub mod requester;
#[cfg(feature = "lab")]
pub mod simulate;
pub mod systemd;
pub mod tunnel;
mod written;

use written::Written;

/// Log output format.
#[derive(Debug, Clone, Copy, clap::ValueEnum, Default)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Human,
    /// One JSON object per line.
    Json,
}

/// Installs the tracing subscriber (RUST_LOG overrides the default `info`). Human lines carry
/// ANSI colours only when standard error is a terminal, never into a file or a pipe.
pub fn init_tracing(format: LogFormat) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
