//! Helpers shared by the hermetic tests of the directory, DC, service
//! account and permission workflows: field names out of a BadRequest, event
//! filters, SIDs and DACLs out of the fake directory.
#![allow(dead_code)]

use crate::common::hermetic::*;
use provd_proto::v1;
use std::collections::BTreeSet;

use provd_sd::{Ace, SecurityDescriptor, Sid};
use tonic_types::StatusExt;

/// The fields a google.rpc.BadRequest detail of `status` names, in order.
pub fn fields(status: &tonic::Status) -> Vec<String> {
    status
        .get_error_details()
        .bad_request()
        .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
        .unwrap_or_default()
}

/// Asserts `status` is INVALID_ARGUMENT naming exactly `expected`.
pub fn assert_fields(status: &tonic::Status, expected: &[&str]) {
    assert_eq!(
        status.code(),
        tonic::Code::InvalidArgument,
        "{}",
        status.message()
    );
    assert_eq!(fields(status), expected, "{}", status.message());
}

pub fn kind(e: &v1::OperationEvent) -> v1::EventKind {
    v1::EventKind::try_from(e.kind).unwrap()
}

/// Events of `step` of `kind`.
pub fn events_of<'a>(
    events: &'a [v1::OperationEvent],
    step: &str,
    k: v1::EventKind,
) -> Vec<&'a v1::OperationEvent> {
    events
        .iter()
        .filter(|e| e.step == step && kind(e) == k)
        .collect()
}

/// Whether `step` ended with `k` (STEP_SUCCEEDED, STEP_SKIPPED).
pub fn step_is(events: &[v1::OperationEvent], step: &str, k: v1::EventKind) -> bool {
    !events_of(events, step, k).is_empty()
}

pub fn skipped(events: &[v1::OperationEvent], step: &str) -> bool {
    step_is(events, step, v1::EventKind::StepSkipped)
}

pub fn succeeded(events: &[v1::OperationEvent], step: &str) -> bool {
    step_is(events, step, v1::EventKind::StepSucceeded)
}

/// The steps started, in order.
pub fn steps_started(events: &[v1::OperationEvent]) -> Vec<String> {
    events
        .iter()
        .filter(|e| kind(e) == v1::EventKind::StepStarted)
        .map(|e| e.step.clone())
        .collect()
}

pub fn warnings(events: &[v1::OperationEvent]) -> Vec<&v1::OperationEvent> {
    events
        .iter()
        .filter(|e| kind(e) == v1::EventKind::Warning)
        .collect()
}

/// (kind, dc) of every event carrying a "dc" attribute.
pub fn dc_events(events: &[v1::OperationEvent]) -> Vec<(v1::EventKind, String)> {
    events
        .iter()
        .filter_map(|e| e.attributes.get("dc").map(|dc| (kind(e), dc.clone())))
        .collect()
}

/// The objectSid of `dn` in the fake.
pub fn sid_of(d: &Hermetic, dn: &str) -> Sid {
    let entry = d.fakes.directory.entry(dn).expect("object exists");
    Sid::from_bytes(entry.first_bin("objectSid").expect("objectSid")).unwrap()
}

/// The explicit and inherited ACEs of `dn`'s DACL in the fake.
pub fn dacl(d: &Hermetic, dn: &str) -> Vec<Ace> {
    d.fakes
        .directory
        .security_descriptor(dn)
        .and_then(|sd| sd.dacl)
        .map(|acl| acl.aces)
        .unwrap_or_default()
}

/// The ACEs of `dn`'s DACL for `sid`.
pub fn aces_for(d: &Hermetic, dn: &str, sid: &Sid) -> Vec<Ace> {
    dacl(d, dn)
        .into_iter()
        .filter(|a| a.sid() == Some(sid))
        .collect()
}

pub async fn list_directories(d: &Hermetic) -> Vec<v1::Directory> {
    d.directories()
        .list_directories(v1::ListDirectoriesRequest {})
        .await
        .unwrap()
        .into_inner()
        .directories
}

pub async fn get_priority(d: &Hermetic) -> v1::GetPriorityResponse {
    d.dcs()
        .get_priority(v1::GetPriorityRequest {
            domain: DOMAIN.into(),
        })
        .await
        .unwrap()
        .into_inner()
}

/// Every operation of `k`, newest first.
pub async fn operations_of(d: &Hermetic, k: v1::OperationKind) -> Vec<v1::Operation> {
    d.operations()
        .list_operations(v1::ListOperationsRequest {
            kind: k as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .operations
}

/// How many operations of `k` were started.
pub async fn started(d: &Hermetic, k: v1::OperationKind) -> usize {
    operations_of(d, k).await.len()
}

/// Every file under `dir`.
pub fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Asserts `secret` is in no file of the daemon's state directory.
pub fn assert_not_stored(d: &Hermetic, secret: &str) {
    for file in walk(&d.h.dir.path().join("state")) {
        let bytes = std::fs::read(&file).unwrap();
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{secret:?} is stored in {}",
            file.display()
        );
    }
}

/// Asserts `secret` appears in no event or in the operation.
pub fn assert_not_echoed(events: &[v1::OperationEvent], op: &v1::Operation, secret: &str) {
    for e in events {
        assert!(!e.message.contains(secret), "{e:?}");
        assert!(e.attributes.values().all(|v| !v.contains(secret)), "{e:?}");
    }
    assert!(!format!("{op:?}").contains(secret), "{op:?}");
}

/// Asserts `op` failed with `code` in `step`; returns its error.
pub fn failed_with(op: &v1::Operation, code: &str, step: &str) -> v1::OperationError {
    let error = failed(op);
    assert_eq!(
        (error.code.as_str(), error.step.as_str()),
        (code, step),
        "{}",
        error.message
    );
    error
}

/// Asserts `text` contains each of `parts`.
pub fn assert_contains(text: &str, parts: &[&str]) {
    for part in parts {
        assert!(text.contains(part), "{part:?} not in {text:?}");
    }
}

/// GetServiceAccount for the recorded account's domain.
pub async fn service_account(
    d: &Hermetic,
    credential: Option<v1::Credential>,
) -> Result<v1::GetServiceAccountResponse, tonic::Status> {
    Ok(d.service_accounts()
        .get_service_account(v1::GetServiceAccountRequest {
            domain: String::new(),
            credential,
        })
        .await?
        .into_inner())
}

// ---------------------------------------------------------------- gMSAs

pub fn gmsa_request(name: &str, principals: &[&str]) -> v1::CreateGmsaRequest {
    v1::CreateGmsaRequest {
        name: name.into(),
        domain: DOMAIN.into(),
        principals_allowed_to_retrieve_password: principals.iter().map(|p| (*p).into()).collect(),
        credential: Some(admin()),
        ..Default::default()
    }
}

/// The default request changed by `f`.
pub fn gmsa_with(f: impl FnOnce(&mut v1::CreateGmsaRequest)) -> v1::CreateGmsaRequest {
    let mut r = gmsa_request("", &["AGENT1$"]);
    f(&mut r);
    r
}

pub async fn create(
    d: &Hermetic,
    r: v1::CreateGmsaRequest,
) -> (Vec<v1::OperationEvent>, v1::Operation) {
    let op = d
        .service_accounts()
        .create_gmsa(r)
        .await
        .unwrap()
        .into_inner();
    d.finish(op.operation).await
}

pub fn custom(name: &str, host: &str) -> v1::UseCustomGmsaRequest {
    v1::UseCustomGmsaRequest {
        name: name.into(),
        domain: DOMAIN.into(),
        credential: Some(admin()),
        host_account: host.into(),
        request_id: String::new(),
    }
}

pub async fn use_custom(
    d: &Hermetic,
    r: v1::UseCustomGmsaRequest,
) -> (Vec<v1::OperationEvent>, v1::Operation) {
    let op = d
        .service_accounts()
        .use_custom_gmsa(r)
        .await
        .unwrap()
        .into_inner();
    d.finish(op.operation).await
}

pub async fn configured(d: &Hermetic) -> bool {
    service_account(d, None).await.unwrap().configured
}

/// The SIDs msDS-GroupMSAMembership of `dn` allows.
pub fn allowed(d: &Hermetic, dn: &str) -> BTreeSet<Sid> {
    let entry = d.fakes.directory.entry(dn).unwrap();
    let sd = SecurityDescriptor::parse(entry.first_bin("msDS-GroupMSAMembership").unwrap());
    let aces = sd.unwrap().dacl.unwrap().aces;
    aces.iter().filter_map(|a| a.sid().copied()).collect()
}

pub fn gmsa_dn(d: &Hermetic) -> String {
    let base = d.fakes.directory.base_dn();
    format!("CN=provAgentgMSA,CN=Managed Service Accounts,{base}")
}

/// A group in CN=Users with `members` (DNs), made straight in the fake.
pub fn make_group(d: &Hermetic, name: &str, members: &[&str]) -> String {
    let dn = format!("CN={name},CN=Users,{}", d.fakes.directory.base_dn());
    let mut attrs = vec![
        ("objectClass", text("group")),
        ("sAMAccountName", text(name)),
    ];
    if !members.is_empty() {
        attrs.push((
            "member",
            members.iter().map(|m| m.as_bytes().to_vec()).collect(),
        ));
    }
    d.fakes.directory.seed_object(&dn, &attrs).unwrap();
    dn
}
