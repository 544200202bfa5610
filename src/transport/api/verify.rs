//! VerifyService gRPC impl: conversions only; the checks live in
//! `workflows::verify`.

use std::sync::Arc;

use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::BoxStream;
use crate::transport::convert::{bind_credential, duration};
use crate::transport::convert::{duration_from_proto, timestamp};
use crate::workflows::App;
use crate::workflows::verify::{
    Category, Check, Report, Status as CheckStatus, VerifyItem, VerifyRequest,
};
use provd_proto::v1;

#[derive(Clone)]
pub struct VerifyApi {
    pub app: Arc<App>,
}

fn category_from_proto(value: i32) -> Option<Category> {
    match v1::CheckCategory::try_from(value).ok()? {
        v1::CheckCategory::Unspecified => None,
        v1::CheckCategory::Host => Some(Category::Host),
        v1::CheckCategory::Tenant => Some(Category::Tenant),
        v1::CheckCategory::Directory => Some(Category::Directory),
        v1::CheckCategory::Writeback => Some(Category::Writeback),
    }
}

fn category(c: Category) -> v1::CheckCategory {
    match c {
        Category::Host => v1::CheckCategory::Host,
        Category::Tenant => v1::CheckCategory::Tenant,
        Category::Directory => v1::CheckCategory::Directory,
        Category::Writeback => v1::CheckCategory::Writeback,
    }
}

fn check_status(s: CheckStatus) -> v1::CheckStatus {
    match s {
        CheckStatus::Pass => v1::CheckStatus::Pass,
        CheckStatus::Warn => v1::CheckStatus::Warn,
        CheckStatus::Fail => v1::CheckStatus::Fail,
        CheckStatus::Skip => v1::CheckStatus::Skip,
    }
}

fn check(c: Check) -> v1::Check {
    v1::Check {
        id: c.id.to_owned(),
        category: category(c.category).into(),
        status: check_status(c.status).into(),
        subject: c.subject,
        message: c.message,
        remedy: c.remedy,
        duration: Some(duration(c.duration)),
        attributes: c.attributes.into_iter().collect(),
    }
}

fn report(r: Report) -> v1::VerifyReport {
    v1::VerifyReport {
        status: check_status(r.status).into(),
        pass_count: r.pass,
        warn_count: r.warn,
        fail_count: r.fail,
        skip_count: r.skip,
        start_time: Some(timestamp(r.start_time_ms)),
        duration: Some(duration(r.duration)),
    }
}

#[tonic::async_trait]
impl v1::verify_service_server::VerifyService for VerifyApi {
    type VerifyStream = BoxStream<v1::VerifyResponse>;

    async fn verify(
        &self,
        request: Request<v1::VerifyRequest>,
    ) -> Result<Response<Self::VerifyStream>, Status> {
        let mut r = request.into_inner();
        let check_timeout =
            duration_from_proto("check_timeout", r.check_timeout).map_err(Status::from)?;
        let req = VerifyRequest {
            domains: std::mem::take(&mut r.domains),
            categories: r
                .categories
                .iter()
                .map(|c| category_from_proto(*c))
                .collect(),
            credential: bind_credential(r.credential.take()).map_err(Status::from)?,
            check_timeout,
        };
        let rx = self.app.verify.verify(req).await.map_err(Status::from)?;
        let stream = ReceiverStream::new(rx).map(|item| {
            Ok(v1::VerifyResponse {
                item: Some(match item {
                    VerifyItem::Check(c) => v1::verify_response::Item::Check(check(c)),
                    VerifyItem::Report(r) => v1::verify_response::Item::Report(report(r)),
                }),
            })
        });
        Ok(Response::new(Box::pin(stream)))
    }
}
