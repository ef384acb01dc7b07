//! Tools (issue 12) under the real runtime: how `/health` and the log report the `TOOLS`
//! setting, that a refused `TOOLS` leaves turns running as before, and a whole tool turn
//! against a real endpoint on loopback: what the endpoint received and its signature, what
//! Gemini received in each round, and what was spoken.

mod common;
use common::*;

use std::time::Duration;

use common::mock_server::{json_reply, MockReply, MockServer};

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

const TOOL_SECRET: &str = "tool_signing_secret_for_tests";

#[test]
fn a_tool_turn_calls_the_signed_endpoint_and_answers_with_its_result() {
    use gemini_fixtures::{parts_chunk, reply};
    let endpoint = Mock::<MockReply>::new(MockServer::start("tool endpoint", || {
        json_reply(
            200,
            "application/json",
            r#"{"open": true, "until": "19:00"}"#,
        )
    }));
    let tools = SHOP_HOURS.replace("http://127.0.0.1:9", &endpoint.base_url());
    let (gemini, worker) = start(|o| {
        o.var("TOOLS", &tools)
            .secret("TOOLS_SIGNING_SECRET", TOOL_SECRET)
    });
    let call = r#"{"functionCall": {"name": "shop_hours", "args": {"city": "Paris"}, "id": "fc_1"}, "thoughtSignature": "c2lnbmF0dXJl"}"#;
    let trailing = r#"{"text": "", "thoughtSignature": "ZW5k"}"#;
    gemini.push(GeminiReply::Stream {
        events: vec![
            (Duration::ZERO, parts_chunk(&format!("[{call}]"), None)),
            (
                Duration::from_millis(20),
                parts_chunk(&format!("[{trailing}]"), Some("STOP")),
            ),
        ],
        framing: Framing::Lf,
        then: StreamEnd::Close,
    });
    gemini.push(reply(&["It is open until seven."], Duration::ZERO));

    let transcript = stream_webhook(
        &worker,
        &message("conv_tools", "t1", "Is the Paris shop open?"),
    );
    assert_well_formed_turn(&transcript, "t1");
    assert_eq!(
        transcript.tts_text(),
        "Let me check the hours. It is open until seven."
    );
    let statuses: Vec<String> = transcript
        .events
        .iter()
        .filter(|e| e.json["type"] == "response.data")
        .map(|e| {
            let c = &e.json["content"];
            format!(
                "{} {} {} {}",
                c["type"], c["name"], c["call_id"], c["status"]
            )
        })
        .collect();
    assert_eq!(
        statuses,
        vec![
            r#""tool" "shop_hours" "fc_1" "started""#,
            r#""tool" "shop_hours" "fc_1" "done""#
        ]
    );

    // The endpoint got the five fields, signed like Layercode's webhook.
    let received = endpoint.wait_for_requests(1, TURN_TIMEOUT);
    assert_eq!(received.len(), 1);
    let body = received[0].json();
    assert_eq!(
        body,
        serde_json::json!({"tool": "shop_hours", "call_id": "fc_1", "args": {"city": "Paris"},
                           "conversation_id": "conv_tools", "turn_id": "t1"})
    );
    let header = received[0].header("x-tool-signature").expect("signed");
    let t: u64 = header
        .split(',')
        .find_map(|kv| kv.strip_prefix("t="))
        .and_then(|t| t.parse().ok())
        .expect("t=");
    assert!(now_secs().abs_diff(t) < 60);
    assert_eq!(header, sign(TOOL_SECRET, t, &received[0].body));

    // Round 1 declared the tool; round 2 sent the model's parts back verbatim, then the answer.
    let requests = gemini.wait_for_requests(2, TURN_TIMEOUT);
    assert_eq!(requests.len(), 2);
    let first = requests[0].json();
    assert_eq!(
        first["tools"][0]["functionDeclarations"][0]["name"],
        "shop_hours"
    );
    assert_eq!(
        first["tools"][0]["functionDeclarations"][0]["parametersJsonSchema"]["required"],
        serde_json::json!(["city"])
    );
    assert_eq!(first["toolConfig"]["functionCallingConfig"]["mode"], "AUTO");
    let second = requests[1].json();
    let contents = second["contents"].as_array().expect("contents");
    let n = contents.len();
    assert_eq!(
        contents[n - 3]["parts"][0]["text"],
        "Is the Paris shop open?"
    );
    let model_parts: serde_json::Value =
        serde_json::from_str(&format!("[{call}, {trailing}]")).unwrap();
    assert_eq!(
        contents[n - 2],
        serde_json::json!({"role": "model", "parts": model_parts})
    );
    assert_eq!(
        contents[n - 1],
        serde_json::json!({"role": "user", "parts": [{"functionResponse": {
            "name": "shop_hours", "id": "fc_1",
            "response": {"output": {"open": true, "until": "19:00"}}}}]})
    );
    assert_eq!(
        second["toolConfig"]["functionCallingConfig"]["mode"],
        "AUTO"
    );

    // The log line counts the rounds and the call, without its arguments or result.
    let line = worker.wait_for_log("\"tool_rounds\":2", TURN_TIMEOUT);
    assert!(line.contains(r#""name":"shop_hours","round":1"#), "{line}");
    assert!(line.contains(r#""outcome":"done""#), "{line}");
    let logs = worker.logs();
    assert!(!logs.contains("19:00") && !logs.contains("Paris"), "{logs}");
}
