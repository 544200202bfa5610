//! The hermetic test tier: in-memory stand-ins for the directory, the
//! tenant, the host and the agent's PowerShell module, and the directory backend contract suite that runs
//! against both the fake and the real LDAP backend.
//!
//! Only built with the `testkit` cargo feature; the integration tests get it
//! through the package's dev-dependency on itself. Product builds never
//! include it.
//!
//! The contract suite asserts (it panics on a broken property, like any
//! test), and the fakes panic only on a corrupt bundled fixture; their
//! trait methods return errors, never panic, on any input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod agent_config;
pub mod agent_contract;
pub mod cloud_sync_contract;
pub mod contract;
pub mod directory;
pub mod host;
mod host_prereq;
mod host_settings;
pub mod tenant;

pub use agent_config::{AgentConfigAction, AgentConfigCall, AgentConfigFault, FakeAgentConfig};
pub use directory::{FakeDirectory, WriteOp};
pub use host::FakeHost;
pub use host_prereq::RecordedLogonRights;
pub use tenant::FakeTenant;
