//! Inbound coordinator requests admitted before any handler runs: the frame within its size
//! limit, the remote a node of the mesh, the call decodable; and a join token read (hex, at most
//! 64 bytes) into the digest the database keys it by.

use peer::node::RequestFrame;
use protocols::ids::NodeId;
use protocols::wire::{self, CoordinatorCall, CoordinatorRequest, Refusal};
use sha2::{Digest, Sha256};

/// The request in `frame` from `peer`, with the remote's node id, or the refusal to answer
/// (`max_len`: the largest request decoded).
pub fn admit(
    frame: RequestFrame,
    peer: &libp2p::PeerId,
    max_len: usize,
) -> Result<(NodeId, CoordinatorRequest), Refusal> {
    let bytes = match frame {
        RequestFrame::Bytes(b) => b,
        RequestFrame::Oversized { len, max } => {
            return Err(Refusal::Malformed(format!(
                "request of {len} bytes over the limit {max}"
            )));
        }
    };
    let remote = peer::identity::node_id(peer).ok_or(Refusal::Unauthorized)?;
    match wire::decode::<CoordinatorCall>(&bytes, max_len) {
        Ok(call) => Ok((remote, call.request)),
        Err(e) => {
            tracing::info!(%peer, error = %e, "malformed coordinator request refused");
            Err(Refusal::Malformed(e.to_string()))
        }
    }
}

/// The digest a join `token` (hex, surrounding white space ignored) is stored under.
pub fn join_token_digest(token: &str) -> Result<[u8; 32], Refusal> {
    let raw = hex_decode(token.trim())
        .ok_or_else(|| Refusal::Malformed("join token must be hex".into()))?;
    Ok(Sha256::digest(&raw).into())
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || s.len() > 128 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()))
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use protocols::identity::NodeKey;
    use protocols::wire::{JoinRequest, WIRE_VERSION};

    fn peer_of(i: u8) -> libp2p::PeerId {
        let key = NodeKey::from_secret_bytes(&[i; 32]);
        peer::identity::keypair(&key).unwrap().public().to_peer_id()
    }

    fn frame(request: CoordinatorRequest) -> RequestFrame {
        RequestFrame::Bytes(wire::encode(&CoordinatorCall {
            v: WIRE_VERSION,
            request,
        }))
    }

    #[test]
    fn a_well_formed_call_from_a_mesh_node_is_admitted_with_its_node_id() {
        let (remote, request) =
            admit(frame(CoordinatorRequest::GetRecord), &peer_of(1), 1 << 16).unwrap();
        assert_eq!(remote, NodeKey::from_secret_bytes(&[1; 32]).node_id());
        assert!(matches!(request, CoordinatorRequest::GetRecord));
    }

    #[test]
    fn oversized_garbage_and_foreign_key_requests_are_refused_by_name() {
        let oversized = RequestFrame::Oversized { len: 9, max: 8 };
        assert_eq!(
            admit(oversized, &peer_of(1), 8),
            Err(Refusal::Malformed(
                "request of 9 bytes over the limit 8".into()
            ))
        );
        let garbage = RequestFrame::Bytes(vec![0xff, 0x00]);
        assert!(matches!(
            admit(garbage, &peer_of(1), 1 << 16),
            Err(Refusal::Malformed(_))
        ));
        let join = CoordinatorRequest::Join(JoinRequest {
            token: "00".repeat(16),
        });
        assert!(matches!(
            admit(frame(join), &peer_of(1), 4),
            Err(Refusal::Malformed(_))
        ));
        let not_ed25519 = libp2p::PeerId::random();
        assert_eq!(
            admit(frame(CoordinatorRequest::GetRecord), &not_ed25519, 1 << 16),
            Err(Refusal::Unauthorized)
        );
    }

    #[test]
    fn a_join_token_is_hex_of_at_most_64_bytes_and_is_keyed_by_its_sha256() {
        let token = [0x5a_u8; 16];
        let digest: [u8; 32] = Sha256::digest(token).into();
        assert_eq!(
            join_token_digest(&format!(" {} \n", "5a".repeat(16))),
            Ok(digest)
        );
        assert_eq!(join_token_digest(&"5A".repeat(16)), Ok(digest));
        for bad in ["5", "zz", &"00".repeat(65), "5a5"] {
            assert_eq!(
                join_token_digest(bad),
                Err(Refusal::Malformed("join token must be hex".into())),
                "{bad}"
            );
        }
        assert!(join_token_digest(&"00".repeat(64)).is_ok());
    }
}
