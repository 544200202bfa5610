//! provd: a local daemon that turns the Microsoft Entra cloud sync
//! provisioning-agent setup into an API — gRPC and HTTP/JSON on one
//! mutual-TLS port.
//!
//! Embedding: build a [`config::Config`], then
//! `Daemon::builder(config).start().await?` gives a [`DaemonHandle`] with the
//! bound address and a graceful `shutdown`. See `ARCHITECTURE.md`.

pub mod backends;
pub mod config;
mod daemon;
pub mod model;
pub mod pki;
pub mod telemetry;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod transport;
pub mod workflows;

pub use daemon::{Daemon, DaemonBuilder, DaemonError, DaemonHandle};
