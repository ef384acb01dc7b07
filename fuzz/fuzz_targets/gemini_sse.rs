//! `sse::SseDecoder` gives the same payloads and the same `finish()` leftover however the body
//! is split into network chunks, and never panics; `gemini::parse_event` never panics on any
//! payload (nor `gemini::classify_error` on any leftover), and neither does the OpenAI wire's
//! `openai::ChatStream` (chunks, tool-call fragments, the end of the body).
//!
//! Input layout: byte 0 low 3 bits = `n`, the next `n` bytes are chunk sizes (used cyclically; 0
//! is an empty chunk), the rest is the response body. `n = 0` feeds it in one-byte chunks.
#![no_main]

use layercode_gemini_worker::llm::gemini::{classify_error, parse_event};
use layercode_gemini_worker::llm::openai::ChatStream;
use layercode_gemini_worker::sse::SseDecoder;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let n = usize::from(control & 7).min(rest.len());
    let (sizes, body) = rest.split_at(n);
    let sizes: &[u8] = if sizes.is_empty() { &[1] } else { sizes };

    let mut whole = SseDecoder::new();
    let expected = whole.push(body);
    let expected_rest = whole.finish();

    let mut decoder = SseDecoder::new();
    let mut events = Vec::new();
    let mut remaining = body;
    let mut previous_empty = false;
    for &size in sizes.iter().cycle() {
        if remaining.is_empty() {
            break;
        }
        // Empty chunks are allowed, but never twice in a row, so this always ends.
        let size = if previous_empty {
            usize::from(size).max(1)
        } else {
            usize::from(size)
        };
        let (chunk, tail) = remaining.split_at(size.min(remaining.len()));
        events.extend(decoder.push(chunk));
        previous_empty = chunk.is_empty();
        remaining = tail;
    }
    events.extend(decoder.push(&[]));
    let leftover = decoder.finish();
    assert_eq!(events, expected, "payloads depend on the chunking");
    assert_eq!(leftover, expected_rest, "finish() depends on the chunking");

    // finish() reset the decoder: it decodes the same body again the same way.
    let mut again = decoder.push(body);
    again.extend(decoder.push(&[]));
    assert_eq!(again, expected, "a reused decoder decodes differently");
    assert_eq!(decoder.finish(), expected_rest);

    let mut chat = ChatStream::new(1);
    for payload in &expected {
        let _ = parse_event(payload, "k");
        let _ = chat.push(payload, "k");
    }
    if let Some(leftover) = &leftover {
        let _ = classify_error(500, leftover, "k");
    }
    let _ = chat.end_of_body(leftover.as_deref(), "k");
    let _ = chat.take_step();
});
