//! The platform-neutral half of the agent module backend, on any OS: the
//! classification of PowerShell's and the module's texts, and the mapping
//! of each error to the workflow error and the gRPC status clients see.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod classify;
mod errors;
