//! `provctl` (the real binary) pushing a local package: `fleet apply` of a
//! document whose agent source is `upload:FILE` uploads it to every host
//! (each its own hermetic daemon, CA and state) before applying, so each
//! installs it from staging; `agent upload` then finds it already staged.

use std::process::Command;

use crate::common::hermetic::Hermetic;
use crate::common::{admin_client_files, sha256_hex};
use provd_proto::v1;
use provd_proto::v1::package_service_client::PackageServiceClient;

/// Runs `command`, which must succeed, and parses its JSON output.
fn succeeds(command: &mut Command) -> serde_json::Value {
    let out = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_apply_uploads_the_package_to_every_host_then_installs_it() {
    let mut daemons = Vec::new();
    for _ in 0..3 {
        daemons.push(Hermetic::start().await);
    }
    let dir = tempfile::tempdir().unwrap();
    // 1 MiB + a bit: several 256 KiB chunks per stream.
    let bytes: Vec<u8> = (0..(1 << 20) + 4321).map(|i| (i % 253) as u8).collect();
    let sha = sha256_hex(&bytes);
    std::fs::write(dir.path().join("AgentSetup.exe"), &bytes).unwrap();
    let mut inventory = String::new();
    for (i, d) in daemons.iter().enumerate() {
        let own = dir.path().join(format!("host{i}"));
        std::fs::create_dir_all(&own).unwrap();
        let (ca, cert, key) = admin_client_files(&d.h, &own, "upload-admin");
        inventory.push_str(&format!(
            "[[hosts]]\nname = \"host{i}\"\nendpoint = \"https://localhost:{}\"\n\
             ca = '{ca}'\ncert = '{cert}'\nkey = '{key}'\n\n",
            d.h.addr.port()
        ));
    }
    std::fs::write(dir.path().join("hosts.toml"), inventory).unwrap();
    // Relative to the document's directory.
    std::fs::write(
        dir.path().join("agent.toml"),
        "[agent]\nsource = \"upload:AgentSetup.exe\"\naccept_license = true\n\
         skip_registration = true\n",
    )
    .unwrap();
    let mut out = Command::new(crate::common::workspace_bin("provctl"));
    out.args([
        "--output",
        "json",
        "fleet",
        "apply",
        "--concurrency",
        "3",
        "--inventory",
    ])
    .arg(dir.path().join("hosts.toml"))
    .arg(dir.path().join("agent.toml"));
    let report = succeeds(&mut out);
    assert_eq!(report["succeeded"], 3, "{report}");
    for d in &daemons {
        assert_eq!(d.fakes.host.installs().len(), 1);
        let held = PackageServiceClient::new(d.channel.clone())
            .get_upload(v1::GetUploadRequest {
                sha256: sha.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(held.state, v1::UploadState::Staged as i32);
        assert_eq!(held.bytes_held, bytes.len() as u64);
    }

    // `agent upload` to one host: already there, nothing sent.
    let d = &daemons[0];
    let (ca, cert, key) = admin_client_files(&d.h, dir.path(), "upload-admin");
    let mut out = Command::new(crate::common::workspace_bin("provctl"));
    out.args(["--output", "json", "--endpoint"])
        .arg(format!("https://localhost:{}", d.h.addr.port()))
        .args(["--ca", &ca, "--cert", &cert, "--key", &key])
        .args(["agent", "upload"])
        .arg(dir.path().join("AgentSetup.exe"));
    let answer = succeeds(&mut out);
    assert_eq!(answer["already_staged"], true, "{answer}");
    assert_eq!(answer["source"], format!("staged:sha256:{sha}"));
    for d in daemons {
        d.shutdown().await;
    }
}
