//! Every workflow on the hermetic tier: the real daemon over mTLS, driven
//! through its gRPC API, on the testkit's fakes (`FakeDirectory` seeded from
//! a Samba capture, `FakeTenant`, `FakeHost`). Each file covers one proto
//! service's workflows: the happy path, idempotency, and the failure paths a
//! real DC or tenant rarely produces on demand.

mod agent;
mod agent_settings;
mod apply;
mod apply_host;
mod apply_sessions;
mod cloud_sync;
mod decommission;
mod decommission_apply;
mod diagnostics;
mod directory;
mod domain_controllers;
mod host_identity;
mod host_prereq;
mod host_status;
mod operations;
mod package_sources;
mod packages;
mod permissions;
mod repair;
mod service_account;
mod sign_in;
mod support_ta;
pub(crate) mod support_tb;
mod uploads;
mod verify;
mod verify_certificate;
mod verify_gmsa;
mod verify_outbound;
mod verify_prereq;
mod writeback;
