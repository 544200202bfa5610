//! Small helpers over tree-sitter's PowerShell nodes, shared by the extractor and
//! the rules: the shapes both recognise, names, text and positions.

use tree_sitter::Node;

/// `[type]$request.field` → (field, type).
pub(crate) fn request_field(value: Node<'_>, src: &str) -> Option<(String, String)> {
    let value = peel(value);
    let cast = match value.kind() {
        "expression_with_unary_operator" => value.named_child(0)?,
        _ => value,
    };
    if cast.kind() != "cast_expression" {
        return None;
    }
    let ty = cast.named_child(0).filter(|n| n.kind() == "type_literal")?;
    let access = cast.named_child(1).map(peel)?;
    if access.kind() != "member_access" || access.child_count() != 3 {
        return None;
    }
    let object = access.named_child(0)?;
    let member = access.named_child(1)?;
    if object.kind() != "variable" || !is_request(text(object, src)) {
        return None;
    }
    if access.child(1).is_none_or(|dot| dot.kind() != ".") {
        return None;
    }
    let field = member
        .named_child(0)
        .filter(|n| n.kind() == "simple_name")?;
    let ty = text(ty, src);
    let ty = ty
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(ty);
    Some((text(field, src).to_owned(), ty.trim().to_owned()))
}

/// `$local.Count -gt 0` → the local.
pub(crate) fn count_condition(condition: Node<'_>, src: &str) -> Option<String> {
    let comparison = peel(condition);
    if comparison.kind() != "comparison_expression" || comparison.child_count() != 3 {
        return None;
    }
    let left = comparison.child(0).map(peel)?;
    let op = comparison.child(1)?;
    let right = comparison.child(2).map(peel)?;
    if !text(op, src).eq_ignore_ascii_case("-gt") || text(right, src) != "0" {
        return None;
    }
    if left.kind() != "member_access" || left.child_count() != 3 {
        return None;
    }
    let variable = left.named_child(0).filter(|n| n.kind() == "variable")?;
    let member = left.named_child(1)?;
    if !text(member, src).eq_ignore_ascii_case("Count") || left.child(1)?.kind() != "." {
        return None;
    }
    let t = text(variable, src);
    (!t.starts_with('@')).then(|| variable_name(t))
}

/// Wrapper nodes that only pass their one child through.
const WRAPPERS: &[&str] = &[
    "pipeline",
    "pipeline_chain",
    "left_assignment_expression",
    "logical_expression",
    "bitwise_expression",
    "comparison_expression",
    "additive_expression",
    "multiplicative_expression",
    "format_expression",
    "range_expression",
    "array_literal_expression",
    "unary_expression",
    "argument_expression",
    "logical_argument_expression",
    "bitwise_argument_expression",
    "comparison_argument_expression",
    "additive_argument_expression",
    "multiplicative_argument_expression",
    "format_argument_expression",
    "range_argument_expression",
];

/// Descends through wrappers that have exactly one child.
pub(crate) fn peel(mut node: Node<'_>) -> Node<'_> {
    while WRAPPERS.contains(&node.kind()) && node.child_count() == 1 {
        match node.child(0) {
            Some(child) => node = child,
            None => break,
        }
    }
    node
}

/// `$name`, `${name}`, `$script:name` → `name` (PowerShell compares them
/// case-insensitively; other drives such as `$env:X` keep their prefix).
pub(crate) fn variable_name(text: &str) -> String {
    let t = text.trim_start_matches(['$', '@']);
    let t = t
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .unwrap_or(t);
    for scope in [
        "global:",
        "local:",
        "private:",
        "script:",
        "using:",
        "workflow:",
    ] {
        if t.len() > scope.len() && t[..scope.len()].eq_ignore_ascii_case(scope) {
            return t[scope.len()..].to_owned();
        }
    }
    t.to_owned()
}

pub(crate) fn is_request(variable_text: &str) -> bool {
    variable_name(variable_text).eq_ignore_ascii_case("request")
}

pub(crate) fn children(node: Node<'_>) -> Vec<Node<'_>> {
    let mut cursor = node.walk();
    node.children(&mut cursor).collect()
}

pub(crate) fn named_children(node: Node<'_>) -> Vec<Node<'_>> {
    let mut cursor = node.walk();
    node.named_children(&mut cursor).collect()
}

pub(crate) fn text<'s>(node: Node<'_>, src: &'s str) -> &'s str {
    src.get(node.byte_range()).unwrap_or("")
}

pub(crate) fn line(node: Node<'_>) -> usize {
    node.start_position().row + 1
}

/// The first line of `text`, at most 80 characters.
pub(crate) fn snippet(text: &str) -> String {
    let first = text.lines().next().unwrap_or("");
    match first.char_indices().nth(80) {
        Some((i, _)) => format!("{}...", &first[..i]),
        None => first.to_owned(),
    }
}

/// `[type]$request.field`.
pub(crate) fn is_request_field(value: Node<'_>, src: &str) -> bool {
    request_field(value, src).is_some()
}
