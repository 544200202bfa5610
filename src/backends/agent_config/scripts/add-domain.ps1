# provd-script: add-domain v1
# Adds (or updates) one Active Directory domain for the agent, with its preferred
# domain controllers when there are any: Add-AADCloudSyncADDomain -DomainName
# -Credential [-PreferredDomainControllers] (how-to-install-pshell, steps 12-14).
# Request: domainName, userName, password, preferredDomainControllers (array, may be
# empty). Result: {"ok":true}.
# Run by provd as: powershell.exe -NoLogo -NoProfile -NonInteractive -File <this file>
# stdin: base64 of the UTF-8 JSON request. stdout: other lines are transcript, and one
# line "PROVD-RESULT <base64 of the UTF-8 JSON result>": {"ok":true,...} or
# {"ok":false,"error":{message,fullyQualifiedErrorId,category,exceptionType,command}};
# exit 0 / 1. Request data is only ever a whole parameter argument: never in script
# text, never in an expression (checked by tests/integration/ps_scripts.rs).
Set-StrictMode -Version 3.0
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
try {
    $request = [Text.Encoding]::UTF8.GetString([Convert]::FromBase64String([Console]::In.ReadToEnd())) | ConvertFrom-Json
    $domainName = [string]$request.domainName
    $userName = [string]$request.userName
    $password = [string]$request.password
    $preferredDomainControllers = [string[]]$request.preferredDomainControllers
    $securePassword = ConvertTo-SecureString -String $password -AsPlainText -Force
    $credential = New-Object -TypeName System.Management.Automation.PSCredential -ArgumentList $userName, $securePassword
    Import-Module -Name 'C:\Program Files\Microsoft Azure AD Connect Provisioning Agent\Microsoft.CloudSync.PowerShell.dll'
    if ($preferredDomainControllers.Count -gt 0) {
        Add-AADCloudSyncADDomain -DomainName $domainName -Credential $credential -PreferredDomainControllers $preferredDomainControllers
    } else {
        Add-AADCloudSyncADDomain -DomainName $domainName -Credential $credential
    }
    $result = @{ ok = $true }
    $exitCode = 0
} catch {
    $result = @{
        ok = $false
        error = @{
            message = $_.Exception.Message
            fullyQualifiedErrorId = $_.FullyQualifiedErrorId
            category = "$($_.CategoryInfo.Category)"
            exceptionType = $_.Exception.GetType().FullName
            command = "$($_.InvocationInfo.MyCommand)"
        }
    }
    $exitCode = 1
}
[Console]::Out.WriteLine('PROVD-RESULT ' + [Convert]::ToBase64String([Text.Encoding]::UTF8.GetBytes((ConvertTo-Json -InputObject $result -Compress -Depth 6))))
exit $exitCode
