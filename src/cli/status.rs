//! `braid status`: a running node's status from its local API, as a table in the terminal
//! (or the API's JSON with `--json`).

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use braid_node::api::client;
use braid_node::api::{CircuitInfo, Status};

/// Where to find the node: its data dir (`api.addr`, `api_token`), or an address and a token
/// file.
pub(crate) async fn status(
    data_dir: Option<PathBuf>,
    api: Option<String>,
    token_file: Option<PathBuf>,
    json: bool,
) -> Result<ExitCode> {
    let (addr, token_path) = match (&data_dir, &api) {
        (_, Some(url)) => {
            let token = token_file
                .clone()
                .or_else(|| data_dir.as_deref().map(client::token_file))
                .context("--api needs --token-file (or --data-dir) for the token")?;
            (parse_url(url)?, token)
        }
        (Some(dir), None) => (
            client::read_api_addr(dir).context("the node's API address")?,
            token_file.unwrap_or_else(|| client::token_file(dir)),
        ),
        (None, None) => {
            bail!("give --data-dir DIR (the node's data_dir) or --api URL --token-file FILE")
        }
    };
    let token = client::read_token(&token_path)?;
    let answer = client::get(addr, "/v1/status", Some(&token))
        .await
        .with_context(|| format!("no node answers at {addr}; is it running?"))?;
    if answer.status != 200 {
        bail!(
            "the node at {addr} answered {}: {}",
            answer.status,
            answer.body.trim()
        );
    }
    if json {
        println!("{}", answer.body);
        return Ok(ExitCode::SUCCESS);
    }
    let status: Status = serde_json::from_str(&answer.body).context("reading the status")?;
    let circuits = match status.role.as_str() {
        "proxy" => {
            let a = client::get(addr, "/v1/circuits", Some(&token)).await?;
            serde_json::from_str::<serde_json::Value>(&a.body)
                .ok()
                .and_then(|v| serde_json::from_value(v["circuits"].clone()).ok())
                .unwrap_or_default()
        }
        _ => Vec::new(),
    };
    print!("{}", table(&status, &circuits));
    Ok(ExitCode::SUCCESS)
}

/// `http://127.0.0.1:PORT[/]` (or a bare `127.0.0.1:PORT`).
fn parse_url(url: &str) -> Result<SocketAddr> {
    let rest = url.strip_prefix("http://").unwrap_or(url);
    if url.starts_with("https://") {
        bail!("{url}: the local API speaks plain HTTP on loopback");
    }
    let host = rest.split('/').next().unwrap_or(rest);
    host.parse()
        .with_context(|| format!("{url}: expected http://IP:PORT"))
}

fn bytes(n: f64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n;
    let mut i = 0;
    while v >= 1000.0 && i < units.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    match i {
        0 => format!("{v:.0} {}", units[i]),
        _ => format!("{v:.1} {}", units[i]),
    }
}

fn duration(secs: u64) -> String {
    let (d, h, m, s) = (
        secs / 86_400,
        secs % 86_400 / 3600,
        secs % 3600 / 60,
        secs % 60,
    );
    match (d, h) {
        (0, 0) => format!("{m}m {s}s"),
        (0, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

/// The status as aligned `key  value` lines, then the circuits.
fn table(s: &Status, circuits: &[CircuitInfo]) -> String {
    let mut rows: Vec<(&str, String)> = vec![
        ("role", s.role.clone()),
        ("version", format!("{} ({})", s.version, s.commit)),
        ("uptime", duration(s.uptime_secs)),
    ];
    if let Some(n) = &s.nickname {
        rows.push(("nickname", n.clone()));
    }
    if let Some(p) = &s.peer_id {
        rows.push(("peer id", p.clone()));
    }
    if let Some(r) = &s.reachability {
        rows.push(("reachability", r.clone()));
    }
    if let Some(u) = &s.upnp {
        rows.push(("UPnP", u.clone()));
    }
    if !s.advertised_addresses.is_empty() {
        rows.push(("advertised", s.advertised_addresses.join(", ")));
    }
    if let Some(r) = &s.registries {
        let reached = match r.reached {
            None => "not tried yet".to_string(),
            Some(0) => "none reached".to_string(),
            Some(_) => "reached".to_string(),
        };
        let last = r
            .last
            .as_deref()
            .map(|l| format!(" ({l})"))
            .unwrap_or_default();
        rows.push((
            "registries",
            format!("{} configured, {reached}{last}", r.configured),
        ));
    }
    if let Some(d) = &s.directory {
        let age = d.age_secs.map(|a| format!(", issued {} ago", duration(a)));
        let stale = d.stale.as_deref().map(|w| format!(", STALE: {w}"));
        rows.push((
            "directory",
            format!(
                "{} relays{}{}",
                d.relays,
                age.unwrap_or_default(),
                stale.unwrap_or_default()
            ),
        ));
    }
    if let Some(q) = &s.raft {
        let leader = match (q.is_leader, q.leader) {
            (true, _) => "this node is leader".to_string(),
            (false, Some(l)) => format!("leader {l}"),
            (false, None) => "no leader".to_string(),
        };
        rows.push((
            "raft",
            format!(
                "id {}, term {}, {leader}, {} members",
                q.id, q.term, q.members
            ),
        ));
    }
    if let Some(c) = s.circuits_open {
        let streams = s
            .streams_open
            .map(|n| format!(", {n} streams"))
            .unwrap_or_default();
        rows.push(("circuits", format!("{c} open{streams}")));
    }
    let t = &s.traffic;
    rows.push((
        "traffic",
        format!(
            "in {} ({}/s), out {} ({}/s)",
            bytes(t.bytes_in as f64),
            bytes(t.rate_in),
            bytes(t.bytes_out as f64),
            bytes(t.rate_out)
        ),
    ));
    if let Some(a) = &s.accounting {
        let used = a
            .used_bytes
            .map(|u| bytes(u as f64))
            .unwrap_or_else(|| "?".into());
        rows.push((
            "accounting",
            format!(
                "{used} of {} per {}, period ends at unix {}",
                bytes(a.max_bytes as f64),
                a.period,
                a.period_end
            ),
        ));
    }
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut out = String::new();
    for (k, v) in &rows {
        let _ = writeln!(out, "{k:<width$}  {v}");
    }
    if !circuits.is_empty() {
        let _ = writeln!(
            out,
            "\n{:<40} {:>8} {:>9} {:>10}",
            "circuit path", "strands", "age", "in"
        );
        for c in circuits {
            let kind = match c.strand_set {
                Some(i) => format!("set {i}/{}", c.strands),
                None => "single".into(),
            };
            let _ = writeln!(
                out,
                "{:<40} {:>8} {:>9} {:>10}",
                c.path.join(" > "),
                kind,
                duration(c.age_secs),
                bytes(c.bytes_in as f64)
            );
        }
    }
    out
}
