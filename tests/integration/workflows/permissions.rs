//! GrantPermissions on the hermetic tier: for each profile, PLAN writes
//! nothing, APPLY lands exactly the planned ACEs in the fake's DACL, APPLY
//! again does no work, REMOVE takes exactly those ACEs away; other
//! trustees' ACEs are kept; a DACL the account may not write; bad profiles,
//! modes, OUs and trustees.

use super::support_ta::*;
use crate::common::hermetic::*;
use provd::testkit::WriteOp;
use provd_proto::v1;
use provd_proto::v1::{EventKind, GrantMode, PermissionProfile};
use provd_sd::{Ace, Sid};
use tonic::Code;

fn request(profiles: &[i32], mode: i32, trustee: &str) -> v1::GrantPermissionsRequest {
    v1::GrantPermissionsRequest {
        domain: DOMAIN.into(),
        profiles: profiles.to_vec(),
        mode,
        trustee: trustee.into(),
        credential: Some(admin()),
        ..Default::default()
    }
}

async fn grant_with(
    d: &Hermetic,
    request: v1::GrantPermissionsRequest,
) -> Result<(Vec<v1::OperationEvent>, v1::Operation), tonic::Status> {
    let op = d
        .service_accounts()
        .grant_permissions(request)
        .await?
        .into_inner()
        .operation;
    Ok(d.finish(op).await)
}

/// (object, ace, action, profiles) of each AceChange event of step "plan".
fn planned(events: &[v1::OperationEvent]) -> Vec<(String, String, String, String)> {
    let mut v: Vec<_> = events
        .iter()
        .filter(|e| e.step == "plan" && e.attributes.contains_key("ace"))
        .map(|e| {
            let a = &e.attributes;
            let get = |k: &str| a.get(k).cloned().unwrap_or_default();
            (get("object"), get("ace"), get("action"), get("profiles"))
        })
        .collect();
    v.sort();
    v
}

fn planned_aces(events: &[v1::OperationEvent]) -> Vec<Ace> {
    planned(events)
        .iter()
        .map(|(_, ace, _, _)| Ace::from_sddl(ace, None).unwrap())
        .collect()
}

/// A computer to be the trustee, and its SID.
fn trustee(d: &Hermetic, name: &str) -> Sid {
    let dn = d.make_computer(name);
    sid_of(d, &dn)
}

/// One profile through PLAN, APPLY, APPLY again and, with `remove`,
/// PLAN_REMOVE and REMOVE on the domain root, checked against the fake's
/// DACL at each step.
async fn round_trip(profile: PermissionProfile, expected: usize, remove: bool) {
    let d = Hermetic::start().await;
    let sid = trustee(&d, "TRUSTEE1");
    let (dir, base) = (d.fakes.directory.clone(), d.fakes.directory.base_dn());
    let before = dir.security_descriptor(&base).unwrap();
    let n = expected.to_string();

    let (plan, op) = d.grant(&[profile], GrantMode::Plan, "TRUSTEE1$").await;
    ok(&op);
    assert_eq!(
        (op.result["added"].as_str(), op.result["objects"].as_str()),
        (n.as_str(), "1")
    );
    assert_eq!(planned(&plan).len(), expected, "{plan:#?}");
    for (object, ace, action, profiles) in planned(&plan) {
        assert_eq!((object.as_str(), action.as_str()), (base.as_str(), "add"));
        assert!(
            profiles.split(',').any(|p| p == profile.as_str_name()),
            "{profiles}"
        );
        assert!(
            ace.ends_with(&format!(";{sid})")),
            "trustee as a SID string: {ace}"
        );
    }
    assert!(dir.writes().is_empty(), "PLAN wrote");
    assert_eq!(dir.security_descriptor(&base).unwrap(), before);

    let (apply, op) = d.grant(&[profile], GrantMode::Apply, "TRUSTEE1$").await;
    ok(&op);
    assert_eq!(op.result["added"], n);
    assert_eq!(planned(&apply), planned(&plan), "APPLY does as planned");
    let mut landed = aces_for(&d, &base, &sid);
    let mut wanted = planned_aces(&plan);
    landed.sort_by_key(|a| format!("{a:?}"));
    wanted.sort_by_key(|a| format!("{a:?}"));
    assert_eq!(landed, wanted, "exactly the planned ACEs are in the DACL");
    let after = dir.security_descriptor(&base).unwrap();
    assert_eq!((after.owner, after.group), (before.owner, before.group));
    let writes = dir.writes();
    assert_eq!(writes.len(), 1);
    assert_eq!(writes[0].op, WriteOp::WriteSecurityDescriptor);
    assert!(succeeded(&apply, "confirm"));

    let (again, op) = d.grant(&[profile], GrantMode::Apply, "TRUSTEE1$").await;
    ok(&op);
    assert_eq!(
        (op.result["added"].as_str(), op.result["unchanged"].as_str()),
        ("0", n.as_str())
    );
    assert!(skipped(&again, "plan"));
    assert!(
        !steps_started(&again)
            .iter()
            .any(|s| s == "write" || s == "confirm")
    );
    assert_eq!(dir.writes().len(), 1, "no new work");
    if !remove {
        return d.shutdown().await;
    }

    let (plan_remove, op) = d
        .grant(&[profile], GrantMode::PlanRemove, "TRUSTEE1$")
        .await;
    ok(&op);
    assert_eq!(op.result["removed"], n);
    assert!(
        planned(&plan_remove)
            .iter()
            .all(|(_, _, action, _)| action == "remove")
    );
    assert_eq!(dir.writes().len(), 1, "PLAN_REMOVE wrote");

    let (_, op) = d.grant(&[profile], GrantMode::Remove, "TRUSTEE1$").await;
    ok(&op);
    assert_eq!(op.result["removed"], n);
    assert!(aces_for(&d, &base, &sid).is_empty());
    assert_eq!(
        dir.security_descriptor(&base).unwrap(),
        before,
        "the DACL is as it was"
    );
    d.shutdown().await;
}

#[tokio::test]
async fn basic_read_plan_and_apply() {
    round_trip(PermissionProfile::BasicRead, 8, false).await;
}

#[tokio::test]
async fn basic_read_remove_takes_all_eight_aces() {
    round_trip(PermissionProfile::BasicRead, 8, true).await;
}

#[tokio::test]
async fn password_hash_sync_plan_and_apply() {
    round_trip(PermissionProfile::PasswordHashSync, 2, false).await;
}

#[tokio::test]
async fn password_hash_sync_remove_takes_both_aces() {
    round_trip(PermissionProfile::PasswordHashSync, 2, true).await;
}

#[tokio::test]
async fn password_writeback_round_trip() {
    round_trip(PermissionProfile::PasswordWriteBack, 4, true).await;
}

#[tokio::test]
async fn hybrid_exchange_round_trip() {
    round_trip(PermissionProfile::HybridExchange, 4, true).await;
}

#[tokio::test]
async fn user_group_create_delete_round_trip() {
    round_trip(PermissionProfile::UserGroupCreateDelete, 4, true).await;
}

#[tokio::test]
async fn consistency_guid_round_trip() {
    round_trip(PermissionProfile::ConsistencyGuid, 2, true).await;
}

#[tokio::test]
async fn exchange_public_folder_without_the_exchange_schema_warns_and_adds_nothing() {
    let d = Hermetic::start().await;
    trustee(&d, "TRUSTEE1");
    let (events, op) = d
        .grant(
            &[PermissionProfile::ExchangeMailPublicFolder],
            GrantMode::Apply,
            "TRUSTEE1$",
        )
        .await;
    ok(&op);
    assert_eq!(op.result["added"], "0");
    let warned = events_of(&events, "resolve", EventKind::Warning);
    assert!(
        warned.iter().any(|e| e.message.contains("publicFolder")),
        "{events:#?}"
    );
    assert!(d.fakes.directory.writes().is_empty());
    d.shutdown().await;
}

#[tokio::test]
async fn remove_takes_only_that_trustees_profile_aces_and_keeps_the_rest_in_order() {
    let d = Hermetic::start().await;
    let (s1, s2) = (trustee(&d, "TRUSTEE1"), trustee(&d, "TRUSTEE2"));
    let base = d.fakes.directory.base_dn();
    let pwb = [PermissionProfile::PasswordWriteBack];
    ok(&d.grant(&pwb, GrantMode::Apply, "TRUSTEE1$").await.1);
    ok(&d
        .grant(
            &[PermissionProfile::PasswordHashSync],
            GrantMode::Apply,
            "TRUSTEE1$",
        )
        .await
        .1);
    ok(&d.grant(&pwb, GrantMode::Apply, "TRUSTEE2$").await.1);
    let full = dacl(&d, &base);
    let t1_before = aces_for(&d, &base, &s1);
    assert_eq!(t1_before.len(), 6);

    let (events, op) = d.grant(&pwb, GrantMode::Remove, "TRUSTEE1$").await;
    ok(&op);
    assert_eq!(op.result["removed"], "4");
    let taken = planned_aces(&events);
    let expected: Vec<Ace> = full
        .iter()
        .filter(|a| !taken.contains(a))
        .cloned()
        .collect();
    assert_eq!(dacl(&d, &base), expected, "everything else kept, in order");
    assert_eq!(
        aces_for(&d, &base, &s1).len(),
        2,
        "TRUSTEE1 keeps its hash-sync ACEs"
    );
    assert_eq!(aces_for(&d, &base, &s2).len(), 4, "TRUSTEE2 is untouched");

    // Nothing left to remove: no work.
    let (events, op) = d.grant(&pwb, GrantMode::Remove, "TRUSTEE1$").await;
    ok(&op);
    assert_eq!(
        (
            op.result["removed"].as_str(),
            op.result["unchanged"].as_str()
        ),
        ("0", "4")
    );
    assert!(skipped(&events, "plan"));
    d.shutdown().await;
}

#[tokio::test]
async fn remove_keeps_an_ace_another_held_profile_needs() {
    let d = Hermetic::start().await;
    let sid = trustee(&d, "TRUSTEE1");
    let base = d.fakes.directory.base_dn();
    let both = [
        PermissionProfile::BasicRead,
        PermissionProfile::PasswordHashSync,
    ];
    let (_, op) = d.grant(&both, GrantMode::Apply, "TRUSTEE1$").await;
    ok(&op);
    assert_eq!(op.result["added"], "9", "Get-Changes is shared, added once");
    let (events, op) = d
        .grant(
            &[PermissionProfile::PasswordHashSync],
            GrantMode::Remove,
            "TRUSTEE1$",
        )
        .await;
    ok(&op);
    assert_eq!(op.result["removed"], "1", "only Get-Changes-All goes");
    assert!(
        events
            .iter()
            .any(|e| e.step == "plan" && e.message.contains("keeping")),
        "{events:#?}"
    );
    assert_eq!(aces_for(&d, &base, &sid).len(), 8);
    d.shutdown().await;
}

#[tokio::test]
async fn a_dacl_the_account_may_not_write_is_permission_denied_naming_it() {
    let d = Hermetic::start().await;
    let sid = trustee(&d, "TRUSTEE1");
    let base = d.fakes.directory.base_dn();
    let before = d.fakes.directory.security_descriptor(&base).unwrap();
    d.fakes
        .directory
        .deny_write(&base, Some(WriteOp::WriteSecurityDescriptor));
    let pwb = [PermissionProfile::PasswordWriteBack];
    let (_, op) = d.grant(&pwb, GrantMode::Apply, "TRUSTEE1$").await;
    let error = failed_with(&op, "PERMISSION_DENIED", "write");
    assert_contains(&error.message, &[&base]);
    assert_eq!(
        d.fakes.directory.security_descriptor(&base).unwrap(),
        before
    );
    assert!(aces_for(&d, &base, &sid).is_empty());

    // Reading and planning need no write right.
    let (_, op) = d.grant(&pwb, GrantMode::Plan, "TRUSTEE1$").await;
    ok(&op);
    assert_eq!(op.result["added"], "4");
    d.shutdown().await;
}

/// A domain root DACL with room for fewer bytes than the profile adds:
/// PLAN and APPLY both fail in "plan" with DACL_FULL naming the object and
/// the sizes, and nothing is written. The remedy the message gives (REMOVE
/// with an old trustee's SID) makes room, and then the grant lands.
#[tokio::test]
async fn a_dacl_that_would_outgrow_65535_bytes_is_dacl_full_and_nothing_is_written() {
    let d = Hermetic::start().await;
    let sid = trustee(&d, "TRUSTEE1");
    let old = trustee(&d, "TRUSTEE2");
    let dir = d.fakes.directory.clone();
    let base = dir.base_dn();
    let pwb = [PermissionProfile::PasswordWriteBack];
    let size = |d: &Hermetic| {
        let sd = d.fakes.directory.security_descriptor(&base).unwrap();
        sd.dacl.unwrap().encoded_len()
    };
    let empty = size(&d);
    ok(&d.grant(&pwb, GrantMode::Apply, "TRUSTEE2$").await.1);
    let profile_bytes = size(&d) - empty;

    // Fill with ACEs of accounts no object has (as a DC keeps them after a
    // delete) until the profile no longer fits.
    let mut sd = dir.security_descriptor(&base).unwrap();
    let mut dacl = sd.dacl.clone().unwrap();
    let mut rid = 90_000;
    while dacl.encoded_len() + profile_bytes <= usize::from(u16::MAX) {
        let gone: Sid = format!("{}-{rid}", dir.domain_sid()).parse().unwrap();
        dacl.aces.push(Ace::allowed(0, 0x10, gone));
        rid += 1;
    }
    let full = dacl.encoded_len();
    let aces = dacl.aces.len();
    sd.set_dacl(Some(dacl));
    assert!(dir.seed_security_descriptor(&base, &sd));
    let before = dir.security_descriptor(&base).unwrap();
    let writes = dir.writes().len();

    for mode in [GrantMode::Plan, GrantMode::Apply] {
        let (_, op) = d.grant(&pwb, mode, "TRUSTEE1$").await;
        let error = failed_with(&op, "FAILED_PRECONDITION", "plan");
        assert_eq!(error.reason, "DACL_FULL", "{}", error.message);
        let needed = (full + profile_bytes).to_string();
        let held = format!("{aces} ACEs in {full} bytes");
        assert_contains(
            &error.message,
            &[&base, &held, &needed, "65535", "Nothing was written"],
        );
    }
    assert_eq!(dir.writes().len(), writes, "no write at all");
    assert_eq!(dir.security_descriptor(&base).unwrap(), before);
    assert!(aces_for(&d, &base, &sid).is_empty());

    let (_, op) = d.grant(&pwb, GrantMode::Remove, &old.to_string()).await;
    ok(&op);
    ok(&d.grant(&pwb, GrantMode::Apply, "TRUSTEE1$").await.1);
    assert_eq!(aces_for(&d, &base, &sid).len(), 4);
    assert_eq!(size(&d), full);
    d.shutdown().await;
}

#[tokio::test]
async fn bad_profiles_modes_and_ous_are_named_at_the_call() {
    let d = Hermetic::start().await;
    let pwb = PermissionProfile::PasswordWriteBack as i32;
    let apply = GrantMode::Apply as i32;
    let cases: Vec<(v1::GrantPermissionsRequest, Vec<&str>)> = vec![
        (request(&[], apply, "T$"), vec!["profiles"]),
        (
            request(&[PermissionProfile::Unspecified as i32], apply, "T$"),
            vec!["profiles[0]"],
        ),
        (request(&[pwb, 99], apply, "T$"), vec!["profiles[1]"]),
        (
            request(&[pwb], GrantMode::Unspecified as i32, "T$"),
            vec!["mode"],
        ),
        (request(&[pwb], 42, "T$"), vec!["mode"]),
        (request(&[pwb], apply, " "), vec!["trustee"]),
        (
            v1::GrantPermissionsRequest {
                organizational_units: vec!["OU=x,DC=evil,DC=test".into()],
                ..request(&[pwb], apply, "T$")
            },
            vec!["organizational_units[0]"],
        ),
        (
            v1::GrantPermissionsRequest {
                credential: None,
                ..request(&[pwb], apply, "T$")
            },
            vec!["credential"],
        ),
        (
            v1::GrantPermissionsRequest {
                domain: "a b".into(),
                ..request(&[pwb], apply, "T$")
            },
            vec!["domain"],
        ),
    ];
    for (req, expected) in cases {
        let err = grant_with(&d, req).await.unwrap_err();
        assert_fields(&err, &expected);
    }
    assert_eq!(started(&d, v1::OperationKind::GrantPermissions).await, 0);
    d.shutdown().await;
}

#[tokio::test]
async fn an_unknown_trustee_is_not_found_and_no_trustee_at_all_is_a_precondition() {
    let d = Hermetic::start().await;
    let pwb = [PermissionProfile::PasswordWriteBack];
    let (_, op) = d.grant(&pwb, GrantMode::Apply, "NOSUCH$").await;
    let error = failed_with(&op, "NOT_FOUND", "resolve");
    assert_contains(&error.message, &["NOSUCH$"]);
    assert!(d.fakes.directory.writes().is_empty());

    // No trustee named and no recorded account: refused at the call.
    let err = grant_with(&d, request(&[pwb[0] as i32], GrantMode::Plan as i32, ""))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{}", err.message());
    assert!(err.message().contains("CreateGmsa"), "{}", err.message());
    d.shutdown().await;
}

#[tokio::test]
async fn the_trustee_defaults_to_the_recorded_gmsa_and_may_be_a_sid() {
    let d = Hermetic::start().await;
    d.make_computer("AGENT1");
    let (_, op) = d.create_gmsa(&["AGENT1$"]).await;
    ok(&op);
    let gmsa: Sid = op.result["sid"].parse().unwrap();
    let base = d.fakes.directory.base_dn();
    let (_, op) = d
        .grant(&[PermissionProfile::PasswordHashSync], GrantMode::Apply, "")
        .await;
    ok(&op);
    assert_eq!(aces_for(&d, &base, &gmsa).len(), 2);

    let other = trustee(&d, "TRUSTEE1");
    let (_, op) = d
        .grant(
            &[PermissionProfile::PasswordHashSync],
            GrantMode::Apply,
            &other.to_string(),
        )
        .await;
    ok(&op);
    assert_eq!(aces_for(&d, &base, &other).len(), 2);
    d.shutdown().await;
}

#[tokio::test]
async fn ou_targets_get_the_descendant_aces_and_the_root_keeps_this_object_only_rights() {
    let d = Hermetic::start().await;
    let sid = trustee(&d, "TRUSTEE1");
    let base = d.fakes.directory.base_dn();
    let ou = format!("OU=Sync,{base}");
    d.fakes
        .directory
        .seed_object(&ou, &[("objectClass", text("organizationalUnit"))])
        .unwrap();
    let req = v1::GrantPermissionsRequest {
        organizational_units: vec![ou.clone()],
        ..request(
            &[PermissionProfile::PasswordWriteBack as i32],
            GrantMode::Apply as i32,
            "TRUSTEE1$",
        )
    };
    let (events, op) = grant_with(&d, req).await.unwrap();
    ok(&op);
    assert_eq!(
        (op.result["added"].as_str(), op.result["objects"].as_str()),
        ("4", "2")
    );
    assert!(
        events
            .iter()
            .any(|e| e.message.contains("go on the domain root")),
        "{events:#?}"
    );
    let explicit = |dn: &str| {
        aces_for(&d, dn, &sid)
            .into_iter()
            .filter(|a| a.flags & provd_sd::INHERITED_ACE == 0)
            .count()
    };
    assert_eq!(explicit(&ou), 3, "reset password, lockoutTime, pwdLastSet");
    assert_eq!(explicit(&base), 1, "Unexpire Password");
    let written: Vec<_> = d
        .fakes
        .directory
        .writes()
        .into_iter()
        .map(|w| w.dn.to_ascii_lowercase())
        .collect();
    assert!(
        written.contains(&ou.to_ascii_lowercase()) && written.contains(&base.to_ascii_lowercase())
    );
    d.shutdown().await;
}

#[tokio::test]
async fn all_profiles_apply_and_remove_restore_the_dacl_byte_for_byte() {
    let d = Hermetic::start().await;
    trustee(&d, "TRUSTEE1");
    let base = d.fakes.directory.base_dn();
    let before = d.fakes.directory.security_descriptor(&base).unwrap();
    let all = [PermissionProfile::All];
    let (_, op) = d.grant(&all, GrantMode::Apply, "TRUSTEE1$").await;
    ok(&op);
    let added: usize = op.result["added"].parse().unwrap();
    assert_eq!(
        added,
        8 + 1 + 4 + 4 + 4 + 2,
        "every profile's ACEs, shared ones once"
    );
    assert_eq!(
        dacl(&d, &base).len(),
        before.dacl.as_ref().unwrap().aces.len() + added
    );
    let (_, op) = d.grant(&all, GrantMode::Remove, "TRUSTEE1$").await;
    ok(&op);
    assert_eq!(op.result["removed"], added.to_string());
    assert_eq!(
        d.fakes.directory.security_descriptor(&base).unwrap(),
        before
    );
    d.shutdown().await;
}

/// Another writer, who read the domain root's DACL before this grant wrote
/// it, writes it back afterwards: the confirm step finds the ACEs gone,
/// warns, and the grant reads, plans and writes again. Undone every time,
/// the grant ends ABORTED (a conflict a retry may clear), never INTERNAL.
#[tokio::test]
async fn a_dacl_write_another_writer_undoes_is_written_again() {
    let d = Hermetic::start().await;
    let sid = trustee(&d, "TRUSTEE1");
    let (dir, base) = (d.fakes.directory.clone(), d.fakes.directory.base_dn());
    dir.undo_next_sd_write(&base);
    let basic = [PermissionProfile::BasicRead];
    let (events, op) = d.grant(&basic, GrantMode::Apply, "TRUSTEE1$").await;
    ok(&op);
    let warnings = events_of(&events, "confirm", EventKind::Warning);
    assert!(
        warnings
            .iter()
            .any(|e| e.message.contains("did not keep the change")),
        "{warnings:?}"
    );
    assert_eq!(dir.writes().len(), 2, "written, undone, written again");
    assert_eq!(aces_for(&d, &base, &sid).len(), 8);

    let other = trustee(&d, "TRUSTEE2");
    for _ in 0..3 {
        dir.undo_next_sd_write(&base);
    }
    let (_, op) = d.grant(&basic, GrantMode::Apply, "TRUSTEE2$").await;
    let error = failed_with(&op, "ABORTED", "confirm");
    assert!(error.message.contains("3 attempts"), "{}", error.message);
    assert!(aces_for(&d, &base, &other).is_empty());
}
