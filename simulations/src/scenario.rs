//! Scenario files: the network to start, the fetches to run and the faults to inject.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::SimError;
use crate::fault::{FaultSpec, MAX_FAULTS};

/// A simulation scenario. Every key has a default; unknown keys are errors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Scenario {
    /// A name for reports.
    pub name: String,
    /// Relays to start (at least `hops`).
    pub relays: usize,
    /// How many of them are exits (at least 1).
    pub exits: usize,
    /// Hops per circuit.
    pub hops: usize,
    /// Strands per stream (K, 1..=8).
    pub strands: usize,
    /// The proxy builds circuits on a client identity per SOCKS username (proxy key
    /// `client_identity_per_key`). Default true.
    pub client_identity_per_key: bool,
    /// Registry nodes (0..=9). With some, relays publish their descriptors to them and the
    /// proxy learns the network from their signed directory snapshot; with 0 the harness hands
    /// the proxy a directory of every relay.
    pub registries: usize,
    /// Rate limit of every non-exit relay (guards and middles, the relays people run at home),
    /// bytes of cells per second; `None`: unlimited. Also its advertised bandwidth.
    pub relay_rate: Option<u64>,
    /// Rate limit of every exit, bytes of cells per second; `None`: unlimited.
    pub exit_rate: Option<u64>,
    /// Fetch groups, run in order.
    pub fetch: Vec<FetchGroup>,
    /// Faults, each fired during one fetch group (see [`crate::fault`]).
    pub faults: Vec<FaultSpec>,
}

/// A group of identical fetches through the proxy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FetchGroup {
    /// Body size in bytes.
    pub size: u64,
    /// How many fetches.
    pub count: usize,
    /// `true`: each fetch gets its own SOCKS credentials and so a fresh circuit;
    /// `false`: all share one isolation key and reuse a warm circuit.
    #[serde(default)]
    pub fresh: bool,
    /// Target host as the app names it: "localhost" (resolved at the exit), "127.0.0.1" or "::1".
    #[serde(default = "default_host")]
    pub host: String,
}

/// Default fetch host: a name, resolved at the exit.
pub fn default_host() -> String {
    "localhost".into()
}

/// Smallest relay rate a scenario may set: 16 cells per second.
pub const MIN_RATE: u64 = 16 * 4096;
/// Largest relay rate a scenario may set (10 GB/s).
pub const MAX_RATE: u64 = 10_000_000_000;

const KIB: u64 = 1024;
const MIB: u64 = 1024 * 1024;

impl Default for Scenario {
    fn default() -> Self {
        let g = |size, count, fresh| FetchGroup {
            size,
            count,
            fresh,
            host: default_host(),
        };
        Scenario {
            name: "default".into(),
            relays: 8,
            exits: 3,
            hops: 3,
            strands: 3,
            client_identity_per_key: true,
            registries: 3,
            relay_rate: None,
            exit_rate: None,
            fetch: vec![
                g(KIB, 10, true),
                g(KIB, 10, false),
                g(MIB, 3, true),
                g(MIB, 3, false),
                g(32 * MIB, 1, true),
                g(32 * MIB, 2, false),
            ],
            faults: Vec::new(),
        }
    }
}

impl Scenario {
    /// A network of `relays` relays (`exits` of them exits) and `hops`-hop circuits, with no
    /// fetches and no registries (the harness hands out the directory): for tests that drive
    /// the network themselves.
    pub fn network(name: &str, relays: usize, exits: usize, hops: usize) -> Self {
        Scenario {
            name: name.into(),
            relays,
            exits,
            hops,
            strands: 3,
            client_identity_per_key: true,
            registries: 0,
            relay_rate: None,
            exit_rate: None,
            fetch: Vec::new(),
            faults: Vec::new(),
        }
    }

    /// Reads a scenario file.
    pub fn load(path: &Path) -> Result<Self, SimError> {
        let err = |message: String| SimError::Scenario {
            path: path.display().to_string(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        let s: Scenario = toml::from_str(&text).map_err(|e| err(e.to_string()))?;
        s.validate().map_err(err)?;
        Ok(s)
    }

    /// Checks the numbers make a network.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=braid_relay::MAX_HOPS).contains(&self.hops) {
            return Err("hops must be 1..=8".into());
        }
        if self.relays < self.hops || self.relays > 200 {
            return Err(format!("relays must be {}..=200", self.hops));
        }
        if !(1..=8).contains(&self.strands) {
            return Err("strands must be 1..=8".into());
        }
        if self.registries > 9 {
            return Err("registries must be 0..=9".into());
        }
        for (key, rate) in [
            ("relay_rate", self.relay_rate),
            ("exit_rate", self.exit_rate),
        ] {
            if rate.is_some_and(|r| !(MIN_RATE..=MAX_RATE).contains(&r)) {
                return Err(format!("{key} must be {MIN_RATE}..={MAX_RATE} bytes/s"));
            }
        }
        if self.exits == 0 || self.exits > self.relays {
            return Err("exits must be 1..=relays".into());
        }
        for f in &self.fetch {
            if f.size > 1 << 30 {
                return Err("fetch size at most 1 GiB".into());
            }
            if f.count > 10_000 {
                return Err("fetch count at most 10000".into());
            }
        }
        if self.faults.len() > MAX_FAULTS {
            return Err(format!("at most {MAX_FAULTS} faults"));
        }
        for f in &self.faults {
            f.validate(self.relays, self.fetch.len())?;
        }
        Ok(())
    }
}
