//! Signed Layercode webhooks sent to a test worker, and the event bodies tests use most.

use super::http::{post_json, HttpResponse, SseClient, SseTranscript};
use super::signing::{sign_now, SIGNATURE_HEADER};
use super::spoken::STILL_CHECKING;
use super::worker::{Worker, TEST_WEBHOOK_SECRET};
use serde_json::{json, Value};
use std::time::Duration;

/// How long a whole turn may take in tests before the read gives up.
pub const TURN_TIMEOUT: Duration = Duration::from_secs(30);

/// A `message` event.
pub fn message(conversation_id: &str, turn_id: &str, text: &str) -> Value {
    json!({
        "type": "message",
        "session_id": "sess_test",
        "conversation_id": conversation_id,
        "turn_id": turn_id,
        "text": text,
    })
}

/// A `message` event carrying the interruption context of the previous assistant turn.
pub fn interrupted_message(
    conversation_id: &str,
    turn_id: &str,
    text: &str,
    interrupted_turn_id: &str,
    text_heard: &str,
) -> Value {
    let mut event = message(conversation_id, turn_id, text);
    event["interruption_context"] = json!({
        "previous_turn_interrupted": true,
        "words_heard": text_heard.split_whitespace().count(),
        "text_heard": text_heard,
        "assistant_turn_id": interrupted_turn_id,
    });
    event
}

/// A `session.start` event.
pub fn session_start(conversation_id: &str, turn_id: &str) -> Value {
    json!({
        "type": "session.start",
        "session_id": "sess_test",
        "conversation_id": conversation_id,
        "turn_id": turn_id,
    })
}

/// Opens a webhook signed with the test secret and returns the streaming reader.
pub fn open_webhook(worker: &Worker, event: &Value) -> SseClient {
    let body = event.to_string();
    open_signed(
        worker,
        "/agent",
        &sign_now(TEST_WEBHOOK_SECRET, &body),
        &body,
    )
}

/// Sends a signed webhook and hangs up before any byte of the answer arrives.
pub fn hang_up_right_after_sending(worker: &Worker, event: &Value) {
    let body = event.to_string();
    let signature = sign_now(TEST_WEBHOOK_SECRET, &body);
    let headers = [
        ("content-type", "application/json"),
        (SIGNATURE_HEADER, signature.as_str()),
    ];
    super::http::send_then_hang_up("POST", &worker.url("/agent"), &headers, body.as_bytes());
}

/// Opens `path` with exactly this `layercode-signature` header and body.
pub fn open_signed(worker: &Worker, path: &str, signature: &str, body: &str) -> SseClient {
    SseClient::open_json(&worker.url(path), &[(SIGNATURE_HEADER, signature)], body)
}

/// Sends a signed webhook that answers SSE and reads it to the end.
pub fn stream_webhook(worker: &Worker, event: &Value) -> SseTranscript {
    open_webhook(worker, event).read_all(TURN_TIMEOUT)
}

/// Sends a signed webhook that answers plain JSON.
pub fn post_webhook(worker: &Worker, event: &Value) -> HttpResponse {
    let body = event.to_string();
    let signature = sign_now(TEST_WEBHOOK_SECRET, &body);
    post_json(
        &worker.url("/agent"),
        &[(SIGNATURE_HEADER, signature.as_str())],
        &body,
    )
}

/// Asserts the protocol invariants of every SSE turn: 200, `text/event-stream`, every event a
/// `data: {json}\n\n` frame carrying the turn id, exactly one `response.end`, last.
pub fn assert_well_formed_turn(transcript: &SseTranscript, turn_id: &str) {
    assert_eq!(transcript.status, 200, "body: {}", transcript.raw_body);
    assert_eq!(transcript.header("content-type"), Some("text/event-stream"));
    assert_eq!(transcript.header("content-length"), None);
    assert!(
        transcript.error.is_none(),
        "body cut: {:?}",
        transcript.error
    );
    let types = transcript.types();
    assert_eq!(
        types.iter().filter(|t| *t == "response.end").count(),
        1,
        "exactly one response.end: {types:?}"
    );
    assert_eq!(types.last().map(String::as_str), Some("response.end"));
    let mut framed = String::new();
    for event in &transcript.events {
        assert_eq!(
            event.json["turn_id"], turn_id,
            "turn_id echoed: {}",
            event.raw
        );
        assert!(
            event.raw.starts_with("data: {") && event.raw.ends_with("}\n\n"),
            "frame: {:?}",
            event.raw
        );
        assert_eq!(
            event.raw.matches('\n').count(),
            2,
            "one-line JSON: {:?}",
            event.raw
        );
        framed.push_str(&event.raw);
    }
    assert_eq!(
        framed, transcript.raw_body,
        "nothing but frames in the body"
    );
}

/// The Gemini `contents` of a recorded request as (role, text) pairs.
pub fn contents(request_json: &Value) -> Vec<(String, String)> {
    request_json["contents"]
        .as_array()
        .expect("contents array")
        .iter()
        .map(|c| {
            let parts = c["parts"].as_array().expect("parts");
            assert_eq!(parts.len(), 1, "one text part per turn: {c}");
            (
                c["role"].as_str().expect("role").to_string(),
                parts[0]["text"].as_str().expect("text").to_string(),
            )
        })
        .collect()
}

/// Shorthand for building expected `contents`.
pub fn turn(role: &str, text: &str) -> (String, String) {
    (role.to_string(), text.to_string())
}

/// What a tool turn said, without the [`STILL_CHECKING`] lines. The worker says that line when a
/// round of calls has run for 2 s, and whether a call to a loopback endpoint that answers at once
/// takes that long is up to the machine: a test that is not about the line takes it out of what
/// it compares. Not blindly: each line taken out must belong to a round whose slowest call took
/// at least 2 s by the worker's own clock (its log line for the turn says so), since the line
/// for a quicker round would be a defect.
pub fn without_still_checking(
    worker: &Worker,
    conversation_id: &str,
    turn_id: &str,
    spoken: &str,
) -> String {
    let line = format!(" {STILL_CHECKING}");
    let said = spoken.matches(&line).count();
    if said == 0 {
        return spoken.to_string();
    }
    let log = worker.wait_for_log(
        &format!("\"conversation_id\":\"{conversation_id}\",\"turn_id\":\"{turn_id}\""),
        TURN_TIMEOUT,
    );
    let entry: Value = serde_json::from_str(&log[log.find('{').unwrap_or(0)..])
        .unwrap_or_else(|e| panic!("turn line is not JSON ({e}): {log}"));
    assert!(
        slow_rounds(&entry) >= said,
        "{STILL_CHECKING:?} said {said} time(s), but not after 2 s of calls: {spoken:?}\n{log}"
    );
    spoken.replace(&line, "")
}

/// The rounds of a turn's log line whose slowest call took at least the 2 s after which the
/// worker says [`STILL_CHECKING`].
pub fn slow_rounds(turn_line: &Value) -> usize {
    let mut slowest: std::collections::BTreeMap<u64, u64> = Default::default();
    for call in turn_line["tool_calls"].as_array().into_iter().flatten() {
        let round = call["round"].as_u64().unwrap_or_default();
        let ms = call["ms"].as_u64().unwrap_or_default();
        let entry = slowest.entry(round).or_default();
        *entry = (*entry).max(ms);
    }
    slowest.values().filter(|ms| **ms >= 2000).count()
}
