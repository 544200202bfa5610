//! DirectoryService on the hermetic tier: AddDirectory (facts, no password
//! stored, field violations, rejected binds, unreachable DCs, failover,
//! refresh, request-id retries), ListDirectories and RemoveDirectory.

use super::support_ta::*;
use crate::common::hermetic::*;
use provd::testkit::FakeDirectory;
use provd_proto::v1;
use provd_proto::v1::EventKind;
use tonic::Code;

fn add_request(domain: &str) -> v1::AddDirectoryRequest {
    v1::AddDirectoryRequest {
        domain: domain.into(),
        credential: Some(admin()),
        ..Default::default()
    }
}

async fn add(
    d: &Hermetic,
    request: v1::AddDirectoryRequest,
) -> (Vec<v1::OperationEvent>, v1::Operation) {
    let op = d
        .directories()
        .add_directory(request)
        .await
        .unwrap()
        .into_inner()
        .operation;
    d.finish(op).await
}

async fn remove(
    d: &Hermetic,
    domain: &str,
    request_id: &str,
) -> Result<(Vec<v1::OperationEvent>, v1::Operation), tonic::Status> {
    let op = d
        .directories()
        .remove_directory(v1::RemoveDirectoryRequest {
            domain: domain.into(),
            request_id: request_id.into(),
        })
        .await?
        .into_inner()
        .operation;
    Ok(d.finish(op).await)
}

#[tokio::test]
async fn add_directory_records_the_facts_and_no_password() {
    let d = Hermetic::start().await;
    let (events, op) = add(&d, add_request("LAB.Example.TEST")).await;
    ok(&op);
    assert_eq!(op.kind, v1::OperationKind::AddDirectory as i32);
    assert_eq!(op.result["domain"], DOMAIN);
    assert_eq!(op.result["netbios_name"], "LAB");
    assert_eq!(
        op.result["domain_sid"],
        d.fakes.directory.domain_sid().to_string()
    );
    assert_eq!(op.result["changed"], "true");
    assert_eq!(
        steps_started(&events),
        [
            "connect",
            "read-rootdse",
            "read-domain",
            "check-prerequisites",
            "persist",
            "add-domain"
        ],
        "no set-priority step without preferred_domain_controllers"
    );
    // No gMSA yet: the agent learns the domain later (Microsoft's order).
    assert!(skipped(&events, "add-domain"));
    assert!(succeeded(&events, "persist"));

    let dirs = list_directories(&d).await;
    assert_eq!(dirs.len(), 1);
    let dir = &dirs[0];
    assert_eq!(dir.domain, DOMAIN, "lower case");
    assert_eq!(dir.domain_dn, d.fakes.directory.base_dn());
    assert_eq!(dir.forest, DOMAIN);
    assert_eq!(dir.configuration_dn, d.fakes.directory.configuration_dn());
    assert!(dir.schema_dn.starts_with("CN=Schema,CN=Configuration,"));
    assert_eq!(
        dir.domain_functional_level,
        v1::FunctionalLevel::Windows2016 as i32
    );
    assert_eq!(dir.forest_behavior_version, 7);
    let names: Vec<_> = dir.prerequisites.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "schema.gmsa_class",
            "domain.functional_level",
            "forest.functional_level",
            "kds.root_key"
        ]
    );
    let level = &dir.prerequisites[1];
    assert!(level.ok && !level.blocking, "{level:?}");
    assert!(dir.preferred_domain_controllers.is_empty());
    assert_eq!(dir.last_domain_controller, DC1);
    assert!(dir.add_time.is_some() && dir.update_time.is_some());

    // Nothing was written to the directory, and the password is nowhere.
    assert!(d.fakes.directory.writes().is_empty());
    assert_not_echoed(&events, &op, &admin().password);
    assert_not_stored(&d, &admin().password);
    d.shutdown().await;
}

#[tokio::test]
async fn malformed_fields_are_named_and_start_nothing() {
    let d = Hermetic::start().await;
    let with = |f: &dyn Fn(&mut v1::AddDirectoryRequest)| {
        let mut r = add_request(DOMAIN);
        f(&mut r);
        r
    };
    let cases: Vec<(v1::AddDirectoryRequest, Vec<&str>)> = vec![
        (with(&|r| r.domain = "*)(uid=*".into()), vec!["domain"]),
        (with(&|r| r.domain = String::new()), vec!["domain"]),
        (with(&|r| r.domain = "a..b".into()), vec!["domain"]),
        (with(&|r| r.credential = None), vec!["credential"]),
        (
            with(&|r| r.credential.as_mut().unwrap().username = String::new()),
            vec!["credential.username"],
        ),
        (
            with(&|r| r.credential.as_mut().unwrap().password = String::new()),
            vec!["credential.password"],
        ),
        (
            with(&|r| r.credential.as_mut().unwrap().password = "x".repeat(1025)),
            vec!["credential.password"],
        ),
        (
            with(&|r| r.preferred_domain_controllers = vec!["dc1)(x=*".into()]),
            vec!["preferred_domain_controllers[0]"],
        ),
        (
            with(&|r| r.preferred_domain_controllers = vec![DC1.into(), DC1.to_uppercase()]),
            vec!["preferred_domain_controllers[1]"],
        ),
        (
            with(&|r| {
                r.preferred_domain_controllers =
                    (0..17).map(|i| format!("dc{i}.{DOMAIN}")).collect();
            }),
            vec!["preferred_domain_controllers"],
        ),
        (
            with(&|r| r.request_id = "has space".into()),
            vec!["request_id"],
        ),
        (
            with(&|r| r.request_id = "x".repeat(129)),
            vec!["request_id"],
        ),
        (
            with(&|r| {
                r.domain = "-bad".into();
                r.credential.as_mut().unwrap().password = String::new();
            }),
            vec!["domain", "credential.password"],
        ),
    ];
    for (request, expected) in cases {
        let err = d.directories().add_directory(request).await.unwrap_err();
        assert_fields(&err, &expected);
        assert!(
            !err.message().contains(&admin().password),
            "{}",
            err.message()
        );
    }
    assert_eq!(started(&d, v1::OperationKind::AddDirectory).await, 0);
    assert!(d.fakes.directory.connects().is_empty());
    d.shutdown().await;
}

#[tokio::test]
async fn a_wrong_password_is_unauthenticated_and_stores_nothing() {
    let d = Hermetic::start().await;
    let mut wrong = admin();
    wrong.password = "Not-The-Password-1".into();
    let (events, op) = d.add_directory_as(wrong.clone()).await;
    let error = failed(&op);
    assert_eq!(error.code, "UNAUTHENTICATED", "{}", error.message);
    assert_eq!(error.step, "connect");
    assert!(
        error.message.contains("rejected the credentials"),
        "{}",
        error.message
    );
    // A rejected bind does not fail over: DC2 was never tried.
    assert!(warnings(&events).is_empty(), "{events:#?}");
    assert!(d.fakes.directory.connects().is_empty());
    assert!(list_directories(&d).await.is_empty());
    assert_not_echoed(&events, &op, &wrong.password);
    assert_not_stored(&d, &wrong.password);
    d.shutdown().await;
}

#[tokio::test]
async fn a_bind_refused_by_the_first_dc_is_not_retried_on_the_next() {
    let fakes = Fakes::default();
    fakes.directory.refuse_bind(DC1, true);
    let d = Hermetic::start_with(fakes).await;
    let (events, op) = d.add_directory().await;
    let error = failed(&op);
    assert_eq!(error.code, "UNAUTHENTICATED", "{}", error.message);
    assert!(error.message.contains(DC1), "{}", error.message);
    assert!(
        dc_events(&events).iter().all(|(_, dc)| dc != DC2),
        "{events:#?}"
    );
    assert!(d.fakes.directory.connects().is_empty());
    assert!(list_directories(&d).await.is_empty());
    d.shutdown().await;
}

#[tokio::test]
async fn an_unknown_domain_is_unavailable_naming_it() {
    let d = Hermetic::start().await;
    let (_, op) = add(&d, add_request("nowhere.example.test")).await;
    let error = failed(&op);
    assert_eq!(error.code, "UNAVAILABLE", "{}", error.message);
    assert_eq!(error.step, "connect");
    assert!(
        error.message.contains("nowhere.example.test"),
        "{}",
        error.message
    );
    assert!(d.fakes.directory.connects().is_empty());
    assert!(list_directories(&d).await.is_empty());
    d.shutdown().await;
}

#[tokio::test]
async fn every_dc_unreachable_is_unavailable_listing_each_dc() {
    let fakes = Fakes::default();
    fakes.directory.set_reachable(DC1, false);
    fakes.directory.set_reachable(DC2, false);
    let d = Hermetic::start_with(fakes).await;
    let (events, op) = d.add_directory().await;
    let error = failed(&op);
    assert_eq!(error.code, "UNAVAILABLE", "{}", error.message);
    assert_eq!(error.step, "connect");
    for dc in [DC1, DC2] {
        assert!(error.message.contains(dc), "{dc}: {}", error.message);
    }
    // One failover warning per DC, in the order tried.
    assert_eq!(
        dc_events(&events),
        [
            (EventKind::Warning, DC1.to_owned()),
            (EventKind::Warning, DC2.to_owned())
        ]
    );
    assert!(list_directories(&d).await.is_empty());
    d.shutdown().await;
}

#[tokio::test]
async fn a_dc_that_does_not_answer_fails_over_to_the_next_with_a_warning() {
    let fakes = Fakes::default();
    fakes.directory.set_reachable(DC1, false);
    let d = Hermetic::start_with(fakes).await;
    let (events, op) = d.add_directory().await;
    ok(&op);
    assert_eq!(
        dc_events(&events),
        [
            (EventKind::Warning, DC1.to_owned()),
            (EventKind::Progress, DC2.to_owned())
        ]
    );
    let warning = &warnings(&events)[0];
    assert_eq!(warning.step, "connect");
    assert!(warning.message.contains("refused"), "{}", warning.message);
    assert_eq!(d.fakes.directory.connects(), [DC2]);
    assert_eq!(list_directories(&d).await[0].last_domain_controller, DC2);
    d.shutdown().await;
}

#[tokio::test]
async fn adding_again_changes_nothing_and_says_so() {
    let d = Hermetic::start().await;
    ok(&d.add_directory().await.1);
    let first = list_directories(&d).await.remove(0);
    let (events, op) = d.add_directory().await;
    ok(&op);
    assert_eq!(op.result["changed"], "false");
    assert!(skipped(&events, "persist"));
    assert!(!succeeded(&events, "persist"));
    let again = list_directories(&d).await.remove(0);
    assert_eq!(again, first, "add_time and update_time are kept too");
    assert_eq!(d.fakes.directory.connects(), [DC1, DC1]);
    d.shutdown().await;
}

#[tokio::test]
async fn a_raised_functional_level_is_refreshed_and_each_change_reported() {
    let d = Hermetic::start().await;
    // A domain below the recommended 2012 R2 (Samba 4.17's highest): a
    // warning, not a blocker.
    d.fakes.directory.set_functional_level(4);
    ok(&d.add_directory().await.1);
    let first = list_directories(&d).await.remove(0);
    let level = &first.prerequisites[1];
    assert!(
        !level.ok && !level.blocking && level.message.contains("2008 R2"),
        "{level:?}"
    );
    d.fakes.directory.set_functional_level(7);
    let (events, op) = d.add_directory().await;
    ok(&op);
    assert_eq!(op.result["changed"], "true");
    let changed: Vec<_> = events
        .iter()
        .filter_map(|e| e.attributes.get("changed").map(String::as_str))
        .collect();
    for fact in [
        "domain_behavior_version",
        "forest_behavior_version",
        "prerequisites",
    ] {
        assert!(changed.contains(&fact), "{fact}: {changed:?}");
    }
    let now = list_directories(&d).await.remove(0);
    assert_eq!(
        now.domain_functional_level,
        v1::FunctionalLevel::Windows2016 as i32
    );
    assert_eq!(now.domain_behavior_version, 7);
    assert!(now.prerequisites[1].ok, "{:?}", now.prerequisites[1]);
    assert_eq!(now.add_time, first.add_time, "add_time is immutable");
    assert_ne!(now.update_time, first.update_time);
    d.shutdown().await;
}

#[tokio::test]
async fn a_missing_kds_root_key_is_a_warning_not_a_failure() {
    let fakes = Fakes {
        directory: FakeDirectory::fresh_samba(),
        ..Fakes::default()
    };
    let d = Hermetic::start_with(fakes).await;
    let (events, op) = d.add_directory().await;
    ok(&op);
    let warned: Vec<_> = events_of(&events, "check-prerequisites", EventKind::Warning)
        .into_iter()
        .filter_map(|e| e.attributes.get("prerequisite").cloned())
        .collect();
    assert!(warned.contains(&"kds.root_key".to_owned()), "{warned:?}");
    let kds = list_directories(&d).await[0]
        .prerequisites
        .iter()
        .find(|p| p.name == "kds.root_key")
        .cloned()
        .unwrap();
    assert!(!kds.ok && !kds.blocking);
    assert!(kds.message.contains("Add-KdsRootKey"), "{}", kds.message);
    d.shutdown().await;
}

#[tokio::test]
async fn preferred_dcs_become_the_priority_and_are_used_in_order() {
    let d = Hermetic::start().await;
    let mut request = add_request(DOMAIN);
    request.preferred_domain_controllers = vec![DC2.to_uppercase(), DC1.into()];
    let (events, op) = add(&d, request).await;
    ok(&op);
    assert!(succeeded(&events, "set-priority"));
    assert_eq!(d.fakes.directory.connects(), [DC2]);
    let priority = get_priority(&d).await;
    assert_eq!(priority.domain_controllers, [DC2, DC1]);
    let dir = list_directories(&d).await.remove(0);
    assert_eq!(dir.preferred_domain_controllers, [DC2, DC1]);
    assert_eq!(dir.last_domain_controller, DC2);
    d.shutdown().await;
}

#[tokio::test]
async fn a_preferred_dc_of_another_domain_is_an_invalid_argument_naming_it() {
    let d = Hermetic::start().await;
    let mut request = add_request("other.example.test");
    request.preferred_domain_controllers = vec![DC1.into()];
    let (_, op) = add(&d, request).await;
    let error = failed(&op);
    assert_eq!(error.code, "INVALID_ARGUMENT", "{}", error.message);
    assert!(error.message.contains(DC1), "{}", error.message);
    assert!(
        error.message.to_ascii_lowercase().contains("dc=lab"),
        "names the domain it serves: {}",
        error.message
    );
    d.shutdown().await;
}

#[tokio::test]
async fn remove_deletes_the_record_and_the_priority_and_touches_no_dc() {
    let d = Hermetic::start().await;
    ok(&d.set_priority(&[DC2, DC1]).await);
    ok(&d.add_directory().await.1);
    let connects = d.fakes.directory.connects().len();
    let (events, op) = remove(&d, &DOMAIN.to_uppercase(), "").await.unwrap();
    ok(&op);
    assert_eq!(op.kind, v1::OperationKind::RemoveDirectory as i32);
    assert_eq!(op.result["domain"], DOMAIN);
    assert!(succeeded(&events, "remove"));
    assert!(list_directories(&d).await.is_empty());
    assert!(get_priority(&d).await.domain_controllers.is_empty());
    assert_eq!(d.fakes.directory.connects().len(), connects);
    assert!(d.fakes.directory.writes().is_empty());

    // Gone now: a new request is NOT_FOUND.
    let err = remove(&d, DOMAIN, "").await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{}", err.message());
    d.shutdown().await;
}

#[tokio::test]
async fn removing_an_unknown_or_malformed_domain_is_refused_at_the_call() {
    let d = Hermetic::start().await;
    let err = remove(&d, "never.example.test", "").await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{}", err.message());
    assert!(err.message().contains("never.example.test"));
    let err = remove(&d, "bad_domain!", "").await.unwrap_err();
    assert_fields(&err, &["domain"]);
    let err = remove(&d, DOMAIN, "bad id").await.unwrap_err();
    assert_fields(&err, &["request_id"]);
    assert_eq!(started(&d, v1::OperationKind::RemoveDirectory).await, 0);
    d.shutdown().await;
}

#[tokio::test]
async fn removing_the_domain_of_the_recorded_account_warns() {
    let d = Hermetic::start().await;
    ok(&d.add_directory().await.1);
    d.make_computer("AGENT1");
    ok(&d.create_gmsa(&["AGENT1$"]).await.1);
    let (events, op) = remove(&d, DOMAIN, "").await.unwrap();
    ok(&op);
    assert!(
        warnings(&events)
            .iter()
            .any(|e| e.message.contains("provAgentgMSA")),
        "{events:#?}"
    );
    // The account itself stays in the directory.
    assert!(
        !d.fakes
            .directory
            .find(
                &d.fakes.directory.base_dn(),
                "(sAMAccountName=provAgentgMSA$)"
            )
            .is_empty()
    );
    d.shutdown().await;
}

#[tokio::test]
async fn a_retried_request_id_returns_the_first_operation_without_redoing_it() {
    let d = Hermetic::start().await;
    let mut request = add_request(DOMAIN);
    request.request_id = "add-lab-1".into();
    let (_, first) = add(&d, request.clone()).await;
    ok(&first);
    assert_eq!(first.request_id, "add-lab-1");
    let connects = d.fakes.directory.connects().len();
    let again = d
        .directories()
        .add_directory(request)
        .await
        .unwrap()
        .into_inner()
        .operation
        .unwrap();
    assert_eq!(again.id, first.id);
    assert_eq!(state(&again), v1::OperationState::Succeeded);
    assert_eq!(d.fakes.directory.connects().len(), connects, "no new bind");
    assert_eq!(started(&d, v1::OperationKind::AddDirectory).await, 1);

    // The same key for another kind of operation is refused, naming it.
    let err = remove(&d, DOMAIN, "add-lab-1").await.unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists, "{}", err.message());
    assert_eq!(fields(&err), ["request_id"]);
    assert!(err.message().contains(&first.id), "{}", err.message());
    assert_eq!(list_directories(&d).await.len(), 1);
    d.shutdown().await;
}

#[tokio::test]
async fn a_retried_remove_returns_its_operation_even_after_the_domain_is_gone() {
    let d = Hermetic::start().await;
    ok(&d.add_directory().await.1);
    let (_, first) = remove(&d, DOMAIN, "rm-1").await.unwrap();
    ok(&first);
    let (_, again) = remove(&d, DOMAIN, "rm-1").await.unwrap();
    assert_eq!(again.id, first.id);
    assert_eq!(started(&d, v1::OperationKind::RemoveDirectory).await, 1);
    d.shutdown().await;
}
