//! DomainControllerService (`domain_controller.proto`).

use std::sync::Arc;

use tonic::{Request, Response, Status};

use crate::model::ProbeReport;
use crate::transport::convert::{bind_credential, duration, system_time, timestamp};
use crate::workflows::App;
use crate::workflows::domain_controllers::{DiscoveredDc, PriorityRecord, SetPriorityRequest};
use provd_proto::v1;

use super::caller;
use super::started;

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
        let timeout =
            crate::transport::convert::duration_from_proto("probe_timeout", req.probe_timeout)
                .map_err(Status::from)?;
        let discovery = self
            .app
            .dcs
            .discover(
                &req.domain,
                bind_credential(req.credential.take()).map_err(Status::from)?,
                req.skip_probe,
                timeout,
            )
            .await
            .map_err(Status::from)?;
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
            .map_err(Status::from)?;
        Ok(Response::new(priority(domain, record)))
    }

    async fn set_priority(
        &self,
        request: Request<v1::SetPriorityRequest>,
    ) -> Result<Response<v1::SetPriorityResponse>, Status> {
        let who = caller(&request);
        let mut req = request.into_inner();
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
                    credential: bind_credential(req.credential.take()).map_err(Status::from)?,
                },
            )
            .await
            .map_err(Status::from)?;
        Ok(started(v1::SetPriorityResponse {
            operation: Some(crate::transport::convert::operation(&record)),
        }))
    }
}
