//! A turn with tools: several model rounds. Each round is streamed and spoken as in a plain
//! turn, its function calls collected whole; the calls run concurrently, each with its own
//! deadline, while the caller hears a filler and, past a couple of seconds, one "still checking"
//! line; then the model is asked again with its parts verbatim and one answer per call, until
//! it answers in words or the round cap forbids more calls. A barge-in drops the running calls
//! (an HTTP tool aborts its fetch when its run is dropped) and answers them as interrupted.
//!
//! Nothing here knows Gemini, Layercode or the Workers runtime: the [`ToolRunner`] trait stands
//! for the tools, so the whole loop runs in virtual time in `tests.rs`.

use std::cell::RefCell;
use std::future::Future;
use std::pin::pin;

use futures::future::{join_all, select, Either};
use serde_json::{json, Value};

use super::{ends_sentence, has_words, Clock, Cut, Limits, Speaker, Stop, Turn, TurnOutcome};
use crate::llm::{Failure, FunctionCall, FunctionResponse, Model, ReplyStream, ToolStep};

/// Spoken when a call starts and the model has said nothing just before.
pub const DEFAULT_FILLER: &str = "One moment.";
/// Spoken once when a round's calls take longer than `ToolLimits::still_checking_ms`.
pub const STILL_CHECKING: &str = "Still checking, thanks for waiting.";
/// Spoken when the model still says nothing after a tool round and one retry.
pub const TOOL_FALLBACK: &str = "Sorry, I couldn't finish looking that up. Could you ask again?";
/// The answer the model gets for a call the caller's barge-in cut short.
pub const INTERRUPTED: &str = "interrupted by the caller";
/// The answer for a call still running when the turn ran out of time.
pub const CANCELLED: &str = "cancelled: the turn ran out of time";
/// The answer for a call whose arguments were not a JSON object (it is not run).
pub const ARGS_NOT_AN_OBJECT: &str =
    "the arguments were not a valid JSON object, so the tool was not called";

/// How one call ended, as `response.data` and the log say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallStatus {
    Done,
    Error,
    Timeout,
    Cancelled,
}

impl CallStatus {
    pub fn label(self) -> &'static str {
        match self {
            CallStatus::Done => "done",
            CallStatus::Error => "error",
            CallStatus::Timeout => "timeout",
            CallStatus::Cancelled => "cancelled",
        }
    }
}

/// One call, for the log line: never its arguments or result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolCallReport {
    pub round: u32,
    pub name: String,
    pub status: CallStatus,
    pub latency_ms: u64,
}

/// The tool side of a turn's outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolLog {
    /// Model rounds run (0 for a turn without tools).
    pub rounds: u32,
    pub calls: Vec<ToolCallReport>,
    /// Every tool round, each call answered (an interrupted one as such).
    pub steps: Vec<ToolStep>,
}

/// What a call needs before it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallPlan {
    pub timeout_ms: u64,
    /// `None`: the default filler; `Some("")`: say nothing for this call.
    pub filler: Option<String>,
    /// `response.data` to send once the reply has been spoken, if the call succeeds.
    pub after_reply: Option<Value>,
}

/// The tools of a turn.
pub trait ToolRunner {
    /// How `call` will run, or why it will not (an unknown tool, arguments that do not fit):
    /// that reason is the model's answer, and nothing is called.
    fn prepare(&self, call: &FunctionCall) -> Result<CallPlan, String>;
    /// An id for a call the model gave none, unique within the conversation.
    fn call_id(&self, round: u32, index: usize) -> String;
    /// Runs a prepared call. Dropping the future cancels it.
    fn run(
        &self,
        call_id: &str,
        call: &FunctionCall,
    ) -> impl Future<Output = Result<Value, String>>;
}

/// The bounds of the tool loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ToolLimits {
    /// Model rounds per turn, counting the first; the last may not call tools.
    pub max_rounds: u32,
    /// After this long, a round's calls get one "still checking" line.
    pub still_checking_ms: u64,
}

impl ToolLimits {
    pub fn new(max_rounds: u32) -> Self {
        ToolLimits {
            max_rounds: max_rounds.max(1),
            still_checking_ms: 2_000,
        }
    }
}

/// Runs one reply that may call tools. With no call in the first round it is exactly a plain
/// turn; `tools.rounds` in the outcome counts the model rounds.
pub async fn run_with_tools<M, S, C, T>(
    model: &mut M,
    speaker: &mut S,
    clock: &C,
    hangup: impl Future<Output = ()>,
    limits: Limits,
    tools: &T,
    tool_limits: ToolLimits,
) -> TurnOutcome
where
    M: Model,
    S: Speaker,
    C: Clock,
    T: ToolRunner,
{
    let mut turn = Turn::new(speaker, clock, hangup, limits);
    let mut log = ToolLog::default();
    let ending = turn
        .reply_with_tools(model, limits, tools, tool_limits, &mut log)
        .await;
    let mut outcome = turn.conclude(ending).await;
    outcome.tools = log;
    outcome
}

impl<S: Speaker, C: Clock, H: Future<Output = ()>> Turn<'_, S, C, H> {
    async fn reply_with_tools<M: Model, T: ToolRunner>(
        &mut self,
        model: &mut M,
        limits: Limits,
        tools: &T,
        tool_limits: ToolLimits,
        log: &mut ToolLog,
    ) -> Result<(), Stop> {
        let mut after_reply = Vec::new();
        let mut retried_empty = false;
        loop {
            log.rounds += 1;
            let round = log.steps.len() as u32 + 1;
            let spoken_before = self.spoken.len();
            // Only the first round may fail over: later ones follow a tool call.
            let (mut stream, finish) = self.round(model, limits, log.steps.is_empty()).await?;
            let step = stream.take_step();
            self.finish_reason = finish.as_ref().map(|f| f.reason.clone());
            let said = has_words(&self.spoken[spoken_before..]);
            if !step.calls.is_empty() && round < tool_limits.max_rounds {
                let (responses, stopped) = self
                    .run_calls(tools, round, &step.calls, said, limits, tool_limits, log)
                    .await;
                for (call, response) in step.calls.iter().zip(&responses) {
                    if response.response.get("output").is_some() {
                        let plan = tools.prepare(call).ok();
                        after_reply.extend(plan.and_then(|p| p.after_reply));
                    }
                }
                log.steps.push(ToolStep {
                    model_parts: step.parts,
                    calls: step.calls,
                    responses,
                });
                stopped?;
                if said && !after_reply.is_empty() {
                    // The model said its goodbye with the call that ends it (`end_call`): the
                    // turn is over, and a further round would only risk an empty answer and an
                    // apology after the goodbye.
                    break;
                }
                self.separate_next = true;
                self.waiter.restart_silence();
                model.follow_up(&log.steps, round + 1 < tool_limits.max_rounds);
                continue;
            }
            match finish {
                None => return Err(Stop::Failed(Failure::Truncated)),
                // An empty answer after tool results (2.5-flash-lite does this): ask once more,
                // then say something rather than leave the caller with silence.
                Some(_) if !said && !log.steps.is_empty() => {
                    if !retried_empty {
                        retried_empty = true;
                        continue;
                    }
                    let text = if self.spoken.is_empty() {
                        TOOL_FALLBACK.to_string()
                    } else {
                        format!(" {TOOL_FALLBACK}")
                    };
                    self.say(&text, limits).await?;
                }
                Some(_) if !has_words(&self.spoken) => {
                    return Err(Stop::Failed(Failure::NothingSpoken))
                }
                Some(f) if f.token_limit => return Err(Stop::Cut(Cut::TokenLimit)),
                Some(f) if f.policy && !ends_sentence(&self.spoken) => {
                    return Err(Stop::Cut(Cut::Policy))
                }
                Some(_) => {}
            }
            break;
        }
        for content in after_reply {
            if !self.speaker.data(&content).await {
                return Err(Stop::Gone);
            }
        }
        Ok(())
    }

    /// Runs one round's calls; every call gets an answer, even when the turn stopped (the
    /// `Err`): finished results are kept, unfinished calls are cancelled and say so.
    #[allow(clippy::too_many_arguments)]
    async fn run_calls<T: ToolRunner>(
        &mut self,
        tools: &T,
        round: u32,
        calls: &[FunctionCall],
        model_just_spoke: bool,
        limits: Limits,
        tool_limits: ToolLimits,
        log: &mut ToolLog,
    ) -> (Vec<FunctionResponse>, Result<(), Stop>) {
        let clock = self.clock;
        let ids: Vec<String> = (0..calls.len())
            .map(|i| {
                calls[i]
                    .id
                    .clone()
                    .unwrap_or_else(|| tools.call_id(round, i))
            })
            .collect();
        let plans: Vec<Result<CallPlan, String>> = calls
            .iter()
            .map(|call| match call.args {
                // Arguments that did not parse as a JSON object are never run.
                Value::Object(_) => tools.prepare(call),
                _ => Err(ARGS_NOT_AN_OBJECT.to_string()),
            })
            .collect();

        let mut stopped = Ok(());
        if !model_just_spoke {
            // Round after round with nothing said in between, one "One moment." is enough.
            let repeated = |filler: &String| self.spoken.trim_end().ends_with(filler.as_str());
            if let Some(filler) = filler_for(&plans).filter(|f| !repeated(f)) {
                let text = if self.spoken.is_empty() {
                    filler
                } else {
                    format!(" {filler}")
                };
                stopped = self.say(&text, limits).await;
            }
        }
        for (call, id) in calls.iter().zip(&ids) {
            if stopped.is_ok() && !self.status(&call.name, id, "started").await {
                stopped = Err(Stop::Gone);
            }
        }

        let started_at = clock.now_ms();
        let results: RefCell<Vec<Option<Settled>>> = RefCell::new(vec![None; calls.len()]);
        if stopped.is_ok() {
            let runs = calls.iter().enumerate().map(|(i, call)| {
                let (results, id, plan) = (&results, &ids[i], &plans[i]);
                async move {
                    let (status, result) = match plan {
                        Err(reason) => (CallStatus::Error, Err(reason.clone())),
                        Ok(plan) => run_one(tools, clock, id, call, plan.timeout_ms).await,
                    };
                    let latency = clock.now_ms().saturating_sub(started_at);
                    results.borrow_mut()[i] = Some((status, result, latency));
                }
            });
            let mut all = pin!(join_all(runs));
            let first = {
                let still_checking = pin!(clock.sleep(tool_limits.still_checking_ms));
                self.waiter
                    .wait_quietly(select(all.as_mut(), still_checking))
                    .await
                    .map(|won| matches!(won, Either::Left(_)))
            };
            stopped = match first {
                Ok(true) => Ok(()),
                Ok(false) => match self.say(&format!(" {STILL_CHECKING}"), limits).await {
                    Ok(()) => self.waiter.wait_quietly(all.as_mut()).await.map(drop),
                    Err(stop) => Err(stop),
                },
                Err(stop) => Err(stop),
            };
            // Leaving the scope drops the calls still running: that is their cancellation.
        }

        let gone = matches!(stopped, Err(Stop::Gone));
        let unfinished = if gone { INTERRUPTED } else { CANCELLED };
        let now = clock.now_ms();
        let mut responses = Vec::with_capacity(calls.len());
        for (i, result) in results.into_inner().into_iter().enumerate() {
            let (status, result, latency_ms) = result.unwrap_or_else(|| {
                let latency = now.saturating_sub(started_at);
                (CallStatus::Cancelled, Err(unfinished.to_string()), latency)
            });
            if !gone {
                // A failed status write means the caller left; the turn's own end says so.
                self.status(&calls[i].name, &ids[i], status.label()).await;
            }
            log.calls.push(ToolCallReport {
                round,
                name: calls[i].name.clone(),
                status,
                latency_ms,
            });
            responses.push(FunctionResponse {
                name: calls[i].name.clone(),
                id: calls[i].id.clone(),
                response: match result {
                    Ok(output) => json!({ "output": output }),
                    Err(error) => json!({ "error": error }),
                },
            });
        }
        (responses, stopped)
    }

    /// `response.data` `{"type": "tool", "name", "call_id", "status"}` for the browser.
    async fn status(&mut self, name: &str, call_id: &str, status: &str) -> bool {
        let content = json!({"type": "tool", "name": name, "call_id": call_id, "status": status});
        self.speaker.data(&content).await
    }
}

/// How a call settled: its status, its answer, and how long it took.
type Settled = (CallStatus, Result<Value, String>, u64);

/// One call against its own deadline.
async fn run_one<T: ToolRunner, C: Clock>(
    tools: &T,
    clock: &C,
    id: &str,
    call: &FunctionCall,
    timeout_ms: u64,
) -> (CallStatus, Result<Value, String>) {
    let run = pin!(tools.run(id, call));
    let deadline = pin!(clock.sleep(timeout_ms));
    match select(run, deadline).await {
        Either::Left((Ok(output), _)) => (CallStatus::Done, Ok(output)),
        Either::Left((Err(error), _)) => (CallStatus::Error, Err(error)),
        Either::Right(_) => (
            CallStatus::Timeout,
            Err(format!("the tool did not answer within {timeout_ms} ms")),
        ),
    }
}

/// The filler of a round: the first call's own, else the default; none if every call asks for
/// silence (`end_call`: the goodbye is the model's).
fn filler_for(plans: &[Result<CallPlan, String>]) -> Option<String> {
    let mut silent = true;
    for plan in plans {
        match plan {
            Ok(CallPlan {
                filler: Some(text), ..
            }) if !text.is_empty() => return Some(text.clone()),
            Ok(CallPlan {
                filler: Some(_), ..
            }) => {}
            _ => silent = false,
        }
    }
    (!silent).then(|| DEFAULT_FILLER.to_string())
}
