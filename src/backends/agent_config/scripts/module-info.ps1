# provd-script: module-info v1
# Reports on the agent's module without importing it, so it answers when the import
# itself would fail: whether the dll is there and its file version, the execution
# policies (Get-ExecutionPolicy -List), and the tenant the agent's registry key names
# (TenantID under HKLM\SOFTWARE\Microsoft\Azure AD Connect Agents\Azure AD Connect
# Provisioning Agent, how-to-manage-registry-options). Reads nothing but that.
# Request: {} (nothing). Result: {"ok":true,"modulePath":...,"modulePresent":bool,
# "moduleVersion":string|null,"executionPolicies":[{"scope","policy"}],
# "registeredTenant":string|null}.
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
    $moduleFiles = @(Get-Item -LiteralPath 'C:\Program Files\Microsoft Azure AD Connect Provisioning Agent\Microsoft.CloudSync.PowerShell.dll' -ErrorAction SilentlyContinue)
    if ($moduleFiles.Count -gt 0) {
        $modulePresent = $true
        $moduleVersion = $moduleFiles[0].VersionInfo.FileVersion
    } else {
        $modulePresent = $false
        $moduleVersion = $null
    }
    $executionPolicies = @(Get-ExecutionPolicy -List | ForEach-Object -Process { @{ scope = "$($_.Scope)"; policy = "$($_.ExecutionPolicy)" } })
    $tenantValues = @(Get-ItemProperty -LiteralPath 'HKLM:\SOFTWARE\Microsoft\Azure AD Connect Agents\Azure AD Connect Provisioning Agent' -Name 'TenantID' -ErrorAction SilentlyContinue)
    if ($tenantValues.Count -gt 0) {
        $registeredTenant = [string]$tenantValues[0].TenantID
    } else {
        $registeredTenant = $null
    }
    $result = @{
        ok = $true
        modulePath = 'C:\Program Files\Microsoft Azure AD Connect Provisioning Agent\Microsoft.CloudSync.PowerShell.dll'
        modulePresent = $modulePresent
        moduleVersion = $moduleVersion
        executionPolicies = $executionPolicies
        registeredTenant = $registeredTenant
    }
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
