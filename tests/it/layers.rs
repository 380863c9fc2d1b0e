//! The crate map in README.md's layout table is the Cargo.toml dependency graph: every row's
//! "depends on" column lists exactly the braid crates that crate's `[dependencies]` name, and
//! no crate depends on one of a higher layer.

use std::collections::BTreeSet;
use std::path::Path;

/// One row of the README's layout table that names a crate.
struct Row {
    /// Directory of the crate's Cargo.toml, relative to the workspace root.
    dir: String,
    /// Package name.
    package: String,
    /// Layer number (0 is the bottom).
    layer: u32,
    /// The braid crates it says the crate depends on.
    deps: BTreeSet<String>,
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn rows() -> Vec<Row> {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let table = readme
        .split("## Layout")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .unwrap();
    let mut rows = Vec::new();
    for line in table.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        assert_eq!(
            cells.len(),
            5,
            "layout row has path | package | layer | depends on | job: {line}"
        );
        let unquote = |s: &str| s.trim_matches('`').to_string();
        let path = unquote(cells[0]);
        let dir = if path == "src/" {
            String::new()
        } else {
            path.trim_end_matches('/').to_string()
        };
        let deps = cells[3]
            .split(',')
            .map(|d| d.trim().trim_matches('`').to_string())
            .filter(|d| !d.is_empty() && d != "—")
            .collect();
        rows.push(Row {
            dir,
            package: unquote(cells[1]),
            layer: cells[2].parse().unwrap(),
            deps,
        });
    }
    rows
}

/// The braid crates a Cargo.toml's `[dependencies]` name (not dev- or build-dependencies).
fn cargo_deps(dir: &str) -> (String, BTreeSet<String>) {
    let path = root().join(dir).join("Cargo.toml");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("README names a crate at {}: {e}", path.display()));
    let manifest: toml::Table = text.parse().unwrap();
    let package = manifest["package"]["name"].as_str().unwrap().to_string();
    let deps = manifest
        .get("dependencies")
        .and_then(|d| d.as_table())
        .map(|t| {
            t.keys()
                .filter(|k| k.starts_with("braid-"))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    (package, deps)
}

#[test]
fn the_readme_layout_table_is_the_dependency_graph() {
    let rows = rows();
    assert!(rows.len() >= 9, "the layout table lists every crate");
    for row in &rows {
        let (package, deps) = cargo_deps(&row.dir);
        assert_eq!(row.package, package, "README row for {:?}", row.dir);
        assert_eq!(
            row.deps, deps,
            "README's 'depends on' for {package} vs its Cargo.toml"
        );
    }
}

#[test]
fn dependencies_point_down_the_layers() {
    let rows = rows();
    let layer = |name: &str| rows.iter().find(|r| r.package == name).map(|r| r.layer);
    for row in &rows {
        for dep in &row.deps {
            let below = layer(dep).unwrap_or_else(|| panic!("{dep} has no README row"));
            assert!(
                below < row.layer,
                "{} (layer {}) depends on {dep} (layer {below})",
                row.package,
                row.layer
            );
        }
    }
}

#[test]
fn every_workspace_member_has_a_row() {
    let text = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    let manifest: toml::Table = text.parse().unwrap();
    let members = manifest["workspace"]["members"].as_array().unwrap();
    let rows = rows();
    for m in members {
        let m = m.as_str().unwrap();
        assert!(
            rows.iter().any(|r| r.dir == m),
            "workspace member {m} is missing from README's layout table"
        );
    }
}
