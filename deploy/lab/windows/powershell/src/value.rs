//! The values provd's scripts handle, PowerShell's casts of request fields
//! (`[string]`, `[string[]]`, `[bool]`), and the binder's conversion of a value to a
//! parameter's type (with its refusals).

use serde_json::Value as Json;

use crate::errors::{self, Empty};
use crate::plan::BoundParam;

/// A PowerShell value, as far as the scripts need one.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    String(String),
    Strings(Vec<String>),
    Bool(bool),
    /// `ConvertTo-SecureString -AsPlainText`: the text, kept only in this process.
    SecureString(String),
    /// `New-Object System.Management.Automation.PSCredential -ArgumentList user, secure`.
    Credential {
        user: String,
        password: String,
    },
    /// `ConvertFrom-Json`'s object tree (the request).
    Json(Json),
}

impl Value {
    /// The .NET type name PowerShell's messages use.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::String(_) => "System.String",
            Value::Strings(_) => "System.String[]",
            Value::Bool(_) => "System.Boolean",
            Value::SecureString(_) => "System.Security.SecureString",
            Value::Credential { .. } => "System.Management.Automation.PSCredential",
            Value::Json(Json::Object(_)) => "System.Management.Automation.PSCustomObject",
            Value::Json(Json::Array(_)) => "System.Object[]",
            Value::Json(Json::Number(_)) => "System.Int32",
            Value::Json(_) => "System.String",
        }
    }

    /// How PowerShell shows the value in a conversion message.
    pub fn shown(&self) -> String {
        match self {
            Value::Null => String::new(),
            Value::String(s) => s.clone(),
            Value::Strings(v) => v.join(" "),
            Value::Bool(b) => bool_text(*b).into(),
            Value::SecureString(_) => "System.Security.SecureString".into(),
            Value::Credential { .. } => "System.Management.Automation.PSCredential".into(),
            Value::Json(j) => to_string(j),
        }
    }

    /// `$x.Count` in `if ($x.Count -gt 0)`: elements of an array, 1 for a scalar, 0 for
    /// `$null` [I: under strict mode 5.1 may refuse `.Count` on a scalar; provd's scripts
    /// ask it only of `[string[]]` locals].
    pub fn count(&self) -> usize {
        match self {
            Value::Null => 0,
            Value::Strings(v) => v.len(),
            Value::Json(Json::Array(v)) => v.len(),
            _ => 1,
        }
    }
}

fn bool_text(b: bool) -> &'static str {
    if b { "True" } else { "False" }
}

/// `[string]$json`: `$null` → `''`, numbers in invariant form, Booleans `True`/`False`, an
/// array's elements joined by a space (`$OFS`), an object as `@{a=1; b=2}`.
pub fn to_string(json: &Json) -> String {
    match json {
        Json::Null => String::new(),
        Json::Bool(b) => bool_text(*b).into(),
        Json::Number(n) => n.to_string(),
        Json::String(s) => s.clone(),
        Json::Array(items) => items.iter().map(to_string).collect::<Vec<_>>().join(" "),
        Json::Object(map) => format!(
            "@{{{}}}",
            map.iter()
                .map(|(k, v)| format!("{k}={}", to_string(v)))
                .collect::<Vec<_>>()
                .join("; ")
        ),
    }
}

/// `[string[]]$json`: `$null` stays `$null`, an array becomes its elements as strings, a
/// scalar a one-element array.
pub fn to_strings(json: &Json) -> Value {
    match json {
        Json::Null => Value::Null,
        Json::Array(items) => Value::Strings(items.iter().map(to_string).collect()),
        other => Value::Strings(vec![to_string(other)]),
    }
}

/// `[bool]$json`: PowerShell's truth: `$null`, `0`, `''` and `@()` are false, a one-element
/// array is its element's truth, any other string (`'false'` too) or object is true.
pub fn to_bool(json: &Json) -> bool {
    match json {
        Json::Null => false,
        Json::Bool(b) => *b,
        Json::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Json::String(s) => !s.is_empty(),
        Json::Array(items) => match items.as_slice() {
            [] => false,
            [one] => to_bool(one),
            _ => true,
        },
        Json::Object(_) => true,
    }
}

/// The cast a request local is written with.
pub fn cast(json: &Json, ty: &str) -> Value {
    match ty.to_ascii_lowercase().as_str() {
        "string" => Value::String(to_string(json)),
        "string[]" => to_strings(json),
        "bool" | "boolean" => Value::Bool(to_bool(json)),
        _ => Value::Json(json.clone()),
    }
}

/// `$object.property` under `Set-StrictMode -Version 3.0`: case-insensitive; a missing
/// property (or a value with no properties) is an error [I for `$null`].
pub fn property(object: &Value, name: &str) -> Result<Json, crate::plan::Failure> {
    if let Value::Json(Json::Object(map)) = object
        && let Some((_, v)) = map.iter().find(|(k, _)| k.eq_ignore_ascii_case(name))
    {
        return Ok(v.clone());
    }
    Err(errors::property_not_found_strict(name))
}

/// The value the binder gives parameter `param` of `command` (class `class`), or its refusal:
/// mandatory parameters refuse `$null`, `''` and `@()`; a string parameter takes a scalar; a
/// string array takes strings; a Boolean only a Boolean (or a number); a credential only a
/// PSCredential [I: PowerShell would prompt for a string's password, which -NonInteractive
/// refuses; reported as a conversion error here].
pub fn bind_value(
    param: &BoundParam,
    value: Value,
    class: &str,
    command: &str,
) -> Result<Value, crate::plan::Failure> {
    let refuse = |kind| {
        Err(errors::argument_validation(
            kind,
            &param.name,
            class,
            command,
        ))
    };
    let cannot = |v: &Value| {
        Err(errors::cannot_convert(
            &param.name,
            &v.shown(),
            v.type_name(),
            &param.dotnet,
            class,
            command,
        ))
    };
    match (param.ty.as_str(), value) {
        (_, Value::Null) if param.mandatory => refuse(Empty::Null),
        (_, Value::Null) => Ok(Value::Null),
        ("string", Value::String(s)) if s.is_empty() && param.mandatory => refuse(Empty::String),
        ("string", v @ (Value::String(_) | Value::Bool(_))) => Ok(Value::String(v.shown())),
        ("string", Value::Json(j)) if !j.is_array() && !j.is_object() => {
            Ok(Value::String(to_string(&j)))
        }
        ("string[]", Value::Strings(v)) if v.is_empty() && param.mandatory => refuse(Empty::Array),
        ("string[]", Value::Strings(v)) => Ok(Value::Strings(v)),
        ("string[]", Value::String(s)) if s.is_empty() && param.mandatory => refuse(Empty::String),
        ("string[]", Value::String(s)) => Ok(Value::Strings(vec![s])),
        ("bool" | "switch", Value::Bool(b)) => Ok(Value::Bool(b)),
        ("bool" | "switch", Value::Json(Json::Number(n))) => {
            Ok(Value::Bool(n.as_f64().is_some_and(|f| f != 0.0)))
        }
        ("bool" | "switch", v) => Err(errors::not_boolean(
            &param.name,
            v.type_name(),
            class,
            command,
        )),
        ("PSCredential", v @ Value::Credential { .. }) => Ok(v),
        ("object" | "object[]" | "psobject", v) => Ok(v),
        (_, v) => cannot(&v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::ArgValue;
    use serde_json::json;

    #[test]
    fn casts_follow_powershell() {
        assert_eq!(to_string(&json!(null)), "");
        assert_eq!(to_string(&json!(true)), "True");
        assert_eq!(to_string(&json!(42)), "42");
        assert_eq!(to_string(&json!(["a", 1, false])), "a 1 False");
        assert_eq!(to_string(&json!({"a": 1})), "@{a=1}");
        assert_eq!(to_strings(&json!(null)), Value::Null);
        assert_eq!(
            to_strings(&json!("dc1")),
            Value::Strings(vec!["dc1".into()])
        );
        assert_eq!(to_strings(&json!([])), Value::Strings(vec![]));
        for (j, b) in [
            (json!(null), false),
            (json!(false), false),
            (json!(0), false),
            (json!(""), false),
            (json!([]), false),
            (json!([0]), false),
            (json!("false"), true),
            (json!(1), true),
            (json!([0, 0]), true),
            (json!({}), true),
        ] {
            assert_eq!(to_bool(&j), b, "{j}");
        }
        let request = Value::Json(json!({"DomainName": "lab.example.test"}));
        assert_eq!(
            property(&request, "domainName").unwrap(),
            json!("lab.example.test")
        );
        let missing = property(&request, "password").unwrap_err();
        assert_eq!(missing.fully_qualified_error_id, "PropertyNotFoundStrict");
        assert_eq!(
            missing.message,
            "The property 'password' cannot be found on this object. Verify that the property exists."
        );
        assert!(property(&Value::Null, "x").is_err());
    }

    fn param(ty: &str, mandatory: bool) -> BoundParam {
        BoundParam {
            name: "P".into(),
            ty: ty.into(),
            dotnet: match ty {
                "string" => "System.String",
                "string[]" => "System.String[]",
                "bool" => "System.Boolean",
                _ => "System.Management.Automation.PSCredential",
            }
            .into(),
            mandatory,
            value: ArgValue::Null,
        }
    }

    #[test]
    fn the_binder_refuses_empty_mandatory_values_and_wrong_types() {
        let bind = |p: BoundParam, v: Value| bind_value(&p, v, "C.Class", "Cmd");
        let id = |r: Result<Value, crate::plan::Failure>| r.unwrap_err().fully_qualified_error_id;
        assert_eq!(
            id(bind(param("string", true), Value::String(String::new()))),
            "ParameterArgumentValidationErrorEmptyStringNotAllowed,C.Class"
        );
        assert_eq!(
            id(bind(param("string", true), Value::Null)),
            "ParameterArgumentValidationErrorNullNotAllowed,C.Class"
        );
        assert_eq!(
            id(bind(param("string[]", true), Value::Strings(vec![]))),
            "ParameterArgumentValidationErrorEmptyArrayNotAllowed,C.Class"
        );
        assert_eq!(
            bind(param("string[]", false), Value::Strings(vec![])).unwrap(),
            Value::Strings(vec![])
        );
        assert_eq!(
            bind(param("string", false), Value::String(String::new())).unwrap(),
            Value::String(String::new())
        );
        let e = bind(param("PSCredential", true), Value::String("u".into())).unwrap_err();
        assert_eq!(
            e.fully_qualified_error_id,
            "CannotConvertArgumentNoMessage,C.Class"
        );
        assert_eq!(
            e.message,
            "Cannot bind parameter 'P'. Cannot convert the \"u\" value of type \"System.String\" to type \"System.Management.Automation.PSCredential\"."
        );
        assert_eq!(e.command, "Cmd");
        let e = bind(param("bool", true), Value::String("true".into())).unwrap_err();
        assert_eq!(
            e.fully_qualified_error_id,
            "ParameterArgumentTransformationError,C.Class"
        );
        assert_eq!(
            bind(param("bool", true), Value::Bool(false)).unwrap(),
            Value::Bool(false)
        );
        assert!(
            id(bind(
                param("string", true),
                Value::Strings(vec!["a".into()])
            ))
            .starts_with("CannotConvertArgument")
        );
    }
}
