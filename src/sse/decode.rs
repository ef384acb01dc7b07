//! Decoding: Gemini's event stream.

const LF: u8 = b'\n';
const CR: u8 = b'\r';
/// The UTF-8 byte order mark. The event-stream rules skip it at the start of a stream.
const BOM: &[u8] = b"\xEF\xBB\xBF";
/// The most one incoming event may hold. A real Gemini event is a few KB; past this the
/// stream is refused rather than buffered (a line without an end would otherwise grow forever).
pub const MAX_EVENT_BYTES: usize = 256 * 1024;

/// Incremental SSE decoder: feed raw network bytes, get complete event data payloads.
///
/// Only `data` fields are returned: Gemini sends no `event:`, `id:` or `retry:` fields and no
/// `[DONE]` sentinel; the end of the HTTP body is the end of the stream.
#[derive(Debug, Default)]
pub struct SseDecoder {
    /// Raw bytes of the event being received: its complete lines, then the partial line.
    /// Kept so that [`SseDecoder::finish`] can hand back an unframed body; dropped as soon as
    /// the event ends, so it never holds more than one event.
    buf: Vec<u8>,
    /// Where the current (incomplete) line starts in `buf`.
    line_start: usize,
    /// `buf[..scan_from]` has already been searched for a line end, so each byte is scanned once.
    scan_from: usize,
    /// The last byte received was a CR that ended a line. If the next byte is an LF, the pair
    /// is one CRLF line ending, not two line endings (which would be a spurious blank line).
    after_cr: bool,
    /// Whether the start of the stream has been checked for a BOM.
    bom_checked: bool,
    /// The data lines of the current event joined by `\n`; `None` until a `data` line arrives,
    /// because an event without one is not dispatched (but `data:` alone gives `Some("")`).
    data: Option<Vec<u8>>,
    /// An event grew past [`MAX_EVENT_BYTES`]: everything after it is ignored.
    overflowed: bool,
}

impl SseDecoder {
    /// A decoder at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds raw bytes; returns the data payload of every event these bytes complete, in order.
    /// Once an event grows past [`MAX_EVENT_BYTES`] nothing more is returned (see
    /// [`SseDecoder::overflowed`]) and no more is buffered.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        if self.overflowed {
            return Vec::new();
        }
        let completes_crlf = self.completes_split_crlf(bytes);
        let chunk_start = self.buf.len();
        self.buf.extend_from_slice(bytes);
        if completes_crlf {
            // The LF stays in `buf`, so `finish` returns the raw text whatever the chunking,
            // but it is not a second line ending: the next line starts after it.
            self.line_start = chunk_start + 1;
            self.scan_from = chunk_start + 1;
        }
        if !self.skip_bom() {
            return Vec::new();
        }

        let mut events = Vec::new();
        // End of the last complete event in `buf`: everything before it can be dropped.
        let mut consumed = 0;
        while let Some((start, end, next)) = self.next_line() {
            let line = self.buf.get(start..end).unwrap_or_default();
            if line.is_empty() {
                // A blank line ends the event.
                if let Some(data) = self.data.take() {
                    events.push(String::from_utf8_lossy(&data).into_owned());
                }
                consumed = next;
            } else {
                apply_field(line, &mut self.data);
            }
        }
        self.drop_front(consumed);
        // `buf` holds the raw bytes of the unfinished event, so its length is that event's size.
        if self.buf.len() > MAX_EVENT_BYTES {
            self.overflowed = true;
            self.buf = Vec::new();
            self.data = None;
        }
        events
    }

    /// Whether an event was larger than [`MAX_EVENT_BYTES`] (the stream is then unusable).
    pub fn overflowed(&self) -> bool {
        self.overflowed
    }

    /// End of the body. Returns the leftover bytes of an incomplete event (lossy UTF-8, trimmed),
    /// or None if nothing but whitespace was left. The caller treats leftover text as either an
    /// unframed JSON error body (`{"error": …}`) or a truncated stream.
    ///
    /// The leftover is the raw text since the last blank line, complete lines included, so an
    /// unframed pretty-printed JSON body comes back whole. The decoder is reset for reuse.
    pub fn finish(&mut self) -> Option<String> {
        let state = std::mem::take(self);
        if !state.bom_checked {
            // At most a partial BOM arrived: nothing to report.
            return None;
        }
        let text = String::from_utf8_lossy(&state.buf);
        let text = text.trim();
        (!text.is_empty()).then(|| text.to_owned())
    }

    /// Whether `bytes` starts with the LF that completes a CRLF whose CR was the last byte of
    /// the previous chunk. The CR already ended its line, which left `line_start` and
    /// `scan_from` at the end of `buf`, where this LF goes.
    fn completes_split_crlf(&mut self, bytes: &[u8]) -> bool {
        let Some(&first) = bytes.first() else {
            // An empty chunk tells us nothing: the LF may still come.
            return false;
        };
        std::mem::take(&mut self.after_cr) && first == LF
    }

    /// Skips a BOM at the very start of the stream. Returns false while too few bytes have
    /// arrived to tell (a BOM can itself be split across chunks).
    fn skip_bom(&mut self) -> bool {
        if self.bom_checked {
            return true;
        }
        if self.buf.len() < BOM.len() && BOM.starts_with(&self.buf) {
            return false;
        }
        if self.buf.starts_with(BOM) {
            self.buf.drain(..BOM.len());
        }
        self.bom_checked = true;
        true
    }

    /// Finds the next complete line in `buf`, returning its `start..end` (without the line
    /// ending) and where the line after it starts. A line ends at LF, CR or CRLF.
    fn next_line(&mut self) -> Option<(usize, usize, usize)> {
        let unscanned = self.buf.get(self.scan_from..).unwrap_or_default();
        let Some(offset) = unscanned.iter().position(|&b| b == LF || b == CR) else {
            self.scan_from = self.buf.len();
            return None;
        };
        let end = self.scan_from + offset;
        let next = match (self.buf.get(end), self.buf.get(end + 1)) {
            (Some(&CR), Some(&LF)) => end + 2,
            (Some(&CR), None) => {
                // The LF of a CRLF may be in the next chunk.
                self.after_cr = true;
                end + 1
            }
            _ => end + 1,
        };
        let start = self.line_start;
        self.line_start = next;
        self.scan_from = next;
        Some((start, end, next))
    }

    /// Forgets the first `len` bytes of `buf` (finished events), keeping the offsets valid.
    fn drop_front(&mut self, len: usize) {
        let len = len.min(self.buf.len());
        if len == 0 {
            return;
        }
        self.buf.drain(..len);
        self.line_start = self.line_start.saturating_sub(len);
        self.scan_from = self.scan_from.saturating_sub(len);
    }
}

/// Applies one non-blank line to the event being built. Only `data` matters to us; comment
/// lines (starting with `:`) have an empty field name and so fall through with the other
/// ignored fields.
fn apply_field(line: &[u8], data: &mut Option<Vec<u8>>) {
    let (name, value) = split_field(line);
    if name != b"data" {
        return;
    }
    match data {
        Some(joined) => {
            joined.push(LF);
            joined.extend_from_slice(value);
        }
        None => *data = Some(value.to_vec()),
    }
}

/// Splits `name: value` at the first colon, dropping exactly one space after it. A line
/// without a colon is a field name with an empty value.
fn split_field(line: &[u8]) -> (&[u8], &[u8]) {
    let Some(colon) = line.iter().position(|&b| b == b':') else {
        return (line, &[]);
    };
    let (name, rest) = line.split_at(colon);
    let value = rest.get(1..).unwrap_or_default();
    (name, value.strip_prefix(b" ").unwrap_or(value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_rng::Rng;
    use serde_json::Value;

    #[test]
    fn an_event_past_the_cap_stops_the_decoder_and_frees_its_buffer() {
        let mut decoder = SseDecoder::new();
        assert_eq!(decoder.push(b"data: small\n\n"), vec!["small"]);
        let line = vec![b'x'; 64 * 1024];
        let mut events = decoder.push(b"data: ");
        for _ in 0..5 {
            events.extend(decoder.push(&line));
        }
        assert!(events.is_empty());
        assert!(decoder.overflowed());
        assert!(decoder.buf.capacity() <= MAX_EVENT_BYTES);
        assert!(decoder.push(b"\n\ndata: late\n\n").is_empty());
        // Many data lines of one event count together.
        let mut lines = SseDecoder::new();
        for _ in 0..(MAX_EVENT_BYTES / 1000 + 1) {
            lines.push(format!("data: {}\n", "y".repeat(1000)).as_bytes());
        }
        assert!(lines.overflowed());
        // An event just under the cap is fine.
        let mut fine = SseDecoder::new();
        let big = format!("data: {}\n\n", "z".repeat(MAX_EVENT_BYTES - 100));
        assert_eq!(fine.push(big.as_bytes()).len(), 1);
        assert!(!fine.overflowed());
    }

    // ----- decoding: fixtures -----

    /// Byte-for-byte copy of Gemini's stream (gemini-streaming.md §10), LF framing.
    const FIXTURE: &str = r#"data: {"candidates": [{"content": {"parts": [{"text": "The"}],"role": "model"}}],"usageMetadata": {"promptTokenCount": 7,"totalTokenCount": 7,"promptTokensDetails": [{"modality": "TEXT","tokenCount": 7}]},"modelVersion": "gemini-3.1-flash-lite"}

data: {"candidates": [{"content": {"parts": [{"text": " capital of Wyoming"}],"role": "model"}}],"usageMetadata": {"promptTokenCount": 7,"totalTokenCount": 7,"promptTokensDetails": [{"modality": "TEXT","tokenCount": 7}]},"modelVersion": "gemini-3.1-flash-lite"}

data: {"candidates": [{"content": {"parts": [{"text": " is **Cheyenne**.\n"}],"role": "model"},"finishReason": "STOP"}],"usageMetadata": {"promptTokenCount": 7,"candidatesTokenCount": 10,"totalTokenCount": 17,"promptTokensDetails": [{"modality": "TEXT","tokenCount": 7}],"candidatesTokensDetails": [{"modality": "TEXT","tokenCount": 10}]},"modelVersion": "gemini-3.1-flash-lite"}

"#;

    const PAYLOADS: [&str; 3] = [
        r#"{"candidates": [{"content": {"parts": [{"text": "The"}],"role": "model"}}],"usageMetadata": {"promptTokenCount": 7,"totalTokenCount": 7,"promptTokensDetails": [{"modality": "TEXT","tokenCount": 7}]},"modelVersion": "gemini-3.1-flash-lite"}"#,
        r#"{"candidates": [{"content": {"parts": [{"text": " capital of Wyoming"}],"role": "model"}}],"usageMetadata": {"promptTokenCount": 7,"totalTokenCount": 7,"promptTokensDetails": [{"modality": "TEXT","tokenCount": 7}]},"modelVersion": "gemini-3.1-flash-lite"}"#,
        r#"{"candidates": [{"content": {"parts": [{"text": " is **Cheyenne**.\n"}],"role": "model"},"finishReason": "STOP"}],"usageMetadata": {"promptTokenCount": 7,"candidatesTokenCount": 10,"totalTokenCount": 17,"promptTokensDetails": [{"modality": "TEXT","tokenCount": 7}],"candidatesTokensDetails": [{"modality": "TEXT","tokenCount": 10}]},"modelVersion": "gemini-3.1-flash-lite"}"#,
    ];

    /// An extra event for the split tests: its text has 2-, 3- and 3-byte UTF-8 characters,
    /// and it is sent as two `data:` lines, so a CRLF split into two line endings (a spurious
    /// blank line) would cut it in half. The payload is the two lines joined by `\n`.
    const UNICODE_LINES: [&str; 2] = [
        r#"{"candidates": [{"content": {"parts": [{"text": " café ☕ 日本"}],"#,
        r#""role": "model"}}]}"#,
    ];

    /// The same LF-framed stream with every `\n` replaced by `newline`.
    fn reframe(lf_stream: &str, newline: &str) -> Vec<u8> {
        lf_stream.replace('\n', newline).into_bytes()
    }

    /// Every stream variant as (name, bytes, expected payloads): the real fixture and the
    /// fixture with the unicode event in the middle, each in LF, CRLF and CR-only framing.
    fn variants() -> Vec<(String, Vec<u8>, Vec<String>)> {
        let [line_a, line_b] = UNICODE_LINES;
        let with_unicode = format!(
            "data: {}\n\ndata: {line_a}\ndata: {line_b}\n\ndata: {}\n\ndata: {}\n\n",
            PAYLOADS[0], PAYLOADS[1], PAYLOADS[2]
        );
        let real: Vec<String> = PAYLOADS.iter().map(|p| p.to_string()).collect();
        let mut unicode = real.clone();
        unicode.insert(1, UNICODE_LINES.join("\n"));

        let mut out = Vec::new();
        for (base_name, base, expected) in [
            ("real", FIXTURE, &real),
            ("unicode", &with_unicode, &unicode),
        ] {
            for (frame_name, newline) in [("LF", "\n"), ("CRLF", "\r\n"), ("CR", "\r")] {
                out.push((
                    format!("{base_name}/{frame_name}"),
                    reframe(base, newline),
                    expected.clone(),
                ));
            }
        }
        out
    }

    /// Feeds `chunks` in order; returns all payloads and what `finish` said.
    fn decode<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> (Vec<String>, Option<String>) {
        let mut decoder = SseDecoder::new();
        let mut events = Vec::new();
        for chunk in chunks {
            events.extend(decoder.push(chunk));
        }
        (events, decoder.finish())
    }

    fn decode_str(stream: &str) -> (Vec<String>, Option<String>) {
        decode([stream.as_bytes()])
    }

    #[test]
    fn fixture_matches_the_documented_payloads() {
        let joined = format!(
            "data: {}\n\ndata: {}\n\ndata: {}\n\n",
            PAYLOADS[0], PAYLOADS[1], PAYLOADS[2]
        );
        assert_eq!(FIXTURE, joined);
        assert_eq!(FIXTURE.len(), 891);
    }

    #[test]
    fn decodes_the_fixture_in_every_framing() {
        for newline in ["\n", "\r\n", "\r"] {
            let (events, rest) = decode([reframe(FIXTURE, newline).as_slice()]);
            assert_eq!(events, PAYLOADS, "framing {newline:?}");
            assert_eq!(rest, None, "framing {newline:?}");
        }
    }

    #[test]
    fn fixture_payloads_are_the_gemini_deltas() {
        let (events, _) = decode_str(FIXTURE);
        let text: String = events
            .iter()
            .map(|e| {
                let v: Value = serde_json::from_str(e).unwrap();
                v["candidates"][0]["content"]["parts"][0]["text"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(text, "The capital of Wyoming is **Cheyenne**.\n");
    }

    // ----- decoding: arbitrary chunking -----

    #[test]
    fn every_two_chunk_split() {
        for (name, bytes, expected) in variants() {
            for at in 0..=bytes.len() {
                let (head, tail) = bytes.split_at(at);
                let (events, rest) = decode([head, tail]);
                assert_eq!(events, expected, "{name}, split at {at}");
                assert_eq!(rest, None, "{name}, split at {at}");
            }
        }
    }

    #[test]
    fn one_byte_at_a_time() {
        for (name, bytes, expected) in variants() {
            let (events, rest) = decode(bytes.chunks(1));
            assert_eq!(events, expected, "{name}");
            assert_eq!(rest, None, "{name}");
        }
    }

    #[test]
    fn pseudo_random_multi_chunk_splits() {
        let mut rng = Rng::new(0x5EED);
        for (name, bytes, expected) in variants() {
            for round in 0..200 {
                let mut chunks = Vec::new();
                let mut rest = bytes.as_slice();
                while !rest.is_empty() {
                    // Mostly small chunks (so splits land everywhere), some empty, some large.
                    let max = if round % 10 == 0 { 300 } else { 12 };
                    let (chunk, tail) = rest.split_at(rng.below(max + 1).min(rest.len()));
                    chunks.push(chunk);
                    rest = tail;
                }
                let (events, left) = decode(chunks.iter().copied());
                assert_eq!(events, expected, "{name}, round {round}");
                assert_eq!(left, None, "{name}, round {round}");
            }
        }
    }

    #[test]
    fn crlf_split_between_cr_and_lf_is_one_line_ending() {
        // Treating the LF as a second line ending would make a blank line and split the event.
        let (events, rest) = decode([b"data: a\r".as_slice(), b"\ndata: b\r\n\r\n"]);
        assert_eq!(events, ["a\nb"]);
        assert_eq!(rest, None);

        // An empty chunk in between does not forget the pending CR.
        let (events, _) = decode([b"data: a\r".as_slice(), b"", b"\ndata: b\r\n\r\n"]);
        assert_eq!(events, ["a\nb"]);
    }

    #[test]
    fn multibyte_character_split_across_chunks() {
        let bytes = "data: café ☕ 日本\n\n".as_bytes();
        let (events, _) = decode(bytes.chunks(1));
        assert_eq!(events, ["café ☕ 日本"]);
    }

    // ----- decoding: field rules -----

    #[test]
    fn data_lines_join_with_newline() {
        assert_eq!(decode_str("data: a\ndata: b\ndata: c\n\n").0, ["a\nb\nc"]);
    }

    #[test]
    fn comments_are_ignored() {
        let (events, rest) = decode_str(": keep-alive\ndata: x\n:another\n\n: ping\n\n");
        assert_eq!(events, ["x"]);
        assert_eq!(rest, None);
    }

    #[test]
    fn other_fields_are_ignored() {
        let stream = "event: message\nid: 7\nretry: 100\nfoo: bar\ndata: x\nid\n\nevent: ping\n\n";
        assert_eq!(decode_str(stream).0, ["x"]);
    }

    #[test]
    fn events_without_data_are_not_returned() {
        assert_eq!(decode_str("\n\n\r\n\r\r").0, Vec::<String>::new());
    }

    #[test]
    fn bom_at_stream_start_is_skipped() {
        let stream = "\u{FEFF}data: x\n\n";
        assert_eq!(decode_str(stream).0, ["x"]);
        assert_eq!(decode(stream.as_bytes().chunks(1)).0, ["x"]);
        // Only at the start: later it is part of a field name ("\u{FEFF}data"), so ignored.
        assert_eq!(decode_str("data: a\n\n\u{FEFF}data: b\n\n").0, ["a"]);
    }

    #[test]
    fn stream_shorter_than_a_bom() {
        assert_eq!(decode_str("\n\n"), (vec![], None));
        assert_eq!(decode([b"\xEF\xBB".as_slice()]), (vec![], None));
        assert_eq!(decode_str("x"), (vec![], Some("x".to_owned())));
    }

    #[test]
    fn space_after_colon() {
        assert_eq!(decode_str("data:x\n\n").0, ["x"]);
        assert_eq!(decode_str("data: x\n\n").0, ["x"]);
        assert_eq!(decode_str("data:  two spaces\n\n").0, [" two spaces"]);
        // Only the first colon separates: the rest belongs to the value.
        assert_eq!(decode_str("data: a: b\n\n").0, ["a: b"]);
    }

    #[test]
    fn empty_data_lines() {
        assert_eq!(decode_str("data:\n\n").0, [""]);
        assert_eq!(decode_str("data\n\n").0, [""]);
        assert_eq!(decode_str("data: a\ndata:\n\n").0, ["a\n"]);
        assert_eq!(decode_str("data\ndata\n\n").0, ["\n"]);
    }

    #[test]
    fn invalid_utf8_is_decoded_lossily() {
        let (events, rest) = decode([b"data: a\xFFb\n\n".as_slice()]);
        assert_eq!(events, ["a\u{FFFD}b"]);
        assert_eq!(rest, None);
    }

    // ----- decoding: end of stream -----

    #[test]
    fn finish_after_a_clean_stream_is_none() {
        assert_eq!(decode_str(FIXTURE).1, None);
        assert_eq!(decode_str("").1, None);
        // Trailing blank lines and whitespace are not leftovers.
        assert_eq!(decode_str("data: x\n\n\r\n \t\n").1, None);
    }

    #[test]
    fn finish_returns_a_truncated_last_event() {
        let cut = FIXTURE.len() - 100;
        let (events, rest) = decode_str(&FIXTURE[..cut]);
        assert_eq!(events, &PAYLOADS[..2]);
        let third_event = FIXTURE.rfind("data: ").unwrap();
        assert_eq!(rest.as_deref(), Some(&FIXTURE[third_event..cut]));

        // A complete data line whose blank line never came is leftover too, not an event.
        let (events, rest) = decode_str("data: a\n\ndata: b\r\n");
        assert_eq!(events, ["a"]);
        assert_eq!(rest.as_deref(), Some("data: b"));
    }

    #[test]
    fn finish_returns_an_unframed_json_error_body() {
        let body = "{\n  \"error\": {\n    \"code\": 400,\n    \"message\": \"API key not valid. Please pass a valid API key.\",\n    \"status\": \"INVALID_ARGUMENT\"\n  }\n}\n";
        for chunks in [vec![body.as_bytes()], body.as_bytes().chunks(7).collect()] {
            let (events, rest) = decode(chunks);
            assert!(events.is_empty());
            let rest = rest.unwrap();
            assert_eq!(rest, body.trim());
            let parsed: Value = serde_json::from_str(&rest).unwrap();
            assert_eq!(parsed["error"]["code"], 400);
        }
    }

    #[test]
    fn finish_resets_the_decoder() {
        let mut decoder = SseDecoder::new();
        assert!(decoder.push(b"data: cut").is_empty());
        assert_eq!(decoder.finish().as_deref(), Some("data: cut"));
        assert_eq!(decoder.push(b"data: x\n\n"), ["x"]);
        assert_eq!(decoder.finish(), None);
    }

    // ----- decoding: memory and scanning -----

    #[test]
    fn buffer_holds_only_the_current_event() {
        let mut decoder = SseDecoder::new();
        for (i, chunk) in FIXTURE.as_bytes().chunks(50).enumerate() {
            decoder.push(chunk);
            // Never more than the event in progress: the longest fixture event plus one chunk.
            assert!(decoder.buf.len() <= PAYLOADS[2].len() + 8, "chunk {i}");
        }
        assert!(decoder.buf.is_empty());

        decoder.push(b"data: a\n\ndata: b\ndata: par");
        assert_eq!(decoder.buf, b"data: b\ndata: par");
        assert_eq!(decoder.line_start, b"data: b\n".len());
    }

    #[test]
    fn scanning_resumes_where_it_stopped() {
        let mut decoder = SseDecoder::new();
        decoder.push(b"data: ");
        assert_eq!(decoder.scan_from, 6);
        for _ in 0..1000 {
            decoder.push(b"x");
        }
        assert_eq!(decoder.scan_from, 1006);
        assert_eq!(decoder.push(b"\n\n"), ["x".repeat(1000)]);
        assert_eq!(
            (decoder.buf.len(), decoder.scan_from, decoder.line_start),
            (0, 0, 0)
        );
    }

    // ----- fuzzing regressions (fuzz/fuzz_targets/gemini_sse.rs) -----

    /// `cargo fuzz run gemini_sse`, minimised input `b"\x00d\r\n\x00"` (control byte 0: feed
    /// the body `d\r\n\0` one byte at a time). The LF of a CRLF split between two chunks was
    /// dropped from the buffer, so `finish` returned `d\r\0` instead of the `d\r\n\0` that the
    /// unsplit body gives: the leftover (an unframed error body) depended on the chunking.
    #[test]
    fn fuzz_split_crlf_keeps_its_lf_in_the_leftover() {
        let body = b"d\r\n\x00";
        let expected = (vec![], Some("d\r\n\u{0}".to_owned()));
        assert_eq!(decode([body.as_slice()]), expected);
        assert_eq!(decode(body.chunks(1)), expected);

        // Every split of a stream with an event, then an unframed CRLF body.
        let stream = b"data: a\r\n\r\ndata: b\r\n{\r\n  \"error\": 1\r\n}\r\n";
        let leftover = "data: b\r\n{\r\n  \"error\": 1\r\n}";
        for at in 0..=stream.len() {
            let (head, tail) = stream.split_at(at);
            let (events, rest) = decode([head, tail]);
            assert_eq!(events, ["a"], "split at {at}");
            assert_eq!(rest.as_deref(), Some(leftover), "split at {at}");
        }
        assert_eq!(decode(stream.chunks(1)).1.as_deref(), Some(leftover));
    }
}
