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
    let out = provctl(&["--endpoint", "https://127.0.0.1:1", "health"]);
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("--ca FILE"), "{text}");
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
    let out = provctl(&[
        "--endpoint",
        "https://127.0.0.1:1",
        "cloud-sync",
        "restart",
        "--domain",
        "d.test",
        "--reset-scope",
        "full,force-deletes",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("--ca FILE"), "{text}");
}
