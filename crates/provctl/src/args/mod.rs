//! The subcommands of the services whose commands have files of their own
//! (as their handlers and renderers do); the rest live in `main.rs`.

mod agent;
mod cloud_sync;
mod diagnostics;
mod fleet;
mod host;

pub(crate) use agent::AgentCommand;
pub(crate) use cloud_sync::CloudSyncCommand;
pub(crate) use diagnostics::{BoundsArgs, DiagnosticsCommand, FleetDiagnosticsArgs};
pub(crate) use fleet::{FleetStatusArgs, FleetVerifyArgs};
pub(crate) use host::HostCommand;
