//! The caller's wait and the turn itself are bounded, under the real runtime: a stream of
//! events with nothing speakable does not hold off the apology, an endless stream is cut at
//! `TURN_MAX_MS` and a long reply at `REPLY_MAX_CHARS`, each with a short spoken close, and what
//! the caller heard is what the next request carries.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test fails by panicking

mod common;
use common::*;

use std::time::Duration;

/// A worker with these limits. Each test shortens only the limit it is about: any other limit a
/// loaded machine could reach first would decide the turn in its place. With a 1.5 s silence, a
/// 2 s turn limit and a 100-character reply cap in every test, half a second of stall picked the
/// wrong one (the endless stream reaches 100 characters half a second after 2 s).
fn start(silence_ms: u64, turn_max_ms: u64, reply_max_chars: u64) -> (MockGemini, Worker) {
    let gemini = MockGemini::start();
    let layercode = MockLayercode::start();
    let worker = Worker::start(
        WorkerOptions::new(&gemini, &layercode)
            .var("GEMINI_TIMEOUT_MS", &silence_ms.to_string())
            .var("TURN_MAX_MS", &turn_max_ms.to_string())
            .var("REPLY_MAX_CHARS", &reply_max_chars.to_string()),
    );
    (gemini, worker)
}

/// The defaults (wrangler.toml), for the limits a test is not about.
const SILENCE_DEFAULT_MS: u64 = 10_000;
const TURN_MAX_DEFAULT_MS: u64 = 60_000;
const REPLY_MAX_DEFAULT_CHARS: u64 = 2_000;

fn every(gap_ms: u64, events: Vec<String>, then: StreamEnd) -> GeminiReply {
    GeminiReply::Stream {
        events: events
            .into_iter()
            .map(|e| (Duration::from_millis(gap_ms), e))
            .collect(),
        framing: Framing::Lf,
        then,
    }
}

/// What Gemini received as the model's part of the previous turn, via one more turn.
fn stored_reply(gemini: &MockGemini, worker: &Worker, conversation: &str) -> String {
    let before = gemini.requests().len();
    stream_webhook(worker, &message(conversation, "next", "And then?"));
    let request = &gemini.wait_for_requests(before + 1, TURN_TIMEOUT)[before];
    let contents = contents(&request.json());
    contents[contents.len() - 2].1.clone()
}

#[test]
fn events_with_nothing_speakable_do_not_keep_the_caller_waiting() {
    use gemini_fixtures::text_event;
    let (gemini, worker) = start(1500, TURN_MAX_DEFAULT_MS, REPLY_MAX_DEFAULT_CHARS);
    // An empty, a whitespace and a markdown-only event every 400 ms, for a minute, then the end
    // of the body: events that held off the 1.5 s silence limit would keep the turn going until
    // that end, and it would then fail as a reply with nothing spoken.
    let speechless: Vec<String> = (0..150)
        .map(|i| text_event(["", "  ", "**"][i % 3], None))
        .collect();
    gemini.push(every(400, speechless, StreamEnd::Close));
    let transcript = stream_webhook(&worker, &message("conv_speechless", "t1", "Hello?"));
    assert_well_formed_turn(&transcript, "t1");
    assert_eq!(transcript.tts_text(), APOLOGY_BEFORE);
    // Not held off by the events: the silence limit ended the turn and the worker hung up on a
    // stream that was still going (the mock had not finished its minute of events).
    let line = worker.wait_for_log("\"turn_id\":\"t1\"", TURN_TIMEOUT);
    assert!(line.contains("\"ending\":\"timeout\""), "{line}");
    assert!(
        gemini.client_disconnected(0, TURN_TIMEOUT),
        "the stream ran to its end: the events held off the silence limit"
    );
}

/// The turn limit of the test below: long enough that the first words are heard before it
/// whatever the load (the mock sends one every 100 ms; with 2 s, the limit's minimum, a stall of
/// 1.8 s before they arrived left nothing heard), short enough to keep the test quick. The reply
/// cap (2000 characters, 500 words, 50 s of this stream) and the silence limit (10 s, against
/// words 100 ms apart) are far from it.
const ENDLESS_TURN_MAX_MS: u64 = 5_000;

#[test]
fn an_endless_stream_is_cut_at_the_turn_limit() {
    use gemini_fixtures::text_event;
    let (gemini, worker) = start(
        SILENCE_DEFAULT_MS,
        ENDLESS_TURN_MAX_MS,
        REPLY_MAX_DEFAULT_CHARS,
    );
    // Five minutes of words: the turn limit is what ends the turn, not the stream.
    let words = 3000;
    let endless = (0..words).map(|_| text_event("and ", None)).collect();
    gemini.push(every(100, endless, StreamEnd::Hang));
    let transcript = stream_webhook(&worker, &message("conv_endless", "t1", "Go on"));
    assert_well_formed_turn(&transcript, "t1");
    let heard = transcript.tts_text();
    assert!(heard.starts_with("and and"), "{heard}");
    assert!(heard.ends_with(CLOSE_AFTER_CUT), "{heard}");
    // Cut while the stream was still going: part of the words, and the worker hung up on it.
    assert!(heard.matches("and").count() < words, "{heard}");
    let line = worker.wait_for_log("\"turn_id\":\"t1\"", TURN_TIMEOUT);
    assert!(line.contains("\"outcome\":\"cut\""), "{line}");
    assert!(line.contains("\"ending\":\"turn_limit\""), "{line}");
    assert_eq!(stored_reply(&gemini, &worker, "conv_endless"), heard);
}

#[test]
fn a_reply_past_the_length_cap_is_cut_at_a_word() {
    use gemini_fixtures::text_event;
    let (gemini, worker) = start(SILENCE_DEFAULT_MS, TURN_MAX_DEFAULT_MS, 100);
    let words = (0..60)
        .map(|i| text_event(&format!("word{i} "), None))
        .collect();
    gemini.push(every(5, words, StreamEnd::Hang));
    let transcript = stream_webhook(&worker, &message("conv_long", "t1", "Talk"));
    assert_well_formed_turn(&transcript, "t1");
    let heard = transcript.tts_text();
    let spoken = heard
        .strip_suffix(&format!(" {CLOSE_AFTER_CUT}"))
        .unwrap_or_else(|| panic!("{heard}"));
    assert!(spoken.chars().count() <= 100, "{spoken}");
    assert!(spoken.chars().count() > 80, "{spoken}");
    assert!(
        spoken.ends_with(|c: char| c.is_ascii_digit()),
        "cut inside a word: {spoken}"
    );
    assert_eq!(stored_reply(&gemini, &worker, "conv_long"), heard);
}

#[test]
fn an_event_larger_than_any_real_one_is_refused_not_buffered() {
    let (gemini, worker) = start(
        SILENCE_DEFAULT_MS,
        TURN_MAX_DEFAULT_MS,
        REPLY_MAX_DEFAULT_CHARS,
    );
    // 2 MB of one line that never ends, in 64 KB network chunks.
    let mut pieces = vec![(
        Duration::ZERO,
        b"data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"".to_vec(),
    )];
    pieces.extend((0..32).map(|_| (Duration::ZERO, vec![b'x'; 64 * 1024])));
    gemini.push(GeminiReply::Raw { pieces });
    let transcript = stream_webhook(&worker, &message("conv_huge", "t1", "Hello?"));
    assert_well_formed_turn(&transcript, "t1");
    assert_eq!(transcript.tts_text(), APOLOGY_BEFORE);
    let line = worker.wait_for_log("\"turn_id\":\"t1\"", TURN_TIMEOUT);
    assert!(line.contains("\"ending\":\"oversized_event\""), "{line}");
    assert_eq!(stored_reply(&gemini, &worker, "conv_huge"), APOLOGY_BEFORE);
}

#[test]
fn waits_do_not_stack_past_the_silence_limit() {
    use gemini_fixtures::error_body;
    let (gemini, worker) = start(1500, TURN_MAX_DEFAULT_MS, REPLY_MAX_DEFAULT_CHARS);
    // Each answer takes most of the 1.5 s limit to say it is overloaded: one deadline for the
    // turn leaves no room for a retry that would double the caller's wait. The 503 cannot come
    // sooner than 1.2 s into the turn (the mock holds its body that long after the request
    // arrived), so whatever the load, at most 0.3 s of the limit is left: never room for one.
    let slow_503 = || GeminiReply::SlowStatus {
        status: 503,
        body: error_body(503, "UNAVAILABLE", "The model is overloaded."),
        body_after: Duration::from_millis(1200),
    };
    gemini.push(slow_503());
    gemini.push(slow_503());
    let transcript = stream_webhook(&worker, &message("conv_stack", "t1", "Hello?"));
    assert_well_formed_turn(&transcript, "t1");
    assert_eq!(transcript.tts_text(), APOLOGY_BEFORE);
    // The turn is over (its apology and end were sent), so any retry would already be here.
    assert_eq!(gemini.requests().len(), 1, "no retry without room for it");
}
