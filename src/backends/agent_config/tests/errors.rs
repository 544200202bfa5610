use std::time::Duration;

use tonic::Code;
use tonic_types::StatusExt;

use crate::backends::agent_config::AgentConfigError as E;
use crate::transport::status::to_status;
use crate::workflows::Error;

/// The precondition reason and subject a client reads, if any.
type Reason = Option<(&'static str, &'static str)>;

fn text(s: &str) -> String {
    s.to_owned()
}

/// Every variant, as the client sees it: the gRPC code and, for a failed
/// precondition, the reason string and subject clients match.
#[test]
fn each_module_error_reaches_the_client_with_its_code_and_reason() {
    let cases: Vec<(E, Code, Reason)> = vec![
        (
            E::Unavailable(text("linux")),
            Code::FailedPrecondition,
            Some(("HOST_UNAVAILABLE", "host")),
        ),
        (
            E::ModuleMissing {
                path: text("C:\\m.dll"),
            },
            Code::FailedPrecondition,
            Some(("AGENT_MODULE_MISSING", "agent")),
        ),
        (
            E::ModuleTooOld {
                version: text("1"),
                needed: text("2"),
                feature: text("f"),
            },
            Code::FailedPrecondition,
            Some(("AGENT_TOO_OLD", "agent")),
        ),
        (
            E::ParameterBinding {
                cmdlet: text("c"),
                parameter: text("p"),
                fqid: text("NamedParameterNotFound,c"),
                message: text("m"),
            },
            Code::FailedPrecondition,
            Some(("AGENT_TOO_OLD", "agent")),
        ),
        (
            E::ExecutionPolicy {
                scope: text("LocalMachine"),
                policy: text("Unrestricted"),
            },
            Code::FailedPrecondition,
            Some(("AGENT_EXECUTION_POLICY", "host")),
        ),
        (
            E::AssemblyConflict {
                assembly: text("Newtonsoft.Json"),
                message: text("m"),
            },
            Code::FailedPrecondition,
            Some(("AGENT_MODULE_CONFLICT", "agent")),
        ),
        (
            E::ServiceAccountNotManaged {
                service: text("AADConnectProvisioningAgent"),
            },
            Code::FailedPrecondition,
            Some(("AGENT_SERVICE_NOT_MANAGED", "AADConnectProvisioningAgent")),
        ),
        (
            E::TokenRejected {
                message: text("AADSTS"),
            },
            Code::Unauthenticated,
            None,
        ),
        (
            E::Cmdlet {
                cmdlet: text("c"),
                message: text("m"),
                fqid: text("f"),
                category: text("k"),
            },
            Code::Unavailable,
            None,
        ),
        (
            E::Timeout {
                script: text("add-domain"),
                after: Duration::from_secs(600),
            },
            Code::Unavailable,
            None,
        ),
        (E::Cancelled, Code::Cancelled, None),
        (E::Protocol(text("no result line")), Code::Internal, None),
        (E::Io(text("cannot start")), Code::Unavailable, None),
    ];
    for (err, code, reason) in cases {
        let display = err.to_string();
        let status = to_status(&Error::from(err));
        assert_eq!(status.code(), code, "{display}");
        let violation = status
            .get_details_precondition_failure()
            .and_then(|p| p.violations.into_iter().next())
            .map(|v| (v.r#type, v.subject));
        assert_eq!(
            violation,
            reason.map(|(t, s)| (t.to_owned(), s.to_owned())),
            "{display}"
        );
        // The backend's message (with its remedy) is what the client reads.
        if code != Code::Cancelled {
            assert!(status.message().contains(&display), "{}", status.message());
        }
    }
}

#[test]
fn the_timeout_names_the_setting_that_raises_it() {
    let err = E::Timeout {
        script: text("add-domain"),
        after: Duration::from_secs(600),
    };
    assert_eq!(
        err.to_string(),
        "the module script add-domain did not finish within 10m; it was stopped (raise \
         agent_module.script_timeout if the agent is just slow)"
    );
}

#[tokio::test]
async fn off_windows_every_call_is_unavailable_naming_the_platform() {
    use crate::backends::agent_config::{AgentConfig, RunContext, UnavailableAgentConfig};
    let backend = UnavailableAgentConfig::for_this_platform();
    assert!(
        backend
            .availability()
            .unwrap_err()
            .contains("only on Windows")
    );
    let cancel = tokio_util::sync::CancellationToken::new();
    let cx = RunContext {
        cancel: &cancel,
        transcript: &|_| {},
    };
    let err = backend.list_domains(&cx).await.unwrap_err();
    assert!(matches!(err, E::Unavailable(_)), "{err:?}");
    let status = to_status(&Error::from(err));
    assert_eq!(status.code(), Code::FailedPrecondition);
}
