//! A fuzz target for the HTTP/JSON decode path and the request validators
//! behind both transports: proptest mutates the contract test's cases
//! (byte flips, insertions, deletions, truncation) and sends them to a
//! daemon on the fakes. Property: never a server error or a dropped
//! connection, and the daemon keeps serving. proptest and not cargo-fuzz:
//! it runs in `cargo test` on stable, and a failure shrinks to the smallest
//! mutation of a named seed.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use provd::pki::Role;

use super::cases::{Expect, MIB, Schema};
use super::{assert_serving, judge, over_grpc, over_http};
use crate::common::hermetic::Hermetic;

/// One seed: an RPC and a case body (small ones: mutating 1 MiB is slow
/// and adds nothing the contract test does not already send).
struct Seed {
    rpc: usize,
    json: Option<String>,
    wire: Option<Vec<u8>>,
}

fn seeds(schema: &Schema) -> Vec<Seed> {
    let mut seeds = Vec::new();
    for (i, rpc) in schema.rpcs.iter().enumerate() {
        for case in schema.cases(rpc) {
            let small_json = case.json.filter(|j| j.len() < MIB / 4);
            let small_wire = case.wire.filter(|w| w.len() < MIB / 4);
            seeds.push(Seed {
                rpc: i,
                json: small_json,
                wire: small_wire,
            });
        }
    }
    seeds
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    Truncate(usize),
}

fn mutate(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        let len = bytes.len().max(1);
        match *m {
            Mutation::Flip(at, mask) if !bytes.is_empty() => bytes[at % len] ^= mask,
            Mutation::Insert(at, byte) => bytes.insert(at % (bytes.len() + 1), byte),
            Mutation::Delete(at) if !bytes.is_empty() => {
                bytes.remove(at % len);
            }
            Mutation::Truncate(at) => bytes.truncate(at % len),
            _ => {}
        }
    }
    bytes
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1..=255u8).prop_map(|(at, m)| Mutation::Flip(at, m)),
        (any::<usize>(), any::<u8>()).prop_map(|(at, b)| Mutation::Insert(at, b)),
        any::<usize>().prop_map(Mutation::Delete),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

#[test]
fn mutated_contract_cases_never_get_a_server_error() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let d = runtime.block_on(Hermetic::start());
    let http = d.h.http(Role::Admin);
    let schema = Schema::load();
    let seeds = seeds(&schema);
    let cases: u32 = std::env::var("PROVD_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (0..seeds.len(), prop::collection::vec(mutation(), 1..6));
    let result = runner.run(&strategy, |(seed, mutations)| {
        let seed = &seeds[seed];
        let rpc = &schema.rpcs[seed.rpc];
        // Only the "no server error" half of the property holds for an
        // arbitrary mutation.
        let any_answer = super::cases::Case {
            field: "body".into(),
            json_field: "body".into(),
            oneof_field: "body".into(),
            label: "mutated",
            wire: None,
            json: None,
            expect: Expect::NoServerError,
        };
        runtime.block_on(async {
            if let Some(json) = &seed.json {
                let body = mutate(json.clone().into_bytes(), &mutations);
                let body = String::from_utf8_lossy(&body).into_owned();
                let got = over_http(&http, &d.h.url(&rpc.path), &body).await;
                if let Some(problem) = judge(&any_answer, &got) {
                    return Err(TestCaseError::fail(format!(
                        "{} http {body:.300}: {problem}",
                        rpc.path
                    )));
                }
            }
            if let Some(wire) = &seed.wire {
                let body = mutate(wire.clone(), &mutations);
                let got = over_grpc(&d.channel, rpc, body.clone()).await;
                if let Some(problem) = judge(&any_answer, &got) {
                    return Err(TestCaseError::fail(format!(
                        "{} grpc {:02x?}: {problem}",
                        rpc.path,
                        &body[..body.len().min(64)]
                    )));
                }
            }
            Ok(())
        })
    });
    runtime.block_on(assert_serving(&d));
    runtime.block_on(d.shutdown());
    if let Err(err) = result {
        panic!("{err}");
    }
}
