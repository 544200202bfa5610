//! The provctl binary as a user meets it before any daemon is involved.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test that unwraps is asserting

use std::process::Command;

fn provctl(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_provctl"))
        .args(args)
        .env_remove("PROVCTL_CONFIG")
        .output()
        .expect("run provctl")
}

/// `args` are valid: provctl gets as far as the connection settings, which
/// name the flags they lack (exit 2, provctl's own usage error).
fn reaches_the_connection_settings(args: &[&str]) {
    let mut all = vec!["--endpoint", "https://127.0.0.1:1"];
    all.extend_from_slice(args);
    let out = provctl(&all);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("--ca FILE"), "{args:?}: {text}");
}

#[test]
fn help_lists_the_commands() {
    let out = provctl(&["--help"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for command in ["apply", "plan", "verify", "fleet", "directory"] {
        assert!(
            text.contains(command),
            "--help does not mention {command}:\n{text}"
        );
    }
}

#[test]
fn missing_connection_settings_are_a_usage_error_naming_the_flags() {
    reaches_the_connection_settings(&["health"]);
}

/// What `cloud-sync` refuses before any daemon is reached (exit 2, clap's
/// usage errors), and that the notification email is never an argument.
#[test]
fn cloud_sync_flags_are_checked_before_connecting() {
    let refused = [
        // --enabled or --disabled is required: the proto's default would pause.
        &["cloud-sync", "set", "--domain", "d.test"][..],
        &[
            "cloud-sync",
            "plan",
            "--domain",
            "d.test",
            "--enabled",
            "--disabled",
        ],
        &[
            "cloud-sync",
            "set",
            "--domain",
            "d.test",
            "--enabled",
            "--delete-threshold",
            "5",
            "--no-delete-prevention",
        ],
        // The email is a secret's value: there is no flag that takes it.
        &[
            "cloud-sync",
            "set",
            "--domain",
            "d.test",
            "--enabled",
            "--notification-email",
            "ops@example.test",
        ],
        &["cloud-sync", "restart", "--domain", "d.test"],
        &[
            "cloud-sync",
            "restart",
            "--domain",
            "d.test",
            "--reset-scope",
            "none",
        ],
    ];
    for args in refused {
        let out = provctl(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
    }
    let out = provctl(&["cloud-sync", "set", "--help"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("--notification-email-file <FILE>")
            && text.contains("never a command-line argument"),
        "{text}"
    );
    // Valid flags get as far as the connection settings.
    reaches_the_connection_settings(&[
        "cloud-sync",
        "restart",
        "--domain",
        "d.test",
        "--reset-scope",
        "full,force-deletes",
    ]);
}

/// `host remediate --fix` takes the proto's HostFix names in lower kebab
/// case; anything else is refused before connecting (exit 2).
#[test]
fn host_fix_values_are_checked_before_connecting() {
    let refused = [
        &["host", "remediate", "--fix", "vault-svc-manual"][..],
        &["host", "remediate", "--fix", "tls12,reboot"],
        &["host", "remediate", "--fix", "unspecified"],
        &["host", "remediate", "--fix", ""],
        &["host", "plan", "--fix", "tls12"],
    ];
    for args in refused {
        let out = provctl(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        // clap's refusal, not the connection settings provctl checks next.
        let text = String::from_utf8_lossy(&out.stderr);
        assert!(text.starts_with("error: "), "{args:?}: {text}");
    }
    let out = provctl(&["host", "remediate", "--fix", "vault-svc-manual"]);
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("vault-service-manual"), "{text}");
    // Every fix, comma-separated or repeated, gets as far as the connection
    // settings; so do the plan and no --fix at all (every planned fix).
    reaches_the_connection_settings(&["host", "plan"]);
    reaches_the_connection_settings(&["host", "remediate"]);
    reaches_the_connection_settings(&[
        "host",
        "remediate",
        "--fix",
        "tls12,vault-service-manual",
        "--fix",
        "service-account-managed",
        "--fix",
        "execution-policy-remote-signed",
        "--request-id",
        "fix-1",
        "--wait",
    ]);
}

#[test]
fn ops_list_takes_every_mutating_kind() {
    let out = provctl(&["ops", "list", "--help"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for kind in [
        "uninstall",
        "sign-in",
        "apply-configuration",
        "set-cloud-sync",
        "control-cloud-sync",
        "remediate-host",
    ] {
        assert!(text.contains(kind), "no --kind {kind}:\n{text}");
    }
}

/// `fleet apply --no-canary` with a document that reaches the agent is
/// refused before any host is contacted, naming the section; a
/// directory-only document passes that check (and then fails only for the
/// unreachable host).
#[test]
fn no_canary_is_refused_for_a_document_that_reaches_the_agent() {
    let dir = tempfile::tempdir().unwrap();
    let inventory = dir.path().join("hosts.toml");
    std::fs::write(
        &inventory,
        "[defaults]\nca = \"ca.pem\"\ncert = \"c.pem\"\nkey = \"c.key\"\n\n\
         [[hosts]]\nname = \"a\"\nendpoint = \"https://127.0.0.1:1\"\n",
    )
    .unwrap();
    let agent_doc = dir.path().join("agent.toml");
    std::fs::write(
        &agent_doc,
        "[agent]\nsource = \"file:///C:/agent.msi\"\nsha256 = \"00\"\n",
    )
    .unwrap();
    let no_canary = |doc: &std::path::Path| {
        provctl(&[
            "fleet",
            "apply",
            "--inventory",
            inventory.to_str().unwrap(),
            "--no-canary",
            doc.to_str().unwrap(),
        ])
    };
    let out = no_canary(&agent_doc);
    assert!(!out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("--no-canary refused") && text.contains("agent"),
        "{text}"
    );

    // Past the check, the one host is tried in the first wave (and cannot
    // be reached: no CA file), so the report says UNREACHABLE for it.
    let directory_doc = dir.path().join("directory.toml");
    std::fs::write(
        &directory_doc,
        "[[domains]]\ndomain = \"lab.example.test\"\n",
    )
    .unwrap();
    let out = no_canary(&directory_doc);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(report.contains("UNREACHABLE"), "{report}");
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("--no-canary refused"),
        "{out:?}"
    );
}
