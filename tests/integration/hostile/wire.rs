//! The few protobuf wire-format encodings the hostile cases need, written by
//! hand because they must also say what no generated type can: invalid
//! UTF-8 in a string, out-of-range enum numbers, the wrong wire type.

pub fn varint(mut value: u64, out: &mut Vec<u8>) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn tag(number: u32, wire_type: u8, out: &mut Vec<u8>) {
    varint((u64::from(number) << 3) | u64::from(wire_type), out);
}

/// A varint field (wire type 0): ints, bools, enums.
pub fn varint_field(number: u32, value: u64) -> Vec<u8> {
    let mut out = Vec::new();
    tag(number, 0, &mut out);
    varint(value, &mut out);
    out
}

/// A length-delimited field (wire type 2): strings, bytes, messages.
pub fn len_field(number: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 8);
    tag(number, 2, &mut out);
    varint(payload.len() as u64, &mut out);
    out.extend_from_slice(payload);
    out
}

#[test]
fn encodings_match_prost() {
    use prost::Message;
    let expected = provd_proto::v1::RemoveDirectoryRequest {
        domain: "lab.test".into(),
        request_id: String::new(),
    }
    .encode_to_vec();
    assert_eq!(len_field(1, b"lab.test"), expected);
    let mut v = Vec::new();
    varint(300, &mut v);
    assert_eq!(v, [0xac, 0x02]);
}
