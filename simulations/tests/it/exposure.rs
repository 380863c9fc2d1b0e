//! The guard exposure experiment (`braid exposure`) with a generous bound: guards keep most
//! clients unexposed where fresh first hops expose nearly all of them.

use braid_simulations::exposure::{ExposureParams, run};

#[test]
fn guards_keep_most_clients_unexposed() {
    let p = ExposureParams {
        relays: 300,
        exits: 75,
        adversary: 0.1,
        clients: 150,
        streams: 60,
        strands: 3,
        rebuilds: 6,
        seed: 7,
    };
    let r = run(&p).unwrap();
    println!("{}", r.table());
    assert!(
        r.g > 0.02 && r.e > 0.02,
        "the adversary holds something: {r:?}"
    );
    let [k1, k3, none] = &r.rows[..] else {
        panic!("three rows: {r:?}");
    };
    // Each kind near its formula (generous: sampling noise and weights).
    for row in [k1, k3, none] {
        assert!(
            row.streams_exposed <= 2.0 * row.formula_streams + 0.01,
            "{}: streams {} vs formula {}",
            row.kind,
            row.streams_exposed,
            row.formula_streams
        );
        assert!(
            row.clients_exposed <= 1.5 * row.formula_clients + 0.05,
            "{}: clients {} vs formula {}",
            row.kind,
            row.clients_exposed,
            row.formula_clients
        );
    }
    // Guards: exposure fixed by the primaries; without them almost every client is exposed.
    assert!(none.clients_exposed > 0.8, "{none:?}");
    assert!(
        k3.clients_exposed < 0.6 * none.clients_exposed,
        "{k3:?} vs {none:?}"
    );
    assert!(
        k1.clients_exposed <= k3.clients_exposed + 0.1,
        "{k1:?} vs {k3:?}"
    );
}

#[test]
fn the_same_seed_gives_the_same_numbers_and_bad_input_is_refused() {
    let p = ExposureParams {
        relays: 60,
        exits: 15,
        clients: 10,
        streams: 5,
        ..ExposureParams::default()
    };
    assert_eq!(run(&p).unwrap(), run(&p).unwrap());
    for bad in [
        ExposureParams {
            exits: 0,
            ..p.clone()
        },
        ExposureParams {
            adversary: 1.5,
            ..p.clone()
        },
        ExposureParams {
            strands: 9,
            ..p.clone()
        },
        ExposureParams {
            relays: 8,
            exits: 4,
            ..p.clone()
        },
    ] {
        assert!(run(&bad).is_err(), "{bad:?}");
    }
}
