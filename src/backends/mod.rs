//! Backends: traits the workflows call, each with a real implementation.
//! Only `src/daemon.rs` chooses concrete backends.

pub mod agent_config;
pub mod audit;
pub mod directory;
pub mod host;
pub mod outbound;
pub mod store;
pub mod tenant;
