//! Multiaddresses typed by operators (`--listen`, `--coordinator`, config files): parsed with an
//! error that names the expected form.

use libp2p::Multiaddr;
use libp2p::multiaddr::Protocol;

/// The listen forms the network transport serves.
pub const LISTEN_FORMS: &str = "/ip4/<address>/tcp/<port> or /ip4/<address>/udp/<port>/quic-v1 \
     (or /ip6/…)";

/// A listen address the TCP or QUIC transport can bind: `/ip4|ip6/A/tcp/P` or
/// `/ip4|ip6/A/udp/P/quic-v1`. The error names the text and the form expected, with the
/// address rewritten when it was given as `host:port`.
pub fn listen_addr(text: &str) -> Result<Multiaddr, String> {
    let addr: Multiaddr = text.parse().map_err(|e| {
        format!(
            "listen address {text:?} is not a multiaddr ({e}); {}",
            suggestion(text)
        )
    })?;
    let parts: Vec<Protocol> = addr.iter().collect();
    let ip = matches!(parts.first(), Some(Protocol::Ip4(_) | Protocol::Ip6(_)));
    let transport = matches!(
        parts.get(1..),
        Some([Protocol::Tcp(_)] | [Protocol::Udp(_), Protocol::QuicV1])
    );
    if ip && transport {
        Ok(addr)
    } else {
        Err(format!(
            "listen address {text:?} cannot be listened on; expected {LISTEN_FORMS}"
        ))
    }
}

/// The pinned coordinator's address: a multiaddr ending in `/p2p/<PeerId>`.
pub fn coordinator_addr(text: &str) -> Result<Multiaddr, String> {
    const FORM: &str = "/ip4/<address>/tcp/<port>/p2p/<PeerId>, as `coordinator init` prints it";
    let addr: Multiaddr = text.parse().map_err(|e| {
        format!("coordinator address {text:?} is not a multiaddr ({e}); expected {FORM}")
    })?;
    if matches!(addr.iter().last(), Some(Protocol::P2p(_))) {
        Ok(addr)
    } else {
        Err(format!(
            "coordinator address {text:?} does not end in /p2p/<PeerId>; expected {FORM}"
        ))
    }
}

/// What to write instead of `text`: its multiaddr forms when it is `host:port`.
fn suggestion(text: &str) -> String {
    match text.trim().parse::<std::net::SocketAddr>() {
        Ok(socket) => {
            let ip = match socket.ip() {
                std::net::IpAddr::V4(ip) => format!("/ip4/{ip}"),
                std::net::IpAddr::V6(ip) => format!("/ip6/{ip}"),
            };
            let port = socket.port();
            format!("write it as {ip}/tcp/{port} (TCP) or {ip}/udp/{port}/quic-v1 (QUIC)")
        }
        Err(_) => format!("expected {LISTEN_FORMS}"),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn host_and_port_is_refused_with_its_multiaddr_forms() {
        let err = listen_addr("0.0.0.0:7400").unwrap_err();
        assert!(err.contains("\"0.0.0.0:7400\" is not a multiaddr"), "{err}");
        assert!(err.contains("/ip4/0.0.0.0/tcp/7400"), "{err}");
        assert!(err.contains("/ip4/0.0.0.0/udp/7400/quic-v1"), "{err}");
        let err = listen_addr("[::1]:9").unwrap_err();
        assert!(err.contains("/ip6/::1/tcp/9"), "{err}");
    }

    #[test]
    fn tcp_and_quic_listen_addresses_are_accepted_and_others_refused() {
        assert!(listen_addr("/ip4/0.0.0.0/tcp/7400").is_ok());
        assert!(listen_addr("/ip6/::/udp/0/quic-v1").is_ok());
        for bad in [
            "/ip4/0.0.0.0",
            "/ip4/1.2.3.4/udp/9",
            "/dns4/x/tcp/1",
            "/memory/4",
        ] {
            let err = listen_addr(bad).unwrap_err();
            assert!(err.contains("cannot be listened on"), "{bad}: {err}");
        }
    }

    #[test]
    fn a_coordinator_address_must_parse_and_end_in_its_peer_id() {
        let err = coordinator_addr("garbage").unwrap_err();
        assert!(err.contains("\"garbage\" is not a multiaddr"), "{err}");
        let err = coordinator_addr("/ip4/127.0.0.1/tcp/7400").unwrap_err();
        assert!(err.contains("does not end in /p2p/<PeerId>"), "{err}");
    }
}
