//! Answers a person can act on (issue 13, items 4 and 8): an unknown path,
//! a wrong HTTP method, a body or message over the limit and huge headers
//! each get their own status with the JSON error body (gRPC: its code), and
//! a refused HTTP/2 request is answered without resetting its stream.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test that unwraps is asserting

use std::sync::Arc;

use bytes::Bytes;
use provd::pki::Role;
use provd_proto::v1;
use tonic::Code;

use crate::common::*;

/// The documented limits (README, `transport/limits.rs`).
const MAX_MESSAGE: usize = 4 * 1024 * 1024;
const MAX_HEADERS: usize = 16 * 1024;

/// The status and the JSON error body of `response`.
async fn error_of(response: reqwest::Response) -> (u16, serde_json::Value) {
    let status = response.status().as_u16();
    let body = response.text().await.unwrap();
    let json = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{status} {body:?}: {e}"));
    (status, json)
}

/// An HTTP/1.1-only client (the other helpers prefer HTTP/2).
fn http1(h: &Harness, role: Role) -> reqwest::Client {
    let pair = h.pki.client(role.as_str(), &[role]);
    let mut tls = rustls_client(&h.pki.ca_pem(), Some(&pair));
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .http1_only()
        .resolve("localhost", "127.0.0.1:0".parse().unwrap())
        .build()
        .unwrap()
}

#[tokio::test]
async fn http_refusals_have_their_own_status_and_the_json_error_body() {
    let h = Harness::start().await;
    let admin = h.http(Role::Admin);
    let viewer = h.http(Role::Viewer);

    // A typo in the method: 404 for every role (it was 403, even for admin).
    let typo = "/provd.v1.AgentService/GetAgnet";
    for client in [&admin, &viewer] {
        let (status, body) = error_of(
            client
                .post(h.url(typo))
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 404, "{body}");
        assert_eq!(body["error"]["code"], "UNIMPLEMENTED");
        assert_eq!(body["error"]["message"], format!("no method {typo}"));
    }
    // A method that gRPC serves and HTTP/JSON does not: 404 too.
    let (status, body) = error_of(
        viewer
            .post(h.url("/grpc.health.v1.Health/Check"))
            .header("content-type", "application/json")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (404, &"UNIMPLEMENTED".into())
    );

    // The wrong HTTP method: 405 naming the right one.
    for (method, path, allow) in [
        (
            reqwest::Method::GET,
            "/provd.v1.AgentService/GetAgent",
            "POST",
        ),
        (
            reqwest::Method::PUT,
            "/provd.v1.AgentService/GetAgent",
            "POST",
        ),
        (reqwest::Method::POST, "/healthz", "GET,HEAD"),
    ] {
        let response = viewer
            .request(method.clone(), h.url(path))
            .send()
            .await
            .unwrap();
        let header = response.headers().get("allow").cloned();
        let (status, body) = error_of(response).await;
        assert_eq!(status, 405, "{method} {path}: {body}");
        assert_eq!(header.unwrap(), allow, "{method} {path}");
        assert_eq!(body["error"]["code"], "UNIMPLEMENTED");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains(method.as_str()),
            "{body}"
        );
    }

    // A body of exactly the limit is read; one byte more is 413 (it was a
    // 400 that blamed the JSON).
    let mut body = b"{}".to_vec();
    body.resize(MAX_MESSAGE, b' ');
    let list = h.url("/provd.v1.OperationsService/ListOperations");
    let response = viewer
        .post(&list)
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    body.push(b' ');
    let (status, json) = error_of(
        viewer
            .post(&list)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 413, "{json}");
    assert_eq!(json["error"]["code"], "RESOURCE_EXHAUSTED");
    assert!(
        json["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&MAX_MESSAGE.to_string()),
        "names the limit: {json}"
    );

    // Header fields over the limit: 431 over HTTP/2 (hyper's own answer
    // had an empty body and reset the stream) and HTTP/1.1 (served).
    let padding = "a".repeat(MAX_HEADERS);
    for client in [&viewer, &http1(&h, Role::Viewer)] {
        let (status, body) = error_of(
            client
                .get(h.url("/healthz"))
                .header("x-padding", &padding)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 431, "{body}");
        assert_eq!(body["error"]["code"], "RESOURCE_EXHAUSTED");
        // Under the limit, the same request is served.
        let response = client
            .get(h.url("/healthz"))
            .header("x-padding", &padding[..MAX_HEADERS / 2])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    h.shutdown().await;
}

#[tokio::test]
async fn grpc_refusals_use_grpc_codes() {
    let h = Harness::start().await;
    let channel = h.channel(Role::Admin).await;

    // An unknown method is UNIMPLEMENTED (it was PERMISSION_DENIED).
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready().await.unwrap();
    let status = grpc
        .unary(
            tonic::Request::new(()),
            http::uri::PathAndQuery::from_static("/provd.v1.AgentService/GetAgnet"),
            tonic_prost::ProstCodec::<(), ()>::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented, "{status:?}");

    // A message of exactly the limit is decoded (and refused for what it
    // says); one byte more is RESOURCE_EXHAUSTED (it was OUT_OF_RANGE).
    let mut operations =
        v1::operations_service_client::OperationsServiceClient::new(channel.clone());
    // Field 1 (`id`): a tag byte, a 4-byte length, the string.
    let id_len = MAX_MESSAGE - 5;
    let at_limit = v1::GetOperationRequest {
        id: "a".repeat(id_len),
    };
    assert_eq!(prost::Message::encoded_len(&at_limit), MAX_MESSAGE);
    let status = operations.get_operation(at_limit).await.unwrap_err();
    assert!(
        !matches!(status.code(), Code::ResourceExhausted | Code::OutOfRange),
        "{:?}",
        status.code()
    );
    let status = operations
        .get_operation(v1::GetOperationRequest {
            id: "a".repeat(id_len + 1),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains(&MAX_MESSAGE.to_string()),
        "{status:?}"
    );

    // Metadata over the header limit.
    let mut request = tonic::Request::new(v1::GetAgentRequest {});
    request
        .metadata_mut()
        .insert("x-padding", "a".repeat(MAX_HEADERS).parse().unwrap());
    let status = v1::agent_service_client::AgentServiceClient::new(channel)
        .get_agent(request)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    h.shutdown().await;
}

/// An HTTP/2 connection made with the h2 crate, which shows what a
/// higher-level client hides: whether the server reset a stream.
async fn h2_connection(h: &Harness, role: Role) -> h2::client::SendRequest<Bytes> {
    let pair = h.pki.client(role.as_str(), &[role]);
    let mut tls = rustls_client(&h.pki.ca_pem(), Some(&pair));
    tls.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = tokio::net::TcpStream::connect(h.addr).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let stream = tokio_rustls::TlsConnector::from(Arc::new(tls))
        .connect(name, tcp)
        .await
        .unwrap();
    let (client, connection) = h2::client::handshake(stream).await.unwrap();
    tokio::spawn(connection);
    client
}

/// Sends `method path` with `headers` and `body`; returns the status, the
/// response body and the request's stream (to ask later whether it was reset).
async fn h2_exchange(
    client: &mut h2::client::SendRequest<Bytes>,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> (u16, Vec<u8>, h2::SendStream<Bytes>) {
    let mut request = http::Request::builder()
        .method(method)
        .uri(format!("https://localhost{path}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    *client = client.clone().ready().await.unwrap();
    let (response, mut send) = client
        .send_request(request.body(()).unwrap(), false)
        .unwrap();
    // h2 queues what the flow-control window does not yet allow.
    send.send_data(body, true).unwrap();
    let response = response.await.unwrap();
    let status = response.status().as_u16();
    let mut received = response.into_body();
    let mut bytes = Vec::new();
    while let Some(chunk) = received.data().await {
        let chunk = chunk.unwrap();
        received
            .flow_control()
            .release_capacity(chunk.len())
            .unwrap();
        bytes.extend_from_slice(&chunk);
    }
    (status, bytes, send)
}

/// A reset the server sent for `stream`, if any. Only meaningful after a
/// later exchange on the same connection (frames arrive in order).
fn reset_of(stream: &mut h2::SendStream<Bytes>) -> Option<h2::Reason> {
    match stream.poll_reset(&mut std::task::Context::from_waker(std::task::Waker::noop())) {
        std::task::Poll::Ready(Ok(reason)) => Some(reason),
        std::task::Poll::Ready(Err(err)) => panic!("connection error: {err}"),
        std::task::Poll::Pending => None,
    }
}

/// A request the listener refuses, and the status it answers.
struct Refusal<'a> {
    method: &'a str,
    path: &'a str,
    headers: Vec<(&'a str, &'a str)>,
    body: Bytes,
    status: u16,
}

impl<'a> Refusal<'a> {
    fn post(path: &'a str, header: (&'a str, &'a str), status: u16, body: &Bytes) -> Self {
        Refusal {
            method: "POST",
            path,
            headers: vec![header],
            body: body.clone(),
            status,
        }
    }

    fn header(mut self, name: &'a str, value: &'a str) -> Self {
        self.headers.push((name, value));
        self
    }
}

/// Each HTTP/JSON refusal, with a body large enough to still be on its way
/// when the refusal is decided, is answered and ends its stream cleanly.
/// hyper used to reset such a stream (NO_ERROR) after the answer, and curl
/// 7.88 then reported error 92 without the status.
#[tokio::test]
async fn refused_http2_requests_are_answered_without_a_reset() {
    let h = Harness::start().await;
    let mut viewer = h2_connection(&h, Role::Viewer).await;
    let body = Bytes::from(vec![b' '; 2 * 1024 * 1024]);
    let json = ("content-type", "application/json");
    let big_header = "a".repeat(MAX_HEADERS);
    let get_agent = "/provd.v1.AgentService/GetAgent";
    let refusals = [
        Refusal::post("/provd.v1.AgentService/Install", json, 403, &body),
        Refusal::post(get_agent, json, 403, &body).header("origin", "https://evil.example"),
        Refusal::post("/provd.v1.AgentService/GetAgnet", json, 404, &body),
        Refusal {
            method: "PUT",
            ..Refusal::post(get_agent, json, 405, &body)
        },
        Refusal::post(get_agent, ("content-type", "text/plain"), 415, &body),
        Refusal::post(
            get_agent,
            json,
            413,
            &Bytes::from(vec![b' '; MAX_MESSAGE + 1]),
        ),
        Refusal::post(get_agent, json, 431, &body).header("x-padding", &big_header),
    ];
    let mut previous: Option<(String, h2::SendStream<Bytes>)> = None;
    for round in 0..5 {
        for r in &refusals {
            let (status, bytes, stream) =
                h2_exchange(&mut viewer, r.method, r.path, &r.headers, r.body.clone()).await;
            let what = format!("round {round}: {} {} → {status}", r.method, r.path);
            assert_eq!(status, r.status, "{what}");
            let error: serde_json::Value = serde_json::from_slice(&bytes)
                .unwrap_or_else(|e| panic!("{what}: {e}: {:?}", String::from_utf8_lossy(&bytes)));
            assert!(error["error"]["code"].is_string(), "{what}: {error}");
            if let Some((what, mut stream)) = previous.take() {
                assert_eq!(reset_of(&mut stream), None, "{what}: the stream was reset");
            }
            previous = Some((what, stream));
        }
    }
    // One more exchange, so the last refusal's reset (if any) has arrived.
    let (status, _, _) = h2_exchange(&mut viewer, "GET", "/healthz", &[], Bytes::new()).await;
    assert_eq!(status, 200);
    let (what, mut stream) = previous.unwrap();
    assert_eq!(reset_of(&mut stream), None, "{what}: the stream was reset");
    h.shutdown().await;
}
