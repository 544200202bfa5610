//! The gMSA's password for real (Samba 4.22): created by provd with the lab
//! host `VM$` as its only principal, `msDS-ManagedPassword` is handed to a
//! session bound as `VM$` and decodes (MS-ADTS 2.2.19); a computer that is
//! no principal (`OTHER$`) gets the entry without the attribute.

use crate::common::fixtures::*;
use crate::common::lab::*;
use provd::model::ManagedPassword;

const GMSA: &str = "provAgentgMSA";

async fn gmsa_for_vm() -> (LabDaemon, String) {
    let lab = daemon().await;
    pin_dc1(&lab.channel).await;
    let mut s = admin_session().await;
    delete_gmsa(s.as_mut(), GMSA).await;
    let (_, op) = create(&lab.channel, gmsa_request("", &[&var("LAB_HOST_ACCOUNT")])).await;
    ok(&op);
    let dn = op.result["distinguished_name"].clone();
    (lab, dn)
}

#[tokio::test]
#[ignore = "needs the Samba AD lab (root): deploy/test.sh runs it"]
async fn the_host_retrieves_the_gmsa_password_and_another_computer_does_not() {
    let _serial = SERIAL.lock().await;
    let (_lab, dn) = gmsa_for_vm().await;

    let host_upn = format!("{}@{}", var("LAB_HOST_ACCOUNT"), var("LAB_DOMAIN"));
    let mut host = bind(&host_upn, &var("LAB_HOST_PASSWORD")).await.unwrap();
    let blob = host
        .read_managed_password(&dn)
        .await
        .unwrap()
        .expect("the DC hands the password to a principal");
    let password = ManagedPassword::decode(&blob).unwrap();
    // 256 bytes of password, as Windows and Samba make it; a fresh account
    // has no previous password; the DC's next change is about 30 days out.
    assert_eq!(password.current.len_units(), 128);
    assert!(password.previous.is_none());
    let days = password.query_interval.as_secs() / 86_400;
    assert!((28..=30).contains(&days), "{:?}", password.query_interval);
    assert!(password.unchanged_interval <= password.query_interval);
    // Read twice, the same password (no rotation in between).
    let again = host.read_managed_password(&dn).await.unwrap().unwrap();
    let again = ManagedPassword::decode(&again).unwrap();
    assert_eq!(
        password.current.nt_hash().expose_secret(),
        again.current.nt_hash().expose_secret()
    );

    let other_upn = format!("{}@{}", var("LAB_OTHER_ACCOUNT"), var("LAB_DOMAIN"));
    let mut other = bind(&other_upn, &var("LAB_HOST_PASSWORD")).await.unwrap();
    assert!(
        other.read_managed_password(&dn).await.unwrap().is_none(),
        "a computer that is no principal must not get the password"
    );

    let mut s = admin_session().await;
    delete_gmsa(s.as_mut(), GMSA).await;
}
