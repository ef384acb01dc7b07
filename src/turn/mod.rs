//! One spoken turn, run inside the conversation's Durable Object: begin it in the store, let the
//! engine speak the model's reply into the SSE response, store what the caller heard, log one
//! line (`log`).
//!
//! This is the runtime glue; the decisions (retry, silence, barge-in, apology, what to store)
//! are the engine's, where they are tested natively. The handler returns the SSE response at
//! once and the turn runs as a task of the object, writing into the response's stream. Here the
//! engine's traits meet the runtime: `clock` (Workers timers), `speaker` (the SSE response),
//! `tool_runner` (the turn's tools), and the configured chain of models (`llm::chain`) as the
//! model. `welcome` is the `session.start` turn; `summary` folds what is about to leave the
//! history window, after a turn has ended.
//!
//! May import: `store`, `engine` and every layer below them (see `tests/layers.rs`).

mod clock;
mod log;
mod speaker;
mod summary;
mod tool_runner;
mod welcome;

use std::cell::RefCell;
use std::rc::Rc;

use worker::wasm_bindgen_futures::spawn_local;
use worker::web_sys::AbortSignal;
use worker::{console_error, Response};

pub use welcome::start_welcome;

use crate::config::Config;
use crate::engine::{self, Clock, Ending, Limits, ToolLimits, TurnOutcome};
use crate::history::HistoryMessage;
use crate::layercode::event_stream::EventStream;
use crate::layercode::events::{CallContext, Message};
use crate::llm::chain::{Chain, EntryReport};
use crate::llm::{Ask, Failure};
use crate::placeholders::{self, Values};
use crate::store::{Begun, StartWrites, Store};
use crate::summary::prompt_with_summary;
use crate::tools::memory::{self, PastCall};
use crate::tools::{self, http::HttpTool};
use clock::WorkerClock;
use log::TurnLog;
use speaker::Recorder;
use tool_runner::TurnTools;

/// Starts a `message` turn and returns its SSE response immediately.
pub fn start_message(
    store: Store,
    config: Rc<Config>,
    message: Message,
    request_signal: AbortSignal,
) -> worker::Result<Response> {
    let (stream, response) = EventStream::open(Some(message.turn_id.clone()), request_signal)?;
    spawn_local(run_message(store, config, message, stream));
    Ok(response)
}

async fn run_message(store: Store, config: Rc<Config>, message: Message, mut stream: EventStream) {
    let clock = WorkerClock;
    if let Err(error) = &config.tools {
        // Refused whole: this turn runs without tools (`/health` shows the same message).
        console_error!("TOOLS is not used: {error}");
    }
    if let Err(error) = &config.models {
        // Refused whole: this turn runs with the default Gemini entry (`/health` says why).
        console_error!("MODELS is not used: {error}");
    }
    for entry in config.chain.iter().filter(|e| !e.key_present()) {
        console_error!(
            "{} is not set (the key of {} model {}): put it in .dev.vars locally or run \
             `npx wrangler secret put {}`; that model is skipped",
            entry.key_name,
            entry.api.name(),
            entry.model,
            entry.key_name
        );
    }
    let mut log = TurnLog::new(
        "message",
        &message.conversation_id,
        Some(&message.turn_id),
        &clock,
    );
    let begun = store.begin_turn(
        &message.turn_id,
        &message.text,
        message.interruption_context.as_ref(),
    );
    let (store, history, summary, writes) = match begun {
        Ok(Begun::Redelivered { same_text }) => {
            // Layercode redelivers a turn whose answer it did not get: say it again, from the
            // store, rather than leave the caller in silence or ask the model twice.
            let outcome = if same_text {
                "redelivered"
            } else {
                // Same turn id, other words: still one turn, answered once; worth a look.
                "redelivered_other_text"
            };
            let replayed = replay(&store, &message.turn_id, &mut stream, &config, &clock).await;
            stream.end().await;
            log.chars_out = replayed;
            return log.emit_without_reply(outcome, &clock);
        }
        Ok(Begun::Ready(start)) => (
            Some(store),
            start.history,
            start.summary,
            Some(start.writes),
        ),
        // The conversation cannot be read: the turn is only an apology, nothing is stored.
        Err(error) => {
            log.storage_error = Some(format!("begin_turn: {error}"));
            (None, Vec::new(), None, None)
        }
    };
    // Stored right after the first model request leaves (see `Store::commit`), or after the
    // turn if none does; the first of the two wins.
    let start = Rc::new(RefCell::new(PendingStart {
        writes: store.clone().zip(writes),
        error: None,
    }));

    // What the model did with tools in earlier turns (their rounds are not replayed).
    let past_calls = match &store {
        Some(store) if !config.tool_entries().is_empty() => {
            store.past_tool_calls().unwrap_or_else(|e| {
                log.storage_error = Some(format!("past_tool_calls: {e}"));
                Vec::new()
            })
        }
        _ => Vec::new(),
    };
    let sent = store.as_ref().map(|store| store.track(&message.turn_id));
    let mut speaker = Recorder {
        stream: &mut stream,
        sent: sent.unwrap_or_default(),
    };
    let (outcome, reports) = match &store {
        None => {
            let outcome = apologise_for(Failure::Storage, &mut speaker, &clock).await;
            (outcome, Vec::new())
        }
        Some(_) => {
            let start = start.clone();
            let on_sent = move || start.borrow_mut().commit();
            let values = call_values(&config, &config.system_prompt, &message.call);
            let prompt = placeholders::expand(&config.system_prompt, &values);
            let asked = Asked {
                conversation_id: &message.conversation_id,
                turn_id: &message.turn_id,
                system_prompt: &prompt_with_summary(&prompt, summary.as_deref()),
                history: &history,
                past_calls: &past_calls,
            };
            reply(&config, asked, &mut speaker, &clock, on_sent).await
        }
    };
    start.borrow_mut().commit();
    if let Some(error) = start.borrow_mut().error.take() {
        log.storage_error = Some(format!("commit: {error}"));
    }
    let frames_taken = stream.frames_taken();
    let end_taken = stream.end().await;
    // A caller gone before the end did not hear the whole reply (and perhaps none of it).
    let outcome = outcome.after_delivery(end_taken, frames_taken);

    if let Some(store) = &store {
        store.untrack(&message.turn_id);
        if let Err(e) =
            store.finish_turn(&message.turn_id, &outcome.heard(), outcome.ending.status())
        {
            log.storage_error = Some(format!("finish_turn: {e}"));
        }
        let calls = tool_runner::past_calls(&outcome.tools);
        if let Err(e) = store.remember_tool_calls(&message.turn_id, &calls) {
            log.storage_error = Some(format!("remember_tool_calls: {e}"));
        }
    }
    log.emit(&outcome, &reports, &clock);
    // After `response.end` and the turn's writes: never on the path to anyone's first word.
    if let Some(store) = &store {
        summary::after_turn(store, &config, &message.conversation_id).await;
    }
}

/// What a call's placeholders are filled from: the event's `custom_metadata` and phone
/// numbers, and, only if `template` asks for them, the date and time in `TIME_ZONE`.
fn call_values<'a>(config: &Config, template: &str, call: &'a CallContext) -> Values<'a> {
    Values {
        metadata: call.custom_metadata.as_ref(),
        caller_number: call.from_phone_number.as_deref(),
        agent_number: call.to_phone_number.as_deref(),
        now: placeholders::uses_clock(template)
            .then(|| placeholders::local_time_in(&config.time_zone)),
    }
}

/// What a turn asks the model.
struct Asked<'a> {
    conversation_id: &'a str,
    turn_id: &'a str,
    /// `SYSTEM_PROMPT` with its placeholders filled, and the summary of the call so far.
    system_prompt: &'a str,
    history: &'a [HistoryMessage],
    /// Tool calls of earlier turns (see `tools::memory`); used only with tools configured.
    past_calls: &'a [PastCall],
}

/// Streams the model's reply through the engine, along the configured chain of models; with
/// tools configured, through the engine's tool loop, reminding the model of its past calls.
/// Returns the outcome and each model asked, in order.
async fn reply(
    config: &Config,
    asked: Asked<'_>,
    speaker: &mut Recorder<'_>,
    clock: &WorkerClock,
    on_sent: impl FnOnce() + 'static,
) -> (TurnOutcome, Vec<EntryReport>) {
    let hangup = speaker.stream.hangup();
    let limits = Limits::new(
        config.gemini_timeout_ms,
        config.turn_max_ms,
        config.reply_max_chars,
    );
    let entries = config.tool_entries();
    let (outcome, mut chain) = if entries.is_empty() {
        let ask = Ask {
            system_prompt: asked.system_prompt.to_string(),
            history: asked.history.to_vec(),
            tools: Vec::new(),
        };
        let mut chain =
            Chain::new(config.chain.clone(), config.gemini_timeout_ms, ask).on_sent(on_sent);
        let outcome = engine::run(&mut chain, speaker, clock, hangup, limits).await;
        (outcome, chain)
    } else {
        let secret = config.tools_signing_secret.clone();
        let registry = tools::registry(entries, |spec| {
            Box::new(HttpTool::new(spec.clone(), secret.clone()))
        });
        let ask = Ask {
            system_prompt: memory::prompt_with_calls(asked.system_prompt, asked.past_calls),
            history: asked.history.to_vec(),
            tools: tools::declarations(&registry),
        };
        let tools = TurnTools {
            registry,
            conversation_id: asked.conversation_id.to_string(),
            turn_id: asked.turn_id.to_string(),
        };
        let mut chain =
            Chain::new(config.chain.clone(), config.gemini_timeout_ms, ask).on_sent(on_sent);
        let tool_limits = ToolLimits::new(config.max_tool_rounds);
        let outcome = engine::run_with_tools(
            &mut chain,
            speaker,
            clock,
            hangup,
            limits,
            &tools,
            tool_limits,
        )
        .await;
        (outcome, chain)
    };
    if outcome.ending != Ending::Complete {
        // Stop paying for tokens nobody will hear, and free the connection.
        chain.abort();
    }
    (outcome, chain.reports())
}

/// Speaks what a turn stored, after waiting for it to finish if it is still running here.
/// Returns the characters spoken.
async fn replay(
    store: &Store,
    turn_id: &str,
    stream: &mut EventStream,
    config: &Config,
    clock: &WorkerClock,
) -> usize {
    let give_up_at = clock.now_ms().saturating_add(config.turn_max_ms);
    while store.is_running(turn_id) && clock.now_ms() < give_up_at {
        clock.sleep(REPLAY_POLL_MS).await;
    }
    let text = match store.stored_reply(turn_id) {
        Ok(Some(text)) => text,
        _ => return 0,
    };
    let heard = !text.trim().is_empty() && stream.tts(&text).await;
    if heard {
        text.chars().count()
    } else {
        0
    }
}

/// How often a redelivery checks whether the first delivery's turn has finished.
const REPLAY_POLL_MS: u64 = 25;

/// A turn's start, stored once: when the first model request has left, or after the turn.
struct PendingStart {
    writes: Option<(Store, StartWrites)>,
    error: Option<String>,
}

impl PendingStart {
    fn commit(&mut self) {
        if let Some((store, writes)) = self.writes.take() {
            self.error = store.commit(&writes).err().map(|e| e.to_string());
        }
    }
}

/// The model cannot even be asked: the engine still ends the turn with an apology.
async fn apologise_for(
    failure: Failure,
    speaker: &mut Recorder<'_>,
    clock: &WorkerClock,
) -> TurnOutcome {
    // A chain with nothing in it, and the turn's own hang-up: the same engine code as every
    // turn's, not a second copy of it in the wasm.
    let mut model = Chain::unavailable(failure);
    let limits = Limits::new(1000, 1000, 0);
    let hangup = speaker.stream.hangup();
    engine::run(&mut model, speaker, clock, hangup, limits).await
}
