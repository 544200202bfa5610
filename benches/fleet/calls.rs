//! `provd.directory.calls` as the daemons export it: an OTLP/gRPC metrics
//! receiver on loopback (every daemon of a run exports there every second),
//! keeping each daemon's latest cumulative count per operation. The same
//! counter exists in the baseline build, so before and after are counted
//! the same way.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value;
use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point};

/// (exporting daemon, op, dc, outcome) → latest cumulative count.
type Latest = BTreeMap<(SocketAddr, String, String, String), u64>;

#[derive(Clone, Default)]
pub struct Calls(Arc<Mutex<Latest>>);

#[tonic::async_trait]
impl MetricsService for Calls {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        let peer = request
            .remote_addr()
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
        let mut latest = self.0.lock().unwrap();
        let metrics = request
            .into_inner()
            .resource_metrics
            .into_iter()
            .flat_map(|r| r.scope_metrics)
            .flat_map(|s| s.metrics)
            .filter(|m| m.name == "provd.directory.calls");
        for m in metrics {
            let Some(metric::Data::Sum(sum)) = m.data else {
                continue;
            };
            for point in sum.data_points {
                let attr = |key: &str| {
                    point
                        .attributes
                        .iter()
                        .find(|kv| kv.key == key)
                        .and_then(|kv| kv.value.as_ref()?.value.as_ref())
                        .map(|v| match v {
                            any_value::Value::StringValue(s) => s.clone(),
                            other => format!("{other:?}"),
                        })
                        .unwrap_or_default()
                };
                let value = match point.value {
                    Some(number_data_point::Value::AsInt(n)) => u64::try_from(n).unwrap_or(0),
                    Some(number_data_point::Value::AsDouble(d)) => d as u64,
                    None => 0,
                };
                latest.insert((peer, attr("op"), attr("dc"), attr("outcome")), value);
            }
        }
        Ok(tonic::Response::new(ExportMetricsServiceResponse {
            partial_success: None,
        }))
    }
}

impl Calls {
    /// Serves on 127.0.0.1; the endpoint for `--otlp-endpoint`.
    pub fn serve(&self, runtime: &tokio::runtime::Runtime) -> String {
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let service = MetricsServiceServer::new(self.clone());
        runtime.spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
        );
        format!("http://{addr}")
    }

    pub fn clear(&self) {
        self.0.lock().unwrap().clear();
    }

    /// Calls per operation kind (bind, search, sd_read, ...), summed over
    /// every daemon, DC and outcome.
    pub fn by_op(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for ((_, op, _, _), n) in self.0.lock().unwrap().iter() {
            *out.entry(op.clone()).or_default() += n;
        }
        out
    }
}
