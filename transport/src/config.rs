//! `TransportConfig`: every limit and timeout of the swarm as a typed value with a named default.
//! It is plain data; it is not parsed here (the node crate maps its TOML onto it).

use std::time::Duration;

use libp2p::Multiaddr;

use crate::Error;

/// Transport settings. `Default` gives values fit for a relay or client; each default is a named
/// function below.
#[derive(Debug, Clone)]
pub struct TransportConfig {
    /// Addresses to listen on, e.g. `/ip4/127.0.0.2/udp/0/quic-v1` and `/ip4/127.0.0.2/tcp/0`.
    /// Empty: a client-only node that dials out and never listens.
    pub listen: Vec<Multiaddr>,
    /// How long a connection with no open stream is kept before the swarm closes it.
    pub idle_timeout: Duration,
    /// How long a peer may stay silent before its connection is declared dead: the QUIC
    /// `max_idle_timeout` (keep-alive packets every quarter of it) and the ping timeout (pings
    /// every half of it; a failed ping closes the connection, which also covers TCP).
    pub dead_peer_timeout: Duration,
    /// QUIC per-stream receive window, bytes (`libp2p::quic::Config::max_stream_data`).
    pub max_stream_window: u32,
    /// QUIC per-connection receive window, bytes (`libp2p::quic::Config::max_connection_data`).
    pub max_connection_window: u32,
    /// Streams the remote may have open at once on one connection (QUIC: further opens wait for
    /// credit; yamux over TCP: further streams are refused). At most 4096 (yamux's window rule).
    pub max_concurrent_streams: u32,
    /// Established connections with one peer; extra ones are refused at establishment.
    pub max_connections_per_peer: u32,
    /// Established connections in total, both directions.
    pub max_connections: u32,
    /// Inbound connections still in their handshake; more are refused.
    pub max_pending_incoming: u32,
    /// Peers kept in the address book; adding one more forgets the oldest-added peer.
    pub max_known_peers: usize,
    /// Addresses kept per peer; adding more forgets that peer's oldest ones.
    pub max_addresses_per_peer: usize,
    /// `open_stream` calls that may wait for a dial at once; more fail at once.
    pub max_pending_dials: usize,
    /// Bound of the command channel into the swarm task.
    pub command_queue: usize,
    /// Bound on one `open_stream` call: dial plus protocol negotiation.
    pub open_timeout: Duration,
    /// How long one QUIC dial may take before the next address (TCP after all QUIC ones) is
    /// tried. Addresses are dialed one at a time, QUIC first.
    pub quic_handshake_timeout: Duration,
    /// Bound on `start` waiting for every listener to report its bound address.
    pub listen_timeout: Duration,
    /// Bound on `shutdown` waiting for connections to close cleanly.
    pub shutdown_timeout: Duration,
}

impl Default for TransportConfig {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            idle_timeout: default_idle_timeout(),
            dead_peer_timeout: default_dead_peer_timeout(),
            max_stream_window: default_max_stream_window(),
            max_connection_window: default_max_connection_window(),
            max_concurrent_streams: default_max_concurrent_streams(),
            max_connections_per_peer: default_max_connections_per_peer(),
            max_connections: default_max_connections(),
            max_pending_incoming: default_max_pending_incoming(),
            max_known_peers: default_max_known_peers(),
            max_addresses_per_peer: default_max_addresses_per_peer(),
            max_pending_dials: default_max_pending_dials(),
            command_queue: default_command_queue(),
            open_timeout: default_open_timeout(),
            quic_handshake_timeout: default_quic_handshake_timeout(),
            listen_timeout: default_listen_timeout(),
            shutdown_timeout: default_shutdown_timeout(),
        }
    }
}

/// No listen address: a client-only node. Relays set theirs explicitly (a fixed port).
pub fn default_listen() -> Vec<Multiaddr> {
    Vec::new()
}

/// 60 s: connections to relays outlive short gaps between circuits. Streams in use keep a
/// connection open regardless.
pub fn default_idle_timeout() -> Duration {
    Duration::from_secs(60)
}

/// 20 s: a silent peer is dropped within 20 s, so circuits through it can be rebuilt.
pub fn default_dead_peer_timeout() -> Duration {
    Duration::from_secs(20)
}

/// 4 MiB per stream: one bulk circuit stream reaches loopback speed without letting one
/// stream fill the connection window.
pub fn default_max_stream_window() -> u32 {
    4 * 1024 * 1024
}

/// 16 MiB per connection: four full-speed streams at once.
pub fn default_max_connection_window() -> u32 {
    16 * 1024 * 1024
}

/// 1024 streams per connection: room for many circuits between two relays.
pub fn default_max_concurrent_streams() -> u32 {
    1024
}

/// 2 connections per peer: a simultaneous dial from both sides can leave two; more is waste.
pub fn default_max_connections_per_peer() -> u32 {
    2
}

/// 8192 connections in total: a busy relay with clients and every other relay.
pub fn default_max_connections() -> u32 {
    8192
}

/// 256 inbound handshakes at once: limits the cost of a handshake flood.
pub fn default_max_pending_incoming() -> u32 {
    256
}

/// 4096 peers in the address book: a whole relay directory.
pub fn default_max_known_peers() -> usize {
    4096
}

/// 8 addresses per peer: QUIC and TCP on IPv4 and IPv6, with room to spare.
pub fn default_max_addresses_per_peer() -> usize {
    8
}

/// 256 `open_stream` calls may wait for dials at once.
pub fn default_max_pending_dials() -> usize {
    256
}

/// 256 commands queued into the swarm task; callers wait when it is full.
pub fn default_command_queue() -> usize {
    256
}

/// 10 s to dial and open a stream.
pub fn default_open_timeout() -> Duration {
    Duration::from_secs(10)
}

/// 3 s per QUIC dial: a loopback or LAN handshake takes milliseconds, an intercontinental one
/// well under a second; when UDP is blocked TCP is tried after this long.
pub fn default_quic_handshake_timeout() -> Duration {
    Duration::from_secs(3)
}

/// 5 s for listeners to bind.
pub fn default_listen_timeout() -> Duration {
    Duration::from_secs(5)
}

/// 2 s for connections to close cleanly on shutdown.
pub fn default_shutdown_timeout() -> Duration {
    Duration::from_secs(2)
}

/// yamux refuses `max_num_streams` above this with its default 1 GiB connection window.
const MAX_STREAMS_LIMIT: u32 = 4096;

impl TransportConfig {
    /// Checks every value is in range; `Transport::start` calls it.
    pub fn validate(&self) -> Result<(), Error> {
        const POSITIVE: &str = "must be at least 1";
        const NONZERO: &str = "must not be zero";
        check(
            "idle_timeout",
            &self.idle_timeout,
            self.idle_timeout.is_zero(),
            NONZERO,
        )?;
        check(
            "dead_peer_timeout",
            &self.dead_peer_timeout,
            self.dead_peer_timeout < Duration::from_secs(1),
            "must be at least 1 s",
        )?;
        check(
            "max_stream_window",
            &self.max_stream_window,
            self.max_stream_window < 1024,
            "must be at least 1024 bytes",
        )?;
        check(
            "max_connection_window",
            &self.max_connection_window,
            self.max_connection_window < self.max_stream_window,
            "must be at least max_stream_window",
        )?;
        check(
            "max_concurrent_streams",
            &self.max_concurrent_streams,
            self.max_concurrent_streams == 0 || self.max_concurrent_streams > MAX_STREAMS_LIMIT,
            "must be between 1 and 4096",
        )?;
        let counts: [(&'static str, u64); 7] = [
            (
                "max_connections_per_peer",
                self.max_connections_per_peer.into(),
            ),
            ("max_connections", self.max_connections.into()),
            ("max_pending_incoming", self.max_pending_incoming.into()),
            ("max_known_peers", widen(self.max_known_peers)),
            ("max_addresses_per_peer", widen(self.max_addresses_per_peer)),
            ("max_pending_dials", widen(self.max_pending_dials)),
            ("command_queue", widen(self.command_queue)),
        ];
        for (field, value) in counts {
            check(field, &value, value == 0, POSITIVE)?;
        }
        for (field, value) in [
            ("open_timeout", self.open_timeout),
            ("quic_handshake_timeout", self.quic_handshake_timeout),
            ("listen_timeout", self.listen_timeout),
        ] {
            check(field, &value, value.is_zero(), NONZERO)?;
        }
        Ok(())
    }
}

/// Returns a `Config` error for `field` when `bad`.
fn check(
    field: &'static str,
    value: &dyn std::fmt::Debug,
    bad: bool,
    reason: &'static str,
) -> Result<(), Error> {
    if bad {
        return Err(Error::Config {
            field,
            value: format!("{value:?}"),
            reason,
        });
    }
    Ok(())
}

fn widen(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid() {
        TransportConfig::default().validate().unwrap();
    }

    #[test]
    fn each_bound_rejects_zero() {
        type Case = (&'static str, fn(&mut TransportConfig));
        let cases: [Case; 8] = [
            ("max_concurrent_streams", |c| c.max_concurrent_streams = 0),
            ("max_connections_per_peer", |c| {
                c.max_connections_per_peer = 0
            }),
            ("max_connections", |c| c.max_connections = 0),
            ("max_known_peers", |c| c.max_known_peers = 0),
            ("max_addresses_per_peer", |c| c.max_addresses_per_peer = 0),
            ("max_pending_dials", |c| c.max_pending_dials = 0),
            ("command_queue", |c| c.command_queue = 0),
            ("open_timeout", |c| c.open_timeout = Duration::ZERO),
        ];
        for (name, set) in cases {
            let mut config = TransportConfig::default();
            set(&mut config);
            match config.validate() {
                Err(Error::Config { field, .. }) => assert_eq!(field, name),
                other => panic!("{name}: expected a Config error, got {other:?}"),
            }
        }
    }

    #[test]
    fn too_many_streams_rejected() {
        let config = TransportConfig {
            max_concurrent_streams: 4097,
            ..Default::default()
        };
        let err = config.validate().unwrap_err();
        assert!(
            err.to_string().contains("max_concurrent_streams = 4097"),
            "{err}"
        );
    }

    #[test]
    fn connection_window_below_stream_window_rejected() {
        let config = TransportConfig {
            max_stream_window: 1 << 20,
            max_connection_window: 1 << 19,
            ..Default::default()
        };
        assert!(matches!(
            config.validate(),
            Err(Error::Config {
                field: "max_connection_window",
                ..
            })
        ));
    }
}
