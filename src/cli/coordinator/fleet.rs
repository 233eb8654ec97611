//! `coordinator peers|sessions|requesters list|…`, `allowed`, `audit`: the inventory and
//! revocation commands, and how their answers are printed (PeerIds and RFC 3339 times).

use super::{node_of, session_of};
use anyhow::{Context, bail};
use coordinator::admin::rfc3339;
use coordinator::admin::{AdminAnswer, AdminCall, EnrolledPeer, RequesterLine, peer_text};
use coordinator::db::{AuditEntry, SessionRecord};
use std::path::PathBuf;

/// The data directory alone.
#[derive(Debug, clap::Args)]
pub struct DataDir {
    /// Data directory.
    #[arg(long, default_value_os_t = super::data_dir::default_data_dir())]
    pub data_dir: PathBuf,
}

/// A session argument.
#[derive(Debug, clap::Args)]
pub struct SessionArg {
    /// Session id (hex, as `sessions list` prints it).
    pub session: String,
    /// Data directory.
    #[arg(long, default_value_os_t = super::data_dir::default_data_dir())]
    pub data_dir: PathBuf,
}

/// `coordinator peers …`.
#[derive(Debug, clap::Subcommand)]
pub enum PeersCommand {
    /// Every enrolled peer: PeerId, labels, enrolment time; trust, quarantine and shares held
    /// when the coordinator runs.
    List(DataDir),
    /// Withdraw a peer's enrolment: its entropy is refused and its shares move at the next
    /// rotation sweep.
    Remove(super::PeerArg),
    /// Lift a peer's quarantine (running coordinator); it is trusted again after its next
    /// attestation.
    Unquarantine(super::PeerArg),
}

/// `coordinator sessions …`.
#[derive(Debug, clap::Subcommand)]
pub enum SessionsCommand {
    /// Every stored session.
    List(DataDir),
    /// One session: policy, epoch, holders, times.
    Show(SessionArg),
    /// Revoke a session: its holders are told to delete their shares (owed until they
    /// acknowledge) and no ticket is issued for it again.
    Revoke(SessionArg),
}

/// Options of `coordinator audit`.
#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// Only entries from this time on: an RFC 3339 time (`2026-12-05T21:00:00Z`) or a duration
    /// back from now (`90s`, `30m`, `1h`, `2d`).
    #[arg(long)]
    pub since: Option<String>,
    /// Data directory.
    #[arg(long, default_value_os_t = super::data_dir::default_data_dir())]
    pub data_dir: PathBuf,
}

/// The admin call of a `peers` command.
pub fn peers_call(c: PeersCommand) -> anyhow::Result<(PathBuf, AdminCall)> {
    Ok(match c {
        PeersCommand::List(a) => (a.data_dir, AdminCall::Peers),
        PeersCommand::Remove(a) => (
            a.data_dir,
            AdminCall::RemovePeer {
                node: node_of(&a.peer_id)?,
            },
        ),
        PeersCommand::Unquarantine(a) => (
            a.data_dir,
            AdminCall::Unquarantine {
                node: node_of(&a.peer_id)?,
            },
        ),
    })
}

/// The admin call of a `sessions` command.
pub fn sessions_call(c: SessionsCommand) -> anyhow::Result<(PathBuf, AdminCall)> {
    Ok(match c {
        SessionsCommand::List(a) => (a.data_dir, AdminCall::Sessions),
        SessionsCommand::Show(a) => (
            a.data_dir,
            AdminCall::Session {
                session: session_of(&a.session)?,
            },
        ),
        SessionsCommand::Revoke(a) => (
            a.data_dir,
            AdminCall::RevokeSession {
                session: session_of(&a.session)?,
            },
        ),
    })
}

/// `--since` as milliseconds since the Unix epoch (0 without it).
pub fn since_ms(since: Option<&str>) -> anyhow::Result<u64> {
    let Some(since) = since else {
        return Ok(0);
    };
    if let Some(ms) = rfc3339::parse_ms(since) {
        return Ok(ms);
    }
    let back_s = crate::cli::requester::parse_ttl(since).with_context(|| {
        format!(
            "--since {since:?} is neither an RFC 3339 time (2026-12-05T21:00:00Z) nor a duration (90s, 30m, 1h, 2d)"
        )
    })?;
    Ok(coordinator::service::now_ms().saturating_sub(back_s.saturating_mul(1000)))
}

/// Prints an answer (every kind but `Status`); an `Error` answer fails the command.
pub fn render(answer: AdminAnswer) -> anyhow::Result<()> {
    match answer {
        AdminAnswer::Done => outln!("done"),
        AdminAnswer::Snapshot(_) => outln!("database snapshot taken"),
        AdminAnswer::MasterKeyRotated(r) => {
            outln!("master key {} seals from now on", r.new);
            outln!(
                "master key {} retires: {} sessions sealed under it are re-sealed by rotation, then it is erased",
                r.old,
                r.sessions
            );
            outln!("follow it with: entroshard coordinator master-key");
        }
        AdminAnswer::Token(t) => outln!("{t}"),
        AdminAnswer::Status(lines) => outln!("{} peers", lines.len()),
        AdminAnswer::Error(e) => bail!("{e}"),
        AdminAnswer::Binaries(digests) => {
            for d in digests {
                outln!("{}", protocols::ids::hex8(&d));
            }
        }
        AdminAnswer::Requesters(lines) => requesters(&lines),
        AdminAnswer::Peers(peers) => peer_table(&peers),
        AdminAnswer::Sessions(sessions) => session_table(&sessions),
        AdminAnswer::Session(record) => session_detail(&record),
        AdminAnswer::Revoked { holders } => outln!(
            "revoked; {holders} holders are told to delete their shares (owed until each acknowledges)"
        ),
        AdminAnswer::Audit(entries) => {
            for e in &entries {
                outln!("{}", audit_line(e));
            }
        }
    }
    Ok(())
}

fn yes(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn requesters(lines: &[RequesterLine]) {
    outln!(
        "{:<52}  {:<10}  {:<7}  {:>7}  {:>5}",
        "requester",
        "authorised",
        "removed",
        "created",
        "named"
    );
    for l in lines {
        outln!(
            "{:<52}  {:<10}  {:<7}  {:>7}  {:>5}",
            peer_text(&l.node),
            yes(l.authorised),
            yes(l.removed),
            l.created,
            l.named
        );
    }
}

fn peer_table(peers: &[EnrolledPeer]) {
    outln!(
        "{:<52}  {:<12}  {:<12}  {:<20}  {:<7}  {:>6}",
        "peer",
        "region",
        "operator",
        "enrolled",
        "trusted",
        "shares"
    );
    for p in peers {
        let (trusted, shares, quarantine) = match &p.live {
            Some(l) => (
                yes(l.trusted).to_string(),
                l.shares_held.to_string(),
                l.quarantine
                    .as_ref()
                    .map(|q| format!("  QUARANTINED {q}"))
                    .unwrap_or_default(),
            ),
            None => ("-".into(), "-".into(), String::new()),
        };
        outln!(
            "{:<52}  {:<12}  {:<12}  {:<20}  {:<7}  {:>6}{}",
            peer_text(&p.node),
            p.enrolment.region,
            p.enrolment.operator,
            rfc3339::format_ms(p.enrolment.enrolled_at_ms),
            trusted,
            shares,
            quarantine
        );
    }
}

fn session_table(sessions: &[SessionRecord]) {
    outln!(
        "{:<32}  {:>5}  {:>5}  {:<20}  {:<20}  {:<52}  label",
        "session",
        "epoch",
        "k/n",
        "created",
        "expires",
        "creator"
    );
    for s in sessions {
        outln!(
            "{:<32}  {:>5}  {:>5}  {:<20}  {:<20}  {:<52}  {}",
            s.session,
            s.epoch,
            format!("{}/{}", s.commitments.threshold(), s.policy.n),
            rfc3339::format_ms(s.created_at_ms),
            rfc3339::format_ms(s.expires_at_ms),
            peer_text(&s.creator),
            s.policy.label.escape_debug()
        );
    }
}

fn session_detail(s: &SessionRecord) {
    outln!("session    {}", s.session);
    outln!("label      {}", s.policy.label.escape_debug());
    outln!("creator    {}", peer_text(&s.creator));
    for r in &s.policy.requesters {
        outln!("requester  {}", peer_text(r));
    }
    outln!(
        "threshold  {} of {}",
        s.commitments.threshold(),
        s.holders.len()
    );
    outln!("epoch      {} ({} rotations)", s.epoch, s.rotations);
    outln!("created    {}", rfc3339::format_ms(s.created_at_ms));
    if s.rotated_at_ms > 0 {
        outln!("rotated    {}", rfc3339::format_ms(s.rotated_at_ms));
    }
    outln!("expires    {}", rfc3339::format_ms(s.expires_at_ms));
    if let Some(key) = s.sealed_under {
        outln!("sealed     under master key {key} (re-dealt boxed to its holders by the upkeep)");
    }
    if s.boxed {
        outln!("sealed     boxed to each holder's share key");
    }
    outln!(
        "entropy    {} credited bits from {} peers",
        s.receipt.credited_bits,
        s.receipt.contributors.len()
    );
    for h in &s.holders {
        outln!("holder #{:<3} {}", h.index, peer_text(&h.node));
    }
}

/// One audit entry as a line: sequence, time, actor, action, subject, detail.
pub fn audit_line(e: &AuditEntry) -> String {
    let mut line = format!(
        "{:>6}  {}  {}  {}  {}",
        e.seq,
        rfc3339::format_ms(e.at_ms),
        e.actor.escape_debug(),
        e.action,
        e.subject.escape_debug()
    );
    if !e.detail.is_empty() {
        line.push_str(&format!("  ({})", e.detail.escape_debug()));
    }
    line
}
