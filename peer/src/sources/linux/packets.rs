//! Packet arrival timing (`AF_PACKET` capture, `SO_TIMESTAMPNS`): LSBs of the ns between arrivals.
//!
//! A packet socket receives every frame of one interface (`packets:<if>`), each with the kernel's
//! receive timestamp in nanoseconds (`SCM_TIMESTAMPNS`, taken when the driver hands the frame to
//! the stack). The sample for a frame is the low 4 bits of the nanoseconds since the previous
//! frame's timestamp. The first frame after opening gives none, nor does a frame stamped at or
//! before the previous one (the wall clock stepped back: sampling restarts from it). Frames this
//! device sends (`PACKET_OUTGOING`) or loops back to itself (`PACKET_LOOPBACK`) are skipped: their
//! times follow our own sends. The socket only receives: it never sends, and each read asks for
//! no packet bytes at all (a zero-length buffer; the kernel truncates), so traffic contents never
//! reach this process, only the timestamp and the link-layer metadata (interface, direction).
//!
//! Claim: 4 bits per sample, 0.5 bit of min-entropy, the same as `jitter`. The low nanosecond
//! bits of an arrival gap come from interrupt moderation, NAPI polling, bus and cache latency
//! and the phase of the clocksource, which no sender and no on-path observer sees to 16 ns; but
//! a sender does choose the gaps to the microsecond, frames of one burst are stamped in one NAPI
//! poll at a pace the CPU sets, and a board's clocksource ticks in steps (52 ns at 19.2 MHz on a
//! Pi 3, 18.5 ns at 54 MHz on a Pi 4), so only an eighth of the width is claimed. On the
//! development VM, loopback datagrams sent by a local process (about 6,000 a second) assessed at
//! 2.97 bits per sample (ten estimators, 60,000 samples); a board's NIC was not measured. The
//! claim is an upper bound, not a measurement: the device assesses every source at its first
//! start and keeps the lower of the two (SP 800-90B §6.3), and the coordinator audits raw
//! windows. An idle link gives no samples at all.
//!
//! The socket is bound in the kernel to the interface's link-layer address as `getifaddrs`
//! reports it (nix offers no safe way to build a `sockaddr_ll`, but hands that one out); an
//! interface without a link-layer address (a tunnel) is captured unbound, and frames of other
//! interfaces are dropped here by index. Interfaces are chosen as for `net:<if>`: down links are
//! skipped and `lo` is captured only when no other interface is. `packets`, one socket for every
//! interface at once, is opt-in ([`super::DetectConfig::packets_all_interfaces`]): copies of one
//! frame crossing a bridge, a VLAN or a veth pair arrive twice within a predictable gap, which
//! per-interface sockets never see side by side.
//!
//! Capture needs `CAP_NET_RAW`; without it the whole kind is skipped with one line and `softnet`
//! stands in. The shipped systemd unit grants no capability and leaves `AF_PACKET` out of its
//! `RestrictAddressFamilies` (docs/decisions/0039-new-linux-sources.md).
//!
//! A read blocks until a sample arrives, for at most [`RECEIVE_TIMEOUT`] (`SO_RCVTIMEO`), then
//! takes whatever else the kernel has queued without waiting; an idle link gives empty reads,
//! never an error, and the caller asks again. The kernel queue is bounded by `SO_RCVBUF`: frames
//! arriving while nobody reads are dropped, which only widens one gap.

use super::netstat::{dead_state, list_interfaces};
use super::{DetectConfig, Detected, OpenError, unavailable};
use crate::sources::{EntropySource, SourceError};
use nix::errno::Errno;
use nix::sys::socket::{
    AddressFamily, ControlMessageOwned, LinkAddr, MsgFlags, SockFlag, SockProtocol, SockType, bind,
    recvmsg, setsockopt, socket, sockopt,
};
use nix::sys::time::{TimeSpec, TimeVal, TimeValLike};
use protocols::entropy::SourceSpec;
use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};
use thiserror::Error;

/// Bits kept from each arrival gap.
pub const PACKETS_BITS_PER_SAMPLE: u8 = 4;
/// Min-entropy claimed per packet-timing sample.
pub const PACKETS_MIN_ENTROPY: f64 = 0.5;

/// Longest a read waits for its first sample (`SO_RCVTIMEO` and the read's own deadline).
pub const RECEIVE_TIMEOUT: Duration = Duration::from_millis(RECEIVE_TIMEOUT_MS);
const RECEIVE_TIMEOUT_MS: u64 = 300;
/// Kernel receive queue asked for (`SO_RCVBUF`; the kernel doubles it for its bookkeeping).
const RECEIVE_QUEUE_BYTES: usize = 64 * 1024;
/// Most frames one read takes off the queue, sampled or skipped, so a flood cannot hold it.
const READ_FRAMES_MAX: usize = 16_384;
/// `sll_pkttype` of frames this host sent (`linux/if_packet.h`); greater values are sends looped
/// back (`PACKET_LOOPBACK`) or kernel-internal.
const PACKET_OUTGOING: u8 = 4;

/// Name of the kind, and of the source capturing every interface on one socket.
const KIND: &str = "packets";

/// Why a capture socket could not be set up.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CaptureError {
    /// The kernel refused the packet socket for lack of privilege.
    #[error("needs CAP_NET_RAW: packet capture refused ({0})")]
    NotPermitted(Errno),
    /// Packet sockets are unavailable: filtered by a sandbox or absent from the kernel.
    #[error(
        "AF_PACKET sockets are not available ({0}): a sandbox's RestrictAddressFamilies, or a \
         kernel without packet sockets"
    )]
    FamilyUnavailable(Errno),
    /// The interface is not known to the running kernel.
    #[error("no interface {interface} in the running kernel ({source})")]
    NoInterface {
        /// The interface name.
        interface: String,
        /// The error from `if_nametoindex`.
        source: Errno,
    },
    /// A step of setting the socket up failed.
    #[error("{step} failed: {source}")]
    Setup {
        /// The step (`socket`, `bind`, `SO_TIMESTAMPNS`, ...).
        step: &'static str,
        /// The error.
        source: Errno,
    },
}

impl CaptureError {
    /// Whether every interface would fail the same way (privilege or sandbox), so the whole
    /// kind is skipped with one line.
    pub fn refuses_every_interface(&self) -> bool {
        matches!(
            self,
            CaptureError::NotPermitted(_) | CaptureError::FamilyUnavailable(_)
        )
    }

    fn setup(step: &'static str) -> impl Fn(Errno) -> CaptureError {
        move |source| CaptureError::Setup { step, source }
    }
}

/// Nanoseconds since the epoch of a kernel timestamp (its seconds and nanoseconds, whose types
/// differ between targets); `None` for one before the epoch or with nanoseconds out of range.
pub fn timestamp_nanos(seconds: impl TryInto<u64>, nanoseconds: impl TryInto<u64>) -> Option<u64> {
    let seconds: u64 = seconds.try_into().ok()?;
    let nanoseconds: u64 = nanoseconds.try_into().ok().filter(|n| *n < 1_000_000_000)?;
    seconds.checked_mul(1_000_000_000)?.checked_add(nanoseconds)
}

/// The sample for a frame stamped `at_ns` after one stamped `previous_ns`: the low bits (under
/// `mask`) of the gap, or `None` when the clock did not move forward.
pub fn arrival_gap_sample(previous_ns: u64, at_ns: u64, mask: u8) -> Option<u8> {
    match at_ns.checked_sub(previous_ns) {
        Some(0) | None => None,
        Some(gap) => Some((gap as u8) & mask),
    }
}

/// Whether a frame of this `sll_pkttype` arrived from the network (to this host, broadcast,
/// multicast, or to another host in promiscuous mode) rather than being sent or looped back.
pub fn is_arrival(packet_type: u8) -> bool {
    packet_type < PACKET_OUTGOING
}

/// Turns arrival timestamps into samples: the low bits of the gap since the previous arrival.
#[derive(Debug, Clone)]
pub struct ArrivalSampler {
    mask: u8,
    last: Option<u64>,
}

impl ArrivalSampler {
    /// A sampler keeping the low `bits` (1..=8) bits of each gap.
    pub fn new(bits: u8) -> Self {
        Self {
            mask: super::mask(bits),
            last: None,
        }
    }

    /// Records an arrival at `at_ns`; returns a sample unless it is the first or not later than
    /// the previous one. A timestamp earlier than the last (clock stepped back) restarts from it.
    pub fn push(&mut self, at_ns: u64) -> Option<u8> {
        let previous = self.last.replace(at_ns)?;
        arrival_gap_sample(previous, at_ns, self.mask)
    }
}

/// What one receive took off the queue.
enum Frame {
    /// An arrival this source samples, stamped in nanoseconds since the epoch.
    Arrival(u64),
    /// A frame sent by this host, of another interface, or without a usable timestamp.
    Skipped,
}

/// Packet arrival timings of one interface (`packets:<if>`) or of all (`packets`).
pub struct PacketSource {
    name: String,
    spec: SourceSpec,
    socket: OwnedFd,
    /// Index of the captured interface, to drop other interfaces' frames; `None`: keep all.
    interface_index: Option<usize>,
    sampler: ArrivalSampler,
    /// Room for the one control message asked for (`SCM_TIMESTAMPNS`).
    control: Vec<u8>,
}

impl PacketSource {
    /// Opens a capture socket on `interface`, or on every interface with `None`.
    pub fn open(interface: Option<&str>) -> Result<Self, OpenError> {
        let spec = SourceSpec::new(PACKETS_BITS_PER_SAMPLE, PACKETS_MIN_ENTROPY)?;
        let (name, link, interface_index) = match interface {
            Some(interface) => {
                let (link, index) = find_link(interface)?;
                (format!("{KIND}:{interface}"), link, Some(index))
            }
            None => (KIND.to_owned(), None, None),
        };
        let socket = open_socket(link.as_ref())?;
        Ok(Self {
            name,
            spec,
            socket,
            interface_index,
            sampler: ArrivalSampler::new(PACKETS_BITS_PER_SAMPLE),
            control: nix::cmsg_space!(TimeSpec),
        })
    }

    /// One `recvmsg`, waiting up to [`RECEIVE_TIMEOUT`] when `wait`; `Ok(None)` when nothing
    /// came (the queue is empty, or the wait ran out).
    fn receive(&mut self, wait: bool) -> Result<Option<Frame>, Errno> {
        let flags = if wait {
            MsgFlags::empty()
        } else {
            MsgFlags::MSG_DONTWAIT
        };
        let mut nothing = [0u8; 0];
        let mut iov = [IoSliceMut::new(&mut nothing)];
        let msg = match recvmsg::<LinkAddr>(
            self.socket.as_raw_fd(),
            &mut iov,
            Some(&mut self.control),
            flags,
        ) {
            Ok(msg) => msg,
            Err(Errno::EAGAIN) => return Ok(None),
            Err(e) => return Err(e),
        };
        let wanted = msg.address.is_some_and(|link| {
            is_arrival(link.pkttype())
                && self
                    .interface_index
                    .is_none_or(|index| link.ifindex() == index)
        });
        if !wanted {
            return Ok(Some(Frame::Skipped));
        }
        let at = msg
            .cmsgs()
            .ok()
            .into_iter()
            .flatten()
            .find_map(|c| match c {
                ControlMessageOwned::ScmTimestampns(ts) => {
                    timestamp_nanos(ts.tv_sec(), ts.tv_nsec())
                }
                _ => None,
            });
        Ok(Some(at.map_or(Frame::Skipped, Frame::Arrival)))
    }
}

/// The interface's link-layer address to bind to (when it has one) and its index.
fn find_link(interface: &str) -> Result<(Option<LinkAddr>, usize), CaptureError> {
    let link = nix::ifaddrs::getifaddrs()
        .map_err(CaptureError::setup("getifaddrs"))?
        .filter(|a| a.interface_name == interface)
        .find_map(|a| a.address.and_then(|s| s.as_link_addr().copied()));
    if let Some(link) = link {
        return Ok((Some(link), link.ifindex()));
    }
    let index =
        nix::net::if_::if_nametoindex(interface).map_err(|source| CaptureError::NoInterface {
            interface: interface.to_owned(),
            source,
        })?;
    let index = usize::try_from(index).map_err(|_| CaptureError::NoInterface {
        interface: interface.to_owned(),
        source: Errno::ERANGE,
    })?;
    Ok((None, index))
}

/// A receive-only packet socket for every protocol, bound to `link` when given, with
/// nanosecond receive timestamps, a receive timeout and a bounded queue.
fn open_socket(link: Option<&LinkAddr>) -> Result<OwnedFd, CaptureError> {
    let socket = socket(
        AddressFamily::Packet,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::EthAll,
    )
    .map_err(|e| match e {
        Errno::EPERM | Errno::EACCES => CaptureError::NotPermitted(e),
        Errno::EAFNOSUPPORT => CaptureError::FamilyUnavailable(e),
        e => CaptureError::Setup {
            step: "socket(AF_PACKET)",
            source: e,
        },
    })?;
    if let Some(link) = link {
        // `sll_protocol` is 0 in getifaddrs' address: the socket keeps ETH_P_ALL.
        bind(socket.as_raw_fd(), link).map_err(CaptureError::setup("bind to the interface"))?;
    }
    setsockopt(&socket, sockopt::ReceiveTimestampns, &true)
        .map_err(CaptureError::setup("SO_TIMESTAMPNS"))?;
    let timeout = TimeVal::milliseconds(RECEIVE_TIMEOUT_MS as i64);
    setsockopt(&socket, sockopt::ReceiveTimeout, &timeout)
        .map_err(CaptureError::setup("SO_RCVTIMEO"))?;
    setsockopt(&socket, sockopt::RcvBuf, &RECEIVE_QUEUE_BYTES)
        .map_err(CaptureError::setup("SO_RCVBUF"))?;
    Ok(socket)
}

impl EntropySource for PacketSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn spec(&self) -> SourceSpec {
        self.spec
    }

    /// Waits up to [`RECEIVE_TIMEOUT`] for the first sample, then takes what is queued without
    /// waiting, up to `max` samples (and at most 16,384 frames). An idle link returns with no
    /// samples and no error; a socket error makes the source unavailable.
    fn read_samples(&mut self, out: &mut Vec<u8>, max: usize) -> Result<(), SourceError> {
        let start = out.len();
        let began = Instant::now();
        for _ in 0..READ_FRAMES_MAX {
            if out.len() - start >= max {
                break;
            }
            let wait = out.len() == start && began.elapsed() < RECEIVE_TIMEOUT;
            match self.receive(wait) {
                Ok(Some(Frame::Arrival(at))) => out.extend(self.sampler.push(at)),
                Ok(Some(Frame::Skipped)) | Err(Errno::EINTR) => {}
                Ok(None) => break,
                Err(e) => return Err(unavailable(&self.name, format!("receiving: {e}"))),
            }
        }
        Ok(())
    }
}

pub(super) fn probe(config: &DetectConfig, found: &mut Detected) {
    if !config.packet_capture {
        return found.skip(KIND, "disabled by configuration");
    }
    if let Err(refusal) = probe_interfaces(config, found) {
        return found.skip(KIND, refusal);
    }
    if !config.packets_all_interfaces {
        return found.skip(
            KIND,
            "one socket for every interface is opt-in (`entropy sample --source packets`); \
             packets:<if> capture each interface on its own",
        );
    }
    match PacketSource::open(None) {
        Ok(source) => found.add(Box::new(source)),
        Err(e) => found.skip(KIND, e),
    }
}

/// Offers `packets:<if>` for each usable interface (as `net:<if>` chooses them); `Err` with the
/// reason when capture is refused outright or no interface can be listed.
fn probe_interfaces(config: &DetectConfig, found: &mut Detected) -> Result<(), String> {
    let interfaces = list_interfaces(config)?;
    let mut opened = 0usize;
    for (interface, path) in &interfaces.others {
        let name = format!("{KIND}:{interface}");
        if let Some(state) = dead_state(path) {
            found.skip(&name, format!("interface is {state}"));
            continue;
        }
        match PacketSource::open(Some(interface)) {
            Ok(source) => {
                found.add(Box::new(source));
                opened += 1;
            }
            Err(OpenError::Capture(e)) if e.refuses_every_interface() => return Err(e.to_string()),
            Err(e) => found.skip(&name, e),
        }
    }
    if interfaces.loopback.is_some() {
        let name = format!("{KIND}:lo");
        if opened > 0 {
            found.skip(
                &name,
                "loopback only sees local traffic and another interface is captured",
            );
            return Ok(());
        }
        match PacketSource::open(Some("lo")) {
            Ok(source) => found.add(Box::new(source)),
            Err(OpenError::Capture(e)) if e.refuses_every_interface() => return Err(e.to_string()),
            Err(e) => found.skip(&name, e),
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "packets_tests.rs"]
mod tests;
