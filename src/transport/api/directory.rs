//! DirectoryService (`directory.proto`).

use std::sync::Arc;

use tonic::{Request, Response, Status};

use crate::transport::convert::{bind_credential, timestamp};
use crate::workflows::App;
use crate::workflows::directory::{AddDirectoryRequest, DirectoryRecord};
use provd_proto::v1;

use super::caller;
use super::started;

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

pub(crate) fn directory(record: &DirectoryRecord, preferred: Vec<String>) -> v1::Directory {
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
            credential: bind_credential(req.credential.take()).map_err(Status::from)?,
            preferred_domain_controllers: std::mem::take(&mut req.preferred_domain_controllers),
            request_id: std::mem::take(&mut req.request_id),
        };
        let record = self
            .app
            .directories
            .add(&who, add)
            .await
            .map_err(Status::from)?;
        Ok(started(v1::AddDirectoryResponse {
            operation: Some(crate::transport::convert::operation(&record)),
        }))
    }

    async fn list_directories(
        &self,
        _request: Request<v1::ListDirectoriesRequest>,
    ) -> Result<Response<v1::ListDirectoriesResponse>, Status> {
        let rows = self.app.directories.list().await.map_err(Status::from)?;
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
            .map_err(Status::from)?;
        Ok(started(v1::RemoveDirectoryResponse {
            operation: Some(crate::transport::convert::operation(&record)),
        }))
    }
}
