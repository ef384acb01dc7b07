//! The caller's wait and the turn itself are bounded, under the real runtime: a stream of
//! events with nothing speakable does not hold off the apology, an endless stream is cut at
//! `TURN_MAX_MS` and a long reply at `REPLY_MAX_CHARS`, each with a short spoken close, and what
//! the caller heard is what the next request carries.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test fails by panicking

mod common;
use common::*;

use std::time::Duration;

fn start() -> (MockGemini, Worker) {
    let gemini = MockGemini::start();
    let layercode = MockLayercode::start();
    let worker = Worker::start(
        WorkerOptions::new(&gemini, &layercode)
            .var("GEMINI_TIMEOUT_MS", "1500")
            .var("TURN_MAX_MS", "2000")
            .var("REPLY_MAX_CHARS", "100"),
    );
    (gemini, worker)
}

fn every(gap_ms: u64, events: Vec<String>) -> GeminiReply {
    GeminiReply::Stream {
        events: events
            .into_iter()
            .map(|e| (Duration::from_millis(gap_ms), e))
            .collect(),
        framing: Framing::Lf,
        then: StreamEnd::Hang,
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
    let (gemini, worker) = start();
    // An empty, a whitespace and a markdown-only event every 400 ms, for 12 s.
    let speechless = (0..30)
        .map(|i| text_event(["", "  ", "**"][i % 3], None))
        .collect();
    gemini.push(every(400, speechless));
    let transcript = stream_webhook(&worker, &message("conv_speechless", "t1", "Hello?"));
    assert_well_formed_turn(&transcript, "t1");
    assert_eq!(transcript.tts_text(), APOLOGY_BEFORE);
    let apology_at = transcript.events[0].at;
    assert!(
        apology_at < Duration::from_millis(3000),
        "apology after {apology_at:?}, not held off by the events"
    );
    assert!(gemini.client_disconnected(0, TURN_TIMEOUT));
    let line = worker.wait_for_log("\"turn_id\":\"t1\"", TURN_TIMEOUT);
    assert!(line.contains("\"ending\":\"timeout\""), "{line}");
}

#[test]
fn an_endless_stream_is_cut_at_the_turn_limit() {
    use gemini_fixtures::text_event;
    let (gemini, worker) = start();
    let endless = (0..300).map(|_| text_event("and ", None)).collect();
    gemini.push(every(100, endless));
    let transcript = stream_webhook(&worker, &message("conv_endless", "t1", "Go on"));
    assert_well_formed_turn(&transcript, "t1");
    let heard = transcript.tts_text();
    assert!(heard.starts_with("and and"), "{heard}");
    assert!(heard.ends_with(CLOSE_AFTER_CUT), "{heard}");
    let end_at = transcript.events.last().map(|e| e.at).unwrap_or_default();
    assert!(end_at < Duration::from_secs(5), "ended after {end_at:?}");
    assert!(gemini.client_disconnected(0, TURN_TIMEOUT));
    let line = worker.wait_for_log("\"turn_id\":\"t1\"", TURN_TIMEOUT);
    assert!(line.contains("\"outcome\":\"cut\""), "{line}");
    assert!(line.contains("\"ending\":\"turn_limit\""), "{line}");
    assert_eq!(stored_reply(&gemini, &worker, "conv_endless"), heard);
}

#[test]
fn a_reply_past_the_length_cap_is_cut_at_a_word() {
    use gemini_fixtures::text_event;
    let (gemini, worker) = start();
    let words = (0..60)
        .map(|i| text_event(&format!("word{i} "), None))
        .collect();
    gemini.push(every(5, words));
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
    let (gemini, worker) = start();
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
    let (gemini, worker) = start();
    // Each answer takes most of the 1.5 s limit to say it is overloaded: one deadline for the
    // turn leaves no room for a retry that would double the caller's wait.
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
    let apology_at = transcript.events[0].at;
    assert!(
        apology_at < Duration::from_millis(2200),
        "apology after {apology_at:?}: waits stacked"
    );
    assert_eq!(gemini.requests().len(), 1, "no retry without room for it");
}
