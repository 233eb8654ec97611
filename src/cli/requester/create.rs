//! `session create`: ask the coordinator for a session and write its ticket file; with `--wait`, ask again every second while the coordinator says it is not ready.

use super::{RequesterConfig, RequesterDir, TicketFile, connect, parse_ttl, show, write_secret};
use anyhow::Context;
use protocols::ids::NodeId;
use protocols::wire::{Refusal, SessionPolicy};
use requester::RequesterError;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Pause between two attempts while the coordinator is not ready.
pub const RETRY_EVERY: Duration = Duration::from_secs(1);

/// Options of `session create`.
#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// Shares.
    #[arg(long, default_value_t = 5)]
    pub n: u8,
    /// Threshold.
    #[arg(long, default_value_t = 3)]
    pub k: u8,
    /// Lifetime, e.g. 90s, 10m, 1h, 2d.
    #[arg(long, default_value = "1h")]
    pub ttl: String,
    /// Label.
    #[arg(long, default_value = "")]
    pub label: String,
    /// Other requesters (PeerIds) allowed to fetch.
    #[arg(long = "requester")]
    pub requesters: Vec<String>,
    /// Ticket file to write (mode 0600).
    #[arg(short, long)]
    pub output: PathBuf,
    /// While the coordinator answers "not ready", ask again every second for up to SECONDS
    /// (60 when the flag has no value), printing its reason whenever that changes. Any other
    /// refusal is final.
    #[arg(
        long,
        value_name = "SECONDS",
        num_args = 0..=1,
        default_missing_value = "60"
    )]
    pub wait: Option<u64>,
    #[command(flatten)]
    pub dir: RequesterDir,
}

/// What to do after an attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// Ask again after [`RETRY_EVERY`]; print the reason first when it is a new one.
    Retry {
        /// The coordinator's reason, when it differs from the last one printed.
        announce: Option<String>,
    },
    /// Give up with this error.
    Stop,
}

/// Whether to ask again after `error`, `waited` since the first attempt, waiting at most `wait`
/// (none: never), the last reason printed being `last_reason`. Only "not ready" is retried, and
/// only while another attempt still starts within `wait`.
pub fn after_failure(
    error: &RequesterError,
    waited: Duration,
    wait: Option<Duration>,
    last_reason: Option<&str>,
) -> Attempt {
    let (RequesterError::Refused(Refusal::NotReady(reason)), Some(wait)) = (error, wait) else {
        return Attempt::Stop;
    };
    if waited.saturating_add(RETRY_EVERY) > wait {
        return Attempt::Stop;
    }
    Attempt::Retry {
        announce: (last_reason != Some(reason.as_str())).then(|| reason.clone()),
    }
}

/// Runs `session create`.
pub(super) async fn create(args: CreateArgs) -> anyhow::Result<()> {
    let (_, client) = connect(&args.dir.data_dir).await?;
    let requesters = args
        .requesters
        .iter()
        .map(|p| super::super::coordinator::node_of(p))
        .collect::<anyhow::Result<Vec<NodeId>>>()?;
    let policy = SessionPolicy {
        n: args.n,
        k: args.k,
        ttl_s: parse_ttl(&args.ttl)?,
        requesters,
        label: args.label,
    };
    eprintln!(
        "asking the coordinator for a {}-of-{} session…",
        args.k, args.n
    );
    let wait = args.wait.map(Duration::from_secs);
    let started = Instant::now();
    let mut last_reason: Option<String> = None;
    let created = loop {
        let error = match client.create_session(policy.clone()).await {
            Ok(created) => break created,
            Err(e) => e,
        };
        match after_failure(&error, started.elapsed(), wait, last_reason.as_deref()) {
            Attempt::Retry { announce } => {
                if let Some(reason) = announce {
                    eprintln!(
                        "not ready: {reason} (asking again every second, for up to {} s)",
                        args.wait.unwrap_or(0)
                    );
                    last_reason = Some(reason);
                }
                tokio::time::sleep(RETRY_EVERY).await;
            }
            Attempt::Stop if last_reason.is_some() => {
                return Err(error).context(format!(
                    "session create (asked for {} s)",
                    started.elapsed().as_secs()
                ));
            }
            Attempt::Stop => return Err(error).context("session create"),
        }
    };
    let config: RequesterConfig = toml::from_str(&std::fs::read_to_string(
        args.dir.data_dir.join("requester.toml"),
    )?)?;
    let file = TicketFile {
        v: 1,
        coordinator: config.coordinator,
        grant: created.grant,
        receipt: Some(created.receipt),
    };
    write_secret(&args.output, &protocols::wire::encode(&file))?;
    eprintln!(
        "session {} created; ticket written to {} (mode 0600)",
        created.session,
        args.output.display()
    );
    show(&file)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        create: CreateArgs,
    }

    fn parse(args: &[&str]) -> CreateArgs {
        let mut argv = vec!["create", "-o", "ticket.cbor"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv).unwrap().create
    }

    #[test]
    fn wait_is_off_without_the_flag_60_s_bare_and_as_given_with_a_value() {
        assert_eq!(parse(&[]).wait, None);
        assert_eq!(parse(&["--wait"]).wait, Some(60));
        assert_eq!(parse(&["--wait", "5"]).wait, Some(5));
        assert_eq!(parse(&["--wait=7", "--n", "4"]).wait, Some(7));
        let bare_then_other = parse(&["--wait", "--k", "2"]);
        assert_eq!((bare_then_other.wait, bare_then_other.k), (Some(60), 2));
        assert!(Cli::try_parse_from(["create", "-o", "t", "--wait", "soon"]).is_err());
    }

    fn not_ready(why: &str) -> RequesterError {
        RequesterError::Refused(Refusal::NotReady(why.into()))
    }

    #[test]
    fn not_ready_is_retried_within_the_wait_and_its_reason_printed_only_when_it_changes() {
        let wait = Some(Duration::from_secs(60));
        assert_eq!(
            after_failure(&not_ready("pool holds 0"), Duration::ZERO, wait, None),
            Attempt::Retry {
                announce: Some("pool holds 0".into())
            }
        );
        assert_eq!(
            after_failure(
                &not_ready("pool holds 0"),
                Duration::from_secs(5),
                wait,
                Some("pool holds 0")
            ),
            Attempt::Retry { announce: None }
        );
        assert_eq!(
            after_failure(
                &not_ready("pool holds 256"),
                Duration::from_secs(6),
                wait,
                Some("pool holds 0")
            ),
            Attempt::Retry {
                announce: Some("pool holds 256".into())
            }
        );
        assert_eq!(
            after_failure(&not_ready("x"), Duration::from_secs(59), wait, Some("x")),
            Attempt::Retry { announce: None }
        );
        assert_eq!(
            after_failure(
                &not_ready("x"),
                Duration::from_millis(59_001),
                wait,
                Some("x")
            ),
            Attempt::Stop,
            "no attempt would start within the wait"
        );
    }

    #[test]
    fn other_refusals_and_not_ready_without_wait_are_final() {
        let wait = Some(Duration::from_secs(60));
        for final_error in [
            RequesterError::Refused(Refusal::Unauthorized),
            RequesterError::Refused(Refusal::Malformed("ttl".into())),
            RequesterError::BadAnswer("garbage".into()),
        ] {
            assert_eq!(
                after_failure(&final_error, Duration::ZERO, wait, None),
                Attempt::Stop
            );
        }
        assert_eq!(
            after_failure(&not_ready("x"), Duration::ZERO, None, None),
            Attempt::Stop
        );
    }
}
