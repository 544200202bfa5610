//! The domain: one module per capability plus the durable operations engine.
//! Workflows decide; they see neither tonic nor ldap3 types, only backend
//! traits and plain Rust requests.

pub mod agent;
mod agent_module;
mod app;
pub mod apply;
pub mod audit;
pub mod cloud_sync;
pub mod decommission;
pub mod diagnostics;
pub mod directory;
mod dn;
pub mod domain_controllers;
pub mod drift;
mod error;
pub mod host_fix;
pub mod operations;
pub mod package;
pub mod permissions;
pub mod service_account;
mod staging;
pub mod status;
pub mod tenant;
mod uninstall;
pub mod validate;
pub mod verify;
pub mod writeback;

pub use app::{App, Backends, Caller, Paths, TenantSettings};
pub use audit::{Audit, AuditSettings};
pub use error::{Error, ErrorKind, FieldViolation, MAX_REPORTED_VIOLATIONS, PreconditionReason};
pub use operations::Operations;
pub use staging::PackageLimits;
pub use tenant::{CertificateRule, SignInClients};
