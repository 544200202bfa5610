//! Hostile requests generated from the descriptor set: for every RPC of
//! every provd service, each field (nested messages included) poisoned in
//! turn with the values a careless or hostile client sends, as protobuf wire
//! bytes and as proto3 JSON. New RPCs and fields are covered without edits.

use prost::Message;
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, FieldDescriptorProto, FileDescriptorSet};
use std::collections::BTreeMap;

use super::wire;

/// One RPC as the descriptor set declares it.
#[derive(Debug, Clone)]
pub struct Rpc {
    /// `/provd.v1.AgentService/Install`
    pub path: String,
    pub input: String,
    pub server_streaming: bool,
    /// A client stream (UploadPackage): gRPC only, no JSON route.
    pub client_streaming: bool,
}

/// What a case must get back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Any answer but a server error or a dropped connection.
    NoServerError,
    /// INVALID_ARGUMENT naming the poisoned field.
    NamesField,
}

/// One hostile request, for both transports.
#[derive(Debug, Clone)]
pub struct Case {
    /// Proto field path (`desired.agent.source`), or `body` for whole-body cases.
    pub field: String,
    /// JSON field path (`desired.agent.source` with json names).
    pub json_field: String,
    /// The proto path with each oneof member named by its oneof, as
    /// prost's decode errors name it (`desired.service_account.account.name`).
    pub oneof_field: String,
    /// What was sent, for the report (`1 MiB`, `enum 99`, ...).
    pub label: &'static str,
    /// `None`: the case cannot be said over gRPC.
    pub wire: Option<Vec<u8>>,
    /// `None`: the case cannot be said in JSON.
    pub json: Option<String>,
    pub expect: Expect,
}

pub struct Schema {
    messages: BTreeMap<String, DescriptorProto>,
    pub rpcs: Vec<Rpc>,
}

impl Schema {
    /// The provd.v1 services of the daemon's own descriptor set.
    pub fn load() -> Schema {
        let set = FileDescriptorSet::decode(provd_proto::FILE_DESCRIPTOR_SET).unwrap();
        let mut messages = BTreeMap::new();
        let mut rpcs = Vec::new();
        for file in &set.file {
            let package = file.package();
            for message in &file.message_type {
                collect(&format!(".{package}"), message, &mut messages);
            }
            for service in &file.service {
                for method in &service.method {
                    rpcs.push(Rpc {
                        path: format!("/{package}.{}/{}", service.name(), method.name()),
                        input: method.input_type().to_owned(),
                        server_streaming: method.server_streaming(),
                        client_streaming: method.client_streaming(),
                    });
                }
            }
        }
        Schema { messages, rpcs }
    }

    /// Every hostile case for one RPC's request message.
    pub fn cases(&self, rpc: &Rpc) -> Vec<Case> {
        let mut cases = whole_body_cases(self.message(&rpc.input));
        self.field_cases(&rpc.input, &Path::default(), 0, &mut cases);
        cases
    }

    fn message(&self, name: &str) -> &DescriptorProto {
        self.messages
            .get(name)
            .unwrap_or_else(|| panic!("{name} is not in the descriptor set"))
    }

    fn field_cases(&self, message: &str, at: &Path, depth: usize, out: &mut Vec<Case>) {
        let descriptor = self.message(message);
        for field in &descriptor.field {
            let oneof = field
                .oneof_index
                .filter(|_| !field.proto3_optional())
                .and_then(|i| descriptor.oneof_decl.get(usize::try_from(i).ok()?))
                .map(|o| o.name().to_owned());
            let path = at.child(field, oneof);
            let repeated = field.label() == Label::Repeated;
            match field.r#type() {
                Type::Message if field.type_name() == ".google.protobuf.Duration" => {
                    out.extend(duration_cases(&path, repeated));
                }
                Type::Message if field.type_name() == ".google.protobuf.Timestamp" => {
                    out.extend(timestamp_cases(&path, repeated));
                }
                Type::Message if depth < 3 && !repeated => {
                    self.field_cases(field.type_name(), &path, depth + 1, out);
                }
                Type::Message if depth < 3 => {
                    // One element of a repeated message, poisoned within.
                    let mut inner = Vec::new();
                    self.field_cases(field.type_name(), &path.element(), depth + 1, &mut inner);
                    out.extend(inner);
                }
                Type::Message => {}
                other => out.extend(scalar_cases(&path, other, repeated)),
            }
        }
    }
}

fn collect(scope: &str, message: &DescriptorProto, into: &mut BTreeMap<String, DescriptorProto>) {
    let name = format!("{scope}.{}", message.name());
    for nested in &message.nested_type {
        collect(&name, nested, into);
    }
    into.insert(name, message.clone());
}

/// Where a poisoned field sits: proto and JSON names, and how to wrap a
/// leaf value in its parents on either transport.
#[derive(Debug, Clone, Default)]
struct Path {
    proto: Vec<String>,
    json: Vec<String>,
    oneof: Vec<String>,
    /// (field number, is a repeated element) of each parent, outermost first.
    parents: Vec<(u32, bool)>,
    number: u32,
    element: bool,
}

impl Path {
    fn child(&self, field: &FieldDescriptorProto, oneof: Option<String>) -> Path {
        let mut path = self.clone();
        if self.number != 0 {
            path.parents.push((self.number, self.element));
        }
        path.proto.push(field.name().to_owned());
        path.json.push(field.json_name().to_owned());
        path.oneof
            .push(oneof.unwrap_or_else(|| field.name().to_owned()));
        path.number = u32::try_from(field.number()).unwrap();
        path.element = false;
        path
    }

    fn element(&self) -> Path {
        Path {
            element: true,
            ..self.clone()
        }
    }

    fn proto_name(&self) -> String {
        self.proto.join(".")
    }

    fn json_name(&self) -> String {
        self.json.join(".")
    }

    /// `leaf` (the encoded field itself) inside its parent messages.
    fn wrap_wire(&self, leaf: Vec<u8>) -> Vec<u8> {
        self.parents
            .iter()
            .rev()
            .fold(leaf, |inner, (number, _)| wire::len_field(*number, &inner))
    }

    /// `{"a": {"b": [ {"c": value} ]}}`
    fn wrap_json(&self, value: &str) -> String {
        let mut body = format!("{{{}:{value}}}", quoted(self.json.last().unwrap()));
        for (i, (_, element)) in self.parents.iter().enumerate().rev() {
            let inner = if *element { format!("[{body}]") } else { body };
            body = format!("{{{}:{inner}}}", quoted(&self.json[i]));
        }
        body
    }

    fn case(
        &self,
        label: &'static str,
        wire: Option<Vec<u8>>,
        json: Option<String>,
        expect: Expect,
    ) -> Case {
        Case {
            field: self.proto_name(),
            json_field: self.json_name(),
            oneof_field: self.oneof.join("."),
            label,
            wire: wire.map(|leaf| self.wrap_wire(leaf)),
            json: json.map(|value| self.wrap_json(&value)),
            expect,
        }
    }
}

fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

pub const MIB: usize = 1024 * 1024;
/// More elements than any list in the contract allows.
const MANY: usize = 10_000;
const SPECIALS: &str = "*()\\,=+<>#;\"x)(objectClass=*";

fn scalar_cases(path: &Path, kind: Type, repeated: bool) -> Vec<Case> {
    let n = path.number;
    let mut cases = Vec::new();
    // One element of a repeated field is the same bytes on the wire; in JSON
    // it is a one-element array.
    let mut add = |label, wire: Option<Vec<u8>>, json: Option<String>, expect| {
        let json = json.map(|j| if repeated { format!("[{j}]") } else { j });
        cases.push(path.case(label, wire, json, expect));
    };
    match kind {
        Type::String => {
            add(
                "empty",
                Some(wire::len_field(n, b"")),
                Some("\"\"".into()),
                Expect::NoServerError,
            );
            let big = "a".repeat(MIB);
            add(
                "1 MiB",
                Some(wire::len_field(n, big.as_bytes())),
                Some(quoted(&big)),
                Expect::NamesField,
            );
            add(
                "NUL",
                Some(wire::len_field(n, b"a\0b")),
                Some(quoted("a\0b")),
                Expect::NamesField,
            );
            add(
                "specials",
                Some(wire::len_field(n, SPECIALS.as_bytes())),
                Some(quoted(SPECIALS)),
                Expect::NoServerError,
            );
            add(
                "invalid UTF-8",
                Some(wire::len_field(n, b"a\xff\xfeb")),
                Some("\"a\\ud800b\"".into()),
                Expect::NamesField,
            );
            add("a number", None, Some("5".into()), Expect::NamesField);
            add(
                "wrong wire type",
                Some(wire::varint_field(n, 7)),
                None,
                Expect::NamesField,
            );
        }
        Type::Bytes => {
            add(
                "1 MiB",
                Some(wire::len_field(n, &vec![0u8; MIB])),
                None,
                Expect::NoServerError,
            );
        }
        Type::Enum => {
            add(
                "enum 99",
                Some(wire::varint_field(n, 99)),
                Some("99".into()),
                Expect::NamesField,
            );
            add(
                "enum -5",
                Some(wire::varint_field(n, -5i64 as u64)),
                Some("-5".into()),
                Expect::NamesField,
            );
            add(
                "unknown enum name",
                None,
                Some("\"NO_SUCH_VALUE\"".into()),
                Expect::NamesField,
            );
        }
        Type::Bool => {
            add("a string", None, Some("\"yes\"".into()), Expect::NamesField);
        }
        Type::Uint32 | Type::Uint64 | Type::Int32 | Type::Int64 | Type::Fixed32 | Type::Fixed64 => {
            add(
                "max varint",
                Some(wire::varint_field(n, u64::MAX)),
                Some("4294967295".into()),
                Expect::NoServerError,
            );
            add(
                "negative",
                None,
                Some("-1".into()),
                if matches!(kind, Type::Uint32 | Type::Uint64) {
                    Expect::NamesField
                } else {
                    Expect::NoServerError
                },
            );
            add("1e30", None, Some("1e30".into()), Expect::NamesField);
        }
        _ => {}
    }
    if repeated && matches!(kind, Type::String) {
        let many: Vec<u8> = (0..MANY)
            .flat_map(|_| wire::len_field(n, b"a.example.test"))
            .collect();
        let json = format!("[{}]", vec!["\"a.example.test\""; MANY].join(","));
        cases.push(path.case("10000 entries", Some(many), Some(json), Expect::NamesField));
    }
    cases
}

/// A Duration or Timestamp (seconds 1, nanos 2) as field `n` on the wire.
fn seconds_nanos(n: u32, seconds: i64, nanos: i32) -> Vec<u8> {
    let mut inner = wire::varint_field(1, seconds as u64);
    inner.extend(wire::varint_field(2, i64::from(nanos) as u64));
    wire::len_field(n, &inner)
}

/// A JSON value, in a list when the field repeats.
fn json_value(repeated: bool, value: &str) -> String {
    if repeated {
        format!("[{value}]")
    } else {
        value.to_owned()
    }
}

fn duration_cases(path: &Path, repeated: bool) -> Vec<Case> {
    let duration = |seconds, nanos| seconds_nanos(path.number, seconds, nanos);
    let json = |value: &str| json_value(repeated, value);
    vec![
        path.case(
            "nanos 1e9",
            Some(duration(0, 1_000_000_000)),
            None,
            Expect::NamesField,
        ),
        path.case(
            "negative",
            Some(duration(-1, 0)),
            Some(json("\"-1s\"")),
            Expect::NamesField,
        ),
        path.case(
            "negative nanos",
            Some(duration(0, -1)),
            Some(json("\"-0.000000001s\"")),
            Expect::NamesField,
        ),
        path.case(
            "i64::MAX seconds",
            Some(duration(i64::MAX, 0)),
            Some(json("\"9223372036854775807s\"")),
            Expect::NamesField,
        ),
        path.case(
            "not a duration",
            None,
            Some(json("\"soon\"")),
            Expect::NamesField,
        ),
    ]
}

/// A Timestamp is an RFC 3339 string in JSON, two numbers on the wire.
fn timestamp_cases(path: &Path, repeated: bool) -> Vec<Case> {
    let timestamp = |seconds, nanos| seconds_nanos(path.number, seconds, nanos);
    let json = |value: &str| json_value(repeated, value);
    vec![
        path.case(
            "nanos 1e9",
            Some(timestamp(0, 1_000_000_000)),
            None,
            Expect::NamesField,
        ),
        path.case(
            "negative nanos",
            Some(timestamp(0, -1)),
            None,
            Expect::NamesField,
        ),
        path.case(
            "after year 9999",
            Some(timestamp(253_402_300_800, 0)),
            Some(json("\"10000-01-01T00:00:00Z\"")),
            Expect::NamesField,
        ),
        path.case(
            "i64::MIN seconds",
            Some(timestamp(i64::MIN, 0)),
            None,
            Expect::NamesField,
        ),
        path.case(
            "not a time",
            None,
            Some(json("\"yesterday\"")),
            Expect::NamesField,
        ),
        path.case(
            "an object",
            None,
            Some(json("{\"seconds\": 1}")),
            Expect::NamesField,
        ),
    ]
}

/// Cases about the request as a whole: missing fields, unknown fields,
/// trailing bytes, a truncated message, the wrong JSON type.
fn whole_body_cases(message: &DescriptorProto) -> Vec<Case> {
    let body = |label, wire: Option<Vec<u8>>, json: Option<&str>, expect| Case {
        field: "body".into(),
        json_field: "body".into(),
        oneof_field: "body".into(),
        label,
        wire,
        json: json.map(str::to_owned),
        expect,
    };
    let free_number = message.field.iter().map(|f| f.number()).max().unwrap_or(0) + 1;
    let mut unknown = wire::len_field(u32::try_from(free_number).unwrap(), b"x");
    unknown.extend(wire::varint_field(
        u32::try_from(free_number + 1).unwrap(),
        1,
    ));
    vec![
        body(
            "empty (every field missing)",
            Some(Vec::new()),
            Some("{}"),
            Expect::NoServerError,
        ),
        body(
            "unknown wire fields",
            Some(unknown),
            None,
            Expect::NoServerError,
        ),
        body(
            "truncated",
            Some(vec![0x0a, 0x7f, b'x']),
            None,
            Expect::NamesField,
        ),
        body("trailing garbage", None, Some("{} xx"), Expect::NamesField),
        body("an array", None, Some("[]"), Expect::NamesField),
        body("not JSON", None, Some("{\"a"), Expect::NamesField),
        Case {
            field: "noSuchField".into(),
            json_field: "noSuchField".into(),
            oneof_field: "noSuchField".into(),
            label: "unknown JSON field",
            wire: None,
            json: Some("{\"noSuchField\":1}".into()),
            expect: Expect::NamesField,
        },
    ]
}
