//! A script's output as the operation's transcript: split into lines with a
//! cap per stream, every line holding a secret of the request dropped, the
//! rest shortened and counted.
//!
//! The scripts never print their request, but a cmdlet's own message may
//! echo an argument. A line is dropped (not masked) when it contains a
//! secret, its base64 form (as it travels on stdin, at any of the three
//! byte alignments inside the request), or any [`WINDOW`]-byte piece of
//! either: PowerShell wraps long lines, so a token may arrive split (and
//! each line of a secret that has line breaks counts alone). The
//! comparison ignores what non-ASCII characters are (each run of them is one
//! marker), because Windows PowerShell writes in the console's code page,
//! not UTF-8, and a password with an umlaut must still be recognised.

use std::collections::{HashSet, VecDeque};
use std::hash::{BuildHasher, RandomState};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use zeroize::Zeroizing;

/// The most bytes kept of one output stream; the rest is read and discarded
/// so the script never blocks on a full pipe.
pub const STREAM_CAP: usize = 1 << 20;
/// The most transcript lines one script run emits.
pub const MAX_LINES: usize = 200;
/// The most characters of one transcript line.
pub const MAX_LINE_CHARS: usize = 500;
/// A piece of a secret this long, found anywhere in a line, drops the line.
pub const WINDOW: usize = 12;

/// Recognises the secrets of one request in output.
pub struct Redactor {
    /// Forms shorter than [`WINDOW`], matched whole.
    short: Vec<Zeroizing<Vec<u8>>>,
    /// Hashes of every [`WINDOW`]-byte piece of the longer forms: no copy
    /// of a secret is kept for them.
    pieces: HashSet<u64>,
    hasher: RandomState,
}

impl Redactor {
    /// For these secrets (empty ones are ignored: they would match
    /// everything).
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a str>) -> Self {
        let mut redactor = Redactor {
            short: Vec::new(),
            pieces: HashSet::new(),
            hasher: RandomState::new(),
        };
        for secret in secrets.into_iter().filter(|s| !s.is_empty()) {
            // In the request it is a JSON string: `"` and `\` escaped.
            let quoted = Zeroizing::new(serde_json::to_string(secret).unwrap_or_default());
            let escaped = quoted
                .strip_prefix('"')
                .and_then(|q| q.strip_suffix('"'))
                .unwrap_or(secret);
            // A secret with a line break reaches the output as lines: each
            // line of it must be recognised alone.
            for line in secret
                .lines()
                .filter(|l| l.len() >= 4 && l.len() < secret.len())
            {
                redactor.add(line.as_bytes());
            }
            for form in [secret, escaped] {
                redactor.add(form.as_bytes());
                redactor.add(Zeroizing::new(STANDARD.encode(form)).as_bytes());
                for core in base64_cores(form.as_bytes()) {
                    redactor.add(&core);
                }
            }
        }
        redactor
    }

    fn add(&mut self, form: &[u8]) {
        let form = skeleton(form);
        if form.len() < WINDOW {
            self.short.push(form);
        } else {
            for piece in form.windows(WINDOW) {
                self.pieces.insert(self.hasher.hash_one(piece));
            }
        }
    }

    /// Whether `text` holds a secret (or a piece of one).
    pub fn matches(&self, text: &[u8]) -> bool {
        let text = skeleton(text);
        self.short
            .iter()
            .any(|s| text.windows(s.len()).any(|w| w == s.as_slice()))
            || (!self.pieces.is_empty()
                && text
                    .windows(WINDOW)
                    .any(|w| self.pieces.contains(&self.hasher.hash_one(w))))
    }

    /// `text` with each line that holds a secret replaced by a note: for
    /// texts that must be shown whole (an error's message).
    pub fn scrub(&self, text: &str) -> String {
        text.lines()
            .map(|line| {
                if self.matches(line.as_bytes()) {
                    "<withheld: it contained a secret of the request>"
                } else {
                    line
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// `text` with each run of non-ASCII bytes collapsed to one 0xFF, so the
/// same secret matches in UTF-8 and in a single-byte code page.
fn skeleton(text: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(text.len()));
    for &b in text {
        if b.is_ascii() {
            out.push(b);
        } else if out.last() != Some(&0xFF) {
            out.push(0xFF);
        }
    }
    out
}

/// The base64 characters that depend only on `secret`'s bytes when it sits
/// at offset 0, 1 or 2 (mod 3) inside a larger encoded text (the request on
/// stdin): the edges, which mix in neighbouring bytes, are cut off.
fn base64_cores(secret: &[u8]) -> Vec<Zeroizing<Vec<u8>>> {
    (0..3usize)
        .filter_map(|offset| {
            let mut bytes = Zeroizing::new(vec![0u8; offset]);
            bytes.extend_from_slice(secret);
            let encoded = Zeroizing::new(STANDARD_NO_PAD.encode(bytes.as_slice()));
            let first = (8 * offset).div_ceil(6);
            let end = 8 * (offset + secret.len()) / 6;
            // Shorter ones would drop nearly every line; a secret that short
            // is not protected by anything anyway.
            (end >= first + 4).then(|| Zeroizing::new(encoded.as_bytes()[first..end].to_vec()))
        })
        .collect()
}

/// Splits one output stream into lines, keeping at most [`STREAM_CAP`]
/// bytes of it.
#[derive(Default)]
pub struct Lines {
    pending: Vec<u8>,
    kept: usize,
    /// Whether bytes past the cap were discarded.
    pub overflowed: bool,
}

impl Lines {
    /// The lines `chunk` completes (without their line ends).
    pub fn push(&mut self, chunk: &[u8]) -> Vec<Vec<u8>> {
        let room = STREAM_CAP.saturating_sub(self.kept);
        let (kept, discarded) = chunk.split_at(chunk.len().min(room));
        self.overflowed |= !discarded.is_empty();
        self.kept += kept.len();
        let mut lines = Vec::new();
        for &b in kept {
            if b == b'\n' {
                lines.push(trim_cr(std::mem::take(&mut self.pending)));
            } else {
                self.pending.push(b);
            }
        }
        lines
    }

    /// The last line, when the stream did not end with a line end.
    pub fn finish(&mut self) -> Option<Vec<u8>> {
        (!self.pending.is_empty()).then(|| trim_cr(std::mem::take(&mut self.pending)))
    }
}

fn trim_cr(mut line: Vec<u8>) -> Vec<u8> {
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    line
}

/// The transcript of one run: which lines are shown, and what was not.
pub struct Transcript<'r> {
    redactor: &'r Redactor,
    shown: usize,
    withheld: usize,
    over_cap: usize,
}

impl<'r> Transcript<'r> {
    pub fn new(redactor: &'r Redactor) -> Self {
        Self {
            redactor,
            shown: 0,
            withheld: 0,
            over_cap: 0,
        }
    }

    /// The line to show for `raw`, or `None` (blank, secret, or past the
    /// cap). Control characters become U+FFFD; a long line is cut.
    pub fn line(&mut self, raw: &[u8]) -> Option<String> {
        if raw.iter().all(u8::is_ascii_whitespace) {
            return None;
        }
        if self.redactor.matches(raw) {
            self.withheld += 1;
            return None;
        }
        if self.shown == MAX_LINES {
            self.over_cap += 1;
            return None;
        }
        self.shown += 1;
        Some(printable(raw, MAX_LINE_CHARS))
    }

    /// A closing line saying what was not shown, if anything was not.
    pub fn summary(&self) -> Option<String> {
        let mut parts = Vec::new();
        if self.withheld > 0 {
            parts.push(format!(
                "{} line(s) withheld because they contained a secret of the request",
                self.withheld
            ));
        }
        if self.over_cap > 0 {
            parts.push(format!(
                "{} more line(s) not shown (at most {MAX_LINES})",
                self.over_cap
            ));
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }
}

/// `raw` as text of at most `max` characters: invalid UTF-8 (a code page)
/// and control characters replaced, a cut marked with "…".
pub fn printable(raw: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(raw);
    let mut out: String = text
        .chars()
        .map(|c| {
            if c.is_control() && c != '\t' {
                '\u{FFFD}'
            } else {
                c
            }
        })
        .take(max)
        .collect();
    if text.chars().nth(max).is_some() {
        out.push('…');
    }
    out.trim_end().to_owned()
}

/// Which pipe a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// The last stderr lines kept for an error message.
pub const STDERR_TAIL: usize = 10;

/// Everything a run's output holds, sorted as it arrives: result lines
/// apart, every other line to the transcript, the stderr tail for errors.
pub struct Collector<'a> {
    transcript: Transcript<'a>,
    emit: &'a (dyn Fn(String) + Send + Sync),
    results: Vec<Vec<u8>>,
    stderr_tail: VecDeque<String>,
}

impl<'a> Collector<'a> {
    pub fn new(redactor: &'a Redactor, emit: &'a (dyn Fn(String) + Send + Sync)) -> Self {
        Self {
            transcript: Transcript::new(redactor),
            emit,
            results: Vec::new(),
            stderr_tail: VecDeque::new(),
        }
    }

    pub fn line(&mut self, stream: Stream, line: &[u8]) {
        if stream == Stream::Stdout
            && let Some(payload) = super::protocol::result_payload(line)
        {
            self.results.push(payload.to_vec());
            return;
        }
        if stream == Stream::Stderr
            && !line.iter().all(u8::is_ascii_whitespace)
            && !self.transcript.redactor.matches(line)
        {
            if self.stderr_tail.len() == STDERR_TAIL {
                self.stderr_tail.pop_front();
            }
            self.stderr_tail.push_back(printable(line, MAX_LINE_CHARS));
        }
        if let Some(shown) = self.transcript.line(line) {
            (self.emit)(shown);
        }
    }

    /// A stream went past [`STREAM_CAP`].
    pub fn overflowed(&mut self, stream: Stream) {
        (self.emit)(format!(
            "{stream:?} went past {STREAM_CAP} bytes; the rest was discarded"
        ));
    }

    /// The result payloads and the stderr tail; emits what was not shown.
    pub fn finish(self) -> (Vec<Vec<u8>>, Vec<String>) {
        if let Some(summary) = self.transcript.summary() {
            (self.emit)(summary);
        }
        (self.results, self.stderr_tail.into())
    }
}

/// Reads `pipe` to its end into `collector`, line by line.
pub async fn pump(
    pipe: impl tokio::io::AsyncRead + Unpin,
    stream: Stream,
    collector: &std::sync::Mutex<Collector<'_>>,
) {
    use tokio::io::AsyncReadExt as _;
    let mut pipe = pipe;
    let mut lines = Lines::default();
    let mut chunk = vec![0u8; 8192];
    let feed = |line: Vec<u8>| {
        collector
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .line(stream, &line);
    };
    // A read error ends the stream like its end does: the exit code and
    // the result line decide the outcome.
    while let Ok(n @ 1..) = pipe.read(&mut chunk).await {
        lines.push(&chunk[..n]).into_iter().for_each(feed);
    }
    lines.finish().into_iter().for_each(feed);
    if lines.overflowed {
        collector
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .overflowed(stream);
    }
}
