//! The reachability decisions: parsing peers, combining answers, and every transition.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use braid_transport::dialback::{Reason, Verdict};

use super::*;

const QUIC: &str = "/ip4/198.18.0.2/udp/41001/quic-v1";
const TCP: &str = "/ip4/198.18.0.2/tcp/41002";

fn claimed() -> Vec<String> {
    vec![QUIC.into(), TCP.into()]
}

fn unreachable(why: &str) -> Verdict {
    Verdict::Unreachable(Reason::new(why))
}

#[test]
fn peers_must_be_ip_quic_or_tcp_with_a_peer_id() {
    let id = PeerId::random();
    for good in [
        format!("/ip4/198.18.0.1/udp/9401/quic-v1/p2p/{id}"),
        format!("/ip4/198.18.0.1/tcp/9401/p2p/{id}"),
        format!("/ip6/2001:db8::1/udp/9401/quic-v1/p2p/{id}"),
    ] {
        let (peer, address) = reachability_peer(&good).expect(&good);
        assert_eq!(peer, id);
        assert_eq!(address.to_string(), good);
    }
    for (bad, why) in [
        ("/ip4/198.18.0.1/tcp/9401".to_string(), "must end in /p2p/"),
        (
            "/ip4/198.18.0.1/tcp/9401/p2p/xyz".into(),
            "is not a peer id",
        ),
        (format!("/dns4/example.org/tcp/1/p2p/{id}"), "expected /ip4"),
        (format!("/ip4/198.18.0.1/udp/1/p2p/{id}"), "expected /ip4"),
        (
            format!("/ip4/198.18.0.1/tcp/70000/p2p/{id}"),
            "expected /ip4",
        ),
        (format!("/ip6/198.18.0.1/tcp/1/p2p/{id}"), "expected /ip4"),
    ] {
        let err = reachability_peer(&bad).expect_err(&bad);
        assert!(err.contains(why), "{bad}: {err}");
    }
}

#[test]
fn the_first_answer_that_confirms_something_decides() {
    let (a, b) = (PeerId::random(), PeerId::random());
    let answers = vec![
        (a, vec![unreachable("x"), unreachable("y")]),
        (b, vec![Verdict::Reachable, unreachable("tcp blocked")]),
    ];
    assert_eq!(
        judge(&claimed(), &answers, vec!["c: timeout".into()]),
        Finding::Confirmed {
            by: b,
            confirmed: vec![QUIC.into()],
            failed: vec![format!("addr {TCP}: unreachable: tcp blocked")],
        }
    );
    // Nothing confirmed: the first answer's reasons.
    let refused = Verdict::Refused(Reason::new("busy"));
    let answers = vec![
        (a, vec![refused.clone(), refused]),
        (b, vec![unreachable("q"), unreachable("t")]),
    ];
    assert_eq!(
        judge(&claimed(), &answers, Vec::new()),
        Finding::NotConfirmed {
            failed: vec![
                format!("addr {QUIC}: refused: busy"),
                format!("addr {TCP}: refused: busy")
            ]
        }
    );
    assert_eq!(
        judge(&claimed(), &[], vec!["a: refused".into()]),
        Finding::NoAnswer {
            failures: vec!["a: refused".into()]
        }
    );
}

#[test]
fn every_transition() {
    let by = PeerId::random();
    let all = Finding::Confirmed {
        by,
        confirmed: claimed(),
        failed: Vec::new(),
    };
    let some = Finding::Confirmed {
        by,
        confirmed: vec![QUIC.into()],
        failed: vec![format!("addr {TCP}: unreachable: x")],
    };
    let none = Finding::NotConfirmed {
        failed: vec![format!("addr {QUIC}: unreachable: dial failed: timeout")],
    };
    let silent = Finding::NoAnswer {
        failures: vec!["p: timeout".into()],
    };
    let both = claimed();
    let quic_only = vec![QUIC.to_string()];
    type Case<'a> = (
        Option<&'a [String]>,
        bool,
        &'a Finding,
        Step,
        Level,
        &'a str,
    );
    let cases: Vec<Case<'_>> = vec![
        // The first round always writes or removes.
        (
            Some(&both),
            true,
            &all,
            Step::Write(both.clone()),
            Level::Info,
            "reachability: confirmed by",
        ),
        (
            Some(&both),
            true,
            &some,
            Step::Write(quic_only.clone()),
            Level::Info,
            "advertising those only",
        ),
        (
            Some(&both),
            true,
            &none,
            Step::Remove,
            Level::Warn,
            "reachability: not confirmed (addr /ip4/198.18.0.2/udp/41001/quic-v1: unreachable: dial failed: timeout) — not advertising",
        ),
        (
            Some(&both),
            true,
            &silent,
            Step::Remove,
            Level::Warn,
            "no reachability peer answered: p: timeout) — not advertising",
        ),
        // Later rounds while advertised.
        (
            Some(&both),
            false,
            &all,
            Step::Keep,
            Level::Debug,
            "still confirmed",
        ),
        (
            Some(&both),
            false,
            &some,
            Step::Write(quic_only.clone()),
            Level::Info,
            "confirmed addresses changed",
        ),
        (
            Some(&both),
            false,
            &none,
            Step::Remove,
            Level::Warn,
            "reachability: lost (addr",
        ),
        (
            Some(&both),
            false,
            &silent,
            Step::Keep,
            Level::Warn,
            "still advertising the last confirmed",
        ),
        // Later rounds while not advertised.
        (
            None,
            false,
            &all,
            Step::Write(both.clone()),
            Level::Info,
            "reachability: recovered",
        ),
        (
            None,
            false,
            &none,
            Step::Keep,
            Level::Debug,
            "still not confirmed",
        ),
        (
            None,
            false,
            &silent,
            Step::Keep,
            Level::Debug,
            "still not advertising",
        ),
    ];
    for (advertised, first, finding, step, level, text) in cases {
        let (got_step, got_level, line) = next_step(advertised, first, finding);
        assert_eq!((&got_step, got_level), (&step, level), "{line}");
        assert!(line.contains(text), "{line:?} lacks {text:?}");
    }
}
