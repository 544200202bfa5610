//! Transport: gRPC and HTTP/JSON on one mTLS port. It parses, authorizes and
//! converts; workflows decide.

pub mod authz;
pub mod configuration_api;
pub mod convert;
pub mod directory_api;
pub mod grpc;
pub mod http;
mod rpc;
pub mod server;
pub mod service_account_api;
pub mod services;
pub mod status;
pub mod tls;
pub mod verify_api;
pub mod writeback_api;
