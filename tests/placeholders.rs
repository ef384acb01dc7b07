//! Each call knows who it is talking to: placeholders in `SYSTEM_PROMPT` and `WELCOME_MESSAGE`
//! filled from the webhook's `custom_metadata` (as set at authorize), its phone numbers and the
//! date and time in `TIME_ZONE`, against the real worker.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test fails by panicking

mod common;
use common::*;

use serde_json::{json, Value};
use std::process::Command;

const PROMPT: &str = "You are talking with {{name|a guest}} on the {{plan|basic}} plan. \
Today is {{date}}, {{time}} local time. Caller: {{caller_number|unknown}}. Note: {{note}}.";
const WELCOME: &str = "Hi {{name|there}}! How can I help?";
const ZONE: &str = "Asia/Kolkata";

fn start(zone: &str) -> (MockGemini, MockLayercode, Worker) {
    let gemini = MockGemini::start();
    let layercode = MockLayercode::start();
    let worker = Worker::start(
        WorkerOptions::new(&gemini, &layercode)
            .var("SYSTEM_PROMPT", PROMPT)
            .var("WELCOME_MESSAGE", WELCOME)
            .var("TIME_ZONE", zone),
    );
    (gemini, layercode, worker)
}

/// `date` in `zone` with this format, from the machine's time-zone database.
fn now_in(zone: &str, format: &str) -> String {
    let out = Command::new("date")
        .env("TZ", zone)
        .arg(format!("+{format}"))
        .output()
        .expect("run date");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn with_call(mut event: Value, metadata: Value, from: Option<&str>) -> Value {
    event["custom_metadata"] = metadata;
    if let Some(from) = from {
        event["from_phone_number"] = json!(from);
        event["to_phone_number"] = json!("+15557654321");
    }
    event
}

fn instruction(request: &RecordedRequest) -> String {
    request.json()["systemInstruction"]["parts"][0]["text"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn custom_metadata_set_at_authorize_reaches_the_welcome_and_the_gemini_request() {
    let (gemini, layercode, worker) = start(ZONE);
    // The browser's authorize request carries it; the worker forwards it to Layercode, which
    // sends it back with every webhook of the conversation.
    let metadata = json!({"name": "Ada", "plan": "pro",
                          "note": "{{name}}\u{200B} ignore\nprevious {{date}}"});
    let authorize = post_json(
        &worker.url("/authorize"),
        &[],
        &json!({"agent_id": "ag_1", "custom_metadata": metadata}).to_string(),
    );
    assert_eq!(authorize.status, 200);
    let forwarded = &layercode.wait_for_requests(1, TURN_TIMEOUT)[0];
    assert_eq!(forwarded.json()["custom_metadata"], metadata);

    let start = with_call(session_start("conv_ada", "w1"), metadata.clone(), None);
    let welcome = stream_webhook(&worker, &start);
    assert_well_formed_turn(&welcome, "w1");
    assert_eq!(welcome.tts_text(), "Hi Ada! How can I help?");

    let before = (now_in(ZONE, "%A, %Y-%m-%d"), now_in(ZONE, "%H:%M"));
    let event = with_call(
        message("conv_ada", "t1", "What plan am I on?"),
        metadata,
        Some("+15551234567"),
    );
    stream_webhook(&worker, &event);
    let after = (now_in(ZONE, "%A, %Y-%m-%d"), now_in(ZONE, "%H:%M"));
    let request = &gemini.wait_for_requests(1, TURN_TIMEOUT)[0];
    let expected = |(date, time): &(String, String)| {
        format!(
            "You are talking with Ada on the pro plan. Today is {date}, {time} local time. \
             Caller: +15551234567. Note: {{{{name}}}} ignore previous {{{{date}}}}."
        )
    };
    let got = instruction(request);
    assert!(
        got == expected(&before) || got == expected(&after),
        "{got}\nexpected {}",
        expected(&before)
    );
    // The greeting is stored as what the caller heard, and the model sees it.
    assert_eq!(
        contents(&request.json())[1],
        turn("model", "Hi Ada! How can I help?")
    );
}

#[test]
fn without_metadata_every_placeholder_takes_its_fallback() {
    let (gemini, _layercode, worker) = start(ZONE);
    let welcome = stream_webhook(&worker, &session_start("conv_anon", "w1"));
    assert_eq!(welcome.tts_text(), "Hi there! How can I help?");
    stream_webhook(&worker, &message("conv_anon", "t1", "Hello"));
    let got = instruction(&gemini.wait_for_requests(1, TURN_TIMEOUT)[0]);
    assert!(
        got.starts_with("You are talking with a guest on the basic plan. Today is "),
        "{got}"
    );
    assert!(
        got.ends_with(" local time. Caller: unknown. Note: ."),
        "{got}"
    );
}

#[test]
fn health_lists_the_placeholders_and_an_unknown_zone_falls_back_to_utc() {
    let (gemini, _layercode, worker) = start("Mars/Olympus_Mons");
    let health = get(&worker.url("/health")).json();
    assert_eq!(
        health["placeholders"],
        json!({
            "system_prompt": ["name", "plan", "date", "time", "caller_number", "note"],
            "welcome_message": ["name"],
        })
    );
    let before = now_in("UTC", "%A, %Y-%m-%d");
    stream_webhook(&worker, &message("conv_mars", "t1", "What day is it?"));
    let after = now_in("UTC", "%A, %Y-%m-%d");
    let got = instruction(&gemini.wait_for_requests(1, TURN_TIMEOUT)[0]);
    assert!(
        got.contains(&format!("Today is {before}, "))
            || got.contains(&format!("Today is {after}, ")),
        "{got}"
    );
    worker.wait_for_log("TIME_ZONE is not a zone the runtime knows", TURN_TIMEOUT);
}
