//! `HttpTenant`'s retry rules and error mapping against the scripted
//! server: which failures are sent again, how answers become errors.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test that unwraps is asserting

use std::time::{Duration, Instant, SystemTime};

use super::test_server::{Answer, Server, answer, client, graph_error, tokens};
use super::*;

const SP: &str = "7b351a9c-0000-4000-8000-00000000abcd";
const JOB: &str = "AD2AADProvisioning.0123456789abcdef0123456789abcdef";
const SECOND: Duration = Duration::from_secs(1);

#[tokio::test]
async fn instantiate_is_not_resent_after_a_503() {
    let server = Server::start(vec![graph_error(503, "ServiceUnavailable", "busy")]).await;
    let err = server
        .client(SECOND * 5)
        .instantiate(&tokens(), "lab.example.test")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, TenantError::Unavailable(m) if m.contains("not sent again")),
        "{err:?}"
    );
    let seen = server.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].method, "POST");
    assert_eq!(
        seen[0].uri,
        "/beta/applicationTemplates/1a4721b3-e57f-4451-ae87-ef078703ec94/instantiate"
    );
    assert_eq!(seen[0].body, r#"{"displayName":"lab.example.test"}"#);
}

#[tokio::test]
async fn create_job_is_not_resent_after_a_lost_answer() {
    let server = Server::start(vec![Answer::Hang]).await;
    let client = server.client(Duration::from_millis(300));
    let err = client
        .create_job(&tokens(), SP, JobTemplate::Provisioning)
        .await
        .unwrap_err();
    assert!(matches!(err, TenantError::Unavailable(_)), "{err:?}");
    assert_eq!(server.seen().len(), 1);
    assert_eq!(
        server.seen()[0].body,
        r#"{"templateId":"AD2AADProvisioning"}"#
    );
}

#[tokio::test]
async fn instantiate_is_resent_after_a_429_and_a_refused_connection() {
    let app = r#"{"application":{"appId":"a1"},"servicePrincipal":{"id":"sp1","objectId":"sp1","appId":"a1","displayName":"lab.example.test"}}"#;
    let throttled = Answer::Status(429, vec![("retry-after", "0".into())], String::new());
    let server = Server::start(vec![throttled, answer(201, app)]).await;
    let made = server
        .client(SECOND * 5)
        .instantiate(&tokens(), "lab.example.test")
        .await
        .unwrap();
    assert_eq!(made.service_principal_id, "sp1");
    assert_eq!(server.seen().len(), 2);

    // Nothing listens: never sent, so tried as often as the policy allows.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let err = client(&base, SECOND)
        .instantiate(&tokens(), "lab.example.test")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, TenantError::Unavailable(m) if m.contains("after 4 attempts")),
        "{err:?}"
    );
}

#[tokio::test]
async fn start_is_retried_after_a_503() {
    let server = Server::start(vec![
        graph_error(503, "ServiceUnavailable", "busy"),
        answer(204, ""),
    ])
    .await;
    server
        .client(SECOND * 5)
        .start_job(&tokens(), SP, JOB)
        .await
        .unwrap();
    let seen = server.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    for s in &seen {
        assert_eq!(s.method, "POST");
        assert_eq!(
            s.uri,
            format!("/beta/servicePrincipals/{SP}/synchronization/jobs/{JOB}/start")
        );
    }
}

#[tokio::test]
async fn a_429_with_an_http_date_is_honoured() {
    let at = httpdate::fmt_http_date(SystemTime::now() + SECOND * 2);
    let throttled = Answer::Status(429, vec![("retry-after", at)], String::new());
    let server = Server::start(vec![throttled, answer(200, r#"{"value":[]}"#)]).await;
    let started = Instant::now();
    let jobs = server.client(SECOND * 5).jobs(&tokens(), SP).await.unwrap();
    assert!(jobs.is_empty());
    // The date has whole seconds: the wait is between 1 and 2 s, far above
    // the 10 ms backoff the policy would have used.
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(900), "{waited:?}");
    assert!(waited < SECOND * 4, "{waited:?}");
    assert_eq!(server.seen().len(), 2);
}

#[tokio::test]
async fn a_409_is_a_conflict() {
    let conflict = graph_error(409, "Conflict", "a job of this template exists");
    let server = Server::start(vec![conflict]).await;
    let err = server
        .client(SECOND * 5)
        .create_job(&tokens(), SP, JobTemplate::PasswordHash)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, TenantError::Conflict(m) if m == "Conflict: a job of this template exists"),
        "{err:?}"
    );
    assert_eq!(server.seen().len(), 1);
}

#[tokio::test]
async fn a_403_names_the_permission() {
    let denied = graph_error(
        403,
        "Authorization_RequestDenied",
        "Insufficient privileges",
    );
    let server = Server::start(vec![denied]).await;
    let err = server
        .client(SECOND * 5)
        .pause_job(&tokens(), SP, JOB)
        .await
        .unwrap_err();
    let TenantError::Forbidden(message) = &err else {
        panic!("{err:?}")
    };
    assert!(
        message.contains("Synchronization.ReadWrite.All"),
        "{message}"
    );
    assert!(
        message.contains("POST …/synchronization/jobs/{id}/pause"),
        "{message}"
    );
    assert!(
        message.contains("Authorization_RequestDenied: Insufficient privileges"),
        "{message}"
    );
}

#[tokio::test]
async fn a_400_is_a_protocol_error_with_graphs_message() {
    let refused = graph_error(400, "BadRequest", "unknown resetScope flag");
    let server = Server::start(vec![refused]).await;
    let err = server
        .client(SECOND * 5)
        .restart_job(
            &tokens(),
            SP,
            JOB,
            &[ResetScope::Watermark, ResetScope::Escrows],
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, TenantError::Protocol(m) if m == "HTTP 400: BadRequest: unknown resetScope flag"),
        "{err:?}"
    );
    let seen = server.seen();
    assert_eq!(seen.len(), 1, "400 is final");
    assert_eq!(
        seen[0].body,
        r#"{"criteria":{"resetScope":"Watermark, Escrows"}}"#
    );
}

#[tokio::test]
async fn the_tenants_clock_is_its_answers_date() {
    // Any answer will do; its Date header is ten minutes ahead.
    let ahead = httpdate::fmt_http_date(SystemTime::now() + SECOND * 600);
    let server = Server::start(vec![Answer::Status(
        404,
        vec![("date", ahead)],
        String::new(),
    )])
    .await;
    let time = server.client(SECOND * 5).server_time().await.unwrap();
    assert_eq!(time.url, server.base);
    // Whole seconds in the header: 599 to 600 s ahead.
    let skew = time.skew_ms();
    assert!((598_500..=600_500).contains(&skew), "{skew}");
    assert_eq!(server.seen().len(), 1, "one request, never retried");

    let server = Server::start(vec![Answer::Status(
        200,
        vec![("date", "yesterday".into())],
        String::new(),
    )])
    .await;
    let err = server.client(SECOND * 5).server_time().await.unwrap_err();
    assert!(
        matches!(&err, TenantError::Protocol(m) if m.contains("unreadable Date")),
        "{err:?}"
    );
}
