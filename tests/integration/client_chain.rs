//! Which client certificate chains the listener accepts: a leaf signed
//! directly by the client CA, and nothing a sub-CA issued (issue 13, item 2).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test that unwraps is asserting

use crate::common::*;
use provd::pki::{PemPair, Role};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

/// A certificate signed by `issuer`; a CA when `ca`. Every one carries the
/// admin role and clientAuth, so only the chain can make it unacceptable.
fn signed(name: &str, ca: bool, issuer: &Issuer<'_, KeyPair>) -> (PemPair, CertificateParams) {
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, name);
    params.subject_alt_names = vec![SanType::URI(Role::Admin.san_uri().try_into().unwrap())];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.use_authority_key_identifier_extension = true;
    if ca {
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
    } else {
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    }
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, issuer).unwrap();
    let pair = PemPair {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    };
    (pair, params)
}

/// provd's CA → a sub-CA it signed → an admin leaf the sub-CA signed.
/// `openssl verify` refuses the chain (the CA has path length 0); so must
/// provd, and it must not rely on that constraint being in the CA (rustls
/// does not check a trust anchor's own path length): CAs made elsewhere
/// often have none.
#[tokio::test]
async fn only_leaves_signed_directly_by_the_client_ca_are_accepted() {
    let h = Harness::start().await;
    let ca_pem = h.pki.ca_pem();
    let ca =
        Issuer::from_ca_cert_pem(&ca_pem, KeyPair::from_pem(&h.pki.ca.key_pem()).unwrap()).unwrap();
    let (sub_ca, sub_params) = signed("sub CA", true, &ca);
    let sub_issuer = Issuer::new(sub_params, KeyPair::from_pem(&sub_ca.key_pem).unwrap());
    let (leaf, _) = signed("mallory", false, &sub_issuer);

    // The leaf with its issuer, as a client presents a chain.
    let chain = PemPair {
        cert_pem: format!("{}{}", leaf.cert_pem, sub_ca.cert_pem),
        key_pem: leaf.key_pem.clone(),
    };
    let refused = raw_healthz(h.addr, rustls_client(&ca_pem, Some(&chain))).await;
    assert!(
        refused.is_err(),
        "a sub-CA's leaf was accepted: {refused:?}"
    );
    // The sub-CA itself, presented as a client certificate.
    let refused = raw_healthz(h.addr, rustls_client(&ca_pem, Some(&sub_ca))).await;
    assert!(
        refused.is_err(),
        "a CA certificate was accepted as a client: {refused:?}"
    );

    // A leaf the CA signed directly works, also when the client sends the
    // CA along (extra certificates are ignored, not refused).
    let (direct, _) = signed("alice", false, &ca);
    let status = raw_healthz(h.addr, rustls_client(&ca_pem, Some(&direct))).await;
    assert_eq!(status.as_deref(), Ok("HTTP/1.1 200 OK"));
    let with_ca = PemPair {
        cert_pem: format!("{}{}", direct.cert_pem, ca_pem),
        key_pem: direct.key_pem.clone(),
    };
    let status = raw_healthz(h.addr, rustls_client(&ca_pem, Some(&with_ca))).await;
    assert_eq!(status.as_deref(), Ok("HTTP/1.1 200 OK"));
    h.shutdown().await;
}
