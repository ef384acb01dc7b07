//! Retention (the Durable Object alarm) and the conversations API (`GET`/`DELETE
//! /conversations/{id}`) against the real worker under `wrangler dev`.
//!
//! Retention tests use a retention period of seconds (`CONVERSATION_TTL_SECONDS`) and poll for
//! the asynchronous outcome with a bounded wait; the alarm's own log line says what it decided,
//! so a test can tell "expired" from "not fired yet". A period that short is a timer observed in
//! real time, and a loaded machine can stall for longer than it anywhere: each test is built so
//! that such a stall cannot flip what it checks (see each one).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test fails by panicking

mod common;
use common::*;

use serde_json::{json, Value};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const API_KEY: &str = "test_conversations_api_key";
/// How long an expiry may take to show: the period plus the runtime's alarm latency, with room
/// for a loaded machine.
const EXPIRY_WAIT: Duration = Duration::from_secs(30);

fn start_with(configure: impl FnOnce(WorkerOptions) -> WorkerOptions) -> (MockGemini, Worker) {
    let gemini = MockGemini::start();
    let layercode = MockLayercode::start();
    let options = WorkerOptions::new(&gemini, &layercode).secret("CONVERSATIONS_API_KEY", API_KEY);
    let worker = Worker::start(configure(options));
    (gemini, worker)
}

fn start_with_ttl(seconds: &str) -> (MockGemini, Worker) {
    start_with(|o| o.var("CONVERSATION_TTL_SECONDS", seconds))
}

fn api(worker: &Worker, method: &str, id: &str, key: Option<&str>) -> HttpResponse {
    let bearer = key.map(|k| format!("Bearer {k}"));
    let headers: Vec<(&str, &str)> = bearer
        .as_deref()
        .map(|b| vec![("authorization", b)])
        .unwrap_or_default();
    request(
        method,
        &worker.url(&format!("/conversations/{id}")),
        &headers,
        b"",
    )
}

fn get_conversation(worker: &Worker, id: &str) -> HttpResponse {
    api(worker, "GET", id, Some(API_KEY))
}

/// Runs one spoken turn and waits for its log line, which the worker writes after storing the
/// reply, so the next step sees the finished turn.
fn spoken_turn(worker: &Worker, event: &Value) -> SseTranscript {
    let transcript = stream_webhook(worker, event);
    let turn_id = event["turn_id"].as_str().expect("turn_id");
    assert_well_formed_turn(&transcript, turn_id);
    let conversation = event["conversation_id"].as_str().expect("conversation_id");
    worker.wait_for_log(
        &format!("\"conversation_id\":\"{conversation}\",\"turn_id\":\"{turn_id}\""),
        TURN_TIMEOUT,
    );
    transcript
}

/// Polls `condition` every 100 ms until it holds; panics with `what` and the log after `timeout`.
fn wait_until(worker: &Worker, timeout: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        if Instant::now() >= deadline {
            panic!(
                "{what} did not happen within {timeout:?}:\n{}",
                worker.logs()
            );
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// The API's log line for one call (the worker writes its JSON keys sorted).
fn api_log(action: &str, conversation_id: &str, outcome: &str) -> String {
    json!({
        "action": action,
        "conversation_id": conversation_id,
        "event": "conversations_api",
        "outcome": outcome,
    })
    .to_string()
}

fn retention_lines(worker: &Worker, action: &str) -> usize {
    retention_lines_in(&worker.logs(), action)
}

fn retention_lines_in(logs: &str, action: &str) -> usize {
    let needle = format!("\"action\":\"{action}\"");
    logs.lines()
        .filter(|l| l.contains("\"event\":\"retention\"") && l.contains(&needle))
        .count()
}

/// GETs conversation `id` right after a turn: `Some(body)` while it is stored. With a period of
/// a second or two, a machine that stalls for longer than the period between the turn and this
/// read lets the alarm erase the conversation first, rightly. So a 404 is accepted, as `None`,
/// only when the log proves that order: an expiry of `id` beyond the `expired_so_far` already
/// seen, logged before this read's own `not_found` line (the alarm logs right after its erase, and
/// the worker logs a read after the object answered it, in one ordered stream). A 404 with no
/// expiry before it fails, as it always did.
fn read_unless_expired(worker: &Worker, id: &str, expired_so_far: usize) -> Option<Value> {
    let not_found = api_log("read", id, "not_found");
    let earlier_reads = worker.logs().matches(&not_found).count();
    let response = get_conversation(worker, id);
    if response.status == 200 {
        return Some(response.json());
    }
    assert_eq!(response.status, 404, "{}", response.text());
    wait_until(worker, TURN_TIMEOUT, "the 404 read's log line", || {
        worker.logs().matches(&not_found).count() > earlier_reads
    });
    let logs = worker.logs();
    let (at, _) = logs
        .match_indices(&not_found)
        .nth(earlier_reads)
        .expect("this read's line");
    let expired = format!("\"action\":\"expired\",\"conversation_id\":{}", json!(id));
    assert!(
        logs[..at].matches(&expired).count() > expired_so_far,
        "{id} answered 404 without expiring first:\n{logs}"
    );
    None
}

/// The longest time between the end of one turn and the end of the next, on the test's clock:
/// an upper bound on how long the conversation was idle in between. For failure messages.
fn longest_gap(turn_ends: &[Instant]) -> Duration {
    turn_ends
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or_default()
}

fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// Our tables in every Conversation object's SQLite file. (The runtime keeps its own, such as
/// miniflare's `__miniflare_do_name`, in a file for every object that was merely addressed.)
fn stored_tables(worker: &Worker) -> Vec<String> {
    worker
        .conversation_db_files()
        .iter()
        .flat_map(|f| {
            sqlite_json(
                f,
                "SELECT name FROM sqlite_master WHERE type = 'table' \
                 AND name IN ('messages', 'sessions', 'activity')",
            )
        })
        .filter_map(|row| row["name"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn an_idle_conversation_expires_and_its_id_starts_fresh() {
    let (gemini, worker) = start_with_ttl("1");
    spoken_turn(&worker, &message("conv_expire", "turn_1", "My name is Ada"));
    // Both messages are stored, unless the second-long period has already run out.
    if let Some(first) = read_unless_expired(&worker, "conv_expire", 0) {
        assert_eq!(first["messages"].as_array().map(Vec::len), Some(2));
    }

    wait_until(&worker, EXPIRY_WAIT, "expiry (GET answering 404)", || {
        get_conversation(&worker, "conv_expire").status == 404
    });
    // The alarm logs right after its erase, but the log may reach the file after the 404.
    wait_until(&worker, TURN_TIMEOUT, "the expiry's log line", || {
        retention_lines(&worker, "expired") >= 1
    });
    let gone = get_conversation(&worker, "conv_expire");
    assert_eq!(gone.json(), json!({"error": "conversation not found"}));

    // The same id comes back: a fresh conversation, no error, no old history for the model.
    let again = spoken_turn(&worker, &message("conv_expire", "turn_2", "Who am I?"));
    assert_eq!(again.tts_text(), DEFAULT_GEMINI_TEXT);
    let requests = gemini.wait_for_requests(2, TURN_TIMEOUT);
    assert_eq!(
        contents(&requests[1].json()),
        vec![turn("user", "Who am I?")]
    );
    if let Some(fresh) = read_unless_expired(&worker, "conv_expire", 1) {
        let turn_ids: Vec<&str> = fresh["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .map(|m| m["turn_id"].as_str().unwrap_or_default())
            .collect();
        assert_eq!(turn_ids, vec!["turn_2", "turn_2"]);
    }

    // The fresh conversation gets its own alarm (the erase disarmed this instance) and expires too.
    wait_until(&worker, EXPIRY_WAIT, "the second expiry", || {
        get_conversation(&worker, "conv_expire").status == 404
    });
    wait_until(
        &worker,
        TURN_TIMEOUT,
        "the second expiry's log line",
        || retention_lines(&worker, "expired") >= 2,
    );
}

/// The period of the test below, and the pause between its turns. The conversation is idle
/// from one turn's last write to the next turn's first: a pause plus a turn, about 2.3 s. It
/// may expire only if that stretches past the period, so the period leaves some 10 s for a
/// stalled machine, where this test's old 2 s period with 0.3 s pauses left about 1.5 s. The test
/// runs for two periods (two firings of the alarm), about 25 s and a dozen turns; its bound of
/// 19 turns (the most whose history still fits the 40-message window the final check reads)
/// leaves some 20 s more for alarms that fire late.
const ACTIVE_PERIOD_SECS: u64 = 12;
const ACTIVE_PAUSE: Duration = Duration::from_secs(2);

#[test]
fn an_active_conversation_outlives_its_period_as_the_alarm_re_arms() {
    let (gemini, worker) = start_with_ttl(&ACTIVE_PERIOD_SECS.to_string());
    let mut turns = 0;
    let mut turn_ends = vec![Instant::now()];
    // Turns well within the period of each other, until the alarm has fired (and re-armed)
    // twice; bounded so a broken alarm fails instead of looping.
    while retention_lines(&worker, "rearmed") < 2 {
        assert!(turns < 19, "the alarm never re-armed:\n{}", worker.logs());
        assert_eq!(
            retention_lines(&worker, "expired"),
            0,
            "expired while in use (longest gap between turns {:?}, period {ACTIVE_PERIOD_SECS} s):\n{}",
            longest_gap(&turn_ends),
            worker.logs()
        );
        turns += 1;
        spoken_turn(
            &worker,
            &message(
                "conv_active",
                &format!("turn_{turns}"),
                &format!("Point {turns}"),
            ),
        );
        turn_ends.push(Instant::now());
        thread::sleep(ACTIVE_PAUSE);
    }
    turns += 1;
    spoken_turn(
        &worker,
        &message("conv_active", &format!("turn_{turns}"), "Summarise"),
    );
    turn_ends.push(Instant::now());
    assert_eq!(
        retention_lines(&worker, "expired"),
        0,
        "expired while in use (longest gap between turns {:?}, period {ACTIVE_PERIOD_SECS} s):\n{}",
        longest_gap(&turn_ends),
        worker.logs()
    );
    // The last model request, made while the conversation was in use, still has everything.
    // (A long run may have asked for a summary too: those requests are not turns.)
    let requests: Vec<_> = gemini
        .wait_for_requests(turns, TURN_TIMEOUT)
        .into_iter()
        .filter(|r| !is_summary_request(&r.json()))
        .collect();
    let history = contents(&requests[turns - 1].json());
    assert_eq!(history.len(), 2 * turns - 1, "{history:?}");
    assert_eq!(history[0], turn("user", "Point 1"));
    assert_eq!(history[1], turn("model", DEFAULT_GEMINI_TEXT));
}

#[test]
fn a_turn_outlasting_the_period_is_never_lost_to_the_alarm() {
    use gemini_fixtures::{cued, text_event};
    // A period of a second; no silence or turn limit that the held reply below could reach.
    let (gemini, worker) = start_with(|o| {
        o.var("CONVERSATION_TTL_SECONDS", "1")
            .var("GEMINI_TIMEOUT_MS", "120000")
            .var("TURN_MAX_MS", "600000")
    });
    // The reply's first words, then nothing until the test opens the gate: the turn stays in
    // flight for as long as the alarm needs, however slowly it fires.
    let rest = Gate::new();
    gemini.push(cued(vec![
        (
            Cue::After(Duration::ZERO),
            text_event("Let me think.", None),
        ),
        (
            Cue::Opened(rest.clone()),
            text_event(" Still thinking.", None),
        ),
        (
            Cue::After(Duration::ZERO),
            text_event(" Done.", Some("STOP")),
        ),
    ]));
    let mut slow = open_webhook(&worker, &message("conv_race", "turn_1", "A hard question"));
    let first = slow.next_event(TURN_TIMEOUT).expect("the first words");
    assert_eq!(first.json["content"], "Let me think.");
    // Three firings while the turn is held: the second and third find the conversation idle for
    // the whole period (nothing is written while the model streams), so only the turn in flight
    // can make them re-arm rather than erase.
    wait_until(&worker, EXPIRY_WAIT, "three alarms during the turn", || {
        retention_lines(&worker, "rearmed") >= 3 || retention_lines(&worker, "expired") > 0
    });
    assert_eq!(
        retention_lines(&worker, "expired"),
        0,
        "the alarm erased a conversation with a turn in flight:\n{}",
        worker.logs()
    );
    rest.open();
    let mut slow = slow.read_all(TURN_TIMEOUT);
    slow.events.insert(0, first);
    assert_well_formed_turn(&slow, "turn_1");
    assert_eq!(slow.tts_text(), "Let me think. Still thinking. Done.");

    // Stored, not lost: no expiry before the turn's log line (written once the reply is stored),
    // and a read right after finds the reply, unless a stall past the period let the (now idle)
    // conversation expire since, after the turn.
    let turn_line = worker.wait_for_log(
        "\"conversation_id\":\"conv_race\",\"turn_id\":\"turn_1\"",
        TURN_TIMEOUT,
    );
    let logs = worker.logs();
    let turn_at = logs.find(&turn_line).expect("the turn's line");
    assert_eq!(retention_lines_in(&logs[..turn_at], "expired"), 0, "{logs}");
    if let Some(stored) = read_unless_expired(&worker, "conv_race", 0) {
        let messages: Vec<(&str, &str, &str)> = stored["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .map(|m| {
                let field = |k: &str| m[k].as_str().unwrap_or_default();
                (field("role"), field("text"), field("status"))
            })
            .collect();
        assert_eq!(
            messages,
            vec![
                ("user", "A hard question", "complete"),
                (
                    "assistant",
                    "Let me think. Still thinking. Done.",
                    "complete"
                ),
            ]
        );
    }
    assert_eq!(gemini.requests().len(), 1);
}

#[test]
fn get_lists_messages_and_sessions_in_order() {
    let started_ms = unix_ms();
    let (gemini, worker) = start_with(|o| o);
    spoken_turn(&worker, &session_start("conv_read", "turn_w"));
    spoken_turn(&worker, &message("conv_read", "turn_1", "Hello"));
    spoken_turn(&worker, &message("conv_read", "turn_2", "Tell me a story"));
    // turn_3 says the caller heard only "Hello from" of turn_2; its own model call fails.
    gemini.push(gemini_fixtures::error_reply(
        400,
        "INVALID_ARGUMENT",
        "Request contains an invalid argument.",
    ));
    spoken_turn(
        &worker,
        &interrupted_message("conv_read", "turn_3", "Stop", "turn_2", "Hello from"),
    );
    let end = post_webhook(
        &worker,
        &json!({
            "type": "session.end", "session_id": "sess_read", "conversation_id": "conv_read",
            "started_at": "2026-11-27T04:00:00Z", "ended_at": "2026-11-27T04:01:01Z",
            "duration": 61000, "transcription_duration_seconds": 12.5,
            "tts_duration_seconds": null, "latency": 0.42, "recording_status": "disabled",
            "transcript": [{"role": "user", "text": "Hello"}]
        }),
    );
    assert_eq!(end.status, 200);

    let response = get_conversation(&worker, "conv_read");
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.header("content-type"), Some("application/json"));
    assert_eq!(response.header("cache-control"), Some("no-store"));
    assert_eq!(response.header("access-control-allow-origin"), None);
    let mut body = response.json();

    // Times first (they are the runtime's clock), then the exact rest.
    let mut times = Vec::new();
    for m in body["messages"].as_array_mut().expect("messages") {
        let object = m.as_object_mut().expect("message object");
        let created = object.remove("created_at_ms").expect("created_at_ms");
        times.push(created.as_i64().expect("created_at_ms is an integer"));
    }
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "in order: {times:?}"
    );
    assert!(
        times
            .iter()
            .all(|t| *t >= started_ms - 1000 && *t <= unix_ms() + 1000),
        "epoch milliseconds of this run: {times:?} (start {started_ms})"
    );
    let session = body["sessions"][0].as_object_mut().expect("one session");
    let recorded = session.remove("recorded_at_ms").expect("recorded_at_ms");
    assert!(recorded.as_i64().expect("integer") >= times[times.len() - 1]);

    let msg = |turn_id: &str, role: &str, text: &str, status: &str| json!({"turn_id": turn_id, "role": role, "text": text, "status": status});
    assert_eq!(
        body,
        json!({
            "conversation_id": "conv_read",
            "messages": [
                // The welcome is keyed in its own namespace (`conversation::welcome_key`).
                msg("welcome:turn_w", "assistant", "Hi! How can I help you today?", "complete"),
                msg("turn_1", "user", "Hello", "complete"),
                msg("turn_1", "assistant", DEFAULT_GEMINI_TEXT, "complete"),
                msg("turn_2", "user", "Tell me a story", "complete"),
                msg("turn_2", "assistant", "Hello from", "interrupted"),
                msg("turn_3", "user", "Stop", "complete"),
                msg("turn_3", "assistant", APOLOGY_BEFORE, "failed"),
            ],
            "sessions": [{
                "session_id": "sess_read", "transcript_messages": 1, "duration_ms": 61000.0,
                "transcription_seconds": 12.5, "tts_seconds": null, "latency": 0.42,
                "recording_status": "disabled", "started_at": "2026-11-27T04:00:00Z",
                "ended_at": "2026-11-27T04:01:01Z"
            }],
            // A short call has no running summary (tests/memory.rs covers one that has).
            "summary": null,
        })
    );
    worker.wait_for_log(&api_log("read", "conv_read", "ok"), TURN_TIMEOUT);
}

#[test]
fn delete_erases_everything_now_and_a_later_webhook_starts_fresh() {
    let (gemini, worker) = start_with_ttl("3600");
    spoken_turn(
        &worker,
        &message("conv_erase", "turn_1", "zebra quartz phrase"),
    );
    post_webhook(
        &worker,
        &json!({"type": "session.end", "session_id": "sess_1", "conversation_id": "conv_erase"}),
    );
    assert_eq!(get_conversation(&worker, "conv_erase").status, 200);
    assert_eq!(
        stored_tables(&worker).len(),
        3,
        "messages, sessions, activity"
    );

    let erased = api(&worker, "DELETE", "conv_erase", Some(API_KEY));
    assert_eq!(erased.status, 204, "{}", erased.text());
    assert!(erased.body.is_empty());
    assert!(
        stored_tables(&worker).is_empty(),
        "{:?}",
        stored_tables(&worker)
    );
    let gone = get_conversation(&worker, "conv_erase");
    assert_eq!(gone.status, 404);
    assert_eq!(gone.json(), json!({"error": "conversation not found"}));
    let again = api(&worker, "DELETE", "conv_erase", Some(API_KEY));
    assert_eq!(again.status, 404);

    spoken_turn(&worker, &message("conv_erase", "turn_2", "Hello again"));
    let requests = gemini.wait_for_requests(2, TURN_TIMEOUT);
    assert_eq!(
        contents(&requests[1].json()),
        vec![turn("user", "Hello again")]
    );
    let fresh = get_conversation(&worker, "conv_erase").json();
    assert_eq!(fresh["messages"].as_array().map(Vec::len), Some(2));
    assert_eq!(fresh["sessions"], json!([]));

    worker.wait_for_log(&api_log("erase", "conv_erase", "ok"), TURN_TIMEOUT);
    let logs = worker.logs();
    assert!(logs.contains(&api_log("erase", "conv_erase", "not_found")));
    assert!(!logs.contains("zebra"), "message text reached the log");
}

#[test]
fn a_missing_or_wrong_key_gets_401_without_a_hint() {
    let (_gemini, worker) = start_with(|o| o);
    spoken_turn(&worker, &message("conv_auth", "turn_1", "Hi"));
    let expected = json!({"error": "invalid or missing API key"});
    let bearer = |k: &str| format!("Bearer {k}");
    let cases: Vec<(&str, Vec<(&str, String)>)> = vec![
        ("no header", vec![]),
        ("wrong key", vec![("authorization", bearer("not_the_key"))]),
        (
            "key prefix",
            vec![("authorization", bearer(&API_KEY[..10]))],
        ),
        (
            "key plus more",
            vec![("authorization", bearer(&format!("{API_KEY}x")))],
        ),
        ("no scheme", vec![("authorization", API_KEY.to_string())]),
        (
            "basic scheme",
            vec![("authorization", format!("Basic {API_KEY}"))],
        ),
    ];
    for (name, headers) in &cases {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        for method in ["GET", "DELETE"] {
            for id in ["conv_auth", "conv_never_seen"] {
                let url = worker.url(&format!("/conversations/{id}"));
                let mut with_origin = headers.clone();
                with_origin.push(("origin", "https://app.example"));
                let response = request(method, &url, &with_origin, b"");
                assert_eq!(response.status, 401, "{name} {method} {id}");
                assert_eq!(response.json(), expected, "{name} {method} {id}: same body");
                assert_eq!(response.header("www-authenticate"), Some("Bearer"));
                assert_eq!(response.header("access-control-allow-origin"), None);
            }
        }
    }
    // Nothing was erased by any of those, and the right key (any scheme case) still works.
    let ok = request(
        "GET",
        &worker.url("/conversations/conv_auth"),
        &[("authorization", &format!("bearer {API_KEY}"))],
        b"",
    );
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(ok.json()["messages"].as_array().map(Vec::len), Some(2));
    let put = request(
        "PUT",
        &worker.url("/conversations/conv_auth"),
        &[("authorization", &bearer(API_KEY))],
        b"",
    );
    assert_eq!(put.status, 405);
    assert!(!worker.logs().contains(API_KEY), "the key reached the log");
}

#[test]
fn without_a_key_configured_the_routes_do_not_exist() {
    let (_gemini, worker) = start_with(|o| o.without_secret("CONVERSATIONS_API_KEY"));
    spoken_turn(&worker, &message("conv_nokey", "turn_1", "Hi"));
    let no_route = get(&worker.url("/no/such/route"));
    assert_eq!(no_route.status, 404);
    for method in ["GET", "DELETE"] {
        for key in [None, Some(API_KEY), Some("")] {
            let response = api(&worker, method, "conv_nokey", key);
            assert_eq!(response.status, 404, "{method} {key:?}");
            assert_eq!(response.body, no_route.body, "{method} {key:?}");
        }
    }
    let health = get(&worker.url("/health")).json();
    assert_eq!(health["settings"]["CONVERSATIONS_API_KEY"], false);
}

#[test]
fn bad_ids_get_400_and_unknown_ids_404_without_storing_anything() {
    let (gemini, worker) = start_with(|o| o);
    let too_long = "x".repeat(257);
    let two_byte_too_long = "%C3%A9".repeat(129);
    for id in [
        "",
        too_long.as_str(),
        two_byte_too_long.as_str(),
        "conv%00x",
        "conv%0Ax",
        "conv%1B",
        "conv%",
        "conv%FF",
    ] {
        for method in ["GET", "DELETE"] {
            let response = api(&worker, method, id, Some(API_KEY));
            assert_eq!(response.status, 400, "{method} {id:?}: {}", response.text());
            let error = response.json()["error"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            assert!(error.contains("conversation id"), "{error}");
        }
    }
    let longest = "y".repeat(256);
    for id in ["conv_unknown", longest.as_str(), "caf%C3%A9%20au%20lait"] {
        for method in ["GET", "DELETE"] {
            let response = api(&worker, method, id, Some(API_KEY));
            assert_eq!(response.status, 404, "{method} {id:?}: {}", response.text());
            assert_eq!(response.json(), json!({"error": "conversation not found"}));
        }
    }
    assert!(
        stored_tables(&worker).is_empty(),
        "reading unknown ids created storage: {:?}",
        stored_tables(&worker)
    );
    assert!(gemini.requests().is_empty());
    let health = get(&worker.url("/health")).json();
    assert_eq!(health["settings"]["CONVERSATIONS_API_KEY"], true);
}
