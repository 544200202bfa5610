//! Assembles every service into the two routers the listener dispatches to:
//! gRPC (provd.v1, grpc.health.v1, grpc.reflection.v1) and HTTP/JSON.

use std::sync::Arc;

use axum::Router;

use super::configuration_api::ConfigurationApi;
use super::directory_api::{DirectoryApi, DomainControllerApi};
use super::grpc::{AgentApi, OperationsApi};
use super::http::{json_routes, probes};
use super::server::Routers;
use super::service_account_api::ServiceAccountApi;
use super::verify_api::VerifyApi;
use super::writeback_api::WritebackApi;
use crate::workflows::App;
use provd_proto::{FILE_DESCRIPTOR_SET, v1};

/// Builds the gRPC and JSON routers over `app`.
pub async fn routers(app: Arc<App>) -> Result<Routers, String> {
    use v1::agent_service_server::{AgentService, AgentServiceServer};
    use v1::configuration_service_server::{ConfigurationService, ConfigurationServiceServer};
    use v1::directory_service_server::{DirectoryService, DirectoryServiceServer};
    use v1::domain_controller_service_server::{
        DomainControllerService, DomainControllerServiceServer,
    };
    use v1::operations_service_server::{OperationsService, OperationsServiceServer};
    use v1::service_account_service_server::{ServiceAccountService, ServiceAccountServiceServer};
    use v1::verify_service_server::{VerifyService, VerifyServiceServer};
    use v1::writeback_service_server::{WritebackService, WritebackServiceServer};

    let operations = OperationsApi { app: app.clone() };
    let agent = AgentApi { app: app.clone() };
    let directories = DirectoryApi { app: app.clone() };
    let dcs = DomainControllerApi { app: app.clone() };
    let accounts = ServiceAccountApi { app: app.clone() };
    let writeback = WritebackApi { app: app.clone() };
    let verify = VerifyApi { app: app.clone() };
    let configuration = ConfigurationApi { app: app.clone() };

    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<OperationsServiceServer<OperationsApi>>()
        .await;
    health.set_serving::<AgentServiceServer<AgentApi>>().await;
    health
        .set_serving::<DirectoryServiceServer<DirectoryApi>>()
        .await;
    health
        .set_serving::<DomainControllerServiceServer<DomainControllerApi>>()
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| e.to_string())?;

    let grpc = tonic::service::Routes::new(health_service)
        .add_service(reflection)
        .add_service(OperationsServiceServer::new(operations.clone()))
        .add_service(AgentServiceServer::new(agent.clone()))
        .add_service(ServiceAccountServiceServer::new(accounts.clone()))
        .add_service(DirectoryServiceServer::new(directories.clone()))
        .add_service(DomainControllerServiceServer::new(dcs.clone()))
        .add_service(VerifyServiceServer::new(verify.clone()))
        .add_service(WritebackServiceServer::new(writeback.clone()))
        .add_service(ConfigurationServiceServer::new(configuration.clone()))
        .into_axum_router();

    let json = probes(app);
    let json = json_routes!(json, operations, OperationsService, {
        unary "/provd.v1.OperationsService/GetOperation" => get_operation(v1::GetOperationRequest),
        unary "/provd.v1.OperationsService/ListOperations" => list_operations(v1::ListOperationsRequest),
        stream "/provd.v1.OperationsService/WatchOperation" => watch_operation(v1::WatchOperationRequest),
        unary "/provd.v1.OperationsService/CancelOperation" => cancel_operation(v1::CancelOperationRequest),
    });
    let json = json_routes!(json, agent, AgentService, {
        unary "/provd.v1.AgentService/Install" => install(v1::InstallRequest),
        unary "/provd.v1.AgentService/Uninstall" => uninstall(v1::UninstallRequest),
        unary "/provd.v1.AgentService/GetAgent" => get_agent(v1::GetAgentRequest),
        unary "/provd.v1.AgentService/SignIn" => sign_in(v1::SignInRequest),
    });
    let json = json_routes!(json, accounts, ServiceAccountService, {
        unary "/provd.v1.ServiceAccountService/CreateGmsa" => create_gmsa(v1::CreateGmsaRequest),
        unary "/provd.v1.ServiceAccountService/UseCustomGmsa" => use_custom_gmsa(v1::UseCustomGmsaRequest),
        unary "/provd.v1.ServiceAccountService/GetServiceAccount" => get_service_account(v1::GetServiceAccountRequest),
        unary "/provd.v1.ServiceAccountService/GrantPermissions" => grant_permissions(v1::GrantPermissionsRequest),
    });
    let json = json_routes!(json, directories, DirectoryService, {
        unary "/provd.v1.DirectoryService/AddDirectory" => add_directory(v1::AddDirectoryRequest),
        unary "/provd.v1.DirectoryService/ListDirectories" => list_directories(v1::ListDirectoriesRequest),
        unary "/provd.v1.DirectoryService/RemoveDirectory" => remove_directory(v1::RemoveDirectoryRequest),
    });
    let json = json_routes!(json, dcs, DomainControllerService, {
        unary "/provd.v1.DomainControllerService/DiscoverDomainControllers" => discover_domain_controllers(v1::DiscoverDomainControllersRequest),
        unary "/provd.v1.DomainControllerService/GetPriority" => get_priority(v1::GetPriorityRequest),
        unary "/provd.v1.DomainControllerService/SetPriority" => set_priority(v1::SetPriorityRequest),
    });
    let json = json_routes!(json, verify, VerifyService, {
        stream "/provd.v1.VerifyService/Verify" => verify(v1::VerifyRequest),
    });
    let json = json_routes!(json, writeback, WritebackService, {
        unary "/provd.v1.WritebackService/SetPasswordWriteback" => set_password_writeback(v1::SetPasswordWritebackRequest),
        unary "/provd.v1.WritebackService/GetPasswordWriteback" => get_password_writeback(v1::GetPasswordWritebackRequest),
    });
    let json = json_routes!(json, configuration, ConfigurationService, {
        unary "/provd.v1.ConfigurationService/ApplyConfiguration" => apply_configuration(v1::ApplyConfigurationRequest),
        unary "/provd.v1.ConfigurationService/PlanConfiguration" => plan_configuration(v1::PlanConfigurationRequest),
    });
    Ok(Routers {
        grpc,
        json: Router::new().merge(json),
    })
}
