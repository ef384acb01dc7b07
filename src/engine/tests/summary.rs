//! The summary call in virtual time: the text read to its end, every way it fails, and the
//! deadline.

use super::super::write_summary;
use super::{ok, status, Answer, FakeModel, Step, VirtualClock};
use crate::llm::Failure;

const LIMIT: u64 = 30_000;

/// Runs one summary call against `answers`; the result, when it ended, and the answers left.
fn summarise(answers: Vec<Answer>) -> (Result<String, Failure>, u64, usize) {
    let clock = VirtualClock::default();
    let mut model = FakeModel {
        clock: &clock,
        answers: answers.into(),
    };
    let written = clock.run(write_summary(&mut model, &clock, LIMIT));
    (written, clock.now.get(), model.answers.len())
}

#[test]
fn the_whole_reply_is_the_summary() {
    let (written, at, left) = summarise(vec![ok(vec![
        Step::Text(10, "The caller is Ada."),
        Step::Last(10, " Order 4417.", "STOP"),
    ])]);
    assert_eq!(written, Ok("The caller is Ada. Order 4417.".to_string()));
    assert_eq!((at, left), (25, 0));
    // A cut-off answer (MAX_TOKENS) is kept: `summary::clean` bounds it anyway.
    let (written, _, _) = summarise(vec![ok(vec![Step::Last(1, "Ada.", "MAX_TOKENS")])]);
    assert_eq!(written, Ok("Ada.".to_string()));
}

#[test]
fn a_failed_call_is_not_retried_here() {
    let (written, _, left) = summarise(vec![
        status(503, true),
        ok(vec![Step::Last(1, "Ada.", "STOP")]),
    ]);
    assert_eq!(written, Err(Failure::Http(503)));
    assert_eq!(left, 1, "the second answer is never asked for");
}

#[test]
fn every_other_failure_is_reported() {
    let table = [
        (
            vec![Step::Text(1, "The caller"), Step::End(1)],
            Failure::Truncated,
        ),
        (
            vec![Step::Last(1, "The caller", "SAFETY")],
            Failure::Blocked,
        ),
        (vec![Step::Last(1, "  ", "STOP")], Failure::NothingSpoken),
        (
            vec![Step::Text(1, "The caller"), Step::Fail(1, Failure::Network)],
            Failure::Network,
        ),
    ];
    for (steps, failure) in table {
        let (written, _, _) = summarise(vec![ok(steps)]);
        assert_eq!(written, Err(failure));
    }
}

#[test]
fn the_call_gives_up_at_its_deadline() {
    // No answer at all, then a stream that stalls mid-way: both end exactly at the limit.
    let (written, at, _) = summarise(vec![None]);
    assert_eq!((written, at), (Err(Failure::Timeout), LIMIT));
    let (written, at, _) = summarise(vec![ok(vec![Step::Text(10, "The caller"), Step::Hang])]);
    assert_eq!((written, at), (Err(Failure::Timeout), LIMIT));
}

#[test]
fn a_stream_that_keeps_going_is_cut() {
    let endless: &'static str = Box::leak("word ".repeat(20_000).into_boxed_str());
    let (written, _, _) = summarise(vec![ok(vec![Step::Text(1, endless), Step::Hang])]);
    assert_eq!(written.map(|text| text.len()), Ok(endless.len()));
}
