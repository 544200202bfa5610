//! Transport: gRPC and HTTP/JSON on one mTLS port. It parses, authorizes and
//! converts; workflows decide.

pub mod api;
pub mod audit;
pub mod authz;
pub mod convert;
pub mod http;
pub mod limits;
mod rpc;
pub mod server;
pub mod services;
pub mod status;
pub mod tls;
