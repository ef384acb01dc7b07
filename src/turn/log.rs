//! The one structured log line of a turn.

use serde::Serialize;
use worker::{console_error, console_log};

use crate::engine::{Clock, Ending, TurnOutcome};
use crate::llm::chain::EntryReport;

/// The one structured log line of a turn, with the same fields for every turn. Never holds user
/// speech or secrets.
#[derive(Debug, Serialize)]
pub(super) struct TurnLog {
    event: &'static str,
    #[serde(rename = "type")]
    kind: &'static str,
    conversation_id: String,
    turn_id: Option<String>,
    /// `complete`, `cut`, `interrupted` or `failed`; `redelivered` (answered again from the
    /// store), `redelivered_other_text` (the same turn id with other words) or `silent`.
    outcome: &'static str,
    /// The finish reason of a complete reply, the failure of a failed one.
    ending: Option<String>,
    finish_reason: Option<String>,
    ms_to_first_tts: Option<u64>,
    total_ms: u64,
    /// The model that answered (or failed last): its `api` and `model`. The `gemini_*` fields
    /// keep their names (saved queries) and describe that model's calls, whatever its `api`.
    api: Option<&'static str>,
    model: Option<String>,
    gemini_status: Option<u16>,
    gemini_attempts: u32,
    gemini_error: Option<String>,
    /// Each model of the chain abandoned before it (failover), in order.
    abandoned: Vec<AbandonedLog>,
    pub(super) chars_out: usize,
    interrupted: bool,
    apology: bool,
    prompt_tokens: Option<u64>,
    output_tokens: Option<u64>,
    pub(super) storage_error: Option<String>,
    /// Model rounds of a turn with tools (0 without tools).
    tool_rounds: u32,
    /// Each tool call: name, round, latency, outcome; never its arguments or result.
    tool_calls: Vec<ToolCallLog>,
    #[serde(skip)]
    started_ms: u64,
}

/// A model the turn moved away from: the failure as a label, its HTTP status and error codes
/// when it answered, and how long it was given.
#[derive(Debug, Serialize)]
struct AbandonedLog {
    api: &'static str,
    model: String,
    reason: String,
    status: Option<u16>,
    error: Option<String>,
    ms: u64,
}

#[derive(Debug, Serialize)]
struct ToolCallLog {
    name: String,
    round: u32,
    ms: u64,
    outcome: &'static str,
}

impl TurnLog {
    pub(super) fn new(
        kind: &'static str,
        conversation_id: &str,
        turn_id: Option<&str>,
        clock: &impl Clock,
    ) -> Self {
        TurnLog {
            event: "turn",
            kind,
            conversation_id: conversation_id.to_string(),
            turn_id: turn_id.map(str::to_string),
            outcome: "complete",
            ending: None,
            finish_reason: None,
            ms_to_first_tts: None,
            total_ms: 0,
            api: None,
            model: None,
            gemini_status: None,
            gemini_attempts: 0,
            gemini_error: None,
            abandoned: Vec::new(),
            chars_out: 0,
            interrupted: false,
            apology: false,
            prompt_tokens: None,
            output_tokens: None,
            storage_error: None,
            tool_rounds: 0,
            tool_calls: Vec::new(),
            started_ms: clock.now_ms(),
        }
    }

    /// A turn the model was not asked for: a redelivery or a silent welcome.
    pub(super) fn emit_without_reply(mut self, outcome: &'static str, clock: &impl Clock) {
        self.outcome = outcome;
        self.write(clock);
    }

    /// `models`: each model asked, in order (the last answered or failed last); empty when
    /// none was.
    pub(super) fn emit(
        mut self,
        outcome: &TurnOutcome,
        models: &[EntryReport],
        clock: &impl Clock,
    ) {
        self.outcome = outcome.ending.outcome();
        self.ending = Some(match &outcome.ending {
            Ending::Complete => outcome.finish_reason.clone().unwrap_or_default(),
            Ending::Interrupted => "client_disconnected".to_string(),
            Ending::Failed(failure) => failure.label(),
            Ending::Cut(cut) => cut.label().to_string(),
        });
        self.finish_reason = outcome.finish_reason.clone();
        self.ms_to_first_tts = outcome
            .first_speech_at_ms
            .map(|at| at.saturating_sub(self.started_ms));
        let last = models.last();
        let report = last.map(|entry| entry.report.clone()).unwrap_or_default();
        self.api = last.map(|entry| entry.api.name());
        self.model = last.map(|entry| entry.model.clone());
        self.gemini_status = report.status;
        self.gemini_attempts = report.requests;
        self.gemini_error = report.error.clone();
        self.abandoned = outcome
            .abandoned
            .iter()
            .zip(models)
            .map(|(abandoned, entry)| AbandonedLog {
                api: entry.api.name(),
                model: entry.model.clone(),
                reason: abandoned.failure.label(),
                status: entry.report.status,
                error: entry.report.error.clone(),
                ms: abandoned.ms,
            })
            .collect();
        self.chars_out = outcome.spoken.chars().count();
        // A closing line owed but not delivered means the caller had hung up by then.
        let closing_unheard =
            outcome.ending.closing(&outcome.spoken).is_some() && outcome.closing.is_none();
        self.interrupted = outcome.ending == Ending::Interrupted || closing_unheard;
        self.apology = matches!(outcome.ending, Ending::Failed(_)) && outcome.closing.is_some();
        self.prompt_tokens = report.usage.as_ref().and_then(|u| u.prompt_tokens);
        self.output_tokens = report.usage.as_ref().and_then(|u| u.output_tokens);
        self.tool_rounds = outcome.tools.rounds;
        self.tool_calls = outcome
            .tools
            .calls
            .iter()
            .map(|call| ToolCallLog {
                name: call.name.clone(),
                round: call.round,
                ms: call.latency_ms,
                outcome: call.status.label(),
            })
            .collect();
        self.write(clock);
    }

    fn write(mut self, clock: &impl Clock) {
        self.total_ms = clock.now_ms().saturating_sub(self.started_ms);
        match serde_json::to_string(&self) {
            Ok(line) => console_log!("{line}"),
            Err(e) => console_error!("turn log failed to serialise: {e}"),
        }
    }
}
