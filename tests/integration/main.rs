//! provd's integration tests, one binary (one link) with shared helpers.
//!
//! Two tiers in it:
//! - hermetic: an in-process daemon (or the real binary) on 127.0.0.1 with a
//!   test CA, the tenant emulator on loopback, and the `testkit` fakes; no root,
//!   no lab. `cargo test --workspace` runs these.
//! - lab: against the Samba AD DCs of `deploy/lab` (root). Each such test is
//!   `#[ignore]`d with the reason, and `deploy/test.sh` runs them with
//!   `cargo test -p provd --test integration --test otel -- --ignored --test-threads 1`.
//!
//! Two more binaries: `otel` (it installs process-global telemetry providers)
//! and `wine` (provd.exe as a Windows service; `deploy/test.sh` stage 2).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test that unwraps is asserting

#[path = "../common/mod.rs"]
mod common;

mod agent_config;
mod api;
mod apply;
mod architecture;
mod audit;
mod client_chain;
mod cloud_sync_contract;
mod directory;
mod directory_contract_fake;
mod directory_contract_lab;
mod fleet;
mod fleet_read;
mod gmsa;
mod gmsa_password;
mod gmsa_prereq;
mod hermetic_smoke;
mod hostile;
mod http_errors;
mod kerberos;
mod lab_hygiene;
mod otel_apply;
mod process;
mod ps_scripts;
mod rotation;
mod samba_fixture;
mod tenant;
mod tenant_emulator;
mod upload_cli;
mod validation;
mod workflows;
