//! The lab tools' place in a build without the `lab` feature (the device packages): `bench`,
//! `simulate` and the hidden `completions` and `man` still parse, whatever follows them, and
//! refuse with a line saying how to get them (docs/decisions/0044, 0047).

/// Whatever was given after a left-out subcommand; never read.
#[derive(Debug, clap::Args)]
pub struct LeftOut {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    _args: Vec<std::ffi::OsString>,
}

/// Refuses a lab subcommand this binary was built without.
pub fn left_out(subcommand: &str) -> anyhow::Result<()> {
    anyhow::bail!(
        "`{subcommand}` is a lab tool and this entroshard was built without it (the device build, \
         --no-default-features); build with the `lab` feature (on by default: cargo build --release) \
         to run it"
    )
}
