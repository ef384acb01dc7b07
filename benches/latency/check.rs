//! What must hold for the numbers to mean anything (smoke and full runs alike).

use super::measure::{Measurements, REPLY_PARTS};
use super::servers::{WorkerKind, OPENAI_PATH};
use crate::common::gemini_fixtures;

/// Panics unless every turn was a well-formed stream ending in exactly one `response.end`,
/// spoke the mock's whole reply, and was matched to its Gemini request with a written first
/// chunk; and unless every round ran what the scale asked for.
pub fn check(m: &Measurements) {
    let expected = REPLY_PARTS.concat();
    let mut bad = Vec::new();
    for s in m.all_turns() {
        if let Some(problem) = &s.problem {
            bad.push(format!("{}: {problem}", s.turn_id));
        } else if s.tts_text != expected {
            bad.push(format!("{}: spoke {:?}", s.turn_id, s.tts_text));
        } else if m
            .gemini
            .get(&s.tag)
            .and_then(|g| g.timing.first_chunk_at)
            .is_none()
        {
            bad.push(format!(
                "{}: no Gemini request with a written first chunk",
                s.turn_id
            ));
        }
    }
    assert!(bad.is_empty(), "{} turn(s) went wrong: {bad:#?}", bad.len());
    // Both workers call the same model at the same URL (ours over the OpenAI wire when
    // `LATENCY_BENCH_WIRE=openai`).
    let mut paths: Vec<&str> = m.gemini.values().map(|g| g.path.as_str()).collect();
    paths.sort_unstable();
    paths.dedup();
    let gemini = gemini_fixtures::stream_path(gemini_fixtures::MODEL_VERSION);
    let expected: Vec<&str> = if m.openai_wire {
        vec![OPENAI_PATH, gemini.as_str()]
    } else {
        vec![gemini.as_str()]
    };
    assert_eq!(paths, expected, "model request paths");
    let scale = &m.scale;
    for runtime in &scale.runtimes {
        for worker in [WorkerKind::Ours, WorkerKind::PassThrough] {
            let rounds: Vec<_> = m
                .rounds
                .iter()
                .filter(|r| r.target.runtime == *runtime && r.target.worker == worker)
                .collect();
            assert_eq!(rounds.len(), scale.rounds, "{worker:?} in {runtime:?}");
            for r in rounds {
                assert_eq!(r.sequential.samples.len(), scale.sequential_turns);
                assert!(r.concurrent.samples.len() >= scale.clients * scale.min_turns_per_client);
            }
        }
    }
}
