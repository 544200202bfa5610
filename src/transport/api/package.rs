//! PackageService gRPC impl: the stream's first message to the upload's
//! metadata, each later chunk to the workflow's writer, the end of the
//! stream to its finish. What is kept, checked and refused is the
//! workflow's (`workflows::package`).

use std::sync::Arc;

use tonic::{Request, Response, Status, Streaming};

use crate::workflows::package::{UploadDone, UploadMetadata, UploadStart, UploadState};
use crate::workflows::{App, Error};
use provd_proto::v1;
use v1::upload_package_request::Part;

#[derive(Clone)]
pub struct PackageApi {
    pub app: Arc<App>,
}

fn done(d: UploadDone) -> v1::UploadPackageResponse {
    v1::UploadPackageResponse {
        sha256: d.sha256,
        size: d.size,
        source: d.source,
        already_staged: d.already_staged,
        bytes_received: d.bytes_received,
    }
}

fn misplaced(field: &str, what: &str) -> Status {
    Status::from(Error::invalid(field, what))
}

#[tonic::async_trait]
impl v1::package_service_server::PackageService for PackageApi {
    async fn upload_package(
        &self,
        request: Request<Streaming<v1::UploadPackageRequest>>,
    ) -> Result<Response<v1::UploadPackageResponse>, Status> {
        let mut stream = request.into_inner();
        let first = stream.message().await?.and_then(|m| m.part);
        let Some(Part::Metadata(m)) = first else {
            return Err(misplaced(
                "metadata",
                "is required: the first message carries the metadata (and no chunk)",
            ));
        };
        let meta = UploadMetadata {
            sha256: m.sha256,
            size: m.size,
            file_name: m.file_name,
            offset: m.offset,
        };
        let mut writer = match self.app.uploads.begin(meta).await? {
            UploadStart::Done(d) => return Ok(Response::new(done(d))),
            UploadStart::Receiving(writer) => *writer,
        };
        // A broken stream ends here with its error; the bytes written so
        // far stay for a resume (the writer flushes each chunk).
        while let Some(message) = stream.message().await? {
            match message.part {
                Some(Part::Chunk(chunk)) => writer.write(&chunk).await?,
                Some(Part::Metadata(_)) => {
                    return Err(misplaced("metadata", "must be in the first message only"));
                }
                None => {}
            }
        }
        Ok(Response::new(done(writer.finish().await?)))
    }

    async fn get_upload(
        &self,
        request: Request<v1::GetUploadRequest>,
    ) -> Result<Response<v1::GetUploadResponse>, Status> {
        let state = self.app.uploads.state(&request.into_inner().sha256).await?;
        let answer = match state {
            UploadState::Absent => v1::GetUploadResponse {
                state: v1::UploadState::Absent as i32,
                ..Default::default()
            },
            UploadState::Partial { bytes_held } => v1::GetUploadResponse {
                state: v1::UploadState::Partial as i32,
                bytes_held,
                source: String::new(),
            },
            UploadState::Staged { size, source } => v1::GetUploadResponse {
                state: v1::UploadState::Staged as i32,
                bytes_held: size,
                source,
            },
        };
        Ok(Response::new(answer))
    }
}
