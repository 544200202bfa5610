# provd-script: set-writeback v1
# Turns password writeback on or off for the agent: Connect-AADCloudSyncAzureAD with
# the access token, then Set-AADCloudSyncPasswordWritebackConfiguration -Enable.
# No -Credential: provd never has a cloud password (sign-in is device code, MFA);
# that the cmdlet works without one after Connect is an assumption to verify on a
# real server (design note, risk R3).
# Request: accessToken, tenantId, userPrincipalName, enable (bool). Result: {"ok":true}.
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
    $accessToken = [string]$request.accessToken
    $tenantId = [string]$request.tenantId
    $userPrincipalName = [string]$request.userPrincipalName
    $enable = [bool]$request.enable
    Import-Module -Name 'C:\Program Files\Microsoft Azure AD Connect Provisioning Agent\Microsoft.CloudSync.PowerShell.dll'
    Connect-AADCloudSyncAzureAD -AccessToken $accessToken -TenantId $tenantId -UserPrincipalName $userPrincipalName
    Set-AADCloudSyncPasswordWritebackConfiguration -Enable $enable
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
