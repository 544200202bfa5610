//! Assembles every service into the two routers the listener dispatches to:
//! gRPC (provd.v1, grpc.health.v1, grpc.reflection.v1) and HTTP/JSON.

use std::sync::Arc;

use axum::Router;

use super::api::{
    AgentApi, CloudSyncApi, ConfigurationApi, DiagnosticsApi, DirectoryApi, DomainControllerApi,
    HostApi, OperationsApi, PackageApi, ServiceAccountApi, StatusApi, VerifyApi, WritebackApi,
};
use super::http::{json_routes, probes, with_fallbacks};
use super::server::Routers;
use crate::workflows::App;
use provd_proto::{FILE_DESCRIPTOR_SET, v1};

/// The JSON routes of every RPC in the table, each calling the same tonic
/// method the gRPC route calls.
macro_rules! json_router {
    (($router:expr, $apis:ident) $($service:ident $api:ident {
        $($kind:ident $method:ident $handler:ident $request:ty, $roles:ident, $effect:ident;)*
    })*) => {{
        let router = $router;
        $(
            let router = json_routes!(router, $apis.$api, $service, {
                $($kind concat!("/provd.v1.", stringify!($service), "/", stringify!($method))
                    => $handler($request)),*
            });
        )*
        router
    }};
}

/// The service implementations, one per proto service, named as the RPC
/// table names them.
struct Apis {
    operations: OperationsApi,
    agent: AgentApi,
    host: HostApi,
    service_account: ServiceAccountApi,
    directory: DirectoryApi,
    domain_controller: DomainControllerApi,
    configuration: ConfigurationApi,
    status: StatusApi,
    verify: VerifyApi,
    writeback: WritebackApi,
    cloud_sync: CloudSyncApi,
    diagnostics: DiagnosticsApi,
    package: PackageApi,
}

/// Builds the gRPC and JSON routers over `app`.
pub async fn routers(app: Arc<App>, allowed_origins: &[String]) -> Result<Routers, String> {
    use v1::agent_service_server::{AgentService, AgentServiceServer};
    use v1::cloud_sync_service_server::{CloudSyncService, CloudSyncServiceServer};
    use v1::configuration_service_server::{ConfigurationService, ConfigurationServiceServer};
    use v1::diagnostics_service_server::{DiagnosticsService, DiagnosticsServiceServer};
    use v1::directory_service_server::{DirectoryService, DirectoryServiceServer};
    use v1::domain_controller_service_server::{
        DomainControllerService, DomainControllerServiceServer,
    };
    use v1::host_service_server::{HostService, HostServiceServer};
    use v1::operations_service_server::{OperationsService, OperationsServiceServer};
    use v1::package_service_server::{PackageService, PackageServiceServer};
    use v1::service_account_service_server::{ServiceAccountService, ServiceAccountServiceServer};
    use v1::status_service_server::{StatusService, StatusServiceServer};
    use v1::verify_service_server::{VerifyService, VerifyServiceServer};
    use v1::writeback_service_server::{WritebackService, WritebackServiceServer};

    let audit = app.audit.clone();
    let apis = Apis {
        operations: OperationsApi { app: app.clone() },
        agent: AgentApi { app: app.clone() },
        host: HostApi { app: app.clone() },
        service_account: ServiceAccountApi { app: app.clone() },
        directory: DirectoryApi { app: app.clone() },
        domain_controller: DomainControllerApi { app: app.clone() },
        configuration: ConfigurationApi { app: app.clone() },
        status: StatusApi { app: app.clone() },
        verify: VerifyApi { app: app.clone() },
        writeback: WritebackApi { app: app.clone() },
        cloud_sync: CloudSyncApi { app: app.clone() },
        diagnostics: DiagnosticsApi { app: app.clone() },
        package: PackageApi { app: app.clone() },
    };

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
        // grpc.health.v1 is served too, so reflection lists it.
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| e.to_string())?;

    let grpc = tonic::service::Routes::new(health_service)
        .add_service(reflection)
        .add_service(OperationsServiceServer::new(apis.operations.clone()))
        .add_service(AgentServiceServer::new(apis.agent.clone()))
        .add_service(HostServiceServer::new(apis.host.clone()))
        .add_service(ServiceAccountServiceServer::new(
            apis.service_account.clone(),
        ))
        .add_service(DirectoryServiceServer::new(apis.directory.clone()))
        .add_service(DomainControllerServiceServer::new(
            apis.domain_controller.clone(),
        ))
        .add_service(StatusServiceServer::new(apis.status.clone()))
        .add_service(VerifyServiceServer::new(apis.verify.clone()))
        .add_service(WritebackServiceServer::new(apis.writeback.clone()))
        .add_service(ConfigurationServiceServer::new(apis.configuration.clone()))
        .add_service(CloudSyncServiceServer::new(apis.cloud_sync.clone()))
        .add_service(DiagnosticsServiceServer::new(apis.diagnostics.clone()))
        .add_service(PackageServiceServer::new(apis.package.clone()))
        .into_axum_router();

    let json = super::rpc::rpc_table!(json_router!(probes(app), apis));
    Ok(Routers {
        grpc,
        json: with_fallbacks(Router::new().merge(json)),
        allowed_origins: allowed_origins.into(),
        audit,
    })
}
