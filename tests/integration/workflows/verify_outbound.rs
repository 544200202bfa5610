//! Verify's outbound checks (`host.outbound.https`, `host.outbound.crl`)
//! against loopback servers, through the proxy the fake host's exe.config
//! names: reachable directly and through a CONNECT proxy (which really
//! sees the CONNECT and the GET) PASS naming the route; a proxy's refusal
//! and a closed port FAIL naming the proxy or host:port; a chain from a
//! TLS-inspecting CA WARNs naming it; the proxy's credentials are never
//! shown; and the test configs never reach Microsoft's endpoints.

use super::verify::{status, verify_with};
use crate::common::hermetic::*;
use crate::common::outbound::*;
use provd::backends::host::{AgentProxy, exe_config};
use provd::config::OutboundUrl;
use provd::testkit::FakeHost;
use provd_proto::v1;
use provd_proto::v1::CheckStatus::{Fail, Pass, Warn};

const HTTPS: &str = "host.outbound.https";
const CRL: &str = "host.outbound.crl";
const FIREWALL_PAGE: &str = "https://learn.microsoft.com/entra/identity/hybrid/cloud-sync/how-to-prerequisites#firewall-and-proxy-requirements";

/// A host with the agent installed and, when given, its exe.config's
/// proxy.
fn host_with_proxy(address: Option<&str>, bypass_on_local: bool) -> FakeHost {
    let host = FakeHost::new().with_agent("1.1.1370.0");
    if let Some(address) = address {
        let proxy = AgentProxy::Address {
            address: address.to_owned(),
            bypass_on_local,
            bypass_list: Vec::new(),
        };
        let edited = exe_config::edit(
            exe_config::SAMPLE,
            exe_config::Wanted {
                proxy: Some(&proxy),
                enforce_fips_policy: None,
            },
        )
        .unwrap();
        host.set_exe_config(&edited);
    }
    host
}

/// A daemon probing `endpoints`, trusting chains issued by `issuers`.
async fn daemon(host: FakeHost, endpoints: Vec<OutboundUrl>, issuers: &[&str]) -> Hermetic {
    let fakes = Fakes {
        host,
        ..Default::default()
    };
    Hermetic::start_configured(fakes, |c| {
        c.reachability.endpoints = endpoints;
        if !issuers.is_empty() {
            c.reachability.expected_issuers = issuers.iter().map(|s| (*s).to_owned()).collect();
        }
        c.reachability.timeout = std::time::Duration::from_secs(3);
    })
    .await
}

/// The CA of the loopback TLS endpoint the tests trust as Microsoft's.
const ISSUER: &str = "Fabrikam Root CA";

/// A TLS endpoint issued by `ISSUER`, a CRL host (path `/crl`), and a
/// daemon probing both, its agent's exe.config naming `proxy`.
async fn endpoints_and_daemon(
    proxy: Option<&str>,
    bypass_on_local: bool,
) -> (TlsServer, HttpServer, Hermetic) {
    let tls = TlsServer::start(ISSUER).await;
    let crl = HttpServer::start().await;
    let d = daemon(
        host_with_proxy(proxy, bypass_on_local),
        vec![tls.url(), crl.url("/crl")],
        &[ISSUER],
    )
    .await;
    (tls, crl, d)
}

/// The outbound checks of a Host verify, by id then subject.
async fn outbound(d: &Hermetic) -> Vec<v1::Check> {
    let request = v1::VerifyRequest {
        categories: vec![v1::CheckCategory::Host as i32],
        ..Default::default()
    };
    let mut found: Vec<v1::Check> = verify_with(d, request)
        .await
        .unwrap()
        .0
        .into_iter()
        .filter(|c| c.id.starts_with("host.outbound."))
        .collect();
    found.sort_by(|a, b| (&a.id, &a.subject).cmp(&(&b.id, &b.subject)));
    found
}

fn one<'a>(checks: &'a [v1::Check], id: &str) -> &'a v1::Check {
    let found: Vec<_> = checks.iter().filter(|c| c.id == id).collect();
    assert_eq!(found.len(), 1, "{id}: {checks:#?}");
    found[0]
}

#[tokio::test]
async fn reachable_endpoints_pass_directly_with_the_chain_and_answer_as_evidence() {
    let (tls, crl, d) = endpoints_and_daemon(None, false).await;
    let checks = outbound(&d).await;
    let https = one(&checks, HTTPS);
    assert_eq!(status(https), Pass, "{https:#?}");
    assert_eq!(https.subject, format!("https://{}", tls.addr));
    assert_eq!(https.attributes["endpoint"], tls.addr.to_string());
    assert_eq!(https.attributes["proxy"], "direct");
    assert!(
        https.attributes["proxy_source"].contains("no <defaultProxy>"),
        "{https:#?}"
    );
    assert_eq!(https.attributes["issuer"], format!("CN={ISSUER}"));
    assert!(
        https.attributes["tls_version"].starts_with("TLS 1."),
        "{https:#?}"
    );
    assert_eq!(https.attributes["source"], FIREWALL_PAGE);
    assert!(https.message.contains("directly"), "{https:#?}");
    assert!(https.remedy.is_empty());
    let c = one(&checks, CRL);
    assert_eq!(status(c), Pass, "{c:#?}");
    assert_eq!(c.subject, format!("http://{}/crl", crl.addr));
    assert_eq!(c.attributes["http_status"], "200 OK");
    assert_eq!(crl.seen.lock().unwrap().as_slice(), ["GET /crl HTTP/1.1"]);
    d.shutdown().await;
}

#[tokio::test]
async fn through_the_agents_connect_proxy_the_checks_pass_naming_it_and_never_its_password() {
    let proxy = Proxy::start(ProxyMode::Forward).await;
    // A hand-edited exe.config may carry a user and password: never shown.
    let address = format!("http://svc-agent:S3cret-Pa55@{}", proxy.addr);
    let (tls, crl, d) = endpoints_and_daemon(Some(&address), false).await;
    let checks = outbound(&d).await;
    assert_eq!(checks.len(), 2, "{checks:#?}");
    for c in &checks {
        assert_eq!(status(c), Pass, "{c:#?}");
        assert_eq!(c.attributes["proxy"], proxy.address(), "{c:#?}");
        assert!(c.message.contains(&proxy.address()), "{c:#?}");
        assert!(
            c.attributes["proxy_source"].ends_with("AADConnectProvisioningAgent.exe.config"),
            "{c:#?}"
        );
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("S3cret") && !shown.contains("svc-agent"),
            "{c:#?}"
        );
    }
    let mut seen = proxy.seen();
    seen.sort();
    assert_eq!(
        seen,
        [
            format!("CONNECT {} HTTP/1.1", tls.addr),
            format!("GET http://{}/crl HTTP/1.1", crl.addr),
        ]
    );
    assert_eq!(crl.seen.lock().unwrap().as_slice(), ["GET /crl HTTP/1.1"]);
    d.shutdown().await;
}

#[tokio::test]
async fn bypassonlocal_sends_loopback_endpoints_around_the_proxy_as_dotnet_does() {
    let proxy = Proxy::start(ProxyMode::Refuse(403)).await;
    let (_tls, _crl, d) = endpoints_and_daemon(Some(&proxy.address()), true).await;
    let checks = outbound(&d).await;
    assert_eq!(checks.len(), 2, "{checks:#?}");
    for c in &checks {
        assert_eq!(status(c), Pass, "{c:#?}");
        assert_eq!(c.attributes["proxy"], "direct (bypassonlocal)");
    }
    assert!(proxy.seen().is_empty(), "{:?}", proxy.seen());
    d.shutdown().await;
}

#[tokio::test]
async fn a_proxy_refusing_the_endpoints_fails_both_checks_naming_it() {
    let proxy = Proxy::start(ProxyMode::Refuse(403)).await;
    let (tls, crl, d) = endpoints_and_daemon(Some(&proxy.address()), false).await;
    let checks = outbound(&d).await;
    let https = one(&checks, HTTPS);
    assert_eq!(status(https), Fail, "{https:#?}");
    for part in [
        format!("the proxy {} refused CONNECT {}", proxy.address(), tls.addr),
        "403".to_owned(),
    ] {
        assert!(https.message.contains(&part), "{part}: {https:#?}");
    }
    assert!(https.remedy.contains(&proxy.address()), "{https:#?}");
    let c = one(&checks, CRL);
    assert_eq!(status(c), Fail, "{c:#?}");
    assert!(c.message.contains(&proxy.address()), "{c:#?}");
    assert_eq!(c.attributes["http_status"], "403 Refused by the test proxy");
    assert!(c.remedy.contains("HTTP (80)"), "{c:#?}");
    // Nothing got past it.
    assert!(crl.seen.lock().unwrap().is_empty());
    d.shutdown().await;
}

#[tokio::test]
async fn a_closed_port_fails_naming_host_and_port() {
    let (https_port, http_port) = (closed_port(), closed_port());
    let d = daemon(
        host_with_proxy(None, false),
        vec![
            url(provd::config::OutboundScheme::Https, https_port, "/"),
            url(provd::config::OutboundScheme::Http, http_port, "/crl"),
        ],
        &[],
    )
    .await;
    let checks = outbound(&d).await;
    for (id, addr) in [(HTTPS, https_port), (CRL, http_port)] {
        let c = one(&checks, id);
        assert_eq!(status(c), Fail, "{c:#?}");
        assert!(
            c.message.contains(&format!("cannot connect to {addr}")),
            "{c:#?}"
        );
        assert!(c.message.contains("directly"), "{c:#?}");
        assert!(!c.remedy.is_empty(), "{c:#?}");
    }
    d.shutdown().await;
}

#[tokio::test]
async fn a_chain_from_a_tls_inspection_ca_warns_naming_the_issuer() {
    let tls = TlsServer::start("Contoso TLS Inspection CA").await;
    // The default expected issuers: the Azure CA page's names.
    let d = daemon(host_with_proxy(None, false), vec![tls.url()], &[]).await;
    let checks = outbound(&d).await;
    let https = one(&checks, HTTPS);
    assert_eq!(status(https), Warn, "{https:#?}");
    assert_eq!(
        https.message,
        "TLS inspection: the chain presented for 127.0.0.1 is issued by CN=Contoso TLS \
         Inspection CA, not one of Microsoft's CAs"
    );
    assert_eq!(https.attributes["issuer"], "CN=Contoso TLS Inspection CA");
    assert!(
        https
            .remedy
            .contains("exclude 127.0.0.1 from TLS inspection"),
        "{https:#?}"
    );
    assert_eq!(
        https.attributes["source"],
        "https://learn.microsoft.com/entra/global-secure-access/how-to-configure-connectors#allow-access-to-urls"
    );
    assert!(
        https.attributes["issuers_source"].ends_with("azure-ca-details"),
        "{https:#?}"
    );
    d.shutdown().await;
}

#[tokio::test]
async fn the_test_configs_probe_loopback_servers_only() {
    // The harness's own [reachability]: what every other hermetic test's
    // Verify probes.
    let d = Hermetic::start_with(Fakes {
        host: host_with_proxy(None, false),
        ..Default::default()
    })
    .await;
    let checks = outbound(&d).await;
    assert_eq!(checks.len(), 2, "{checks:#?}");
    for c in &checks {
        assert_eq!(status(c), Pass, "{c:#?}");
        assert!(
            c.subject.starts_with("https://127.0.0.1:")
                || c.subject.starts_with("http://127.0.0.1:"),
            "{c:#?}"
        );
    }
    d.shutdown().await;
}

/// The `[reachability]` of `text` loaded as provd loads a file: its
/// endpoints and expected issuers.
fn load(dir: &std::path::Path, text: &str) -> (Vec<OutboundUrl>, Vec<String>) {
    let file = dir.join("provd.toml");
    std::fs::write(&file, text).unwrap();
    let env: Vec<(String, String)> = [
        ("PROVD_CONFIG", file.to_str().unwrap()),
        ("PROVD_STATE_DIR", "/s"),
        ("PROVD_TLS_CERT", "/c"),
        ("PROVD_TLS_KEY", "/k"),
        ("PROVD_TLS_CLIENT_CA", "/a"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    let config = provd::config::Config::load_from(&Default::default(), &env).unwrap();
    (
        config.reachability.endpoints,
        config.reachability.expected_issuers,
    )
}

#[test]
fn the_wine_tests_and_the_demo_name_the_labs_endpoints_and_ca() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    // The Wine tests write their tenant emulator's section.
    let wine = std::fs::read_to_string(root.join("tests/wine.rs")).unwrap();
    assert!(wine.contains("reachability = tenant.reachability_toml()"));
    let (endpoints, issuers) = load(dir.path(), &crate::common::tenant::reachability_toml(18444));
    assert_eq!(issuers, [crate::common::tenant::LAB_CA_NAME]);
    let loopback = |endpoints: &[OutboundUrl]| {
        !endpoints.is_empty() && endpoints.iter().all(|e| e.host == "127.0.0.1")
    };
    assert!(loopback(&endpoints), "{endpoints:?}");
    // The demo's heredoc, with its variables as demo.sh sets them.
    let demo = std::fs::read_to_string(root.join("deploy/demo.sh")).unwrap();
    let start = demo.find("\n[reachability]\n").expect(
        "deploy/demo.sh writes no [reachability]: its Verify would probe Microsoft's endpoints",
    );
    let section: String = demo[start..]
        .lines()
        .take_while(|l| *l != "EOF")
        .collect::<Vec<_>>()
        .join("\n")
        .replace("$TENANT_URL", "https://127.0.0.1:18444")
        .replace("$TENANT_PORT", "18444");
    let (endpoints, issuers) = load(dir.path(), &section);
    assert!(loopback(&endpoints), "{endpoints:?}");
    assert_eq!(issuers, ["provd CA"], "the demo PKI's CA (provd pki init)");
}
