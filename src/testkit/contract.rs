//! The directory backend contract: one set of properties every
//! [`Directory`] must have, run against `FakeDirectory`
//! (`tests/directory_contract_fake.rs`) and against `LdapDirectory` on the
//! Samba lab (`tests/directory_contract_lab.rs`). Where the two differ, the
//! fake is made to behave like Samba.
//!
//! Each property is one `pub async fn` taking a [`ContractEnv`]; it panics
//! (test support) with a message naming what differed. Writes happen on
//! the first DC only, under a scratch OU with a unique name per run, and
//! are cleaned up.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use crate::backends::directory::{
    BindCredential, BindSecret, Change, Directory, DirectoryError, DirectorySession, Entry,
    KerberosSource, SD_FLAGS_DACL, Scope,
};
use provd_sd::{Ace, SecurityDescriptor, Sid, rights};

/// The backend under test and the facts of its domain.
pub struct ContractEnv {
    pub directory: Arc<dyn Directory>,
    /// DNS name, e.g. `lab.example.test`.
    pub domain: String,
    /// Host names of the domain's DCs; writes go to the first.
    pub dcs: Vec<String>,
    pub credential: BindCredential,
    /// e.g. `DC=lab,DC=example,DC=test`.
    pub base_dn: String,
    /// The domain SID, e.g. `S-1-5-21-…`.
    pub domain_sid: String,
    /// A DC address nothing answers on (e.g. `127.0.0.9`).
    pub unreachable_dc: String,
    /// A computer account whose keys this host holds (a keytab): the
    /// Kerberos bind of a domain-joined host.
    pub kerberos: BindCredential,
}

impl ContractEnv {
    pub async fn session(&self) -> Box<dyn DirectorySession> {
        self.session_on(&self.dcs[0]).await
    }

    pub async fn session_on(&self, dc: &str) -> Box<dyn DirectorySession> {
        match self.directory.connect(dc, &self.credential).await {
            Ok(s) => s,
            Err(e) => panic!("connect to {dc}: {e}"),
        }
    }

    fn config_dn(&self) -> String {
        format!("CN=Configuration,{}", self.base_dn)
    }
}

fn text(v: &str) -> Vec<Vec<u8>> {
    vec![v.as_bytes().to_vec()]
}

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    )
}

async fn search(
    s: &mut dyn DirectorySession,
    base: &str,
    scope: Scope,
    filter: &str,
    attrs: &[&str],
) -> Vec<Entry> {
    match s.search(base, scope, filter, attrs).await {
        Ok(v) => v,
        Err(e) => panic!("search {base} {scope:?} {filter}: {e}"),
    }
}

/// Every property, in order.
pub async fn run_all(env: &ContractEnv) {
    connect_and_root_dse(env).await;
    bad_password_is_invalid_credentials(env).await;
    searches_the_workflows_use(env).await;
    add_search_modify_delete_roundtrip(env).await;
    missing_objects_are_no_such_object(env).await;
    a_managed_password_is_withheld_from_a_non_principal(env).await;
    a_kerberos_credential_binds_and_missing_keys_are_named(env).await;
    a_malformed_base_dn_is_rejected(env).await;
    dacl_write_reads_back_byte_equal(env).await;
    srv_lookup_lists_the_dcs(env).await;
    probe_of_a_live_dc(env).await;
    unreachable_dc(env).await;
}

/// The host's keytab binds (and reads the domain root, which needs an
/// authenticated session); a principal without keys there fails as a
/// Kerberos setup error naming the keytab or cache, never as a failover.
pub async fn a_kerberos_credential_binds_and_missing_keys_are_named(env: &ContractEnv) {
    let mut s = match env.directory.connect(&env.dcs[0], &env.kerberos).await {
        Ok(s) => s,
        Err(e) => panic!("Kerberos bind as {}: {e}", env.kerberos.username),
    };
    let root = search(
        s.as_mut(),
        &env.base_dn,
        Scope::Base,
        "(objectClass=*)",
        &["objectSid"],
    )
    .await;
    assert_eq!(root.len(), 1);
    let realm = env.domain.to_ascii_uppercase();
    let nobody = BindCredential {
        username: format!(
            "NOBODY-{}$@{realm}",
            &uuid::Uuid::new_v4().simple().to_string()[..6]
        ),
        secret: env.kerberos.secret.clone(),
    };
    let BindSecret::Kerberos(source) = &env.kerberos.secret else {
        panic!("env.kerberos must be a Kerberos credential");
    };
    let named = match source {
        KerberosSource::Keytab(p) => p.display().to_string(),
        KerberosSource::Ccache(c) => c.clone(),
        KerberosSource::ServiceIdentity => {
            panic!("the contract suite binds from a keytab or cache")
        }
    };
    match env.directory.connect(&env.dcs[0], &nobody).await {
        Err(e @ DirectoryError::Kerberos { .. }) => {
            assert!(e.to_string().contains(&named), "{e}");
            assert!(!e.is_failover());
        }
        Err(e) => panic!("expected a Kerberos error naming {named}, got {e}"),
        Ok(_) => panic!("{} has no keys in {named}", nobody.username),
    }
}

/// Each DC binds and its RootDSE names the domain's naming contexts; read
/// without a bind it names the same domain, and a DC nothing answers on
/// is an outage.
pub async fn connect_and_root_dse(env: &ContractEnv) {
    for dc in &env.dcs {
        let mut s = env.session_on(dc).await;
        let root = s.root_dse().await.expect("root_dse");
        let get = |n: &str| {
            root.first(n)
                .unwrap_or_else(|| panic!("{dc}: RootDSE lacks {n}: {root:?}"))
        };
        assert!(get("defaultNamingContext").eq_ignore_ascii_case(&env.base_dn));
        assert!(get("rootDomainNamingContext").eq_ignore_ascii_case(&env.base_dn));
        assert!(get("configurationNamingContext").eq_ignore_ascii_case(&env.config_dn()));
        assert!(
            get("schemaNamingContext")
                .eq_ignore_ascii_case(&format!("CN=Schema,{}", env.config_dn()))
        );
        assert!(get("dnsHostName").eq_ignore_ascii_case(dc), "{dc}");
        for level in ["domainFunctionality", "forestFunctionality"] {
            assert!(get(level).parse::<i32>().is_ok(), "{level}");
        }
        assert!(get("dsServiceName").starts_with("CN=NTDS Settings,"));
        assert!(root.all("namingContexts").len() >= 3);
        s.unbind().await;
        // Without a bind: the same domain, the same DC.
        let anonymous = env
            .directory
            .read_root_dse(dc)
            .await
            .expect("read_root_dse");
        let served = anonymous.first("defaultNamingContext").unwrap_or_default();
        assert!(served.eq_ignore_ascii_case(&env.base_dn), "{dc}: {served}");
        let host = anonymous.first("dnsHostName").unwrap_or_default();
        assert!(host.eq_ignore_ascii_case(dc), "{dc}: {host}");
    }
    let nobody = env.directory.read_root_dse(&env.unreachable_dc).await;
    assert!(nobody.expect_err("nothing answers there").is_failover());
}

/// A wrong password is `InvalidCredentials` (LDAP 49), on every DC.
pub async fn bad_password_is_invalid_credentials(env: &ContractEnv) {
    for dc in &env.dcs {
        let wrong = BindCredential::simple(env.credential.username.clone(), "not-the-password");
        match env.directory.connect(dc, &wrong).await {
            Err(DirectoryError::InvalidCredentials { dc: d, .. }) => assert_eq!(&d, dc),
            Err(e) => panic!("{dc}: wrong password gave {e}"),
            Ok(_) => panic!("{dc}: wrong password was accepted"),
        }
    }
}

/// Base, one-level and subtree searches with the filters provd sends.
pub async fn searches_the_workflows_use(env: &ContractEnv) {
    let mut session = env.session().await;
    let s = session.as_mut();
    let base = env.base_dn.as_str();
    let config = env.config_dn();
    let schema = format!("CN=Schema,{config}");

    // Base: the domain head's SID is binary and parses.
    let head = search(s, base, Scope::Base, "(objectClass=*)", &["objectSid"]).await;
    assert_eq!(head.len(), 1);
    let sid =
        Sid::from_bytes(head[0].first_bin("objectSid").expect("binary objectSid")).expect("SID");
    assert_eq!(sid.to_string(), env.domain_sid);
    assert!(
        head[0].attrs.is_empty(),
        "only the asked attribute: {:?}",
        head[0].attrs
    );

    // One level: the crossRef of the domain gives the NetBIOS name.
    let filter = format!(
        "(&(objectClass=crossRef){})",
        crate::backends::directory::escape::eq("nCName", base)
    );
    let refs = search(
        s,
        &format!("CN=Partitions,{config}"),
        Scope::OneLevel,
        &filter,
        &["nETBIOSName"],
    )
    .await;
    assert_eq!(refs.len(), 1, "{refs:?}");
    assert!(refs[0].first("nETBIOSName").is_some_and(|n| !n.is_empty()));

    // One level in the schema, by lDAPDisplayName.
    let class = search(
        s,
        &schema,
        Scope::OneLevel,
        "(&(objectClass=classSchema)(lDAPDisplayName=msDS-GroupManagedServiceAccount))",
        &["cn", "schemaIDGUID"],
    )
    .await;
    assert_eq!(class.len(), 1);
    assert_eq!(
        class[0].first_bin("schemaIDGUID").map(<[u8]>::len),
        Some(16)
    );
    let pwd_last_set = search(
        s,
        &schema,
        Scope::OneLevel,
        "(lDAPDisplayName=pwdLastSet)",
        &["schemaIDGUID"],
    )
    .await;
    let guid = uuid::Uuid::from_bytes_le(
        <[u8; 16]>::try_from(pwd_last_set[0].first_bin("schemaIDGUID").expect("guid"))
            .expect("16 bytes"),
    );
    assert_eq!(guid.to_string(), "bf967a0a-0de6-11d0-a285-00aa003049e2");
    let right = search(
        s,
        &format!("CN=Extended-Rights,{config}"),
        Scope::OneLevel,
        "(cn=User-Force-Change-Password)",
        &["rightsGuid"],
    )
    .await;
    assert_eq!(
        right[0].first("rightsGuid"),
        Some("00299570-246d-11d0-a768-00aa006e0529")
    );

    // Subtree: by sAMAccountName, case-insensitively, and by binary SID.
    let admin = search(
        s,
        base,
        Scope::Subtree,
        "(sAMAccountName=ADMINISTRATOR)",
        &["objectSid", "objectClass"],
    )
    .await;
    assert_eq!(admin.len(), 1, "{admin:?}");
    assert!(
        admin[0]
            .dn
            .to_ascii_lowercase()
            .starts_with("cn=administrator,cn=users,")
    );
    let admin_sid = admin[0].first_bin("objectSid").expect("sid").to_vec();
    let by_sid = search(
        s,
        base,
        Scope::Subtree,
        &format!(
            "(objectSid={})",
            crate::backends::directory::escape::binary(&admin_sid)
        ),
        &["cn"],
    )
    .await;
    assert_eq!(by_sid.len(), 1);
    assert!(admin[0].all("objectClass").iter().any(|c| c == "user"));
    let people = search(
        s,
        base,
        Scope::Subtree,
        "(&(objectCategory=person)(objectClass=user))",
        &["cn"],
    )
    .await;
    assert!(
        people
            .iter()
            .any(|e| e.dn.eq_ignore_ascii_case(&admin[0].dn))
    );
    let prefix = search(
        s,
        &format!("CN=Users,{base}"),
        Scope::OneLevel,
        "(cn=Adminis*)",
        &["cn"],
    )
    .await;
    assert!(
        prefix
            .iter()
            .any(|e| e.first("cn") == Some("Administrator")),
        "{prefix:?}"
    );
    let not = search(
        s,
        &format!("CN=Users,{base}"),
        Scope::OneLevel,
        "(&(cn=Adminis*)(!(objectClass=user)))",
        &["cn"],
    )
    .await;
    assert!(not.is_empty());
    let either = search(
        s,
        &format!("CN=Users,{base}"),
        Scope::OneLevel,
        "(|(cn=Administrator)(cn=Guest))",
        &["cn"],
    )
    .await;
    assert_eq!(either.len(), 2);

    // A subtree search from the domain root stays in the domain's naming
    // context (Configuration comes back as a reference, skipped).
    let cross = search(s, base, Scope::Subtree, "(objectClass=crossRef)", &["cn"]).await;
    assert!(cross.is_empty(), "{cross:?}");

    // Sites: one nTDSDSA under each DC's server object.
    let dsas = search(
        s,
        &format!("CN=Sites,{config}"),
        Scope::Subtree,
        "(objectClass=nTDSDSA)",
        &["objectClass"],
    )
    .await;
    assert_eq!(dsas.len(), env.dcs.len());
    let servers = search(
        s,
        &format!("CN=Sites,{config}"),
        Scope::Subtree,
        "(objectClass=server)",
        &["dNSHostName"],
    )
    .await;
    let hosts: BTreeSet<String> = servers
        .iter()
        .filter_map(|e| e.first("dNSHostName").map(str::to_ascii_lowercase))
        .collect();
    let want: BTreeSet<String> = env.dcs.iter().map(|d| d.to_ascii_lowercase()).collect();
    assert_eq!(hosts, want);
}

/// Add → search → modify (replace, add, delete values) → delete, on a
/// scratch OU; adding it twice fails with LDAP 68; a non-leaf delete 66.
pub async fn add_search_modify_delete_roundtrip(env: &ContractEnv) {
    let mut session = env.session().await;
    let s = session.as_mut();
    let ou = format!("OU={},{}", unique("provd-contract"), env.base_dn);
    s.add(&ou, &[("objectClass", text("organizationalUnit"))])
        .await
        .expect("add OU");
    match s
        .add(&ou, &[("objectClass", text("organizationalUnit"))])
        .await
    {
        Err(DirectoryError::AlreadyExists { .. }) => {}
        other => panic!("adding {ou} twice gave {other:?}"),
    }
    let contact = format!("CN=scratch contact,{ou}");
    s.add(
        &contact,
        &[
            ("objectClass", text("contact")),
            ("description", text("one")),
        ],
    )
    .await
    .expect("add contact");
    let found = search(
        s,
        &ou,
        Scope::OneLevel,
        "(&(objectClass=contact)(description=ONE))",
        &["description", "objectClass", "cn"],
    )
    .await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].dn.eq_ignore_ascii_case(&contact));
    assert_eq!(found[0].first("cn"), Some("scratch contact"));
    assert!(found[0].all("objectClass").iter().any(|c| c == "contact"));
    assert!(found[0].all("objectClass").iter().any(|c| c == "top"));

    s.modify(
        &contact,
        &[
            Change::Replace("description".into(), text("two")),
            Change::Add(
                "otherTelephone".into(),
                vec![b"111".to_vec(), b"222".to_vec()],
            ),
        ],
    )
    .await
    .expect("replace + add");
    s.modify(
        &contact,
        &[Change::Delete("otherTelephone".into(), text("111"))],
    )
    .await
    .expect("delete a value");
    match s
        .modify(
            &contact,
            &[Change::Add("otherTelephone".into(), text("222"))],
        )
        .await
    {
        Err(DirectoryError::Ldap { code: 20, .. }) => {}
        other => panic!("adding an existing value gave {other:?}"),
    }
    match s
        .modify(
            &contact,
            &[Change::Delete("otherTelephone".into(), text("999"))],
        )
        .await
    {
        Err(DirectoryError::Ldap { code: 16, .. }) => {}
        other => panic!("deleting a missing value gave {other:?}"),
    }
    let e = &search(
        s,
        &contact,
        Scope::Base,
        "(objectClass=*)",
        &["description", "otherTelephone"],
    )
    .await[0];
    assert_eq!(e.all("description"), ["two"]);
    assert_eq!(e.all("otherTelephone"), ["222"]);
    s.modify(&contact, &[Change::Delete("description".into(), vec![])])
        .await
        .expect("delete attribute");
    s.modify(
        &contact,
        &[Change::Replace("otherTelephone".into(), vec![])],
    )
    .await
    .expect("replace with nothing");
    let e = &search(
        s,
        &contact,
        Scope::Base,
        "(objectClass=*)",
        &["description", "otherTelephone"],
    )
    .await[0];
    assert!(e.attrs.is_empty() && e.bin_attrs.is_empty(), "{e:?}");
    assert!(
        search(s, &ou, Scope::OneLevel, "(description=*)", &["cn"])
            .await
            .is_empty()
    );

    match s.delete(&ou).await {
        Err(DirectoryError::Ldap { code: 66, .. }) => {}
        other => panic!("deleting a non-leaf gave {other:?}"),
    }
    s.delete(&contact).await.expect("delete contact");
    s.delete(&ou).await.expect("delete OU");
    match s.search(&ou, Scope::Base, "(objectClass=*)", &["cn"]).await {
        Err(DirectoryError::NoSuchObject { .. }) => {}
        other => panic!("search of a deleted base gave {other:?}"),
    }
    session.unbind().await;
}

/// Modify, delete, search under and read the SD of a missing DN.
pub async fn missing_objects_are_no_such_object(env: &ContractEnv) {
    let mut session = env.session().await;
    let s = session.as_mut();
    let missing = format!("CN={},CN=Users,{}", unique("missing"), env.base_dn);
    match s
        .modify(
            &missing,
            &[Change::Replace("description".into(), text("x"))],
        )
        .await
    {
        Err(DirectoryError::NoSuchObject { .. }) => {}
        other => panic!("modify of a missing DN gave {other:?}"),
    }
    match s.delete(&missing).await {
        Err(DirectoryError::NoSuchObject { .. }) => {}
        other => panic!("delete of a missing DN gave {other:?}"),
    }
    match s
        .search(&missing, Scope::OneLevel, "(objectClass=*)", &["cn"])
        .await
    {
        Err(DirectoryError::NoSuchObject { .. }) => {}
        other => panic!("search under a missing DN gave {other:?}"),
    }
    let orphan = format!("CN=child,{missing}");
    match s.add(&orphan, &[("objectClass", text("contact"))]).await {
        Err(DirectoryError::NoSuchObject { .. }) => {}
        other => panic!("add under a missing parent gave {other:?}"),
    }
    assert!(
        s.read_security_descriptor(&missing, SD_FLAGS_DACL)
            .await
            .expect("sd read")
            .is_none()
    );
    session.unbind().await;
}

/// `msDS-ManagedPassword` read by a bind that is no gMSA principal (the
/// contract's credential, on an object that is no gMSA): the DC returns the
/// entry without it, `None`, on every DC; a missing DN is `NoSuchObject`.
/// Holds on Samba 4.17, which withholds the attribute from everyone.
pub async fn a_managed_password_is_withheld_from_a_non_principal(env: &ContractEnv) {
    let administrator = format!("CN=Administrator,CN=Users,{}", env.base_dn);
    for dc in &env.dcs {
        let mut session = env.session_on(dc).await;
        match session.read_managed_password(&administrator).await {
            Ok(None) => {}
            Ok(Some(_)) => panic!("{dc}: a non-principal was handed msDS-ManagedPassword"),
            Err(e) => panic!("{dc}: read of {administrator}: {e}"),
        }
        let missing = format!("CN={},CN=Users,{}", unique("missing"), env.base_dn);
        match session.read_managed_password(&missing).await {
            Err(DirectoryError::NoSuchObject { .. }) => {}
            Err(e) => panic!("{dc}: read of a missing DN gave {e}"),
            Ok(found) => panic!("{dc}: read of a missing DN gave Ok({:?})", found.is_some()),
        }
        session.unbind().await;
    }
}

/// A search base that is no DN is `Rejected` with invalidDNSyntax (34), as
/// Samba answered issue 13's `x)(objectClass=*` ("invalid basedn"), not an
/// internal LDAP error.
pub async fn a_malformed_base_dn_is_rejected(env: &ContractEnv) {
    let mut session = env.session().await;
    match session
        .search("x)(objectClass=*", Scope::Base, "(objectClass=*)", &["cn"])
        .await
    {
        Err(DirectoryError::Rejected { code: 34, .. }) => {}
        other => panic!("a search based at no DN gave {other:?}"),
    }
    session.unbind().await;
}

/// SD_FLAGS=DACL reads only the DACL; writing it back with one extra ACE
/// changes only the DACL, which reads back byte-equal; then restored.
pub async fn dacl_write_reads_back_byte_equal(env: &ContractEnv) {
    let mut session = env.session().await;
    let s = session.as_mut();
    let ou = format!("OU={},{}", unique("provd-contract-sd"), env.base_dn);
    s.add(&ou, &[("objectClass", text("organizationalUnit"))])
        .await
        .expect("add OU");
    let full_before = s
        .read_security_descriptor(&ou, 0xf)
        .await
        .expect("read")
        .expect("an SD");
    let full_before = SecurityDescriptor::parse(&full_before).expect("full SD parses");
    assert!(full_before.owner.is_some() && full_before.group.is_some());
    let bytes = s
        .read_security_descriptor(&ou, SD_FLAGS_DACL)
        .await
        .expect("read")
        .expect("an SD");
    let original = SecurityDescriptor::parse(&bytes).expect("DACL-only SD parses");
    assert!(
        original.owner.is_none() && original.group.is_none() && original.sacl.is_none(),
        "{original:?}"
    );
    let dacl = original.dacl.clone().expect("a DACL");
    assert!(!dacl.aces.is_empty());

    let trustee: Sid = format!("{}-513", env.domain_sid).parse().expect("sid");
    let mut changed = original.clone();
    let mut new_dacl = dacl.clone();
    new_dacl.insert_explicit(Ace::allowed(
        0,
        rights::READ_PROPERTY | rights::LIST_CHILDREN,
        trustee,
    ));
    changed.set_dacl(Some(new_dacl.clone()));
    let written = changed.to_bytes().expect("encode");
    s.write_security_descriptor(&ou, SD_FLAGS_DACL, &written)
        .await
        .expect("write DACL");
    let back = s
        .read_security_descriptor(&ou, SD_FLAGS_DACL)
        .await
        .expect("read")
        .expect("an SD");
    let back = SecurityDescriptor::parse(&back).expect("parses");
    assert_eq!(
        back.dacl.as_ref().map(|d| d.to_bytes().expect("encode")),
        Some(new_dacl.to_bytes().expect("encode")),
        "the DACL read back differs from the one written"
    );
    let full_after = s
        .read_security_descriptor(&ou, 0xf)
        .await
        .expect("read")
        .expect("an SD");
    let full_after = SecurityDescriptor::parse(&full_after).expect("parses");
    assert_eq!(
        full_after.owner, full_before.owner,
        "a DACL-only write changed the owner"
    );
    assert_eq!(
        full_after.group, full_before.group,
        "a DACL-only write changed the group"
    );

    s.write_security_descriptor(&ou, SD_FLAGS_DACL, &bytes)
        .await
        .expect("restore");
    let restored = s
        .read_security_descriptor(&ou, SD_FLAGS_DACL)
        .await
        .expect("read")
        .expect("an SD");
    assert_eq!(
        SecurityDescriptor::parse(&restored).expect("parses").dacl,
        Some(dacl),
        "restoring the DACL"
    );
    s.delete(&ou).await.expect("delete OU");
    session.unbind().await;
}

/// `_ldap._tcp.dc._msdcs.<domain>` lists exactly the DCs.
pub async fn srv_lookup_lists_the_dcs(env: &ContractEnv) {
    let srv = env.directory.srv_lookup(&env.domain).await.expect("SRV");
    let got: BTreeSet<String> = srv.iter().map(|t| t.host.clone()).collect();
    let want: BTreeSet<String> = env.dcs.iter().map(|d| d.to_ascii_lowercase()).collect();
    assert_eq!(got, want);
    assert!(srv.iter().all(|t| t.port == 389));
    for dc in &env.dcs {
        assert!(!env.directory.resolve(dc).await.expect("resolve").is_empty());
    }
    assert!(
        env.directory
            .srv_lookup("nowhere.example.test")
            .await
            .is_err()
    );
}

/// A probe of a live DC is reachable and reads its naming context.
pub async fn probe_of_a_live_dc(env: &ContractEnv) {
    for dc in &env.dcs {
        let report = env
            .directory
            .probe(dc, Some(&env.credential), Duration::from_secs(10))
            .await;
        assert!(report.reachable, "{dc}: {:?}", report.error);
        assert!(report.error.is_none());
        assert!(report.address.is_some());
        assert!(report.certificate_trusted);
        assert!(report.certificate_subject.is_some());
        assert_eq!(
            report.dns_host_name.as_deref(),
            Some(dc.to_ascii_lowercase().as_str())
        );
        assert!(
            report
                .default_naming_context
                .is_some_and(|nc| nc.eq_ignore_ascii_case(&env.base_dn))
        );
    }
}

/// A DC address nothing answers on: `Unreachable` (failover material), and
/// a probe that says so.
pub async fn unreachable_dc(env: &ContractEnv) {
    match env
        .directory
        .connect(&env.unreachable_dc, &env.credential)
        .await
    {
        Err(e @ DirectoryError::Unreachable { .. }) => assert!(e.is_failover()),
        Err(e) => panic!("{} gave {e}", env.unreachable_dc),
        Ok(_) => panic!("{} answered", env.unreachable_dc),
    }
    let report = env
        .directory
        .probe(&env.unreachable_dc, None, Duration::from_secs(5))
        .await;
    assert!(!report.reachable);
    assert!(report.error.is_some());
}
