//! provd.exe's server certificate and client CAs from Wine's certificate
//! store, with no certificate or key file: an RSA-2048 PFX imported into
//! `LocalMachine\My` (with `CRYPT_MACHINE_KEYSET`, as Wine needs) by the
//! lab's stand-in for certlm (`certimport.exe`), the test CA in a named
//! store. The service serves mTLS to a Linux client with the store key —
//! TLS 1.2, since Wine's store key is a CryptoAPI key that signs PKCS#1
//! v1.5 only; a renewal with the same key, imported and linked to the old
//! certificate as certificate enrollment links it, is served within the
//! reload interval, and a second provd.exe selecting by subject serves it;
//! the audit checkpoint the store key signs verifies; an unknown
//! thumbprint fails start-up naming it. No Samba lab. What Wine cannot
//! show (CNG keys, ECDSA, PSS, TLS 1.3 with a store key, change
//! notifications) is listed in deploy/windows/README.md.

use super::*;

use provd::pki::store::Thumbprint;
use provd::pki::{CertificateInfo, RenewOptions};

/// The named store the client CA goes into.
const CA_STORE: &str = "provd-test-clients";
const RELOAD: &str = "1s";

#[tokio::test]
#[ignore = "needs the Wine lab and PROVD_WINE_EXE (deploy/test.sh runs it)"]
async fn provd_exe_serves_its_certificate_from_the_windows_store() {
    let secret = pfx_password();
    let mut first = None;
    // Two records kept: the denied calls below make the log prune.
    let audit = "[audit]\nmax_records = 2\n";
    let provd = WineProvd::start_with_tls("provd-certstore", audit, false, |pki, env, dir| {
        let work = dir.join("store");
        std::fs::create_dir_all(&work).unwrap();
        let key = work.join("server-rsa.key");
        openssl(&[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            key.to_str().unwrap(),
        ]);
        let cert = work.join("server-rsa.pem");
        std::fs::write(
            &cert,
            issue_rsa_server(pki, &std::fs::read_to_string(&key).unwrap()),
        )
        .unwrap();
        let pfx = pfx(&work, &key, &cert, "server-1.pfx", &secret);
        // This run's key in the machine key set: Wine keeps the first key
        // a container got, so an earlier run's would sign instead.
        let thumbprint = certimport(env, &secret, &["pfx", &z(&pfx), "My", "/fresh-key"]);
        assert_eq!(
            thumbprint,
            Thumbprint::of(&certificate_der(&cert)).to_string()
        );
        certimport(env, &secret, &["clear", CA_STORE]);
        let ca_der = work.join("ca.der");
        std::fs::write(&ca_der, pki.ca.cert_der()).unwrap();
        certimport(env, &secret, &["ca", &z(&ca_der), CA_STORE]);
        // As certlm's Details tab shows it: lower case, spaced.
        let spaced = hex_spaced(&thumbprint);
        first = Some((thumbprint, key, cert));
        format!(
            "[tls]\ncert_thumbprint = \"{spaced}\"\nclient_ca_store = \"{CA_STORE}\"\n\
             reload_interval = \"{RELOAD}\"\n"
        )
    })
    .await;
    let (thumbprint, key, cert) = first.unwrap();
    let (env, dir) = (&provd.env, &provd.dir);

    // Served from the store, to a client the store's CA signed, over TLS
    // 1.2 (the key signs PKCS#1 v1.5 only).
    let (version, leaf) = handshake(provd.addr, &provd.pki).await.unwrap();
    assert_eq!(version, rustls::ProtocolVersion::TLSv1_2);
    assert_eq!(leaf, certificate_der(&cert));
    let logged = std::fs::read_to_string(dir.join("provd.log")).unwrap();
    assert!(!logged.contains("BEGIN"), "no key material in the log");

    // The audit log, pruned behind a checkpoint the store key signs
    // (PKCS#1 v1.5: all a CryptoAPI key has), checks out against the
    // certificate: denied calls are records enough.
    let viewer = pki_channel(&provd, "viewer", Role::Viewer).await;
    for _ in 0..4 {
        let denied = AgentServiceClient::new(viewer.clone())
            .uninstall(v1::UninstallRequest {
                request_id: String::new(),
            })
            .await
            .unwrap_err();
        assert_eq!(denied.code(), tonic::Code::PermissionDenied);
    }
    let audit_log = dir.join("state/audit.log");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let first_line = loop {
        let text = std::fs::read_to_string(&audit_log).unwrap_or_default();
        if let Some(line) = text
            .lines()
            .next()
            .filter(|l| l.contains(r#""kind":"checkpoint""#))
        {
            break line.to_owned();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint in {}: {text}",
            audit_log.display()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert!(
        first_line.contains(r#""scheme":"RSA_PKCS1_SHA256""#),
        "{first_line}"
    );
    let pem = std::fs::read(&cert).unwrap();
    let report = provd::backends::audit::verify_file(&audit_log, Some(&pem)).unwrap();
    assert!(report.broken.is_none(), "{:?}", report.broken);
    let checkpoint = report.checkpoint.expect("pruned behind a checkpoint");
    assert_eq!(checkpoint.signer_trusted, Some(true));

    // Renewed with the same key (Wine's container keeps one key), imported
    // and linked from the old certificate: served within the interval.
    let old_serial = serial(&leaf);
    provd.pki.write_ca_key();
    provd::pki::renew(&RenewOptions {
        ca_dir: provd.pki.dir.clone(),
        certs: vec![cert.clone()],
        key: None,
        new_key: false,
        if_expiring_within: None,
        validity: None,
    })
    .unwrap();
    let renewed_der = certificate_der(&cert);
    let new_serial = serial(&renewed_der);
    assert_ne!(new_serial, old_serial);
    let pfx2 = pfx(&dir.join("store"), &key, &cert, "server-2.pfx", &secret);
    let imported = std::time::Instant::now();
    let renewed = certimport(
        env,
        &secret,
        &["pfx", &z(&pfx2), "My", "/renews", &thumbprint],
    );
    let deadline = imported + Duration::from_secs(20);
    loop {
        if let Ok((version, leaf)) = handshake(provd.addr, &provd.pki).await
            && serial(&leaf) == new_serial
        {
            assert_eq!(version, rustls::ProtocolVersion::TLSv1_2);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the renewal was not served within 20 s (reload interval {RELOAD})"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let took = imported.elapsed();
    let logged = std::fs::read_to_string(dir.join("provd.log")).unwrap();
    assert!(
        logged.contains("TLS certificates reloaded") && logged.contains(&renewed),
        "{logged}"
    );
    // The API still answers over the renewed certificate.
    wait_for(provd.addr, &provd.pki).await;

    // By subject instead (a second provd.exe, as a console program): the
    // newest valid certificate for localhost with a key is the renewal.
    let service_toml = std::fs::read_to_string(dir.join("provd.toml")).unwrap();
    let subject_addr = free_addr();
    let subject_toml = service_toml
        .lines()
        .map(|line| match line {
            l if l.starts_with("listen = ") => format!("listen = \"{subject_addr}\""),
            l if l.starts_with("state_dir = ") => {
                format!("state_dir = '{}'", z(&dir.join("state-subject")))
            }
            l if l.starts_with("cert_thumbprint = ") => "cert_subject = \"localhost\"".into(),
            l if l.starts_with("file = ") => format!("file = '{}'", z(&dir.join("subject.log"))),
            l => l.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    let subject_config = dir.join("subject.toml");
    std::fs::write(&subject_config, subject_toml).unwrap();
    let mut by_subject = Command::new("wine")
        .envs(env)
        .args([&z(&provd.exe), "serve", "--config", &z(&subject_config)])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let served = loop {
        if let Ok((_, leaf)) = handshake(subject_addr, &provd.pki).await {
            break leaf;
        }
        assert!(
            std::time::Instant::now() < deadline && by_subject.try_wait().unwrap().is_none(),
            "provd.exe with cert_subject never served: {}",
            std::fs::read_to_string(dir.join("subject.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let _ = by_subject.kill();
    let _ = by_subject.wait();
    assert_eq!(serial(&served), new_serial);

    // A thumbprint the store does not hold: start-up fails, naming it.
    let unknown = Thumbprint::of(b"no such certificate");
    let config = dir.join("unknown.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"{}\"\nstate_dir = '{}'\n[tls]\ncert_thumbprint = \"{unknown}\"\n\
             client_ca_store = \"{CA_STORE}\"\n",
            free_addr(),
            z(&dir.join("state-unknown")),
        ),
    )
    .unwrap();
    let (code, stderr) = run_briefly(env, &[&z(&provd.exe), "serve", "--config", &z(&config)]);
    assert_ne!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("tls.cert_thumbprint")
            && stderr.contains(&unknown.to_string())
            && stderr.contains(r"LocalMachine\My"),
        "{stderr}"
    );

    let env = env.clone();
    provd.stop().await;
    for gone in [&thumbprint, &renewed] {
        certimport(&env, &secret, &["remove", "My", gone]);
    }
    certimport(&env, &secret, &["clear", CA_STORE]);
    eprintln!("renewal served {took:?} after its import");
}

/// A server certificate for localhost and 127.0.0.1 on the RSA key
/// (`provd pki` makes ECDSA keys; Wine's store takes RSA only), signed by
/// the test CA.
fn issue_rsa_server(pki: &Pki, key_pem: &str) -> String {
    let key = rcgen::KeyPair::from_pem(key_pem).unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params
        .subject_alt_names
        .push(rcgen::SanType::IpAddress("127.0.0.1".parse().unwrap()));
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "localhost");
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::DigitalSignature,
        rcgen::KeyUsagePurpose::KeyEncipherment,
    ];
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(30);
    let ca_key = rcgen::KeyPair::from_pem(&pki.ca.key_pem()).unwrap();
    let issuer = rcgen::Issuer::from_ca_cert_pem(&pki.ca.cert_pem(), ca_key).unwrap();
    params.signed_by(&key, &issuer).unwrap().pem()
}

fn openssl(args: &[&str]) {
    let out = Command::new("openssl").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "openssl {}: {}",
        args[0],
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The PFX of `key` and `cert`, its password given through the
/// environment (never a command line).
fn pfx(dir: &Path, key: &Path, cert: &Path, name: &str, password: &str) -> PathBuf {
    let out_path = dir.join(name);
    let out = Command::new("openssl")
        .args(["pkcs12", "-export", "-inkey"])
        .arg(key)
        .arg("-in")
        .arg(cert)
        .arg("-out")
        .arg(&out_path)
        .args(["-passout", "env:PROVD_LAB_PFX_PASSWORD"])
        .env("PROVD_LAB_PFX_PASSWORD", password)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl pkcs12: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out_path
}

/// A fresh PFX password for this run.
fn pfx_password() -> String {
    let mut bytes = [0u8; 18];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).unwrap();
    hex::encode(bytes)
}

/// `certimport.exe ARGS` (deploy/lab/windows/certimport.c), which must
/// succeed; the last line it printed (a thumbprint, for pfx and ca).
fn certimport(env: &BTreeMap<String, String>, password: &str, args: &[&str]) -> String {
    let tool = env
        .get("WINE_LAB_CERTIMPORT")
        .filter(|p| Path::new(p).exists())
        .expect("certimport.exe: run deploy/lab/wine.sh up");
    let mut env = env.clone();
    env.insert("PROVD_LAB_PFX_PASSWORD".into(), password.into());
    let mut all = vec![z(Path::new(tool))];
    all.extend(args.iter().map(|a| a.to_string()));
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    let out = wine(&env, &all);
    assert!(
        out.status.success(),
        "certimport {}: {}",
        args[0],
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or_default()
        .to_owned()
}

/// `3B7E…` as certlm shows it: `3b 7e …`.
fn hex_spaced(thumbprint: &str) -> String {
    thumbprint
        .to_lowercase()
        .as_bytes()
        .chunks(2)
        .map(|pair| String::from_utf8_lossy(pair).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A TLS handshake as the admin client: the version and the served leaf.
async fn handshake(
    addr: std::net::SocketAddr,
    pki: &Pki,
) -> Result<(rustls::ProtocolVersion, Vec<u8>), String> {
    let pair = pki.client("admin", &[Role::Admin]);
    common::served_tls(addr, &pki.ca_pem(), &pair).await
}

/// A loopback address with a port nobody listens on.
fn free_addr() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// A channel as a client with `role`.
async fn pki_channel(provd: &WineProvd, name: &str, role: Role) -> Channel {
    let pair = provd.pki.client(name, &[role]);
    common::channel(provd.addr, &provd.pki.ca_pem(), &pair)
        .await
        .unwrap()
}

fn serial(der: &[u8]) -> String {
    CertificateInfo::from_der(der, "served certificate")
        .unwrap()
        .serial
}

/// Runs a wine command that should end by itself; killed after 120 s.
fn run_briefly(env: &BTreeMap<String, String>, args: &[&str]) -> (Option<i32>, String) {
    let mut cmd = Command::new("wine");
    cmd.envs(env)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "still running after 120 s: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
