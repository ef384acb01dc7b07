//! A failing Gemini never leaves the caller in silence: every fault ends with a short spoken
//! apology and `response.end` on a 200 stream, and history keeps the user turn and no garbage.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test fails by panicking

mod common;
use common::*;

use std::time::Duration;

/// The silence limit of the cases that end by reaching it: shorter than the default so they
/// finish sooner, and still long enough that the words sent before the silence ("Let me
/// think") are heard first even after a stall of seconds (with 1.5 s, a stall of about that long
/// before them turned the mid-reply apology into the one before any reply).
const TIMEOUT_MS: &str = "5000";
/// The other cases run with the default limit (10 s), which they never reach: there a short one
/// could only be reached by a slow machine, and a retry needs half a second of it left (with
/// 1.5 s, a first attempt slowed past 1 s meant no retry and the wrong outcome).
const DEFAULT_TIMEOUT_MS: &str = "10000";
/// The hanging-Gemini test has nothing to hear before the limit, so it may be short.
const HANG_TIMEOUT_MS: &str = "1500";

struct Case {
    name: &'static str,
    replies: Vec<GeminiReply>,
    /// What the caller hears, apology included.
    heard: String,
    /// How many requests Gemini should receive (2 = one retry).
    requests: usize,
    /// The case ends by reaching the silence limit ([`TIMEOUT_MS`]).
    times_out: bool,
}

fn stream_of(events: Vec<String>, then: StreamEnd) -> GeminiReply {
    GeminiReply::Stream {
        events: events.into_iter().map(|e| (Duration::ZERO, e)).collect(),
        framing: Framing::Lf,
        then,
    }
}

fn cases() -> Vec<Case> {
    use gemini_fixtures::*;
    let overloaded = || {
        error_reply(
            503,
            "UNAVAILABLE",
            "The model is overloaded. Please try again later.",
        )
    };
    vec![
        Case {
            name: "503 then success is retried once, silently",
            replies: vec![overloaded(), reply(&["Back again."], Duration::ZERO)],
            heard: "Back again.".into(),
            requests: 2,
            times_out: false,
        },
        Case {
            name: "429 twice: one retry, then an apology",
            replies: vec![
                error_reply(
                    429,
                    "RESOURCE_EXHAUSTED",
                    "Resource has been exhausted (e.g. check quota).",
                ),
                error_reply(
                    429,
                    "RESOURCE_EXHAUSTED",
                    "Resource has been exhausted (e.g. check quota).",
                ),
            ],
            heard: APOLOGY_BEFORE.into(),
            requests: 2,
            times_out: false,
        },
        Case {
            name: "400 invalid key is not retried",
            replies: vec![error_reply(
                400,
                "INVALID_ARGUMENT",
                "API key not valid. Please pass a valid API key.",
            )],
            heard: APOLOGY_BEFORE.into(),
            requests: 1,
            times_out: false,
        },
        Case {
            name: "404 retired model is not retried",
            replies: vec![error_reply(
                404,
                "NOT_FOUND",
                "models/gemini-x is not found for API version v1beta",
            )],
            heard: APOLOGY_BEFORE.into(),
            requests: 1,
            times_out: false,
        },
        Case {
            name: "error inside the stream after some words",
            replies: vec![stream_of(
                vec![
                    text_event("The answer is", None),
                    error_event(500, "INTERNAL", "An internal error has occurred."),
                ],
                StreamEnd::Close,
            )],
            heard: format!("The answer is {APOLOGY_MID}"),
            requests: 1,
            times_out: false,
        },
        Case {
            name: "blocked prompt",
            replies: vec![stream_of(
                vec![blocked_prompt_event("SAFETY")],
                StreamEnd::Close,
            )],
            heard: APOLOGY_BEFORE.into(),
            requests: 1,
            times_out: false,
        },
        Case {
            name: "safety stop with no text",
            replies: vec![stream_of(
                vec![finish_only_event("SAFETY")],
                StreamEnd::Close,
            )],
            heard: APOLOGY_BEFORE.into(),
            requests: 1,
            times_out: false,
        },
        Case {
            name: "a reply of punctuation only is nothing heard",
            replies: vec![stream_of(
                vec![text_event("…...", Some("STOP"))],
                StreamEnd::Close,
            )],
            heard: format!("…... {APOLOGY_BEFORE}"),
            requests: 1,
            times_out: false,
        },
        Case {
            name: "a safety stop after half a sentence ends with a close",
            replies: vec![stream_of(
                vec![
                    text_event("The recipe needs", None),
                    finish_only_event("SAFETY"),
                ],
                StreamEnd::Close,
            )],
            heard: format!("The recipe needs {CLOSE_AFTER_CUT}"),
            requests: 1,
            times_out: false,
        },
        Case {
            name: "body ends without finishReason (truncated)",
            replies: vec![stream_of(
                vec![text_event("Half a", None)],
                StreamEnd::Close,
            )],
            heard: format!("Half a {APOLOGY_MID}"),
            requests: 1,
            times_out: false,
        },
        Case {
            name: "no answer at all within GEMINI_TIMEOUT_MS",
            replies: vec![GeminiReply::Hang],
            heard: APOLOGY_BEFORE.into(),
            requests: 1,
            times_out: true,
        },
        Case {
            name: "silence mid-stream longer than GEMINI_TIMEOUT_MS",
            replies: vec![stream_of(
                vec![text_event("Let me think", None)],
                StreamEnd::Hang,
            )],
            heard: format!("Let me think {APOLOGY_MID}"),
            requests: 1,
            times_out: true,
        },
    ]
}

#[test]
fn every_gemini_fault_ends_with_speech_and_response_end() {
    let (timing_out, others): (Vec<Case>, Vec<Case>) =
        cases().into_iter().partition(|c| c.times_out);
    // Two workers side by side (a panic in either fails the test).
    std::thread::scope(|scope| {
        scope.spawn(|| run_cases(timing_out, TIMEOUT_MS, "conv_fault_timeout"));
        run_cases(others, DEFAULT_TIMEOUT_MS, "conv_fault");
    });
}

/// Runs each case as a turn, then a second turn that shows what was stored, against one worker
/// with this silence limit.
fn run_cases(cases: Vec<Case>, timeout_ms: &str, conversation_prefix: &str) {
    let gemini = MockGemini::start();
    let layercode = MockLayercode::start();
    let worker =
        Worker::start(WorkerOptions::new(&gemini, &layercode).var("GEMINI_TIMEOUT_MS", timeout_ms));
    let mut seen_requests = 0;
    for (i, case) in cases.into_iter().enumerate() {
        for reply in case.replies {
            gemini.push(reply);
        }
        let conversation = format!("{conversation_prefix}_{i}");
        let transcript = stream_webhook(&worker, &message(&conversation, "turn_1", "Question?"));
        assert_well_formed_turn(&transcript, "turn_1");
        assert_eq!(transcript.tts_text(), case.heard, "{}", case.name);
        seen_requests += case.requests;
        let requests = gemini.wait_for_requests(seen_requests, TURN_TIMEOUT);
        assert_eq!(
            requests.len(),
            seen_requests,
            "{}: request count",
            case.name
        );

        // The next turn sees the question and what the caller heard, apology included, so a
        // failure caused by the question itself is not merged into every later one.
        stream_webhook(&worker, &message(&conversation, "turn_2", "Hello?"));
        seen_requests += 1;
        let requests = gemini.wait_for_requests(seen_requests, TURN_TIMEOUT);
        let history = contents(&requests[seen_requests - 1].json());
        let expected = vec![
            turn("user", "Question?"),
            turn("model", &case.heard),
            turn("user", "Hello?"),
        ];
        assert_eq!(history, expected, "{}: history", case.name);
    }
}

#[test]
fn a_hanging_gemini_is_aborted_after_the_timeout() {
    let gemini = MockGemini::start();
    let layercode = MockLayercode::start();
    let worker = Worker::start(
        WorkerOptions::new(&gemini, &layercode).var("GEMINI_TIMEOUT_MS", HANG_TIMEOUT_MS),
    );
    gemini.push(GeminiReply::Hang);
    let transcript = stream_webhook(&worker, &message("conv_hang", "turn_1", "Hello?"));
    assert_eq!(transcript.tts_text(), APOLOGY_BEFORE);
    let apology_at = transcript.events[0].at;
    assert!(
        apology_at >= Duration::from_millis(1400),
        "the apology waits for the timeout: {apology_at:?}"
    );
    assert!(
        gemini.client_disconnected(0, TURN_TIMEOUT),
        "the Gemini request was aborted, not left hanging"
    );
    let log = worker.wait_for_log("\"turn_id\":\"turn_1\"", TURN_TIMEOUT);
    assert!(log.contains("\"ending\":\"timeout\""), "{log}");
}

#[test]
fn a_missing_gemini_key_is_logged_clearly_and_the_turn_still_ends() {
    let gemini = MockGemini::start();
    let layercode = MockLayercode::start();
    let worker = Worker::start(
        WorkerOptions::new(&gemini, &layercode).without_secret("GOOGLE_GENERATIVE_AI_API_KEY"),
    );
    let transcript = stream_webhook(&worker, &message("conv_nokey", "turn_1", "Hello?"));
    assert_well_formed_turn(&transcript, "turn_1");
    assert_eq!(transcript.tts_text(), APOLOGY_BEFORE);
    assert!(gemini.requests().is_empty(), "no call without a key");
    worker.wait_for_log("GOOGLE_GENERATIVE_AI_API_KEY is not set", TURN_TIMEOUT);
}

#[test]
fn upstream_error_codes_reach_the_log_but_never_the_message_or_key() {
    let gemini = MockGemini::start();
    let layercode = MockLayercode::start();
    let worker = Worker::start(WorkerOptions::new(&gemini, &layercode));
    gemini.push(gemini_fixtures::error_reply(
        404,
        "NOT_FOUND",
        &format!("models/gemini-x is not found (key {TEST_GEMINI_KEY})"),
    ));
    stream_webhook(&worker, &message("conv_404", "turn_1", "Hello?"));
    let line = worker.wait_for_log("\"turn_id\":\"turn_1\"", TURN_TIMEOUT);
    assert!(line.contains("\"gemini_status\":404"), "{line}");
    // Codes only: Google's message can quote the request (issue 11 item 12).
    assert!(
        line.contains("\"gemini_error\":\"404 NOT_FOUND\""),
        "{line}"
    );
    assert!(!line.contains("models/gemini-x"), "{line}");
    assert!(!worker.logs().contains(TEST_GEMINI_KEY));
}
