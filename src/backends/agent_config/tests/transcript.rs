use std::sync::Mutex;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use proptest::prelude::*;
use secrecy::ExposeSecret;

use super::{PASSWORD, TOKEN, connection, result_line};
use crate::backends::agent_config::protocol::Request;
use crate::backends::agent_config::transcript::{
    Collector, Lines, MAX_LINE_CHARS, MAX_LINES, Redactor, STDERR_TAIL, STREAM_CAP, Stream,
    Transcript, pump,
};
use crate::model::BindCredential;

fn redactor() -> Redactor {
    Redactor::new([PASSWORD, TOKEN])
}

#[test]
fn a_line_with_a_password_or_a_token_in_any_form_is_dropped() {
    let r = redactor();
    let add = Request::add_domain(
        "lab.example.test",
        &BindCredential::simple("LAB\\Administrator", secrecy::SecretString::from(PASSWORD)),
        &[],
    );
    let connect = Request::connect_tenant(&connection());
    let escaped = serde_json::to_string(PASSWORD).unwrap();
    let leaking: Vec<Vec<u8>> = vec![
        format!("Add-AADCloudSyncADDomain : bad password {PASSWORD} given").into_bytes(),
        format!("token={TOKEN}").into_bytes(),
        format!("x {} y", STANDARD.encode(PASSWORD)).into_bytes(),
        format!("x {} y", STANDARD.encode(TOKEN)).into_bytes(),
        format!("request was {}", add.stdin().expose_secret()).into_bytes(),
        format!("request was {}", connect.stdin().expose_secret()).into_bytes(),
        format!("{{\"password\":{escaped}}}").into_bytes(),
        // The password's second line, alone.
        b"  \"P\xE4ssw\xF6rd\\ ".to_vec(),
    ];
    for line in leaking {
        assert!(r.matches(&line), "{}", String::from_utf8_lossy(&line));
        assert_eq!(Transcript::new(&r).line(&line), None);
    }
    for innocent in [
        "VERBOSE: Importing cmdlet 'Add-AADCloudSyncADDomain'.",
        "Domain lab.example.test added with 2 preferred DCs",
        "",
    ] {
        assert!(!r.matches(innocent.as_bytes()), "{innocent}");
    }
}

/// Windows PowerShell writes in the console's code page, not UTF-8.
#[test]
fn a_password_is_recognised_in_a_single_byte_code_page() {
    let r = Redactor::new(["Pässwörd-2024!"]);
    let latin1: Vec<u8> = "Pässwörd-2024!".chars().map(|c| c as u32 as u8).collect();
    assert!(r.matches(&[b"echo: ".as_slice(), &latin1].concat()));
    assert!(!r.matches("Pass word 2024".as_bytes()));
}

#[test]
fn a_token_wrapped_over_lines_is_dropped_piece_by_piece() {
    let r = redactor();
    let encoded = STANDARD.encode(TOKEN);
    for text in [TOKEN, encoded.as_str()] {
        for piece in text.as_bytes().chunks(80) {
            if piece.len() >= crate::backends::agent_config::transcript::WINDOW {
                assert!(r.matches(piece), "{}", String::from_utf8_lossy(piece));
            }
        }
    }
}

proptest! {
    /// Any password, anywhere in a line, raw or as base64 (alone or inside
    /// the encoded request), never survives into the transcript.
    #[test]
    fn no_password_survives(
        password in "[ -~äöüß€\\t]{4,40}",
        before in "[ -~]{0,30}",
        after in "[ -~]{0,30}",
    ) {
        let r = Redactor::new([password.as_str()]);
        let mut t = Transcript::new(&r);
        let request = Request::add_domain(
            "lab.example.test",
            &BindCredential::simple("u", password.clone()),
            &[],
        );
        for line in [
            format!("{before}{password}{after}"),
            format!("{before}{}{after}", STANDARD.encode(&password)),
            format!("{before}{}{after}", request.stdin().expose_secret()),
        ] {
            prop_assert_eq!(t.line(line.as_bytes()), None, "{}", line);
        }
    }
}

#[test]
fn lines_are_capped_cut_and_counted() {
    let r = redactor();
    let mut t = Transcript::new(&r);
    let shown = (0..MAX_LINES + 50)
        .filter_map(|i| t.line(format!("line {i}").as_bytes()))
        .count();
    assert_eq!(shown, MAX_LINES);
    assert_eq!(t.line(TOKEN.as_bytes()), None);
    let summary = t.summary().unwrap();
    assert!(
        summary.contains("1 line(s) withheld") && summary.contains("50 more"),
        "{summary}"
    );

    let mut t = Transcript::new(&r);
    let long = t.line("é".repeat(MAX_LINE_CHARS + 1).as_bytes()).unwrap();
    assert_eq!(long.chars().count(), MAX_LINE_CHARS + 1);
    assert!(long.ends_with('…'));
    assert_eq!(
        t.line(b"a\x1b[31mred\x07"),
        Some("a\u{FFFD}[31mred\u{FFFD}".into())
    );
    assert_eq!(t.line(b"   "), None);
    assert_eq!(t.summary(), None);
}

#[test]
fn a_stream_is_split_into_lines_up_to_its_cap() {
    let mut lines = Lines::default();
    assert_eq!(lines.push(b"one\r\ntw"), [b"one".to_vec()]);
    assert_eq!(lines.push(b"o\nthree"), [b"two".to_vec()]);
    assert_eq!(lines.finish(), Some(b"three".to_vec()));
    assert_eq!(lines.finish(), None);
    let mut big = Lines::default();
    let chunk = vec![b'x'; STREAM_CAP / 2];
    assert!(big.push(&chunk).is_empty() && big.push(&chunk).is_empty());
    assert!(!big.overflowed);
    assert!(big.push(b"\nmore").is_empty());
    assert!(big.overflowed);
    assert_eq!(big.finish().map(|l| l.len()), Some(STREAM_CAP));
}

#[tokio::test]
async fn output_is_sorted_into_result_transcript_and_stderr_tail() {
    let r = redactor();
    let shown = Mutex::new(Vec::new());
    let emit = |line: String| shown.lock().unwrap().push(line);
    let collector = Mutex::new(Collector::new(&r, &emit));
    let result = result_line(&serde_json::json!({"ok": true}));
    let stdout = [b"VERBOSE: connecting\r\n".as_slice(), &result, b"\r\n"].concat();
    let mut stderr = format!("leaked {TOKEN}\n");
    for i in 0..STDERR_TAIL + 2 {
        stderr.push_str(&format!("error {i}\n"));
    }
    tokio::join!(
        pump(stdout.as_slice(), Stream::Stdout, &collector),
        pump(stderr.as_bytes(), Stream::Stderr, &collector),
    );
    let (results, tail) = collector.into_inner().unwrap().finish();
    assert_eq!(results.len(), 1);
    assert_eq!(tail.len(), STDERR_TAIL);
    assert_eq!(tail.last().map(String::as_str), Some("error 11"));
    let shown = shown.into_inner().unwrap();
    assert!(
        shown.contains(&"VERBOSE: connecting".to_owned()),
        "{shown:?}"
    );
    assert!(
        !shown
            .iter()
            .any(|l| l.contains("PROVD-RESULT") || l.contains("leaked"))
    );
    assert!(shown.last().unwrap().contains("withheld"), "{shown:?}");
}
