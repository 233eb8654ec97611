//! A real coordinator for the `coordinator_requests` target: the loop's request and gossip
//! handlers (`coordinator::service::DetachedService`) over a real redb database in a temporary
//! directory, built once per process, holding an authorised requester, an enrolled peer, a live
//! and an expired session and a live and an expired join token; the input layout that target
//! decodes; and the checks it makes after every request or gossip message.

mod checks;

use std::path::PathBuf;
use std::sync::{Arc, LazyLock};

use crate::fixtures::*;
use checks::{check_gossip, check_reply};
use coordinator::config::CoordinatorConfig;
use coordinator::db::fuzzing::{RawRow, audit_last_seq, raw_contents};
use coordinator::db::{CoordinatorDb, CoordinatorSecrets, Enrolment, JoinToken, SessionRecord};
use coordinator::service::DetachedService;
use peer::node::{CONTRIBUTIONS_TOPIC, Protocol, RequestFrame, STATUS_TOPIC};
use protocols::identity::NodeKey;
use protocols::ids::SessionId;
use protocols::wire::{
    self, Contribution, CoordinatorCall, CoordinatorRequest, JoinRequest, SessionCreate,
    SessionPolicy, StatusHeartbeat, TicketRequest, WIRE_VERSION,
};

/// A session the authorised requester created, naming the unauthorised one; live until 2100.
pub const LIVE_SESSION: SessionId = SessionId([0x51; 16]);
/// A session of the authorised requester that has expired (its record is still there).
pub const EXPIRED_SESSION: SessionId = SessionId([0x52; 16]);
/// The raw bytes of a live join token (sent as hex).
pub const JOIN_TOKEN: [u8; 16] = [0x5a; 16];
/// The raw bytes of an expired join token (redeeming it deletes it and is refused).
pub const EXPIRED_JOIN_TOKEN: [u8; 16] = [0x5b; 16];
/// Far-future expiry (2100-01-01): the handlers read the real clock.
const FAR_FUTURE_MS: u64 = 4_102_444_800_000;

/// Who sends the request or gossip (input byte 0, bits 0–1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// A requester the coordinator authorised to create sessions (the fixture requester).
    Authorised,
    /// A requester not authorised to create sessions, named by [`LIVE_SESSION`]'s policy.
    Unauthorised,
    /// An enrolled (never attested) device peer.
    Enrolled,
    /// Someone unknown to the coordinator.
    Stranger,
}

impl Caller {
    /// The caller's identity.
    pub fn key(self) -> &'static NodeKey {
        static UNAUTHORISED: LazyLock<NodeKey> =
            LazyLock::new(|| NodeKey::from_secret_bytes(&[0x0b; 32]));
        let fx = &*FX;
        match self {
            Caller::Authorised => &fx.requester,
            Caller::Unauthorised => &UNAUTHORISED,
            Caller::Enrolled => &fx.peer,
            Caller::Stranger => &fx.outsider,
        }
    }

    fn peer_id(self) -> libp2p::PeerId {
        peer::identity::keypair(self.key())
            .unwrap_or_else(|e| panic!("fixture key: {e}"))
            .public()
            .to_peer_id()
    }
}

/// What the rest of the input becomes (input byte 0, bits 2–4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A coordinator request as received.
    Raw,
    /// A request that announced this many bytes (u32 BE from the rest).
    Oversized,
    /// `CreateSession` built from `n ‖ k ‖ ttl_s u64 LE ‖ requester bits ‖ label`.
    Create,
    /// `GetTicket` for the session picked by the first byte (live, expired, or the next 16).
    Ticket,
    /// `Join` with the token picked by the first byte (live, expired, or the rest as text).
    Join,
    /// Heartbeat gossip: the rest is a payload the caller signed.
    Heartbeat,
    /// Contribution gossip: the rest is a payload the caller signed.
    Contribution,
    /// Gossip as received: first byte picks the topic (bits 0–1) and whether it is unsigned
    /// (bit 2); the rest is the message.
    Gossip,
}

/// One decoded input of the `coordinator_requests` target.
pub struct CoordinatorInput<'a> {
    /// The sender.
    pub caller: Caller,
    /// How `rest` is turned into the request or message.
    pub kind: Kind,
    /// The rest of the input.
    pub rest: &'a [u8],
}

const KINDS: [Kind; 8] = [
    Kind::Raw,
    Kind::Oversized,
    Kind::Create,
    Kind::Ticket,
    Kind::Join,
    Kind::Heartbeat,
    Kind::Contribution,
    Kind::Gossip,
];
const CALLERS: [Caller; 4] = [
    Caller::Authorised,
    Caller::Unauthorised,
    Caller::Enrolled,
    Caller::Stranger,
];

impl<'a> CoordinatorInput<'a> {
    /// Splits a fuzz input; `None` when it is empty.
    pub fn parse(data: &'a [u8]) -> Option<Self> {
        let (&selector, rest) = data.split_first()?;
        Some(Self {
            caller: CALLERS[usize::from(selector & 3)],
            kind: KINDS[usize::from((selector >> 2) & 7)],
            rest,
        })
    }

    /// The input bytes (the inverse of [`Self::parse`]), for seeds.
    pub fn build(caller: Caller, kind: Kind, rest: &[u8]) -> Vec<u8> {
        let c = CALLERS.iter().position(|x| *x == caller).unwrap_or(0) as u8;
        let k = KINDS.iter().position(|x| *x == kind).unwrap_or(0) as u8;
        let mut out = vec![c | (k << 2)];
        out.extend_from_slice(rest);
        out
    }

    fn call(request: CoordinatorRequest) -> RequestFrame {
        RequestFrame::Bytes(wire::encode(&CoordinatorCall {
            v: WIRE_VERSION,
            request,
        }))
    }

    /// The request frame, for the request kinds; `None` for gossip.
    pub fn frame(&self) -> Option<RequestFrame> {
        let rest = self.rest;
        Some(match self.kind {
            Kind::Raw => RequestFrame::Bytes(rest.to_vec()),
            Kind::Oversized => RequestFrame::Oversized {
                len: rest
                    .first_chunk::<4>()
                    .map(|b| u64::from(u32::from_be_bytes(*b)))
                    .unwrap_or(u64::MAX),
                max: Protocol::Coord.limits().0,
            },
            Kind::Create => {
                let byte = |i: usize| rest.get(i).copied().unwrap_or(0);
                let ttl_s = rest
                    .get(2..10)
                    .and_then(|b| <[u8; 8]>::try_from(b).ok())
                    .map(u64::from_le_bytes)
                    .unwrap_or(60);
                let named = byte(10);
                let requesters = CALLERS
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| named & (1 << i) != 0)
                    .map(|(_, c)| c.key().node_id())
                    .collect();
                Self::call(CoordinatorRequest::CreateSession(SessionCreate {
                    v: WIRE_VERSION,
                    policy: SessionPolicy {
                        n: byte(0),
                        k: byte(1),
                        ttl_s,
                        requesters,
                        label: String::from_utf8_lossy(rest.get(11..).unwrap_or_default())
                            .into_owned(),
                    },
                }))
            }
            Kind::Ticket => {
                let session = match rest.first() {
                    Some(0) | None => LIVE_SESSION,
                    Some(1) => EXPIRED_SESSION,
                    Some(_) => SessionId(
                        rest.get(1..17)
                            .and_then(|b| <[u8; 16]>::try_from(b).ok())
                            .unwrap_or(SESSION.0),
                    ),
                };
                Self::call(CoordinatorRequest::GetTicket(TicketRequest {
                    v: WIRE_VERSION,
                    session,
                }))
            }
            Kind::Join => {
                let token = match rest.first() {
                    Some(0) | None => hex(&JOIN_TOKEN),
                    Some(1) => hex(&EXPIRED_JOIN_TOKEN),
                    Some(_) => String::from_utf8_lossy(&rest[1..]).into_owned(),
                };
                Self::call(CoordinatorRequest::Join(JoinRequest { token }))
            }
            Kind::Heartbeat | Kind::Contribution | Kind::Gossip => return None,
        })
    }

    /// The gossip message as `(topic, author, data)`, for the gossip kinds.
    pub fn gossip(&self) -> Option<(&'static str, Option<libp2p::PeerId>, Vec<u8>)> {
        let key = self.caller.key();
        let author = Some(self.caller.peer_id());
        match self.kind {
            Kind::Heartbeat => Some((
                STATUS_TOPIC,
                author,
                crate::resign::<StatusHeartbeat>(key, self.rest).to_bytes(),
            )),
            Kind::Contribution => Some((
                CONTRIBUTIONS_TOPIC,
                author,
                crate::resign::<Contribution>(key, self.rest).to_bytes(),
            )),
            Kind::Gossip => {
                let flags = self.rest.first().copied().unwrap_or(0);
                let topic = match flags & 3 {
                    0 => STATUS_TOPIC,
                    1 => CONTRIBUTIONS_TOPIC,
                    _ => "entroshard/other/1",
                };
                let author = if flags & 4 != 0 { None } else { author };
                Some((
                    topic,
                    author,
                    self.rest.get(1..).unwrap_or_default().to_vec(),
                ))
            }
            _ => None,
        }
    }
}

/// Lower-case hex, as `coordinator join-token` prints tokens.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What a request or gossip message came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The coordinator answered with a success.
    Answered,
    /// It refused (a typed refusal), or rejected or ignored the gossip.
    Refused,
    /// Gossip accepted (forwarded) by the coordinator.
    Accepted,
}

/// The coordinator under test: its handlers, database, fixture rows and a runtime.
pub struct Coordinator {
    service: std::sync::Mutex<DetachedService>,
    db: Arc<CoordinatorDb>,
    /// A current-thread runtime with a blocking pool (database access uses `spawn_blocking`).
    runtime: tokio::runtime::Runtime,
    baseline: Vec<RawRow>,
    enrolment: Enrolment,
    _dir: PathBuf,
}

/// The coordinator, built once per process.
pub static COORDINATOR: LazyLock<Coordinator> = LazyLock::new(Coordinator::new);

fn session(id: SessionId, expires_at_ms: u64) -> SessionRecord {
    let mut s = coordinator::db::session_writer_record(1);
    s.session = id;
    s.creator = Caller::Authorised.key().node_id();
    s.policy.requesters = vec![Caller::Unauthorised.key().node_id()];
    s.expires_at_ms = expires_at_ms;
    s
}

fn join_token(expires_at_ms: u64) -> JoinToken {
    JoinToken {
        region: "eu-west".into(),
        operator: "op-a".into(),
        expires_at_ms,
    }
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    <sha2::Sha256 as sha2::Digest>::digest(bytes).into()
}

impl Coordinator {
    #[allow(clippy::expect_used)]
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "entroshard-fuzz-coordinator-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the database directory");
        let db = Arc::new(
            CoordinatorDb::open(&dir.join("coordinator.redb")).expect("open the database"),
        );
        db.init_secrets(&CoordinatorSecrets {
            noise_static: [0x6e; 32],
        })
        .expect("store the secrets");
        let masters = coordinator::master_key::Keyring::single(
            protocols::sealing::SealingMasterKey::from_bytes([0x4d; 32]),
        );
        peer::secret_file::write_new(&dir.join("master.key"), &masters.encode())
            .expect("write the master key file");
        db.add_requester(&Caller::Authorised.key().node_id())
            .expect("authorise the requester");
        let enrolment = Enrolment {
            region: "eu-west".into(),
            operator: "op-a".into(),
            enrolled_at_ms: 1_000,
            share_key: None,
        };
        db.enrol(&Caller::Enrolled.key().node_id(), &enrolment)
            .expect("enrol the peer");
        db.allow_binary([0xaa; 32]).expect("allow a binary");
        db.put_session(&session(LIVE_SESSION, FAR_FUTURE_MS))
            .expect("store the live session");
        db.put_session(&session(EXPIRED_SESSION, 1_000))
            .expect("store the expired session");
        db.add_join_token(sha256(&JOIN_TOKEN), &join_token(FAR_FUTURE_MS))
            .expect("store the join token");
        db.add_join_token(sha256(&EXPIRED_JOIN_TOKEN), &join_token(1_000))
            .expect("store the expired join token");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("build the runtime");
        let config = CoordinatorConfig::new(dir.clone(), Vec::new());
        let service = runtime
            .block_on(DetachedService::start(
                config,
                // The fixture coordinator's key (`FX.coordinator`).
                NodeKey::from_secret_bytes(&[1; 32]),
                db.clone(),
            ))
            .expect("start the coordinator");
        let baseline = raw_contents(&db).expect("read the database");
        Self {
            service: std::sync::Mutex::new(service),
            db,
            runtime,
            baseline,
            enrolment,
            _dir: dir,
        }
    }

    fn audit_last_seq(&self) -> u64 {
        audit_last_seq(&self.db).unwrap_or_else(|e| panic!("audit trail read failed: {e}"))
    }

    fn contents(&self) -> Vec<RawRow> {
        raw_contents(&self.db).unwrap_or_else(|e| panic!("database read failed: {e}"))
    }

    /// Feeds one input and checks the reply, the database and the pool against what the
    /// coordinator promises: every reply is one of ours, only an authorised requester creates a
    /// session, a ticket goes only to a requester its live session names, only a live join token
    /// enrols, gossip is accepted only when signed by its author, nothing is credited (no peer is
    /// attested) and refused input writes nothing. Returns the outcome (seeds are checked with it).
    pub fn run(&self, input: &CoordinatorInput<'_>) -> Outcome {
        let mut service = self
            .service
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let audited_before = self.audit_last_seq();
        let outcome = if let Some(frame) = input.frame() {
            let reply = self
                .runtime
                .block_on(service.request(input.caller.peer_id(), frame.clone()))
                .unwrap_or_else(|| panic!("the coordinator dropped a request unanswered"));
            check_reply(&frame, input.caller, &reply)
        } else if let Some((topic, author, data)) = input.gossip() {
            let verdict = service.gossip(topic, author.as_ref(), &data);
            check_gossip(topic, author.is_some(), input.caller, &data, &verdict)
        } else {
            unreachable!("every kind is a request or gossip")
        };
        assert_eq!(
            service.pool_credit().0,
            0,
            "bits were credited though no peer is attested"
        );
        // Only a ticket, a session or a join that was answered leaves an audit entry.
        if self.audit_last_seq() != audited_before {
            assert!(
                outcome == Outcome::Answered
                    && matches!(
                        input.kind,
                        Kind::Raw | Kind::Create | Kind::Ticket | Kind::Join
                    ),
                "an audit entry was written for {:?} from {:?} ({outcome:?})",
                input.kind,
                input.caller
            );
        }
        let after = self.contents();
        if after != self.baseline {
            self.explain_and_restore(input, outcome, &after, &mut service);
        }
        outcome
    }

    /// The database changed: allowed only for a join token redeemed with success (the token is
    /// gone and the caller enrolled) or an expired token refused (it is gone); anything else is
    /// a finding. Puts the database and the peer table back.
    fn explain_and_restore(
        &self,
        input: &CoordinatorInput<'_>,
        outcome: Outcome,
        after: &[RawRow],
        service: &mut DetachedService,
    ) {
        let join = matches!(input.kind, Kind::Join | Kind::Raw);
        let gone: Vec<&RawRow> = self
            .baseline
            .iter()
            .filter(|r| !after.contains(r))
            .collect();
        let added: Vec<&RawRow> = after
            .iter()
            .filter(|r| !self.baseline.contains(r))
            .collect();
        let caller = input.caller.key().node_id();
        let token_row =
            |r: &RawRow, raw: &[u8]| r.0 == "join_tokens" && r.1 == sha256(raw).to_vec();
        let enrolment_row = |r: &RawRow| r.0 == "enrolments" && r.1 == caller.0.to_vec();
        match outcome {
            Outcome::Answered if join => {
                assert!(
                    gone.iter().any(|r| token_row(r, &JOIN_TOKEN))
                        && gone
                            .iter()
                            .chain(&added)
                            .all(|r| token_row(r, &JOIN_TOKEN) || enrolment_row(r))
                        && added.iter().any(|r| enrolment_row(r)),
                    "a successful join changed more than its token and the caller's enrolment"
                );
                self.db
                    .add_join_token(sha256(&JOIN_TOKEN), &join_token(FAR_FUTURE_MS))
                    .unwrap_or_else(|e| panic!("restore the join token: {e}"));
                if input.caller == Caller::Enrolled {
                    self.db
                        .enrol(&caller, &self.enrolment)
                        .unwrap_or_else(|e| panic!("restore the enrolment: {e}"));
                } else {
                    self.db
                        .unenrol(&caller)
                        .unwrap_or_else(|e| panic!("undo the enrolment: {e}"));
                    service.forget_peer(&caller);
                }
            }
            Outcome::Refused if join => {
                assert!(
                    added.is_empty()
                        && gone.len() == 1
                        && gone.iter().all(|r| token_row(r, &EXPIRED_JOIN_TOKEN)),
                    "a refused join changed more than deleting the expired token"
                );
                self.db
                    .add_join_token(sha256(&EXPIRED_JOIN_TOKEN), &join_token(1_000))
                    .unwrap_or_else(|e| panic!("restore the expired join token: {e}"));
            }
            _ => panic!(
                "the database changed on {:?} from {:?} ({outcome:?}): {} rows gone, {} added",
                input.kind,
                input.caller,
                gone.len(),
                added.len()
            ),
        }
        assert!(
            self.contents() == self.baseline,
            "the database could not be put back"
        );
    }
}
