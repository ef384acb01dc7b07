//! Latency, throughput and CPU of our worker side by side with a pass-through worker (the
//! floor), under `wrangler dev` and under bare workerd, against a mock Gemini whose first chunk
//! leaves at once. Method and results: BENCHMARKS.md.
//!
//! * `cargo bench --bench latency` (cargo passes `--bench`): the full run, about 10 minutes.
//! * `cargo test --all-targets` runs this binary without `--bench`: a smoke run of a few turns
//!   per worker and runtime that fails unless every turn ended with exactly one `response.end`.
//!
//! Environment:
//! * `LATENCY_BENCH_WORKER_DIR=<checkout>`: "ours" is `<checkout>/wrangler.toml` and its
//!   `build/` instead of this repository's (compare prototype builds without copying code). Full
//!   runs only: the smoke run always checks this repository.
//! * `LATENCY_BENCH_ROUNDS=<n>` (default 3), `LATENCY_BENCH_CONCURRENT_SECS=<s>` (default 30),
//!   `LATENCY_BENCH_RUNTIMES=wrangler,bare` (default both): a shorter or longer full run.
//! * `LATENCY_BENCH_RAW=<file>`: also write every sequential turn's wall-clock stamps as CSV.
//! * `LATENCY_BENCH_WIRE=openai`: ours asks the mock over the OpenAI chat completions wire (one
//!   `MODELS` entry); the pass-through keeps Gemini's, so the ratio prices the wire. Full runs
//!   only, like `LATENCY_BENCH_WORKER_DIR`.
//!
//! `main` measures (`measure`), checks (`check`), then reports (`report`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test fails by panicking

#[path = "../tests/common/mod.rs"]
mod common;

#[path = "latency/check.rs"]
mod check;
#[path = "latency/machine.rs"]
mod machine;
#[path = "latency/measure.rs"]
mod measure;
#[path = "latency/report.rs"]
mod report;
#[path = "latency/servers.rs"]
mod servers;
#[path = "latency/stats.rs"]
mod stats;

use measure::Scale;
use servers::{Runtime, Workers};
use std::fs;
use std::time::Duration;

fn full_scale() -> Scale {
    Scale {
        full: true,
        runtimes: runtimes_from_env(),
        rounds: env_number("LATENCY_BENCH_ROUNDS").unwrap_or(3),
        warmup_turns: 20,
        round_warmup_turns: 5,
        sequential_turns: 100,
        clients: 16,
        concurrent_for: Duration::from_secs(
            env_number("LATENCY_BENCH_CONCURRENT_SECS").unwrap_or(30) as u64,
        ),
        min_turns_per_client: 1,
        turns_per_conversation: 10,
        long_conversations: 10,
        // Long enough for the running summary to have been rewritten many times.
        long_turns: 300,
        probe_requests: 100,
        extra_startups: 2,
    }
}

fn smoke_scale() -> Scale {
    Scale {
        full: false,
        runtimes: vec![Runtime::WranglerDev, Runtime::Bare],
        rounds: 1,
        warmup_turns: 0,
        round_warmup_turns: 0,
        sequential_turns: 3,
        clients: 2,
        concurrent_for: Duration::ZERO,
        min_turns_per_client: 2,
        turns_per_conversation: 10,
        long_conversations: 0,
        long_turns: 0,
        probe_requests: 0,
        extra_startups: 0,
    }
}

/// The contract's floor (benches/contract) in bare workerd, with the same checks, so that the
/// reference BENCHMARKS.md compares against keeps working; the variants with history must send it.
fn smoke_contract_floor() {
    let scale = || Scale {
        runtimes: vec![Runtime::Bare],
        ..smoke_scale()
    };
    for (variant, keeps_history) in [("hop", false), ("hop_sql", true), ("rpc_sql", true)] {
        let m = measure::run(scale(), &Workers::contract_floor(variant));
        check::check(&m);
        // 3 turns of one conversation: the third request holds at least the 2 earlier user
        // messages and its own (a reply is stored as the turn ends, which may race the next).
        let most = m.gemini.values().map(|g| g.messages).max().unwrap_or(0);
        if keeps_history {
            assert!(
                most >= 3,
                "contract floor {variant} sent no history: {most}"
            );
        } else {
            assert_eq!(most, 1, "contract floor {variant} sent history");
        }
        println!("contract floor {variant}: smoke passed");
    }
}

fn env_number(name: &str) -> Option<usize> {
    let value = std::env::var(name).ok()?;
    Some(
        value
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value:?} is not a number")),
    )
}

fn runtimes_from_env() -> Vec<Runtime> {
    match std::env::var("LATENCY_BENCH_RUNTIMES") {
        Ok(list) => list
            .split(',')
            .map(|w| {
                Runtime::parse(w).unwrap_or_else(|| {
                    panic!("LATENCY_BENCH_RUNTIMES: {w:?} is neither wrangler nor bare")
                })
            })
            .collect(),
        Err(_) => vec![Runtime::WranglerDev, Runtime::Bare],
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test` passes nothing of the kind.
    let full = std::env::args().any(|a| a == "--bench");
    // The smoke run is part of the test suite: it checks this repository's worker, even in a
    // shell where LATENCY_BENCH_WORKER_DIR names another checkout to benchmark.
    let workers = if full {
        Workers::from_env()
    } else {
        Workers::repository()
    };
    let measurements = measure::run(if full { full_scale() } else { smoke_scale() }, &workers);
    if let Ok(path) = std::env::var("LATENCY_BENCH_RAW") {
        report::write_raw(&path, &measurements);
    }
    check::check(&measurements);
    let text = report::render(&measurements);
    println!("{text}");
    if full {
        let dir = workers.repo.join("target/bench");
        if fs::create_dir_all(&dir).is_ok() {
            let _ = fs::write(dir.join("latency.md"), &text);
        }
    } else {
        smoke_contract_floor();
    }
}
