//! The running summary, after a turn: once the turn's `response.end` is sent and its rows are
//! stored, fold what is due (`Store::summary_due`) with one model call
//! (`engine::write_summary`) and store it (`Store::finish_summary`). Never on the path to a
//! first word; one log line per call, never its content.

use serde::Serialize;
use worker::{console_error, console_log};

use super::clock::WorkerClock;
use crate::config::Config;
use crate::engine::{self, Clock};
use crate::history::HistoryMessage;
use crate::llm::chain;
use crate::llm::{CallReport, Failure};
use crate::models::Endpoint;
use crate::store::{Saved, Store};
use crate::summary;

/// The longest a summary call may take: well inside the 70 seconds an idle Durable Object
/// stays in memory, so it is not evicted mid-call (were it, the call would be lost with its
/// in-memory flag, and the next turn would plan it again from what is stored).
const SUMMARY_TIMEOUT_MS: u64 = 30_000;

/// Folds what is due into the summary of `conversation_id`, if anything is.
pub(super) async fn after_turn(store: &Store, config: &Config, conversation_id: &str) {
    let Some(endpoint) = summary_model(config) else {
        return;
    };
    let clock = WorkerClock;
    let started_ms = clock.now_ms();
    let mut log = SummaryLog {
        event: "summary",
        conversation_id,
        outcome: Saved::Failed.label(),
        failure: None,
        ms: 0,
        folded_messages: 0,
        summary_chars: None,
        api: endpoint.api.name(),
        model: &endpoint.model,
        gemini_status: None,
        gemini_error: None,
        prompt_tokens: None,
        output_tokens: None,
        storage_error: None,
    };
    let job = match store.summary_due() {
        Ok(Some(job)) => job,
        Ok(None) => return,
        Err(e) => {
            log.storage_error = Some(format!("summary_due: {e}"));
            return log.write(&clock, started_ms);
        }
    };
    if let Some(error) = &config.summary_model_error {
        // Refused whole: the first model writes it (`/health` shows the same message).
        console_error!("SUMMARY_MODEL is not used: {error}");
    }
    log.folded_messages = job.messages.len();
    let request = summary::request_text(job.previous.as_deref(), &job.messages);
    let request = [HistoryMessage::user(&request)];
    let (written, report) = match chain::one_shot(endpoint, summary::INSTRUCTION, &request) {
        Some((mut model, controller)) => {
            let written = engine::write_summary(&mut model, &clock, SUMMARY_TIMEOUT_MS).await;
            // Frees the connection of a call that failed or timed out mid-stream.
            controller.abort();
            (written, model.report())
        }
        None => (Err(Failure::MissingApiKey), CallReport::default()),
    };
    let kept = match written {
        Ok(text) => summary::clean(&text),
        Err(failure) => {
            log.failure = Some(failure.label());
            None
        }
    };
    if kept.is_none() && log.failure.is_none() {
        log.failure = Some("nothing_written".to_string());
    }
    log.summary_chars = kept.as_ref().map(|text| text.chars().count());
    log.outcome = match store.finish_summary(job, kept) {
        Ok(saved) => saved.label(),
        Err(e) => {
            log.storage_error = Some(format!("finish_summary: {e}"));
            Saved::Failed.label()
        }
    };
    log.gemini_status = report.status;
    log.gemini_error = report.error;
    log.prompt_tokens = report.usage.as_ref().and_then(|u| u.prompt_tokens);
    log.output_tokens = report.usage.as_ref().and_then(|u| u.output_tokens);
    log.write(&clock, started_ms);
}

/// The model that writes summaries: `SUMMARY_MODEL`'s, or the first configured model, whatever
/// its `api` (see `models::summary_endpoint`); `None` (no summaries) with `SUMMARY_MODEL=off`
/// or when that model's key is not set. The one place the summary's model is chosen.
fn summary_model(config: &Config) -> Option<&Endpoint> {
    config
        .summary_model
        .as_ref()
        .filter(|endpoint| endpoint.key_present())
}

/// The one log line of a summary call: how it went, how long, how many tokens; never the
/// summary or the conversation.
#[derive(Serialize)]
struct SummaryLog<'a> {
    event: &'static str,
    conversation_id: &'a str,
    /// `stored`, `deferred` (written once the turns running now end), `dropped` (the
    /// conversation was erased meanwhile) or `failed`.
    outcome: &'static str,
    /// Why it failed: `timeout`, `http_503`, `blocked`, `nothing_written`…
    failure: Option<String>,
    ms: u64,
    folded_messages: usize,
    summary_chars: Option<usize>,
    /// The model asked (`gemini` or `openai`, and its id).
    api: &'static str,
    model: &'a str,
    /// Its HTTP status and error codes, named as in the turn's line whatever the `api`.
    gemini_status: Option<u16>,
    gemini_error: Option<String>,
    prompt_tokens: Option<u64>,
    output_tokens: Option<u64>,
    storage_error: Option<String>,
}

impl SummaryLog<'_> {
    fn write(mut self, clock: &WorkerClock, started_ms: u64) {
        self.ms = clock.now_ms().saturating_sub(started_ms);
        if let Ok(line) = serde_json::to_string(&self) {
            console_log!("{line}");
        }
    }
}
