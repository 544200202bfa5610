//! A full apply through the real `provd` binary, observed from outside:
//! provd exports OTLP to a receiver in this test and logs JSON at debug
//! level to a file. One client trace (`traceparent`) covers the sign-in and
//! the apply — RPC, operation, every step, the nested workflow steps and
//! their LDAP calls — and neither the log nor any exported span or metric
//! holds the lab password or any code or token the tenant issued.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test that unwraps is asserting

use std::process::Stdio;
use std::time::Duration;

use crate::common::fixtures::*;
use crate::common::lab::*;
use crate::common::otlp::{self, SpanRecord, ancestry, descendants, traced};
use crate::common::tenant::TenantEmulator;
use crate::common::{Pki, channel, finish_with};
use provd::pki::Role;
use provd_proto::v1;
use provd_proto::v1::agent_service_client::AgentServiceClient;
use provd_proto::v1::configuration_service_client::ConfigurationServiceClient;

fn named<'a>(spans: &'a [SpanRecord], name: &str) -> Vec<&'a SpanRecord> {
    spans.iter().filter(|s| s.name == name).collect()
}

#[tokio::test]
#[ignore = "needs the Samba AD lab (root): deploy/test.sh runs the lab tier"]
async fn a_full_apply_is_one_trace_with_ldap_spans_and_no_secret_anywhere() {
    let _serial = SERIAL.lock().await;
    let emu = TenantEmulator::start(
        &crate::common::workspace_bin("provd-tenant-emulator"),
        &["--poll-interval", "1"],
    )
    .await;
    let receiver = otlp::Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::create(&dir.path().join("pki"));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dns: Vec<String> = var("LAB_DNS_SERVERS")
        .split_whitespace()
        .map(|s| format!("\"{s}\""))
        .collect();
    let config = dir.path().join("provd.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{port}\"\nstate_dir = '{state}'\n\
             [tls]\ncert = '{pki}/server.pem'\nkey = '{pki}/server.key'\nclient_ca = '{pki}/ca.pem'\n\
             [log]\nformat = \"json\"\nfilter = \"debug\"\n\
             [directory]\nca_file = '{ca}'\ndns_servers = [{dns}]\n\
             [tenant]\ntenant = \"{tenant}\"\nauthority = \"{base}\"\ngraph = \"{base}\"\n\
             ca_file = '{tenant_ca}'\n\
             [telemetry]\notlp_endpoint = \"{otlp}\"\nmetrics_interval = \"1s\"\n",
            state = dir.path().join("state").display(),
            pki = pki.dir.display(),
            ca = var("LAB_CA_PEM"),
            dns = dns.join(", "),
            tenant = crate::common::tenant::TENANT,
            base = emu.base(),
            tenant_ca = emu.ca_file.display(),
            otlp = receiver.endpoint(),
        ),
    )
    .unwrap();
    let log_path = dir.path().join("provd.log");
    let mut daemon = tokio::process::Command::new(env!("CARGO_BIN_EXE_provd"))
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(dir.path().join("stdout.log")).unwrap())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let pair = pki.client("admin", &[Role::Admin]);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let channel = loop {
        if let Ok(c) = channel(addr, &pki.ca_pem(), &pair).await {
            break c;
        }
        assert!(tokio::time::Instant::now() < deadline, "provd never served");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    // Lab prerequisites, then the client's one trace.
    let mut s = admin_session().await;
    add_kds_key(s.as_mut()).await;
    make_computer(s.as_mut(), "OTELHOST").await;
    delete_gmsa(s.as_mut(), "provOtelGmsa").await;
    s.unbind().await;
    let (trace_id, client_span, traceparent) = otlp::new_traceparent();

    let op = AgentServiceClient::new(channel.clone())
        .sign_in(traced(v1::SignInRequest::default(), &traceparent))
        .await
        .unwrap()
        .into_inner()
        .operation
        .unwrap();
    let (_, op) = finish_with(&channel, op, Some(&emu)).await;
    ok(&op);

    let desired = v1::DesiredState {
        domains: vec![v1::DomainSpec {
            domain: var("LAB_DOMAIN"),
            preferred_domain_controllers: vec![var("LAB_DC1_HOST"), var("LAB_DC2_HOST")],
            cloud_sync: None,
        }],
        service_account: Some(v1::ServiceAccountSpec {
            domain: var("LAB_DOMAIN"),
            account: Some(v1::service_account_spec::Account::Create(
                v1::CreateGmsaSpec {
                    name: "provOtelGmsa".into(),
                    principals_allowed_to_retrieve_password: vec!["OTELHOST$".into()],
                    ..Default::default()
                },
            )),
            permissions: vec![v1::PermissionProfile::BasicRead as i32],
        }),
        ..Default::default()
    };
    let op = ConfigurationServiceClient::new(channel.clone())
        .apply_configuration(traced(
            v1::ApplyConfigurationRequest {
                desired: Some(desired),
                credential: Some(admin()),
                request_id: String::new(),
            },
            &traceparent,
        ))
        .await
        .unwrap()
        .into_inner()
        .operation
        .unwrap();
    let (_, op) = finish(&channel, op).await;
    ok(&op);
    assert_eq!(op.result["changed"], "true");

    // SIGTERM: a graceful stop flushes the exporters.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(daemon.id().unwrap()).unwrap()),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(30), daemon.wait())
        .await
        .expect("provd did not stop")
        .unwrap();
    assert!(status.success(), "{status}");

    let domain_step = format!("step domain {}", var("LAB_DOMAIN"));
    let spans = receiver
        .wait_for_trace(&trace_id, |spans| {
            !named(spans, "operation APPLY_CONFIGURATION").is_empty()
                && !named(spans, "step permissions").is_empty()
        })
        .await;

    // One trace: both RPCs continue the client's span.
    let apply_rpc = otlp::one(&spans, "/provd.v1.ConfigurationService/ApplyConfiguration");
    let sign_in_rpc = otlp::one(&spans, "/provd.v1.AgentService/SignIn");
    assert_eq!(apply_rpc.parent_span_id, client_span);
    assert_eq!(sign_in_rpc.parent_span_id, client_span);
    let operation = otlp::one(&spans, "operation APPLY_CONFIGURATION");
    assert_eq!(operation.parent_span_id, apply_rpc.span_id);
    // Every section is a step of the operation, with the nested
    // workflows' steps inside, and LDAP calls inside those.
    let under_operation = descendants(&spans, operation);
    for step in [
        domain_step.as_str(),
        "step service-account",
        "step permissions",
        "step connect",
        "step create-account",
        "step write",
    ] {
        assert!(
            under_operation.iter().any(|s| s.name == step),
            "{step} not under the operation: {:#?}",
            spans.iter().map(|s| &s.name).collect::<Vec<_>>()
        );
    }
    let ldap: Vec<_> = under_operation
        .iter()
        .filter(|s| s.name.starts_with("ldap."))
        .collect();
    for call in ["ldap.bind", "ldap.search", "ldap.add", "ldap.sd_write"] {
        assert!(ldap.iter().any(|s| s.name == call), "no {call}: {ldap:#?}");
    }
    for call in &ldap {
        let chain = ancestry(&spans, call);
        assert!(
            chain.iter().any(|name| name.starts_with("step ")),
            "{} is not under a step: {chain:?}",
            call.name
        );
    }
    // The sign-in's tenant requests are in the same trace.
    let sign_in_op = otlp::one(&spans, "operation SIGN_IN");
    assert!(
        descendants(&spans, sign_in_op)
            .iter()
            .any(|s| s.name.ends_with("/oauth2/v2.0/token") && s.kind == 3),
        "no tenant request under the sign-in: {:#?}",
        descendants(&spans, sign_in_op)
            .iter()
            .map(|s| &s.name)
            .collect::<Vec<_>>()
    );

    // No secret anywhere: not in the log, not in any export.
    let log = std::fs::read_to_string(&log_path).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert!(lines.len() > 20, "the debug log is suspiciously short");
    for line in &lines {
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
    }
    let mut secrets = emu.issued_secrets().await;
    assert!(secrets.len() >= 3, "a device code and two tokens at least");
    secrets.push(var("LAB_PASSWORD"));
    for secret in &secrets {
        assert!(
            !log.contains(secret.as_str()),
            "the log holds a secret ({}…)",
            &secret[..4]
        );
        receiver.assert_absent(secret);
    }
    assert!(
        receiver.all_strings().len() > 100,
        "exports are suspiciously few"
    );
    emu.stop().await;
}
