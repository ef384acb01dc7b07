//! `POST /authorize`: the session-key proxy, against the real worker and a mock Layercode API.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test fails by panicking

mod common;
use common::*;

use serde_json::{json, Value};
use std::time::Duration;

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
    let (layercode, worker) =
        start_with(|o| o.secret("CONVERSATION_COOKIE_SECRET", "test_cookie_secret"));
    // Resuming needs the cookie the conversation's start set (tests/authorize_resume.rs).
    let started = authorize(&worker, BROWSER_BODY);
    let set_cookie = started.header("set-cookie").expect("a conversation cookie");
    let cookie = set_cookie.split(';').next().unwrap_or_default();
    let body = json!({
        "agent_id": "ag_123", "conversation_id": "lc_conv_test_456", "metadata": {"a": 1},
        "sdk_version": "2.7.0", "custom_metadata": {"plan": "pro"},
        "config": {"plugins": [{"use": "agent.webhook", "options": {"url": "https://evil.example"}}]},
        "custom_headers": {"authorization": "Bearer stolen"}, "anything_else": true
    });
    let response = post_json(
        &worker.url("/authorize"),
        &[("cookie", cookie)],
        &body.to_string(),
    );
    assert_eq!(response.status, 200, "{}", response.text());
    let upstream = &layercode.wait_for_requests(2, TURN_TIMEOUT)[1];
    assert_eq!(
        upstream.json(),
        json!({
            "agent_id": "ag_123", "conversation_id": "lc_conv_test_456", "metadata": {"a": 1},
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
    let long_id = format!(
        r#"{{"agent_id":"a","conversation_id":"{}"}}"#,
        "c".repeat(257)
    );
    let long = authorize(&worker, &long_id);
    assert_eq!(long.status, 400);
    assert_eq!(
        error_of(&long),
        "`conversation_id` is longer than 256 bytes"
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
    let closed = ClosedPort::reserve();
    let (_layercode, worker) = start_with(|o| o.var("LAYERCODE_API_BASE_URL", &closed.url()));
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
    assert_eq!(none.status, 403, "no cross-origin access by default");
    assert_eq!(header(&none, "access-control-allow-origin"), None);
    let without_origin = authorize(&worker, BROWSER_BODY);
    assert_eq!(
        without_origin.status, 200,
        "requests without Origin still work"
    );
    let webhook_preflight = request(
        "OPTIONS",
        &worker.url("/agent"),
        &[("origin", "https://x.example")],
        b"",
    );
    assert_eq!(webhook_preflight.status, 405, "the webhook has no CORS");
    let _: Value = webhook_preflight.json();
}

// ---------------------------------------------------------------------------------------------
// Issue 11: the whole exchange is bounded, nothing leaks, nothing odd is passed through
// ---------------------------------------------------------------------------------------------

/// Issue 11 item 5: headers on time and then a body that never ends used to hold the browser
/// until the upstream gave up; the whole exchange now shares one deadline.
#[test]
fn an_upstream_that_stalls_after_its_headers_is_504() {
    let (layercode, worker) = start_with(|o| o);
    layercode.push(LayercodeReply::StalledBody {
        status: 200,
        first_piece: r#"{"client_session_key":"lc_sess"#.to_string(),
    });
    let response = authorize(&worker, BROWSER_BODY);
    assert_eq!(response.status, 504, "{}", response.text());
    assert_eq!(error_of(&response), "upstream service timed out");
    assert!(
        layercode.client_disconnected(0, TURN_TIMEOUT),
        "the upstream request was abandoned, not left open"
    );
}

/// Issue 11 item 5: a browser body that trickles in is cut off with 408.
#[test]
fn a_request_body_that_trickles_in_is_408() {
    let (layercode, worker) = start_with(|o| o);
    let (response, _) = post_dripping(
        &worker.url("/authorize"),
        &[("Content-Type", "application/json")],
        BROWSER_BODY.as_bytes(),
        Duration::from_millis(500),
    );
    assert_eq!(response.status, 408, "{}", response.text());
    assert_eq!(
        error_of(&response),
        "the request body did not arrive within 10 seconds"
    );
    assert!(layercode.requests().is_empty());
}

/// Issue 11 item 11: redaction ran after the 300-character cut, so a key straddling the cut
/// leaked its first characters.
#[test]
fn a_key_straddling_the_message_cut_leaks_none_of_its_characters() {
    let (layercode, worker) = start_with(|o| o);
    let padding = "x".repeat(290);
    layercode.push(LayercodeReply::error(
        400,
        &format!("{padding}{TEST_LAYERCODE_API_KEY} is not a valid key"),
    ));
    let response = authorize(&worker, BROWSER_BODY);
    assert_eq!(response.status, 400);
    assert_eq!(error_of(&response), format!("{padding}[redacted]"));
}

/// Issue 11 item 13: a redirect is never followed with the Bearer key and the body.
#[test]
fn an_upstream_redirect_is_502_and_not_followed() {
    let thief = MockLayercode::start();
    let (layercode, worker) = start_with(|o| o);
    layercode.push(LayercodeReply::Redirect {
        status: 307,
        location: format!("{}{AUTHORIZE_PATH}", thief.base_url()),
    });
    let response = authorize(&worker, BROWSER_BODY);
    assert_eq!(response.status, 502, "{}", response.text());
    assert_eq!(
        error_of(&response),
        "Layercode answered with a redirect, which is not followed"
    );
    assert_eq!(layercode.requests().len(), 1);
    assert!(thief.requests().is_empty(), "the redirect was followed");
}

/// Issue 11 item 14: a simple `text/plain` POST needs no preflight, so the origin must be
/// checked on the POST itself.
#[test]
fn a_post_from_an_origin_not_allowed_is_403_without_an_upstream_call() {
    let (layercode, worker) = start_with(|o| o.var("ALLOWED_ORIGINS", "https://app.example"));
    for content_type in ["text/plain", "application/json"] {
        let response = request(
            "POST",
            &worker.url("/authorize"),
            &[
                ("origin", "https://evil.example"),
                ("content-type", content_type),
            ],
            BROWSER_BODY.as_bytes(),
        );
        assert_eq!(response.status, 403, "{content_type}: {}", response.text());
        assert_eq!(error_of(&response), "origin not allowed");
        assert_eq!(header(&response, "access-control-allow-origin"), None);
    }
    let null_origin = post_json(
        &worker.url("/authorize"),
        &[("origin", "null")],
        BROWSER_BODY,
    );
    assert_eq!(null_origin.status, 403);
    assert!(layercode.requests().is_empty());

    let allowed = post_json(
        &worker.url("/authorize"),
        &[("origin", "https://app.example")],
        BROWSER_BODY,
    );
    assert_eq!(allowed.status, 200);
    // A same-origin page also sends Origin on a POST: its own origin is always allowed.
    let same_origin = post_json(
        &worker.url("/authorize"),
        &[("origin", worker.base_url.as_str())],
        BROWSER_BODY,
    );
    assert_eq!(same_origin.status, 200, "{}", same_origin.text());
    assert_eq!(layercode.requests().len(), 2);
}

/// Issue 11 item 14: only JSON bodies are accepted.
#[test]
fn a_body_not_declared_as_json_is_415() {
    let (layercode, worker) = start_with(|o| o);
    let post_as = |headers: &[(&str, &str)]| {
        request(
            "POST",
            &worker.url("/authorize"),
            headers,
            BROWSER_BODY.as_bytes(),
        )
    };
    for headers in [
        vec![("content-type", "text/plain")],
        vec![("content-type", "application/x-www-form-urlencoded")],
        vec![("content-type", "multipart/form-data; boundary=x")],
        vec![],
    ] {
        let response = post_as(&headers);
        assert_eq!(response.status, 415, "{headers:?}: {}", response.text());
        assert_eq!(
            error_of(&response),
            "the body must be JSON (Content-Type: application/json)"
        );
    }
    assert!(layercode.requests().is_empty());
    let with_charset = post_as(&[("content-type", "application/json; charset=utf-8")]);
    assert_eq!(with_charset.status, 200, "{}", with_charset.text());
}

/// Issue 11 item 14: a 2xx that is not JSON is not passed through as if it were.
#[test]
fn an_upstream_success_that_is_not_json_is_502() {
    let (layercode, worker) = start_with(|o| o);
    let replies = [
        ("text/html", "<html><body>Sign in</body></html>"),
        ("application/json", "<html><body>Sign in</body></html>"),
        ("text/html", DEFAULT_AUTHORIZE_BODY),
        ("application/json", ""),
    ];
    for (content_type, body) in replies {
        layercode.push(LayercodeReply::Raw {
            status: 200,
            content_type: content_type.to_string(),
            body: body.to_string(),
        });
        let response = authorize(&worker, BROWSER_BODY);
        assert_eq!(
            response.status,
            502,
            "{content_type} {body:?}: {}",
            response.text()
        );
        assert_eq!(
            error_of(&response),
            "Layercode answered with a body that is not JSON"
        );
    }
}

/// A 2xx JSON answer with no session in it (an error object with a 200, an empty key) is not a
/// session the browser SDK can start: 502, as for a body that is not JSON.
#[test]
fn an_upstream_success_without_a_session_key_is_502() {
    let (layercode, worker) = start_with(|o| o);
    for body in [
        r#"{"error":"insufficient balance"}"#,
        r#"{"client_session_key":"","conversation_id":"c"}"#,
    ] {
        layercode.push(LayercodeReply::Raw {
            status: 200,
            content_type: "application/json".to_string(),
            body: body.to_string(),
        });
        let response = authorize(&worker, BROWSER_BODY);
        assert_eq!(response.status, 502, "{body}: {}", response.text());
        assert_eq!(
            error_of(&response),
            "Layercode answered without a client_session_key"
        );
    }
}

/// Issue 11 item 14: a success body echoing the API key is redacted before the browser sees it.
#[test]
fn an_upstream_success_echoing_the_key_is_redacted() {
    let (layercode, worker) = start_with(|o| o);
    let escaped_key: String = TEST_LAYERCODE_API_KEY
        .chars()
        .map(|c| format!("\\u{:04x}", u32::from(c)))
        .collect();
    for body in [
        format!(r#"{{"client_session_key":"lc_sess","debug":"Bearer {TEST_LAYERCODE_API_KEY}"}}"#),
        format!(r#"{{"client_session_key":"lc_sess","debug":"Bearer {escaped_key}"}}"#),
    ] {
        layercode.push(LayercodeReply::Json { status: 200, body });
        let response = authorize(&worker, BROWSER_BODY);
        assert_eq!(response.status, 200);
        assert!(
            !response.text().contains(TEST_LAYERCODE_API_KEY),
            "{}",
            response.text()
        );
        assert!(
            !response.text().contains(&escaped_key[..12]),
            "{}",
            response.text()
        );
        assert_eq!(
            response.json(),
            json!({"client_session_key": "lc_sess", "debug": "Bearer [redacted]"})
        );
    }
}
