//! Binding a call against the table, as PowerShell's parameter binder does for
//! named parameters, with its errors.
//!
//! What it models: exact or unambiguous-prefix parameter names, switches (a value
//! only as `-Name:value`), a parameter given twice, a parameter without its value,
//! arguments without a parameter (no positions are documented, so every positional
//! argument is refused), parameter-set resolution (the sets holding every named
//! parameter; then those whose mandatory parameters are all bound; pipeline input
//! satisfies a `pipeline = true` parameter), and missing mandatory parameters under
//! `-NonInteractive` (no prompt). It does not convert or validate values (the lab
//! stand-in checks types at run time), and knows no aliases or dynamic parameters.
//!
//! The message texts and error ids are Windows PowerShell 5.1's as the design note
//! gives them (1.2); they are to be confirmed on a real PowerShell before the
//! stand-in freezes them [I].

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::extract::{Arg, Call, Element};
use crate::table::{Cmdlet, Param, ParamType, Table};

/// A call whose parameters bound: the set PowerShell would choose and each value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoundCall {
    /// The command's name as the table spells it.
    pub cmdlet: String,
    pub class: String,
    pub line: usize,
    pub parameter_set: String,
    pub parameters: Vec<BoundParameter>,
    /// The parameter pipeline input binds to, when the call is piped.
    pub pipeline_input: Option<String>,
}

/// One bound parameter.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoundParameter {
    /// As the table spells it.
    pub name: String,
    /// As the script wrote it (differs when abbreviated or in another case).
    pub written: String,
    #[serde(rename = "type")]
    pub ty: ParamType,
    /// A switch given without a value is `Arg::Bool(true)`.
    pub value: Arg,
}

/// PowerShell's binding errors.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BindError {
    CommandNotFound {
        name: String,
    },
    NamedParameterNotFound {
        class: String,
        parameter: String,
    },
    AmbiguousParameter {
        class: String,
        parameter: String,
        matches: Vec<String>,
    },
    ParameterAlreadyBound {
        class: String,
        parameter: String,
    },
    MissingArgument {
        class: String,
        parameter: String,
        ty: ParamType,
    },
    PositionalParameterNotFound {
        class: String,
        argument: String,
    },
    AmbiguousParameterSet {
        class: String,
    },
    MissingMandatoryParameter {
        class: String,
        parameters: Vec<String>,
    },
}

impl BindError {
    /// The error record's `FullyQualifiedErrorId`.
    pub fn fully_qualified_error_id(&self) -> String {
        let (id, class) = match self {
            BindError::CommandNotFound { .. } => return "CommandNotFoundException".into(),
            BindError::NamedParameterNotFound { class, .. } => ("NamedParameterNotFound", class),
            BindError::AmbiguousParameter { class, .. } => ("AmbiguousParameter", class),
            BindError::ParameterAlreadyBound { class, .. } => ("ParameterAlreadyBound", class),
            BindError::MissingArgument { class, .. } => ("MissingArgument", class),
            BindError::PositionalParameterNotFound { class, .. } => {
                ("PositionalParameterNotFound", class)
            }
            BindError::AmbiguousParameterSet { class } => ("AmbiguousParameterSet", class),
            BindError::MissingMandatoryParameter { class, .. } => {
                ("MissingMandatoryParameter", class)
            }
        };
        format!("{id},{class}")
    }

    /// The error record's `CategoryInfo.Category`.
    pub fn category(&self) -> &'static str {
        match self {
            BindError::CommandNotFound { .. } => "ObjectNotFound",
            _ => "InvalidArgument",
        }
    }

    /// The exception's .NET type.
    pub fn exception_type(&self) -> &'static str {
        match self {
            BindError::CommandNotFound { .. } => {
                "System.Management.Automation.CommandNotFoundException"
            }
            _ => "System.Management.Automation.ParameterBindingException",
        }
    }
}

impl fmt::Display for BindError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BindError::CommandNotFound { name } => write!(
                f,
                "The term '{name}' is not recognized as the name of a cmdlet, function, script \
                 file, or operable program. Check the spelling of the name, or if a path was \
                 included, verify that the path is correct and try again."
            ),
            BindError::NamedParameterNotFound { parameter, .. } => write!(
                f,
                "A parameter cannot be found that matches parameter name '{parameter}'."
            ),
            BindError::AmbiguousParameter {
                parameter, matches, ..
            } => {
                write!(
                    f,
                    "Parameter cannot be processed because the parameter name '{parameter}' is \
                     ambiguous. Possible matches include:"
                )?;
                for m in matches {
                    write!(f, " -{m}")?;
                }
                write!(f, ".")
            }
            BindError::ParameterAlreadyBound { parameter, .. } => write!(
                f,
                "Cannot bind parameter because parameter '{parameter}' is specified more than \
                 once. To provide multiple values to parameters that can accept multiple values, \
                 use the array syntax. For example, \"-parameter value1,value2,value3\"."
            ),
            BindError::MissingArgument { parameter, ty, .. } => write!(
                f,
                "Missing an argument for parameter '{parameter}'. Specify a parameter of type \
                 '{}' and try again.",
                ty.dotnet_name()
            ),
            BindError::PositionalParameterNotFound { argument, .. } => write!(
                f,
                "A positional parameter cannot be found that accepts argument '{argument}'."
            ),
            BindError::AmbiguousParameterSet { .. } => write!(
                f,
                "Parameter set cannot be resolved using the specified named parameters."
            ),
            BindError::MissingMandatoryParameter { parameters, .. } => write!(
                f,
                "Cannot process command because of one or more missing mandatory parameters: {}.",
                parameters.join(" ")
            ),
        }
    }
}

impl std::error::Error for BindError {}

/// The parameter set named `__AllParameterSets` holds parameters shared by every set.
const ALL_SETS: &str = "__AllParameterSets";

/// A set with the shared and common parameters folded in.
struct EffectiveSet<'t> {
    name: &'t str,
    params: Vec<&'t Param>,
}

fn effective_sets<'t>(table: &'t Table, cmdlet: &'t Cmdlet) -> Vec<EffectiveSet<'t>> {
    let shared: Vec<&Param> = cmdlet
        .sets
        .iter()
        .filter(|s| s.name == ALL_SETS)
        .flat_map(|s| &s.params)
        .chain(&table.common.params)
        .collect();
    let named: Vec<EffectiveSet<'t>> = cmdlet
        .sets
        .iter()
        .filter(|s| s.name != ALL_SETS)
        .map(|s| EffectiveSet {
            name: &s.name,
            params: s.params.iter().chain(shared.iter().copied()).collect(),
        })
        .collect();
    if named.is_empty() {
        vec![EffectiveSet {
            name: ALL_SETS,
            params: shared,
        }]
    } else {
        named
    }
}

/// Binds `call` against `table`.
pub fn bind(table: &Table, call: &Call) -> Result<BoundCall, BindError> {
    let cmdlet = table
        .cmdlet(&call.command)
        .ok_or_else(|| BindError::CommandNotFound {
            name: call.command.clone(),
        })?;
    let class = cmdlet.class.clone();
    let sets = effective_sets(table, cmdlet);
    let mut known: Vec<&Param> = Vec::new();
    for param in sets.iter().flat_map(|s| s.params.iter().copied()) {
        if !known
            .iter()
            .any(|k| k.name.eq_ignore_ascii_case(&param.name))
        {
            known.push(param);
        }
    }

    let mut parameters: Vec<BoundParameter> = Vec::new();
    let mut elements = call.elements.iter().peekable();
    while let Some(element) = elements.next() {
        let (written, argument) = match element {
            Element::Parameter { name, argument } => (name, argument),
            Element::Argument(arg) => {
                return Err(BindError::PositionalParameterNotFound {
                    class,
                    argument: arg.display(),
                });
            }
        };
        let param = resolve(&known, written, &class)?;
        if parameters.iter().any(|p| p.name == param.name) {
            return Err(BindError::ParameterAlreadyBound {
                class,
                parameter: param.name.clone(),
            });
        }
        let value = match (argument, param.ty) {
            (Some(value), _) => value.clone(),
            (None, ParamType::Switch) => Arg::Bool(true),
            (None, ty) => match elements.next_if(|e| matches!(e, Element::Argument(_))) {
                Some(Element::Argument(value)) => value.clone(),
                _ => {
                    return Err(BindError::MissingArgument {
                        class,
                        parameter: param.name.clone(),
                        ty,
                    });
                }
            },
        };
        parameters.push(BoundParameter {
            name: param.name.clone(),
            written: written.clone(),
            ty: param.ty,
            value,
        });
    }

    let has = |set: &EffectiveSet<'_>, name: &str| set.params.iter().any(|p| p.name == name);
    let candidates: Vec<&EffectiveSet<'_>> = sets
        .iter()
        .filter(|s| parameters.iter().all(|p| has(s, &p.name)))
        .collect();
    let missing = |set: &EffectiveSet<'_>| -> Vec<String> {
        set.params
            .iter()
            .filter(|p| p.mandatory.required())
            .filter(|p| !parameters.iter().any(|b| b.name == p.name))
            .filter(|p| !(call.piped && p.pipeline))
            .map(|p| p.name.clone())
            .collect()
    };
    let satisfied: Vec<&EffectiveSet<'_>> = candidates
        .iter()
        .copied()
        .filter(|s| missing(s).is_empty())
        .collect();
    let chosen = match (satisfied.as_slice(), candidates.as_slice()) {
        ([one], _) => *one,
        ([], [one]) => {
            return Err(BindError::MissingMandatoryParameter {
                class,
                parameters: missing(one),
            });
        }
        _ => return Err(BindError::AmbiguousParameterSet { class }),
    };
    let pipeline_input = call
        .piped
        .then(|| {
            chosen
                .params
                .iter()
                .find(|p| p.pipeline && !parameters.iter().any(|b| b.name == p.name))
                .map(|p| p.name.clone())
        })
        .flatten();
    Ok(BoundCall {
        cmdlet: cmdlet.name.clone(),
        class,
        line: call.line,
        parameter_set: chosen.name.to_owned(),
        parameters,
        pipeline_input,
    })
}

/// An exact name, else the one parameter it is a prefix of.
fn resolve<'t>(known: &[&'t Param], written: &str, class: &str) -> Result<&'t Param, BindError> {
    if let Some(exact) = known.iter().find(|p| p.name.eq_ignore_ascii_case(written)) {
        return Ok(exact);
    }
    let lower = written.to_ascii_lowercase();
    let matches: Vec<&&Param> = known
        .iter()
        .filter(|p| !written.is_empty() && p.name.to_ascii_lowercase().starts_with(&lower))
        .collect();
    match matches.as_slice() {
        [one] => Ok(one),
        [] => Err(BindError::NamedParameterNotFound {
            class: class.to_owned(),
            parameter: written.to_owned(),
        }),
        many => Err(BindError::AmbiguousParameter {
            class: class.to_owned(),
            parameter: written.to_owned(),
            matches: many.iter().map(|p| p.name.clone()).collect(),
        }),
    }
}
