//! Fixed identities, keys, clocks and shares that the targets and the seed generator share, so
//! that seeds pass every check and the fuzzer starts from the deepest paths.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use chacha20::ChaCha20Rng;
use protocols::attestation::{AttestationPolicy, Challenge};
use protocols::identity::NodeKey;
use protocols::ids::{Epoch, SessionId, ShareIndex};
use protocols::keys::SessionSecret;
use protocols::sealing::{SealingMasterKey, ShareOpeningKey, ShareSlot};
use protocols::sharing::{self, Commitments, VerifiedShare};
use protocols::wire::WIRE_VERSION;
use rand_core::SeedableRng;

/// The holder's clock when checking tickets.
pub const TICKET_NOW_MS: u64 = 5_000;
/// The coordinator's clock when checking evidence.
pub const EVIDENCE_NOW_MS: u64 = 10_200;
/// The session every fixture talks about.
pub const SESSION: SessionId = SessionId([5; 16]);
/// The epoch the holder stores for [`SESSION`].
pub const EPOCH: Epoch = 2;
/// Epochs the holder stores for [`SESSION`] (none for any other session).
pub const HELD_EPOCHS: &[Epoch] = &[EPOCH];
/// Share indices of the fixture split (k = [`THRESHOLD`]).
pub const SHARE_INDICES: &[ShareIndex] = &[1, 2, 3, 4, 5];
/// Threshold of the fixture split.
pub const THRESHOLD: usize = 3;
/// The share index the holder fixture holds.
pub const HOLDER_INDEX: ShareIndex = 4;

/// Fixed keys, identities, challenge, policy and sharing shared by targets and seeds.
pub struct Fixtures {
    /// The coordinator's signing key.
    pub coordinator: NodeKey,
    /// The requester the tickets are issued to.
    pub requester: NodeKey,
    /// The holder checking tickets (the "local" node).
    pub holder: NodeKey,
    /// The peer that answers attestation challenges and sends gossip.
    pub peer: NodeKey,
    /// Someone who is none of the above.
    pub outsider: NodeKey,
    /// The challenge the peer answers.
    pub challenge: Challenge,
    /// The coordinator's attestation policy.
    pub policy: AttestationPolicy,
    /// The coordinator's sealing master key.
    pub master: SealingMasterKey,
    /// The holder's slot for [`SESSION`] / [`EPOCH`].
    pub slot: ShareSlot,
    /// That slot's opening key.
    pub slot_key: ShareOpeningKey,
    /// Feldman commitments of the fixture split.
    pub commitments: Commitments,
    /// The shares of the fixture split, as (index, value bytes).
    pub shares: Vec<(ShareIndex, [u8; 32])>,
}

impl Fixtures {
    fn new() -> Self {
        let holder = NodeKey::from_secret_bytes(&[3; 32]);
        let slot = ShareSlot {
            session: SESSION,
            epoch: EPOCH,
            holder: holder.node_id(),
            index: HOLDER_INDEX,
        };
        let master = SealingMasterKey::from_bytes([0x4d; 32]);
        let slot_key = master.share_key(&slot);
        let secret =
            SessionSecret::derive(&[1; 32], &[2; 32], &SESSION).expect("fixture secret is zero");
        let mut rng = ChaCha20Rng::from_seed([7; 32]);
        let (verified, commitments) = sharing::split(&secret, SHARE_INDICES, THRESHOLD, &mut rng)
            .expect("fixture split failed");
        let shares = verified
            .iter()
            .map(|s: &VerifiedShare| (s.index(), s.value_bytes()))
            .collect();
        Self {
            coordinator: NodeKey::from_secret_bytes(&[1; 32]),
            requester: NodeKey::from_secret_bytes(&[2; 32]),
            holder,
            peer: NodeKey::from_secret_bytes(&[4; 32]),
            outsider: NodeKey::from_secret_bytes(&[9; 32]),
            challenge: Challenge {
                v: WIRE_VERSION,
                nonce: [6; 32],
                issued_at_ms: 10_000,
                feedback: Vec::new(),
            },
            policy: AttestationPolicy {
                allowed_binaries: [[0xaa; 32]].into_iter().collect::<BTreeSet<_>>(),
                answer_window_ms: 5_000,
                max_skew_ms: 1_000,
            },
            master,
            slot,
            slot_key,
            commitments,
            shares,
        }
    }
}

/// The fixtures, built once per process.
pub static FX: LazyLock<Fixtures> = LazyLock::new(Fixtures::new);
