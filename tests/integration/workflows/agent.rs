//! AgentService on the fakes: Install from a local file:// package (hash
//! check, version idempotency, installer exit codes, sign-in relayed as
//! ACTION_REQUIRED, registration, services), Uninstall, GetAgent, SignIn
//! and the tenant's refusals.

use super::support_tb::*;
use crate::common::hermetic::*;
use crate::common::sha256_hex;
use provd::backends::agent_config::ModuleInfo;
use provd::backends::host::ServiceAction;
use provd::backends::host::ServiceState;
use provd::testkit::tenant::{FAKE_TENANT_ID, FAKE_USER, TenantCall, TenantFault};
use provd::testkit::{
    AgentConfigAction, AgentConfigCall, AgentConfigFault, FakeAgentConfig, FakeHost,
};
use provd_proto::v1;
use provd_proto::v1::EventKind::{ActionRequired, StepSkipped, StepSucceeded, Warning};
use tonic::Code;

fn with_agent(version: &str) -> Fakes {
    Fakes {
        host: FakeHost::new().with_agent(version),
        ..Fakes::default()
    }
}

#[tokio::test]
async fn install_from_a_local_package_runs_every_step_in_order() {
    let d = Hermetic::start().await;
    let (events, op) = install_exe(&d, true).await;
    ok(&op);
    assert_eq!(op.kind, v1::OperationKind::Install as i32);
    assert_eq!(
        steps_started(&events),
        [
            "fetch-package",
            "verify-package",
            "install-package",
            "start-services"
        ]
    );
    assert_eq!(op.result["changed"], "true");
    assert_eq!(op.result["sha256"], sha256_hex(EXE_BYTES));
    assert_eq!(op.result["installed_version"], "1.1.1370.0");
    assert_eq!(op.result["reboot_required"], "false");
    let installs = d.fakes.host.installs();
    assert_eq!(installs.len(), 1);
    assert!(!installs[0].path.exists(), "the staged copy is removed");
    assert!(
        op.description
            .contains("AADConnectProvisioningAgentSetup.exe")
    );
    assert!(
        d.fakes.agent_config.calls().is_empty(),
        "skip_registration: the agent's module is not called"
    );
    d.shutdown().await;
}

#[tokio::test]
async fn a_sha256_mismatch_fails_verify_package_naming_only_the_expected_hash() {
    let d = Hermetic::start().await;
    let source = package(&d, "agent.exe", EXE_BYTES);
    let wrong = sha256_hex(b"some other package");
    let op = start_install(&d, install_request(source, wrong.clone(), true))
        .await
        .unwrap();
    let (events, op) = d.finish(Some(op)).await;
    let error = failed(&op);
    assert_eq!(error.code, "INVALID_ARGUMENT");
    assert_eq!(error.step, "verify-package");
    assert!(
        error.message.contains("does not match"),
        "{}",
        error.message
    );
    assert!(error.message.contains(&wrong), "{}", error.message);
    // The fetched file's own digest would tell a viewer what a path (a
    // symlink to a system file) holds: it is in no event and no error.
    let actual = sha256_hex(EXE_BYTES);
    assert!(!error.message.contains(&actual), "{}", error.message);
    assert!(
        events.iter().all(|e| !e.message.contains(&actual)),
        "{events:#?}"
    );
    assert!(has(&events, "fetch-package", StepSucceeded));
    assert!(d.fakes.host.installs().is_empty(), "nothing was installed");
    assert_eq!(d.fakes.host.installed_version(), None);
    d.shutdown().await;
}

#[tokio::test]
async fn a_missing_package_fails_fetch_package() {
    let d = Hermetic::start().await;
    let source = format!("file://{}/absent.msi", d.h.dir.path().display());
    let op = start_install(&d, install_request(source, sha256_hex(EXE_BYTES), true))
        .await
        .unwrap();
    let error = failed(&d.finish(Some(op)).await.1);
    assert_eq!(error.code, "FAILED_PRECONDITION");
    assert_eq!(error.step, "fetch-package");
    assert!(error.message.contains("absent.msi"), "{}", error.message);
    assert!(d.fakes.host.installs().is_empty());
    d.shutdown().await;
}

#[tokio::test]
async fn install_request_fields_are_named_in_the_bad_request() {
    let d = Hermetic::start().await;
    let err = start_install(
        &d,
        v1::InstallRequest {
            source: "http://example.test/agent.msi".into(),
            sha256: "not-hex".into(),
            accept_license: false,
            request_id: "bad id with spaces".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(
        violations(&err),
        ["source", "sha256", "accept_license", "request_id"]
    );
    // A US Government cloud for a public-cloud tenant, registering: `cloud`.
    let mut request = install_request(
        package(&d, "a.exe", EXE_BYTES),
        sha256_hex(EXE_BYTES),
        false,
    );
    request.cloud = v1::CloudEnvironment::AzureUsGovernment as i32;
    let err = start_install(&d, request).await.unwrap_err();
    assert_eq!(violations(&err), ["cloud"]);
    let list = d
        .operations()
        .list_operations(v1::ListOperationsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(list.operations.is_empty(), "no operation was started");
    d.shutdown().await;
}

#[tokio::test]
async fn the_same_msi_version_installed_skips_the_installer() {
    let d = Hermetic::start_with(with_agent("1.1.1370.0")).await;
    let (events, op) = install_msi(&d, "1.1.1370.0", true).await;
    ok(&op);
    assert!(has(&events, "check-version", StepSkipped), "{events:#?}");
    assert!(!steps_started(&events).contains(&"install-package".to_owned()));
    assert!(d.fakes.host.installs().is_empty());
    assert_eq!(op.result["changed"], "false");
    assert_eq!(op.result["installed_version"], "1.1.1370.0");
    d.shutdown().await;
}

#[tokio::test]
async fn a_newer_version_installed_skips_an_older_package() {
    let d = Hermetic::start_with(with_agent("1.1.2000.0")).await;
    let (events, op) = install_msi(&d, "1.1.977.0", true).await;
    ok(&op);
    let skip = events
        .iter()
        .find(|e| e.step == "check-version" && e.kind == StepSkipped as i32)
        .expect("check-version skipped");
    assert!(skip.message.contains("1.1.2000.0"), "{}", skip.message);
    assert!(d.fakes.host.installs().is_empty());
    assert_eq!(
        d.fakes.host.installed_version().as_deref(),
        Some("1.1.2000.0")
    );
    d.shutdown().await;
}

#[tokio::test]
async fn an_older_version_installed_is_upgraded() {
    let d = Hermetic::start_with(with_agent("1.1.500.0")).await;
    d.fakes.host.set_package_version("1.1.1370.0");
    let (events, op) = install_msi(&d, "1.1.1370.0", true).await;
    ok(&op);
    assert!(has(&events, "check-version", StepSucceeded));
    assert!(has(&events, "install-package", StepSucceeded));
    assert_eq!(d.fakes.host.installs().len(), 1);
    assert_eq!(op.result["installed_version"], "1.1.1370.0");
    assert_eq!(op.result["changed"], "true");
    d.shutdown().await;
}

#[tokio::test]
async fn exit_code_1618_another_install_running_is_unavailable() {
    let d = Hermetic::start().await;
    d.fakes.host.set_install_exit_code(1618);
    let (_, op) = install_exe(&d, true).await;
    let error = failed(&op);
    assert_eq!(error.code, "UNAVAILABLE", "{}", error.message);
    assert_eq!(error.step, "install-package");
    assert!(error.message.contains("1618"), "{}", error.message);
    assert_eq!(d.fakes.host.installed_version(), None);
    d.shutdown().await;
}

#[tokio::test]
async fn exit_code_3010_succeeds_and_warns_a_restart_is_needed() {
    let d = Hermetic::start().await;
    d.fakes.host.set_install_exit_code(3010);
    let (events, op) = install_exe(&d, true).await;
    ok(&op);
    assert_eq!(op.result["reboot_required"], "true");
    assert!(has(&events, "install-package", Warning), "{events:#?}");
    assert!(has(&events, "install-package", StepSucceeded));
    assert_eq!(
        d.fakes.host.installed_version().as_deref(),
        Some("1.1.1370.0")
    );
    d.shutdown().await;
}

#[tokio::test]
async fn other_installer_exit_codes_fail_as_mapped() {
    // 1603 (fatal error) and an unknown code: FAILED_PRECONDITION naming the
    // code; 1620 (not a valid package): INVALID_ARGUMENT, the source's fault.
    for (code, want) in [
        (1603, "FAILED_PRECONDITION"),
        (1, "FAILED_PRECONDITION"),
        (1620, "INVALID_ARGUMENT"),
    ] {
        let d = Hermetic::start().await;
        d.fakes.host.set_install_exit_code(code);
        let (_, op) = install_exe(&d, true).await;
        let error = failed(&op);
        assert_eq!(error.code, want, "exit code {code}: {}", error.message);
        assert_eq!(error.step, "install-package");
        assert!(
            error.message.contains(&format!("exit code {code}")),
            "{}",
            error.message
        );
        assert_eq!(d.fakes.host.installed_version(), None);
        d.shutdown().await;
    }
}

#[tokio::test]
async fn install_relays_the_device_code_and_records_the_registration() {
    let d = Hermetic::start().await;
    let (events, op) = install_exe(&d, false).await;
    ok(&op);
    let action = events
        .iter()
        .find(|e| e.kind == ActionRequired as i32)
        .expect("an ACTION_REQUIRED event");
    assert_eq!(action.step, "sign-in");
    assert_eq!(action.attributes["user_code"], "FAKE-CODE");
    assert_eq!(
        action.attributes["verification_uri"],
        "https://login.fake.invalid/device"
    );
    assert!(action.attributes["expires_in_secs"].parse::<u64>().unwrap() > 0);
    assert!(action.message.contains("FAKE-CODE"), "{}", action.message);
    // connect-tenant: the module is read, then connected with the
    // session's tenant id and user; the agent service restarts (SCM); the
    // id is the one Graph lists for this machine.
    assert_eq!(
        d.fakes.agent_config.calls(),
        [
            AgentConfigCall::ModuleInfo,
            AgentConfigCall::ConnectTenant {
                tenant_id: FAKE_TENANT_ID.into(),
                user_principal_name: FAKE_USER.into(),
            }
        ]
    );
    assert!(has(&events, "connect-tenant", StepSucceeded), "{events:#?}");
    assert!(
        d.fakes
            .host
            .controls()
            .contains(&("AADConnectProvisioningAgent".into(), ServiceAction::Restart)),
        "{:?}",
        d.fakes.host.controls()
    );
    let agents = d.fakes.tenant.agents();
    assert_eq!(agents.len(), 1);
    assert_eq!(agents[0].id, op.result["agent_id"]);
    assert_eq!(op.result["machine_name"], "HOST1");
    assert_eq!(d.fakes.tenant.registrations(), ["HOST1"]);
    // The script's transcript is the step's PROGRESS; no token anywhere.
    assert!(
        events.iter().any(|e| e.step == "connect-tenant"
            && e.kind == v1::EventKind::Progress as i32
            && e.message.contains("ConnectTenant")),
        "{events:#?}"
    );
    for secret in d.fakes.tenant.issued_secrets() {
        for e in &events {
            assert!(!e.message.contains(&secret), "{e:?}");
            assert!(!e.attributes.values().any(|v| v.contains(&secret)), "{e:?}");
        }
        assert!(!op.result.values().any(|v| v.contains(&secret)));
    }
    for (service, _) in provd::backends::host::AGENT_SERVICES {
        assert_eq!(d.fakes.host.service_state(service), ServiceState::Running);
    }
    assert_eq!(d.fakes.tenant.sign_ins(), 1);
    d.shutdown().await;
}

#[tokio::test]
async fn a_second_install_does_no_work_and_says_so() {
    let d = Hermetic::start().await;
    d.fakes.host.set_package_version("1.1.1370.0");
    ok(&install_msi(&d, "1.1.1370.0", false).await.1);
    let (events, op) = install_msi(&d, "1.1.1370.0", false).await;
    ok(&op);
    assert_eq!(op.result["changed"], "false");
    for step in ["check-version", "sign-in", "connect-tenant"] {
        assert!(has(&events, step, StepSkipped), "{step}: {events:#?}");
    }
    assert!(!events.iter().any(|e| e.kind == ActionRequired as i32));
    assert_eq!(d.fakes.host.installs().len(), 1, "the installer ran once");
    // The module says the signed-in tenant and Graph lists this machine:
    // no second connect.
    let connects = d
        .fakes
        .agent_config
        .calls()
        .into_iter()
        .filter(|c| matches!(c, AgentConfigCall::ConnectTenant { .. }))
        .count();
    assert_eq!(connects, 1);
    assert_eq!(d.fakes.tenant.registrations().len(), 1);
    assert_eq!(d.fakes.tenant.sign_ins(), 1);
    d.shutdown().await;
}

#[tokio::test]
async fn a_second_install_skips_start_services_too() {
    let d = Hermetic::start_with(with_agent("1.1.1370.0")).await;
    let (events, op) = install_msi(&d, "1.1.1370.0", true).await;
    ok(&op);
    assert!(has(&events, "start-services", StepSkipped), "{events:#?}");
    d.shutdown().await;
}

#[tokio::test]
async fn stopped_services_are_started_and_a_failed_start_is_unavailable() {
    let d = Hermetic::start_with(with_agent("1.1.1370.0")).await;
    d.fakes
        .host
        .set_service_state(AGENT_SERVICE, ServiceState::Stopped);
    let (events, op) = install_msi(&d, "1.1.1370.0", true).await;
    ok(&op);
    assert!(
        events
            .iter()
            .any(|e| e.step == "start-services" && e.message.starts_with("started ")),
        "{events:#?}"
    );
    assert_eq!(
        d.fakes.host.service_state(AGENT_SERVICE),
        ServiceState::Running
    );

    d.fakes
        .host
        .set_service_state(AGENT_SERVICE, ServiceState::Stopped);
    d.fakes.host.fail_service_start(true);
    let error = failed(&install_msi(&d, "1.1.1370.0", true).await.1);
    assert_eq!(error.code, "UNAVAILABLE");
    assert_eq!(error.step, "start-services");
    assert!(error.message.contains("1069"), "{}", error.message);
    d.shutdown().await;
}

#[tokio::test]
async fn uninstall_stops_and_removes_then_a_second_one_skips() {
    let d = Hermetic::start_with(with_agent("1.1.1370.0")).await;
    let uninstall = || d.uninstall();
    let (events, op) = uninstall().await;
    ok(&op);
    assert_eq!(op.kind, v1::OperationKind::Uninstall as i32);
    assert!(has(&events, "stop-services", StepSucceeded));
    assert!(has(&events, "uninstall-package", StepSucceeded));
    assert_eq!(op.result["changed"], "true");
    assert_eq!(d.fakes.host.installed_version(), None);
    assert_eq!(
        d.fakes.host.service_state(AGENT_SERVICE),
        ServiceState::NotInstalled
    );

    let (events, op) = uninstall().await;
    ok(&op);
    assert!(has(&events, "stop-services", StepSkipped));
    assert!(has(&events, "uninstall-package", StepSkipped));
    assert_eq!(op.result["changed"], "false");
    d.shutdown().await;
}

#[tokio::test]
async fn get_agent_reports_the_package_services_and_registration() {
    let d = Hermetic::start().await;
    let get = || async {
        d.agent()
            .get_agent(v1::GetAgentRequest {})
            .await
            .unwrap()
            .into_inner()
    };
    let before = get().await;
    assert!(before.host_available);
    assert!(!before.installed);
    assert!(before.version.is_empty());
    assert_eq!(before.services.len(), 2);
    assert!(
        before
            .services
            .iter()
            .all(|s| s.state == v1::ServiceState::NotInstalled as i32)
    );
    assert!(before.tenant.as_ref().unwrap().agent_id.is_empty());

    let agent_id = registered(&d).await;
    let after = get().await;
    assert!(after.installed);
    assert_eq!(after.version, "1.1.1370.0");
    assert_eq!(after.services[0].name, AGENT_SERVICE);
    assert!(
        after
            .services
            .iter()
            .all(|s| s.state == v1::ServiceState::Running as i32)
    );
    let tenant = after.tenant.unwrap();
    assert_eq!(tenant.agent_id, agent_id);
    assert_eq!(tenant.machine_name, "HOST1");
    assert!(tenant.signed_in);
    assert_eq!(tenant.tenant, "contoso.example");

    d.fakes.host.set_unavailable(Some("not a Windows host"));
    let gone = get().await;
    assert!(!gone.host_available);
    assert!(gone.host_unavailable_reason.contains("not a Windows host"));
    d.shutdown().await;
}

#[tokio::test]
async fn sign_in_declined_expired_throttled_and_5xx_map_to_the_contracts_codes() {
    for (fault, code, needle) in [
        (TenantFault::Declined, "PERMISSION_DENIED", "declined"),
        (TenantFault::Expired, "FAILED_PRECONDITION", "expired"),
        (TenantFault::Throttled, "UNAVAILABLE", "429"),
        (TenantFault::ServerError, "UNAVAILABLE", "503"),
    ] {
        let d = Hermetic::start().await;
        d.fakes.tenant.fail(TenantCall::SignIn, fault);
        let (_, op) = d.sign_in().await;
        assert_eq!(op.kind, v1::OperationKind::SignIn as i32);
        let error = failed(&op);
        assert_eq!(error.code, code, "{fault:?}: {}", error.message);
        assert_eq!(error.step, "sign-in");
        let text = format!("{} {error:?}", error.message);
        assert!(text.contains(needle), "{fault:?}: {text}");
        assert_eq!(d.fakes.tenant.sign_ins(), 0);
        d.shutdown().await;
    }
}

#[tokio::test]
async fn an_expired_device_code_names_device_code_expired() {
    let d = Hermetic::start().await;
    d.fakes
        .tenant
        .fail(TenantCall::SignIn, TenantFault::Expired);
    let error = failed(&d.sign_in().await.1);
    assert_eq!(error.code, "FAILED_PRECONDITION");
    // The operation records the same stable reason a PreconditionFailure
    // detail carries.
    assert_eq!(error.reason, "DEVICE_CODE_EXPIRED", "{error:?}");
    assert_eq!(error.step, "sign-in");
    d.shutdown().await;
}

#[tokio::test]
async fn sign_in_with_a_valid_session_is_skipped() {
    let d = Hermetic::start().await;
    let (events, op) = d.sign_in().await;
    ok(&op);
    assert!(has(&events, "sign-in", ActionRequired));
    assert!(op.result["token_expires_in_secs"].parse::<u64>().unwrap() > 0);
    let (events, op) = d.sign_in().await;
    ok(&op);
    assert!(has(&events, "sign-in", StepSkipped));
    assert!(!has(&events, "sign-in", ActionRequired));
    assert_eq!(d.fakes.tenant.sign_ins(), 1);
    d.shutdown().await;
}

#[tokio::test]
async fn connect_tenant_fails_typed_without_the_module_or_with_an_unrestricted_policy() {
    // No module at its path: FAILED_PRECONDITION AGENT_MODULE_MISSING,
    // nothing connected, nothing registered.
    let d = Hermetic::start().await;
    d.fakes.agent_config.set_module_info(ModuleInfo {
        version: None,
        ..FakeAgentConfig::new().module_info_now()
    });
    let error = failed(&install_exe(&d, false).await.1);
    assert_eq!(error.code, "FAILED_PRECONDITION", "{}", error.message);
    assert_eq!(error.step, "connect-tenant");
    assert_eq!(error.reason, "AGENT_MODULE_MISSING", "{error:?}");
    assert_eq!(d.fakes.agent_config.calls(), [AgentConfigCall::ModuleInfo]);
    assert!(d.fakes.tenant.registrations().is_empty());
    d.shutdown().await;

    // LocalMachine Unrestricted: AGENT_EXECUTION_POLICY with the scope's
    // remedy; the module is not called to connect.
    let d = Hermetic::start().await;
    let mut module = FakeAgentConfig::new().module_info_now();
    for (scope, policy) in &mut module.execution_policies {
        if scope == "LocalMachine" {
            *policy = "Unrestricted".into();
        }
    }
    d.fakes.agent_config.set_module_info(module);
    let error = failed(&install_exe(&d, false).await.1);
    assert_eq!(error.code, "FAILED_PRECONDITION", "{}", error.message);
    assert_eq!(error.step, "connect-tenant");
    assert_eq!(error.reason, "AGENT_EXECUTION_POLICY", "{error:?}");
    assert!(error.message.contains("LocalMachine"), "{}", error.message);
    assert_eq!(d.fakes.agent_config.calls(), [AgentConfigCall::ModuleInfo]);
    d.shutdown().await;

    // The module's own refusal (here: the token) fails the step as mapped.
    let d = Hermetic::start().await;
    d.fakes.agent_config.fail(
        AgentConfigAction::ConnectTenant,
        AgentConfigFault::TokenRejected,
    );
    let error = failed(&install_exe(&d, false).await.1);
    assert_eq!(error.code, "UNAUTHENTICATED", "{}", error.message);
    assert_eq!(error.step, "connect-tenant");
    assert!(d.fakes.tenant.registrations().is_empty());
    d.shutdown().await;
}

#[tokio::test]
async fn connect_tenant_runs_again_when_graph_no_longer_lists_this_machine() {
    // The module still names the tenant, but the agent is gone from Graph
    // (deleted in the portal): Install connects again.
    let d = Hermetic::start().await;
    d.fakes.agent_config.set_module_info(ModuleInfo {
        registered_tenant: Some(FAKE_TENANT_ID.into()),
        ..FakeAgentConfig::new().module_info_now()
    });
    let (events, op) = install_exe(&d, false).await;
    ok(&op);
    assert!(has(&events, "connect-tenant", StepSucceeded), "{events:#?}");
    assert_eq!(d.fakes.tenant.registrations(), ["HOST1"]);
    d.shutdown().await;
}
