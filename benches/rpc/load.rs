//! Load generation: the same encoded request sent by the same client to
//! either server. The client neither encodes nor decodes messages per call
//! (a pass-through codec), so client cost is equal for both servers and
//! what differs is the server's work.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use bytes::{Buf, BufMut, Bytes};
use hdrhistogram::Histogram;
use http::uri::PathAndQuery;
use tonic::client::Grpc;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;

/// Sends and receives already-encoded messages.
#[derive(Clone, Copy, Default)]
pub struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;
    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }
    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = tonic::Status;
    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Bytes;
    type Error = tonic::Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, tonic::Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

/// One call of one RPC: a unary call, or a server stream read to its end.
#[derive(Clone)]
pub struct RawCall {
    pub path: &'static str,
    pub request: Bytes,
    pub streaming: bool,
}

impl RawCall {
    /// The response messages (one for a unary call).
    pub async fn call(&self, grpc: &mut Grpc<Channel>) -> Result<Vec<Bytes>, tonic::Status> {
        grpc.ready()
            .await
            .map_err(|e| tonic::Status::unavailable(format!("channel not ready: {e}")))?;
        let path = PathAndQuery::from_static(self.path);
        let request = tonic::Request::new(self.request.clone());
        if !self.streaming {
            let response = grpc.unary(request, path, RawCodec).await?;
            return Ok(vec![response.into_inner()]);
        }
        let mut stream = grpc
            .server_streaming(request, path, RawCodec)
            .await?
            .into_inner();
        let mut messages = Vec::new();
        while let Some(message) = stream.message().await? {
            messages.push(message);
        }
        Ok(messages)
    }
}

pub struct Run {
    pub ok: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub elapsed: Duration,
    pub latency_ns: Histogram<u64>,
}

impl Run {
    pub fn rps(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }
}

fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid histogram bounds")
}

/// Calls for `duration` with `concurrency` tasks spread round-robin over
/// `channels` (each task ends with the call in flight at the deadline).
pub async fn load(
    channels: &[Channel],
    concurrency: usize,
    duration: Duration,
    call: &RawCall,
) -> Result<Run> {
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::with_capacity(concurrency);
    for i in 0..concurrency {
        // One client per task, as a generated client is used.
        let mut grpc = Grpc::new(channels[i % channels.len()].clone());
        let call = call.clone();
        tasks.push(tokio::spawn(async move {
            let mut latency = new_histogram();
            let (mut errors, mut first_error) = (0, None);
            // At least one call per task, however late it started.
            loop {
                let t0 = Instant::now();
                let outcome = call.call(&mut grpc).await;
                let ns = u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX);
                match outcome {
                    Ok(_) => latency.saturating_record(ns.max(1)),
                    Err(status) => {
                        errors += 1;
                        first_error.get_or_insert_with(|| format!("{status}"));
                    }
                }
                if Instant::now() >= deadline {
                    break;
                }
            }
            (latency, errors, first_error)
        }));
    }
    let mut run = Run {
        ok: 0,
        errors: 0,
        first_error: None,
        elapsed: Duration::ZERO,
        latency_ns: new_histogram(),
    };
    for task in tasks {
        let (latency, errors, first_error) = task.await.context("load task panicked")?;
        run.latency_ns
            .add(&latency)
            .map_err(|e| anyhow!("merge histograms: {e:?}"))?;
        run.errors += errors;
        if run.first_error.is_none() {
            run.first_error = first_error;
        }
    }
    run.elapsed = started.elapsed();
    run.ok = run.latency_ns.len();
    Ok(run)
}

/// `run`, unless a call failed (a ratio of failures would mean nothing).
pub fn all_ok(label: &str, run: Run) -> Result<Run> {
    if run.errors > 0 || run.ok == 0 {
        bail!(
            "{label}: {} calls failed, {} succeeded; first error: {}",
            run.errors,
            run.ok,
            run.first_error.unwrap_or_default()
        );
    }
    Ok(run)
}
