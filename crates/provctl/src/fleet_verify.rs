//! `provctl fleet verify`: Verify on every host of an inventory, one row
//! each. A host fails when its report is FAIL or SKIP (nothing passed), or
//! when it cannot be reached or answers the call with an error; WARN and
//! PASS do not (`provd.fleet.verify` and `provd_verify` judge alike).

use anyhow::bail;
use serde::Serialize;

use provd_proto::v1;
use provd_proto::v1::verify_service_client::VerifyServiceClient;

use super::connect;
use super::hosts::{Host, fan_out};

#[derive(Debug, Serialize)]
pub struct VerifyRow {
    pub host: String,
    /// PASS, WARN, FAIL, SKIP (the report's), or UNREACHABLE.
    pub status: String,
    /// Whether the host fails the sweep (the exit code's judge).
    pub failed: bool,
    pub pass: u32,
    pub warn: u32,
    pub fail: u32,
    pub skip: u32,
    /// Ids (and subjects) of the FAIL checks, or the error reaching the host.
    #[serde(rename = "failed_checks")]
    pub failed_checks: Vec<String>,
}

/// Whether a report's status fails the sweep.
pub fn fails(status: &str) -> bool {
    !matches!(status, "PASS" | "WARN")
}

/// Verify on every host (bounded concurrency), one row each.
pub async fn verify(
    hosts: Vec<Host>,
    credential: Option<v1::Credential>,
    concurrency: usize,
) -> Vec<VerifyRow> {
    fan_out(
        hosts,
        concurrency,
        |host| {
            let credential = credential.clone();
            async move {
                verify_one(&host, credential)
                    .await
                    .unwrap_or_else(|e| VerifyRow {
                        host: host.name.clone(),
                        status: "UNREACHABLE".into(),
                        failed: true,
                        pass: 0,
                        warn: 0,
                        fail: 0,
                        skip: 0,
                        failed_checks: vec![format!("{e:#}")],
                    })
            }
        },
        |r| &r.host,
    )
    .await
}

async fn verify_one(host: &Host, credential: Option<v1::Credential>) -> anyhow::Result<VerifyRow> {
    let channel = connect::connect(&host.settings).await?;
    let mut stream = VerifyServiceClient::new(channel)
        .verify(v1::VerifyRequest {
            credential,
            ..Default::default()
        })
        .await
        .map_err(|s| anyhow::anyhow!("{}: {}", s.code(), s.message()))?
        .into_inner();
    let mut failed = Vec::new();
    while let Some(item) = stream.message().await? {
        match item.item {
            Some(v1::verify_response::Item::Check(c))
                if c.status == v1::CheckStatus::Fail as i32 =>
            {
                failed.push(if c.subject.is_empty() {
                    c.id
                } else {
                    format!("{} [{}]", c.id, c.subject)
                });
            }
            Some(v1::verify_response::Item::Report(r)) => {
                let status = v1::CheckStatus::try_from(r.status)
                    .map(|s| {
                        s.as_str_name()
                            .trim_start_matches("CHECK_STATUS_")
                            .to_owned()
                    })
                    .unwrap_or_default();
                return Ok(VerifyRow {
                    host: host.name.clone(),
                    failed: fails(&status),
                    status,
                    pass: r.pass_count,
                    warn: r.warn_count,
                    fail: r.fail_count,
                    skip: r.skip_count,
                    failed_checks: failed,
                });
            }
            _ => {}
        }
    }
    bail!("the verify stream ended without a report")
}

pub fn render_verify(rows: &[VerifyRow]) -> String {
    let width = rows.iter().map(|r| r.host.len()).max().unwrap_or(4).max(4);
    let mut out = format!(
        "{:<width$}  {:<11}  {:>4}  {:>4}  {:>4}  {:>4}  FAILED\n",
        "HOST", "STATUS", "PASS", "WARN", "FAIL", "SKIP"
    );
    for r in rows {
        out.push_str(&format!(
            "{:<width$}  {:<11}  {:>4}  {:>4}  {:>4}  {:>4}  {}\n",
            r.host,
            r.status,
            r.pass,
            r.warn,
            r.fail,
            r.skip,
            r.failed_checks.join(", ")
        ));
    }
    let failed = rows.iter().filter(|r| r.failed).count();
    out.push_str(&format!(
        "\n{} host(s): {} ok, {} failed\n",
        rows.len(),
        rows.len() - failed,
        failed
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_pass_and_warn_pass() {
        for (status, failed) in [
            ("PASS", false),
            ("WARN", false),
            ("FAIL", true),
            ("SKIP", true),
            ("UNREACHABLE", true),
        ] {
            assert_eq!(fails(status), failed, "{status}");
        }
    }
}
