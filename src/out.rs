//! Standard output for every command: a reader that went away (`| head`) ends the process
//! quietly, never with a panic; `out!`/`outln!` replace `print!`/`println!` throughout.

use std::io::Write;

/// Writes formatted text to standard output and flushes it.
pub fn write_fmt(args: std::fmt::Arguments<'_>) {
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_fmt(args).and_then(|()| stdout.flush()) {
        stop(&e);
    }
}

/// Writes bytes to standard output and flushes them.
pub fn write_bytes(bytes: &[u8]) {
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        stop(&e);
    }
}

/// Ends the process after a failed write to standard output: status 0 when the reader closed
/// the pipe (it has read what it wanted), status 1 with the reason otherwise (a full disk).
fn stop(error: &std::io::Error) -> ! {
    if error.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    eprintln!("error: writing to standard output: {error}");
    std::process::exit(1)
}

/// `print!` that ends the process quietly when standard output is a closed pipe.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::out::write_fmt(format_args!($($arg)*))
    };
}

/// `println!` that ends the process quietly when standard output is a closed pipe.
macro_rules! outln {
    () => {
        $crate::out::write_fmt(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::out::write_fmt(format_args!("{}\n", format_args!($($arg)*)))
    };
}
