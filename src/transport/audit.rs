//! What the transport tells the audit trail (`workflows::audit`): for every
//! call of a mutating method (`authz::is_mutating`) and every call refused
//! before routing (no role, no such method, a foreign `Origin`), who made
//! it (the client certificate's CN, serial, issuer and roles), from where,
//! what (the method, the request's `request_id`, a digest of the request
//! without its secrets) and how it ended (the gRPC code; the operation it
//! started or named). The transport records; it decides nothing.
//!
//! The digest: a mutating request's body is copied as the router reads it
//! ([`TeeBody`], at most one message's worth), and when the call ends the
//! copy is decoded as the method's request type (protobuf or proto3 JSON,
//! the same type the handler got), re-encoded by prost (fields in number
//! order, defaults omitted, unknown fields dropped: one encoding per
//! request), stripped of every secret field
//! (`provd_proto::secrets::SECRET_FIELDS`: passwords, the notification
//! email) and hashed with SHA-256. The copy and the re-encoding are zeroized
//! when dropped. A request that does not decode gets no digest. A client
//! stream (UploadPackage) is digested by its first message alone: the
//! copy keeps the body's first bytes and the rest (the package) is not
//! copied.
//!
//! The operation id: handlers that start or name an operation put
//! [`AuditedOperation`] in their response's extensions (`api::started`);
//! the listener reads it from the response head.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::Body;
use prost::Message;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::server::Peer;
use crate::model::{AuditCall, AuditCaller};
use provd_proto::{secrets, v1};

/// The operation a call started or named, as its handler answered.
#[derive(Debug, Clone)]
pub struct AuditedOperation(pub String);

/// A text field of the record (a method path nobody may call, a request
/// id) is cut at this many bytes.
const MAX_TEXT: usize = 256;

fn cut(text: &str) -> String {
    if text.len() <= MAX_TEXT {
        return text.to_owned();
    }
    let mut end = MAX_TEXT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// The copy of a request body a [`TeeBody`] makes.
#[derive(Clone, Default)]
pub struct BodyCopy(Arc<Mutex<Copied>>);

#[derive(Default)]
struct Copied {
    bytes: Zeroizing<Vec<u8>>,
    /// More came than the cap: no digest.
    overflow: bool,
    /// Keep the first `cap` bytes rather than overflow (a client stream).
    prefix: bool,
}

impl BodyCopy {
    /// A copy of a client stream's first bytes only.
    pub fn prefix() -> Self {
        Self(Arc::new(Mutex::new(Copied {
            prefix: true,
            ..Copied::default()
        })))
    }

    fn push(&self, data: &[u8], cap: usize) {
        let mut copied = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if copied.prefix {
            let room = cap.saturating_sub(copied.bytes.len()).min(data.len());
            copied.bytes.extend_from_slice(&data[..room]);
            return;
        }
        if copied.overflow || copied.bytes.len() + data.len() > cap {
            copied.overflow = true;
            copied.bytes.clear();
        } else {
            copied.bytes.extend_from_slice(data);
        }
    }

    fn take(&self) -> Option<Zeroizing<Vec<u8>>> {
        let mut copied = self.0.lock().unwrap_or_else(|p| p.into_inner());
        (!copied.overflow).then(|| std::mem::take(&mut copied.bytes))
    }
}

/// A request body that copies what is read from it (up to `cap` bytes).
pub struct TeeBody<B> {
    inner: B,
    copy: BodyCopy,
    cap: usize,
}

impl<B> TeeBody<B> {
    pub fn new(inner: B, copy: BodyCopy, cap: usize) -> Self {
        Self { inner, copy, cap }
    }
}

impl<B> Body for TeeBody<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, B::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            self.copy.push(data, self.cap);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// `body` as the request type `T`, re-encoded by prost; `first`: the
/// first of a client stream's messages.
fn canonical<T>(grpc: bool, body: &[u8], first: bool) -> Option<Zeroizing<Vec<u8>>>
where
    T: Message + DeserializeOwned + Default,
{
    let message: T = if grpc {
        // One length-prefixed message, uncompressed.
        let (&flag, rest) = body.split_first()?;
        let len = usize::try_from(u32::from_be_bytes(rest.get(..4)?.try_into().ok()?)).ok()?;
        let whole = if first {
            rest.len() >= 4 + len
        } else {
            rest.len() == 4 + len
        };
        if flag != 0 || !whole {
            return None;
        }
        T::decode(&rest[4..4 + len]).ok()?
    } else {
        super::http::decode_json(body).ok()?
    };
    Some(Zeroizing::new(message.encode_to_vec()))
}

macro_rules! canonical_if {
    ($kind:ident, read, $request:ty, $grpc:expr, $body:expr) => {
        None
    };
    (upload, write, $request:ty, $grpc:expr, $body:expr) => {
        canonical::<$request>($grpc, $body, true)
    };
    ($kind:ident, write, $request:ty, $grpc:expr, $body:expr) => {
        canonical::<$request>($grpc, $body, false)
    };
}

/// The request of a mutating method, decoded from its body as the handler
/// got it and re-encoded.
macro_rules! canonical_table {
    (() $($service:ident $api:ident {
        $($kind:ident $method:ident $handler:ident $request:ty, $roles:ident, $effect:ident;)*
    })*) => {
        fn canonical_request(path: &str, grpc: bool, body: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
            $($(
                if path == concat!("/provd.v1.", stringify!($service), "/", stringify!($method)) {
                    return canonical_if!($kind, $effect, $request, grpc, body);
                }
            )*)*
            None
        }

        /// Whether `path` is a client stream, whose copy keeps only its
        /// first bytes.
        pub fn is_upload(path: &str) -> bool {
            $($(
                if path == concat!("/provd.v1.", stringify!($service), "/", stringify!($method)) {
                    return stringify!($kind) == "upload";
                }
            )*)*
            false
        }
    };
}

super::rpc::rpc_table!(canonical_table!());

/// What the audit record says about the request itself.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RequestFacts {
    pub request_id: Option<String>,
    pub digest: Option<String>,
}

/// The request id and digest of a mutating call's body.
pub fn request_facts(path: &str, grpc: bool, copy: &BodyCopy) -> RequestFacts {
    let Some(body) = copy.take() else {
        return RequestFacts::default();
    };
    let (Some(message), Some(canonical)) = (
        secrets::request_type(path),
        canonical_request(path, grpc, &body),
    ) else {
        return RequestFacts::default();
    };
    let request_id = secrets::string_field(message, &canonical, "request_id")
        .filter(|id| !id.is_empty())
        .map(|id| cut(&id));
    let digest = secrets::canonical_without_secrets(message, &canonical)
        .ok()
        .map(|stripped| hex::encode(Sha256::digest(Zeroizing::new(stripped).as_slice())));
    RequestFacts { request_id, digest }
}

/// The record of one call.
pub fn call(
    peer: &Peer,
    path: &str,
    grpc: bool,
    code: tonic::Code,
    facts: RequestFacts,
    operation_id: Option<String>,
) -> AuditCall {
    AuditCall {
        caller: AuditCaller {
            cn: peer.name.clone(),
            serial: peer.serial.clone(),
            issuer: peer.issuer.clone(),
            roles: peer.roles.iter().map(|r| r.as_str().to_owned()).collect(),
        },
        peer: peer.addr.to_string(),
        transport: if grpc { "grpc" } else { "http" }.to_owned(),
        method: cut(path),
        request_id: facts.request_id,
        request_digest: facts.digest,
        code: provd_proto::code_name(code).to_owned(),
        operation_id,
    }
}

/// A mutating call in flight: recorded when its answer ends.
pub struct Pending {
    pub audit: Arc<crate::workflows::Audit>,
    pub peer: Arc<Peer>,
    pub method: &'static str,
    pub grpc: bool,
    pub copy: BodyCopy,
}

impl Pending {
    pub fn record(self, code: tonic::Code, operation_id: Option<String>) {
        let facts = request_facts(self.method, self.grpc, &self.copy);
        self.audit.call(call(
            &self.peer,
            self.method,
            self.grpc,
            code,
            facts,
            operation_id,
        ));
    }
}

/// The digest of `request` as the audit trail computes it (tests: what a
/// client can recompute).
#[cfg(test)]
fn digest_of<T: Message>(path: &str, request: &T) -> Option<String> {
    let copy = BodyCopy::default();
    let mut framed = vec![0];
    let bytes = request.encode_to_vec();
    framed.extend_from_slice(&u32::try_from(bytes.len()).ok()?.to_be_bytes());
    framed.extend_from_slice(&bytes);
    copy.push(&framed, usize::MAX);
    request_facts(path, true, &copy).digest
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADD: &str = "/provd.v1.DirectoryService/AddDirectory";

    fn add(password: &str) -> v1::AddDirectoryRequest {
        v1::AddDirectoryRequest {
            domain: "lab.example.test".into(),
            credential: Some(v1::Credential {
                username: "Administrator@lab.example.test".into(),
                password: password.into(),
                kerberos: None,
            }),
            request_id: "rid-7".into(),
            ..Default::default()
        }
    }

    #[test]
    fn the_digest_leaves_out_secrets_and_is_the_same_over_json() {
        let one = digest_of(ADD, &add("first-Pa55")).unwrap();
        assert_eq!(one, digest_of(ADD, &add("second-Pa55")).unwrap());
        let mut other = add("first-Pa55");
        other.domain = "other.example.test".into();
        assert_ne!(one, digest_of(ADD, &other).unwrap());
        // Without the password at all: the same bytes were hashed.
        let mut bare = add("");
        bare.credential.as_mut().unwrap().password.clear();
        assert_eq!(one, digest_of(ADD, &bare).unwrap());

        let copy = BodyCopy::default();
        copy.push(
            br#"{"domain":"lab.example.test","requestId":"rid-7",
                "credential":{"password":"json-Pa55","username":"Administrator@lab.example.test"}}"#,
            usize::MAX,
        );
        let facts = request_facts(ADD, false, &copy);
        assert_eq!(facts.digest.as_deref(), Some(one.as_str()));
        assert_eq!(facts.request_id.as_deref(), Some("rid-7"));
    }

    #[test]
    fn no_digest_for_reads_bad_bytes_or_an_overflowing_copy() {
        let copy = BodyCopy::default();
        copy.push(b"{}", usize::MAX);
        assert_eq!(
            request_facts("/provd.v1.AgentService/GetAgent", false, &copy),
            RequestFacts::default()
        );
        let copy = BodyCopy::default();
        copy.push(b"{\"domain\": 5}", usize::MAX);
        assert_eq!(request_facts(ADD, false, &copy), RequestFacts::default());
        let copy = BodyCopy::default();
        copy.push(b"{}", 1);
        assert_eq!(request_facts(ADD, false, &copy), RequestFacts::default());
        assert_eq!(cut(&"é".repeat(200)).len(), MAX_TEXT + "…".len());
    }
}
