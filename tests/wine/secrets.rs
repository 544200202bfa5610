//! The secret scan of the Wine path: provd.exe's log file, every file of its
//! state directory (the redb store) and every event of every operation it
//! recorded, searched for each secret the run handled — the tokens and
//! device codes the tenant issued, every secret value PUT to Graph, the
//! lab admin's password and the notification email.

use std::path::{Path, PathBuf};

use provd_proto::v1;
use provd_proto::v1::operations_service_client::OperationsServiceClient;
use tonic::transport::Channel;

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Every event of every operation, as text (messages and attributes) with
/// the operations' results and errors.
async fn recorded(channel: &Channel) -> (usize, String) {
    let mut ops = OperationsServiceClient::new(channel.clone());
    let mut text = String::new();
    let mut count = 0;
    let mut page_token = String::new();
    loop {
        let page = ops
            .list_operations(v1::ListOperationsRequest {
                page_size: 100,
                page_token: page_token.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        for op in page.operations {
            count += 1;
            let (events, op) = crate::common::finish(channel, op).await;
            text.push_str(&format!("{op:?}\n"));
            for e in events {
                text.push_str(&format!("{e:?}\n"));
            }
        }
        if page.next_page_token.is_empty() {
            return (count, text);
        }
        page_token = page.next_page_token;
    }
}

/// Asserts no needle is in provd's log, its state files or its events.
pub async fn assert_none_recorded(dir: &Path, channel: &Channel, needles: &[String]) {
    assert!(
        needles.iter().all(|n| n.len() >= 8),
        "needles too short to mean anything"
    );
    let log = std::fs::read(dir.join("provd.log")).unwrap();
    assert!(log.len() > 1000, "provd.log is suspiciously short");
    let mut sources: Vec<(String, Vec<u8>)> = vec![("provd.log".into(), log)];
    let state = files(&dir.join("state"));
    assert!(!state.is_empty(), "no state files under {}", dir.display());
    for file in state {
        sources.push((file.display().to_string(), std::fs::read(&file).unwrap()));
    }
    let (ops, events) = recorded(channel).await;
    assert!(ops >= 5, "only {ops} operations recorded");
    sources.push((
        format!("the events of {ops} operations"),
        events.into_bytes(),
    ));
    let holds =
        |bytes: &[u8], needle: &str| bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
    // The search finds what is there: the log's start line, the events'
    // cloud sync step (so a miss below means absent, not unread).
    assert!(holds(&sources[0].1, "provd serving"), "provd.log unread");
    assert!(
        holds(&sources[sources.len() - 1].1, "put-secrets"),
        "events unread"
    );
    for (name, bytes) in &sources {
        for needle in needles {
            assert!(
                !holds(bytes, needle),
                "{name} holds a secret ({}…)",
                &needle[..4]
            );
        }
    }
}
