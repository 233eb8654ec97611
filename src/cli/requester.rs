//! `entroshard requester init`, `session create|show`, `fetch`: the user's side.
// Field comments are clap's help text, where `<PeerId>` reads as a placeholder, not HTML.
#![allow(rustdoc::invalid_html_tags)]

mod create;

pub use create::CreateArgs;

use anyhow::{Context, bail};
use base64::Engine;
use protocols::identity::NodeKey;
use protocols::keys::SessionKey;
use protocols::ticket::{Ticket, TicketGrant};
use protocols::wire::EntropyReceipt;
use rand::rngs::SysRng;
use rand_core::UnwrapErr;
use requester::Requester;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What `session create` writes: secret (it carries the opening keys); mode 0600.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TicketFile {
    /// Format version.
    pub v: u16,
    /// The coordinator to ask for fresh tickets.
    pub coordinator: String,
    /// The grant.
    pub grant: TicketGrant,
    /// The entropy receipt, when this file came from `session create`.
    pub receipt: Option<EntropyReceipt>,
}

/// The requester's config: its coordinator.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RequesterConfig {
    coordinator: String,
}

/// Where a requester keeps its identity.
#[derive(Debug, Clone, clap::Args)]
pub struct RequesterDir {
    /// Requester data directory (identity and coordinator address).
    #[arg(long, default_value = "entroshard-requester")]
    pub data_dir: PathBuf,
}

/// `requester` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum RequesterCommand {
    /// Create a requester identity (mode 0600) pinned to a coordinator.
    Init {
        /// Coordinator multiaddress ending in /p2p/<PeerId>.
        #[arg(long)]
        coordinator: String,
        #[command(flatten)]
        dir: RequesterDir,
    },
}

/// `session` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum SessionCommand {
    /// Ask the coordinator for a session and write its ticket file.
    Create(CreateArgs),
    /// Show a ticket file: session, epoch, holders, threshold, expiry, entropy receipt.
    Show {
        /// Ticket file.
        ticket: PathBuf,
    },
    /// Get a ticket for a session this requester is named in, and write its ticket file.
    Ticket {
        /// Session id (hex).
        session: String,
        /// Ticket file to write (mode 0600).
        #[arg(short, long)]
        output: PathBuf,
        #[command(flatten)]
        dir: RequesterDir,
    },
}

/// Output formats of `fetch`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum KeyFormat {
    /// Lower-case hex.
    Hex,
    /// Standard base64.
    Base64,
    /// The 32 raw bytes.
    Raw,
    /// `PresharedKey = <base64>`, the line WireGuard's config takes.
    Wireguard,
    /// `{"session": .., "epoch": .., "key": "<hex>"}`.
    Json,
}

/// Options of `fetch`.
#[derive(Debug, clap::Args)]
pub struct FetchArgs {
    /// Ticket file from `session create` (or `session ticket`).
    pub ticket: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = KeyFormat::Hex)]
    pub format: KeyFormat,
    /// Write the key to this file (mode 0600) instead of stdout.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Ask one more holder when none answered for this long (`500ms`, `2s`; default 500ms).
    /// A larger value waits for a slow holder instead of going around it, so it gets named.
    #[arg(long, value_parser = parse_hedge, default_value = "500ms")]
    pub hedge_after: Duration,
    /// Fetch this many times with one requester node (connections kept between fetches: a
    /// relayed one DCUtR upgraded is reused), printing each fetch's `shares by path` line.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub repeat: u32,
    /// With `--repeat`, wait this long (`500ms`, `2s`) before each fetch after the first, as a
    /// long-lived requester fetching now and then would: a hole punch started by the first
    /// fetch's relayed connection has time to finish, and later fetches go over it.
    #[arg(long, value_parser = parse_hedge, default_value = "0")]
    pub repeat_every: Duration,
    #[command(flatten)]
    pub dir: RequesterDir,
}

/// Parses `250ms`, `2s` or plain milliseconds.
fn parse_hedge(s: &str) -> anyhow::Result<Duration> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num.parse().with_context(|| format!("bad duration {s:?}"))?;
    match unit {
        "" | "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        _ => bail!("bad duration unit in {s:?} (ms, s)"),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

/// Parses `90s`, `10m`, `1h`, `2d` or plain seconds.
pub fn parse_ttl(s: &str) -> anyhow::Result<u64> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num.parse().with_context(|| format!("bad duration {s:?}"))?;
    let mult = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => bail!("bad duration unit in {s:?} (s, m, h, d)"),
    };
    n.checked_mul(mult).context("duration too long")
}

/// Writes a ticket or key file: mode 0600, whole (temporary file, sync, rename), never through
/// a symlink.
fn write_secret(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    Ok(peer::secret_file::replace(path, bytes)?)
}

/// Reads a ticket file.
pub fn read_ticket_file(path: &Path) -> anyhow::Result<TicketFile> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    protocols::wire::decode_bounded(&bytes, 1 << 20)
        .with_context(|| format!("{} is not a ticket file", path.display()))
}

/// Loads the requester identity and connects a client.
pub async fn connect(dir: &Path) -> anyhow::Result<(NodeKey, Requester)> {
    let key = peer::identity::read_key(&dir.join("identity.key"))
        .context("requester identity (run `entroshard requester init` first)")?;
    let config: RequesterConfig = toml::from_str(
        &std::fs::read_to_string(dir.join("requester.toml")).context("requester config")?,
    )?;
    let client = Requester::connect(&key, config.coordinator.parse()?).await?;
    Ok((key, client))
}

/// Runs `requester init`.
pub fn run_requester(command: RequesterCommand) -> anyhow::Result<()> {
    let RequesterCommand::Init { coordinator, dir } = command;
    peer::addr::coordinator_addr(&coordinator).map_err(anyhow::Error::msg)?;
    let config = toml::to_string(&RequesterConfig { coordinator })?;
    let config_path = dir.data_dir.join("requester.toml");
    let key = NodeKey::generate(&mut UnwrapErr(SysRng));
    let mut written = super::Written::default();
    written.create_dir_all(&dir.data_dir)?;
    let result = (|| -> anyhow::Result<()> {
        written.secret(&dir.data_dir.join("identity.key"), key.secret_bytes())?;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&config_path)
            .and_then(|mut f| {
                use std::io::Write;
                f.write_all(config.as_bytes())?;
                f.sync_all()
            })
            .with_context(|| format!("writing {}", config_path.display()))?;
        written.file(&config_path);
        Ok(())
    })();
    if let Err(e) = result {
        written.undo();
        return Err(e);
    }
    let pid = peer::identity::peer_id(&key.node_id()).context("identity")?;
    outln!("requester initialised in {}", dir.data_dir.display());
    outln!("peer id {pid}");
    outln!("authorise it with: entroshard coordinator requesters add {pid}");
    Ok(())
}

/// Runs a `session` subcommand.
pub fn run_session(command: SessionCommand) -> anyhow::Result<()> {
    match command {
        SessionCommand::Create(args) => runtime()?.block_on(create::create(args)),
        SessionCommand::Show { ticket } => show(&read_ticket_file(&ticket)?),
        SessionCommand::Ticket {
            session,
            output,
            dir,
        } => runtime()?.block_on(async move {
            let session = super::coordinator::session_of(&session)?;
            let (key, client) = connect(&dir.data_dir).await?;
            let grant = client
                .ticket(session)
                .await
                .map_err(|e| ticket_refused(session, &key, e))?;
            let config: RequesterConfig = toml::from_str(&std::fs::read_to_string(
                dir.data_dir.join("requester.toml"),
            )?)?;
            let file = TicketFile {
                v: 1,
                coordinator: config.coordinator,
                grant,
                receipt: None,
            };
            write_secret(&output, &protocols::wire::encode(&file))?;
            eprintln!(
                "ticket for session {session} written to {} (mode 0600)",
                output.display()
            );
            Ok(())
        }),
    }
}

fn show(file: &TicketFile) -> anyhow::Result<()> {
    let (_, t): (_, Ticket) = file.grant.ticket.open_from_any_signer().context("ticket")?;
    outln!("session    {}", t.session);
    outln!("epoch      {}", t.epoch);
    outln!("threshold  {} of {}", t.threshold(), t.holders.len());
    outln!(
        "expires    {}",
        coordinator::admin::rfc3339::format_ms(t.expires_at_ms)
    );
    outln!(
        "requester  {}",
        peer::identity::peer_id(&t.requester)
            .map(|p| p.to_string())
            .unwrap_or_default()
    );
    for h in &t.holders {
        outln!(
            "holder #{:<3} {}",
            h.index,
            peer::identity::peer_id(&h.node)
                .map(|p| p.to_string())
                .unwrap_or_default()
        );
    }
    if let Some(r) = &file.receipt {
        outln!(
            "entropy    {} credited bits from {} peers; {} blocks passed, {} rejected",
            r.credited_bits,
            r.contributors.len(),
            r.blocks_passed,
            r.blocks_rejected
        );
        for c in &r.contributors {
            outln!(
                "  {} {:>6} bits",
                peer::identity::peer_id(&c.node)
                    .map(|p| p.to_string())
                    .unwrap_or_default(),
                c.credited_bits
            );
        }
    }
    Ok(())
}

/// Fetches the key of a ticket file, asking for a fresh ticket when the epoch moved on.
pub async fn fetch_key(dir: &Path, ticket: &Path) -> anyhow::Result<(SessionKey, Ticket)> {
    fetch_key_with(dir, ticket, Duration::from_millis(500), 1, Duration::ZERO).await
}

/// [`fetch_key`] with the time after which one more holder is asked.
///
/// A ticket that has expired (tickets live an hour by default, decision 0045) is renewed before
/// fetching, and a fetch that fails is tried once more with a current ticket; either way the
/// renewed ticket is written back. A refused renewal ends the fetch with what the refusal means.
///
/// `repeat` > 1 fetches that many times in all with the same requester node (its connections,
/// relayed or hole-punched, kept between fetches), printing each fetch's paths; every fetch must
/// rebuild the same key; `every` is the wait before each of them.
pub async fn fetch_key_with(
    dir: &Path,
    ticket: &Path,
    hedge_after: Duration,
    repeat: u32,
    every: Duration,
) -> anyhow::Result<(SessionKey, Ticket)> {
    let file = read_ticket_file(ticket)?;
    let (key, mut client) = connect(dir).await?;
    client.hedge_after = hedge_after;
    let (_, t): (_, Ticket) = file.grant.ticket.open_from_any_signer().context("ticket")?;
    if t.expires_at_ms > coordinator::service::now_ms() {
        eprintln!(
            "fetching {} of {} shares for session {} (epoch {})…",
            t.threshold(),
            t.holders.len(),
            t.session,
            t.epoch
        );
    }
    let fetched = client
        .fetch_renewing(
            &file.grant,
            coordinator::service::now_ms(),
            |why| match why {
                requester::Renewal::Expired { at_ms } => eprintln!(
                    "ticket for session {} expired at {}; asking the coordinator for a new one…",
                    t.session,
                    coordinator::admin::rfc3339::format_ms(*at_ms)
                ),
                requester::Renewal::Failed(first) => {
                    eprintln!("{first}; asking the coordinator for a current ticket…")
                }
                _ => eprintln!("asking the coordinator for a current ticket…"),
            },
        )
        .await
        .map_err(|e| match e {
            requester::RequesterError::Refused(_) => ticket_refused(t.session, &key, e),
            other => anyhow::Error::new(other).context("fetch with a fresh ticket"),
        })?;
    for f in &fetched.failures {
        eprintln!("skipped {f}");
    }
    eprintln!("shares by path: {}", fetched.paths);
    let used = fetched.renewed.as_ref().unwrap_or(&file.grant);
    for _ in 1..repeat {
        tokio::time::sleep(every).await;
        let (again, _, paths) = client.fetch_traced(used).await.context("repeated fetch")?;
        eprintln!("shares by path: {paths}");
        if again.fingerprint() != fetched.key.fingerprint() {
            bail!("a repeated fetch rebuilt another key");
        }
    }
    let Some(grant) = fetched.renewed else {
        return Ok((fetched.key, t));
    };
    let (_, t2): (_, Ticket) = grant.ticket.open_from_any_signer().context("ticket")?;
    let mut updated = file.clone();
    updated.grant = grant;
    write_secret(ticket, &protocols::wire::encode(&updated))?;
    Ok((fetched.key, t2))
}

/// What a refused ticket request means, for the person who asked.
pub fn ticket_refused(
    session: protocols::ids::SessionId,
    key: &NodeKey,
    e: requester::RequesterError,
) -> anyhow::Error {
    use protocols::wire::Refusal;
    let me = coordinator::admin::peer_text(&key.node_id());
    match e {
        requester::RequesterError::Refused(Refusal::NotFound) => anyhow::anyhow!(
            "the coordinator has no session {session}: it was revoked or has expired"
        ),
        requester::RequesterError::Refused(Refusal::Unauthorized) => anyhow::anyhow!(
            "the coordinator refuses requester {me} a ticket for session {session}: \
             it was removed (`coordinator requesters remove`) or is not named by the session"
        ),
        e => anyhow::Error::new(e).context(format!("asking for a ticket for session {session}")),
    }
}

/// Runs `fetch`: progress on stderr, the key only on stdout (or in a 0600 file).
pub fn run_fetch(args: FetchArgs) -> anyhow::Result<()> {
    let (key, t) = runtime()?.block_on(fetch_key_with(
        &args.dir.data_dir,
        &args.ticket,
        args.hedge_after,
        args.repeat,
        args.repeat_every,
    ))?;
    let bytes = key.expose();
    let out: Vec<u8> = match args.format {
        KeyFormat::Hex => format!("{}\n", protocols::ids::hex8(bytes)).into_bytes(),
        KeyFormat::Base64 => format!(
            "{}\n",
            base64::engine::general_purpose::STANDARD.encode(bytes)
        )
        .into_bytes(),
        KeyFormat::Raw => bytes.to_vec(),
        KeyFormat::Wireguard => format!(
            "PresharedKey = {}\n",
            base64::engine::general_purpose::STANDARD.encode(bytes)
        )
        .into_bytes(),
        KeyFormat::Json => format!(
            "{{\"session\":\"{}\",\"epoch\":{},\"key\":\"{}\"}}\n",
            t.session,
            t.epoch,
            protocols::ids::hex8(bytes)
        )
        .into_bytes(),
    };
    eprintln!(
        "key rebuilt from verified shares (fingerprint {})",
        key.fingerprint()
    );
    match args.output {
        Some(path) => write_secret(&path, &out),
        None => {
            crate::out::write_bytes(&out);
            Ok(())
        }
    }
}
