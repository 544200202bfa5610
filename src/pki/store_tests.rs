use std::sync::Arc;
use std::time::Duration;

use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use rustls::SignatureScheme;
use rustls::sign::SigningKey;
use time::OffsetDateTime;

use super::*;
use crate::pki::store::Thumbprint;
use crate::pki::{Ca, certificates_from_pem, verify_signature};

const DAY: Duration = Duration::from_secs(86_400);

#[test]
fn thumbprints_parse_as_certlm_and_powershell_show_them() {
    let want = "3B7E0829A1C4D5E6F708192A3B4C5D6E7F809102";
    for text in [
        want,
        "3b7e0829a1c4d5e6f708192a3b4c5d6e7f809102",
        "3b 7e 08 29 a1 c4 d5 e6 f7 08 19 2a 3b 4c 5d 6e 7f 80 91 02",
        "3B:7E:08:29:A1:C4:D5:E6:F7:08:19:2A:3B:4C:5D:6E:7F:80:91:02",
        "\u{200e}3b 7e 08 29 a1 c4 d5 e6 f7 08 19 2a 3b 4c 5d 6e 7f 80 91 02",
    ] {
        let parsed = Thumbprint::parse(text).unwrap();
        assert_eq!(parsed.to_string(), want, "{text:?}");
    }
    for bad in ["", "3B7E", &format!("{want}00"), &want.replace('3', "g")] {
        let err = Thumbprint::parse(bad).unwrap_err();
        assert!(err.contains("thumbprint"), "{bad:?}: {err}");
    }
    // Of a certificate: its SHA-1, as Windows computes the property.
    let ca = Ca::generate("thumbprint CA", DAY).unwrap();
    let der = der(&ca.cert_pem());
    let sha1 = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &der);
    assert_eq!(Thumbprint::of(&der).0.as_slice(), sha1.as_ref());
}

#[test]
fn a_key_offers_the_schemes_its_api_can_sign_and_cng_rsa_can_do_tls13() {
    use SignatureScheme as S;
    // Wine's CAPI key: PKCS#1 v1.5 SHA-256 only, so TLS 1.2 only.
    let capi = schemes(KeyKind::Rsa, false);
    assert_eq!(capi, [S::RSA_PKCS1_SHA256]);
    assert!(!tls13_capable(capi));
    let cng = schemes(KeyKind::Rsa, true);
    assert_eq!(cng[0], S::RSA_PSS_SHA256, "PSS preferred");
    assert!(cng.contains(&S::RSA_PKCS1_SHA256), "TLS 1.2 clients");
    assert!(tls13_capable(cng));
    assert_eq!(schemes(KeyKind::EcP256, true), [S::ECDSA_NISTP256_SHA256]);
    assert_eq!(schemes(KeyKind::EcP384, true), [S::ECDSA_NISTP384_SHA384]);
    assert!(schemes(KeyKind::EcP256, false).is_empty(), "no EC in CAPI");

    // choose_scheme takes the key's best among what the peer offered.
    let key = StoreKey::new(Arc::new(Refuses), KeyKind::Rsa, true);
    let chosen = key
        .choose_scheme(&[S::RSA_PKCS1_SHA256, S::RSA_PSS_SHA384])
        .unwrap();
    assert_eq!(chosen.scheme(), S::RSA_PSS_SHA384);
    let capi = StoreKey::new(Arc::new(Refuses), KeyKind::Rsa, false);
    assert!(capi.choose_scheme(&[S::RSA_PSS_SHA256]).is_none());
    assert_eq!(capi.algorithm(), rustls::SignatureAlgorithm::RSA);
}

#[test]
fn ecdsa_r_and_s_become_the_der_tls_carries() {
    // Small and high-bit values: leading zeros go, a zero is put back
    // before a top bit.
    let mut rs = [0u8; 64];
    rs[31] = 0x01;
    rs[32] = 0x80;
    let der = ecdsa_der(&rs).unwrap();
    let mut want = vec![0x30, 0x26, 0x02, 0x01, 0x01, 0x02, 0x21, 0x00, 0x80];
    want.extend([0u8; 31]);
    assert_eq!(der, want);
    assert!(ecdsa_der(&[]).is_err());
    assert!(ecdsa_der(&[1, 2, 3]).is_err());
    // P-521-sized halves need the long length form: 2 × (2 + 1 + 66).
    let der = ecdsa_der(&[0xff; 132]).unwrap();
    assert_eq!(&der[..3], &[0x30, 0x81, 138]);

    // And what CNG would return verifies as TLS's ECDSA after conversion:
    // a P-256 key that signs r‖s, as NCryptSignHash does.
    let (cert, raw) = p256_identity();
    let key = StoreKey::new(Arc::new(raw), KeyKind::EcP256, true);
    check_key(&cert, &key).unwrap();
    let signer = key
        .choose_scheme(&[SignatureScheme::ECDSA_NISTP256_SHA256])
        .unwrap();
    let signature = signer.sign(b"hello").unwrap();
    verify_signature(
        &cert,
        SignatureScheme::ECDSA_NISTP256_SHA256,
        b"hello",
        &signature,
    )
    .unwrap();
}

#[test]
fn a_key_of_another_certificate_is_refused_at_load() {
    let (_, raw) = p256_identity();
    let (other_cert, _) = p256_identity();
    let key = StoreKey::new(Arc::new(raw), KeyKind::EcP256, true);
    let err = check_key(&other_cert, &key).unwrap_err();
    assert!(err.contains("does not match the certificate"), "{err}");
    let none = StoreKey::new(Arc::new(Refuses), KeyKind::EcP256, false);
    assert!(check_key(&other_cert, &none).is_err());
    assert_eq!(
        KeyKind::of_certificate(&other_cert).unwrap(),
        KeyKind::EcP256
    );
}

#[test]
fn a_subject_selects_the_newest_valid_server_certificate_with_a_key() {
    let ca = Ca::generate("subject CA", 400 * DAY).unwrap();
    let server = |name: &str, days: u32| {
        der(&ca
            .issue_server(&[name.into()], &[], DAY * days)
            .unwrap()
            .cert_pem)
    };
    let old = server("provd.contoso.com", 30);
    // Issued a second later: newer.
    std::thread::sleep(Duration::from_millis(1_100));
    let renewed = server("provd.contoso.com", 60);
    let other = server("other.contoso.com", 90);
    let client = der(&ca
        .issue_client("provd.contoso.com", &[crate::pki::Role::Admin], 90 * DAY)
        .unwrap()
        .cert_pem);
    let candidates = |has_key: [bool; 4]| -> Vec<Candidate> {
        [&old, &renewed, &other, &client]
            .into_iter()
            .zip(has_key)
            .map(|(der, has_key)| Candidate {
                der: der.clone(),
                has_key,
            })
            .collect()
    };
    let now = OffsetDateTime::now_utc();
    let all = candidates([true; 4]);
    assert_eq!(select_by_subject(&all, "provd.contoso.com", now), Some(1));
    assert_eq!(select_by_subject(&all, "PROVD.contoso.com ", now), Some(1));
    assert_eq!(select_by_subject(&all, "other.contoso.com", now), Some(2));
    // No key: the renewal without its key is passed over.
    let keyless = candidates([true, false, true, true]);
    assert_eq!(
        select_by_subject(&keyless, "provd.contoso.com", now),
        Some(0)
    );
    // Expired by then: only the longer one is left.
    let later = now + time::Duration::days(45);
    assert_eq!(select_by_subject(&all, "provd.contoso.com", later), Some(1));
    assert_eq!(
        select_by_subject(&all, "provd.contoso.com", now + time::Duration::days(100)),
        None
    );
    // A client certificate (Client Authentication only) never serves.
    let client_only = vec![Candidate {
        der: client.clone(),
        has_key: true,
    }];
    assert_eq!(
        select_by_subject(&client_only, "provd.contoso.com", now),
        None
    );
    assert_eq!(select_by_subject(&all, "nobody", now), None);
}

fn der(pem: &str) -> Vec<u8> {
    certificates_from_pem(pem.as_bytes(), "test")
        .unwrap()
        .remove(0)
}

/// A self-signed P-256 certificate and a software key that signs as CNG
/// does (raw r‖s).
fn p256_identity() -> (Vec<u8>, RingP256) {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let key_pair = rcgen::KeyPair::try_from(pkcs8.as_ref()).unwrap();
    let params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    let cert = params.self_signed(&key_pair).unwrap();
    let key =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    (cert.der().to_vec(), RingP256(key))
}

struct RingP256(EcdsaKeyPair);

impl std::fmt::Debug for RingP256 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RingP256")
    }
}

impl RawSign for RingP256 {
    fn sign(&self, scheme: SignatureScheme, message: &[u8]) -> Result<Vec<u8>, String> {
        assert_eq!(scheme, SignatureScheme::ECDSA_NISTP256_SHA256);
        self.0
            .sign(&SystemRandom::new(), message)
            .map(|s| s.as_ref().to_vec())
            .map_err(|e| e.to_string())
    }
}

#[derive(Debug)]
struct Refuses;

impl RawSign for Refuses {
    fn sign(&self, _: SignatureScheme, _: &[u8]) -> Result<Vec<u8>, String> {
        Err("no key".into())
    }
}
