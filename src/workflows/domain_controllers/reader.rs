//! Who a read-only RPC (GetServiceAccount, DiscoverDomainControllers,
//! GetPasswordWriteback, Verify) binds as: the request's credential, else
//! this host's computer account — the configured principal and keytab on
//! Linux, the service's own identity on Windows — else nobody, and the RPC
//! reports what it could not read. Resolved here only.

use super::DomainControllerWorkflows;
use crate::backends::directory::BindCredential;
use crate::workflows::{Error, ErrorKind};

/// Why a read-only RPC read nothing of the directory.
pub(crate) const NO_READER: &str = "no credential given, and this host has no computer account \
     to bind as (set directory.host_principal and directory.host_keytab)";

/// The identity a read-only RPC binds with.
#[derive(Debug, Clone)]
pub(crate) enum Reader {
    /// The request's credential: its refusal is the caller's to fix, and
    /// the call's error.
    Request(BindCredential),
    /// This host's computer account: whatever stops its bind is a part
    /// not read, as if no credential had been given.
    Host(BindCredential),
}

impl Reader {
    pub(crate) fn credential(&self) -> &BindCredential {
        match self {
            Reader::Request(c) | Reader::Host(c) => c,
        }
    }

    pub(crate) fn is_host(&self) -> bool {
        matches!(self, Reader::Host(_))
    }

    /// Who binds, for messages.
    pub(crate) fn who(&self) -> String {
        match self {
            Reader::Request(c) => format!("{} (the request's credential)", c.username),
            Reader::Host(c) => format!("{} (this host's computer account)", c.username),
        }
    }

    /// A bind or read that failed: the part it could not read, and why; or,
    /// for a request's credential the DC refused, the call's error.
    pub(crate) fn unread(&self, err: Error) -> Result<String, Error> {
        match (self, err) {
            (Reader::Request(_), Error::Unauthenticated(m)) => Err(Error::Unauthenticated(m)),
            (Reader::Request(_), err) => Ok(err.to_string()),
            (Reader::Host(c), err) => Ok(format!(
                "cannot read as {} (this host's computer account): {err}",
                c.username
            )),
        }
    }

    /// The host's own identity did not bind: refused (a stale key, an
    /// unknown principal) or not set up (no keys, clock skew, no KDC) —
    /// unlike a DC that does not answer, which any credential would meet.
    pub(crate) fn host_refused(&self, err: &Error) -> bool {
        self.is_host()
            && matches!(
                err.kind(),
                ErrorKind::Unauthenticated | ErrorKind::FailedPrecondition
            )
    }
}

impl DomainControllerWorkflows {
    /// The request's credential, else this host's, else none.
    pub(crate) fn reader(&self, request: Option<BindCredential>) -> Option<Reader> {
        match request {
            Some(credential) => Some(Reader::Request(credential)),
            None => self.host_identity.clone().map(Reader::Host),
        }
    }
}
