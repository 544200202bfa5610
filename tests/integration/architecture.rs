//! The invariants ARCHITECTURE.md states, checked. Each test names the rule
//! it guards; a failure lists the offending places.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file below `dir` (relative to the workspace root).
fn rust_files(dir: &str) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&root().join(dir), &mut out);
    out.sort();
    out
}

/// `file:line` of every code line (comments skipped) in `dir` containing
/// one of `needles`.
fn lines_naming(dir: &str, needles: &[&str]) -> Vec<String> {
    let mut hits = Vec::new();
    for file in rust_files(dir) {
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            if needles.iter().any(|needle| code.contains(needle)) {
                let rel = file.strip_prefix(root()).unwrap().display().to_string();
                hits.push(format!("{rel}:{}: {}", n + 1, code));
            }
        }
    }
    hits
}

#[test]
fn transport_does_not_import_backends() {
    let hits = lines_naming("src/transport", &["backends::"]);
    assert!(
        hits.is_empty(),
        "transport names backends:\n{}",
        hits.join("\n")
    );
}

#[test]
fn only_the_daemon_assembly_names_concrete_backends() {
    const CONCRETE: &[&str] = &[
        "LdapDirectory",
        "HttpTenant",
        "RedbStore",
        "WindowsHost",
        "UnavailableHost",
        "LsaLogonRights",
        "UnavailableLogonRights",
        "PowerShellAgentConfig",
        "UnavailableAgentConfig",
        "NetOutbound",
        "HttpsDownload",
        "FileAuditLog",
        "OtelMirror",
        "EventLogMirror",
    ];
    let hits: Vec<String> = lines_naming("src", CONCRETE)
        .into_iter()
        .filter(|hit| !hit.starts_with("src/backends/") && !hit.starts_with("src/daemon.rs:"))
        .collect();
    assert!(
        hits.is_empty(),
        "concrete backends named outside src/daemon.rs:\n{}",
        hits.join("\n")
    );
}

#[test]
fn workflows_see_no_protocol_types() {
    let hits = lines_naming(
        "src/workflows",
        &[
            "tonic::",
            "ldap3",
            "reqwest",
            "hickory",
            "axum::",
            "provd_proto",
            "directory::ldap",
            "rustls",
            "x509_parser",
        ],
    );
    assert!(
        hits.is_empty(),
        "workflows touch protocol types:\n{}",
        hits.join("\n")
    );
}

#[test]
fn the_model_depends_on_nothing_else_in_provd() {
    let hits: Vec<String> = lines_naming("src/model", &["crate::", "tonic", "ldap3", "reqwest"])
        .into_iter()
        .filter(|hit| !hit.contains("crate::model"))
        .collect();
    assert!(
        hits.is_empty(),
        "the model reaches out:\n{}",
        hits.join("\n")
    );
}

#[test]
fn product_source_files_stay_readable() {
    let mut long = Vec::new();
    for dir in [
        "src",
        "proto/src",
        "crates/provd-sd/src",
        "crates/provd-psscript/src",
        "crates/provctl/src",
    ] {
        for file in rust_files(dir) {
            let lines = std::fs::read_to_string(&file).unwrap().lines().count();
            if lines > 800 {
                long.push(format!("{} ({lines} lines)", file.display()));
            }
        }
    }
    assert!(
        long.is_empty(),
        "split these along their seams:\n{}",
        long.join("\n")
    );
}

/// The target triple this test was built for, from `rustc -vV`.
fn host_triple() -> String {
    let out = std::process::Command::new("rustc")
        .arg("-vV")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .unwrap()
        .to_owned()
}

/// Package names reachable from `package` through normal (not dev, not
/// build) dependencies, per `cargo metadata`.
fn normal_dependencies(package: &str) -> BTreeSet<String> {
    let out = std::process::Command::new(env!("CARGO"))
        // Offline and for this platform only: no registry traffic, and no
        // need for crates only another platform's build would download.
        .args([
            "metadata",
            "--format-version",
            "1",
            "--offline",
            "--filter-platform",
        ])
        .arg(host_triple())
        .current_dir(root())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let name_of: BTreeMap<&str, &str> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p["name"].as_str().unwrap()))
        .collect();
    let nodes: BTreeMap<&str, &serde_json::Value> = meta["resolve"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["id"].as_str().unwrap(), n))
        .collect();
    let start = name_of
        .iter()
        .find(|(_, name)| **name == package)
        .map(|(id, _)| *id)
        .unwrap();
    let mut seen = BTreeSet::new();
    let mut todo = vec![start];
    while let Some(id) = todo.pop() {
        for dep in nodes[id]["deps"].as_array().unwrap() {
            let normal = dep["dep_kinds"]
                .as_array()
                .unwrap()
                .iter()
                .any(|k| k["kind"].is_null());
            let dep_id = dep["pkg"].as_str().unwrap();
            if normal && seen.insert(name_of[dep_id].to_owned()) {
                todo.push(dep_id);
            }
        }
    }
    seen
}

#[test]
fn provctl_links_the_contract_not_the_daemon() {
    let deps = normal_dependencies("provctl");
    assert!(deps.contains("provd-proto"));
    for daemon_only in [
        "provd",
        "ldap3",
        "redb",
        "hickory-resolver",
        "opentelemetry-otlp",
    ] {
        assert!(
            !deps.contains(daemon_only),
            "provctl depends on {daemon_only}"
        );
    }
}

#[test]
fn the_product_does_not_depend_on_lab_stand_ins() {
    let deps = normal_dependencies("provd");
    assert!(deps.contains("provd-sd") && deps.contains("provd-proto"));
    assert!(
        !deps.contains("provd-tenant-emulator"),
        "provd depends on the lab emulator"
    );
}

#[test]
fn the_script_checker_ships_in_nothing() {
    // provd-psscript (and tree-sitter's C parser) serve the parse test and the lab
    // stand-in's build script only.
    let deps = normal_dependencies("provd");
    for test_only in ["provd-psscript", "tree-sitter", "tree-sitter-powershell"] {
        assert!(!deps.contains(test_only), "provd depends on {test_only}");
    }
}

/// Every check id Verify can report, from the check modules' string
/// literals.
fn verify_check_ids() -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    for file in rust_files("src/workflows/verify") {
        let text = std::fs::read_to_string(&file).unwrap();
        for literal in text.split('"').skip(1).step_by(2) {
            let mut parts = literal.split('.');
            let family = parts.next().unwrap_or_default();
            let is_id = ["host", "agent", "tenant", "directory", "writeback", "provd"]
                .contains(&family)
                && literal.split('.').count() >= 2
                && literal
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '.' || c == '_');
            if is_id {
                ids.insert(literal.to_owned());
            }
        }
    }
    ids
}

#[test]
fn the_readme_lists_every_verify_check_with_its_source() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let ids = verify_check_ids();
    assert!(ids.len() >= 20, "found only {ids:?}");
    let missing: Vec<&String> = ids
        .iter()
        .filter(|id| {
            !readme
                .lines()
                .any(|l| l.starts_with(&format!("| `{id}` |")) && l.trim_end().ends_with('|'))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "README.md's Verify table lacks: {missing:?}"
    );
}
