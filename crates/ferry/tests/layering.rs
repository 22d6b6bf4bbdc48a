//! The crate graph keeps its direction: every workspace crate depends only
//! on crates of a lower layer (docs/architecture.md draws the same table),
//! and the engine crates that device runs build on know nothing of apt.
//! Read from `cargo metadata`, the graph cargo itself builds.

use std::collections::BTreeMap;
use std::process::Command;

/// Layer of each workspace crate, lowest first. A crate may depend (for its
/// build, not its tests) only on crates of a strictly lower layer.
const LAYERS: &[(&str, u32)] = &[
    ("ferry-deb", 0),
    ("ferry-testkit", 0),
    ("ferry-journal", 1),
    ("ferry-fetch", 1),
    ("ferry-solve", 1),
    ("ferry-image", 1),
    ("ferry-archive", 2),
    ("ferry-apt", 2),
    ("ferry-takeover", 2),
    ("ferry-fleet", 2),
    ("ferry-release", 3),
    ("ferry-fleet-sim", 3),
    ("ferry", 4),
    ("ferry-fuzz-entry", 4),
];

/// What the engine crates must never reach, directly or not: a device run
/// (image, takeover, fleet agent) builds on them without apt.
const ENGINE: &[&str] = &[
    "ferry-journal",
    "ferry-fetch",
    "ferry-image",
    "ferry-takeover",
    "ferry-fleet",
];
const NOT_UNDER_ENGINE: &[&str] = &["ferry-apt", "ferry-release", "ferry-solve", "ferry-archive"];

/// Each workspace crate's normal (non-dev) dependencies on other workspace crates.
fn workspace_graph() -> Option<BTreeMap<String, Vec<String>>> {
    let output = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).ok()?;
    let packages = metadata["packages"].as_array()?;
    let names: Vec<String> = packages
        .iter()
        .filter_map(|p| p["name"].as_str().map(String::from))
        .collect();
    let mut graph = BTreeMap::new();
    for package in packages {
        let name = package["name"].as_str()?.to_string();
        let deps = package["dependencies"]
            .as_array()?
            .iter()
            .filter(|d| d["kind"].is_null())
            .filter_map(|d| d["name"].as_str())
            .filter(|d| names.iter().any(|n| n == d))
            .map(String::from)
            .collect();
        graph.insert(name, deps);
    }
    Some(graph)
}

fn layer(name: &str) -> Option<u32> {
    LAYERS.iter().find(|(n, _)| *n == name).map(|(_, l)| *l)
}

#[test]
fn every_crate_depends_only_on_lower_layers() {
    let Some(graph) = workspace_graph() else {
        panic!("cargo metadata did not answer");
    };
    let mut wrong = Vec::new();
    for (name, deps) in &graph {
        let Some(own) = layer(name) else {
            wrong.push(format!(
                "{name} has no layer in LAYERS (and docs/architecture.md)"
            ));
            continue;
        };
        for dep in deps {
            match layer(dep) {
                Some(l) if l < own => {}
                _ => wrong.push(format!("{name} (layer {own}) depends on {dep}")),
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "the crate graph points the wrong way:\n{}",
        wrong.join("\n")
    );
    for (name, _) in LAYERS {
        assert!(
            graph.contains_key(*name),
            "{name} is in LAYERS but not in the workspace"
        );
    }
}

#[test]
fn engine_crates_never_reach_apt() {
    let Some(graph) = workspace_graph() else {
        panic!("cargo metadata did not answer");
    };
    for engine in ENGINE {
        let mut seen = vec![engine.to_string()];
        let mut i = 0;
        while i < seen.len() {
            for dep in graph.get(&seen[i]).into_iter().flatten() {
                if !seen.contains(dep) {
                    seen.push(dep.clone());
                }
            }
            i += 1;
        }
        for forbidden in NOT_UNDER_ENGINE {
            assert!(
                !seen.iter().any(|s| s == forbidden),
                "{engine} reaches {forbidden}: {seen:?}"
            );
        }
    }
}
