//! Issue 22, item 1: `/authorize` resumes a conversation only for the caller that started it
//! (`edge::ownership`). Before, anyone naming a conversation id got a session on it, and the
//! agent then answered with the other caller's history in its prompt.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test fails by panicking

mod common;
use common::*;

use serde_json::{json, Value};

const SECRET: &str = "test_cookie_secret";
const NOT_YOURS: &str = "this conversation was not started here: start a new one";
const OWNER_HEADER: &str = "X-Test-User";

fn start_with(options: impl FnOnce(WorkerOptions) -> WorkerOptions) -> (MockLayercode, Worker) {
    let gemini = MockGemini::start();
    let layercode = MockLayercode::start();
    let worker = Worker::start(options(WorkerOptions::new(&gemini, &layercode)));
    (layercode, worker)
}

/// Layercode's answer granting a session on `conversation_id`.
fn session(conversation_id: &str) -> LayercodeReply {
    LayercodeReply::Json {
        status: 200,
        body: json!({
            "client_session_key": "lc_sesskey_test", "conversation_id": conversation_id,
            "config": {"transcription": {"trigger": "automatic"}}
        })
        .to_string(),
    }
}

fn authorize(
    worker: &Worker,
    headers: &[(&str, &str)],
    conversation_id: Option<&str>,
) -> HttpResponse {
    let mut body = json!({"agent_id": "ag_123", "metadata": {}, "sdk_version": "2.7.0"});
    if let Some(id) = conversation_id {
        body["conversation_id"] = id.into();
    }
    post_json(&worker.url("/authorize"), headers, &body.to_string())
}

/// The `name=value` a browser sends back for the response's `Set-Cookie`.
fn cookie_of(response: &HttpResponse) -> String {
    let set_cookie = response.header("set-cookie").expect("a Set-Cookie header");
    set_cookie.split(';').next().unwrap().to_string()
}

fn refused(response: &HttpResponse) -> String {
    assert_eq!(response.status, 403, "{}", response.text());
    response.json()["error"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn resume_setting(worker: &Worker) -> Value {
    let health = get(&worker.url("/health")).json();
    health["resume"].clone()
}

#[test]
fn a_conversation_resumes_only_with_the_cookie_of_the_browser_that_started_it() {
    let (layercode, worker) = start_with(|o| o.secret("CONVERSATION_COOKIE_SECRET", SECRET));
    layercode.push(session("lc_conv_a"));
    layercode.push(session("lc_conv_b"));
    let started_a = authorize(&worker, &[], None);
    assert_eq!(started_a.status, 200, "{}", started_a.text());
    let set_cookie = started_a.header("set-cookie").unwrap().to_string();
    assert!(
        set_cookie.starts_with("__Host-lc_conversation_"),
        "{set_cookie}"
    );
    // Kept as long as the conversation (30 days by default), out of scripts' and other sites' reach.
    assert!(
        set_cookie.ends_with("; Max-Age=2592000; Path=/; Secure; HttpOnly; SameSite=Strict"),
        "{set_cookie}"
    );
    let cookie_a = cookie_of(&started_a);
    let cookie_b = cookie_of(&authorize(&worker, &[], None));
    let (name_a, _) = cookie_a.split_once('=').unwrap();
    let (name_b, value_b) = cookie_b.split_once('=').unwrap();
    assert_ne!(name_a, name_b, "one cookie per conversation");
    assert_eq!(layercode.requests().len(), 2);

    // Without the proof, from a page of ours or with no Origin at all (curl): refused.
    let own_origin = worker.base_url.clone();
    let forged = format!("{name_a}={value_b}");
    let attempts: [Vec<(&str, &str)>; 4] = [
        vec![],
        vec![("origin", own_origin.as_str())],
        vec![("cookie", cookie_b.as_str())],
        vec![("cookie", forged.as_str())],
    ];
    for headers in &attempts {
        let response = authorize(&worker, headers, Some("lc_conv_a"));
        assert_eq!(refused(&response), NOT_YOURS, "{headers:?}");
        assert!(response.header("set-cookie").is_none());
    }
    // An id nothing is stored for is somebody's all the same.
    assert_eq!(
        refused(&authorize(&worker, &[], Some("lc_conv_unknown"))),
        NOT_YOURS
    );
    assert_eq!(
        layercode.requests().len(),
        2,
        "nothing forwarded to Layercode"
    );

    // The browser keeps both cookies and sends them together: each resumes its conversation.
    let both = format!("theme=dark; {cookie_b}; {cookie_a}");
    for (conversation, cookie) in [("lc_conv_a", &cookie_a), ("lc_conv_b", &cookie_b)] {
        layercode.push(session(conversation));
        let resumed = authorize(&worker, &[("cookie", both.as_str())], Some(conversation));
        assert_eq!(resumed.status, 200, "{}", resumed.text());
        // Set again, so it lasts as long as the conversation is used.
        assert_eq!(&cookie_of(&resumed), cookie);
        let upstream = layercode.requests().pop().unwrap();
        assert_eq!(upstream.json()["conversation_id"], conversation);
    }
    assert_eq!(layercode.requests().len(), 4);
    assert_eq!(resume_setting(&worker), "cookie");
}

#[test]
fn without_the_cookie_secret_resumes_are_refused_and_health_says_so() {
    let (layercode, worker) = start_with(|o| o);
    let started = authorize(&worker, &[], None);
    assert_eq!(started.status, 200, "{}", started.text());
    assert!(started.header("set-cookie").is_none());
    let response = authorize(
        &worker,
        &[("cookie", "anything=1")],
        Some("lc_conv_test_456"),
    );
    assert_eq!(
        refused(&response),
        "resuming a conversation is off: the server has no CONVERSATION_COOKIE_SECRET"
    );
    assert_eq!(
        layercode.requests().len(),
        1,
        "nothing forwarded to Layercode"
    );
    assert_eq!(
        resume_setting(&worker),
        "refused: CONVERSATION_COOKIE_SECRET is not set"
    );
    let health = get(&worker.url("/health")).json();
    assert_eq!(health["settings"]["CONVERSATION_COOKIE_SECRET"], false);
}

#[test]
fn with_an_owner_header_a_conversation_belongs_to_its_signed_in_user() {
    let (layercode, worker) = start_with(|o| {
        o.secret("CONVERSATION_COOKIE_SECRET", SECRET)
            .var("CONVERSATION_OWNER_HEADER", OWNER_HEADER)
    });
    layercode.push(session("lc_conv_alice"));
    let started = authorize(&worker, &[(OWNER_HEADER, "alice@example.com")], None);
    assert_eq!(started.status, 200, "{}", started.text());
    assert!(
        started.header("set-cookie").is_none(),
        "the user replaces the cookie"
    );

    // Alice resumes from anywhere (no cookie needed); nobody else does.
    layercode.push(session("lc_conv_alice"));
    let resumed = authorize(
        &worker,
        &[(OWNER_HEADER, "alice@example.com")],
        Some("lc_conv_alice"),
    );
    assert_eq!(resumed.status, 200, "{}", resumed.text());
    let bob = authorize(
        &worker,
        &[(OWNER_HEADER, "bob@example.com")],
        Some("lc_conv_alice"),
    );
    assert_eq!(refused(&bob), NOT_YOURS);
    let unclaimed = authorize(
        &worker,
        &[(OWNER_HEADER, "alice@example.com")],
        Some("lc_conv_never_started_here"),
    );
    assert_eq!(refused(&unclaimed), NOT_YOURS);
    let sign_in = "a signed-in user is required (see CONVERSATION_OWNER_HEADER)";
    assert_eq!(
        refused(&authorize(&worker, &[], Some("lc_conv_alice"))),
        sign_in
    );
    assert_eq!(refused(&authorize(&worker, &[], None)), sign_in);
    assert_eq!(
        layercode.requests().len(),
        2,
        "nothing forwarded to Layercode"
    );
    assert_eq!(resume_setting(&worker), "owner_header");
}
