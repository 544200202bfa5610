//! Job answers as Microsoft documents them, parsed into the model.

use std::time::{Duration, SystemTime};

use super::*;

fn job(text: &str) -> SyncJob {
    let body: JobBody = parse(SyncCall::CreateJob, text).unwrap();
    body.into_job().unwrap()
}

fn at(unix: u64) -> Option<SystemTime> {
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(unix))
}

/// The how-to's "Create sync job" answer, as printed (its `templateId`
/// contradicts the request: a documentation artefact, kept).
const HOW_TO_CREATE_JOB: &str = r#"{
  "@odata.context": "https://graph.microsoft.com/beta/$metadata#servicePrincipals('<guid>')/synchronization/jobs/$entity",
  "id": "AD2AADProvisioning.fc96887f36da47508c935c28a0c0b6da",
  "templateId": "ADDCInPassthrough",
  "schedule": {"expiration": null, "interval": "PT40M", "state": "Disabled"},
  "status": {
    "countSuccessiveCompleteFailures": 0,
    "escrowsPruned": false,
    "synchronizedEntryCountByType": [],
    "code": "Paused",
    "lastExecution": null,
    "lastSuccessfulExecution": null,
    "lastSuccessfulExecutionWithExports": null,
    "steadyStateFirstAchievedTime": "0001-01-01T00:00:00Z",
    "steadyStateLastAchievedTime": "0001-01-01T00:00:00Z",
    "quarantine": null,
    "troubleshootingUrl": null
  }
}"#;

#[test]
fn the_how_tos_created_job_parses() {
    let job = job(HOW_TO_CREATE_JOB);
    assert_eq!(
        job.id,
        "AD2AADProvisioning.fc96887f36da47508c935c28a0c0b6da"
    );
    assert_eq!(job.template_id, "ADDCInPassthrough");
    assert_eq!(job.template(), None);
    assert_eq!(job.schedule, Schedule::Disabled);
    assert_eq!(job.status.code, JobCode::Paused);
    assert_eq!(job.status.quarantine, None);
    assert_eq!(job.status.last_execution, None);
    assert!(job.status.synchronized_by_type.is_empty());
    assert!(!job.status.escrows_pruned);
}

/// A quarantined job in the interfaces note's shape. The error is the
/// reference-error-codes page's code; the message, times and counts are
/// invented [I]; `timeEnded` carries .NET's seven fractional digits [I].
const QUARANTINED: &str = r#"{
  "id": "AD2AADProvisioning.0123456789abcdef0123456789abcdef",
  "templateId": "AD2AADProvisioning",
  "schedule": {"expiration": null, "interval": "PT2M", "state": "Active"},
  "status": {
    "code": "Quarantine",
    "countSuccessiveCompleteFailures": 3,
    "escrowsPruned": false,
    "quarantine": {
      "currentBegan": "2026-12-06T10:00:00Z",
      "nextAttempt": "2026-12-06T10:02:00+00:00",
      "reason": "EncounteredQuarantineException",
      "seriesBegan": "2026-12-06T09:00:00Z",
      "seriesCount": 2,
      "error": {"code": "HybridIdentityServiceNoActiveAgents", "message": "no agent listens", "tenantActionable": true}
    },
    "lastExecution": {
      "activityIdentifier": "a", "countEntitled": 0, "countEntitledForProvisioning": 0,
      "countEscrowed": 4, "countEscrowedRaw": 4, "countExported": 0, "countExports": 0,
      "countImported": 25, "countImportedDeltas": 0, "countImportedReferenceDeltas": 0,
      "state": "Failed",
      "error": {"code": "HybridIdentityServiceNoActiveAgents", "message": "no agent listens", "tenantActionable": true},
      "timeBegan": "2026-12-06T09:59:00Z", "timeEnded": "2026-12-06T09:59:30.1234567Z"
    },
    "lastSuccessfulExecution": null,
    "lastSuccessfulExecutionWithExports": {
      "countImported": 25, "countExported": 25, "state": "Succeeded", "error": null,
      "timeBegan": "2026-12-05T08:00:00Z", "timeEnded": "0001-01-01T00:00:00Z"
    },
    "steadyStateFirstAchievedTime": "0001-01-01T00:00:00Z",
    "steadyStateLastAchievedTime": "0001-01-01T00:00:00Z",
    "synchronizedEntryCountByType": [{"key": "user", "value": 25}],
    "troubleshootingUrl": null
  }
}"#;

#[test]
fn a_quarantined_status_parses() {
    let job = job(QUARANTINED);
    assert_eq!(job.template(), Some(JobTemplate::Provisioning));
    assert_eq!(job.schedule, Schedule::Active);
    assert_eq!(job.status.code, JobCode::Quarantine);
    assert_eq!(job.status.successive_failures, 3);
    let q = job.status.quarantine.as_ref().unwrap();
    assert_eq!(q.reason, "EncounteredQuarantineException");
    assert_eq!(q.error_code, "HybridIdentityServiceNoActiveAgents");
    assert_eq!(q.error_message, "no agent listens");
    assert_eq!(q.current_began, at(1_796_551_200));
    assert_eq!(q.next_attempt, at(1_796_551_320));
    assert_eq!(q.series_count, 2);
    let last = job.status.last_execution.as_ref().unwrap();
    assert_eq!(last.state, RunState::Failed);
    assert_eq!((last.imported, last.exported, last.escrowed), (25, 0, 4));
    assert_eq!(last.began, at(1_796_551_140));
    assert_eq!(
        last.ended,
        Some(SystemTime::UNIX_EPOCH + Duration::new(1_796_551_170, 123_456_700))
    );
    assert_eq!(last.error_code, "HybridIdentityServiceNoActiveAgents");
    let exported = job.status.last_execution_with_exports.as_ref().unwrap();
    assert_eq!(exported.state, RunState::Succeeded);
    assert_eq!(exported.ended, None, "0001-01-01 is never");
    assert_eq!(exported.error_code, "");
    assert_eq!(job.status.synchronized_by_type, [("user".to_owned(), 25)]);
}

#[test]
fn unknown_words_are_kept() {
    let job = job(
        r#"{"id":"j","templateId":"X","schedule":{"state":"Hibernating"},
            "status":{"code":"Warming","lastExecution":{"state":"PartlyCloudy"}}}"#,
    );
    assert_eq!(job.schedule, Schedule::Other("Hibernating".into()));
    assert_eq!(job.status.code, JobCode::Other("Warming".into()));
    let last = job.status.last_execution.unwrap();
    assert_eq!(last.state, RunState::Other("PartlyCloudy".into()));
    // Case is not a new word.
    assert_eq!(job_code("notrun"), JobCode::NotRun);
}

fn job_code(code: &str) -> JobCode {
    let text = format!(r#"{{"id":"j","status":{{"code":"{code}"}}}}"#);
    job(&text).status.code
}

#[test]
fn a_bad_timestamp_is_a_protocol_error_naming_it() {
    let text = r#"{"id":"j","status":{"quarantine":{"nextAttempt":"tomorrow"}}}"#;
    let body: JobBody = parse(SyncCall::ListJobs, text).unwrap();
    let err = body.into_job().unwrap_err();
    assert!(
        matches!(&err, TenantError::Protocol(m) if m.contains("nextAttempt")),
        "{err:?}"
    );
    // The G7 get example's empty strings are "not set".
    assert_eq!(timestamp("t", Some(String::new())).unwrap(), None);
}
