//! The turn engine: one spoken reply, from opening the model's stream to the last word, over
//! three small traits (the model, the speaker, the clock) so every fault, timeout and barge-in
//! case runs as a native test in milliseconds (see the tests below). The runtime glue in
//! `turn.rs` plugs in Gemini, the SSE response and the Workers timers.
//!
//! What the engine decides, and nothing else does:
//! * retry: once a retryable failure happened before anything was spoken, and only while the
//!   silence deadline leaves room (the model module says *whether* a failure is retryable);
//! * silence: the caller never waits longer than `Limits::silence_ms` between two things heard;
//!   only speech moves that deadline, not chunks that carry nothing speakable;
//! * the speech filter between the model's text and the speaker;
//! * barge-in: the speaker refusing a write, or hanging up while we wait, ends the turn at once;
//! * the ending: one [`Ending`] from which the stored status, the apology and the log derive.

use std::future::Future;
use std::pin::{pin, Pin};
use std::task::Poll;

use futures::future::poll_fn;

use crate::history::ReplyStatus;
use crate::speech::SpeechFilter;

/// Spoken when the model fails before saying anything.
pub const APOLOGY_BEFORE_REPLY: &str =
    "Sorry, I'm having trouble answering right now. Could you say that again in a moment?";
/// Spoken when the model fails part-way through a reply.
pub const APOLOGY_MID_REPLY: &str = "Sorry, I lost my train of thought there.";

/// One piece of the model's reply: a text delta, and the finish reason on the last piece.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Piece {
    pub text: String,
    pub finish_reason: Option<String>,
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
    UnreadableChunk,
    /// The stream carried an error object.
    StreamError,
    /// The prompt was blocked (`promptFeedback.blockReason`).
    Blocked,
    /// The body ended inside an event (or was an unframed error body).
    IncompleteStream,
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
            Failure::UnreadableChunk => "unreadable_chunk".into(),
            Failure::StreamError => "stream_error".into(),
            Failure::Blocked => "blocked".into(),
            Failure::IncompleteStream => "incomplete_stream".into(),
            Failure::Truncated => "truncated".into(),
            Failure::NothingSpoken => "nothing_spoken".into(),
        }
    }
}

/// A failed attempt to open the model's stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenError {
    pub failure: Failure,
    /// The model module's verdict: the same request may well succeed a moment later.
    pub retryable: bool,
}

/// The model: opens one streamed reply per call.
pub trait Model {
    type Stream: ReplyStream;
    /// Sends the request; `Ok` once the answer is a readable 200 stream.
    fn open(&mut self) -> impl Future<Output = Result<Self::Stream, OpenError>>;
}

/// A streamed reply.
pub trait ReplyStream {
    /// The next piece; `Ok(None)` at the clean end of the body.
    fn next(&mut self) -> impl Future<Output = Result<Option<Piece>, Failure>>;
}

/// Where the caller hears the reply.
pub trait Speaker {
    /// Sends text to be spoken; false once the caller is gone (nothing more will be heard).
    fn speak(&mut self, text: &str) -> impl Future<Output = bool>;
}

/// Time, in milliseconds on any monotonic origin.
pub trait Clock {
    fn now_ms(&self) -> u64;
    fn sleep(&self, ms: u64) -> impl Future<Output = ()>;
}

/// The bounds of one turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The longest the caller waits between two things heard (before the first word, too).
    pub silence_ms: u64,
    /// Attempts to open the stream, counting the first.
    pub max_attempts: u32,
    /// Pause before a retry.
    pub retry_delay_ms: u64,
}

impl Limits {
    pub fn with_silence(silence_ms: u64) -> Self {
        Limits {
            silence_ms,
            max_attempts: 2,
            retry_delay_ms: 250,
        }
    }
}

/// How a turn ended. The stored status, the apology and the log's outcome all derive from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// The model finished and something was spoken.
    Complete,
    /// The caller went away (barge-in or hang-up) before the reply ended.
    Interrupted,
    /// The reply failed; the caller heard an apology (if still there).
    Failed(Failure),
}

impl Ending {
    /// The status the assistant's reply is stored with.
    pub fn status(&self) -> ReplyStatus {
        match self {
            Ending::Complete => ReplyStatus::Complete,
            Ending::Interrupted => ReplyStatus::Interrupted,
            Ending::Failed(_) => ReplyStatus::Failed,
        }
    }

    /// The `outcome` of the log line.
    pub fn outcome(&self) -> &'static str {
        match self {
            Ending::Complete => "complete",
            Ending::Interrupted => "interrupted",
            Ending::Failed(_) => "failed",
        }
    }

    /// The apology owed to the caller after `spoken`, if any.
    pub fn apology(&self, spoken: &str) -> Option<&'static str> {
        match self {
            Ending::Failed(_) if spoken.is_empty() => Some(APOLOGY_BEFORE_REPLY),
            Ending::Failed(_) => Some(APOLOGY_MID_REPLY),
            _ => None,
        }
    }
}

/// Everything a turn produced, for the store and the log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnOutcome {
    pub ending: Ending,
    /// The model's words exactly as sent to be spoken (the apology is not part of it).
    pub spoken: String,
    /// The apology, if one was owed and the caller was still there to hear it.
    pub apology: Option<&'static str>,
    /// The model's finish reason, when it gave one.
    pub finish_reason: Option<String>,
    /// Attempts made to open the stream.
    pub attempts: u32,
    /// When the first speech (words or apology) was sent, on the clock, if ever.
    pub first_speech_at_ms: Option<u64>,
}

impl TurnOutcome {
    /// What the caller heard of this turn, to store as the assistant's reply: the model's words,
    /// then the apology as a new sentence. Storing the apology keeps the next request a proper
    /// user, model, user sequence, so a failure caused by the content itself does not repeat by
    /// merging into every later question.
    pub fn heard(&self) -> String {
        match (self.spoken.is_empty(), self.apology) {
            (_, None) => self.spoken.clone(),
            (true, Some(apology)) => apology.to_string(),
            (false, Some(apology)) => format!("{} {apology}", self.spoken),
        }
    }
}

/// Runs one reply. `hangup` completes when the caller is gone (it may never complete).
pub async fn run<M, S, C>(
    model: &mut M,
    speaker: &mut S,
    clock: &C,
    hangup: impl Future<Output = ()>,
    limits: Limits,
) -> TurnOutcome
where
    M: Model,
    S: Speaker,
    C: Clock,
{
    let mut turn = Turn {
        speaker,
        clock,
        waiter: Waiter::new(clock, hangup, limits.silence_ms),
        spoken: String::new(),
        finish_reason: None,
        attempts: 0,
        first_speech_at_ms: None,
    };
    let ending = turn.reply(model, limits).await;
    turn.settle(ending).await
}

/// A failure ends the model's part of the turn; `Gone` means the caller left.
enum Stop {
    Failed(Failure),
    Gone,
}

struct Turn<'a, S, C: Clock, H> {
    speaker: &'a mut S,
    clock: &'a C,
    waiter: Waiter<'a, C, H>,
    spoken: String,
    finish_reason: Option<String>,
    attempts: u32,
    first_speech_at_ms: Option<u64>,
}

impl<S: Speaker, C: Clock, H: Future<Output = ()>> Turn<'_, S, C, H> {
    /// Opens the stream (retrying as allowed), then speaks it to the end.
    async fn reply<M: Model>(&mut self, model: &mut M, limits: Limits) -> Result<(), Stop> {
        let mut stream = self.open(model, limits).await?;
        let mut filter = SpeechFilter::new();
        loop {
            match self.waiter.wait(stream.next()).await? {
                Ok(Some(piece)) => {
                    if piece.finish_reason.is_some() {
                        self.finish_reason = piece.finish_reason;
                    }
                    self.say(&filter.push(&piece.text)).await?;
                }
                Ok(None) => break,
                Err(failure) => return Err(Stop::Failed(failure)),
            }
        }
        self.say(&filter.finish()).await?;
        match (&self.finish_reason, self.spoken.is_empty()) {
            (None, _) => Err(Stop::Failed(Failure::Truncated)),
            (Some(_), true) => Err(Stop::Failed(Failure::NothingSpoken)),
            (Some(_), false) => Ok(()),
        }
    }

    async fn open<M: Model>(&mut self, model: &mut M, limits: Limits) -> Result<M::Stream, Stop> {
        loop {
            self.attempts += 1;
            let error = match self.waiter.wait(model.open()).await? {
                Ok(stream) => return Ok(stream),
                Err(error) => error,
            };
            // Retry only while the caller's wait leaves room for the pause and a real attempt.
            let room = self.waiter.left_ms() > limits.retry_delay_ms.saturating_mul(2);
            if !(error.retryable && self.attempts < limits.max_attempts && room) {
                return Err(Stop::Failed(error.failure));
            }
            self.waiter
                .wait(self.clock.sleep(limits.retry_delay_ms))
                .await?;
        }
    }

    /// Speaks decided text; speech is what moves the silence deadline.
    async fn say(&mut self, text: &str) -> Result<(), Stop> {
        if text.is_empty() {
            return Ok(());
        }
        self.first_speech_at_ms.get_or_insert(self.clock.now_ms());
        if !self.speaker.speak(text).await {
            return Err(Stop::Gone);
        }
        self.spoken.push_str(text);
        self.waiter.heard();
        Ok(())
    }

    /// Turns how the reply stopped into the outcome, apologising for failures.
    async fn settle(mut self, result: Result<(), Stop>) -> TurnOutcome {
        let ending = match result {
            Ok(()) => Ending::Complete,
            Err(Stop::Gone) => Ending::Interrupted,
            Err(Stop::Failed(failure)) => Ending::Failed(failure),
        };
        let mut apology = None;
        if let Some(text) = ending.apology(&self.spoken) {
            self.first_speech_at_ms.get_or_insert(self.clock.now_ms());
            let separated = if self.spoken.is_empty() {
                text.to_string()
            } else {
                format!(" {text}")
            };
            if self.speaker.speak(&separated).await {
                apology = Some(text);
            }
        }
        TurnOutcome {
            ending,
            spoken: self.spoken,
            apology,
            finish_reason: self.finish_reason,
            attempts: self.attempts,
            first_speech_at_ms: self.first_speech_at_ms,
        }
    }
}

/// Waits on the model while watching the silence deadline and the caller hanging up.
///
/// One timer serves many waits: it is re-armed only when it fires early because speech moved
/// the deadline since it was set, so a fast stream costs no timer per chunk.
struct Waiter<'a, C: Clock, H> {
    clock: &'a C,
    hangup: Pin<Box<H>>,
    silence_ms: u64,
    deadline_ms: u64,
    timer: Pin<Box<dyn Future<Output = ()> + 'a>>,
}

impl<'a, C: Clock, H: Future<Output = ()>> Waiter<'a, C, H> {
    fn new(clock: &'a C, hangup: H, silence_ms: u64) -> Self {
        let deadline_ms = clock.now_ms().saturating_add(silence_ms);
        Waiter {
            clock,
            hangup: Box::pin(hangup),
            silence_ms,
            deadline_ms,
            timer: Box::pin(clock.sleep(silence_ms)),
        }
    }

    /// The caller heard something: the silence starts again.
    fn heard(&mut self) {
        self.deadline_ms = self.clock.now_ms().saturating_add(self.silence_ms);
    }

    fn left_ms(&self) -> u64 {
        self.deadline_ms.saturating_sub(self.clock.now_ms())
    }

    /// `future`'s output, unless the silence deadline passes or the caller hangs up first.
    async fn wait<T>(&mut self, future: impl Future<Output = T>) -> Result<T, Stop> {
        let mut future = pin!(future);
        loop {
            let woke = poll_fn(|cx| {
                if self.hangup.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Err(Stop::Gone));
                }
                if let Poll::Ready(value) = future.as_mut().poll(cx) {
                    return Poll::Ready(Ok(Some(value)));
                }
                match self.timer.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Ok(None)),
                    Poll::Pending => Poll::Pending,
                }
            })
            .await?;
            match woke {
                Some(value) => return Ok(value),
                None if self.left_ms() == 0 => return Err(Stop::Failed(Failure::Timeout)),
                None => self.timer = Box::pin(self.clock.sleep(self.left_ms())),
            }
        }
    }
}

#[cfg(test)]
mod tests;
