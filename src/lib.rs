//! provd: a local daemon that turns the Microsoft Entra cloud sync
//! provisioning-agent setup into an API — gRPC and HTTP/JSON on one
//! mutual-TLS port.
//!
//! Embedding: build a [`config::Config`], then
//! `Daemon::builder(config).start().await?` gives a [`DaemonHandle`] with the
//! bound address and a graceful `shutdown`; any backend may be replaced
//! through the builder (the traits and the real implementations are in
//! [`backends`], their types in [`model`]). The API is the contract in
//! `proto/`: workflows and transport are private. See `ARCHITECTURE.md`.

pub mod backends;
pub mod config;
mod daemon;
pub mod model;
pub mod pki;
pub mod telemetry;
#[cfg(feature = "testkit")]
pub mod testkit;
mod transport;
mod workflows;

pub use daemon::{Daemon, DaemonBuilder, DaemonError, DaemonHandle};
/// The role table (method → roles), for clients and tests that walk it.
pub use transport::authz;
/// Installs the one rustls crypto provider (ring) for the process.
pub use transport::tls::install_crypto_provider;
