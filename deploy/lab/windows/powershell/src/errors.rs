//! The error records Windows PowerShell 5.1 gives for what can go wrong before or around a
//! cmdlet, as a script's `catch` sees them (`$_.Exception.Message`,
//! `$_.FullyQualifiedErrorId`, `$_.CategoryInfo.Category`, `$_.Exception.GetType().FullName`,
//! `$_.InvocationInfo.MyCommand`).
//!
//! The binder's own errors come from provd-psscript (build time, `build.rs`). The texts here
//! are PowerShell 5.1's standard ones, written from memory [I]: confirm them on a real server
//! before relying on them. Where a text is the stand-in's own (no PowerShell text exists
//! for it), it says `LAB STAND-IN`.

use crate::plan::Failure;

pub fn record(
    message: impl Into<String>,
    fqid: impl Into<String>,
    category: &str,
    exception: &str,
    command: &str,
) -> Failure {
    Failure {
        message: message.into(),
        fully_qualified_error_id: fqid.into(),
        category: category.to_owned(),
        exception_type: exception.to_owned(),
        command: command.to_owned(),
    }
}

/// `$request.field` when the request has no such property, under `Set-StrictMode -Version 3.0`.
pub fn property_not_found_strict(property: &str) -> Failure {
    record(
        format!(
            "The property '{property}' cannot be found on this object. Verify that the property exists."
        ),
        "PropertyNotFoundStrict",
        "NotSpecified",
        "System.Management.Automation.PropertyNotFoundException",
        "",
    )
}

/// `$name` read before it was set, under strict mode.
pub fn variable_not_set(name: &str) -> Failure {
    record(
        format!("The variable '${name}' cannot be retrieved because it has not been set."),
        "VariableIsUndefined",
        "InvalidOperation",
        "System.Management.Automation.RuntimeException",
        "",
    )
}

/// `[Convert]::FromBase64String(…)` on something that is not base64 (.NET's FormatException,
/// wrapped as a method call's exception).
pub fn not_base64() -> Failure {
    record(
        "Exception calling \"FromBase64String\" with \"1\" argument(s): \"The input is not a valid \
         Base-64 string as it contains a non-base 64 character, more than two padding characters, \
         or an illegal character among the padding characters. \"",
        "FormatException",
        "NotSpecified",
        "System.Management.Automation.MethodInvocationException",
        "",
    )
}

/// `ConvertFrom-Json` on text that is not JSON (5.1 parses with JavaScriptSerializer).
pub fn not_json(detail: &str) -> Failure {
    record(
        format!("Invalid JSON primitive: {detail}."),
        "System.ArgumentException,Microsoft.PowerShell.Commands.ConvertFromJsonCommand",
        "NotSpecified",
        "System.ArgumentException",
        "ConvertFrom-Json",
    )
}

/// A command PowerShell does not know (an agent cmdlet before its module is imported).
pub fn command_not_found(name: &str) -> Failure {
    record(
        format!(
            "The term '{name}' is not recognized as the name of a cmdlet, function, script file, \
             or operable program. Check the spelling of the name, or if a path was included, \
             verify that the path is correct and try again."
        ),
        "CommandNotFoundException",
        "ObjectNotFound",
        "System.Management.Automation.CommandNotFoundException",
        "",
    )
}

/// `Import-Module -Name <path>` when the file is not there.
pub fn module_not_found(path: &str) -> Failure {
    record(
        format!(
            "The specified module '{path}' was not loaded because no valid module file was found \
             in any module directory."
        ),
        "Modules_ModuleNotFound,Microsoft.PowerShell.Commands.ImportModuleCommand",
        "ResourceUnavailable",
        "System.IO.FileNotFoundException",
        "Import-Module",
    )
}

/// A mandatory parameter given an empty string, `$null` or an empty array.
pub fn argument_validation(kind: Empty, parameter: &str, class: &str, command: &str) -> Failure {
    let (what, id) = match kind {
        Empty::String => (
            "an empty string",
            "ParameterArgumentValidationErrorEmptyStringNotAllowed",
        ),
        Empty::Null => ("null", "ParameterArgumentValidationErrorNullNotAllowed"),
        Empty::Array => (
            "an empty array",
            "ParameterArgumentValidationErrorEmptyArrayNotAllowed",
        ),
    };
    record(
        format!("Cannot bind argument to parameter '{parameter}' because it is {what}."),
        format!("{id},{class}"),
        "InvalidData",
        "System.Management.Automation.ParameterBindingValidationException",
        command,
    )
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Empty {
    String,
    Null,
    Array,
}

/// A value the binder cannot convert to the parameter's type.
pub fn cannot_convert(
    parameter: &str,
    shown: &str,
    from: &str,
    to: &str,
    class: &str,
    command: &str,
) -> Failure {
    record(
        format!(
            "Cannot bind parameter '{parameter}'. Cannot convert the \"{shown}\" value of type \
             \"{from}\" to type \"{to}\"."
        ),
        format!("CannotConvertArgumentNoMessage,{class}"),
        "InvalidArgument",
        "System.Management.Automation.ParameterBindingException",
        command,
    )
}

/// A Boolean parameter given anything but a Boolean or a number.
pub fn not_boolean(parameter: &str, from: &str, class: &str, command: &str) -> Failure {
    record(
        format!(
            "Cannot process argument transformation on parameter '{parameter}'. Cannot convert \
             value \"{from}\" to type \"System.Boolean\". Boolean parameters accept only Boolean \
             values and numbers, such as $True, $False, 1 or 0."
        ),
        format!("ParameterArgumentTransformationError,{class}"),
        "InvalidData",
        "System.Management.Automation.ParameterBindingArgumentTransformationException",
        command,
    )
}

/// `New-Object … PSCredential -ArgumentList '', $secure`: the constructor refuses the name.
pub fn credential_user_name() -> Failure {
    record(
        "Exception calling \".ctor\" with \"2\" argument(s): \"Cannot process argument because the \
         value of argument \"userName\" is not valid. Change the value of the \"userName\" \
         argument and run the operation again.\"",
        "ConstructorInvokedThrowException,Microsoft.PowerShell.Commands.NewObjectCommand",
        "InvalidOperation",
        "System.Management.Automation.MethodInvocationException",
        "New-Object",
    )
}

/// What the stand-in does not model (no PowerShell text: its own).
pub fn not_modelled(command: &str, what: &str) -> Failure {
    record(
        format!("LAB STAND-IN: {what} is not modelled by the lab's powershell.exe"),
        "LabStandInNotModelled",
        "NotImplemented",
        "System.NotImplementedException",
        command,
    )
}

/// An agent cmdlet failing the way the module would, with the inferred class (the pattern
/// of the one verbatim record, MicrosoftDocs/azure-docs#104689:
/// `System.InvalidOperationException,Microsoft.CloudSync.Powershell.AddAADCloudSyncADDomain`).
pub fn cmdlet_failed(message: impl Into<String>, class: &str, command: &str) -> Failure {
    record(
        message,
        format!("System.InvalidOperationException,{class}"),
        "NotSpecified",
        "System.InvalidOperationException",
        command,
    )
}

/// An error outside the script's `try` ends the script: PowerShell prints the record on
/// stderr (this layout) and exits 1 without a result line.
pub fn console_text(failure: &Failure, script: &str, line: usize) -> String {
    let exception = failure
        .exception_type
        .rsplit('.')
        .next()
        .unwrap_or(&failure.exception_type);
    let prefix = if failure.command.is_empty() {
        String::new()
    } else {
        format!("{} : ", failure.command)
    };
    format!(
        "{prefix}{}\r\nAt {script}:{line} char:1\r\n    + CategoryInfo          : {}: (:) [{}], {exception}\r\n    + FullyQualifiedErrorId : {}\r\n",
        failure.message, failure.category, failure.command, failure.fully_qualified_error_id
    )
}
