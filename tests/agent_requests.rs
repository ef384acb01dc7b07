//! `POST /agent` request handling: signatures, bad input, and the events answered with JSON.
//! A rejected request stores nothing and calls no upstream.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test fails by panicking

mod common;
use common::*;

use serde_json::json;

fn start_with(
    options: impl FnOnce(WorkerOptions) -> WorkerOptions,
) -> (MockGemini, MockLayercode, Worker) {
    let gemini = MockGemini::start();
    let layercode = MockLayercode::start();
    let worker = Worker::start(options(WorkerOptions::new(&gemini, &layercode)));
    (gemini, layercode, worker)
}

fn post_signed_with(worker: &Worker, signature: Option<&str>, body: &[u8]) -> HttpResponse {
    let mut headers = vec![("content-type", "application/json")];
    if let Some(signature) = signature {
        headers.push((SIGNATURE_HEADER, signature));
    }
    request("POST", &worker.url("/agent"), &headers, body)
}

fn assert_json_error(response: &HttpResponse, status: u16) -> String {
    assert_eq!(response.status, status, "body: {}", response.text());
    assert!(response
        .header("content-type")
        .unwrap_or_default()
        .starts_with("application/json"));
    let body = response.json();
    let message = body["error"]
        .as_str()
        .expect("an error message")
        .to_string();
    assert_eq!(
        body.as_object().map(|o| o.len()),
        Some(1),
        "only `error`: {body}"
    );
    message
}

/// Nothing may have been stored: no conversation object was even created.
fn assert_nothing_stored(worker: &Worker, gemini: &MockGemini) {
    assert!(gemini.requests().is_empty(), "Gemini was called");
    for file in worker.conversation_db_files() {
        let rows = sqlite_json(&file, "SELECT COUNT(*) AS n FROM messages");
        assert_eq!(rows[0]["n"], 0, "messages stored in {file:?}");
    }
}

#[test]
fn bad_signatures_get_401_and_change_nothing() {
    let (gemini, _layercode, worker) = start_with(|o| o);
    let body = message("conv_sig", "turn_1", "Hi").to_string();
    let now = now_secs();
    let good = sign(TEST_WEBHOOK_SECRET, now, &body);
    let v1 = good.split("v1=").nth(1).unwrap().to_string();
    let cases: Vec<(&str, Option<String>, String)> = vec![
        ("missing header", None, body.clone()),
        ("empty header", Some(String::new()), body.clone()),
        ("no timestamp", Some(format!("v1={v1}")), body.clone()),
        (
            "non-numeric timestamp",
            Some(format!("t=abc,v1={v1}")),
            body.clone(),
        ),
        (
            "short mac",
            Some(format!("t={now},v1={}", &v1[..40])),
            body.clone(),
        ),
        (
            "wrong secret",
            Some(sign("another_secret", now, &body)),
            body.clone(),
        ),
        (
            "body changed by one byte",
            Some(good.clone()),
            body.replace("Hi", "Ho"),
        ),
        (
            // Not 301: the worker's clock may have moved on a second or two by now. The exact
            // ±300 s boundary is unit-tested in src/signature.rs.
            "timestamp 330 s old",
            Some(sign(TEST_WEBHOOK_SECRET, now - 330, &body)),
            body.clone(),
        ),
        (
            "timestamp 330 s ahead",
            Some(sign(TEST_WEBHOOK_SECRET, now + 330, &body)),
            body.clone(),
        ),
    ];
    for (name, signature, sent) in cases {
        let response = post_signed_with(&worker, signature.as_deref(), sent.as_bytes());
        let message = assert_json_error(&response, 401);
        assert_eq!(message, "invalid or missing layercode-signature", "{name}");
    }
    assert_nothing_stored(&worker, &gemini);
    let logs = worker.logs();
    assert!(!logs.contains(TEST_WEBHOOK_SECRET), "secret logged");
    assert!(!logs.contains(&v1), "expected MAC logged");
}

/// Builds a signature header from (timestamp, body, correct hex MAC).
type SignatureVariant = fn(u64, &str, String) -> String;

#[test]
fn valid_signature_variants_are_accepted() {
    let (gemini, _layercode, worker) = start_with(|o| o);
    let mac = |t: u64, body: &str| signature_hex(TEST_WEBHOOK_SECRET, &t.to_string(), body);
    let variants: [(&str, SignatureVariant); 3] = [
        ("reordered, uppercase hex", |t, _, v1| {
            format!("v1={},t={t}", v1.to_uppercase())
        }),
        ("second of two v1 values", |t, _, v1| {
            format!("t={t},v1={},v1={v1}", "0".repeat(64))
        }),
        ("270 s old", |t, body, _| {
            sign(TEST_WEBHOOK_SECRET, t - 270, body)
        }),
    ];
    for (i, (name, header)) in variants.iter().enumerate() {
        let body = message("conv_sig_ok", &format!("turn_{i}"), "Hi").to_string();
        let now = now_secs();
        let signature = header(now, &body, mac(now, &body));
        let transcript = open_signed(&worker, "/agent", &signature, &body).read_all(TURN_TIMEOUT);
        assert_eq!(transcript.status, 200, "{name}: {signature}");
        assert_eq!(transcript.tts_text(), DEFAULT_GEMINI_TEXT, "{name}");
    }
    assert_eq!(gemini.requests().len(), 3);
}

#[test]
fn any_of_several_configured_secrets_is_accepted() {
    let (_gemini, _layercode, worker) =
        start_with(|o| o.secret("LAYERCODE_WEBHOOK_SECRET", "old_secret, new_secret"));
    for (i, secret) in ["old_secret", "new_secret"].iter().enumerate() {
        let body = message("conv_rotate", &format!("turn_{i}"), "Hi").to_string();
        let signature = sign_now(secret, &body);
        let transcript = open_signed(&worker, "/agent", &signature, &body).read_all(TURN_TIMEOUT);
        assert_eq!(transcript.status, 200, "{secret}");
    }
    let body = message("conv_rotate", "turn_x", "Hi").to_string();
    let response = post_signed_with(
        &worker,
        Some(&sign_now(TEST_WEBHOOK_SECRET, &body)),
        body.as_bytes(),
    );
    assert_eq!(
        response.status, 401,
        "the old test secret is no longer configured"
    );
}

#[test]
fn bad_bodies_get_clear_4xx_errors_and_change_nothing() {
    let (gemini, _layercode, worker) = start_with(|o| o);
    // Signs the exact bytes, so even invalid UTF-8 passes the signature check.
    let signed = |body: &[u8]| {
        let signature =
            layercode_gemini_worker::signature::sign(TEST_WEBHOOK_SECRET, now_secs(), body);
        post_signed_with(&worker, Some(&signature), body)
    };

    let big = format!(
        r#"{{"type":"message","conversation_id":"c","turn_id":"t","text":"{}"}}"#,
        "a".repeat(1024 * 1024)
    );
    let message_too_large = assert_json_error(&signed(big.as_bytes()), 413);
    assert_eq!(
        message_too_large,
        "request body is larger than 1048576 bytes"
    );

    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("not JSON", b"{\"type\":".to_vec(), "invalid JSON body"),
        (
            "invalid UTF-8",
            b"{\"type\":\"message\",\"text\":\"\xff\xfe\"}".to_vec(),
            "invalid JSON body",
        ),
        ("array", b"[1,2]".to_vec(), "the body must be a JSON object"),
        (
            "missing type",
            br#"{"conversation_id":"c"}"#.to_vec(),
            "missing field `type`",
        ),
        (
            "type not a string",
            br#"{"type":1}"#.to_vec(),
            "field `type` must be a string",
        ),
        (
            "message without conversation",
            br#"{"type":"message","turn_id":"t","text":"hi"}"#.to_vec(),
            "missing field `conversation_id`",
        ),
        (
            "deeply nested",
            format!(
                r#"{{"type":"data","data":{}{}}}"#,
                "[".repeat(5000),
                "]".repeat(5000)
            )
            .into_bytes(),
            "invalid JSON body",
        ),
    ];
    for (name, body, expected) in cases {
        let message = assert_json_error(&signed(&body), 400);
        assert!(message.contains(expected), "{name}: {message}");
    }
    assert_nothing_stored(&worker, &gemini);
}

#[test]
fn data_session_update_and_unknown_events_are_answered_with_json() {
    let (gemini, _layercode, worker) = start_with(|o| o);
    let data = post_webhook(
        &worker,
        &json!({"type":"data","session_id":"s","conversation_id":"c","turn_id":"t","data":{"clicked":"buy"}}),
    );
    assert_eq!(data.status, 200);
    assert_eq!(data.json(), json!({"status": "ok", "received": true}));

    let update = post_webhook(
        &worker,
        &json!({"type":"session.update","session_id":"s","conversation_id":"c","recording_status":"completed",
                "recording_url":"https://api.layercode.com/v1/agents/a/sessions/s/recording","recording_duration":12.5}),
    );
    assert_eq!(update.status, 200);
    assert_eq!(update.json(), json!({"status": "ok"}));

    let unknown = post_webhook(
        &worker,
        &json!({"type":"agent.something_new","conversation_id":"c"}),
    );
    assert_eq!(unknown.status, 200);
    assert_eq!(unknown.json(), json!({"status": "ignored"}));
    worker.wait_for_log("ignored_unknown_type", TURN_TIMEOUT);
    assert!(gemini.requests().is_empty());
}

/// Issue 22, item 3: the upper-case names of Layercode's older docs are answered as the events
/// they name (before: `200 {"status":"ignored"}`, and the caller heard silence).
#[test]
fn legacy_upper_case_event_names_are_answered_as_their_current_names() {
    let (gemini, _layercode, worker) = start_with(|o| o);
    let mut start = session_start("conv_legacy", "t0");
    start["type"] = "SESSION_START".into();
    let welcome = stream_webhook(&worker, &start);
    assert_well_formed_turn(&welcome, "t0");
    assert_eq!(welcome.tts_text(), "Hi! How can I help you today?");

    let secret_words = "my locker code is 4471";
    let mut legacy_message = message("conv_legacy", "t1", secret_words);
    legacy_message["type"] = "MESSAGE".into();
    let reply = stream_webhook(&worker, &legacy_message);
    assert_well_formed_turn(&reply, "t1");
    assert_eq!(reply.tts_text(), DEFAULT_GEMINI_TEXT);
    let asked = contents(&gemini.wait_for_requests(1, TURN_TIMEOUT)[0].json());
    assert_eq!(asked.last(), Some(&turn("user", secret_words)));

    let mut end =
        json!({"type": "SESSION_END", "session_id": "s", "conversation_id": "conv_legacy"});
    let ended = post_webhook(&worker, &end);
    assert_eq!(ended.status, 200, "{}", ended.text());
    assert_eq!(ended.json(), json!({"status": "ok"}));
    end["type"] = "SESSION_UPDATE".into();
    assert_eq!(post_webhook(&worker, &end).json(), json!({"status": "ok"}));

    for legacy in ["SESSION_START", "MESSAGE", "SESSION_END", "SESSION_UPDATE"] {
        let line = worker.wait_for_log(&format!("\"type\":\"{legacy}\""), TURN_TIMEOUT);
        assert!(line.contains("\"outcome\":\"legacy_type_name\""), "{line}");
        assert!(
            line.contains("\"conversation_id\":\"conv_legacy\""),
            "{line}"
        );
    }
    let logs = worker.logs();
    assert!(!logs.contains("locker"), "user text reached the log");
    assert!(!logs.contains("ignored_unknown_type"), "{logs}");
}

#[test]
fn session_end_records_the_session_with_its_metrics() {
    let (_gemini, _layercode, worker) = start_with(|o| o);
    stream_webhook(&worker, &message("conv_end", "turn_1", "Hi"));
    let end = post_webhook(
        &worker,
        &json!({
            "type": "session.end", "session_id": "sess_42", "conversation_id": "conv_end",
            "agent_id": "ag_1", "started_at": "2026-11-27T04:00:00Z", "ended_at": "2026-11-27T04:01:01Z",
            "duration": 61000, "transcription_duration_seconds": 12.5, "tts_duration_seconds": null,
            "latency": 0.42, "recording_status": "disabled", "ip_address": null, "country_code": "NZ",
            "transcript": [
                {"role": "user", "text": "Hi", "timestamp": 1764216000000u64},
                {"role": "assistant", "text": "Hello from the mock.", "timestamp": "2026-11-27T04:00:02Z"}
            ]
        }),
    );
    assert_eq!(end.status, 200);
    assert_eq!(end.json(), json!({"status": "ok"}));

    let files = worker.conversation_db_files();
    let sessions: Vec<_> = files
        .iter()
        .flat_map(|f| sqlite_json(f, "SELECT * FROM sessions"))
        .collect();
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    let session = &sessions[0];
    assert_eq!(session["session_id"], "sess_42");
    assert_eq!(session["transcript_messages"], 2);
    assert_eq!(session["duration_ms"], 61000.0);
    assert_eq!(session["transcription_seconds"], 12.5);
    assert_eq!(session["tts_seconds"], serde_json::Value::Null);
    assert_eq!(session["recording_status"], "disabled");
    assert_eq!(session["started_at"], "2026-11-27T04:00:00Z");
}

#[test]
fn a_missing_webhook_secret_is_a_clear_500() {
    let (gemini, _layercode, worker) = start_with(|o| o.without_secret("LAYERCODE_WEBHOOK_SECRET"));
    let body = message("conv_nosecret", "turn_1", "Hi").to_string();
    let response = post_signed_with(
        &worker,
        Some(&sign_now(TEST_WEBHOOK_SECRET, &body)),
        body.as_bytes(),
    );
    let message = assert_json_error(&response, 500);
    assert_eq!(
        message,
        "server is missing the setting LAYERCODE_WEBHOOK_SECRET"
    );
    assert_nothing_stored(&worker, &gemini);
}

#[test]
fn health_reports_presence_not_values_and_routes_are_strict() {
    let (_gemini, _layercode, worker) = start_with(|o| o.without_secret("LAYERCODE_API_KEY"));
    let health = get(&worker.url("/health"));
    assert_eq!(health.status, 200);
    let body = health.json();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(body["settings"]["LAYERCODE_WEBHOOK_SECRET"], true);
    assert_eq!(body["settings"]["GOOGLE_GENERATIVE_AI_API_KEY"], true);
    assert_eq!(body["settings"]["LAYERCODE_API_KEY"], false);
    assert_eq!(body["settings"]["GEMINI_MODEL"], true);
    let text = health.text();
    for secret in [TEST_WEBHOOK_SECRET, TEST_GEMINI_KEY] {
        assert!(!text.contains(secret));
    }

    assert_json_error(&get(&worker.url("/nope")), 404);
    assert_json_error(&get(&worker.url("/agent")), 405);
    let api_path = message("conv_api", "turn_1", "Hi").to_string();
    let signature = sign_now(TEST_WEBHOOK_SECRET, &api_path);
    let transcript =
        open_signed(&worker, "/api/agent", &signature, &api_path).read_all(TURN_TIMEOUT);
    assert_eq!(transcript.status, 200, "/api/agent is an alias");
}
