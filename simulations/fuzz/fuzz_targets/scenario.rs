//! Fuzzes the scenario parser: any text either fails to parse or validate with an error, or
//! gives a scenario that validates, writes back to TOML, and reads back to the same scenario.
//! Faults are validated against the scenario's relays and fetch groups, never with a panic.

#![no_main]

use braid_simulations::Scenario;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(s) = toml::from_str::<Scenario>(text) else {
        return;
    };
    if s.validate().is_err() {
        return;
    }
    let again = toml::to_string(&s).expect("a valid scenario writes as TOML");
    let back: Scenario = toml::from_str(&again).expect("and reads back");
    assert_eq!(back, s);
    assert!(back.validate().is_ok());
});
