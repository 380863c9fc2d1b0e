//! The braided-stream engine on its own: a client engine and an exit engine joined by in-memory
//! strands (each a pair of bounded channels that moves `Data` bodies like a circuit would),
//! with real TCP sockets on loopback at both ends. The network path (circuits, relays, the link
//! handshake) is tested in simulations/tests/it/strands.rs and tests/it/strands_curl.rs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use braid_relay::RelayMsg;
use braid_relay::braid::{Braid, BraidReport, BraidSettings, Role};
use braid_relay::shared::braid::{self, NoSupply, StrandEvent, StrandLink};
use braid_splitter::StrandId;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};

/// A connected pair of loopback TCP sockets.
async fn socket_pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
    let (b, _) = l.accept().await.unwrap();
    (a, b)
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// Moves one direction of a strand: `Data` bodies become `Fragment` events at the other end.
/// Stops (and tells both ends the strand is down) when `kill` fires.
fn strand(
    id: u32,
    client_events: mpsc::Sender<StrandEvent>,
    exit_events: mpsc::Sender<StrandEvent>,
    kill: Option<oneshot::Receiver<()>>,
) -> (StrandLink, StrandLink) {
    let strand = StrandId(id);
    let (c_tx, mut c_rx) = mpsc::channel::<RelayMsg>(64);
    let (e_tx, mut e_rx) = mpsc::channel::<RelayMsg>(64);
    tokio::spawn(async move {
        let kill = async {
            match kill {
                Some(k) => {
                    let _ = k.await;
                }
                None => std::future::pending().await,
            }
        };
        let pump = async {
            loop {
                let (msg, to) = tokio::select! {
                    Some(m) = c_rx.recv() => (m, &exit_events),
                    Some(m) = e_rx.recv() => (m, &client_events),
                    else => return,
                };
                match msg {
                    RelayMsg::Data { data, .. } => {
                        let ev = StrandEvent::Fragment {
                            strand,
                            bytes: data.into(),
                        };
                        // An end that finished takes nothing more; the other direction
                        // goes on (a circuit carries both), or the other end's last acks
                        // and `End` queued here would be lost.
                        let _ = to.send(ev).await;
                    }
                    RelayMsg::End { reason, .. } => {
                        let ev = StrandEvent::Down {
                            strand,
                            ended: Some(reason),
                        };
                        let _ = to.send(ev).await;
                    }
                    _ => {}
                }
            }
        };
        tokio::select! {
            _ = kill => {
                for to in [&client_events, &exit_events] {
                    let _ = to.send(StrandEvent::Down { strand, ended: None }).await;
                }
            }
            _ = pump => {}
        }
    });
    let stream = braid_relay::StreamId(1);
    (
        StrandLink { tx: c_tx, stream },
        StrandLink { tx: e_tx, stream },
    )
}

struct Run {
    client: BraidReport,
    exit: BraidReport,
    downloaded: Vec<u8>,
    uploaded: Vec<u8>,
}

/// Uploads `up` and downloads `down` through a braid of `k` strands; `kill` strand 1 after
/// `kill_after` if given; the exit corrupts per `settings.corrupt`.
async fn run(
    k: u32,
    up: Vec<u8>,
    down: Vec<u8>,
    kill_after: Option<Duration>,
    exit_settings: BraidSettings,
) -> Run {
    let secret = [42u8; 32];
    let client_settings = BraidSettings::default();
    let (c_ev_tx, c_ev) = mpsc::channel(64);
    let (e_ev_tx, e_ev) = mpsc::channel(64);
    let mut killers = Vec::new();
    for i in 0..k {
        let kill = if i == 1 && kill_after.is_some() {
            let (tx, rx) = oneshot::channel();
            killers.push(tx);
            Some(rx)
        } else {
            None
        };
        let (c_link, e_link) = strand(i, c_ev_tx.clone(), e_ev_tx.clone(), kill);
        let s = StrandId(i);
        c_ev_tx
            .send(StrandEvent::Up {
                strand: s,
                link: c_link,
            })
            .await
            .unwrap();
        e_ev_tx
            .send(StrandEvent::Up {
                strand: s,
                link: e_link,
            })
            .await
            .unwrap();
    }
    drop((c_ev_tx, e_ev_tx));
    let (app, app_end) = socket_pair().await;
    let (target, target_end) = socket_pair().await;
    let c_state = Braid::new(&client_settings, &secret, Role::Client, 4000).unwrap();
    let e_state = Braid::new(&exit_settings, &secret, Role::Exit, 4000).unwrap();
    let client = tokio::spawn(async move {
        braid::run(app_end, c_state, c_ev, &mut NoSupply, &client_settings).await
    });
    let exit = tokio::spawn(async move {
        braid::run(target_end, e_state, e_ev, &mut NoSupply, &exit_settings).await
    });
    // The app uploads and reads; the target reads the upload and sends the download.
    let app_task = tokio::spawn(async move {
        let (mut r, mut w) = app.into_split();
        let writer = tokio::spawn(async move {
            // The engines take their queued strands first: an engine that read the request
            // before its `Up` events would send it on fewer strands (plain, not coded).
            tokio::time::sleep(Duration::from_millis(50)).await;
            w.write_all(&up).await.unwrap();
            w.shutdown().await.unwrap();
        });
        let mut got = Vec::new();
        r.read_to_end(&mut got).await.unwrap();
        writer.await.unwrap();
        got
    });
    let target_task = tokio::spawn(async move {
        let (mut r, mut w) = target.into_split();
        let writer = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            w.write_all(&down).await.unwrap();
            w.shutdown().await.unwrap();
        });
        let mut got = Vec::new();
        r.read_to_end(&mut got).await.unwrap();
        writer.await.unwrap();
        got
    });
    if let Some(after) = kill_after {
        tokio::time::sleep(after).await;
        for k in killers {
            let _ = k.send(());
        }
    }
    let limit = Duration::from_secs(60);
    let downloaded = tokio::time::timeout(limit, app_task)
        .await
        .unwrap()
        .unwrap();
    let uploaded = tokio::time::timeout(limit, target_task)
        .await
        .unwrap()
        .unwrap();
    let client = tokio::time::timeout(limit, client).await.unwrap().unwrap();
    let exit = tokio::time::timeout(limit, exit).await.unwrap().unwrap();
    Run {
        client,
        exit,
        downloaded,
        uploaded,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_directions_arrive_exactly_over_three_strands() {
    let up = pattern(1 << 20, 1);
    let down = pattern(8 << 20, 2);
    let r = run(3, up.clone(), down.clone(), None, BraidSettings::default()).await;
    assert!(r.uploaded == up, "upload differs");
    assert!(r.downloaded == down, "download differs");
    assert_eq!(r.client.failure, None);
    assert_eq!(r.exit.failure, None);
    assert_eq!(r.client.rejected() + r.exit.rejected(), 0);
    // Bulk transfers are not erasure-coded (their first reads are longer than a short message).
    assert_eq!(r.client.received.messages_rebuilt, 0);
    assert_eq!(r.exit.received.messages_rebuilt, 0);
    // Every strand carried part of the download.
    for t in &r.exit.strands {
        assert!(t.bytes_sent > 0, "strand {} carried nothing", t.strand.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_strand_dying_mid_stream_loses_nothing() {
    let up = pattern(256 << 10, 3);
    let down = pattern(16 << 20, 4);
    let r = run(
        3,
        up.clone(),
        down.clone(),
        Some(Duration::from_millis(20)),
        BraidSettings::default(),
    )
    .await;
    assert!(r.uploaded == up, "upload differs");
    assert!(r.downloaded == down, "download differs");
    assert_eq!(r.client.failure, None);
    let dead = r.exit.strands.iter().find(|t| t.strand == StrandId(1));
    assert!(
        dead.is_some_and(|t| t.failed),
        "strand 1 must be reported failed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn altered_fragments_are_rejected_and_resent() {
    let down = pattern(4 << 20, 5);
    let settings = BraidSettings {
        corrupt: Some((StrandId(1), 3)),
        ..BraidSettings::default()
    };
    let r = run(3, b"GET".to_vec(), down.clone(), None, settings).await;
    assert!(r.downloaded == down, "download differs");
    assert!(
        r.client.rejected() > 0,
        "the client must reject altered fragments"
    );
    assert!(
        r.exit.sent.fragments_resent > 0,
        "the exit must resend them"
    );
}

/// A short request and a short answer are erasure-coded over the three strands (2 of 3 shards
/// rebuild each), so a strand that alters every fragment it carries costs them no resend: the
/// altered shards are rejected and the other two rebuild the message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_messages_survive_an_altered_strand_without_a_resend() {
    let request = pattern(300, 6);
    let answer = pattern(1500, 7);
    let settings = BraidSettings {
        corrupt: Some((StrandId(1), 1)),
        ..BraidSettings::default()
    };
    let r = run(3, request.clone(), answer.clone(), None, settings).await;
    assert!(r.uploaded == request, "request differs");
    assert!(r.downloaded == answer, "answer differs");
    assert_eq!(r.exit.received.messages_rebuilt, 1, "{:?}", r.exit.received);
    assert_eq!(
        r.client.received.messages_rebuilt, 1,
        "{:?}",
        r.client.received
    );
    assert!(
        r.client.received.dropped.forged >= 1,
        "{:?}",
        r.client.received
    );
    // Only the end-of-stream fragment may have needed a resend (when it went out on strand 1);
    // the answer's shards never did.
    assert!(r.exit.sent.fragments_resent <= 1, "{:?}", r.exit.sent);
}
