//! The cmdlet-parameter table (`cmdlets.toml`): what each command provd's scripts may
//! call accepts, with the evidence for it.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// The table's text, compiled in.
pub const TABLE_TOML: &str = include_str!("../cmdlets.toml");

/// How sure we are of a fact (the design note's labels).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Evidence {
    /// `[D]` a statement in a Microsoft documentation page.
    Documented,
    /// `[E]` shown only in an example on a Microsoft page.
    Example,
    /// `[M]` Microsoft-authored code, not documentation.
    MicrosoftCode,
    /// `[T]` third-party: a hint, not a contract.
    ThirdParty,
    /// `[I]` inferred or unknown: verify on a real server.
    Inferred,
}

/// Whether PowerShell requires the parameter (in its set).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mandatory {
    /// A page says it is required.
    Documented,
    /// Every example passes it; treated as mandatory.
    Assumed,
    /// Optional.
    No,
}

impl Mandatory {
    /// Whether the binder requires it.
    pub fn required(self) -> bool {
        !matches!(self, Mandatory::No)
    }
}

/// A parameter's .NET type, as far as binding needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ParamType {
    #[serde(rename = "string")]
    String,
    #[serde(rename = "string[]")]
    StringArray,
    #[serde(rename = "bool")]
    Bool,
    #[serde(rename = "int")]
    Int,
    /// A switch: present or not; takes a value only as `-Name:$value`.
    #[serde(rename = "switch")]
    Switch,
    #[serde(rename = "object")]
    Object,
    #[serde(rename = "object[]")]
    ObjectArray,
    #[serde(rename = "psobject")]
    PsObject,
    #[serde(rename = "PSCredential")]
    PsCredential,
    #[serde(rename = "scriptblock[]")]
    ScriptBlockArray,
    #[serde(rename = "ActionPreference")]
    ActionPreference,
    #[serde(rename = "version")]
    Version,
}

impl ParamType {
    /// The full .NET name PowerShell's messages use.
    pub fn dotnet_name(self) -> &'static str {
        match self {
            ParamType::String => "System.String",
            ParamType::StringArray => "System.String[]",
            ParamType::Bool => "System.Boolean",
            ParamType::Int => "System.Int32",
            ParamType::Switch => "System.Management.Automation.SwitchParameter",
            ParamType::Object => "System.Object",
            ParamType::ObjectArray => "System.Object[]",
            ParamType::PsObject => "System.Management.Automation.PSObject",
            ParamType::PsCredential => "System.Management.Automation.PSCredential",
            ParamType::ScriptBlockArray => "System.Management.Automation.ScriptBlock[]",
            ParamType::ActionPreference => "System.Management.Automation.ActionPreference",
            ParamType::Version => "System.Version",
        }
    }
}

/// One parameter of a set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Param {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: ParamType,
    pub mandatory: Mandatory,
    pub evidence: Evidence,
    /// Binds from pipeline input (`ValueFromPipeline`).
    #[serde(default)]
    pub pipeline: bool,
    /// The agent version that brought the parameter, where known.
    #[serde(default)]
    pub min_version: Option<String>,
    /// Documented values (not necessarily validated by the cmdlet).
    #[serde(default)]
    pub values: Vec<String>,
    #[serde(default)]
    pub note: Option<String>,
}

/// A parameter set: provd's name for a documented (or inferred) form.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParamSet {
    pub name: String,
    pub evidence: Evidence,
    pub source: String,
    #[serde(default)]
    pub note: Option<String>,
    pub params: Vec<Param>,
}

/// One command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cmdlet {
    pub name: String,
    pub module: String,
    /// The implementing class: the second half of its errors' FullyQualifiedErrorId.
    pub class: String,
    pub class_evidence: Evidence,
    #[serde(default)]
    pub class_source: Option<String>,
    pub source: Vec<String>,
    #[serde(default)]
    pub min_version: Option<String>,
    #[serde(default)]
    pub min_version_note: Option<String>,
    #[serde(default)]
    pub note: Option<String>,
    #[serde(rename = "set")]
    pub sets: Vec<ParamSet>,
}

/// The common parameters every cmdlet in the table accepts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Common {
    pub source: String,
    pub params: Vec<Param>,
}

/// The whole table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Table {
    pub common: Common,
    #[serde(rename = "cmdlet")]
    pub cmdlets: Vec<Cmdlet>,
}

/// The table is not what the code expects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableError(pub String);

impl fmt::Display for TableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cmdlets.toml: {}", self.0)
    }
}

impl std::error::Error for TableError {}

impl Table {
    /// The compiled-in table, checked (see [`Table::parse`]).
    pub fn load() -> Result<Table, TableError> {
        Table::parse(TABLE_TOML)
    }

    /// Parses and checks a table: unique command names (case-insensitive), every
    /// command with at least one set, unique set names, a parameter has one type
    /// across its command's sets, sources are `https://` addresses.
    pub fn parse(text: &str) -> Result<Table, TableError> {
        let table: Table = toml::from_str(text).map_err(|e| TableError(e.to_string()))?;
        let mut names = BTreeMap::new();
        for cmdlet in &table.cmdlets {
            if names.insert(cmdlet.name.to_ascii_lowercase(), ()).is_some() {
                return Err(TableError(format!("{} is listed twice", cmdlet.name)));
            }
            check_cmdlet(cmdlet, &table.common)?;
        }
        check_source(&table.common.source, "[common]")?;
        Ok(table)
    }

    /// The command called `name` (PowerShell's names are case-insensitive).
    pub fn cmdlet(&self, name: &str) -> Option<&Cmdlet> {
        self.cmdlets
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(name))
    }
}

fn check_cmdlet(cmdlet: &Cmdlet, common: &Common) -> Result<(), TableError> {
    let at = |what: String| TableError(format!("{}: {what}", cmdlet.name));
    if cmdlet.sets.is_empty() {
        return Err(at("no parameter set".into()));
    }
    if cmdlet.source.is_empty() {
        return Err(at("no source".into()));
    }
    for source in cmdlet.source.iter().chain(&cmdlet.class_source) {
        check_source(source, &cmdlet.name)?;
    }
    let common_names: Vec<String> = common
        .params
        .iter()
        .map(|p| p.name.to_ascii_lowercase())
        .collect();
    let mut types: BTreeMap<String, ParamType> = BTreeMap::new();
    let mut set_names = BTreeMap::new();
    for set in &cmdlet.sets {
        if set_names
            .insert(set.name.to_ascii_lowercase(), ())
            .is_some()
        {
            return Err(at(format!("set {} is listed twice", set.name)));
        }
        check_source(&set.source, &cmdlet.name)?;
        let mut in_set = BTreeMap::new();
        for param in &set.params {
            let key = param.name.to_ascii_lowercase();
            if common_names.contains(&key) {
                return Err(at(format!("{} shadows a common parameter", param.name)));
            }
            if in_set.insert(key.clone(), ()).is_some() {
                return Err(at(format!("{} twice in set {}", param.name, set.name)));
            }
            if *types.entry(key).or_insert(param.ty) != param.ty {
                return Err(at(format!("{} has two types", param.name)));
            }
        }
    }
    Ok(())
}

fn check_source(source: &str, at: &str) -> Result<(), TableError> {
    if source.starts_with("https://") && !source.contains(char::is_whitespace) {
        Ok(())
    } else {
        Err(TableError(format!(
            "{at}: source {source:?} is not an https address"
        )))
    }
}
