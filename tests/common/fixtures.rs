//! Directory fixtures for tests against the Samba AD lab: LDAP sessions of
//! the test's own (not provd's), objects made fresh per test, a KDS root
//! key, and the gMSA / DC-priority requests several tests share.
#![allow(dead_code)]

use std::time::Duration;

use provd::backends::directory::ldap::{LdapSettings, LdapTransport};
use provd::backends::directory::{
    BindCredential, Change, Directory, DirectoryError, DirectorySession, LdapDirectory,
    SD_FLAGS_DACL, Scope,
};
use provd_proto::v1;
use provd_proto::v1::domain_controller_service_client::DomainControllerServiceClient;
use provd_proto::v1::service_account_service_client::ServiceAccountServiceClient;
use provd_sd::{SecurityDescriptor, Sid};
use tonic::transport::Channel;

use super::lab::*;

pub const DC1: &str = "dc1.lab.example.test";

pub fn backend() -> LdapDirectory {
    backend_with(false)
}

/// The lab's backend; `kerberos_over_tls`: Kerberos binds over LDAPS with
/// channel binding instead of sealed on 389.
pub fn backend_with(kerberos_over_tls: bool) -> LdapDirectory {
    provd::install_crypto_provider();
    let dns: Vec<_> = var("LAB_DNS_SERVERS")
        .split_whitespace()
        .map(|s| s.parse().unwrap())
        .collect();
    LdapDirectory::new(
        Some(std::path::Path::new(&var("LAB_CA_PEM"))),
        &dns,
        LdapSettings {
            transport: LdapTransport::Ldaps,
            kerberos_over_tls,
            connect_timeout: Duration::from_secs(5),
            operation_timeout: Duration::from_secs(30),
            page_size: 500,
        },
    )
    .unwrap()
}

pub async fn bind(user: &str, password: &str) -> Result<Box<dyn DirectorySession>, DirectoryError> {
    backend()
        .connect(DC1, &BindCredential::simple(user, password))
        .await
}

pub async fn admin_session() -> Box<dyn DirectorySession> {
    bind(&var("LAB_ADMIN_UPN"), &var("LAB_PASSWORD"))
        .await
        .unwrap()
}

pub fn base() -> String {
    var("LAB_BASE_DN")
}

pub fn config_dn() -> String {
    format!("CN=Configuration,{}", base())
}

pub fn text(v: &str) -> Vec<Vec<u8>> {
    vec![v.as_bytes().to_vec()]
}

/// Deletes `dn` if it exists (fixtures are made fresh by every test).
pub async fn delete_if_present(s: &mut dyn DirectorySession, dn: &str) {
    match s.delete(dn).await {
        Ok(()) | Err(DirectoryError::NoSuchObject { .. }) => {}
        Err(e) => panic!("delete {dn}: {e}"),
    }
}

/// Deletes the gMSA `name` (CN=<name>,CN=Managed Service Accounts) and,
/// first, every explicit ACE on the domain root whose trustee it is: the
/// DC keeps ACEs of a deleted account, and a root DACL full of them stops
/// every later grant (an ACL holds at most 65535 bytes).
pub async fn delete_gmsa(s: &mut dyn DirectorySession, name: &str) {
    let dn = format!("CN={name},CN=Managed Service Accounts,{}", base());
    let entry = match s
        .search(&dn, Scope::Base, "(objectClass=*)", &["objectSid"])
        .await
    {
        Ok(mut found) if !found.is_empty() => found.remove(0),
        Ok(_) | Err(DirectoryError::NoSuchObject { .. }) => return,
        Err(e) => panic!("read {dn}: {e}"),
    };
    let sid = Sid::from_bytes(entry.first_bin("objectSid").unwrap()).unwrap();
    remove_aces_of(s, &base(), &sid).await;
    delete_if_present(s, &dn).await;
}

/// Removes every explicit ACE for `trustee` from the DACL of `dn`.
pub async fn remove_aces_of(s: &mut dyn DirectorySession, dn: &str, trustee: &Sid) {
    let bytes = s
        .read_security_descriptor(dn, SD_FLAGS_DACL)
        .await
        .unwrap()
        .unwrap();
    let mut sd = SecurityDescriptor::parse(&bytes).unwrap();
    let Some(mut dacl) = sd.dacl.clone() else {
        return;
    };
    let before = dacl.aces.len();
    dacl.aces
        .retain(|a| a.is_inherited() || a.sid() != Some(trustee));
    if dacl.aces.len() == before {
        return;
    }
    sd.set_dacl(Some(dacl));
    s.write_security_descriptor(dn, SD_FLAGS_DACL, &sd.to_bytes().unwrap())
        .await
        .unwrap();
}

pub fn unicode_pwd(password: &str) -> Vec<u8> {
    format!("\"{password}\"")
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect()
}

/// A user with a password, enabled, in CN=Users.
pub async fn make_user(s: &mut dyn DirectorySession, name: &str, password: &str) -> String {
    let dn = format!("CN={name},CN=Users,{}", base());
    delete_if_present(s, &dn).await;
    s.add(
        &dn,
        &[
            ("objectClass", text("user")),
            ("sAMAccountName", text(name)),
            (
                "userPrincipalName",
                text(&format!("{name}@{}", var("LAB_DOMAIN"))),
            ),
        ],
    )
    .await
    .unwrap();
    s.modify(
        &dn,
        &[Change::Replace(
            "unicodePwd".into(),
            vec![unicode_pwd(password)],
        )],
    )
    .await
    .unwrap();
    s.modify(
        &dn,
        &[Change::Replace("userAccountControl".into(), text("512"))],
    )
    .await
    .unwrap();
    dn
}

pub async fn make_computer(s: &mut dyn DirectorySession, name: &str) -> String {
    let dn = format!("CN={name},CN=Computers,{}", base());
    delete_if_present(s, &dn).await;
    let mut attrs = vec![
        ("objectClass", text("computer")),
        ("sAMAccountName", text(&format!("{name}$"))),
        ("userAccountControl", text("4096")),
    ];
    // The lab host (Wine's machine name) keeps its published password, so
    // its keytab (lab.sh env: LAB_HOST_KEYTAB) stays valid for later tests.
    if format!("{name}$").eq_ignore_ascii_case(&var("LAB_HOST_ACCOUNT")) {
        let quoted: Vec<u8> = format!("\"{}\"", var("LAB_HOST_PASSWORD"))
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        attrs.push(("unicodePwd", vec![quoted]));
    }
    s.add(&dn, &attrs).await.unwrap();
    dn
}

pub fn kds_container() -> String {
    format!(
        "CN=Master Root Keys,CN=Group Key Distribution Service,CN=Services,{}",
        config_dn()
    )
}

pub async fn remove_kds_keys(s: &mut dyn DirectorySession) {
    let keys = match s
        .search(
            &kds_container(),
            Scope::OneLevel,
            "(objectClass=*)",
            &["cn"],
        )
        .await
    {
        Ok(keys) => keys,
        Err(DirectoryError::NoSuchObject { .. }) => return,
        Err(e) => panic!("{e}"),
    };
    for key in keys {
        s.delete(&key.dn).await.unwrap();
    }
}

/// What `Add-KdsRootKey -EffectiveTime ((Get-Date).AddHours(-20))` makes;
/// its DN. Not -10 as Microsoft's lab recipe says: Samba 4.22 uses a key for
/// a new gMSA only if it was effective at the start of the current 10-hour
/// key interval (measured: 10 h back refused, 11 h accepted, depending on
/// the hour).
pub async fn add_kds_key(s: &mut dyn DirectorySession) -> String {
    add_kds_key_from(s, unix_now() - 20 * 3600).await
}

pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A FILETIME (100 ns since 1601) as AD writes it, from Unix seconds.
pub fn filetime(unix_secs: i64) -> String {
    ((unix_secs + 11_644_473_600) * 10_000_000).to_string()
}

/// A KDS root key usable from `use_start` (Unix seconds) on, as
/// `Add-KdsRootKey -EffectiveTime` makes it (containers included); its DN.
pub async fn add_kds_key_from(s: &mut dyn DirectorySession, use_start: i64) -> String {
    let gkds = format!(
        "CN=Group Key Distribution Service,CN=Services,{}",
        config_dn()
    );
    for dn in [gkds.as_str(), kds_container().as_str()] {
        match s.add(dn, &[("objectClass", text("container"))]).await {
            Ok(()) => {}
            Err(DirectoryError::AlreadyExists { .. }) => {}
            Err(e) => panic!("add {dn}: {e}"),
        }
    }
    let id = uuid::Uuid::new_v4().to_string();
    let dn = format!("CN={id},{}", kds_container());
    s.add(
        &dn,
        &[
            ("objectClass", text("msKds-ProvRootKey")),
            ("cn", text(&id)),
            ("msKds-Version", text("1")),
            ("msKds-KDFAlgorithmID", text("SP800_108_CTR_HMAC")),
            ("msKds-SecretAgreementAlgorithmID", text("DH")),
            ("msKds-PrivateKeyLength", text("512")),
            ("msKds-PublicKeyLength", text("2048")),
            ("msKds-RootKeyData", vec![vec![7u8; 64]]),
            ("msKds-CreateTime", text(&filetime(unix_now()))),
            ("msKds-UseStartTime", text(&filetime(use_start))),
            (
                "msKds-DomainID",
                text(&format!("CN=DC1,OU=Domain Controllers,{}", base())),
            ),
        ],
    )
    .await
    .unwrap();
    dn
}

/// An admin session on the lab's second DC.
pub async fn dc2_session() -> Box<dyn DirectorySession> {
    backend()
        .connect(
            &var("LAB_DC2_HOST"),
            &BindCredential::simple(var("LAB_ADMIN_UPN"), var("LAB_PASSWORD")),
        )
        .await
        .unwrap()
}

/// Waits (up to 60 s) until `read` on the second DC gives what it gives on
/// the first: replication between the lab's DCs takes seconds.
pub async fn until_dc2_agrees<T, F>(read: F) -> T
where
    T: PartialEq + std::fmt::Debug,
    F: for<'a> Fn(&'a mut dyn DirectorySession) -> futures_util::future::BoxFuture<'a, T>,
{
    let mut dc1 = admin_session().await;
    let want = read(dc1.as_mut()).await;
    let mut dc2 = dc2_session().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let got = read(dc2.as_mut()).await;
        if got == want {
            return got;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "dc2 still differs after 60 s: {got:?}, dc1 has {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

pub fn cred() -> v1::Credential {
    admin()
}

pub async fn create(
    channel: &Channel,
    req: v1::CreateGmsaRequest,
) -> (Vec<v1::OperationEvent>, v1::Operation) {
    let op = ServiceAccountServiceClient::new(channel.clone())
        .create_gmsa(req)
        .await
        .unwrap()
        .into_inner()
        .operation
        .unwrap();
    finish(channel, op).await
}

pub fn gmsa_request(name: &str, principals: &[&str]) -> v1::CreateGmsaRequest {
    v1::CreateGmsaRequest {
        name: name.into(),
        principals_allowed_to_retrieve_password: principals
            .iter()
            .map(|p| (*p).to_owned())
            .collect(),
        domain: var("LAB_DOMAIN"),
        credential: Some(cred()),
        ..Default::default()
    }
}

/// Pins DC1 first so fixtures (on DC1) and provd see the same DC at once.
pub async fn pin_dc1(channel: &Channel) {
    let op = DomainControllerServiceClient::new(channel.clone())
        .set_priority(v1::SetPriorityRequest {
            domain: var("LAB_DOMAIN"),
            domain_controllers: vec![var("LAB_DC1_HOST"), var("LAB_DC2_HOST")],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .operation
        .unwrap();
    let (_, op) = finish(channel, op).await;
    assert_eq!(
        op.state,
        v1::OperationState::Succeeded as i32,
        "{:?}",
        op.error
    );
}

pub fn ok(op: &v1::Operation) {
    assert_eq!(
        op.state,
        v1::OperationState::Succeeded as i32,
        "{:?}",
        op.error
    );
}
