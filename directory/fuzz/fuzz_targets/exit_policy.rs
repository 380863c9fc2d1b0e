//! `ExitPolicy::parse_rules` on arbitrary UTF-8 lines: never panics; an accepted policy is valid,
//! round-trips through `to_lines`, and its decisions are consistent with one another.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use braid_directory::ExitPolicy;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let lines: Vec<&str> = text.lines().collect();
    let Ok(policy) = ExitPolicy::parse_rules(&lines) else {
        return;
    };
    assert_eq!(policy.validate(), Ok(()));
    let again = ExitPolicy::parse_rules(&policy.to_lines()).expect("to_lines output parses");
    assert_eq!(again, policy);
    // Probe a few addresses taken from the input itself.
    let mut seed = [0u8; 16];
    for (i, b) in data.iter().enumerate() {
        seed[i % 16] ^= b;
    }
    let probes = [
        IpAddr::V4(Ipv4Addr::new(seed[0], seed[1], seed[2], seed[3])),
        IpAddr::V6(Ipv6Addr::from(seed)),
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(Ipv6Addr::LOCALHOST),
    ];
    let is_exit = policy.is_exit();
    for port in [u16::from_be_bytes([seed[4], seed[5]]), 1, 80, 443, 65535] {
        let may = policy.may_allow_port(port);
        for ip in probes {
            // An exact accept implies "some address may be accepted" implies "is an exit".
            if policy.allows(ip, port) {
                assert!(may, "allows({ip}, {port}) but not may_allow_port");
            }
        }
        if may {
            assert!(is_exit);
        }
    }
});
