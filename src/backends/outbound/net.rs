//! [`NetOutbound`]: the probes over tokio's TCP and tokio-rustls. Names
//! resolve through the system's resolver, as the agent's do (through a
//! proxy, the proxy resolves the target). Every stage has the probe's one
//! deadline, and a timeout names the stage it stopped in.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};
use tokio_rustls::TlsConnector;

use super::{HttpAnswer, Outbound, OutboundError, Proxy, TlsSeen, authority, http1, tls};

/// The real probes.
#[derive(Clone)]
pub struct NetOutbound {
    connector: TlsConnector,
}

impl std::fmt::Debug for NetOutbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NetOutbound")
    }
}

impl NetOutbound {
    pub fn new() -> Result<Self, rustls::Error> {
        Ok(Self {
            connector: TlsConnector::from(Arc::new(tls::client_config()?)),
        })
    }
}

/// `future` before `deadline`, or a timeout naming `stage`.
async fn by<T>(
    deadline: Instant,
    limit: Duration,
    stage: impl FnOnce() -> String,
    future: impl Future<Output = Result<T, OutboundError>>,
) -> Result<T, OutboundError> {
    timeout_at(deadline, future).await.unwrap_or_else(|_| {
        Err(OutboundError::Timeout {
            stage: stage(),
            limit,
        })
    })
}

/// A TCP connection to `host:port`, or an error naming `peer`.
async fn tcp(host: &str, port: u16, peer: &str) -> Result<TcpStream, OutboundError> {
    let stream = TcpStream::connect((host, port))
        .await
        .map_err(|e| OutboundError::Connect {
            peer: peer.to_owned(),
            reason: e.to_string(),
        })?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// A stream to `host:port`: direct, or a proxy's CONNECT tunnel.
async fn open(
    host: &str,
    port: u16,
    proxy: Option<&Proxy>,
    deadline: Instant,
    limit: Duration,
) -> Result<TcpStream, OutboundError> {
    let target = authority(host, port);
    let Some(proxy) = proxy else {
        return by(
            deadline,
            limit,
            || format!("connecting to {target}"),
            tcp(host, port, &target),
        )
        .await;
    };
    let shown = proxy.to_string();
    let mut stream = by(
        deadline,
        limit,
        || format!("connecting to the proxy {shown}"),
        tcp(proxy.host(), proxy.port(), &format!("the proxy {shown}")),
    )
    .await?;
    let exchange = async {
        http1::send(&mut stream, &http1::connect_request(&target))
            .await
            .map_err(|e| e.to_string())?;
        http1::read_head(&mut stream).await
    };
    let answer = by(
        deadline,
        limit,
        || format!("the proxy {shown}'s answer to CONNECT {target}"),
        async {
            exchange.await.map_err(|reason| OutboundError::Protocol {
                peer: format!("the proxy {shown}"),
                reason,
            })
        },
    )
    .await?;
    if !(200..300).contains(&answer.status) {
        return Err(OutboundError::ProxyRefused {
            proxy: shown,
            target,
            answer,
        });
    }
    Ok(stream)
}

#[async_trait::async_trait]
impl Outbound for NetOutbound {
    async fn tls_handshake(
        &self,
        host: &str,
        port: u16,
        proxy: Option<&Proxy>,
        limit: Duration,
    ) -> Result<TlsSeen, OutboundError> {
        let deadline = Instant::now() + limit;
        let target = authority(host, port);
        tracing::debug!(%target, proxy = ?proxy.map(ToString::to_string), "outbound TLS probe");
        let name = rustls::pki_types::ServerName::try_from(host.to_owned()).map_err(|e| {
            OutboundError::Tls {
                target: target.clone(),
                reason: format!("not a server name: {e}"),
            }
        })?;
        let stream = open(host, port, proxy, deadline, limit).await?;
        let tls = by(
            deadline,
            limit,
            || format!("the TLS handshake with {target}"),
            async {
                self.connector
                    .connect(name, stream)
                    .await
                    .map_err(|e| OutboundError::Tls {
                        target: target.clone(),
                        reason: e.to_string(),
                    })
            },
        )
        .await?;
        let (_, connection) = tls.get_ref();
        let version = match connection.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_2) => "TLS 1.2".to_owned(),
            Some(rustls::ProtocolVersion::TLSv1_3) => "TLS 1.3".to_owned(),
            other => format!("{other:?}"),
        };
        let chain = tls::describe(connection.peer_certificates().unwrap_or_default());
        // Dropped without a request: the handshake was all there was to see.
        Ok(TlsSeen { version, chain })
    }

    async fn http_get(
        &self,
        host: &str,
        port: u16,
        path: &str,
        proxy: Option<&Proxy>,
        limit: Duration,
    ) -> Result<HttpAnswer, OutboundError> {
        let deadline = Instant::now() + limit;
        let target = authority(host, port);
        tracing::debug!(%target, path, proxy = ?proxy.map(ToString::to_string), "outbound HTTP probe");
        let host_header = if port == 80 {
            super::bracketed(host)
        } else {
            target.clone()
        };
        let (peer, connect, request) = match proxy {
            None => (
                target.clone(),
                (host.to_owned(), port),
                http1::get_request(path, &host_header),
            ),
            Some(proxy) => (
                format!("the proxy {proxy}"),
                (proxy.host().to_owned(), proxy.port()),
                http1::get_request(&format!("http://{host_header}{path}"), &host_header),
            ),
        };
        let mut stream = by(
            deadline,
            limit,
            || format!("connecting to {peer}"),
            tcp(&connect.0, connect.1, &peer),
        )
        .await?;
        let exchange = async {
            http1::send(&mut stream, &request)
                .await
                .map_err(|e| e.to_string())?;
            http1::read_head(&mut stream).await
        };
        by(
            deadline,
            limit,
            || format!("{peer}'s answer to GET"),
            async {
                exchange.await.map_err(|reason| OutboundError::Protocol {
                    peer: peer.clone(),
                    reason,
                })
            },
        )
        .await
    }
}
