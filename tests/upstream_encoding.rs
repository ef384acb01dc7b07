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
    GeminiReply::Encoded {
        encoding: "gzip".into(),
        pieces: pieces
            .into_iter()
            .map(|piece| (Cue::After(Duration::from_millis(300)), piece))
            .collect(),
    }
}

#[test]
fn a_gzip_labelled_gemini_body_costs_only_its_own_turn() {
    use gemini_fixtures::text_event;
    let gemini = MockGemini::start();
    let layercode = MockLayercode::start();
    let worker = Worker::start(WorkerOptions::new(&gemini, &layercode));
    let cases = [
        (
            "valid gzip is decoded",
            encoded(vec![gzip(&sse_event(&text_event(
                "Hello there.",
                Some("STOP"),
            )))]),
            "Hello there.".to_string(),
        ),
        (
            "labelled gzip, body not gzip",
            encoded(vec![sse_event(&text_event("Hello there.", Some("STOP")))]),
            APOLOGY_BEFORE.to_string(),
        ),
        (
            "gzip corrupt after the first event, in the same network chunk",
            encoded(vec![gzip_corrupt_after(&sse_event(&text_event(
                "The answer is",
                None,
            )))]),
            APOLOGY_BEFORE.to_string(),
        ),
        (
            "gzip corrupt after the first event, in a later network chunk",
            encoded(vec![
                gzip_start(&sse_event(&text_event("The answer is", None))),
                CORRUPT_BLOCK.to_vec(),
            ]),
            format!("The answer is {APOLOGY_MID}"),
        ),
    ];
    for (i, (name, reply, heard)) in cases.into_iter().enumerate() {
        gemini.push(reply);
        let turn_id = format!("turn_{i}");
        let transcript = stream_webhook(&worker, &message("conv_gzip", &turn_id, "Question?"));
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
