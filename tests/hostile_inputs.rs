//! Hostile and broken input, as a table: every row has the status it must get, and none may
//! store anything it should not, call Gemini when rejected, or break the SSE framing.
//! The same table is in RELIABILITY.md.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test fails by panicking

mod common;
use common::*;

use layercode_gemini_worker::signature;
use serde_json::json;
use std::time::Duration;

const LIMIT: usize = 1024 * 1024;

/// One request of the table.
struct Row {
    name: &'static str,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    status: u16,
    /// Whether Gemini may be called for this row.
    reaches_gemini: bool,
}

fn signed_row(name: &'static str, body: Vec<u8>, status: u16, reaches_gemini: bool) -> Row {
    let header = signature::sign(TEST_WEBHOOK_SECRET, now_secs(), &body);
    Row {
        name,
        headers: vec![(SIGNATURE_HEADER.to_string(), header)],
        body,
        status,
        reaches_gemini,
    }
}

fn with_signature(name: &'static str, body: Vec<u8>, header: String, status: u16) -> Row {
    Row {
        name,
        headers: vec![(SIGNATURE_HEADER.to_string(), header)],
        body,
        status,
        reaches_gemini: false,
    }
}

/// Chunked transfer encoding, so the size is not declared up front.
fn chunked(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for piece in body.chunks(64 * 1024) {
        out.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        out.extend_from_slice(piece);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

fn message_with_text(len: usize) -> Vec<u8> {
    let prefix = r#"{"type":"message","conversation_id":"conv_big","turn_id":"t","text":""#;
    let suffix = r#""}"#;
    let fill = len - prefix.len() - suffix.len();
    format!("{prefix}{}{suffix}", "a".repeat(fill)).into_bytes()
}

fn rows() -> Vec<Row> {
    let message = |turn: &str| message("conv_hostile", turn, "Hi").to_string().into_bytes();
    let now = now_secs();
    let sign_at = |t: u64, body: &[u8]| signature::sign(TEST_WEBHOOK_SECRET, t, body);
    let mut oversize_chunked = signed_row(
        "1 MiB + 1 byte, chunked (no length)",
        Vec::new(),
        413,
        false,
    );
    let big = message_with_text(LIMIT + 1);
    oversize_chunked
        .headers
        .push(("Transfer-Encoding".into(), "chunked".into()));
    oversize_chunked.headers[0].1 = signature::sign(TEST_WEBHOOK_SECRET, now, &big);
    oversize_chunked.body = chunked(&big);

    let huge_data = {
        let items = vec![json!({"k": "v"}); 60_000];
        json!({"type": "data", "conversation_id": "c", "turn_id": "t", "data": items})
            .to_string()
            .into_bytes()
    };
    assert!(huge_data.len() < LIMIT && huge_data.len() > 500_000);

    vec![
        signed_row("1 MiB + 1 byte, declared length", message_with_text(LIMIT + 1), 413, false),
        oversize_chunked,
        signed_row("huge but allowed JSON (data event, ~0.7 MB)", huge_data, 200, false),
        signed_row(
            "deeply nested JSON (20 000 levels)",
            format!(r#"{{"type":"data","data":{}{}}}"#, "[".repeat(20_000), "]".repeat(20_000))
                .into_bytes(),
            400,
            false,
        ),
        signed_row(
            "invalid UTF-8 inside a string",
            b"{\"type\":\"message\",\"conversation_id\":\"c\",\"turn_id\":\"t\",\"text\":\"\xc3\x28\"}"
                .to_vec(),
            400,
            false,
        ),
        signed_row("empty body", Vec::new(), 400, false),
        signed_row(
            "conversation_id of 10 000 bytes",
            json!({"type":"message","conversation_id":"c".repeat(10_000),"turn_id":"t","text":"hi"})
                .to_string()
                .into_bytes(),
            400,
            false,
        ),
        signed_row(
            "turn_id of 10 000 bytes",
            json!({"type":"message","conversation_id":"c","turn_id":"t".repeat(10_000),"text":"hi"})
                .to_string()
                .into_bytes(),
            400,
            false,
        ),
        signed_row(
            "interruption_context.assistant_turn_id of 10 000 bytes",
            json!({"type":"message","conversation_id":"c","turn_id":"t","text":"hi",
                   "interruption_context":{"previous_turn_interrupted":true,"words_heard":1,
                                           "text_heard":"Hi","assistant_turn_id":"a".repeat(10_000)}})
            .to_string()
            .into_bytes(),
            400,
            false,
        ),
        signed_row(
            "session_id of 10 000 bytes",
            json!({"type":"session.start","conversation_id":"c","session_id":"s".repeat(10_000)})
                .to_string()
                .into_bytes(),
            400,
            false,
        ),
        signed_row(
            "type of 10 000 bytes",
            json!({"type":"x".repeat(10_000),"conversation_id":"c"}).to_string().into_bytes(),
            400,
            false,
        ),
        with_signature(
            "signature dated 10 minutes ahead",
            message("turn_future"),
            sign_at(now + 600, &message("turn_future")),
            401,
        ),
        with_signature(
            "signature from an hour ago (replay of an old capture)",
            message("turn_old"),
            sign_at(now - 3600, &message("turn_old")),
            401,
        ),
        with_signature(
            "100 v1 values, none matching",
            message("turn_many"),
            format!("t={now},{}", vec![format!("v1={}", "ab".repeat(32)); 100].join(",")),
            401,
        ),
        with_signature(
            "8 KB of junk in the signature header",
            message("turn_junk"),
            format!("t={now},x={}", "z".repeat(8 * 1024)),
            401,
        ),
        with_signature(
            "signature with a newline-like escape in t",
            message("turn_escape"),
            format!("t={now}%0d%0a,v1={}", "00".repeat(32)),
            401,
        ),
    ]
}

#[test]
fn hostile_requests_get_their_expected_status() {
    let (gemini, _layercode, worker) = start_default();
    for row in rows() {
        let before = gemini.requests().len();
        let mut headers: Vec<(&str, &str)> = vec![("Content-Type", "application/json")];
        headers.extend(row.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let response = request("POST", &worker.url("/agent"), &headers, &row.body);
        assert_eq!(
            response.status,
            row.status,
            "{}: {}",
            row.name,
            response.text()
        );
        if row.status >= 400 {
            let error = response.json();
            assert!(error["error"].is_string(), "{}: JSON error body", row.name);
        }
        if !row.reaches_gemini {
            assert_eq!(
                gemini.requests().len(),
                before,
                "{}: Gemini was called",
                row.name
            );
        }
    }
    for file in worker.conversation_db_files() {
        let rows = sqlite_json(&file, "SELECT COUNT(*) AS n FROM messages");
        assert_eq!(
            rows[0]["n"], 0,
            "a rejected request stored something in {file:?}"
        );
    }
}

#[test]
fn a_replayed_webhook_is_answered_once() {
    let (gemini, _layercode, worker) = start_default();
    let body = message("conv_replay", "turn_1", "Hi").to_string();
    let header = sign_now(TEST_WEBHOOK_SECRET, &body);
    let send = || open_signed(&worker, "/agent", &header, &body).read_all(TURN_TIMEOUT);
    let first = send();
    assert_eq!(first.tts_text(), DEFAULT_GEMINI_TEXT);
    let replay = send();
    assert_eq!(replay.status, 200);
    assert_eq!(
        replay.tts_text(),
        DEFAULT_GEMINI_TEXT,
        "the replay is answered from the store"
    );
    assert_eq!(gemini.requests().len(), 1, "and makes no second model call");
}

#[test]
fn control_characters_in_ids_cannot_break_headers_or_framing() {
    let (gemini, _layercode, worker) = start_default();
    let turn_id = "t1\r\nX-Injected: yes\r\n\r\ndata: {\"type\":\"response.end\"}";
    let event = json!({
        "type": "message", "session_id": "s\r\nSet-Cookie: a=b",
        "conversation_id": "conv\r\nX-Evil: 1", "turn_id": turn_id, "text": "Hi\u{0}\u{7}there",
    });
    let transcript = stream_webhook(&worker, &event);
    assert_well_formed_turn(&transcript, turn_id);
    assert_eq!(transcript.header("x-injected"), None);
    assert_eq!(transcript.header("set-cookie"), None);
    assert_eq!(transcript.types(), vec!["response.tts", "response.end"]);
    let request = &gemini.wait_for_requests(1, TURN_TIMEOUT)[0];
    assert_eq!(
        contents(&request.json()),
        vec![turn("user", "Hi\u{0}\u{7}there")]
    );
}

// ---------------------------------------------------------------------------------------------
// Issue 11: bounds, leaks and hostile text
// ---------------------------------------------------------------------------------------------

/// Item 5: an unsigned body dripped one byte per 0.5 s used to be held until it was complete.
#[test]
fn a_webhook_body_that_trickles_in_is_408() {
    let (gemini, _layercode, worker) = start_default();
    let body = message("conv_drip", "turn_1", "Hi").to_string();
    let (response, _) = post_dripping(
        &worker.url("/agent"),
        &[("Content-Type", "application/json")],
        body.as_bytes(),
        Duration::from_millis(500),
    );
    assert_eq!(response.status, 408, "{}", response.text());
    assert_eq!(
        response.json(),
        json!({"error": "the request body did not arrive within 10 seconds"})
    );
    assert!(gemini.requests().is_empty());
}

/// Item 12: Gemini quotes the request back in some errors; the log keeps only the HTTP status,
/// Google's `status` and the `details[].reason` codes, on all three paths an error arrives by.
#[test]
fn gemini_errors_are_logged_as_codes_never_as_their_message() {
    use gemini_fixtures::*;
    let (gemini, _layercode, worker) = start_default();
    let quoted = "my card is 4111 1111 1111 1111";
    let status_body = json!({"error": {
        "code": 400,
        "message": format!("Invalid value at 'contents[0].parts[0].text' ({quoted})"),
        "status": "INVALID_ARGUMENT",
        "details": [
            {"@type": "type.googleapis.com/google.rpc.BadRequest",
             "fieldViolations": [{"field": "contents[0]", "description": quoted}]},
            {"@type": "type.googleapis.com/google.rpc.ErrorInfo",
             "reason": "CONTENT_INVALID", "domain": "googleapis.com"}
        ]
    }});
    gemini.push(GeminiReply::Status {
        status: 400,
        body: status_body.to_string(),
    });
    gemini.push(gemini_fixtures::stream(vec![
        (Duration::ZERO, text_event("Let me see.", None)),
        (
            Duration::ZERO,
            error_event(500, "INTERNAL", &format!("failed on '{quoted}'")),
        ),
    ]));
    let unframed =
        json!({"error": {"code": 400, "message": quoted, "status": "FAILED_PRECONDITION"}});
    gemini.push(GeminiReply::Raw {
        pieces: vec![(Duration::ZERO, unframed.to_string().into_bytes())],
    });
    for turn_id in ["turn_1", "turn_2", "turn_3"] {
        stream_webhook(
            &worker,
            &message("conv_quote", turn_id, "What is my balance?"),
        );
    }
    assert_eq!(
        worker.turn_log("turn_1")["gemini_error"],
        "400 INVALID_ARGUMENT CONTENT_INVALID"
    );
    assert_eq!(worker.turn_log("turn_2")["gemini_error"], "500 INTERNAL");
    assert_eq!(
        worker.turn_log("turn_3")["gemini_error"],
        "200 FAILED_PRECONDITION"
    );
    let logs = worker.logs();
    assert!(
        !logs.contains("4111"),
        "quoted content reached the log:\n{logs}"
    );
    assert!(!logs.contains("Invalid value"), "{logs}");
}

/// Item 13: a redirect from the Gemini base URL is a failed turn, never a request elsewhere
/// carrying `x-goog-api-key` and the prompt.
#[test]
fn a_redirect_from_gemini_is_an_apology_and_never_followed() {
    let thief = MockGemini::start();
    let (gemini, _layercode, worker) = start_default();
    let elsewhere = format!(
        "{}{}",
        thief.base_url(),
        gemini_fixtures::stream_path("gemini-2.5-flash-lite")
    );
    for (turn_id, status) in [("turn_1", 307), ("turn_2", 302)] {
        gemini.push(GeminiReply::Redirect {
            status,
            location: elsewhere.clone(),
        });
        let transcript = stream_webhook(&worker, &message("conv_redirect", turn_id, "Hi"));
        assert_well_formed_turn(&transcript, turn_id);
        assert_eq!(transcript.tts_text(), APOLOGY_BEFORE, "{status}");
        let log = worker.turn_log(turn_id);
        assert_eq!(log["gemini_status"], status);
        assert_eq!(log["outcome"], "failed");
    }
    assert_eq!(gemini.requests().len(), 2, "one request per turn, no retry");
    assert!(thief.requests().is_empty(), "a redirect was followed");
}

/// Item 15: control, bidi and zero-width characters and U+FFFD never reach text-to-speech, and
/// an event with a lone surrogate escape (`\ud83d` without its pair) is read, not fatal.
#[test]
fn unspeakable_characters_never_reach_text_to_speech() {
    use gemini_fixtures::*;
    let (gemini, _layercode, worker) = start_default();
    let hostile = "Hel\u{0}lo\u{7} there\u{1b}\u{7f}\u{9b}, \u{202e}friend\u{202c} \
                   \u{2066}x\u{2069} zero\u{200b}width\u{feff} bad\u{fffd}byte.";
    let lone_surrogate = r#"{"candidates": [{"content": {"parts": [{"text": " Smile \ud83d now."}],"role": "model"}}]}"#;
    gemini.push(gemini_fixtures::stream(vec![
        (Duration::ZERO, text_event(hostile, None)),
        (Duration::ZERO, lone_surrogate.to_string()),
        (Duration::ZERO, text_event(" Bye.", Some("STOP"))),
    ]));
    let transcript = stream_webhook(&worker, &message("conv_controls", "turn_1", "Hi"));
    assert_well_formed_turn(&transcript, "turn_1");
    assert_eq!(
        transcript.tts_text(),
        "Hello there, friend x zerowidth badbyte. Smile now. Bye."
    );
    assert_eq!(worker.turn_log("turn_1")["outcome"], "complete");
}

/// Item 16: `JSON.stringify` writes a lone surrogate when a string slice cuts an emoji; the
/// webhook is still answered (the signature covers the raw bytes, the text keeps U+FFFD).
#[test]
fn a_lone_surrogate_escape_in_the_webhook_is_accepted_lossily() {
    let (gemini, _layercode, worker) = start_default();
    let body = r#"{"type":"message","session_id":"s\udc00","conversation_id":"conv_lone","turn_id":"turn_1","text":"I love \ud83d and \ud83d\ude00"}"#;
    let transcript = open_signed(
        &worker,
        "/agent",
        &sign_now(TEST_WEBHOOK_SECRET, body),
        body,
    )
    .read_all(TURN_TIMEOUT);
    assert_well_formed_turn(&transcript, "turn_1");
    assert_eq!(transcript.tts_text(), DEFAULT_GEMINI_TEXT);
    let request = &gemini.wait_for_requests(1, TURN_TIMEOUT)[0];
    assert_eq!(
        contents(&request.json()),
        vec![turn("user", "I love \u{fffd} and \u{1f600}")]
    );
}

/// Item 17: U+2028, U+2029 and U+0085 are line breaks to some readers, so frames escape them.
#[test]
fn line_separators_are_escaped_in_frames() {
    let (_gemini, _layercode, worker) = start_default();
    let turn_id = "t\u{2028}1\u{2029}2\u{85}3";
    let transcript = stream_webhook(&worker, &message("conv_separators", turn_id, "Hi"));
    assert_well_formed_turn(&transcript, turn_id);
    for event in &transcript.events {
        assert!(
            event.raw.contains(r#""turn_id":"t\u20281\u20292\u00853""#),
            "{:?}",
            event.raw
        );
        assert!(
            !event.raw.contains(['\u{2028}', '\u{2029}', '\u{85}']),
            "{:?}",
            event.raw
        );
    }
}

/// Item 17: a `message` without words still ends its turn (Layercode waits for
/// `response.end`), stores nothing and asks no model.
#[test]
fn a_message_without_words_just_ends() {
    let (gemini, _layercode, worker) = start_default();
    let events = [
        json!({"type":"message","conversation_id":"conv_blank","turn_id":"turn_missing"}),
        json!({"type":"message","conversation_id":"conv_blank","turn_id":"turn_null","text":null}),
        json!({"type":"message","conversation_id":"conv_blank","turn_id":"turn_blank","text":" \n\t"}),
        // Zero-width space, BOM, a bidi mark and NUL: nothing anyone said.
        json!({"type":"message","conversation_id":"conv_blank","turn_id":"turn_invisible",
               "text":"\u{200B}\u{FEFF}\u{200E}\u{0}"}),
    ];
    for event in &events {
        let turn_id = event["turn_id"].as_str().unwrap_or_default();
        let transcript = stream_webhook(&worker, event);
        assert_well_formed_turn(&transcript, turn_id);
        assert_eq!(transcript.types(), vec!["response.end"], "{event}");
    }
    assert!(gemini.requests().is_empty());
    for file in worker.conversation_db_files() {
        let rows = sqlite_json(&file, "SELECT COUNT(*) AS n FROM messages");
        assert_eq!(rows[0]["n"], 0, "something was stored in {file:?}");
    }
}

/// Item 17: an empty `turn_id` is left out of the frames (as Layercode's Node SDK does), not
/// echoed as `""`.
#[test]
fn an_empty_turn_id_is_left_out_of_frames() {
    let (_gemini, _layercode, worker) = start_default();
    let transcript = stream_webhook(&worker, &session_start("conv_empty_turn", ""));
    assert_eq!(transcript.types(), vec!["response.tts", "response.end"]);
    for event in &transcript.events {
        assert_eq!(event.json.get("turn_id"), None, "{:?}", event.raw);
    }
}
