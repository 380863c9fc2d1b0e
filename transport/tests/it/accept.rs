//! Accepting inbound streams: one `IncomingStreams` per protocol, and a burst of streams
//! waits for a busy consumer instead of being reset.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::time::Duration;

use braid_transport::{Error, compat};
use futures::StreamExt as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_only_once_per_protocol() {
    let node = start(config(vec![])).await;
    let first = node.accept(ECHO).unwrap();
    let err = node.accept(ECHO).unwrap_err();
    assert!(
        matches!(&err, Error::AlreadyAccepting { protocol } if *protocol == ECHO),
        "{err:?}"
    );
    drop(first);
    let _again = node.accept(ECHO).unwrap();
}

/// Streams that arrive together while the consumer is busy wait for it (up to
/// `ACCEPT_QUEUE`): libp2p-stream alone keeps one and resets the rest, so without the queue at
/// most 1 of the 24 is echoed. A stream can still be reset when it arrives within the instant
/// before the forwarding task took the previous one (seen: 4 of 24 on a loaded CI machine), so
/// the test asks for most, not all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_streams_waits_for_a_busy_consumer() {
    let server = start(config(vec![quic("127.0.0.1")])).await;
    let client = start(config(vec![])).await;
    client
        .add_addresses(server.peer_id(), server.listen_addrs())
        .await
        .unwrap();
    bounded(client.connect(server.peer_id())).await.unwrap();
    let mut incoming = server.accept(ECHO).unwrap();
    const BURST: usize = 24;
    let sends = (0..BURST).map(|i| {
        let client = client.clone();
        let peer = server.peer_id();
        tokio::spawn(async move {
            let stream = client
                .open_stream(peer, ECHO)
                .await
                .map_err(|e| e.to_string())?;
            let mut stream = compat(stream);
            let data = [i as u8; 3];
            stream.write_all(&data).await.map_err(|e| e.to_string())?;
            stream.shutdown().await.map_err(|e| e.to_string())?;
            let mut back = Vec::new();
            stream
                .read_to_end(&mut back)
                .await
                .map_err(|e| e.to_string())?;
            Ok::<_, String>(back == data)
        })
    });
    let sends: Vec<_> = sends.collect();
    // The consumer is busy elsewhere while the whole burst arrives.
    tokio::time::sleep(Duration::from_millis(500)).await;
    tokio::spawn(async move {
        while let Some((_, stream)) = incoming.next().await {
            tokio::spawn(async move {
                let mut stream = compat(stream);
                let mut buf = Vec::new();
                if stream.read_to_end(&mut buf).await.is_ok() {
                    let _ = stream.write_all(&buf).await;
                    let _ = stream.shutdown().await;
                }
            });
        }
    });
    let mut echoed = 0;
    for send in sends {
        match bounded(send).await.unwrap() {
            Ok(true) => echoed += 1,
            Ok(false) => panic!("a stream echoed the wrong bytes"),
            Err(error) => eprintln!("stream failed: {error}"),
        }
    }
    println!("{echoed} of {BURST} streams echoed");
    assert!(
        echoed > BURST / 2,
        "{echoed} of {BURST}: the burst was reset"
    );
}
