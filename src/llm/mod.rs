//! The model layer: what the turn engine asks of a model, and the wire families that answer it.
//!
//! This file is the contract: [`Model`] opens one streamed reply per call, a [`ReplyStream`]
//! yields [`Piece`]s of text and ends with the round's [`ModelStep`] (parts verbatim, function
//! calls), and failures are a [`Failure`] with the family's retry verdict ([`OpenError`]).
//! [`CallReport`] is what a model reports for the turn's log line.
//!
//! * `gemini/`: Google Gemini's wire (`streamGenerateContent?alt=sse`): request building, stream
//!   event parsing, error classification, and `GeminiModel`/`GeminiStream`;
//! * `http`: what any HTTP wire shares: sending the JSON request, reading an SSE body event by
//!   event.
//!
//! A wire family differs from another only in request building, stream parsing and error
//! classification: a new family is a folder next to `gemini/`, implementing [`Model`].
//!
//! May import: `layercode` and leaves (see `tests/layers.rs`); never the engine, which is generic
//! over this layer's traits.

use std::future::Future;

use serde::Deserialize;
use serde_json::Value;

pub mod gemini;
pub mod http;

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
    /// A content policy stopped the reply, possibly mid-sentence.
    pub policy: bool,
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
}

/// One function call of the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionCall {
    /// The model's id; echoed in the answer only when the model gave one.
    pub id: Option<String>,
    pub name: String,
    pub args: Value,
}

/// One round of the model, as the stream delivered it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelStep {
    /// Every part of the model's response, verbatim and in order (signatures, signature-only
    /// empty text parts and thoughts included): the follow-up request must send them back so.
    /// They are in the wire family's own shape (Gemini's `parts` today).
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

/// One finished tool round: what the model said and one answer per call, in call order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolStep {
    pub model_parts: Vec<Value>,
    pub responses: Vec<FunctionResponse>,
}

/// Token counts of one model call (the last event's are the totals). The names are Gemini's
/// `usageMetadata`, which deserialises into it as is.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    pub prompt_token_count: Option<u64>,
    pub candidates_token_count: Option<u64>,
    pub total_token_count: Option<u64>,
    pub thoughts_token_count: Option<u64>,
}

/// What the log line reports about the model calls of one turn.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallReport {
    /// Requests actually sent (a retry makes two).
    pub requests: u32,
    /// HTTP status of the last answer.
    pub status: Option<u16>,
    /// The last upstream error as codes (`gemini::UpstreamError::for_log`), never the
    /// upstream's message.
    pub error: Option<String>,
    /// The last usage counts the model reported.
    pub usage: Option<Usage>,
}
