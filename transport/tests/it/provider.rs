//! The rustls crypto provider: `Transport::start` installs aws-lc-rs as the process default
//! itself, so a program that embeds braid (not only the `braid` command) can start a transport
//! without calling `install_default` first. Checked in a fresh process of this test binary,
//! where nothing has touched rustls before the transport does.

use std::process::Command;

use rustls::crypto::CryptoProvider;

use crate::support::*;

/// Set on the child process only: it is fresh, so no provider may be installed yet.
const FRESH: &str = "BRAID_TEST_FRESH_PROCESS";

#[test]
fn a_transport_starts_in_a_process_that_installed_no_provider() {
    let exe = std::env::current_exe().unwrap();
    let out = Command::new(exe)
        .args([
            "provider::quic_echo_in_this_process",
            "--exact",
            "--ignored",
        ])
        .args(["--test-threads=1", "--nocapture"])
        .env(FRESH, "1")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "the child test failed:\n{text}");
    assert!(text.contains("1 passed"), "the child ran no test:\n{text}");
}

/// A QUIC echo between two transports (QUIC's TLS 1.3 is where rustls needs its provider).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run in a fresh process by a_transport_starts_in_a_process_that_installed_no_provider"]
async fn quic_echo_in_this_process() {
    if std::env::var_os(FRESH).is_some() {
        assert!(
            CryptoProvider::get_default().is_none(),
            "a provider was installed before any transport started"
        );
    }
    let server = start(config(vec![quic("127.0.0.1")])).await;
    serve_echo(&server);
    let client = start(config(vec![])).await;
    client
        .add_addresses(server.peer_id(), server.listen_addrs())
        .await
        .unwrap();
    let data = payload(64 * 1024);
    assert_eq!(bounded(echo(&client, server.peer_id(), &data)).await, data);
    assert!(
        CryptoProvider::get_default().is_some(),
        "the transport left no process default provider"
    );
    client.shutdown().await;
    server.shutdown().await;
}
