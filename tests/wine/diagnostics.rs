//! The support bundle from provd.exe under Wine, with no Samba lab: the
//! stand-in agent installed, a trace file in the agent's real Trace folder
//! and an `AppKey` in its exe.config, each holding a planted secret, and a
//! password written into provd's own log. The zip holds the exe.config and
//! the trace file with the secrets gone, provd's log and Verify report, and
//! MISSING.txt names the three event logs: Wine's EvtQuery is not
//! implemented, and one missing part never fails the bundle.
//!
//! The verbose-trace window: provd runs the verbose-trace scripts through
//! the stand-in powershell.exe, whose Start-AADCloudSyncToolsVerboseLogs
//! makes exe.config verbose and restarts the agent (its heartbeat's pid
//! changes), and whose Stop puts the file back byte for byte and restarts
//! it again; the bundle is collected after Stop, with what the agent traced
//! during the window. One minute: the window's shortest.

use std::io::Read;
use std::time::Instant;

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
    install_agent(env, channel).await;

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

    let stream = DiagnosticsServiceClient::new(channel.clone())
        .export_diagnostics(v1::ExportDiagnosticsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let (_, files) = read_rest(stream).await;
    std::fs::write(&config, &original).unwrap();
    let _ = std::fs::remove_file(&trace);
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

/// The stand-in agent installed (no registration), by provd.
pub(super) async fn install_agent(env: &BTreeMap<String, String>, channel: &Channel) {
    let mut request = install_request(Path::new(&env["WINE_LAB_MSI"]), &env["WINE_LAB_MSI_SHA256"]);
    request.skip_registration = true;
    let response = AgentServiceClient::new(channel.clone())
        .install(request)
        .await
        .unwrap();
    ok(&finish(channel, response.into_inner().operation.unwrap())
        .await
        .1);
}

async fn next_item(stream: &mut tonic::Streaming<v1::ExportDiagnosticsResponse>) -> Item {
    stream.message().await.unwrap().unwrap().item.unwrap()
}

/// The rest of an export's stream: its PROGRESS items and the zip's files
/// (the stream adds up to the summary's size).
async fn read_rest(
    mut stream: tonic::Streaming<v1::ExportDiagnosticsResponse>,
) -> (Vec<v1::DiagnosticsProgress>, BTreeMap<String, String>) {
    let (mut progress, mut zip, mut summary) = (Vec::new(), Vec::new(), None);
    while let Some(message) = stream.message().await.unwrap() {
        match message.item.unwrap() {
            Item::Chunk(c) => zip.extend(c),
            Item::Summary(s) => summary = Some(s),
            Item::Progress(p) => progress.push(p),
            Item::Operation(_) => {}
        }
    }
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
    (progress, files)
}

#[tokio::test]
#[ignore = "needs the Wine lab and PROVD_WINE_EXE (deploy/test.sh runs it)"]
async fn a_verbose_trace_window_runs_microsofts_commands_and_restores_exe_config() {
    let provd = WineProvd::start_host_only("provd-verbose-trace", "").await;
    let (env, channel) = (&provd.env, &provd.channel);
    install_agent(env, channel).await;
    let prefix = Path::new(&env["WINEPREFIX"]);
    let data = prefix.join("drive_c/ProgramData/ProvdLabAgent");
    let calls_before = std::fs::read_to_string(data.join("powershell-calls.jsonl"))
        .unwrap_or_default()
        .len();
    let config = super::settings::exe_config_path(env);
    let original = std::fs::read(&config).unwrap();
    let pid_before = super::settings::agent_pid(env).await;

    let began = Instant::now();
    let mut stream = DiagnosticsServiceClient::new(channel.clone())
        .export_diagnostics(v1::ExportDiagnosticsRequest {
            verbose_trace_minutes: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let Item::Operation(op) = next_item(&mut stream).await else {
        panic!("the window's operation first")
    };
    let Item::Progress(started) = next_item(&mut stream).await else {
        panic!("then the window's start")
    };
    assert_eq!(
        (started.path.as_str(), started.missing_reason.as_str()),
        ("verbose-trace/start", ""),
        "{started:?}"
    );

    // During the window: Microsoft's command (the stand-in's) made the
    // file verbose and restarted the agent, which traces.
    let during = String::from_utf8_lossy(&std::fs::read(&config).unwrap()).into_owned();
    assert!(during.contains(r#"switchValue="Verbose""#), "{during}");
    let pid_during = super::settings::agent_pid(env).await;
    assert_ne!(pid_during, pid_before, "Start restarts the agent");
    // The lab agent writes no trace files: the test writes what a verbose
    // agent would, in the agent's Trace folder, during the window.
    let trace_dir =
        prefix.join("drive_c/ProgramData/Microsoft/Azure AD Connect Provisioning Agent/Trace");
    std::fs::create_dir_all(&trace_dir).unwrap();
    let trace = trace_dir.join("ProvAgentTrace-verbose-window.log");
    std::fs::write(&trace, "Verbose: window trace line\r\n").unwrap();

    let (progress, files) = read_rest(stream).await;
    let _ = std::fs::remove_file(&trace);
    assert!(
        began.elapsed() >= Duration::from_secs(60),
        "{:?}",
        began.elapsed()
    );
    let stopped = &progress[0];
    assert_eq!(
        (stopped.path.as_str(), stopped.missing_reason.as_str()),
        ("verbose-trace/stop", ""),
        "{stopped:?}"
    );
    assert!(stopped.detail.contains("off after"), "{stopped:?}");

    // After: the file byte for byte as it was, the agent restarted again.
    assert_eq!(
        std::fs::read(&config).unwrap(),
        original,
        "exe.config restored"
    );
    assert_ne!(
        super::settings::agent_pid(env).await,
        pid_during,
        "Stop restarts the agent"
    );
    let calls = std::fs::read_to_string(data.join("powershell-calls.jsonl")).unwrap();
    let cmdlets: Vec<String> = calls[calls_before..]
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["cmdlet"].to_string())
        .collect();
    // The window first, then the collection's reads (Verify's).
    assert_eq!(
        cmdlets[..2],
        [
            "\"Start-AADCloudSyncToolsVerboseLogs\"",
            "\"Stop-AADCloudSyncToolsVerboseLogs\""
        ],
        "{cmdlets:?}"
    );
    assert!(
        cmdlets[2..].iter().all(|c| !c.contains("VerboseLogs")),
        "{cmdlets:?}"
    );
    assert_eq!(
        files["agent/trace/ProvAgentTrace-verbose-window.log"],
        "Verbose: window trace line\r\n"
    );
    assert!(files["provd/verbose-trace.txt"].contains(&op.id));
    assert!(
        !files["MISSING.txt"].contains("verbose-trace/"),
        "{}",
        files["MISSING.txt"]
    );
    let (_, done) = finish(channel, op).await;
    ok(&done);
    provd.stop().await;
}
