//! Tests of the test harness itself: signing, the HTTP/SSE client, both mocks, and one start/stop
//! of the real worker under `wrangler dev`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test fails by panicking

mod common;
use common::*;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

/// A bound for things that happen at once on loopback: it only turns a hang into a failure, so it
/// is generous (a loaded machine can take seconds over anything).
const SHORT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------------
// Signing
// ---------------------------------------------------------------------------------------------

#[test]
fn signing_matches_documented_vector() {
    let body = r#"{"type":"message","session_id":"sess_1","conversation_id":"conv_1","turn_id":"turn_1","text":"Hi"}"#;
    assert_eq!(
        sign("test_webhook_secret", 1767225600, body),
        "t=1767225600,v1=be3314ee89ab520027326f44abc8cc895339cef5459fcd2d65d3027ddd3bb8c1"
    );
}

#[test]
fn sign_now_uses_the_current_time() {
    // The clock read before and after: however long this thread is descheduled in between.
    let before = now_secs();
    let header = sign_now("s", "{}");
    let after = now_secs();
    let t: u64 = header
        .strip_prefix("t=")
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!((before..=after).contains(&t), "{before} <= {t} <= {after}");
    assert_eq!(header, sign("s", t, "{}"));
}

// ---------------------------------------------------------------------------------------------
// HTTP client + Layercode mock
// ---------------------------------------------------------------------------------------------

#[test]
fn layercode_mock_default_reply_and_recording() {
    let lc = MockLayercode::start();
    let url = format!("{}{AUTHORIZE_PATH}", lc.base_url());
    let resp = post_json(
        &url,
        &[("Authorization", "Bearer k")],
        r#"{"agent_id":"a"}"#,
    );
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("Content-Type"), Some("application/json"));
    assert_eq!(resp.text(), DEFAULT_AUTHORIZE_BODY);
    assert_eq!(
        resp.json()["config"]["transcription"]["trigger"],
        "automatic"
    );

    let reqs = lc.wait_for_requests(1, SHORT);
    assert_eq!(reqs[0].method, "POST");
    assert_eq!(reqs[0].path, AUTHORIZE_PATH);
    assert_eq!(reqs[0].header("authorization"), Some("Bearer k"));
    assert_eq!(reqs[0].json()["agent_id"], "a");
    assert!(
        !lc.client_disconnected(0, SHORT),
        "a completed answer is not a disconnect"
    );
}

#[test]
fn layercode_mock_plays_script_in_order_then_default() {
    let lc = MockLayercode::start();
    lc.push(LayercodeReply::error(402, "insufficient balance"));
    lc.push(LayercodeReply::Json {
        status: 400,
        body: r#"{"error":"invalid agent"}"#.into(),
    });
    let url = lc.base_url() + AUTHORIZE_PATH;
    let statuses: Vec<u16> = (0..3).map(|_| post_json(&url, &[], "{}").status).collect();
    assert_eq!(statuses, [402, 400, 200]);
    assert_eq!(lc.requests().len(), 3);
}

#[test]
fn mock_reads_chunked_request_bodies() {
    let lc = MockLayercode::start();
    let headers = [("Transfer-Encoding", "chunked")];
    let resp = request(
        "POST",
        &lc.base_url(),
        &headers,
        b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
    );
    assert_eq!(resp.status, 200);
    assert_eq!(lc.requests()[0].body, "hello world");
}

#[test]
fn get_reads_a_body_delimited_by_eof() {
    // A server that sends neither Content-Length nor chunked: the body runs to EOF.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = [0u8; 1024];
        let _ = s.read(&mut buf).unwrap();
        s.write_all(b"HTTP/1.1 200 OK\r\nX-Test: yes\r\n\r\nuntil eof")
            .unwrap();
    });
    let resp = get(&url);
    server.join().unwrap();
    assert_eq!(
        (resp.status, resp.text().as_str(), resp.header("x-test")),
        (200, "until eof", Some("yes"))
    );
}

#[test]
fn client_disconnect_is_detected_while_hanging() {
    let lc = MockLayercode::start();
    lc.push(LayercodeReply::Hang);
    let mut sock = TcpStream::connect(lc.base_url().trim_start_matches("http://")).unwrap();
    sock.write_all(b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
        .unwrap();
    lc.wait_for_requests(1, SHORT);
    assert!(
        !lc.client_disconnected(0, Duration::from_millis(200)),
        "still hanging, client still there"
    );
    drop(sock);
    assert!(lc.client_disconnected(0, SHORT));
}

#[test]
fn dropping_a_mock_ends_hanging_connections() {
    let gemini = MockGemini::start();
    gemini.push(GeminiReply::Hang);
    let mut sock = TcpStream::connect(gemini.base_url().trim_start_matches("http://")).unwrap();
    sock.write_all(b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        .unwrap();
    gemini.wait_for_requests(1, SHORT);
    // The drop must return while the client is still connected (this thread holds it): a drop
    // that waited for the client would never return, so it runs on a thread of its own and a
    // hang fails the test instead of stalling it. (It used to be timed: 'under 2 s'.)
    let (dropped, done) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        drop(gemini);
        let _ = dropped.send(());
    });
    assert!(
        done.recv_timeout(SHORT).is_ok(),
        "dropping the mock waited for its client"
    );
    sock.set_read_timeout(Some(SHORT)).unwrap();
    let mut rest = Vec::new();
    assert!(
        sock.read_to_end(&mut rest).is_ok_and(|n| n == 0),
        "expected EOF, got {rest:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Gemini mock + SSE client
// ---------------------------------------------------------------------------------------------

fn gemini_url(gemini: &MockGemini) -> String {
    gemini.base_url() + &gemini_fixtures::stream_path("gemini-2.5-flash-lite")
}

/// `text` of `candidates[0].content.parts[0]` of every event.
fn texts(t: &SseTranscript) -> Vec<String> {
    t.events
        .iter()
        .map(|e| {
            e.json["candidates"][0]["content"]["parts"][0]["text"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .collect()
}

#[test]
fn gemini_default_reply_is_a_valid_stream() {
    let gemini = MockGemini::start();
    let sse = SseClient::open_json(
        &gemini_url(&gemini),
        &[("x-goog-api-key", "k")],
        r#"{"contents":[]}"#,
    );
    assert_eq!(sse.status, 200);
    assert_eq!(sse.header("content-type"), Some("text/event-stream"));
    assert_eq!(sse.header("transfer-encoding"), Some("chunked"));
    let t = sse.read_all(SHORT);
    assert_eq!(texts(&t), [DEFAULT_GEMINI_TEXT]);
    assert_eq!(t.events[0].json["candidates"][0]["finishReason"], "STOP");
    assert_eq!(
        t.events[0].raw,
        format!(
            "data: {}\n\n",
            gemini_fixtures::text_event(DEFAULT_GEMINI_TEXT, Some("STOP"))
        )
    );
    assert_eq!(t.error, None);

    let req = &gemini.wait_for_requests(1, SHORT)[0];
    assert_eq!(
        req.path,
        "/v1beta/models/gemini-2.5-flash-lite:streamGenerateContent?alt=sse"
    );
    assert_eq!(req.header("X-Goog-Api-Key"), Some("k"));
    assert_eq!(req.json()["contents"], serde_json::json!([]));
}

#[test]
fn gemini_stream_events_arrive_incrementally() {
    use gemini_fixtures::{cued, text_event};
    let gemini = MockGemini::start();
    // Each later event waits for the test: the client must hand over what has arrived without
    // waiting for more, and stamp each event when it arrived. (It used to space them 400 ms
    // apart and check the stamps were at least 200 ms apart, which a thread descheduled for
    // 200 ms broke.)
    let (second, third) = (Gate::new(), Gate::new());
    gemini.push(cued(vec![
        (Cue::After(Duration::ZERO), text_event("One", None)),
        (Cue::Opened(second.clone()), text_event(" two", None)),
        (
            Cue::Opened(third.clone()),
            text_event(" three", Some("STOP")),
        ),
    ]));
    let mut sse = SseClient::open_json(&gemini_url(&gemini), &[], "{}");
    // After the client's own clock started: a lower bound for its stamps below.
    let opened = Instant::now();
    let first = sse.next_event(SHORT).expect("first event");
    // Nothing more can arrive before the gate opens: nothing complete, and not the end.
    assert!(matches!(
        sse.next(Duration::from_millis(100)),
        SseNext::Timeout
    ));
    assert!(!sse.at_eof());
    let second_sent = opened.elapsed();
    second.open();
    let two = sse.next_event(SHORT).expect("second event");
    assert!(matches!(
        sse.next(Duration::from_millis(100)),
        SseNext::Timeout
    ));
    let third_sent = opened.elapsed();
    third.open();
    let t = sse.read_all(SHORT);
    assert_eq!(t.events.len(), 1);
    let texts: Vec<&str> = [&first, &two, &t.events[0]]
        .iter()
        .map(|e| {
            e.json["candidates"][0]["content"]["parts"][0]["text"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(texts, ["One", " two", " three"]);
    // Stamped when they arrived: not before the test let them go.
    assert!(two.at >= second_sent, "{:?} < {second_sent:?}", two.at);
    assert!(
        t.events[0].at >= third_sent,
        "{:?} < {third_sent:?}",
        t.events[0].at
    );
}

#[test]
fn gemini_crlf_framing_is_kept_raw() {
    let gemini = MockGemini::start();
    let events = vec![
        (Duration::ZERO, gemini_fixtures::text_event("a", None)),
        (
            Duration::ZERO,
            gemini_fixtures::finish_only_event("MAX_TOKENS"),
        ),
    ];
    gemini.push(GeminiReply::Stream {
        events,
        framing: Framing::Crlf,
        then: StreamEnd::Close,
    });
    let t = SseClient::open_json(&gemini_url(&gemini), &[], "{}").read_all(SHORT);
    assert_eq!(t.events.len(), 2);
    assert!(t
        .events
        .iter()
        .all(|e| e.raw.starts_with("data: {") && e.raw.ends_with("}\r\n\r\n")));
    assert_eq!(
        t.events[1].json["candidates"][0]["content"],
        serde_json::json!({"role": "model"})
    );
    assert_eq!(
        t.events[1].json["candidates"][0]["finishReason"],
        "MAX_TOKENS"
    );
}

#[test]
fn wyoming_fixture_survives_any_split() {
    for (fixture, piece) in [
        (gemini_fixtures::wyoming_fixture_lf(), 7),
        (gemini_fixtures::wyoming_fixture_crlf(), 1),
    ] {
        let gemini = MockGemini::start();
        gemini.push(gemini_fixtures::raw_split(&fixture, piece, Duration::ZERO));
        let t = SseClient::open_json(&gemini_url(&gemini), &[], "{}").read_all(SHORT);
        assert_eq!(t.raw_body.as_bytes(), fixture.as_slice());
        assert_eq!(
            t.events.iter().map(|e| e.raw.as_str()).collect::<String>(),
            t.raw_body
        );
        assert_eq!(texts(&t).concat(), gemini_fixtures::WYOMING_TEXT);
    }
}

#[test]
fn event_time_is_when_the_frame_completed() {
    let gemini = MockGemini::start();
    let frame = format!(
        "data: {}\n\n",
        gemini_fixtures::text_event("x", Some("STOP"))
    );
    let (head, rest) = frame.split_at(10);
    let pieces = vec![
        (Duration::ZERO, head.as_bytes().to_vec()),
        (Duration::from_millis(300), rest.as_bytes().to_vec()),
    ];
    gemini.push(GeminiReply::Raw { pieces });
    let t = SseClient::open_json(&gemini_url(&gemini), &[], "{}").read_all(SHORT);
    assert_eq!(t.events.len(), 1);
    assert!(
        t.events[0].at >= Duration::from_millis(300),
        "at = {:?}",
        t.events[0].at
    );
}

#[test]
fn gemini_error_statuses_use_googles_body() {
    let gemini = MockGemini::start();
    gemini.push(gemini_fixtures::error_reply(
        429,
        "RESOURCE_EXHAUSTED",
        "Resource has been exhausted",
    ));
    gemini.push(gemini_fixtures::error_reply(
        400,
        "INVALID_ARGUMENT",
        "API key not valid. Please pass a valid API key.",
    ));
    let resp = post_json(&gemini_url(&gemini), &[], "{}");
    assert_eq!(resp.status, 429);
    assert_eq!(
        resp.header("content-type"),
        Some("application/json; charset=UTF-8")
    );
    let body = resp.json();
    assert_eq!(body["error"]["code"], 429);
    assert_eq!(body["error"]["status"], "RESOURCE_EXHAUSTED");
    assert_eq!(body["error"]["details"][0]["retryDelay"], "22s");
    assert!(resp
        .text()
        .starts_with("{\n  \"error\": {\n    \"code\": 429,"));

    let resp = post_json(&gemini_url(&gemini), &[], "{}");
    assert_eq!(resp.status, 400);
    assert_eq!(
        resp.json()["error"]["details"][0]["reason"],
        "API_KEY_INVALID"
    );
}

#[test]
fn gemini_fixture_shapes() {
    let event: serde_json::Value =
        serde_json::from_str(&gemini_fixtures::text_event("Hi \"there\"\n", None)).unwrap();
    assert_eq!(
        event["candidates"][0]["content"]["parts"][0]["text"],
        "Hi \"there\"\n"
    );
    assert_eq!(event["candidates"][0]["content"]["role"], "model");
    assert!(event["candidates"][0].get("finishReason").is_none());
    assert!(event["usageMetadata"].get("candidatesTokenCount").is_none());
    assert_eq!(
        event["usageMetadata"]["promptTokensDetails"][0]["modality"],
        "TEXT"
    );
    assert!(event["modelVersion"].is_string() && event["responseId"].is_string());

    let last: serde_json::Value =
        serde_json::from_str(&gemini_fixtures::text_event("a b", Some("STOP"))).unwrap();
    assert_eq!(last["candidates"][0]["finishReason"], "STOP");
    assert_eq!(last["usageMetadata"]["candidatesTokenCount"], 2);

    let blocked: serde_json::Value =
        serde_json::from_str(&gemini_fixtures::blocked_prompt_event("SAFETY")).unwrap();
    assert_eq!(blocked["promptFeedback"]["blockReason"], "SAFETY");
    assert!(blocked.get("candidates").is_none());

    let err: serde_json::Value =
        serde_json::from_str(&gemini_fixtures::error_event(500, "INTERNAL", "boom")).unwrap();
    assert_eq!(
        err,
        serde_json::json!({"error": {"code": 500, "message": "boom", "status": "INTERNAL"}})
    );
    let body: serde_json::Value = serde_json::from_str(&gemini_fixtures::error_body(
        503,
        "UNAVAILABLE",
        "overloaded",
    ))
    .unwrap();
    assert_eq!(
        body,
        serde_json::json!({"error": {"code": 503, "message": "overloaded", "status": "UNAVAILABLE"}})
    );
}

#[test]
fn hanging_stream_then_client_disconnect() {
    let gemini = MockGemini::start();
    let events = vec![(Duration::ZERO, gemini_fixtures::text_event("partial", None))];
    gemini.push(GeminiReply::Stream {
        events,
        framing: Framing::Lf,
        then: StreamEnd::Hang,
    });
    let mut sse = SseClient::open_json(&gemini_url(&gemini), &[], "{}");
    assert!(sse.next_event(SHORT).is_some());
    assert!(matches!(
        sse.next(Duration::from_millis(200)),
        SseNext::Timeout
    ));
    assert!(!gemini.client_disconnected(0, Duration::from_millis(100)));
    sse.disconnect();
    assert!(gemini.client_disconnected(0, SHORT));
}

#[test]
fn truncated_chunked_body_is_reported() {
    // The mock is dropped mid-stream: the chunked body ends without its terminating chunk.
    let gemini = MockGemini::start();
    let events = vec![(Duration::ZERO, gemini_fixtures::text_event("partial", None))];
    gemini.push(GeminiReply::Stream {
        events,
        framing: Framing::Lf,
        then: StreamEnd::Hang,
    });
    let mut sse = SseClient::open_json(&gemini_url(&gemini), &[], "{}");
    assert!(sse.next_event(SHORT).is_some());
    drop(gemini);
    assert!(matches!(sse.next(SHORT), SseNext::Eof));
    assert!(sse.at_eof());
    assert!(
        sse.error().is_some_and(|e| e.contains("EOF")),
        "error: {:?}",
        sse.error()
    );
}

#[test]
fn sse_transcript_helpers() {
    // Serve a Layercode-style SSE body through the Raw reply and check the transcript helpers.
    let gemini = MockGemini::start();
    let body = concat!(
        "data: {\"type\":\"response.tts\",\"content\":\"Hi \",\"turn_id\":\"t\"}\n\n",
        "data: {\"type\":\"response.tts\",\"content\":\"there\",\"turn_id\":\"t\"}\n\n",
        "data: {\"type\":\"response.end\",\"turn_id\":\"t\"}\n\n",
    );
    gemini.push(GeminiReply::Raw {
        pieces: vec![(Duration::ZERO, body.as_bytes().to_vec())],
    });
    let t = SseClient::open_json(&gemini.base_url(), &[], "{}").read_all(SHORT);
    assert_eq!(t.types(), ["response.tts", "response.tts", "response.end"]);
    assert_eq!(t.tts_text(), "Hi there");
    assert_eq!(t.raw_body, body);
}

// ---------------------------------------------------------------------------------------------
// The real worker
// ---------------------------------------------------------------------------------------------

/// `(pgid, command)` of every live process whose group is `pgid`, according to `ps`.
fn ps_group(pgid: i32) -> Vec<String> {
    let out = Command::new("ps")
        .args(["-eo", "pgid=,stat=,args="])
        .output()
        .expect("run ps");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| {
            let mut f = l.split_whitespace();
            f.next() == Some(&pgid.to_string()) && !f.next().unwrap_or("").starts_with('Z')
        })
        .map(str::to_string)
        .collect()
}

/// The `.pgid` files written for the run directory `run_dir` (`<run_dir>.<attempt>.pgid`).
fn pgid_files_of(run_dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let prefix = format!("{}.", run_dir.file_name().unwrap().to_string_lossy());
    let entries = std::fs::read_dir(run_dir.parent().unwrap())
        .unwrap()
        .flatten();
    entries
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            name.starts_with(&prefix) && name.ends_with(".pgid")
        })
        .collect()
}

#[test]
fn worker_starts_answers_health_and_stops_cleanly() {
    let gemini = MockGemini::start();
    let layercode = MockLayercode::start();
    let worker = Worker::start(WorkerOptions::new(&gemini, &layercode));
    assert_eq!(get(&worker.url("/health")).status, 200);

    let pgid = worker.pgid();
    let running = ps_group(pgid);
    assert!(
        running.iter().any(|l| l.contains("workerd")),
        "no workerd in group {pgid}: {running:#?}"
    );
    let pgid_files = pgid_files_of(&worker.run_dir);
    assert_eq!(pgid_files.len(), 1, "{pgid_files:?}");
    assert_eq!(
        std::fs::read_to_string(&pgid_files[0]).unwrap(),
        pgid.to_string()
    );

    let run_dir = worker.run_dir.clone();
    worker.stop();
    assert_eq!(
        ps_group(pgid),
        Vec::<String>::new(),
        "processes of group {pgid} survived stop()"
    );
    assert_eq!(
        pgid_files_of(&run_dir),
        Vec::<std::path::PathBuf>::new(),
        "pgid file left behind"
    );
}
