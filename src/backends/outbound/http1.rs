//! The two HTTP/1.1 exchanges the probes make — a proxy's `CONNECT` and a
//! `GET` — written by hand: one request line and a few headers each way,
//! and only the answer's head is read (up to [`MAX_HEAD`]). A client crate
//! would hide which peer answered what, which is the point of the probe.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::HttpAnswer;

/// More than any proxy's or CRL host's answer head.
const MAX_HEAD: usize = 16 * 1024;

const USER_AGENT: &str = concat!("provd/", env!("CARGO_PKG_VERSION"), " (Verify)");

/// `CONNECT authority` to a proxy.
pub(super) fn connect_request(authority: &str) -> String {
    format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: {USER_AGENT}\r\n\r\n")
}

/// `GET target` where `target` is the path (direct) or the absolute URL
/// (through a proxy); the connection closes after the answer.
pub(super) fn get_request(target: &str, host_header: &str) -> String {
    format!(
        "GET {target} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: {USER_AGENT}\r\n\
         Accept: */*\r\nConnection: close\r\n\r\n"
    )
}

pub(super) async fn send(io: &mut (impl AsyncWrite + Unpin), request: &str) -> std::io::Result<()> {
    io.write_all(request.as_bytes()).await?;
    io.flush().await
}

/// Reads up to the end of the answer's head — byte by byte, so nothing of
/// what follows (a tunnel's first TLS record) is consumed — and returns
/// its status line.
pub(super) async fn read_head(io: &mut (impl AsyncRead + Unpin)) -> Result<HttpAnswer, String> {
    let mut head = Vec::with_capacity(256);
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && !head.ends_with(b"\n\n") {
        if head.len() >= MAX_HEAD {
            return Err(format!("an answer head over {MAX_HEAD} bytes"));
        }
        match io.read(&mut byte).await {
            Ok(0) if head.is_empty() => {
                return Err("closed the connection without answering".into());
            }
            Ok(0) => return Err("closed the connection in the middle of its answer".into()),
            Ok(_) => head.push(byte[0]),
            Err(e) => return Err(e.to_string()),
        }
    }
    parse_status_line(&head)
}

fn parse_status_line(head: &[u8]) -> Result<HttpAnswer, String> {
    let line = head
        .split(|b| *b == b'\n')
        .next()
        .map(|l| String::from_utf8_lossy(l).trim_end().to_owned())
        .unwrap_or_default();
    let mut parts = line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    let status = parts.next().and_then(|s| s.parse::<u16>().ok());
    match status {
        Some(status) if version.starts_with("HTTP/1.") && (100..600).contains(&status) => {
            Ok(HttpAnswer {
                status,
                reason: parts.next().unwrap_or_default().to_owned(),
            })
        }
        _ => Err(format!(
            "not an HTTP/1.x status line: {:?}",
            line.chars().take(80).collect::<String>()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_head_is_read_and_nothing_after_it() {
        let mut io: &[u8] = b"HTTP/1.1 200 Connection established\r\nVia: x\r\n\r\n\x16\x03\x01";
        let answer = read_head(&mut io).await.unwrap();
        assert_eq!(answer.status, 200);
        assert_eq!(answer.reason, "Connection established");
        assert_eq!(io, b"\x16\x03\x01", "the tunnel's bytes are left");
        let mut io: &[u8] = b"HTTP/1.0 403 Forbidden\n\n";
        assert_eq!(
            read_head(&mut io).await.unwrap().to_string(),
            "403 Forbidden"
        );
    }

    #[tokio::test]
    async fn what_is_not_http_is_said_to_be_so() {
        for (bytes, says) in [
            (&b""[..], "without answering"),
            (b"HTTP/1.1 200 OK\r\n", "middle of its answer"),
            (
                b"\x15\x03\x03\x00\x02\x02\x28\r\n\r\n",
                "not an HTTP/1.x status line",
            ),
            (b"SSH-2.0-OpenSSH\r\n\r\n", "not an HTTP/1.x status line"),
        ] {
            let mut io = bytes;
            let err = read_head(&mut io).await.unwrap_err();
            assert!(err.contains(says), "{bytes:?}: {err}");
        }
        let long = vec![b'a'; MAX_HEAD + 10];
        let mut io = &long[..];
        assert!(read_head(&mut io).await.unwrap_err().contains("over"));
    }

    #[test]
    fn requests_name_the_target_and_close() {
        assert!(connect_request("login.microsoftonline.com:443")
            .starts_with("CONNECT login.microsoftonline.com:443 HTTP/1.1\r\nHost: login.microsoftonline.com:443\r\n"));
        let get = get_request("http://crl.microsoft.com/", "crl.microsoft.com");
        assert!(
            get.starts_with(
                "GET http://crl.microsoft.com/ HTTP/1.1\r\nHost: crl.microsoft.com\r\n"
            )
        );
        assert!(get.ends_with("Connection: close\r\n\r\n"));
    }
}
