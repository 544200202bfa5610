//! The subcommands of the services whose commands have files of their own
//! (as their handlers and renderers do); the rest live in `main.rs`.

mod cloud_sync;
mod host;

pub(crate) use cloud_sync::CloudSyncCommand;
pub(crate) use host::HostCommand;
