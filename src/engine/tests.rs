//! The engine's faults, timeouts and barge-ins, in virtual time: the clock only moves when every
//! future is waiting, straight to the next timer, so a 10-second silence costs no real time.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::{pending, Future};
use std::pin::pin;
use std::task::{Context, Poll};

use super::*;
use crate::llm::{OpenError, Piece};

/// Virtual milliseconds, and the wake-up times of the timers pending right now.
#[derive(Default)]
struct VirtualClock {
    now: Cell<u64>,
    wakeups: RefCell<Vec<u64>>,
    timers_made: Cell<usize>,
}

struct Sleep<'a> {
    clock: &'a VirtualClock,
    until: u64,
}

impl Future for Sleep<'_> {
    type Output = ();
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        if self.clock.now.get() >= self.until {
            Poll::Ready(())
        } else {
            self.clock.wakeups.borrow_mut().push(self.until);
            Poll::Pending
        }
    }
}

impl Clock for VirtualClock {
    fn now_ms(&self) -> u64 {
        self.now.get()
    }
    fn sleep(&self, ms: u64) -> impl Future<Output = ()> {
        self.timers_made.set(self.timers_made.get() + 1);
        Sleep {
            clock: self,
            until: self.now.get() + ms,
        }
    }
}

impl VirtualClock {
    fn after(&self, ms: u64) -> Sleep<'_> {
        Sleep {
            clock: self,
            until: self.now.get() + ms,
        }
    }

    /// The caller hangs up `at` this many virtual ms after the first poll, or never.
    async fn hang_up_at(&self, at: Option<u64>) {
        match at {
            Some(ms) => self.after(ms).await,
            None => pending().await,
        }
    }

    /// Drives `future` to the end, jumping the clock to the earliest pending timer whenever
    /// nothing can make progress. Panics if the future waits with no timer (a hung turn).
    fn run<F: Future>(&self, future: F) -> F::Output {
        let mut future = pin!(future);
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        loop {
            self.wakeups.borrow_mut().clear();
            if let Poll::Ready(value) = future.as_mut().poll(&mut cx) {
                return value;
            }
            let next = self.wakeups.borrow().iter().copied().min();
            let next = next.expect("the turn waits for nothing that will ever happen");
            self.now.set(next.max(self.now.get()));
        }
    }
}

/// One step of a scripted stream, after a delay in ms.
#[derive(Clone)]
enum Step {
    Text(u64, &'static str),
    /// The last piece, with its finish reason.
    Last(u64, &'static str, &'static str),
    Fail(u64, Failure),
    /// The body ends (cleanly) here.
    End(u64),
    /// Nothing more, ever.
    Hang,
}

/// The answer to one `open`: after a delay, a stream or an error; `None` never answers.
type Answer = Option<(u64, Result<Vec<Step>, OpenError>)>;

struct FakeModel<'a> {
    clock: &'a VirtualClock,
    answers: VecDeque<Answer>,
}

struct FakeStream<'a> {
    clock: &'a VirtualClock,
    steps: VecDeque<Step>,
}

impl<'a> Model for FakeModel<'a> {
    type Stream = FakeStream<'a>;
    async fn open(&mut self) -> Result<FakeStream<'a>, OpenError> {
        let Some(Some((delay, answer))) = self.answers.pop_front() else {
            return pending().await;
        };
        self.clock.after(delay).await;
        answer.map(|steps| FakeStream {
            clock: self.clock,
            steps: steps.into(),
        })
    }
}

/// A piece of reply text, with the finish reason when it is the last (`SAFETY` and
/// `RECITATION` are policy stops).
fn piece(text: &str, finish: Option<&str>) -> Piece {
    Piece {
        text: text.to_string(),
        finish: finish.map(|reason| Finish {
            reason: reason.to_string(),
            policy: matches!(reason, "SAFETY" | "RECITATION"),
            token_limit: matches!(reason, "MAX_TOKENS" | "length"),
        }),
    }
}

impl ReplyStream for FakeStream<'_> {
    async fn next(&mut self) -> Result<Option<Piece>, Failure> {
        match self.steps.pop_front() {
            Some(Step::Text(delay, text)) => {
                self.clock.after(delay).await;
                Ok(Some(piece(text, None)))
            }
            Some(Step::Last(delay, text, reason)) => {
                self.clock.after(delay).await;
                Ok(Some(piece(text, Some(reason))))
            }
            Some(Step::Fail(delay, failure)) => {
                self.clock.after(delay).await;
                Err(failure)
            }
            Some(Step::End(delay)) => {
                self.clock.after(delay).await;
                Ok(None)
            }
            Some(Step::Hang) => pending().await,
            None => Ok(None),
        }
    }
}

/// Records what was spoken and when; refuses every write after `accepts` of them.
struct FakeSpeaker<'a> {
    clock: &'a VirtualClock,
    accepts: usize,
    heard: Vec<(u64, String)>,
}

impl Speaker for FakeSpeaker<'_> {
    async fn speak(&mut self, text: &str) -> bool {
        if self.heard.len() == self.accepts {
            return false;
        }
        self.heard.push((self.clock.now_ms(), text.to_string()));
        true
    }
}

const SILENCE: u64 = 2000;
const TURN: u64 = 60_000;
const MAX_CHARS: usize = 2000;

fn ok(steps: Vec<Step>) -> Answer {
    Some((5, Ok(steps)))
}

fn status(code: u16, retryable: bool) -> Answer {
    Some((
        5,
        Err(OpenError {
            failure: Failure::Http(code),
            retryable,
        }),
    ))
}

fn hello() -> Vec<Step> {
    vec![Step::Text(1, "Hello"), Step::Last(1, " there.", "STOP")]
}

/// A scripted turn and what must come of it.
struct Case {
    name: &'static str,
    answers: Vec<Answer>,
    /// Speaker writes accepted before the caller is gone.
    accepts: usize,
    /// When the caller hangs up while we wait, if ever.
    hangup_at: Option<u64>,
    ending: Ending,
    /// Everything the caller heard, joined.
    heard: String,
    attempts: u32,
}

impl Case {
    fn new(name: &'static str, answers: Vec<Answer>, ending: Ending, heard: &str) -> Case {
        Case {
            name,
            answers,
            accepts: usize::MAX,
            hangup_at: None,
            ending,
            heard: heard.to_string(),
            attempts: 1,
        }
    }
    fn attempts(mut self, n: u32) -> Case {
        self.attempts = n;
        self
    }
    fn accepts(mut self, n: usize) -> Case {
        self.accepts = n;
        self
    }
    fn hangup_at(mut self, ms: u64) -> Case {
        self.hangup_at = Some(ms);
        self
    }
}

struct Run {
    outcome: TurnOutcome,
    heard: Vec<(u64, String)>,
    timers_made: usize,
}

fn play(answers: Vec<Answer>, accepts: usize, hangup_at: Option<u64>) -> Run {
    play_within(
        Limits::new(SILENCE, TURN, MAX_CHARS),
        answers,
        accepts,
        hangup_at,
    )
}

fn play_within(
    limits: Limits,
    answers: Vec<Answer>,
    accepts: usize,
    hangup_at: Option<u64>,
) -> Run {
    let clock = VirtualClock::default();
    let mut model = FakeModel {
        clock: &clock,
        answers: answers.into(),
    };
    let mut speaker = FakeSpeaker {
        clock: &clock,
        accepts,
        heard: Vec::new(),
    };
    let hangup = clock.hang_up_at(hangup_at);
    let outcome = clock.run(run(&mut model, &mut speaker, &clock, hangup, limits));
    Run {
        outcome,
        heard: speaker.heard,
        timers_made: clock.timers_made.get(),
    }
}

fn heard_text(heard: &[(u64, String)]) -> String {
    heard.iter().map(|(_, text)| text.as_str()).collect()
}

#[test]
fn every_turn_ends_as_scripted() {
    let failed = |f| Ending::Failed(f);
    let cases = vec![
        Case::new(
            "a plain reply",
            vec![ok(hello())],
            Ending::Complete,
            "Hello there.",
        ),
        Case::new(
            "markdown never reaches the speaker",
            vec![ok(vec![
                Step::Text(1, "**Chey"),
                Step::Last(1, "enne**.\n", "STOP"),
            ])],
            Ending::Complete,
            "Cheyenne.",
        ),
        Case::new(
            "503 then success is retried once, silently",
            vec![status(503, true), ok(hello())],
            Ending::Complete,
            "Hello there.",
        )
        .attempts(2),
        Case::new(
            "429 twice: one retry, then an apology",
            vec![status(429, true), status(429, true)],
            failed(Failure::Http(429)),
            APOLOGY_BEFORE_REPLY,
        )
        .attempts(2),
        Case::new(
            "400 is not retried",
            vec![status(400, false), ok(hello())],
            failed(Failure::Http(400)),
            APOLOGY_BEFORE_REPLY,
        ),
        Case::new(
            "no retry when the caller's wait leaves no room for one",
            vec![
                Some((
                    SILENCE - 300,
                    Err(OpenError {
                        failure: Failure::Http(503),
                        retryable: true,
                    }),
                )),
                ok(hello()),
            ],
            failed(Failure::Http(503)),
            APOLOGY_BEFORE_REPLY,
        ),
        Case::new(
            "an error inside the stream after some words",
            vec![ok(vec![
                Step::Text(1, "The answer is"),
                Step::Fail(1, Failure::StreamError),
            ])],
            failed(Failure::StreamError),
            &format!("The answer is {APOLOGY_MID_REPLY}"),
        ),
        Case::new(
            "a blocked prompt",
            vec![ok(vec![Step::Fail(1, Failure::Blocked)])],
            failed(Failure::Blocked),
            APOLOGY_BEFORE_REPLY,
        ),
        Case::new(
            "a safety stop without words",
            vec![ok(vec![Step::Last(1, "", "SAFETY")])],
            failed(Failure::NothingSpoken),
            APOLOGY_BEFORE_REPLY,
        ),
        Case::new(
            "a reply of nothing speakable",
            vec![ok(vec![Step::Text(1, "**"), Step::Last(1, " \n", "STOP")])],
            failed(Failure::NothingSpoken),
            APOLOGY_BEFORE_REPLY,
        ),
        Case::new(
            "a reply of punctuation only",
            vec![ok(vec![Step::Last(1, "…...", "STOP")])],
            failed(Failure::NothingSpoken),
            &format!("…... {APOLOGY_BEFORE_REPLY}"),
        ),
        Case::new(
            "the body ends without a finish reason",
            vec![ok(vec![Step::Text(1, "Half a"), Step::End(1)])],
            failed(Failure::Truncated),
            &format!("Half a {APOLOGY_MID_REPLY}"),
        ),
        Case::new(
            "no answer at all",
            vec![None],
            failed(Failure::Timeout),
            APOLOGY_BEFORE_REPLY,
        ),
        Case::new(
            "silence mid-stream",
            vec![ok(vec![Step::Text(1, "Let me think"), Step::Hang])],
            failed(Failure::Timeout),
            &format!("Let me think {APOLOGY_MID_REPLY}"),
        ),
        Case::new(
            "barge-in: the caller is gone after two writes",
            vec![ok(vec![
                Step::Text(1, "One."),
                Step::Text(1, " Two."),
                Step::Last(1, " Three.", "STOP"),
            ])],
            Ending::Interrupted,
            "One. Two.",
        )
        .accepts(2),
        Case::new(
            "a failure after the caller left owes no audible apology",
            vec![ok(vec![
                Step::Text(1, "Well"),
                Step::Fail(1, Failure::Network),
            ])],
            failed(Failure::Network),
            "Well",
        )
        .accepts(1),
        Case::new(
            "a hang-up while the model is silent",
            vec![None],
            Ending::Interrupted,
            "",
        )
        .hangup_at(300),
    ];
    for case in cases {
        let run = play(case.answers, case.accepts, case.hangup_at);
        assert_eq!(run.outcome.ending, case.ending, "{}", case.name);
        assert_eq!(heard_text(&run.heard), case.heard, "{}", case.name);
        assert_eq!(run.outcome.attempts, case.attempts, "{}", case.name);
    }
}

#[test]
fn the_apology_is_stored_as_what_was_heard() {
    let run = play(vec![status(400, false)], usize::MAX, None);
    assert_eq!(run.outcome.spoken, "");
    assert_eq!(run.outcome.heard(), APOLOGY_BEFORE_REPLY);
    assert_eq!(run.outcome.ending.status(), ReplyStatus::Failed);

    let run = play(
        vec![ok(vec![Step::Text(1, "Half a"), Step::End(1)])],
        usize::MAX,
        None,
    );
    assert_eq!(run.outcome.spoken, "Half a");
    assert_eq!(run.outcome.heard(), format!("Half a {APOLOGY_MID_REPLY}"));

    let interrupted = play(vec![ok(hello())], 1, None);
    assert_eq!(interrupted.outcome.heard(), "Hello");
    assert_eq!(
        interrupted.outcome.ending.status(),
        ReplyStatus::Interrupted
    );
    assert_eq!(interrupted.outcome.closing, None);
}

#[test]
fn the_caller_waits_at_most_the_silence_limit_for_the_apology() {
    // Nothing at all: the apology comes exactly when the silence runs out.
    let run = play(vec![None], usize::MAX, None);
    assert_eq!(run.heard, vec![(SILENCE, APOLOGY_BEFORE_REPLY.to_string())]);
    assert_eq!(run.outcome.first_speech_at_ms, Some(SILENCE));

    // A failed attempt, a retry that hangs: still one silence in all, not one per wait.
    let run = play(vec![status(503, true), None], usize::MAX, None);
    assert_eq!(run.outcome.attempts, 2);
    assert_eq!(run.heard, vec![(SILENCE, APOLOGY_BEFORE_REPLY.to_string())]);

    // Words, then silence: the wait restarts at the last words.
    let run = play(
        vec![ok(vec![Step::Text(700, "Let me think"), Step::Hang])],
        usize::MAX,
        None,
    );
    let first = 5 + 700;
    assert_eq!(run.heard[0], (first, "Let me think".to_string()));
    assert_eq!(run.heard[1].0, first + SILENCE);
}

#[test]
fn pieces_with_nothing_speakable_do_not_hold_off_the_apology() {
    let mut steps = vec![];
    for _ in 0..20 {
        steps.push(Step::Text(500, ""));
        steps.push(Step::Text(0, "**"));
    }
    steps.push(Step::Last(500, "Finally.", "STOP"));
    let run = play(vec![ok(steps)], usize::MAX, None);
    assert_eq!(run.outcome.ending, Ending::Failed(Failure::Timeout));
    assert_eq!(run.heard, vec![(SILENCE, APOLOGY_BEFORE_REPLY.to_string())]);
}

#[test]
fn steady_speech_keeps_a_long_reply_alive() {
    // Each piece comes 1.5 s after the last: never a 2 s silence, 7.5 s in all.
    let steps: Vec<Step> = (0..5)
        .map(|_| Step::Text(1500, "More. "))
        .chain([Step::Last(1, "Done.", "STOP")])
        .collect();
    let run = play(vec![ok(steps)], usize::MAX, None);
    assert_eq!(run.outcome.ending, Ending::Complete);
    assert_eq!(
        heard_text(&run.heard),
        "More. More. More. More. More. Done."
    );
}

#[test]
fn a_fast_stream_costs_one_timer_not_one_per_piece() {
    let steps: Vec<Step> = (0..200)
        .map(|_| Step::Text(0, "word "))
        .chain([Step::Last(0, "end.", "STOP")])
        .collect();
    let run = play(vec![ok(steps)], usize::MAX, None);
    assert_eq!(run.outcome.ending, Ending::Complete);
    assert_eq!(run.timers_made, 1);
}

#[test]
fn endings_name_their_status_outcome_and_apology() {
    let table = [
        (Ending::Complete, ReplyStatus::Complete, "complete", None),
        (
            Ending::Interrupted,
            ReplyStatus::Interrupted,
            "interrupted",
            None,
        ),
        (
            Ending::Failed(Failure::Timeout),
            ReplyStatus::Failed,
            "failed",
            Some(APOLOGY_BEFORE_REPLY),
        ),
    ];
    for (ending, status, outcome, apology) in table {
        assert_eq!(ending.status(), status);
        assert_eq!(ending.outcome(), outcome);
        assert_eq!(ending.closing(""), apology);
    }
    assert_eq!(
        Ending::Failed(Failure::Http(503)).closing("Some words"),
        Some(APOLOGY_MID_REPLY)
    );
    assert_eq!(
        Ending::Cut(Cut::Length).closing("Words"),
        Some(CLOSE_AFTER_CUT)
    );
    assert_eq!(Ending::Cut(Cut::Length).status(), ReplyStatus::Complete);
    assert_eq!(Ending::Cut(Cut::TurnTime).outcome(), "cut");
    assert_eq!(Failure::Http(503).label(), "http_503");
}

#[test]
fn an_endless_stream_is_cut_at_the_turn_limit_and_closed() {
    // Text every 100 ms, never a finish reason.
    let steps: Vec<Step> = (0..10_000).map(|_| Step::Text(100, "and ")).collect();
    let limits = Limits::new(SILENCE, 5_000, usize::MAX);
    let run = play_within(limits, vec![ok(steps)], usize::MAX, None);
    assert_eq!(run.outcome.ending, Ending::Cut(Cut::TurnTime));
    let (closed_at, close) = run.heard.last().cloned().unwrap();
    assert_eq!(close, format!(" {CLOSE_AFTER_CUT}"));
    assert!(closed_at <= 5_000, "closed at {closed_at}");
    assert_eq!(
        run.outcome.heard(),
        format!("{} {CLOSE_AFTER_CUT}", run.outcome.spoken)
    );
    assert_eq!(run.outcome.ending.status(), ReplyStatus::Complete);
}

#[test]
fn a_reply_past_the_length_cap_is_cut_at_a_word_and_closed() {
    let steps = vec![
        Step::Text(1, "One two three "),
        Step::Text(1, "four five six seven"),
        Step::Last(1, " eight.", "STOP"),
    ];
    let limits = Limits::new(SILENCE, TURN, 22);
    let run = play_within(limits, vec![ok(steps)], usize::MAX, None);
    assert_eq!(run.outcome.ending, Ending::Cut(Cut::Length));
    assert_eq!(run.outcome.spoken, "One two three four");
    assert_eq!(
        heard_text(&run.heard),
        format!("One two three four {CLOSE_AFTER_CUT}")
    );
}

#[test]
fn a_policy_stop_mid_sentence_gets_a_close_but_not_after_a_full_stop() {
    let mid = play(
        vec![ok(vec![
            Step::Text(1, "The recipe needs"),
            Step::Last(1, "", "SAFETY"),
        ])],
        usize::MAX,
        None,
    );
    assert_eq!(mid.outcome.ending, Ending::Cut(Cut::Policy));
    assert_eq!(
        heard_text(&mid.heard),
        format!("The recipe needs {CLOSE_AFTER_CUT}")
    );
    assert_eq!(mid.outcome.finish_reason.as_deref(), Some("SAFETY"));

    let whole = play(
        vec![ok(vec![Step::Last(
            1,
            "That is all I can say.",
            "RECITATION",
        )])],
        usize::MAX,
        None,
    );
    assert_eq!(whole.outcome.ending, Ending::Complete);
    assert_eq!(heard_text(&whole.heard), "That is all I can say.");
}

#[test]
fn words_fit_the_room_left() {
    let table = [
        ("hello world", 100, ("hello world", false)),
        ("hello world", 11, ("hello world", false)),
        ("hello world", 8, ("hello", true)),
        ("hello world", 3, ("", true)),
        ("héllo wörld", 7, ("héllo", true)),
        ("", 0, ("", false)),
    ];
    for (text, room, expected) in table {
        assert_eq!(fit_words(text, room), expected, "{text:?} in {room}");
    }
}

mod failover;
mod summary;
mod tools;

#[test]
fn a_reply_whose_end_the_caller_never_took_is_interrupted_and_unheard_at_first() {
    let outcome = |ending: Ending, spoken: &str, closing: Option<&'static str>| TurnOutcome {
        ending,
        spoken: spoken.to_string(),
        closing,
        finish_reason: None,
        attempts: 1,
        first_speech_at_ms: Some(0),
        tools: ToolLog::default(),
        abandoned: Vec::new(),
    };
    let failed = || Ending::Failed(Failure::Timeout);
    // (ending, spoken, closing, end taken, frames taken) → (outcome, what is stored)
    type Row = (
        Ending,
        &'static str,
        Option<&'static str>,
        bool,
        usize,
        &'static str,
        &'static str,
    );
    let table: [Row; 7] = [
        // The caller took the end: as it was.
        (
            Ending::Complete,
            "Hi there.",
            None,
            true,
            1,
            "complete",
            "Hi there.",
        ),
        (
            failed(),
            "",
            Some(APOLOGY_BEFORE_REPLY),
            true,
            1,
            "failed",
            APOLOGY_BEFORE_REPLY,
        ),
        // Gone before the end, after one frame: nothing is known to have been heard.
        (
            Ending::Complete,
            "Hi there.",
            None,
            false,
            1,
            "interrupted",
            "",
        ),
        (
            failed(),
            "",
            Some(APOLOGY_BEFORE_REPLY),
            false,
            1,
            "interrupted",
            "",
        ),
        (Ending::Interrupted, "Hi", None, false, 1, "interrupted", ""),
        (Ending::Complete, "", None, false, 0, "interrupted", ""),
        // Past the first frame, what was sent stays for an interruption context to clamp.
        (
            Ending::Cut(Cut::Length),
            "One two",
            Some(CLOSE_AFTER_CUT),
            false,
            3,
            "interrupted",
            "One two I'll stop there.",
        ),
    ];
    for (ending, spoken, closing, end_taken, frames, expected_outcome, expected_text) in table {
        let label = format!("{ending:?} {spoken:?} {end_taken} {frames}");
        let after = outcome(ending, spoken, closing).after_delivery(end_taken, frames);
        assert_eq!(after.ending.outcome(), expected_outcome, "{label}");
        assert_eq!(after.heard(), expected_text, "{label}");
    }
}
