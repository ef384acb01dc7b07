//! [`GeminiModel`]: Gemini as the engine's model, one prepared request opened once per attempt,
//! and [`GeminiStream`], one streamed reply read piece by piece.

use std::cell::RefCell;
use std::rc::Rc;

use serde_json::Value;
use worker::AbortSignal;

use super::error::{classify_error, code};
use super::request::follow_up_body;
use super::stream::{is_policy_stop, parse_event, MAX_TOKENS};
use crate::llm::http::{self, EventReader, StreamItem};
use crate::llm::{
    CallReport, Failure, Finish, Model, ModelStep, OpenError, Piece, ReplyStream, ToolStep,
};

/// The header that carries the key: it keeps the key out of URLs and therefore out of logs. A
/// redirect comes back as a non-200 answer, which fails the turn.
const API_KEY_HEADER: &str = "x-goog-api-key";

/// Gemini as the turn engine's [`Model`]: one prepared request, opened once per attempt.
pub struct GeminiModel {
    url: String,
    api_key: String,
    body: String,
    signal: AbortSignal,
    report: Rc<RefCell<CallReport>>,
    /// Runs once, right after the first request has been handed to the runtime.
    on_sent: Option<Box<dyn FnOnce()>>,
    /// The first request of a turn with tools, which every follow-up extends.
    first_body: Option<Value>,
}

impl GeminiModel {
    /// `signal` aborts every request of the turn (its controller stays with the caller).
    pub fn new(url: String, api_key: String, body: String, signal: AbortSignal) -> Self {
        GeminiModel {
            url,
            api_key,
            body,
            signal,
            report: Rc::default(),
            on_sent: None,
            first_body: None,
        }
    }

    /// Lets the model be asked again after tool calls: `first_body` is the turn's first request.
    pub fn with_follow_ups(mut self, first_body: Value) -> Self {
        self.first_body = Some(first_body);
        self
    }

    /// Calls `hook` once the first request is on its way (before its answer).
    pub fn on_sent(mut self, hook: impl FnOnce() + 'static) -> Self {
        self.on_sent = Some(Box::new(hook));
        self
    }

    pub fn report(&self) -> CallReport {
        self.report.borrow().clone()
    }
}

impl Model for GeminiModel {
    type Stream = GeminiStream;

    async fn open(&mut self) -> Result<GeminiStream, OpenError> {
        let credential = Some((API_KEY_HEADER, self.api_key.as_str()));
        let on_sent = self.on_sent.take();
        let reader = http::open_events(
            &self.url,
            credential,
            &self.body,
            &self.signal,
            on_sent,
            &self.report,
            &|status, body| {
                let error = classify_error(status, body, &self.api_key);
                (error.for_log(), error.retryable())
            },
        )
        .await?;
        Ok(GeminiStream {
            reader,
            api_key: self.api_key.clone(),
            report: self.report.clone(),
            step: ModelStep::default(),
        })
    }

    fn follow_up(&mut self, steps: &[ToolStep], calling_allowed: bool) {
        if let Some(first) = &self.first_body {
            self.body = follow_up_body(first, steps, calling_allowed).to_string();
        }
    }
}

/// One streamed Gemini reply, read piece by piece.
pub struct GeminiStream {
    reader: EventReader,
    api_key: String,
    report: Rc<RefCell<CallReport>>,
    /// The parts and calls received so far.
    step: ModelStep,
}

impl ReplyStream for GeminiStream {
    fn take_step(&mut self) -> ModelStep {
        std::mem::take(&mut self.step)
    }

    async fn next(&mut self) -> Result<Option<Piece>, Failure> {
        let data = match self.reader.next().await {
            Err(_) => return Err(Failure::Network),
            Ok(StreamItem::End(None)) => return Ok(None),
            Ok(StreamItem::Oversized) => return Err(Failure::OversizedEvent),
            Ok(StreamItem::End(Some(leftover))) => {
                // An unframed error body, or an event cut off by the end of the body.
                let error = classify_error(200, &leftover, &self.api_key);
                self.report.borrow_mut().error = Some(error.for_log());
                return Err(Failure::IncompleteStream);
            }
            Ok(StreamItem::Event(data)) => data,
        };
        let event = parse_event(&data, &self.api_key).map_err(|_| Failure::UnreadableEvent)?;
        let mut report = self.report.borrow_mut();
        if let Some(usage) = event.usage {
            report.usage = Some(usage.into());
        }
        if let Some(error) = event.error {
            report.error = Some(error.for_log());
            return Err(Failure::StreamError);
        }
        if let Some(reason) = event.block_reason {
            let reason = code(&reason, &self.api_key);
            report.error = Some(format!(
                "BLOCKED: {}",
                reason.as_deref().unwrap_or("UNKNOWN")
            ));
            return Err(Failure::Blocked);
        }
        drop(report);
        self.step.parts.extend(event.parts);
        self.step.calls.extend(event.calls);
        Ok(Some(Piece {
            text: event.text,
            finish: event.finish_reason.map(|reason| Finish {
                policy: is_policy_stop(&reason),
                token_limit: reason == MAX_TOKENS,
                reason,
            }),
        }))
    }

    fn calling(&self) -> bool {
        !self.step.calls.is_empty()
    }
}
