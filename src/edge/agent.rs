//! `POST /agent`: the Layercode webhook. Verifies the signature over the raw body, parses the
//! event and dispatches it: `message` and `session.start` stream SSE, the rest answer JSON.

use serde_json::json;
use worker::wasm_bindgen_futures::spawn_local;
use worker::web_sys::AbortSignal;
use worker::{console_log, Env, Request, Response};

use crate::config::{Config, LAYERCODE_WEBHOOK_SECRET};
use crate::conversation::{ConversationClient, Route};
use crate::edge::body;
use crate::error::{json_response, AppError};
use crate::layercode::event_stream::EventStream;
use crate::layercode::events::{self, DataEvent, WebhookEvent};
use crate::signature::{self, DEFAULT_TOLERANCE_SECS};
use crate::speech;

/// Webhook bodies larger than this are refused (a transcript of a long call is far smaller).
pub const MAX_WEBHOOK_BODY_BYTES: usize = 1024 * 1024;

pub async fn handle(mut req: Request, env: Env) -> Result<Response, AppError> {
    let config = Config::from_env(&env);
    if config.webhook_secrets.is_empty() {
        return Err(AppError::MissingSetting(LAYERCODE_WEBHOOK_SECRET));
    }
    let raw = body::read_limited(&mut req, MAX_WEBHOOK_BODY_BYTES).await?;
    // Aborts when Layercode disconnects (compatibility date 2026-11-17 and later).
    let caller = req.inner().signal();
    let header = req.headers().get("layercode-signature").ok().flatten();
    let now_secs = worker::js_sys::Date::now() as u64 / 1000;
    if let Err(reason) = signature::verify(
        header.as_deref(),
        &raw,
        &config.webhook_secrets,
        now_secs,
        DEFAULT_TOLERANCE_SECS,
    ) {
        log_event("rejected", None, reason.as_str());
        return Err(AppError::Unauthorized);
    }
    // Only now is the body trusted enough to parse.
    let (event, legacy) = events::parse_noting_legacy(&raw).map_err(AppError::BadRequest)?;
    if let Some(legacy) = legacy {
        // Answered as its current name; worth a look, so the pipeline can be updated.
        log_event(legacy, event.conversation_id(), "legacy_type_name");
    }

    // Turns run in the conversation's Durable Object, next to its history.
    let forward = |conversation_id: &str, route: Route| {
        let client = ConversationClient::new(&env, conversation_id);
        let (raw, caller) = (&raw, &caller);
        async move { client?.forward(route, raw, caller).await }
    };
    match event {
        WebhookEvent::Message(message) if !speech::says_something(&message.text) => {
            log_event("message", Some(&message.conversation_id), "no_words");
            Ok(end_turn_without_reply(message.turn_id, caller.clone())?)
        }
        WebhookEvent::Message(message) => {
            Ok(forward(&message.conversation_id, Route::Message).await?)
        }
        WebhookEvent::SessionStart(start) => {
            Ok(forward(&start.conversation_id, Route::SessionStart).await?)
        }
        WebhookEvent::Data(data) => {
            let reply = handle_data(&data);
            log_event("data", data.conversation_id.as_deref(), "ok");
            Ok(json_response(200, &reply.to_string())?)
        }
        WebhookEvent::SessionEnd(end) => {
            let response = forward(&end.conversation_id, Route::SessionEnd).await?;
            if response.status_code() != 200 {
                return Err(AppError::Internal("session.end was not recorded".into()));
            }
            log_event("session.end", Some(&end.conversation_id), "recorded");
            Ok(response)
        }
        WebhookEvent::SessionUpdate(update) => {
            // Recording results arrive here; fetching the recording would happen in the
            // background (it needs LAYERCODE_API_KEY), which this backend does not do yet.
            log_event("session.update", update.conversation_id.as_deref(), "ok");
            Ok(json_response(200, r#"{"status":"ok"}"#)?)
        }
        WebhookEvent::Unknown { kind } => {
            log_event(&kind, None, "ignored_unknown_type");
            Ok(json_response(200, r#"{"status":"ignored"}"#)?)
        }
    }
}

/// A `message` whose text is missing, null or blank: nothing to store and nothing to ask the
/// model, but Layercode waits for `response.end` to close the turn.
fn end_turn_without_reply(turn_id: String, caller: AbortSignal) -> worker::Result<Response> {
    let (stream, response) = EventStream::open(Some(turn_id), caller)?;
    // The end frame is taken once the response is being read, so after we return it; the
    // request stays alive while its body is open (as for the turns in the Durable Object).
    spawn_local(async move {
        stream.end().await;
    });
    Ok(response)
}

/// Answers `data` events (`client.response.data` from the browser). Layercode forwards this
/// JSON object to the client as `response.data`. This is where an app adds its own handling
/// (form submissions, button presses, UI state); the default acknowledges receipt.
fn handle_data(event: &DataEvent) -> serde_json::Value {
    json!({ "status": "ok", "received": !event.data.is_null() })
}

/// One structured line for events that are not spoken turns.
fn log_event(kind: &str, conversation_id: Option<&str>, outcome: &str) {
    let line = json!({
        "event": "webhook",
        "type": kind,
        "conversation_id": conversation_id,
        "outcome": outcome,
    });
    console_log!("{line}");
}
