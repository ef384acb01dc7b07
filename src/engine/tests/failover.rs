//! Failover along a chain of models, in virtual time: which failures move the turn to the next
//! model and which do not, the first-token bounds, the silence bound over the whole chain, the
//! abandoned request aborted, and the token-limit cut (issue 22, item 5).

use std::collections::VecDeque;
use std::future::pending;

use serde_json::{json, Value};

use super::super::*;
use super::{heard_text, piece, FakeSpeaker, VirtualClock};
use crate::llm::{FunctionCall, ModelStep, OpenError, Piece};

const SILENCE: u64 = 10_000;

/// One step of a scripted stream, after a delay in ms.
#[derive(Clone)]
enum S {
    Text(u64, &'static str),
    Last(u64, &'static str, &'static str),
    /// A function call (the model answered, though nothing is spoken).
    Call(u64, &'static str),
    Fail(u64, Failure),
    End(u64),
    Hang,
}

/// How one model of the chain answers one `open`: after a delay, a stream or an error;
/// `None` never answers.
type Answer = Option<(u64, Result<Vec<S>, OpenError>)>;

struct Entry {
    first_token_ms: Option<u64>,
    answers: VecDeque<Answer>,
}

fn entry(first_token_ms: Option<u64>, answers: Vec<Answer>) -> Entry {
    Entry {
        first_token_ms,
        answers: answers.into(),
    }
}

struct FakeChain<'a> {
    clock: &'a VirtualClock,
    entries: Vec<Entry>,
    current: usize,
    /// Each `open`, by entry index.
    opened: Vec<usize>,
    /// Entries whose requests were aborted by `fail_over`.
    aborted: Vec<usize>,
}

struct Stream<'a> {
    clock: &'a VirtualClock,
    steps: VecDeque<S>,
    step: ModelStep,
}

impl<'a> Model for FakeChain<'a> {
    type Stream = Stream<'a>;
    async fn open(&mut self) -> Result<Stream<'a>, OpenError> {
        self.opened.push(self.current);
        let answer = self.entries[self.current].answers.pop_front();
        let Some(Some((delay, answer))) = answer else {
            return pending().await;
        };
        self.clock.after(delay).await;
        answer.map(|steps| Stream {
            clock: self.clock,
            steps: steps.into(),
            step: ModelStep::default(),
        })
    }
    fn first_token_ms(&self) -> Option<u64> {
        self.entries[self.current].first_token_ms
    }
    fn fail_over(&mut self) -> bool {
        if self.current + 1 >= self.entries.len() {
            return false;
        }
        self.aborted.push(self.current);
        self.current += 1;
        true
    }
}

impl ReplyStream for Stream<'_> {
    async fn next(&mut self) -> Result<Option<Piece>, Failure> {
        match self.steps.pop_front() {
            Some(S::Text(delay, text)) => {
                self.clock.after(delay).await;
                Ok(Some(piece(text, None)))
            }
            Some(S::Last(delay, text, reason)) => {
                self.clock.after(delay).await;
                Ok(Some(piece(text, Some(reason))))
            }
            Some(S::Call(delay, name)) => {
                self.clock.after(delay).await;
                self.step.calls.push(FunctionCall {
                    id: Some(format!("id_{name}")),
                    name: name.to_string(),
                    args: json!({}),
                });
                Ok(Some(piece("", None)))
            }
            Some(S::Fail(delay, failure)) => {
                self.clock.after(delay).await;
                Err(failure)
            }
            Some(S::End(delay)) => {
                self.clock.after(delay).await;
                Ok(None)
            }
            Some(S::Hang) => pending().await,
            None => Ok(None),
        }
    }
    fn take_step(&mut self) -> ModelStep {
        std::mem::take(&mut self.step)
    }
    fn calling(&self) -> bool {
        !self.step.calls.is_empty()
    }
}

/// Tools that answer at once.
struct QuickTools;

impl ToolRunner for QuickTools {
    fn prepare(&self, _call: &FunctionCall) -> Result<CallPlan, String> {
        Ok(CallPlan {
            timeout_ms: 1_000,
            filler: None,
            after_reply: None,
        })
    }
    fn call_id(&self, round: u32, index: usize) -> String {
        format!("{round}_{index}")
    }
    async fn run(&self, _call_id: &str, _call: &FunctionCall) -> Result<Value, String> {
        Ok(json!("done"))
    }
}

struct Played {
    outcome: TurnOutcome,
    heard: Vec<(u64, String)>,
    opened: Vec<usize>,
    aborted: Vec<usize>,
}

fn play(entries: Vec<Entry>, tools: bool) -> Played {
    play_with(entries, tools, usize::MAX, None)
}

fn play_with(entries: Vec<Entry>, tools: bool, accepts: usize, hangup_at: Option<u64>) -> Played {
    let clock = VirtualClock::default();
    let mut model = FakeChain {
        clock: &clock,
        entries,
        current: 0,
        opened: Vec::new(),
        aborted: Vec::new(),
    };
    let mut speaker = FakeSpeaker {
        clock: &clock,
        accepts,
        heard: Vec::new(),
    };
    let limits = Limits::new(SILENCE, 60_000, 2_000);
    let hangup = clock.hang_up_at(hangup_at);
    let outcome = if tools {
        clock.run(run_with_tools(
            &mut model,
            &mut speaker,
            &clock,
            hangup,
            limits,
            &QuickTools,
            ToolLimits::new(4),
        ))
    } else {
        clock.run(run(&mut model, &mut speaker, &clock, hangup, limits))
    };
    Played {
        outcome,
        heard: speaker.heard,
        opened: model.opened,
        aborted: model.aborted,
    }
}

fn ok(steps: Vec<S>) -> Answer {
    Some((5, Ok(steps)))
}

fn fails(failure: Failure, retryable: bool) -> Answer {
    Some((5, Err(OpenError { failure, retryable })))
}

fn hello() -> Vec<S> {
    vec![S::Text(1, "Hello"), S::Last(1, " there.", "STOP")]
}

fn abandoned(failures: &[(Failure, u64)]) -> Vec<Abandoned> {
    failures
        .iter()
        .map(|(failure, ms)| Abandoned {
            failure: failure.clone(),
            ms: *ms,
        })
        .collect()
}

#[test]
fn failures_before_the_first_word_move_on_and_others_do_not() {
    let moves_on = [
        Failure::Http(401),
        Failure::Http(403),
        Failure::Http(404),
        Failure::Http(408),
        Failure::Http(429),
        Failure::Http(500),
        Failure::Http(503),
        Failure::Unreachable,
        Failure::MissingApiKey,
        Failure::NoBody,
    ];
    for failure in moves_on {
        let retryable = matches!(
            failure,
            Failure::Http(429 | 500 | 503) | Failure::Unreachable
        );
        let played = play(
            vec![
                entry(None, vec![fails(failure.clone(), retryable)]),
                entry(None, vec![ok(hello())]),
            ],
            false,
        );
        assert_eq!(played.outcome.ending, Ending::Complete, "{failure:?}");
        assert_eq!(heard_text(&played.heard), "Hello there.", "{failure:?}");
        assert_eq!(
            played.opened,
            vec![0, 1],
            "no retry of A first: {failure:?}"
        );
        assert_eq!(played.aborted, vec![0], "{failure:?}");
        assert_eq!(played.outcome.abandoned, abandoned(&[(failure, 5)]));
        assert_eq!(played.outcome.attempts, 2);
    }
    // Our own bad request, or a redirect, would fail the same way anywhere.
    for status in [400, 307, 413] {
        let played = play(
            vec![
                entry(None, vec![fails(Failure::Http(status), false)]),
                entry(None, vec![ok(hello())]),
            ],
            false,
        );
        assert_eq!(played.outcome.ending, Ending::Failed(Failure::Http(status)));
        assert_eq!(heard_text(&played.heard), APOLOGY_BEFORE_REPLY);
        assert_eq!(played.opened, vec![0]);
        assert!(played.outcome.abandoned.is_empty());
    }
}

#[test]
fn streams_that_end_or_break_with_nothing_speakable_move_on() {
    let cases: Vec<(Vec<S>, Failure)> = vec![
        (vec![S::Last(1, "", "STOP")], Failure::NothingSpoken),
        (
            vec![S::Text(1, "**"), S::Last(1, "", "STOP")],
            Failure::NothingSpoken,
        ),
        (vec![S::Text(1, ""), S::End(1)], Failure::Truncated),
        (vec![S::Fail(1, Failure::Network)], Failure::Network),
        (vec![S::Fail(1, Failure::StreamError)], Failure::StreamError),
        (
            vec![S::Fail(1, Failure::UnreadableEvent)],
            Failure::UnreadableEvent,
        ),
        (
            vec![S::Fail(1, Failure::IncompleteStream)],
            Failure::IncompleteStream,
        ),
    ];
    for (steps, failure) in cases {
        let played = play(
            vec![entry(None, vec![ok(steps)]), entry(None, vec![ok(hello())])],
            false,
        );
        assert_eq!(played.outcome.ending, Ending::Complete, "{failure:?}");
        assert_eq!(heard_text(&played.heard), "Hello there.", "{failure:?}");
        assert_eq!(played.aborted, vec![0], "{failure:?}");
        assert_eq!(played.outcome.abandoned.len(), 1);
        assert_eq!(played.outcome.abandoned[0].failure, failure);
    }
}

#[test]
fn never_after_the_first_word() {
    let played = play(
        vec![
            entry(
                None,
                vec![ok(vec![
                    S::Text(1, "The answer is"),
                    S::Fail(1, Failure::Network),
                ])],
            ),
            entry(None, vec![ok(hello())]),
        ],
        false,
    );
    assert_eq!(played.outcome.ending, Ending::Failed(Failure::Network));
    assert_eq!(
        heard_text(&played.heard),
        format!("The answer is {APOLOGY_MID_REPLY}")
    );
    assert_eq!(played.opened, vec![0]);
    assert!(played.aborted.is_empty() && played.outcome.abandoned.is_empty());

    // Nor when the stream ends after words without a finish.
    let played = play(
        vec![
            entry(None, vec![ok(vec![S::Text(1, "Half a"), S::End(1)])]),
            entry(None, vec![ok(hello())]),
        ],
        false,
    );
    assert_eq!(played.outcome.ending, Ending::Failed(Failure::Truncated));
    assert_eq!(played.opened, vec![0]);
}

#[test]
fn never_on_a_refusal() {
    let refusals: Vec<(Vec<S>, Ending, String)> = vec![
        (
            vec![S::Fail(1, Failure::Blocked)],
            Ending::Failed(Failure::Blocked),
            APOLOGY_BEFORE_REPLY.to_string(),
        ),
        (
            vec![S::Last(1, "", "SAFETY")],
            Ending::Failed(Failure::NothingSpoken),
            APOLOGY_BEFORE_REPLY.to_string(),
        ),
        (
            vec![S::Last(1, "I can't help with", "SAFETY")],
            Ending::Cut(Cut::Policy),
            format!("I can't help with {CLOSE_AFTER_CUT}"),
        ),
    ];
    for (steps, ending, heard) in refusals {
        let played = play(
            vec![entry(None, vec![ok(steps)]), entry(None, vec![ok(hello())])],
            false,
        );
        assert_eq!(played.outcome.ending, ending);
        assert_eq!(heard_text(&played.heard), heard);
        assert_eq!(played.opened, vec![0], "the other model is never asked");
    }
}

#[test]
fn never_after_a_tool_call() {
    // Round 1 calls a tool; round 2 fails: the apology, not the next model.
    let played = play(
        vec![
            entry(
                None,
                vec![
                    ok(vec![S::Call(1, "lookup"), S::Last(1, "", "STOP")]),
                    fails(Failure::Http(503), true),
                    fails(Failure::Http(503), true),
                ],
            ),
            entry(None, vec![ok(hello())]),
        ],
        true,
    );
    assert_eq!(played.outcome.ending, Ending::Failed(Failure::Http(503)));
    // As before chains: a turn's requests share one retry, spent by then.
    assert_eq!(played.opened, vec![0, 0], "A again, never B");
    assert!(played.aborted.is_empty());
    assert_eq!(played.outcome.tools.calls.len(), 1);

    // A call that began before a break is no call made: the next model is asked.
    let played = play(
        vec![
            entry(
                None,
                vec![ok(vec![S::Call(1, "lookup"), S::Fail(1, Failure::Network)])],
            ),
            entry(None, vec![ok(hello())]),
        ],
        true,
    );
    assert_eq!(played.outcome.ending, Ending::Complete);
    assert_eq!(played.opened, vec![0, 1]);
    assert!(played.outcome.tools.calls.is_empty());
}

#[test]
fn a_model_silent_past_its_first_token_bound_is_abandoned() {
    // Hangs before answering.
    let played = play(
        vec![
            entry(Some(1_500), vec![None]),
            entry(None, vec![ok(hello())]),
        ],
        false,
    );
    assert_eq!(played.outcome.ending, Ending::Complete);
    assert_eq!(played.aborted, vec![0]);
    assert_eq!(
        played.outcome.abandoned,
        abandoned(&[(Failure::FirstTokenTimeout, 1_500)])
    );
    assert_eq!(played.heard[0], (1_500 + 5 + 1, "Hello".to_string()));

    // Streams only what is never spoken (reasoning, markdown), then hangs.
    let played = play(
        vec![
            entry(
                Some(1_500),
                vec![ok(vec![
                    S::Text(400, ""),
                    S::Text(400, "**"),
                    S::Text(400, ""),
                    S::Hang,
                ])],
            ),
            entry(None, vec![ok(hello())]),
        ],
        false,
    );
    assert_eq!(played.outcome.ending, Ending::Complete);
    assert_eq!(
        played.outcome.abandoned[0].failure,
        Failure::FirstTokenTimeout
    );
    assert_eq!(played.outcome.abandoned[0].ms, 1_500);

    // A first word in time keeps the model, however slow the rest.
    let played = play(
        vec![
            entry(
                Some(1_500),
                vec![ok(vec![
                    S::Text(1_000, "Well"),
                    S::Text(4_000, ", yes."),
                    S::Last(1, "", "STOP"),
                ])],
            ),
            entry(None, vec![ok(hello())]),
        ],
        false,
    );
    assert_eq!(played.outcome.ending, Ending::Complete);
    assert_eq!(heard_text(&played.heard), "Well, yes.");
    assert_eq!(played.opened, vec![0]);

    // A tool call in time counts as the first token too.
    let played = play(
        vec![
            entry(
                Some(1_500),
                vec![
                    ok(vec![S::Call(1_000, "lookup"), S::Last(1_000, "", "STOP")]),
                    ok(hello()),
                ],
            ),
            entry(None, vec![ok(hello())]),
        ],
        true,
    );
    assert_eq!(played.outcome.ending, Ending::Complete);
    assert_eq!(played.opened, vec![0, 0]);
    assert!(played.outcome.abandoned.is_empty());
}

#[test]
fn the_silence_bound_covers_the_whole_chain() {
    // Three models that never answer: the caller hears the apology when the silence runs out,
    // not after three bounds.
    let played = play(
        vec![
            entry(Some(4_000), vec![None]),
            entry(Some(4_000), vec![None]),
            entry(None, vec![None]),
        ],
        false,
    );
    assert_eq!(played.outcome.ending, Ending::Failed(Failure::Timeout));
    assert_eq!(
        played.heard,
        vec![(SILENCE, APOLOGY_BEFORE_REPLY.to_string())]
    );
    assert_eq!(played.opened, vec![0, 1, 2]);
    assert_eq!(
        played.outcome.abandoned,
        abandoned(&[
            (Failure::FirstTokenTimeout, 4_000),
            (Failure::FirstTokenTimeout, 4_000)
        ])
    );

    // A first-token bound past the silence never outlasts it.
    let played = play(
        vec![
            entry(Some(60_000), vec![None]),
            entry(None, vec![ok(hello())]),
        ],
        false,
    );
    assert_eq!(played.outcome.ending, Ending::Failed(Failure::Timeout));
    assert_eq!(
        played.heard,
        vec![(SILENCE, APOLOGY_BEFORE_REPLY.to_string())]
    );
    assert_eq!(played.opened, vec![0]);

    // Every model fails at once: the apology right away.
    let played = play(
        vec![
            entry(None, vec![fails(Failure::Http(401), false)]),
            entry(
                None,
                vec![
                    fails(Failure::Http(429), true),
                    fails(Failure::Http(429), true),
                ],
            ),
        ],
        false,
    );
    assert_eq!(played.outcome.ending, Ending::Failed(Failure::Http(429)));
    assert_eq!(
        played.opened,
        vec![0, 1, 1],
        "the last model keeps its one retry"
    );
    assert!(played.heard[0].0 < 1_000);
    assert_eq!(heard_text(&played.heard), APOLOGY_BEFORE_REPLY);
}

#[test]
fn the_last_model_keeps_its_own_first_token_bound() {
    let played = play(
        vec![
            entry(None, vec![fails(Failure::Http(503), false)]),
            entry(Some(2_000), vec![None]),
        ],
        false,
    );
    assert_eq!(
        played.outcome.ending,
        Ending::Failed(Failure::FirstTokenTimeout)
    );
    assert_eq!(
        played.heard,
        vec![(5 + 2_000, APOLOGY_BEFORE_REPLY.to_string())]
    );
}

#[test]
fn a_barge_in_while_the_chain_waits_ends_the_turn() {
    let played = play_with(
        vec![entry(Some(1_000), vec![None]), entry(None, vec![None])],
        false,
        usize::MAX,
        Some(1_500),
    );
    assert_eq!(played.outcome.ending, Ending::Interrupted);
    assert!(played.heard.is_empty());
    assert_eq!(played.opened, vec![0, 1]);
}

#[test]
fn the_failover_decisions() {
    for status in [401, 403, 404, 408, 429, 500, 502, 503, 504, 599] {
        assert!(fails_over(&Failure::Http(status)), "{status}");
    }
    for status in [300, 307, 400, 402, 409, 413, 422, 600] {
        assert!(!fails_over(&Failure::Http(status)), "{status}");
    }
    assert!(!fails_over(&Failure::Blocked), "a refusal");
    assert!(!fails_over(&Failure::Timeout), "the caller's whole wait");
    assert!(!fails_over(&Failure::Storage));
    assert!(fails_over(&Failure::FirstTokenTimeout));
    assert!(fails_over(&Failure::MissingApiKey));
}

#[test]
fn a_reply_cut_by_the_token_limit_is_closed_and_stored_as_heard() {
    for reason in ["MAX_TOKENS", "length"] {
        let played = play(
            vec![entry(
                None,
                vec![ok(vec![
                    S::Text(1, "The thing you asked about"),
                    S::Last(1, " is", reason),
                ])],
            )],
            false,
        );
        assert_eq!(
            played.outcome.ending,
            Ending::Cut(Cut::TokenLimit),
            "{reason}"
        );
        assert_eq!(
            heard_text(&played.heard),
            format!("The thing you asked about is {CLOSE_AFTER_CUT}")
        );
        assert_eq!(
            played.outcome.heard(),
            format!("The thing you asked about is {CLOSE_AFTER_CUT}")
        );
        assert_eq!(played.outcome.ending.status(), ReplyStatus::Complete);
        assert_eq!(played.outcome.finish_reason.as_deref(), Some(reason));

        // The same in a turn with tools, after a tool round.
        let played = play(
            vec![entry(
                None,
                vec![
                    ok(vec![S::Call(1, "lookup"), S::Last(1, "", "STOP")]),
                    ok(vec![S::Text(1, "It says that"), S::Last(1, "", reason)]),
                ],
            )],
            true,
        );
        assert_eq!(
            played.outcome.ending,
            Ending::Cut(Cut::TokenLimit),
            "{reason}"
        );
        assert!(
            played
                .outcome
                .heard()
                .ends_with(&format!("It says that {CLOSE_AFTER_CUT}")),
            "{}",
            played.outcome.heard()
        );
    }
    assert_eq!(Cut::TokenLimit.label(), "token_limit");
    // Not a word: the apology, as for any empty reply (and a chain moves on).
    let played = play(
        vec![entry(None, vec![ok(vec![S::Last(1, "", "MAX_TOKENS")])])],
        false,
    );
    assert_eq!(
        played.outcome.ending,
        Ending::Failed(Failure::NothingSpoken)
    );
}
