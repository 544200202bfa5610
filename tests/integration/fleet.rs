//! `provctl fleet` (the real binary) against several daemons on loopback,
//! each with its own CA and state, all on the Samba lab: the canary goes
//! first, a second run changes nothing, an unreachable host stops the rest
//! unless told to continue, a host that answers with a refusal is REFUSED,
//! and `fleet verify` gathers one row per host.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test that unwraps is asserting

use std::process::Command;

use crate::common::lab::*;
use crate::common::*;
use provd::pki::Role;

struct Fleet {
    daemons: Vec<LabDaemon>,
    dir: tempfile::TempDir,
}

impl Fleet {
    async fn start(n: usize) -> Fleet {
        let mut daemons = Vec::new();
        for _ in 0..n {
            daemons.push(daemon().await);
        }
        Fleet {
            daemons,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// An inventory of every daemon (the last one marked canary), plus
    /// `extra` raw host entries.
    fn inventory(&self, extra: &str) -> std::path::PathBuf {
        let mut text = String::new();
        for (i, d) in self.daemons.iter().enumerate() {
            let own = self.dir.path().join(format!("host{i}"));
            std::fs::create_dir_all(&own).unwrap();
            let files = admin_client_files(&d.h, &own, "fleet-admin");
            text.push_str(&host_entry(&format!("host{i}"), d.h.addr.port(), &files));
            text.push_str(&format!("canary = {}\n\n", i + 1 == self.daemons.len()));
        }
        text.push_str(extra);
        let path = self.dir.path().join("hosts.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    fn document(&self) -> std::path::PathBuf {
        let path = self.dir.path().join("directory.toml");
        std::fs::write(
            &path,
            format!(
                "[[domains]]\ndomain = \"{}\"\npreferred_domain_controllers = [\"{}\", \"{}\"]\n",
                var("LAB_DOMAIN"),
                var("LAB_DC1_HOST"),
                var("LAB_DC2_HOST")
            ),
        )
        .unwrap();
        path
    }

    fn password_file(&self) -> std::path::PathBuf {
        let path = self.dir.path().join("password");
        std::fs::write(&path, format!("{}\n", var("LAB_PASSWORD"))).unwrap();
        path
    }

    /// `provctl fleet apply` of [`Self::document`] to `inventory`, with
    /// `flags`: (exit code, the JSON report).
    fn apply(&self, inventory: &std::path::Path, flags: &[&str]) -> (i32, serde_json::Value) {
        let doc = self.document();
        let mut args = vec![
            "apply",
            "--inventory",
            inventory.to_str().unwrap(),
            doc.to_str().unwrap(),
        ];
        args.extend_from_slice(flags);
        tokio::task::block_in_place(|| self.provctl(&args))
    }

    /// `provctl --output json fleet …`: (exit code, parsed JSON).
    fn provctl(&self, args: &[&str]) -> (i32, serde_json::Value) {
        let password = self.password_file();
        let out = Command::new(crate::common::workspace_bin("provctl"))
            .args(["--output", "json", "fleet"])
            .args(args)
            .args(["--username", &var("LAB_ADMIN_UPN"), "--password-file"])
            .arg(&password)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let json = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {stdout}\nstderr: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (out.status.code().unwrap_or(-1), json)
    }
}

/// One inventory entry: `name` at `localhost:port` with the client files
/// (CA, certificate, key).
fn host_entry(name: &str, port: u16, (ca, cert, key): &(String, String, String)) -> String {
    format!(
        "[[hosts]]\nname = \"{name}\"\nendpoint = \"https://localhost:{port}\"\nca = '{ca}'\ncert = '{cert}'\nkey = '{key}'\n"
    )
}

fn states(report: &serde_json::Value) -> Vec<(String, String, u64, bool)> {
    report["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["host"].as_str().unwrap().to_owned(),
                h["state"].as_str().unwrap().to_owned(),
                h["wave"].as_u64().unwrap(),
                h["changed"].as_bool().unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the Samba AD lab (root): deploy/test.sh runs the lab tier"]
async fn fleet_apply_canary_first_then_the_rest_and_again_no_change() {
    let _serial = SERIAL.lock().await;
    let fleet = Fleet::start(3).await;
    let inventory = fleet.inventory("");
    let doc = fleet.document();
    let args = [
        "apply",
        "--inventory",
        inventory.to_str().unwrap(),
        doc.to_str().unwrap(),
        "--wave-size",
        "2",
    ];
    let (code, report) = tokio::task::block_in_place(|| fleet.provctl(&args));
    assert_eq!(code, 0, "{report:#}");
    let rows = states(&report);
    // The canary (host2) alone in wave 0, the other two in wave 1.
    assert_eq!(
        rows,
        [
            ("host2".into(), "SUCCEEDED".into(), 0, true),
            ("host0".into(), "SUCCEEDED".into(), 1, true),
            ("host1".into(), "SUCCEEDED".into(), 1, true),
        ]
    );
    let (code, report) = tokio::task::block_in_place(|| fleet.provctl(&args));
    assert_eq!(code, 0);
    assert!(states(&report).iter().all(|r| r.1 == "SUCCEEDED" && !r.3));
    assert_eq!(report["changed"], 0);

    let (code, rows) = tokio::task::block_in_place(|| {
        fleet.provctl(&["verify", "--inventory", inventory.to_str().unwrap()])
    });
    let rows = rows.as_array().unwrap().clone();
    assert_eq!(rows.len(), 3);
    for row in &rows {
        // Linux daemons: the host checks FAIL (no Windows host backend),
        // the directory checks pass.
        assert_eq!(row["status"], "FAIL", "{row}");
        assert_eq!(row["failed"], true, "{row}");
        assert!(row["pass"].as_u64().unwrap() >= 5, "{row}");
        assert!(
            row["failed_checks"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f == "host.backend.available"),
            "{row}"
        );
    }
    assert_eq!(code, 1, "a FAIL report anywhere is exit 1");
    for d in fleet.daemons {
        d.h.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the Samba AD lab (root): deploy/test.sh runs the lab tier"]
async fn an_unreachable_host_stops_the_rest_unless_told_to_continue() {
    let _serial = SERIAL.lock().await;
    let fleet = Fleet::start(2).await;
    // A host that is not there, first in wave 1 ordering by name ("a-down").
    let files = admin_client_files(&fleet.daemons[0].h, fleet.dir.path(), "fleet-admin");
    let dead = host_entry("a-down", 9, &files);
    let inventory = fleet.inventory(&dead);
    let one_by_one = ["--wave-size", "1", "--concurrency", "1"];
    // Waves: host1 (canary), host0, a-down — wave order follows the file.
    let (code, report) = fleet.apply(&inventory, &one_by_one);
    assert_eq!(code, 1);
    let rows = states(&report);
    let down = rows.iter().find(|r| r.0 == "a-down").unwrap();
    assert_eq!(down.1, "UNREACHABLE");
    assert_eq!(report["failed"], 1);
    assert_eq!(report["succeeded"], 2);

    // Now the dead host first after the canary: the rest is skipped.
    let reordered = fleet.dir.path().join("reordered.toml");
    let text = std::fs::read_to_string(&inventory).unwrap();
    let (hosts, dead_entry) = text.split_at(text.find("[[hosts]]\nname = \"a-down\"").unwrap());
    std::fs::write(&reordered, format!("{dead_entry}\n{hosts}")).unwrap();
    let (code, report) = fleet.apply(&reordered, &one_by_one);
    assert_eq!(code, 1);
    let rows = states(&report);
    assert_eq!(
        rows.iter().map(|r| r.1.as_str()).collect::<Vec<_>>(),
        ["SUCCEEDED", "UNREACHABLE", "SKIPPED"],
        "{rows:?}"
    );
    let mut go_on = one_by_one.to_vec();
    go_on.push("--continue-on-error");
    let (code, report) = fleet.apply(&reordered, &go_on);
    assert_eq!(code, 1, "still not all succeeded");
    assert_eq!(report["skipped"], 0);
    assert_eq!(report["succeeded"], 2);
    for d in fleet.daemons {
        d.h.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the Samba AD lab (root): deploy/test.sh runs the lab tier"]
async fn a_host_that_answers_no_is_refused_not_unreachable() {
    let _serial = SERIAL.lock().await;
    let fleet = Fleet::start(1).await;
    // The same daemon again, through a viewer's certificate: reached, and
    // refused by the role table.
    let own = fleet.dir.path().join("viewer");
    std::fs::create_dir_all(&own).unwrap();
    let h = &fleet.daemons[0].h;
    let files = client_files(h, &own, "fleet-viewer", &[Role::Viewer]);
    let viewer = host_entry("b-viewer", h.addr.port(), &files);
    let inventory = fleet.inventory(&viewer);
    let (code, report) = fleet.apply(&inventory, &["--continue-on-error"]);
    assert_eq!(code, 1);
    let hosts = report["hosts"].as_array().unwrap();
    let refused = hosts.iter().find(|h| h["host"] == "b-viewer").unwrap();
    assert_eq!(refused["state"], "REFUSED", "{refused}");
    assert_eq!(refused["operation_id"], "", "{refused}");
    let error = refused["error"].as_str().unwrap().to_ascii_lowercase();
    assert!(error.contains("permission"), "{error}");
    assert_eq!(report["failed"], 1);
    assert_eq!(report["succeeded"], 1);
    for d in fleet.daemons {
        d.h.shutdown().await;
    }
}
