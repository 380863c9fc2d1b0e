//! Helpers shared by the transport tests: swarms on loopback and an echo protocol.

use std::{future::Future, time::Duration};

use braid_transport::{
    Identity, Multiaddr, PeerId, StreamProtocol, Transport, TransportConfig, compat,
};
use futures::StreamExt as _;
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    time::timeout,
};

pub const ECHO: StreamProtocol = StreamProtocol::new("/braid-test/echo/1");
/// Upper bound on any single test step.
pub const STEP: Duration = Duration::from_secs(30);

pub fn quic(ip: &str) -> Multiaddr {
    format!("/ip4/{ip}/udp/0/quic-v1").parse().unwrap()
}

pub fn tcp(ip: &str) -> Multiaddr {
    format!("/ip4/{ip}/tcp/0").parse().unwrap()
}

pub fn config(listen: Vec<Multiaddr>) -> TransportConfig {
    TransportConfig {
        listen,
        ..TransportConfig::default()
    }
}

pub async fn start(config: TransportConfig) -> Transport {
    bounded(Transport::start(Identity::generate(), config))
        .await
        .unwrap()
}

pub async fn bounded<T>(future: impl Future<Output = T>) -> T {
    timeout(STEP, future).await.expect("test step timed out")
}

/// Deterministic bytes that differ at every offset of interest.
pub fn payload(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x9e37_79b9;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x.to_le_bytes()[0]
        })
        .collect()
}

/// Serves ECHO on `server`: reads a whole stream, writes it back, closes.
pub fn serve_echo(server: &Transport) {
    let mut incoming = server.accept(ECHO).unwrap();
    tokio::spawn(async move {
        while let Some((_, stream)) = incoming.next().await {
            tokio::spawn(async move {
                let mut stream = compat(stream);
                let mut buf = Vec::new();
                stream.read_to_end(&mut buf).await.unwrap();
                stream.write_all(&buf).await.unwrap();
                stream.shutdown().await.unwrap();
            });
        }
    });
}

/// Sends `data` on a new ECHO stream and returns what comes back.
pub async fn echo(client: &Transport, server: PeerId, data: &[u8]) -> Vec<u8> {
    let stream = client.open_stream(server, ECHO).await.unwrap();
    let mut stream = compat(stream);
    stream.write_all(data).await.unwrap();
    stream.shutdown().await.unwrap();
    let mut back = Vec::new();
    stream.read_to_end(&mut back).await.unwrap();
    back
}
