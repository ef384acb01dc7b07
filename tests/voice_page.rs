//! The voice page in a real browser (issue 20): headless Debian Chromium drives the real page and
//! the real `@layercode/js-sdk` against the real worker under `wrangler dev` and the local
//! Layercode stand-in (`layercode-sim serve`, the binary `./scripts/dev.sh` runs), with Gemini
//! mocked. Needs the built worker, `/usr/bin/chromium` and `espeak-ng` (./scripts/test.sh
//! installs both).
//!
//! Screenshots go to `target/screenshots/`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test fails by panicking

mod common;
use common::browser::Browser;
use common::mock_server::{json_reply, MockReply, MockServer};
use common::worker::{new_run_dir, ProcessGroup};
use common::*;

use serde_json::{json, Value};
use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

/// The agent the stand-in knows and the worker names (`LAYERCODE_AGENT_ID`).
const AGENT: &str = "agent_voice_page";
const TOOL_SECRET: &str = "tool_secret_for_the_voice_page";
const CONVERSATIONS_KEY: &str = "conversations_key_for_the_voice_page";

/// What the mock model writes for an ordinary message, piece by piece.
const HELLO: [&str; 5] = ["Hello ", "from the ", "mock model, ", "word ", "by word."];
/// How a reply to talk over starts (300 ms between pieces). The rest waits for a gate the test
/// opens once the caller has cut in: the reply is still going when the barge-in comes, however
/// slow the machine. (A whole 4.8 s story could end before a typed barge-in reached the worker,
/// and then nothing was cut.)
const STORY_START: [&str; 4] = ["Once ", "upon ", "a ", "time, "];
const WELCOME: &str = "Hi! How can I help you today?";

// ---------------------------------------------------------------------------------------------
// The pieces: the stand-in, the model, the tool, the worker

/// `layercode-sim serve` on a port the kernel picks, in its own process group.
struct StandIn {
    base_url: String,
    log: PathBuf,
    group: Option<ProcessGroup>,
}

impl StandIn {
    fn start() -> StandIn {
        let speech = Command::new("espeak-ng").arg("--version").output();
        assert!(
            speech.is_ok_and(|o| o.status.success()),
            "the browser tests need espeak-ng (./scripts/test.sh installs it: apt-get install -y espeak-ng)"
        );
        let dir = new_run_dir(&PathBuf::from(env!("CARGO_MANIFEST_DIR")));
        let log = dir.join("layercode-sim.log");
        let mut command = Command::new(env!("CARGO_BIN_EXE_layercode-sim"));
        command.current_dir(&dir).args([
            "serve",
            "--port",
            "0",
            "--secret",
            TEST_WEBHOOK_SECRET,
            "--api-key",
            TEST_LAYERCODE_API_KEY,
            "--agent-id",
            AGENT,
        ]);
        let mut group = ProcessGroup::spawn(command, &log, &dir.with_extension("pgid"));
        let deadline = Instant::now() + Duration::from_secs(30);
        let banner = loop {
            let text = fs::read_to_string(&log).unwrap_or_default();
            if let Some(line) = text.lines().find(|l| l.contains("Layercode stand-in on ")) {
                break line.to_string();
            }
            if let Some(status) = group.exit_status() {
                panic!("layercode-sim serve {status}:\n{text}");
            }
            assert!(
                Instant::now() < deadline,
                "layercode-sim serve did not start:\n{text}"
            );
            thread::sleep(Duration::from_millis(50));
        };
        assert!(banner.contains("speech: espeak-ng"), "{banner}");
        let base_url = banner
            .split_whitespace()
            .find(|w| w.starts_with("http://127.0.0.1:"))
            .expect("the stand-in's URL")
            .to_string();
        StandIn {
            base_url,
            log,
            group: Some(group),
        }
    }

    /// Points the agent's webhooks at `worker`, through the REST call Layercode has for it.
    fn send_webhooks_to(&self, worker: &Worker) {
        let answer = post_json(
            &format!("{}/v1/agents/{AGENT}", self.base_url),
            &[("Authorization", &format!("Bearer {TEST_LAYERCODE_API_KEY}"))],
            &json!({ "webhook_url": worker.base_url }).to_string(),
        );
        assert_eq!(answer.status, 200, "{}", answer.text());
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Stops it (Layercode goes away mid-call, or is down).
    fn stop(&mut self) {
        drop(self.group.take());
    }
}

/// The first text part of a Gemini content entry.
fn text_of(content: &Value) -> String {
    content["parts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["text"].as_str())
        .collect()
}

/// A model that answers by what it is asked: the hours tool for "hours", `end_call` for "bye",
/// a story for "story" ([`STORY_START`], then a word every 300 ms for a minute once
/// `story_goes_on` is open), [`HELLO`] otherwise; after a tool's answer, a sentence about it.
fn model(story_goes_on: Gate) -> MockGemini {
    use gemini_fixtures::{call_round, cued, reply, text_event};
    MockGemini::start_with(move |request| {
        let body = request.json();
        let contents = body["contents"].as_array().cloned().unwrap_or_default();
        let last = contents.last().cloned().unwrap_or_default();
        let answered = last["parts"]
            .as_array()
            .into_iter()
            .flatten()
            .find_map(|p| p["functionResponse"]["name"].as_str().map(str::to_string));
        let gap = Duration::from_millis(40);
        match answered.as_deref() {
            Some("end_call") => return reply(&["Goodbye, ", "thanks for calling."], gap),
            Some(_) => return reply(&["The shop is open ", "until seven."], gap),
            None => {}
        }
        let said = text_of(&last).to_lowercase();
        let call = |name: &str, args: Value| {
            call_round(
                &json!([{"functionCall": {"name": name, "args": args, "id": "call_1"},
                         "thoughtSignature": "c2lnbmF0dXJl"}])
                .to_string(),
            )
        };
        if said.contains("hours") {
            call("shop_hours", json!({"city": "Paris"}))
        } else if said.contains("bye") {
            call("end_call", json!({}))
        } else if said.contains("story") {
            let every = || Cue::After(Duration::from_millis(300));
            let mut events: Vec<(Cue, String)> = STORY_START
                .iter()
                .map(|piece| (every(), text_event(piece, None)))
                .collect();
            // The rest keeps coming after the barge-in: wrangler dev tells the worker that
            // Layercode hung up only at its next write.
            events.push((Cue::Opened(story_goes_on.clone()), text_event("and ", None)));
            events.extend((0..200).map(|_| (every(), text_event("on ", None))));
            cued(events)
        } else {
            reply(&HELLO, gap)
        }
    })
}

/// The hours tool's endpoint.
fn tool() -> Mock<MockReply> {
    Mock::<MockReply>::new(MockServer::start("hours tool", || {
        json_reply(
            200,
            "application/json",
            r#"{"open": true, "until": "19:00"}"#,
        )
    }))
}

/// The worker serving the page locally (`VOICE_PAGE=local`), its Layercode being `standin`.
fn worker(gemini: &MockGemini, standin: &StandIn, tool: &Mock<MockReply>, agent: &str) -> Worker {
    let unused_layercode = MockLayercode::start();
    let tools = json!([
        {"name": "shop_hours", "description": "Opening hours of one shop.",
         "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                        "required": ["city"]},
         "url": format!("{}/hours", tool.base_url()), "filler": "Let me check the hours."},
        {"builtin": "end_call"}
    ]);
    let worker = Worker::start(
        WorkerOptions::new(gemini, &unused_layercode)
            .var("VOICE_PAGE", "local")
            .var("LAYERCODE_AGENT_ID", agent)
            .var(LAYERCODE_BASE_URL_VAR, &standin.base_url)
            .var("TOOLS", &tools.to_string())
            .secret("TOOLS_SIGNING_SECRET", TOOL_SECRET)
            .secret("CONVERSATIONS_API_KEY", CONVERSATIONS_KEY)
            // A reload resumes only with the conversation's cookie (README, who may resume).
            .secret("CONVERSATION_COOKIE_SECRET", "test_cookie_secret")
            // The story waits for the caller to cut in, and the page's typing is slow on a
            // loaded machine: a silence limit (10 s by default) the wait could reach would end
            // the story with an apology instead. No test here is about that limit.
            .var("GEMINI_TIMEOUT_MS", "60000"),
    );
    standin.send_webhooks_to(&worker);
    worker
}

fn screenshot_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("target/screenshots/{name}.png"))
}

// ---------------------------------------------------------------------------------------------
// Reading the page

fn rows(state: &Value) -> Vec<Value> {
    state["rows"].as_array().cloned().unwrap_or_default()
}

/// `(role, text)` of every row.
fn row_texts(state: &Value) -> Vec<(String, String)> {
    rows(state)
        .iter()
        .map(|r| {
            (
                r["role"].as_str().unwrap_or_default().to_string(),
                r["text"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn pair(role: &str, text: &str) -> (String, String) {
    (role.to_string(), text.to_string())
}

/// The last row of `role`.
fn last_row(state: &Value, role: &str) -> Value {
    rows(state)
        .into_iter()
        .rev()
        .find(|r| r["role"] == role)
        .unwrap_or_else(|| panic!("no {role} row in {state}"))
}

fn words(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The conversation as the worker stored it (`GET /conversations/{id}`).
fn stored(worker: &Worker, conversation: &str) -> Value {
    let response = request(
        "GET",
        &worker.url(&format!("/conversations/{conversation}")),
        &[("Authorization", &format!("Bearer {CONVERSATIONS_KEY}"))],
        b"",
    );
    assert_eq!(response.status, 200, "{}", response.text());
    response.json()
}

/// Waits until the stored conversation satisfies `done` (writes finish after the reply).
fn stored_when(worker: &Worker, conversation: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + TURN_TIMEOUT;
    loop {
        let conversation_now = stored(worker, conversation);
        if done(&conversation_now) {
            return conversation_now;
        }
        assert!(
            Instant::now() < deadline,
            "the stored conversation never got there: {conversation_now}"
        );
        thread::sleep(Duration::from_millis(100));
    }
}

fn assert_accessible(browser: &mut Browser) {
    let violations = browser.accessibility_violations();
    assert!(violations.is_empty(), "axe-core: {violations:#?}");
}

// ---------------------------------------------------------------------------------------------
// The tests

#[test]
fn a_conversation_in_the_browser_from_the_welcome_to_the_agent_hanging_up() {
    let (gemini, tool) = (model(Gate::new()), tool());
    let standin = StandIn::start();
    let worker = worker(&gemini, &standin, &tool, AGENT);
    let mut browser = Browser::launch();

    let page = browser.open(&worker.url("/"), true);
    assert_eq!(
        page["localNote"], true,
        "the page says there is no speech recognition"
    );
    assert_eq!(page["call"]["text"], "Start call");
    assert_eq!(page["messageDisabled"], true);
    assert_accessible(&mut browser);

    // Keyboard only: the first Tab reaches "Start call", Enter starts the call.
    let order = browser.call("tabOrder", json!({"count": 1}));
    assert_eq!(order, json!(["Start call"]));
    browser.call("press", json!({"key": "Enter"}));
    let state = browser.wait_for(
        json!({"status": "Connected", "row": {"role": "agent", "text": WELCOME, "state": "done"}}),
    );
    assert_eq!(state["call"]["text"], "End call");
    assert_eq!(state["mute"]["disabled"], false);
    let storage = browser.call("sessionStorage", json!({}));
    let conversation = storage["voice-page.conversation-id"]
        .as_str()
        .expect("the conversation id is kept for a reload")
        .to_string();

    // A typed turn: the reply streams in, in order, exactly as the model wrote it.
    browser.say("hello");
    let state = browser
        .wait_for(json!({"rowCount": {"match": {"role": "agent", "state": "done"}, "atLeast": 2}}));
    assert_eq!(
        row_texts(&state),
        [
            pair("agent", WELCOME),
            pair("user", "hello"),
            pair("agent", &HELLO.concat())
        ]
    );
    let (user, reply) = (&rows(&state)[1], &rows(&state)[2]);
    assert!(user["turn"].is_string(), "{user}");
    assert_eq!(
        user["turn"], reply["turn"],
        "one row per turn, the user's and the agent's"
    );
    // Both meters moved: the agent's espeak-ng voice and the synthetic microphone. The highest
    // level each showed since the page opened, not the level now: the voice may have stopped
    // playing by the time a loaded machine gets to look.
    browser.wait_for(json!({"agentLevelPeakAbove": 0.0, "callerLevelPeakAbove": 0.0}));

    // Mute is a real toggle button.
    browser.click("Mute");
    let state = browser.wait_for(json!({"status": "muted"}));
    assert_eq!(state["mute"]["pressed"], "true");
    browser.click("Mute");
    let state = browser.wait_for(json!({"status": "Connected. Type a message"}));
    assert_eq!(state["mute"]["pressed"], "false");

    // A tool call shows its status in its turn's row, updated in place.
    browser.say("check the hours in Paris");
    let state = browser
        .wait_for(json!({"row": {"role": "agent", "eventIncludes": "answered", "state": "done"}}));
    let tool_row = last_row(&state, "agent");
    assert_eq!(tool_row["events"], json!(["The tool shop_hours answered."]));
    // Less a "Still checking" line, said only if the worker's log shows a round of 2 s: the
    // endpoint answers at once, but a loaded machine can make the round that slow.
    let said = without_still_checking(
        &worker,
        &conversation,
        tool_row["turn"].as_str().unwrap(),
        &words(tool_row["text"].as_str().unwrap()),
    );
    assert_eq!(
        said,
        "Let me check the hours. The shop is open until seven."
    );
    assert_eq!(tool.requests().len(), 1, "the tool was called once");
    browser.screenshot(&screenshot_path("voice-page-conversation"));

    // A reload keeps the transcript and resumes the same conversation.
    let before = row_texts(&state);
    let page = browser.call("reload", json!({}));
    assert_eq!(row_texts(&page), before);
    assert!(
        page["status"]
            .as_str()
            .unwrap()
            .contains("carry on this conversation"),
        "{page}"
    );
    browser.click("Start call");
    browser.wait_for(json!({"status": "Connected", "rowCount": {"match": {"role": "agent", "text": WELCOME, "state": "done"}, "atLeast": 2}}));
    let storage = browser.call("sessionStorage", json!({}));
    assert_eq!(storage["voice-page.conversation-id"], conversation.as_str());
    let asked_before = gemini.requests().len();
    browser.say("do you remember me");
    browser.wait_for(json!({"rowCount": {"match": {"role": "agent", "text": HELLO.concat(), "state": "done"}, "atLeast": 2}}));
    let request = &gemini.wait_for_requests(asked_before + 1, TURN_TIMEOUT)[asked_before];
    let history: Vec<String> = request.json()["contents"]
        .as_array()
        .unwrap()
        .iter()
        .map(text_of)
        .collect();
    for earlier in ["hello", "check the hours in Paris", "do you remember me"] {
        assert!(
            history.iter().any(|t| t == earlier),
            "{earlier:?} not in {history:?}"
        );
    }

    // "bye": the goodbye is said, then the page hangs up by itself.
    browser.say("bye for now");
    let state = browser.wait_for(json!({"callText": "Start call", "row": {"role": "note", "text": "The agent ended the call."}}));
    let goodbye = rows(&state)
        .into_iter()
        .rev()
        .find(|r| r["role"] == "agent")
        .unwrap();
    assert!(
        goodbye["text"]
            .as_str()
            .unwrap()
            .contains("Goodbye, thanks for calling."),
        "{goodbye}"
    );
    assert!(
        goodbye["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e == "The agent is ending the call."),
        "{goodbye}"
    );
    assert_eq!(state["problem"], "", "hanging up is not a problem");
    // Layercode sends session.end with the transcript when the socket closes: both sessions
    // of this conversation are recorded.
    let conversation_now = stored_when(&worker, &conversation, |c| {
        c["sessions"].as_array().is_some_and(|s| s.len() == 2)
    });
    assert!(conversation_now["sessions"][1]["transcript_messages"].as_u64() >= Some(4));

    assert_accessible(&mut browser);
    let problems = browser.problems();
    assert!(
        problems.is_empty(),
        "console errors or failed requests: {problems:#?}"
    );

    // A phone's width: nothing scrolls sideways.
    let size = browser.call("setViewport", json!({"width": 375, "height": 740}));
    assert!(
        size["scrollWidth"].as_u64() <= size["clientWidth"].as_u64(),
        "{size}"
    );
    browser.screenshot(&screenshot_path("voice-page-phone"));
    assert!(!standin.log().contains("failed"), "{}", standin.log());
}

#[test]
fn typing_over_a_slow_reply_cuts_it_and_the_model_hears_only_what_was_delivered() {
    let story_goes_on = Gate::new();
    let (gemini, tool) = (model(story_goes_on.clone()), tool());
    let mut standin = StandIn::start();
    let worker = worker(&gemini, &standin, &tool, AGENT);
    let mut browser = Browser::launch();

    // A refused microphone is said in plain words, with a way on without it.
    browser.open(&worker.url("/"), false);
    browser.click("Start call");
    let state = browser.wait_for(json!({"problem": "The microphone is blocked"}));
    assert_eq!(state["withoutMic"]["hidden"], false, "{state}");
    assert_eq!(state["call"]["text"], "Start call");
    browser.click("Start call without the microphone");
    let state = browser.wait_for(
        json!({"status": "Connected", "row": {"role": "agent", "text": WELCOME, "state": "done"}}),
    );
    assert_eq!(state["problem"], "");
    assert_eq!(
        state["mute"]["disabled"], true,
        "no microphone, nothing to mute"
    );

    browser.say("tell me a story");
    browser.wait_for(json!({"row": {"role": "agent", "textIncludes": "upon a time,"}}));
    browser.say("stop, please");
    let state = browser.wait_for(json!({"rowCount": {"match": {"role": "agent", "state": "done"}, "atLeast": 2}, "row": {"role": "agent", "state": "cut"}}));
    // Cut in: the story may go on, to a caller who is no longer there.
    story_goes_on.open();
    let cut = rows(&state)
        .into_iter()
        .find(|r| r["state"] == "cut")
        .unwrap();
    let delivered = words(cut["text"].as_str().unwrap());
    assert_eq!(
        delivered,
        words(&STORY_START.concat()),
        "cut where it stood"
    );
    assert_eq!(
        row_texts(&state)[1..],
        [
            pair("user", "tell me a story"),
            pair("agent", cut["text"].as_str().unwrap()),
            pair("user", "stop, please"),
            pair("agent", &HELLO.concat()),
        ]
    );

    // The next model request holds only what was delivered.
    let requests = gemini.wait_for_requests(2, TURN_TIMEOUT);
    let contents = requests[1].json()["contents"].as_array().unwrap().clone();
    let n = contents.len();
    assert_eq!(text_of(&contents[n - 1]), "stop, please");
    assert_eq!(contents[n - 2]["role"], "model");
    assert_eq!(words(&text_of(&contents[n - 2])), delivered);
    assert!(
        gemini.client_disconnected(0, TURN_TIMEOUT),
        "the story's model request was aborted"
    );
    let conversation = browser.call("sessionStorage", json!({}))["voice-page.conversation-id"]
        .as_str()
        .unwrap()
        .to_string();
    let stored_now = stored_when(&worker, &conversation, |c| {
        c["messages"]
            .as_array()
            .is_some_and(|m| m.iter().any(|m| m["status"] == "interrupted"))
    });
    let interrupted = stored_now["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["status"] == "interrupted")
        .unwrap()
        .clone();
    assert_eq!(words(interrupted["text"].as_str().unwrap()), delivered);
    browser.screenshot(&screenshot_path("voice-page-barge-in"));

    // Layercode goes away mid-call: the page says so.
    standin.stop();
    let state = browser.wait_for(
        json!({"problem": "The connection to the voice service dropped", "callText": "Start call"}),
    );
    assert_eq!(state["messageDisabled"], true);
    let problems = browser.problems();
    assert!(
        problems
            .iter()
            .all(|p| !p.starts_with("uncaught") && !p.contains("Content Security Policy")),
        "{problems:#?}"
    );
}

#[test]
fn a_failing_authorize_shows_its_message() {
    let (gemini, tool) = (model(Gate::new()), tool());
    let mut standin = StandIn::start();
    // The worker names an agent the stand-in does not know.
    let worker = worker(&gemini, &standin, &tool, "agent_nobody_knows");
    let mut browser = Browser::launch();

    browser.open(&worker.url("/"), true);
    browser.click("Start call");
    let state =
        browser.wait_for(json!({"problem": "The call could not start", "callText": "Start call"}));
    assert!(
        state["problem"]
            .as_str()
            .unwrap()
            .contains("invalid agent_id"),
        "{state}"
    );
    assert!(
        state["status"]
            .as_str()
            .unwrap()
            .starts_with("Not connected"),
        "{state}"
    );
    browser.screenshot(&screenshot_path("voice-page-authorize-error"));

    // Layercode is down.
    standin.stop();
    browser.click("Start call");
    let state = browser
        .wait_for(json!({"problem": "upstream service unreachable", "callText": "Start call"}));
    assert!(
        state["problem"]
            .as_str()
            .unwrap()
            .contains("the voice service did not answer"),
        "{state}"
    );
    let problems = browser.problems();
    assert!(
        problems
            .iter()
            .all(|p| !p.starts_with("uncaught") && !p.contains("Content Security Policy")),
        "{problems:#?}"
    );
}

#[test]
fn the_page_is_off_unless_voice_page_says_so_and_its_files_are_static_assets() {
    let (_gemini, _layercode, worker) = start_default();
    assert_eq!(get(&worker.url("/")).status, 404);
    // The static files are served without the worker, with their own headers.
    let script = get(&worker.url("/voice/app.js"));
    assert_eq!(script.status, 200);
    assert_eq!(script.header("x-content-type-options"), Some("nosniff"));
    assert!(script
        .header("content-type")
        .unwrap_or_default()
        .contains("javascript"));
    let sdk = get(&worker.url("/voice/vendor/layercode-js-sdk.esm.js"));
    assert_eq!(sdk.status, 200, "the pinned SDK is served from the worker");
    let pinned: Value = serde_json::from_str(
        &fs::read_to_string(
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("node_modules/@layercode/js-sdk/package.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let package: Value = serde_json::from_str(
        &fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("package.json"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        package["devDependencies"]["@layercode/js-sdk"], pinned["version"],
        "pinned exactly"
    );
    // The API routes are the worker's, as before.
    assert_eq!(get(&worker.url("/health")).status, 200);
}
