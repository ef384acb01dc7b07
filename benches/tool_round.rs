//! What one tool round adds to a turn, measured under `wrangler dev` against mocks that answer
//! at once: a mock Gemini that calls `shop_hours` when the caller's text asks for it, and a
//! tool endpoint on loopback. Plain turns and tool turns alternate in one run, so the tool
//! round's own cost is read against the plain turn's overhead measured beside it.
//!
//! Every interval is the worker's own time, between two instants the mocks or the client saw on
//! this process's clock:
//! * plain overhead: (webhook sent → Gemini request) + (Gemini's first chunk → first `response.tts`);
//! * tool round: (Gemini's call chunk → the tool request) + (the tool's answer → the follow-up
//!   Gemini request): what the worker adds between the model and the tool, both ways.
//!
//! * `cargo bench --bench tool_round`: `TOOL_BENCH_TURNS` (default 100) turns of each kind.
//! * `cargo test --all-targets` runs a smoke run of 3 of each that checks every turn.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test fails by panicking

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "latency/stats.rs"]
mod stats;

use common::mock_server::{json_reply, MockReply, MockServer};
use common::*;
use stats::pct;
use std::time::{Duration, Instant};

const TOOL_SECRET: &str = "tool_round_bench_secret";
const ANSWER: &str = "It is open until seven.";

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let turns = if full {
        std::env::var("TOOL_BENCH_TURNS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(100)
    } else {
        3
    };
    let gemini = MockGemini::start_with(answer);
    let endpoint = Mock::<MockReply>::new(MockServer::start("tool endpoint", || {
        json_reply(
            200,
            "application/json",
            r#"{"open": true, "until": "19:00"}"#,
        )
    }));
    let layercode = MockLayercode::start();
    let tools = format!(
        r#"[{{"name": "shop_hours", "description": "Opening hours of one shop.",
             "parameters": {{"type": "object", "properties": {{"city": {{"type": "string"}}}}}},
             "url": "{}/shop_hours"}}]"#,
        endpoint.base_url()
    );
    let worker = Worker::start(
        WorkerOptions::new(&gemini, &layercode)
            .var("TOOLS", &tools)
            .secret("TOOLS_SIGNING_SECRET", TOOL_SECRET),
    );

    let warmup = if full { 10 } else { 0 };
    let mut plain = Vec::new();
    let mut tool = Vec::new();
    for i in 0..warmup + turns {
        // Ten turns per conversation, as in the latency bench: history stays short.
        let conversation = format!("conv_bench_{}", i / 5);
        let p = plain_turn(&worker, &gemini, &conversation, i);
        let t = tool_turn(&worker, &gemini, &endpoint, &conversation, i);
        if i >= warmup {
            plain.push(p);
            tool.push(t);
        }
    }
    println!("{}", report(&plain, &tool, turns));
}

/// The mock model: a call when the caller asks for the hours, words for everything else
/// (a tool result included).
fn answer(request: &RecordedRequest) -> GeminiReply {
    let json = request.json();
    let last = json["contents"]
        .as_array()
        .and_then(|c| c.last())
        .map(|c| c.to_string())
        .unwrap_or_default();
    if last.contains("hours?") {
        let call = r#"[{"functionCall": {"name": "shop_hours", "args": {"city": "Paris"}}}]"#;
        gemini_fixtures::call_round(call)
    } else {
        gemini_fixtures::reply(&[ANSWER], Duration::ZERO)
    }
}

/// Milliseconds from `a` to `b` (negative if `b` came first, which a correct run never shows).
fn ms(a: Instant, b: Instant) -> f64 {
    if b >= a {
        (b - a).as_secs_f64() * 1e3
    } else {
        -((a - b).as_secs_f64() * 1e3)
    }
}

/// When the client received the `n`th `response.tts` of a turn sent at `sent`.
fn tts_at(transcript: &SseTranscript, sent: Instant, n: usize) -> Instant {
    let event = transcript
        .events
        .iter()
        .filter(|e| e.json["type"] == "response.tts")
        .nth(n)
        .unwrap_or_else(|| panic!("no response.tts #{n}: {}", transcript.raw_body));
    sent + event.at
}

/// The last `n` request timings of `mock` once it has `total` requests.
fn last_timings<R: Into<MockReply>>(mock: &Mock<R>, total: usize, n: usize) -> Vec<RequestTiming> {
    mock.wait_for_requests(total, TURN_TIMEOUT);
    let timings = mock.timings();
    timings[total - n..total].to_vec()
}

/// Plain overhead of one turn without tools, in ms.
fn plain_turn(worker: &Worker, gemini: &MockGemini, conversation: &str, i: usize) -> f64 {
    let before = gemini.requests().len();
    let sent = Instant::now();
    let transcript = stream_webhook(
        worker,
        &message(conversation, &format!("p{i}"), "Tell me a fact."),
    );
    assert_well_formed_turn(&transcript, &format!("p{i}"));
    assert_eq!(transcript.tts_text(), ANSWER);
    let g = last_timings(gemini, before + 1, 1)[0];
    let first_chunk = g.first_chunk_at.expect("Gemini answered");
    ms(sent, g.received_at) + ms(first_chunk, tts_at(&transcript, sent, 0))
}

/// The worker's own time in one tool round, both ways, in ms.
struct ToolSample {
    /// Gemini's call chunk → the tool request arrives.
    call_to_tool: f64,
    /// The tool's answer → the follow-up Gemini request arrives.
    answer_to_follow_up: f64,
}

fn tool_turn(
    worker: &Worker,
    gemini: &MockGemini,
    endpoint: &Mock<MockReply>,
    conversation: &str,
    i: usize,
) -> ToolSample {
    let (gemini_before, tool_before) = (gemini.requests().len(), endpoint.requests().len());
    let turn_id = format!("t{i}");
    let transcript = stream_webhook(
        worker,
        &message(conversation, &turn_id, "What are the Paris hours?"),
    );
    assert_well_formed_turn(&transcript, &turn_id);
    // Less a "Still checking" line, said only if this machine took 2 s over the round.
    assert_eq!(
        without_still_checking(worker, conversation, &turn_id, &transcript.tts_text()),
        format!("One moment. {ANSWER}")
    );
    let g = last_timings(gemini, gemini_before + 2, 2);
    let t = last_timings(endpoint, tool_before + 1, 1)[0];
    let call_sent = g[0].first_chunk_at.expect("Gemini called");
    let answered = t.first_chunk_at.expect("the tool answered");
    ToolSample {
        call_to_tool: ms(call_sent, t.received_at),
        answer_to_follow_up: ms(answered, g[1].received_at),
    }
}

fn report(plain: &[f64], tool: &[ToolSample], turns: usize) -> String {
    let call: Vec<f64> = tool.iter().map(|s| s.call_to_tool).collect();
    let back: Vec<f64> = tool.iter().map(|s| s.answer_to_follow_up).collect();
    let round: Vec<f64> = tool
        .iter()
        .map(|s| s.call_to_tool + s.answer_to_follow_up)
        .collect();
    let row = |name: &str, v: &[f64]| {
        format!(
            "| {name} | {:.2} | {:.2} | {:.2} |\n",
            pct(v, 50.0),
            pct(v, 95.0),
            pct(v, 50.0) / pct(plain, 50.0)
        )
    };
    let mut text = format!(
        "Tool round under wrangler dev, {turns} plain and {turns} tool turns alternating \
         (ms; ratio = p50 / plain overhead p50)\n\n| interval | p50 | p95 | ratio |\n|---|---|---|---|\n"
    );
    text += &row("plain turn overhead", plain);
    text += &row("call chunk → tool request", &call);
    text += &row("tool answer → follow-up request", &back);
    text += &row("tool round (both)", &round);
    text
}
