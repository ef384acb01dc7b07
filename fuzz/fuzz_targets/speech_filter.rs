//! `speech::SpeechFilter` speaks the same text however a reply is split into deltas, its output
//! never holds `*`, a backtick or an emoji pictograph (U+1F300..=U+1FAFF), and it never panics.
//!
//! The input is the reply (lossy UTF-8). Chunk sizes, in characters, come from the input's own
//! bytes (`byte % 8`, used cyclically; 0 is an empty delta, never twice in a row).
#![no_main]

use layercode_gemini_worker::speech::{clean_for_speech, SpeechFilter};
use libfuzzer_sys::fuzz_target;

fn forbidden(c: char) -> bool {
    matches!(c, '*' | '`' | '\u{1F300}'..='\u{1FAFF}')
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let whole = clean_for_speech(&text);
    assert!(!whole.contains(forbidden), "{text:?} -> {whole:?}");

    let bounds: Vec<usize> = text
        .char_indices()
        .map(|(i, _)| i)
        .chain([text.len()])
        .collect();
    let mut filter = SpeechFilter::new();
    let mut spoken = String::new();
    let mut at = 0; // index into `bounds`
    let mut previous_empty = false;
    for &byte in data.iter().cycle() {
        if at + 1 >= bounds.len() {
            break;
        }
        let size = usize::from(byte % 8);
        let size = if previous_empty { size.max(1) } else { size };
        let next = (at + size).min(bounds.len() - 1);
        let delta = &text[bounds[at]..bounds[next]];
        let out = filter.push(delta);
        assert!(
            !out.contains(forbidden),
            "{text:?}: push({delta:?}) -> {out:?}"
        );
        spoken.push_str(&out);
        previous_empty = delta.is_empty();
        at = next;
    }
    let rest = filter.finish();
    assert!(!rest.contains(forbidden), "{text:?}: finish -> {rest:?}");
    spoken.push_str(&rest);
    assert_eq!(
        spoken, whole,
        "the spoken text depends on the chunking: {text:?}"
    );

    // finish() reset the filter: it speaks the next reply the same way.
    let mut again = filter.push(&text);
    again.push_str(&filter.finish());
    assert_eq!(again, whole, "a reused filter speaks differently: {text:?}");
});
