//! The Markdown report of a run, and the optional raw CSV of its sequential turns.

use super::machine::{command_line, CpuUse, BENCH_PROCESS};
use super::measure::{
    long_cpu_late, long_late, ms, LongRun, Measurements, PhaseRun, Round, TurnSample, LONG_EARLY,
};
use super::servers::{Runtime, Target, WorkerKind};
use super::stats::pct;
use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Issue 10's goals, as ratios ours / pass-through.
const GOAL_P50: f64 = 1.1;
const GOAL_P95: f64 = 1.2;
const GOAL_THROUGHPUT: f64 = 0.9;
const GOAL_LONG: f64 = 1.1;

pub fn render(m: &Measurements) -> String {
    let mut out = String::new();
    let s = &m.scale;
    let mut line = |text: &str| {
        let _ = writeln!(out, "{text}");
    };
    line(&format!(
        "# Latency bench ({}), {}",
        if s.full { "full" } else { "smoke" },
        utc_now()
    ));
    line(&format!(
        "\nOurs: `{}` at {}. Machine: {}.\n\nAt the start: {}\n\nAt the end: {}",
        m.ours_dir, m.ours_git, m.machine, m.load_at_start, m.load_at_end
    ));
    line(&format!(
        "\nEach round: per worker {} uncounted turns, {} sequential turns, then {} clients for \
         {} s (conversations of {} turns); the order alternates (ours first in odd rounds). \
         Overhead = (client send → first `response.tts`) − (mock received → first chunk \
         written). Ratios are ours / pass-through within a round; \"overall\" is their median \
         over the rounds. \"As the CPU allows\" is the pass-through's server CPU per turn at \
         {} clients divided by ours: the throughput ratio if both had the CPU to themselves, \
         which other load on the machine disturbs far less than turns/s.",
        s.round_warmup_turns,
        s.sequential_turns,
        s.clients,
        s.concurrent_for.as_secs(),
        s.turns_per_conversation,
        s.clients
    ));
    line("\n## Summary: ours / pass-through\n");
    line(&summary(m).render());
    line(&format!(
        "\nGoals (issue 10): overhead p50 ≤ {GOAL_P50}×, p95 ≤ {GOAL_P95}×, throughput ≥ \
         {GOAL_THROUGHPUT}×, turn {} within {:.0}% of turn 2 (issue 21: turn 300, with \
         summaries on).",
        s.long_turns,
        (GOAL_LONG - 1.0) * 100.0
    ));
    for &runtime in &s.runtimes {
        line(&format!("\n## Rounds, {}\n", runtime.name()));
        line(&rounds_table(m, runtime).render());
    }
    line("\n## Per worker (median of the rounds, range in brackets)\n");
    line(&per_worker(m).render());
    line("\n## Backend overhead breakdown (sequential turns of all rounds)\n");
    line(&breakdown(m).render());
    line("\n## CPU per turn, by process (utime + stime from /proc, summed over the rounds)\n");
    line(&cpu_table(m).render());
    line(&format!(
        "\n\"Machine busy\" is every process on the machine (all {} cores, all users) during \
         the concurrent phases; \"others\" is what was not the server or the bench: other \
         engineers' builds and tests.",
        m.machine.split_whitespace().next().unwrap_or("?")
    ));
    if !m.long.is_empty() {
        let n = s.long_turns;
        let late = long_late(n);
        line(&format!(
            "\n## Long conversation (per worker: {c} conversations of {n} turns and {c} fresh \
             ones; medians across them)\n",
            c = s.long_conversations
        ));
        line(&long_table(m).render());
        line(&summary_note(m));
        line(&format!(
            "\nThe long conversations first run up to turn {} (not counted); then each of their \
             turns {}–{} alternates with turn {}–{} of a fresh conversation, so both windows see \
             the same machine load. CPU comes from blocks of the build-up instead (turns {}–{} \
             and {}–{} of the long conversations, {} turns each): /proc counts in 10 ms ticks, \
             too coarse to split between alternating turns.",
            late.0 - 1,
            late.0,
            late.1,
            LONG_EARLY.0,
            LONG_EARLY.1,
            LONG_EARLY.0,
            LONG_EARLY.1,
            long_cpu_late(n).0,
            long_cpu_late(n).1,
            (LONG_EARLY.1 - LONG_EARLY.0 + 1) * s.long_conversations
        ));
    }
    if !m.probes.is_empty() {
        line("\n## Fixed costs (one request each, new connection each, like the turns)\n");
        let mut t = Table::new(&["Target", "Request", "What it adds", "n", "p50", "p95"]);
        for p in &m.probes {
            t.row(&[
                p.target.label(),
                p.name.to_string(),
                p.adds.to_string(),
                p.times.len().to_string(),
                fmt_ms(pct(&p.times, 50.0)),
                fmt_ms(pct(&p.times, 95.0)),
            ]);
        }
        line(&t.render());
    }
    line("\n## Startup and size\n");
    line(&startup_table(m).render());
    let logged: Vec<f64> = m
        .rounds
        .iter()
        .filter(|r| r.target.worker == WorkerKind::Ours)
        .flat_map(|r| &r.sequential.samples)
        .filter_map(|s| m.logged_ms_to_first_tts.get(&s.turn_id).copied())
        .collect();
    if !logged.is_empty() {
        line(&format!(
            "\nOur worker's own `ms_to_first_tts` log field over its sequential turns (Date.now() \
             in workerd, 1 ms steps, both runtimes): p50 {} p95 {} (n={}).",
            fmt_ms(pct(&logged, 50.0)),
            fmt_ms(pct(&logged, 95.0)),
            logged.len()
        ));
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Per round and per worker
// ---------------------------------------------------------------------------------------------

/// The numbers of one worker's part of one round.
struct RoundNumbers {
    p50: f64,
    p95: f64,
    throughput: f64,
    /// CPU of the server's processes per turn with the concurrent clients, ms.
    server_cpu: f64,
}

fn numbers(m: &Measurements, r: &Round) -> RoundNumbers {
    let overhead = overheads(m, &r.sequential.samples);
    RoundNumbers {
        p50: pct(&overhead, 50.0),
        p95: pct(&overhead, 95.0),
        throughput: throughput(&r.concurrent),
        server_cpu: ms(r.concurrent.cpu.server()) / r.concurrent.samples.len().max(1) as f64,
    }
}

fn overheads<'a>(m: &Measurements, samples: impl IntoIterator<Item = &'a TurnSample>) -> Vec<f64> {
    samples.into_iter().filter_map(|s| m.overhead(s)).collect()
}

fn throughput(p: &PhaseRun) -> f64 {
    p.samples.len() as f64 / p.wall.as_secs_f64()
}

fn find(m: &Measurements, target: Target, index: usize) -> Option<&Round> {
    m.rounds
        .iter()
        .find(|r| r.target == target && r.index == index)
}

/// Ratios ours / pass-through of one round of one runtime: overhead p50, p95, throughput, and
/// the throughput the CPU allows (the pass-through's server CPU per turn / ours).
fn round_ratios(m: &Measurements, runtime: Runtime, index: usize) -> Option<[f64; 4]> {
    let of = |worker| find(m, Target { worker, runtime }, index).map(|r| numbers(m, r));
    let (ours, floor) = (of(WorkerKind::Ours)?, of(WorkerKind::PassThrough)?);
    Some([
        ours.p50 / floor.p50,
        ours.p95 / floor.p95,
        ours.throughput / floor.throughput,
        floor.server_cpu / ours.server_cpu,
    ])
}

fn summary(m: &Measurements) -> Table {
    let (n, late) = (m.scale.long_turns, long_late(m.scale.long_turns));
    let mut t = Table::new(&[
        "Runtime",
        "Overhead p50",
        "Overhead p95",
        &format!("Throughput ({} clients)", m.scale.clients),
        "… as the CPU allows",
        &format!("First tts, turn {n} / turn {}", LONG_EARLY.0),
        &format!(
            "… turns {}–{} / {}–{}",
            late.0, late.1, LONG_EARLY.0, LONG_EARLY.1
        ),
    ]);
    for &runtime in &m.scale.runtimes {
        let per_round: Vec<[f64; 4]> = (1..=m.scale.rounds)
            .filter_map(|i| round_ratios(m, runtime, i))
            .collect();
        let column = |k: usize, goal: f64, at_most: bool| {
            let values: Vec<f64> = per_round.iter().map(|r| r[k]).collect();
            let overall = median(&values);
            let met = if at_most {
                overall <= goal
            } else {
                overall >= goal
            };
            format!(
                "{} {} (rounds: {})",
                ratio(overall),
                if met { "✓" } else { "✗" },
                values
                    .iter()
                    .map(|v| ratio(*v))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let long = m.long.iter().find(|l| {
            l.target
                == Target {
                    worker: WorkerKind::Ours,
                    runtime,
                }
        });
        let (single, window) = long.map_or(("–".into(), "–".into()), |l| {
            let (t2, t100) = (turn_median(l, 2), turn_median(l, m.scale.long_turns));
            let late = long_late(m.scale.long_turns);
            let (w_early, w_late) = (window_median(l, LONG_EARLY), window_median(l, late));
            let mark = |r: f64| if r <= GOAL_LONG { "✓" } else { "✗" };
            (
                format!(
                    "{} {} ({} vs {})",
                    ratio(t100 / t2),
                    mark(t100 / t2),
                    fmt_ms(t100),
                    fmt_ms(t2)
                ),
                format!(
                    "{} {} ({} vs {})",
                    ratio(w_late / w_early),
                    mark(w_late / w_early),
                    fmt_ms(w_late),
                    fmt_ms(w_early)
                ),
            )
        });
        t.row(&[
            runtime.name().to_string(),
            column(0, GOAL_P50, true),
            column(1, GOAL_P95, true),
            column(2, GOAL_THROUGHPUT, false),
            column(3, GOAL_THROUGHPUT, false),
            single,
            window,
        ]);
    }
    t
}

fn rounds_table(m: &Measurements, runtime: Runtime) -> Table {
    let mut t = Table::new(&[
        "Round",
        "Worker",
        "Overhead p50",
        "Overhead p95",
        &format!("Turns/s ({} clients)", m.scale.clients),
        "Server CPU per turn (same phase)",
        "Machine busy / of it others (same phase)",
    ]);
    for index in 1..=m.scale.rounds {
        let mut parts: Vec<&Round> = m
            .rounds
            .iter()
            .filter(|r| r.index == index && r.target.runtime == runtime)
            .collect();
        parts.sort_by_key(|r| r.sequential.samples.first().map(|s| s.sent));
        for r in &parts {
            let n = numbers(m, r);
            t.row(&[
                index.to_string(),
                r.target.worker.name().to_string(),
                fmt_ms(n.p50),
                fmt_ms(n.p95),
                format!("{:.1}", n.throughput),
                fmt_ms(n.server_cpu),
                busy(&r.concurrent.cpu),
            ]);
        }
        if let Some([p50, p95, tput, cpu]) = round_ratios(m, runtime, index) {
            t.row(&[
                index.to_string(),
                "**ours / pass-through**".into(),
                ratio(p50),
                ratio(p95),
                ratio(tput),
                format!("{} (pass-through / ours)", ratio(cpu)),
                String::new(),
            ]);
        }
    }
    t
}

/// "83% / 12%": the whole machine's busy share, and the share that was neither the server
/// nor the bench.
fn busy(cpu: &CpuUse) -> String {
    if cpu.machine_total.is_zero() {
        return "?".into();
    }
    let share = |d: std::time::Duration| 100.0 * d.as_secs_f64() / cpu.machine_total.as_secs_f64();
    let others = cpu.machine_busy.saturating_sub(cpu.ours());
    format!("{:.0}% / {:.0}%", share(cpu.machine_busy), share(others))
}

fn per_worker(m: &Measurements) -> Table {
    let clients = format!("Turns/s ({} clients)", m.scale.clients);
    let mut t = Table::new(&[
        "Runtime",
        "Worker",
        "Overhead p50",
        "Overhead p95",
        &clients,
    ]);
    for &runtime in &m.scale.runtimes {
        for worker in [WorkerKind::Ours, WorkerKind::PassThrough] {
            let target = Target { worker, runtime };
            let rounds: Vec<RoundNumbers> = m
                .rounds
                .iter()
                .filter(|r| r.target == target)
                .map(|r| numbers(m, r))
                .collect();
            let cell = |f: &dyn Fn(&RoundNumbers) -> f64, fmt: &dyn Fn(f64) -> String| {
                let v: Vec<f64> = rounds.iter().map(f).collect();
                let (lo, hi) = v
                    .iter()
                    .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
                        (lo.min(*x), hi.max(*x))
                    });
                format!("{} ({}–{})", fmt(median(&v)), fmt(lo), fmt(hi))
            };
            t.row(&[
                runtime.name().to_string(),
                worker.name().to_string(),
                cell(&|n| n.p50, &fmt_ms),
                cell(&|n| n.p95, &fmt_ms),
                cell(&|n| n.throughput, &|v| format!("{v:.1}")),
            ]);
        }
    }
    t
}

// ---------------------------------------------------------------------------------------------
// Breakdown, CPU, long conversation, startup
// ---------------------------------------------------------------------------------------------

fn targets(m: &Measurements) -> Vec<Target> {
    m.scale
        .runtimes
        .iter()
        .flat_map(|&runtime| {
            [WorkerKind::Ours, WorkerKind::PassThrough].map(|worker| Target { worker, runtime })
        })
        .collect()
}

fn breakdown(m: &Measurements) -> Table {
    let mut t = Table::new(&["Target", "Interval", "p50", "p95", "p99"]);
    for target in targets(m) {
        let samples: Vec<&TurnSample> = m
            .rounds
            .iter()
            .filter(|r| r.target == target)
            .flat_map(|r| &r.sequential.samples)
            .collect();
        let mut rows: [(&str, Vec<f64>); 6] = [
            ("Client send → first `response.tts`", Vec::new()),
            ("Mock received → first chunk written", Vec::new()),
            ("**Backend overhead** (difference)", Vec::new()),
            ("… inbound: client send → mock received", Vec::new()),
            (
                "… outbound: first chunk written → client has the tts",
                Vec::new(),
            ),
            ("Client send → `response.end`", Vec::new()),
        ];
        for s in samples {
            let (Some(g), Some(first_tts)) = (m.gemini.get(&s.tag), s.first_tts) else {
                continue;
            };
            let Some(first_chunk) = g.timing.first_chunk_at else {
                continue;
            };
            let received = g.timing.received_at;
            let values = [
                ms(first_tts),
                ms(first_chunk - received),
                ms(first_tts) - ms(first_chunk - received),
                ms(received.saturating_duration_since(s.sent)),
                ms((s.sent + first_tts).saturating_duration_since(first_chunk)),
                ms(s.total),
            ];
            for (row, v) in rows.iter_mut().zip(values) {
                row.1.push(v);
            }
        }
        for (name, v) in &rows {
            t.row(&[
                target.label(),
                name.to_string(),
                fmt_ms(pct(v, 50.0)),
                fmt_ms(pct(v, 95.0)),
                fmt_ms(pct(v, 99.0)),
            ]);
        }
    }
    t
}

fn cpu_table(m: &Measurements) -> Table {
    let mut t = Table::new(&[
        "Target",
        "Process",
        "Sequential (ms/turn)",
        &format!("{} clients (ms/turn)", m.scale.clients),
    ]);
    for target in targets(m) {
        let (mut sequential, mut concurrent) = (CpuUse::default(), CpuUse::default());
        let (mut n_seq, mut n_conc) = (0, 0);
        for r in m.rounds.iter().filter(|r| r.target == target) {
            sequential.add(&r.sequential.cpu);
            concurrent.add(&r.concurrent.cpu);
            n_seq += r.sequential.samples.len();
            n_conc += r.concurrent.samples.len();
        }
        let per_turn = |cpu: &CpuUse, label: &str, n: usize| {
            let used = cpu
                .processes
                .iter()
                .filter(|(l, _)| l == label)
                .map(|(_, d)| *d)
                .sum::<std::time::Duration>();
            ms(used) / n.max(1) as f64
        };
        let mut labels: Vec<&String> = concurrent.processes.iter().map(|(l, _)| l).collect();
        for (l, _) in &sequential.processes {
            if !labels.contains(&l) {
                labels.push(l);
            }
        }
        labels.sort_by_key(|l| (l.as_str() == BENCH_PROCESS, l.to_string()));
        for label in labels {
            let (seq, conc) = (
                per_turn(&sequential, label, n_seq),
                per_turn(&concurrent, label, n_conc),
            );
            if seq > 0.0 || conc > 0.0 {
                t.row(&[target.label(), label.clone(), fmt_ms(seq), fmt_ms(conc)]);
            }
        }
        t.row(&[
            target.label(),
            "**all of the above**".into(),
            fmt_ms(ms(sequential.ours()) / n_seq.max(1) as f64),
            fmt_ms(ms(concurrent.ours()) / n_conc.max(1) as f64),
        ]);
        t.row(&[
            target.label(),
            "machine busy / of it others".into(),
            busy(&sequential),
            busy(&concurrent),
        ]);
    }
    t
}

/// Median across conversations of the time to first tts at turn `t`.
fn turn_median(l: &LongRun, t: usize) -> f64 {
    let v: Vec<f64> = l
        .turn(t)
        .iter()
        .filter_map(|s| s.first_tts.map(ms))
        .collect();
    median(&v)
}

/// Median time to first tts over turns `from..=to` of every conversation.
fn window_median(l: &LongRun, (from, to): (usize, usize)) -> f64 {
    let v: Vec<f64> = (from..=to)
        .flat_map(|t| l.turn(t))
        .filter_map(|s| s.first_tts.map(ms))
        .collect();
    median(&v)
}

/// What the running summary cost our worker over the long conversations: calls per hundred
/// turns, and their request size beside the turns' own (the mock's token counts are not real:
/// bytes / 4 estimates tokens of English text).
fn summary_note(m: &Measurements) -> String {
    // The long conversations only: the fresh ones (11 turns) never reach a summary.
    let ours_long_turns: usize = m
        .long
        .iter()
        .filter(|l| l.target.worker == WorkerKind::Ours)
        .flat_map(|l| &l.late)
        .map(Vec::len)
        .sum();
    let calls = m.summaries.len();
    if ours_long_turns == 0 {
        return String::new();
    }
    let turn_bytes: Vec<f64> = m
        .long
        .iter()
        .filter(|l| l.target.worker == WorkerKind::Ours)
        .flat_map(|l| l.late.iter().flatten())
        .filter_map(|s| m.gemini.get(&s.tag).map(|g| g.request_bytes as f64))
        .collect();
    let turn_total: f64 = turn_bytes.iter().sum();
    let summary_in: usize = m.summaries.iter().map(|s| s.request_bytes).sum();
    let summary_out: usize = m.summaries.iter().map(|s| s.summary_bytes).sum();
    let per_hundred = 100.0 * calls as f64 / ours_long_turns as f64;
    format!(
        "\nSummary calls (ours, long conversations): {calls} over {ours_long_turns} turns, \
         {per_hundred:.1} per hundred turns. They sent {} KB and got {} KB of summary back, \
         beside {} KB sent by the turns themselves ({:.1}%; about {:.0} tokens per call in and \
         {:.0} out, at 4 bytes a token).",
        summary_in / 1000,
        summary_out / 1000,
        (turn_total / 1000.0).round(),
        100.0 * summary_in as f64 / turn_total.max(1.0),
        summary_in as f64 / 4.0 / calls.max(1) as f64,
        summary_out as f64 / 4.0 / calls.max(1) as f64,
    )
}

fn long_table(m: &Measurements) -> Table {
    let n = m.scale.long_turns;
    let late = long_late(n);
    let mut t = Table::new(&[
        "Target",
        "Measure",
        &format!("Turn 2 / turns {}–{}", LONG_EARLY.0, LONG_EARLY.1),
        &format!("Turn {n} / turns {}–{}", late.0, late.1),
        "Late / early",
    ]);
    for l in &m.long {
        let label = l.target.label();
        let per_turn_median = |t: usize, f: &dyn Fn(&TurnSample) -> Option<f64>| {
            let v: Vec<f64> = l.turn(t).into_iter().filter_map(f).collect();
            median(&v)
        };
        let overhead = |s: &TurnSample| m.overhead(s);
        let bytes = |s: &TurnSample| m.gemini.get(&s.tag).map(|g| g.request_bytes as f64);
        let messages = |s: &TurnSample| m.gemini.get(&s.tag).map(|g| g.messages as f64);
        let row =
            |t: &mut Table, name: &str, early: f64, late: f64, fmt: &dyn Fn(f64) -> String| {
                t.row(&[
                    label.clone(),
                    name.to_string(),
                    fmt(early),
                    fmt(late),
                    ratio(late / early),
                ]);
            };
        row(
            &mut t,
            "First tts, single turn",
            turn_median(l, 2),
            turn_median(l, n),
            &fmt_ms,
        );
        row(
            &mut t,
            "First tts, window",
            window_median(l, LONG_EARLY),
            window_median(l, late),
            &fmt_ms,
        );
        row(
            &mut t,
            "Overhead, single turn",
            per_turn_median(2, &overhead),
            per_turn_median(n, &overhead),
            &fmt_ms,
        );
        row(
            &mut t,
            "Gemini request bytes",
            per_turn_median(2, &bytes),
            per_turn_median(n, &bytes),
            &|v| format!("{v:.0}"),
        );
        row(
            &mut t,
            "`contents` entries sent",
            per_turn_median(2, &messages),
            per_turn_median(n, &messages),
            &|v| format!("{v:.0}"),
        );
        let cpu_late = long_cpu_late(n);
        let window_turns = |(from, to): (usize, usize)| ((to - from + 1) * l.late.len()) as f64;
        let cpu = |use_: &CpuUse, w: (usize, usize)| ms(use_.ours()) / window_turns(w);
        row(
            &mut t,
            &format!(
                "CPU per turn, all processes (turns {}–{} vs {}–{}, blocks)",
                LONG_EARLY.0, LONG_EARLY.1, cpu_late.0, cpu_late.1
            ),
            cpu(&l.cpu_early, LONG_EARLY),
            cpu(&l.cpu_late, cpu_late),
            &fmt_ms,
        );
        for (process, early) in &l.cpu_early.processes {
            let late_cpu = l
                .cpu_late
                .processes
                .iter()
                .find(|(p, _)| p == process)
                .map_or(0.0, |(_, d)| ms(*d));
            row(
                &mut t,
                &format!("… {process}"),
                ms(*early) / window_turns(LONG_EARLY),
                late_cpu / window_turns(cpu_late),
                &fmt_ms,
            );
        }
    }
    t
}

fn startup_table(m: &Measurements) -> Table {
    let mut t = Table::new(&["Measure", "Result"]);
    for s in &m.startups {
        let runs: Vec<f64> = s.runs.iter().map(|d| ms(*d)).collect();
        let notes = if s.notes.is_empty() {
            String::new()
        } else {
            format!("; serve.mjs: {}", s.notes.join(" / "))
        };
        t.row(&[
            format!(
                "Startup, {} (spawn → first 200 `/health`)",
                s.target.label()
            ),
            format!(
                "median {} of {} (runs: {}){notes}",
                fmt_ms(median(&runs)),
                runs.len(),
                runs.iter()
                    .map(|r| fmt_ms(*r))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ]);
    }
    if let Some((raw, gz)) = m.wasm {
        t.row(&[
            "Wasm size raw".into(),
            format!("{:.1} KB ({raw} B)", raw as f64 / 1024.0),
        ]);
        t.row(&[
            "Wasm size gzip -9 (budget 300 KB)".into(),
            format!("{:.1} KB ({gz} B)", gz as f64 / 1024.0),
        ]);
    }
    t
}

// ---------------------------------------------------------------------------------------------
// Raw CSV
// ---------------------------------------------------------------------------------------------

/// One CSV line per sequential turn: target, round, turn id and the Unix-ms instants of client
/// send, mock received, mock first chunk, client first tts and client end (to line them up with
/// timestamps the worker logs).
pub fn write_raw(path: &str, m: &Measurements) {
    let (now, wall) = (Instant::now(), SystemTime::now());
    let unix_now = wall.duration_since(UNIX_EPOCH).unwrap_or_default();
    let epoch_ms = |i: Instant| {
        let unix = if i <= now {
            unix_now.saturating_sub(now - i)
        } else {
            unix_now + (i - now)
        };
        format!("{:.3}", ms(unix))
    };
    let mut out = String::from(
        "runtime,worker,round,turn_id,sent,mock_received,mock_first_chunk,first_tts,end\n",
    );
    for r in &m.rounds {
        for s in &r.sequential.samples {
            let (Some(g), Some(first_tts)) = (m.gemini.get(&s.tag), s.first_tts) else {
                continue;
            };
            let Some(first_chunk) = g.timing.first_chunk_at else {
                continue;
            };
            let _ = writeln!(
                out,
                "{},{},{},{},{},{},{},{},{}",
                r.target.runtime.name(),
                r.target.worker.name(),
                r.index,
                s.turn_id,
                epoch_ms(s.sent),
                epoch_ms(g.timing.received_at),
                epoch_ms(first_chunk),
                epoch_ms(s.sent + first_tts),
                epoch_ms(s.sent + s.total)
            );
        }
    }
    fs::write(path, out).unwrap_or_else(|e| panic!("write {path}: {e}"));
}

// ---------------------------------------------------------------------------------------------
// Numbers and tables
// ---------------------------------------------------------------------------------------------

/// The middle value (the mean of the two middle ones for an even count); NaN for no data.
pub fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    }
}

fn fmt_ms(v: f64) -> String {
    if v.is_nan() {
        "–".to_string()
    } else if v.abs() >= 100.0 {
        format!("{v:.0} ms")
    } else {
        format!("{v:.2} ms")
    }
}

fn ratio(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.2}×")
    } else {
        "–".to_string()
    }
}

/// `YYYY-MM-DD HH:MM UTC`.
fn utc_now() -> String {
    command_line(Path::new("/"), "date", &["-u", "+%Y-%m-%d %H:%M UTC"])
}

pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: &[String]) {
        self.rows.push(cells.to_vec());
    }

    pub fn render(&self) -> String {
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
