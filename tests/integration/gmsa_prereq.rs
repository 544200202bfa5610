//! Verify's gMSA prerequisites against the Samba lab's two DCs: the domain
//! root's well-known reference to the Managed Service Accounts container
//! removed (FAIL with the agent's own error text), then restored to the
//! byte; KDS root keys none of which is usable yet (WARN on each DC, with
//! the time the first becomes usable, once replicated), then a usable one
//! (PASS). Every change is undone before anything is asserted: the checks
//! run in a task whose panic is raised only after the lab is restored.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test that unwraps is asserting

use std::time::{Duration, Instant, UNIX_EPOCH};

use crate::common::fixtures::*;
use crate::common::lab::*;
use crate::tenant::{status, verify};
use provd::backends::directory::{Change, DirectoryError, DirectorySession, Scope};
use provd_proto::v1;
use provd_proto::v1::CheckStatus::{Fail, Pass, Warn};
use tonic::transport::Channel;

const MSA_GUID: &str = "1EB93889E40C45DF9F0C64D23BBB6237";
const OWKO: &str = "otherWellKnownObjects";
const USE_START: &str = "msKds-UseStartTime";

/// Runs Verify's DIRECTORY checks until the checks with `id` satisfy `done`
/// (replication to dc2 takes seconds), for at most 60 s; returns the last.
async fn until(
    channel: Channel,
    id: &'static str,
    done: fn(&[v1::Check]) -> bool,
) -> Vec<v1::Check> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (checks, _) = verify(&channel, &[v1::CheckCategory::Directory], Some(admin())).await;
        let mut found: Vec<v1::Check> = checks.into_iter().filter(|c| c.id == id).collect();
        found.sort_by(|a, b| a.subject.cmp(&b.subject));
        if done(&found) || Instant::now() > deadline {
            return found;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// One lab test at a time: a daemon with the lab's domain, dc1 first (the
/// DC the changes are made on), and an admin session on dc1.
async fn setup() -> (
    tokio::sync::MutexGuard<'static, ()>,
    LabDaemon,
    Box<dyn DirectorySession>,
) {
    let serial = SERIAL.lock().await;
    let lab = daemon().await;
    ok(&add_directory(&lab.channel, admin(), &[]).await.1);
    pin_dc1(&lab.channel).await;
    (serial, lab, admin_session().await)
}

fn all(checks: &[v1::Check], want: v1::CheckStatus) -> bool {
    !checks.is_empty() && checks.iter().all(|c| status(c) == want)
}

/// The domain root's otherWellKnownObjects, sorted.
async fn references(s: &mut dyn DirectorySession) -> Vec<String> {
    let root = s
        .search(&base(), Scope::Base, "(objectClass=*)", &[OWKO])
        .await
        .unwrap()
        .remove(0);
    let mut values = root.all(OWKO).to_vec();
    values.sort();
    values
}

#[tokio::test]
#[ignore = "needs the Samba AD lab (root): deploy/test.sh runs the lab tier"]
async fn a_removed_msa_reference_fails_until_restored_to_the_byte() {
    let (_serial, lab, mut s) = setup().await;
    let channel = lab.channel.clone();
    let found = references(s.as_mut()).await;
    let value = found
        .iter()
        .find(|v| {
            v.to_ascii_uppercase()
                .starts_with(&format!("B:32:{MSA_GUID}:"))
        })
        .expect("the lab's domain root refers to the container")
        .clone();
    let passed = until(channel.clone(), "directory.msa_container", |c| all(c, Pass)).await;
    assert!(all(&passed, Pass), "{passed:#?}");

    // Removed on dc1 (the DC the check reads: pinned first).
    let as_value = vec![value.clone().into_bytes()];
    s.modify(&base(), &[Change::Delete(OWKO.into(), as_value.clone())])
        .await
        .unwrap();
    let seen = tokio::spawn(until(channel.clone(), "directory.msa_container", |c| {
        all(c, Fail)
    }))
    .await;
    s.modify(&base(), &[Change::Add(OWKO.into(), as_value)])
        .await
        .unwrap();
    assert_eq!(references(s.as_mut()).await, found, "restored to the byte");
    until_dc2_agrees(|s| Box::pin(references(s))).await;

    let failed = seen.unwrap();
    assert!(all(&failed, Fail), "{failed:#?}");
    let c = &failed[0];
    assert_eq!(c.subject, var("LAB_DOMAIN"));
    assert!(
        c.message.contains("There is no such object on the server"),
        "{}",
        c.message
    );
    assert!(c.remedy.contains(&value), "{}", c.remedy);
    assert!(
        c.attributes["source"].starts_with("https://learn.microsoft.com/"),
        "{c:#?}"
    );
    let back = until(channel, "directory.msa_container", |c| all(c, Pass)).await;
    assert!(all(&back, Pass), "{back:#?}");
}

/// Each KDS root key's DN and msKds-UseStartTime, sorted.
async fn kds_keys(s: &mut dyn DirectorySession) -> Vec<(String, String)> {
    let keys = match s
        .search(
            &kds_container(),
            Scope::OneLevel,
            "(objectClass=msKds-ProvRootKey)",
            &[USE_START],
        )
        .await
    {
        Ok(keys) => keys,
        Err(DirectoryError::NoSuchObject { .. }) => Vec::new(),
        Err(e) => panic!("{e}"),
    };
    let mut keys: Vec<(String, String)> = keys
        .into_iter()
        .map(|k| {
            let start = k.first(USE_START).unwrap_or_default().to_owned();
            (k.dn, start)
        })
        .collect();
    keys.sort();
    keys
}

async fn set_start(s: &mut dyn DirectorySession, dn: &str, start: &str) {
    let value = vec![start.as_bytes().to_vec()];
    s.modify(dn, &[Change::Replace(USE_START.into(), value)])
        .await
        .unwrap();
}

fn rfc3339(unix_secs: i64) -> String {
    let at = UNIX_EPOCH + Duration::from_secs(unix_secs as u64);
    humantime::format_rfc3339_seconds(at).to_string()
}

#[tokio::test]
#[ignore = "needs the Samba AD lab (root): deploy/test.sh runs the lab tier"]
async fn kds_keys_not_usable_yet_warn_on_every_dc_with_the_time_then_pass() {
    let (_serial, lab, mut s) = setup().await;
    let channel = lab.channel.clone();
    let had_container = s
        .search(&kds_container(), Scope::Base, "(objectClass=*)", &["cn"])
        .await
        .is_ok();
    let found = kds_keys(s.as_mut()).await;
    let now = unix_now();
    let (soon, later) = (now + 2 * 3600, now + 3 * 3600);

    // The keys found start later for a while (restored below), and one of
    // ours starts in 2 hours: no key is usable on any DC.
    for (dn, _) in &found {
        set_start(s.as_mut(), dn, &filetime(later)).await;
    }
    let ours = add_kds_key_from(s.as_mut(), soon).await;
    let seen = tokio::spawn(until(channel.clone(), "directory.kds.effective", |c| {
        c.len() == 2 && all(c, Warn)
    }))
    .await;
    for (dn, start) in &found {
        set_start(s.as_mut(), dn, start).await;
    }
    s.delete(&ours).await.unwrap();
    assert_eq!(kds_keys(s.as_mut()).await, found, "restored");

    let warned = seen.unwrap();
    assert_eq!(warned.len(), 2, "one per DC: {warned:#?}");
    for c in &warned {
        assert_eq!(status(c), Warn, "{c:#?}");
        assert_eq!(c.attributes["domain"], var("LAB_DOMAIN"));
        assert_eq!(c.attributes["usable_at"], rfc3339(soon), "{c:#?}");
        assert!(c.message.contains(&rfc3339(soon)), "{}", c.message);
        assert!(c.remedy.contains("wait until"), "{}", c.remedy);
        assert!(
            c.attributes["source"].contains("create-the-key-distribution-services-kds-root-key"),
            "{c:#?}"
        );
    }
    let subjects: Vec<String> = warned.iter().map(|c| c.subject.to_lowercase()).collect();
    assert_eq!(subjects, [var("LAB_DC1_HOST"), var("LAB_DC2_HOST")]);

    // A usable key: PASS on both DCs. The lab's own when it had one; else
    // ours, while the check looks.
    let usable = found.iter().any(|(_, start)| {
        start
            .parse::<i64>()
            .is_ok_and(|t| t <= filetime(now).parse::<i64>().unwrap())
    });
    let ours = if usable {
        None
    } else {
        Some(add_kds_key(s.as_mut()).await)
    };
    let passed = tokio::spawn(until(channel, "directory.kds.effective", |c| {
        c.len() == 2 && all(c, Pass)
    }))
    .await;
    if let Some(dn) = &ours {
        s.delete(dn).await.unwrap();
    }
    if !had_container {
        let gkds = kds_container().split_once(',').unwrap().1.to_owned();
        s.delete(&kds_container()).await.unwrap();
        s.delete(&gkds).await.unwrap();
    }
    assert_eq!(kds_keys(s.as_mut()).await, found, "as found");
    until_dc2_agrees(|s| Box::pin(kds_keys(s))).await;
    let passed = passed.unwrap();
    assert!(passed.len() == 2 && all(&passed, Pass), "{passed:#?}");
}
