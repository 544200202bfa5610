//! Kerberos (GSSAPI) binds against the lab, which requires strong
//! authentication (`ldap server require strong auth = yes`, Samba's
//! default): the host's computer account `VM$` binds with its keytab, sealed
//! on 389, and no password is in any request; the errors name what to fix;
//! a retrieved gMSA password authenticates as the gMSA, a wrong one not.
//!
//! Needs `KRB5_CONFIG` = the lab's krb5.conf (deploy/test.sh exports it):
//! MIT reads its configuration from the environment only.

use std::path::PathBuf;

use crate::common::fixtures::*;
use crate::common::lab::*;
use provd::backends::directory::{
    BindCredential, BindSecret, Directory, DirectoryError, DirectorySession, KerberosSource, Scope,
};
use provd::model::ManagedPassword;
use provd_proto::v1;
use provd_proto::v1::domain_controller_service_client::DomainControllerServiceClient;
use secrecy::{ExposeSecret, SecretString};

fn krb5_config() {
    let config = std::env::var("KRB5_CONFIG").unwrap_or_default();
    assert_eq!(
        config,
        var("LAB_KRB5_CONFIG"),
        "export KRB5_CONFIG=$LAB_KRB5_CONFIG (deploy/test.sh does): MIT finds the lab's KDCs there"
    );
}

fn principal(account_var: &str) -> String {
    format!("{}@{}", var(account_var), var("LAB_REALM"))
}

fn keytab_credential(principal: String) -> BindCredential {
    BindCredential {
        username: principal,
        secret: BindSecret::Kerberos(KerberosSource::Keytab(PathBuf::from(var(
            "LAB_HOST_KEYTAB",
        )))),
    }
}

/// An authenticated read of VM$'s own entry.
async fn assert_bound_as_the_host(s: &mut dyn DirectorySession) {
    let me = s
        .search(
            &var("LAB_HOST_DN"),
            Scope::Base,
            "(objectClass=*)",
            &["sAMAccountName"],
        )
        .await
        .unwrap();
    assert_eq!(
        me[0].first("sAMAccountName"),
        Some(var("LAB_HOST_ACCOUNT").as_str())
    );
}

#[tokio::test]
#[ignore = "needs the Samba AD lab (root): deploy/test.sh runs it"]
async fn the_host_binds_with_its_keytab_sealed_on_389_under_strong_auth() {
    krb5_config();
    let mut s = backend()
        .connect(DC1, &keytab_credential(principal("LAB_HOST_ACCOUNT")))
        .await
        .unwrap();
    // Bound as VM$ (an authenticated read of its own entry), on a DC that
    // refuses simple binds on 389 (lab smoke): the session is sealed.
    assert_bound_as_the_host(s.as_mut()).await;
    let root = s.root_dse().await.unwrap();
    assert!(root.first("defaultNamingContext").is_some());
    // Twice: the second bind reuses the ticket in provd's memory cache.
    backend()
        .connect(DC1, &keytab_credential(principal("LAB_HOST_ACCOUNT")))
        .await
        .unwrap();
}

/// A ticket cache the host already has (what `kinit` leaves): provd binds
/// with it and never sees a key; a cache that is not there is named.
#[tokio::test]
#[ignore = "needs the Samba AD lab (root): deploy/test.sh runs it"]
async fn a_credential_cache_from_kinit_binds_and_a_missing_one_is_named() {
    krb5_config();
    let dir = tempfile::tempdir().unwrap();
    let cache = format!("FILE:{}", dir.path().join("cc").display());
    let kinit = std::process::Command::new("kinit")
        .args(["-k", "-t", &var("LAB_HOST_KEYTAB"), "-c", &cache])
        .arg(principal("LAB_HOST_ACCOUNT"))
        .output()
        .expect("kinit (krb5-user, which lab.sh installs)");
    assert!(
        kinit.status.success(),
        "kinit: {}",
        String::from_utf8_lossy(&kinit.stderr)
    );
    let from_cache = |cache: String| BindCredential {
        username: principal("LAB_HOST_ACCOUNT"),
        secret: BindSecret::Kerberos(KerberosSource::Ccache(cache)),
    };
    let mut s = backend().connect(DC1, &from_cache(cache)).await.unwrap();
    assert_bound_as_the_host(s.as_mut()).await;

    let missing = format!("FILE:{}", dir.path().join("none").display());
    let err = backend()
        .connect(DC1, &from_cache(missing.clone()))
        .await
        .err()
        .unwrap();
    assert!(
        matches!(&err, DirectoryError::Kerberos { reason, .. } if reason.contains(&missing)),
        "{err}"
    );
}

#[tokio::test]
#[ignore = "needs the Samba AD lab (root): deploy/test.sh runs it"]
async fn discovery_through_the_daemon_binds_with_a_keytab_and_no_password_in_the_request() {
    krb5_config();
    let _serial = SERIAL.lock().await;
    let lab = daemon().await;
    let request = v1::DiscoverDomainControllersRequest {
        domain: var("LAB_DOMAIN"),
        credential: Some(v1::Credential {
            username: principal("LAB_HOST_ACCOUNT"),
            password: String::new(),
            kerberos: Some(v1::KerberosCredential {
                source: Some(v1::kerberos_credential::Source::KeytabPath(var(
                    "LAB_HOST_KEYTAB",
                ))),
            }),
        }),
        ..Default::default()
    };
    let found = DomainControllerServiceClient::new(lab.channel.clone())
        .discover_domain_controllers(request)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(found.domain_controllers.len(), 2, "{found:?}");
    for dc in &found.domain_controllers {
        let probe = dc.probe.as_ref().unwrap();
        assert!(probe.error.is_empty(), "{}: {}", dc.host_name, probe.error);
        assert!(probe.bind_latency.is_some(), "{}: not bound", dc.host_name);
    }

    // A password next to a Kerberos credential is refused, naming the field.
    let err = DomainControllerServiceClient::new(lab.channel.clone())
        .discover_domain_controllers(v1::DiscoverDomainControllersRequest {
            domain: var("LAB_DOMAIN"),
            credential: Some(v1::Credential {
                username: principal("LAB_HOST_ACCOUNT"),
                password: "x".into(),
                kerberos: Some(v1::KerberosCredential {
                    source: Some(v1::kerberos_credential::Source::Ccache("FILE:/nope".into())),
                }),
            }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(
        err.message().contains("credential.password"),
        "{}",
        err.message()
    );
}

/// The daemon configured with the host's identity (`directory.host_principal`
/// VM$, `directory.host_keytab` its keytab): DiscoverDomainControllers with
/// no credential in the request reads the directory's own list of DCs and
/// probes each bound as VM$; without that configuration it reads DNS only.
#[tokio::test]
#[ignore = "needs the Samba AD lab (root): deploy/test.sh runs it"]
async fn with_the_host_identity_configured_discovery_needs_no_credential() {
    krb5_config();
    let _serial = SERIAL.lock().await;
    let discover = |channel: tonic::transport::Channel| async move {
        DomainControllerServiceClient::new(channel)
            .discover_domain_controllers(v1::DiscoverDomainControllersRequest {
                domain: var("LAB_DOMAIN"),
                credential: None,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
    };
    let lab = daemon_with(|c| {
        c.directory.host_principal = Some(principal("LAB_HOST_ACCOUNT"));
        c.directory.host_keytab = Some(var("LAB_HOST_KEYTAB").into());
    })
    .await;
    crate::common::assert_read_and_bound(&discover(lab.channel.clone()).await);
    lab.h.shutdown().await;

    let lab = daemon().await;
    let found = discover(lab.channel.clone()).await;
    assert!(
        found.directory_unavailable_reason.contains("no credential"),
        "{}",
        found.directory_unavailable_reason
    );
    lab.h.shutdown().await;
}

#[tokio::test]
#[ignore = "needs the Samba AD lab (root): deploy/test.sh runs it"]
async fn kerberos_errors_name_what_to_fix() {
    krb5_config();
    let dir = backend();
    // A principal whose keys are not in the keytab: the keytab is named.
    let err = dir
        .connect(DC1, &keytab_credential(principal("LAB_OTHER_ACCOUNT")))
        .await
        .err()
        .unwrap();
    eprintln!("not in the keytab: {err}");
    let keytab = var("LAB_HOST_KEYTAB");
    assert!(
        matches!(&err, DirectoryError::Kerberos { reason, .. } if reason.contains(&keytab)),
        "{err}"
    );
    // A DC reached by an address: no such SPN, and the SPN tried is named.
    let err = dir
        .connect(
            &var("LAB_DC1_IP"),
            &keytab_credential(principal("LAB_HOST_ACCOUNT")),
        )
        .await
        .err()
        .unwrap();
    eprintln!("by address: {err}");
    let spn = format!("ldap/{}", var("LAB_DC1_IP"));
    assert!(
        matches!(&err, DirectoryError::Kerberos { reason, .. } if reason.contains(&spn)),
        "{err}"
    );
    // A realm no configuration names (an AS exchange is tried): the realm
    // and the configuration file are named.
    let err = dir
        .authenticate(DC1, "someone@NOWHERE.TEST", &SecretString::from("x"))
        .await
        .unwrap_err();
    eprintln!("unknown realm: {err}");
    assert!(
        matches!(&err, DirectoryError::Kerberos { reason, .. }
            if reason.contains("realm NOWHERE.TEST") && reason.contains(&var("LAB_KRB5_CONFIG"))),
        "{err}"
    );
    // Not one of them would be helped by the next DC.
    assert!(!err.is_failover());
}

#[tokio::test]
#[ignore = "needs the Samba AD lab (root): deploy/test.sh runs it"]
async fn the_retrieved_gmsa_password_authenticates_and_a_wrong_one_is_refused() {
    krb5_config();
    let _serial = SERIAL.lock().await;
    let lab = daemon().await;
    pin_dc1(&lab.channel).await;
    let mut admin = admin_session().await;
    delete_gmsa(admin.as_mut(), "provAgentgMSA").await;
    let (_, op) = create(&lab.channel, gmsa_request("", &[&var("LAB_HOST_ACCOUNT")])).await;
    ok(&op);
    let dn = op.result["distinguished_name"].clone();

    // Retrieved as VM$ over its Kerberos session (sealed: the DC hands the
    // password out on encrypted connections only).
    let mut host = backend()
        .connect(DC1, &keytab_credential(principal("LAB_HOST_ACCOUNT")))
        .await
        .unwrap();
    let blob = host.read_managed_password(&dn).await.unwrap().unwrap();
    let password = ManagedPassword::decode(&blob).unwrap();
    let gmsa = format!("provAgentgMSA$@{}", var("LAB_REALM"));
    let kerberos = password.current.kerberos_password();
    backend().authenticate(DC1, &gmsa, &kerberos).await.unwrap();

    let mut wrong: String = kerberos.expose_secret().to_owned();
    wrong.push('x');
    let err = backend()
        .authenticate(DC1, &gmsa, &SecretString::from(wrong))
        .await
        .unwrap_err();
    eprintln!("wrong password: {err}");
    assert!(
        matches!(&err, DirectoryError::KerberosRejected { reason, .. } if reason.contains("provAgentgMSA$")),
        "{err}"
    );
    delete_gmsa(admin.as_mut(), "provAgentgMSA").await;
}

/// What a DC requiring strong authentication accepts, for the binds provd
/// makes: a Kerberos bind sealed on 389 (above), and over LDAPS with the
/// `tls-server-end-point` channel binding and no layer
/// (`directory.kerberos_layer = "tls"`), which Samba 4.22 requires for
/// GSSAPI inside TLS (ldapsearch without channel binding: rc 49, 80090346).
#[tokio::test]
#[ignore = "needs the Samba AD lab (root): deploy/test.sh runs it"]
async fn over_ldaps_the_kerberos_bind_carries_the_channel_binding() {
    krb5_config();
    let mut s = backend_with(true)
        .connect(DC1, &keytab_credential(principal("LAB_HOST_ACCOUNT")))
        .await
        .unwrap();
    assert_bound_as_the_host(s.as_mut()).await;
}
