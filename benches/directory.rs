//! Directory benchmark against the Samba lab (`deploy/lab/lab.sh up` first;
//! the bench reads `lab.sh env`). In one run, against DC1:
//!   * bind: provd's backend (TCP + TLS + simple bind + unbind, a fresh
//!     connection each time) vs `ldapsearch` doing the same bind and a base
//!     search of the RootDSE;
//!   * search: all users of the domain (paged, subtree) through provd's
//!     backend vs `ldapsearch` with the same filter, also a fresh connection
//!     per iteration;
//!   * DC discovery of the two DCs (SRV + directory list + probes) through
//!     the workflow, as an RPC client would see it minus transport;
//!   * with `KRB5_CONFIG` set to the lab's (`LAB_KRB5_CONFIG`): the Kerberos
//!     bind of the lab host `VM$` from its keytab (sealed on 389; the ticket
//!     cached in provd's memory after the first), against provd's simple bind
//!     above and `ldapsearch -Y GSSAPI` on a cache `kinit -k` filled (when
//!     Cyrus SASL's GSSAPI module is installed).
//!
//! Prints medians and the ratio provd / ldapsearch (target ≤ 1.2).
//! `ldapsearch` pays a process start each time; the bench also times
//! `ldapsearch -VV` (start and exit only) so that cost can be read off.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test that unwraps is asserting

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use provd::backends::directory::ldap::{LdapSettings, LdapTransport};
use provd::backends::directory::{
    BindCredential, BindSecret, Directory, KerberosSource, LdapDirectory, Scope,
};

const ITERATIONS: usize = 30;

fn lab_env() -> BTreeMap<String, String> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/lab/lab.sh");
    let out = Command::new(script)
        .arg("env")
        .output()
        .expect("run lab.sh env");
    assert!(out.status.success(), "lab.sh env failed: is the lab up?");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("export "))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.trim_matches(['\'', '"']).to_owned()))
        .collect()
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn time_command(mut cmd: impl FnMut() -> Command) -> Duration {
    let samples = (0..ITERATIONS)
        .map(|_| {
            let started = Instant::now();
            let out = cmd().output().expect("run ldapsearch");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            started.elapsed()
        })
        .collect();
    median(samples)
}

fn main() {
    provd::install_crypto_provider();
    let env = lab_env();
    let get = |k: &str| env.get(k).unwrap_or_else(|| panic!("{k} missing")).clone();
    let (dc1, ip1, ca, upn, password, base) = (
        get("LAB_DC1_HOST"),
        get("LAB_DC1_IP"),
        get("LAB_CA_PEM"),
        get("LAB_ADMIN_UPN"),
        get("LAB_PASSWORD"),
        get("LAB_BASE_DN"),
    );
    let dns: Vec<_> = get("LAB_DNS_SERVERS")
        .split_whitespace()
        .map(|s| s.parse().unwrap())
        .collect();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let directory = Arc::new(
        LdapDirectory::new(
            Some(Path::new(&ca)),
            &dns,
            LdapSettings {
                transport: LdapTransport::Ldaps,
                kerberos_over_tls: false,
                connect_timeout: Duration::from_secs(5),
                operation_timeout: Duration::from_secs(30),
                page_size: 500,
            },
        )
        .unwrap(),
    );
    let credential = || BindCredential::simple(upn.clone(), password.clone());
    let filter = "(&(objectCategory=person)(objectClass=user))";

    let (bind, search, users) = runtime.block_on(async {
        // Warm-up: DNS cache, TLS session setup paths.
        for _ in 0..3 {
            let s = directory.connect(&dc1, &credential()).await.unwrap();
            s.unbind().await;
        }
        let mut binds = Vec::new();
        for _ in 0..ITERATIONS {
            let started = Instant::now();
            let s = directory.connect(&dc1, &credential()).await.unwrap();
            s.unbind().await;
            binds.push(started.elapsed());
        }
        let mut searches = Vec::new();
        let mut users = 0;
        for _ in 0..ITERATIONS {
            let started = Instant::now();
            let mut s = directory.connect(&dc1, &credential()).await.unwrap();
            users = s
                .search(&base, Scope::Subtree, filter, &["sAMAccountName"])
                .await
                .unwrap()
                .len();
            s.unbind().await;
            searches.push(started.elapsed());
        }
        (median(binds), median(searches), users)
    });

    let ldapsearch = |extra: &[&str]| {
        let mut cmd = Command::new("ldapsearch");
        cmd.env("LDAPTLS_CACERT", &ca)
            .env("LDAPTLS_REQCERT", "demand")
            .args(["-LLL", "-x", "-H"])
            .arg(format!("ldaps://{ip1}"))
            .args(["-D", &upn, "-w", &password])
            .args(extra);
        cmd
    };
    let ls_bind = time_command(|| ldapsearch(&["-s", "base", "-b", "", "(objectClass=*)", "1.1"]));
    let ls_search = time_command(|| {
        ldapsearch(&[
            "-E",
            "pr=500/noprompt",
            "-b",
            &base,
            filter,
            "sAMAccountName",
        ])
    });
    let spawn = time_command(|| {
        let mut c = Command::new("ldapsearch");
        c.arg("-VV");
        c
    });

    let discovery = runtime.block_on(async {
        let mut samples = Vec::new();
        for _ in 0..5 {
            let started = Instant::now();
            let targets = directory.srv_lookup(&get("LAB_DOMAIN")).await.unwrap();
            let probes = targets.iter().map(|t| {
                let d = directory.clone();
                let cred = credential();
                let host = t.host.clone();
                async move { d.probe(&host, Some(&cred), Duration::from_secs(5)).await }
            });
            let reports = futures_util::future::join_all(probes).await;
            assert!(reports.iter().all(|r| r.reachable));
            samples.push(started.elapsed());
        }
        median(samples)
    });

    println!("directory benchmark, DC {dc1} ({ip1}), {ITERATIONS} iterations each, medians");
    println!(
        "{:<44} {:>10} {:>12} {:>7}",
        "", "provd ms", "ldapsearch ms", "ratio"
    );
    println!(
        "{:<44} {:>10.2} {:>12.2} {:>7.2}",
        "bind (connect + TLS + bind)",
        ms(bind),
        ms(ls_bind),
        ms(bind) / ms(ls_bind)
    );
    println!(
        "{:<44} {:>10.2} {:>12.2} {:>7.2}",
        format!("search all users ({users} entries, paged)"),
        ms(search),
        ms(ls_search),
        ms(search) / ms(ls_search)
    );
    println!(
        "ldapsearch process start+exit alone (-VV): {:.2} ms",
        ms(spawn)
    );
    println!(
        "DC discovery of {} DCs (SRV + concurrent probes): {:.1} ms",
        2,
        ms(discovery)
    );
    kerberos(&runtime, &directory, &env, bind);
}

/// The Kerberos rows: only with the lab's krb5.conf in `KRB5_CONFIG` (MIT
/// reads it from the environment only).
fn kerberos(
    runtime: &tokio::runtime::Runtime,
    directory: &LdapDirectory,
    env: &BTreeMap<String, String>,
    simple: Duration,
) {
    let get = |k: &str| env.get(k).unwrap_or_else(|| panic!("{k} missing")).clone();
    if std::env::var("KRB5_CONFIG").ok() != Some(get("LAB_KRB5_CONFIG")) {
        println!("Kerberos bind: skipped (export KRB5_CONFIG=$LAB_KRB5_CONFIG)");
        return;
    }
    let (dc1, keytab) = (get("LAB_DC1_HOST"), get("LAB_HOST_KEYTAB"));
    let principal = format!("{}@{}", get("LAB_HOST_ACCOUNT"), get("LAB_REALM"));
    let credential = BindCredential {
        username: principal.clone(),
        secret: BindSecret::Kerberos(KerberosSource::Keytab(keytab.clone().into())),
    };
    let (first, cached) = runtime.block_on(async {
        let started = Instant::now();
        directory
            .connect(&dc1, &credential)
            .await
            .unwrap()
            .unbind()
            .await;
        let first = started.elapsed();
        let mut samples = Vec::new();
        for _ in 0..ITERATIONS {
            let started = Instant::now();
            let s = directory.connect(&dc1, &credential).await.unwrap();
            s.unbind().await;
            samples.push(started.elapsed());
        }
        (first, median(samples))
    });
    println!(
        "Kerberos bind, keytab, sealed on 389: first {:.2} ms (AS + TGS), then {:.2} ms \
         (ticket cached); {:.2}x provd's simple bind over LDAPS",
        ms(first),
        ms(cached),
        ms(cached) / ms(simple)
    );
    let dir = tempfile::tempdir().unwrap();
    let cache = format!("FILE:{}", dir.path().join("cc").display());
    let kinit = Command::new("kinit")
        .args(["-k", "-t", &keytab, "-c", &cache, &principal])
        .status()
        .unwrap();
    assert!(kinit.success(), "kinit -k");
    let ldapsearch = || {
        let mut cmd = Command::new("ldapsearch");
        cmd.env("KRB5CCNAME", &cache)
            .args(["-LLL", "-Q", "-Y", "GSSAPI", "-H"])
            .arg(format!("ldap://{dc1}"))
            .args(["-s", "base", "-b", "", "(objectClass=*)", "1.1"]);
        cmd
    };
    if !ldapsearch().output().is_ok_and(|o| o.status.success()) {
        println!(
            "ldapsearch -Y GSSAPI: skipped (no Cyrus SASL GSSAPI module, or {dc1} unresolvable)"
        );
        return;
    }
    let ls = time_command(ldapsearch);
    println!(
        "ldapsearch -Y GSSAPI on 389 (cached ticket): {:.2} ms; provd / ldapsearch {:.2}",
        ms(ls),
        ms(cached) / ms(ls)
    );
}
