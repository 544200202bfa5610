//! gRPC services of DirectoryService and DomainControllerService.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use secrecy::SecretString;
use tonic::{Request, Response, Status};

use super::convert::timestamp;
use super::grpc::caller;
use super::status::to_status;
use crate::backends::directory::{BindCredential, ProbeReport};
use crate::workflows::directory::{AddDirectoryRequest, DirectoryRecord};
use crate::workflows::domain_controllers::{DiscoveredDc, PriorityRecord, SetPriorityRequest};
use crate::workflows::{App, Error};
use provd_proto::v1;

fn status(err: Error) -> Status {
    to_status(&err)
}

/// Moves the secret out of the request message (whose Drop zeroizes what
/// is left) into a secret type.
pub fn bind_credential(credential: Option<v1::Credential>) -> Option<BindCredential> {
    credential.map(|mut c| BindCredential {
        username: std::mem::take(&mut c.username),
        password: SecretString::from(std::mem::take(&mut c.password)),
    })
}

pub fn duration(d: Duration) -> pbjson_types::Duration {
    pbjson_types::Duration {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
    }
}

fn system_time(t: SystemTime) -> pbjson_types::Timestamp {
    let ms = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    timestamp(ms)
}

fn functional_level(version: i32) -> v1::FunctionalLevel {
    match version {
        0 => v1::FunctionalLevel::Windows2000,
        1 => v1::FunctionalLevel::Windows2003Interim,
        2 => v1::FunctionalLevel::Windows2003,
        3 => v1::FunctionalLevel::Windows2008,
        4 => v1::FunctionalLevel::Windows2008R2,
        5 => v1::FunctionalLevel::Windows2012,
        6 => v1::FunctionalLevel::Windows2012R2,
        7 => v1::FunctionalLevel::Windows2016,
        10 => v1::FunctionalLevel::Windows2025,
        _ => v1::FunctionalLevel::Unspecified,
    }
}

pub fn directory(record: &DirectoryRecord, preferred: Vec<String>) -> v1::Directory {
    v1::Directory {
        domain: record.domain.clone(),
        netbios_name: record.netbios_name.clone(),
        domain_dn: record.domain_dn.clone(),
        domain_sid: record.domain_sid.clone(),
        forest: record.forest.clone(),
        configuration_dn: record.configuration_dn.clone(),
        schema_dn: record.schema_dn.clone(),
        domain_functional_level: functional_level(record.domain_behavior_version).into(),
        domain_behavior_version: record.domain_behavior_version,
        forest_functional_level: functional_level(record.forest_behavior_version).into(),
        forest_behavior_version: record.forest_behavior_version,
        prerequisites: record
            .prerequisites
            .iter()
            .map(|p| v1::DirectoryPrerequisite {
                name: p.name.clone(),
                ok: p.ok,
                message: p.message.clone(),
                blocking: p.blocking,
            })
            .collect(),
        preferred_domain_controllers: preferred,
        last_domain_controller: record.last_domain_controller.clone(),
        add_time: Some(timestamp(record.add_time_ms)),
        update_time: Some(timestamp(record.update_time_ms)),
    }
}

fn probe(report: ProbeReport) -> v1::DcProbe {
    v1::DcProbe {
        reachable: report.reachable,
        error: report.error.unwrap_or_default(),
        address: report.address.map(|a| a.to_string()).unwrap_or_default(),
        ldaps_handshake_latency: report.handshake_latency.map(duration),
        bind_latency: report.bind_latency.map(duration),
        certificate_subject: report.certificate_subject.unwrap_or_default(),
        certificate_not_after: report.certificate_not_after.map(system_time),
        certificate_trusted: report.certificate_trusted,
        clock_skew: report.clock_skew_secs.map(|s| pbjson_types::Duration {
            seconds: s,
            nanos: 0,
        }),
        dns_host_name: report.dns_host_name.unwrap_or_default(),
        default_naming_context: report.default_naming_context.unwrap_or_default(),
        probe_time: report.started.map(system_time),
    }
}

fn domain_controller(dc: DiscoveredDc) -> v1::DomainController {
    let source = match (dc.from_dns, dc.from_directory) {
        (true, true) => v1::DcSource::Both,
        (true, false) => v1::DcSource::Dns,
        (false, true) => v1::DcSource::Directory,
        (false, false) => v1::DcSource::Unspecified,
    };
    v1::DomainController {
        host_name: dc.host,
        addresses: dc.addresses,
        site: dc.site,
        source: source.into(),
        srv_priority: dc.srv.as_ref().map_or(0, |s| u32::from(s.priority)),
        srv_weight: dc.srv.as_ref().map_or(0, |s| u32::from(s.weight)),
        priority_rank: dc.priority_rank,
        probe: dc.probe.map(probe),
    }
}

fn priority(domain: String, record: PriorityRecord) -> v1::GetPriorityResponse {
    v1::GetPriorityResponse {
        domain,
        etag: record.etag(),
        update_time: record.update_time_ms.map(timestamp),
        domain_controllers: record.dcs,
    }
}

#[derive(Clone)]
pub struct DirectoryApi {
    pub app: Arc<App>,
}

#[tonic::async_trait]
impl v1::directory_service_server::DirectoryService for DirectoryApi {
    async fn add_directory(
        &self,
        request: Request<v1::AddDirectoryRequest>,
    ) -> Result<Response<v1::AddDirectoryResponse>, Status> {
        let who = caller(&request);
        let mut req = request.into_inner();
        let add = AddDirectoryRequest {
            domain: std::mem::take(&mut req.domain),
            credential: bind_credential(req.credential.take()),
            preferred_domain_controllers: std::mem::take(&mut req.preferred_domain_controllers),
            request_id: std::mem::take(&mut req.request_id),
        };
        let record = self.app.directories.add(&who, add).await.map_err(status)?;
        Ok(Response::new(v1::AddDirectoryResponse {
            operation: Some(super::convert::operation(&record)),
        }))
    }

    async fn list_directories(
        &self,
        _request: Request<v1::ListDirectoriesRequest>,
    ) -> Result<Response<v1::ListDirectoriesResponse>, Status> {
        let rows = self.app.directories.list().await.map_err(status)?;
        Ok(Response::new(v1::ListDirectoriesResponse {
            directories: rows
                .into_iter()
                .map(|(record, preferred)| directory(&record, preferred))
                .collect(),
        }))
    }

    async fn remove_directory(
        &self,
        request: Request<v1::RemoveDirectoryRequest>,
    ) -> Result<Response<v1::RemoveDirectoryResponse>, Status> {
        let who = caller(&request);
        let req = request.into_inner();
        let record = self
            .app
            .directories
            .remove(&who, &req.domain, &req.request_id)
            .await
            .map_err(status)?;
        Ok(Response::new(v1::RemoveDirectoryResponse {
            operation: Some(super::convert::operation(&record)),
        }))
    }
}

#[derive(Clone)]
pub struct DomainControllerApi {
    pub app: Arc<App>,
}

#[tonic::async_trait]
impl v1::domain_controller_service_server::DomainControllerService for DomainControllerApi {
    async fn discover_domain_controllers(
        &self,
        request: Request<v1::DiscoverDomainControllersRequest>,
    ) -> Result<Response<v1::DiscoverDomainControllersResponse>, Status> {
        let mut req = request.into_inner();
        let timeout = super::convert::duration_from_proto("probe_timeout", req.probe_timeout)
            .map_err(status)?;
        let discovery = self
            .app
            .dcs
            .discover(
                &req.domain,
                bind_credential(req.credential.take()),
                req.skip_probe,
                timeout,
            )
            .await
            .map_err(status)?;
        Ok(Response::new(v1::DiscoverDomainControllersResponse {
            domain: discovery.domain,
            domain_controllers: discovery.dcs.into_iter().map(domain_controller).collect(),
            directory_unavailable_reason: discovery
                .directory_unavailable_reason
                .unwrap_or_default(),
        }))
    }

    async fn get_priority(
        &self,
        request: Request<v1::GetPriorityRequest>,
    ) -> Result<Response<v1::GetPriorityResponse>, Status> {
        let (domain, record) = self
            .app
            .dcs
            .get_priority(&request.get_ref().domain)
            .await
            .map_err(status)?;
        Ok(Response::new(priority(domain, record)))
    }

    async fn set_priority(
        &self,
        request: Request<v1::SetPriorityRequest>,
    ) -> Result<Response<v1::SetPriorityResponse>, Status> {
        let who = caller(&request);
        let req = request.into_inner();
        let record = self
            .app
            .dcs
            .set_priority(
                &who,
                SetPriorityRequest {
                    domain: req.domain,
                    domain_controllers: req.domain_controllers,
                    etag: req.etag,
                    allow_unreachable: req.allow_unreachable,
                    request_id: req.request_id,
                },
            )
            .await
            .map_err(status)?;
        Ok(Response::new(v1::SetPriorityResponse {
            operation: Some(super::convert::operation(&record)),
        }))
    }
}
