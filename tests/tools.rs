//! Tools (issue 12) under the real runtime: how `/health` and the log report the `TOOLS`
//! setting, and that a refused `TOOLS` leaves turns running as before, without tools.

mod common;
use common::*;

use std::time::Duration;

const SHOP_HOURS: &str = r#"[{"name": "shop_hours", "description": "Opening hours of one shop.",
  "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
  "url": "http://127.0.0.1:9/shop_hours", "filler": "Let me check the hours."},
  {"builtin": "end_call"}]"#;

fn start(configure: impl FnOnce(WorkerOptions) -> WorkerOptions) -> (MockGemini, Worker) {
    let gemini = MockGemini::start();
    let layercode = MockLayercode::start();
    let worker = Worker::start(configure(WorkerOptions::new(&gemini, &layercode)));
    (gemini, worker)
}

#[test]
fn health_lists_the_tools_and_warns_without_a_signing_secret() {
    let (_gemini, worker) = start(|o| o.var("TOOLS", SHOP_HOURS));
    let body = get(&worker.url("/health")).json();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["settings"]["TOOLS"], true);
    assert_eq!(body["settings"]["TOOLS_SIGNING_SECRET"], false);
    assert_eq!(body["tools"]["count"], 2);
    assert_eq!(
        body["tools"]["names"],
        serde_json::json!(["shop_hours", "end_call"])
    );
    assert_eq!(body["tools"]["error"], serde_json::Value::Null);
    let warning = body["tools"]["warnings"][0].as_str().unwrap_or_default();
    assert!(
        warning.contains("TOOLS_SIGNING_SECRET is not set"),
        "{body}"
    );
}

#[test]
fn a_refused_tools_value_is_reported_and_turns_run_without_tools() {
    let (gemini, worker) = start(|o| {
        o.var(
            "TOOLS",
            r#"[{"name": "shop hours", "description": "d", "url": "https://x.example"}]"#,
        )
        .secret("TOOLS_SIGNING_SECRET", "tool_signing_secret_value")
    });
    let health = get(&worker.url("/health"));
    let body = health.json();
    assert_eq!(body["tools"]["count"], 0);
    let error = body["tools"]["error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with("TOOLS[0] (shop hours): name must start with a letter"),
        "{body}"
    );
    assert_eq!(body["settings"]["TOOLS_SIGNING_SECRET"], true);
    assert!(!health.text().contains("tool_signing_secret_value"));

    gemini.push(gemini_fixtures::reply(&["Hello there."], Duration::ZERO));
    let transcript = stream_webhook(&worker, &message("conv_bad_tools", "t1", "Hi"));
    assert_well_formed_turn(&transcript, "t1");
    assert_eq!(transcript.tts_text(), "Hello there.");
    let request = gemini.wait_for_requests(1, TURN_TIMEOUT)[0].json();
    assert!(request.get("tools").is_none(), "{request}");
    assert!(request.get("toolConfig").is_none(), "{request}");
    worker.wait_for_log("TOOLS is not used: TOOLS[0] (shop hours)", TURN_TIMEOUT);
}
