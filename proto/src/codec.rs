//! The codec the generated services use: prost's, except that a message
//! that does not decode is the sender's mistake, INVALID_ARGUMENT (as the
//! HTTP/JSON path answers 400 for the same bytes), not prost's INTERNAL.

use std::marker::PhantomData;

use prost::Message;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder};
use tonic::{Code, Status};
use tonic_prost::{ProstDecoder, ProstEncoder};
use tonic_types::{ErrorDetails, StatusExt};

/// Named in `build.rs` (`codec_path`), so every generated client and
/// server uses it.
pub struct ContractCodec<T, U> {
    _types: PhantomData<(T, U)>,
}

impl<T, U> Default for ContractCodec<T, U> {
    fn default() -> Self {
        Self {
            _types: PhantomData,
        }
    }
}

impl<T, U> Codec for ContractCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = ContractDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder::new(BufferSettings::default())
    }

    fn decoder(&mut self) -> Self::Decoder {
        ContractDecoder(ProstDecoder::new(BufferSettings::default()))
    }
}

/// prost's decoder with its parse failures as INVALID_ARGUMENT.
pub struct ContractDecoder<U>(ProstDecoder<U>);

impl<U: Message + Default> Decoder for ContractDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        self.0.decode(buf).map_err(|status| {
            let message = format!(
                "the message does not decode as protobuf: {}",
                status.message()
            );
            // Named like the JSON path's errors: the field, else the body.
            let field = decode_field_path(status.message()).unwrap_or_else(|| "body".into());
            let details = ErrorDetails::with_bad_request_violation(field, "does not decode");
            Status::with_error_details(Code::InvalidArgument, message, details)
        })
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.0.buffer_settings()
    }
}

/// The field path in prost's decode failure, whose stack runs innermost
/// first: "failed to decode Protobuf message: Inner.sub: Outer.field:
/// invalid string value" → `field.sub`.
/// prost keeps that stack only in its message, so it is read from there.
fn decode_field_path(message: &str) -> Option<String> {
    let stack = message
        .split_once("failed to decode Protobuf message: ")
        .map_or(message, |(_, rest)| rest);
    let mut fields: Vec<&str> = stack
        .split(": ")
        .map_while(|segment| {
            let (message, field) = segment.split_once('.')?;
            let ident = |s: &str| {
                !s.is_empty()
                    && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && !s.starts_with(|c: char| c.is_ascii_digit())
            };
            (ident(message) && ident(field)).then_some(field)
        })
        .collect();
    fields.reverse();
    (!fields.is_empty()).then(|| fields.join("."))
}

#[cfg(test)]
mod tests {
    use super::decode_field_path;
    use crate::v1;
    use prost::Message;

    #[test]
    fn the_failing_field_is_read_from_prosts_stack() {
        // desired { agent { source: <invalid UTF-8> } }
        let source = [0x0a, 0x03, b'a', 0xff, b'b'];
        let agent = [&[0x0a, source.len() as u8][..], &source].concat();
        let desired = [&[0x0a, agent.len() as u8][..], &agent].concat();
        let err = v1::ApplyConfigurationRequest::decode(desired.as_slice()).unwrap_err();
        let message = err.to_string();
        assert_eq!(
            decode_field_path(&message).as_deref(),
            Some("desired.agent.source"),
            "{message}"
        );
        assert_eq!(decode_field_path("buffer underflow"), None);
    }
}
