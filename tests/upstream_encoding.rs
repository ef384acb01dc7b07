//! An upstream that labels its body `Content-Encoding: gzip` costs at most the one turn or the one
//! `/authorize` call it answers, whether the body is not gzip at all or turns corrupt part-way:
//! never the runtime process (the April runtime died on it: "Fatal uncaught kj::Exception …
//! gzip decompression failed"), so the turn and the call after it are served normally.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test fails by panicking

mod common;
use common::gzip::{gzip, gzip_corrupt_after, gzip_start, CORRUPT_BLOCK};
use common::*;
use std::time::Duration;

/// One Gemini SSE event, framed.
fn sse_event(json: &str) -> Vec<u8> {
    format!("data: {json}\n\n").into_bytes()
}

/// A body labelled gzip, written in pieces 300 ms apart.
fn encoded(pieces: Vec<Vec<u8>>) -> GeminiReply {
    encoded_cued(
        pieces
            .into_iter()
            .map(|piece| (Cue::After(Duration::from_millis(300)), piece))
            .collect(),
    )
}

/// A body labelled gzip, each piece written when its cue comes.
fn encoded_cued(pieces: Vec<(Cue, Vec<u8>)>) -> GeminiReply {
    GeminiReply::Encoded {
        encoding: "gzip".into(),
        pieces,
    }
}

#[test]
fn a_gzip_labelled_gemini_body_costs_only_its_own_turn() {
    use gemini_fixtures::text_event;
    let gemini = MockGemini::start();
    let layercode = MockLayercode::start();
    let worker = Worker::start(WorkerOptions::new(&gemini, &layercode));
    // The corrupt block of the last case is written only once the caller has heard the first
    // event: 300 ms apart, a worker slowed by that much read both in one network chunk, which is
    // the third case (an apology before any words) rather than the fourth.
    let corrupt_block = Gate::new();
    let cases = [
        (
            "valid gzip is decoded",
            encoded(vec![gzip(&sse_event(&text_event(
                "Hello there.",
                Some("STOP"),
            )))]),
            "Hello there.".to_string(),
            None,
        ),
        (
            "labelled gzip, body not gzip",
            encoded(vec![sse_event(&text_event("Hello there.", Some("STOP")))]),
            APOLOGY_BEFORE.to_string(),
            None,
        ),
        (
            "gzip corrupt after the first event, in the same network chunk",
            encoded(vec![gzip_corrupt_after(&sse_event(&text_event(
                "The answer is",
                None,
            )))]),
            APOLOGY_BEFORE.to_string(),
            None,
        ),
        (
            "gzip corrupt after the first event, in a later network chunk",
            encoded_cued(vec![
                (
                    Cue::After(Duration::ZERO),
                    gzip_start(&sse_event(&text_event("The answer is", None))),
                ),
                (Cue::Opened(corrupt_block.clone()), CORRUPT_BLOCK.to_vec()),
            ]),
            format!("The answer is {APOLOGY_MID}"),
            Some(corrupt_block),
        ),
    ];
    for (i, (name, reply, heard, then)) in cases.into_iter().enumerate() {
        gemini.push(reply);
        let turn_id = format!("turn_{i}");
        let event = message("conv_gzip", &turn_id, "Question?");
        let transcript = match then {
            None => stream_webhook(&worker, &event),
            Some(gate) => {
                let mut stream = open_webhook(&worker, &event);
                let first = stream.next_event(TURN_TIMEOUT).expect("the first words");
                gate.open();
                let mut transcript = stream.read_all(TURN_TIMEOUT);
                transcript.events.insert(0, first);
                transcript
            }
        };
        assert_well_formed_turn(&transcript, &turn_id);
        assert_eq!(transcript.tts_text(), heard, "{name}");
        worker.wait_for_log(&format!("\"turn_id\":\"{turn_id}\""), TURN_TIMEOUT);
    }
    for request in gemini.requests() {
        // Asked for a body we can always read; the answers above ignored that.
        assert_eq!(request.header("accept-encoding"), Some("identity"));
    }
    // The runtime is still the same one, serving the next turn.
    let transcript = stream_webhook(&worker, &message("conv_gzip", "turn_after", "Still there?"));
    assert_well_formed_turn(&transcript, "turn_after");
    assert_eq!(transcript.tts_text(), DEFAULT_GEMINI_TEXT);
    let logs = worker.logs();
    assert!(!logs.contains("Fatal uncaught"), "{logs}");
}

#[test]
fn a_gzip_labelled_authorize_answer_costs_only_that_call() {
    let gemini = MockGemini::start();
    let layercode = MockLayercode::start();
    let worker = Worker::start(WorkerOptions::new(&gemini, &layercode));
    let body = r#"{"agent_id":"ag_123"}"#;
    let authorize = || post_json(&worker.url("/authorize"), &[], body);
    let reply = |bytes: Vec<u8>| LayercodeReply::Encoded {
        status: 200,
        encoding: "gzip".into(),
        body: bytes,
    };

    layercode.push(reply(gzip(DEFAULT_AUTHORIZE_BODY.as_bytes())));
    let valid = authorize();
    assert_eq!(valid.status, 200, "{}", valid.text());
    assert_eq!(valid.text(), DEFAULT_AUTHORIZE_BODY);

    for bytes in [
        DEFAULT_AUTHORIZE_BODY.as_bytes().to_vec(),
        gzip_corrupt_after(&DEFAULT_AUTHORIZE_BODY.as_bytes()[..40]),
    ] {
        layercode.push(reply(bytes));
        let response = authorize();
        assert_eq!(response.status, 502, "{}", response.text());
        assert!(response.json()["error"].is_string(), "{}", response.text());
        assert!(
            !response.text().contains("lc_sesskey"),
            "{}",
            response.text()
        );
    }

    for request in layercode.requests() {
        assert_eq!(request.header("accept-encoding"), Some("identity"));
    }
    let after = authorize();
    assert_eq!(after.status, 200, "{}", after.text());
    assert!(!worker.logs().contains("Fatal uncaught"));
}
