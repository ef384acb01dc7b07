//! The turn engine: one spoken reply, from opening the model's stream to the last word, over
//! three small traits (the model, the speaker, the clock) so every fault, timeout and barge-in
//! case runs as a native test in milliseconds (`tests.rs`). The runtime glue in `turn/` plugs in
//! Gemini, the SSE response and the Workers timers. The model's trait and the types it speaks
//! are the model layer's (`llm`); the tool rounds are `tool_loop`, over a [`ToolRunner`].
//!
//! What the engine decides, and nothing else does:
//! * failover: in the turn's first round, before the caller heard a word and before any tool
//!   call, a failure that allows it ([`fails_over`]) or an entry silent past its own
//!   `first_token_ms` moves the turn to the next model of the chain (`Model::fail_over`, which
//!   aborts the abandoned request); never on a refusal, never past the silence bound;
//! * retry: once a retryable failure happened before anything was spoken, and only while the
//!   silence deadline leaves room (the model module says *whether* a failure is retryable);
//! * silence: the caller never waits longer than `Limits::silence_ms` between two things heard;
//!   only speech moves that deadline, not pieces that carry nothing speakable;
//! * the speech filter between the model's text and the speaker;
//! * barge-in: the speaker refusing a write, or hanging up while we wait, ends the turn at once;
//! * the ending: one [`Ending`] from which the stored status, the apology and the log derive;
//! * the summary call (`summary`): one request read to its end within a deadline, no retry.
//!
//! May import: `llm`, `layercode` and leaves (see `tests/layers.rs`); never the store or the
//! runtime glue above it.

use std::future::Future;
use std::pin::{pin, Pin};
use std::task::Poll;

use futures::future::poll_fn;

use serde_json::Value;

use crate::history::ReplyStatus;
use crate::llm::{Failure, Finish, Model, ReplyStream};
use crate::speech::SpeechFilter;

mod summary;
mod tool_loop;
pub use summary::write_summary;
pub use tool_loop::{
    run_with_tools, CallPlan, CallStatus, ToolCallReport, ToolLimits, ToolLog, ToolRunner,
};

/// Spoken when the model fails before saying anything.
pub const APOLOGY_BEFORE_REPLY: &str =
    "Sorry, I'm having trouble answering right now. Could you say that again in a moment?";
/// Spoken when the model fails part-way through a reply.
pub const APOLOGY_MID_REPLY: &str = "Sorry, I lost my train of thought there.";
/// Spoken when a reply is cut short (too long, stopped by a content policy mid-sentence, or cut
/// by the model's token limit).
pub const CLOSE_AFTER_CUT: &str = "I'll stop there.";

/// Why a reply was cut short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// The whole turn reached `Limits::turn_ms`.
    TurnTime,
    /// The spoken reply reached `Limits::reply_max_chars`.
    Length,
    /// The model stopped for a content policy after a half sentence.
    Policy,
    /// The model's own token limit cut its reply (Gemini `MAX_TOKENS`, OpenAI `length`).
    TokenLimit,
}

impl Cut {
    pub fn label(self) -> &'static str {
        match self {
            Cut::TurnTime => "turn_limit",
            Cut::Length => "length_limit",
            Cut::Policy => "policy_stop",
            Cut::TokenLimit => "token_limit",
        }
    }
}

/// Whether a failure before anything was heard may move the turn to the next model: the model
/// could not be reached or asked (unreachable, no key, 401, 403, 404, 408, 429, 5xx), or its
/// stream ended or broke with nothing speakable, or it was silent past its `first_token_ms`.
/// Never a refusal (a blocked prompt; a policy stop is caught before this is asked): another
/// provider must not be used to get around it. Never our own bad request (other 4xx, a
/// redirect), which would fail the same way anywhere, nor the silence bound, which is the
/// caller's whole wait.
pub fn fails_over(failure: &Failure) -> bool {
    match failure {
        Failure::Http(status) => {
            matches!(status, 401 | 403 | 404 | 408 | 429) || (500..=599).contains(status)
        }
        Failure::Unreachable
        | Failure::MissingApiKey
        | Failure::NoBody
        | Failure::Network
        | Failure::UnreadableEvent
        | Failure::StreamError
        | Failure::IncompleteStream
        | Failure::OversizedEvent
        | Failure::Truncated
        | Failure::NothingSpoken
        | Failure::FirstTokenTimeout => true,
        Failure::Blocked | Failure::Timeout | Failure::Storage => false,
    }
}

/// A model of the chain the turn moved away from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Abandoned {
    pub failure: Failure,
    /// From asking that model to abandoning it.
    pub ms: u64,
}

/// Where the caller hears the reply.
pub trait Speaker {
    /// Sends text to be spoken; false once the caller is gone (nothing more will be heard).
    fn speak(&mut self, text: &str) -> impl Future<Output = bool>;
    /// Sends JSON to the caller's app (`response.data`); false once the caller is gone.
    fn data(&mut self, _content: &Value) -> impl Future<Output = bool> {
        std::future::ready(true)
    }
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
    /// The longest a whole turn may take, speaking included.
    pub turn_ms: u64,
    /// The longest reply spoken, in characters.
    pub reply_max_chars: usize,
}

impl Limits {
    pub fn new(silence_ms: u64, turn_ms: u64, reply_max_chars: usize) -> Self {
        Limits {
            silence_ms,
            max_attempts: 2,
            retry_delay_ms: 250,
            turn_ms,
            reply_max_chars,
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
    /// The reply was cut short; the caller heard a short close (if still there).
    Cut(Cut),
}

impl Ending {
    /// The status the assistant's reply is stored with.
    pub fn status(&self) -> ReplyStatus {
        match self {
            Ending::Complete | Ending::Cut(_) => ReplyStatus::Complete,
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
            Ending::Cut(_) => "cut",
        }
    }

    /// What the caller is owed after `spoken`: an apology for a failure, a close for a cut.
    pub fn closing(&self, spoken: &str) -> Option<&'static str> {
        match self {
            Ending::Failed(_) if !has_words(spoken) => Some(APOLOGY_BEFORE_REPLY),
            Ending::Failed(_) => Some(APOLOGY_MID_REPLY),
            Ending::Cut(_) => Some(CLOSE_AFTER_CUT),
            Ending::Complete | Ending::Interrupted => None,
        }
    }
}

/// Everything a turn produced, for the store and the log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnOutcome {
    pub ending: Ending,
    /// The model's words exactly as sent to be spoken (the closing line is not part of it).
    pub spoken: String,
    /// The apology or close, if one was owed and the caller was still there to hear it.
    pub closing: Option<&'static str>,
    /// The model's finish reason, when it gave one.
    pub finish_reason: Option<String>,
    /// Attempts made to open the stream.
    pub attempts: u32,
    /// When the first speech (words or apology) was sent, on the clock, if ever.
    pub first_speech_at_ms: Option<u64>,
    /// The tool rounds and calls of the turn (empty without tools).
    pub tools: ToolLog,
    /// The chain's models abandoned before the one that answered (or failed last), in order.
    pub abandoned: Vec<Abandoned>,
}

impl TurnOutcome {
    /// What the caller heard of this turn, to store as the assistant's reply: the model's words,
    /// then the closing line as a new sentence. Storing an apology keeps the next request a
    /// proper user, model, user sequence, so a failure caused by the content itself does not
    /// repeat by merging into every later question.
    pub fn heard(&self) -> String {
        match (self.spoken.is_empty(), self.closing) {
            (_, None) => self.spoken.clone(),
            (true, Some(closing)) => closing.to_string(),
            (false, Some(closing)) => format!("{} {closing}", self.spoken),
        }
    }
}

impl TurnOutcome {
    /// The outcome once the speaker has closed: `end_taken` says whether the caller was still
    /// there for the end of the reply, `frames_taken` how many frames were taken before that.
    /// A reply the caller left is never stored as whole: it is interrupted. When at most one
    /// frame was taken, nothing is known to have been heard, since the runtime may report a
    /// hang-up only after the first frame that follows it (RELIABILITY.md, issue 22 item 4):
    /// the reply is stored as unheard, empty. Past the first frame, what was sent stays stored
    /// for a later interruption context to clamp.
    pub fn after_delivery(mut self, end_taken: bool, frames_taken: usize) -> TurnOutcome {
        if end_taken {
            return self;
        }
        self.ending = Ending::Interrupted;
        if frames_taken <= 1 {
            self.spoken.clear();
            self.closing = None;
        }
        self
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
    let mut turn = Turn::new(speaker, clock, hangup, limits);
    let ending = turn.reply(model, limits).await;
    turn.conclude(ending).await
}

/// Why the model's part of the turn stopped early; `Gone` means the caller left.
enum Stop {
    Failed(Failure),
    Cut(Cut),
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
    /// The next words start a new utterance (a model round after a tool's filler): a space
    /// keeps them from running into what was said before.
    separate_next: bool,
    abandoned: Vec<Abandoned>,
    /// When the model being asked was first asked, and how many requests it got.
    entry_started_ms: u64,
    entry_attempts: u32,
}

impl<'a, S: Speaker, C: Clock, H: Future<Output = ()>> Turn<'a, S, C, H> {
    /// A turn about to start: nothing said yet, the deadlines running from now.
    fn new(speaker: &'a mut S, clock: &'a C, hangup: H, limits: Limits) -> Self {
        Turn {
            speaker,
            clock,
            waiter: Waiter::new(clock, hangup, limits),
            spoken: String::new(),
            finish_reason: None,
            attempts: 0,
            first_speech_at_ms: None,
            separate_next: false,
            abandoned: Vec::new(),
            entry_started_ms: clock.now_ms(),
            entry_attempts: 0,
        }
    }

    /// Opens the stream (retrying, failing over as allowed), then speaks it to the end.
    async fn reply<M: Model>(&mut self, model: &mut M, limits: Limits) -> Result<(), Stop> {
        let (_stream, finish) = self.round(model, limits, true).await?;
        self.finish_reason = finish.as_ref().map(|f| f.reason.clone());
        match finish {
            None => Err(Stop::Failed(Failure::Truncated)),
            Some(_) if !has_words(&self.spoken) => Err(Stop::Failed(Failure::NothingSpoken)),
            Some(f) if f.token_limit => Err(Stop::Cut(Cut::TokenLimit)),
            Some(f) if f.policy && !ends_sentence(&self.spoken) => Err(Stop::Cut(Cut::Policy)),
            Some(_) => Ok(()),
        }
    }

    /// One model round: its stream opened and spoken to the end, with the model's finish. With
    /// `first` (the turn's first round, before any tool call) a failure before the caller heard
    /// a word moves on to the chain's next model where [`fails_over`] allows it, and so does a
    /// stream that ended with nothing speakable and no call, unless the model refused.
    async fn round<M: Model>(
        &mut self,
        model: &mut M,
        limits: Limits,
        first: bool,
    ) -> Result<(M::Stream, Option<Finish>), Stop> {
        if first {
            self.start_entry(model);
        }
        loop {
            let opened = self.open(model, limits, first).await;
            let read = match opened {
                Ok(mut stream) => match self.read(&mut stream, limits).await {
                    Ok(finish) => Ok((stream, finish)),
                    Err(stop) => Err(stop),
                },
                Err(stop) => Err(stop),
            };
            let failure = match read {
                Ok((stream, finish)) => {
                    let refused = finish.as_ref().is_some_and(|f| f.policy);
                    let answered = stream.calling() || has_words(&self.spoken);
                    if !first || answered || refused {
                        return Ok((stream, finish));
                    }
                    let failure = match finish {
                        None => Failure::Truncated,
                        Some(_) => Failure::NothingSpoken,
                    };
                    if self.fail_over(model, &failure) {
                        continue; // the abandoned stream is dropped here
                    }
                    // The last model: the caller's ending follows from the finish, as before.
                    return Ok((stream, finish));
                }
                Err(Stop::Failed(failure)) => failure,
                Err(stop) => return Err(stop),
            };
            if first && !has_words(&self.spoken) && self.fail_over(model, &failure) {
                continue;
            }
            return Err(Stop::Failed(failure));
        }
    }

    /// Starts the clock of the model about to be asked, and its own first-token bound.
    fn start_entry<M: Model>(&mut self, model: &M) {
        self.entry_started_ms = self.clock.now_ms();
        self.entry_attempts = 0;
        self.waiter.start_entry(model.first_token_ms());
    }

    /// Moves to the chain's next model if `failure` allows it and there is one; records the
    /// abandoned one.
    fn fail_over<M: Model>(&mut self, model: &mut M, failure: &Failure) -> bool {
        if !fails_over(failure) || !model.fail_over() {
            return false;
        }
        let ms = self.clock.now_ms().saturating_sub(self.entry_started_ms);
        self.abandoned.push(Abandoned {
            failure: failure.clone(),
            ms,
        });
        self.start_entry(model);
        true
    }

    /// Speaks a stream to its end; the model's finish, if it gave one.
    async fn read<R: ReplyStream>(
        &mut self,
        stream: &mut R,
        limits: Limits,
    ) -> Result<Option<Finish>, Stop> {
        let mut filter = SpeechFilter::new();
        let mut finish = None;
        loop {
            match self.waiter.wait(stream.next()).await? {
                Ok(Some(piece)) => {
                    if piece.finish.is_some() {
                        finish = piece.finish;
                    }
                    if stream.calling() {
                        self.waiter.answered();
                    }
                    self.say(&filter.push(&piece.text), limits).await?;
                }
                Ok(None) => break,
                Err(failure) => return Err(Stop::Failed(failure)),
            }
        }
        self.say(&filter.finish(), limits).await?;
        Ok(finish)
    }

    /// Opens the stream: `first` (the turn's first round) fails over first, then the model
    /// being asked gets its one retry as allowed.
    async fn open<M: Model>(
        &mut self,
        model: &mut M,
        limits: Limits,
        first: bool,
    ) -> Result<M::Stream, Stop> {
        loop {
            self.attempts += 1;
            self.entry_attempts += 1;
            let error = match self.waiter.wait(model.open()).await? {
                Ok(stream) => return Ok(stream),
                Err(error) => error,
            };
            if first && !has_words(&self.spoken) && self.fail_over(model, &error.failure) {
                continue;
            }
            // Retry only while the caller's wait leaves room for the pause and a real attempt.
            let room = self.waiter.left_ms() > limits.retry_delay_ms.saturating_mul(2);
            if !(error.retryable && self.entry_attempts < limits.max_attempts && room) {
                return Err(Stop::Failed(error.failure));
            }
            self.waiter
                .wait(self.clock.sleep(limits.retry_delay_ms))
                .await?;
        }
    }

    /// Speaks decided text; speech is what moves the silence deadline. Past the reply's length
    /// cap only the words that fit are spoken, and the reply is cut.
    async fn say(&mut self, text: &str, limits: Limits) -> Result<(), Stop> {
        let room = limits
            .reply_max_chars
            .saturating_sub(self.spoken.chars().count());
        let (text, cut) = fit_words(text, room);
        let separated;
        let mut text = text;
        if self.separate_next && !text.is_empty() {
            self.separate_next = false;
            let joined = !self.spoken.is_empty()
                && !self.spoken.ends_with(char::is_whitespace)
                && !text.starts_with(char::is_whitespace);
            if joined {
                separated = format!(" {text}");
                text = &separated;
            }
        }
        if !text.is_empty() {
            self.first_speech_at_ms.get_or_insert(self.clock.now_ms());
            if !self.speaker.speak(text).await {
                return Err(Stop::Gone);
            }
            self.spoken.push_str(text);
            // Punctuation alone ("…") is silence to the caller: it does not restart the wait.
            if has_words(text) {
                self.waiter.heard();
            }
        }
        if cut {
            return Err(Stop::Cut(Cut::Length));
        }
        Ok(())
    }

    /// Turns how the reply stopped into the outcome, apologising for failures.
    async fn conclude(mut self, result: Result<(), Stop>) -> TurnOutcome {
        let ending = match result {
            Ok(()) => Ending::Complete,
            Err(Stop::Gone) => Ending::Interrupted,
            Err(Stop::Failed(failure)) => Ending::Failed(failure),
            Err(Stop::Cut(cut)) => Ending::Cut(cut),
        };
        let mut closing = None;
        if let Some(text) = ending.closing(&self.spoken) {
            self.first_speech_at_ms.get_or_insert(self.clock.now_ms());
            let separated = if self.spoken.is_empty() {
                text.to_string()
            } else {
                format!(" {text}")
            };
            if self.speaker.speak(&separated).await {
                closing = Some(text);
            }
        }
        TurnOutcome {
            ending,
            spoken: self.spoken,
            closing,
            finish_reason: self.finish_reason,
            attempts: self.attempts,
            first_speech_at_ms: self.first_speech_at_ms,
            tools: ToolLog::default(),
            abandoned: self.abandoned,
        }
    }
}

/// `text` cut to at most `room` characters at a word boundary; true if anything was left out.
fn fit_words(text: &str, room: usize) -> (&str, bool) {
    match text.char_indices().nth(room) {
        None => (text, false),
        Some((end, _)) => {
            let head = &text[..end];
            // Keep whole words only: up to the last space, or nothing if one word is too long.
            let cut_at = head.rfind(char::is_whitespace).unwrap_or(0);
            (head[..cut_at].trim_end(), true)
        }
    }
}

/// Whether text holds anything a voice can say: a letter or a digit, in any script.
fn has_words(text: &str) -> bool {
    text.chars().any(char::is_alphanumeric)
}

/// Whether a reply ends a sentence (so a policy stop right there leaves nothing dangling).
fn ends_sentence(spoken: &str) -> bool {
    spoken
        .trim_end()
        .ends_with(['.', '!', '?', '…', '"', '\u{201D}', ')'])
}

/// Waits on the model while watching the deadlines and the caller hanging up.
///
/// One timer serves many waits: it is re-armed only when it fires early because speech moved
/// the silence deadline since it was set, so a fast stream costs no timer per piece.
struct Waiter<'a, C: Clock, H> {
    clock: &'a C,
    hangup: Pin<Box<H>>,
    silence_ms: u64,
    /// When the current silence runs out.
    silence_deadline_ms: u64,
    /// When the whole turn runs out.
    turn_deadline_ms: u64,
    /// When the model being asked runs out of its own `first_token_ms`, while it has said
    /// nothing and called nothing (only when earlier than the silence deadline).
    first_token_deadline_ms: Option<u64>,
    timer: Pin<Box<dyn Future<Output = ()> + 'a>>,
}

impl<'a, C: Clock, H: Future<Output = ()>> Waiter<'a, C, H> {
    fn new(clock: &'a C, hangup: H, limits: Limits) -> Self {
        let now = clock.now_ms();
        let silence_deadline_ms = now.saturating_add(limits.silence_ms);
        let turn_deadline_ms = now.saturating_add(limits.turn_ms);
        let first = silence_deadline_ms.min(turn_deadline_ms) - now;
        Waiter {
            clock,
            hangup: Box::pin(hangup),
            silence_ms: limits.silence_ms,
            silence_deadline_ms,
            turn_deadline_ms,
            first_token_deadline_ms: None,
            timer: Box::pin(clock.sleep(first)),
        }
    }

    /// The caller heard something: the silence starts again.
    fn heard(&mut self) {
        self.silence_deadline_ms = self.clock.now_ms().saturating_add(self.silence_ms);
        self.first_token_deadline_ms = None;
    }

    /// The model answered with a call: its first-token bound no longer applies.
    fn answered(&mut self) {
        self.first_token_deadline_ms = None;
    }

    /// A model is being asked: its own first-token bound, if it ends before the caller's
    /// silence does (the silence bound covers the whole chain regardless).
    fn start_entry(&mut self, first_token_ms: Option<u64>) {
        let now = self.clock.now_ms();
        let bound = self.silence_deadline_ms.min(self.turn_deadline_ms);
        self.first_token_deadline_ms = first_token_ms
            .map(|ms| now.saturating_add(ms))
            .filter(|deadline| *deadline < bound);
        if self.first_token_deadline_ms.is_some() {
            self.timer = Box::pin(self.clock.sleep(self.left_ms()));
        }
    }

    /// Time left before any deadline.
    fn left_ms(&self) -> u64 {
        let mut deadline = self.silence_deadline_ms.min(self.turn_deadline_ms);
        if let Some(first_token) = self.first_token_deadline_ms {
            deadline = deadline.min(first_token);
        }
        deadline.saturating_sub(self.clock.now_ms())
    }

    /// Which deadline has passed, if one has (the silence one, and the model's first-token
    /// one, only when `silence` is watched).
    fn expired(&self, silence: bool) -> Option<Stop> {
        let now = self.clock.now_ms();
        if now >= self.turn_deadline_ms {
            Some(Stop::Cut(Cut::TurnTime))
        } else if silence && now >= self.silence_deadline_ms {
            Some(Stop::Failed(Failure::Timeout))
        } else if silence && self.first_token_deadline_ms.is_some_and(|d| now >= d) {
            Some(Stop::Failed(Failure::FirstTokenTimeout))
        } else {
            None
        }
    }

    /// `future`'s output, unless a deadline passes or the caller hangs up first.
    async fn wait<T>(&mut self, future: impl Future<Output = T>) -> Result<T, Stop> {
        self.wait_watching(future, true).await
    }

    /// Like `wait`, but only the turn deadline and a hang-up count: tool calls are bounded by
    /// their own deadlines and covered by a filler, not by the model's silence limit.
    async fn wait_quietly<T>(&mut self, future: impl Future<Output = T>) -> Result<T, Stop> {
        self.wait_watching(future, false).await
    }

    /// The silence starts again after a quiet wait, with the timer set to match.
    fn restart_silence(&mut self) {
        self.heard();
        self.timer = Box::pin(self.clock.sleep(self.left_ms()));
    }

    async fn wait_watching<T>(
        &mut self,
        future: impl Future<Output = T>,
        silence: bool,
    ) -> Result<T, Stop> {
        if let Some(stop) = self.expired(silence) {
            return Err(stop);
        }
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
                None => match self.expired(silence) {
                    Some(stop) => return Err(stop),
                    None if silence => self.timer = Box::pin(self.clock.sleep(self.left_ms())),
                    None => {
                        let left = self.turn_deadline_ms.saturating_sub(self.clock.now_ms());
                        self.timer = Box::pin(self.clock.sleep(left));
                    }
                },
            }
        }
    }
}

#[cfg(test)]
mod tests;
