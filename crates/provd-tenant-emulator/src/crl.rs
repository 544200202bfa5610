//! LAB STAND-IN for Microsoft's CRL hosts on port 80 (`crl.microsoft.com`
//! and the others cloud sync's prerequisites list): a connection whose
//! first byte is not a TLS handshake record gets plain HTTP/1.1 here, on
//! the emulator's one port, so a lab's `[reachability] endpoints` can name
//! `http://<emulator>/crl/…` beside its `https://<emulator>`. Every GET or
//! HEAD is `200 OK` with a line of text (no CRL: provd's probe reads the
//! status line only); nothing of the tenant (tokens, the lab controls) is
//! ever served without TLS.

use std::convert::Infallible;
use std::net::SocketAddr;

use http::{Method, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// The first byte of a TLS connection: a handshake record.
pub(crate) const TLS_HANDSHAKE: u8 = 0x16;

const BODY: &str =
    "provd-tenant-emulator: LAB STAND-IN for a CRL host (plain HTTP), not Microsoft's\n";

pub(crate) async fn serve(tcp: TcpStream, peer: SocketAddr) {
    let service =
        hyper::service::service_fn(|request: http::Request<hyper::body::Incoming>| async move {
            let (status, body) = match *request.method() {
                Method::GET | Method::HEAD => (StatusCode::OK, BODY),
                _ => (StatusCode::METHOD_NOT_ALLOWED, ""),
            };
            Response::builder()
                .status(status)
                .header("content-type", "text/plain; charset=utf-8")
                .body(axum::body::Body::from(body))
                .map_or_else(
                    |_| Ok::<_, Infallible>(Response::new(axum::body::Body::empty())),
                    Ok,
                )
        });
    if let Err(err) = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(tcp), service)
        .await
    {
        tracing::debug!(%peer, error = %err, "plain HTTP connection ended with an error");
    }
}
