//! Verify's `host.gmsa.retrievable` past "may retrieve": bound as this host
//! and handed the gMSA's password, it decodes it (`proof` = `retrieved`)
//! and says nothing of it; bound as the operator, it stays at `permitted`
//! and says why; a blob that does not decode is a FAIL naming the error.

use super::support_tb::*;
use super::verify::{find, status, verify_with};
use crate::common::hermetic::*;
use base64::Engine;
use provd::backends::directory::{Change, Directory};
use provd::model::ManagedPassword;
use provd_proto::v1;
use provd_proto::v1::CheckStatus::{Fail, Pass};
use secrecy::ExposeSecret;

const BLOB: &[u8] = include_bytes!("../../data/gmsa/no-previous.bin");
/// The blob's current NT hash (tests/data/gmsa/gen.py).
const CURRENT_NT: &str = "46fbd702dbba1cc1b236670497c24093";
const HOST_PASSWORD: &str = "Host1-Passw0rd!";

/// A full setup (the gMSA allows HOST1$, this host), HOST1$ with a password
/// the fake accepts, and the gMSA's password seeded in the fake.
async fn set_up(blob: &[u8]) -> Hermetic {
    let d = Hermetic::start().await;
    full_setup(&d).await;
    let dir = &d.fakes.directory;
    dir.set_password("HOST1$", HOST_PASSWORD);
    let gmsa = dir.find(&dir.base_dn(), "(sAMAccountName=provAgentgMSA$)");
    assert_eq!(gmsa.len(), 1, "{gmsa:?}");
    dir.set_managed_password(&gmsa[0], blob);
    d
}

async fn retrievable_as(d: &Hermetic, credential: v1::Credential) -> v1::Check {
    let request = v1::VerifyRequest {
        credential: Some(credential),
        ..Default::default()
    };
    let checks = verify_with(d, request).await.unwrap().0;
    find(&checks, "host.gmsa.retrievable")[0].clone()
}

fn as_host() -> v1::Credential {
    v1::Credential {
        username: format!("HOST1$@{DOMAIN}"),
        password: HOST_PASSWORD.into(),
        kerberos: None,
    }
}

/// Everything the check says, for the leak assertions.
fn said(c: &v1::Check) -> String {
    format!("{} {} {:?}", c.message, c.remedy, c.attributes)
}

fn assert_no_secret(c: &v1::Check) {
    let decoded = ManagedPassword::decode(BLOB).unwrap();
    let nt = hex::encode(decoded.current.nt_hash().expose_secret());
    assert_eq!(nt, CURRENT_NT, "the test vector");
    let kerberos = decoded.current.kerberos_password();
    let text = said(c);
    for secret in [
        nt.clone(),
        nt.to_ascii_uppercase(),
        base64::engine::general_purpose::STANDARD.encode(BLOB),
        hex::encode(BLOB),
        kerberos.expose_secret().to_owned(),
    ] {
        assert!(!text.contains(&secret), "the check leaks a secret: {text}");
    }
    // Not even a piece of the password's Kerberos form (its first 8 chars).
    let head: String = kerberos.expose_secret().chars().take(8).collect();
    assert!(!text.contains(&head), "the check leaks a secret: {text}");
}

#[tokio::test]
async fn bound_as_this_host_the_password_is_retrieved_and_never_shown() {
    let d = set_up(BLOB).await;
    let c = retrievable_as(&d, as_host()).await;
    assert_eq!(status(&c), Pass, "{c:#?}");
    assert_eq!(
        c.attributes.get("proof").map(String::as_str),
        Some("authenticated")
    );
    assert!(c.message.contains("retrieved and decoded"), "{}", c.message);
    assert!(c.message.contains("128 UTF-16 units"), "{}", c.message);
    assert!(c.message.contains("authenticated with it"), "{}", c.message);
    assert_no_secret(&c);
    d.shutdown().await;
}

/// A gMSA made disabled (samba-tool's userAccountControl 4130): the password
/// is handed out and decodes, and every logon with it fails. A FAIL that
/// says so, where "may retrieve" alone would pass.
#[tokio::test]
async fn a_disabled_gmsa_retrieved_but_refused_by_the_kdc_fails() {
    let d = set_up(BLOB).await;
    let dir = &d.fakes.directory;
    let gmsa = dir
        .find(&dir.base_dn(), "(sAMAccountName=provAgentgMSA$)")
        .remove(0);
    let mut s = dir
        .connect(&dir.dcs()[0], &dir.admin_credential())
        .await
        .unwrap();
    s.modify(
        &gmsa,
        &[Change::Replace(
            "userAccountControl".into(),
            vec![b"4130".to_vec()],
        )],
    )
    .await
    .unwrap();
    let c = retrievable_as(&d, as_host()).await;
    assert_eq!(status(&c), Fail, "{c:#?}");
    assert_eq!(
        c.attributes.get("proof").map(String::as_str),
        Some("retrieved")
    );
    assert!(c.message.contains("KDC refuses"), "{}", c.message);
    assert!(c.remedy.contains("userAccountControl 4096"), "{}", c.remedy);
    assert_no_secret(&c);
    d.shutdown().await;
}

#[tokio::test]
async fn bound_as_the_operator_the_check_stays_at_permitted_saying_why() {
    let d = set_up(BLOB).await;
    let c = retrievable_as(&d, admin()).await;
    assert_eq!(status(&c), Pass, "{c:#?}");
    assert_eq!(
        c.attributes.get("proof").map(String::as_str),
        Some("permitted")
    );
    assert!(c.message.contains("HOST1$ may retrieve"), "{}", c.message);
    assert!(
        c.message
            .contains(&format!("binds as Administrator@{DOMAIN}"))
            && c.message.contains("not as HOST1$"),
        "{}",
        c.message
    );
    assert_no_secret(&c);
    d.shutdown().await;
}

#[tokio::test]
async fn a_blob_that_does_not_decode_fails_naming_the_error() {
    let mut bad = BLOB.to_vec();
    bad[0] = 2;
    let d = set_up(&bad).await;
    let c = retrievable_as(&d, as_host()).await;
    assert_eq!(status(&c), Fail, "{c:#?}");
    assert!(c.message.contains("has Version 2, not 1"), "{}", c.message);
    assert_no_secret(&c);
    d.shutdown().await;
}
