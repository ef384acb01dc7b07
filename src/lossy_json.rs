//! JSON that JavaScript writes but serde_json refuses: a `\ud83d` escape without its pair.
//!
//! `JSON.stringify` escapes a lone surrogate (a string sliced in the middle of an emoji or a
//! math letter) as `\udXXX`, and models do the same. serde_json rejects the whole document for
//! it; we would rather keep the document and lose the half character. Used on Layercode's
//! webhook bodies (after the signature check on the raw bytes) and on the events of Gemini's stream.

use std::borrow::Cow;

/// U+FFFD REPLACEMENT CHARACTER as an escape: as long as the escape it replaces.
const REPLACEMENT_ESCAPE: &[u8; 6] = br"\uFFFD";

/// `json` with every `\u` escape of a lone surrogate (a high one not followed by a low one, or
/// a low one on its own) replaced by `\uFFFD`. Valid pairs, other escapes and `\\u` (an escaped
/// backslash, then a `u`) are left alone. Borrows when nothing needs replacing.
pub fn replace_lone_surrogates(json: &[u8]) -> Cow<'_, [u8]> {
    let mut fixed: Option<Vec<u8>> = None;
    let mut i = 0;
    while let Some(&byte) = json.get(i) {
        if byte != b'\\' {
            i += 1;
            continue;
        }
        match surrogate_escape_at(json, i) {
            Some(high) if is_high(high) && surrogate_escape_at(json, i + 6).is_some_and(is_low) => {
                i += 12;
            }
            Some(_) => {
                // Same length, so offsets in `json` and `fixed` stay the same.
                let out = fixed.get_or_insert_with(|| json.to_vec());
                if let Some(escape) = out.get_mut(i..i + 6) {
                    escape.copy_from_slice(REPLACEMENT_ESCAPE);
                }
                i += 6;
            }
            // Any other escape (`\\`, `\"`, `\n`, `\u0041`): skip the escaped character.
            None => i += 2,
        }
    }
    match fixed {
        Some(fixed) => Cow::Owned(fixed),
        None => Cow::Borrowed(json),
    }
}

/// The code unit of a `\uXXXX` escape of a surrogate starting at `at`, if that is one.
fn surrogate_escape_at(json: &[u8], at: usize) -> Option<u16> {
    let escape = json.get(at..at + 6)?;
    let hex = escape.strip_prefix(br"\u")?;
    let unit = u16::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
    (0xD800..=0xDFFF).contains(&unit).then_some(unit)
}

fn is_high(unit: u16) -> bool {
    (0xD800..=0xDBFF).contains(&unit)
}

fn is_low(unit: u16) -> bool {
    (0xDC00..=0xDFFF).contains(&unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lone_surrogates_become_replacement_characters() {
        // (input JSON, expected JSON, the string it parses to)
        let cases: [(&str, &str, &str); 13] = [
            (r#""""#, r#""""#, ""),
            (r#""plain""#, r#""plain""#, "plain"),
            (r#""\ud83d""#, r#""\uFFFD""#, "\u{FFFD}"),
            (r#""\uD83D""#, r#""\uFFFD""#, "\u{FFFD}"),
            (r#""\ude00""#, r#""\uFFFD""#, "\u{FFFD}"),
            (r#""\ud83d\ude00""#, r#""\ud83d\ude00""#, "😀"),
            (
                r#""\ud83d\ud83d\ude00""#,
                r#""\uFFFD\ud83d\ude00""#,
                "\u{FFFD}😀",
            ),
            (r#""\ude00\ud83d""#, r#""\uFFFD\uFFFD""#, "\u{FFFD}\u{FFFD}"),
            (
                r#""I love \ud83d!""#,
                r#""I love \uFFFD!""#,
                "I love \u{FFFD}!",
            ),
            (r#""\ud83d\u0041""#, r#""\uFFFD\u0041""#, "\u{FFFD}A"),
            // An escaped backslash before `ud83d` is text, not an escape.
            (r#""\\ud83d""#, r#""\\ud83d""#, r"\ud83d"),
            (r#""\\\ud83d""#, r#""\\\uFFFD""#, "\\\u{FFFD}"),
            (r#""\u00e9\n\"""#, r#""\u00e9\n\"""#, "é\n\""),
        ];
        for (input, expected, parsed) in cases {
            let fixed = replace_lone_surrogates(input.as_bytes());
            assert_eq!(String::from_utf8_lossy(&fixed), expected, "{input}");
            let value: String = serde_json::from_slice(&fixed).unwrap();
            assert_eq!(value, parsed, "{input}");
        }
    }

    #[test]
    fn every_string_of_a_document_is_fixed() {
        let fixed = replace_lone_surrogates(br#"{"a\udc00":"\ud835","b":["\udd0a"]}"#);
        let value: serde_json::Value = serde_json::from_slice(&fixed).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"a\u{FFFD}": "\u{FFFD}", "b": ["\u{FFFD}"]})
        );
    }

    #[test]
    fn serde_json_does_reject_what_this_fixes() {
        assert!(serde_json::from_str::<String>(r#""\ud83d""#).is_err());
        assert!(serde_json::from_str::<String>(r#""\ude00""#).is_err());
    }

    #[test]
    fn cut_off_escapes_are_left_for_the_parser_to_reject() {
        for input in [r"\", r"\u", r"\ud8", r#""\ud83"#, r"\uzzzz"] {
            assert_eq!(
                replace_lone_surrogates(input.as_bytes()).as_ref(),
                input.as_bytes()
            );
        }
        // A lone surrogate at the very end is still replaced.
        assert_eq!(
            replace_lone_surrogates(br#""\ud83d"#).as_ref(),
            br#""\uFFFD"#
        );
    }

    #[test]
    fn nothing_is_copied_when_nothing_changes() {
        let json = br#"{"text":"caf\u00e9 \ud83d\ude00"}"#;
        assert!(matches!(replace_lone_surrogates(json), Cow::Borrowed(_)));
    }

    #[test]
    fn invalid_utf8_elsewhere_is_left_alone() {
        let json = b"\"\xff\\ud83d\"";
        assert_eq!(replace_lone_surrogates(json).as_ref(), b"\"\xff\\uFFFD\"");
    }
}
