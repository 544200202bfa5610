//! From script text to a [`ScriptPlan`]: the header, the request locals and every
//! command call with its parameters and arguments, in source order.

use std::fmt;

use serde::{Deserialize, Serialize};
use tree_sitter::{Node, Parser, Tree};

use crate::rules::{self, Violation};
use crate::syntax::{
    children, count_condition, line, named_children, peel, request_field, snippet, text,
    variable_name,
};

/// What one script does, as far as binding and the lab stand-in need it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScriptPlan {
    pub header: Header,
    /// `$name = [type]$request.field`, in source order.
    pub request_locals: Vec<RequestLocal>,
    /// Locals assigned the output of a command that was given request data
    /// (`$credential = New-Object … -ArgumentList $userName, $securePassword`).
    pub derived_locals: Vec<String>,
    /// Every command, in source order (an outer command before the ones nested in it).
    pub calls: Vec<Call>,
}

/// Line 1: `# provd-script: <name> v<version>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub name: String,
    pub version: u32,
}

/// A typed copy of one request field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestLocal {
    /// The local, without `$`.
    pub name: String,
    /// The request's JSON field.
    pub field: String,
    /// The cast, as written (`string`, `string[]`, `bool`).
    pub ty: String,
    pub line: usize,
}

/// One command call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Call {
    /// The command name as written.
    pub command: String,
    pub line: usize,
    /// Parameters and arguments, in order; pairing them is the binder's job
    /// (whether `-X` takes the next argument depends on its type).
    pub elements: Vec<Element>,
    /// Receives pipeline input (`… | Command`).
    pub piped: bool,
    /// `$name = Command …` (or `$name = @(Command …)`): the local it sets, without `$`.
    pub assigned_to: Option<String>,
    /// The arm of `if ($local.Count -gt 0)` it sits in, if any.
    pub branch: Option<Branch>,
    /// Inside a script block (`ForEach-Object -Process { … }`).
    pub in_script_block: bool,
}

/// A parameter (`-Name`, `-Name:value`) or an argument.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Element {
    Parameter {
        /// Without the leading `-`.
        name: String,
        /// The value of `-Name:value`.
        argument: Option<Arg>,
    },
    Argument(Arg),
}

/// An argument's shape.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Arg {
    /// `$name` (without `$`; automatic variables such as `$_` too).
    Local(String),
    /// A quoted string with nothing to expand, a bare word, a number: its value.
    Literal(String),
    /// `$true` / `$false`.
    Bool(bool),
    /// `$null`.
    Null,
    /// `a, b, c`.
    List(Vec<Arg>),
    /// `{ … }`, as written.
    ScriptBlock(String),
    /// Anything else (`(…)`, `$(…)`, `"…$x…"`, `$a.b`), as written.
    Expression(String),
}

impl Arg {
    /// The argument as PowerShell's messages show it.
    pub fn display(&self) -> String {
        match self {
            Arg::Local(name) => format!("${name}"),
            Arg::Literal(value) => value.clone(),
            Arg::Bool(true) => "True".into(),
            Arg::Bool(false) => "False".into(),
            Arg::Null => String::new(),
            Arg::List(items) => items.iter().map(Arg::display).collect::<Vec<_>>().join(" "),
            Arg::ScriptBlock(text) | Arg::Expression(text) => text.clone(),
        }
    }
}

/// `if ($local.Count -gt 0) { NonEmpty } else { Empty }`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Branch {
    pub local: String,
    pub arm: Arm,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Arm {
    NonEmpty,
    Empty,
}

/// Why a script was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// The grammar could not be loaded (a tree-sitter ABI mismatch).
    Grammar(String),
    /// The tree has an ERROR or MISSING node: after a syntax error the recovered
    /// tree can attach a parameter to the wrong command, so nothing is extracted.
    Syntax {
        line: usize,
        column: usize,
        what: String,
    },
    /// The script breaks provd's script rules ([`crate::Rule`]), each listed.
    Rules(Vec<Violation>),
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Grammar(e) => write!(f, "PowerShell grammar: {e}"),
            ParseError::Syntax { line, column, what } => {
                write!(f, "syntax error at {line}:{column}: {what}")
            }
            ParseError::Rules(violations) => {
                write!(f, "script rules broken:")?;
                for v in violations {
                    write!(f, "\n  {v}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ParseError {}

/// Parses `script`, refuses any syntax error, extracts its plan and applies the
/// script rules. No I/O.
pub fn extract(script: &str) -> Result<ScriptPlan, ParseError> {
    let tree = parse(script)?;
    let root = tree.root_node();
    if root.has_error() {
        return Err(first_error(root, script));
    }
    let header = header(script);
    let mut walker = Walker {
        src: script,
        calls: Vec::new(),
        call_nodes: Vec::new(),
        request_locals: Vec::new(),
        assignments: Vec::new(),
    };
    walker.walk(root, Context::default());
    let derived_locals = derived_locals(&walker.request_locals, &walker.assignments, &walker.calls);
    let violations = rules::check(
        root,
        script,
        header.is_some(),
        &walker.request_locals,
        &derived_locals,
    );
    match header {
        Some(header) if violations.is_empty() => Ok(ScriptPlan {
            header,
            request_locals: walker.request_locals,
            derived_locals,
            calls: walker.calls,
        }),
        _ => Err(ParseError::Rules(violations)),
    }
}

fn parse(script: &str) -> Result<Tree, ParseError> {
    let mut parser = Parser::new();
    parser
        .set_language(&tree_sitter_powershell::LANGUAGE.into())
        .map_err(|e| ParseError::Grammar(e.to_string()))?;
    parser
        .parse(script, None)
        .ok_or_else(|| ParseError::Grammar("the parser returned no tree".into()))
}

/// The innermost first ERROR or MISSING node.
fn first_error(mut node: Node<'_>, src: &str) -> ParseError {
    loop {
        let next = children(node)
            .into_iter()
            .find(|c| c.has_error() || c.is_missing());
        match next {
            Some(child) if !node.is_missing() => node = child,
            _ => break,
        }
    }
    let at = node.start_position();
    let end = node.end_position().row + 1;
    let what = if node.is_missing() {
        format!("missing {}", node.kind())
    } else if text(node, src).is_empty() {
        "cannot parse here".to_owned()
    } else if end > at.row + 1 {
        format!("cannot parse lines {}-{end}", at.row + 1)
    } else {
        format!("unexpected {:?}", snippet(text(node, src)))
    };
    ParseError::Syntax {
        line: at.row + 1,
        column: at.column + 1,
        what,
    }
}

/// `# provd-script: <name> v<N>` on line 1 (name: lowercase letters, digits, `-`).
fn header(script: &str) -> Option<Header> {
    let line = script.lines().next()?;
    let rest = line.strip_prefix("# provd-script: ")?;
    let (name, version) = rest.split_once(" v")?;
    let name_ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    let version_ok = !version.is_empty() && version.bytes().all(|b| b.is_ascii_digit());
    if !(name_ok && version_ok) {
        return None;
    }
    Some(Header {
        name: name.to_owned(),
        version: version.parse().ok()?,
    })
}

#[derive(Clone, Default)]
struct Context {
    branch: Option<Branch>,
    in_script_block: bool,
}

/// `$target = <command …>`: the call's index.
struct Assignment {
    target: String,
    call: usize,
}

struct Walker<'s> {
    src: &'s str,
    calls: Vec<Call>,
    /// The tree node of each call (its id), to find the one an assignment receives.
    call_nodes: Vec<usize>,
    request_locals: Vec<RequestLocal>,
    assignments: Vec<Assignment>,
}

impl<'s> Walker<'s> {
    fn walk(&mut self, node: Node<'_>, cx: Context) {
        match node.kind() {
            "command" => {
                self.command(node, &cx);
            }
            "assignment_expression" => {
                self.assignment(node, &cx);
                return;
            }
            "if_statement" => {
                self.if_statement(node, &cx);
                return;
            }
            "script_block_expression" => {
                let inner = Context {
                    in_script_block: true,
                    ..cx
                };
                for child in children(node) {
                    self.walk(child, inner.clone());
                }
                return;
            }
            _ => {}
        }
        for child in children(node) {
            self.walk(child, cx.clone());
        }
    }

    fn command(&mut self, node: Node<'_>, cx: &Context) {
        let name = node
            .child_by_field_name("command_name")
            .map(|n| text(n, self.src).to_owned())
            .unwrap_or_default();
        let elements = node
            .child_by_field_name("command_elements")
            .map(|n| elements(n, self.src))
            .unwrap_or_default();
        let piped = node.prev_sibling().is_some_and(|s| s.kind() == "|");
        self.call_nodes.push(node.id());
        self.calls.push(Call {
            command: name,
            line: line(node),
            elements,
            piped,
            assigned_to: None,
            branch: cx.branch.clone(),
            in_script_block: cx.in_script_block,
        });
    }

    fn assignment(&mut self, node: Node<'_>, cx: &Context) {
        let target = node
            .named_child(0)
            .map(peel)
            .filter(|n| n.kind() == "variable")
            .map(|n| variable_name(text(n, self.src)));
        let value = node.child_by_field_name("value");
        if let (Some(target), Some((field, ty))) =
            (&target, value.and_then(|v| request_field(v, self.src)))
        {
            self.request_locals.push(RequestLocal {
                name: target.clone(),
                field,
                ty,
                line: line(node),
            });
        }
        for child in children(node) {
            self.walk(child, cx.clone());
        }
        // The command whose output the local receives: the last one of the value's
        // pipeline (`$x = … | ConvertFrom-Json`), also inside `@( … )`.
        let command = value.and_then(assigned_command).map(|c| c.id());
        let found = command.and_then(|id| self.call_nodes.iter().position(|&n| n == id));
        if let (Some(target), Some(i)) = (target, found) {
            self.calls[i].assigned_to = Some(target.clone());
            self.assignments.push(Assignment { target, call: i });
        }
    }

    fn if_statement(&mut self, node: Node<'_>, cx: &Context) {
        let local = node
            .child_by_field_name("condition")
            .and_then(|c| count_condition(c, self.src));
        for child in children(node) {
            let mut inner = cx.clone();
            if let Some(local) = &local {
                match child.kind() {
                    "statement_block" => {
                        inner.branch = Some(Branch {
                            local: local.clone(),
                            arm: Arm::NonEmpty,
                        })
                    }
                    "else_clause" => {
                        inner.branch = Some(Branch {
                            local: local.clone(),
                            arm: Arm::Empty,
                        })
                    }
                    _ => {}
                }
            }
            self.walk(child, inner);
        }
    }
}

/// Locals assigned from a command that was given request data (or data derived from
/// it), to a fixed point.
fn derived_locals(
    request_locals: &[RequestLocal],
    assignments: &[Assignment],
    calls: &[Call],
) -> Vec<String> {
    let mut tainted: Vec<String> = request_locals.iter().map(|l| l.name.clone()).collect();
    tainted.push("request".into());
    let mut derived: Vec<String> = Vec::new();
    loop {
        let before = derived.len();
        for a in assignments {
            let known = |name: &String| name.eq_ignore_ascii_case(&a.target);
            if tainted.iter().any(known) {
                continue;
            }
            if calls[a.call].elements.iter().any(|e| uses_any(e, &tainted)) {
                tainted.push(a.target.clone());
                derived.push(a.target.clone());
            }
        }
        if derived.len() == before {
            return derived;
        }
    }
}

fn uses_any(element: &Element, names: &[String]) -> bool {
    fn arg_uses(arg: &Arg, names: &[String]) -> bool {
        match arg {
            Arg::Local(n) => names.iter().any(|m| m.eq_ignore_ascii_case(n)),
            Arg::List(items) => items.iter().any(|a| arg_uses(a, names)),
            _ => false,
        }
    }
    match element {
        Element::Parameter { argument, .. } => {
            argument.as_ref().is_some_and(|a| arg_uses(a, names))
        }
        Element::Argument(arg) => arg_uses(arg, names),
    }
}

/// `command_elements` → parameters and arguments; `-Name:value` pairs up here.
fn elements(node: Node<'_>, src: &str) -> Vec<Element> {
    let mut out: Vec<Element> = Vec::new();
    let mut colon = false;
    for child in children(node) {
        match child.kind() {
            "command_argument_sep" => colon = text(child, src).trim() == ":",
            "command_parameter" => {
                let name = text(child, src);
                let name = name.strip_prefix('-').unwrap_or(name);
                out.push(Element::Parameter {
                    name: name.to_owned(),
                    argument: None,
                });
                colon = false;
            }
            _ => {
                let value = arg_of(child, src);
                match out.last_mut() {
                    Some(Element::Parameter { argument, .. }) if colon && argument.is_none() => {
                        *argument = Some(value)
                    }
                    _ => out.push(Element::Argument(value)),
                }
                colon = false;
            }
        }
    }
    out
}

pub(crate) fn arg_of(node: Node<'_>, src: &str) -> Arg {
    match node.kind() {
        "array_literal_expression" => {
            let items: Vec<Arg> = named_children(node)
                .into_iter()
                .map(|n| arg_of(n, src))
                .collect();
            match <[Arg; 1]>::try_from(items) {
                Ok([one]) => one,
                Err(items) => Arg::List(items),
            }
        }
        "unary_expression" | "string_literal" => match named_children(node).as_slice() {
            [one] => arg_of(*one, src),
            _ => Arg::Expression(text(node, src).to_owned()),
        },
        "generic_token" => {
            let t = text(node, src);
            if t.contains(['$', '`', '@']) {
                Arg::Expression(t.to_owned())
            } else {
                Arg::Literal(t.to_owned())
            }
        }
        "variable" => {
            let t = text(node, src);
            if t.starts_with('@') {
                return Arg::Expression(t.to_owned());
            }
            let name = variable_name(t);
            match name.to_ascii_lowercase().as_str() {
                "true" => Arg::Bool(true),
                "false" => Arg::Bool(false),
                "null" => Arg::Null,
                _ => Arg::Local(name),
            }
        }
        "verbatim_string_characters" => {
            Arg::Literal(unquote(text(node, src), '\'').replace("''", "'"))
        }
        "expandable_string_literal" => {
            let t = text(node, src);
            let inner = unquote(t, '"');
            if node.named_child_count() == 0 && !inner.contains(['$', '`']) {
                Arg::Literal(inner.replace("\"\"", "\""))
            } else {
                Arg::Expression(t.to_owned())
            }
        }
        "integer_literal" | "real_literal" => Arg::Literal(text(node, src).to_owned()),
        "script_block_expression" => Arg::ScriptBlock(text(node, src).to_owned()),
        _ => Arg::Expression(text(node, src).to_owned()),
    }
}

/// The text between a string's quotes.
fn unquote(t: &str, quote: char) -> &str {
    t.strip_prefix(quote)
        .and_then(|t| t.strip_suffix(quote))
        .unwrap_or(t)
}

/// The command whose output an assignment's value is.
fn assigned_command(value: Node<'_>) -> Option<Node<'_>> {
    let value = peel(value);
    match value.kind() {
        "pipeline_chain" => {
            let last = named_children(value).into_iter().last()?;
            (last.kind() == "command").then_some(last)
        }
        "command" => Some(value),
        "array_expression" => {
            let statements = value.child_by_field_name("statements")?;
            match named_children(statements).as_slice() {
                [one] => assigned_command(*one),
                _ => None,
            }
        }
        _ => None,
    }
}
