//! One directory session per domain per operation: the whole document
//! binds once, every section after the first borrows that session (and
//! says so in its events), the schema and extended-rights GUIDs are read
//! once, and the next operation binds afresh.

use std::collections::BTreeMap;

use provd_proto::v1;

use super::apply::{apply, document, plan};
use crate::common::hermetic::*;

/// The searches made more than once.
fn repeated(searched: &[(String, String)]) -> Vec<&(String, String)> {
    let mut times: BTreeMap<&(String, String), usize> = BTreeMap::new();
    for search in searched {
        *times.entry(search).or_default() += 1;
    }
    times
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|(s, _)| s)
        .collect()
}

/// The searches under the configuration naming context made more than once.
fn repeated_configuration_reads(searched: &[(String, String)]) -> Vec<&(String, String)> {
    repeated(searched)
        .into_iter()
        .filter(|(b, _)| b.contains("CN=Configuration,"))
        .collect()
}

fn assert_read_once(searched: &[(String, String)]) {
    let twice = repeated(searched);
    assert!(twice.is_empty(), "read twice: {twice:#?} of {searched:#?}");
}

#[tokio::test]
async fn an_apply_binds_once_per_domain_and_reads_the_schema_once() {
    let d = Hermetic::start().await;
    d.make_computer("HOST1");
    let desired = document(&d);
    let directory = &d.fakes.directory;
    let (binds, searches) = (directory.connects().len(), directory.searched().len());

    let (events, op) = apply(&d, &desired).await;
    ok(&op);
    assert_eq!(op.result["changes"], "7", "the whole document was done");
    assert_eq!(directory.connects()[binds..], [DC1], "one bind");
    let searched = &directory.searched()[searches..];
    assert!(
        searched
            .iter()
            .any(|(b, _)| b.starts_with("CN=Extended-Rights,")),
        "the permissions were resolved: {searched:#?}"
    );
    assert_eq!(
        repeated_configuration_reads(searched),
        Vec::<&(String, String)>::new(),
        "schema GUIDs, extended rights, partitions: read once each"
    );
    let connected: Vec<&str> = events
        .iter()
        .filter(|e| e.attributes.get("dc").is_some_and(|dc| dc == DC1))
        .map(|e| e.message.as_str())
        .filter(|m| m.starts_with("connected to") || m.starts_with("using this operation's"))
        .collect();
    assert_eq!(
        connected.first(),
        Some(&"connected to dc1.lab.example.test")
    );
    assert!(
        connected.len() >= 3
            && connected[1..]
                .iter()
                .all(|m| *m == "using this operation's session to dc1.lab.example.test"),
        "{connected:#?}"
    );

    // A plan reads every section over one session too, and its own.
    let binds = directory.connects().len();
    assert!(plan(&d, &desired).await.unwrap().is_empty());
    assert_eq!(directory.connects().len(), binds + 1);

    // The sessions ended with the operation: the next one binds again, to
    // the next DC when the first no longer answers.
    directory.set_reachable(DC1, false);
    let (_, op) = apply(&d, &desired).await;
    ok(&op);
    assert_eq!(directory.connects().last().map(String::as_str), Some(DC2));
    assert_eq!(directory.connects().len(), binds + 2);
    d.shutdown().await;
}

/// An apply that finds everything in place reads each thing once: the gMSA
/// is not read back when nothing was written to it, the plan's permission
/// check does not re-read the account or name its principals, and the
/// schema's gMSA class is checked with one filter.
#[tokio::test]
async fn an_apply_in_place_reads_nothing_twice() {
    let d = Hermetic::start().await;
    d.make_computer("HOST1");
    let desired = document(&d);
    let directory = &d.fakes.directory;
    ok(&apply(&d, &desired).await.1);

    let before = directory.searched().len();
    let (_, op) = apply(&d, &desired).await;
    ok(&op);
    assert_eq!(op.result["changes"], "0", "all in place");
    let searched = &directory.searched()[before..];
    assert_read_once(searched);
    assert!(
        !searched.iter().any(|(_, f)| f.starts_with("(objectSid=")),
        "no principal named by SID: {searched:#?}"
    );

    // A second host (a fresh daemon on the same domain, as in a fleet)
    // finds the gMSA and the ACEs the first one made: nothing read twice.
    let mut directory_only = v1::DesiredState {
        domains: desired.domains.clone(),
        service_account: desired.service_account.clone(),
        ..Default::default()
    };
    for domain in &mut directory_only.domains {
        domain.cloud_sync = None;
    }
    let fakes = Fakes {
        directory: directory.clone(),
        ..Fakes::default()
    };
    let second = Hermetic::start_with(fakes).await;
    let before = directory.searched().len();
    let (_, op) = apply(&second, &directory_only).await;
    ok(&op);
    let searched = &directory.searched()[before..];
    assert_read_once(searched);
    second.shutdown().await;
    d.shutdown().await;
}
