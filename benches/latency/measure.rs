//! Taking the measurements: turns against each server, in alternating rounds, plus the long
//! conversation, fixed-cost probes and startups. Nothing here judges or formats the numbers.

use super::machine::{self, CpuUse, Processes};
use super::servers::{Runtime, Server, Target, WorkerKind, Workers};
use crate::common::{
    gemini_fixtures, get, is_summary_request, message, openai_fixtures, post_json, sign_now,
    GeminiReply, MockGemini, MockLayercode, RequestTiming, SseClient, SseNext, SIGNATURE_HEADER,
    TEST_WEBHOOK_SECRET, TURN_TIMEOUT,
};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

/// The mock's reply: four chunks, all written at once (no model "thinking" time).
pub const REPLY_PARTS: [&str; 4] = [
    "Sure, here is a short answer.",
    " It arrives in a few",
    " small parts, like a",
    " real streamed reply.",
];

/// How much of everything to run.
pub struct Scale {
    pub full: bool,
    pub runtimes: Vec<Runtime>,
    /// Rounds per runtime; each round runs both workers, one after the other.
    pub rounds: usize,
    /// Turns per server right after it started, not counted.
    pub warmup_turns: usize,
    /// Turns before each worker's part of a round, not counted.
    pub round_warmup_turns: usize,
    /// Sequential turns per worker per round.
    pub sequential_turns: usize,
    /// Concurrent clients, and how long they keep starting turns.
    pub clients: usize,
    pub concurrent_for: Duration,
    /// Each client runs at least this many turns, however short `concurrent_for` is.
    pub min_turns_per_client: usize,
    /// Turns per conversation in the sequential and concurrent phases.
    pub turns_per_conversation: usize,
    /// Long conversations per worker (run interleaved) and their length.
    pub long_conversations: usize,
    pub long_turns: usize,
    /// Requests per fixed-cost probe.
    pub probe_requests: usize,
    /// Fresh starts per target after the measurements, for the startup time.
    pub extra_startups: usize,
}

/// The turns whose time to first tts and CPU the long conversation compares.
pub const LONG_EARLY: (usize, usize) = (2, 11);
pub fn long_late(turns: usize) -> (usize, usize) {
    (turns.saturating_sub(9).max(1), turns)
}
/// The late block whose CPU the long conversation reports: the ten turns before [`long_late`]
/// (the history window is full long before, so they cost what the late turns cost).
pub fn long_cpu_late(turns: usize) -> (usize, usize) {
    let (from, _) = long_late(turns);
    (
        from.saturating_sub(10).max(1),
        from.saturating_sub(1).max(1),
    )
}

/// One turn as the client saw it.
#[derive(Clone, Debug)]
pub struct TurnSample {
    /// The user text, unique per turn: how the turn's Gemini request is found.
    pub tag: String,
    pub turn_id: String,
    pub sent: Instant,
    /// Client send → first `response.tts` arrived.
    pub first_tts: Option<Duration>,
    /// Client send → body ended.
    pub total: Duration,
    /// Every `response.tts` content, concatenated.
    pub tts_text: String,
    /// Why the turn is not a well-formed stream ending in exactly one `response.end`.
    pub problem: Option<String>,
}

/// Turns taken together, with their wall time and the CPU they used.
pub struct PhaseRun {
    pub samples: Vec<TurnSample>,
    pub wall: Duration,
    pub cpu: CpuUse,
}

/// One worker's part of one round.
pub struct Round {
    /// From 1.
    pub index: usize,
    pub target: Target,
    pub sequential: PhaseRun,
    pub concurrent: PhaseRun,
}

pub struct LongRun {
    pub target: Target,
    /// Turns 1..=[`long_late`].1 of the long conversations: `late[c][t - 1]` is turn t.
    pub late: Vec<Vec<TurnSample>>,
    /// Turns 1..=[`LONG_EARLY`].1 of as many fresh conversations, their measured turns taken
    /// in step with the long ones' last turns.
    pub early: Vec<Vec<TurnSample>>,
    /// CPU over turns [`LONG_EARLY`] and [`long_cpu_late`] of the long conversations.
    pub cpu_early: CpuUse,
    pub cpu_late: CpuUse,
}

impl LongRun {
    /// Turn `t` (from 1) of every conversation that has it measured: early ones for turns in
    /// [`LONG_EARLY`], long ones otherwise.
    pub fn turn(&self, t: usize) -> Vec<&TurnSample> {
        let source = if t <= LONG_EARLY.1 {
            &self.early
        } else {
            &self.late
        };
        source.iter().filter_map(|c| c.get(t - 1)).collect()
    }
}

pub struct Probe {
    pub target: Target,
    pub name: &'static str,
    pub adds: &'static str,
    /// Milliseconds per request.
    pub times: Vec<f64>,
}

pub struct Startups {
    pub target: Target,
    pub runs: Vec<Duration>,
    /// serve.mjs's account of each start (bare runtime only).
    pub notes: Vec<String>,
}

/// What the mock Gemini saw of one turn.
pub struct GeminiSide {
    /// Request target, e.g. `/v1beta/models/…:streamGenerateContent?alt=sse`.
    pub path: String,
    pub timing: RequestTiming,
    pub request_bytes: usize,
    /// `contents` entries sent.
    pub messages: usize,
}

/// What the mock Gemini saw of one summary call.
pub struct SummarySide {
    pub request_bytes: usize,
    /// The summary the mock wrote, in bytes.
    pub summary_bytes: usize,
}

pub struct Measurements {
    pub scale: Scale,
    pub ours_dir: String,
    pub ours_git: String,
    pub machine: String,
    pub load_at_start: String,
    pub load_at_end: String,
    pub warmups: Vec<TurnSample>,
    pub rounds: Vec<Round>,
    pub long: Vec<LongRun>,
    pub probes: Vec<Probe>,
    pub startups: Vec<Startups>,
    /// (raw, gzip -9) bytes; `None` when ours is plain JS.
    pub wasm: Option<(u64, u64)>,
    /// By turn tag.
    pub gemini: HashMap<String, GeminiSide>,
    /// Our worker's summary calls (long conversations): request and answer bytes of each.
    pub summaries: Vec<SummarySide>,
    /// Our worker's own `ms_to_first_tts` log field, by turn id.
    pub logged_ms_to_first_tts: HashMap<String, f64>,
    /// Ours asked over the OpenAI wire.
    pub openai_wire: bool,
}

impl Measurements {
    /// (client first tts − client send) − (mock first chunk − mock received), in ms.
    pub fn overhead(&self, s: &TurnSample) -> Option<f64> {
        let mock = self.gemini.get(&s.tag)?.timing.time_to_first_chunk()?;
        Some(ms(s.first_tts?) - ms(mock))
    }

    /// Every turn taken, for the checks.
    pub fn all_turns(&self) -> impl Iterator<Item = &TurnSample> {
        self.warmups
            .iter()
            .chain(
                self.rounds
                    .iter()
                    .flat_map(|r| r.sequential.samples.iter().chain(&r.concurrent.samples)),
            )
            .chain(
                self.long
                    .iter()
                    .flat_map(|l| l.late.iter().chain(&l.early).flatten()),
            )
    }
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Runs everything `scale` asks for and returns the raw measurements.
pub fn run(scale: Scale, workers: &Workers) -> Measurements {
    let machine = machine::description(&workers.repo);
    let load_at_start = machine::load(&workers.repo);
    // One mock for both wires: Gemini's stream, or OpenAI's for `…/chat/completions` (ours
    // with `LATENCY_BENCH_WIRE=openai`), one chunk per event, written at once either way.
    // Summaries are written by the mock the tests' way (what the caller said, oldest first).
    let gemini = MockGemini::start_with(|request| {
        let openai = request.path.ends_with("/chat/completions");
        let json = request.json();
        let lines = match (openai, is_summary_request(&json)) {
            (false, false) => return gemini_fixtures::reply(&REPLY_PARTS, Duration::ZERO),
            (false, true) => return gemini_fixtures::summary_reply(&json),
            (true, false) => openai_fixtures::reply_lines(&REPLY_PARTS, "stop"),
            (true, true) => openai_fixtures::summary_lines(&json),
        };
        GeminiReply::Raw {
            pieces: lines
                .iter()
                .map(|line| (Duration::ZERO, format!("{line}\n\n").into_bytes()))
                .collect(),
        }
    });
    let layercode = MockLayercode::start();
    let mut m = Measurements {
        ours_dir: workers.ours_dir.display().to_string(),
        ours_git: machine::git_state(&workers.ours_dir),
        machine,
        load_at_start,
        load_at_end: String::new(),
        warmups: Vec::new(),
        rounds: Vec::new(),
        long: Vec::new(),
        probes: Vec::new(),
        startups: Vec::new(),
        wasm: workers.ours_wasm().map(|wasm| machine::wasm_sizes(&wasm)),
        gemini: HashMap::new(),
        summaries: Vec::new(),
        logged_ms_to_first_tts: HashMap::new(),
        openai_wire: workers.openai_wire,
        scale,
    };
    for runtime in m.scale.runtimes.clone() {
        measure_runtime(&mut m, runtime, workers, &gemini, &layercode);
    }
    for startups in &mut m.startups {
        for _ in 0..m.scale.extra_startups {
            let server = Server::start(startups.target, workers, &gemini, &layercode);
            startups.runs.push(server.startup);
            startups.notes.extend(server.startup_note.clone());
            server.stop();
        }
    }
    for (request, timing) in gemini.requests().iter().zip(gemini.timings()) {
        let body: Value = serde_json::from_str(&request.body).unwrap_or(Value::Null);
        if is_summary_request(&body) {
            m.summaries.push(SummarySide {
                request_bytes: request.body.len(),
                summary_bytes: crate::common::mock_summary(&body).len(),
            });
            continue;
        }
        // Gemini's `contents`, or the OpenAI wire's `messages` (without the system message).
        let (contents, text) = match (body["contents"].as_array(), body["messages"].as_array()) {
            (Some(contents), _) => (
                contents.clone(),
                contents.last().and_then(|c| c["parts"][0]["text"].as_str()),
            ),
            (None, Some(messages)) => (
                messages[1..].to_vec(),
                messages.last().and_then(|m| m["content"].as_str()),
            ),
            _ => continue,
        };
        let Some(tag) = text.and_then(|t| t.lines().last()) else {
            continue;
        };
        m.gemini.insert(
            tag.to_string(),
            GeminiSide {
                path: request.path.clone(),
                timing,
                request_bytes: request.body.len(),
                messages: contents.len(),
            },
        );
    }
    m.load_at_end = machine::load(&workers.repo);
    m
}

/// Both workers in one runtime: start them, warm them up, run the rounds alternately, then the
/// long conversation and the probes of each; stop them.
fn measure_runtime(
    m: &mut Measurements,
    runtime: Runtime,
    workers: &Workers,
    gemini: &MockGemini,
    layercode: &MockLayercode,
) {
    let targets =
        [WorkerKind::Ours, WorkerKind::PassThrough].map(|worker| Target { worker, runtime });
    // A smoke run starts both at once; a full run one by one, so startup is not shared.
    let servers: Vec<Server> = if m.scale.full {
        targets
            .iter()
            .map(|t| Server::start(*t, workers, gemini, layercode))
            .collect()
    } else {
        thread::scope(|scope| {
            let starting: Vec<_> = targets
                .iter()
                .map(|t| scope.spawn(|| Server::start(*t, workers, gemini, layercode)))
                .collect();
            starting
                .into_iter()
                .map(|h| h.join().expect("server start"))
                .collect()
        })
    };
    for server in &servers {
        m.startups.push(Startups {
            target: server.target,
            runs: vec![server.startup],
            notes: server.startup_note.iter().cloned().collect(),
        });
        let prefix = format!("{}-warm", server.target.id());
        m.warmups
            .extend(sequential(server, &prefix, m.scale.warmup_turns, &m.scale).samples);
    }
    for index in 1..=m.scale.rounds {
        // Ours first in odd rounds, the pass-through first in even ones: a drift in the
        // machine's load over a run then favours neither.
        let mut order: Vec<&Server> = servers.iter().collect();
        if index % 2 == 0 {
            order.reverse();
        }
        for server in order {
            m.rounds
                .push(round(server, index, &m.scale, &mut m.warmups));
        }
    }
    for server in &servers {
        if m.scale.long_turns > 0 && m.scale.long_conversations > 0 {
            m.long.push(long_conversation(server, &m.scale));
        }
        if m.scale.probe_requests > 0 {
            m.probes.extend(probes(server, m.scale.probe_requests));
        }
        if server.target.worker == WorkerKind::Ours {
            m.logged_ms_to_first_tts
                .extend(logged_ms_to_first_tts(&server.logs()));
        }
    }
    servers.into_iter().for_each(Server::stop);
}

/// One worker's part of a round: a few uncounted turns, the sequential turns, then the
/// concurrent clients.
fn round(server: &Server, index: usize, scale: &Scale, warmups: &mut Vec<TurnSample>) -> Round {
    let prefix = format!("{}-r{index}", server.target.id());
    warmups.extend(
        sequential(
            server,
            &format!("{prefix}-warm"),
            scale.round_warmup_turns,
            scale,
        )
        .samples,
    );
    Round {
        index,
        target: server.target,
        sequential: sequential(
            server,
            &format!("{prefix}-seq"),
            scale.sequential_turns,
            scale,
        ),
        concurrent: concurrent(server, &format!("{prefix}-conc"), scale),
    }
}

/// The processes of `server` (and the bench) whose CPU time is counted.
fn processes(server: &Server) -> Processes {
    Processes::of_group(server.pgid(), &|cmd| server.process_label(cmd))
}

/// Runs `f` and measures its wall time and the CPU the server and the bench used meanwhile.
fn measured<T>(server: &Server, f: impl FnOnce() -> T) -> (T, Duration, CpuUse) {
    let processes = processes(server);
    let before = processes.snapshot();
    let started = Instant::now();
    let value = f();
    let wall = started.elapsed();
    let cpu = before.until(&processes.snapshot());
    (value, wall, cpu)
}

/// `turns` turns one after the other, as conversations of `turns_per_conversation` turns.
fn sequential(server: &Server, prefix: &str, turns: usize, scale: &Scale) -> PhaseRun {
    let per = scale.turns_per_conversation;
    let (samples, wall, cpu) = measured(server, || {
        (0..turns)
            .map(|i| run_turn(server, &format!("{prefix}-c{}", i / per), i % per + 1))
            .collect()
    });
    PhaseRun { samples, wall, cpu }
}

/// `scale.clients` clients released together, each starting turns (conversations of
/// `turns_per_conversation`) until `concurrent_for` has passed; wall time = release → last
/// turn ended.
fn concurrent(server: &Server, prefix: &str, scale: &Scale) -> PhaseRun {
    let barrier = Barrier::new(scale.clients + 1);
    let per = scale.turns_per_conversation;
    let (samples, wall, cpu) = measured(server, || {
        thread::scope(|scope| {
            let clients: Vec<_> = (0..scale.clients)
                .map(|client| {
                    let barrier = &barrier;
                    scope.spawn(move || {
                        barrier.wait();
                        let started = Instant::now();
                        let mut samples = Vec::new();
                        while samples.len() < scale.min_turns_per_client
                            || started.elapsed() < scale.concurrent_for
                        {
                            let i = samples.len();
                            let conversation = format!("{prefix}-k{client}-c{}", i / per);
                            samples.push(run_turn(server, &conversation, i % per + 1));
                        }
                        samples
                    })
                })
                .collect();
            barrier.wait();
            clients
                .into_iter()
                .flat_map(|c| c.join().expect("client thread"))
                .collect::<Vec<_>>()
        })
    });
    PhaseRun { samples, wall, cpu }
}

/// Turn 100 against turn 2, under the same machine load: several long conversations are first
/// run up to just before their late window (interleaved, not counted); then their late turns
/// alternate with the early turns of as many fresh conversations, one of each at a time.
///
/// CPU is taken over blocks of the build-up instead ([`LONG_EARLY`] and [`long_cpu_late`]):
/// /proc counts in 10 ms ticks, too coarse to split between turns that alternate.
fn long_conversation(server: &Server, scale: &Scale) -> LongRun {
    let prefix = format!("{}-long", server.target.id());
    let (early, late, cpu_late) = (
        LONG_EARLY,
        long_late(scale.long_turns),
        long_cpu_late(scale.long_turns),
    );
    assert!(
        cpu_late.0 > early.1,
        "a long conversation needs at least 30 turns"
    );
    let n = scale.long_conversations;
    let long_id = |c: usize| format!("{prefix}-c{c}");
    let fresh_id = |c: usize| format!("{prefix}-fresh-c{c}");
    let mut long: Vec<Vec<TurnSample>> = vec![Vec::new(); n];
    let mut fresh: Vec<Vec<TurnSample>> = vec![Vec::new(); n];
    let processes = processes(server);
    let (mut cpu_early, mut cpu_late_use) = (CpuUse::default(), CpuUse::default());
    let mut block_start = None;
    for t in 1..late.0 {
        if t == early.0 || t == cpu_late.0 {
            block_start = Some(processes.snapshot());
        }
        for (c, turns) in long.iter_mut().enumerate() {
            turns.push(run_turn(server, &long_id(c), t));
        }
        if let Some(start) = block_start.take_if(|_| t == early.1 || t == cpu_late.1) {
            let used = start.until(&processes.snapshot());
            if t == early.1 {
                cpu_early = used;
            } else {
                cpu_late_use = used;
            }
        }
    }
    for t in 1..early.0 {
        for (c, turns) in fresh.iter_mut().enumerate() {
            turns.push(run_turn(server, &fresh_id(c), t));
        }
    }
    for step in 0..=(early.1 - early.0).max(late.1 - late.0) {
        for c in 0..n {
            if early.0 + step <= early.1 {
                fresh[c].push(run_turn(server, &fresh_id(c), early.0 + step));
            }
            if late.0 + step <= late.1 {
                long[c].push(run_turn(server, &long_id(c), late.0 + step));
            }
        }
    }
    LongRun {
        target: server.target,
        late: long,
        early: fresh,
        cpu_early,
        cpu_late: cpu_late_use,
    }
}

/// Times cheaper requests on the same path, to attribute the overhead: the HTTP hop, plus (our
/// worker only) body read + signature + JSON, plus one Durable Object round trip.
fn probes(server: &Server, n: usize) -> Vec<Probe> {
    let time = |f: &dyn Fn()| {
        let t = Instant::now();
        f();
        ms(t.elapsed())
    };
    let health = (0..n)
        .map(|_| time(&|| assert_eq!(get(&server.url("/health")).status, 200)))
        .collect();
    let mut probes = vec![Probe {
        target: server.target,
        name: "GET /health",
        adds: "HTTP to the worker and back",
        times: health,
    }];
    if server.target.worker == WorkerKind::Ours {
        let webhook = |event: Value| {
            let body = event.to_string();
            let signature = sign_now(TEST_WEBHOOK_SECRET, &body);
            let headers = [(SIGNATURE_HEADER, signature.as_str())];
            assert_eq!(
                post_json(&server.url("/agent"), &headers, &body).status,
                200
            );
        };
        let prefix = server.target.id();
        let data = (0..n)
            .map(|i| {
                time(&|| {
                    webhook(
                        json!({"type": "data", "conversation_id": format!("{prefix}-probe"),
                        "turn_id": format!("d{i}"), "data": {"k": i}}),
                    )
                })
            })
            .collect();
        let session_end = (0..n)
            .map(|i| {
                time(&|| {
                    webhook(json!({"type": "session.end", "conversation_id": format!("{prefix}-probe-do"),
                        "session_id": format!("s{i}"), "duration": 1000, "transcript": []}))
                })
            })
            .collect();
        probes.push(Probe {
            target: server.target,
            name: "POST /agent `data`",
            adds: "+ body read, HMAC signature check, JSON parse",
            times: data,
        });
        probes.push(Probe {
            target: server.target,
            name: "POST /agent `session.end`",
            adds: "+ one Durable Object round trip (one SQL write)",
            times: session_end,
        });
    }
    probes
}

/// One signed `message` webhook, read to the end of its SSE body.
pub fn run_turn(server: &Server, conversation: &str, turn: usize) -> TurnSample {
    let tag = format!("bench {conversation} turn {turn}: tell me something short");
    let turn_id = format!("{conversation}_t{turn}");
    let body = message(conversation, &turn_id, &tag).to_string();
    let signature = sign_now(TEST_WEBHOOK_SECRET, &body);
    let headers = [(SIGNATURE_HEADER, signature.as_str())];
    let sent = Instant::now();
    let mut client = SseClient::open_json(&server.url("/agent"), &headers, &body);
    let mut first_tts = None;
    let mut tts_text = String::new();
    let mut types = Vec::new();
    let deadline = sent + TURN_TIMEOUT;
    let mut problem = (client.status != 200).then(|| format!("status {}", client.status));
    loop {
        match client.next(deadline.saturating_duration_since(Instant::now())) {
            SseNext::Event(e) => {
                let kind = e.json["type"].as_str().unwrap_or_default().to_string();
                if kind == "response.tts" {
                    first_tts.get_or_insert(e.at);
                    tts_text.push_str(e.json["content"].as_str().unwrap_or_default());
                }
                if e.json["turn_id"] != turn_id.as_str() && problem.is_none() {
                    problem = Some(format!("event without this turn's id: {}", e.raw));
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
        turn_id,
        sent,
        first_tts,
        total,
        tts_text,
        problem,
    }
}

/// `ms_to_first_tts` of every `"event":"turn"` log line, by turn id.
fn logged_ms_to_first_tts(logs: &str) -> HashMap<String, f64> {
    logs.lines()
        .filter(|l| l.contains("\"event\":\"turn\""))
        .filter_map(|line| serde_json::from_str::<Value>(&line[line.find('{')?..]).ok())
        .filter_map(|v| {
            Some((
                v["turn_id"].as_str()?.to_string(),
                v["ms_to_first_tts"].as_f64()?,
            ))
        })
        .collect()
}
