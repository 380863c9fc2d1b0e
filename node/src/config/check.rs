//! `braid check`: validating a config file without starting anything (no key is created, no
//! port bound), and telling which role a file is for from its keys.

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;

use super::{ProxyConfig, RegistryConfig, RelayConfig, load_config};
use crate::error::NodeError;

/// The kind of node a config file is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `braid relay`.
    Relay,
    /// `braid proxy`.
    Proxy,
    /// `braid registry`.
    Registry,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Relay => "relay",
            Role::Proxy => "proxy",
            Role::Registry => "registry",
        })
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "relay" => Ok(Role::Relay),
            "proxy" => Ok(Role::Proxy),
            "registry" => Ok(Role::Registry),
            other => Err(format!("{other:?}: expected relay, proxy or registry")),
        }
    }
}

const ROLES: [Role; 3] = [Role::Relay, Role::Proxy, Role::Registry];

/// The top-level keys of a role's config.
fn keys(role: Role) -> BTreeSet<String> {
    let value = match role {
        Role::Relay => toml::Value::try_from(RelayConfig::default()),
        Role::Proxy => toml::Value::try_from(ProxyConfig::default()),
        Role::Registry => toml::Value::try_from(RegistryConfig::default()),
    };
    let mut keys: BTreeSet<String> = match value {
        Ok(toml::Value::Table(t)) => t.keys().cloned().collect(),
        _ => BTreeSet::new(),
    };
    // Optional keys that are not serialized when unset.
    if role == Role::Relay {
        for k in ["bandwidth_rate", "bandwidth_burst", "accounting_max"] {
            keys.insert(k.into());
        }
    }
    keys
}

/// Loads and validates `path` as `role`'s config (nothing is created or bound).
pub fn check(path: &Path, role: Role) -> Result<(), NodeError> {
    match role {
        Role::Relay => load_config::<RelayConfig>(path).map(drop),
        Role::Proxy => load_config::<ProxyConfig>(path).map(drop),
        Role::Registry => load_config::<RegistryConfig>(path).map(drop),
    }
}

/// Which role `path` is for: the role most of whose own keys (those no other role has) the
/// file uses. `None` when no such key is there or two roles tie (then `--role` must say).
pub fn detect_role(path: &Path) -> Result<Option<Role>, NodeError> {
    let text = std::fs::read_to_string(path).map_err(|source| NodeError::ConfigRead {
        path: path.to_path_buf(),
        source,
    })?;
    let table: toml::Table = toml::from_str(&text).map_err(|e| NodeError::ConfigParse {
        path: path.to_path_buf(),
        message: e.to_string().trim_end().to_string(),
    })?;
    let all: Vec<(Role, BTreeSet<String>)> = ROLES.iter().map(|r| (*r, keys(*r))).collect();
    let mut scores: Vec<(usize, Role)> = all
        .iter()
        .map(|(role, own)| {
            let others: BTreeSet<&String> = all
                .iter()
                .filter(|(r, _)| r != role)
                .flat_map(|(_, k)| k.iter())
                .collect();
            let score = table
                .keys()
                .filter(|k| own.contains(*k) && !others.contains(k))
                .count();
            (score, *role)
        })
        .collect();
    scores.sort_by_key(|s| std::cmp::Reverse(s.0));
    Ok(match scores.as_slice() {
        [(best, role), (second, _), ..] if *best > 0 && best > second => Some(*role),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_configs_are_recognized() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs");
        for (file, role) in [
            ("relay.toml", Role::Relay),
            ("exit.toml", Role::Relay),
            ("relay-home.toml", Role::Relay),
            ("proxy.toml", Role::Proxy),
            ("registry.toml", Role::Registry),
        ] {
            let path = dir.join(file);
            assert_eq!(detect_role(&path).expect("read"), Some(role), "{file}");
            check(&path, role).expect(file);
        }
    }

    #[test]
    fn changed_keys_name_tables_and_optional_keys() {
        let old = RelayConfig::default();
        let mut new = old.clone();
        new.bandwidth_rate = Some(100_000);
        new.listen = vec!["/ip4/127.0.0.1/tcp/1".into()];
        new.limits.max_circuits = 3;
        new.log.level = "debug".into();
        assert_eq!(
            crate::config::changed_keys(&old, &new),
            [
                "bandwidth_rate",
                "limits.max_circuits",
                "listen",
                "log.level"
            ]
        );
        assert!(crate::config::changed_keys(&old, &old).is_empty());
        let merged = crate::relay_node::merged(&old, &new, &[]);
        assert_eq!(merged.bandwidth_rate, Some(100_000));
        assert_eq!(merged.listen, old.listen);
        assert_eq!(merged.limits, old.limits);
    }

    #[test]
    fn shared_keys_alone_say_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "data_dir = \"/tmp/x\"\n").expect("write");
        assert_eq!(detect_role(&path).expect("read"), None);
    }
}
