//! The model layer: what the turn engine asks of a model, and the wire families that answer it.
//!
//! This file is the contract: [`Model`] opens one streamed reply per call, a [`ReplyStream`]
//! yields [`Piece`]s of text and ends with the round's [`ModelStep`] (parts verbatim, function
//! calls), and failures are a [`Failure`] with the family's retry verdict ([`OpenError`]).
//! [`CallReport`] is what a model reports for the turn's log line.
//!
//! * `gemini/`: Google Gemini's wire (`streamGenerateContent?alt=sse`): request building, stream
//!   event parsing, error classification, and `GeminiModel`/`GeminiStream`;
//! * `openai/`: the OpenAI chat completions wire (`POST {base_url}/chat/completions`, streamed),
//!   as OpenAI and the many compatible servers speak it, the same four concerns;
//! * `chain`: the `MODELS` chain as one [`Model`]: it asks one entry at a time and moves to the
//!   next when the engine abandons one (the engine decides when; the chain aborts and switches);
//! * `http`: what any HTTP wire shares: opening a streamed reply (sending the JSON request,
//!   recording its status, handing a failed answer to the wire's classifier), reading an SSE body
//!   event by event.
//!
//! A wire family differs from another only in request building, stream parsing and error
//! classification: a new family is a folder next to `gemini/`, implementing [`Model`], and one
//! arm in `chain`. What the engine sees is wire-neutral: text [`Piece`]s, a [`Finish`], the
//! [`FunctionCall`]s of a round (arguments parsed), and an opaque replay of the round that only
//! its own family reads back.
//!
//! May import: `layercode` and leaves (see `tests/layers.rs`); never the engine, which is generic
//! over this layer's traits.

use std::future::Future;

use serde_json::Value;

use crate::history::{HistoryMessage, Role};

pub mod chain;
pub mod gemini;
pub mod http;
pub mod openai;

/// One piece of the model's reply: a text delta, and how the model finished on the last piece.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Piece {
    pub text: String,
    pub finish: Option<Finish>,
}

/// The model's reason for ending its reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finish {
    /// As the model said it (`STOP`, `SAFETY`…), for the log.
    pub reason: String,
    /// A content policy stopped the reply, possibly mid-sentence (a refusal: never failed over).
    pub policy: bool,
    /// The model's token limit cut the reply (Gemini `MAX_TOKENS`, OpenAI `length`).
    pub token_limit: bool,
}

/// Why a model call failed. Labels (for the log) come from [`Failure::label`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// No API key is configured: the model was never called.
    MissingApiKey,
    /// The conversation store could not begin the turn: the model was never called.
    Storage,
    /// The request did not reach the model (DNS, connection refused, reset before headers).
    Unreachable,
    /// The model answered with this non-200 HTTP status.
    Http(u16),
    /// The model answered 200 without a readable body.
    NoBody,
    /// The caller heard nothing for `Limits::silence_ms`.
    Timeout,
    /// The body broke off with a network error.
    Network,
    /// An event's JSON could not be read.
    UnreadableEvent,
    /// The stream carried an error object.
    StreamError,
    /// The prompt was blocked (`promptFeedback.blockReason`).
    Blocked,
    /// The body ended inside an event (or was an unframed error body).
    IncompleteStream,
    /// One event was larger than any real one.
    OversizedEvent,
    /// The body ended cleanly but without a finish reason: a cut connection looks like this.
    Truncated,
    /// The model finished (the reason is kept) without a single speakable word.
    NothingSpoken,
    /// The entry said nothing speakable and called nothing within its `first_token_ms`.
    FirstTokenTimeout,
}

impl Failure {
    /// The `ending` label of the log line.
    pub fn label(&self) -> String {
        match self {
            Failure::MissingApiKey => "missing_api_key".into(),
            Failure::Storage => "storage_error".into(),
            Failure::Unreachable => "unreachable".into(),
            Failure::Http(status) => format!("http_{status}"),
            Failure::NoBody => "no_body".into(),
            Failure::Timeout => "timeout".into(),
            Failure::Network => "network".into(),
            // The label predates the name; kept so that log queries keep matching.
            Failure::UnreadableEvent => "unreadable_chunk".into(),
            Failure::StreamError => "stream_error".into(),
            Failure::Blocked => "blocked".into(),
            Failure::IncompleteStream => "incomplete_stream".into(),
            Failure::OversizedEvent => "oversized_event".into(),
            Failure::Truncated => "truncated".into(),
            Failure::NothingSpoken => "nothing_spoken".into(),
            Failure::FirstTokenTimeout => "first_token_timeout".into(),
        }
    }
}

/// A failed attempt to open the model's stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenError {
    pub failure: Failure,
    /// The wire family's verdict: the same request may well succeed a moment later.
    pub retryable: bool,
}

/// The model: opens one streamed reply per call.
pub trait Model {
    type Stream: ReplyStream;
    /// Sends the request; `Ok` once the answer is a readable 200 stream.
    fn open(&mut self) -> impl Future<Output = Result<Self::Stream, OpenError>>;
    /// Makes the next `open` ask again after tool calls: the original request followed by every
    /// step of this turn so far. `calling_allowed` false forbids further calls (the last round).
    fn follow_up(&mut self, _steps: &[ToolStep], _calling_allowed: bool) {}
    /// How long the entry being asked may take to its first speakable text or tool call, if it
    /// has a bound of its own (the engine's silence bound applies regardless).
    fn first_token_ms(&self) -> Option<u64> {
        None
    }
    /// Abandons the entry being asked (its requests are aborted) so the next `open` asks the
    /// next entry of the chain; false when there is none. The engine decides when.
    fn fail_over(&mut self) -> bool {
        false
    }
}

/// A streamed reply.
pub trait ReplyStream {
    /// The next piece; `Ok(None)` at the clean end of the body.
    fn next(&mut self) -> impl Future<Output = Result<Option<Piece>, Failure>>;
    /// Once the stream has ended: the model's parts exactly as received and the function calls
    /// among them. A model without tools has none.
    fn take_step(&mut self) -> ModelStep {
        ModelStep::default()
    }
    /// Whether a function call has begun in this stream (its first fragment arrived): the model
    /// has answered, even though nothing is spoken yet.
    fn calling(&self) -> bool {
        false
    }
}

/// One function call of the model, in no wire's shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionCall {
    /// The model's id; echoed in the answer only when the model gave one.
    pub id: Option<String>,
    pub name: String,
    /// The arguments: a JSON object. Anything else (the model's text was not a JSON object, as
    /// the OpenAI wire can stream it) is kept as is, and the call is answered with an error and
    /// never run.
    pub args: Value,
}

/// One round of the model, as the stream delivered it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelStep {
    /// The round exactly as its wire family must send it back in the follow-up request, opaque
    /// to everyone else: Gemini's parts verbatim (signatures, signature-only empty text parts
    /// and thoughts included); the OpenAI wire's one `assistant` message with its `tool_calls`
    /// (arguments as the model wrote them) and any `reasoning_content`.
    pub parts: Vec<Value>,
    pub calls: Vec<FunctionCall>,
}

/// The answer to one call, for the follow-up request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionResponse {
    pub name: String,
    pub id: Option<String>,
    /// `{"output": …}` or `{"error": "…"}`.
    pub response: Value,
}

/// One finished tool round: what the model said (its family's replay, see [`ModelStep`]), its
/// calls, and one answer per call, in call order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolStep {
    pub model_parts: Vec<Value>,
    pub calls: Vec<FunctionCall>,
    pub responses: Vec<FunctionResponse>,
}

/// Token counts of one model call, whatever the wire calls them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    pub total_tokens: Option<u64>,
}

/// Stands in for the caller when the window starts with the agent (e.g. after a welcome
/// message): Gemini requires the conversation to start with a user turn, and strict chat
/// templates behind OpenAI-compatible servers require user and assistant to alternate.
pub const CALL_STARTED_BRIDGE: &str = "(The caller joined the call.)";

/// The stored history as a conversation every wire accepts: starting with the caller (the
/// bridge above when it starts with the agent), alternating (adjacent messages of one role are
/// joined by a newline), never an empty text.
pub fn conversation(history: &[HistoryMessage]) -> Vec<(Role, String)> {
    let mut turns: Vec<(Role, String)> = Vec::new();
    for message in history {
        let text = message.text.trim();
        if text.is_empty() {
            continue;
        }
        match turns.last_mut() {
            Some((role, merged)) if *role == message.role => {
                merged.push('\n');
                merged.push_str(text);
            }
            _ => turns.push((message.role, text.to_string())),
        }
    }
    if turns
        .first()
        .is_some_and(|(role, _)| *role == Role::Assistant)
    {
        turns.insert(0, (Role::User, CALL_STARTED_BRIDGE.to_string()));
    }
    turns
}

/// What a turn asks, whatever the wire: the system prompt, the history (ending with the new
/// user message) and the tools declared (empty: none).
#[derive(Debug, Clone, Default)]
pub struct Ask {
    pub system_prompt: String,
    pub history: Vec<HistoryMessage>,
    pub tools: Vec<crate::tools::Declaration>,
}

/// What the log line reports about the model calls of one turn.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallReport {
    /// Requests actually sent (a retry makes two).
    pub requests: u32,
    /// HTTP status of the last answer.
    pub status: Option<u16>,
    /// The last upstream error as codes (`gemini::UpstreamError::for_log`,
    /// `openai::ApiError::for_log`), never the upstream's message.
    pub error: Option<String>,
    /// The last usage counts the model reported.
    pub usage: Option<Usage>,
}
