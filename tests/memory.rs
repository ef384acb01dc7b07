//! Memory beyond the history window, against the real worker: the running summary of a long
//! call, written by a model call after a turn's `response.end`, at most one at a time, sent
//! with later turns' instruction, stored and erased with the conversation.
//!
//! The mock model writes summaries deterministically (`common::mock_summary`: what the caller
//! said, oldest first), so a fact can be followed from the turn it was said in to a later
//! request.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test fails by panicking

mod common;
use common::*;

use serde_json::{json, Value};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

const API_KEY: &str = "test_conversations_api_key";
/// What the mock says to every turn.
const REPLY: &str = "Noted.";
/// A fact said once, in the first turn.
const FACT: &str = "My name is Ada Lovelace and my order number is 4417.";
/// How long a test waits for something asynchronous (a summary call after a turn).
const WAIT: Duration = Duration::from_secs(30);

/// The caller's words a turn's request ends with (empty for other requests).
fn asked(request: &RecordedRequest) -> String {
    let json = request.json();
    json["contents"]
        .as_array()
        .and_then(|c| c.last())
        .and_then(|c| c["parts"][0]["text"].as_str())
        .unwrap_or_default()
        .to_string()
}

fn noted() -> GeminiReply {
    gemini_fixtures::reply(&[REPLY], Duration::ZERO)
}

/// A worker whose mock writes summaries and answers every turn with `reply`.
fn start_with(
    reply: impl Fn(&RecordedRequest) -> GeminiReply + Send + Sync + 'static,
    configure: impl FnOnce(WorkerOptions) -> WorkerOptions,
) -> (MockGemini, Worker) {
    let gemini = MockGemini::start_summarising(reply);
    let layercode = MockLayercode::start();
    let options = WorkerOptions::new(&gemini, &layercode).secret("CONVERSATIONS_API_KEY", API_KEY);
    (gemini, Worker::start(configure(options)))
}

fn start() -> (MockGemini, Worker) {
    start_with(|_| noted(), |o| o)
}

/// One turn, read to its `response.end`.
fn turn(worker: &Worker, conversation: &str, n: usize, text: &str) -> SseTranscript {
    let transcript = stream_webhook(worker, &message(conversation, &format!("t{n}"), text));
    assert_well_formed_turn(&transcript, &format!("t{n}"));
    transcript
}

fn filler(n: usize) -> String {
    format!("Filler turn {n}.")
}

/// Turns `from..=to` of `conversation`, the first saying [`FACT`] and the others [`filler`].
fn turns(worker: &Worker, conversation: &str, from: usize, to: usize) {
    for n in from..=to {
        let text = if n == 1 { FACT.to_string() } else { filler(n) };
        let spoken = turn(worker, conversation, n, &text);
        assert_eq!(spoken.tts_text(), REPLY, "turn {n}");
    }
}

fn turn_requests(gemini: &MockGemini) -> Vec<Value> {
    gemini
        .requests()
        .iter()
        .map(RecordedRequest::json)
        .filter(|r| !is_summary_request(r))
        .collect()
}

fn summary_requests(gemini: &MockGemini) -> Vec<(Value, RequestTiming)> {
    gemini
        .requests()
        .iter()
        .zip(gemini.timings())
        .map(|(r, t)| (r.json(), t))
        .filter(|(r, _)| is_summary_request(r))
        .collect()
}

/// The request of the turn whose caller said `text` (the last user content ends with it).
fn request_of(gemini: &MockGemini, text: &str) -> Value {
    turn_requests(gemini)
        .into_iter()
        .find(|r| {
            contents(r)
                .last()
                .is_some_and(|(_, last)| last.ends_with(text))
        })
        .unwrap_or_else(|| panic!("no request for {text:?}"))
}

fn instruction(request: &Value) -> String {
    request["systemInstruction"]["parts"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The worker's `"event":"summary"` log lines, parsed.
fn summary_lines(worker: &Worker) -> Vec<Value> {
    worker
        .logs()
        .lines()
        .filter(|l| l.contains("\"event\":\"summary\""))
        .filter_map(|l| serde_json::from_str(&l[l.find('{')?..]).ok())
        .collect()
}

/// Waits until the worker has written `n` summary lines, and returns them.
fn wait_for_summaries(worker: &Worker, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + WAIT;
    loop {
        let lines = summary_lines(worker);
        if lines.len() >= n {
            return lines;
        }
        assert!(
            Instant::now() < deadline,
            "{n} summary line(s) expected, {} written:\n{}",
            lines.len(),
            worker.logs()
        );
        thread::sleep(Duration::from_millis(20));
    }
}

fn api(worker: &Worker, method: &str, id: &str) -> HttpResponse {
    let bearer = format!("Bearer {API_KEY}");
    request(
        method,
        &worker.url(&format!("/conversations/{id}")),
        &[("authorization", bearer.as_str())],
        b"",
    )
}

/// The caller lines every summary request folded, in order: `Caller: …` without the prefix.
fn folded_caller_lines(gemini: &MockGemini) -> Vec<String> {
    summary_requests(gemini)
        .iter()
        .flat_map(|(r, _)| folded_lines(r))
        .filter_map(|l| l.strip_prefix("Caller: ").map(str::to_string))
        .collect()
}

#[test]
fn a_fact_from_turn_1_is_remembered_at_turns_150_and_300_and_gone_after_delete() {
    let (gemini, worker) = start();
    turns(&worker, "conv_long", 1, 300);
    for n in [150, 300] {
        let request = request_of(&gemini, &filler(n));
        let history = contents(&request);
        assert!(history.len() <= 40, "turn {n}: {} contents", history.len());
        assert!(
            history.iter().all(|(_, text)| !text.contains("4417")),
            "turn {n}: the fact is long out of the window"
        );
        let instruction = instruction(&request);
        assert!(
            instruction.contains(&format!("{CALLER_SAID}{FACT}")),
            "turn {n} does not remember turn 1:\n{instruction}"
        );
    }
    // Before the first summary nothing is added to the instruction.
    assert!(!instruction(&request_of(&gemini, &filler(16))).contains(CALLER_SAID));

    // Batches: each call folds the next messages, none twice, none skipped, never the newest.
    let summaries = summary_requests(&gemini);
    let calls = summaries.len();
    println!("summary calls over 300 turns: {calls}");
    assert!((20..=27).contains(&calls), "{calls} summary calls");
    let folded = folded_caller_lines(&gemini);
    let expected: Vec<String> = (1..=folded.len())
        .map(|n| if n == 1 { FACT.to_string() } else { filler(n) })
        .collect();
    assert_eq!(folded, expected);
    assert!(folded.len() >= 280, "{} turns folded", folded.len());
    // Each call extends the summary the previous one wrote.
    assert_eq!(previous_summary(&summaries[0].0), None);
    for pair in summaries.windows(2) {
        assert_eq!(
            previous_summary(&pair[1].0),
            Some(mock_summary(&pair[0].0)),
            "a summary call did not start from the stored summary"
        );
    }
    // One log line per call, none failed, no content.
    let lines = wait_for_summaries(&worker, calls);
    for line in &lines[..calls] {
        assert!(
            ["stored", "deferred"].contains(&line["outcome"].as_str().unwrap()),
            "{line}"
        );
        assert!(line["ms"].as_u64().is_some(), "{line}");
        assert!(line["folded_messages"].as_u64().unwrap() >= 20, "{line}");
    }
    let logs = worker.logs();
    assert!(
        !logs.contains("4417") && !logs.contains("Lovelace"),
        "a summary was logged"
    );

    // Shown by the conversations API, then erased with the conversation.
    let read = api(&worker, "GET", "conv_long");
    assert_eq!(read.status, 200);
    let summary = &read.json()["summary"];
    assert!(
        summary["text"].as_str().unwrap().contains(FACT),
        "{summary}"
    );
    assert!(summary["through_turn_id"]
        .as_str()
        .unwrap()
        .starts_with('t'));
    assert!(summary["updated_at_ms"].as_i64().unwrap() > 1_700_000_000_000);
    assert_eq!(api(&worker, "DELETE", "conv_long").status, 204);
    turn(&worker, "conv_long", 301, "Who am I?");
    let after = request_of(&gemini, "Who am I?");
    assert_eq!(
        contents(&after),
        vec![(String::from("user"), String::from("Who am I?"))]
    );
    assert!(
        !instruction(&after).contains("4417"),
        "{}",
        instruction(&after)
    );
    assert_eq!(
        api(&worker, "GET", "conv_long").json()["summary"],
        Value::Null
    );
}

/// Turns 1–15 of `conversation` (30 messages, one short of a summary).
fn up_to_the_first_summary(worker: &Worker, conversation: &str) {
    turns(worker, conversation, 1, 15);
}

#[test]
fn the_summary_call_starts_only_after_the_turns_response_end() {
    use gemini_fixtures::{cued, text_event};
    // Turn 16's reply says its last words, then its body stays open until the test opens the
    // gate: the turn (and its `response.end`) can only end after that.
    let rest = Gate::new();
    let held = rest.clone();
    let (gemini, worker) = start_with(
        move |r| {
            if asked(r).ends_with("Filler turn 16.") {
                cued(vec![
                    (Cue::After(Duration::ZERO), text_event("Almost", None)),
                    (
                        Cue::After(Duration::ZERO),
                        text_event(" done.", Some("STOP")),
                    ),
                    (Cue::Opened(held.clone()), text_event("", None)),
                ])
            } else {
                noted()
            }
        },
        // No silence limit the held body could reach.
        |o| o.var("GEMINI_TIMEOUT_MS", "120000"),
    );
    up_to_the_first_summary(&worker, "conv_after");
    let mut last = open_webhook(&worker, &message("conv_after", "t16", &filler(16)));
    let words: Vec<SseEvent> = (0..2)
        .map(|_| last.next_event(TURN_TIMEOUT).expect("the reply's words"))
        .collect();
    assert_eq!(tts_text(&words), "Almost done.");
    // Every word is out, the body is held: no summary call yet.
    assert!(summary_requests(&gemini).is_empty());
    let opened_at = Instant::now();
    rest.open();
    let mut last = last.read_all(TURN_TIMEOUT);
    last.events.splice(0..0, words);
    assert_well_formed_turn(&last, "t16");

    wait_for_summaries(&worker, 1);
    let summaries = summary_requests(&gemini);
    assert_eq!(summaries.len(), 1);
    let (_, summary_timing) = &summaries[0];
    // The body ended only once the gate opened; the summary call came after that.
    assert!(
        summary_timing.received_at >= opened_at,
        "the summary call arrived {:?} before the reply's body could end",
        opened_at - summary_timing.received_at
    );
    // And after the turn's own log line, which is written once `response.end` is sent.
    let logs = worker.logs();
    let turn_line = logs.find("\"turn_id\":\"t16\"").unwrap();
    let summary_line = logs.find("\"event\":\"summary\"").unwrap();
    assert!(turn_line < summary_line);
}

#[test]
fn a_barge_in_during_a_summary_triggering_turn_keeps_what_was_heard() {
    let words: Vec<String> = (1..=40).map(|i| format!(" word{i}")).collect();
    let (gemini, worker) = start_with(
        move |r| {
            if asked(r).ends_with("Filler turn 16.") {
                let parts: Vec<&str> = std::iter::once("Once")
                    .chain(words.iter().map(String::as_str))
                    .collect();
                gemini_fixtures::reply(&parts, Duration::from_millis(150))
            } else {
                noted()
            }
        },
        |o| o,
    );
    up_to_the_first_summary(&worker, "conv_barge");
    let mut stream = open_webhook(&worker, &message("conv_barge", "t16", &filler(16)));
    let first = stream.next_event(TURN_TIMEOUT).unwrap();
    assert_eq!(first.json["content"], "Once");
    // Two frames taken before the hang-up, so the reply is stored as sent, whenever the worker
    // notices it (a reply left after its first frame is stored as unheard); the interruption
    // context below then cuts it to what was heard.
    let second = stream.next_event(TURN_TIMEOUT).unwrap();
    assert_eq!(second.json["content"], " word1");
    stream.disconnect();

    // The turn still ends (interrupted), and the summary still follows it.
    let lines = wait_for_summaries(&worker, 1);
    assert_eq!(lines[0]["outcome"], "stored", "{}", lines[0]);
    let summaries = summary_requests(&gemini);
    assert_eq!(summaries.len(), 1);
    let folded = folded_lines(&summaries[0].0);
    assert!(
        folded
            .iter()
            .all(|l| !l.contains("word1") && !l.contains("Once")),
        "the interrupted reply is among the newest messages, never folded: {folded:?}"
    );
    assert_eq!(
        folded.first().map(String::as_str),
        Some(format!("Caller: {FACT}").as_str())
    );

    // The next message says what was heard: that is what is stored, and what the model sees,
    // with the summary.
    let next = interrupted_message("conv_barge", "t17", "Sorry, go on", "t16", "Once");
    stream_webhook(&worker, &next);
    let request = request_of(&gemini, "Sorry, go on");
    assert!(instruction(&request).contains(FACT));
    let history = contents(&request);
    assert_eq!(
        history[history.len() - 2],
        (String::from("model"), String::from("Once"))
    );
    let stored = api(&worker, "GET", "conv_barge").json();
    let reply = stored["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["turn_id"] == "t16" && m["role"] == "assistant")
        .unwrap()
        .clone();
    assert_eq!(
        (reply["text"].clone(), reply["status"].clone()),
        (json!("Once"), json!("interrupted"))
    );
}

#[test]
fn a_failing_summary_model_changes_nothing_for_the_caller_and_is_tried_again_later() {
    // The summary model fails twice (503), then works; turns are answered as usual throughout.
    let failures = Arc::new(AtomicUsize::new(0));
    let counted = failures.clone();
    let gemini = MockGemini::start_with(move |r| {
        let request = r.json();
        if !is_summary_request(&request) {
            return noted();
        }
        if counted.fetch_add(1, Ordering::SeqCst) < 2 {
            gemini_fixtures::error_reply(503, "UNAVAILABLE", "The model is overloaded.")
        } else {
            gemini_fixtures::summary_reply(&request)
        }
    });
    let layercode = MockLayercode::start();
    let worker = Worker::start(WorkerOptions::new(&gemini, &layercode));
    up_to_the_first_summary(&worker, "conv_fail");
    // After each turn, the summary calls made so far: a failure is tried again at the next
    // turn's end, then two turns later.
    let mut attempts_after = Vec::new();
    for n in 16..=20 {
        let spoken = turn(&worker, "conv_fail", n, &filler(n));
        assert_eq!(spoken.tts_text(), REPLY, "turn {n} heard something else");
        let line = worker.turn_log(&format!("t{n}"));
        assert_eq!(line["outcome"], "complete", "{line}");
        // A summary line follows every turn that made a call: wait for the expected count.
        let expected = match n {
            16 => 1,
            17 | 18 => 2,
            _ => 3,
        };
        wait_for_summaries(&worker, expected);
        attempts_after.push(summary_requests(&gemini).len());
    }
    assert_eq!(attempts_after, vec![1, 2, 2, 3, 3]);
    let lines = summary_lines(&worker);
    let outcomes: Vec<(&str, &str)> = lines
        .iter()
        .map(|l| {
            (
                l["outcome"].as_str().unwrap(),
                l["failure"].as_str().unwrap_or("-"),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        vec![
            ("failed", "http_503"),
            ("failed", "http_503"),
            ("stored", "-")
        ]
    );
    assert_eq!(lines[0]["gemini_error"], "503 UNAVAILABLE");
    // Each attempt starts again from what is stored (nothing yet) and the first turn: nothing
    // of a failed call was kept, nothing was lost.
    for (request, _) in summary_requests(&gemini) {
        assert_eq!(previous_summary(&request), None);
        assert_eq!(folded_lines(&request)[0], format!("Caller: {FACT}"));
    }
    turn(&worker, "conv_fail", 21, &filler(21));
    assert!(instruction(&request_of(&gemini, &filler(21))).contains(FACT));
}

#[test]
fn turns_racing_a_slow_summary_start_no_second_one_and_never_wait_for_its_write() {
    use gemini_fixtures::{cued, text_event};
    // The summary call and a slow turn are each held by a gate the test opens: the summary
    // returns while the slow turn is still running, whatever the machine's speed.
    let summary_gate = Gate::new();
    let slow_gate = Gate::new();
    let (summary_held, slow_held) = (summary_gate.clone(), slow_gate.clone());
    let gemini = MockGemini::start_with(move |r| {
        let request = r.json();
        if is_summary_request(&request) {
            let summary = mock_summary(&request);
            return cued(vec![(
                Cue::Opened(summary_held.clone()),
                text_event(&summary, Some("STOP")),
            )]);
        }
        if asked(r).ends_with("Slow turn") {
            return cued(vec![
                (Cue::After(Duration::ZERO), text_event("Let me", None)),
                (
                    Cue::Opened(slow_held.clone()),
                    text_event(" think about it.", Some("STOP")),
                ),
            ]);
        }
        noted()
    });
    let layercode = MockLayercode::start();
    let worker = Worker::start(
        WorkerOptions::new(&gemini, &layercode)
            .secret("CONVERSATIONS_API_KEY", API_KEY)
            // No silence limit the held slow turn could reach.
            .var("GEMINI_TIMEOUT_MS", "120000"),
    );
    up_to_the_first_summary(&worker, "conv_race");
    turn(&worker, "conv_race", 16, &filler(16));
    // The summary call is in flight (16 turns, then it), held by its gate.
    gemini.wait_for_requests(17, TURN_TIMEOUT);
    assert_eq!(summary_requests(&gemini).len(), 1);
    // While it runs: a slow turn, in flight until its gate opens, and two turns at once.
    let mut slow = open_webhook(&worker, &message("conv_race", "t19", "Slow turn"));
    let first = slow
        .next_event(TURN_TIMEOUT)
        .expect("the slow turn's first words");
    assert_eq!(first.json["content"], "Let me");
    thread::scope(|scope| {
        for n in [17, 18] {
            let worker = &worker;
            scope.spawn(move || turn(worker, "conv_race", n, &filler(n)));
        }
    });
    summary_gate.open();
    let lines = wait_for_summaries(&worker, 1);
    assert_eq!(lines[0]["outcome"], "deferred", "{}", lines[0]);
    // Written only once the running turn has ended: not yet.
    assert_eq!(
        api(&worker, "GET", "conv_race").json()["summary"],
        Value::Null,
        "{}",
        worker.logs()
    );
    slow_gate.open();
    let mut rest = slow.read_all(TURN_TIMEOUT);
    rest.events.insert(0, first);
    assert_well_formed_turn(&rest, "t19");
    assert_eq!(rest.tts_text(), "Let me think about it.");
    worker.turn_log("t19");

    // One call only, and its summary reaches the next turn.
    let summary = api(&worker, "GET", "conv_race").json()["summary"].clone();
    assert_eq!(summary["through_turn_id"], "t11", "{summary}");
    assert_eq!(summary_requests(&gemini).len(), 1);
    assert!(!instruction(&request_of(&gemini, "Slow turn")).contains(FACT));
    turn(&worker, "conv_race", 20, &filler(20));
    assert!(instruction(&request_of(&gemini, &filler(20))).contains(FACT));
    assert_eq!(summary_requests(&gemini).len(), 1);
    assert_eq!(summary_lines(&worker).len(), 1);
}

#[test]
fn a_summary_finishing_after_the_conversation_was_erased_stores_nothing() {
    use gemini_fixtures::{cued, text_event};
    // The summary is held until the test has erased the conversation and started it afresh.
    let gate = Gate::new();
    let held = gate.clone();
    let gemini = MockGemini::start_with(move |r| {
        let request = r.json();
        if is_summary_request(&request) {
            let summary = mock_summary(&request);
            return cued(vec![(
                Cue::Opened(held.clone()),
                text_event(&summary, Some("STOP")),
            )]);
        }
        noted()
    });
    let layercode = MockLayercode::start();
    let worker = Worker::start(
        WorkerOptions::new(&gemini, &layercode).secret("CONVERSATIONS_API_KEY", API_KEY),
    );
    turns(&worker, "conv_erased", 1, 16);
    gemini.wait_for_requests(17, TURN_TIMEOUT);
    // Erased while the summary is being written, and started afresh before it returns.
    assert_eq!(api(&worker, "DELETE", "conv_erased").status, 204);
    turn(&worker, "conv_erased", 17, "Hello again");
    assert!(!instruction(&request_of(&gemini, "Hello again")).contains(FACT));
    gate.open();
    let lines = wait_for_summaries(&worker, 1);
    assert_eq!(lines[0]["outcome"], "dropped", "{}", lines[0]);
    let fresh = api(&worker, "GET", "conv_erased").json();
    assert_eq!(fresh["summary"], Value::Null, "{fresh}");
    assert_eq!(fresh["messages"].as_array().unwrap().len(), 2);
}

#[test]
fn retention_erases_the_summary_with_the_conversation() {
    // A period observed in real time: the turns, the summary's write and the read below must
    // each come within it of the one before, so it is long against any stall of a loaded
    // machine (about 10 s of margin; it cannot be exact: the rule is "idle for the period").
    let (gemini, worker) = start_with(|_| noted(), |o| o.var("CONVERSATION_TTL_SECONDS", "10"));
    turns(&worker, "conv_ttl", 1, 16);
    let lines = wait_for_summaries(&worker, 1);
    assert_eq!(lines[0]["outcome"], "stored");
    assert!(api(&worker, "GET", "conv_ttl").json()["summary"]["text"]
        .as_str()
        .unwrap()
        .contains(FACT));
    // The period, then the alarm however late it fires: a bound for a hang only.
    let deadline = Instant::now() + Duration::from_secs(90);
    while api(&worker, "GET", "conv_ttl").status != 404 {
        assert!(
            Instant::now() < deadline,
            "never expired:\n{}",
            worker.logs()
        );
        thread::sleep(Duration::from_millis(200));
    }
    turn(&worker, "conv_ttl", 17, "Anyone there?");
    let request = request_of(&gemini, "Anyone there?");
    assert_eq!(contents(&request).len(), 1);
    assert!(!instruction(&request).contains(FACT));
    // Nothing of the old summary is left on disk either.
    let rows: Vec<Value> = worker
        .conversation_db_files()
        .iter()
        .flat_map(|f| sqlite_json(f, "SELECT text FROM summary"))
        .collect();
    assert!(rows.is_empty(), "{rows:?}");
}

#[test]
fn a_conversation_stored_before_summaries_existed_keeps_working_and_catches_up() {
    let gemini = MockGemini::start_summarising(|_| noted());
    let layercode = MockLayercode::start();
    let options =
        || WorkerOptions::new(&gemini, &layercode).secret("CONVERSATIONS_API_KEY", API_KEY);
    // 40 turns without summaries, then the table they live in removed: the old schema.
    let worker = Worker::start(options().var("SUMMARY_MODEL", "off"));
    turns(&worker, "conv_old", 1, 40);
    assert!(summary_requests(&gemini).is_empty());
    let persist_dir = worker.persist_dir.clone();
    let files = worker.conversation_db_files();
    worker.stop();
    for file in &files {
        let out = Command::new("sqlite3")
            .arg(file)
            .arg("DROP TABLE IF EXISTS summary")
            .output()
            .expect("run sqlite3");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let worker = Worker::start(options().persist_to(&persist_dir));
    let read = api(&worker, "GET", "conv_old");
    assert_eq!(read.status, 200, "{}", read.text());
    assert_eq!(read.json()["messages"].as_array().unwrap().len(), 80);
    assert_eq!(read.json()["summary"], Value::Null);
    // The next turn is answered as before, then the backlog is folded, oldest first.
    turn(&worker, "conv_old", 41, &filler(41));
    assert_eq!(contents(&request_of(&gemini, &filler(41))).len(), 39);
    let lines = wait_for_summaries(&worker, 1);
    assert_eq!(lines[0]["outcome"], "stored", "{}", lines[0]);
    assert_eq!(lines[0]["folded_messages"], 60);
    let folded = folded_caller_lines(&gemini);
    assert_eq!(folded.first().map(String::as_str), Some(FACT));
    assert_eq!(folded.len(), 30);
    turn(&worker, "conv_old", 42, &filler(42));
    assert!(instruction(&request_of(&gemini, &filler(42))).contains(FACT));
}

/// `MODELS` with an OpenAI-wire entry at `openai` first, then Gemini (`GEMINI_API_BASE_URL`).
fn openai_then_gemini(openai: &MockOpenAi) -> String {
    format!(
        r#"[{{"api": "openai", "model": "gpt-4.1-mini", "base_url": "{}", "key": "OPENAI_API_KEY"}},
            {{"api": "gemini", "model": "gemini-2.5-flash-lite"}}]"#,
        openai.v1()
    )
}

/// Mocks of both wires that write summaries and answer turns with [`REPLY`], and a worker
/// whose `MODELS` is [`openai_then_gemini`], configured further by `configure`.
fn start_two_wires(
    configure: impl FnOnce(WorkerOptions) -> WorkerOptions,
) -> (MockOpenAi, MockGemini, Worker) {
    let openai =
        MockOpenAi::start_summarising(|_| openai_fixtures::reply(&[REPLY], Duration::ZERO));
    let gemini = MockGemini::start_summarising(|_| noted());
    let layercode = MockLayercode::start();
    let options = WorkerOptions::new(&gemini, &layercode)
        .var("MODELS", &openai_then_gemini(&openai))
        .secret("OPENAI_API_KEY", "sk-test-openai");
    let worker = Worker::start(configure(options));
    (openai, gemini, worker)
}

/// The OpenAI-wire requests of a mock, split into (turns, summaries).
fn openai_requests(openai: &MockOpenAi) -> (Vec<Value>, Vec<Value>) {
    openai
        .requests()
        .iter()
        .map(RecordedRequest::json)
        .partition(|r| !is_summary_request(r))
}

/// The system message of an OpenAI-wire request.
fn system_message(request: &Value) -> &str {
    assert_eq!(request["messages"][0]["role"], "system", "{request}");
    request["messages"][0]["content"].as_str().unwrap()
}

#[test]
fn with_an_openai_entry_first_the_summary_is_written_over_the_openai_wire() {
    let (openai, gemini, worker) = start_two_wires(|o| o);
    let health = get(&worker.url("/health")).json();
    assert_eq!(
        health["summary"],
        json!({"model": {"api": "openai", "model": "gpt-4.1-mini",
                         "host": openai.base_url().trim_start_matches("http://"),
                         "key": "OPENAI_API_KEY", "key_present": true},
               "error": null})
    );
    assert!(!health.to_string().contains("sk-test-openai"));

    turns(&worker, "conv_oa", 1, 16);
    let lines = wait_for_summaries(&worker, 1);
    let line = &lines[0];
    assert_eq!(
        (&line["outcome"], &line["api"], &line["model"]),
        (&json!("stored"), &json!("openai"), &json!("gpt-4.1-mini")),
        "{line}"
    );
    // The mock's usage chunk: 31 tokens in, one per content chunk out.
    assert_eq!(
        (&line["prompt_tokens"], &line["output_tokens"]),
        (&json!(31), &json!(2))
    );
    // Every request went to the first entry, the summary's included; none to Gemini.
    assert!(gemini.requests().is_empty(), "{:?}", gemini.requests());
    let (turn_requests, summaries) = openai_requests(&openai);
    assert_eq!((turn_requests.len(), summaries.len()), (16, 1));
    let summary = &summaries[0];
    let recorded = openai
        .requests()
        .into_iter()
        .find(|r| is_summary_request(&r.json()))
        .unwrap();
    assert_eq!(recorded.path, openai_fixtures::CHAT_PATH);
    assert_eq!(
        recorded.header("authorization"),
        Some("Bearer sk-test-openai")
    );
    // One request, no tools: the summariser's instruction and the conversation to fold.
    assert_eq!(summary["model"], "gpt-4.1-mini");
    assert_eq!(summary["stream"], true);
    assert!(summary.get("tools").is_none(), "{summary}");
    assert_eq!(summary["messages"].as_array().unwrap().len(), 2);
    assert_eq!(summary["messages"][1]["role"], "user");
    assert_eq!(
        folded_lines(summary).first().map(String::as_str),
        Some(format!("Caller: {FACT}").as_str())
    );

    // The next turn's system message carries the summary the OpenAI mock wrote.
    turn(&worker, "conv_oa", 17, &filler(17));
    let (turn_requests, _) = openai_requests(&openai);
    let next = turn_requests.last().unwrap();
    assert!(
        system_message(next).contains(&format!("{CALLER_SAID}{FACT}")),
        "{}",
        system_message(next)
    );
}

#[test]
fn summary_model_names_another_entry_and_a_refused_one_is_shown_by_health() {
    // SUMMARY_MODEL names the Gemini entry: summaries go there, turns to the OpenAI entry.
    let (openai, gemini, worker) =
        start_two_wires(|o| o.var("SUMMARY_MODEL", "gemini-2.5-flash-lite"));
    let health = get(&worker.url("/health")).json();
    assert_eq!(health["summary"]["model"]["api"], "gemini", "{health}");
    assert_eq!(health["summary"]["error"], Value::Null);
    turns(&worker, "conv_named", 1, 16);
    let line = &wait_for_summaries(&worker, 1)[0];
    assert_eq!(
        (&line["outcome"], &line["api"], &line["model"]),
        (
            &json!("stored"),
            &json!("gemini"),
            &json!("gemini-2.5-flash-lite")
        ),
        "{line}"
    );
    let gemini_requests = gemini.requests();
    assert_eq!(gemini_requests.len(), 1, "only the summary goes to Gemini");
    assert!(is_summary_request(&gemini_requests[0].json()));
    assert!(gemini_requests[0]
        .path
        .contains("/models/gemini-2.5-flash-lite:streamGenerateContent"));
    let (turn_requests, summaries) = openai_requests(&openai);
    assert_eq!((turn_requests.len(), summaries.len()), (16, 0));
    turn(&worker, "conv_named", 17, &filler(17));
    let (turn_requests, _) = openai_requests(&openai);
    assert!(system_message(turn_requests.last().unwrap()).contains(FACT));
    worker.stop();

    // An id the first entry's wire refuses (longer than any model id): refused whole, the
    // first model writes summaries, and /health says why, without a key.
    let (openai, _gemini, worker) = start_two_wires(|o| o.var("SUMMARY_MODEL", &"x".repeat(300)));
    let health = get(&worker.url("/health")).json();
    let host = openai.base_url().trim_start_matches("http://").to_string();
    assert_eq!(health["summary"]["model"]["model"], "gpt-4.1-mini");
    assert_eq!(
        health["summary"]["error"],
        format!(
            "SUMMARY_MODEL names no MODELS entry, so it is a model of the first one (openai at \
             {host}): model must be printable and at most 256 characters"
        )
    );
    assert_eq!(health["settings"]["SUMMARY_MODEL"], true);
}

/// What the developer mock streamed back: the text of every Gemini part or OpenAI content
/// delta, in order, and whether the stream said it was finished.
fn streamed_text(body: &str) -> (String, bool) {
    let mut text = String::new();
    let mut finished = false;
    for data in body.lines().filter_map(|l| l.strip_prefix("data: ")) {
        if data == "[DONE]" {
            continue;
        }
        let event: Value = serde_json::from_str(data).unwrap();
        let gemini = &event["candidates"][0];
        let openai = &event["choices"][0];
        for part in gemini["content"]["parts"].as_array().into_iter().flatten() {
            text.push_str(part["text"].as_str().unwrap_or_default());
        }
        text.push_str(openai["delta"]["content"].as_str().unwrap_or_default());
        finished |= gemini["finishReason"] == "STOP" || openai["finish_reason"] == "stop";
    }
    (text, finished)
}

#[test]
fn the_developer_mock_writes_summaries_on_both_wires() {
    use layercode_gemini_worker::history::HistoryMessage;
    use layercode_gemini_worker::llm::{gemini, openai};
    use layercode_gemini_worker::summary;

    let dev = DevMock::start();
    // A summary request as the worker builds it: the summary so far and the part to fold.
    let folded = [
        HistoryMessage::user(FACT),
        HistoryMessage::assistant(REPLY),
        HistoryMessage::user("Filler turn 2."),
    ];
    let text = summary::request_text(Some("The caller said: Hello."), &folded);
    let ask = [HistoryMessage::user(&text)];
    let gemini_body = gemini::request_body(summary::INSTRUCTION, "gemini-2.5-flash-lite", &ask);
    let openai_body = openai::request_body(summary::INSTRUCTION, "gpt-4.1-mini", &ask, &[]);
    let expected =
        format!("The caller said: Hello.\n{CALLER_SAID}{FACT}\n{CALLER_SAID}Filler turn 2.");
    assert_eq!(mock_summary(&gemini_body), expected);
    assert_eq!(mock_summary(&openai_body), expected);

    let gemini_url = gemini::stream_url(&dev.url, "gemini-2.5-flash-lite");
    let openai_url = openai::chat_url(&format!("{}/v1", dev.url));
    for (url, body) in [(gemini_url, gemini_body), (openai_url, openai_body)] {
        let answer = post_json(&url, &[], &body.to_string());
        assert_eq!(answer.status, 200, "{url}");
        assert_eq!(
            streamed_text(&answer.text()),
            (expected.clone(), true),
            "{url}: {}",
            answer.text()
        );
    }
    // Any other request still gets the echo reply, on either wire.
    let hello = [HistoryMessage::user("Hello")];
    let turn = gemini::request_body("Be brief.", "gemini-2.5-flash-lite", &hello);
    let answer = post_json(
        &gemini::stream_url(&dev.url, "gemini-2.5-flash-lite"),
        &[],
        &turn.to_string(),
    );
    assert!(streamed_text(&answer.text())
        .0
        .starts_with("You said: Hello."));
}
