use crate::backends::agent_config::AgentConfigError;
use crate::backends::agent_config::classify::{
    MIN_CUSTOM_GMSA, MIN_WRITEBACK, ScriptError, classify, execution_policy, refused_script,
    require_version,
};

fn record(message: &str, fqid: &str, command: &str) -> ScriptError {
    ScriptError {
        message: message.into(),
        fully_qualified_error_id: fqid.into(),
        category: "NotSpecified".into(),
        exception_type: "System.InvalidOperationException".into(),
        command: command.into(),
    }
}

/// MicrosoftDocs/azure-docs#104689, verbatim (the console's line wrap
/// undone).
#[test]
fn the_newtonsoft_mismatch_is_an_assembly_conflict() {
    let err = classify(&record(
        "Could not load file or assembly 'Newtonsoft.Json, Version=12.0.0.0, Culture=neutral, \
         PublicKeyToken=30ad4fe6b2a6aeed' or one of its dependencies. The located assembly's \
         manifest definition does not match the assembly reference. (Exception from HRESULT: \
         0x80131040)",
        "System.InvalidOperationException,Microsoft.CloudSync.Powershell.AddAADCloudSyncADDomain",
        "Add-AADCloudSyncADDomain",
    ));
    let AgentConfigError::AssemblyConflict { assembly, .. } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(assembly, "Newtonsoft.Json");
    assert!(err.to_string().contains("upgrade the agent"), "{err}");
}

#[test]
fn the_unmanaged_service_gets_the_sc_command() {
    let err = classify(&record(
        "Failed changing Windows service credentials to gMSA",
        "System.InvalidOperationException,Microsoft.CloudSync.Powershell.AddAADCloudSyncGMSA",
        "",
    ));
    assert!(
        matches!(err, AgentConfigError::ServiceAccountNotManaged { .. }),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("sc.exe managedaccount AADConnectProvisioningAgent true"),
        "{err}"
    );
}

#[test]
fn the_binder_refusals_name_cmdlet_and_parameter() {
    let cases = [
        (
            "A parameter cannot be found that matches parameter name 'CustomGMSAName'.",
            "NamedParameterNotFound,Microsoft.CloudSync.Powershell.AddAADCloudSyncGMSA",
            "Add-AADCloudSyncGMSA",
            "CustomGMSAName",
        ),
        (
            "Cannot process command because of one or more missing mandatory parameters: Credential.",
            "MissingMandatoryParameter,Microsoft.CloudSync.Powershell.AddAADCloudSyncADDomain",
            "Add-AADCloudSyncADDomain",
            "Credential",
        ),
        (
            "Parameter set cannot be resolved using the specified named parameters.",
            "AmbiguousParameterSet,Microsoft.CloudSync.Powershell.SetAADCloudSyncPermissions",
            "Set-AADCloudSyncPermissions",
            "",
        ),
    ];
    for (message, fqid, command, wanted) in cases {
        let err = classify(&record(message, fqid, command));
        let AgentConfigError::ParameterBinding {
            cmdlet, parameter, ..
        } = &err
        else {
            panic!("{err:?}");
        };
        assert_eq!((cmdlet.as_str(), parameter.as_str()), (command, wanted));
    }
    // Without the record's command, the FQID's class names the cmdlet.
    let err = classify(&record(
        "x",
        "NamedParameterNotFound,Microsoft.CloudSync.Powershell.AddAADCloudSyncGMSA",
        "",
    ));
    assert!(
        matches!(err, AgentConfigError::ParameterBinding { ref cmdlet, .. } if cmdlet == "AddAADCloudSyncGMSA")
    );
    let err = classify(&record(
        "The term 'Set-AADCloudSyncPasswordWritebackConfiguration' is not recognized as the name \
         of a cmdlet, function, script file, or operable program.",
        "CommandNotFoundException",
        "",
    ));
    assert!(
        matches!(err, AgentConfigError::ParameterBinding { ref cmdlet, .. } if cmdlet == "Set-AADCloudSyncPasswordWritebackConfiguration"),
        "{err:?}"
    );
}

#[test]
fn a_missing_module_a_refused_token_and_anything_else() {
    let missing = classify(&record(
        "The specified module 'C:\\Program Files\\Microsoft Azure AD Connect Provisioning \
         Agent\\Microsoft.CloudSync.PowerShell.dll' was not loaded because no valid module \
         file was found in any module directory.",
        "Modules_ModuleNotFound,Microsoft.PowerShell.Commands.ImportModuleCommand",
        "Import-Module",
    ));
    assert!(
        matches!(missing, AgentConfigError::ModuleMissing { .. }),
        "{missing:?}"
    );
    let token = classify(&record(
        "AADSTS500011: The resource principal named https://proxy.cloudwebappproxy.net/registerapp was not found",
        "System.Exception,Microsoft.CloudSync.Powershell.ConnectAADCloudSyncAzureAD",
        "Connect-AADCloudSyncAzureAD",
    ));
    assert!(
        matches!(token, AgentConfigError::TokenRejected { .. }),
        "{token:?}"
    );
    let other = classify(&record(
        "The domain is unreachable.",
        "X,Y.Z",
        "Add-AADCloudSyncADDomain",
    ));
    assert!(
        matches!(other, AgentConfigError::Cmdlet { .. }),
        "{other:?}"
    );
    assert!(
        other
            .to_string()
            .contains("The domain is unreachable. (X,Y.Z, NotSpecified)")
    );
}

#[test]
fn execution_policies_as_microsoft_requires_them() {
    let list = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(s, p)| ((*s).into(), (*p).into()))
            .collect()
    };
    assert!(
        execution_policy(&list(&[
            ("MachinePolicy", "Undefined"),
            ("UserPolicy", "Undefined"),
            ("Process", "Bypass"),
            ("CurrentUser", "Undefined"),
            ("LocalMachine", "RemoteSigned"),
        ]))
        .is_ok()
    );
    let err = execution_policy(&list(&[
        ("MachinePolicy", "Undefined"),
        ("LocalMachine", "Unrestricted"),
    ]))
    .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("Unrestricted (LocalMachine)"), "{text}");
    assert!(text.contains("must be Undefined or RemoteSigned"), "{text}");
    assert!(
        text.contains("Set-ExecutionPolicy RemoteSigned -Scope LocalMachine"),
        "{text}"
    );
    let gpo = execution_policy(&list(&[("MachinePolicy", "AllSigned")])).unwrap_err();
    assert!(gpo.to_string().contains("Group Policy"), "{gpo}");
    // PowerShell refusing provd's script itself.
    for text in [
        "File C:\\x.ps1 cannot be loaded because running scripts is disabled on this system.",
        "File C:\\x.ps1 cannot be loaded. The file C:\\x.ps1 is not digitally signed.",
    ] {
        assert!(matches!(
            refused_script(text),
            Some(AgentConfigError::ExecutionPolicy { .. })
        ));
    }
    assert!(refused_script("Exception calling \"Connect\"").is_none());
}

#[test]
fn versions_below_a_feature_minimum_are_too_old() {
    assert!(require_version(Some("1.1.977.0"), MIN_WRITEBACK, "writeback").is_ok());
    assert!(require_version(Some("1.1.2505.0"), MIN_CUSTOM_GMSA, "gMSA").is_ok());
    let err = require_version(Some("1.1.281.0"), MIN_CUSTOM_GMSA, "-CustomGMSAName").unwrap_err();
    assert!(err.to_string().contains("older than 1.1.354.0"), "{err}");
    assert!(matches!(
        require_version(None, MIN_WRITEBACK, "writeback"),
        Err(AgentConfigError::ModuleMissing { .. })
    ));
}
