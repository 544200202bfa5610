//! Execution policy, as Windows PowerShell 5.1 decides it (about_Execution_Policies): five
//! scopes in precedence order, each `Undefined` unless set; the first one set wins; when
//! none is, the default is `RemoteSigned` on Windows Server (`Restricted` on clients: the
//! lab plays a server). Where 5.1 keeps them [I: the standard locations]:
//!
//! | scope | where |
//! |---|---|
//! | MachinePolicy | `HKLM\SOFTWARE\Policies\Microsoft\Windows\PowerShell` `ExecutionPolicy` (Group Policy; `EnableScripts`=0 is `Restricted`) |
//! | UserPolicy | the same under `HKCU` |
//! | Process | the `PSExecutionPolicyPreference` environment variable |
//! | CurrentUser | `HKCU\Software\Microsoft\PowerShell\1\ShellIds\Microsoft.PowerShell` `ExecutionPolicy` |
//! | LocalMachine | `HKLM\SOFTWARE\Microsoft\PowerShell\1\ShellIds\Microsoft.PowerShell` `ExecutionPolicy` |
//!
//! What it changes here: `Restricted` and `AllSigned` refuse provd's (unsigned, local)
//! scripts before they start, with PowerShell's text on stderr and exit code 1; and
//! `Unrestricted` in a machine or user scope makes `Connect-AADCloudSyncAzureAD` fail, the
//! failure Microsoft documents ("You need to have machine and user policies set as
//! Undefined or RemoteSigned. If they're set as Unrestricted, you'll see this error.",
//! how-to-troubleshoot, "Agent registration fails with security error").

pub const SCOPES: [&str; 5] = [
    "MachinePolicy",
    "UserPolicy",
    "Process",
    "CurrentUser",
    "LocalMachine",
];

const POLICIES: [&str; 7] = [
    "Restricted",
    "AllSigned",
    "RemoteSigned",
    "Unrestricted",
    "Bypass",
    "Undefined",
    "Default",
];

/// A stored value in PowerShell's spelling; anything unknown or absent is `Undefined`.
pub fn canonical(value: Option<&str>) -> String {
    let value = value.map(str::trim).unwrap_or_default();
    POLICIES
        .iter()
        .find(|p| p.eq_ignore_ascii_case(value))
        .map_or("Undefined", |p| p)
        .to_owned()
}

/// The policy in force: the first scope set, else the server default.
pub fn effective(list: &[(String, String)]) -> &str {
    list.iter()
        .map(|(_, policy)| policy.as_str())
        .find(|p| *p != "Undefined")
        .map_or("RemoteSigned", |p| {
            if p == "Default" { "RemoteSigned" } else { p }
        })
}

/// PowerShell refusing to run `path` under `policy` (stderr text), if it does.
pub fn refusal(policy: &str, path: &str) -> Option<String> {
    const HELP: &str =
        "see about_Execution_Policies at https:/go.microsoft.com/fwlink/?LinkID=135170";
    let message = match policy {
        "Restricted" => format!(
            "File {path} cannot be loaded because running scripts is disabled on this system. \
             For more information, {HELP}."
        ),
        "AllSigned" => format!(
            "File {path} cannot be loaded. The file {path} is not digitally signed. You cannot \
             run this script on the current system. For more information about running scripts \
             and setting execution policy, {HELP}."
        ),
        _ => return None,
    };
    Some(format!(
        "{message}\r\n    + CategoryInfo          : SecurityError: (:) [], PSSecurityException\r\n    + FullyQualifiedErrorId : UnauthorizedAccess\r\n"
    ))
}

/// The first machine or user scope set to `Unrestricted` (the Process scope is the
/// caller's own, not the host's).
pub fn unrestricted(list: &[(String, String)]) -> Option<&str> {
    list.iter()
        .find(|(scope, policy)| scope != "Process" && policy == "Unrestricted")
        .map(|(scope, _)| scope.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(values: [&str; 5]) -> Vec<(String, String)> {
        SCOPES
            .iter()
            .zip(values)
            .map(|(s, v)| (s.to_string(), canonical(Some(v))))
            .collect()
    }

    #[test]
    fn precedence_default_and_refusals() {
        assert_eq!(canonical(Some("remotesigned")), "RemoteSigned");
        assert_eq!(canonical(Some("nonsense")), "Undefined");
        assert_eq!(canonical(None), "Undefined");
        assert_eq!(effective(&list(["", "", "", "", ""])), "RemoteSigned");
        assert_eq!(
            effective(&list(["", "", "", "Restricted", "Unrestricted"])),
            "Restricted"
        );
        assert_eq!(
            effective(&list(["AllSigned", "", "Bypass", "", ""])),
            "AllSigned"
        );
        let text = refusal("Restricted", r"C:\s\a.ps1").unwrap();
        assert!(text.starts_with(
            r"File C:\s\a.ps1 cannot be loaded because running scripts is disabled on this system."
        ));
        assert!(text.contains("FullyQualifiedErrorId : UnauthorizedAccess"));
        assert!(
            refusal("AllSigned", "x.ps1")
                .unwrap()
                .contains("is not digitally signed")
        );
        for p in ["RemoteSigned", "Unrestricted", "Bypass"] {
            assert_eq!(refusal(p, "x"), None);
        }
        assert_eq!(unrestricted(&list(["", "", "Unrestricted", "", ""])), None);
        assert_eq!(
            unrestricted(&list(["", "", "", "", "unrestricted"])),
            Some("LocalMachine")
        );
    }
}
