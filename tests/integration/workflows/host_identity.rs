//! The read-only RPCs that read the directory (GetServiceAccount,
//! DiscoverDomainControllers, GetPasswordWriteback, Verify), given no
//! credential: with `directory.host_principal` and `directory.host_keytab`
//! they bind as this host's computer account (HOST1$, its keys in the fake's
//! keytab) and read what they read with a credential; without them, they
//! report what they could not read, as before; and a host identity that does
//! not bind is reported the same way, naming it, never as the call's error.

use super::support_tb::*;
use super::verify::{find, status, verify_with};
use crate::common::hermetic::*;
use provd::backends::directory::KerberosSource;
use provd_proto::v1;
use provd_proto::v1::CheckStatus::{Pass, Skip};

const KEYTAB: &str = "/etc/krb5.keytab";

fn host_principal() -> String {
    format!("HOST1$@{}", DOMAIN.to_ascii_uppercase())
}

/// A daemon whose config names HOST1$ and a keytab; `keys` says whether
/// the keytab really holds HOST1$'s keys.
async fn configured(keys: bool) -> Hermetic {
    let fakes = Fakes::default();
    if keys {
        fakes
            .directory
            .set_kerberos(&host_principal(), KerberosSource::Keytab(KEYTAB.into()));
    }
    Hermetic::start_configured(fakes, |c| {
        c.directory.host_principal = Some(host_principal());
        c.directory.host_keytab = Some(KEYTAB.into());
    })
    .await
}

async fn get_service_account(d: &Hermetic) -> v1::GetServiceAccountResponse {
    d.service_accounts()
        .get_service_account(v1::GetServiceAccountRequest {
            domain: DOMAIN.into(),
            credential: None,
        })
        .await
        .unwrap()
        .into_inner()
}

async fn discover(d: &Hermetic) -> v1::DiscoverDomainControllersResponse {
    d.dcs()
        .discover_domain_controllers(v1::DiscoverDomainControllersRequest {
            domain: DOMAIN.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
}

async fn writeback(d: &Hermetic) -> v1::PasswordWritebackDomain {
    let r = d
        .writeback()
        .get_password_writeback(v1::GetPasswordWritebackRequest {
            domain: DOMAIN.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.domains.len(), 1, "{r:#?}");
    r.domains[0].clone()
}

/// Verify of the directory and the host, no credential.
async fn verify_checks(d: &Hermetic) -> Vec<v1::Check> {
    let request = v1::VerifyRequest {
        categories: vec![
            v1::CheckCategory::Directory as i32,
            v1::CheckCategory::Host as i32,
        ],
        ..Default::default()
    };
    verify_with(d, request).await.unwrap().0
}

#[tokio::test]
async fn get_service_account_reads_the_account_live_as_the_host() {
    let d = configured(true).await;
    full_setup(&d).await;
    let r = get_service_account(&d).await;
    assert!(r.live, "{}", r.live_unavailable_reason);
    assert_eq!(
        r.account.as_ref().map(|a| a.sam_account_name.as_str()),
        Some("provAgentgMSA$")
    );
    assert!(!r.permissions.is_empty(), "{r:#?}");
    d.shutdown().await;

    // Without a host identity: what is recorded, and why not live.
    let d = Hermetic::start().await;
    full_setup(&d).await;
    let r = get_service_account(&d).await;
    assert!(!r.live);
    assert!(
        r.live_unavailable_reason.contains("no credential")
            && r.live_unavailable_reason.contains("directory.host_keytab"),
        "{}",
        r.live_unavailable_reason
    );
    d.shutdown().await;
}

#[tokio::test]
async fn discovery_reads_the_directorys_list_and_probes_as_the_host() {
    let d = configured(true).await;
    ok(&d.add_directory().await.1);
    d.make_computer("HOST1");
    crate::common::assert_read_and_bound(&discover(&d).await);
    d.shutdown().await;

    // Without a host identity: DNS only, saying why (and more in
    // domain_controllers.rs).
    let d = Hermetic::start().await;
    ok(&d.add_directory().await.1);
    let r = discover(&d).await;
    assert!(
        r.directory_unavailable_reason.contains("no credential"),
        "{}",
        r.directory_unavailable_reason
    );
    d.shutdown().await;
}

#[tokio::test]
async fn writeback_readiness_is_read_as_the_host() {
    let d = configured(true).await;
    full_setup(&d).await;
    let domain = writeback(&d).await;
    assert!(domain.read, "{domain:#?}");
    assert!(domain.read_error.is_empty(), "{}", domain.read_error);
    d.shutdown().await;

    let d = Hermetic::start().await;
    full_setup(&d).await;
    let domain = writeback(&d).await;
    assert!(!domain.read, "{domain:#?}");
    assert!(
        domain.read_error.contains("no credential"),
        "{}",
        domain.read_error
    );
    d.shutdown().await;
}

/// As the host, Verify reads the gMSA's password itself: the proof reaches
/// `authenticated`, as with a request's credential for HOST1$
/// (verify_gmsa.rs), and the directory checks run.
#[tokio::test]
async fn verify_proves_the_gmsa_as_the_host_and_reads_the_directory() {
    let d = configured(true).await;
    full_setup(&d).await;
    let dir = &d.fakes.directory;
    let gmsa = dir.find(&dir.base_dn(), "(sAMAccountName=provAgentgMSA$)");
    dir.set_managed_password(&gmsa[0], include_bytes!("../../data/gmsa/no-previous.bin"));
    let checks = verify_checks(&d).await;
    let c = find(&checks, "host.gmsa.retrievable")[0];
    assert_eq!(status(c), Pass, "{c:#?}");
    assert_eq!(
        c.attributes.get("proof").map(String::as_str),
        Some("authenticated"),
        "{c:#?}"
    );
    for id in [
        "directory.dc.reachable",
        "directory.gmsa.account",
        "directory.msa_container",
    ] {
        let c = find(&checks, id)[0];
        assert_eq!(status(c), Pass, "{c:#?}");
    }
    d.shutdown().await;

    // Without a host identity: SKIP, saying why.
    let d = Hermetic::start().await;
    full_setup(&d).await;
    let checks = verify_checks(&d).await;
    for id in [
        "host.gmsa.retrievable",
        "directory.dc.reachable",
        "directory.gmsa.account",
        "directory.msa_container",
    ] {
        let c = find(&checks, id)[0];
        assert_eq!(status(c), Skip, "{c:#?}");
        assert!(c.message.contains("no credential"), "{c:#?}");
    }
    d.shutdown().await;
}

/// The keytab does not hold HOST1$'s keys: every RPC answers, reporting the
/// parts it could not read and naming the host identity and the keytab.
#[tokio::test]
async fn a_host_identity_that_does_not_bind_is_a_part_not_read() {
    let d = configured(false).await;
    full_setup(&d).await;
    let named = |text: &str| {
        text.contains(&format!(
            "{} (this host's computer account)",
            host_principal()
        )) && text.contains(KEYTAB)
    };

    let r = get_service_account(&d).await;
    assert!(!r.live);
    assert!(
        named(&r.live_unavailable_reason),
        "{}",
        r.live_unavailable_reason
    );

    let r = discover(&d).await;
    assert!(
        named(&r.directory_unavailable_reason),
        "{}",
        r.directory_unavailable_reason
    );
    // Probed anonymously instead, as without any credential.
    for dc in &r.domain_controllers {
        let probe = dc.probe.as_ref().unwrap();
        assert!(probe.reachable && probe.error.is_empty(), "{dc:#?}");
    }

    let domain = writeback(&d).await;
    assert!(!domain.read);
    assert!(named(&domain.read_error), "{}", domain.read_error);

    let checks = verify_checks(&d).await;
    for id in [
        "host.gmsa.retrievable",
        "directory.dc.reachable",
        "directory.kds.effective",
    ] {
        let c = find(&checks, id)[0];
        assert_eq!(status(c), Skip, "{c:#?}");
        assert!(named(&c.message), "{c:#?}");
        assert!(c.remedy.contains("directory.host_keytab"), "{c:#?}");
    }
    d.shutdown().await;
}
