//! Issue 13's property, "never INTERNAL for bad input", over the whole
//! contract: every RPC in the descriptor set gets every hostile case of
//! `cases.rs` over gRPC and HTTP/JSON, against a daemon on the fakes, and
//! must answer without a server error or a dropped connection, naming the
//! field where the value is one no field accepts; the daemon must still
//! serve afterwards. The test prints the count of cases and the codes they
//! got per RPC.

mod cases;
mod fuzz;
mod wire;

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::{Buf, BufMut};
use provd::pki::Role;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;
use tonic_types::StatusExt;

use crate::common::hermetic::Hermetic;
use cases::{Case, Expect, Rpc, Schema};

/// Passes request bytes through untouched, so a case can send what no
/// generated type would encode.
#[derive(Debug, Clone, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;
    fn encoder(&mut self) -> Self {
        RawCodec
    }
    fn decoder(&mut self) -> Self {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, tonic::Status> {
        let mut out = vec![0; src.remaining()];
        src.copy_to_slice(&mut out);
        Ok(Some(out))
    }
}

/// What one request got back.
#[derive(Debug)]
struct Answer {
    /// gRPC code name; over HTTP the JSON body's code (or `HTTP <status>`).
    code: String,
    http_status: Option<u16>,
    fields: Vec<String>,
    message: String,
    /// The connection failed or the answer was not an answer.
    broken: Option<String>,
}

const TIMEOUT: Duration = Duration::from_secs(20);

async fn over_grpc(channel: &Channel, rpc: &Rpc, body: Vec<u8>) -> Answer {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    let call = async {
        grpc.ready()
            .await
            .map_err(|e| tonic::Status::unknown(format!("transport: {e}")))?;
        let path = rpc.path.parse().unwrap();
        if rpc.server_streaming {
            let mut stream = grpc
                .server_streaming(tonic::Request::new(body), path, RawCodec)
                .await?
                .into_inner();
            // The first item tells whether the request was accepted; a watch
            // that goes on is an accepted request.
            match tokio::time::timeout(Duration::from_secs(2), stream.message()).await {
                Ok(item) => item.map(|_| ()),
                Err(_) => Ok(()),
            }
        } else {
            grpc.unary(tonic::Request::new(body), path, RawCodec)
                .await
                .map(|_| ())
        }
    };
    let status = match tokio::time::timeout(TIMEOUT, call).await {
        Ok(Ok(())) => return answer("OK", None, Vec::new(), String::new()),
        Ok(Err(status)) => status,
        Err(_) => return broken("no answer within 20 s"),
    };
    let fields = status
        .get_error_details()
        .bad_request()
        .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
        .unwrap_or_default();
    let mut got = answer(
        provd_proto::code_name(status.code()),
        None,
        fields,
        status.message().to_owned(),
    );
    // A status the client made up because the connection broke (never
    // INVALID_ARGUMENT, whose message may name a field such as
    // `ldap_connection_timeout_ms`).
    if status.code() != tonic::Code::InvalidArgument
        && (status.message().starts_with("transport")
            || status.message().contains("h2 protocol error")
            || status.message().contains("connection"))
    {
        got.broken = Some(status.message().to_owned());
    }
    got
}

async fn over_http(client: &reqwest::Client, url: &str, body: &str) -> Answer {
    let send = client
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send();
    let response = match tokio::time::timeout(TIMEOUT, send).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return broken(&format!("{e:?}")),
        Err(_) => return broken("no answer within 20 s"),
    };
    let status = response.status().as_u16();
    if status == 200 {
        return answer("OK", Some(200), Vec::new(), String::new());
    }
    let text = match tokio::time::timeout(TIMEOUT, response.text()).await {
        Ok(Ok(text)) => text,
        other => return broken(&format!("HTTP {status} without a body: {other:?}")),
    };
    let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) else {
        return broken(&format!(
            "HTTP {status} with a body that is not JSON: {text:.200}"
        ));
    };
    let error = &json["error"];
    let fields = error["fieldViolations"]
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|v| v["field"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let code = error["code"].as_str().unwrap_or("none");
    answer(
        code,
        Some(status),
        fields,
        error["message"].as_str().unwrap_or_default().to_owned(),
    )
}

fn answer(code: &str, http_status: Option<u16>, fields: Vec<String>, message: String) -> Answer {
    Answer {
        code: code.to_owned(),
        http_status,
        fields,
        message,
        broken: None,
    }
}

fn broken(why: &str) -> Answer {
    Answer {
        broken: Some(why.to_owned()),
        ..answer("BROKEN", None, Vec::new(), String::new())
    }
}

/// `desiredState.domains[0].domain` → `desired_state.domains.domain`.
fn normalized(field: &str) -> String {
    let mut out = String::new();
    let mut in_index = false;
    for c in field.chars() {
        match c {
            '[' => in_index = true,
            ']' => in_index = false,
            _ if in_index => {}
            c if c.is_ascii_uppercase() => {
                out.push('_');
                out.push(c.to_ascii_lowercase());
            }
            c => out.push(c),
        }
    }
    out
}

/// What is wrong with `got` for `case`, if anything.
fn judge(case: &Case, got: &Answer) -> Option<String> {
    if let Some(why) = &got.broken {
        return Some(format!("broken: {why}"));
    }
    if matches!(got.code.as_str(), "INTERNAL" | "UNKNOWN" | "DATA_LOSS") {
        return Some(format!("{}: {}", got.code, got.message));
    }
    if got
        .http_status
        .is_some_and(|s| s >= 500 && s != 501 && s != 503)
    {
        return Some(format!("HTTP {:?} {}", got.http_status, got.message));
    }
    if case.expect == Expect::NoServerError {
        return None;
    }
    if got.code != "INVALID_ARGUMENT" {
        return Some(format!(
            "expected INVALID_ARGUMENT naming {}, got {}: {:.200}",
            case.field, got.code, got.message
        ));
    }
    if case.field == "body" {
        return None;
    }
    let wanted = [normalized(&case.field), normalized(&case.oneof_field)];
    let leaf = case.field.rsplit('.').next().unwrap_or_default();
    let named = got.fields.iter().any(|f| {
        let f = normalized(f);
        wanted
            .iter()
            .any(|w| f == *w || f.starts_with(&format!("{w}.")) || w.ends_with(&format!(".{f}")))
    }) || (got.fields.is_empty()
        && (got.message.contains(leaf) || got.message.contains(&case.json_field)));
    (!named).then(|| {
        format!(
            "INVALID_ARGUMENT does not name {} (fields {:?}): {:.200}",
            case.field, got.fields, got.message
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rpc_answers_every_hostile_request_without_a_server_error() {
    let d = Hermetic::start().await;
    let http = d.h.http(Role::Admin);
    let schema = Schema::load();
    assert!(schema.rpcs.len() >= 20, "{} RPCs", schema.rpcs.len());
    let mut failures = Vec::new();
    let mut report = Vec::new();
    let mut total = 0;
    for rpc in &schema.rpcs {
        let mut codes: BTreeMap<String, usize> = BTreeMap::new();
        let mut count = 0;
        for case in schema.cases(rpc) {
            let mut answers = Vec::new();
            if let Some(bytes) = &case.wire {
                answers.push(("grpc", over_grpc(&d.channel, rpc, bytes.clone()).await));
            }
            if let Some(body) = &case.json {
                answers.push(("http", over_http(&http, &d.h.url(&rpc.path), body).await));
            }
            for (transport, got) in answers {
                count += 1;
                let label = match got.http_status {
                    Some(status) => format!("{} {status}", got.code),
                    None => got.code.clone(),
                };
                *codes.entry(label).or_default() += 1;
                // A client stream has no JSON form: every body is a 404.
                let problem = if rpc.client_streaming && transport == "http" {
                    (got.http_status != Some(404) || got.broken.is_some())
                        .then(|| format!("expected 404 (gRPC only), got {got:?}"))
                } else {
                    judge(&case, &got)
                };
                if let Some(problem) = problem {
                    failures.push(format!(
                        "{} {transport} {} = {}: {problem}",
                        rpc.path, case.field, case.label
                    ));
                }
            }
        }
        total += count;
        report.push(format!("{:<58} {count:>4}  {codes:?}", rpc.path));
        assert_serving(&d).await;
    }
    println!("hostile cases per RPC ({total} in all):");
    for line in &report {
        println!("  {line}");
    }
    d.shutdown().await;
    assert!(
        failures.is_empty(),
        "{} of {total} hostile requests were mishandled:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The daemon still answers health checks and a real request.
async fn assert_serving(d: &Hermetic) {
    let mut health = tonic_health::pb::health_client::HealthClient::new(d.channel.clone());
    let serving = health
        .check(tonic_health::pb::HealthCheckRequest::default())
        .await
        .expect("the daemon stopped serving health checks")
        .into_inner();
    assert_eq!(serving.status, 1, "health: {serving:?}");
    d.operations()
        .list_operations(provd_proto::v1::ListOperationsRequest::default())
        .await
        .expect("the daemon stopped answering ListOperations");
}
