//! The `MODELS` chain as the engine's one [`Model`]: it asks one entry at a time, building that
//! entry's request in its own wire's shape only when the entry is first asked, and moves to the
//! next entry when the engine abandons one (`fail_over`), aborting the abandoned request. Each
//! entry has its own abort controller and its own [`CallReport`], so the turn's log line can
//! name the entry that answered and every entry abandoned before it.
//!
//! [`one_shot`] builds the model of one entry for a single request outside a spoken turn (a
//! summary of the conversation, say): whatever the entry's `api`, from a system prompt and a
//! history.

use std::cell::RefCell;
use std::rc::Rc;

use worker::AbortController;

use super::gemini::{self, GeminiModel, GeminiStream};
use super::openai::{self, OpenAiModel, OpenAiStream};
use super::{Ask, CallReport, Failure, Model, ModelStep, OpenError, Piece, ReplyStream, ToolStep};
use crate::models::{self, Api, Endpoint};

/// One wire family's model.
pub enum WireModel {
    Gemini(GeminiModel),
    OpenAi(OpenAiModel),
}

/// One wire family's stream.
pub enum WireStream {
    Gemini(GeminiStream),
    OpenAi(OpenAiStream),
}

impl ReplyStream for WireStream {
    async fn next(&mut self) -> Result<Option<Piece>, Failure> {
        match self {
            WireStream::Gemini(stream) => stream.next().await,
            WireStream::OpenAi(stream) => stream.next().await,
        }
    }
    fn take_step(&mut self) -> ModelStep {
        match self {
            WireStream::Gemini(stream) => stream.take_step(),
            WireStream::OpenAi(stream) => stream.take_step(),
        }
    }
    fn calling(&self) -> bool {
        match self {
            WireStream::Gemini(stream) => stream.calling(),
            WireStream::OpenAi(stream) => stream.calling(),
        }
    }
}

impl WireModel {
    /// The model of `endpoint` for `ask`, its requests aborted by `controller`. `None` when the
    /// endpoint needs a key that is not set.
    pub fn build(endpoint: &Endpoint, ask: &Ask, controller: &AbortController) -> Option<Self> {
        if !endpoint.key_present() {
            return None;
        }
        let signal = controller.signal();
        let tools = !ask.tools.is_empty();
        Some(match endpoint.api {
            Api::Gemini => {
                let url = gemini::stream_url(&endpoint.base_url, &endpoint.model);
                let key = endpoint.key.clone().unwrap_or_default();
                if tools {
                    let body = gemini::request_body_with_tools(
                        &ask.system_prompt,
                        &endpoint.model,
                        &ask.history,
                        gemini::function_declarations(&ask.tools),
                    );
                    WireModel::Gemini(
                        GeminiModel::new(url, key, body.to_string(), signal).with_follow_ups(body),
                    )
                } else {
                    let body =
                        gemini::request_body(&ask.system_prompt, &endpoint.model, &ask.history);
                    WireModel::Gemini(GeminiModel::new(url, key, body.to_string(), signal))
                }
            }
            Api::OpenAi => {
                let url = openai::chat_url(&endpoint.base_url);
                let body = openai::request_body(
                    &ask.system_prompt,
                    &endpoint.model,
                    &ask.history,
                    &ask.tools,
                );
                let model = OpenAiModel::new(url, endpoint.key.clone(), body.to_string(), signal);
                WireModel::OpenAi(if tools {
                    model.with_follow_ups(body)
                } else {
                    model
                })
            }
        })
    }

    fn on_sent(self, hook: impl FnOnce() + 'static) -> Self {
        match self {
            WireModel::Gemini(model) => WireModel::Gemini(model.on_sent(hook)),
            WireModel::OpenAi(model) => WireModel::OpenAi(model.on_sent(hook)),
        }
    }

    pub fn report(&self) -> CallReport {
        match self {
            WireModel::Gemini(model) => model.report(),
            WireModel::OpenAi(model) => model.report(),
        }
    }
}

impl Model for WireModel {
    type Stream = WireStream;
    async fn open(&mut self) -> Result<WireStream, OpenError> {
        match self {
            WireModel::Gemini(model) => model.open().await.map(WireStream::Gemini),
            WireModel::OpenAi(model) => model.open().await.map(WireStream::OpenAi),
        }
    }
    fn follow_up(&mut self, steps: &[ToolStep], calling_allowed: bool) {
        match self {
            WireModel::Gemini(model) => model.follow_up(steps, calling_allowed),
            WireModel::OpenAi(model) => model.follow_up(steps, calling_allowed),
        }
    }
}

/// The model of `endpoint` for one request of its own (no tools, no failover), with the
/// controller that aborts it: for work outside a spoken turn, such as summarising a
/// conversation with the first configured model. `None` when the endpoint's key is not set.
/// Read the reply with `ReplyStream::next` until `Ok(None)`; the `Finish` on a piece says how
/// it ended.
pub fn one_shot(
    endpoint: &Endpoint,
    system_prompt: &str,
    history: &[crate::history::HistoryMessage],
) -> Option<(WireModel, AbortController)> {
    let ask = Ask {
        system_prompt: system_prompt.to_string(),
        history: history.to_vec(),
        tools: Vec::new(),
    };
    let controller = AbortController::default();
    WireModel::build(endpoint, &ask, &controller).map(|model| (model, controller))
}

/// One entry as the turn's log line names it.
#[derive(Debug, Clone, PartialEq)]
pub struct EntryReport {
    pub api: Api,
    pub model: String,
    pub report: CallReport,
}

/// The chain of a turn.
pub struct Chain {
    entries: Vec<Endpoint>,
    silence_ms: u64,
    ask: Ask,
    /// The entry being asked.
    current: usize,
    /// Its model, built when first asked.
    model: Option<WireModel>,
    /// Aborts the requests of the entry being asked (an abandoned entry's are aborted at once).
    controller: Option<AbortController>,
    /// The reports of the entries abandoned so far, in order.
    abandoned: Vec<EntryReport>,
    /// Runs once, right after the turn's first request leaves (whichever entry sends it).
    on_sent: SentHook,
    /// What `open` fails with when there is no entry to ask.
    unavailable: Failure,
}

/// A hook run once, shared by the entries' models.
type SentHook = Rc<RefCell<Option<Box<dyn FnOnce()>>>>;

impl Chain {
    /// `entries` (never empty: the config's chain) asked for `ask`; `silence_ms` is the caller's
    /// whole wait, of which entries without their own `first_token_ms` get their share.
    pub fn new(entries: Vec<Endpoint>, silence_ms: u64, ask: Ask) -> Self {
        Chain {
            entries,
            silence_ms,
            ask,
            current: 0,
            model: None,
            controller: None,
            abandoned: Vec::new(),
            on_sent: Rc::default(),
            unavailable: Failure::Unreachable,
        }
    }

    /// A chain with no model to ask: every `open` fails with `failure`, not worth a retry (the
    /// turn's store could not be read, say). The engine still ends the turn with the apology.
    pub fn unavailable(failure: Failure) -> Self {
        Chain {
            unavailable: failure,
            ..Chain::new(Vec::new(), 0, Ask::default())
        }
    }

    /// Calls `hook` once the turn's first request is on its way (before its answer).
    pub fn on_sent(self, hook: impl FnOnce() + 'static) -> Self {
        *self.on_sent.borrow_mut() = Some(Box::new(hook));
        self
    }

    /// Aborts every request still running (the turn is over and nobody will hear more).
    pub fn abort(&mut self) {
        if let Some(controller) = self.controller.take() {
            controller.abort();
        }
    }

    /// Every entry asked, in order: the abandoned ones, then the last one (that answered, or
    /// failed last). An entry that could not be asked (no key) reports no request.
    pub fn reports(&self) -> Vec<EntryReport> {
        let mut reports = self.abandoned.clone();
        if let Some(entry) = self.entries.get(self.current) {
            reports.push(self.report_of(entry));
        }
        reports
    }

    fn report_of(&self, entry: &Endpoint) -> EntryReport {
        EntryReport {
            api: entry.api,
            model: entry.model.clone(),
            report: self
                .model
                .as_ref()
                .map(WireModel::report)
                .unwrap_or_default(),
        }
    }
}

impl Model for Chain {
    type Stream = WireStream;

    async fn open(&mut self) -> Result<WireStream, OpenError> {
        if self.model.is_none() {
            let Some(entry) = self.entries.get(self.current) else {
                return Err(OpenError {
                    failure: self.unavailable.clone(),
                    retryable: false,
                });
            };
            let controller = AbortController::default();
            let built = WireModel::build(entry, &self.ask, &controller);
            self.controller = Some(controller);
            let Some(model) = built else {
                return Err(OpenError {
                    failure: Failure::MissingApiKey,
                    retryable: false,
                });
            };
            let on_sent = self.on_sent.clone();
            self.model = Some(model.on_sent(move || {
                if let Some(hook) = on_sent.borrow_mut().take() {
                    hook();
                }
            }));
        }
        match &mut self.model {
            Some(model) => model.open().await,
            None => Err(OpenError {
                failure: Failure::Unreachable,
                retryable: false,
            }),
        }
    }

    fn follow_up(&mut self, steps: &[ToolStep], calling_allowed: bool) {
        if let Some(model) = &mut self.model {
            model.follow_up(steps, calling_allowed);
        }
    }

    fn first_token_ms(&self) -> Option<u64> {
        let entry = self.entries.get(self.current)?;
        Some(models::first_token_ms(
            entry.first_token_ms,
            self.current,
            self.entries.len(),
            self.silence_ms,
        ))
    }

    fn fail_over(&mut self) -> bool {
        if self.current + 1 >= self.entries.len() {
            return false;
        }
        self.abort();
        if let Some(entry) = self.entries.get(self.current) {
            let report = self.report_of(entry);
            self.abandoned.push(report);
        }
        self.model = None;
        self.current += 1;
        true
    }
}
