//! THE RPC table: every provd.v1 method once, with its request type, whether
//! it streams, and the roles that may call it. The role table (`authz`) and
//! the HTTP/JSON routes (`services`) are both generated from it, so a method
//! cannot be routed without a role decision or listed twice.
//!
//! `rpc_table!(callback!(args))` expands to `callback! { (args) <table> }`;
//! each service is `Service api_field { kind Method handler Request ROLES; }`.

macro_rules! rpc_table {
    ($callback:ident ! ( $($args:tt)* )) => {
        $callback! { ($($args)*)
            OperationsService operations {
                unary GetOperation get_operation v1::GetOperationRequest, VIEW;
                unary ListOperations list_operations v1::ListOperationsRequest, VIEW;
                stream WatchOperation watch_operation v1::WatchOperationRequest, VIEW;
                unary CancelOperation cancel_operation v1::CancelOperationRequest, ADMIN;
            }
            AgentService agent {
                unary Install install v1::InstallRequest, ADMIN;
                unary Uninstall uninstall v1::UninstallRequest, ADMIN;
                unary GetAgent get_agent v1::GetAgentRequest, VIEW;
                unary SignIn sign_in v1::SignInRequest, ADMIN;
            }
            HostService host {
                unary PlanHostRemediation plan_host_remediation
                    v1::PlanHostRemediationRequest, VIEW;
                // Changes the registry and the SCM; never reboots.
                unary RemediateHost remediate_host v1::RemediateHostRequest, ADMIN;
            }
            ServiceAccountService service_account {
                unary CreateGmsa create_gmsa v1::CreateGmsaRequest, ADMIN;
                unary UseCustomGmsa use_custom_gmsa v1::UseCustomGmsaRequest, ADMIN;
                unary GetServiceAccount get_service_account v1::GetServiceAccountRequest, VIEW;
                unary GrantPermissions grant_permissions v1::GrantPermissionsRequest, ADMIN;
            }
            DirectoryService directory {
                unary AddDirectory add_directory v1::AddDirectoryRequest, ADMIN;
                unary ListDirectories list_directories v1::ListDirectoriesRequest, VIEW;
                unary RemoveDirectory remove_directory v1::RemoveDirectoryRequest, ADMIN;
            }
            DomainControllerService domain_controller {
                unary DiscoverDomainControllers discover_domain_controllers
                    v1::DiscoverDomainControllersRequest, VIEW;
                unary GetPriority get_priority v1::GetPriorityRequest, VIEW;
                unary SetPriority set_priority v1::SetPriorityRequest, OPERATE;
            }
            ConfigurationService configuration {
                unary ApplyConfiguration apply_configuration v1::ApplyConfigurationRequest, ADMIN;
                unary PlanConfiguration plan_configuration v1::PlanConfigurationRequest, VIEW;
            }
            VerifyService verify {
                stream Verify verify v1::VerifyRequest, VIEW;
            }
            WritebackService writeback {
                unary SetPasswordWriteback set_password_writeback
                    v1::SetPasswordWritebackRequest, OPERATE;
                unary GetPasswordWriteback get_password_writeback
                    v1::GetPasswordWritebackRequest, VIEW;
            }
            CloudSyncService cloud_sync {
                unary GetCloudSync get_cloud_sync v1::GetCloudSyncRequest, VIEW;
                unary PlanCloudSync plan_cloud_sync v1::PlanCloudSyncRequest, VIEW;
                unary SetCloudSync set_cloud_sync v1::SetCloudSyncRequest, ADMIN;
                unary StartCloudSync start_cloud_sync v1::StartCloudSyncRequest, OPERATE;
                unary PauseCloudSync pause_cloud_sync v1::PauseCloudSyncRequest, OPERATE;
                // FORCE_DELETES lets held-back deletes through.
                unary RestartCloudSync restart_cloud_sync v1::RestartCloudSyncRequest, ADMIN;
            }
        }
    };
}
pub(crate) use rpc_table;
