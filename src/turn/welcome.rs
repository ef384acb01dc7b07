//! The `session.start` turn: the welcome message, its placeholders filled from the event,
//! spoken and stored once per session.

use std::rc::Rc;

use worker::wasm_bindgen_futures::spawn_local;
use worker::web_sys::AbortSignal;
use worker::Response;

use super::call_values;
use super::clock::WorkerClock;
use super::log::TurnLog;
use crate::config::Config;
use crate::engine::{Clock, Ending, TurnOutcome};
use crate::layercode::event_stream::EventStream;
use crate::layercode::events::SessionStart;
use crate::placeholders;
use crate::speech::clean_for_speech;
use crate::store::{welcome_key, Store};

/// Starts a `session.start` turn (the welcome message) and returns its SSE response.
pub fn start_welcome(
    store: Store,
    config: Rc<Config>,
    event: SessionStart,
    request_signal: AbortSignal,
) -> worker::Result<Response> {
    let (stream, response) = EventStream::open(event.turn_id.clone(), request_signal)?;
    spawn_local(run_welcome(store, config, event, stream));
    Ok(response)
}

async fn run_welcome(
    store: Store,
    config: Rc<Config>,
    event: SessionStart,
    mut stream: EventStream,
) {
    let clock = WorkerClock;
    let mut log = TurnLog::new(
        "session.start",
        &event.conversation_id,
        event.turn_id.as_deref(),
        &clock,
    );
    let values = call_values(&config, &config.welcome_message, &event.call);
    let welcome = clean_for_speech(&placeholders::expand(&config.welcome_message, &values));
    if welcome.is_empty() {
        stream.end().await;
        return log.emit_without_reply("silent", &clock);
    }
    let turn_id = welcome_key(event.turn_id.as_deref(), event.session_id.as_deref());
    let recorded = store.record_welcome(&turn_id, &welcome);
    match recorded {
        Ok(false) => {
            // A redelivered session.start: greet again rather than leave the caller in silence.
            if stream.tts(&welcome).await {
                log.chars_out = welcome.chars().count();
            }
            stream.end().await;
            return log.emit_without_reply("redelivered", &clock);
        }
        Ok(true) => {}
        // The caller should still be greeted; the log says the store failed.
        Err(e) => log.storage_error = Some(format!("record_welcome: {e}")),
    }
    let first_speech_at_ms = Some(clock.now_ms());
    let heard = stream.tts(&welcome).await;
    stream.end().await;
    let outcome = TurnOutcome {
        ending: if heard {
            Ending::Complete
        } else {
            Ending::Interrupted
        },
        spoken: if heard { welcome } else { String::new() },
        closing: None,
        finish_reason: None,
        attempts: 0,
        first_speech_at_ms,
        tools: Default::default(),
        abandoned: Vec::new(),
    };
    log.emit(&outcome, &[], &clock);
}
