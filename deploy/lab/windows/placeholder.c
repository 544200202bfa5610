/* A LAB STAND-IN placeholder DLL for provd's Wine lab (deploy/lab/wine.sh): no code of
 * Microsoft's, nothing exported, only a version resource (placeholder.rc.in). The lab MSI
 * installs two of them where the agent keeps the real assemblies:
 *   Microsoft.CloudSync.PowerShell.dll  FileVersion = the package's ProductVersion (what
 *                                       provd's module-info script reports)
 *   Newtonsoft.Json.dll                 FileVersion 12.0.3.23909 (the module is built
 *                                       against 12; the lab's powershell.exe stand-in fails
 *                                       Add-AADCloudSyncADDomain with any other major, as
 *                                       MicrosoftDocs/azure-docs#104689 shows with 13)
 * Build: x86_64-w64-mingw32-windres + x86_64-w64-mingw32-gcc -shared (wine.sh build_placeholder). */
#include <windows.h>

BOOL WINAPI DllMain(HINSTANCE instance, DWORD reason, LPVOID reserved)
{
    (void)instance;
    (void)reason;
    (void)reserved;
    return TRUE;
}
