//! The tool loop in virtual time: fillers, concurrency, deadlines, barge-in, the round cap and
//! empty answers, and exactly what each follow-up request carries.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::pending;

use serde_json::{json, Value};

use super::super::tool_loop::{
    CANCELLED, DEFAULT_FILLER, INTERRUPTED, STILL_CHECKING, TOOL_FALLBACK,
};
use super::super::*;
use super::{piece, VirtualClock};
use crate::llm::{FunctionCall, FunctionResponse, ModelStep, OpenError, Piece, ToolStep};

/// One piece of a scripted round, after a delay in ms.
#[derive(Clone)]
enum Say {
    Text(u64, &'static str),
    /// A function call part (with the model's id, if any).
    Call(u64, &'static str, Option<&'static str>, Value),
    /// The last piece: an empty, signature-only text part and the finish reason.
    Stop(u64),
}

struct ToolModel<'a> {
    clock: &'a VirtualClock,
    rounds: VecDeque<Vec<Say>>,
    /// Every follow-up: (the steps sent, whether calling was allowed).
    follow_ups: Vec<(Vec<ToolStep>, bool)>,
    opens: u32,
}

struct ToolStream<'a> {
    clock: &'a VirtualClock,
    says: VecDeque<Say>,
    step: ModelStep,
}

impl<'a> Model for ToolModel<'a> {
    type Stream = ToolStream<'a>;
    async fn open(&mut self) -> Result<ToolStream<'a>, OpenError> {
        self.opens += 1;
        let Some(says) = self.rounds.pop_front() else {
            return pending().await;
        };
        Ok(ToolStream {
            clock: self.clock,
            says: says.into(),
            step: ModelStep::default(),
        })
    }
    fn follow_up(&mut self, steps: &[ToolStep], calling_allowed: bool) {
        self.follow_ups.push((steps.to_vec(), calling_allowed));
    }
}

impl ReplyStream for ToolStream<'_> {
    async fn next(&mut self) -> Result<Option<Piece>, Failure> {
        match self.says.pop_front() {
            Some(Say::Text(delay, text)) => {
                self.clock.after(delay).await;
                self.step.parts.push(json!({ "text": text }));
                Ok(Some(piece(text, None)))
            }
            Some(Say::Call(delay, name, id, args)) => {
                self.clock.after(delay).await;
                let mut call = json!({"name": name, "args": args});
                if let Some(id) = id {
                    call["id"] = json!(id);
                }
                self.step
                    .parts
                    .push(json!({"functionCall": call, "thoughtSignature": "c2ln"}));
                self.step.calls.push(FunctionCall {
                    id: id.map(str::to_string),
                    name: name.to_string(),
                    args,
                });
                Ok(Some(piece("", None)))
            }
            Some(Say::Stop(delay)) => {
                self.clock.after(delay).await;
                self.step
                    .parts
                    .push(json!({"text": "", "thoughtSignature": "ZW5k"}));
                Ok(Some(piece("", Some("STOP"))))
            }
            None => Ok(None),
        }
    }
    fn take_step(&mut self) -> ModelStep {
        std::mem::take(&mut self.step)
    }
}

/// How a fake tool answers: after a delay, a result; `None` never answers.
type ToolAnswer = Option<(u64, Result<Value, String>)>;

struct FakeTools<'a> {
    clock: &'a VirtualClock,
    /// name → (timeout_ms, filler, answer).
    tools: Vec<(&'static str, u64, Option<&'static str>, ToolAnswer)>,
    runs: RefCell<Vec<String>>,
    /// Runs dropped before they answered (cancelled).
    dropped: Cell<usize>,
}

struct DropFlag<'a>(&'a Cell<usize>, bool);
impl Drop for DropFlag<'_> {
    fn drop(&mut self) {
        if !self.1 {
            self.0.set(self.0.get() + 1);
        }
    }
}

impl ToolRunner for FakeTools<'_> {
    fn prepare(&self, call: &FunctionCall) -> Result<CallPlan, String> {
        let (_, timeout_ms, filler, _) = self
            .tools
            .iter()
            .find(|t| t.0 == call.name)
            .ok_or_else(|| format!("there is no tool named {}", call.name))?;
        if call.args.get("bad").is_some() {
            return Err("args.bad is not allowed".to_string());
        }
        Ok(CallPlan {
            timeout_ms: *timeout_ms,
            filler: filler.map(str::to_string),
            after_reply: (call.name == "end_call").then(|| json!({"action": "end_call"})),
        })
    }
    fn call_id(&self, round: u32, index: usize) -> String {
        format!("made_{round}_{index}")
    }
    async fn run(&self, call_id: &str, call: &FunctionCall) -> Result<Value, String> {
        self.runs
            .borrow_mut()
            .push(format!("{}:{call_id}", call.name));
        let mut flag = DropFlag(&self.dropped, false);
        let answer = self
            .tools
            .iter()
            .find(|t| t.0 == call.name)
            .and_then(|t| t.3.clone());
        let Some((delay, result)) = answer else {
            return pending().await;
        };
        self.clock.after(delay).await;
        flag.1 = true;
        result
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Heard {
    Tts(u64, String),
    Data(u64, Value),
}

struct Listener<'a> {
    clock: &'a VirtualClock,
    heard: Vec<Heard>,
}

impl Speaker for Listener<'_> {
    async fn speak(&mut self, text: &str) -> bool {
        self.heard
            .push(Heard::Tts(self.clock.now_ms(), text.to_string()));
        true
    }
    async fn data(&mut self, content: &Value) -> bool {
        self.heard
            .push(Heard::Data(self.clock.now_ms(), content.clone()));
        true
    }
}

struct Played {
    outcome: TurnOutcome,
    heard: Vec<Heard>,
    follow_ups: Vec<(Vec<ToolStep>, bool)>,
    runs: Vec<String>,
    dropped: usize,
    opens: u32,
}

fn play(
    rounds: Vec<Vec<Say>>,
    tools: Vec<(&'static str, u64, Option<&'static str>, ToolAnswer)>,
    max_rounds: u32,
    hangup_at: Option<u64>,
) -> Played {
    let clock = VirtualClock::default();
    let mut model = ToolModel {
        clock: &clock,
        rounds: rounds.into(),
        follow_ups: Vec::new(),
        opens: 0,
    };
    let tools = FakeTools {
        clock: &clock,
        tools,
        runs: RefCell::default(),
        dropped: Cell::new(0),
    };
    let mut listener = Listener {
        clock: &clock,
        heard: Vec::new(),
    };
    let hangup = clock.hang_up_at(hangup_at);
    let limits = Limits::new(10_000, 60_000, 2_000);
    let outcome = clock.run(run_with_tools(
        &mut model,
        &mut listener,
        &clock,
        hangup,
        limits,
        &tools,
        ToolLimits::new(max_rounds),
    ));
    Played {
        outcome,
        heard: listener.heard,
        follow_ups: model.follow_ups,
        runs: tools.runs.into_inner(),
        dropped: tools.dropped.get(),
        opens: model.opens,
    }
}

fn spoken(heard: &[Heard]) -> String {
    heard
        .iter()
        .filter_map(|h| match h {
            Heard::Tts(_, text) => Some(text.as_str()),
            Heard::Data(..) => None,
        })
        .collect()
}

fn statuses(heard: &[Heard]) -> Vec<(String, String, String)> {
    heard
        .iter()
        .filter_map(|h| match h {
            Heard::Data(_, d) if d["type"] == "tool" => Some((
                d["name"].as_str()?.to_string(),
                d["call_id"].as_str()?.to_string(),
                d["status"].as_str()?.to_string(),
            )),
            _ => None,
        })
        .collect()
}

fn status(name: &str, id: &str, status: &str) -> (String, String, String) {
    (name.to_string(), id.to_string(), status.to_string())
}

fn hours() -> Value {
    json!({"open": true, "until": "19:00"})
}

fn shop_hours(delay: u64) -> (&'static str, u64, Option<&'static str>, ToolAnswer) {
    ("shop_hours", 5_000, None, Some((delay, Ok(hours()))))
}

/// The built-in `end_call`: silent (no filler), answered at once.
fn end_call() -> (&'static str, u64, Option<&'static str>, ToolAnswer) {
    (
        "end_call",
        5_000,
        Some(""),
        Some((0, Ok(json!({"status": "ok"})))),
    )
}

/// The last thing the caller's app got is the request to hang up.
fn assert_asks_to_hang_up(heard: &[Heard]) {
    let last = heard.last();
    assert!(
        matches!(last, Some(Heard::Data(_, d)) if d == &json!({"action": "end_call"})),
        "{last:?}"
    );
}

#[test]
fn a_call_then_an_answer_speaks_a_filler_and_sends_the_parts_back_verbatim() {
    let played = play(
        vec![
            vec![
                Say::Call(5, "shop_hours", Some("fc_1"), json!({"city": "Paris"})),
                Say::Stop(1),
            ],
            vec![Say::Text(5, "It is open until seven."), Say::Stop(1)],
        ],
        vec![shop_hours(300)],
        4,
        None,
    );
    assert_eq!(played.outcome.ending, Ending::Complete);
    assert_eq!(played.outcome.spoken, "One moment. It is open until seven.");
    assert_eq!(
        spoken(&played.heard),
        format!("{DEFAULT_FILLER} It is open until seven.")
    );
    assert_eq!(
        statuses(&played.heard),
        vec![
            status("shop_hours", "fc_1", "started"),
            status("shop_hours", "fc_1", "done")
        ]
    );
    assert_eq!(played.runs, vec!["shop_hours:fc_1"]);
    assert_eq!(played.follow_ups.len(), 1);
    let (steps, calling_allowed) = &played.follow_ups[0];
    assert!(calling_allowed, "round 2 of 4 may still call");
    assert_eq!(
        steps,
        &vec![ToolStep {
            model_parts: vec![
                json!({"functionCall": {"name": "shop_hours", "args": {"city": "Paris"}, "id": "fc_1"},
                       "thoughtSignature": "c2ln"}),
                json!({"text": "", "thoughtSignature": "ZW5k"}),
            ],
            calls: vec![FunctionCall {
                id: Some("fc_1".into()),
                name: "shop_hours".into(),
                args: json!({"city": "Paris"}),
            }],
            responses: vec![FunctionResponse {
                name: "shop_hours".into(),
                id: Some("fc_1".into()),
                response: json!({"output": hours()}),
            }],
        }]
    );
    assert_eq!(played.outcome.tools.rounds, 2);
    assert_eq!(
        played.outcome.tools.calls,
        vec![ToolCallReport {
            round: 1,
            name: "shop_hours".into(),
            status: CallStatus::Done,
            latency_ms: 300
        }]
    );
}

#[test]
fn text_before_a_call_is_the_filler_and_a_turn_without_calls_is_one_round() {
    let played = play(
        vec![
            vec![
                Say::Text(5, "Let me look that up."),
                Say::Call(5, "shop_hours", None, json!({"city": "Paris"})),
                Say::Stop(1),
            ],
            vec![Say::Text(5, "Open until seven."), Say::Stop(1)],
        ],
        vec![(
            "shop_hours",
            5_000,
            Some("Checking the hours."),
            Some((100, Ok(hours()))),
        )],
        4,
        None,
    );
    assert_eq!(
        spoken(&played.heard),
        "Let me look that up. Open until seven."
    );
    // No id from the model: one is made for the endpoint, none is echoed to the model.
    assert_eq!(played.runs, vec!["shop_hours:made_1_0"]);
    assert_eq!(played.follow_ups[0].0[0].responses[0].id, None);
    assert_eq!(
        played.follow_ups[0].0[0].model_parts[0],
        json!({"text": "Let me look that up."})
    );

    let plain = play(
        vec![vec![Say::Text(5, "Hello there."), Say::Stop(1)]],
        vec![shop_hours(100)],
        4,
        None,
    );
    assert_eq!(plain.outcome.ending, Ending::Complete);
    assert_eq!(plain.outcome.spoken, "Hello there.");
    assert_eq!(plain.outcome.tools.rounds, 1);
    assert!(plain.follow_ups.is_empty() && plain.heard.len() == 1);
}

#[test]
fn own_filler_is_spoken_and_parallel_calls_run_at_once_answered_in_order() {
    let played = play(
        vec![
            vec![
                Say::Call(5, "slow", Some("a"), json!({})),
                Say::Call(5, "shop_hours", None, json!({"city": "Oslo"})),
                Say::Stop(1),
            ],
            vec![Say::Text(5, "Both done."), Say::Stop(1)],
        ],
        vec![
            (
                "slow",
                5_000,
                Some("Looking now."),
                Some((1_500, Ok(json!("slow result")))),
            ),
            shop_hours(1_000),
        ],
        4,
        None,
    );
    assert_eq!(spoken(&played.heard), "Looking now. Both done.");
    let reports = &played.outcome.tools.calls;
    // Concurrent: each latency is its own, not the sum.
    assert_eq!(
        reports.iter().map(|r| r.latency_ms).collect::<Vec<_>>(),
        vec![1_500, 1_000]
    );
    let responses = &played.follow_ups[0].0[0].responses;
    assert_eq!(
        responses
            .iter()
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>(),
        vec!["slow", "shop_hours"]
    );
    assert_eq!(responses[0].response, json!({"output": "slow result"}));
    assert_eq!(responses[0].id.as_deref(), Some("a"));
    assert_eq!(responses[1].id, None);
}

#[test]
fn failures_timeouts_and_refused_arguments_are_answered_as_errors() {
    let played = play(
        vec![
            vec![
                Say::Call(5, "broken", None, json!({})),
                Say::Call(5, "hangs", None, json!({})),
                Say::Call(5, "shop_hours", None, json!({"bad": 1})),
                Say::Call(5, "nope", None, json!({})),
                Say::Stop(1),
            ],
            vec![Say::Text(5, "Sorry, I could not check."), Say::Stop(1)],
        ],
        vec![
            (
                "broken",
                5_000,
                None,
                Some((50, Err("the tool failed (HTTP status 500)".into()))),
            ),
            ("hangs", 800, None, None),
            shop_hours(10),
        ],
        4,
        None,
    );
    let responses: Vec<&Value> = played.follow_ups[0].0[0]
        .responses
        .iter()
        .map(|r| &r.response)
        .collect();
    assert_eq!(
        responses,
        vec![
            &json!({"error": "the tool failed (HTTP status 500)"}),
            &json!({"error": "the tool did not answer within 800 ms"}),
            &json!({"error": "args.bad is not allowed"}),
            &json!({"error": "there is no tool named nope"}),
        ]
    );
    // Refused calls never run; the hanging one was dropped at its deadline.
    assert_eq!(played.runs, vec!["broken:made_1_0", "hangs:made_1_1"]);
    assert_eq!(played.dropped, 1);
    let finals: Vec<String> = statuses(&played.heard)
        .into_iter()
        .filter(|s| s.2 != "started")
        .map(|s| s.2)
        .collect();
    assert_eq!(finals, vec!["error", "timeout", "error", "error"]);
    assert_eq!(
        played.outcome.spoken,
        "One moment. Sorry, I could not check."
    );
}

#[test]
fn a_slow_call_gets_one_still_checking_line_after_two_seconds() {
    let played = play(
        vec![
            vec![
                Say::Call(5, "shop_hours", None, json!({"city": "Rome"})),
                Say::Stop(1),
            ],
            vec![Say::Text(5, "Open."), Say::Stop(1)],
        ],
        vec![("shop_hours", 20_000, None, Some((6_500, Ok(hours()))))],
        4,
        None,
    );
    let lines: Vec<(u64, String)> = played
        .heard
        .iter()
        .filter_map(|h| match h {
            Heard::Tts(at, text) => Some((*at, text.clone())),
            Heard::Data(..) => None,
        })
        .collect();
    assert_eq!(
        lines,
        vec![
            (6, DEFAULT_FILLER.to_string()),
            (2_006, format!(" {STILL_CHECKING}")),
            (6_511, " Open.".to_string()),
        ]
    );
    assert_eq!(played.outcome.ending, Ending::Complete);
}

#[test]
fn a_filler_is_not_said_twice_in_a_row_across_rounds() {
    let call = |city: &str| Say::Call(5, "shop_hours", None, json!({ "city": city }));
    let played = play(
        vec![
            vec![call("A"), Say::Stop(1)],
            vec![call("B"), Say::Stop(1)],
            vec![Say::Text(5, "Both are open."), call("C"), Say::Stop(1)],
            vec![Say::Text(5, "All three."), Say::Stop(1)],
        ],
        vec![shop_hours(10)],
        4,
        None,
    );
    assert_eq!(played.runs.len(), 3);
    // Round 2 follows the filler with nothing said since; round 3's call follows its own words.
    assert_eq!(
        played.outcome.spoken,
        "One moment. Both are open. All three."
    );
    assert_eq!(played.outcome.ending, Ending::Complete);
}

#[test]
fn the_last_round_may_not_call_and_its_calls_are_not_run() {
    let played = play(
        vec![
            vec![
                Say::Call(5, "shop_hours", None, json!({"city": "A"})),
                Say::Stop(1),
            ],
            vec![
                Say::Text(5, "It is open."),
                Say::Call(5, "shop_hours", None, json!({"city": "B"})),
                Say::Stop(1),
            ],
        ],
        vec![shop_hours(10)],
        2,
        None,
    );
    assert_eq!(played.follow_ups.len(), 1);
    assert!(!played.follow_ups[0].1, "round 2 of 2 must answer in words");
    assert_eq!(played.runs.len(), 1);
    assert_eq!(played.outcome.ending, Ending::Complete);
    assert_eq!(played.outcome.spoken, "One moment. It is open.");
}

#[test]
fn barge_in_cancels_running_calls_keeps_finished_ones_and_answers_every_call() {
    let played = play(
        vec![vec![
            Say::Call(5, "shop_hours", Some("fast"), json!({"city": "A"})),
            Say::Call(5, "slow", Some("slow"), json!({})),
            Say::Stop(1),
        ]],
        vec![
            shop_hours(100),
            ("slow", 5_000, None, Some((3_000, Ok(json!(1))))),
        ],
        4,
        Some(1_000),
    );
    assert_eq!(played.outcome.ending, Ending::Interrupted);
    assert_eq!(
        played.dropped, 1,
        "the slow call's run was dropped (its fetch aborted)"
    );
    assert_eq!(played.opens, 1, "no request after the barge-in");
    let step = &played.outcome.tools.steps[0];
    assert_eq!(step.responses[0].response, json!({"output": hours()}));
    assert_eq!(step.responses[1].response, json!({"error": INTERRUPTED}));
    assert_eq!(
        played
            .outcome
            .tools
            .calls
            .iter()
            .map(|c| c.status)
            .collect::<Vec<_>>(),
        vec![CallStatus::Done, CallStatus::Cancelled]
    );
    // The caller is gone: no status is sent after the barge-in.
    assert_eq!(statuses(&played.heard).len(), 2);
}

#[test]
fn calls_still_running_at_the_turn_limit_are_cancelled() {
    let clock = VirtualClock::default();
    let mut model = ToolModel {
        clock: &clock,
        rounds: vec![vec![Say::Call(5, "slow", None, json!({})), Say::Stop(1)]].into(),
        follow_ups: Vec::new(),
        opens: 0,
    };
    let tools = FakeTools {
        clock: &clock,
        tools: vec![("slow", 60_000, None, None)],
        runs: RefCell::default(),
        dropped: Cell::new(0),
    };
    let mut listener = Listener {
        clock: &clock,
        heard: Vec::new(),
    };
    let outcome = clock.run(run_with_tools(
        &mut model,
        &mut listener,
        &clock,
        pending(),
        Limits::new(10_000, 4_000, 2_000),
        &tools,
        ToolLimits::new(4),
    ));
    assert_eq!(outcome.ending, Ending::Cut(Cut::TurnTime));
    assert_eq!(
        outcome.tools.steps[0].responses[0].response,
        json!({"error": CANCELLED})
    );
    assert_eq!(tools.dropped.get(), 1);
    assert_eq!(statuses(&listener.heard).last().unwrap().2, "cancelled");
}

#[test]
fn an_empty_answer_after_tools_is_retried_once_then_a_fallback_is_spoken() {
    let retried = play(
        vec![
            vec![
                Say::Call(5, "shop_hours", None, json!({"city": "A"})),
                Say::Stop(1),
            ],
            vec![Say::Stop(1)],
            vec![Say::Text(5, "Open until seven."), Say::Stop(1)],
        ],
        vec![shop_hours(10)],
        4,
        None,
    );
    assert_eq!(retried.opens, 3);
    assert_eq!(
        retried.follow_ups.len(),
        1,
        "the retry repeats the same request"
    );
    assert_eq!(retried.outcome.spoken, "One moment. Open until seven.");

    let fallback = play(
        vec![
            vec![
                Say::Call(5, "shop_hours", None, json!({"city": "A"})),
                Say::Stop(1),
            ],
            vec![Say::Stop(1)],
            vec![Say::Stop(1)],
        ],
        vec![shop_hours(10)],
        4,
        None,
    );
    assert_eq!(fallback.opens, 3);
    assert_eq!(fallback.outcome.ending, Ending::Complete);
    assert_eq!(
        fallback.outcome.spoken,
        format!("One moment. {TOOL_FALLBACK}")
    );
}

#[test]
fn end_call_is_silent_and_asks_the_app_to_hang_up_after_the_goodbye() {
    let played = play(
        vec![
            vec![Say::Call(5, "end_call", None, json!({})), Say::Stop(1)],
            vec![Say::Text(5, "Goodbye!"), Say::Stop(1)],
        ],
        vec![end_call()],
        4,
        None,
    );
    assert_eq!(spoken(&played.heard), "Goodbye!");
    assert_asks_to_hang_up(&played.heard);
}

#[test]
fn a_goodbye_said_with_end_call_ends_the_turn_without_another_round() {
    // 2.5-flash-lite may answer the end_call result with an empty round: none is asked for.
    let played = play(
        vec![
            vec![
                Say::Text(5, "Bye now."),
                Say::Call(1, "end_call", None, json!({})),
                Say::Stop(1),
            ],
            vec![Say::Stop(1)],
        ],
        vec![end_call()],
        4,
        None,
    );
    assert_eq!(played.opens, 1, "no round after the goodbye");
    assert_eq!(played.outcome.ending, Ending::Complete);
    assert_eq!(spoken(&played.heard), "Bye now.");
    assert_asks_to_hang_up(&played.heard);
}
