//! provd's shipped PowerShell scripts (`src/backends/agent_config/scripts/`), checked
//! without PowerShell: parsed with tree-sitter's PowerShell grammar and bound against
//! the cmdlet-parameter table the lab's stand-in `powershell.exe` binds against too
//! (`crates/provd-psscript`). Hermetic: no PowerShell, no network.

use std::collections::BTreeMap;
use std::path::PathBuf;

use provd::backends::agent_config::scripts::{SCRIPTS, Script, by_name, sha256};
use provd_psscript::{
    Arg, BoundCall, Element, Evidence, MODULE_PATH, ParamType, ScriptPlan, TOOLS_MODULE_PATH,
    Table, bind, extract,
};
use sha2::{Digest, Sha256};

const SCRIPTS_DIR: &str = "src/backends/agent_config/scripts";

const PROLOGUE: &str = "Set-StrictMode -Version 3.0\n\
                        $ErrorActionPreference = 'Stop'\n\
                        $ProgressPreference = 'SilentlyContinue'\n\
                        try {\n    \
                        $request = [Text.Encoding]::UTF8.GetString([Convert]::FromBase64String([Console]::In.ReadToEnd())) | ConvertFrom-Json\n";

/// The request fields each script reads: the contract with provd's runner.
const REQUEST_FIELDS: &[(&str, &[&str])] = &[
    ("module-info", &[]),
    (
        "connect-tenant",
        &["accessToken", "tenantId", "userPrincipalName"],
    ),
    ("use-gmsa", &["customGmsaName"]),
    (
        "add-domain",
        &[
            "domainName",
            "userName",
            "password",
            "preferredDomainControllers",
        ],
    ),
    (
        "set-writeback",
        &["accessToken", "tenantId", "userPrincipalName", "enable"],
    ),
    ("list-domains", &[]),
    ("verbose-trace-start", &[]),
    ("verbose-trace-stop", &[]),
];

fn plan(script: &Script) -> ScriptPlan {
    extract(script.text).unwrap_or_else(|e| panic!("{}: {e}", script.name))
}

fn bound(script: &Script, plan: &ScriptPlan) -> Vec<BoundCall> {
    let table = Table::load().unwrap();
    plan.calls
        .iter()
        .map(|call| {
            bind(&table, call).unwrap_or_else(|e| {
                panic!(
                    "{} line {}: {e} ({})",
                    script.name,
                    call.line,
                    e.fully_qualified_error_id()
                )
            })
        })
        .collect()
}

#[test]
fn every_script_file_is_shipped_byte_for_byte() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(SCRIPTS_DIR);
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let mut shipped: Vec<String> = SCRIPTS.iter().map(|s| format!("{}.ps1", s.name)).collect();
    shipped.sort();
    assert_eq!(files, shipped, "{SCRIPTS_DIR} and SCRIPTS differ");
    for script in SCRIPTS {
        let bytes = std::fs::read(dir.join(format!("{}.ps1", script.name))).unwrap();
        assert_eq!(bytes, script.text.as_bytes(), "{}", script.name);
        assert_eq!(sha256(script), <[u8; 32]>::from(Sha256::digest(&bytes)));
        assert_eq!(by_name(script.name), Some(script));
    }
    assert_eq!(by_name("no-such-script"), None);
}

/// Rules 1, 2, 3, 4 and 6 of the design note's 3.2 (rule 5 is the extractor's).
#[test]
fn every_script_has_the_header_prologue_module_path_and_result_line() {
    for script in SCRIPTS {
        let name = script.name;
        assert!(
            script
                .text
                .bytes()
                .all(|b| b == b'\n' || (b' '..=b'~').contains(&b)),
            "{name}: not printable ASCII with LF line ends"
        );
        let plan = plan(script);
        assert_eq!(plan.header.name, name);
        assert_eq!(plan.header.version, script.version, "{name}");
        let code = script
            .text
            .split_once("\nSet-StrictMode")
            .map(|(_, rest)| format!("Set-StrictMode{rest}"))
            .unwrap_or_default();
        assert!(code.starts_with(PROLOGUE), "{name}: prologue");
        assert!(
            script
                .text
                .lines()
                .take_while(|l| !l.starts_with("Set-StrictMode"))
                .all(|l| l.starts_with('#')),
            "{name}: only comments before the prologue"
        );
        let result_lines: Vec<&str> = script
            .text
            .lines()
            .filter(|l| l.contains("PROVD-RESULT"))
            .filter(|l| !l.starts_with('#'))
            .collect();
        assert_eq!(
            result_lines,
            [
                "[Console]::Out.WriteLine('PROVD-RESULT ' + [Convert]::ToBase64String([Text.Encoding]::UTF8.GetBytes((ConvertTo-Json -InputObject $result -Compress -Depth 6))))"
            ],
            "{name}: one result line"
        );
        assert_eq!(script.text.lines().last(), Some("exit $exitCode"), "{name}");
        for field in [
            "message = $_.Exception.Message",
            "fullyQualifiedErrorId = $_.FullyQualifiedErrorId",
            "category = \"$($_.CategoryInfo.Category)\"",
            "exceptionType = $_.Exception.GetType().FullName",
            "command = \"$($_.InvocationInfo.MyCommand)\"",
        ] {
            assert!(script.text.contains(field), "{name}: catch lacks {field}");
        }
        // The agent's module, or AADCloudSyncTools for the verbose-trace
        // commands: each script imports the one its commands are in.
        let table = Table::load().unwrap();
        let tools = plan.calls.iter().any(|c| {
            table
                .cmdlet(&c.command)
                .is_some_and(|t| t.module == "AADCloudSyncTools")
        });
        let module = if tools {
            TOOLS_MODULE_PATH
        } else {
            MODULE_PATH
        };
        for call in &plan.calls {
            if call.command == "Import-Module" {
                assert_eq!(
                    call.elements,
                    [
                        Element::Parameter {
                            name: "Name".into(),
                            argument: None
                        },
                        Element::Argument(Arg::Literal(module.into()))
                    ],
                    "{name}: Import-Module takes the documented path as a literal"
                );
            }
        }
        for line in script.text.lines().filter(|l| l.contains(".dll'")) {
            assert!(line.contains(&format!("'{MODULE_PATH}'")), "{name}: {line}");
        }
    }
}

#[test]
fn provd_imports_the_modules_the_table_names() {
    assert_eq!(provd::backends::agent_config::MODULE_PATH, MODULE_PATH);
    assert_eq!(
        provd::backends::agent_config::TOOLS_MODULE_PATH,
        TOOLS_MODULE_PATH
    );
}

#[test]
fn every_call_binds_against_the_cmdlet_table() {
    let table = Table::load().unwrap();
    let mut inferred = Vec::new();
    for script in SCRIPTS {
        let plan = plan(script);
        for (call, b) in plan.calls.iter().zip(bound(script, &plan)) {
            assert_eq!(
                call.command, b.cmdlet,
                "{}: the table's spelling",
                script.name
            );
            for p in &b.parameters {
                assert_eq!(p.written, p.name, "{}: -{} in full", script.name, p.name);
            }
            let set = table
                .cmdlet(&b.cmdlet)
                .and_then(|c| c.sets.iter().find(|s| s.name == b.parameter_set));
            if set.is_some_and(|s| s.evidence == Evidence::Inferred) {
                inferred.push((b.cmdlet.clone(), b.parameter_set.clone()));
            }
        }
    }
    // The only call resting on an inferred parameter set is design risk R3; another
    // one must be a decision, not an accident.
    assert_eq!(
        inferred,
        [(
            "Set-AADCloudSyncPasswordWritebackConfiguration".to_owned(),
            "AfterConnect".to_owned()
        )]
    );
}

/// A hostile value — a password `'; Start-Process calc; $(whoami) ` + "`n" + `"`, a
/// domain name with quotes — cannot change what a script does, at the level provable
/// without PowerShell: the scripts contain no expression built from request data.
/// The request reaches a script only as stdin (it is never part of the script text,
/// which is a compiled-in constant), is copied into typed locals, and each such local
/// (or the SecureString and PSCredential built from one) is only ever a whole argument
/// of a named parameter of a data type — a value PowerShell binds, never parses,
/// expands or runs. The extractor refuses anything else (its fixtures prove each case);
/// this test also counts every textual `$name` of request data against those uses, so
/// nothing the tree walk might miss (a bare word, a here-string) goes unseen.
/// The end-to-end test — a hostile password through AddDirectory, recorded byte for
/// byte by the stand-in powershell.exe — runs under Wine once that stand-in exists.
#[test]
fn request_data_reaches_cmdlets_only_as_whole_arguments() {
    let fields: BTreeMap<&str, &[&str]> = REQUEST_FIELDS.iter().copied().collect();
    for script in SCRIPTS {
        let name = script.name;
        let plan = plan(script);
        let read: Vec<&str> = plan
            .request_locals
            .iter()
            .map(|l| l.field.as_str())
            .collect();
        assert_eq!(read, fields[name], "{name}: request fields");
        let mut uses: BTreeMap<String, usize> = BTreeMap::new();
        let data: Vec<(String, Option<ParamType>)> = plan
            .request_locals
            .iter()
            .map(|l| (l.name.clone(), Some(cast_type(&l.ty))))
            .chain(plan.derived_locals.iter().map(|n| (n.clone(), None)))
            .collect();
        for b in bound(script, &plan) {
            for p in &b.parameters {
                for local in locals(&p.value) {
                    let Some((_, cast)) = data.iter().find(|(n, _)| n.eq_ignore_ascii_case(&local))
                    else {
                        continue;
                    };
                    *uses.entry(local.to_ascii_lowercase()).or_default() += 1;
                    assert!(
                        matches!(
                            p.ty,
                            ParamType::String
                                | ParamType::StringArray
                                | ParamType::Bool
                                | ParamType::PsCredential
                                | ParamType::ObjectArray
                        ),
                        "{name}: ${local} bound to -{} of type {:?}",
                        p.name,
                        p.ty
                    );
                    if p.ty == ParamType::ObjectArray {
                        assert_eq!(
                            (b.cmdlet.as_str(), p.name.as_str()),
                            ("New-Object", "ArgumentList"),
                            "{name}: ${local} in a list"
                        );
                    } else if let Some(cast) = cast {
                        assert!(matches!(p.value, Arg::Local(_)), "{name}: ${local} whole");
                        assert_eq!(
                            *cast, p.ty,
                            "{name}: ${local}'s cast and -{}'s type",
                            p.name
                        );
                    }
                }
            }
        }
        for (local, _) in &data {
            let conditions = script
                .text
                .matches(&format!("if (${local}.Count -gt 0)"))
                .count();
            let expected =
                1 + uses.get(&local.to_ascii_lowercase()).copied().unwrap_or(0) + conditions;
            assert_eq!(
                mentions(script.text, local),
                expected,
                "{name}: ${local} appears outside its definition, whole arguments and a Count condition"
            );
        }
        assert_eq!(
            mentions(script.text, "request"),
            1 + plan.request_locals.len(),
            "{name}: $request outside the request line and the typed copies"
        );
    }
}

/// The `ParamType` of a request local's cast.
fn cast_type(cast: &str) -> ParamType {
    match cast.to_ascii_lowercase().as_str() {
        "string" => ParamType::String,
        "string[]" => ParamType::StringArray,
        "bool" => ParamType::Bool,
        other => panic!("request local cast to {other}"),
    }
}

fn locals(arg: &Arg) -> Vec<String> {
    match arg {
        Arg::Local(name) => vec![name.clone()],
        Arg::List(items) => items.iter().flat_map(locals).collect(),
        _ => Vec::new(),
    }
}

/// `$name`, `${name}`, `$scope:name` or `@name` in the script's code (comment lines
/// skipped), case-insensitively.
fn mentions(text: &str, name: &str) -> usize {
    let name = name.to_ascii_lowercase();
    let mut count = 0;
    for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
        let lower = line.to_ascii_lowercase();
        let bytes = lower.as_bytes();
        for (i, _) in lower.match_indices(&name) {
            let before = lower[..i]
                .trim_end_matches(|c: char| c == '{' || c.is_ascii_alphabetic() || c == ':');
            let sigil = before.ends_with('$') || before.ends_with('@');
            let scoped = lower[before.len()..i].trim_start_matches('{');
            let prefix_ok = scoped.is_empty() || scoped.ends_with(':');
            let after = bytes.get(i + name.len()).copied();
            let ends = !after.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_');
            if sigil && prefix_ok && ends {
                count += 1;
            }
        }
    }
    count
}
