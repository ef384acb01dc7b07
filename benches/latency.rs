//! Latency and throughput of the real worker under `wrangler dev`, against a mock Gemini whose
//! first chunk leaves at once. Results and their reading: BENCHMARKS.md.
//!
//! * `cargo bench --bench latency` (cargo passes `--bench`): the full run, a couple of minutes.
//! * `cargo test --all-targets` runs this binary without `--bench`: a 5-turn smoke run at
//!   concurrency 2 that asserts every turn ended with `response.end`, so CI proves the bench
//!   still works without spending minutes.
//!
//! Every duration is taken on this process's monotonic clock: the client stamps when it sent
//! the webhook and when each SSE event arrived, and the mock Gemini (same process) stamps when
//! it received the request and when it wrote its first chunk. Backend overhead per turn is
//! (client first `response.tts` − client send) − (mock first chunk − mock request received):
//! everything the turn took that was not Gemini's own time to first token.
//!
//! `LATENCY_BENCH_RAW=<file>` also writes one CSV line per overhead turn with the wall-clock
//! (Unix ms) instants of each stamp, to line them up with timestamps the worker logs.

#[path = "../tests/common/mod.rs"]
mod common;
use common::*;

use serde_json::{json, Value};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::process::Command;
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

/// The mock's reply: four chunks, all written at once (no model "thinking" time).
const REPLY_PARTS: [&str; 4] = [
    "Sure, here is a short answer.",
    " It arrives in a few",
    " small parts, like a",
    " real streamed reply.",
];

struct Scale {
    warmup_turns: usize,
    /// Sequential turns for the overhead percentiles: conversations × turns each.
    overhead_conversations: usize,
    overhead_turns_each: usize,
    /// (concurrency, turns per client thread; each thread runs conversations of
    /// `turns_per_conversation` turns).
    concurrency: Vec<(usize, usize)>,
    turns_per_conversation: usize,
    /// Long conversations (run interleaved) and their length.
    long_conversations: usize,
    long_turns: usize,
    /// Requests per probe of the fixed costs (health, data, session.end).
    probe_requests: usize,
    startup_runs: usize,
}

fn full_scale() -> Scale {
    Scale {
        warmup_turns: 20,
        overhead_conversations: 20,
        overhead_turns_each: 10,
        concurrency: vec![(1, 160), (8, 20), (32, 5)],
        turns_per_conversation: 5,
        long_conversations: 3,
        long_turns: 100,
        probe_requests: 100,
        startup_runs: 3,
    }
}

fn smoke_scale() -> Scale {
    Scale {
        warmup_turns: 0,
        overhead_conversations: 0,
        overhead_turns_each: 0,
        // 5 turns at concurrency 2: one client runs 3 turns, the other 2 (see `concurrency_run`).
        concurrency: vec![(2, 3)],
        turns_per_conversation: 3,
        long_conversations: 0,
        long_turns: 0,
        probe_requests: 0,
        startup_runs: 0,
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test` passes nothing of the kind.
    let full = std::env::args().any(|a| a == "--bench");
    let scale = if full { full_scale() } else { smoke_scale() };
    let mut report = Report::default();
    report.line(&format!(
        "# latency bench ({})",
        if full { "full" } else { "smoke" }
    ));
    report.line(&environment());

    let gemini = MockGemini::start_with(|_| gemini_fixtures::reply(&REPLY_PARTS, Duration::ZERO));
    let layercode = MockLayercode::start();
    let started = Instant::now();
    let worker = Worker::start(WorkerOptions::new(&gemini, &layercode));
    let first_start = started.elapsed();

    // Warm-up: not counted.
    for i in 0..scale.warmup_turns {
        run_turn(&worker, &format!("warm_c{}", i / 5), i % 5 + 1);
    }

    // 1. Backend overhead, sequential turns.
    let mut overhead = Vec::new();
    for c in 0..scale.overhead_conversations {
        for t in 1..=scale.overhead_turns_each {
            overhead.push(run_turn(&worker, &format!("ovh_c{c}"), t));
        }
    }

    // 2. Fixed costs, for the breakdown: the same path with less and less work.
    let probes = if scale.probe_requests > 0 {
        probe_fixed_costs(&worker, scale.probe_requests)
    } else {
        Vec::new()
    };

    // 3. Throughput and turn latency under concurrency.
    let mut levels = Vec::new();
    for &(clients, turns_each) in &scale.concurrency {
        levels.push(concurrency_run(
            &worker,
            clients,
            turns_each,
            scale.turns_per_conversation,
            !full,
        ));
    }

    // 4. One long conversation: turn 1 vs turn 100 (several, interleaved, medians per turn).
    let mut long: Vec<Vec<TurnSample>> = vec![Vec::new(); scale.long_conversations];
    for t in 1..=scale.long_turns {
        for (c, samples) in long.iter_mut().enumerate() {
            samples.push(run_turn(&worker, &format!("long_c{c}"), t));
        }
    }

    // Pair every turn with its Gemini request and the worker's own log line.
    let requests = gemini.requests();
    let timings = gemini.timings();
    let logs = worker.logs();
    let joined = Joined::new(&requests, &timings, &logs);
    if let Ok(path) = std::env::var("LATENCY_BENCH_RAW") {
        write_raw(&path, &overhead, &joined);
    }
    let pgid = worker.pgid();
    worker.stop();
    assert!(
        process_group_members(pgid).is_empty(),
        "wrangler processes survived stop()"
    );

    // 5. Size and startup.
    let wasm = wasm_sizes();
    let mut startups = vec![first_start];
    if scale.startup_runs > 0 {
        startups.clear();
        for _ in 0..scale.startup_runs {
            let t = Instant::now();
            let w = Worker::start(WorkerOptions::new(&gemini, &layercode));
            startups.push(t.elapsed());
            w.stop();
        }
    }

    // ----- checks (smoke and full) -----
    let all: Vec<&TurnSample> = overhead
        .iter()
        .chain(levels.iter().flat_map(|l| l.samples.iter()))
        .chain(long.iter().flatten())
        .collect();
    let bad: Vec<String> = all
        .iter()
        .filter_map(|s| s.problem.as_ref().map(|p| format!("{}: {p}", s.tag)))
        .collect();
    assert!(
        bad.is_empty(),
        "{} turn(s) did not end with exactly one response.end: {bad:#?}",
        bad.len()
    );
    for s in &all {
        let j = joined.get(&s.tag);
        assert!(
            j.and_then(|j| j.timing.first_chunk_at).is_some(),
            "no Gemini request with a written first chunk for {}",
            s.tag
        );
    }

    // ----- report -----
    let mut table = Table::new(&["Measure", "Result", "Target", "Met"]);
    if !overhead.is_empty() {
        let o = breakdown(&overhead, &joined);
        let (p50, p95, p99) = (
            pct(&o.overhead, 50.0),
            pct(&o.overhead, 95.0),
            pct(&o.overhead, 99.0),
        );
        table.row(&[
            format!("Backend overhead p50 ({} turns)", overhead.len()),
            ms(p50),
            "≤ 5 ms".into(),
            yes_no(p50 <= 5.0),
        ]);
        table.row(&[
            "Backend overhead p95".into(),
            ms(p95),
            "≤ 15 ms".into(),
            yes_no(p95 <= 15.0),
        ]);
        table.row(&["Backend overhead p99".into(), ms(p99), "".into(), "".into()]);
        report.line(&format!(
            "\n## Backend overhead breakdown ({} sequential turns: {} conversations × {})\n",
            overhead.len(),
            scale.overhead_conversations,
            scale.overhead_turns_each
        ));
        report.line(&o.table().render());
        let first: Vec<&TurnSample> = overhead.iter().filter(|s| s.turn == 1).collect();
        let later: Vec<&TurnSample> = overhead.iter().filter(|s| s.turn > 1).collect();
        let (f, l) = (
            breakdown_refs(&first, &joined),
            breakdown_refs(&later, &joined),
        );
        report.line(&format!(
            "\nFirst turn of a conversation (new Durable Object): overhead p50 {} p95 {} \
             (n={}); later turns: p50 {} p95 {} (n={}).",
            ms(pct(&f.overhead, 50.0)),
            ms(pct(&f.overhead, 95.0)),
            first.len(),
            ms(pct(&l.overhead, 50.0)),
            ms(pct(&l.overhead, 95.0)),
            later.len()
        ));
    }
    if !probes.is_empty() {
        report.line("\n## Fixed costs (same client, same wrangler dev; one request each)\n");
        let mut t = Table::new(&["Request", "What it adds", "n", "p50", "p95"]);
        for p in &probes {
            t.row(&[
                p.name.to_string(),
                p.adds.to_string(),
                p.times.len().to_string(),
                ms(pct(&p.times, 50.0)),
                ms(pct(&p.times, 95.0)),
            ]);
        }
        report.line(&t.render());
    }
    let mut conc = Table::new(&[
        "Concurrency",
        "Turns",
        "Throughput (turns/s)",
        "Turn latency p50",
        "Turn latency p95",
        "First tts p95",
        "Overhead p95",
    ]);
    for level in &levels {
        let total: Vec<f64> = level.samples.iter().map(|s| secs_ms(s.total)).collect();
        let ttft: Vec<f64> = level
            .samples
            .iter()
            .filter_map(|s| s.first_tts.map(secs_ms))
            .collect();
        let refs: Vec<&TurnSample> = level.samples.iter().collect();
        let o = breakdown_refs(&refs, &joined);
        let throughput = level.samples.len() as f64 / level.wall.as_secs_f64();
        conc.row(&[
            level.clients.to_string(),
            level.samples.len().to_string(),
            format!("{throughput:.1}"),
            ms(pct(&total, 50.0)),
            ms(pct(&total, 95.0)),
            ms(pct(&ttft, 95.0)),
            ms(pct(&o.overhead, 95.0)),
        ]);
        table.row(&[
            format!(
                "Concurrency {}: throughput / p95 turn latency",
                level.clients
            ),
            format!("{throughput:.1} turns/s / {}", ms(pct(&total, 95.0))),
            "".into(),
            "".into(),
        ]);
    }
    report.line(&format!(
        "\n## Concurrency (distinct conversations of {} turns; turn latency = send → response.end)\n",
        scale.turns_per_conversation
    ));
    report.line(&conc.render());
    report
        .line("\nCPU time per turn by process (from /proc, 10 ms ticks), per concurrency level:\n");
    for level in &levels {
        let per_turn = |t: Duration| secs_ms(t) / level.samples.len().max(1) as f64;
        let total: Duration = level.cpu.iter().map(|(_, t)| *t).sum();
        let parts: Vec<String> = level
            .cpu
            .iter()
            .map(|(label, t)| format!("{label} {}", ms(per_turn(*t))))
            .collect();
        report.line(&format!(
            "- concurrency {}: {} CPU per turn in all ({:.0}% of 2 cores over {:.1} s): {}",
            level.clients,
            ms(per_turn(total)),
            100.0 * total.as_secs_f64() / (2.0 * level.wall.as_secs_f64()),
            level.wall.as_secs_f64(),
            parts.join("; ")
        ));
    }

    if !long.is_empty() && scale.long_turns > 0 {
        let per_turn = |t: usize, f: &dyn Fn(&TurnSample) -> Option<f64>| -> f64 {
            let v: Vec<f64> = long.iter().filter_map(|c| f(&c[t - 1])).collect();
            pct(&v, 50.0)
        };
        let ttft = |s: &TurnSample| s.first_tts.map(secs_ms);
        let ovh = |s: &TurnSample| joined.overhead(s);
        let size = |s: &TurnSample| joined.get(&s.tag).map(|j| j.request_bytes as f64);
        let n = scale.long_turns;
        let window_median = |from: usize, to: usize, f: &dyn Fn(&TurnSample) -> Option<f64>| {
            let v: Vec<f64> = long
                .iter()
                .flat_map(|c| c[from - 1..to].iter())
                .filter_map(f)
                .collect();
            pct(&v, 50.0)
        };
        let (t1, tn) = (per_turn(1, &ttft), per_turn(n, &ttft));
        let (o1, on) = (per_turn(1, &ovh), per_turn(n, &ovh));
        let late_from = n.saturating_sub(9).max(1);
        let (w_early, w_late) = (
            window_median(2, 11.min(n), &ttft),
            window_median(late_from, n, &ttft),
        );
        let ratio = tn / t1;
        table.row(&[
            format!("Turn {n} vs turn 1: time to first tts"),
            format!("{} vs {} ({:+.0}%)", ms(tn), ms(t1), (ratio - 1.0) * 100.0),
            "within 20%".into(),
            yes_no(ratio <= 1.2),
        ]);
        let (s1, sn) = (per_turn(1, &size), per_turn(n, &size));
        table.row(&[
            format!("Turn {n} vs turn 1: Gemini request size"),
            format!("{} B vs {} B", sn as u64, s1 as u64),
            "bounded".into(),
            "".into(),
        ]);
        report.line(&format!(
            "\n## Long conversation ({} conversations × {n} turns, interleaved; medians across them)\n",
            scale.long_conversations
        ));
        let mut t = Table::new(&[
            "Turn",
            "First tts",
            "Overhead",
            "Gemini request bytes",
            "Messages sent",
        ]);
        for turn in [1, 2, 10, 20, 21, 40, 60, 80, n] {
            if turn > n {
                continue;
            }
            let msgs = per_turn(turn, &|s: &TurnSample| {
                joined.get(&s.tag).map(|j| j.messages as f64)
            });
            t.row(&[
                turn.to_string(),
                ms(per_turn(turn, &ttft)),
                ms(per_turn(turn, &ovh)),
                format!("{}", per_turn(turn, &size) as u64),
                format!("{}", msgs as u64),
            ]);
        }
        report.line(&t.render());
        report.line(&format!(
            "\nMedian first tts, turns 2–11: {}; turns {late_from}–{n}: {}. Overhead turn 1 {} vs \
             turn {n} {}.",
            ms(w_early),
            ms(w_late),
            ms(o1),
            ms(on)
        ));
    }

    table.row(&[
        "Wasm size raw".into(),
        format!("{:.1} KB ({} B)", wasm.0 as f64 / 1024.0, wasm.0),
        "".into(),
        "".into(),
    ]);
    table.row(&[
        "Wasm size gzip -9".into(),
        format!("{:.1} KB ({} B)", wasm.1 as f64 / 1024.0, wasm.1),
        "≤ 300 KB".into(),
        yes_no(wasm.1 as f64 / 1024.0 <= 300.0),
    ]);
    let startup_ms: Vec<f64> = startups.iter().map(|d| secs_ms(*d)).collect();
    table.row(&[
        format!(
            "Startup (spawn → first 200 /health), median of {}",
            startup_ms.len()
        ),
        format!(
            "{} (runs: {})",
            ms(pct(&startup_ms, 50.0)),
            startup_ms
                .iter()
                .map(|m| ms(*m))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        "".into(),
        "".into(),
    ]);
    let internal: Vec<f64> = overhead
        .iter()
        .filter_map(|s| joined.get(&s.tag).and_then(|j| j.log_ms_to_first_tts))
        .collect();
    if !internal.is_empty() {
        report.line(&format!(
            "\nWorker's own log line, `ms_to_first_tts` over the overhead turns (Date.now() in \
             workerd, 1 ms resolution): p50 {} p95 {}.",
            ms(pct(&internal, 50.0)),
            ms(pct(&internal, 95.0))
        ));
    }
    report.line(&format!("\nEnvironment at the end: {}", load_average()));
    report.line("\n## Summary\n");
    report.line(&table.render());
    report.print(full);
}

// ---------------------------------------------------------------------------------------------
// Turns
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct TurnSample {
    /// The user text, unique per turn: how the turn's Gemini request is found.
    tag: String,
    turn: usize,
    sent: Instant,
    /// Client send → first `response.tts` arrived.
    first_tts: Option<Duration>,
    /// Client send → body ended.
    total: Duration,
    /// Why the turn is not a well-formed stream ending in exactly one `response.end`.
    problem: Option<String>,
}

fn run_turn(worker: &Worker, conversation: &str, turn: usize) -> TurnSample {
    let tag = format!("bench {conversation} turn {turn}: tell me something short");
    let body = message(conversation, &format!("{conversation}_t{turn}"), &tag).to_string();
    let signature = sign_now(TEST_WEBHOOK_SECRET, &body);
    let url = worker.url("/agent");
    let headers = [(SIGNATURE_HEADER, signature.as_str())];
    let sent = Instant::now();
    let mut client = SseClient::open_json(&url, &headers, &body);
    let mut first_tts = None;
    let mut types = Vec::new();
    let deadline = sent + TURN_TIMEOUT;
    let mut problem = (client.status != 200).then(|| format!("status {}", client.status));
    loop {
        match client.next(deadline.saturating_duration_since(Instant::now())) {
            SseNext::Event(e) => {
                let kind = e.json["type"].as_str().unwrap_or_default().to_string();
                if kind == "response.tts" && first_tts.is_none() {
                    first_tts = Some(e.at);
                }
                types.push(kind);
            }
            SseNext::Eof => break,
            SseNext::Timeout => {
                problem = Some(format!("no end within {TURN_TIMEOUT:?}"));
                break;
            }
        }
    }
    let total = sent.elapsed();
    if let Some(e) = client.error() {
        problem = Some(format!("body cut: {e}"));
    }
    let ends = types.iter().filter(|t| *t == "response.end").count();
    if problem.is_none() && (ends != 1 || types.last().map(String::as_str) != Some("response.end"))
    {
        problem = Some(format!("events {types:?}"));
    }
    if problem.is_none() && first_tts.is_none() {
        problem = Some(format!("no response.tts: {types:?}"));
    }
    TurnSample {
        tag,
        turn,
        sent,
        first_tts,
        total,
        problem,
    }
}

struct Level {
    clients: usize,
    samples: Vec<TurnSample>,
    wall: Duration,
    /// CPU time used during the run, per process (wrangler's group and this bench process).
    cpu: Vec<(String, Duration)>,
}

/// utime + stime of a process, from /proc/<pid>/stat (clock ticks, assumed 100 per second).
fn cpu_time(pid: &str) -> Option<Duration> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(") ")?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// CPU time so far of every process of the worker's group, and of this process (the client
/// threads and the mocks), labelled by command.
fn cpu_snapshot(pgid: i32) -> HashMap<String, (String, Duration)> {
    let mut snapshot: HashMap<String, (String, Duration)> = process_group_members(pgid)
        .into_iter()
        .filter_map(|(pid, cmd)| {
            let pid = pid.to_string();
            // wrangler dev runs two workerd: the one serving the public port proxies to the one
            // running the worker (the latter has the inspector).
            let label = if cmd.contains("workerd") && cmd.contains("--inspector-addr") {
                "workerd running the worker".to_string()
            } else if cmd.contains("workerd") {
                "workerd proxy (wrangler dev)".to_string()
            } else if cmd.contains("wrangler") {
                "node (wrangler)".to_string()
            } else {
                cmd.split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .rsplit('/')
                    .next()
                    .unwrap_or_default()
                    .to_string()
            };
            let cpu = cpu_time(&pid)?;
            Some((pid.clone(), (format!("{label} (pid {pid})"), cpu)))
        })
        .collect();
    if let Some(cpu) = cpu_time("self") {
        snapshot.insert(
            "self".into(),
            ("bench process: clients + mocks".into(), cpu),
        );
    }
    snapshot
}

/// `clients` threads at once, each running `turns_each` turns as conversations of
/// `per_conversation` turns. In smoke mode the last client runs one turn less (5 turns at
/// concurrency 2).
fn concurrency_run(
    worker: &Worker,
    clients: usize,
    turns_each: usize,
    per_conversation: usize,
    smoke: bool,
) -> Level {
    let barrier = Barrier::new(clients + 1);
    let before = cpu_snapshot(worker.pgid());
    let (samples, wall) = thread::scope(|scope| {
        let handles: Vec<_> = (0..clients)
            .map(|client| {
                let barrier = &barrier;
                let turns = if smoke && client + 1 == clients {
                    turns_each - 1
                } else {
                    turns_each
                };
                scope.spawn(move || {
                    barrier.wait();
                    (0..turns)
                        .map(|i| {
                            let conversation =
                                format!("conc{clients}_k{client}_c{}", i / per_conversation);
                            run_turn(worker, &conversation, i % per_conversation + 1)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        let samples: Vec<TurnSample> = handles
            .into_iter()
            .flat_map(|h| h.join().expect("client thread"))
            .collect();
        (samples, start.elapsed())
    });
    let after = cpu_snapshot(worker.pgid());
    let mut cpu: Vec<(String, Duration)> = after
        .iter()
        .map(|(pid, (label, t))| {
            let t0 = before.get(pid).map_or(Duration::ZERO, |b| b.1);
            (label.clone(), t.saturating_sub(t0))
        })
        .filter(|(_, t)| !t.is_zero())
        .collect();
    cpu.sort_by_key(|c| std::cmp::Reverse(c.1));
    Level {
        clients,
        samples,
        wall,
        cpu,
    }
}

// ---------------------------------------------------------------------------------------------
// Fixed costs
// ---------------------------------------------------------------------------------------------

struct Probe {
    name: &'static str,
    adds: &'static str,
    times: Vec<f64>,
}

/// Times cheaper requests on the same path, to attribute the overhead: the HTTP hop through
/// wrangler dev, signature + JSON, and one Durable Object round trip.
fn probe_fixed_costs(worker: &Worker, n: usize) -> Vec<Probe> {
    let time = |f: &dyn Fn()| {
        let t = Instant::now();
        f();
        secs_ms(t.elapsed())
    };
    let health = (0..n)
        .map(|_| time(&|| assert_eq!(get(&worker.url("/health")).status, 200)))
        .collect();
    let data = (0..n)
        .map(|i| {
            let event = json!({"type": "data", "conversation_id": "probe", "turn_id": format!("d{i}"),
                "data": {"k": i}});
            time(&|| assert_eq!(post_webhook(worker, &event).status, 200))
        })
        .collect();
    let session_end = (0..n)
        .map(|i| {
            let event = json!({"type": "session.end", "conversation_id": "probe_do",
                "session_id": format!("s{i}"), "duration": 1000, "transcript": []});
            time(&|| assert_eq!(post_webhook(worker, &event).status, 200))
        })
        .collect();
    vec![
        Probe {
            name: "GET /health",
            adds: "HTTP through wrangler dev's proxy to the worker and back",
            times: health,
        },
        Probe {
            name: "POST /agent `data`",
            adds: "+ body read, HMAC signature check, JSON parse",
            times: data,
        },
        Probe {
            name: "POST /agent `session.end`",
            adds: "+ one Durable Object round trip (one SQL write)",
            times: session_end,
        },
    ]
}

// ---------------------------------------------------------------------------------------------
// Joining client samples with the mock's requests and the worker log
// ---------------------------------------------------------------------------------------------

struct JoinedTurn {
    timing: RequestTiming,
    request_bytes: usize,
    /// `contents` entries sent to Gemini.
    messages: usize,
    log_ms_to_first_tts: Option<f64>,
}

struct Joined {
    by_tag: HashMap<String, JoinedTurn>,
}

impl Joined {
    fn new(requests: &[RecordedRequest], timings: &[RequestTiming], logs: &str) -> Joined {
        // The worker's turn log lines, by turn id.
        let mut log_ttft: HashMap<String, f64> = HashMap::new();
        for line in logs.lines().filter(|l| l.contains("\"event\":\"turn\"")) {
            let Some(start) = line.find('{') else {
                continue;
            };
            let Ok(v) = serde_json::from_str::<Value>(&line[start..]) else {
                continue;
            };
            if let (Some(id), Some(ms)) = (v["turn_id"].as_str(), v["ms_to_first_tts"].as_f64()) {
                log_ttft.insert(id.to_string(), ms);
            }
        }
        let mut by_tag = HashMap::new();
        for (request, timing) in requests.iter().zip(timings) {
            let body: Value = serde_json::from_str(&request.body).unwrap_or(Value::Null);
            let Some(contents) = body["contents"].as_array() else {
                continue;
            };
            let Some(tag) = contents
                .last()
                .and_then(|c| c["parts"][0]["text"].as_str())
                .map(|t| t.lines().last().unwrap_or_default().to_string())
            else {
                continue;
            };
            // "bench {conversation} turn {n}: …" → turn id "{conversation}_t{n}".
            let turn_id = tag
                .strip_prefix("bench ")
                .and_then(|rest| rest.split(':').next())
                .map(|s| s.replace(" turn ", "_t"));
            by_tag.insert(
                tag,
                JoinedTurn {
                    timing: *timing,
                    request_bytes: request.body.len(),
                    messages: contents.len(),
                    log_ms_to_first_tts: turn_id.and_then(|id| log_ttft.get(&id).copied()),
                },
            );
        }
        Joined { by_tag }
    }

    fn get(&self, tag: &str) -> Option<&JoinedTurn> {
        self.by_tag.get(tag)
    }

    /// (client first tts − client send) − (mock first chunk − mock received), in ms.
    fn overhead(&self, s: &TurnSample) -> Option<f64> {
        let j = self.get(&s.tag)?;
        Some(secs_ms(s.first_tts?) - secs_ms(j.timing.time_to_first_chunk()?))
    }
}

struct Breakdown {
    overhead: Vec<f64>,
    client_ttft: Vec<f64>,
    mock_ttfc: Vec<f64>,
    inbound: Vec<f64>,
    outbound: Vec<f64>,
    total: Vec<f64>,
}

fn breakdown(samples: &[TurnSample], joined: &Joined) -> Breakdown {
    let refs: Vec<&TurnSample> = samples.iter().collect();
    breakdown_refs(&refs, joined)
}

fn breakdown_refs(samples: &[&TurnSample], joined: &Joined) -> Breakdown {
    let mut b = Breakdown {
        overhead: Vec::new(),
        client_ttft: Vec::new(),
        mock_ttfc: Vec::new(),
        inbound: Vec::new(),
        outbound: Vec::new(),
        total: Vec::new(),
    };
    for s in samples {
        let (Some(j), Some(first_tts)) = (joined.get(&s.tag), s.first_tts) else {
            continue;
        };
        let Some(first_chunk_at) = j.timing.first_chunk_at else {
            continue;
        };
        let received = j.timing.received_at;
        b.client_ttft.push(secs_ms(first_tts));
        b.mock_ttfc.push(secs_ms(first_chunk_at - received));
        b.overhead
            .push(secs_ms(first_tts) - secs_ms(first_chunk_at - received));
        b.inbound
            .push(secs_ms(received.saturating_duration_since(s.sent)));
        b.outbound.push(secs_ms(
            (s.sent + first_tts).saturating_duration_since(first_chunk_at),
        ));
        b.total.push(secs_ms(s.total));
    }
    b
}

impl Breakdown {
    fn table(&self) -> Table {
        let mut t = Table::new(&["Interval", "p50", "p95", "p99"]);
        let rows: [(&str, &Vec<f64>); 6] = [
            (
                "Client send → first `response.tts` (client)",
                &self.client_ttft,
            ),
            (
                "Mock received → first chunk written (mock)",
                &self.mock_ttfc,
            ),
            (
                "**Backend overhead** (difference of the two)",
                &self.overhead,
            ),
            (
                "… of which inbound: client send → Gemini request received",
                &self.inbound,
            ),
            (
                "… of which outbound: first chunk written → client has the tts",
                &self.outbound,
            ),
            ("Client send → `response.end` (whole turn)", &self.total),
        ];
        for (name, v) in rows {
            t.row(&[
                name.to_string(),
                ms(pct(v, 50.0)),
                ms(pct(v, 95.0)),
                ms(pct(v, 99.0)),
            ]);
        }
        t
    }
}

/// One CSV line per turn: turn id and the Unix-ms instants of client send, mock received, mock
/// first chunk, client first tts and client end.
fn write_raw(path: &str, samples: &[TurnSample], joined: &Joined) {
    let (now, wall) = (Instant::now(), std::time::SystemTime::now());
    let epoch_ms = |i: Instant| {
        let unix = wall
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock after 1970");
        let unix = if i <= now {
            unix - (now - i)
        } else {
            unix + (i - now)
        };
        format!("{:.3}", secs_ms(unix))
    };
    let mut out = String::from("turn_id,sent,mock_received,mock_first_chunk,first_tts,end\n");
    for s in samples {
        let (Some(j), Some(first_tts)) = (joined.get(&s.tag), s.first_tts) else {
            continue;
        };
        let Some(first_chunk) = j.timing.first_chunk_at else {
            continue;
        };
        let turn_id = s
            .tag
            .strip_prefix("bench ")
            .and_then(|rest| rest.split(':').next())
            .map(|t| t.replace(" turn ", "_t"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{turn_id},{},{},{},{},{}",
            epoch_ms(s.sent),
            epoch_ms(j.timing.received_at),
            epoch_ms(first_chunk),
            epoch_ms(s.sent + first_tts),
            epoch_ms(s.sent + s.total)
        );
    }
    fs::write(path, out).unwrap_or_else(|e| panic!("write {path}: {e}"));
}

// ---------------------------------------------------------------------------------------------
// Size, environment, formatting
// ---------------------------------------------------------------------------------------------

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// (raw, gzip -9) bytes of build/index_bg.wasm.
fn wasm_sizes() -> (u64, u64) {
    let path = repo().join("build/index_bg.wasm");
    let raw = fs::metadata(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run sh scripts/build.sh)", path.display()))
        .len();
    let out = Command::new("gzip")
        .args(["-9", "-c"])
        .arg(&path)
        .output()
        .expect("run gzip");
    assert!(out.status.success(), "gzip failed");
    (raw, out.stdout.len() as u64)
}

fn command_line(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .current_dir(repo())
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "?".to_string())
}

fn package_version(package: &str) -> String {
    fs::read_to_string(repo().join(format!("node_modules/{package}/package.json")))
        .ok()
        .and_then(|s| serde_json::from_str::<Value>(&s).ok())
        .and_then(|v| v["version"].as_str().map(str::to_string))
        .unwrap_or_else(|| "?".to_string())
}

/// CPU busy share over the next second (all cores, from /proc/stat), the load average and the
/// busiest other processes: what else was running while the numbers were taken.
fn load_average() -> String {
    let sample = || -> Option<(u64, u64)> {
        let stat = fs::read_to_string("/proc/stat").ok()?;
        let cpu: Vec<u64> = stat
            .lines()
            .next()?
            .split_whitespace()
            .skip(1)
            .filter_map(|v| v.parse().ok())
            .collect();
        let idle = cpu.get(3)? + cpu.get(4).copied().unwrap_or(0);
        Some((cpu.iter().sum(), idle))
    };
    let busy = match (sample(), {
        thread::sleep(Duration::from_secs(1));
        sample()
    }) {
        (Some((t0, i0)), Some((t1, i1))) if t1 > t0 => {
            format!(
                "{:.0}%",
                100.0 * (1.0 - (i1 - i0) as f64 / (t1 - t0) as f64)
            )
        }
        _ => "?".to_string(),
    };
    let load = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let busiest = command_line(
        "sh",
        &[
            "-c",
            "ps -eo pcpu=,etime=,args= --sort=-pcpu | grep -v ' ps -eo' | head -5 | cut -c1-90 \
             | tr -s ' ' | paste -sd ';'",
        ],
    );
    format!(
        "CPU busy over 1 s: {busy}; loadavg {}; top processes by lifetime %CPU \
         (pcpu elapsed command): {busiest}",
        load.trim()
    )
}

fn environment() -> String {
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "?".to_string());
    let mem = fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .nth(1)
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or("?".to_string(), |kb| {
            format!("{:.1} GiB", kb / 1024.0 / 1024.0)
        });
    let os = fs::read_to_string("/etc/os-release")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|s| s.trim_matches('"').to_string())
        .unwrap_or_else(|| "?".to_string());
    format!(
        "Machine: {} CPUs ({cpu}), {mem} RAM, {os}, kernel {}; node {}, wrangler {}, workerd {}.\n\
         Environment at the start: {}",
        command_line("nproc", &[]),
        command_line("uname", &["-r"]),
        command_line(
            &repo().join(common::worker::PINNED_NODE).to_string_lossy(),
            &["--version"]
        ),
        package_version("wrangler"),
        package_version("workerd"),
        load_average()
    )
}

/// Nearest-rank percentile; NaN for no data.
fn pct(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

fn secs_ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn ms(v: f64) -> String {
    if v.is_nan() {
        "–".to_string()
    } else if v.abs() >= 100.0 {
        format!("{v:.0} ms")
    } else {
        format!("{v:.1} ms")
    }
}

fn yes_no(met: bool) -> String {
    if met { "yes" } else { "**no**" }.to_string()
}

struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    fn row(&mut self, cells: &[String]) {
        self.rows.push(cells.to_vec());
    }

    fn render(&self) -> String {
        let line = |cells: &[String]| format!("| {} |", cells.join(" | "));
        let mut out = line(&self.header);
        out.push('\n');
        out.push_str(&line(&vec!["---".to_string(); self.header.len()]));
        for row in &self.rows {
            out.push('\n');
            out.push_str(&line(row));
        }
        out
    }
}

#[derive(Default)]
struct Report {
    text: String,
}

impl Report {
    fn line(&mut self, s: &str) {
        let _ = writeln!(self.text, "{s}");
    }

    /// Prints the report; a full run also keeps a copy in target/bench/latency.md.
    fn print(&self, keep: bool) {
        println!("{}", self.text);
        let dir = repo().join("target/bench");
        if keep && fs::create_dir_all(&dir).is_ok() {
            let _ = fs::write(dir.join("latency.md"), &self.text);
        }
    }
}
