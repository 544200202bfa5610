//! The HTTP/JSON face of the API, on the same port as gRPC.
//!
//! Every RPC is `POST /<package>.<Service>/<Method>` (the gRPC path) with the
//! request message as proto3 JSON (pbjson) in the body, declared as
//! `content-type: application/json` (else 415), of at most 4 MiB (else 413);
//! an empty body is the empty message, and nothing may follow the JSON value
//! (else 400). A request that carries an `Origin` not in
//! `http.allowed_origins` is refused with 403 (`server.rs`): the checks a
//! browser's cross-site request cannot pass. Unary answers are the response
//! message as JSON; server streams are newline-delimited JSON, one
//! `{"result": message}` per line and a final `{"error": {...}}` line if the
//! stream fails. Handlers call the very same gRPC service methods.
//!
//! Plus `GET /healthz` (the process serves) and `GET /readyz` (the state
//! store answers).
//!
//! Errors are `{"error": {"code", "message", "fieldViolations",
//! "preconditionViolations"}}` (`status.rs`), `code` being the gRPC code of
//! the same answer over gRPC, with the HTTP status a person can act on: the
//! code's, or the transport's own (`transport_http_status`): 404 for a path
//! that is no method (the listener, before authorization, or the fallback
//! here for gRPC-only methods), 405 with `allow` for the wrong HTTP method,
//! 413, 415, 431 (header limit: `limits.rs`). A refused request's body is
//! read and dropped before the answer ([`refuse`]).

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::Request as HttpRequest;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_stream::{Stream, StreamExt};
use tonic::Status;

use super::limits::{self, MAX_MESSAGE_BYTES};
use super::status::{
    TransportError, http_status, json_error, transport_http_status, transport_status,
};
use crate::workflows::App;

fn json_response<T: Serialize>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response(),
        Err(err) => (StatusCode::INTERNAL_SERVER_ERROR, err.to_string()).into_response(),
    }
}

/// The gRPC code a JSON answer stands for (read by the listener for its
/// span and metrics).
#[derive(Debug, Clone, Copy)]
pub struct RpcCode(pub tonic::Code);

pub fn error_response(status: &Status) -> Response {
    error_response_as(http_status(status.code()), status)
}

fn error_response_as(http: StatusCode, status: &Status) -> Response {
    let mut response = json_response(http, &json_error(status));
    response.extensions_mut().insert(RpcCode(status.code()));
    response
}

/// The answer to a request the transport refuses: its body read and
/// dropped first (`limits::discard`), then the error.
pub async fn refuse<B>(request: http::Request<B>, err: &TransportError) -> Response
where
    B: http_body::Body + Unpin,
{
    let (parts, mut body) = request.into_parts();
    limits::discard(&parts.headers, &mut body).await;
    error_response_as(transport_http_status(err), &transport_status(err))
}

/// Decodes a proto3-JSON body, naming the offending field on failure.
pub fn decode_json<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T, TransportError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let message = serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let path = err.path().to_string();
        let reason = err.inner().to_string();
        let field = if path.is_empty() || path == "." {
            // Unknown fields are reported by message, not path.
            reason
                .split('`')
                .nth(1)
                .filter(|_| reason.starts_with("unknown field"))
                .map_or_else(|| "body".to_owned(), str::to_owned)
        } else {
            path
        };
        TransportError::BadJson { field, reason }
    })?;
    // One JSON value and nothing after it: `{..} xx` is not a request.
    de.end().map_err(|err| TransportError::BadJson {
        field: "body".into(),
        reason: err.to_string(),
    })?;
    Ok(message)
}

/// True when the body is declared as JSON (`application/json`, any
/// parameters). A browser can send `text/plain` or a form across sites
/// without asking first; it cannot send `application/json` so.
fn declared_json(headers: &http::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
}

pub async fn read_request<T: DeserializeOwned + Default>(
    request: HttpRequest,
) -> Result<tonic::Request<T>, Response> {
    if !declared_json(request.headers()) {
        let found = request
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default();
        return Err(refuse(request, &TransportError::NotJson { found }).await);
    }
    let (parts, mut body) = request.into_parts();
    let bytes = match limits::read_body(&parts.headers, &mut body, MAX_MESSAGE_BYTES).await {
        Ok(bytes) => bytes,
        Err(err) => {
            let request = http::Request::from_parts(parts, body);
            return Err(refuse(request, &err).await);
        }
    };
    let message: T = decode_json(&bytes).map_err(|e| error_response(&transport_status(&e)))?;
    Ok(tonic::Request::from_http(http::Request::from_parts(
        parts, message,
    )))
}

pub fn unary_response<T: Serialize>(result: Result<tonic::Response<T>, Status>) -> Response {
    match result {
        Ok(response) => {
            let mut answer = json_response(StatusCode::OK, response.get_ref());
            // The operation a call started, for the audit trail (gRPC
            // answers carry their extensions through tonic).
            if let Some(operation) = response
                .extensions()
                .get::<super::audit::AuditedOperation>()
            {
                answer.extensions_mut().insert(operation.clone());
            }
            answer
        }
        Err(status) => error_response(&status),
    }
}

pub fn stream_response<T, S>(result: Result<tonic::Response<S>, Status>) -> Response
where
    T: Serialize,
    S: Stream<Item = Result<T, Status>> + Send + 'static,
{
    let stream = match result {
        Ok(response) => response.into_inner(),
        Err(status) => return error_response(&status),
    };
    let lines = stream.map(|item| {
        let mut line = match item {
            Ok(message) => serde_json::to_vec(&serde_json::json!({ "result": message })),
            Err(status) => serde_json::to_vec(&json_error(&status)),
        }
        .unwrap_or_else(|e| {
            format!("{{\"error\":{{\"message\":{:?}}}}}", e.to_string()).into_bytes()
        });
        line.push(b'\n');
        Ok::<_, std::convert::Infallible>(Bytes::from(line))
    });
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-ndjson"),
        )],
        Body::from_stream(lines),
    )
        .into_response()
}

/// One JSON route per RPC, calling the gRPC service method; none for a
/// client stream (`upload`), which has no JSON form (the fallback's 404).
macro_rules! json_routes {
    ($router:expr, $api:expr, $trait:path, { $($kind:ident $path:expr => $method:ident($req:ty)),* $(,)? }) => {{
        let router = $router;
        $(
            let router = json_routes!(@route $kind, router, $api, $trait, $path, $method, $req);
        )*
        router
    }};
    (@route upload, $router:expr, $api:expr, $trait:path, $path:expr, $method:ident, $req:ty) => {
        $router
    };
    (@route $kind:ident, $router:expr, $api:expr, $trait:path, $path:expr, $method:ident, $req:ty) => {{
        let api = $api.clone();
        $router.route(
            $path,
            axum::routing::post(move |request: axum::extract::Request| {
                let api = api.clone();
                async move {
                    let request = match $crate::transport::http::read_request::<$req>(request).await {
                        Ok(request) => request,
                        Err(response) => return response,
                    };
                    json_routes!(@$kind <_ as $trait>::$method(&api, request).await)
                }
            }),
        )
    }};
    (@unary $call:expr) => { $crate::transport::http::unary_response($call) };
    (@stream $call:expr) => { $crate::transport::http::stream_response($call) };
}
pub(crate) use json_routes;

/// The JSON router's answers for a path it has no route for (the gRPC-only
/// methods of the role table: 404) and for a route called with an HTTP
/// method it does not take (405; axum adds the `allow` header). Set after
/// every route.
pub fn with_fallbacks(router: Router) -> Router {
    router
        .method_not_allowed_fallback(|request: HttpRequest| async move {
            let err = TransportError::WrongMethod {
                method: request.method().to_string(),
                path: request.uri().path().to_owned(),
            };
            refuse(request, &err).await
        })
        .fallback(|request: HttpRequest| async move {
            let path = request.uri().path().to_owned();
            refuse(request, &TransportError::NoSuchMethod { path }).await
        })
}

pub fn probes(app: Arc<App>) -> Router {
    Router::new()
        .route(
            "/healthz",
            axum::routing::get(|| async {
                json_response(StatusCode::OK, &serde_json::json!({ "status": "SERVING" }))
            }),
        )
        .route(
            "/readyz",
            axum::routing::get(move || {
                let app = app.clone();
                async move {
                    match app.operations.list(1, "", Default::default()).await {
                        Ok(_) => json_response(
                            StatusCode::OK,
                            &serde_json::json!({ "status": "READY" }),
                        ),
                        Err(err) => json_response(
                            StatusCode::SERVICE_UNAVAILABLE,
                            &serde_json::json!({ "status": "NOT_READY", "reason": err.to_string() }),
                        ),
                    }
                }
            }),
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use provd_proto::v1;

    /// An enum field of the wrong type names the values it takes, saying
    /// "expected" once (pbjson's text after serde's; see build.rs).
    #[test]
    fn a_wrong_enum_value_names_the_values_once() {
        let err = decode_json::<v1::ListOperationsRequest>(br#"{"state": true}"#).unwrap_err();
        let TransportError::BadJson { field, reason } = err else {
            panic!("{err}");
        };
        assert_eq!(field, "state");
        assert!(reason.contains("expected one of: ["), "{reason}");
        assert!(reason.contains("OPERATION_STATE_RUNNING"), "{reason}");
        assert!(!reason.contains("expected expected"), "{reason}");
    }
}
