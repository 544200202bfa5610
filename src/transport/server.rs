//! The listener: one TCP port, TLS with a required client certificate, then
//! HTTP/2 or HTTP/1.1. Each request is authorized against the role table and
//! dispatched by content type: `application/grpc*` to the tonic services,
//! anything else to the HTTP/JSON routes.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::ServerConfig;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use super::status::{TransportError, transport_status};
use super::{authz, http as json};
use crate::pki::{self, Role};

/// The verified client: from its certificate's CN and role URIs.
#[derive(Debug, Clone)]
pub struct Peer {
    pub name: String,
    pub roles: Vec<Role>,
    pub addr: SocketAddr,
}

/// How long a client has to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The two routers requests are dispatched to.
#[derive(Clone)]
pub struct Routers {
    pub grpc: Router,
    pub json: Router,
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
    let grpc = is_grpc(&request);
    let path = request.uri().path();
    if !authz::is_allowed(path, &peer.roles) {
        let err = TransportError::Denied {
            caller: peer.name.clone(),
            method: path.to_owned(),
        };
        tracing::warn!(caller = %peer.name, method = %path, roles = ?peer.roles, "request denied");
        let status = transport_status(&err);
        return Ok(if grpc {
            status.into_http()
        } else {
            json::error_response(&status)
        });
    }
    request.extensions_mut().insert((*peer).clone());
    let request = request.map(axum::body::Body::new);
    let router = if grpc { routers.grpc } else { routers.json };
    router.oneshot(request).await
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
                .map(|leaf| pki::identity_from_der(leaf.as_ref()));
            let peer = match identity {
                Some(Ok((name, roles))) => Arc::new(Peer { name, roles, addr }),
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
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
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
