//! `POST /authorize`: the session-key proxy, against the real worker and a mock Layercode API.

mod common;
use common::*;

use serde_json::{json, Value};
use std::net::TcpListener;

const BROWSER_BODY: &str =
    r#"{"agent_id":"ag_123","metadata":{"user":"u_1"},"sdk_version":"2.7.0"}"#;

fn start_with(options: impl FnOnce(WorkerOptions) -> WorkerOptions) -> (MockLayercode, Worker) {
    let gemini = MockGemini::start();
    let layercode = MockLayercode::start();
    let worker = Worker::start(options(WorkerOptions::new(&gemini, &layercode)));
    (layercode, worker)
}

fn authorize(worker: &Worker, body: &str) -> HttpResponse {
    post_json(&worker.url("/authorize"), &[], body)
}

fn error_of(response: &HttpResponse) -> String {
    response.json()["error"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn a_browser_request_becomes_a_session_key_with_the_bearer_key_server_side() {
    let (layercode, worker) = start_with(|o| o);
    let response = authorize(&worker, BROWSER_BODY);
    assert_eq!(response.status, 200, "{}", response.text());
    assert!(response
        .header("content-type")
        .unwrap_or_default()
        .starts_with("application/json"));
    // Layercode's JSON, byte for byte: the SDK needs client_session_key, conversation_id, config.
    assert_eq!(response.text(), DEFAULT_AUTHORIZE_BODY);

    let upstream = &layercode.wait_for_requests(1, TURN_TIMEOUT)[0];
    assert_eq!(upstream.method, "POST");
    assert_eq!(upstream.path, AUTHORIZE_PATH);
    assert_eq!(
        upstream.header("authorization"),
        Some(format!("Bearer {TEST_LAYERCODE_API_KEY}").as_str())
    );
    assert!(upstream
        .header("content-type")
        .unwrap_or_default()
        .starts_with("application/json"));
    assert_eq!(
        upstream.json(),
        json!({"agent_id":"ag_123","metadata":{"user":"u_1"},"sdk_version":"2.7.0"})
    );
    assert!(!response.text().contains(TEST_LAYERCODE_API_KEY));
}

#[test]
fn only_allow_listed_fields_are_forwarded() {
    let (layercode, worker) = start_with(|o| o);
    let body = json!({
        "agent_id": "ag_123", "conversation_id": "lc_conv_9", "metadata": {"a": 1},
        "sdk_version": "2.7.0", "custom_metadata": {"plan": "pro"},
        "config": {"plugins": [{"use": "agent.webhook", "options": {"url": "https://evil.example"}}]},
        "custom_headers": {"authorization": "Bearer stolen"}, "anything_else": true
    });
    let response = authorize(&worker, &body.to_string());
    assert_eq!(response.status, 200);
    let upstream = &layercode.wait_for_requests(1, TURN_TIMEOUT)[0];
    assert_eq!(
        upstream.json(),
        json!({
            "agent_id": "ag_123", "conversation_id": "lc_conv_9", "metadata": {"a": 1},
            "sdk_version": "2.7.0", "custom_metadata": {"plan": "pro"}
        })
    );
}

#[test]
fn a_pinned_agent_is_filled_in_and_other_agents_are_refused() {
    let (layercode, worker) = start_with(|o| o.var("LAYERCODE_AGENT_ID", "ag_pinned"));
    let filled = authorize(&worker, r#"{"metadata":{}}"#);
    assert_eq!(filled.status, 200);
    let upstream = &layercode.wait_for_requests(1, TURN_TIMEOUT)[0];
    assert_eq!(
        upstream.json(),
        json!({"agent_id": "ag_pinned", "metadata": {}})
    );

    let other = authorize(&worker, r#"{"agent_id":"ag_other"}"#);
    assert_eq!(other.status, 403);
    assert_eq!(
        error_of(&other),
        "this server does not authorize sessions for that agent_id"
    );
    assert_eq!(
        layercode.requests().len(),
        1,
        "refused before any upstream call"
    );
}

#[test]
fn bad_requests_are_refused_before_any_upstream_call() {
    let (layercode, worker) = start_with(|o| o);
    let cases = [
        (r#"{"metadata":{}}"#, 400, "`agent_id` is required"),
        (r#"{"agent_id":"#, 400, "invalid JSON body"),
        (r#"{"agent_id":7}"#, 400, "`agent_id` must be a string"),
        (
            r#"{"agent_id":"a","metadata":"x"}"#,
            400,
            "`metadata` must be an object",
        ),
    ];
    for (body, status, message) in cases {
        let response = authorize(&worker, body);
        assert_eq!(response.status, status, "{body}");
        assert!(
            error_of(&response).starts_with(message),
            "{body}: {}",
            response.text()
        );
    }
    let huge = format!(
        r#"{{"agent_id":"a","metadata":{{"pad":"{}"}}}}"#,
        "x".repeat(64 * 1024)
    );
    let too_large = authorize(&worker, &huge);
    assert_eq!(too_large.status, 413);
    assert_eq!(
        error_of(&too_large),
        "request body is larger than 65536 bytes"
    );
    assert!(layercode.requests().is_empty());
}

#[test]
fn upstream_errors_keep_their_status_and_message() {
    let (layercode, worker) = start_with(|o| o);
    for (status, message) in [
        (400, "Invalid agent id"),
        (401, "Invalid API key"),
        (402, "insufficient_balance"),
        (429, "Too many sessions"),
        (500, "Internal error"),
    ] {
        layercode.push(LayercodeReply::error(status, message));
        let response = authorize(&worker, BROWSER_BODY);
        assert_eq!(response.status, status);
        assert_eq!(response.json(), json!({ "error": message }));
    }
}

#[test]
fn upstream_text_echoing_the_key_is_redacted() {
    let (layercode, worker) = start_with(|o| o);
    layercode.push(LayercodeReply::Json {
        status: 400,
        body: format!(r#"{{"error":"Bearer token {TEST_LAYERCODE_API_KEY} is invalid"}}"#),
    });
    let response = authorize(&worker, BROWSER_BODY);
    assert_eq!(response.status, 400);
    assert_eq!(error_of(&response), "Bearer token [redacted] is invalid");
    assert!(!worker.logs().contains(TEST_LAYERCODE_API_KEY));
}

#[test]
fn an_unreachable_upstream_is_502_and_a_silent_one_504() {
    let closed_port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let (_layercode, worker) = start_with(|o| {
        o.var(
            "LAYERCODE_API_BASE_URL",
            &format!("http://127.0.0.1:{closed_port}"),
        )
    });
    let unreachable = authorize(&worker, BROWSER_BODY);
    assert_eq!(unreachable.status, 502);
    assert_eq!(error_of(&unreachable), "upstream service unreachable");

    let (layercode, worker) = start_with(|o| o);
    layercode.push(LayercodeReply::Hang);
    let silent = authorize(&worker, BROWSER_BODY);
    assert_eq!(silent.status, 504);
    assert_eq!(error_of(&silent), "upstream service timed out");
}

#[test]
fn a_missing_api_key_is_a_500_naming_the_setting() {
    let (layercode, worker) = start_with(|o| o.without_secret("LAYERCODE_API_KEY"));
    let response = authorize(&worker, BROWSER_BODY);
    assert_eq!(response.status, 500);
    assert_eq!(
        error_of(&response),
        "server is missing the setting LAYERCODE_API_KEY"
    );
    assert!(layercode.requests().is_empty());
}

fn header<'a>(response: &'a HttpResponse, name: &str) -> Option<&'a str> {
    response.header(name)
}

#[test]
fn cors_follows_the_allowed_origins() {
    let (_layercode, worker) = start_with(|o| {
        o.var(
            "ALLOWED_ORIGINS",
            "https://app.example, https://admin.example",
        )
    });
    let preflight = |origin: &str| {
        request(
            "OPTIONS",
            &worker.url("/api/authorize"),
            &[
                ("origin", origin),
                ("access-control-request-method", "POST"),
                ("access-control-request-headers", "content-type"),
            ],
            b"",
        )
    };
    let allowed = preflight("https://app.example");
    assert_eq!(allowed.status, 204);
    assert_eq!(
        header(&allowed, "access-control-allow-origin"),
        Some("https://app.example")
    );
    assert_eq!(
        header(&allowed, "access-control-allow-methods"),
        Some("POST, OPTIONS")
    );
    assert!(header(&allowed, "access-control-allow-headers")
        .unwrap_or_default()
        .contains("Content-Type"));
    assert_eq!(header(&allowed, "vary"), Some("Origin"));

    let refused = preflight("https://evil.example");
    assert_eq!(refused.status, 403);
    assert_eq!(header(&refused, "access-control-allow-origin"), None);

    let post = |origin: &str| {
        post_json(
            &worker.url("/authorize"),
            &[("origin", origin)],
            BROWSER_BODY,
        )
    };
    let from_app = post("https://admin.example");
    assert_eq!(from_app.status, 200);
    assert_eq!(
        header(&from_app, "access-control-allow-origin"),
        Some("https://admin.example")
    );
    assert_eq!(header(&from_app, "vary"), Some("Origin"));
    let from_elsewhere = post("https://evil.example");
    assert_eq!(header(&from_elsewhere, "access-control-allow-origin"), None);

    // An error answer carries CORS too, so the page can read the message.
    let error = post_json(
        &worker.url("/authorize"),
        &[("origin", "https://app.example")],
        "{",
    );
    assert_eq!(error.status, 400);
    assert_eq!(
        header(&error, "access-control-allow-origin"),
        Some("https://app.example")
    );
}

#[test]
fn cors_wildcard_and_default_none() {
    let (_layercode, worker) = start_with(|o| o.var("ALLOWED_ORIGINS", "*"));
    let any = post_json(
        &worker.url("/authorize"),
        &[("origin", "https://x.example")],
        BROWSER_BODY,
    );
    assert_eq!(header(&any, "access-control-allow-origin"), Some("*"));
    drop(worker);

    let (_layercode, worker) = start_with(|o| o);
    let none = post_json(
        &worker.url("/authorize"),
        &[("origin", "https://x.example")],
        BROWSER_BODY,
    );
    assert_eq!(none.status, 200, "same-origin style requests still work");
    assert_eq!(header(&none, "access-control-allow-origin"), None);
    let webhook_preflight = request(
        "OPTIONS",
        &worker.url("/agent"),
        &[("origin", "https://x.example")],
        b"",
    );
    assert_eq!(webhook_preflight.status, 405, "the webhook has no CORS");
    let _: Value = webhook_preflight.json();
}
