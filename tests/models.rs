//! Models (issue 19) under the real runtime: an OpenAI-compatible endpoint alone (plain turns,
//! history, barge-in and the interruption clamp, tools with fragments and parallel calls,
//! `length` and `content_filter`, errors), and chains of models: which failures move the turn
//! to the next model and which do not, the first-token bound, the silence bound over the whole
//! chain, the abandoned request aborted, and what `/health` and the log line say. Also the
//! README's three `MODELS` examples against the developer mock, and Gemini's `MAX_TOKENS`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test fails by panicking

mod common;
use common::*;

use std::time::{Duration, Instant};

use common::mock_server::{json_reply, MockReply, MockServer};
use openai_fixtures as oa;
use serde_json::{json, Value};

const OPENAI_KEY: &str = "test_openai_key_value";
const MODEL: &str = "gpt-4.1-mini";

/// `MODELS` with one openai entry at `openai` (plus `extra` fields), then `tail` entries.
fn openai_entry(openai: &MockOpenAi, extra: &str) -> String {
    format!(
        r#"{{"api": "openai", "model": "{MODEL}", "base_url": "{}", "key": "OPENAI_API_KEY"{extra}}}"#,
        openai.v1()
    )
}

struct Setup {
    openai: MockOpenAi,
    gemini: MockGemini,
    _layercode: MockLayercode,
    worker: Worker,
}

fn start(
    models: impl Fn(&MockOpenAi) -> String,
    more: impl FnOnce(WorkerOptions) -> WorkerOptions,
) -> Setup {
    let openai = MockOpenAi::start();
    let gemini = MockGemini::start();
    let layercode = MockLayercode::start();
    let options = WorkerOptions::new(&gemini, &layercode)
        .var("MODELS", &models(&openai))
        .secret("OPENAI_API_KEY", OPENAI_KEY);
    let worker = Worker::start(more(options));
    Setup {
        openai,
        gemini,
        _layercode: layercode,
        worker,
    }
}

fn openai_only() -> Setup {
    start(|openai| format!("[{}]", openai_entry(openai, "")), |o| o)
}

/// Turn `turn_id` of `conversation`, read to the end and checked well formed.
fn turn_of(worker: &Worker, conversation: &str, turn_id: &str, text: &str) -> SseTranscript {
    let transcript = stream_webhook(worker, &message(conversation, turn_id, text));
    assert_well_formed_turn(&transcript, turn_id);
    transcript
}

/// The `(role, content)` of every message of a recorded request.
fn messages(request: &RecordedRequest) -> Vec<(String, String)> {
    request.json()["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["role"].as_str().unwrap_or_default().to_string(),
                m["content"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn pair(role: &str, text: &str) -> (String, String) {
    (role.to_string(), text.to_string())
}

#[test]
fn an_openai_only_worker_speaks_the_stream_and_keeps_the_history() {
    let s = openai_only();
    let health = get(&s.worker.url("/health")).json();
    assert_eq!(
        health["models"],
        json!({"entries": [{"api": "openai", "model": MODEL,
            "host": s.openai.base_url().trim_start_matches("http://"),
            "key": "OPENAI_API_KEY", "key_present": true, "first_token_ms": 10000}],
            "error": null})
    );
    assert!(!health.to_string().contains(OPENAI_KEY));
    assert_eq!(health["settings"]["MODELS"], true);

    // The real format, CRLF framing, cut every 7 bytes (inside `data:`, JSON, CRLF pairs and
    // the emoji), with a comment line and reasoning deltas that are never spoken.
    let mut lines = vec![": OPENROUTER PROCESSING".to_string(), oa::role_chunk()];
    lines.push(oa::reasoning_chunk("reasoning_content", "They greet me."));
    lines.push(oa::reasoning_chunk("reasoning", " Greet back."));
    lines.extend(oa::reply_lines(
        &["Hello", " there, **friend** 😀."],
        "stop",
    ));
    s.openai.push(oa::raw_split(
        &oa::body(&lines, Separator::Crlf),
        7,
        Duration::from_millis(2),
    ));
    let first = turn_of(&s.worker, "conv_oa", "t1", "Hi");
    assert_eq!(first.tts_text(), "Hello there, friend.");

    let request = &s.openai.wait_for_requests(1, TURN_TIMEOUT)[0];
    assert_eq!(request.path, oa::CHAT_PATH);
    assert_eq!(
        request.header("authorization"),
        Some(format!("Bearer {OPENAI_KEY}").as_str())
    );
    assert_eq!(request.header("x-goog-api-key"), None);
    let body = request.json();
    assert_eq!(body["model"], MODEL);
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"], json!({"include_usage": true}));
    assert!(body.get("tools").is_none());
    let sent = messages(request);
    assert_eq!(sent[0].0, "system");
    assert!(sent[0].1.contains("Never use markdown"));
    assert_eq!(sent[1..], [pair("user", "Hi")]);
    assert!(s.gemini.requests().is_empty(), "Gemini is not configured");

    let log = s.worker.turn_log("t1");
    assert_eq!(log["api"], "openai");
    assert_eq!(log["model"], MODEL);
    assert_eq!(log["outcome"], "complete");
    assert_eq!(log["ending"], "stop");
    assert_eq!(log["gemini_status"], 200);
    assert_eq!(log["gemini_attempts"], 1);
    assert_eq!(log["prompt_tokens"], 31);
    assert_eq!(log["abandoned"], json!([]));

    // History: the reply as spoken, then the new question.
    turn_of(&s.worker, "conv_oa", "t2", "And you?");
    let second = &s.openai.wait_for_requests(2, TURN_TIMEOUT)[1];
    assert_eq!(
        messages(second)[1..],
        [
            pair("user", "Hi"),
            pair("assistant", "Hello there, friend."),
            pair("user", "And you?")
        ]
    );
    assert!(
        !s.worker.logs().contains(OPENAI_KEY),
        "the key is never logged"
    );
}

#[test]
fn length_and_content_filter_end_with_the_close_and_errors_with_the_apology() {
    let s = openai_only();
    // `length`: a cut reply, closed, stored as heard.
    s.openai.push(oa::stream(
        oa::reply_lines(&["The thing you asked", " about is"], "length"),
        Duration::ZERO,
    ));
    let cut = turn_of(&s.worker, "conv_cut", "t1", "Tell me");
    assert_eq!(
        cut.tts_text(),
        format!("The thing you asked about is {CLOSE_AFTER_CUT}")
    );
    let log = s.worker.turn_log("t1");
    assert_eq!(
        (log["outcome"].as_str(), log["ending"].as_str()),
        (Some("cut"), Some("token_limit"))
    );
    assert_eq!(log["finish_reason"], "length");
    turn_of(&s.worker, "conv_cut", "t2", "Go on");
    let next = &s.openai.wait_for_requests(2, TURN_TIMEOUT)[1];
    assert_eq!(
        messages(next)[2],
        pair(
            "assistant",
            &format!("The thing you asked about is {CLOSE_AFTER_CUT}")
        )
    );

    // `content_filter` mid-sentence: a policy stop with the close.
    s.openai.push(oa::stream(
        oa::reply_lines(&["The recipe needs"], "content_filter"),
        Duration::ZERO,
    ));
    let filtered = turn_of(&s.worker, "conv_filter", "t3", "How do I");
    assert_eq!(
        filtered.tts_text(),
        format!("The recipe needs {CLOSE_AFTER_CUT}")
    );
    assert_eq!(s.worker.turn_log("t3")["ending"], "policy_stop");

    // A 400 quoting the prompt: the apology; the log holds codes, never the message.
    let quoted = "my card number is 4111 1111 1111 1111";
    s.openai.push(oa::error_reply(
        400,
        &format!("Invalid content: {quoted}"),
        "invalid_request_error",
        None,
    ));
    let refused = turn_of(&s.worker, "conv_err", "t4", quoted);
    assert_eq!(refused.tts_text(), APOLOGY_BEFORE);
    let log = s.worker.turn_log("t4");
    assert_eq!(log["ending"], "http_400");
    assert_eq!(log["gemini_error"], "400 invalid_request_error");
    assert!(!s.worker.logs().contains("Invalid content"));

    // An error inside the stream after some words: the mid-reply apology.
    s.openai.push(oa::stream(
        vec![
            oa::role_chunk(),
            oa::text_chunk("The answer is"),
            r#"data: {"error":{"message":"Provider returned error","code":502,"metadata":{}}}"#
                .to_string(),
        ],
        Duration::ZERO,
    ));
    let broken = turn_of(&s.worker, "conv_err", "t5", "What?");
    assert_eq!(broken.tts_text(), format!("The answer is {APOLOGY_MID}"));
    let log = s.worker.turn_log("t5");
    assert_eq!(log["ending"], "stream_error");
    assert_eq!(log["gemini_error"], "502 502");

    // A redirect is never followed.
    s.openai.push(OpenAiReply::Redirect {
        status: 307,
        location: format!("{}/elsewhere", s.openai.base_url()),
    });
    let before = s.openai.requests().len();
    let redirected = turn_of(&s.worker, "conv_err", "t6", "Again?");
    assert_eq!(redirected.tts_text(), APOLOGY_BEFORE);
    assert_eq!(s.worker.turn_log("t6")["gemini_status"], 307);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(s.openai.requests().len(), before + 1);
}

#[test]
fn a_barge_in_aborts_the_request_and_the_next_turn_holds_what_was_heard() {
    let s = openai_only();
    // Three words, then the rest only once the caller has hung up (the gate), a word every
    // 150 ms for a minute: the reply is still streaming when the caller leaves, however slow
    // the machine, and the worker learns of it at its next word (wrangler dev reports a hang-up
    // only at a write). With 30 words 150 ms apart from the start, a worker that stalled for
    // the 4.5 s of the whole reply found it finished: no barge-in at all.
    let hung_up = Gate::new();
    let now = || Cue::After(Duration::ZERO);
    let mut lines = vec![(now(), oa::role_chunk())];
    lines.extend(["word1.", " word2.", " word3."].map(|w| (now(), oa::text_chunk(w))));
    lines.push((Cue::Opened(hung_up.clone()), oa::text_chunk(" word4.")));
    lines.extend((5..=400).map(|i| {
        let word = oa::text_chunk(&format!(" word{i}."));
        (Cue::After(Duration::from_millis(150)), word)
    }));
    lines.extend(
        oa::reply_lines(&[], "stop")
            .into_iter()
            .skip(1)
            .map(|l| (now(), l)),
    );
    s.openai.push(OpenAiReply::Cued {
        lines,
        separator: Separator::Lf,
        then: StreamEnd::Close,
    });
    let mut client = open_webhook(&s.worker, &message("conv_barge", "t1", "Talk"));
    let mut heard = String::new();
    while !heard.contains("word3.") {
        let event = client.next_event(TURN_TIMEOUT).expect("an event");
        if event.kind() == "response.tts" {
            heard.push_str(event.json["content"].as_str().unwrap());
        }
    }
    client.disconnect();
    hung_up.open();
    assert!(
        s.openai.client_disconnected(0, TURN_TIMEOUT),
        "the worker aborted its request"
    );
    let log = s.worker.turn_log("t1");
    assert_eq!(log["outcome"], "interrupted");
    // The caller heard the first two words; the interruption context says so.
    let text_heard = "word1. word2.";
    turn_of_event(
        &s.worker,
        &interrupted_message("conv_barge", "t2", "Stop", "t1", text_heard),
    );
    let next = &s.openai.wait_for_requests(2, TURN_TIMEOUT)[1];
    assert_eq!(
        messages(next)[1..],
        [
            pair("user", "Talk"),
            pair("assistant", text_heard),
            pair("user", "Stop")
        ]
    );
}

fn turn_of_event(worker: &Worker, event: &Value) -> SseTranscript {
    let transcript = stream_webhook(worker, event);
    assert_well_formed_turn(&transcript, event["turn_id"].as_str().unwrap());
    transcript
}

/// An endpoint that answers every call with `reply`.
fn endpoint(reply: impl Fn() -> MockReply + Send + Sync + 'static) -> Mock<MockReply> {
    Mock::<MockReply>::new(MockServer::start("tool endpoint", reply))
}

fn tools_setup() -> (Setup, Mock<MockReply>) {
    let shop = endpoint(|| json_reply(200, "application/json", r#"{"open": true}"#));
    let tools = format!(
        r#"[{{"name": "shop_hours", "description": "Opening hours of one shop.",
            "parameters": {{"type": "object", "properties": {{"city": {{"type": "string"}}}}, "required": ["city"]}},
            "url": "{}/hours", "filler": "Let me check."}}, {{"builtin": "end_call"}}]"#,
        shop.base_url()
    );
    // A chain: openai first, Gemini after it (tool names must suit both). The openai entry may
    // take the whole silence budget (10 s) to its first call: with the default third of it, a
    // machine that stalled 3.3 s before the first call moved the turn to Gemini.
    let setup = start(
        |openai| {
            format!(
                r#"[{}, {{"api": "gemini", "model": "gemini-2.5-flash-lite"}}]"#,
                openai_entry(openai, r#", "first_token_ms": 10000"#)
            )
        },
        |o| o.var("TOOLS", &tools),
    );
    (setup, shop)
}

#[test]
fn tools_over_the_openai_wire_assemble_fragments_and_answer_each_call_by_id() {
    let (s, shop) = tools_setup();
    // Two parallel calls, fragments interleaved and cut every 3 characters.
    s.openai.push(oa::call_round(
        &[
            ("call_a1", "shop_hours", r#"{"city": "Paris"}"#),
            ("call_b2", "shop_hours", r#"{"city": "Oslo"}"#),
        ],
        3,
    ));
    s.openai
        .push(oa::reply(&["Both shops are open."], Duration::ZERO));
    let spoken = turn_of(&s.worker, "conv_tools", "t1", "Are Paris and Oslo open?");
    // Less a "Still checking" line, said only if the worker's log shows a round of 2 s: the
    // endpoint answers at once, but a loaded machine can make the round that slow.
    assert_eq!(
        without_still_checking(&s.worker, "conv_tools", "t1", &spoken.tts_text()),
        "Let me check. Both shops are open."
    );
    let calls = shop.wait_for_requests(2, TURN_TIMEOUT);
    let mut cities: Vec<Value> = calls
        .iter()
        .map(|c| c.json()["args"]["city"].clone())
        .collect();
    cities.sort_by_key(|c| c.to_string());
    assert_eq!(cities, vec![json!("Oslo"), json!("Paris")]);

    let requests = s.openai.wait_for_requests(2, TURN_TIMEOUT);
    let first = requests[0].json();
    assert_eq!(first["tool_choice"], "auto");
    assert_eq!(first["tools"][0]["type"], "function");
    assert_eq!(first["tools"][0]["function"]["name"], "shop_hours");
    assert_eq!(first["tools"][1]["function"]["name"], "end_call");
    let follow_up = requests[1].json();
    let sent = follow_up["messages"].as_array().unwrap();
    let n = sent.len();
    assert_eq!(
        sent[n - 3],
        json!({"role": "assistant", "content": null, "tool_calls": [
            {"id": "call_a1", "type": "function", "function": {"name": "shop_hours", "arguments": "{\"city\": \"Paris\"}"}},
            {"id": "call_b2", "type": "function", "function": {"name": "shop_hours", "arguments": "{\"city\": \"Oslo\"}"}}
        ]})
    );
    assert_eq!(
        sent[n - 2],
        json!({"role": "tool", "tool_call_id": "call_a1", "content": "{\"output\":{\"open\":true}}"})
    );
    assert_eq!(sent[n - 1]["tool_call_id"], "call_b2");
    assert_eq!(follow_up["tool_choice"], "auto");
    assert_eq!(s.worker.turn_log("t1")["api"], "openai");

    // Arguments that do not parse are answered as an error and never run.
    s.openai.push(oa::call_round(
        &[("call_c3", "shop_hours", r#"{"city": "Par"#)],
        4,
    ));
    s.openai
        .push(oa::reply(&["Sorry, which city?"], Duration::ZERO));
    let spoken = turn_of(&s.worker, "conv_tools_bad", "t2", "Is it open?");
    // The call did not run: the default filler, not the tool's own.
    assert_eq!(
        without_still_checking(&s.worker, "conv_tools_bad", "t2", &spoken.tts_text()),
        "One moment. Sorry, which city?"
    );
    let requests = s.openai.wait_for_requests(4, TURN_TIMEOUT);
    let answer = requests[3].json()["messages"]
        .as_array()
        .unwrap()
        .last()
        .cloned()
        .unwrap();
    assert_eq!(answer["tool_call_id"], "call_c3");
    assert!(
        answer["content"]
            .as_str()
            .unwrap()
            .contains("not a valid JSON object"),
        "{answer}"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(shop.requests().len(), 2, "the bad call never ran");

    // A tool call, then a failure: never the next model (the apology instead).
    s.openai.push(oa::call_round(
        &[("call_d4", "shop_hours", r#"{"city": "Rome"}"#)],
        5,
    ));
    s.openai
        .push(oa::error_reply(503, "overloaded", "server_error", None));
    s.openai
        .push(oa::error_reply(503, "overloaded", "server_error", None));
    let failed = turn_of(&s.worker, "conv_tools_fail", "t3", "Rome?");
    assert_eq!(
        without_still_checking(&s.worker, "conv_tools_fail", "t3", &failed.tts_text()),
        format!("Let me check. {APOLOGY_MID}")
    );
    let log = s.worker.turn_log("t3");
    assert_eq!(log["ending"], "http_503");
    assert_eq!(log["abandoned"], json!([]));
    assert!(
        s.gemini.requests().is_empty(),
        "Gemini is never asked after a tool call"
    );
}

/// The caller's silence bound in the chain tests that are not about it: far beyond any stall
/// of a loaded machine, so that only a hang reaches it.
const SILENCE_MS: u64 = 20_000;

/// The caller's first sound of turn `turn_id` came within the silence bound `silence_ms` (the
/// log's own measure, from the webhook to the first `response.tts`).
fn heard_within(worker: &Worker, turn_id: &str, silence_ms: u64) {
    let first = worker.turn_log(turn_id)["ms_to_first_tts"]
        .as_u64()
        .unwrap();
    assert!(
        first < silence_ms,
        "{turn_id}: first sound after {first} ms"
    );
}

/// A chain of the failover tests: openai, which may take `first_token_ms` to its first token,
/// then Gemini; the caller's silence bound `silence_ms` (`first_token_ms` equal to it leaves the
/// openai entry no bound of its own). Each test shortens only the bound it is about: a loaded
/// machine can stall for longer than any short bound, and a bound a test is not about then
/// decides its turn. With 1.5 s to the first token and 4 s of silence in every test, a 401 read
/// after a stall of 1.5 s was abandoned as a timeout, a first word after one went to Gemini
/// instead, and Gemini's answer had 2.5 s, less any stall, to come.
fn chain(first_token_ms: u64, silence_ms: u64) -> Setup {
    start(
        |openai| {
            format!(
                r#"[{}, {{"api": "gemini", "model": "gemini-2.5-flash-lite"}}]"#,
                openai_entry(openai, &format!(r#", "first_token_ms": {first_token_ms}"#))
            )
        },
        |o| o.var("GEMINI_TIMEOUT_MS", &silence_ms.to_string()),
    )
}

#[test]
fn a_chain_fails_over_on_401_429_and_5xx_before_the_first_word() {
    let s = chain(SILENCE_MS, SILENCE_MS);
    let cases = [
        (
            "t401",
            oa::bad_key(),
            401,
            "401 invalid_request_error invalid_api_key",
        ),
        (
            "t429",
            oa::rate_limited(),
            429,
            "429 tokens rate_limit_exceeded",
        ),
        (
            "t503",
            oa::error_reply(503, "The server is overloaded.", "server_error", None),
            503,
            "503 server_error",
        ),
    ];
    for (i, (turn_id, reply, status, error)) in cases.into_iter().enumerate() {
        s.openai.push(reply);
        let spoken = turn_of(&s.worker, &format!("conv_{turn_id}"), turn_id, "Hello");
        assert_eq!(spoken.tts_text(), DEFAULT_GEMINI_TEXT, "{turn_id}");
        assert_eq!(
            s.openai.requests().len(),
            i + 1,
            "no retry of the openai model"
        );
        assert_eq!(s.gemini.wait_for_requests(i + 1, TURN_TIMEOUT).len(), i + 1);
        let log = s.worker.turn_log(turn_id);
        assert_eq!(log["api"], "gemini", "{turn_id}");
        assert_eq!(log["model"], "gemini-2.5-flash-lite");
        assert_eq!(log["outcome"], "complete");
        assert_eq!(log["gemini_status"], 200);
        let abandoned = &log["abandoned"][0];
        assert_eq!(abandoned["api"], "openai");
        assert_eq!(abandoned["model"], MODEL);
        assert_eq!(abandoned["reason"], format!("http_{status}"));
        assert_eq!(abandoned["status"], status);
        assert_eq!(abandoned["error"], error);
        assert!(abandoned["ms"].is_u64(), "{abandoned}");
        heard_within(&s.worker, turn_id, SILENCE_MS);
    }
    assert!(
        !s.worker.logs().contains("sk-test"),
        "no error message is logged"
    );
}

#[test]
fn a_chain_abandons_a_model_silent_past_its_first_token_bound() {
    const FIRST_TOKEN_MS: u64 = 1_500;
    let s = chain(FIRST_TOKEN_MS, SILENCE_MS);
    // Hangs before any byte.
    s.openai.push(OpenAiReply::Hang);
    let started = Instant::now();
    let spoken = turn_of(&s.worker, "conv_hang", "t1", "Hello");
    let took = started.elapsed();
    assert_eq!(spoken.tts_text(), DEFAULT_GEMINI_TEXT);
    assert!(
        took >= Duration::from_millis(FIRST_TOKEN_MS - 100),
        "{took:?}"
    );
    assert!(
        s.openai.client_disconnected(0, TURN_TIMEOUT),
        "the abandoned request was aborted"
    );
    let log = s.worker.turn_log("t1");
    assert_eq!(log["abandoned"][0]["reason"], "first_token_timeout");
    assert_eq!(log["abandoned"][0]["status"], Value::Null);
    // By its own bound, which a timer never reaches early; not by the caller's silence bound,
    // far later. (An upper bound of 3 s failed when a loaded machine fired the timer late.)
    let given = log["abandoned"][0]["ms"].as_u64().unwrap();
    assert!(
        (FIRST_TOKEN_MS..SILENCE_MS).contains(&given),
        "abandoned after {given} ms"
    );
    assert_eq!(log["api"], "gemini");
    heard_within(&s.worker, "t1", SILENCE_MS);

    // Streams only reasoning (silence for the caller), then stalls.
    s.openai.push(OpenAiReply::Stream {
        lines: vec![
            (Duration::ZERO, oa::role_chunk()),
            (
                Duration::from_millis(300),
                oa::reasoning_chunk("reasoning", "Let me think"),
            ),
            (
                Duration::from_millis(300),
                oa::reasoning_chunk("reasoning", " about it"),
            ),
        ],
        separator: Separator::Lf,
        then: StreamEnd::Hang,
    });
    let spoken = turn_of(&s.worker, "conv_think", "t2", "Hello");
    assert_eq!(spoken.tts_text(), DEFAULT_GEMINI_TEXT);
    assert!(s.openai.client_disconnected(1, TURN_TIMEOUT));
    assert_eq!(
        s.worker.turn_log("t2")["abandoned"][0]["reason"],
        "first_token_timeout"
    );
    heard_within(&s.worker, "t2", SILENCE_MS);
}

#[test]
fn a_chain_never_fails_over_after_the_first_word_or_on_a_refusal() {
    let s = chain(SILENCE_MS, SILENCE_MS);
    // The first word, then the body breaks.
    s.openai.push(oa::stream(
        vec![oa::role_chunk(), oa::text_chunk("Well,")],
        Duration::ZERO,
    ));
    let broken = turn_of(&s.worker, "conv_break", "t1", "Hello");
    assert_eq!(broken.tts_text(), format!("Well, {APOLOGY_MID}"));
    assert_eq!(s.worker.turn_log("t1")["ending"], "truncated");
    heard_within(&s.worker, "t1", SILENCE_MS);

    // A refusal without a word: the apology, never another provider.
    s.openai.push(oa::stream(
        oa::reply_lines(&[], "content_filter"),
        Duration::ZERO,
    ));
    let refused = turn_of(&s.worker, "conv_refuse", "t2", "Hello");
    assert_eq!(refused.tts_text(), APOLOGY_BEFORE);
    let log = s.worker.turn_log("t2");
    assert_eq!(log["ending"], "nothing_spoken");
    assert_eq!(log["abandoned"], json!([]));
    assert!(s.gemini.requests().is_empty(), "Gemini was never asked");
    heard_within(&s.worker, "t2", SILENCE_MS);

    // But an empty `stop` is no refusal: the next model answers.
    s.openai
        .push(oa::stream(oa::reply_lines(&[], "stop"), Duration::ZERO));
    let empty = turn_of(&s.worker, "conv_empty", "t3", "Hello");
    assert_eq!(empty.tts_text(), DEFAULT_GEMINI_TEXT);
    assert_eq!(
        s.worker.turn_log("t3")["abandoned"][0]["reason"],
        "nothing_spoken"
    );
    heard_within(&s.worker, "t3", SILENCE_MS);
}

#[test]
fn the_silence_bound_covers_the_whole_chain() {
    // Both models hang. One silence bound for the whole chain ends the turn at SILENCE; a bound
    // of Gemini's own after the openai entry's would end it at FIRST_TOKEN + SILENCE at the
    // earliest (timers never fire early). The openai entry is given half of the bound, so that
    // a timer fired late tells the two apart unless it is 4 s late, and Gemini is asked before
    // the apology unless the first-token timer is 4 s late. (With 1.5 s and 4 s, the apology
    // had to come before 5 s: a timer fired a second late failed the test.)
    const FIRST_TOKEN_MS: u64 = 4_000;
    const SILENCE: u64 = 8_000;
    let s = chain(FIRST_TOKEN_MS, SILENCE);
    s.openai.push(OpenAiReply::Hang);
    s.gemini.push(GeminiReply::Hang);
    let started = Instant::now();
    let mut client = open_webhook(&s.worker, &message("conv_silent", "t1", "Hello"));
    let first = client.next_event(TURN_TIMEOUT).expect("the apology");
    let waited = started.elapsed();
    assert_eq!(first.json["content"], APOLOGY_BEFORE);
    assert!(waited >= Duration::from_millis(SILENCE - 100), "{waited:?}");
    // The worker's own measure, from the webhook to the apology.
    let log = s.worker.turn_log("t1");
    let heard_after = log["ms_to_first_tts"].as_u64().unwrap();
    assert!(
        (SILENCE - 50..FIRST_TOKEN_MS + SILENCE).contains(&heard_after),
        "the apology after {heard_after} ms"
    );
    assert_eq!(log["ending"], "timeout");
    assert_eq!(log["abandoned"][0]["reason"], "first_token_timeout");
    assert!(s.openai.client_disconnected(0, TURN_TIMEOUT));
    assert!(s.gemini.client_disconnected(0, TURN_TIMEOUT));
}

#[test]
fn a_refused_models_value_is_reported_and_turns_run_with_gemini() {
    let s = start(
        |_| r#"[{"api": "openai", "model": "m", "key": "LAYERCODE_API_KEY"}]"#.to_string(),
        |o| o,
    );
    let health = get(&s.worker.url("/health")).json();
    let error = health["models"]["error"].as_str().unwrap();
    assert!(
        error.contains("MODELS[0] (m): key names LAYERCODE_API_KEY"),
        "{error}"
    );
    assert_eq!(health["models"]["entries"][0]["api"], "gemini");
    let spoken = turn_of(&s.worker, "conv_refused", "t1", "Hello");
    assert_eq!(spoken.tts_text(), DEFAULT_GEMINI_TEXT);
    s.worker
        .wait_for_log("MODELS is not used: MODELS[0] (m)", TURN_TIMEOUT);
    assert_eq!(s.worker.turn_log("t1")["api"], "gemini");
    assert!(s.openai.requests().is_empty());
}

#[test]
fn a_tools_name_an_openai_model_would_refuse_is_refused_with_a_clear_message() {
    let s = start(
        |openai| format!("[{}]", openai_entry(openai, "")),
        |o| {
            o.var(
                "TOOLS",
                r#"[{"name": "shop.hours", "description": "d", "url": "https://x.example/h"}]"#,
            )
        },
    );
    let health = get(&s.worker.url("/health")).json();
    let error = health["tools"]["error"].as_str().unwrap();
    assert!(
        error.contains("TOOLS[0] (shop.hours): the name is not valid for the openai api"),
        "{error}"
    );
}

#[test]
fn gemini_max_tokens_ends_with_the_close_and_is_stored_as_heard() {
    // Issue 22, item 5: a reply cut by the token limit used to dangle.
    let (gemini, _layercode, worker) = start_default();
    gemini.push(gemini_fixtures::stream(vec![
        (
            Duration::ZERO,
            gemini_fixtures::text_event("The thing you asked about", None),
        ),
        (
            Duration::ZERO,
            gemini_fixtures::text_event(" is", Some("MAX_TOKENS")),
        ),
    ]));
    let cut = turn_of(&worker, "conv_max", "t1", "Tell me");
    assert_eq!(
        cut.tts_text(),
        format!("The thing you asked about is {CLOSE_AFTER_CUT}")
    );
    let log = worker.turn_log("t1");
    assert_eq!(
        (log["outcome"].as_str(), log["ending"].as_str()),
        (Some("cut"), Some("token_limit"))
    );
    assert_eq!(log["api"], "gemini");
    turn_of(&worker, "conv_max", "t2", "Go on");
    let next = &gemini.wait_for_requests(2, TURN_TIMEOUT)[1];
    assert_eq!(
        contents(&next.json())[1],
        turn(
            "model",
            &format!("The thing you asked about is {CLOSE_AFTER_CUT}")
        )
    );
}

/// The `MODELS` values of the README's worked examples, in order.
fn readme_examples() -> Vec<String> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    readme
        .lines()
        .filter_map(|line| line.strip_prefix("MODELS='"))
        .map(|rest| rest.trim_end_matches('\'').to_string())
        .collect()
}

#[test]
fn the_readme_examples_work_against_the_developer_mock() {
    let examples = readme_examples();
    assert_eq!(
        examples.len(),
        3,
        "OpenAI, Groq with Gemini after it, Ollama"
    );
    let dev = DevMock::start();
    let layercode = MockLayercode::start();
    let unused = MockGemini::start();
    for (i, example) in examples.iter().enumerate() {
        // As written, with every host replaced by the mock's (which answers both wires), and
        // no first-token bound shorter than the silence bound: the Groq example's 1.5 s is a
        // timing goal, and a machine that stalled that long moved its turn to the Gemini entry,
        // failing the check that the first model answered.
        let models: Value = serde_json::from_str(example).unwrap();
        let mut models = models.as_array().unwrap().clone();
        for entry in &mut models {
            if entry["api"] == "openai" {
                entry["base_url"] = json!(format!("{}/v1", dev.url));
            }
            if entry.get("first_token_ms").is_some() {
                // The default silence bound: the entry gets no bound of its own.
                entry["first_token_ms"] = json!(10_000);
            }
        }
        let first_model = models[0]["model"].as_str().unwrap().to_string();
        let mut options = WorkerOptions::new(&unused, &layercode)
            .var("MODELS", &Value::Array(models).to_string())
            .var(GEMINI_BASE_URL_VAR, &dev.url)
            .secret("OPENAI_API_KEY", "sk-offline")
            .secret("GROQ_API_KEY", "gsk-offline");
        if i == 2 {
            options = options.without_secret("GOOGLE_GENERATIVE_AI_API_KEY");
        }
        let worker = Worker::start(options);
        let health = get(&worker.url("/health")).json();
        assert_eq!(health["models"]["error"], Value::Null, "{example}");
        assert!(
            health["models"]["entries"]
                .as_array()
                .unwrap()
                .iter()
                .all(|e| e["key_present"] == true),
            "{health}"
        );
        let spoken = turn_of(&worker, "conv_readme", &format!("t{i}"), "Hello");
        assert!(
            spoken.tts_text().starts_with(&format!(
                "You said: Hello. I am the offline mock model {first_model},"
            )),
            "{}",
            spoken.tts_text()
        );
        assert_eq!(
            worker.turn_log(&format!("t{i}"))["model"],
            first_model.as_str()
        );
    }
}
