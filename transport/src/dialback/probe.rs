//! One dial-back: a new, short-lived `Transport` with a fresh random identity and no listener
//! dials exactly one address and expects exactly one peer id there.
//!
//! Why this proves reachability: the connection is new (a different identity and a fresh
//! ephemeral source port, so no existing connection or NAT state of the requester's is reused);
//! its address book holds only that one address and libp2p is told not to ask behaviours for
//! more (`DialOpts::extend_addresses_through_behaviour` stays false), so nothing else is
//! dialed; and the QUIC/TLS or Noise handshake succeeds only if the host answering there holds
//! the requester's key. It does not check policy (IP match, limits); the server does.

use std::time::Duration;

use libp2p::{Multiaddr, PeerId};
use tracing::{Instrument as _, debug, info_span, trace};

use super::wire::{Reason, Verdict};
use crate::{Error, Identity, Transport, TransportConfig};

/// Dials `address` with a throwaway transport and reports whether `peer` answered there
/// within `timeout`. `Refused` means the probe could not be made (bad address, no local
/// transport); `Unreachable` means it was made and failed.
pub async fn probe(peer: PeerId, address: Multiaddr, timeout: Duration) -> Verdict {
    // The throwaway transport logs its start and shutdown; the span says they are a probe's.
    probe_inner(peer, address, timeout)
        .instrument(info_span!("dialback_probe"))
        .await
}

async fn probe_inner(peer: PeerId, address: Multiaddr, timeout: Duration) -> Verdict {
    let config = TransportConfig {
        listen: Vec::new(),
        open_timeout: timeout,
        // One address: its handshake may use the whole time.
        quic_handshake_timeout: timeout,
        max_known_peers: 1,
        max_addresses_per_peer: 1,
        max_pending_dials: 1,
        max_connections: 4,
        max_pending_incoming: 1,
        command_queue: 4,
        shutdown_timeout: Duration::from_secs(1),
        ..TransportConfig::default()
    };
    let transport = match Transport::start(Identity::generate(), config).await {
        Ok(transport) => transport,
        Err(error) => {
            debug!(%error, "dial-back probe: no local transport");
            return Verdict::Refused(Reason::new(format!(
                "server error: no probe transport: {error}"
            )));
        }
    };
    let verdict = match transport.add_addresses(peer, vec![address]).await {
        Err(error) => Verdict::Refused(Reason::new(format!("not dialed: {error}"))),
        Ok(()) => match transport.connect(peer).await {
            Ok(()) => Verdict::Reachable,
            Err(Error::Dial { reason, .. }) => {
                Verdict::Unreachable(Reason::new(format!("dial failed: {reason}")))
            }
            Err(error) => Verdict::Unreachable(Reason::new(format!("dial failed: {error}"))),
        },
    };
    trace!(%peer, %verdict, "dial-back probe");
    transport.shutdown().await;
    verdict
}
