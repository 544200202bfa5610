//! Verify's gMSA prerequisites and the tenant's clock on the fakes: the
//! Managed Service Accounts container's well-known reference removed, or
//! naming a deleted container; KDS root keys missing, not usable yet, or
//! not replicated to one DC; the tenant's clock minutes off. Each FAILs or
//! WARNs with its remedy (and Microsoft's page), then PASSes once put right.

use super::verify::{find, status, verify_with};
use crate::common::hermetic::*;
use provd::backends::directory::{Change, Directory, DirectorySession};
use provd_proto::v1;
use provd_proto::v1::CheckStatus::{Fail, Pass, Skip, Warn};

const MSA_GUID: &str = "1EB93889E40C45DF9F0C64D23BBB6237";

async fn checks_of(d: &Hermetic, category: v1::CheckCategory) -> Vec<v1::Check> {
    verify_with(
        d,
        v1::VerifyRequest {
            categories: vec![category as i32],
            credential: Some(admin()),
            ..Default::default()
        },
    )
    .await
    .unwrap()
    .0
}

async fn msa_check(d: &Hermetic) -> v1::Check {
    let checks = checks_of(d, v1::CheckCategory::Directory).await;
    let found = find(&checks, "directory.msa_container");
    assert_eq!(found.len(), 1, "{found:#?}");
    found[0].clone()
}

/// The KDS checks, one per DC, by DC.
async fn kds_checks(d: &Hermetic) -> Vec<v1::Check> {
    let checks = checks_of(d, v1::CheckCategory::Directory).await;
    let mut found: Vec<v1::Check> = find(&checks, "directory.kds.effective")
        .into_iter()
        .cloned()
        .collect();
    found.sort_by(|a, b| a.subject.cmp(&b.subject));
    let subjects: Vec<&str> = found.iter().map(|c| c.subject.as_str()).collect();
    assert_eq!(subjects, [DC1, DC2], "one per DC: {found:#?}");
    for c in &found {
        assert_eq!(c.attributes["domain"], DOMAIN, "{c:#?}");
    }
    found
}

async fn session(d: &Hermetic) -> Box<dyn DirectorySession> {
    let dir = &d.fakes.directory;
    dir.connect(DC1, &dir.admin_credential()).await.unwrap()
}

/// One change to `dn`, as an administrator would make it on dc1.
async fn change(s: &mut Box<dyn DirectorySession>, dn: &str, change: Change) {
    s.modify(dn, &[change]).await.unwrap();
}

#[tokio::test]
async fn a_missing_or_deleted_msa_reference_fails_with_microsofts_error_until_restored() {
    let d = Hermetic::start().await;
    ok(&d.add_directory().await.1);
    let base = d.fakes.directory.base_dn();
    let container = format!("CN=Managed Service Accounts,{base}");
    let c = msa_check(&d).await;
    assert_eq!(status(&c), Pass, "{c:#?}");
    assert_eq!(c.subject, DOMAIN);
    assert_eq!(c.attributes["dn"], container);
    assert!(c.remedy.is_empty());
    assert!(
        c.attributes["source"].starts_with("https://learn.microsoft.com/troubleshoot/"),
        "{c:#?}"
    );

    // The reference removed: the agent's own error, and the value to put back.
    let value = format!("B:32:{MSA_GUID}:{container}");
    let mut s = session(&d).await;
    let attr = "otherWellKnownObjects".to_owned();
    let reference = |v: &str| vec![v.as_bytes().to_vec()];
    change(
        &mut s,
        &base,
        Change::Delete(attr.clone(), reference(&value)),
    )
    .await;
    let c = msa_check(&d).await;
    assert_eq!(status(&c), Fail, "{c:#?}");
    assert!(
        c.message.contains("There is no such object on the server"),
        "{}",
        c.message
    );
    assert!(c.message.contains("exists"), "{}", c.message);
    assert!(c.remedy.contains(&value), "{}", c.remedy);
    assert!(c.remedy.contains(&c.attributes["source"]), "{}", c.remedy);

    // Naming a deleted container, as Microsoft's page shows it.
    let deleted = format!(
        "B:32:{MSA_GUID}:CN=Managed Service Accounts\\0ADEL:8b637607-65e8-4a80-b194-f738b26b9414,CN=Deleted Objects,{base}"
    );
    change(
        &mut s,
        &base,
        Change::Add(attr.clone(), reference(&deleted)),
    )
    .await;
    let c = msa_check(&d).await;
    assert_eq!(status(&c), Fail, "{c:#?}");
    assert!(c.message.contains("deleted container"), "{}", c.message);
    assert!(c.remedy.contains("Recycle Bin"), "{}", c.remedy);

    // Put back as AD provisions it: PASS.
    change(
        &mut s,
        &base,
        Change::Delete(attr.clone(), reference(&deleted)),
    )
    .await;
    change(&mut s, &base, Change::Add(attr, reference(&value))).await;
    assert_eq!(status(&msa_check(&d).await), Pass);
    s.unbind().await;
    d.shutdown().await;
}

#[tokio::test]
async fn kds_keys_missing_not_usable_yet_or_unreplicated_fail_or_warn_per_dc() {
    let d = Hermetic::start().await;
    ok(&d.add_directory().await.1);
    let dir = d.fakes.directory.clone();
    let keys = format!(
        "CN=Master Root Keys,CN=Group Key Distribution Service,CN=Services,{}",
        dir.configuration_dn()
    );
    for c in kds_checks(&d).await {
        assert_eq!(status(&c), Pass, "{c:#?}");
        assert!(!c.attributes["usable_since"].is_empty(), "{c:#?}");
    }

    // Not replicated to dc2 yet: dc2 alone FAILs, naming replication.
    dir.hide_from(DC2, &keys);
    let [dc1, dc2] = <[v1::Check; 2]>::try_from(kds_checks(&d).await).unwrap();
    assert_eq!(status(&dc1), Pass, "{dc1:#?}");
    assert_eq!(status(&dc2), Fail, "{dc2:#?}");
    assert!(dc2.message.contains("not replicated"), "{}", dc2.message);
    assert!(dc2.remedy.contains("repadmin"), "{}", dc2.remedy);
    dir.replicate();

    // A DC that does not answer is not read: SKIP saying why (its
    // directory.dc.reachable says the rest).
    dir.set_reachable(DC2, false);
    let [dc1, dc2] = <[v1::Check; 2]>::try_from(kds_checks(&d).await).unwrap();
    assert_eq!(status(&dc1), Pass, "{dc1:#?}");
    assert_eq!(status(&dc2), Skip, "{dc2:#?}");
    assert!(dc2.message.contains("cannot read"), "{}", dc2.message);
    dir.set_reachable(DC2, true);

    // No key anywhere: FAIL on each DC, with the documented remedy.
    dir.remove_kds_keys();
    for c in kds_checks(&d).await {
        assert_eq!(status(&c), Fail, "{c:#?}");
        assert!(c.remedy.contains("Add-KdsRootKey"), "{}", c.remedy);
        assert!(c.remedy.contains(&c.attributes["source"]), "{}", c.remedy);
    }

    // A key whose start time is 2 hours away: WARN with the time.
    dir.add_kds_key();
    let key = dir.find(&keys, "(objectClass=msKds-ProvRootKey)").remove(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let filetime = (now.as_secs() + 2 * 3600 + 11_644_473_600) * 10_000_000;
    let mut s = session(&d).await;
    let start = vec![filetime.to_string().into_bytes()];
    change(
        &mut s,
        &key,
        Change::Replace("msKds-UseStartTime".into(), start),
    )
    .await;
    for c in kds_checks(&d).await {
        assert_eq!(status(&c), Warn, "{c:#?}");
        let at = &c.attributes["usable_at"];
        let usable = humantime::parse_rfc3339(at).unwrap();
        let ahead = usable
            .duration_since(std::time::SystemTime::now())
            .unwrap()
            .as_secs();
        assert!((7000..=7200).contains(&ahead), "{at}: {ahead}");
        assert!(c.message.contains(at.as_str()), "{}", c.message);
        assert!(c.message.contains("in 2h00m"), "{}", c.message);
        assert!(c.remedy.contains("wait until"), "{}", c.remedy);
    }

    // An effective key beside it: PASS.
    dir.add_kds_key();
    for c in kds_checks(&d).await {
        assert_eq!(status(&c), Pass, "{c:#?}");
        assert_eq!(c.attributes["keys"], "2");
    }
    s.unbind().await;
    d.shutdown().await;
}

#[tokio::test]
async fn without_a_credential_the_prerequisite_checks_skip_saying_why() {
    let d = Hermetic::start().await;
    ok(&d.add_directory().await.1);
    let (checks, _) = verify_with(
        &d,
        v1::VerifyRequest {
            categories: vec![v1::CheckCategory::Directory as i32],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    for id in ["directory.msa_container", "directory.kds.effective"] {
        let c = find(&checks, id)[0];
        assert_eq!(status(c), Skip, "{c:#?}");
        assert!(c.message.contains("no credential"), "{c:#?}");
    }
    d.shutdown().await;
}

#[tokio::test]
async fn a_tenant_clock_minutes_off_warns_then_fails() {
    let d = Hermetic::start().await;
    let skew = |checks: &[v1::Check]| find(checks, "tenant.clock_skew")[0].clone();
    let c = skew(&checks_of(&d, v1::CheckCategory::Tenant).await);
    assert_eq!(status(&c), Pass, "{c:#?}");
    assert!(c.attributes["skew_ms"].parse::<i64>().unwrap().abs() < 2000);
    assert!(c.remedy.is_empty());

    d.fakes.tenant.set_clock_offset_ms(-2 * 60_000);
    let c = skew(&checks_of(&d, v1::CheckCategory::Tenant).await);
    assert_eq!(status(&c), Warn, "{c:#?}");
    assert!(c.message.contains("-120 s"), "{}", c.message);
    assert!(c.remedy.contains("w32tm"), "{}", c.remedy);

    d.fakes.tenant.set_clock_offset_ms(10 * 60_000);
    let c = skew(&checks_of(&d, v1::CheckCategory::Tenant).await);
    assert_eq!(status(&c), Fail, "{c:#?}");
    assert!(c.message.contains("+600 s"), "{}", c.message);

    // Unreachable: the reachability check FAILs; this one says why it could not look.
    d.fakes.tenant.set_endpoints_down(true);
    let c = skew(&checks_of(&d, v1::CheckCategory::Tenant).await);
    assert_eq!(status(&c), Skip, "{c:#?}");
    assert!(c.message.contains("connection refused"), "{}", c.message);

    d.fakes.tenant.set_endpoints_down(false);
    d.fakes.tenant.set_clock_offset_ms(30_000);
    let c = skew(&checks_of(&d, v1::CheckCategory::Tenant).await);
    assert_eq!(status(&c), Pass, "{c:#?}");
    d.shutdown().await;
}
