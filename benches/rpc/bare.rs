//! The bare tonic server: the same certificates and TLS settings as
//! provd's listener, tonic's own `Server` and routing, and for each measured
//! RPC a handler at the same path that decodes the request with prost and
//! answers a clone of the response provd gave to the same request (decoded
//! once at start-up), so both servers send responses of the same encoded
//! size. It does nothing else: no authorization, store, backend, audit or
//! tracing. `grpc.health.v1.Health` is tonic-health, as in provd.

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use prost::Message;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::server::{Grpc, ServerStreamingService, UnaryService};
use tonic::service::Routes;
use tonic::transport::server::{ServerTlsConfig, TcpIncoming};
use tonic::transport::{Certificate, Identity};
use tonic::{Request, Response, Status};
use tonic_prost::ProstCodec;

use crate::pki::Pki;

/// Adds one canned handler at `path` answering `responses` (one for a unary
/// RPC, the stream's messages otherwise) to `router`.
pub type AddRoute = fn(axum::Router, &'static str, &[Bytes]) -> Result<axum::Router>;

/// A handler's answer, built per call as a real handler builds one: the
/// one response of a unary RPC, or a stream's messages.
struct Canned<Req, Resp> {
    responses: Vec<Resp>,
    request: PhantomData<fn(Req)>,
}

impl<Req, Resp: Default + Send + 'static> UnaryService<Req> for Canned<Req, Resp> {
    type Response = Resp;
    type Future = Ready<Result<Response<Resp>, Status>>;
    fn call(&mut self, _: Request<Req>) -> Self::Future {
        ready(Ok(Response::new(self.responses.pop().unwrap_or_default())))
    }
}

impl<Req, Resp: Send + 'static> ServerStreamingService<Req> for Canned<Req, Resp> {
    type Response = Resp;
    type ResponseStream = tokio_stream::Iter<std::vec::IntoIter<Result<Resp, Status>>>;
    type Future = Ready<Result<Response<Self::ResponseStream>, Status>>;
    fn call(&mut self, _: Request<Req>) -> Self::Future {
        let messages: Vec<_> = std::mem::take(&mut self.responses)
            .into_iter()
            .map(Ok)
            .collect();
        ready(Ok(Response::new(tokio_stream::iter(messages))))
    }
}

/// A unary handler at `path` answering the one response.
pub fn unary<Req, Resp>(
    router: axum::Router,
    path: &'static str,
    responses: &[Bytes],
) -> Result<axum::Router>
where
    Req: Message + Default + Send + 'static,
    Resp: Message + Default + Clone + Send + Sync + 'static,
{
    if responses.len() != 1 {
        bail!("{path}: {} responses for a unary RPC", responses.len());
    }
    route::<Req, Resp>(router, path, responses, false)
}

/// A server-streaming handler at `path` sending the responses in order.
pub fn server_streaming<Req, Resp>(
    router: axum::Router,
    path: &'static str,
    responses: &[Bytes],
) -> Result<axum::Router>
where
    Req: Message + Default + Send + 'static,
    Resp: Message + Default + Clone + Send + Sync + 'static,
{
    route::<Req, Resp>(router, path, responses, true)
}

fn route<Req, Resp>(
    router: axum::Router,
    path: &'static str,
    responses: &[Bytes],
    streaming: bool,
) -> Result<axum::Router>
where
    Req: Message + Default + Send + 'static,
    Resp: Message + Default + Clone + Send + Sync + 'static,
{
    let responses: Vec<Resp> = responses
        .iter()
        .map(|b| Resp::decode(b.clone()).with_context(|| format!("{path}: decode a response")))
        .collect::<Result<_>>()?;
    let service = tower::service_fn(move |request: http::Request<axum::body::Body>| {
        let canned = Canned::<Req, Resp> {
            responses: responses.clone(),
            request: PhantomData,
        };
        async move {
            let mut grpc = Grpc::new(ProstCodec::<Resp, Req>::default());
            Ok::<_, Infallible>(if streaming {
                grpc.server_streaming(canned, request).await
            } else {
                grpc.unary(canned, request).await
            })
        }
    });
    Ok(router.route_service(path, service))
}

/// A running bare server; stopped by [`Bare::stop`].
pub struct Bare {
    pub addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), tonic::transport::Error>>,
}

impl Bare {
    /// Serves `router`'s canned handlers and tonic-health.
    pub async fn start(pki: &Pki, router: axum::Router) -> Result<Bare> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("bind bare tonic server")?;
        let addr = listener.local_addr().context("bare server address")?;
        let tls = ServerTlsConfig::new()
            .identity(Identity::from_pem(
                &pki.server.cert_pem,
                &pki.server.key_pem,
            ))
            .client_ca_root(Certificate::from_pem(&pki.ca_pem));
        let (_reporter, health) = tonic_health::server::health_reporter();
        let routes = Routes::from(router).add_service(health).prepare();
        let server = tonic::transport::Server::builder()
            .tls_config(tls)
            .context("bare server TLS config")?
            .add_routes(routes);
        let (stop, stopped) = oneshot::channel::<()>();
        // provd sets TCP_NODELAY on accepted sockets; so does this server.
        let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
        let task = tokio::spawn(server.serve_with_incoming_shutdown(incoming, async {
            let _ = stopped.await;
        }));
        Ok(Bare { addr, stop, task })
    }

    pub async fn stop(self) -> Result<()> {
        let _ = self.stop.send(());
        match tokio::time::timeout(Duration::from_secs(5), self.task).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(err))) => bail!("bare tonic server ended with an error: {err}"),
            Ok(Err(err)) => bail!("bare tonic server task failed: {err}"),
            Err(_) => bail!("bare tonic server did not stop within 5 s"),
        }
    }
}
