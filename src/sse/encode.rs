//! Encoding: the events we send to Layercode.

use serde::Serialize;
use serde_json::Value;

/// One event for Layercode. The field order here is the key order in the JSON:
/// `type`, `content`, `turn_id`.
#[derive(Serialize)]
struct OutgoingEvent<'a, C> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<C>,
    /// Echoed verbatim when the request had one, left out entirely when it had none or an
    /// empty one, as Layercode's Node SDK does (layercode-protocol.md §5.4).
    #[serde(skip_serializing_if = "Option::is_none")]
    turn_id: Option<&'a str>,
}

/// `data: {"type":"response.tts","content":"…","turn_id":"…"}\n\n`: text for Layercode to speak.
pub fn encode_tts(content: &str, turn_id: Option<&str>) -> Vec<u8> {
    encode_frame("response.tts", Some(content), turn_id)
}

/// `data: {"type":"response.data","content":<json>,"turn_id":"…"}\n\n`: JSON for the browser.
pub fn encode_data(content: &Value, turn_id: Option<&str>) -> Vec<u8> {
    encode_frame("response.data", Some(content), turn_id)
}

/// `data: {"type":"response.end","turn_id":"…"}\n\n`: ends the turn; always the last event.
pub fn encode_end(turn_id: Option<&str>) -> Vec<u8> {
    encode_frame::<()>("response.end", None, turn_id)
}

fn encode_frame<C: Serialize>(
    kind: &'static str,
    content: Option<C>,
    turn_id: Option<&str>,
) -> Vec<u8> {
    let event = OutgoingEvent {
        kind,
        content,
        turn_id: turn_id.filter(|id| !id.is_empty()),
    };
    let mut frame = b"data: ".to_vec();
    // serde_json's compact writer never emits a raw newline, so the JSON is one line.
    if serde_json::to_writer(&mut frame, &event).is_err() {
        // Cannot happen for these types (string keys, no custom Serialize impls). If it ever
        // did, a frame with just the type is better than a panic or a half-written frame.
        return format!("data: {{\"type\":\"{kind}\"}}\n\n").into_bytes();
    }
    frame.extend_from_slice(b"\n\n");
    escape_line_separators(frame)
}

/// Line separators that are valid raw in JSON, and how we write them instead.
const LINE_SEPARATORS: [(&[u8], &[u8]); 3] = [
    ("\u{2028}".as_bytes(), br"\u2028"),
    ("\u{2029}".as_bytes(), br"\u2029"),
    ("\u{85}".as_bytes(), br"\u0085"),
];

/// `json` with U+2028, U+2029 and U+0085 written as `\u` escapes. They are valid raw in JSON,
/// yet JavaScript before ES2019, Python's `splitlines` and other line readers take them for
/// line breaks, which would cut a frame in two. In serde_json's output they can only be inside
/// strings (all else is ASCII), so replacing their bytes is exact.
fn escape_line_separators(json: Vec<u8>) -> Vec<u8> {
    // Both lead bytes of the separators; most frames contain neither.
    if !json.iter().any(|&byte| byte == 0xE2 || byte == 0xC2) {
        return json;
    }
    let mut escaped = Vec::with_capacity(json.len() + 16);
    let mut rest = json.as_slice();
    'bytes: while let Some((&byte, tail)) = rest.split_first() {
        for (raw, escape) in LINE_SEPARATORS {
            if let Some(after) = rest.strip_prefix(raw) {
                escaped.extend_from_slice(escape);
                rest = after;
                continue 'bytes;
            }
        }
        escaped.push(byte);
        rest = tail;
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sse::SseDecoder;
    use serde_json::json;

    fn frame(json: &str) -> Vec<u8> {
        format!("data: {json}\n\n").into_bytes()
    }

    #[test]
    fn tts_frames() {
        assert_eq!(
            encode_tts("Hi there!", Some("turn-0001")),
            frame(r#"{"type":"response.tts","content":"Hi there!","turn_id":"turn-0001"}"#)
        );
        assert_eq!(
            encode_tts("Hi there!", None),
            frame(r#"{"type":"response.tts","content":"Hi there!"}"#)
        );
    }

    #[test]
    fn data_frames() {
        // One key per object: the order of several keys depends on serde_json's features.
        let content = json!({"thinking": [true, 2, "x"]});
        assert_eq!(
            encode_data(&content, Some("t1")),
            frame(r#"{"type":"response.data","content":{"thinking":[true,2,"x"]},"turn_id":"t1"}"#)
        );
        assert_eq!(
            encode_data(&json!("x"), None),
            frame(r#"{"type":"response.data","content":"x"}"#)
        );
        assert_eq!(
            encode_data(&Value::Null, None),
            frame(r#"{"type":"response.data","content":null}"#)
        );
    }

    #[test]
    fn end_frames() {
        assert_eq!(
            encode_end(Some("turn-0001")),
            frame(r#"{"type":"response.end","turn_id":"turn-0001"}"#)
        );
        assert_eq!(encode_end(None), frame(r#"{"type":"response.end"}"#));
    }

    #[test]
    fn tricky_content_is_escaped_onto_one_line() {
        let content = "Line one\nline \"two\"\r\n back\\slash 🎉 café";
        let turn_id = "t\"1\n";
        let bytes = encode_tts(content, Some(turn_id));
        assert_eq!(
            bytes,
            frame(
                r#"{"type":"response.tts","content":"Line one\nline \"two\"\r\n back\\slash 🎉 café","turn_id":"t\"1\n"}"#
            )
        );

        let text = String::from_utf8(bytes.clone()).unwrap();
        let json = text
            .strip_prefix("data: ")
            .and_then(|t| t.strip_suffix("\n\n"))
            .unwrap();
        assert!(!json.contains(['\n', '\r']));
        let parsed: Value = serde_json::from_str(json).unwrap();
        assert_eq!(
            parsed,
            json!({"type": "response.tts", "content": content, "turn_id": turn_id})
        );

        // And our own decoder reads it back as exactly one event.
        let mut decoder = SseDecoder::new();
        assert_eq!(decoder.push(&bytes), vec![json.to_owned()]);
        assert_eq!(decoder.finish(), None);
    }

    #[test]
    fn line_separators_are_escaped() {
        let cases = [
            ("a\u{2028}b", r#""a\u2028b""#),
            ("\u{2029}", r#""\u2029""#),
            ("x\u{85}y\u{85}", r#""x\u0085y\u0085""#),
            ("\u{2028}\u{2029}\u{85}\n", r#""\u2028\u2029\u0085\n""#),
            ("plain", r#""plain""#),
            // Other characters with the same lead bytes stay as they are.
            ("© … ½ ‘x’ €", r#""© … ½ ‘x’ €""#),
        ];
        for (text, json) in cases {
            let expected = frame(&format!(
                r#"{{"type":"response.tts","content":{json},"turn_id":{json}}}"#
            ));
            let bytes = encode_tts(text, Some(text));
            assert_eq!(bytes, expected, "{text:?}");
            let line = String::from_utf8(bytes).unwrap();
            assert!(!line.contains(['\u{2028}', '\u{2029}', '\u{85}']));
            let parsed: Value = serde_json::from_str(&line[6..]).unwrap();
            assert_eq!(parsed["content"], text);
        }
        let data = encode_data(&json!({"k\u{2028}": ["\u{2029}"]}), None);
        assert_eq!(
            data,
            frame(r#"{"type":"response.data","content":{"k\u2028":["\u2029"]}}"#)
        );
    }

    #[test]
    fn an_empty_turn_id_is_left_out() {
        assert_eq!(
            encode_tts("Hi", Some("")),
            frame(r#"{"type":"response.tts","content":"Hi"}"#)
        );
        assert_eq!(encode_end(Some("")), frame(r#"{"type":"response.end"}"#));
        assert_eq!(
            encode_end(Some(" ")),
            frame(r#"{"type":"response.end","turn_id":" "}"#)
        );
    }
}
