//! `entroshard coordinator …`: initialise, run and administer the coordinator.

mod backup;
mod data_dir;
mod fleet;
mod init;
mod passphrase;
mod reach;
mod restore;
mod status;

pub use fleet::{PeersCommand, SessionsCommand};

use super::systemd;
use anyhow::{Context, bail};
use coordinator::admin::{self, AdminAnswer, AdminCall};
use coordinator::config::CoordinatorConfig;
use coordinator::db::CoordinatorDb;
use protocols::ids::NodeId;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use data_dir::default_data_dir;
pub use init::InitArgs;

/// `coordinator` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum CoordinatorCommand {
    /// Create the identity, Noise static key, sealing master key, database and config.
    Init(InitArgs),
    /// Run the coordinator until SIGINT or SIGTERM.
    Run(RunArgs),
    /// Enrol a peer by PeerId with its region and operator labels.
    Enrol(EnrolArgs),
    /// Make a one-time join token for a device.
    JoinToken(JoinTokenArgs),
    /// Allow a peer binary by its SHA-256 (hex).
    Allow(AllowArgs),
    /// Withdraw a peer binary's SHA-256: peers running it fail their next attestation.
    Disallow(AllowArgs),
    /// List the SHA-256 of every allowed peer binary.
    Allowed(fleet::DataDir),
    /// Manage authorised requesters.
    #[command(subcommand)]
    Requesters(RequestersCommand),
    /// List, remove or un-quarantine enrolled peers.
    #[command(subcommand)]
    Peers(PeersCommand),
    /// List, show or revoke sessions.
    #[command(subcommand)]
    Sessions(SessionsCommand),
    /// Print the audit trail: admin actions, enrolments, joins and tickets, oldest first.
    Audit(fleet::AuditArgs),
    /// Show the peer table of the running coordinator, with each source's audit standing, claim,
    /// credit and refusals under its peer.
    Status(DirArgs),
    /// Rotate a session to a fresh quorum now (running coordinator).
    Rotate(RotateArgs),
    /// Write an encrypted backup: identity, master keys, config and a consistent snapshot of the
    /// database, from a running or a stopped coordinator.
    Backup(backup::BackupArgs),
    /// Rebuild a data directory from a backup, into an empty or new directory only.
    Restore(restore::RestoreArgs),
    /// Start a master-key rotation: a new key seals from now on, every session is re-sealed by
    /// rotating it, then the old key is erased (running coordinator).
    RotateMasterKey(fleet::DataDir),
    /// Show the sealing master key's id, and a retiring key's with the sessions still under it.
    MasterKey(fleet::DataDir),
    /// Crash-test helper: put sessions into a database forever, printing `ACK i` after each
    /// durable write (the fault tests SIGKILL it).
    #[command(hide = true)]
    SessionWriter {
        /// Database file.
        path: PathBuf,
    },
}

/// Options of `coordinator rotate`.
#[derive(Debug, clap::Args)]
pub struct RotateArgs {
    /// Session id (hex).
    pub session: String,
    /// Data directory.
    #[arg(long, default_value_os_t = default_data_dir())]
    pub data_dir: PathBuf,
}

/// Parses a session id from hex.
pub fn session_of(hex_id: &str) -> anyhow::Result<protocols::ids::SessionId> {
    let bytes = hex::decode(hex_id.trim()).context("session id must be hex")?;
    Ok(protocols::ids::SessionId(
        bytes
            .as_slice()
            .try_into()
            .context("session id must be 16 bytes")?,
    ))
}

/// `coordinator requesters …`.
#[derive(Debug, clap::Subcommand)]
pub enum RequestersCommand {
    /// Authorise a requester PeerId to create sessions (and lift an earlier removal).
    Add(PeerArg),
    /// Remove a requester: it can create no session and get no ticket from now on.
    Remove(PeerArg),
    /// List requesters: authorised, removed, or named by a stored session.
    List(fleet::DataDir),
}

/// The data directory.
#[derive(Debug, clap::Args)]
pub struct DirArgs {
    /// Data directory written by `coordinator init`.
    #[arg(long, default_value_os_t = default_data_dir())]
    pub data_dir: PathBuf,
    /// Log format.
    #[arg(long, value_enum, default_value_t)]
    pub log_format: super::LogFormat,
}

/// Options of `coordinator run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Data directory written by `coordinator init`.
    #[arg(long, default_value_os_t = default_data_dir())]
    pub data_dir: PathBuf,
    /// Config file (default `<data-dir>/coordinator.toml`); its `data_dir` names the state.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Log format.
    #[arg(long, value_enum, default_value_t)]
    pub log_format: super::LogFormat,
}

/// A PeerId argument.
#[derive(Debug, clap::Args)]
pub struct PeerArg {
    /// The PeerId.
    pub peer_id: String,
    /// Data directory.
    #[arg(long, default_value_os_t = default_data_dir())]
    pub data_dir: PathBuf,
}

/// Options of `coordinator enrol`.
#[derive(Debug, clap::Args)]
pub struct EnrolArgs {
    /// The peer's PeerId (printed by `peer init`).
    pub peer_id: String,
    /// Region label.
    #[arg(long)]
    pub region: String,
    /// Operator label.
    #[arg(long)]
    pub operator: String,
    /// Data directory.
    #[arg(long, default_value_os_t = default_data_dir())]
    pub data_dir: PathBuf,
}

/// Options of `coordinator join-token`.
#[derive(Debug, clap::Args)]
pub struct JoinTokenArgs {
    /// Region label of the device.
    #[arg(long)]
    pub region: String,
    /// Operator label of the device.
    #[arg(long)]
    pub operator: String,
    /// Lifetime in seconds.
    #[arg(long, default_value_t = 86_400)]
    pub ttl: u64,
    /// Data directory.
    #[arg(long, default_value_os_t = default_data_dir())]
    pub data_dir: PathBuf,
}

/// Options of `coordinator allow`.
#[derive(Debug, clap::Args)]
pub struct AllowArgs {
    /// SHA-256 of the peer binary, hex.
    pub sha256: String,
    /// Data directory.
    #[arg(long, default_value_os_t = default_data_dir())]
    pub data_dir: PathBuf,
}

/// Parses a PeerId into a node id.
pub fn node_of(peer_id: &str) -> anyhow::Result<NodeId> {
    let pid: libp2p::PeerId = peer_id
        .parse()
        .with_context(|| format!("{peer_id:?} is not a PeerId"))?;
    peer::identity::node_id(&pid).context("the PeerId is not an Ed25519 key")
}

/// Parses a SHA-256 digest from hex.
fn sha256_of(hex_digest: &str) -> anyhow::Result<[u8; 32]> {
    let bytes = hex::decode(hex_digest.trim()).context("sha256 must be hex")?;
    bytes
        .as_slice()
        .try_into()
        .context("sha256 must be 32 bytes")
}

/// Runs a `coordinator` subcommand.
pub fn run(command: CoordinatorCommand) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match command {
        CoordinatorCommand::Init(args) => init::init(args),
        CoordinatorCommand::Run(args) => {
            super::init_tracing(args.log_format);
            let config_path = args
                .config
                .unwrap_or_else(|| args.data_dir.join("coordinator.toml"));
            let config = CoordinatorConfig::load(&config_path)?;
            let key = peer::identity::read_key(&config.identity_path())?;
            let db = Arc::new(CoordinatorDb::open(&config.db_path())?);
            let socket = config.admin_socket();
            runtime.block_on(async {
                let service = coordinator::service::run(config, key, db, super::shutdown_signal());
                tokio::pin!(service);
                // Ready once the admin socket answers a status call from the main loop; the
                // same call, repeated, feeds the watchdog.
                let ready_then_watchdog = async {
                    while !answers_status(&socket).await {
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    }
                    systemd::notify_ready("serving peers and requesters");
                    systemd::run_watchdog(|| answers_status(&socket)).await;
                    std::future::pending::<std::convert::Infallible>().await
                };
                let result = tokio::select! {
                    result = &mut service => result,
                    never = ready_then_watchdog => match never {},
                };
                systemd::notify_stopping();
                result.map_err(anyhow::Error::msg)
            })
        }
        CoordinatorCommand::Enrol(a) => {
            let node = node_of(&a.peer_id)?;
            admin_call(
                &runtime,
                &a.data_dir,
                AdminCall::Enrol {
                    node,
                    region: a.region,
                    operator: a.operator,
                },
            )
        }
        CoordinatorCommand::JoinToken(a) => admin_call(
            &runtime,
            &a.data_dir,
            AdminCall::JoinToken {
                region: a.region,
                operator: a.operator,
                ttl_s: a.ttl,
            },
        ),
        CoordinatorCommand::Allow(a) => {
            let sha256 = sha256_of(&a.sha256)?;
            admin_call(&runtime, &a.data_dir, AdminCall::Allow { sha256 })
        }
        CoordinatorCommand::Disallow(a) => {
            let sha256 = sha256_of(&a.sha256)?;
            admin_call(&runtime, &a.data_dir, AdminCall::Disallow { sha256 })
        }
        CoordinatorCommand::Allowed(a) => {
            admin_call(&runtime, &a.data_dir, AdminCall::AllowedBinaries)
        }
        CoordinatorCommand::Requesters(RequestersCommand::Add(a)) => {
            let node = node_of(&a.peer_id)?;
            admin_call(&runtime, &a.data_dir, AdminCall::AddRequester { node })
        }
        CoordinatorCommand::Requesters(RequestersCommand::Remove(a)) => {
            let node = node_of(&a.peer_id)?;
            admin_call(&runtime, &a.data_dir, AdminCall::RemoveRequester { node })
        }
        CoordinatorCommand::Requesters(RequestersCommand::List(a)) => {
            admin_call(&runtime, &a.data_dir, AdminCall::Requesters)
        }
        CoordinatorCommand::Peers(c) => {
            let (data_dir, call) = fleet::peers_call(c)?;
            admin_call(&runtime, &data_dir, call)
        }
        CoordinatorCommand::Sessions(c) => {
            let (data_dir, call) = fleet::sessions_call(c)?;
            admin_call(&runtime, &data_dir, call)
        }
        CoordinatorCommand::Audit(a) => {
            let since_ms = fleet::since_ms(a.since.as_deref())?;
            admin_call(&runtime, &a.data_dir, AdminCall::Audit { since_ms })
        }
        CoordinatorCommand::Status(a) => admin_call(&runtime, &a.data_dir, AdminCall::Status),
        CoordinatorCommand::Backup(a) => backup::run(&runtime, a),
        CoordinatorCommand::Restore(a) => restore::run(a),
        CoordinatorCommand::RotateMasterKey(a) => {
            admin_call(&runtime, &a.data_dir, AdminCall::RotateMasterKey)
        }
        CoordinatorCommand::MasterKey(a) => master_key(&runtime, &a.data_dir),
        CoordinatorCommand::SessionWriter { path } => {
            match coordinator::db::run_session_writer(&path, std::io::stdout().lock()) {
                Ok(never) => match never {},
                Err(e) => Err(e.into()),
            }
        }
        CoordinatorCommand::Rotate(a) => {
            let session = session_of(&a.session)?;
            let socket = a.data_dir.join("admin.sock");
            let answer = runtime
                .block_on(admin::call(&socket, &AdminCall::Rotate { session }))
                .map_err(|e| match reach::socket_refusal(&socket, &e) {
                    Some(refusal) => anyhow::anyhow!(refusal),
                    None => anyhow::anyhow!(
                        "rotation needs a running coordinator; none answers on {}: {e}",
                        socket.display()
                    ),
                })?;
            match answer {
                AdminAnswer::Error(e) => bail!("{e}"),
                _ => outln!("rotation of {session} started"),
            }
            Ok(())
        }
    }
}

/// `coordinator master-key`: the ids in `master.key`, and how many sessions are still sealed
/// under a retiring key.
fn master_key(runtime: &tokio::runtime::Runtime, data_dir: &Path) -> anyhow::Result<()> {
    use coordinator::master_key::{self, MasterKeyError};
    let path = data_dir.join("master.key");
    let ring = match master_key::read(&path) {
        Ok(ring) => ring,
        Err(MasterKeyError::Missing { .. }) if data_dir.join("coordinator.redb").exists() => bail!(
            "{} is missing: a coordinator whose database still holds its master key (from before \
             decision 0046) moves it there at its next start; otherwise restore it from a backup",
            path.display()
        ),
        Err(e) => return Err(e.into()),
    };
    outln!("master key  {}  ({})", ring.current().id(), path.display());
    if let Some(retiring) = ring.retiring() {
        let AdminAnswer::Sessions(sessions) = answer_of(runtime, data_dir, AdminCall::Sessions)?
        else {
            bail!("the coordinator answered the sessions request with something else");
        };
        let left = sessions
            .iter()
            .filter(|s| s.sealed_under == Some(retiring.id()))
            .count();
        outln!(
            "retiring    {}  {left} sessions still sealed under it; erased once they are re-sealed",
            retiring.id()
        );
    }
    Ok(())
}

/// Whether a coordinator's main loop answers a status call on its admin socket.
async fn answers_status(socket: &Path) -> bool {
    matches!(
        admin::call(socket, &AdminCall::Status).await,
        Ok(AdminAnswer::Status(_))
    )
}

/// Sends the command to the running coordinator, or applies it to the database when none runs,
/// and prints the answer.
fn admin_call(
    runtime: &tokio::runtime::Runtime,
    data_dir: &Path,
    call: AdminCall,
) -> anyhow::Result<()> {
    match answer_of(runtime, data_dir, call)? {
        AdminAnswer::Status(lines) => out!("{}", status::render(&lines)),
        answer => fleet::render(answer)?,
    }
    Ok(())
}

/// The answer to a command: from the running coordinator over its admin socket, or, when none
/// runs, applied to its database directly.
pub fn answer_of(
    runtime: &tokio::runtime::Runtime,
    data_dir: &Path,
    call: AdminCall,
) -> anyhow::Result<AdminAnswer> {
    let socket = data_dir.join("admin.sock");
    let answer = match runtime.block_on(admin::call(&socket, &call)) {
        Ok(answer) => answer,
        Err(e) => {
            if let Some(refusal) = reach::socket_refusal(&socket, &e) {
                bail!(refusal);
            }
            let db_path = data_dir.join("coordinator.redb");
            if let Some(missing) = reach::missing_database(data_dir, &db_path) {
                bail!(missing);
            }
            let db = CoordinatorDb::open(&db_path)
                .map_err(|e| anyhow::anyhow!(reach::database_refusal(&socket, &e)))?;
            admin::apply(&db, &call, &admin::database_actor())?.0
        }
    };
    Ok(answer)
}
