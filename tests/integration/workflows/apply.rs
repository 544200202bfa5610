//! ConfigurationService on the fakes: the plan lists what apply does, a
//! second apply does nothing, a failing section stops the rest, bad
//! documents name their fields by path, and a cancel stops at a step
//! boundary with a later apply finishing the job.

use super::support_tb::*;
use crate::common::hermetic::*;
use crate::common::sha256_hex;
use provd::testkit::FakeDirectory;
use provd_proto::v1;
use provd_proto::v1::EventKind::{Progress, StepSkipped};
use tonic::{Code, Status};

/// The whole wizard as one document: the agent from an MSI, the domain
/// preferring dc1 then dc2, a gMSA for HOST1$ with BASIC_READ, writeback on.
pub(super) fn document(d: &Hermetic) -> v1::DesiredState {
    let bytes = msi_bytes("1.1.1370.0");
    v1::DesiredState {
        host: None,
        agent: Some(v1::AgentSpec {
            source: package(d, "agent.msi", &bytes),
            sha256: sha256_hex(&bytes),
            accept_license: true,
            ..Default::default()
        }),
        domains: vec![v1::DomainSpec {
            domain: DOMAIN.into(),
            preferred_domain_controllers: vec![DC1.into(), DC2.into()],
            cloud_sync: None,
        }],
        service_account: Some(v1::ServiceAccountSpec {
            domain: DOMAIN.into(),
            account: Some(v1::service_account_spec::Account::Create(
                v1::CreateGmsaSpec {
                    principals_allowed_to_retrieve_password: vec!["HOST1$".into()],
                    ..Default::default()
                },
            )),
            permissions: vec![v1::PermissionProfile::BasicRead as i32],
        }),
        writeback: Some(v1::WritebackSpec { enabled: true }),
    }
}

pub(super) async fn plan(
    d: &Hermetic,
    desired: &v1::DesiredState,
) -> Result<Vec<v1::PlannedChange>, Status> {
    configuration(d)
        .plan_configuration(v1::PlanConfigurationRequest {
            desired: Some(desired.clone()),
            credential: Some(admin()),
        })
        .await
        .map(|r| r.into_inner().changes)
}

async fn start_apply(d: &Hermetic, desired: &v1::DesiredState) -> Result<v1::Operation, Status> {
    configuration(d)
        .apply_configuration(v1::ApplyConfigurationRequest {
            desired: Some(desired.clone()),
            credential: Some(admin()),
            request_id: String::new(),
        })
        .await
        .map(|r| r.into_inner().operation.unwrap())
}

pub(super) async fn apply(
    d: &Hermetic,
    desired: &v1::DesiredState,
) -> (Vec<v1::OperationEvent>, v1::Operation) {
    let op = start_apply(d, desired).await.unwrap();
    d.finish(Some(op)).await
}

const SECTIONS: [&str; 6] = [
    "agent",
    "domain lab.example.test",
    "service-account",
    "permissions",
    "agent-domains",
    "writeback",
];

/// (step, action) of each PROGRESS event a section emitted for a change.
fn applied(events: &[v1::OperationEvent]) -> Vec<(String, String)> {
    events
        .iter()
        .filter(|e| e.kind == Progress as i32 && SECTIONS.contains(&e.step.as_str()))
        .map(|e| {
            let action = e.message.split(':').next().unwrap_or_default();
            (e.step.clone(), action.to_owned())
        })
        .collect()
}

#[tokio::test]
async fn the_plan_lists_in_order_what_apply_then_does() {
    let d = Hermetic::start().await;
    d.make_computer("HOST1");
    let desired = document(&d);
    let planned = plan(&d, &desired).await.unwrap();
    let summary: Vec<(String, String)> = planned
        .iter()
        .map(|c| (c.step.clone(), c.action.clone()))
        .collect();
    let want = [
        ("agent", "install"),
        ("agent", "register"),
        ("domain lab.example.test", "add"),
        ("service-account", "create"),
        ("permissions", "grant"),
        ("agent-domains", "add-domain"),
        ("writeback", "enable"),
    ]
    .map(|(s, a)| (s.to_owned(), a.to_owned()));
    assert_eq!(summary, want);
    assert!(planned[0].detail.contains("1.1.1370.0"), "{:?}", planned[0]);
    assert!(planned[2].detail.contains(DC1), "{:?}", planned[2]);
    assert!(
        d.fakes.directory.writes().is_empty(),
        "a plan writes nothing"
    );
    assert!(d.fakes.host.installs().is_empty());

    let (events, op) = apply(&d, &desired).await;
    ok(&op);
    assert_eq!(op.kind, v1::OperationKind::ApplyConfiguration as i32);
    assert_eq!(applied(&events), want);
    assert_eq!(op.result["changed"], "true");
    assert_eq!(op.result["changes"], "7");
    let started = steps_started(&events);
    let order: Vec<usize> = SECTIONS
        .iter()
        .map(|s| started.iter().position(|x| x == s).unwrap())
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{started:?}");
    let agent_id = d.fakes.tenant.agents()[0].id.clone();
    assert_eq!(d.fakes.tenant.writeback_flag(&agent_id), Some(true));
    assert_eq!(
        d.fakes.host.service_account(AGENT_SERVICE).as_deref(),
        Some("LAB\\provAgentgMSA$")
    );
    d.shutdown().await;
}

#[tokio::test]
async fn a_second_apply_skips_every_section_and_the_plan_is_empty() {
    let d = Hermetic::start().await;
    d.make_computer("HOST1");
    let desired = document(&d);
    ok(&apply(&d, &desired).await.1);
    let writes = d.fakes.directory.writes().len();
    let (events, op) = apply(&d, &desired).await;
    ok(&op);
    assert_eq!(op.result["changed"], "false");
    assert_eq!(op.result["changes"], "0");
    for step in SECTIONS {
        let skip = events
            .iter()
            .find(|e| e.step == step && e.kind == StepSkipped as i32)
            .unwrap_or_else(|| panic!("{step} not skipped: {events:#?}"));
        assert_eq!(skip.message, "as desired");
    }
    assert!(applied(&events).is_empty());
    assert_eq!(d.fakes.directory.writes().len(), writes, "no work");
    assert_eq!(d.fakes.host.installs().len(), 1);
    assert!(plan(&d, &desired).await.unwrap().is_empty());
    d.shutdown().await;
}

#[tokio::test]
async fn a_failing_section_stops_the_rest_naming_its_step() {
    let d = Hermetic::start_with(Fakes {
        directory: FakeDirectory::fresh_samba(),
        ..Fakes::default()
    })
    .await;
    d.make_computer("HOST1");
    let desired = document(&d);
    let (events, op) = apply(&d, &desired).await;
    let error = failed(&op);
    assert_eq!(error.code, "FAILED_PRECONDITION", "{}", error.message);
    assert_eq!(error.step, "check-prerequisites");
    assert!(
        error.message.contains("Add-KdsRootKey"),
        "{}",
        error.message
    );
    let started = steps_started(&events);
    assert!(started.contains(&"service-account".to_owned()));
    assert!(!started.contains(&"permissions".to_owned()), "{started:?}");
    assert!(!started.contains(&"writeback".to_owned()), "{started:?}");
    // What was done stays done: the agent and the domain.
    assert_eq!(d.fakes.host.installs().len(), 1);

    // With a key the same document finishes the job from there.
    d.fakes.directory.add_kds_key();
    let (events, op) = apply(&d, &desired).await;
    ok(&op);
    assert!(has(&events, "agent", StepSkipped));
    assert!(has(&events, "domain lab.example.test", StepSkipped));
    assert_eq!(
        op.result["changed_steps"],
        "service-account,permissions,agent-domains,writeback"
    );
    d.shutdown().await;
}

#[tokio::test]
async fn invalid_document_fields_are_named_by_their_paths() {
    let d = Hermetic::start().await;
    let desired = v1::DesiredState {
        host: None,
        agent: Some(v1::AgentSpec {
            source: "file:///srv/agent.msi".into(),
            sha256: "123".into(),
            accept_license: false,
            ..Default::default()
        }),
        domains: vec![
            v1::DomainSpec {
                domain: DOMAIN.into(),
                ..Default::default()
            },
            v1::DomainSpec {
                domain: "bad domain!".into(),
                ..Default::default()
            },
            v1::DomainSpec {
                domain: DOMAIN.to_uppercase(),
                ..Default::default()
            },
        ],
        service_account: Some(v1::ServiceAccountSpec {
            domain: DOMAIN.into(),
            account: Some(v1::service_account_spec::Account::Create(
                v1::CreateGmsaSpec::default(),
            )),
            permissions: vec![],
        }),
        writeback: None,
    };
    let want = [
        "desired.agent.sha256",
        "desired.agent.accept_license",
        "desired.domains[1].domain",
        "desired.domains[2].domain",
        "desired.service_account.create.principals_allowed_to_retrieve_password",
        "credential",
    ];
    let no_credential = |desired: &v1::DesiredState| v1::ApplyConfigurationRequest {
        desired: Some(desired.clone()),
        credential: None,
        request_id: String::new(),
    };
    let err = configuration(&d)
        .apply_configuration(no_credential(&desired))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(violations(&err), want);
    let err = configuration(&d)
        .plan_configuration(v1::PlanConfigurationRequest {
            desired: Some(desired),
            credential: None,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(violations(&err), want);
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
async fn a_changed_dc_order_is_planned_and_applied_as_set_priority() {
    let d = Hermetic::start().await;
    ok(&d.add_directory().await.1);
    ok(&d.set_priority(&[DC1, DC2]).await);
    let desired = v1::DesiredState {
        domains: vec![v1::DomainSpec {
            domain: DOMAIN.into(),
            preferred_domain_controllers: vec![DC2.into(), DC1.into()],
            cloud_sync: None,
        }],
        ..Default::default()
    };
    let planned = plan(&d, &desired).await.unwrap();
    assert_eq!(planned.len(), 1);
    assert_eq!(planned[0].action, "set-priority");
    assert!(planned[0].detail.contains(DC1), "{:?}", planned[0]);
    let (events, op) = apply(&d, &desired).await;
    ok(&op);
    assert_eq!(
        applied(&events),
        [(
            "domain lab.example.test".to_owned(),
            "set-priority".to_owned()
        )]
    );
    let (_, op) = apply(&d, &desired).await;
    assert_eq!(op.result["changed"], "false");
    d.shutdown().await;
}

#[cfg(unix)]
#[tokio::test]
async fn cancel_stops_at_a_step_boundary_and_a_later_apply_continues() {
    let d = Hermetic::start().await;
    // An .exe: apply cannot read its version, so the pipe is first opened
    // by fetch-package, which waits on it asynchronously.
    let pipe = crate::common::fifo(d.h.dir.path(), "slow.exe");
    let mut desired = v1::DesiredState {
        agent: Some(v1::AgentSpec {
            source: format!("file://{}", pipe.display()),
            sha256: sha256_hex(EXE_BYTES),
            accept_license: true,
            skip_registration: true,
            ..Default::default()
        }),
        domains: vec![v1::DomainSpec {
            domain: DOMAIN.into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let op = start_apply(&d, &desired).await.unwrap();
    wait_for_step(&d, &op.id, "fetch-package").await;
    let accepted = d
        .operations()
        .cancel_operation(v1::CancelOperationRequest { id: op.id.clone() })
        .await
        .unwrap()
        .into_inner()
        .operation
        .unwrap();
    assert!(accepted.cancel_requested);
    let (events, done) = d.finish(Some(op)).await;
    assert_eq!(state(&done), v1::OperationState::Cancelled);
    let started = steps_started(&events);
    assert!(
        !started.iter().any(|s| s.starts_with("domain")),
        "{started:?}"
    );
    assert!(
        d.fakes.directory.connects().is_empty(),
        "the domain untouched"
    );
    assert!(d.fakes.host.installs().is_empty());

    // Applying again (with a package that is there) finishes the job.
    desired.agent.as_mut().unwrap().source = package(&d, "agent.exe", EXE_BYTES);
    let (_, op) = apply(&d, &desired).await;
    ok(&op);
    assert_eq!(op.result["changed_steps"], "agent,domain lab.example.test");
    d.shutdown().await;
}

#[cfg(unix)]
#[tokio::test]
async fn apply_while_another_operation_runs_is_refused_and_plan_still_answers() {
    let d = Hermetic::start().await;
    let (running, _pipe) = held_install(&d, "").await;
    let desired = v1::DesiredState {
        domains: vec![v1::DomainSpec {
            domain: DOMAIN.into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let err = start_apply(&d, &desired).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains(&running.id), "{}", err.message());
    assert_eq!(precondition(&err).0, "OPERATION_RUNNING");
    // PlanConfiguration is not an operation: it answers meanwhile.
    let planned = plan(&d, &desired).await.unwrap();
    assert_eq!(planned[0].action, "add");
    d.operations()
        .cancel_operation(v1::CancelOperationRequest {
            id: running.id.clone(),
        })
        .await
        .unwrap();
    d.finish(Some(running)).await;
    d.shutdown().await;
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_an_apply_whose_msi_package_is_a_pipe() {
    let d = Hermetic::start().await;
    let pipe = crate::common::fifo(d.h.dir.path(), "slow.msi");
    // Frees the daemon after 5 s whatever happens, so the test ends.
    let feeder = pipe.clone();
    std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(5));
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new().write(true).open(&feeder) {
            let _ = f.write_all(EXE_BYTES);
        }
    });
    let desired = v1::DesiredState {
        agent: Some(v1::AgentSpec {
            source: format!("file://{}", pipe.display()),
            sha256: sha256_hex(EXE_BYTES),
            accept_license: true,
            skip_registration: true,
            ..Default::default()
        }),
        ..Default::default()
    };
    let op = start_apply(&d, &desired).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    d.operations()
        .cancel_operation(v1::CancelOperationRequest { id: op.id.clone() })
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let mut last = get_op(&d, &op.id).await;
    while state(&last) == v1::OperationState::Running
        && started.elapsed() < std::time::Duration::from_secs(2)
    {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        last = get_op(&d, &op.id).await;
    }
    if state(&last) != v1::OperationState::Cancelled {
        // The daemon's worker may still be stuck: leave it, do not wait.
        std::mem::forget(d);
        panic!("not cancelled 2 s after CancelOperation: {last:?}");
    }
    d.finish(Some(op)).await;
    d.shutdown().await;
}

/// The gMSA's principals changed in the document: the plan says what it
/// does to this host's `host.gmsa.retrievable`, and Verify agrees after
/// each apply.
#[tokio::test]
async fn a_principals_change_says_what_it_does_to_this_hosts_retrieval() {
    let d = Hermetic::start().await;
    d.make_computer("HOST1");
    d.make_computer("HOST2");
    let mut desired = document(&d);
    ok(&apply(&d, &desired).await.1);
    assert_eq!(retrievable(&d).await, v1::CheckStatus::Pass as i32);

    let principals = |desired: &mut v1::DesiredState, names: &[&str]| {
        let Some(v1::service_account_spec::Account::Create(c)) = desired
            .service_account
            .as_mut()
            .and_then(|s| s.account.as_mut())
        else {
            unreachable!("the document creates its gMSA")
        };
        c.principals_allowed_to_retrieve_password = names.iter().map(|n| (*n).into()).collect();
    };
    for (names, effect, after) in [
        (
            &["HOST2$"][..],
            "this host (HOST1$) leaves the principals: host.gmsa.retrievable FAILs",
            v1::CheckStatus::Fail,
        ),
        (
            &["HOST1$", "HOST2$"][..],
            "this host (HOST1$) joins the principals: host.gmsa.retrievable PASSes",
            v1::CheckStatus::Pass,
        ),
    ] {
        principals(&mut desired, names);
        let planned = plan(&d, &desired).await.unwrap();
        let change = planned
            .iter()
            .find(|c| c.action == "update-principals")
            .unwrap_or_else(|| panic!("{planned:#?}"));
        assert!(change.detail.contains(effect), "{change:#?}");
        ok(&apply(&d, &desired).await.1);
        assert_eq!(retrievable(&d).await, after as i32, "{names:?}");
    }
}

async fn retrievable(d: &Hermetic) -> i32 {
    let request = v1::VerifyRequest {
        credential: Some(admin()),
        ..Default::default()
    };
    let checks = super::verify::verify_with(d, request).await.unwrap().0;
    checks
        .iter()
        .find(|c| c.id == "host.gmsa.retrievable")
        .unwrap_or_else(|| panic!("{checks:#?}"))
        .status
}
