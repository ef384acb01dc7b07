//! Tools (issue 12) under the real runtime: how `/health` and the log report the `TOOLS`
//! setting, that a refused `TOOLS` leaves turns running as before, and a whole tool turn
//! against a real endpoint on loopback: what the endpoint received and its signature, what
//! Gemini received in each round, and what was spoken. Then endpoints that fail, cannot be
//! reached, hang or change something (booked once, however often the turn is redelivered), the
//! built-in `end_call`, and a barge-in while a call runs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test fails by panicking

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

/// Turn `turn_id` of `conversation` saying `text`, read to the end and checked well formed.
fn checked_turn(worker: &Worker, conversation: &str, turn_id: &str, text: &str) -> SseTranscript {
    let transcript = stream_webhook(worker, &message(conversation, turn_id, text));
    assert_well_formed_turn(&transcript, turn_id);
    transcript
}

/// What a tool turn said, less a "Still checking" line that a slow machine made the worker say
/// (see [`without_still_checking`]): these tests' endpoints answer at once, and they are not
/// about that line (`a_hanging_endpoint_...` and `a_redelivered_turn_...` are).
fn said(worker: &Worker, conversation: &str, turn_id: &str, transcript: &SseTranscript) -> String {
    without_still_checking(worker, conversation, turn_id, &transcript.tts_text())
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
    let transcript = checked_turn(&worker, "conv_bad_tools", "t1", "Hi");
    assert_eq!(transcript.tts_text(), "Hello there.");
    let request = gemini.wait_for_requests(1, TURN_TIMEOUT)[0].json();
    assert!(request.get("tools").is_none(), "{request}");
    assert!(request.get("toolConfig").is_none(), "{request}");
    worker.wait_for_log("TOOLS is not used: TOOLS[0] (shop hours)", TURN_TIMEOUT);
}

const TOOL_SECRET: &str = "tool_signing_secret_for_tests";

#[test]
fn a_tool_turn_calls_the_signed_endpoint_and_answers_with_its_result() {
    use gemini_fixtures::{parts_event, reply};
    let endpoint = endpoint(|| {
        json_reply(
            200,
            "application/json",
            r#"{"open": true, "until": "19:00"}"#,
        )
    });
    let tools = SHOP_HOURS.replace("http://127.0.0.1:9", &endpoint.base_url());
    let (gemini, worker) = start_with_tools(&tools);
    let call = r#"{"functionCall": {"name": "shop_hours", "args": {"city": "Paris"}, "id": "fc_1"}, "thoughtSignature": "c2lnbmF0dXJl"}"#;
    let trailing = r#"{"text": "", "thoughtSignature": "ZW5k"}"#;
    gemini.push(gemini_fixtures::stream(vec![
        (Duration::ZERO, parts_event(&format!("[{call}]"), None)),
        (
            Duration::from_millis(20),
            parts_event(&format!("[{trailing}]"), Some("STOP")),
        ),
    ]));
    gemini.push(reply(&["It is open until seven."], Duration::ZERO));

    let transcript = checked_turn(&worker, "conv_tools", "t1", "Is the Paris shop open?");
    assert_eq!(
        said(&worker, "conv_tools", "t1", &transcript),
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
        function_response(serde_json::json!({
            "name": "shop_hours", "id": "fc_1",
            "response": {"output": {"open": true, "until": "19:00"}}}))
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

    // The next turn's request does not replay the rounds, but reminds the model of the call.
    let next = checked_turn(&worker, "conv_tools", "t2", "Thanks.");
    assert_eq!(next.tts_text(), DEFAULT_GEMINI_TEXT);
    let third = gemini.wait_for_requests(3, TURN_TIMEOUT)[2].json();
    assert!(!third.to_string().contains("\"functionCall\""), "{third}");
    let note = past_calls_note(&third);
    assert_eq!(
        note,
        vec![r#"- shop_hours {"city":"Paris"} -> {"output":{"open":true,"until":"19:00"}}"#]
    );
    assert!(
        !worker.logs().contains("19:00"),
        "the result reached the log"
    );
}

/// The lines of the system instruction's note on earlier tool calls (`tools::memory`).
fn past_calls_note(request: &serde_json::Value) -> Vec<String> {
    let prompt = request["systemInstruction"]["parts"][0]["text"]
        .as_str()
        .unwrap_or_default();
    let start = prompt
        .find("Tools you called earlier in this conversation")
        .unwrap_or_else(|| panic!("no note on earlier tool calls in {prompt:?}"));
    prompt[start..]
        .lines()
        .filter(|line| line.starts_with("- "))
        .map(str::to_string)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Failures, timeouts, end_call, redelivery and barge-in against real loopback endpoints.
// ---------------------------------------------------------------------------------------------

/// A round that ends without any part, as 2.5-flash-lite sometimes answers a tool result.
fn empty_round() -> GeminiReply {
    gemini_fixtures::stream(vec![(
        Duration::ZERO,
        gemini_fixtures::finish_only_event("STOP"),
    )])
}

/// A worker whose `TOOLS` is `tools`, with the tool signing secret set.
fn start_with_tools(tools: &str) -> (MockGemini, Worker) {
    start(|o| {
        o.var("TOOLS", tools)
            .secret("TOOLS_SIGNING_SECRET", TOOL_SECRET)
    })
}

/// Queues a model round that only calls (`parts`, a JSON array), then one that says `said`.
fn push_call_then_reply(gemini: &MockGemini, parts: &str, said: &[&str]) {
    gemini.push(gemini_fixtures::call_round(parts));
    gemini.push(gemini_fixtures::reply(said, Duration::ZERO));
}

/// The user content that answers one call: `{"functionResponse": answer}`.
fn function_response(answer: serde_json::Value) -> serde_json::Value {
    serde_json::json!({"role": "user", "parts": [{"functionResponse": answer}]})
}

/// `"name call_id status"` of every `response.data` tool event.
fn tool_statuses(events: &[SseEvent]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.json["type"] == "response.data" && e.json["content"]["type"] == "tool")
        .map(|e| {
            let c = &e.json["content"];
            format!(
                "{} {} {}",
                c["name"].as_str().unwrap_or("?"),
                c["call_id"].as_str().unwrap_or("?"),
                c["status"].as_str().unwrap_or("?")
            )
        })
        .collect()
}

/// The last content of a Gemini request: the user content answering the calls.
fn last_content(request: &RecordedRequest) -> serde_json::Value {
    let json = request.json();
    json["contents"]
        .as_array()
        .and_then(|c| c.last().cloned())
        .unwrap_or_default()
}

/// An endpoint that answers every call with `reply`.
fn endpoint(reply: impl Fn() -> MockReply + Send + Sync + 'static) -> Mock<MockReply> {
    Mock::<MockReply>::new(MockServer::start("tool endpoint", reply))
}

/// `TOOLS` with one HTTP tool `name` at `url`, plus `extra` fields (e.g. `, "timeout_ms": 900`).
fn http_tool(name: &str, url: &str, extra: &str) -> String {
    format!(
        r#"{{"name": "{name}", "description": "A test tool.",
            "parameters": {{"type": "object", "properties": {{"city": {{"type": "string"}}}}}},
            "url": "{url}"{extra}}}"#
    )
}

/// `shop_hours` at `endpoint`'s `/hours`, with its filler, plus `extra` fields before it.
fn shop_hours_at(endpoint: &Mock<MockReply>, extra: &str) -> String {
    http_tool(
        "shop_hours",
        &format!("{}/hours", endpoint.base_url()),
        &format!(r#"{extra}, "filler": "Let me check the hours.""#),
    )
}

/// The model's parts that call `shop_hours` for Paris, with call id `id`.
fn call_shop_hours_in_paris(id: &str) -> String {
    format!(
        r#"[{{"functionCall": {{"name": "shop_hours", "args": {{"city": "Paris"}}, "id": "{id}"}}}}]"#
    )
}

#[test]
fn a_failing_or_unreachable_endpoint_is_an_error_for_the_model_and_spoken_as_a_sentence() {
    let failing = endpoint(|| json_reply(500, "text/plain", "boom"));
    let closed = ClosedPort::reserve();
    let tools = format!(
        "[{}, {}]",
        shop_hours_at(&failing, ""),
        // Reserved and never listening: the connection is refused.
        http_tool("stock", &format!("{}/stock", closed.url()), "")
    );
    let (gemini, worker) = start_with_tools(&tools);

    // A 500: the model hears the status as an error and says a sentence about it.
    push_call_then_reply(
        &gemini,
        &call_shop_hours_in_paris("fc_500"),
        &["Sorry, I can't see the hours right now."],
    );
    let transcript = checked_turn(&worker, "conv_500", "t1", "Hours in Paris?");
    assert_eq!(
        said(&worker, "conv_500", "t1", &transcript),
        "Let me check the hours. Sorry, I can't see the hours right now."
    );
    assert_eq!(
        tool_statuses(&transcript.events),
        vec!["shop_hours fc_500 started", "shop_hours fc_500 error"]
    );
    assert_eq!(failing.wait_for_requests(1, TURN_TIMEOUT).len(), 1);
    let requests = gemini.wait_for_requests(2, TURN_TIMEOUT);
    assert_eq!(
        last_content(&requests[1]),
        function_response(serde_json::json!({
            "name": "shop_hours", "id": "fc_500",
            "response": {"error": "the tool failed (HTTP status 500)"}}))
    );
    worker.wait_for_log(r#""name":"shop_hours","round":1"#, TURN_TIMEOUT);

    // Unreachable, and the model then says nothing twice: the caller still hears a sentence.
    gemini.push(gemini_fixtures::call_round(
        r#"[{"functionCall": {"name": "stock", "args": {"city": "Lyon"}}}]"#,
    ));
    gemini.push(empty_round());
    gemini.push(empty_round());
    let transcript = checked_turn(&worker, "conv_down", "t1", "Any stock in Lyon?");
    assert_eq!(
        said(&worker, "conv_down", "t1", &transcript),
        "One moment. Sorry, I couldn't finish looking that up. Could you ask again?"
    );
    // No id from the model: the worker made one, and the answer carries none.
    assert_eq!(
        tool_statuses(&transcript.events),
        vec!["stock t1:1:0 started", "stock t1:1:0 error"]
    );
    let requests = gemini.wait_for_requests(5, TURN_TIMEOUT);
    assert_eq!(
        requests.len(),
        5,
        "one call round, one empty answer, one retry"
    );
    let answer = function_response(serde_json::json!({
        "name": "stock", "response": {"error": "the tool could not be reached"}}));
    assert_eq!(last_content(&requests[3]), answer);
    assert_eq!(
        last_content(&requests[4]),
        answer,
        "the retry asks the same"
    );
    let line = worker.wait_for_log(r#""name":"stock""#, TURN_TIMEOUT);
    assert!(line.contains(r#""tool_rounds":3"#), "{line}");
    assert!(line.contains(r#""outcome":"error""#), "{line}");
}

#[test]
fn a_hanging_endpoint_times_out_is_aborted_and_the_timeout_is_spoken() {
    let hanging = endpoint(|| MockReply::Hang);
    // The call's deadline, far from the 2 s after which the worker says "Still checking": with
    // 2.6 s, a machine that stalled from before the 2 s until past the deadline woke to find
    // the call timed out first, and the line was never said. Now such a stall must last 6 s.
    let tools = format!("[{}]", shop_hours_at(&hanging, r#", "timeout_ms": 8000"#));
    let (gemini, worker) = start_with_tools(&tools);
    push_call_then_reply(
        &gemini,
        &call_shop_hours_in_paris("fc_slow"),
        &["The hours service is not answering, sorry."],
    );
    let transcript = checked_turn(&worker, "conv_hang", "t1", "Hours in Paris?");
    // Past two seconds the caller hears one "still checking" line, then the model's sentence.
    assert_eq!(
        transcript.tts_text(),
        "Let me check the hours. Still checking, thanks for waiting. \
         The hours service is not answering, sorry."
    );
    assert_eq!(
        tool_statuses(&transcript.events),
        vec!["shop_hours fc_slow started", "shop_hours fc_slow timeout"]
    );
    let requests = gemini.wait_for_requests(2, TURN_TIMEOUT);
    assert_eq!(
        last_content(&requests[1]),
        function_response(serde_json::json!({
            "name": "shop_hours", "id": "fc_slow",
            "response": {"error": "the tool did not answer within 8000 ms"}}))
    );
    // The worker gave up on the endpoint's request rather than leave it open.
    assert_eq!(hanging.wait_for_requests(1, TURN_TIMEOUT).len(), 1);
    assert!(
        hanging.client_disconnected(0, TURN_TIMEOUT),
        "the timed-out fetch was aborted"
    );
    let line = worker.wait_for_log(r#""outcome":"timeout""#, TURN_TIMEOUT);
    assert!(line.contains(r#""name":"shop_hours""#), "{line}");
}

#[test]
fn end_call_says_goodbye_then_asks_the_app_to_hang_up() {
    let (gemini, worker) = start(|o| o.var("TOOLS", r#"[{"builtin": "end_call"}]"#));
    push_call_then_reply(
        &gemini,
        r#"[{"functionCall": {"name": "end_call", "args": {}}, "thoughtSignature": "Ynll"}]"#,
        &["Goodbye, ", "have a nice day."],
    );
    let transcript = checked_turn(&worker, "conv_bye", "t1", "That's all, bye.");
    // No filler for end_call: the goodbye is the model's.
    assert_eq!(transcript.tts_text(), "Goodbye, have a nice day.");
    let kinds: Vec<String> = transcript
        .events
        .iter()
        .map(|e| match e.json["type"].as_str() {
            Some("response.data") if e.json["content"]["type"] == "tool" => format!(
                "tool {} {}",
                e.json["content"]["call_id"].as_str().unwrap_or("?"),
                e.json["content"]["status"].as_str().unwrap_or("?")
            ),
            Some("response.data") => e.json["content"].to_string(),
            Some(other) => other.to_string(),
            None => "?".to_string(),
        })
        .collect();
    let started = "tool t1:1:0 started";
    let done = "tool t1:1:0 done";
    assert_eq!(
        kinds,
        vec![
            started,
            done,
            "response.tts",
            "response.tts",
            r#"{"action":"end_call"}"#,
            "response.end"
        ]
    );
    let requests = gemini.wait_for_requests(2, TURN_TIMEOUT);
    let contents = requests[1].json()["contents"].clone();
    let n = contents.as_array().map(Vec::len).unwrap_or_default();
    assert_eq!(
        contents[n - 2],
        serde_json::json!({"role": "model", "parts": [
            {"functionCall": {"name": "end_call", "args": {}}, "thoughtSignature": "Ynll"}]})
    );
    assert_eq!(
        contents[n - 1],
        function_response(serde_json::json!({
            "name": "end_call", "response": {"output": {"status": "the call ends after your goodbye"}}}))
    );
}

#[test]
fn a_redelivered_turn_never_calls_a_side_effect_tool_twice() {
    // The booking answers only when the test opens the gate: after the worker has said it is
    // still checking (so that line is always in the reply) and after the redelivery arrived
    // (so it certainly arrives while the first delivery runs). Neither used to be certain: the
    // booking took 1 s, and the line came or not depending on how fast the machine was.
    let booked = Gate::new();
    let booking = {
        let booked = booked.clone();
        endpoint(move || MockReply::Cued {
            status: 200,
            content_type: "application/json".into(),
            pieces: vec![(Cue::Opened(booked.clone()), br#"{"booked": true}"#.to_vec())],
            end: StreamEnd::Close,
        })
    };
    let tools = format!(
        "[{}]",
        http_tool(
            "book_table",
            &format!("{}/book", booking.base_url()),
            // The longest deadline a tool may have: the held booking never reaches it.
            r#", "side_effect": true, "filler": "Booking that now.", "timeout_ms": 60000"#
        )
    );
    let (gemini, worker) = start_with_tools(&tools);
    push_call_then_reply(
        &gemini,
        r#"[{"functionCall": {"name": "book_table", "args": {"city": "Paris"}, "id": "fc_book"}}]"#,
        &["Your table is booked."],
    );

    let event = message("conv_book", "t1", "Book a table in Paris.");
    let mut first = open_webhook(&worker, &event);
    let mut seen = Vec::new();
    while !seen
        .iter()
        .any(|e: &SseEvent| tts_text(std::slice::from_ref(e)).contains(STILL_CHECKING))
    {
        seen.push(
            first
                .next_event(TURN_TIMEOUT)
                .expect("the filler, the status, the wait"),
        );
    }
    assert_eq!(booking.wait_for_requests(1, TURN_TIMEOUT).len(), 1);

    // Layercode redelivers the same turn while the booking runs, and once more afterwards.
    let during = open_webhook(&worker, &event);
    booked.open();
    let mut first = first.read_all(TURN_TIMEOUT);
    first.events.splice(0..0, seen);
    let during = during.read_all(TURN_TIMEOUT);
    let after = stream_webhook(&worker, &event);
    let reply = format!("Booking that now. {STILL_CHECKING} Your table is booked.");
    assert_well_formed_turn(&first, "t1");
    assert_eq!(first.tts_text(), reply);
    for again in [&during, &after] {
        assert_well_formed_turn(again, "t1");
        assert_eq!(again.tts_text(), reply);
        assert!(tool_statuses(&again.events).is_empty(), "no call replayed");
    }
    assert_eq!(booking.requests().len(), 1, "booked once");
    assert_eq!(
        gemini.requests().len(),
        2,
        "the model was asked once per round"
    );
    // Both redeliveries were logged as such (a log line can reach the file after its answer).
    let redelivered = |logs: &str| logs.matches(r#""outcome":"redelivered""#).count();
    let deadline = std::time::Instant::now() + TURN_TIMEOUT;
    while redelivered(&worker.logs()) < 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let logs = worker.logs();
    assert_eq!(redelivered(&logs), 2, "{logs}");
}

#[test]
fn barge_in_mid_tool_aborts_the_call_and_the_next_request_is_valid() {
    let hanging = endpoint(|| MockReply::Hang);
    let tools = format!("[{}]", shop_hours_at(&hanging, r#", "timeout_ms": 3000"#));
    let (gemini, worker) = start_with_tools(&tools);
    gemini.push(gemini_fixtures::call_round(
        r#"[{"functionCall": {"name": "shop_hours", "args": {"city": "Paris"}, "id": "fc_cut"}, "thoughtSignature": "c2ln"}]"#,
    ));
    let mut stream = open_webhook(&worker, &message("conv_cut", "t1", "Hours in Paris?"));
    let filler = stream.next_event(TURN_TIMEOUT).expect("the filler");
    assert_eq!(filler.json["content"], "Let me check the hours.");
    let started = stream.next_event(TURN_TIMEOUT).expect("the started status");
    assert_eq!(started.json["content"]["status"], "started");
    hanging.wait_for_requests(1, TURN_TIMEOUT);
    stream.disconnect();

    // The endpoint's request does not outlive the turn. Under `wrangler dev` the worker only
    // learns of the hang-up at its next write (the request signal does not fire while the turn
    // is silent), so this abort comes at the call's deadline at the latest (3 s here).
    assert!(
        hanging.client_disconnected(0, TURN_TIMEOUT),
        "the tool's fetch was aborted"
    );
    let line = worker.wait_for_log(r#""conversation_id":"conv_cut""#, TURN_TIMEOUT);
    assert!(line.contains(r#""outcome":"interrupted""#), "{line}");
    assert!(line.contains(r#""name":"shop_hours","round":1"#), "{line}");
    assert_eq!(hanging.requests().len(), 1, "the call was not retried");

    // Tool rounds are not replayed in later turns: the next request holds plain text turns only
    // (what was spoken of the interrupted turn), so no call is left without its answer and no
    // signature is needed. The model is reminded of the call, cut off by the caller, so that it
    // does not simply make it again.
    let asked_before = gemini.requests().len();
    let next = checked_turn(&worker, "conv_cut", "t2", "Never mind.");
    assert_eq!(next.tts_text(), DEFAULT_GEMINI_TEXT);
    let requests = gemini.wait_for_requests(asked_before + 1, TURN_TIMEOUT);
    let request = &requests[asked_before];
    let history = contents(&request.json());
    assert_eq!(history.len(), 3, "{history:?}");
    assert_eq!(history[0], turn("user", "Hours in Paris?"));
    assert_eq!(history[1].0, "model");
    assert!(
        history[1].1.starts_with("Let me check the hours."),
        "{history:?}"
    );
    assert_eq!(history[2], turn("user", "Never mind."));
    for absent in [
        "\"functionCall\"",
        "\"functionResponse\"",
        "thoughtSignature",
    ] {
        assert!(!request.body.contains(absent), "{}", request.body);
    }
    assert_eq!(
        hanging.requests().len(),
        1,
        "the next turn did not call the tool"
    );
    let note = past_calls_note(&request.json());
    assert_eq!(note.len(), 1, "{note:?}");
    assert!(
        note[0].starts_with(r#"- shop_hours {"city":"Paris"} -> {"error":"#),
        "{note:?}"
    );
}

/// The developer mock (`src/bin/mock-gemini.rs`, what `MOCK_GEMINI=1 ./scripts/dev.sh` runs),
/// on a port the kernel picks (`--port 0`, read back from its first line), killed when dropped.
struct DevMock {
    child: std::process::Child,
    url: String,
}

impl DevMock {
    fn start() -> DevMock {
        use std::io::BufRead;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_mock-gemini"))
            .args(["--port", "0"])
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start mock-gemini");
        let mut stderr = std::io::BufReader::new(child.stderr.take().expect("piped stderr"));
        let mut first = String::new();
        stderr
            .read_line(&mut first)
            .expect("read mock-gemini's first line");
        // Keep reading, so that a full pipe never blocks the mock.
        std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
        let url = first
            .trim()
            .rsplit(' ')
            .next()
            .filter(|url| url.starts_with("http://127.0.0.1:"))
            .unwrap_or_else(|| panic!("mock-gemini did not say where it listens: {first:?}"))
            .to_string();
        DevMock { child, url }
    }
}

impl Drop for DevMock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_developer_mock_calls_a_declared_tool_and_says_its_result() {
    let shop = endpoint(|| {
        json_reply(
            200,
            "application/json",
            r#"{"open": true, "until": "19:00"}"#,
        )
    });
    let tools = format!(
        "[{}, {{\"builtin\": \"end_call\"}}]",
        shop_hours_at(&shop, "")
    )
    .replace(r#""properties""#, r#""required": ["city"], "properties""#);
    let dev_mock = DevMock::start();
    let (_unused, worker) = start(|o| {
        o.var("TOOLS", &tools)
            .var(GEMINI_BASE_URL_VAR, &dev_mock.url)
            .secret("TOOLS_SIGNING_SECRET", TOOL_SECRET)
    });

    let plain = checked_turn(&worker, "conv_dev", "t1", "Hello");
    assert!(
        plain
            .tts_text()
            .ends_with("Say check to hear me call the shop_hours tool."),
        "{}",
        plain.tts_text()
    );

    let checked = checked_turn(
        &worker,
        "conv_dev",
        "t2",
        "Can you check the hours in Paris?",
    );
    assert_eq!(
        said(&worker, "conv_dev", "t2", &checked),
        "Let me check the hours. The shop hours tool says: open true, until 19:00."
    );
    assert_eq!(
        tool_statuses(&checked.events),
        vec![
            "shop_hours mock_call_1 started",
            "shop_hours mock_call_1 done"
        ]
    );
    let received = shop.wait_for_requests(1, TURN_TIMEOUT);
    assert_eq!(
        received[0].json()["args"],
        serde_json::json!({"city": "Paris"})
    );

    let bye = checked_turn(&worker, "conv_dev", "t3", "Thanks, bye!");
    assert_eq!(bye.tts_text(), "Goodbye, thanks for calling.");
    let last_data = bye
        .events
        .iter()
        .rev()
        .find(|e| e.json["type"] == "response.data")
        .map(|e| e.json["content"].clone());
    assert_eq!(last_data, Some(serde_json::json!({"action": "end_call"})));

    // The simulator shows the same loop: the status lines inline, then the hang-up request.
    let dir = std::env::temp_dir().join(format!("tools-sim-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("sim dir");
    let script = dir.join("script.txt");
    std::fs::write(&script, "can you check the hours in Paris\nok, bye\n").expect("script");
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_layercode-sim"))
        .current_dir(&dir)
        .arg("--script")
        .arg(&script)
        .args(["--url", &worker.url(""), "--secret", TEST_WEBHOOK_SECRET])
        .args(["--no-session-start", "--turn-timeout", "20"])
        .env_remove("LAYERCODE_WEBHOOK_SECRET")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run layercode-sim");
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    // As above, a "Still checking" line is taken out, if the simulator's turn (its own
    // conversation) had a round of calls that took 2 s.
    let line = format!(" {STILL_CHECKING}");
    let stdout = if stdout.contains(&line) {
        let slow: usize = worker
            .logs()
            .lines()
            .filter(|l| l.contains("\"event\":\"turn\"") && !l.contains("\"conv_dev\""))
            .filter_map(|l| serde_json::from_str(&l[l.find('{')?..]).ok())
            .map(|entry| slow_rounds(&entry))
            .sum();
        assert!(
            slow >= stdout.matches(&line).count(),
            "{STILL_CHECKING:?} without 2 s of calls:\n{stdout}\n{}",
            worker.logs()
        );
        stdout.replace(&line, "").into()
    } else {
        stdout
    };
    assert!(
        stdout.contains(
            "agent> Let me check the hours. [tool shop_hours started] [tool shop_hours done] \
             The shop hours tool says: open true, until 19:00.\n"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "agent> [tool end_call started] [tool end_call done] Goodbye, thanks for calling. \
             [the app is asked to end the call]\n"
        ),
        "{stdout}"
    );
}

/// Gemini 3 refuses a follow-up whose function call lost its `thoughtSignature` (400). Against a
/// mock that enforces that rule: parallel calls in separate events (only the first signed), a
/// second signed round, then words; every follow-up is accepted, and so is the next turn.
#[test]
fn gemini_3_accepts_every_follow_up_because_signatures_are_sent_back() {
    use gemini_fixtures::{missing_signature, parts_event, reply};
    let call = |name: &str, id: &str, signature: Option<&str>| {
        let signature = signature
            .map(|s| format!(r#", "thoughtSignature": "{s}""#))
            .unwrap_or_default();
        format!(
            r#"[{{"functionCall": {{"name": "{name}", "args": {{"city": "Oslo"}}, "id": "{id}"}}{signature}}}]"#
        )
    };
    let parallel = gemini_fixtures::stream(vec![
        (
            Duration::ZERO,
            parts_event(&call("shop_hours", "fc_a", Some("c2lnQQ==")), None),
        ),
        (
            Duration::from_millis(10),
            parts_event(&call("stock", "fc_b", None), Some("STOP")),
        ),
    ]);
    let gemini = MockGemini::start_requiring_signatures(vec![
        parallel,
        gemini_fixtures::call_round(&call("stock", "fc_c", Some("c2lnQw=="))),
        reply(&["Open until six, and in stock."], Duration::ZERO),
        reply(&["You are welcome."], Duration::ZERO),
    ]);
    let tool = endpoint(|| json_reply(200, "application/json", r#"{"ok": true}"#));
    let url = |path: &str| format!("{}/{path}", tool.base_url());
    let tools = format!(
        "[{}, {}]",
        http_tool("shop_hours", &url("hours"), ""),
        http_tool("stock", &url("stock"), "")
    );
    let layercode = MockLayercode::start();
    let worker = Worker::start(
        WorkerOptions::new(&gemini, &layercode)
            .var("GEMINI_MODEL", "gemini-3-flash-preview")
            .var("TOOLS", &tools)
            .secret("TOOLS_SIGNING_SECRET", TOOL_SECRET),
    );

    let transcript = stream_webhook(&worker, &message("conv_g3", "t1", "Hours and stock?"));
    assert_well_formed_turn(&transcript, "t1");
    assert_eq!(
        said(&worker, "conv_g3", "t1", &transcript),
        "One moment. Open until six, and in stock."
    );
    let transcript = stream_webhook(&worker, &message("conv_g3", "t2", "Thanks!"));
    assert_eq!(transcript.tts_text(), "You are welcome.");

    let requests = gemini.wait_for_requests(4, TURN_TIMEOUT);
    assert_eq!(tool.requests().len(), 3, "three calls, each made once");
    // The mock would have refused any of them; check what it checked.
    for request in &requests {
        assert!(!missing_signature(&request.json()), "{}", request.json());
    }
    // The last follow-up of t1 holds both rounds, each signature on its own call.
    let follow_up = requests[2].json();
    let signatures: Vec<&str> = follow_up["contents"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|c| c["parts"].as_array().into_iter().flatten())
        .filter_map(|p| p["thoughtSignature"].as_str())
        .collect();
    assert_eq!(signatures, vec!["c2lnQQ==", "c2lnQw=="]);
}

/// The rule the mock above enforces, on hand-made requests: only the current turn counts, and
/// only the first call of a model content must be signed.
#[test]
fn the_strict_mock_refuses_exactly_an_unsigned_call_in_the_current_turn() {
    use gemini_fixtures::missing_signature;
    let user = serde_json::json!({"role": "user", "parts": [{"text": "Hi"}]});
    let answer = serde_json::json!({"role": "user", "parts": [{"functionResponse": {
        "name": "f", "response": {"output": 1}}}]});
    let signed = serde_json::json!({"role": "model", "parts": [
        {"functionCall": {"name": "f"}, "thoughtSignature": "s"},
        {"functionCall": {"name": "g"}}]});
    let unsigned = serde_json::json!({"role": "model", "parts": [
        {"text": "One moment."}, {"functionCall": {"name": "f"}}]});
    let table = [
        (vec![&user, &signed, &answer], false),
        (vec![&user, &unsigned, &answer], true),
        (vec![&user, &signed, &answer, &unsigned, &answer], true),
        // An older turn is not validated.
        (vec![&user, &unsigned, &answer, &user], false),
    ];
    for (contents, refused) in table {
        let request = serde_json::json!({ "contents": contents });
        assert_eq!(missing_signature(&request), refused, "{request}");
    }
    let reply: MockReply = gemini_fixtures::missing_signature_reply().into();
    assert!(matches!(reply, MockReply::Full { status: 400, .. }));
}
