//! The flag-to-request conversions.
use super::cloud_sync::cloud_sync_spec;
use super::*;

fn args() -> CloudSyncSpecArgs {
    CloudSyncSpecArgs {
        enabled: true,
        disabled: false,
        password_hash_sync: false,
        organizational_units: vec![],
        security_groups: vec![],
        delete_threshold: None,
        no_delete_prevention: false,
        notification_email_file: None,
        notification_email_stdin: false,
    }
}

#[test]
fn the_spec_flags_make_the_spec() {
    let dir = tempfile::tempdir().unwrap();
    let email = dir.path().join("email");
    std::fs::write(&email, " ops@example.test \r\nignored\n").unwrap();
    let spec = cloud_sync_spec(&CloudSyncSpecArgs {
        password_hash_sync: true,
        organizational_units: vec!["OU=A,DC=d,DC=test".into()],
        delete_threshold: Some(250),
        notification_email_file: Some(email),
        ..args()
    })
    .unwrap();
    assert_eq!(
        spec,
        v1::CloudSyncSpec {
            enabled: true,
            password_hash_sync: true,
            organizational_units: vec!["OU=A,DC=d,DC=test".into()],
            security_groups: vec![],
            accidental_deletes: Some(v1::AccidentalDeletePrevention {
                disabled: false,
                threshold: 250,
            }),
            notification_email: "ops@example.test".into(),
        }
    );
    // No threshold flag: unset, so the daemon's default (on, 500) applies.
    let spec = cloud_sync_spec(&args()).unwrap();
    assert_eq!(spec.accidental_deletes, None);
    assert_eq!(spec.notification_email, "");
    let spec = cloud_sync_spec(&CloudSyncSpecArgs {
        enabled: false,
        disabled: true,
        no_delete_prevention: true,
        ..args()
    })
    .unwrap();
    assert!(!spec.enabled);
    assert_eq!(
        spec.accidental_deletes,
        Some(v1::AccidentalDeletePrevention {
            disabled: true,
            threshold: 0,
        })
    );
}

#[test]
fn an_empty_or_missing_email_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "\n").unwrap();
    let err = cloud_sync_spec(&CloudSyncSpecArgs {
        notification_email_file: Some(empty),
        ..args()
    })
    .unwrap_err();
    assert!(err.downcast_ref::<super::super::UsageError>().is_some());
    let err = cloud_sync_spec(&CloudSyncSpecArgs {
        notification_email_file: Some(dir.path().join("absent")),
        ..args()
    })
    .unwrap_err();
    assert!(
        format!("{err:#}").starts_with("cannot read notification email file "),
        "{err:#}"
    );
}

/// `ops list --kind` names every kind the contract defines, so a new kind
/// is listable the day it is added (this test fails until it is).
#[test]
fn every_operation_kind_is_a_kind_flag() {
    use clap::ValueEnum;
    let listable: Vec<i32> = super::super::OpKind::value_variants()
        .iter()
        .map(|k| k.proto())
        .collect();
    let mut missing = Vec::new();
    // Kinds are numbered from 1 (0 is UNSPECIFIED); gaps are allowed.
    for value in 1..1000 {
        if let Ok(kind) = v1::OperationKind::try_from(value)
            && !listable.contains(&value)
        {
            missing.push(kind.as_str_name());
        }
    }
    assert!(missing.is_empty(), "no --kind value for {missing:?}");
}

/// `ops list --by --since --until` fill the request's filters; a time is
/// RFC 3339 or a duration ago.
#[test]
fn ops_list_takes_a_caller_and_a_time_range() {
    use clap::Parser;
    let cli = super::super::Cli::try_parse_from([
        "provctl",
        "ops",
        "list",
        "--by",
        "alice",
        "--since",
        "2025-06-01T08:00:00Z",
        "--until",
        "2025-06-01T09:30:00.5Z",
    ])
    .unwrap();
    let Command::Ops(OpsCommand::List {
        by, since, until, ..
    }) = cli.command
    else {
        panic!("not ops list");
    };
    assert_eq!(by.as_deref(), Some("alice"));
    assert_eq!(
        since,
        Some(pbjson_types::Timestamp {
            seconds: 1_748_764_800,
            nanos: 0
        })
    );
    assert_eq!(
        until.map(|t| (t.seconds, t.nanos)),
        Some((1_748_770_200, 500_000_000))
    );

    let now = std::time::UNIX_EPOCH + std::time::Duration::from_secs(10_000);
    let ago = super::super::parse_time_at("2h", now).unwrap();
    assert_eq!((ago.seconds, ago.nanos), (10_000 - 7_200, 0));
    for bad in ["yesterday", "2025-13-01T00:00:00Z", "-1h"] {
        assert!(
            super::super::parse_time_at(bad, now).is_err(),
            "{bad:?} accepted"
        );
    }
    assert!(super::super::parse_time_at("3h", std::time::UNIX_EPOCH).is_err());
}
