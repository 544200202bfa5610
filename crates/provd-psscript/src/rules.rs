//! provd's script rules (design note for issue 14, 3.2): what a shipped script may
//! not contain. [`check`] lists every violation; [`crate::extract`] refuses a script
//! with any.
//!
//! The request-data rule is the one that keeps a hostile value inert: the request
//! object and every local copied from it (or computed by a command from one) may
//! appear only as a *whole* named-parameter argument, in the credential
//! construction (`New-Object -TypeName System.Management.Automation.PSCredential
//! -ArgumentList $user, $secure`), or as `$local.Count -gt 0` in an `if`. A value
//! bound to a parameter is data to PowerShell: it is never parsed or expanded.

use std::fmt;

use serde::{Deserialize, Serialize};
use tree_sitter::Node;

use crate::extract::{Arg, RequestLocal, arg_of};
use crate::syntax::{
    children, count_condition, is_request, is_request_field, line, peel, snippet, text,
    variable_name,
};

/// One rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    /// Line 1 is `# provd-script: <name> v<N>`.
    Header,
    /// ASCII only (printable, tab, CR, LF): Windows PowerShell 5.1 reads a BOM-less
    /// file in the ANSI code page.
    NonAscii,
    /// No invoke operator `& <command>`.
    InvokeOperator,
    /// No dot-sourcing `. <script>`.
    DotSource,
    /// No `Invoke-Expression` / `iex`.
    InvokeExpression,
    /// No splatting `@name`.
    Splatting,
    /// No `[ScriptBlock]::Create(…)`.
    ScriptBlockCreate,
    /// No other code built at run time (`$ExecutionContext`, `[PowerShell]::Create`,
    /// `.ExpandString`, `.InvokeScript`, `.NewScriptBlock`, `.AddScript`, `.Invoke`).
    DynamicCode,
    /// No `Add-Type`.
    AddType,
    /// No `-ExecutionPolicy` and no `Set-ExecutionPolicy`.
    ExecutionPolicy,
    /// No redirection, `--%` or background `&`.
    Redirection,
    /// The only control flow: `if ($local.Count -gt 0) { … } else { … }`, one
    /// `try`/`catch`, `exit`.
    ControlFlow,
    /// Command arguments are locals, literals, lists of those, or script blocks.
    ArgumentShape,
    /// `Import-Module` takes a literal path, never data.
    ModuleNotLiteral,
    /// Each request field is copied once into a typed local (`$x = [string]$request.x`),
    /// and each such local is assigned once.
    RequestField,
    /// No request data inside an expandable string.
    RequestInString,
    /// No request data in any other expression.
    RequestInExpression,
}

impl Rule {
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::Header => "header",
            Rule::NonAscii => "non-ascii",
            Rule::InvokeOperator => "invoke-operator",
            Rule::DotSource => "dot-source",
            Rule::InvokeExpression => "invoke-expression",
            Rule::Splatting => "splatting",
            Rule::ScriptBlockCreate => "scriptblock-create",
            Rule::DynamicCode => "dynamic-code",
            Rule::AddType => "add-type",
            Rule::ExecutionPolicy => "execution-policy",
            Rule::Redirection => "redirection",
            Rule::ControlFlow => "control-flow",
            Rule::ArgumentShape => "argument-shape",
            Rule::ModuleNotLiteral => "module-not-literal",
            Rule::RequestField => "request-field",
            Rule::RequestInString => "request-in-string",
            Rule::RequestInExpression => "request-in-expression",
        }
    }
}

/// One broken rule, where.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    pub rule: Rule,
    pub line: usize,
    /// The offending text (its first line, shortened).
    pub text: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}: {}: {}",
            self.line,
            self.rule.as_str(),
            self.text
        )
    }
}

/// Every violation in a syntax-error-free tree.
pub(crate) fn check(
    root: Node<'_>,
    src: &str,
    header_ok: bool,
    request_locals: &[RequestLocal],
    derived_locals: &[String],
) -> Vec<Violation> {
    let mut out = Vec::new();
    if !header_ok {
        out.push(Violation {
            rule: Rule::Header,
            line: 1,
            text: snippet(src),
        });
    }
    for (n, l) in src.lines().enumerate() {
        if !l.bytes().all(|b| matches!(b, b' '..=b'~' | b'\t' | b'\r')) {
            out.push(Violation {
                rule: Rule::NonAscii,
                line: n + 1,
                text: l.escape_default().to_string().chars().take(80).collect(),
            });
        }
    }
    let mut tainted: Vec<String> = request_locals.iter().map(|l| l.name.clone()).collect();
    tainted.extend(derived_locals.iter().cloned());
    for (i, local) in request_locals.iter().enumerate() {
        if request_locals[..i]
            .iter()
            .any(|l| l.field.eq_ignore_ascii_case(&local.field))
        {
            out.push(Violation {
                rule: Rule::RequestField,
                line: local.line,
                text: format!("request field {} copied twice", local.field),
            });
        }
    }
    let mut checker = Checker {
        src,
        tainted,
        out,
        tries: 0,
        assigned: Vec::new(),
    };
    checker.walk(root);
    checker.out.sort_by_key(|v| v.line);
    checker.out
}

struct Checker<'s> {
    src: &'s str,
    tainted: Vec<String>,
    out: Vec<Violation>,
    tries: usize,
    /// Request-data locals seen as an assignment target.
    assigned: Vec<String>,
}

impl Checker<'_> {
    fn flag(&mut self, rule: Rule, node: Node<'_>) {
        self.out.push(Violation {
            rule,
            line: line(node),
            text: snippet(text(node, self.src)),
        });
    }

    fn walk(&mut self, node: Node<'_>) {
        match node.kind() {
            "command" => self.command(node),
            "variable" => self.variable(node),
            "invokation_expression" | "member_access" => self.member(node),
            "redirection"
            | "stop_parsing"
            | "verbatim_command_argument"
            | "background_operator" => self.flag(Rule::Redirection, node),
            "foreach_statement"
            | "for_statement"
            | "while_statement"
            | "do_statement"
            | "switch_statement"
            | "function_statement"
            | "class_statement"
            | "enum_statement"
            | "trap_statement"
            | "data_statement"
            | "inlinescript_statement"
            | "parallel_statement"
            | "sequence_statement"
            | "pipeline_chain_tail" => self.flag(Rule::ControlFlow, node),
            "flow_control_statement"
                if !text(node, self.src)
                    .get(..4)
                    .is_some_and(|w| w.eq_ignore_ascii_case("exit")) =>
            {
                self.flag(Rule::ControlFlow, node)
            }
            "if_statement" => {
                let shaped = node
                    .child_by_field_name("condition")
                    .and_then(|c| count_condition(c, self.src))
                    .is_some();
                if !shaped || node.child_by_field_name("elseif_clauses").is_some() {
                    self.flag(Rule::ControlFlow, node)
                }
            }
            "try_statement" => {
                self.tries += 1;
                if self.tries > 1 {
                    self.flag(Rule::ControlFlow, node)
                }
            }
            _ => {}
        }
        for child in children(node) {
            self.walk(child);
        }
    }

    fn command(&mut self, node: Node<'_>) {
        for child in children(node) {
            if child.kind() == "command_invokation_operator" {
                if text(child, self.src) == "&" {
                    self.flag(Rule::InvokeOperator, node)
                } else {
                    self.flag(Rule::DotSource, node)
                }
            }
        }
        let name = node
            .child_by_field_name("command_name")
            .map(|n| text(n, self.src).to_ascii_lowercase())
            .unwrap_or_default();
        match name.as_str() {
            "invoke-expression" | "iex" => self.flag(Rule::InvokeExpression, node),
            "add-type" => self.flag(Rule::AddType, node),
            "set-executionpolicy" => self.flag(Rule::ExecutionPolicy, node),
            _ => {}
        }
        let Some(elements) = node.child_by_field_name("command_elements") else {
            return;
        };
        for element in children(elements) {
            match element.kind() {
                "command_argument_sep" => {}
                "command_parameter" => {
                    let p = text(element, self.src).to_ascii_lowercase();
                    if p.len() > 3 && "-executionpolicy".starts_with(&p) {
                        self.flag(Rule::ExecutionPolicy, element)
                    }
                }
                _ => {
                    let arg = arg_of(element, self.src);
                    if !argument_shaped(&arg) {
                        self.flag(Rule::ArgumentShape, element)
                    } else if name == "import-module" && !matches!(arg, Arg::Literal(_)) {
                        self.flag(Rule::ModuleNotLiteral, element)
                    }
                }
            }
        }
    }

    fn member(&mut self, node: Node<'_>) {
        let kids = children(node);
        let (Some(object), Some(op), Some(member)) = (kids.first(), kids.get(1), kids.get(2))
        else {
            return;
        };
        let member = text(*member, self.src).to_ascii_lowercase();
        if op.kind() == "::" && object.kind() == "type_literal" && member == "create" {
            let ty = text(*object, self.src)
                .trim_matches(['[', ']'])
                .trim()
                .to_ascii_lowercase();
            match ty.as_str() {
                "scriptblock" | "system.management.automation.scriptblock" => {
                    return self.flag(Rule::ScriptBlockCreate, node);
                }
                "powershell" | "system.management.automation.powershell" => {
                    return self.flag(Rule::DynamicCode, node);
                }
                _ => {}
            }
        }
        let dynamic = [
            "expandstring",
            "invokescript",
            "newscriptblock",
            "addscript",
            "invoke",
            "invokereturnasis",
            "invokewithcontext",
        ];
        if node.kind() == "invokation_expression" && dynamic.contains(&member.as_str()) {
            self.flag(Rule::DynamicCode, node)
        }
    }

    fn variable(&mut self, node: Node<'_>) {
        let t = text(node, self.src);
        if t.starts_with('@') {
            return self.flag(Rule::Splatting, node);
        }
        let name = variable_name(t);
        if name.eq_ignore_ascii_case("ExecutionContext") {
            return self.flag(Rule::DynamicCode, node);
        }
        if is_request(t) {
            if !self.request_object_use(node) {
                self.flag(Rule::RequestField, node)
            }
            return;
        }
        if !self.tainted.iter().any(|n| n.eq_ignore_ascii_case(&name)) {
            return;
        }
        if is_assignment_target(node) {
            if self.assigned.iter().any(|n| n.eq_ignore_ascii_case(&name)) {
                self.out.push(Violation {
                    rule: Rule::RequestField,
                    line: line(node),
                    text: format!("${name} (request data) assigned more than once"),
                });
            }
            self.assigned.push(name);
            return;
        }
        if whole_argument(node) || self.credential_list(node) || self.count_condition(node, &name) {
            return;
        }
        let in_string = ancestors(node).any(|a| {
            matches!(
                a.kind(),
                "expandable_string_literal" | "expandable_here_string_literal"
            )
        });
        if in_string {
            self.flag(Rule::RequestInString, node)
        } else {
            self.flag(Rule::RequestInExpression, node)
        }
    }

    /// `$request` as the target of its assignment or in `$x = [type]$request.field`.
    fn request_object_use(&self, node: Node<'_>) -> bool {
        if is_assignment_target(node) {
            return true;
        }
        let Some(access) = node.parent().filter(|p| p.kind() == "member_access") else {
            return false;
        };
        let Some(assignment) = ancestors(node).find(|a| a.kind() == "assignment_expression") else {
            return false;
        };
        let value = assignment.child_by_field_name("value");
        let target_ok = assignment
            .named_child(0)
            .map(peel)
            .is_some_and(|t| t.kind() == "variable");
        let cast = value.map(peel).map(|v| match v.kind() {
            "expression_with_unary_operator" => v.named_child(0).unwrap_or(v),
            _ => v,
        });
        target_ok
            && cast.is_some_and(|c| {
                c.kind() == "cast_expression" && c.named_child(1).map(peel) == Some(access)
            })
            && value.is_some_and(|v| is_request_field(v, self.src))
    }

    /// In `New-Object -TypeName System.Management.Automation.PSCredential
    /// -ArgumentList $user, $secure`, each item a whole local.
    fn credential_list(&self, node: Node<'_>) -> bool {
        let Some((list, elements)) = in_argument(node) else {
            return false;
        };
        let command = elements.parent();
        let name_ok = command
            .and_then(|c| c.child_by_field_name("command_name"))
            .is_some_and(|n| text(n, self.src).eq_ignore_ascii_case("New-Object"));
        let parameter = previous_parameter(list, self.src);
        let type_ok = children(elements).windows(3).any(|w| {
            text(w[0], self.src).eq_ignore_ascii_case("-TypeName")
                && matches!(
                    text(w[2], self.src)
                        .trim_matches(['\'', '"'])
                        .to_ascii_lowercase()
                        .as_str(),
                    "system.management.automation.pscredential" | "pscredential"
                )
        });
        name_ok && type_ok && parameter.is_some_and(|p| p.eq_ignore_ascii_case("ArgumentList"))
    }

    /// `$name.Count -gt 0` as an `if` condition.
    fn count_condition(&self, node: Node<'_>, name: &str) -> bool {
        if node.parent().is_none_or(|p| p.kind() != "member_access") {
            return false;
        }
        ancestors(node)
            .find(|a| a.kind() == "if_statement")
            .and_then(|i| i.child_by_field_name("condition"))
            .filter(|c| c.byte_range().contains(&node.start_byte()))
            .and_then(|c| count_condition(c, self.src))
            .is_some_and(|local| local.eq_ignore_ascii_case(name))
    }
}

fn argument_shaped(arg: &Arg) -> bool {
    match arg {
        Arg::Local(_) | Arg::Literal(_) | Arg::Bool(_) | Arg::Null | Arg::ScriptBlock(_) => true,
        Arg::List(items) => items
            .iter()
            .all(|a| matches!(a, Arg::Local(_) | Arg::Literal(_) | Arg::Bool(_))),
        Arg::Expression(_) => false,
    }
}

/// The variable is the whole argument of a command: `-Name $x` or `-Name:$x`.
fn whole_argument(node: Node<'_>) -> bool {
    in_argument(node).is_some_and(|(list, _)| list.child_count() == 1)
}

/// A variable that is a command argument or an item of one (`$a, $b`): the
/// argument's list node and the command's elements.
fn in_argument(node: Node<'_>) -> Option<(Node<'_>, Node<'_>)> {
    let unary = node
        .parent()
        .filter(|p| p.kind() == "unary_expression" && p.child_count() == 1)?;
    let list = unary
        .parent()
        .filter(|p| p.kind() == "array_literal_expression")?;
    let elements = list.parent().filter(|p| p.kind() == "command_elements")?;
    Some((list, elements))
}

fn is_assignment_target(node: Node<'_>) -> bool {
    ancestors(node)
        .find(|a| a.kind() == "left_assignment_expression")
        .is_some_and(|lhs| peel(lhs) == node)
}

/// The name of the parameter an argument follows.
fn previous_parameter(mut node: Node<'_>, src: &str) -> Option<String> {
    while let Some(prev) = node.prev_sibling() {
        match prev.kind() {
            "command_argument_sep" => node = prev,
            "command_parameter" => return Some(text(prev, src).trim_start_matches('-').to_owned()),
            _ => return None,
        }
    }
    None
}

fn ancestors(node: Node<'_>) -> impl Iterator<Item = Node<'_>> {
    std::iter::successors(node.parent(), |n| n.parent())
}
