//! `POST /agent` spoken turns against the real worker and a mock Gemini: streaming, framing,
//! the Gemini request, speech cleanup, and history (welcome, duplicates, barge-in, restarts).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test fails by panicking

mod common;
use common::*;

use serde_json::json;
use std::time::Duration;

const GAP: Duration = Duration::from_millis(400);

#[test]
fn reply_streams_while_gemini_is_still_writing() {
    use gemini_fixtures::{cued, text_event};
    let (gemini, _layercode, worker) = start_default();
    // The rest of the reply waits until the caller has heard its first words: a worker that
    // waited for the model to finish would never speak them (it would time out instead).
    let rest = Gate::new();
    gemini.push(cued(vec![
        (Cue::After(Duration::ZERO), text_event("The capital", None)),
        (Cue::Opened(rest.clone()), text_event(" of Wyoming", None)),
        (Cue::After(GAP), text_event(" is Cheyenne.", Some("STOP"))),
    ]));

    let mut stream = open_webhook(
        &worker,
        &message("conv_stream", "turn_1", "Capital of Wyoming?"),
    );
    let first = stream.next_event(TURN_TIMEOUT).expect("the first words");
    assert_eq!(
        first.raw,
        "data: {\"type\":\"response.tts\",\"content\":\"The capital\",\"turn_id\":\"turn_1\"}\n\n",
        "the first words, while the model has not sent the rest"
    );
    rest.open();
    let mut transcript = stream.read_all(TURN_TIMEOUT);
    transcript.events.insert(0, first);

    assert_well_formed_turn(&transcript, "turn_1");
    assert_eq!(
        transcript.types(),
        vec![
            "response.tts",
            "response.tts",
            "response.tts",
            "response.end"
        ]
    );
    assert_eq!(transcript.tts_text(), "The capital of Wyoming is Cheyenne.");
    assert_eq!(
        transcript.events[0].raw,
        "data: {\"type\":\"response.tts\",\"content\":\"The capital\",\"turn_id\":\"turn_1\"}\n\n"
    );
    assert_eq!(
        transcript.events[3].raw,
        "data: {\"type\":\"response.end\",\"turn_id\":\"turn_1\"}\n\n"
    );
    assert_eq!(
        transcript.header("cache-control"),
        Some("no-cache, no-transform")
    );
}

#[test]
fn gemini_request_carries_key_prompt_history_and_thinking_off() {
    let (gemini, _layercode, worker) = start_default();
    stream_webhook(&worker, &message("conv_req", "turn_1", "Hello there"));

    let requests = gemini.wait_for_requests(1, TURN_TIMEOUT);
    let request = &requests[0];
    assert_eq!(request.method, "POST");
    assert_eq!(
        request.path,
        "/v1beta/models/gemini-2.5-flash-lite:streamGenerateContent?alt=sse"
    );
    assert_eq!(request.header("x-goog-api-key"), Some(TEST_GEMINI_KEY));
    assert!(request
        .header("content-type")
        .unwrap_or_default()
        .starts_with("application/json"));
    let body = request.json();
    let prompt = body["systemInstruction"]["parts"][0]["text"]
        .as_str()
        .unwrap();
    assert!(
        prompt.contains("Never use markdown"),
        "default voice prompt: {prompt}"
    );
    assert_eq!(
        body["generationConfig"]["thinkingConfig"],
        json!({"thinkingBudget": 0})
    );
    assert_eq!(contents(&body), vec![turn("user", "Hello there")]);
}

#[test]
fn model_and_prompt_settings_shape_the_request() {
    let gemini = MockGemini::start();
    let layercode = MockLayercode::start();
    let worker = Worker::start(
        WorkerOptions::new(&gemini, &layercode)
            .var("GEMINI_MODEL", "gemini-3.1-flash-lite")
            .var("SYSTEM_PROMPT", "You are Ada, a ship's computer."),
    );
    stream_webhook(&worker, &message("conv_model", "turn_1", "Status?"));

    let request = &gemini.wait_for_requests(1, TURN_TIMEOUT)[0];
    assert_eq!(
        request.path,
        "/v1beta/models/gemini-3.1-flash-lite:streamGenerateContent?alt=sse"
    );
    let body = request.json();
    assert_eq!(
        body["generationConfig"]["thinkingConfig"],
        json!({"thinkingLevel": "MINIMAL"})
    );
    assert_eq!(
        body["systemInstruction"]["parts"][0]["text"],
        "You are Ada, a ship's computer."
    );
}

#[test]
fn markdown_and_emoji_never_reach_text_to_speech() {
    let (gemini, _layercode, worker) = start_default();
    gemini.push(gemini_fixtures::reply(
        &[
            "## Weather\n",
            "It is **sun",
            "ny** 🌞 today.\n- Bring `sun",
            "screen`\n- See [the forecast](https://example.com/f)",
            " 👍🏽.",
        ],
        Duration::from_millis(30),
    ));
    let transcript = stream_webhook(&worker, &message("conv_md", "turn_1", "Weather?"));

    assert_well_formed_turn(&transcript, "turn_1");
    let spoken = transcript.tts_text();
    assert_eq!(
        spoken,
        "Weather\nIt is sunny today.\nBring sunscreen\nSee the forecast."
    );

    // What is stored (and shown to the model next turn) is what was spoken.
    stream_webhook(&worker, &message("conv_md", "turn_2", "Thanks"));
    let requests = gemini.wait_for_requests(2, TURN_TIMEOUT);
    assert_eq!(
        contents(&requests[1].json()),
        vec![
            turn("user", "Weather?"),
            turn("model", &spoken),
            turn("user", "Thanks"),
        ]
    );
}

#[test]
fn welcome_is_spoken_stored_and_bridged_into_a_valid_request() {
    let (gemini, _layercode, worker) = start_default();
    let welcome = stream_webhook(&worker, &session_start("conv_welcome", "turn_w"));
    assert_well_formed_turn(&welcome, "turn_w");
    assert_eq!(welcome.types(), vec!["response.tts", "response.end"]);
    assert_eq!(welcome.tts_text(), "Hi! How can I help you today?");
    assert!(
        gemini.requests().is_empty(),
        "a welcome needs no model call"
    );

    stream_webhook(&worker, &message("conv_welcome", "turn_1", "What's new?"));
    let request = &gemini.wait_for_requests(1, TURN_TIMEOUT)[0];
    // Gemini needs a user turn first: the call start stands in before the greeting.
    assert_eq!(
        contents(&request.json()),
        vec![
            turn("user", CALL_STARTED_BRIDGE),
            turn("model", "Hi! How can I help you today?"),
            turn("user", "What's new?"),
        ]
    );
}

#[test]
fn empty_welcome_means_a_silent_session_start() {
    let gemini = MockGemini::start();
    let layercode = MockLayercode::start();
    let worker = Worker::start(WorkerOptions::new(&gemini, &layercode).var("WELCOME_MESSAGE", ""));
    let transcript = stream_webhook(&worker, &session_start("conv_silent", "turn_w"));
    assert_well_formed_turn(&transcript, "turn_w");
    assert_eq!(transcript.types(), vec!["response.end"]);

    stream_webhook(&worker, &message("conv_silent", "turn_1", "Hello?"));
    let request = &gemini.wait_for_requests(1, TURN_TIMEOUT)[0];
    assert_eq!(contents(&request.json()), vec![turn("user", "Hello?")]);
}

#[test]
fn history_follows_the_conversation_across_sessions_and_restarts() {
    let gemini = MockGemini::start();
    let layercode = MockLayercode::start();
    let worker = Worker::start(WorkerOptions::new(&gemini, &layercode));
    gemini.push(gemini_fixtures::reply(&["Nice to meet you, Sam."], GAP));
    stream_webhook(&worker, &message("conv_keep", "turn_1", "I am Sam"));
    // Another conversation must not see Sam.
    stream_webhook(&worker, &message("conv_other", "turn_1", "Who am I?"));
    let persist_dir = worker.persist_dir.clone();
    worker.stop();

    let worker = Worker::start(WorkerOptions::new(&gemini, &layercode).persist_to(&persist_dir));
    // A reconnect: new session_id, same conversation_id.
    let mut event = message("conv_keep", "turn_2", "What is my name?");
    event["session_id"] = json!("sess_reconnected");
    stream_webhook(&worker, &event);

    let requests = gemini.wait_for_requests(3, TURN_TIMEOUT);
    assert_eq!(
        contents(&requests[1].json()),
        vec![turn("user", "Who am I?")]
    );
    assert_eq!(
        contents(&requests[2].json()),
        vec![
            turn("user", "I am Sam"),
            turn("model", "Nice to meet you, Sam."),
            turn("user", "What is my name?"),
        ]
    );
}

#[test]
fn a_duplicate_delivery_is_answered_once_and_stored_once() {
    let (gemini, _layercode, worker) = start_default();
    let first = stream_webhook(&worker, &message("conv_dup", "turn_1", "Hi"));
    assert_eq!(first.tts_text(), DEFAULT_GEMINI_TEXT);

    // Layercode redelivers a turn whose answer it did not get: the stored reply is said again,
    // without a second model call.
    let again = stream_webhook(&worker, &message("conv_dup", "turn_1", "Hi"));
    assert_well_formed_turn(&again, "turn_1");
    assert_eq!(again.types(), vec!["response.tts", "response.end"]);
    assert_eq!(again.tts_text(), DEFAULT_GEMINI_TEXT);
    let line = worker.wait_for_log("\"outcome\":\"redelivered\"", TURN_TIMEOUT);
    assert!(line.contains("\"turn_id\":\"turn_1\""), "{line}");

    stream_webhook(&worker, &message("conv_dup", "turn_2", "Still there?"));
    let requests = gemini.wait_for_requests(2, TURN_TIMEOUT);
    assert_eq!(requests.len(), 2, "the duplicate made no model call");
    assert_eq!(
        contents(&requests[1].json()),
        vec![
            turn("user", "Hi"),
            turn("model", DEFAULT_GEMINI_TEXT),
            turn("user", "Still there?"),
        ]
    );
}

/// A long reply, one word every 150 ms, so a barge-in lands mid-stream: a minute of words, so
/// that it is still streaming when the worker aborts it, however late that comes on a loaded
/// machine (with 40 words, 6 s, an abort later than that found the stream complete instead).
fn slow_long_reply() -> GeminiReply {
    let parts = slow_long_parts();
    let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
    gemini_fixtures::reply(&parts, Duration::from_millis(150))
}

fn slow_long_parts() -> Vec<String> {
    std::iter::once("Once upon a time,".to_string())
        .chain((1..=400).map(|i| format!(" word{i}")))
        .collect()
}

#[test]
fn barge_in_aborts_gemini_and_keeps_what_was_sent() {
    let (gemini, _layercode, worker) = start_default();
    gemini.push(slow_long_reply());
    let mut stream = open_webhook(&worker, &message("conv_barge", "turn_1", "Tell me a story"));
    let mut heard = String::new();
    for _ in 0..3 {
        let event = stream.next_event(TURN_TIMEOUT).expect("tts event");
        heard.push_str(event.json["content"].as_str().unwrap());
    }
    stream.disconnect();
    assert!(
        gemini.client_disconnected(0, TURN_TIMEOUT),
        "the worker aborted its Gemini fetch after the caller hung up"
    );

    // No interruption context arrives (say the user typed): the partial reply is what was sent.
    stream_webhook(&worker, &message("conv_barge", "turn_2", "Go on"));
    let requests = gemini.wait_for_requests(2, TURN_TIMEOUT);
    let history = contents(&requests[1].json());
    assert_eq!(history.len(), 3, "{history:?}");
    assert_eq!(history[0], turn("user", "Tell me a story"));
    assert_eq!(history[2], turn("user", "Go on"));
    let (role, stored) = &history[1];
    assert_eq!(role, "model");
    assert!(
        stored.starts_with(&heard),
        "stored {stored:?} begins with heard {heard:?}"
    );
    assert!(
        stored.len() < slow_long_parts().concat().len(),
        "only part of the reply was stored: {stored:?}"
    );
}

#[test]
fn interruption_context_makes_the_reply_exactly_what_was_heard() {
    let (gemini, _layercode, worker) = start_default();
    stream_webhook(&worker, &message("conv_ctx", "turn_1", "Hi"));
    gemini.push(slow_long_reply());
    let mut stream = open_webhook(&worker, &message("conv_ctx", "turn_2", "Tell me a story"));
    let first = stream.next_event(TURN_TIMEOUT).expect("first words");
    assert_eq!(first.json["content"], "Once upon a time,");
    stream.disconnect();

    let third = stream_webhook(
        &worker,
        &interrupted_message(
            "conv_ctx",
            "turn_3",
            "Actually, a poem",
            "turn_2",
            "Once upon",
        ),
    );
    assert_well_formed_turn(&third, "turn_3");
    let requests = gemini.wait_for_requests(3, TURN_TIMEOUT);
    let expected = vec![
        turn("user", "Hi"),
        turn("model", DEFAULT_GEMINI_TEXT),
        turn("user", "Tell me a story"),
        turn("model", "Once upon"),
        turn("user", "Actually, a poem"),
    ];
    assert_eq!(contents(&requests[2].json()), expected);

    // The interrupted turn's own late bookkeeping must not overwrite what was heard. Its log
    // line is written once that bookkeeping is done: without waiting for it, the next turn
    // could be read before the bookkeeping happened, and the check would prove nothing.
    assert!(gemini.client_disconnected(1, TURN_TIMEOUT));
    worker.wait_for_log(
        "\"conversation_id\":\"conv_ctx\",\"turn_id\":\"turn_2\"",
        TURN_TIMEOUT,
    );
    stream_webhook(&worker, &message("conv_ctx", "turn_4", "Thanks"));
    let requests = gemini.wait_for_requests(4, TURN_TIMEOUT);
    let history = contents(&requests[3].json());
    assert_eq!(history[3], turn("model", "Once upon"));

    // For the record: the third turn as Layercode received it, and what Gemini was sent.
    println!("third turn stream:\n{}", third.raw_body);
    println!(
        "third turn Gemini request:\n{}",
        serde_json::to_string_pretty(&requests[2].json()).unwrap()
    );
}

#[test]
fn an_interrupted_welcome_becomes_what_was_heard() {
    let (gemini, _layercode, worker) = start_default();
    stream_webhook(&worker, &session_start("conv_w_int", "turn_w"));
    stream_webhook(
        &worker,
        &interrupted_message("conv_w_int", "turn_1", "Yes hello", "turn_w", "Hi! How"),
    );
    let request = &gemini.wait_for_requests(1, TURN_TIMEOUT)[0];
    assert_eq!(
        contents(&request.json()),
        vec![
            turn("user", CALL_STARTED_BRIDGE),
            turn("model", "Hi! How"),
            turn("user", "Yes hello"),
        ]
    );
}

#[test]
fn gemini_sse_is_parsed_whatever_the_network_chunking() {
    let (gemini, _layercode, worker) = start_default();
    let fixtures = [
        ("lf", gemini_fixtures::wyoming_fixture_lf()),
        ("crlf", gemini_fixtures::wyoming_fixture_crlf()),
    ];
    let mut turn_number = 0;
    for (name, bytes) in &fixtures {
        // Splits that cut CRLF pairs, separators and multi-byte sequences at many offsets.
        for piece_len in [1, 2, 3, 7, 64] {
            turn_number += 1;
            gemini.push(gemini_fixtures::raw_split(bytes, piece_len, Duration::ZERO));
            let turn_id = format!("turn_{turn_number}");
            let transcript = stream_webhook(
                &worker,
                &message(
                    &format!("conv_split_{name}_{piece_len}"),
                    &turn_id,
                    "Capital?",
                ),
            );
            assert_well_formed_turn(&transcript, &turn_id);
            assert_eq!(
                transcript.tts_text(),
                "The capital of Wyoming is Cheyenne.",
                "{name} framing in {piece_len}-byte pieces"
            );
        }
    }
}

#[test]
fn multibyte_text_split_inside_characters_arrives_intact() {
    let (gemini, _layercode, worker) = start_default();
    let event =
        gemini_fixtures::text_event("Café au lait, s'il vous plaît — 日本語もOK.", Some("STOP"));
    let bytes = format!("data: {event}\r\n\r\n").into_bytes();
    gemini.push(gemini_fixtures::raw_split(&bytes, 1, Duration::ZERO));
    let transcript = stream_webhook(&worker, &message("conv_utf8", "turn_1", "Say something"));
    assert_eq!(
        transcript.tts_text(),
        "Café au lait, s'il vous plaît — 日本語もOK."
    );
}

#[test]
fn history_sent_to_gemini_stays_bounded() {
    let (gemini, _layercode, worker) = start_default();
    for i in 1..=25 {
        stream_webhook(
            &worker,
            &message("conv_long", &format!("turn_{i}"), &format!("question {i}")),
        );
    }
    // Every turn has ended, so its request has arrived; a summary call may have too (its window
    // is the subject of tests/memory.rs).
    let requests: Vec<_> = gemini
        .wait_for_requests(25, TURN_TIMEOUT)
        .into_iter()
        .filter(|r| !is_summary_request(&r.json()))
        .collect();
    assert_eq!(requests.len(), 25);
    let last = contents(&requests[24].json());
    // 49 stored messages; the newest 40 start with a reply whose question fell out of the
    // window, so that reply is dropped too and the window starts with a question.
    assert_eq!(last.len(), 39, "{last:?}");
    assert_eq!(last[0], turn("user", "question 6"));
    assert_eq!(last[1], turn("model", DEFAULT_GEMINI_TEXT));
    assert_eq!(last.last().unwrap(), &turn("user", "question 25"));
}

#[test]
fn each_turn_logs_one_line_without_speech_or_secrets() {
    let (gemini, _layercode, worker) = start_default();
    gemini.push(gemini_fixtures::reply(&["Sure thing."], GAP));
    stream_webhook(
        &worker,
        &message("conv_log", "turn_log", "my secret passphrase is swordfish"),
    );
    let entry = worker.turn_log("turn_log");
    assert_eq!(entry["event"], "turn");
    assert_eq!(entry["type"], "message");
    assert_eq!(entry["conversation_id"], "conv_log");
    assert_eq!(entry["gemini_status"], 200);
    assert_eq!(entry["chars_out"], "Sure thing.".len());
    assert_eq!(entry["interrupted"], false);
    assert_eq!(entry["outcome"], "complete");
    assert!(entry["ms_to_first_tts"].as_u64().is_some());
    assert!(entry["total_ms"].as_u64().is_some());

    let logs = worker.logs();
    for secret in [
        TEST_GEMINI_KEY,
        TEST_WEBHOOK_SECRET,
        TEST_LAYERCODE_API_KEY,
        "swordfish",
    ] {
        assert!(!logs.contains(secret), "{secret} leaked into the log");
    }
}

#[test]
fn every_barge_in_stores_its_turn_and_logs_no_errors() {
    // Regression: after a client disconnect, workerd sometimes left the SSE write pending and
    // then cancelled the turn as hung, so about one barge-in in three lost its stored reply and
    // its log line.
    let (gemini, _layercode, worker) = start_default();
    let conversations = 20;
    for i in 0..conversations {
        let words: Vec<String> = (1..=40).map(|w| format!(" w{w}")).collect();
        let parts: Vec<&str> = words.iter().map(String::as_str).collect();
        gemini.push(gemini_fixtures::reply(&parts, Duration::from_millis(15)));
        let mut stream = open_webhook(&worker, &message(&format!("conv_bi_{i}"), "turn_1", "Go"));
        for _ in 0..(1 + i % 4) {
            stream.next_event(TURN_TIMEOUT).expect("tts event");
        }
        stream.disconnect();
    }
    for i in 0..conversations {
        let conversation = format!("conv_bi_{i}");
        worker.wait_for_log(
            &format!("\"conversation_id\":\"{conversation}\""),
            TURN_TIMEOUT,
        );
        stream_webhook(&worker, &message(&conversation, "turn_2", "And?"));
        let request = gemini.requests().pop().expect("a follow-up request");
        let history = contents(&request.json());
        assert_eq!(history.len(), 3, "{conversation}: {history:?}");
        assert!(
            history[1].0 == "model" && history[1].1.starts_with("w1"),
            "{conversation}: the partial reply was stored: {history:?}"
        );
    }
    assert!(
        !worker.logs().contains("hung"),
        "a turn was cancelled as hung"
    );
}

#[test]
fn a_redelivered_turn_does_not_reapply_its_interruption_context() {
    // Without an assistant_turn_id the context applies to the latest reply. On a redelivery that
    // is the redelivered turn's own reply, which must not be rewritten.
    let (gemini, _layercode, worker) = start_default();
    stream_webhook(&worker, &message("conv_redeliver", "turn_1", "Hi"));
    let mut second = message("conv_redeliver", "turn_2", "Wait");
    second["interruption_context"] =
        json!({"previous_turn_interrupted": true, "words_heard": 1, "text_heard": "Hel"});
    stream_webhook(&worker, &second);
    let again = stream_webhook(&worker, &second);
    assert_eq!(
        again.tts_text(),
        DEFAULT_GEMINI_TEXT,
        "the stored reply, said again"
    );
    stream_webhook(&worker, &message("conv_redeliver", "turn_3", "Go on"));

    let requests = gemini.wait_for_requests(3, TURN_TIMEOUT);
    assert_eq!(
        contents(&requests[2].json()),
        vec![
            turn("user", "Hi"),
            turn("model", "Hel"),
            turn("user", "Wait"),
            turn("model", DEFAULT_GEMINI_TEXT),
            turn("user", "Go on"),
        ]
    );
}
