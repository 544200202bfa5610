//! Hostile and out-of-bounds requests (issue 13, items 4 and 7) on the
//! hermetic tier: each is INVALID_ARGUMENT naming its field, answered before
//! any DC is contacted.

use crate::common::hermetic::*;
use provd_proto::v1;
use provd_proto::v1::configuration_service_client::ConfigurationServiceClient;
use tonic::{Code, Status};
use tonic_types::StatusExt;

/// A filter fragment posing as a DN: it reached the DC as a search base.
const HOSTILE: &str = "x)(objectClass=*";

fn fields(status: &Status) -> Vec<String> {
    status
        .get_error_details()
        .bad_request()
        .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
        .unwrap_or_default()
}

/// The call failed with INVALID_ARGUMENT naming exactly `field`.
#[track_caller]
fn assert_invalid<T: std::fmt::Debug>(result: Result<T, Status>, field: &str) {
    let err = match result {
        Ok(r) => panic!("{field}: accepted: {r:?}"),
        Err(e) => e,
    };
    assert_eq!(
        (err.code(), fields(&err)),
        (Code::InvalidArgument, vec![field.to_owned()]),
        "{}",
        err.message()
    );
}

fn configuration(d: &Hermetic) -> ConfigurationServiceClient<tonic::transport::Channel> {
    ConfigurationServiceClient::new(d.channel.clone())
}

fn grant(trustee: &str) -> v1::GrantPermissionsRequest {
    v1::GrantPermissionsRequest {
        domain: DOMAIN.into(),
        profiles: vec![v1::PermissionProfile::BasicRead as i32],
        mode: v1::GrantMode::Plan as i32,
        trustee: trustee.into(),
        credential: Some(admin()),
        ..Default::default()
    }
}

fn create(f: impl FnOnce(&mut v1::CreateGmsaRequest)) -> v1::CreateGmsaRequest {
    let mut r = v1::CreateGmsaRequest {
        domain: DOMAIN.into(),
        principals_allowed_to_retrieve_password: vec!["AGENT1$".into()],
        credential: Some(admin()),
        ..Default::default()
    };
    f(&mut r);
    r
}

fn custom(name: &str, host: &str) -> v1::UseCustomGmsaRequest {
    v1::UseCustomGmsaRequest {
        name: name.into(),
        domain: DOMAIN.into(),
        credential: Some(admin()),
        host_account: host.into(),
        request_id: String::new(),
    }
}

/// A document with the domain and the given account section.
fn document(account: v1::service_account_spec::Account) -> v1::DesiredState {
    v1::DesiredState {
        domains: vec![v1::DomainSpec {
            domain: DOMAIN.into(),
            ..Default::default()
        }],
        service_account: Some(v1::ServiceAccountSpec {
            domain: DOMAIN.into(),
            account: Some(account),
            permissions: vec![],
        }),
        ..Default::default()
    }
}

/// PlanConfiguration and ApplyConfiguration of `desired` both fail with
/// INVALID_ARGUMENT naming exactly `want`.
async fn assert_document_invalid(d: &Hermetic, desired: v1::DesiredState, want: &[&str]) {
    let err = configuration(d)
        .plan_configuration(v1::PlanConfigurationRequest {
            desired: Some(desired.clone()),
            credential: Some(admin()),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{}", err.message());
    assert_eq!(fields(&err), want, "{}", err.message());
    let err = configuration(d)
        .apply_configuration(v1::ApplyConfigurationRequest {
            desired: Some(desired),
            credential: Some(admin()),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{}", err.message());
    assert_eq!(fields(&err), want, "{}", err.message());
}

#[tokio::test]
async fn principals_that_are_no_dn_sid_or_account_name_never_reach_the_directory() {
    let d = Hermetic::start().await;
    let mut accounts = d.service_accounts();
    let long_dn = format!("CN={},DC=lab,DC=example,DC=test", "a".repeat(2040));
    for trustee in [
        HOSTILE,
        "CN=x,,DC=lab,DC=example,DC=test",
        "CN=a\"b,DC=lab,DC=example,DC=test",
        "CN=trailing\\",
        "S-1-5-21-x",
        "bad[name]",
        "a|b",
        &"a".repeat(257),
        &long_dn,
    ] {
        assert_invalid(accounts.grant_permissions(grant(trustee)).await, "trustee");
    }
    assert_invalid(
        accounts
            .create_gmsa(create(|r| {
                r.principals_allowed_to_retrieve_password
                    .push(HOSTILE.into())
            }))
            .await,
        "principals_allowed_to_retrieve_password[1]",
    );
    // The contract names these by sAMAccountName or DN, not by SID.
    assert_invalid(
        accounts
            .create_gmsa(create(|r| {
                r.principals_allowed_to_retrieve_password = vec!["S-1-5-32-544".into()]
            }))
            .await,
        "principals_allowed_to_retrieve_password[0]",
    );
    assert_invalid(
        accounts.use_custom_gmsa(custom(HOSTILE, "AGENT1$")).await,
        "name",
    );
    assert_invalid(
        accounts
            .use_custom_gmsa(custom("provAgentgMSA$", HOSTILE))
            .await,
        "host_account",
    );
    // A computer's sAMAccountName has at most 20 characters.
    assert_invalid(
        accounts
            .use_custom_gmsa(custom("provAgentgMSA$", &format!("{}$", "A".repeat(20))))
            .await,
        "host_account",
    );
    assert!(d.fakes.directory.connects().is_empty(), "no DC contacted");

    // What the contract allows passes: a sAMAccountName, a SID, DNs with
    // escapes and with spaces around the separators.
    for trustee in [
        "Administrator",
        "S-1-5-32-544",
        "CN=Smith\\, John,CN=Users,DC=lab,DC=example,DC=test",
        "CN=Administrator , CN=Users, DC=lab,DC=example,DC=test",
    ] {
        let op = accounts
            .grant_permissions(grant(trustee))
            .await
            .unwrap_or_else(|e| panic!("{trustee}: {e:?}"))
            .into_inner()
            .operation;
        d.finish(op).await;
    }
    d.shutdown().await;
}

#[tokio::test]
async fn ip_addresses_are_not_domain_names() {
    let d = Hermetic::start().await;
    ok(&d.add_directory().await.1);
    let connects = d.fakes.directory.connects().len();
    let ip = "127.0.0.2";
    for not_a_domain in [ip, "::1", "10.1", "0x7f000001"] {
        assert_invalid(
            d.dcs()
                .get_priority(v1::GetPriorityRequest {
                    domain: not_a_domain.into(),
                })
                .await,
            "domain",
        );
    }
    assert_invalid(
        d.directories()
            .add_directory(v1::AddDirectoryRequest {
                domain: ip.into(),
                credential: Some(admin()),
                ..Default::default()
            })
            .await,
        "domain",
    );
    assert_invalid(
        d.directories()
            .remove_directory(v1::RemoveDirectoryRequest {
                domain: ip.into(),
                ..Default::default()
            })
            .await,
        "domain",
    );
    assert_invalid(
        d.dcs()
            .discover_domain_controllers(v1::DiscoverDomainControllersRequest {
                domain: ip.into(),
                skip_probe: true,
                ..Default::default()
            })
            .await,
        "domain",
    );
    assert_invalid(
        d.dcs()
            .set_priority(v1::SetPriorityRequest {
                domain: DOMAIN.into(),
                domain_controllers: vec![ip.into()],
                ..Default::default()
            })
            .await,
        "domain_controllers[0]",
    );
    let mut accounts = d.service_accounts();
    assert_invalid(
        accounts.create_gmsa(create(|r| r.domain = ip.into())).await,
        "domain",
    );
    assert_invalid(
        accounts
            .create_gmsa(create(|r| r.dns_host_name = "10.0.0.1".into()))
            .await,
        "dns_host_name",
    );
    let mut adopt = custom("provAgentgMSA$", "AGENT1$");
    adopt.domain = ip.into();
    assert_invalid(accounts.use_custom_gmsa(adopt).await, "domain");
    assert_invalid(
        accounts
            .get_service_account(v1::GetServiceAccountRequest {
                domain: ip.into(),
                credential: None,
            })
            .await,
        "domain",
    );
    let mut request = grant("Administrator");
    request.domain = ip.into();
    assert_invalid(accounts.grant_permissions(request).await, "domain");
    assert_invalid(
        d.verify()
            .verify(v1::VerifyRequest {
                domains: vec![ip.into()],
                ..Default::default()
            })
            .await,
        "domains[0]",
    );
    let mut desired = document(v1::service_account_spec::Account::Custom(
        v1::CustomGmsaSpec {
            name: "provAgentgMSA$".into(),
            host_account: "AGENT1$".into(),
        },
    ));
    desired.domains[0].domain = ip.into();
    desired.domains[0].preferred_domain_controllers = vec!["127.0.0.3".into()];
    desired.service_account.as_mut().unwrap().domain = ip.into();
    assert_document_invalid(
        &d,
        desired,
        &[
            "desired.domains[0].domain",
            "desired.domains[0].preferred_domain_controllers[0]",
            "desired.service_account.domain",
        ],
    )
    .await;
    assert_eq!(
        d.fakes.directory.connects().len(),
        connects,
        "no DC contacted"
    );
    d.shutdown().await;
}

#[tokio::test]
async fn etag_is_bounded_and_an_oversized_one_is_not_echoed() {
    let d = Hermetic::start().await;
    let set = |etag: String| v1::SetPriorityRequest {
        domain: DOMAIN.into(),
        etag,
        ..Default::default()
    };
    let err = d
        .dcs()
        .set_priority(set("g".repeat(1 << 20)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{}", err.message());
    assert_eq!(fields(&err), ["etag"]);
    assert!(err.message().len() < 200, "{} bytes", err.message().len());
    assert_invalid(d.dcs().set_priority(set("g".repeat(129))).await, "etag");
    assert_invalid(d.dcs().set_priority(set("g1\n".into())).await, "etag");
    // 128 bytes is allowed: a stale one is ABORTED as before.
    let stale = format!("g{}", "9".repeat(127));
    let err = d.dcs().set_priority(set(stale)).await.unwrap_err();
    assert_eq!(err.code(), Code::Aborted, "{}", err.message());
    d.shutdown().await;
}

#[tokio::test]
async fn durations_must_be_valid_protobuf_durations() {
    let d = Hermetic::start().await;
    let duration = |seconds, nanos| Some(pbjson_types::Duration { seconds, nanos });
    let discover = |probe_timeout| v1::DiscoverDomainControllersRequest {
        domain: DOMAIN.into(),
        skip_probe: true,
        probe_timeout,
        ..Default::default()
    };
    for bad in [
        duration(1, 1_000_000_000),
        duration(0, i32::MAX),
        duration(1, -1),
        duration(-1, 0),
        duration(315_576_000_001, 0),
        duration(i64::MAX, 999_999_999),
    ] {
        assert_invalid(
            d.dcs().discover_domain_controllers(discover(bad)).await,
            "probe_timeout",
        );
    }
    d.dcs()
        .discover_domain_controllers(discover(duration(1, 500_000_000)))
        .await
        .expect("1.5 s is a valid probe timeout");
    for bad in [duration(5, 1_000_000_000), duration(5, -5)] {
        assert_invalid(
            d.verify()
                .verify(v1::VerifyRequest {
                    check_timeout: bad,
                    categories: vec![v1::CheckCategory::Host as i32],
                    ..Default::default()
                })
                .await,
            "check_timeout",
        );
    }
    d.shutdown().await;
}

#[tokio::test]
async fn the_documents_account_section_is_checked_like_the_single_rpcs() {
    let d = Hermetic::start().await;
    use v1::service_account_spec::Account;
    let create = |f: &dyn Fn(&mut v1::CreateGmsaSpec)| {
        let mut spec = v1::CreateGmsaSpec {
            principals_allowed_to_retrieve_password: vec!["HOST1$".into()],
            ..Default::default()
        };
        f(&mut spec);
        document(Account::Create(spec))
    };
    let path = "desired.service_account";
    assert_document_invalid(
        &d,
        create(&|s| {
            s.container_dn = "CN=x,DC=evil,DC=test".into();
            s.encryption_types = vec![0];
            s.principals_allowed_to_retrieve_password
                .push(HOSTILE.into());
        }),
        &[
            &format!("{path}.create.container_dn"),
            &format!("{path}.create.encryption_types[0]"),
            &format!("{path}.create.principals_allowed_to_retrieve_password[1]"),
        ],
    )
    .await;
    assert_document_invalid(
        &d,
        create(&|s| s.container_dn = HOSTILE.into()),
        &[&format!("{path}.create.container_dn")],
    )
    .await;
    assert_document_invalid(
        &d,
        document(Account::Custom(v1::CustomGmsaSpec {
            name: HOSTILE.into(),
            host_account: HOSTILE.into(),
        })),
        &[
            &format!("{path}.custom.name"),
            &format!("{path}.custom.host_account"),
        ],
    )
    .await;
    assert!(d.fakes.directory.connects().is_empty(), "no DC contacted");
    d.shutdown().await;
}

#[tokio::test]
async fn lists_and_strings_beyond_their_bounds_are_refused() {
    let d = Hermetic::start().await;
    let mut accounts = d.service_accounts();
    let many = |n: usize, v: i32| vec![v; n];
    assert_invalid(
        d.verify()
            .verify(v1::VerifyRequest {
                domains: vec![DOMAIN.into(); 101],
                ..Default::default()
            })
            .await,
        "domains",
    );
    assert_invalid(
        d.verify()
            .verify(v1::VerifyRequest {
                categories: many(17, v1::CheckCategory::Host as i32),
                ..Default::default()
            })
            .await,
        "categories",
    );
    assert_invalid(
        accounts
            .create_gmsa(create(|r| {
                r.encryption_types = many(17, v1::EncryptionType::Aes256 as i32)
            }))
            .await,
        "encryption_types",
    );
    assert_invalid(
        accounts
            .create_gmsa(create(|r| {
                r.container_dn =
                    format!("CN={},CN=Users,DC=lab,DC=example,DC=test", "a".repeat(2030))
            }))
            .await,
        "container_dn",
    );
    let mut request = grant("Administrator");
    request.profiles = many(17, v1::PermissionProfile::BasicRead as i32);
    assert_invalid(accounts.grant_permissions(request).await, "profiles");

    let mut desired = document(v1::service_account_spec::Account::Custom(
        v1::CustomGmsaSpec {
            name: "provAgentgMSA$".into(),
            host_account: "AGENT1$".into(),
        },
    ));
    desired.service_account.as_mut().unwrap().permissions =
        many(17, v1::PermissionProfile::BasicRead as i32);
    assert_document_invalid(
        &d,
        desired.clone(),
        &["desired.service_account.permissions"],
    )
    .await;
    desired.service_account = None;
    desired.domains = vec![desired.domains[0].clone(); 101];
    assert_document_invalid(&d, desired, &["desired.domains"]).await;
    d.shutdown().await;
}
