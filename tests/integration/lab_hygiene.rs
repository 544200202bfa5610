//! The lab tier leaves no orphaned ACE on the domain root. The DC keeps
//! the ACEs of a deleted account, so a test that deletes a gMSA without
//! removing its grants (`fixtures::delete_gmsa` does both) adds about 500
//! bytes to a DACL that holds at most 65535: a few hundred runs later every
//! grant fails. `deploy/test.sh` runs this last, after every lab stage, on a
//! lab it reset at the start; the lab tier itself skips it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test that unwraps is asserting

use std::collections::BTreeMap;

use crate::common::fixtures::*;
use crate::common::lab::*;
use provd::backends::directory::{DirectoryError, SD_FLAGS_DACL, Scope};
use provd_sd::{SecurityDescriptor, Sid};

#[tokio::test]
#[ignore = "deploy/test.sh runs it after every lab stage (needs the Samba AD lab)"]
async fn no_orphaned_ace_on_the_domain_root() {
    let domain: Sid = var("LAB_DOMAIN_SID").parse().unwrap();
    let mut s = admin_session().await;
    let bytes = s
        .read_security_descriptor(&base(), SD_FLAGS_DACL)
        .await
        .unwrap()
        .unwrap();
    let dacl = SecurityDescriptor::parse(&bytes).unwrap().dacl.unwrap();
    // Explicit ACEs per trustee made after provisioning (RID 1000 and up).
    let mut per_trustee: BTreeMap<String, usize> = BTreeMap::new();
    for ace in dacl.aces.iter().filter(|a| !a.is_inherited()) {
        if let Some(sid) = ace
            .sid()
            .filter(|s| s.rid_in(&domain).is_some_and(|r| r >= 1000))
        {
            *per_trustee.entry(sid.to_string()).or_default() += 1;
        }
    }
    let mut orphans = Vec::new();
    for (sid, aces) in &per_trustee {
        match s
            .search(
                &format!("<SID={sid}>"),
                Scope::Base,
                "(objectClass=*)",
                &["cn"],
            )
            .await
        {
            Ok(found) if !found.is_empty() => {}
            Ok(_) | Err(DirectoryError::NoSuchObject { .. }) => {
                orphans.push(format!("{sid} ({aces} ACEs)"));
            }
            Err(e) => panic!("looking up {sid}: {e}"),
        }
    }
    s.unbind().await;
    assert!(
        orphans.is_empty(),
        "the domain root DACL ({} bytes, {} ACEs) holds ACEs of deleted accounts: {}; \
         a test deleted a gMSA without removing its grants (use fixtures::delete_gmsa)",
        dacl.encoded_len(),
        dacl.aces.len(),
        orphans.join(", ")
    );
}
