//! The precomputed call plans: what `build.rs` writes to `OUT_DIR/scripts.json` and the
//! stand-in reads back. Shared source: `build.rs` includes this file with `#[path]`, so
//! the writer and the reader are one set of types.
//!
//! `build.rs` turns each shipped script into a [`BuiltScript`] with provd-psscript
//! (`crates/provd-psscript`, provd's own table, extractor and binder): the script's
//! steps in source order, each call already bound against the cmdlet table (or the
//! binder's error, which the stand-in reports when the script reaches that call, as
//! PowerShell binds a command only when it runs it).

use serde::{Deserialize, Serialize};

/// One script this stand-in was built with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuiltScript {
    /// From the header line `# provd-script: <name> v<version>`.
    pub name: String,
    pub version: u32,
    /// SHA-256 of the file's bytes, lower-case hex.
    pub sha256: String,
    /// The plan, or why provd-psscript refused the script.
    pub plan: Result<Plan, String>,
}

/// What the script does, in source order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub steps: Vec<Step>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Step {
    /// `$name = [ty]$request.field`.
    Local {
        line: usize,
        name: String,
        field: String,
        /// The cast as written: `string`, `string[]`, `bool`.
        ty: String,
        /// Between `try {` and `} catch {` (see [`CallStep::in_try`]).
        in_try: bool,
    },
    Call(CallStep),
}

/// One command call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallStep {
    pub line: usize,
    /// As written.
    pub command: String,
    /// `$name = …` receives its output (without `$`).
    pub assigned_to: Option<String>,
    /// Inside `if ($local.Count -gt 0)`: the local, and whether this is the non-empty arm.
    pub branch: Option<(String, bool)>,
    /// Inside a script block (`ForEach-Object -Process { … }`): runs per input object.
    pub in_script_block: bool,
    /// Between `try {` and `} catch {`: an error here reaches the script's catch.
    pub in_try: bool,
    pub binding: Result<Bound, Failure>,
}

/// A call that bound: the parameter set PowerShell would choose and each argument.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bound {
    /// The command's name as the table spells it.
    pub cmdlet: String,
    /// Its module (`Microsoft.CloudSync.PowerShell` for the agent's cmdlets).
    pub module: String,
    /// The implementing class (the second half of its errors' FullyQualifiedErrorId).
    pub class: String,
    pub parameter_set: String,
    pub parameters: Vec<BoundParam>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoundParam {
    /// As the table spells it.
    pub name: String,
    /// The table's type name: `string`, `string[]`, `bool`, `switch`, `PSCredential`, …
    pub ty: String,
    /// The .NET name PowerShell's messages use (`System.String`).
    pub dotnet: String,
    /// Mandatory in the chosen set (documented or assumed).
    pub mandatory: bool,
    pub value: ArgValue,
}

/// An argument's shape.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ArgValue {
    /// `$name` (without `$`).
    Local(String),
    /// A string with nothing to expand, a bare word, a number.
    Literal(String),
    Bool(bool),
    Null,
    List(Vec<ArgValue>),
    /// A script block or any other expression, as written: not evaluated.
    Other(String),
}

/// An error record, as a script's `catch` reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    pub message: String,
    pub fully_qualified_error_id: String,
    pub category: String,
    pub exception_type: String,
    /// `$_.InvocationInfo.MyCommand` as text (empty when PowerShell has none).
    pub command: String,
}
