//! `provctl fleet status` and `fleet verify` (the real binary) against
//! hermetic daemons on loopback, each with its own CA and fakes: one row per
//! host in the table and in JSON, each host judged (a stopped service, a
//! failed last operation, an unreachable host), exit 1 when any fails and 0
//! when none does; Verify without a credential on daemons with no directory.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::hermetic::*;
use crate::common::workspace_bin;
use crate::workflows::support_tb::{install_request, package, start_install};
use provd::backends::host::{AGENT_SERVICES, ServiceState};
use provd::pki::Role;
use provd::testkit::FakeHost;

/// An inventory entry for `d` named `name`, with a viewer's certificate.
fn entry(d: &Hermetic, dir: &Path, name: &str) -> String {
    let pair = d.h.pki.client(&format!("{name}-viewer"), &[Role::Viewer]);
    let (cert, key) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    );
    std::fs::write(&cert, &pair.cert_pem).unwrap();
    std::fs::write(&key, &pair.key_pem).unwrap();
    format!(
        "[[hosts]]\nname = \"{name}\"\nendpoint = \"https://localhost:{}\"\nca = '{}'\ncert = '{}'\nkey = '{}'\n\n",
        d.h.addr.port(),
        d.h.pki.dir.join("ca.pem").display(),
        cert.display(),
        key.display()
    )
}

fn inventory(dir: &Path, file: &str, entries: &[String]) -> PathBuf {
    let path = dir.join(file);
    std::fs::write(&path, entries.concat()).unwrap();
    path
}

/// `provctl [--output json] fleet <args>`: (exit code, stdout).
fn provctl(json: bool, args: &[&str]) -> (i32, String) {
    let mut cmd = Command::new(workspace_bin("provctl"));
    if json {
        cmd.args(["--output", "json"]);
    }
    let out = tokio::task::block_in_place(|| cmd.arg("fleet").args(args).output().unwrap());
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn healthy() -> Fakes {
    Fakes {
        host: FakeHost::new().with_agent("1.1.1370.0"),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn fleet_status_judges_each_host_in_a_table_and_json() {
    let ok = Hermetic::start_with(healthy()).await;
    let stopped = Hermetic::start_with(healthy()).await;
    stopped
        .fakes
        .host
        .set_service_state(AGENT_SERVICES[0].0, ServiceState::Stopped);
    let dir = tempfile::tempdir().unwrap();
    let dead = entry(&ok, dir.path(), "c-down")
        .replace(&format!("localhost:{}", ok.h.addr.port()), "localhost:9");
    let all = inventory(
        dir.path(),
        "all.toml",
        &[
            entry(&stopped, dir.path(), "b-stopped"),
            entry(&ok, dir.path(), "a-ok"),
            dead,
        ],
    );
    let all = all.to_str().unwrap();

    let (code, out) = provctl(true, &["status", "--inventory", all, "--timeout", "5s"]);
    assert_eq!(code, 1, "a failing host is exit 1: {out}");
    let rows: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let rows = rows.as_array().unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r["host"].as_str().unwrap()).collect();
    assert_eq!(names, ["a-ok", "b-stopped", "c-down"]);
    let (a, b, c) = (&rows[0], &rows[1], &rows[2]);
    assert_eq!(
        (a["status"].as_str(), a["failed"].as_bool()),
        (Some("OK"), Some(false)),
        "{a}"
    );
    assert_eq!(a["agent_version"], "1.1.1370.0");
    assert_eq!(
        a["drift_watch"], "OFF",
        "the hermetic config has no [drift]"
    );
    assert!(a["last_operation"].is_null());
    assert_eq!(b["status"], "FAIL", "{b}");
    assert!(
        b["reasons"][0]
            .as_str()
            .unwrap()
            .starts_with("SERVICE_NOT_RUNNING: AADConnectProvisioningAgent is STOPPED"),
        "{b}"
    );
    assert_eq!(c["status"], "UNREACHABLE", "{c}");
    assert_eq!(c["failed"], true);

    // The table: a header, a row per host, the count.
    let (code, table) = provctl(false, &["status", "--inventory", all, "--timeout", "5s"]);
    assert_eq!(code, 1);
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("HOST") && lines[0].contains("LAST OPERATION"),
        "{table}"
    );
    assert!(
        lines[1].starts_with("a-ok") && lines[1].contains("OK"),
        "{table}"
    );
    assert!(lines[2].contains("SERVICE_NOT_RUNNING"), "{table}");
    assert!(lines[3].contains("UNREACHABLE"), "{table}");
    assert!(
        table.contains("3 host(s): 1 ok, 2 failed (1 unreachable or in error)"),
        "{table}"
    );

    // Only healthy hosts: exit 0. A failed operation then fails the host.
    let fine = inventory(dir.path(), "fine.toml", &[entry(&ok, dir.path(), "a-ok")]);
    let fine = fine.to_str().unwrap();
    assert_eq!(provctl(false, &["status", "--inventory", fine]).0, 0);
    // An Install whose package does not match its digest: FAILED.
    let source = package(&ok, "bad.exe", b"bad");
    let failed = start_install(&ok, install_request(source, "0".repeat(64), true)).await;
    ok.finish(failed.ok()).await;
    let (code, out) = provctl(true, &["status", "--inventory", fine]);
    assert_eq!(code, 1, "{out}");
    let rows: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert!(
        rows[0]["reasons"][0]
            .as_str()
            .unwrap()
            .starts_with("LAST_OPERATION_FAILED: INSTALL"),
        "{rows}"
    );
    assert_eq!(rows[0]["last_operation"]["state"], "FAILED");
}

#[tokio::test(flavor = "multi_thread")]
async fn fleet_verify_needs_no_credential_and_no_directory() {
    let a = Hermetic::start_with(healthy()).await;
    let b = Hermetic::start_with(healthy()).await;
    let dir = tempfile::tempdir().unwrap();
    let inv = inventory(
        dir.path(),
        "hosts.toml",
        &[entry(&a, dir.path(), "a"), entry(&b, dir.path(), "b")],
    );
    let (code, out) = provctl(true, &["verify", "--inventory", inv.to_str().unwrap()]);
    let rows: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2, "{out}");
    for row in rows {
        let status = row["status"].as_str().unwrap();
        assert!(
            ["PASS", "WARN", "FAIL", "SKIP"].contains(&status),
            "read: {row}"
        );
        assert!(row["pass"].as_u64().unwrap() > 0, "{row}");
        assert_eq!(row["failed"], !matches!(status, "PASS" | "WARN"), "{row}");
    }
    let any_failed = rows.iter().any(|r| r["failed"] == true);
    assert_eq!(code, i32::from(any_failed), "{out}");
}
