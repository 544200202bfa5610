//! DomainControllerService on the hermetic tier: discovery and probes,
//! GetPriority / SetPriority with the etag compare-and-set, membership
//! checks, the order every directory operation then follows, and a DC that
//! goes away in the middle of an operation.

use super::support_ta::*;
use crate::common::hermetic::*;
use provd::testkit::WriteOp;
use provd_proto::v1;
use provd_proto::v1::EventKind;
use tonic::Code;

fn discover_request(credential: Option<v1::Credential>) -> v1::DiscoverDomainControllersRequest {
    v1::DiscoverDomainControllersRequest {
        domain: DOMAIN.to_uppercase(),
        credential,
        ..Default::default()
    }
}

async fn discover(
    d: &Hermetic,
    request: v1::DiscoverDomainControllersRequest,
) -> Result<v1::DiscoverDomainControllersResponse, tonic::Status> {
    Ok(d.dcs()
        .discover_domain_controllers(request)
        .await?
        .into_inner())
}

fn set_request(dcs: &[&str], etag: &str) -> v1::SetPriorityRequest {
    v1::SetPriorityRequest {
        domain: DOMAIN.into(),
        domain_controllers: dcs.iter().map(|d| (*d).to_owned()).collect(),
        etag: etag.into(),
        ..Default::default()
    }
}

async fn set(
    d: &Hermetic,
    request: v1::SetPriorityRequest,
) -> Result<(Vec<v1::OperationEvent>, v1::Operation), tonic::Status> {
    let op = d.dcs().set_priority(request).await?.into_inner().operation;
    Ok(d.finish(op).await)
}

fn hosts(found: &v1::DiscoverDomainControllersResponse) -> Vec<String> {
    found
        .domain_controllers
        .iter()
        .map(|dc| dc.host_name.clone())
        .collect()
}

#[tokio::test]
async fn discovery_without_a_credential_lists_the_dns_dcs_and_probes_them() {
    let d = Hermetic::start().await;
    let found = discover(&d, discover_request(None)).await.unwrap();
    assert_eq!(found.domain, DOMAIN);
    assert_eq!(hosts(&found), [DC1, DC2]);
    assert!(
        found.directory_unavailable_reason.contains("credential"),
        "{}",
        found.directory_unavailable_reason
    );
    for dc in &found.domain_controllers {
        assert_eq!(dc.source, v1::DcSource::Dns as i32, "{dc:?}");
        assert!(dc.site.is_empty());
        assert_eq!(dc.addresses.len(), 1, "{dc:?}");
        assert_eq!(dc.priority_rank, 0);
        let probe = dc.probe.as_ref().expect("probed");
        assert!(probe.reachable, "{}", probe.error);
        assert!(probe.certificate_trusted);
        assert_eq!(probe.certificate_subject, format!("CN={}", dc.host_name));
        assert_eq!(probe.dns_host_name, dc.host_name);
        assert!(
            probe
                .default_naming_context
                .eq_ignore_ascii_case(&d.fakes.directory.base_dn())
        );
        assert!(probe.bind_latency.is_some() && probe.clock_skew.is_some());
    }
    assert!(
        d.fakes.directory.connects().is_empty(),
        "no bind without a credential"
    );
    d.shutdown().await;
}

#[tokio::test]
async fn discovery_with_a_credential_merges_the_directory_source_and_sites() {
    let d = Hermetic::start().await;
    let found = discover(&d, discover_request(Some(admin()))).await.unwrap();
    assert!(
        found.directory_unavailable_reason.is_empty(),
        "{}",
        found.directory_unavailable_reason
    );
    assert_eq!(hosts(&found), [DC1, DC2]);
    for dc in &found.domain_controllers {
        assert_eq!(dc.source, v1::DcSource::Both as i32, "{dc:?}");
        assert_eq!(dc.site, "Default-First-Site-Name");
    }

    // skip_probe: listed, not probed.
    let mut request = discover_request(Some(admin()));
    request.skip_probe = true;
    let found = discover(&d, request).await.unwrap();
    assert!(found.domain_controllers.iter().all(|dc| dc.probe.is_none()));
    d.shutdown().await;
}

#[tokio::test]
async fn discovery_reports_an_unreachable_dc_in_its_probe_and_follows_the_priority() {
    let d = Hermetic::start().await;
    ok(&d.set_priority(&[DC2, DC1]).await);
    d.fakes.directory.set_reachable(DC2, false);
    let found = discover(&d, discover_request(None)).await.unwrap();
    assert_eq!(hosts(&found), [DC2, DC1], "priority order first");
    let ranks: Vec<_> = found
        .domain_controllers
        .iter()
        .map(|dc| dc.priority_rank)
        .collect();
    assert_eq!(ranks, [1, 2]);
    let down = found.domain_controllers[0].probe.as_ref().unwrap();
    assert!(!down.reachable);
    assert!(down.error.contains("refused"), "{}", down.error);
    assert!(down.bind_latency.is_none() && down.clock_skew.is_none());
    assert!(
        found.domain_controllers[1]
            .probe
            .as_ref()
            .unwrap()
            .reachable
    );
    d.shutdown().await;
}

#[tokio::test]
async fn discovery_rejects_bad_input_and_a_wrong_credential() {
    let d = Hermetic::start().await;
    let mut request = discover_request(None);
    request.domain = "lab example".into();
    assert_fields(&discover(&d, request).await.unwrap_err(), &["domain"]);

    let mut request = discover_request(None);
    request.probe_timeout = Some(pbjson_types::Duration {
        seconds: 0,
        nanos: 10_000_000,
    });
    assert_fields(
        &discover(&d, request).await.unwrap_err(),
        &["probe_timeout"],
    );
    let mut request = discover_request(None);
    request.probe_timeout = Some(pbjson_types::Duration {
        seconds: 61,
        nanos: 0,
    });
    assert_fields(
        &discover(&d, request).await.unwrap_err(),
        &["probe_timeout"],
    );

    let mut wrong = admin();
    wrong.password = "wrong-password".into();
    let err = discover(&d, discover_request(Some(wrong)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated, "{}", err.message());
    assert!(!err.message().contains("wrong-password"));
    d.shutdown().await;
}

#[tokio::test]
async fn get_priority_of_a_domain_without_one_is_empty_with_an_etag() {
    let d = Hermetic::start().await;
    let empty = get_priority(&d).await;
    assert_eq!(empty.domain, DOMAIN);
    assert!(empty.domain_controllers.is_empty());
    assert!(!empty.etag.is_empty());
    assert!(empty.update_time.is_none());
    let err = d
        .dcs()
        .get_priority(v1::GetPriorityRequest {
            domain: "not a domain".into(),
        })
        .await
        .unwrap_err();
    assert_fields(&err, &["domain"]);

    // The empty state's etag is accepted by SetPriority.
    let (_, op) = set(&d, set_request(&[DC1], &empty.etag)).await.unwrap();
    ok(&op);
    assert_eq!(op.result["changed"], "true");
    let now = get_priority(&d).await;
    assert_eq!(now.domain_controllers, [DC1]);
    assert_eq!(now.etag, op.result["etag"]);
    assert_ne!(now.etag, empty.etag);
    assert!(now.update_time.is_some());
    d.shutdown().await;
}

#[tokio::test]
async fn a_stale_etag_is_aborted_and_changes_nothing() {
    let d = Hermetic::start().await;
    let e0 = get_priority(&d).await.etag;
    ok(&set(&d, set_request(&[DC1, DC2], &e0)).await.unwrap().1);
    let e1 = get_priority(&d).await;

    let err = set(&d, set_request(&[DC2], &e0)).await.unwrap_err();
    assert_eq!(err.code(), Code::Aborted, "{}", err.message());
    assert!(err.message().contains(&e0), "{}", err.message());
    assert_eq!(get_priority(&d).await, e1, "nothing changed");
    assert!(
        operations_of(&d, v1::OperationKind::SetDcPriority)
            .await
            .len()
            == 1,
        "the stale call started no operation"
    );

    // Without an etag the write is unconditional.
    ok(&set(&d, set_request(&[DC2], "")).await.unwrap().1);
    assert_eq!(get_priority(&d).await.domain_controllers, [DC2]);
    d.shutdown().await;
}

#[tokio::test]
async fn setting_the_same_list_again_keeps_the_etag_and_skips_the_write() {
    let d = Hermetic::start().await;
    let (_, first) = set(&d, set_request(&[DC2, DC1], "")).await.unwrap();
    ok(&first);
    let before = get_priority(&d).await;
    let (events, op) = set(&d, set_request(&[&DC2.to_uppercase(), DC1], &before.etag))
        .await
        .unwrap();
    ok(&op);
    assert_eq!(op.result["changed"], "false");
    assert_eq!(op.result["etag"], before.etag);
    assert!(skipped(&events, "persist"));
    assert_eq!(get_priority(&d).await, before);
    d.shutdown().await;
}

#[tokio::test]
async fn a_retried_set_priority_returns_its_operation_though_the_etag_moved_on() {
    let d = Hermetic::start().await;
    let e0 = get_priority(&d).await.etag;
    let mut request = set_request(&[DC1], &e0);
    request.request_id = "prio-1".into();
    let (_, first) = set(&d, request.clone()).await.unwrap();
    ok(&first);
    let (_, again) = set(&d, request).await.unwrap();
    assert_eq!(again.id, first.id);
    assert_eq!(started(&d, v1::OperationKind::SetDcPriority).await, 1);
    d.shutdown().await;
}

#[tokio::test]
async fn malformed_priority_lists_are_named_at_the_call() {
    let d = Hermetic::start().await;
    let cases: Vec<(v1::SetPriorityRequest, &str)> = vec![
        (
            set_request(&[DC1, &DC1.to_uppercase()], ""),
            "domain_controllers[1]",
        ),
        (
            set_request(&[DC1, "bad host!"], ""),
            "domain_controllers[1]",
        ),
        (
            v1::SetPriorityRequest {
                domain_controllers: (0..17).map(|i| format!("dc{i}.{DOMAIN}")).collect(),
                ..set_request(&[], "")
            },
            "domain_controllers",
        ),
        (
            v1::SetPriorityRequest {
                domain: String::new(),
                ..set_request(&[DC1], "")
            },
            "domain",
        ),
        (
            v1::SetPriorityRequest {
                request_id: "no/slash".into(),
                ..set_request(&[DC1], "")
            },
            "request_id",
        ),
    ];
    for (request, field) in cases {
        let err = set(&d, request).await.unwrap_err();
        assert_fields(&err, &[field]);
    }
    assert_eq!(started(&d, v1::OperationKind::SetDcPriority).await, 0);
    d.shutdown().await;
}

#[tokio::test]
async fn a_dc_outside_the_domain_is_refused_naming_it_and_its_index() {
    let d = Hermetic::start().await;
    let stranger = "dc9.lab.example.test";
    let (_, op) = set(&d, set_request(&[DC1, stranger], "")).await.unwrap();
    let error = failed(&op);
    assert_eq!(error.code, "INVALID_ARGUMENT", "{}", error.message);
    assert_eq!(error.step, "check-members");
    assert!(error.message.contains(stranger), "{}", error.message);
    assert!(
        error.message.contains("domain_controllers[1]"),
        "{}",
        error.message
    );
    assert!(get_priority(&d).await.domain_controllers.is_empty());

    // Kept with a warning when allowed.
    let mut request = set_request(&[DC1, stranger], "");
    request.allow_unreachable = true;
    let (events, op) = set(&d, request).await.unwrap();
    ok(&op);
    assert!(
        dc_events(&events).contains(&(EventKind::Warning, stranger.to_owned())),
        "{events:#?}"
    );
    assert_eq!(get_priority(&d).await.domain_controllers, [DC1, stranger]);
    d.shutdown().await;
}

#[tokio::test]
async fn a_dc_serving_another_domain_is_refused_even_when_unreachable_ones_are_allowed() {
    let d = Hermetic::start().await;
    let mut request = set_request(&[DC1], "");
    request.domain = "other.example.test".into();
    request.allow_unreachable = true;
    let (_, op) = set(&d, request).await.unwrap();
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
async fn the_priority_order_is_honoured_and_fails_over_in_that_order() {
    let d = Hermetic::start().await;
    ok(&d.set_priority(&[DC2, DC1]).await);
    let (events, op) = d.add_directory().await;
    ok(&op);
    assert_eq!(dc_events(&events), [(EventKind::Progress, DC2.to_owned())]);

    d.fakes.directory.set_reachable(DC2, false);
    let (events, op) = d.add_directory().await;
    ok(&op);
    assert_eq!(
        dc_events(&events),
        [
            (EventKind::Warning, DC2.to_owned()),
            (EventKind::Progress, DC1.to_owned())
        ]
    );
    assert_eq!(d.fakes.directory.connects(), [DC2, DC1]);

    // A priority of one DC is exactly that DC: no fallback to DNS order.
    d.fakes.directory.set_reachable(DC2, true);
    ok(&d.set_priority(&[DC2]).await);
    d.fakes.directory.set_reachable(DC2, false);
    let (_, op) = d.add_directory().await;
    let error = failed(&op);
    assert_eq!(error.code, "UNAVAILABLE");
    assert!(!error.message.contains(DC1), "{}", error.message);

    // Cleared: DNS order again, DC1 first.
    ok(&d.set_priority(&[]).await);
    d.fakes.directory.set_reachable(DC2, true);
    let (events, _) = d.add_directory().await;
    assert_eq!(dc_events(&events), [(EventKind::Progress, DC1.to_owned())]);
    d.shutdown().await;
}

#[tokio::test]
async fn a_dc_gone_mid_create_gmsa_fails_it_cleanly_and_the_retry_uses_the_next() {
    let d = Hermetic::start().await;
    ok(&d.set_priority(&[DC1, DC2]).await);
    d.make_computer("AGENT1");
    // DC1 binds and answers two operations, then goes away.
    d.fakes.directory.fail_after(DC1, 2);
    let (_, op) = d.create_gmsa(&["AGENT1$"]).await;
    let error = failed(&op);
    assert_eq!(error.code, "UNAVAILABLE", "{}", error.message);
    assert!(error.message.contains(DC1), "{}", error.message);
    assert!(d.fakes.directory.writes().is_empty());
    assert!(!configured(&d).await, "nothing recorded");

    let (events, op) = d.create_gmsa(&["AGENT1$"]).await;
    ok(&op);
    assert_eq!(
        dc_events(&events),
        [
            (EventKind::Warning, DC1.to_owned()),
            (EventKind::Progress, DC2.to_owned())
        ]
    );
    let writes = d.fakes.directory.writes();
    assert_eq!(writes.len(), 1, "{writes:?}");
    assert_eq!((writes[0].dc.as_str(), writes[0].op), (DC2, WriteOp::Add));
    d.shutdown().await;
}

#[tokio::test]
async fn discover_of_a_domain_without_srv_records_is_not_found_in_words() {
    let d = Hermetic::start().await;
    for credential in [None, Some(admin())] {
        let with = credential.is_some();
        let err = d
            .dcs()
            .discover_domain_controllers(v1::DiscoverDomainControllersRequest {
                domain: "nowhere.example.test".into(),
                credential,
                skip_probe: true,
                ..Default::default()
            })
            .await
            .unwrap_err();
        let message = err.message();
        assert_eq!(err.code(), Code::NotFound, "credential {with}: {message}");
        assert!(
            message.contains("_ldap._tcp.dc._msdcs.nowhere.example.test"),
            "{message}"
        );
        for debug in ["Query {", "Name(", "query_type"] {
            assert!(!message.contains(debug), "{message}");
        }
    }
    d.shutdown().await;
}
