//! THE RPC table: every provd.v1 method once, with its request type, whether
//! it streams, the roles that may call it, and whether it changes anything
//! (`write`: the audit trail records every call of it; `read`: only its
//! denials). The role table (`authz`), the HTTP/JSON routes (`services`)
//! and the audit's request decoding (`audit`) are all generated from it,
//! so a method cannot be routed without a role decision and an audit
//! decision, or listed twice.
//!
//! `rpc_table!(callback!(args))` expands to `callback! { (args) <table> }`;
//! each service is `Service api_field { kind Method handler Request ROLES,
//! effect; }`. `kind`: `unary`, `stream` (server streaming) or `upload`
//! (client streaming: gRPC only, no JSON route).

macro_rules! rpc_table {
    ($callback:ident ! ( $($args:tt)* )) => {
        $callback! { ($($args)*)
            OperationsService operations {
                unary GetOperation get_operation v1::GetOperationRequest, VIEW, read;
                unary ListOperations list_operations v1::ListOperationsRequest, VIEW, read;
                stream WatchOperation watch_operation v1::WatchOperationRequest, VIEW, read;
                unary CancelOperation cancel_operation v1::CancelOperationRequest, ADMIN, write;
            }
            AgentService agent {
                unary Install install v1::InstallRequest, ADMIN, write;
                unary Uninstall uninstall v1::UninstallRequest, ADMIN, write;
                unary GetAgent get_agent v1::GetAgentRequest, VIEW, read;
                unary SignIn sign_in v1::SignInRequest, ADMIN, write;
                unary PlanDecommission plan_decommission v1::PlanDecommissionRequest, VIEW, read;
                // Uninstalls, leaves the tenant's agent groups, edits the gMSA.
                unary DecommissionAgent decommission_agent
                    v1::DecommissionAgentRequest, ADMIN, write;
                // Registers the agent again through its module.
                unary RepairAgent repair_agent v1::RepairAgentRequest, ADMIN, write;
            }
            HostService host {
                unary PlanHostRemediation plan_host_remediation
                    v1::PlanHostRemediationRequest, VIEW, read;
                // Changes the registry and the SCM; never reboots.
                unary RemediateHost remediate_host v1::RemediateHostRequest, ADMIN, write;
            }
            ServiceAccountService service_account {
                unary CreateGmsa create_gmsa v1::CreateGmsaRequest, ADMIN, write;
                unary UseCustomGmsa use_custom_gmsa v1::UseCustomGmsaRequest, ADMIN, write;
                unary GetServiceAccount get_service_account v1::GetServiceAccountRequest, VIEW, read;
                unary GrantPermissions grant_permissions v1::GrantPermissionsRequest, ADMIN, write;
            }
            DirectoryService directory {
                unary AddDirectory add_directory v1::AddDirectoryRequest, ADMIN, write;
                unary ListDirectories list_directories v1::ListDirectoriesRequest, VIEW, read;
                unary RemoveDirectory remove_directory v1::RemoveDirectoryRequest, ADMIN, write;
            }
            DomainControllerService domain_controller {
                unary DiscoverDomainControllers discover_domain_controllers
                    v1::DiscoverDomainControllersRequest, VIEW, read;
                unary GetPriority get_priority v1::GetPriorityRequest, VIEW, read;
                unary SetPriority set_priority v1::SetPriorityRequest, OPERATE, write;
            }
            ConfigurationService configuration {
                unary ApplyConfiguration apply_configuration v1::ApplyConfigurationRequest, ADMIN, write;
                unary PlanConfiguration plan_configuration v1::PlanConfigurationRequest, VIEW, read;
            }
            StatusService status {
                unary GetHostStatus get_host_status v1::GetHostStatusRequest, VIEW, read;
            }
            VerifyService verify {
                stream Verify verify v1::VerifyRequest, VIEW, read;
            }
            WritebackService writeback {
                unary SetPasswordWriteback set_password_writeback
                    v1::SetPasswordWritebackRequest, OPERATE, write;
                unary GetPasswordWriteback get_password_writeback
                    v1::GetPasswordWritebackRequest, VIEW, read;
            }
            CloudSyncService cloud_sync {
                unary GetCloudSync get_cloud_sync v1::GetCloudSyncRequest, VIEW, read;
                unary PlanCloudSync plan_cloud_sync v1::PlanCloudSyncRequest, VIEW, read;
                unary SetCloudSync set_cloud_sync v1::SetCloudSyncRequest, ADMIN, write;
                unary StartCloudSync start_cloud_sync v1::StartCloudSyncRequest, OPERATE, write;
                unary PauseCloudSync pause_cloud_sync v1::PauseCloudSyncRequest, OPERATE, write;
                // FORCE_DELETES lets held-back deletes through.
                unary RestartCloudSync restart_cloud_sync v1::RestartCloudSyncRequest, ADMIN, write;
            }
            DiagnosticsService diagnostics {
                // The agent's logs, configuration and event logs, redacted:
                // still a map of the host, so admins only. `write`: with a
                // verbose-trace window it restarts the agent service and
                // has Microsoft's module edit exe.config, so every call is
                // audited (the request's digest shows whether a window was
                // asked; a bundle taken is worth a record too).
                stream ExportDiagnostics export_diagnostics v1::ExportDiagnosticsRequest, ADMIN, write;
            }
            PackageService package {
                // A client stream (gRPC only: no JSON route); writes into
                // staging, so audited, its digest over the first message.
                upload UploadPackage upload_package v1::UploadPackageRequest, ADMIN, write;
                // Which packages are staged: what will be installed.
                unary GetUpload get_upload v1::GetUploadRequest, ADMIN, read;
            }
        }
    };
}
pub(crate) use rpc_table;
