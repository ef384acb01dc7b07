//! What `wrangler dev` tells a streaming worker when its client hangs up before any byte of the
//! answer (issue 22, item 4; RELIABILITY.md has the whole experiment, bare workerd included).
//! The turn's handling of such a hang-up (`interruptions::a_reply_to_a_caller_gone_before_the_
//! first_byte_is_stored_unheard`) rests on this: if a new wrangler reports the hang-up at once,
//! or never, this test fails and RELIABILITY.md's account needs updating.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test fails by panicking

mod common;
use common::*;

use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

/// The experiment worker (`benches/hangup/worker.js`) under `wrangler dev`.
fn start() -> Worker {
    let gemini = MockGemini::start();
    let layercode = MockLayercode::start();
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/hangup/wrangler.toml");
    Worker::start(WorkerOptions::new(&gemini, &layercode).config(&config))
}

/// How long the experiment waits between writes of a client that left: at most this, and only
/// until the hang-up is reported (the worker's gap ends then). A generous bound for a dev proxy
/// that is slow to report on a loaded machine; a wrangler that never reports fails the test.
const GONE_GAP_MS: u64 = 20_000;

/// What the worker observed for request `id`, once its writes are done: one line per event.
fn report(worker: &Worker, id: &str) -> Vec<String> {
    // Three gaps of a hang-up that is never reported, and then some.
    let deadline = Instant::now() + Duration::from_millis(3 * GONE_GAP_MS) + TURN_TIMEOUT;
    loop {
        let report = get(&worker.url(&format!("/report?id={id}"))).json();
        if report["done"] == true {
            return report["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|event| event["what"].as_str().unwrap().to_string())
                .collect();
        }
        assert!(Instant::now() < deadline, "no report for {id}: {report}");
        thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn wrangler_dev_reports_a_hang_up_only_after_the_next_write() {
    let worker = start();
    // A client that reads everything: every write is taken, nothing is aborted.
    let whole =
        SseClient::open_json(&worker.url("/stream?id=stay"), &[], "{}").read_all(TURN_TIMEOUT);
    assert_eq!(whole.events.len(), 3);
    assert_eq!(
        report(&worker, "stay"),
        vec![
            "before writes: signal.aborted=false",
            "write 1 resolved; signal.aborted=false",
            "ready after write 1: resolved",
            "write 2 resolved; signal.aborted=false",
            "ready after write 2: resolved",
            "write 3 resolved; signal.aborted=false",
            "ready after write 3: resolved",
            "close resolved",
            "writer.closed resolved",
            "end: signal.aborted=false",
        ]
    );

    // A client gone 500 ms before the first write: nothing is reported until that write, which
    // is taken (and lost); then the signal aborts and every later write is refused. The next
    // write waits for that report (up to GONE_GAP_MS): with the default 100 ms, a dev proxy that
    // a loaded machine kept from running for longer let write 2 be taken too.
    let gone = format!("/stream?id=gone&gap={GONE_GAP_MS}");
    send_then_hang_up("POST", &worker.url(&gone), &[], b"{}");
    let events = report(&worker, "gone");
    assert_eq!(
        events[0], "before writes: signal.aborted=false",
        "{events:#?}"
    );
    assert_eq!(
        events[1], "write 1 resolved; signal.aborted=false",
        "{events:#?}"
    );
    let aborted = events
        .iter()
        .position(|e| e == "signal abort")
        .expect("an abort");
    let refused = events
        .iter()
        .position(|e| e.starts_with("write 2 rejected"))
        .expect("write 2 refused");
    assert!(1 < aborted && aborted < refused, "{events:#?}");
    assert!(
        events.contains(&"writer.closed rejected: undefined".to_string()),
        "{events:#?}"
    );
    assert!(
        events.iter().any(|e| e.starts_with("write 3 rejected")),
        "{events:#?}"
    );
    assert!(
        events.iter().any(|e| e.starts_with("close rejected")),
        "{events:#?}"
    );
}
