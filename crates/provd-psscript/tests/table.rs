//! The table says what the design note's facts say (section 1.2), and the binder
//! behaves as PowerShell's for the cases the fixtures do not cover.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test that unwraps is asserting

use provd_psscript::{
    Arg, BindError, BoundCall, Evidence, Mandatory, ParamType, ScriptPlan, Table, bind, extract,
};

fn table() -> Table {
    Table::load().unwrap()
}

/// Extracts a one-call script and binds its last call.
fn bind_one(body: &str) -> Result<BoundCall, BindError> {
    let plan = extract(&format!("# provd-script: t v1\n{body}\n")).unwrap();
    bind(&table(), plan.calls.last().unwrap())
}

#[test]
fn every_cmdlet_of_the_design_note_is_in_the_table_with_its_evidence() {
    let t = table();
    for name in [
        "Connect-AADCloudSyncAzureAD",
        "Add-AADCloudSyncGMSA",
        "Add-AADCloudSyncADDomain",
        "Set-AADCloudSyncPermissions",
        "Set-AADCloudSyncRestrictedPermissions",
        "Set-AADCloudSyncPasswordWritebackConfiguration",
        "Get-AADCloudSyncDomains",
    ] {
        let c = t.cmdlet(name).unwrap_or_else(|| panic!("{name} missing"));
        assert_eq!(c.module, "Microsoft.CloudSync.PowerShell");
        assert!(
            c.class.starts_with("Microsoft.CloudSync.Powershell."),
            "{name}"
        );
        assert!(
            c.source
                .iter()
                .all(|s| s.starts_with("https://learn.microsoft.com/en-us/entra/")),
            "{name}: {:?}",
            c.source
        );
    }
    let set = |cmdlet: &str, set: &str| {
        t.cmdlet(cmdlet)
            .unwrap()
            .sets
            .iter()
            .find(|s| s.name == set)
            .cloned()
            .unwrap_or_else(|| panic!("{cmdlet}: no set {set}"))
    };
    // -AccessToken is Microsoft code (missionlz), on no docs page.
    let token = set("Connect-AADCloudSyncAzureAD", "AccessToken");
    assert_eq!(token.evidence, Evidence::MicrosoftCode);
    assert!(token.source.contains("Azure/missionlz"));
    // The install page only shows examples.
    let domain = set("Add-AADCloudSyncADDomain", "__AllParameterSets");
    assert_eq!(domain.evidence, Evidence::Example);
    let dcs = domain
        .params
        .iter()
        .find(|p| p.name == "PreferredDomainControllers")
        .unwrap();
    assert_eq!(
        (dcs.ty, dcs.mandatory),
        (ParamType::StringArray, Mandatory::No)
    );
    // The gMSA cmdlets page documents its two sets; the contradicting example is kept.
    assert_eq!(
        set("Set-AADCloudSyncPermissions", "AllDomains").evidence,
        Evidence::Documented
    );
    assert_eq!(
        set("Set-AADCloudSyncPermissions", "TargetDomain").evidence,
        Evidence::Documented
    );
    assert_eq!(
        set(
            "Set-AADCloudSyncPermissions",
            "TargetDomainWithEACredential"
        )
        .evidence,
        Evidence::Example
    );
    // Writeback without -Credential is design risk R3: inferred.
    assert_eq!(
        set(
            "Set-AADCloudSyncPasswordWritebackConfiguration",
            "AfterConnect"
        )
        .evidence,
        Evidence::Inferred
    );
    // The minimum versions the design note names.
    let gmsa = set("Add-AADCloudSyncGMSA", "CustomGMSA");
    assert_eq!(gmsa.params[0].min_version.as_deref(), Some("1.1.354.0"));
    assert_eq!(
        t.cmdlet("Set-AADCloudSyncPasswordWritebackConfiguration")
            .unwrap()
            .min_version
            .as_deref(),
        Some("1.1.977.0")
    );
}

#[test]
fn the_table_checks_itself() {
    let base = provd_psscript::TABLE_TOML;
    let twice = format!(
        "{base}\n[[cmdlet]]\nname = \"get-item\"\nmodule = \"m\"\nclass = \"c\"\nclass_evidence = \"inferred\"\nsource = [\"https://x\"]\n[[cmdlet.set]]\nname = \"s\"\nevidence = \"inferred\"\nsource = \"https://x\"\nparams = []\n"
    );
    assert!(Table::parse(&twice).unwrap_err().0.contains("listed twice"));
    let http = base.replacen(
        "https://learn.microsoft.com",
        "http://learn.microsoft.com",
        1,
    );
    assert!(
        Table::parse(&http)
            .unwrap_err()
            .0
            .contains("not an https address")
    );
    let label = base.replacen("evidence = \"example\"", "evidence = \"rumour\"", 1);
    assert!(Table::parse(&label).is_err());
}

#[test]
fn names_bind_case_insensitively_and_by_unambiguous_prefix() {
    let b = bind_one("get-item -literal 'C:\\x' -erroraction SilentlyContinue").unwrap();
    assert_eq!(b.cmdlet, "Get-Item");
    assert_eq!(b.parameters[0].name, "LiteralPath");
    assert_eq!(b.parameters[0].written, "literal");
    assert_eq!(b.parameters[1].name, "ErrorAction");
}

#[test]
fn an_ambiguous_prefix_lists_the_matches() {
    let e = bind_one("ConvertTo-SecureString -String 'x' -As").unwrap();
    assert_eq!(e.parameters[1].name, "AsPlainText");
    let e = bind_one("Connect-AADCloudSyncAzureAD -AccessToken 'x' -T 'y' -U 'z'").unwrap();
    assert_eq!(e.parameter_set, "AccessToken");
    let e = bind_one("Set-AADCloudSyncPermissions -PermissionType All -Target 'x'").unwrap_err();
    assert_eq!(
        e.to_string(),
        "Parameter cannot be processed because the parameter name 'Target' is ambiguous. \
         Possible matches include: -TargetDomain -TargetDomainCredential."
    );
    assert!(
        e.fully_qualified_error_id()
            .starts_with("AmbiguousParameter,")
    );
}

#[test]
fn a_parameter_twice_or_without_its_value_is_refused() {
    let e = bind_one("Add-AADCloudSyncGMSA -CustomGMSAName 'a$' -CustomGMSAName 'b$'").unwrap_err();
    assert!(
        e.fully_qualified_error_id()
            .starts_with("ParameterAlreadyBound,"),
        "{e:?}"
    );
    let e = bind_one("Add-AADCloudSyncGMSA -CustomGMSAName").unwrap_err();
    assert_eq!(
        e.to_string(),
        "Missing an argument for parameter 'CustomGMSAName'. Specify a parameter of type \
         'System.String' and try again."
    );
}

#[test]
fn a_switch_takes_a_value_only_after_a_colon() {
    let b = bind_one("ConvertTo-Json -InputObject $x -Compress:$false").unwrap();
    assert_eq!(b.parameters[1].value, Arg::Bool(false));
    // `-Compress $false` makes $false a positional argument.
    let e = bind_one("ConvertTo-Json -InputObject $x -Compress $false").unwrap_err();
    assert!(
        e.fully_qualified_error_id()
            .starts_with("PositionalParameterNotFound,")
    );
}

#[test]
fn pipeline_input_satisfies_a_mandatory_pipeline_parameter() {
    let b = bind_one("$j = '{}' | ConvertFrom-Json").unwrap();
    assert_eq!(b.pipeline_input.as_deref(), Some("InputObject"));
    let e = bind_one("ConvertFrom-Json").unwrap_err();
    assert!(
        e.fully_qualified_error_id()
            .starts_with("MissingMandatoryParameter,")
    );
}

#[test]
fn writeback_without_a_credential_binds_to_the_inferred_set() {
    assert_eq!(
        bind_one("Set-AADCloudSyncPasswordWritebackConfiguration -Enable $true")
            .unwrap()
            .parameter_set,
        "AfterConnect"
    );
    assert_eq!(
        bind_one("Set-AADCloudSyncPasswordWritebackConfiguration -Enable $true -Credential $c")
            .unwrap()
            .parameter_set,
        "Credential"
    );
}

#[test]
fn plans_and_bound_calls_round_trip_through_serde() {
    let plan = extract(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/ok.ps1"
        ))
        .unwrap(),
    )
    .unwrap();
    let json = serde_json::to_string(&plan).unwrap();
    assert_eq!(serde_json::from_str::<ScriptPlan>(&json).unwrap(), plan);
    let bound: Vec<BoundCall> = plan
        .calls
        .iter()
        .map(|c| bind(&table(), c).unwrap())
        .collect();
    let json = serde_json::to_string(&bound).unwrap();
    assert_eq!(
        serde_json::from_str::<Vec<BoundCall>>(&json).unwrap(),
        bound
    );
}
