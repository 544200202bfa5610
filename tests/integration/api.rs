//! The API in-process: mTLS refusals, the role table for every method,
//! operations (watch, cancel, idempotency, single writer), HTTP/JSON parity,
//! reflection and health, and live certificate reload.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test that unwraps is asserting

use std::collections::BTreeSet;
use std::time::Duration;

use crate::common::*;
use prost::Message;
use provd::pki::Role;
use provd_proto::v1;
use provd_proto::v1::agent_service_client::AgentServiceClient;
use provd_proto::v1::operations_service_client::OperationsServiceClient;
use tonic::Code;
use tonic_types::StatusExt;

fn install_request(source: &std::path::Path, sha: &str, request_id: &str) -> v1::InstallRequest {
    v1::InstallRequest {
        source: format!("file://{}", source.display()),
        sha256: sha.into(),
        accept_license: true,
        cloud: 0,
        request_id: request_id.into(),
        skip_registration: false,
    }
}

async fn start_install(
    agent: &mut AgentServiceClient<tonic::transport::Channel>,
    request: v1::InstallRequest,
) -> v1::Operation {
    agent
        .install(request)
        .await
        .unwrap()
        .into_inner()
        .operation
        .unwrap()
}

async fn watch_to_end(
    ops: &mut OperationsServiceClient<tonic::transport::Channel>,
    id: &str,
) -> (Vec<v1::OperationEvent>, v1::Operation) {
    let mut stream = ops
        .watch_operation(v1::WatchOperationRequest {
            id: id.into(),
            after_sequence: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let item = tokio::time::timeout_at(deadline, stream.message())
            .await
            .expect("watch did not end")
            .unwrap()
            .expect("stream ended without a terminal operation");
        match item.item.unwrap() {
            v1::watch_operation_response::Item::Event(e) => events.push(e),
            v1::watch_operation_response::Item::Operation(op) => {
                assert!(
                    stream.message().await.unwrap().is_none(),
                    "nothing after the terminal operation"
                );
                return (events, op);
            }
        }
    }
}

#[tokio::test]
async fn mtls_refuses_missing_foreign_and_expired_client_certificates() {
    let h = Harness::start().await;
    let ca = h.pki.ca_pem();
    let good = h.pki.client("viewer", &[Role::Viewer]);
    let status = raw_healthz(h.addr, rustls_client(&ca, Some(&good))).await;
    assert_eq!(status.as_deref(), Ok("HTTP/1.1 200 OK"));

    let none = raw_healthz(h.addr, rustls_client(&ca, None)).await;
    assert!(
        none.is_err(),
        "no client certificate was accepted: {none:?}"
    );
    assert!(
        none.unwrap_err()
            .to_lowercase()
            .contains("certificaterequired")
    );

    let other_ca = provd::pki::Ca::generate("other CA", DAY).unwrap();
    let foreign = other_ca
        .issue_client("mallory", &[Role::Admin], DAY)
        .unwrap();
    let refused = raw_healthz(h.addr, rustls_client(&ca, Some(&foreign))).await;
    assert!(
        refused.is_err(),
        "foreign certificate was accepted: {refused:?}"
    );

    let now = time::OffsetDateTime::now_utc();
    let expired = h
        .pki
        .ca
        .issue_client_with_validity(
            "late",
            &[Role::Admin],
            now - time::Duration::days(3),
            now - time::Duration::days(1),
        )
        .unwrap();
    let refused = raw_healthz(h.addr, rustls_client(&ca, Some(&expired))).await;
    assert!(
        refused.is_err(),
        "expired certificate was accepted: {refused:?}"
    );

    // gRPC without a client certificate never reaches a service.
    let grpc = OperationsServiceClient::new(
        tonic::transport::Endpoint::from_shared(format!("https://{}", h.addr))
            .unwrap()
            .tls_config(
                tonic::transport::ClientTlsConfig::new()
                    .ca_certificate(tonic::transport::Certificate::from_pem(&ca))
                    .domain_name("localhost"),
            )
            .unwrap()
            .connect_lazy(),
    )
    .list_operations(v1::ListOperationsRequest::default())
    .await;
    assert!(grpc.is_err());
    h.shutdown().await;
}

/// Every method in the descriptor set must be in the table, and every
/// (method, role) pair must be allowed or denied exactly as the table says,
/// over gRPC and over HTTP/JSON.
#[tokio::test]
async fn role_table_covers_every_method_and_is_enforced() {
    let descriptors =
        prost_types::FileDescriptorSet::decode(provd_proto::FILE_DESCRIPTOR_SET).unwrap();
    let mut methods = BTreeSet::new();
    for file in &descriptors.file {
        for service in &file.service {
            for method in &service.method {
                methods.insert(format!(
                    "/{}.{}/{}",
                    file.package(),
                    service.name(),
                    method.name()
                ));
            }
        }
    }
    assert!(methods.len() >= 19, "{methods:?}");
    for method in &methods {
        assert!(
            provd::authz::allowed_roles(method).is_some(),
            "{method} is not in the authorization table"
        );
    }

    let h = Harness::start().await;
    for role in Role::ALL {
        let channel = h.channel(role).await;
        let http = h.http(role);
        for (path, allowed) in provd::authz::TABLE {
            let expect_allowed = allowed.contains(&role);
            if path.starts_with("/provd.") || path.starts_with("/grpc.") {
                let mut grpc = tonic::client::Grpc::new(channel.clone());
                grpc.ready().await.unwrap();
                let result = grpc
                    .server_streaming(
                        tonic::Request::new(()),
                        http::uri::PathAndQuery::from_static(path),
                        tonic_prost::ProstCodec::<(), ()>::default(),
                    )
                    .await;
                let denied = matches!(&result, Err(s) if s.code() == Code::PermissionDenied);
                assert_eq!(
                    !denied,
                    expect_allowed,
                    "gRPC {path} as {role}: {:?}",
                    result.err()
                );
                let response = http
                    .post(h.url(path))
                    .header("content-type", "application/json")
                    .body("{}")
                    .send()
                    .await
                    .unwrap();
                assert_eq!(
                    response.status() != 403,
                    expect_allowed,
                    "JSON {path} as {role}: {}",
                    response.status()
                );
            } else {
                let response = http.get(h.url(path)).send().await.unwrap();
                assert_eq!(
                    response.status() == 200,
                    expect_allowed,
                    "GET {path} as {role}"
                );
            }
        }
        // A path not in the table is no method, for every role: never
        // routed (default deny), and said so (http_errors.rs).
        let response = http
            .post(h.url("/provd.v1.AgentService/Reinstall"))
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404);
    }

    // A certificate without any role may call nothing.
    let roleless = roleless_client(&h.pki.ca);
    let channel = channel(h.addr, &h.pki.ca_pem(), &roleless).await.unwrap();
    let err = AgentServiceClient::new(channel)
        .get_agent(v1::GetAgentRequest {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    h.shutdown().await;
}

/// A client certificate from the right CA that carries no role URI (pki
/// refuses to issue one, so it is made with rcgen directly).
fn roleless_client(ca: &provd::pki::Ca) -> provd::pki::PemPair {
    let key = rcgen::KeyPair::from_pem(&ca.key_pem()).unwrap();
    let issuer = rcgen::Issuer::from_ca_cert_pem(&ca.cert_pem(), key).unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "nobody");
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let cert = params.signed_by(&leaf_key, &issuer).unwrap();
    provd::pki::PemPair {
        cert_pem: cert.pem(),
        key_pem: leaf_key.serialize_pem(),
    }
}

#[cfg(unix)]
#[tokio::test]
async fn operation_lifecycle_watch_single_writer_idempotency_and_cancel() {
    let h = Harness::start().await;
    let admin = h.channel(Role::Admin).await;
    let mut agent = AgentServiceClient::new(admin.clone());
    let mut ops = OperationsServiceClient::new(admin.clone());
    let package = b"stand-in agent package bytes".repeat(1000);
    let sha = sha256_hex(&package);

    // 1. An install that waits on a pipe holds the writer slot.
    let pipe = fifo(h.dir.path(), "agent.msi");
    let first = start_install(&mut agent, install_request(&pipe, &sha, "req-1")).await;
    assert_eq!(first.kind, v1::OperationKind::Install as i32);

    // Same request id: the same operation, no second one.
    let again = start_install(&mut agent, install_request(&pipe, &sha, "req-1")).await;
    assert_eq!(again.id, first.id);

    // Another request while it runs: FAILED_PRECONDITION naming it.
    let busy = agent
        .install(install_request(&pipe, &sha, "req-2"))
        .await
        .unwrap_err();
    assert_eq!(busy.code(), Code::FailedPrecondition);
    assert!(busy.message().contains(&first.id), "{}", busy.message());
    let details = busy.get_error_details();
    let violation = &details.precondition_failure().unwrap().violations[0];
    assert_eq!(violation.r#type, "OPERATION_RUNNING");

    // 2. Watch to the end while the pipe delivers the package.
    let writer = feed_fifo(pipe.clone(), package.clone());
    let (events, done) = watch_to_end(&mut ops, &first.id).await;
    writer.await.unwrap();
    assert_eq!(done.state, v1::OperationState::Failed as i32);
    let error = done.error.unwrap();
    assert_eq!(error.code, "FAILED_PRECONDITION");
    assert_eq!(error.step, "install-package");
    assert!(
        error.message.contains("only on Windows"),
        "{}",
        error.message
    );
    let sequences: Vec<u64> = events.iter().map(|e| e.sequence).collect();
    assert_eq!(sequences, (1..=done.event_count).collect::<Vec<_>>());
    let steps: Vec<(&str, i32)> = events.iter().map(|e| (e.step.as_str(), e.kind)).collect();
    assert!(steps.contains(&("fetch-package", v1::EventKind::StepSucceeded as i32)));
    assert!(steps.contains(&("verify-package", v1::EventKind::StepSucceeded as i32)));
    assert!(steps.contains(&("install-package", v1::EventKind::StepStarted as i32)));

    // A late watcher replays the same history.
    let (replayed, _) = watch_to_end(&mut ops, &first.id).await;
    assert_eq!(replayed, events);

    // Cancelling a finished operation is refused.
    let err = ops
        .cancel_operation(v1::CancelOperationRequest {
            id: first.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);

    // 3. A digest mismatch fails verification; nothing is staged afterwards.
    let file = h.dir.path().join("agent2.msi");
    std::fs::write(&file, &package).unwrap();
    let wrong = start_install(&mut agent, install_request(&file, &"0".repeat(64), "")).await;
    let (_, done) = watch_to_end(&mut ops, &wrong.id).await;
    let error = done.error.unwrap();
    assert_eq!(
        (error.code.as_str(), error.step.as_str()),
        ("INVALID_ARGUMENT", "verify-package")
    );
    // Only the expected digest: never the fetched file's own.
    assert!(
        error.message.contains("does not match"),
        "{}",
        error.message
    );
    assert!(error.message.contains(&"0".repeat(64)), "{}", error.message);
    assert!(!error.message.contains(&sha), "{}", error.message);
    let staged: Vec<_> = std::fs::read_dir(h.dir.path().join("state/staging"))
        .unwrap()
        .collect();
    assert!(staged.is_empty(), "staging not cleaned: {staged:?}");

    // 4. Cancel while waiting on the pipe.
    std::fs::remove_file(&pipe).unwrap();
    let pipe = fifo(h.dir.path(), "agent.msi");
    let slow = start_install(&mut agent, install_request(&pipe, &sha, "req-3")).await;
    let viewer = OperationsServiceClient::new(h.channel(Role::Viewer).await)
        .cancel_operation(v1::CancelOperationRequest {
            id: slow.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(viewer.code(), Code::PermissionDenied);
    let cancelling = ops
        .cancel_operation(v1::CancelOperationRequest {
            id: slow.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .operation
        .unwrap();
    assert!(cancelling.cancel_requested);
    let (events, done) = watch_to_end(&mut ops, &slow.id).await;
    assert_eq!(done.state, v1::OperationState::Cancelled as i32);
    assert!(
        events
            .iter()
            .any(|e| e.message.contains("cancellation requested by admin"))
    );
    // Cancelling again is idempotent.
    let again = ops
        .cancel_operation(v1::CancelOperationRequest {
            id: slow.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .operation
        .unwrap();
    assert_eq!(again.state, v1::OperationState::Cancelled as i32);

    // 5. The slot is free again, and the list shows all three, newest first.
    let list = ops
        .list_operations(v1::ListOperationsRequest {
            page_size: 2,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.operations.len(), 2);
    assert_eq!(list.operations[0].id, slow.id);
    let rest = ops
        .list_operations(v1::ListOperationsRequest {
            page_size: 2,
            page_token: list.next_page_token.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rest.operations.len(), 1);
    assert_eq!(rest.operations[0].id, first.id);
    assert!(rest.next_page_token.is_empty());
    let cancelled_only = ops
        .list_operations(v1::ListOperationsRequest {
            state: v1::OperationState::Cancelled as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cancelled_only.operations.len(), 1);
    h.shutdown().await;
}

#[tokio::test]
async fn bad_requests_name_the_field_on_both_transports() {
    let h = Harness::start().await;
    let mut agent = AgentServiceClient::new(h.channel(Role::Admin).await);
    let err = agent
        .install(v1::InstallRequest {
            source: "http://example.test/agent.msi".into(),
            sha256: "abc".into(),
            accept_license: false,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let details = err.get_error_details();
    let fields: Vec<_> = details
        .bad_request()
        .unwrap()
        .field_violations
        .iter()
        .map(|v| v.field.clone())
        .collect();
    assert_eq!(fields, ["source", "sha256", "accept_license"]);

    let http = h.http(Role::Admin);
    // Same request as JSON: same code and fields.
    let response = http
        .post(h.url("/provd.v1.AgentService/Install"))
        .header("content-type", "application/json")
        .body(r#"{"source":"http://example.test/agent.msi","sha256":"abc"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "INVALID_ARGUMENT");
    let json_fields: Vec<_> = body["error"]["fieldViolations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["field"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(json_fields, fields);

    // Malformed JSON: 400 naming the field whose value has the wrong type.
    let response = http
        .post(h.url("/provd.v1.AgentService/Install"))
        .header("content-type", "application/json")
        .body(r#"{"source": 12}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        body["error"]["fieldViolations"][0]["field"], "source",
        "{body}"
    );
    let response = http
        .post(h.url("/provd.v1.OperationsService/GetOperation"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);

    // Unknown operation: NOT_FOUND / 404.
    let id = uuid::Uuid::new_v4().to_string();
    let err = OperationsServiceClient::new(h.channel(Role::Viewer).await)
        .get_operation(v1::GetOperationRequest { id: id.clone() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let response = h
        .http(Role::Viewer)
        .post(h.url("/provd.v1.OperationsService/GetOperation"))
        .json(&serde_json::json!({ "id": id }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    h.shutdown().await;
}

#[tokio::test]
async fn json_and_grpc_give_the_same_answers() {
    let h = Harness::start().await;
    let admin = h.channel(Role::Admin).await;
    let file = h.dir.path().join("agent.msi");
    std::fs::write(&file, b"pkg").unwrap();
    let op = AgentServiceClient::new(admin.clone())
        .install(install_request(&file, &sha256_hex(b"pkg"), "parity"))
        .await
        .unwrap()
        .into_inner()
        .operation
        .unwrap();
    let mut ops = OperationsServiceClient::new(admin);
    let (events, _) = watch_to_end(&mut ops, &op.id).await;

    let grpc = ops
        .get_operation(v1::GetOperationRequest { id: op.id.clone() })
        .await
        .unwrap()
        .into_inner();
    let http = h.http(Role::Viewer);
    let json: v1::GetOperationResponse = http
        .post(h.url("/provd.v1.OperationsService/GetOperation"))
        .json(&serde_json::json!({ "id": op.id }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(json, grpc);

    let grpc_list = ops
        .list_operations(v1::ListOperationsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let json_list: v1::ListOperationsResponse = http
        .post(h.url("/provd.v1.OperationsService/ListOperations"))
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(json_list, grpc_list);

    let agent = AgentServiceClient::new(h.channel(Role::Viewer).await)
        .get_agent(v1::GetAgentRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(!agent.host_available);
    let json_agent: v1::GetAgentResponse = http
        .post(h.url("/provd.v1.AgentService/GetAgent"))
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(json_agent, agent);

    // The watch stream as NDJSON: the same events, then the operation.
    let body = http
        .post(h.url("/provd.v1.OperationsService/WatchOperation"))
        .json(&serde_json::json!({ "id": op.id }))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let lines: Vec<v1::WatchOperationResponse> = body
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            serde_json::from_value(v["result"].clone()).unwrap()
        })
        .collect();
    assert_eq!(lines.len(), events.len() + 1);
    for (line, event) in lines.iter().zip(&events) {
        assert_eq!(
            line.item,
            Some(v1::watch_operation_response::Item::Event(event.clone()))
        );
    }

    // Verify streams as NDJSON too: each check, then the report last.
    let body = h
        .http(Role::Viewer)
        .post(h.url("/provd.v1.VerifyService/Verify"))
        .json(&serde_json::json!({ "categories": ["CHECK_CATEGORY_HOST"] }))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let lines: Vec<v1::VerifyResponse> = body
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            serde_json::from_value(v["result"].clone()).unwrap()
        })
        .collect();
    let Some(v1::verify_response::Item::Check(first)) = &lines[0].item else {
        panic!("{body}");
    };
    assert_eq!(first.id, "host.backend.available");
    assert_eq!(first.status, v1::CheckStatus::Fail as i32);
    let Some(v1::verify_response::Item::Report(report)) = &lines.last().unwrap().item else {
        panic!("{body}");
    };
    assert_eq!(report.fail_count, 1);
    assert_eq!(report.status, v1::CheckStatus::Fail as i32);
    h.shutdown().await;
}

#[tokio::test]
async fn reflection_lists_every_service_and_health_serves() {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let h = Harness::start().await;
    let channel = h.channel(Role::Viewer).await;
    let mut reflection = ServerReflectionClient::new(channel.clone());
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let Some(MessageResponse::ListServicesResponse(list)) =
        responses.message().await.unwrap().unwrap().message_response
    else {
        panic!("expected a service list");
    };
    let names: BTreeSet<_> = list.service.into_iter().map(|s| s.name).collect();
    for service in [
        "provd.v1.AgentService",
        "provd.v1.ServiceAccountService",
        "provd.v1.DirectoryService",
        "provd.v1.DomainControllerService",
        "provd.v1.VerifyService",
        "provd.v1.WritebackService",
        "provd.v1.OperationsService",
        "provd.v1.ConfigurationService",
        "provd.v1.StatusService",
        "grpc.health.v1.Health",
    ] {
        assert!(names.contains(service), "{service} missing from {names:?}");
    }

    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let status = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(
        status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    let response = h
        .http(Role::Viewer)
        .get(h.url("/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    h.shutdown().await;
}

/// Replacing the CA file and server certificate takes effect without a restart.
#[tokio::test]
async fn certificates_reload_without_restart() {
    let h = Harness::start().await;
    let old_client = h.pki.client("viewer", &[Role::Viewer]);
    let new_ca = provd::pki::Ca::generate("rotated CA", DAY).unwrap();
    let new_server = new_ca
        .issue_server(&["localhost".into()], &["127.0.0.1".parse().unwrap()], DAY)
        .unwrap();
    let new_client = new_ca.issue_client("viewer", &[Role::Viewer], DAY).unwrap();
    assert!(
        raw_healthz(h.addr, rustls_client(&new_ca.cert_pem(), Some(&new_client)))
            .await
            .is_err()
    );

    std::fs::write(h.pki.dir.join("server.key"), &new_server.key_pem).unwrap();
    std::fs::write(h.pki.dir.join("server.pem"), &new_server.cert_pem).unwrap();
    std::fs::write(h.pki.dir.join("ca.pem"), new_ca.cert_pem()).unwrap();

    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let result =
            raw_healthz(h.addr, rustls_client(&new_ca.cert_pem(), Some(&new_client))).await;
        if result.as_deref() == Ok("HTTP/1.1 200 OK") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never reloaded: {result:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let old = raw_healthz(h.addr, rustls_client(&h.pki.ca_pem(), Some(&old_client))).await;
    assert!(old.is_err(), "the old CA still works: {old:?}");

    // A broken file keeps the working configuration.
    std::fs::write(h.pki.dir.join("server.pem"), "not a certificate").unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let still = raw_healthz(h.addr, rustls_client(&new_ca.cert_pem(), Some(&new_client))).await;
    assert_eq!(still.as_deref(), Ok("HTTP/1.1 200 OK"));
    h.shutdown().await;
}

/// What a browser holding an admin certificate can be made to send across
/// sites: a text/plain or form body, an `Origin` of another site, a JSON
/// value with bytes after it. None starts an operation; gRPC is unaffected.
#[tokio::test]
async fn cross_site_requests_are_refused_on_the_json_path() {
    let h = Harness::start().await;
    let http = h.http(Role::Admin);
    let uninstall = h.url("/provd.v1.AgentService/Uninstall");

    let response = http
        .post(&uninstall)
        .header("content-type", "text/plain")
        .body("{}=\r\n")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "INVALID_ARGUMENT");
    assert_eq!(body["error"]["fieldViolations"][0]["field"], "content-type");

    let response = http
        .post(&uninstall)
        .header("content-type", "application/json")
        .header("origin", "https://evil.example")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("https://evil.example"),
        "{body}"
    );

    let response = http
        .post(h.url("/provd.v1.OperationsService/ListOperations"))
        .header("content-type", "application/json")
        .body(r#"{"pageSize":1} xx"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("column"),
        "names the position: {body}"
    );

    // Nothing was started by any of them.
    let ops = OperationsServiceClient::new(h.channel(Role::Viewer).await)
        .list_operations(v1::ListOperationsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(ops.operations.is_empty(), "{ops:?}");
    h.shutdown().await;
}

/// An origin the operator allows (`http.allowed_origins`) is served.
#[tokio::test]
async fn an_allowed_origin_is_served() {
    let h = Harness::start_with(|c| {
        c.http.allowed_origins = vec!["https://admin.example.test".into()];
    })
    .await;
    let http = h.http(Role::Viewer);
    let ask = |origin: &'static str| {
        http.post(h.url("/provd.v1.AgentService/GetAgent"))
            .header("content-type", "application/json; charset=utf-8")
            .header("origin", origin)
            .body("{}")
            .send()
    };
    assert_eq!(
        ask("https://ADMIN.example.test").await.unwrap().status(),
        200
    );
    assert_eq!(
        ask("https://other.example.test").await.unwrap().status(),
        403
    );
    h.shutdown().await;
}

/// A request whose bytes do not decode (here: invalid UTF-8 in the string
/// field `id`) is the caller's mistake on gRPC too, as it is on HTTP/JSON.
#[tokio::test]
async fn an_undecodable_grpc_request_is_invalid_argument() {
    let h = Harness::start().await;
    let mut grpc = tonic::client::Grpc::new(h.channel(Role::Viewer).await);
    grpc.ready().await.unwrap();
    // prost encodes a Vec<u8> as field 1, length-delimited: GetOperation's
    // `id`, here not UTF-8.
    let status = grpc
        .unary(
            tonic::Request::new(vec![0xff_u8, 0xfe, 0xfd]),
            http::uri::PathAndQuery::from_static("/provd.v1.OperationsService/GetOperation"),
            tonic_prost::ProstCodec::<Vec<u8>, ()>::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("decode"), "{status:?}");
    // Named as a field violation, as the JSON path names it.
    let fields: Vec<String> = tonic_types::StatusExt::get_error_details(&status)
        .bad_request()
        .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
        .unwrap_or_default();
    assert_eq!(fields, ["id"], "{status:?}");
    h.shutdown().await;
}

/// Enum numbers the contract does not define, and a missing required
/// document, are named instead of read as "no filter" / "empty document".
#[tokio::test]
async fn unknown_enum_filters_and_a_missing_document_are_named() {
    use provd_proto::v1::configuration_service_client::ConfigurationServiceClient;
    let h = Harness::start().await;
    let channel = h.channel(Role::Viewer).await;
    let mut operations = OperationsServiceClient::new(channel.clone());
    for (request, field) in [
        (
            v1::ListOperationsRequest {
                state: 99,
                ..Default::default()
            },
            "state",
        ),
        (
            v1::ListOperationsRequest {
                kind: -5,
                ..Default::default()
            },
            "kind",
        ),
    ] {
        let status = operations.list_operations(request).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        let fields: Vec<_> = status
            .get_details_bad_request()
            .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
            .unwrap_or_default();
        assert_eq!(fields, [field]);
    }
    let status = ConfigurationServiceClient::new(channel)
        .plan_configuration(v1::PlanConfigurationRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("desired"), "{status:?}");
    h.shutdown().await;
}
