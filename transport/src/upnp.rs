//! UPnP IGD port mapping for relays behind a home router: find the gateway, learn its external
//! address, map UDP/TCP ports with a finite lease, renew the lease, remove the mappings.
//!
//! It is not NAT-PMP/PCP, and it does not test reachability from outside (a gateway that maps a
//! port behind another NAT is caught only by its private external address). Every gateway
//! request is bounded by [`PortMapperConfig::request_timeout`]; the search by
//! [`PortMapperConfig::search_timeout`]. The decisions (which addresses are public, when to
//! renew) are the sans-IO [`policy`] module.

mod handle;
pub mod policy;

pub use handle::MappingHandle;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use igd_next::{
    AddPortError, GetExternalIpError, PortMappingProtocol, RequestError, SearchOptions,
};
use libp2p::Multiaddr;
use libp2p::multiaddr::Protocol::{Ip4, P2p, QuicV1, Tcp, Udp};
use tracing::debug;

use policy::{lease_secs, not_public_reason};

/// The transport protocol of a port mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// UDP (QUIC).
    Udp,
    /// TCP.
    Tcp,
}

impl Protocol {
    fn igd(self) -> PortMappingProtocol {
        match self {
            Protocol::Udp => PortMappingProtocol::UDP,
            Protocol::Tcp => PortMappingProtocol::TCP,
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Udp => "UDP",
            Protocol::Tcp => "TCP",
        })
    }
}

/// One mapping the gateway holds: `external_ip:external_port` forwards to `internal`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortMapping {
    /// UDP or TCP.
    pub protocol: Protocol,
    /// The port on the gateway's external address (always equal to the internal port).
    pub external_port: u16,
    /// Where the gateway forwards to: this machine's LAN address and port.
    pub internal: SocketAddrV4,
}

/// Bounds of a [`PortMapper`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortMapperConfig {
    /// How long the SSDP search for a gateway may take in all.
    pub search_timeout: Duration,
    /// How long one request to the gateway (external address, add, remove) may take.
    pub request_timeout: Duration,
    /// Retries after a failed lease renewal (see [`policy::RenewSchedule`]).
    pub renew_retries: u32,
}

impl Default for PortMapperConfig {
    fn default() -> Self {
        PortMapperConfig {
            search_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(5),
            renew_retries: 3,
        }
    }
}

/// What [`PortMapper::map`] achieved. Its `Display` is the one log line saying so.
#[derive(Debug)]
pub enum MapOutcome {
    /// Every port is mapped on a public external address.
    Mapped {
        /// The gateway's external (public) address.
        external_ip: Ipv4Addr,
        /// The mappings, in the order of the requested ports.
        mappings: Vec<PortMapping>,
        /// Keeps the lease renewed; call [`MappingHandle::remove`] on shutdown.
        handle: MappingHandle,
    },
    /// No gateway answered, or it could not be used.
    NoGateway {
        /// What went wrong.
        reason: String,
    },
    /// The gateway answered but refused (its UPnP error code, when it gave one). Nothing stays
    /// mapped.
    Refused {
        /// The gateway's error code and text, or what failed.
        reason: String,
    },
    /// The gateway's external address is not public (private, loopback or carrier-grade NAT):
    /// mapping would not make the relay reachable, so nothing stays mapped.
    NotPublic {
        /// The gateway's external address.
        external_ip: IpAddr,
        /// Which kind of non-public address it is.
        reason: &'static str,
    },
}

impl MapOutcome {
    /// Whether ports were mapped (and the relay may advertise the external address).
    pub fn is_mapped(&self) -> bool {
        matches!(self, MapOutcome::Mapped { .. })
    }
}

impl fmt::Display for MapOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MapOutcome::Mapped {
                external_ip,
                mappings,
                handle,
            } => {
                write!(f, "UPnP: mapped")?;
                for (i, m) in mappings.iter().enumerate() {
                    let sep = if i == 0 { " " } else { ", " };
                    write!(
                        f,
                        "{sep}{} {external_ip}:{} -> {}",
                        m.protocol, m.external_port, m.internal
                    )?;
                }
                let lease = match handle.lease_secs {
                    0 => "permanent".to_string(),
                    s => format!("{s} s"),
                };
                write!(f, " (lease {lease}, gateway {})", handle.gateway.addr)
            }
            MapOutcome::NoGateway { reason } => {
                write!(f, "UPnP: no mapping, no gateway found: {reason}")
            }
            MapOutcome::Refused { reason } => {
                write!(f, "UPnP: no mapping, the gateway refused: {reason}")
            }
            MapOutcome::NotPublic {
                external_ip,
                reason,
            } => write!(
                f,
                "UPnP: no mapping, the gateway's external address {external_ip} is not public: \
                 {reason}"
            ),
        }
    }
}

/// Maps ports on the local network's UPnP Internet Gateway Device.
#[derive(Debug, Clone, Default)]
pub struct PortMapper {
    config: PortMapperConfig,
}

impl PortMapper {
    /// A mapper with these bounds.
    pub fn new(config: PortMapperConfig) -> Self {
        PortMapper { config }
    }

    /// Finds the gateway, checks that its external address is public, and maps every
    /// `(protocol, port)` from the same external port to `local_ip:port` for `lease` (clamped
    /// to 10 s ..= 7 days). `local_ip` is this machine's LAN address; `0.0.0.0` means "the
    /// address that routes to the gateway". All or nothing: when one mapping fails, the ones
    /// made are removed. Never panics and never takes longer than the search plus one request
    /// timeout per step.
    pub async fn map(
        &self,
        local_ip: Ipv4Addr,
        ports: &[(Protocol, u16)],
        lease: Duration,
        description: &str,
    ) -> MapOutcome {
        let opts = SearchOptions {
            bind_addr: SocketAddr::from((local_ip, 0)),
            ..Default::default()
        };
        self.map_with(opts, local_ip, ports, lease, description)
            .await
    }

    async fn map_with(
        &self,
        mut opts: SearchOptions,
        local_ip: Ipv4Addr,
        ports: &[(Protocol, u16)],
        lease: Duration,
        description: &str,
    ) -> MapOutcome {
        let cfg = &self.config;
        opts.timeout = Some(cfg.search_timeout);
        opts.single_search_timeout = Some(cfg.search_timeout.min(Duration::from_secs(2)));
        let search = igd_next::aio::tokio::search_gateway(opts);
        let gateway = match bounded(cfg.search_timeout * 2, search).await {
            Ok(Ok(gw)) => gw,
            Ok(Err(e)) => return no_gateway(e),
            Err(elapsed) => return no_gateway(format!("search {elapsed}")),
        };
        debug!(gateway = %gateway.addr, "UPnP gateway found");
        let local_ip = match local_ip.is_unspecified() {
            true => match route_source(gateway.addr) {
                Ok(ip) => ip,
                Err(e) => {
                    return no_gateway(format!("no local address towards {}: {e}", gateway.addr));
                }
            },
            false => local_ip,
        };
        let external_ip = match bounded(cfg.request_timeout, gateway.get_external_ip()).await {
            Ok(Ok(IpAddr::V4(ip))) => ip,
            Ok(Ok(ip @ IpAddr::V6(_))) => {
                return MapOutcome::NotPublic {
                    external_ip: ip,
                    reason: "an IPv6 address (only IPv4 is mapped)",
                };
            }
            Ok(Err(e)) => return refused(external_ip_error_text(&e)),
            Err(elapsed) => return refused(format!("external address: {elapsed}")),
        };
        if let Some(reason) = not_public_reason(external_ip) {
            return MapOutcome::NotPublic {
                external_ip: IpAddr::V4(external_ip),
                reason,
            };
        }
        let mut handle = MappingHandle {
            gateway: Box::new(gateway),
            mappings: Vec::with_capacity(ports.len()),
            lease_secs: lease_secs(lease),
            description: description.to_string(),
            request_timeout: cfg.request_timeout,
            renewal: None,
            renewed_at: Default::default(),
        };
        for &(protocol, port) in ports {
            let mapping = PortMapping {
                protocol,
                external_port: port,
                internal: SocketAddrV4::new(local_ip, port),
            };
            if let Err(reason) = handle.add_first(mapping).await {
                handle.remove().await;
                return refused(reason);
            }
        }
        handle.start_renewal(cfg.renew_retries);
        MapOutcome::Mapped {
            external_ip,
            mappings: handle.mappings.clone(),
            handle,
        }
    }
}

/// The ports to map for a node listening on `addrs` (`/ip4/…/udp/P/quic-v1` and
/// `/ip4/…/tcp/P`; others are ignored), each once, and the local address to map them to: the
/// one non-loopback IPv4 address they name, or `0.0.0.0` (let [`PortMapper::map`] find the
/// address that routes to the gateway) when there are none or several.
pub fn listen_ports(addrs: &[Multiaddr]) -> (Ipv4Addr, Vec<(Protocol, u16)>) {
    let mut ips = Vec::new();
    let mut ports = Vec::new();
    for addr in addrs {
        let mut parts = addr.iter();
        let (Some(Ip4(ip)), Some(transport)) = (parts.next(), parts.next()) else {
            continue;
        };
        let port = match (transport, parts.next()) {
            (Udp(port), Some(QuicV1)) => (Protocol::Udp, port),
            (Tcp(port), None | Some(P2p(_))) => (Protocol::Tcp, port),
            _ => continue,
        };
        if ip.is_loopback() || port.1 == 0 {
            continue;
        }
        if !ips.contains(&ip) {
            ips.push(ip);
        }
        if !ports.contains(&port) {
            ports.push(port);
        }
    }
    // QUIC first, as in the listen list (the transport reports its listeners in any order).
    ports.sort_by_key(|(protocol, _)| *protocol == Protocol::Tcp);
    let ip = match ips.as_slice() {
        [one] => *one,
        _ => Ipv4Addr::UNSPECIFIED,
    };
    (ip, ports)
}

/// The addresses to advertise for `mappings` on `external_ip`: QUIC for UDP, plain TCP.
pub fn mapped_addrs(external_ip: Ipv4Addr, mappings: &[PortMapping]) -> Vec<Multiaddr> {
    mappings
        .iter()
        .map(|m| {
            let addr = Multiaddr::empty().with(Ip4(external_ip));
            match m.protocol {
                Protocol::Udp => addr.with(Udp(m.external_port)).with(QuicV1),
                Protocol::Tcp => addr.with(Tcp(m.external_port)),
            }
        })
        .collect()
}

fn no_gateway(reason: impl fmt::Display) -> MapOutcome {
    MapOutcome::NoGateway {
        reason: one_line(&reason.to_string()),
    }
}

fn refused(reason: impl fmt::Display) -> MapOutcome {
    MapOutcome::Refused {
        reason: one_line(&reason.to_string()),
    }
}

/// The longest reason put in the log line (gateways may answer with whole XML documents).
const MAX_REASON_CHARS: usize = 200;

/// `text` on one line (whitespace runs become one space), cut at [`MAX_REASON_CHARS`].
fn one_line(text: &str) -> String {
    let mut out = String::new();
    for (i, word) in text.split_whitespace().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(word);
    }
    match out.char_indices().nth(MAX_REASON_CHARS) {
        Some((cut, _)) => format!("{}...", &out[..cut]),
        None => out,
    }
}

/// Why GetExternalIPAddress failed. miniupnpd answers with an empty address (which igd-next
/// reports as an invalid response, XML and all) when its own WAN address is reserved.
fn external_ip_error_text(e: &GetExternalIpError) -> String {
    match e {
        GetExternalIpError::ActionNotAuthorized => {
            "external address: 606 Action not authorized".into()
        }
        GetExternalIpError::RequestError(RequestError::InvalidResponse(_)) => {
            "no external address (empty or invalid answer: the router may itself be behind NAT)"
                .into()
        }
        GetExternalIpError::RequestError(RequestError::ErrorCode(code, text)) => {
            format!("external address: {code} {text}")
        }
        GetExternalIpError::RequestError(e) => format!("external address: {e}"),
    }
}

/// Runs `fut` for at most `limit`; the error says how long was allowed.
async fn bounded<F: Future>(limit: Duration, fut: F) -> Result<F::Output, TimedOut> {
    tokio::time::timeout(limit, fut)
        .await
        .map_err(|_| TimedOut(limit))
}

/// A gateway step ran out of time.
struct TimedOut(Duration);

impl fmt::Display for TimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "timed out after {:?}", self.0)
    }
}

/// The local IPv4 address the kernel uses to reach `gateway` (no packet is sent).
fn route_source(gateway: SocketAddr) -> std::io::Result<Ipv4Addr> {
    let probe = std::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?;
    probe.connect(gateway)?;
    match probe.local_addr()?.ip() {
        IpAddr::V4(ip) => Ok(ip),
        IpAddr::V6(ip) => Err(std::io::Error::other(format!("{ip} is not IPv4"))),
    }
}

/// The gateway's UPnP error for a failed AddPortMapping, with its standard code.
fn add_error_text(e: &AddPortError) -> String {
    match e {
        AddPortError::ActionNotAuthorized => "606 Action not authorized".into(),
        AddPortError::InternalPortZeroInvalid => "internal port 0 is invalid".into(),
        AddPortError::ExternalPortZeroInvalid => "716 external port 0 is invalid".into(),
        AddPortError::PortInUse => "718 ConflictInMappingEntry (port in use)".into(),
        AddPortError::SamePortValuesRequired => "724 SamePortValuesRequired".into(),
        AddPortError::OnlyPermanentLeasesSupported => "725 OnlyPermanentLeasesSupported".into(),
        AddPortError::DescriptionTooLong => "description too long".into(),
        AddPortError::RequestError(RequestError::ErrorCode(code, text)) => format!("{code} {text}"),
        AddPortError::RequestError(e) => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(list: &[&str]) -> Vec<Multiaddr> {
        list.iter().map(|a| a.parse().expect("multiaddr")).collect()
    }

    #[test]
    fn listen_ports_takes_quic_and_tcp_once_and_skips_loopback() {
        let (ip, ports) = listen_ports(&addrs(&[
            "/ip4/127.0.0.1/udp/9401/quic-v1",
            "/ip4/10.77.0.2/tcp/9402",
            "/ip4/10.77.0.2/udp/9401/quic-v1",
            "/ip4/10.77.0.2/udp/9403",
            "/ip6/::1/tcp/9404",
            "/ip4/10.77.0.2/tcp/9402",
        ]));
        assert_eq!(ip, Ipv4Addr::new(10, 77, 0, 2));
        assert_eq!(ports, [(Protocol::Udp, 9401), (Protocol::Tcp, 9402)]);
        // Two LAN addresses: let the mapper pick the one that routes to the gateway.
        let (ip, ports) = listen_ports(&addrs(&[
            "/ip4/10.77.0.2/udp/9401/quic-v1",
            "/ip4/192.168.1.5/udp/9401/quic-v1",
        ]));
        assert_eq!(
            (ip, ports),
            (Ipv4Addr::UNSPECIFIED, vec![(Protocol::Udp, 9401)])
        );
        assert_eq!(listen_ports(&[]), (Ipv4Addr::UNSPECIFIED, vec![]));
    }

    #[test]
    fn mapped_addrs_are_quic_and_tcp_multiaddrs() {
        let internal = SocketAddrV4::new(Ipv4Addr::new(10, 77, 0, 2), 9401);
        let m = |protocol| PortMapping {
            protocol,
            external_port: 9401,
            internal,
        };
        let got = mapped_addrs(
            Ipv4Addr::new(198, 18, 0, 2),
            &[m(Protocol::Udp), m(Protocol::Tcp)],
        );
        assert_eq!(
            got,
            addrs(&[
                "/ip4/198.18.0.2/udp/9401/quic-v1",
                "/ip4/198.18.0.2/tcp/9401"
            ])
        );
    }

    #[test]
    fn gateway_errors_carry_their_upnp_code() {
        assert!(add_error_text(&AddPortError::PortInUse).starts_with("718"));
        assert!(add_error_text(&AddPortError::ActionNotAuthorized).starts_with("606"));
        let e = AddPortError::RequestError(RequestError::ErrorCode(501, "ActionFailed".into()));
        assert_eq!(add_error_text(&e), "501 ActionFailed");
    }

    #[test]
    fn reasons_are_one_bounded_line() {
        assert_eq!(one_line("a\n  b\tc\n"), "a b c");
        let long = "x ".repeat(300);
        let line = one_line(&long);
        assert_eq!(line.chars().count(), MAX_REASON_CHARS + 3);
        assert!(line.ends_with("..."));
        let xml = RequestError::InvalidResponse("<?xml version=\"1.0\"?>\n<s:Envelope>".into());
        let text = external_ip_error_text(&GetExternalIpError::RequestError(xml));
        assert!(
            !text.contains('\n') && text.contains("no external address"),
            "{text}"
        );
        let line = refused("a\nb").to_string();
        assert!(!line.contains('\n'), "{line}");
    }

    #[test]
    fn the_log_line_says_why_nothing_was_mapped() {
        let line = MapOutcome::NotPublic {
            external_ip: "100.64.1.2".parse().expect("ip"),
            reason: "carrier-grade NAT (100.64.0.0/10)",
        }
        .to_string();
        assert!(
            line.contains("100.64.1.2") && line.contains("carrier-grade"),
            "{line}"
        );
        let line = refused("UDP port 9401: 501 ActionFailed").to_string();
        assert!(
            line.contains("refused: UDP port 9401: 501 ActionFailed"),
            "{line}"
        );
        assert!(no_gateway("x").to_string().contains("no gateway found: x"));
        assert!(!refused("x").is_mapped());
    }

    /// The search bound holds even when nothing answers: SSDP goes to a loopback socket that
    /// never replies (no packet leaves the machine).
    #[tokio::test]
    async fn a_silent_network_gives_no_gateway_within_the_search_bound() {
        let silent = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let opts = SearchOptions {
            bind_addr: "127.0.0.1:0".parse().expect("addr"),
            broadcast_address: silent.local_addr().expect("addr"),
            ..Default::default()
        };
        let mapper = PortMapper::new(PortMapperConfig {
            search_timeout: Duration::from_millis(300),
            ..Default::default()
        });
        let start = std::time::Instant::now();
        let out = mapper
            .map_with(
                opts,
                Ipv4Addr::LOCALHOST,
                &[(Protocol::Udp, 9401)],
                Duration::from_secs(60),
                "t",
            )
            .await;
        assert!(matches!(out, MapOutcome::NoGateway { .. }), "{out}");
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
    }
}
