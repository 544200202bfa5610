//! What one request may weigh, and what becomes of a refused request's body.
//!
//! - Header fields and URI: [`MAX_HEADER_BYTES`], counted as HTTP/2 counts
//!   them; over it the listener answers 431 (RESOURCE_EXHAUSTED over gRPC).
//!   hyper's own limits sit above it as a backstop and answer a bare 431.
//! - A JSON body or one gRPC message: [`MAX_MESSAGE_BYTES`]; over it 413, or
//!   RESOURCE_EXHAUSTED, as gRPC's convention has it (tonic's own check,
//!   which says OUT_OF_RANGE, never fires first: [`GrpcMessageLimit`]).
//! - A refused HTTP/JSON request's body is read and dropped ([`discard`])
//!   before the answer: hyper resets an HTTP/2 stream whose request body was
//!   not read to its end, and some clients (curl 7.88) then lose the answer.

use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, header};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;

use super::status::{TransportError, transport_status};

/// The largest JSON request body, and the largest gRPC request message
/// (tonic's default decoding limit, so that ours is the one that answers).
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// The largest request head: the URI plus, per header field, its name,
/// value and 32 bytes (RFC 9113 §6.5.2's accounting).
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// hyper's HTTP/2 header list limit (its default is 16 KiB, which would
/// answer before ours with an empty 431 and a reset stream).
pub const H2_MAX_HEADER_LIST_BYTES: u32 = 64 * 1024;

/// hyper's HTTP/1 header field count limit (default 100): as many fields
/// as fit in [`MAX_HEADER_BYTES`] at 32 bytes each, so ours answers first.
pub const H1_MAX_HEADERS: usize = MAX_HEADER_BYTES / 32;

/// How much of a refused body is read, and for how long, before giving up
/// (the stream is then reset).
const DRAIN_BYTES: usize = 2 * MAX_MESSAGE_BYTES;
const DRAIN_TIME: Duration = Duration::from_secs(10);

/// The request head's size as [`MAX_HEADER_BYTES`] counts it.
pub fn header_bytes<B>(request: &http::Request<B>) -> usize {
    let uri = request
        .uri()
        .path_and_query()
        .map_or(0, |p| p.as_str().len());
    request.headers().iter().fold(uri, |n, (name, value)| {
        n + name.as_str().len() + value.len() + 32
    })
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// Reads a whole body of at most `limit` bytes. A body read error (the
/// client went away) is reported as an unreadable body.
pub async fn read_body<B>(
    headers: &HeaderMap,
    body: &mut B,
    limit: usize,
) -> Result<Bytes, TransportError>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    let too_large = TransportError::TooLarge { limit };
    if content_length(headers).is_some_and(|n| n > limit as u64) {
        return Err(too_large);
    }
    let mut bytes = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| TransportError::BadJson {
            field: "body".into(),
            reason: e.to_string(),
        })?;
        if let Some(data) = frame.data_ref() {
            if bytes.len() + data.len() > limit {
                return Err(too_large);
            }
            bytes.extend_from_slice(data);
        }
    }
    Ok(bytes.freeze())
}

/// Reads and drops the rest of a refused request's body, up to
/// [`DRAIN_BYTES`] and [`DRAIN_TIME`], so the stream ends cleanly. A client
/// waiting for `100 Continue` has sent nothing and is answered at once, as
/// is one announcing more than the bound.
pub async fn discard<B>(headers: &HeaderMap, body: &mut B)
where
    B: Body + Unpin,
{
    let waits = headers
        .get(header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    if waits || content_length(headers).is_some_and(|n| n > DRAIN_BYTES as u64) {
        return;
    }
    let drain = async {
        let mut seen = 0;
        while let Some(Ok(frame)) = body.frame().await {
            seen += frame.data_ref().map_or(0, bytes::Buf::remaining);
            if seen > DRAIN_BYTES {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_TIME, drain).await;
}

/// The gRPC message framing as far as the limit needs it: each message is
/// a 1-byte flag and a 4-byte big-endian length, then that many bytes.
#[derive(Debug, Default)]
struct MessageScanner {
    prefix: [u8; 5],
    prefix_len: usize,
    /// Bytes of the current message still to come.
    remaining: usize,
}

impl MessageScanner {
    /// Follows `data`; the declared length of a message over the limit is
    /// an error as soon as its prefix is complete.
    fn scan(&mut self, mut data: &[u8]) -> Result<(), TransportError> {
        while !data.is_empty() {
            if self.remaining > 0 {
                let n = self.remaining.min(data.len());
                self.remaining -= n;
                data = &data[n..];
                continue;
            }
            let n = (self.prefix.len() - self.prefix_len).min(data.len());
            self.prefix[self.prefix_len..self.prefix_len + n].copy_from_slice(&data[..n]);
            self.prefix_len += n;
            data = &data[n..];
            if self.prefix_len == self.prefix.len() {
                let [_, a, b, c, d] = self.prefix;
                let len = u32::from_be_bytes([a, b, c, d]) as usize;
                if len > MAX_MESSAGE_BYTES {
                    return Err(TransportError::TooLarge {
                        limit: MAX_MESSAGE_BYTES,
                    });
                }
                self.remaining = len;
                self.prefix_len = 0;
            }
        }
        Ok(())
    }
}

/// A gRPC request body that fails with the limit's RESOURCE_EXHAUSTED
/// status (which tonic passes on as it is) before tonic sees the length of
/// a message over [`MAX_MESSAGE_BYTES`].
pub struct GrpcMessageLimit<B> {
    inner: B,
    scanner: MessageScanner,
}

impl<B> GrpcMessageLimit<B> {
    pub fn new(inner: B) -> Self {
        Self {
            inner,
            scanner: MessageScanner::default(),
        }
    }
}

impl<B> Body for GrpcMessageLimit<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<axum::BoxError>,
{
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        let frame = match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
            Some(Ok(frame)) => frame,
            Some(Err(err)) => return Poll::Ready(Some(Err(err.into()))),
            None => return Poll::Ready(None),
        };
        if let Some(data) = frame.data_ref()
            && let Err(err) = this.scanner.scan(data)
        {
            return Poll::Ready(Some(Err(Box::new(transport_status(&err)))));
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefix(len: usize) -> Vec<u8> {
        let mut p = vec![0];
        p.extend_from_slice(&u32::try_from(len).unwrap().to_be_bytes());
        p
    }

    #[test]
    fn messages_up_to_the_limit_pass_however_the_bytes_are_split() {
        let mut stream = prefix(3);
        stream.extend_from_slice(b"abc");
        stream.extend_from_slice(&prefix(MAX_MESSAGE_BYTES));
        for split in 0..stream.len() {
            let mut scanner = MessageScanner::default();
            scanner.scan(&stream[..split]).unwrap();
            scanner.scan(&stream[split..]).unwrap();
            assert_eq!(scanner.remaining, MAX_MESSAGE_BYTES, "split at {split}");
        }
    }

    #[test]
    fn a_message_over_the_limit_is_refused_once_its_prefix_is_whole() {
        let mut stream = prefix(2);
        stream.extend_from_slice(b"ok");
        stream.extend_from_slice(&prefix(MAX_MESSAGE_BYTES + 1));
        let mut scanner = MessageScanner::default();
        scanner.scan(&stream[..stream.len() - 1]).unwrap();
        let err = scanner.scan(&stream[stream.len() - 1..]).unwrap_err();
        assert!(matches!(err, TransportError::TooLarge { .. }), "{err}");
        assert_eq!(
            transport_status(&err).code(),
            tonic::Code::ResourceExhausted
        );
    }

    #[test]
    fn the_head_counts_the_uri_and_each_field_with_its_overhead() {
        let request = http::Request::post("https://localhost/a/b?c")
            .header("x-a", "12345")
            .body(())
            .unwrap();
        assert_eq!(header_bytes(&request), "/a/b?c".len() + 3 + 5 + 32);
    }

    #[tokio::test]
    async fn a_body_is_read_up_to_the_limit_and_refused_past_it() {
        let headers = HeaderMap::new();
        let mut body = http_body_util::Full::new(Bytes::from_static(b"12345"));
        let bytes = read_body(&headers, &mut body, 5).await.unwrap();
        assert_eq!(&bytes[..], b"12345");
        let mut body = http_body_util::Full::new(Bytes::from_static(b"123456"));
        let err = read_body(&headers, &mut body, 5).await.unwrap_err();
        assert!(
            matches!(err, TransportError::TooLarge { limit: 5 }),
            "{err}"
        );
        // An announced length over the limit is refused before reading.
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_LENGTH, "6".parse().unwrap());
        let mut body = http_body_util::Full::new(Bytes::from_static(b"1"));
        assert!(read_body(&headers, &mut body, 5).await.is_err());
        assert!(!body.is_end_stream(), "read although announced too large");
    }
}
