//! The support bundle from provd.exe under Wine, with no Samba lab: the
//! stand-in agent installed, a trace file in the agent's real Trace folder
//! and an `AppKey` in its exe.config, each holding a planted secret, and a
//! password written into provd's own log. The zip holds the exe.config and
//! the trace file with the secrets gone, provd's log and Verify report, and
//! MISSING.txt names the three event logs: Wine's EvtQuery is not
//! implemented, and one missing part never fails the bundle.

use std::io::Read;

use super::*;

use provd_proto::v1::diagnostics_service_client::DiagnosticsServiceClient;
use provd_proto::v1::export_diagnostics_response::Item;

const TRACE_SECRET: &str = "Wine-trace-Pa55";
const CONFIG_SECRET: &str = "Wine-AppKey-QUJD";
const LOG_SECRET: &str = "Wine-provd-log-T0ken";

#[tokio::test]
#[ignore = "needs the Wine lab and PROVD_WINE_EXE (deploy/test.sh runs it)"]
async fn the_support_bundle_is_redacted_and_names_what_wine_lacks() {
    let provd = WineProvd::start_host_only("provd-diagnostics", "").await;
    let (env, channel) = (&provd.env, &provd.channel);
    let mut request = install_request(Path::new(&env["WINE_LAB_MSI"]), &env["WINE_LAB_MSI_SHA256"]);
    request.skip_registration = true;
    let response = AgentServiceClient::new(channel.clone())
        .install(request)
        .await
        .unwrap();
    ok(&finish(channel, response.into_inner().operation.unwrap())
        .await
        .1);

    // The secrets, where the agent and provd keep their files.
    let prefix = Path::new(&env["WINEPREFIX"]);
    let trace_dir =
        prefix.join("drive_c/ProgramData/Microsoft/Azure AD Connect Provisioning Agent/Trace");
    std::fs::create_dir_all(&trace_dir).unwrap();
    let trace = trace_dir.join("ProvAgentTrace-provd-test.log");
    std::fs::write(
        &trace,
        format!("Connecting with Password={TRACE_SECRET};\r\n"),
    )
    .unwrap();
    let config = super::settings::exe_config_path(env);
    let original = std::fs::read(&config).unwrap();
    let planted = String::from_utf8_lossy(&original).replacen(
        "</configuration>",
        &format!("  <appSettings><add key=\"AppKey\" value=\"{CONFIG_SECRET}\" /></appSettings>\r\n</configuration>"),
        1,
    );
    std::fs::write(&config, planted).unwrap();
    let log = provd.dir.join("provd.log");
    let mut text = std::fs::read(&log).unwrap_or_default();
    text.extend(format!("leaked password={LOG_SECRET}\n").bytes());
    std::fs::write(&log, text).unwrap();

    let mut stream = DiagnosticsServiceClient::new(channel.clone())
        .export_diagnostics(v1::ExportDiagnosticsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let (mut zip, mut summary) = (Vec::new(), None);
    while let Some(message) = stream.message().await.unwrap() {
        match message.item.unwrap() {
            Item::Chunk(c) => zip.extend(c),
            Item::Summary(s) => summary = Some(s),
            Item::Progress(_) => {}
        }
    }
    std::fs::write(&config, &original).unwrap();
    let _ = std::fs::remove_file(&trace);
    let summary = summary.expect("a summary");
    assert_eq!(summary.size_bytes, zip.len() as u64);

    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip)).unwrap();
    let mut files = BTreeMap::new();
    for i in 0..archive.len() {
        let mut f = archive.by_index(i).unwrap();
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes).unwrap();
        files.insert(
            f.name().to_owned(),
            String::from_utf8_lossy(&bytes).into_owned(),
        );
    }
    for name in [
        "agent/AADConnectProvisioningAgent.exe.config",
        "agent/trace/ProvAgentTrace-provd-test.log",
        "agent/status.txt",
        "provd/provd.log",
        "provd/verify.txt",
    ] {
        assert!(
            files.contains_key(name),
            "{name}: {:?}\nMISSING.txt:\n{}",
            files.keys(),
            files["MISSING.txt"]
        );
    }
    for (name, text) in &files {
        for secret in [TRACE_SECRET, CONFIG_SECRET, LOG_SECRET] {
            assert!(!text.contains(secret), "{secret} in {name}");
        }
    }
    assert!(
        files["agent/AADConnectProvisioningAgent.exe.config"]
            .contains(r#"<add key="AppKey" value="[REDACTED]" />"#)
    );
    let missing = &files["MISSING.txt"];
    for log in ["Application", "System", "ProvisioningAgent-Admin"] {
        assert!(
            missing.contains(&format!("eventlog/{log}.xml\tEvtQuery(")),
            "{missing}"
        );
    }
    provd.stop().await;
}
