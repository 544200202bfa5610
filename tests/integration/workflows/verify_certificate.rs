//! Verify's `provd.certificate.expiry` on a running daemon: PASS for the
//! harness's year-long certificates, WARN for a server certificate 10 days
//! from expiry (with the `provd pki renew` command), PASS again once it is
//! renewed (no restart), and FAIL for an expired client CA. (An expired
//! server certificate's FAIL is a unit test: a client refuses it.)

use crate::common::hermetic::*;
use crate::common::{Harness, certificate_der, eventually};
use provd::pki::{PemPair, Role};
use provd_proto::v1;
use provd_proto::v1::CheckStatus::{Fail, Pass, Warn};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

use super::verify::{find, status, verify_on, verify_with};

const ID: &str = "provd.certificate.expiry";

/// The HOST category's `provd.certificate.expiry` results, server first.
async fn expiry(d: &Hermetic) -> Vec<v1::Check> {
    let (checks, _) = verify_with(
        d,
        v1::VerifyRequest {
            categories: vec![v1::CheckCategory::Host as i32],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let mut found: Vec<v1::Check> = find(&checks, ID).into_iter().cloned().collect();
    found.sort_by_key(|c| !c.subject.starts_with("server "));
    found
}

#[tokio::test]
async fn the_served_certificates_pass_warn_within_30_days_and_pass_once_renewed() {
    let d = Hermetic::start().await;
    let checks = expiry(&d).await;
    assert_eq!(checks.len(), 2, "the server and the client CA: {checks:#?}");
    for c in &checks {
        assert_eq!(status(c), Pass, "{c:#?}");
        assert_eq!(c.category, v1::CheckCategory::Host as i32);
        assert!(c.remedy.is_empty());
        assert!(
            c.attributes["days_left"].parse::<i64>().unwrap() >= 363,
            "{c:#?}"
        );
        assert!(c.attributes["not_after"].ends_with('Z'), "{c:#?}");
    }
    assert_eq!(checks[0].subject, "server CN=localhost");
    assert_eq!(checks[0].attributes["issued_by_provd_ca"], "true");
    assert_eq!(checks[1].subject, "client_ca CN=provd test CA");
    d.shutdown().await;

    // A server certificate 10 days from expiry.
    let d = Hermetic::start_prepared(Fakes::default(), |pki, _| {
        pki.write_server(10 * crate::common::DAY);
        pki.write_ca_key();
    })
    .await;
    let checks = expiry(&d).await;
    let server = &checks[0];
    assert_eq!(status(server), Warn, "{server:#?}");
    assert!(server.message.contains("expires in 9 days"), "{server:#?}");
    let pki_dir = d.h.pki.dir.display().to_string();
    let command = format!("provd pki renew --ca-dir {pki_dir} {pki_dir}/server.pem");
    assert!(server.remedy.contains(&command), "{}", server.remedy);
    assert_eq!(status(&checks[1]), Pass);

    // The remedy, as the operator would run it: the next reload serves the
    // new certificate and the check passes, with no restart.
    provd::pki::renew(&provd::pki::RenewOptions {
        ca_dir: d.h.pki.dir.clone(),
        certs: vec![d.h.pki.dir.join("server.pem")],
        key: None,
        new_key: false,
        if_expiring_within: Some(30 * crate::common::DAY),
        validity: Some(crate::common::YEAR),
    })
    .unwrap();
    let renewed = provd::pki::CertificateInfo::from_der(
        &certificate_der(&d.h.pki.dir.join("server.pem")),
        "renewed",
    )
    .unwrap();
    let passed = eventually("the renewed certificate checked", || async {
        let checks = expiry(&d).await;
        (status(&checks[0]) == Pass).then(|| checks[0].clone())
    })
    .await;
    assert_eq!(passed.attributes["serial"], renewed.serial);
    d.shutdown().await;
}

/// A certificate signed by `issuer`: a leaf for `name` with `eku`.
fn leaf(issuer: &Issuer<'_, KeyPair>, name: &str, eku: ExtendedKeyUsagePurpose) -> PemPair {
    let mut params = CertificateParams::new(vec![name.to_owned()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.extended_key_usages = vec![eku];
    params.use_authority_key_identifier_extension = true;
    if name == "viewer" {
        params.subject_alt_names = vec![SanType::URI(Role::Viewer.san_uri().try_into().unwrap())];
    }
    let key = KeyPair::generate().unwrap();
    PemPair {
        cert_pem: params.signed_by(&key, issuer).unwrap().pem(),
        key_pem: key.serialize_pem(),
    }
}

/// A client CA that expired yesterday fails, while the server certificate
/// it signed (valid) passes: webpki trusts an anchor whatever its dates, so
/// provd still serves and the client still connects. provd's pki signs
/// nothing with an expired CA: rcgen directly.
#[tokio::test]
async fn an_expired_client_ca_fails_naming_the_ca_rotation() {
    let now = time::OffsetDateTime::now_utc();
    let mut ca_params = CertificateParams::default();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "expired CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca_params.not_before = now - time::Duration::days(400);
    ca_params.not_after = now - time::Duration::days(1);
    let ca_key = KeyPair::generate().unwrap();
    let ca_pem = ca_params.self_signed(&ca_key).unwrap().pem();
    let issuer = Issuer::new(ca_params, ca_key);
    let server = leaf(&issuer, "localhost", ExtendedKeyUsagePurpose::ServerAuth);
    let viewer = leaf(&issuer, "viewer", ExtendedKeyUsagePurpose::ClientAuth);
    let h = Harness::start_prepared(|pki, _| {
        std::fs::write(pki.dir.join("ca.pem"), &ca_pem).unwrap();
        std::fs::write(pki.dir.join("server.key"), &server.key_pem).unwrap();
        std::fs::write(pki.dir.join("server.pem"), &server.cert_pem).unwrap();
    })
    .await;

    let channel = crate::common::channel(h.addr, &ca_pem, &viewer)
        .await
        .unwrap();
    let (checks, _) = verify_on(
        &channel,
        v1::VerifyRequest {
            categories: vec![v1::CheckCategory::Host as i32],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let mut checks: Vec<v1::Check> = find(&checks, ID).into_iter().cloned().collect();
    checks.sort_by_key(|c| !c.subject.starts_with("server "));
    let [server, ca] = checks.as_slice() else {
        panic!("{checks:#?}");
    };
    assert_eq!(status(server), Pass, "{server:#?}");
    assert_eq!(server.attributes["issued_by_provd_ca"], "true");
    assert_eq!(ca.subject, "client_ca CN=expired CA");
    assert_eq!(status(ca), Fail, "{ca:#?}");
    assert!(ca.message.contains("expired at"), "{ca:#?}");
    assert_eq!(ca.attributes["days_left"], "-1");
    assert!(ca.remedy.contains("provd pki init"), "{ca:#?}");
    h.shutdown().await;
}
