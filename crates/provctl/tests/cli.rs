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
