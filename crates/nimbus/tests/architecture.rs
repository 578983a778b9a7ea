//! ARCHITECTURE.md's crate-dependency table is the Cargo graph: each crate's Nimbus
//! dependencies as its `Cargo.toml` lists them.

use std::collections::BTreeMap;
use std::path::Path;

/// crate → its `nimbus-*` dependencies, from every `crates/*/Cargo.toml`.
fn cargo_graph(root: &Path) -> BTreeMap<String, Vec<String>> {
    let mut graph = BTreeMap::new();
    for entry in std::fs::read_dir(root.join("crates")).expect("crates/") {
        let dir = entry.expect("entry").path();
        let Ok(manifest) = std::fs::read_to_string(dir.join("Cargo.toml")) else { continue };
        let name =
            manifest.lines().find_map(|l| l.strip_prefix("name = \"")).and_then(|l| l.strip_suffix('"')).expect("package name").to_string();
        let mut in_deps = false;
        let mut deps = Vec::new();
        for line in manifest.lines() {
            if line.starts_with('[') {
                in_deps = line == "[dependencies]";
            } else if in_deps && line.starts_with("nimbus-") {
                let dep = line.split(['.', ' ', '=']).next().expect("a name");
                deps.push(dep.to_string());
            }
        }
        deps.sort();
        graph.insert(name, deps);
    }
    graph
}

/// The table between `<!-- deps:start -->` and `<!-- deps:end -->`.
fn documented_graph(architecture: &str) -> BTreeMap<String, Vec<String>> {
    let start = architecture.find("<!-- deps:start -->").expect("deps:start marker");
    let end = architecture.find("<!-- deps:end -->").expect("deps:end marker");
    let mut graph = BTreeMap::new();
    for row in architecture[start..end].lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let name = cells[1].trim_matches('`').to_string();
        let mut deps: Vec<String> =
            cells[2].split(',').map(|d| d.trim().trim_matches('`').to_string()).filter(|d| d.starts_with("nimbus")).collect();
        deps.sort();
        graph.insert(name, deps);
    }
    graph
}

#[test]
fn architecture_md_draws_the_cargo_graph() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let architecture = std::fs::read_to_string(root.join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    assert_eq!(documented_graph(&architecture), cargo_graph(&root), "update ARCHITECTURE.md's crate-dependency table");
}
