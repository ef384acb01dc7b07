//! One spoken turn, from the stored history to the last SSE event:
//! store → model → speech filter → stream, with barge-in, failures and the per-turn log line.
//!
//! The handler returns the SSE response at once; the turn itself runs in `wait_until`, writing
//! into the response's `TransformStream` as Gemini's chunks arrive.

use std::time::Duration;

use serde::Serialize;
use worker::{console_error, console_log, AbortController, Context, Delay, Env, Response};

use crate::config::{Config, GOOGLE_GENERATIVE_AI_API_KEY};
use crate::conversation::{ConversationClient, ReplyStatus};
use crate::deadline::within;
use crate::event_stream::EventStream;
use crate::events::{Message, SessionStart};
use crate::gemini::{self, ChunkReader, StreamItem, Usage};
use crate::history::HistoryMessage;
use crate::speech::{clean_for_speech, SpeechFilter};

/// Spoken when the model fails before saying anything.
pub const APOLOGY_BEFORE_REPLY: &str =
    "Sorry, I'm having trouble answering right now. Could you say that again in a moment?";
/// Spoken when the model fails part-way through a reply.
pub const APOLOGY_MID_REPLY: &str = "Sorry, I lost my train of thought there.";
/// Pause before the single retry of a retryable Gemini error.
const RETRY_DELAY: Duration = Duration::from_millis(250);

/// Starts a `message` turn and returns its SSE response immediately.
pub fn start_message(
    message: Message,
    config: Config,
    env: Env,
    ctx: &Context,
) -> worker::Result<Response> {
    let (stream, response) = EventStream::open(Some(message.turn_id.clone()))?;
    ctx.wait_until(run_message(message, config, env, stream));
    Ok(response)
}

/// Starts a `session.start` turn (the welcome message) and returns its SSE response.
pub fn start_session(
    event: SessionStart,
    config: Config,
    env: Env,
    ctx: &Context,
) -> worker::Result<Response> {
    let (stream, response) = EventStream::open(event.turn_id.clone())?;
    ctx.wait_until(run_welcome(event, config, env, stream));
    Ok(response)
}

async fn run_message(message: Message, config: Config, env: Env, mut stream: EventStream) {
    let mut log = TurnLog::new("message", &message.conversation_id, Some(&message.turn_id));
    let store = match ConversationClient::new(&env, &message.conversation_id) {
        Ok(store) => store,
        Err(e) => return fail_before_model(stream, log, &format!("storage binding: {e}")).await,
    };
    let begun = store
        .begin_turn(
            &message.turn_id,
            &message.text,
            message.interruption_context.clone(),
        )
        .await;
    let history = match begun {
        Ok(reply) if reply.duplicate => {
            // Layercode may deliver a turn twice; it was (or is being) answered already.
            log.outcome = "duplicate";
            stream.end().await;
            return log.emit();
        }
        Ok(reply) => reply.history,
        Err(e) => return fail_before_model(stream, log, &format!("begin_turn: {e}")).await,
    };

    let reply = speak_reply(&config, &history, &mut stream, &mut log).await;
    if let Some(apology) = reply.apology {
        // A new sentence after cut-off words, not glued to the last one.
        let separator = if reply.text.is_empty() { "" } else { " " };
        log.apology = stream.tts(&format!("{separator}{apology}")).await;
    }
    // The caller may have hung up while the model failed: then nobody heard the apology.
    log.interrupted |= !stream.connected();
    stream.end().await;
    log.total_ms = Some(log.elapsed_ms());

    if let Err(e) = store
        .finish_turn(&message.turn_id, &reply.text, reply.status)
        .await
    {
        log.storage_error = Some(e.to_string());
    }
    log.emit();
}

/// The model could not even be asked (storage down): apologise and end cleanly.
async fn fail_before_model(mut stream: EventStream, mut log: TurnLog, error: &str) {
    log.outcome = "storage_error";
    log.storage_error = Some(error.to_string());
    log.apology = stream.tts(APOLOGY_BEFORE_REPLY).await;
    stream.end().await;
    log.total_ms = Some(log.elapsed_ms());
    log.emit();
}

async fn run_welcome(event: SessionStart, config: Config, env: Env, mut stream: EventStream) {
    let mut log = TurnLog::new(
        "session.start",
        &event.conversation_id,
        event.turn_id.as_deref(),
    );
    let welcome = clean_for_speech(&config.welcome_message);
    if welcome.is_empty() {
        log.outcome = "silent";
        stream.end().await;
        return log.emit();
    }
    // Without a turn id the greeting is still stored, keyed by the session.
    let turn_id = event.turn_id.clone().unwrap_or_else(|| {
        format!(
            "welcome:{}",
            event.session_id.as_deref().unwrap_or("unknown")
        )
    });
    let recorded = match ConversationClient::new(&env, &event.conversation_id) {
        Ok(store) => store.record_welcome(&turn_id, &welcome).await,
        Err(e) => Err(e),
    };
    match recorded {
        Ok(reply) if reply.duplicate => log.outcome = "duplicate",
        recorded => {
            if let Err(e) = recorded {
                // The caller should still be greeted; the log says the store failed.
                log.storage_error = Some(e.to_string());
            }
            log.note_first_tts();
            log.interrupted = !stream.tts(&welcome).await;
            log.chars_out = welcome.chars().count();
        }
    }
    stream.end().await;
    log.total_ms = Some(log.elapsed_ms());
    log.emit();
}

/// How a model reply ended, decided from what happened while streaming.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// Gemini finished with this reason.
    Finished(String),
    /// The client went away mid-reply (barge-in).
    Interrupted,
    /// Something failed; the label goes to the log.
    Failed(String),
}

/// What to store and whether to apologise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpokenReply {
    /// Exactly the text that was sent to be spoken (the apology is not part of it).
    pub text: String,
    pub status: ReplyStatus,
    pub apology: Option<&'static str>,
}

/// Settles a reply: policy stops that produced no words and every failure earn an apology, so
/// the caller is never left in silence; an interrupted reply never does (nobody is listening).
pub fn settle(ending: &Ending, spoken: String) -> SpokenReply {
    let apology_for = |spoken: &str| {
        if spoken.is_empty() {
            APOLOGY_BEFORE_REPLY
        } else {
            APOLOGY_MID_REPLY
        }
    };
    match ending {
        Ending::Interrupted => SpokenReply {
            text: spoken,
            status: ReplyStatus::Interrupted,
            apology: None,
        },
        Ending::Finished(_) if !spoken.is_empty() => SpokenReply {
            text: spoken,
            status: ReplyStatus::Complete,
            apology: None,
        },
        // STOP with no text, SAFETY, RECITATION…: nothing was said, so say something.
        Ending::Finished(_) => SpokenReply {
            apology: Some(APOLOGY_BEFORE_REPLY),
            text: spoken,
            status: ReplyStatus::Failed,
        },
        Ending::Failed(_) => SpokenReply {
            apology: Some(apology_for(&spoken)),
            text: spoken,
            status: ReplyStatus::Failed,
        },
    }
}

/// Streams Gemini's reply for `history` into `stream`, filtered for speech.
async fn speak_reply(
    config: &Config,
    history: &[HistoryMessage],
    stream: &mut EventStream,
    log: &mut TurnLog,
) -> SpokenReply {
    let Some(api_key) = config.gemini_api_key.as_deref() else {
        console_error!(
            "{GOOGLE_GENERATIVE_AI_API_KEY} is not set: put it in .dev.vars locally or run \
             `npx wrangler secret put {GOOGLE_GENERATIVE_AI_API_KEY}`; answering with an apology"
        );
        let ending = Ending::Failed("missing_api_key".to_string());
        log.set_ending(&ending);
        return settle(&ending, String::new());
    };
    let controller = AbortController::default();
    let mut spoken = String::new();
    let ending = stream_reply(
        config,
        api_key,
        history,
        &controller,
        stream,
        &mut spoken,
        log,
    )
    .await;
    if !matches!(ending, Ending::Finished(_)) {
        // Stop paying for tokens nobody will hear, and free the connection.
        controller.abort();
    }
    log.set_ending(&ending);
    settle(&ending, spoken)
}

async fn stream_reply(
    config: &Config,
    api_key: &str,
    history: &[HistoryMessage],
    controller: &AbortController,
    stream: &mut EventStream,
    spoken: &mut String,
    log: &mut TurnLog,
) -> Ending {
    let timeout = Duration::from_millis(config.gemini_timeout_ms);
    let mut response = match connect(config, api_key, history, controller, log).await {
        Ok(response) => response,
        Err(ending) => return ending,
    };
    let mut reader = match ChunkReader::new(&mut response) {
        Ok(reader) => reader,
        Err(_) => return Ending::Failed("no_body".to_string()),
    };
    let mut filter = SpeechFilter::new();
    let mut finish_reason = None;
    loop {
        let item = match within(timeout, reader.next()).await {
            None => return Ending::Failed("timeout".to_string()),
            Some(Err(_)) => return Ending::Failed("network".to_string()),
            Some(Ok(item)) => item,
        };
        let data = match item {
            StreamItem::Event(data) => data,
            StreamItem::End(leftover) => {
                if let Some(leftover) = leftover {
                    let error = gemini::classify_error(200, &leftover, api_key);
                    log.gemini_error = Some(format!("{}: {}", error.status, error.message));
                    return Ending::Failed("incomplete_stream".to_string());
                }
                break;
            }
        };
        let chunk = match gemini::parse_chunk(&data, api_key) {
            Ok(chunk) => chunk,
            Err(_) => return Ending::Failed("unreadable_chunk".to_string()),
        };
        if let Some(error) = chunk.error {
            log.gemini_error = Some(format!("{}: {}", error.status, error.message));
            return Ending::Failed("stream_error".to_string());
        }
        if let Some(reason) = chunk.block_reason {
            return Ending::Failed(format!("blocked_{}", reason.to_lowercase()));
        }
        if chunk.usage.is_some() {
            log.usage = chunk.usage;
        }
        if !say(stream, &filter.push(&chunk.text), spoken, log).await {
            return Ending::Interrupted;
        }
        if chunk.finish_reason.is_some() {
            finish_reason = chunk.finish_reason;
        }
    }
    if !say(stream, &filter.finish(), spoken, log).await {
        return Ending::Interrupted;
    }
    match finish_reason {
        Some(reason) => Ending::Finished(reason),
        // A cut connection can look like a clean end of body.
        None => Ending::Failed("truncated".to_string()),
    }
}

/// Sends speakable text and keeps the record of what was sent. False once the client is gone.
async fn say(stream: &mut EventStream, text: &str, spoken: &mut String, log: &mut TurnLog) -> bool {
    if text.is_empty() {
        return stream.connected();
    }
    log.note_first_tts();
    if !stream.tts(text).await {
        return false;
    }
    spoken.push_str(text);
    log.chars_out += text.chars().count();
    true
}

/// Opens the Gemini stream, retrying once (quickly) on a retryable error before any byte was
/// spoken. A long `retryDelay` is never waited out: the caller hears an apology instead.
async fn connect(
    config: &Config,
    api_key: &str,
    history: &[HistoryMessage],
    controller: &AbortController,
    log: &mut TurnLog,
) -> Result<Response, Ending> {
    let url = gemini::stream_url(&config.gemini_api_base_url, &config.gemini_model);
    let body =
        gemini::request_body(&config.system_prompt, &config.gemini_model, history).to_string();
    let timeout = Duration::from_millis(config.gemini_timeout_ms);
    let signal = controller.signal();
    for attempt in 1..=2 {
        log.gemini_attempts = attempt;
        let last_attempt = attempt == 2;
        let mut response = match within(timeout, gemini::send(&url, api_key, &body, &signal)).await
        {
            None => return Err(Ending::Failed("timeout".to_string())),
            Some(Err(_)) if !last_attempt => {
                Delay::from(RETRY_DELAY).await;
                continue;
            }
            Some(Err(_)) => return Err(Ending::Failed("unreachable".to_string())),
            Some(Ok(response)) => response,
        };
        let status = response.status_code();
        log.gemini_status = Some(status);
        if status == 200 {
            return Ok(response);
        }
        let body = within(timeout, response.text())
            .await
            .and_then(Result::ok)
            .unwrap_or_default();
        let error = gemini::classify_error(status, &body, api_key);
        log.gemini_error = Some(format!("{}: {}", error.status, error.message));
        if error.retryable() && !last_attempt {
            Delay::from(RETRY_DELAY).await;
            continue;
        }
        return Err(Ending::Failed(format!("http_{status}")));
    }
    Err(Ending::Failed("unreachable".to_string()))
}

/// The one structured log line of a turn. Never holds user speech or secrets.
#[derive(Debug, Serialize)]
struct TurnLog {
    event: &'static str,
    #[serde(rename = "type")]
    kind: &'static str,
    conversation_id: String,
    turn_id: Option<String>,
    outcome: &'static str,
    ending: Option<String>,
    ms_to_first_tts: Option<u64>,
    total_ms: Option<u64>,
    gemini_status: Option<u16>,
    gemini_attempts: u32,
    gemini_error: Option<String>,
    chars_out: usize,
    interrupted: bool,
    apology: bool,
    prompt_tokens: Option<u64>,
    output_tokens: Option<u64>,
    storage_error: Option<String>,
    #[serde(skip)]
    usage: Option<Usage>,
    #[serde(skip)]
    started_ms: u64,
}

impl TurnLog {
    fn new(kind: &'static str, conversation_id: &str, turn_id: Option<&str>) -> Self {
        TurnLog {
            event: "turn",
            kind,
            conversation_id: conversation_id.to_string(),
            turn_id: turn_id.map(str::to_string),
            outcome: "complete",
            ending: None,
            ms_to_first_tts: None,
            total_ms: None,
            gemini_status: None,
            gemini_attempts: 0,
            gemini_error: None,
            chars_out: 0,
            interrupted: false,
            apology: false,
            prompt_tokens: None,
            output_tokens: None,
            storage_error: None,
            usage: None,
            started_ms: now_ms(),
        }
    }

    fn elapsed_ms(&self) -> u64 {
        now_ms().saturating_sub(self.started_ms)
    }

    fn note_first_tts(&mut self) {
        if self.ms_to_first_tts.is_none() {
            self.ms_to_first_tts = Some(self.elapsed_ms());
        }
    }

    fn set_ending(&mut self, ending: &Ending) {
        let (outcome, detail) = match ending {
            Ending::Finished(reason) => ("complete", reason.clone()),
            Ending::Interrupted => ("interrupted", "client_disconnected".to_string()),
            Ending::Failed(label) => ("failed", label.clone()),
        };
        self.outcome = outcome;
        self.interrupted = matches!(ending, Ending::Interrupted);
        self.ending = Some(detail);
    }

    fn emit(mut self) {
        if let Some(usage) = self.usage.take() {
            self.prompt_tokens = usage.prompt_token_count;
            self.output_tokens = usage.candidates_token_count;
        }
        match serde_json::to_string(&self) {
            Ok(line) => console_log!("{line}"),
            Err(e) => console_error!("turn log failed to serialise: {e}"),
        }
    }
}

fn now_ms() -> u64 {
    worker::Date::now().as_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_finished_reply_is_complete_without_apology() {
        let reply = settle(&Ending::Finished("STOP".into()), "Cheyenne.".into());
        assert_eq!(
            reply,
            SpokenReply {
                text: "Cheyenne.".into(),
                status: ReplyStatus::Complete,
                apology: None
            }
        );
    }

    #[test]
    fn max_tokens_keeps_the_text() {
        let reply = settle(&Ending::Finished("MAX_TOKENS".into()), "Long answer".into());
        assert_eq!(reply.status, ReplyStatus::Complete);
        assert_eq!(reply.apology, None);
    }

    #[test]
    fn a_policy_stop_with_no_words_gets_an_apology() {
        let reply = settle(&Ending::Finished("SAFETY".into()), String::new());
        assert_eq!(reply.status, ReplyStatus::Failed);
        assert_eq!(reply.apology, Some(APOLOGY_BEFORE_REPLY));
        assert_eq!(reply.text, "");
    }

    #[test]
    fn failures_apologise_according_to_what_was_said() {
        let before = settle(&Ending::Failed("http_503".into()), String::new());
        assert_eq!(before.apology, Some(APOLOGY_BEFORE_REPLY));
        let during = settle(&Ending::Failed("truncated".into()), "The capital".into());
        assert_eq!(during.apology, Some(APOLOGY_MID_REPLY));
        assert_eq!(during.text, "The capital");
        assert_eq!(during.status, ReplyStatus::Failed);
    }

    #[test]
    fn an_interrupted_reply_keeps_what_was_sent_and_stays_quiet() {
        let reply = settle(&Ending::Interrupted, "The capital of".into());
        assert_eq!(
            reply,
            SpokenReply {
                text: "The capital of".into(),
                status: ReplyStatus::Interrupted,
                apology: None
            }
        );
    }
}
