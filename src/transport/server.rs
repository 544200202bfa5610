//! The listener: one TCP port, TLS with a required client certificate, then
//! HTTP/2 or HTTP/1.1. Each request is checked against the limits
//! (`limits.rs`), the allowed origins and the role table ([`refusal`]), then
//! dispatched by content type: `application/grpc*` to the tonic services
//! (each message's size checked on the way), anything else to the HTTP/JSON
//! routes. Refused calls (no role, no such method, a foreign origin) and,
//! when they end, calls of mutating methods go to the audit trail
//! (`audit.rs`).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use http_body::Body as _;
use hyper_util::rt::{TokioExecutor, TokioIo};
use opentelemetry::KeyValue;
use rustls::ServerConfig;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tonic::Code;
use tower::ServiceExt;
use tracing::Instrument;

use super::audit::{self, AuditedOperation, BodyCopy, TeeBody};
use super::limits::{self, GrpcMessageLimit, MAX_HEADER_BYTES, MAX_MESSAGE_BYTES};
use super::status::{TransportError, transport_status};
use super::{authz, http as json};
use crate::pki::{self, Role};
use crate::telemetry;
use provd_proto::code_name;

/// The verified client: from its certificate's CN and role URIs (and, for
/// the audit trail, its serial and issuer).
#[derive(Debug, Clone)]
pub struct Peer {
    pub name: String,
    pub roles: Vec<Role>,
    /// Serial number, lowercase hex.
    pub serial: String,
    /// Issuer DN (RFC 4514).
    pub issuer: String,
    pub addr: SocketAddr,
}

/// How long a client has to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The two routers requests are dispatched to.
#[derive(Clone)]
pub struct Routers {
    pub grpc: Router,
    pub json: Router,
    /// `http.allowed_origins`: the web origins a request may come from.
    pub allowed_origins: Arc<[String]>,
    /// Where mutating and refused calls are reported.
    pub audit: Arc<crate::workflows::Audit>,
}

/// The request's `Origin`, when it names one that is not allowed. Browsers
/// send `Origin` on cross-site POSTs; provctl, gRPC clients and scripts send
/// none, so refusing foreign origins stops cross-site request forgery
/// without touching them.
fn foreign_origin<B>(request: &http::Request<B>, allowed: &[String]) -> Option<String> {
    let origin = request.headers().get(http::header::ORIGIN)?;
    let origin = String::from_utf8_lossy(origin.as_bytes()).to_ascii_lowercase();
    (!allowed.contains(&origin)).then_some(origin)
}

/// Why the listener refuses `request` before routing it, if it does: in
/// this order, header fields too large, a foreign origin, a path that names
/// no method, a caller without a role for it (default deny).
fn refusal<B>(
    request: &http::Request<B>,
    peer: &Peer,
    allowed_origins: &[String],
) -> Option<TransportError> {
    let path = request.uri().path();
    if limits::header_bytes(request) > MAX_HEADER_BYTES {
        return Some(TransportError::HeadersTooLarge {
            limit: MAX_HEADER_BYTES,
        });
    }
    if let Some(origin) = foreign_origin(request, allowed_origins) {
        return Some(TransportError::ForeignOrigin { origin });
    }
    if authz::method_name(path).is_none() {
        return Some(TransportError::NoSuchMethod {
            path: path.to_owned(),
        });
    }
    if !authz::is_allowed(path, &peer.roles) {
        return Some(TransportError::Denied {
            caller: peer.name.clone(),
            method: path.to_owned(),
        });
    }
    None
}

fn is_grpc(request: &http::Request<hyper::body::Incoming>) -> bool {
    request
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"))
}

async fn dispatch(
    mut request: http::Request<hyper::body::Incoming>,
    peer: Arc<Peer>,
    routers: Routers,
) -> Result<http::Response<axum::body::Body>, Infallible> {
    let started = Instant::now();
    let grpc = is_grpc(&request);
    let path = request.uri().path();
    let method = authz::method_name(path);
    let span = rpc_span(method, grpc, request.method(), &peer);
    telemetry::continue_trace(&span, request.headers());
    let mut end = RpcEnd {
        span,
        started,
        method: method.unwrap_or(UNKNOWN_METHOD),
        grpc,
        audit: None,
    };
    if let Some(err) = refusal(&request, &peer, &routers.allowed_origins) {
        end.span.in_scope(|| match err {
            TransportError::Denied { .. } | TransportError::ForeignOrigin { .. } => {
                tracing::warn!(caller = %peer.name, method = %path, roles = ?peer.roles, reason = %err, "request denied");
            }
            _ => tracing::info!(caller = %peer.name, reason = %err, "request refused"),
        });
        // Who tried what: every refusal that is an authorization decision
        // (header limits are not).
        if !matches!(err, TransportError::HeadersTooLarge { .. }) {
            let code = transport_status(&err).code();
            routers.audit.denied(audit::call(
                &peer,
                path,
                grpc,
                code,
                audit::RequestFacts::default(),
                None,
            ));
        }
        let response = if grpc {
            transport_status(&err).into_http()
        } else {
            json::refuse(request, &err)
                .instrument(end.span.clone())
                .await
        };
        return Ok(observe(response, end));
    }
    request.extensions_mut().insert((*peer).clone());
    // A mutating call's body is copied for its digest (one message at most).
    let copy = method.filter(|m| authz::is_mutating(m)).map(|method| {
        let copy = if audit::is_upload(method) {
            BodyCopy::prefix()
        } else {
            BodyCopy::default()
        };
        end.audit = Some(audit::Pending {
            audit: routers.audit.clone(),
            peer: peer.clone(),
            method,
            grpc,
            copy: copy.clone(),
        });
        copy
    });
    let cap = MAX_MESSAGE_BYTES + 5;
    let request = match (grpc, copy) {
        (true, Some(copy)) => request.map(|body| {
            axum::body::Body::new(GrpcMessageLimit::new(TeeBody::new(body, copy, cap)))
        }),
        (true, None) => request.map(|body| axum::body::Body::new(GrpcMessageLimit::new(body))),
        (false, Some(copy)) => {
            request.map(|body| axum::body::Body::new(TeeBody::new(body, copy, cap)))
        }
        (false, None) => request.map(axum::body::Body::new),
    };
    let router = if grpc { routers.grpc } else { routers.json };
    let response = router.oneshot(request).instrument(end.span.clone()).await?;
    Ok(observe(response, end))
}

/// The method label of requests for paths outside the role table.
const UNKNOWN_METHOD: &str = "unknown";

/// The span of one request, named by the full method path.
fn rpc_span(
    method: Option<&'static str>,
    grpc: bool,
    http_method: &http::Method,
    peer: &Peer,
) -> tracing::Span {
    let name = method.unwrap_or(UNKNOWN_METHOD);
    let (service, rpc_method) = name
        .strip_prefix('/')
        .and_then(|p| p.split_once('/'))
        .unwrap_or(("", name.trim_start_matches('/')));
    tracing::info_span!(
        "rpc",
        otel.name = name,
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        rpc.system = if grpc { "grpc" } else { "http" },
        rpc.service = service,
        rpc.method = rpc_method,
        rpc.grpc.status_code = tracing::field::Empty,
        http.request.method = http_method.as_str(),
        http.response.status_code = tracing::field::Empty,
        client.address = %peer.addr.ip(),
        peer.cn = %peer.name,
        peer.roles = ?peer.roles,
    )
}

/// What is recorded once the response has been sent (or abandoned).
struct RpcEnd {
    span: tracing::Span,
    started: Instant,
    method: &'static str,
    grpc: bool,
    /// A mutating call, for the audit trail.
    audit: Option<audit::Pending>,
}

impl RpcEnd {
    fn finish(self, code: Code, http_status: u16, operation: Option<String>) {
        if let Some(pending) = self.audit {
            pending.record(code, operation);
        }
        self.span.record("rpc.grpc.status_code", code as i64);
        if !self.grpc {
            self.span.record("http.response.status_code", http_status);
        }
        // Server-side errors (OpenTelemetry's gRPC conventions).
        if matches!(
            code,
            Code::Unknown
                | Code::DeadlineExceeded
                | Code::Unimplemented
                | Code::Internal
                | Code::Unavailable
                | Code::DataLoss
        ) {
            self.span.record("otel.status_code", "ERROR");
        }
        let metrics = telemetry::metrics();
        let labels = [
            KeyValue::new("method", self.method),
            KeyValue::new("code", code_name(code)),
        ];
        metrics.rpc_requests.add(1, &labels);
        metrics
            .rpc_duration
            .record(self.started.elapsed().as_secs_f64(), &labels);
    }
}

/// The status of a response as far as its head tells: gRPC's
/// `grpc-status` (trailers-only answers), the JSON gateway's code, or the
/// HTTP status; `None` while a gRPC answer's trailers are still to come.
fn head_code(response: &http::Response<axum::body::Body>, grpc: bool) -> Option<Code> {
    if grpc {
        return match response.headers().get("grpc-status") {
            Some(value) => Some(grpc_status(value)),
            None if response.status().is_success() => None,
            None => Some(Code::Unimplemented),
        };
    }
    if let Some(json::RpcCode(code)) = response.extensions().get() {
        return Some(*code);
    }
    Some(match response.status().as_u16() {
        200..=299 => Code::Ok,
        400 => Code::InvalidArgument,
        404 => Code::NotFound,
        405 => Code::Unimplemented,
        _ => Code::Unknown,
    })
}

fn grpc_status(value: &http::HeaderValue) -> Code {
    value
        .to_str()
        .ok()
        .and_then(|v| v.parse::<i32>().ok())
        .map_or(Code::Unknown, Code::from_i32)
}

fn observe(
    response: http::Response<axum::body::Body>,
    end: RpcEnd,
) -> http::Response<axum::body::Body> {
    let code = head_code(&response, end.grpc);
    let http_status = response.status().as_u16();
    let operation = response
        .extensions()
        .get::<AuditedOperation>()
        .map(|op| op.0.clone());
    response.map(|inner| {
        axum::body::Body::new(ObservedBody {
            inner,
            end: Some(end),
            code,
            http_status,
            operation,
        })
    })
}

/// The response body, ending the request's span and recording its metrics
/// when the last frame went out (for gRPC, after the trailers' status), or
/// when the client went away first (CANCELLED unless a status was known).
struct ObservedBody {
    inner: axum::body::Body,
    end: Option<RpcEnd>,
    code: Option<Code>,
    http_status: u16,
    /// The operation the call started or named, from the answer's head.
    operation: Option<String>,
}

impl ObservedBody {
    fn finish(&mut self, unfinished: Code) {
        if let Some(end) = self.end.take() {
            end.finish(
                self.code.unwrap_or(unfinished),
                self.http_status,
                self.operation.take(),
            );
        }
    }
}

impl http_body::Body for ObservedBody {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        let polled = {
            let _entered = this.end.as_ref().map(|e| e.span.enter());
            Pin::new(&mut this.inner).poll_frame(cx)
        };
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(status) = frame.trailers_ref().and_then(|t| t.get("grpc-status")) {
                    this.code = Some(grpc_status(status));
                }
                if this.inner.is_end_stream() {
                    this.finish(Code::Ok);
                }
            }
            Poll::Ready(Some(Err(_))) => this.finish(Code::Internal),
            Poll::Ready(None) => this.finish(if this.end.as_ref().is_some_and(|e| e.grpc) {
                Code::Unknown
            } else {
                Code::Ok
            }),
            Poll::Pending => {}
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

impl Drop for ObservedBody {
    fn drop(&mut self) {
        let unfinished = if self.inner.is_end_stream() {
            Code::Ok
        } else {
            Code::Cancelled
        };
        self.finish(unfinished);
    }
}

/// Accepts connections until `shutdown` fires, then waits up to `grace` for
/// open connections to finish.
pub async fn serve(
    listener: TcpListener,
    tls: watch::Receiver<Arc<ServerConfig>>,
    routers: Routers,
    shutdown: CancellationToken,
    grace: Duration,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let (tcp, addr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Typically EMFILE: back off instead of spinning.
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = TlsAcceptor::from(tls.borrow().clone());
        let routers = routers.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(err)) => {
                    tracing::info!(peer = %addr, error = %err, "TLS handshake refused");
                    return;
                }
                Err(_) => {
                    tracing::info!(peer = %addr, "TLS handshake timed out");
                    return;
                }
            };
            let identity = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .map(|leaf| pki::cert_identity(leaf.as_ref()));
            let peer = match identity {
                Some(Ok(id)) => Arc::new(Peer {
                    name: id.common_name,
                    roles: id.roles,
                    serial: id.serial,
                    issuer: id.issuer,
                    addr,
                }),
                Some(Err(err)) => {
                    tracing::info!(peer = %addr, error = %err, "client certificate unreadable");
                    return;
                }
                None => return, // rustls already requires a certificate
            };
            tracing::debug!(peer = %addr, caller = %peer.name, roles = ?peer.roles, "connection accepted");
            let service = hyper::service::service_fn(move |request| {
                dispatch(request, peer.clone(), routers.clone())
            });
            let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            // Above limits::MAX_HEADER_BYTES, so the JSON 431 answers first.
            builder.http1().max_headers(limits::H1_MAX_HEADERS);
            builder
                .http2()
                .max_header_list_size(limits::H2_MAX_HEADER_LIST_BYTES);
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            if let Err(err) = watcher.watch(connection.into_owned()).await {
                tracing::debug!(peer = %addr, error = %err, "connection ended with an error");
            }
        });
    }
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(grace) => {
            tracing::warn!("shutdown grace period over; closing remaining connections");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, headers: &[(&str, &str)]) -> http::Response<axum::body::Body> {
        let mut builder = http::Response::builder().status(status);
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        builder.body(axum::body::Body::empty()).unwrap()
    }

    #[test]
    fn status_codes_from_the_response_head() {
        // gRPC: trailers-only errors carry the status in the head; a
        // success waits for the trailers.
        assert_eq!(
            head_code(&response(200, &[("grpc-status", "5")]), true),
            Some(Code::NotFound)
        );
        assert_eq!(head_code(&response(200, &[]), true), None);
        assert_eq!(
            head_code(&response(200, &[("grpc-status", "x")]), true),
            Some(Code::Unknown)
        );
        assert_eq!(
            head_code(&response(404, &[]), true),
            Some(Code::Unimplemented)
        );
        // JSON: the gateway's code, else the HTTP status.
        let mut denied = response(403, &[]);
        denied
            .extensions_mut()
            .insert(json::RpcCode(Code::PermissionDenied));
        assert_eq!(head_code(&denied, false), Some(Code::PermissionDenied));
        assert_eq!(head_code(&response(200, &[]), false), Some(Code::Ok));
        assert_eq!(
            head_code(&response(405, &[]), false),
            Some(Code::Unimplemented)
        );
    }
}
