# provd-script: verbose-trace-stop v1
# Turns the agent's verbose tracing off again after a support bundle's window:
# Stop-AADCloudSyncToolsVerboseLogs from Microsoft's AADCloudSyncTools module, which edits
# AADConnectProvisioningAgent.exe.config and restarts the AADConnectProvisioningAgent
# service (reference-powershell). What the command writes into the file is Microsoft's and
# undocumented: provd never edits it.
# No -SkipServiceRestart: without the restart the change does not take effect.
# Request: {} (nothing). Result: {"ok":true}.
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
    Import-Module -Name 'C:\Program Files\Microsoft Azure AD Connect Provisioning Agent\Utility\AADCloudSyncTools'
    Stop-AADCloudSyncToolsVerboseLogs
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
