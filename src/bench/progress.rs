//! The bench's progress on stderr: a bar on a terminal, plain `[bench]` lines otherwise, and
//! notes (a slow sample, a failed part) that never disturb the bar.

use super::BenchArgs;
use std::time::Duration;

/// The progress bar on a terminal; unset when stderr is not one (plain `[bench]` lines then).
pub(super) static BAR: std::sync::OnceLock<indicatif::ProgressBar> = std::sync::OnceLock::new();

/// Starts the bar when stderr is a terminal, sized to the steps `args` will take.
pub(super) fn start_progress(args: &BenchArgs) {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return;
    }
    let steps = 10 + if args.no_large { 0 } else { 4 } + u64::from(args.sessions > 0);
    let bar = indicatif::ProgressBar::new(steps);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{spinner} [{bar:24}] {pos}/{len} {elapsed_precise} {msg}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    let _ = BAR.set(bar);
}

/// One step of the bench: the bar moves on, or a plain line is written.
pub(super) fn progress(line: &str) {
    match BAR.get() {
        Some(bar) => {
            bar.inc(1);
            bar.set_message(line.to_string());
        }
        None => eprintln!("[bench] {line}"),
    }
}

/// A note beside the steps (a slow sample, say): above the bar, or a plain line.
pub(super) fn note(line: &str) {
    match BAR.get() {
        Some(bar) => bar.println(format!("[bench] {line}")),
        None => eprintln!("[bench] {line}"),
    }
}
