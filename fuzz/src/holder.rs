//! A real holder for the `holder_requests` target: the agent's request handlers
//! (`peer::agent::DetachedHandlers`) over a real redb share store in a temporary directory,
//! built once per process, holding the fixture share; the input layout that target decodes; and
//! the checks it makes after every request.

use std::path::PathBuf;
use std::sync::{Arc, LazyLock};

use crate::fixtures::*;
use peer::agent::DetachedHandlers;
use peer::agent::measure::Measurement;
use peer::node::{Protocol, RequestFrame};
use peer::store::{ShareStore, StoredShare, StoredShareInfo};
use protocols::identity::NodeKey;
use protocols::sealing::{self, SealedShare};
use protocols::ticket::Ticket;
use protocols::wire::{
    self, DeleteShares, HolderCall, HolderOrder, Reply, ShareFetch, ShareFetchReply,
    SignedEnvelope, StoreReply, StoreShare, WIRE_VERSION,
};

/// Far-future expiry (2100-01-01) for tickets and shares: the handlers read the real clock.
pub const FAR_FUTURE_MS: u64 = 4_102_444_800_000;
/// Shares the fuzzed store accepts before refusing as full.
const STORE_CAPACITY: u32 = 8;

/// The fixture holder's sealed share of [`SESSION`] / [`EPOCH`], as the coordinator seals it.
pub fn holder_share() -> SealedShare {
    let fx = &*FX;
    let value = fx
        .shares
        .iter()
        .find(|(i, _)| *i == HOLDER_INDEX)
        .map(|(_, v)| *v)
        .unwrap_or([0; 32]);
    sealing::seal(&fx.slot_key, fx.slot, &value, [0x22; 12])
}

/// A ticket for [`SESSION`] / [`EPOCH`] naming the fixture requester and holder, valid until
/// [`FAR_FUTURE_MS`] (the handlers check it against the real clock).
pub fn live_ticket() -> Ticket {
    let fx = &*FX;
    Ticket {
        v: WIRE_VERSION,
        coordinator: fx.coordinator.node_id(),
        session: SESSION,
        epoch: EPOCH,
        requester: fx.requester.node_id(),
        holders: vec![
            protocols::ticket::TicketHolder {
                node: fx.peer.node_id(),
                index: 1,
                addrs: vec![],
            },
            protocols::ticket::TicketHolder {
                node: fx.holder.node_id(),
                index: HOLDER_INDEX,
                addrs: vec!["/ip4/127.0.0.1/udp/4001/quic-v1".into()],
            },
        ],
        commitments: fx.commitments.clone(),
        policy_digest: [8; 32],
        issued_at_ms: 1_000,
        expires_at_ms: FAR_FUTURE_MS,
        nonce: [0x11; 16],
    }
}

/// Who sends the request (input byte 0, bits 2–3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Remote {
    /// The pinned coordinator.
    Coordinator,
    /// The requester the fixture tickets name.
    Requester,
    /// The holder itself.
    Holder,
    /// Someone else.
    Outsider,
}

impl Remote {
    fn key(self) -> &'static NodeKey {
        let fx = &*FX;
        match self {
            Remote::Coordinator => &fx.coordinator,
            Remote::Requester => &fx.requester,
            Remote::Holder => &fx.holder,
            Remote::Outsider => &fx.outsider,
        }
    }
}

/// How the rest of the input becomes the request (input byte 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// The bytes are the request as received.
    Raw,
    /// The request announced this many bytes (u32 BE from the rest), over the limit or not.
    Oversized,
    /// The bytes are a payload the coordinator signed: a `StoreShare` (store), a `DeleteShares`
    /// (store, with bit 2 of byte 1 set) or a `Ticket` (fetch), wrapped as the protocol expects.
    SignedByCoordinator,
    /// The bytes are a `SignedEnvelope` as received, wrapped as the protocol expects.
    Envelope,
}

/// One decoded input of the `holder_requests` target.
pub struct HolderInput<'a> {
    /// The protocol the request arrives on.
    pub protocol: Protocol,
    /// Its sender.
    pub remote: Remote,
    /// How `rest` is turned into the request.
    pub body: Body,
    /// For signed store orders: a delete rather than a store.
    pub delete: bool,
    /// The rest of the input.
    pub rest: &'a [u8],
}

impl<'a> HolderInput<'a> {
    /// Splits a fuzz input; `None` when it is shorter than the two selector bytes.
    pub fn parse(data: &'a [u8]) -> Option<Self> {
        let (&[selector, mode], rest) = data.split_first_chunk::<2>()?;
        let protocol = Protocol::ALL[usize::from(selector & 3)];
        let remote = match (selector >> 2) & 3 {
            0 => Remote::Coordinator,
            1 => Remote::Requester,
            2 => Remote::Holder,
            _ => Remote::Outsider,
        };
        let body = match mode & 3 {
            0 => Body::Raw,
            1 => Body::Oversized,
            2 => Body::SignedByCoordinator,
            _ => Body::Envelope,
        };
        Some(Self {
            protocol,
            remote,
            body,
            delete: mode & 4 != 0,
            rest,
        })
    }

    /// The input bytes for a request (the inverse of [`Self::parse`]), for seeds.
    pub fn build(
        protocol: Protocol,
        remote: Remote,
        body: Body,
        delete: bool,
        rest: &[u8],
    ) -> Vec<u8> {
        let p = Protocol::ALL
            .iter()
            .position(|x| *x == protocol)
            .unwrap_or(0) as u8;
        let r = match remote {
            Remote::Coordinator => 0u8,
            Remote::Requester => 1,
            Remote::Holder => 2,
            Remote::Outsider => 3,
        };
        let b = match body {
            Body::Raw => 0u8,
            Body::Oversized => 1,
            Body::SignedByCoordinator => 2,
            Body::Envelope => 3,
        };
        let mut out = vec![p | (r << 2), b | if delete { 4 } else { 0 }];
        out.extend_from_slice(rest);
        out
    }

    /// The request frame the handlers receive.
    pub fn frame(&self) -> RequestFrame {
        let coordinator = &FX.coordinator;
        let wrap = |envelope: SignedEnvelope| -> Vec<u8> {
            match self.protocol {
                Protocol::Store => wire::encode(&HolderCall {
                    v: WIRE_VERSION,
                    order: if self.delete {
                        HolderOrder::Delete(envelope)
                    } else {
                        HolderOrder::Store(envelope)
                    },
                }),
                Protocol::Fetch => wire::encode(&ShareFetch {
                    v: WIRE_VERSION,
                    ticket: envelope,
                }),
                Protocol::Attest | Protocol::Coord | Protocol::Audit => envelope.to_bytes(),
            }
        };
        match self.body {
            Body::Raw => RequestFrame::Bytes(self.rest.to_vec()),
            Body::Oversized => {
                let len = self
                    .rest
                    .first_chunk::<4>()
                    .map(|b| u64::from(u32::from_be_bytes(*b)))
                    .unwrap_or(u64::MAX);
                RequestFrame::Oversized {
                    len,
                    max: self.protocol.limits().0,
                }
            }
            Body::SignedByCoordinator => {
                let envelope = match (self.protocol, self.delete) {
                    (Protocol::Fetch, _) => crate::resign::<Ticket>(coordinator, self.rest),
                    (_, true) => crate::resign::<DeleteShares>(coordinator, self.rest),
                    (_, false) => crate::resign::<StoreShare>(coordinator, self.rest),
                };
                RequestFrame::Bytes(wrap(envelope))
            }
            Body::Envelope => {
                match SignedEnvelope::from_bytes(self.rest, wire::MAX_MESSAGE_BYTES) {
                    Ok(envelope) => RequestFrame::Bytes(wrap(envelope)),
                    Err(_) => RequestFrame::Bytes(self.rest.to_vec()),
                }
            }
        }
    }
}

/// The holder under test: handlers, the store they write to, and a runtime to run them on.
pub struct Holder {
    /// The agent's handlers.
    pub handlers: DetachedHandlers,
    /// Its share store (a real redb file in a temporary directory).
    pub store: Arc<ShareStore>,
    /// A current-thread runtime with a blocking pool (the handlers use `spawn_blocking`).
    pub runtime: tokio::runtime::Runtime,
    /// The share the store holds before every request.
    pub baseline: StoredShare,
    _dir: PathBuf,
}

/// The holder, built once per process.
pub static HOLDER: LazyLock<Holder> = LazyLock::new(Holder::new);

impl Holder {
    #[allow(clippy::expect_used)]
    fn new() -> Self {
        let fx = &*FX;
        let dir =
            std::env::temp_dir().join(format!("entroshard-fuzz-holder-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the store directory");
        let store = Arc::new(
            ShareStore::open(&dir.join("shares.redb"), STORE_CAPACITY).expect("open the store"),
        );
        let baseline = StoredShare {
            share: holder_share().into(),
            expires_at_ms: FAR_FUTURE_MS,
        };
        store
            .put_held(&baseline.share, baseline.expires_at_ms)
            .expect("store the fixture share");
        let measurement = Measurement {
            binary_sha256: [0xaa; 32],
            config_digest: [1; 32],
            boot_id: "fuzz".into(),
        };
        let handlers = DetachedHandlers::new(
            NodeKey::from_secret_bytes(&[3; 32]),
            protocols::share_box::BoxSecret::from_uniform_bytes(&[3; 64]),
            fx.coordinator.node_id(),
            store.clone(),
            measurement,
            1e12,
        );
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("build the runtime");
        Self {
            handlers,
            store,
            runtime,
            baseline,
            _dir: dir,
        }
    }

    fn contents(&self) -> (Vec<StoredShareInfo>, Option<StoredShare>) {
        let list = self
            .store
            .list()
            .unwrap_or_else(|e| panic!("store list failed: {e}"));
        let share = self
            .store
            .get(&SESSION, EPOCH)
            .unwrap_or_else(|e| panic!("store read failed: {e}"));
        (list, share)
    }

    /// Puts the store back to holding only the baseline share.
    fn restore(&self) {
        for info in self
            .store
            .list()
            .unwrap_or_else(|e| panic!("store list failed: {e}"))
        {
            self.store
                .delete_epoch(&info.session, info.epoch)
                .unwrap_or_else(|e| panic!("store delete failed: {e}"));
        }
        self.store
            .put_held(&self.baseline.share, self.baseline.expires_at_ms)
            .unwrap_or_else(|e| panic!("store put failed: {e}"));
    }

    /// Sends one request and checks the reply and the store against what the handlers promise:
    /// the reply is one of ours, only the coordinator's store orders succeed or change the
    /// store, and only the ticket's requester gets the stored share back. Returns whether the
    /// request succeeded (the seed generator checks its seeds with it).
    pub fn run(&self, input: &HolderInput<'_>) -> bool {
        let before = self.contents();
        let remote = peer::identity::keypair(input.remote.key())
            .unwrap_or_else(|e| panic!("fixture key: {e}"))
            .public()
            .to_peer_id();
        let frame = input.frame();
        let asked_at_ms = peer::agent::now_ms();
        let reply =
            self.runtime
                .block_on(self.handlers.answer(input.protocol, remote, frame.clone()));
        let ok = match input.protocol {
            Protocol::Attest => decode_reply::<Reply<SignedEnvelope>>(&reply).is_ok(),
            Protocol::Store => decode_reply::<StoreReply>(&reply).is_ok(),
            Protocol::Coord => decode_reply::<Reply<()>>(&reply).is_ok(),
            // The detached handlers have no harvested source: every audit is refused.
            Protocol::Audit => decode_reply::<Reply<()>>(&reply).is_ok(),
            Protocol::Fetch => match decode_reply::<ShareFetchReply>(&reply) {
                Ok(share) => {
                    check_served_ticket(&frame, input.remote, asked_at_ms);
                    assert_eq!(
                        peer::store::HeldShare::Sealed(share),
                        self.baseline.share,
                        "the holder served something else than its stored share"
                    );
                    true
                }
                Err(()) => false,
            },
        };
        if ok && matches!(input.protocol, Protocol::Attest | Protocol::Store) {
            assert_eq!(
                input.remote,
                Remote::Coordinator,
                "{:?} request from {:?} was answered",
                input.protocol,
                input.remote
            );
        }
        let after = self.contents();
        if after != before {
            assert!(
                ok && input.protocol == Protocol::Store && input.remote == Remote::Coordinator,
                "the store changed on a refused or unauthorised request ({:?} from {:?})",
                input.protocol,
                input.remote
            );
            self.restore();
        }
        ok
    }
}

/// Decodes a reply as its protocol's type; `Err(())` for a refusal. A reply that is not ours
/// (does not decode) is a finding.
fn decode_reply<R>(reply: &[u8]) -> Result<R::Ok, ()>
where
    R: ReplyType,
{
    R::decode(reply)
}

/// The reply types of the holder's protocols.
trait ReplyType {
    type Ok;
    fn decode(bytes: &[u8]) -> Result<Self::Ok, ()>;
}

impl<T: serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug> ReplyType for Reply<T> {
    type Ok = T;
    fn decode(bytes: &[u8]) -> Result<T, ()> {
        let reply: Reply<T> = wire::decode(bytes, wire::MAX_MESSAGE_BYTES)
            .unwrap_or_else(|e| panic!("the holder's reply does not decode: {e}"));
        assert_eq!(reply.v, WIRE_VERSION, "reply of another version");
        reply.result.map_err(|refusal| {
            std::hint::black_box(refusal.to_string());
        })
    }
}

/// A share was served: the request must carry a ticket the coordinator signed for this remote,
/// this holder and the stored session and epoch, not yet expired.
fn check_served_ticket(frame: &RequestFrame, remote: Remote, asked_at_ms: u64) {
    let fx = &*FX;
    let RequestFrame::Bytes(bytes) = frame else {
        panic!("a share was served for an oversized request");
    };
    let fetch: ShareFetch = wire::decode(bytes, wire::MAX_MESSAGE_BYTES)
        .unwrap_or_else(|e| panic!("a share was served for an undecodable request: {e}"));
    let ticket: Ticket = fetch
        .ticket
        .open(&fx.coordinator.node_id())
        .unwrap_or_else(|e| panic!("a share was served on a ticket that does not open: {e}"));
    assert_eq!(
        ticket.requester,
        remote.key().node_id(),
        "a share was served to someone the ticket does not name"
    );
    assert!(
        ticket.holders.iter().any(|h| h.node == fx.holder.node_id()),
        "a share was served on a ticket that does not name this holder"
    );
    assert_eq!((ticket.session, ticket.epoch), (SESSION, EPOCH));
    // The holder read its clock after `asked_at_ms` and served only before the expiry.
    assert!(
        ticket.expires_at_ms > asked_at_ms,
        "a share was served on an expired ticket"
    );
}
