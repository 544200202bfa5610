//! Verify's outbound checks on the Wine host, through provd.exe's API, with
//! no Samba lab. Every Wine test's `[reachability]` names the tenant
//! emulator (its HTTPS port for a TLS endpoint, plain HTTP on it for a CRL
//! host) and the lab CA. With the stand-in agent installed and no proxy in
//! its exe.config, both checks PASS directly; once an apply puts a loopback
//! CONNECT proxy run by this test in the exe.config, provd.exe reads it
//! from the prefix and both PASS through it, naming it — and the proxy saw
//! the CONNECT and the absolute-form GET.

use super::*;
use common::configuration::apply_document;
use common::outbound::{Proxy, ProxyMode};

const HTTPS: &str = "host.outbound.https";
const CRL: &str = "host.outbound.crl";

/// The stand-in agent, unregistered, with `proxy` in its exe.config.
fn document(env: &BTreeMap<String, String>, proxy: Option<String>) -> v1::DesiredState {
    let settings = proxy.map(|address| v1::AgentSettingsSpec {
        proxy: Some(v1::ProxySpec {
            address,
            bypass_on_local: false,
            bypass_list: Vec::new(),
            none: false,
        }),
        ..Default::default()
    });
    lab_agent_document(env, settings)
}

/// The two outbound checks of a Host verify.
async fn outbound(channel: &Channel) -> (v1::Check, v1::Check) {
    let request = v1::VerifyRequest {
        categories: vec![v1::CheckCategory::Host as i32],
        ..Default::default()
    };
    let checks = verify_with(channel, request).await.0;
    let one = |id: &str| {
        let found: Vec<&v1::Check> = checks.iter().filter(|c| c.id == id).collect();
        assert_eq!(found.len(), 1, "{id}: {checks:#?}");
        found[0].clone()
    };
    (one(HTTPS), one(CRL))
}

#[tokio::test]
#[ignore = "needs the Wine lab and PROVD_WINE_EXE (deploy/test.sh runs it)"]
async fn outbound_checks_go_through_the_proxy_the_agents_exe_config_names() {
    let provd = WineProvd::start_host_only("provd-outbound", "").await;
    let (env, channel, tenant) = (&provd.env, &provd.channel, &provd.tenant);
    let emulator = format!("127.0.0.1:{}", tenant.port);
    let proxy = Proxy::start(ProxyMode::Forward).await;

    // The MSI's exe.config has no <defaultProxy>: direct, as the agent goes.
    let (_, op) = apply_document(channel, &document(env, None)).await;
    ok(&op);
    let (https, crl) = outbound(channel).await;
    for c in [&https, &crl] {
        assert_eq!(c.status, v1::CheckStatus::Pass as i32, "{c:#?}");
        assert_eq!(c.attributes["proxy"], "direct", "{c:#?}");
        assert_eq!(c.attributes["endpoint"], emulator, "{c:#?}");
    }
    assert_eq!(https.subject, tenant.base());
    assert_eq!(
        https.attributes["issuer"],
        format!("CN={}", common::tenant::LAB_CA_NAME)
    );
    assert!(proxy.seen().is_empty(), "{:?}", proxy.seen());

    // The proxy in the exe.config: provd.exe reads it from the prefix.
    let (events, op) = apply_document(channel, &document(env, Some(proxy.address()))).await;
    ok(&op);
    assert_eq!(op.result["changed_steps"], "agent-settings", "{events:#?}");
    let (https, crl) = outbound(channel).await;
    for c in [&https, &crl] {
        assert_eq!(c.status, v1::CheckStatus::Pass as i32, "{c:#?}");
        assert_eq!(c.attributes["proxy"], proxy.address(), "{c:#?}");
        assert!(
            c.message
                .contains(&format!("through the proxy {}", proxy.address())),
            "{c:#?}"
        );
        assert!(
            c.attributes["proxy_source"].ends_with(r"\AADConnectProvisioningAgent.exe.config"),
            "{c:#?}"
        );
    }
    assert_eq!(crl.attributes["http_status"], "200 OK", "{crl:#?}");
    let mut seen = proxy.seen();
    seen.sort();
    assert_eq!(
        seen,
        [
            format!("CONNECT {emulator} HTTP/1.1"),
            format!("GET http://{emulator}/crl/lab.crl HTTP/1.1"),
        ]
    );
    provd.stop().await;
}
