//! `provd.verify.check`: a Verify RPC's checks each arrive as gauge points
//! with their status.
//!
//! The gauge is process-global and last-value: the tests that record
//! checks hold `SERIAL` so one's values are not overwritten by another's
//! before the export.

use provd_proto::v1;

use crate::common::hermetic::{Fakes, Hermetic};
use crate::common::otlp;

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const CHECK: &str = "provd.verify.check";

/// The metric label of a proto enum value: `CHECK_STATUS_FAIL` → `FAIL`.
fn label(name: &str) -> &str {
    name.rsplit('_').next().unwrap()
}

#[tokio::test]
async fn each_check_of_a_verify_run_arrives_as_a_gauge_point_with_its_status() {
    let _serial = SERIAL.lock().await;
    let receiver = otlp::receiver();
    let fakes = Fakes {
        host: provd::testkit::FakeHost::new().with_agent("1.1.1370.0"),
        ..Fakes::default()
    };
    let d = Hermetic::start_with(fakes).await;
    let mut stream = d
        .verify()
        .verify(v1::VerifyRequest::default())
        .await
        .unwrap()
        .into_inner();
    let mut checks = Vec::new();
    while let Some(item) = stream.message().await.unwrap() {
        if let Some(v1::verify_response::Item::Check(c)) = item.item {
            checks.push(c);
        }
    }
    assert!(checks.len() >= 5, "{checks:#?}");
    for c in &checks {
        let status = v1::CheckStatus::try_from(c.status).unwrap();
        let category = v1::CheckCategory::try_from(c.category).unwrap();
        let labels = [
            ("check", c.id.as_str()),
            ("subject", c.subject.as_str()),
            ("category", label(category.as_str_name())),
        ];
        // 1 on the series of its status, 0 on the other three.
        for other in ["PASS", "WARN", "FAIL", "SKIP"] {
            let mut with_status = labels.to_vec();
            with_status.push(("status", other));
            let want = if other == label(status.as_str_name()) {
                1.0
            } else {
                0.0
            };
            receiver
                .wait_for_value(CHECK, &with_status, |v| v == want)
                .await;
        }
    }
    d.h.shutdown().await;
}
