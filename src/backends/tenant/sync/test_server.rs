//! A scripted local HTTP server for `HttpTenant`'s cloud sync calls: it
//! answers from a list, in order, and keeps every request it saw.
//! Hermetic: no emulator, no TLS (the client is the real one, over http).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test that unwraps is asserting

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use secrecy::SecretString;

use super::*;
use crate::backends::tenant::{RetryPolicy, TenantEndpoints};

/// One scripted answer.
#[derive(Clone)]
pub(super) enum Answer {
    Status(u16, Vec<(&'static str, String)>, String),
    /// Accept the request and never answer (a lost answer).
    Hang,
}

pub(super) fn answer(status: u16, body: &str) -> Answer {
    Answer::Status(status, Vec::new(), body.into())
}

pub(super) fn graph_error(status: u16, code: &str, message: &str) -> Answer {
    let body = serde_json::json!({"error": {"code": code, "message": message,
        "innerError": {"request-id": "00000000-0000-0000-0000-000000000000", "date": "2026-12-06T10:00:00"}}});
    answer(status, &body.to_string())
}

/// A request the server saw.
#[derive(Debug, Clone)]
pub(super) struct Seen {
    pub method: String,
    pub uri: String,
    pub body: String,
}

#[derive(Clone, Default)]
struct Script {
    answers: Arc<Mutex<VecDeque<Answer>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

pub(super) struct Server {
    pub base: String,
    script: Script,
}

async fn handle(State(script): State<Script>, request: Request) -> Response {
    let method = request.method().to_string();
    let uri = request.uri().to_string();
    let body = axum::body::to_bytes(request.into_body(), usize::MAX)
        .await
        .unwrap();
    let body = String::from_utf8(body.to_vec()).unwrap();
    script.seen.lock().unwrap().push(Seen { method, uri, body });
    let next = script.answers.lock().unwrap().pop_front();
    match next {
        Some(Answer::Status(status, headers, body)) => {
            let mut response = Response::new(Body::from(body));
            *response.status_mut() = StatusCode::from_u16(status).unwrap();
            for (name, value) in headers {
                response.headers_mut().insert(
                    HeaderName::from_static(name),
                    HeaderValue::from_str(&value).unwrap(),
                );
            }
            response
        }
        Some(Answer::Hang) => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
        None => StatusCode::IM_A_TEAPOT.into_response(),
    }
}

impl Server {
    /// A server on 127.0.0.1 that answers with `answers`, in order.
    pub async fn start(answers: Vec<Answer>) -> Self {
        let script = Script::default();
        script.answers.lock().unwrap().extend(answers);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let router = axum::Router::new()
            .fallback(handle)
            .with_state(script.clone());
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { base, script }
    }

    /// More answers, after those scripted.
    pub fn push(&self, answers: Vec<Answer>) {
        self.script.answers.lock().unwrap().extend(answers);
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.script.seen.lock().unwrap().clone()
    }

    /// A client of this server: short backoff, `timeout` per request.
    pub fn client(&self, timeout: Duration) -> HttpTenant {
        client(&self.base, timeout)
    }
}

pub(super) fn client(base: &str, timeout: Duration) -> HttpTenant {
    let endpoints = TenantEndpoints {
        authority: base.into(),
        graph: base.into(),
        tenant: "lab.example.test".into(),
    };
    let retry = RetryPolicy {
        attempts: 4,
        first_backoff: Duration::from_millis(10),
        max_wait: Duration::from_secs(5),
    };
    HttpTenant::new(endpoints, None, timeout, retry).unwrap()
}

pub(super) fn tokens() -> Tokens {
    Tokens {
        access: SecretString::from("graph-token"),
        refresh: None,
        expires_at: Instant::now() + Duration::from_secs(3600),
        tenant_id: None,
        user_principal_name: None,
    }
}
