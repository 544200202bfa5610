//! Backends: traits the workflows call, each with a real implementation.
//! Only `src/daemon.rs` chooses concrete backends.

pub mod agent_config;
pub mod audit;
pub mod directory;
pub mod download;
pub mod host;
pub mod outbound;
pub mod store;
pub mod tenant;
// The reviewed FFI (known folders, a directory's protected DACL), shared by
// the agent module runner and `provd service prepare`.
#[cfg(windows)]
#[allow(unsafe_code)]
pub mod windows_fs;
