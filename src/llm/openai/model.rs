//! [`OpenAiModel`]: an OpenAI-compatible endpoint as the engine's model, one prepared request
//! opened once per attempt, and [`OpenAiStream`], one streamed reply read piece by piece.

use std::cell::RefCell;
use std::rc::Rc;

use serde_json::Value;
use worker::AbortSignal;

use super::error::classify_error;
use super::request::follow_up_body;
use super::stream::{ChatStream, Update};
use crate::llm::http::{self, EventReader, StreamItem};
use crate::llm::{CallReport, Failure, Model, ModelStep, OpenError, Piece, ReplyStream, ToolStep};

/// An OpenAI-compatible endpoint as the turn engine's [`Model`].
pub struct OpenAiModel {
    url: String,
    /// `None`: the endpoint takes no key (a local server), and no auth header is sent.
    api_key: Option<String>,
    body: String,
    signal: AbortSignal,
    report: Rc<RefCell<CallReport>>,
    on_sent: Option<Box<dyn FnOnce()>>,
    first_body: Option<Value>,
    /// Requests opened so far: names the calls a server sends without an id.
    opens: u32,
}

impl OpenAiModel {
    /// `signal` aborts every request of this model (its controller stays with the caller).
    pub fn new(url: String, api_key: Option<String>, body: String, signal: AbortSignal) -> Self {
        OpenAiModel {
            url,
            api_key,
            body,
            signal,
            report: Rc::default(),
            on_sent: None,
            first_body: None,
            opens: 0,
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

    fn key(&self) -> &str {
        self.api_key.as_deref().unwrap_or_default()
    }
}

impl Model for OpenAiModel {
    type Stream = OpenAiStream;

    async fn open(&mut self) -> Result<OpenAiStream, OpenError> {
        self.opens += 1;
        let bearer = self.api_key.as_ref().map(|key| format!("Bearer {key}"));
        let credential = bearer.as_deref().map(|value| ("authorization", value));
        let on_sent = self.on_sent.take();
        let key = self.key();
        let reader = http::open_events(
            &self.url,
            credential,
            &self.body,
            &self.signal,
            on_sent,
            &self.report,
            &|status, body| {
                let error = classify_error(status, body, key);
                (error.for_log(), error.retryable())
            },
        )
        .await?;
        Ok(OpenAiStream {
            reader,
            api_key: key.to_string(),
            report: self.report.clone(),
            chat: ChatStream::new(self.opens),
        })
    }

    fn follow_up(&mut self, steps: &[ToolStep], calling_allowed: bool) {
        if let Some(first) = &self.first_body {
            self.body = follow_up_body(first, steps, calling_allowed).to_string();
        }
    }
}

/// One streamed reply, read piece by piece.
pub struct OpenAiStream {
    reader: EventReader,
    api_key: String,
    report: Rc<RefCell<CallReport>>,
    chat: ChatStream,
}

impl OpenAiStream {
    fn update(
        &mut self,
        update: Result<Update, (Failure, Option<String>)>,
    ) -> Result<Option<Piece>, Failure> {
        if let Some(usage) = self.chat.usage.take() {
            self.report.borrow_mut().usage = Some(usage);
        }
        match update {
            Ok(Update::Piece(piece)) => Ok(Some(piece)),
            Ok(Update::End) => Ok(None),
            Err((failure, error)) => {
                if error.is_some() {
                    self.report.borrow_mut().error = error;
                }
                Err(failure)
            }
        }
    }
}

impl ReplyStream for OpenAiStream {
    async fn next(&mut self) -> Result<Option<Piece>, Failure> {
        let update = match self.reader.next().await {
            Err(_) => return Err(Failure::Network),
            Ok(StreamItem::Oversized) => return Err(Failure::OversizedEvent),
            Ok(StreamItem::End(leftover)) => {
                self.chat.end_of_body(leftover.as_deref(), &self.api_key)
            }
            Ok(StreamItem::Event(data)) => self.chat.push(&data, &self.api_key),
        };
        self.update(update)
    }

    fn take_step(&mut self) -> ModelStep {
        self.chat.take_step()
    }

    fn calling(&self) -> bool {
        self.chat.calling()
    }
}
