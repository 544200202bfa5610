//! Precomputes what the stand-in runs: every script in provd's
//! `src/backends/agent_config/scripts/` (and, for the unit tests, `tests/fixtures/`), its
//! SHA-256, and its call plan extracted and bound by provd-psscript against provd's cmdlet
//! table → `OUT_DIR/scripts.json` and `OUT_DIR/fixtures.json` (see `src/plan.rs`).
//!
//! A script provd-psscript refuses, or a call that does not bind, does not fail the build:
//! the refusal or the binder's error is recorded, and the stand-in reports it when the
//! script is run (a binder error when the script reaches that call, as PowerShell would).

use std::path::{Path, PathBuf};

use provd_psscript::{Arg, Arm, BindError, BoundCall, Call, Table, bind, extract};
use sha2::{Digest, Sha256};

#[path = "src/plan.rs"]
mod plan;

use plan::{ArgValue, Bound, BoundParam, BuiltScript, CallStep, Failure, Plan, Step};

/// provd's scripts, relative to this crate.
const SCRIPTS: &str = "../../../../src/backends/agent_config/scripts";
const FIXTURES: &str = "tests/fixtures";

fn main() {
    let here = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default());
    let table = match Table::load() {
        Ok(table) => table,
        Err(e) => panic!("provd-psscript's cmdlet table: {e}"),
    };
    for (dir, file) in [(SCRIPTS, "scripts.json"), (FIXTURES, "fixtures.json")] {
        let dir = here.join(dir);
        println!("cargo:rerun-if-changed={}", dir.display());
        let built: Vec<BuiltScript> = scripts_in(&dir)
            .iter()
            .map(|path| {
                println!("cargo:rerun-if-changed={}", path.display());
                build(&table, path)
            })
            .collect();
        let json = match serde_json::to_string(&built) {
            Ok(json) => json,
            Err(e) => panic!("serializing the plans: {e}"),
        };
        if let Err(e) = std::fs::write(out.join(file), json) {
            panic!("writing {file}: {e}");
        }
    }
}

/// The `.ps1` files of `dir`, sorted (none if it does not exist).
fn scripts_in(dir: &Path) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "ps1"))
                .collect()
        })
        .unwrap_or_default();
    paths.sort();
    paths
}

fn build(table: &Table, path: &Path) -> BuiltScript {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) => panic!("{}: {e}", path.display()),
    };
    let sha256 = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let text = String::from_utf8_lossy(&bytes);
    let file_stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    match extract(&text) {
        Ok(extracted) => {
            let try_block = try_block(&text);
            let mut steps: Vec<(usize, usize, Step)> = Vec::new();
            for (i, local) in extracted.request_locals.iter().enumerate() {
                steps.push((
                    local.line,
                    i,
                    Step::Local {
                        line: local.line,
                        name: local.name.clone(),
                        field: local.field.clone(),
                        ty: local.ty.clone(),
                        in_try: inside(try_block, local.line),
                    },
                ));
            }
            let offset = steps.len();
            for (i, call) in extracted.calls.iter().enumerate() {
                let step = call_step(table, call, try_block);
                steps.push((call.line, offset + i, Step::Call(step)));
            }
            // Source order: by line; on one line a local's assignment (the whole
            // statement) before the calls, and calls in the extractor's order (an outer
            // command before the ones nested in it).
            steps.sort_by_key(|(line, order, _)| (*line, *order));
            BuiltScript {
                name: extracted.header.name,
                version: extracted.header.version,
                sha256,
                plan: Ok(Plan {
                    steps: steps.into_iter().map(|(_, _, s)| s).collect(),
                }),
            }
        }
        Err(e) => {
            // No plan: the header as far as it reads, for the stand-in's message.
            let (name, version) = header(&text).unwrap_or((file_stem, 0));
            BuiltScript {
                name,
                version,
                sha256,
                plan: Err(e.to_string()),
            }
        }
    }
}

/// `# provd-script: <name> v<N>` on line 1.
fn header(text: &str) -> Option<(String, u32)> {
    let rest = text.lines().next()?.strip_prefix("# provd-script: ")?;
    let (name, version) = rest.split_once(" v")?;
    Some((name.to_owned(), version.trim().parse().ok()?))
}

/// The lines of `try {` and `} catch {` (the scripts' single try/catch).
fn try_block(text: &str) -> Option<(usize, usize)> {
    let mut start = None;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line == "try {" && start.is_none() {
            start = Some(i + 1);
        }
        if line.starts_with("} catch") {
            return start.map(|s| (s, i + 1));
        }
    }
    None
}

fn inside(try_block: Option<(usize, usize)>, line: usize) -> bool {
    try_block.is_some_and(|(start, end)| start < line && line < end)
}

fn call_step(table: &Table, call: &Call, try_block: Option<(usize, usize)>) -> CallStep {
    CallStep {
        line: call.line,
        command: call.command.clone(),
        assigned_to: call.assigned_to.clone(),
        branch: call
            .branch
            .as_ref()
            .map(|b| (b.local.clone(), b.arm == Arm::NonEmpty)),
        in_script_block: call.in_script_block,
        in_try: inside(try_block, call.line),
        binding: match bind(table, call) {
            Ok(bound) => Ok(bound_of(table, &bound)),
            Err(e) => Err(failure_of(table, call, &e)),
        },
    }
}

fn bound_of(table: &Table, bound: &BoundCall) -> Bound {
    let cmdlet = table.cmdlet(&bound.cmdlet);
    // The chosen set's parameters, with the ones every set shares and the common ones.
    let params: Vec<&provd_psscript::Param> = cmdlet
        .map(|c| {
            c.sets
                .iter()
                .filter(|s| s.name == bound.parameter_set || s.name == "__AllParameterSets")
                .flat_map(|s| &s.params)
                .chain(&table.common.params)
                .collect()
        })
        .unwrap_or_default();
    Bound {
        cmdlet: bound.cmdlet.clone(),
        module: cmdlet.map(|c| c.module.clone()).unwrap_or_default(),
        class: bound.class.clone(),
        parameter_set: bound.parameter_set.clone(),
        parameters: bound
            .parameters
            .iter()
            .map(|p| BoundParam {
                name: p.name.clone(),
                ty: serde_json::to_value(p.ty)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                dotnet: p.ty.dotnet_name().to_owned(),
                mandatory: params
                    .iter()
                    .any(|q| q.name == p.name && q.mandatory.required()),
                value: arg(&p.value),
            })
            .collect(),
    }
}

fn arg(value: &Arg) -> ArgValue {
    match value {
        Arg::Local(name) => ArgValue::Local(name.clone()),
        Arg::Literal(text) => ArgValue::Literal(text.clone()),
        Arg::Bool(b) => ArgValue::Bool(*b),
        Arg::Null => ArgValue::Null,
        Arg::List(items) => ArgValue::List(items.iter().map(arg).collect()),
        Arg::ScriptBlock(text) | Arg::Expression(text) => ArgValue::Other(text.clone()),
    }
}

/// The record PowerShell's binder error leaves for the script's catch.
fn failure_of(table: &Table, call: &Call, error: &BindError) -> Failure {
    Failure {
        message: error.to_string(),
        fully_qualified_error_id: error.fully_qualified_error_id(),
        category: error.category().to_owned(),
        exception_type: error.exception_type().to_owned(),
        // A command PowerShell does not know has no InvocationInfo.MyCommand; a binding
        // error's is the command (as the table spells it).
        command: match error {
            BindError::CommandNotFound { .. } => String::new(),
            _ => table
                .cmdlet(&call.command)
                .map_or_else(|| call.command.clone(), |c| c.name.clone()),
        },
    }
}
