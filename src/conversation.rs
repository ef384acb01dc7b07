//! The conversation: one SQLite-backed Durable Object per `conversation_id`, which runs that
//! conversation's turns next to its rows.
//!
//! The Worker verifies and parses a webhook, then hands the raw body to the object
//! ([`ConversationClient::forward`]); the object answers with the turn's SSE stream (or JSON) and
//! the Worker passes that response through. Running the turn here rather than in the Worker makes
//! the history a local, synchronous SQL read and the closing write local too: one hop per turn
//! instead of two, and no history serialised across it (BENCHMARKS.md has the measurements).
//!
//! [`Store`] is the SQL: each method is a run of synchronous `exec` calls with no `.await`
//! between them, which the runtime applies atomically.
//!
//! Retention: the tables are created by the first write (so reading an unknown id stores
//! nothing), every write also records the time of last activity, and the alarm, armed once per
//! object instance, erases the conversation once it has been idle for the retention period
//! (`retention::decide`).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use serde::{Deserialize, Serialize};
use worker::js_sys::Uint8Array;
use worker::wasm_bindgen_futures::spawn_local;
use worker::web_sys::{self, AbortSignal};
use worker::{
    console_error, console_log, durable_object, DurableObject, Env, Method, Request, Response,
    SqlStorage, SqlStorageValue, State,
};

use crate::config::Config;
use crate::events::{self, InterruptionContext, SessionEnd, WebhookEvent};
use crate::history::{
    bounded_window, heard_prefix, text_confirms, HistoryMessage, ReplyStatus, Role,
    WINDOW_MAX_CHARS, WINDOW_MAX_MESSAGES,
};
use crate::retention::{self, Activity, Decision};
use crate::tools::memory::{PastCall, REMEMBERED_CALLS};
use crate::turn;

/// The Durable Object binding in `wrangler.toml`.
const BINDING: &str = "CONVERSATIONS";

/// The events the object handles, each at its own path on the stub.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// A `message`: the turn's SSE stream.
    Message,
    /// A `session.start`: the welcome's SSE stream.
    SessionStart,
    /// A `session.end`: recorded, answered with JSON.
    SessionEnd,
}

impl Route {
    fn path(self) -> &'static str {
        match self {
            Route::Message => "/message",
            Route::SessionStart => "/session.start",
            Route::SessionEnd => "/session.end",
        }
    }

    fn from_path(path: &str) -> Option<Route> {
        [Route::Message, Route::SessionStart, Route::SessionEnd]
            .into_iter()
            .find(|route| route.path() == path)
    }
}

/// Where the object serves the conversations API: `GET` reads, `DELETE` erases.
const TRANSCRIPT_PATH: &str = "/transcript";

/// What `begin_turn` found.
#[derive(Debug, Clone, PartialEq)]
pub enum Begun {
    /// The `turn_id` was already recorded: never ask the model twice for one turn.
    Redelivered {
        /// Whether the user text is the one stored (a true redelivery) or not.
        same_text: bool,
    },
    /// A new turn, ready to ask the model.
    Ready(TurnStart),
}

/// A turn about to ask the model: its history, and the writes to make once it has.
#[derive(Debug, Clone, PartialEq)]
pub struct TurnStart {
    /// Recent history, oldest first, ending with the new user message.
    pub history: Vec<HistoryMessage>,
    pub writes: StartWrites,
}

/// What [`Store::commit`] stores for a new turn.
#[derive(Debug, Clone, PartialEq)]
pub struct StartWrites {
    turn_id: String,
    user_text: String,
    /// The interrupted reply's row and what the caller heard of it.
    interrupted: Option<(i64, String)>,
}

/// One stored message, as the conversations API returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredMessage {
    pub turn_id: String,
    pub role: Role,
    pub text: String,
    pub status: ReplyStatus,
    /// When the turn began, in milliseconds since the Unix epoch.
    pub created_at_ms: i64,
}

/// One recorded `session.end`: what is kept of the event and when it was recorded, as stored
/// and as the conversations API returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionRecord {
    pub session_id: String,
    pub transcript_messages: i64,
    pub duration_ms: Option<f64>,
    pub transcription_seconds: Option<f64>,
    pub tts_seconds: Option<f64>,
    pub latency: Option<f64>,
    pub recording_status: Option<String>,
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
    /// When the event was recorded, in milliseconds since the Unix epoch.
    pub recorded_at_ms: i64,
}

impl SessionRecord {
    /// What is kept of a `session.end` event recorded at `recorded_at_ms`.
    pub fn from_event(event: &SessionEnd, recorded_at_ms: i64) -> Self {
        let as_text = |v: &Option<serde_json::Value>| {
            v.as_ref().map(|v| match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            })
        };
        SessionRecord {
            session_id: event.session_id.clone().unwrap_or_default(),
            transcript_messages: event
                .transcript
                .as_ref()
                .map_or(0, |t| i64::try_from(t.len()).unwrap_or(i64::MAX)),
            duration_ms: event.duration,
            transcription_seconds: event.transcription_duration_seconds,
            tts_seconds: event.tts_duration_seconds,
            latency: event.latency,
            recording_status: event.recording_status.clone(),
            started_at: as_text(&event.started_at),
            ended_at: as_text(&event.ended_at),
            recorded_at_ms,
        }
    }
}

/// Everything stored for a conversation: messages in the order they were spoken (replies still
/// being generated are left out), and sessions in the order they ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transcript {
    pub messages: Vec<StoredMessage>,
    pub sessions: Vec<SessionRecord>,
}

/// The object's answer to a read: `None` when nothing is stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ReadReply {
    transcript: Option<Transcript>,
}

/// The object's answer to an erase: false when nothing was stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct EraseReply {
    erased: bool,
}

// ---------------------------------------------------------------------------------------------
// Worker side: the typed client.

/// Calls one conversation's Durable Object.
pub struct ConversationClient {
    stub: worker::Stub,
}

impl ConversationClient {
    pub fn new(env: &Env, conversation_id: &str) -> worker::Result<Self> {
        let stub = env.durable_object(BINDING)?.get_by_name(conversation_id)?;
        Ok(ConversationClient { stub })
    }

    /// Hands a verified webhook body to the object; its response goes back to Layercode as is.
    /// `caller` is the signal of Layercode's request: when Layercode hangs up (barge-in) the
    /// object's request is aborted too, so the turn notices at once.
    pub async fn forward(
        &self,
        route: Route,
        raw_body: &[u8],
        caller: &AbortSignal,
    ) -> worker::Result<Response> {
        let init = web_sys::RequestInit::new();
        init.set_method("POST");
        init.set_body(&Uint8Array::from(raw_body));
        init.set_signal(Some(caller));
        // The host is never resolved; the stub routes the request to the object.
        let url = format!("https://conversation{}", route.path());
        let request = web_sys::Request::new_with_str_and_init(&url, &init)?;
        self.stub.fetch_with_request(request.into()).await
    }

    /// Everything stored, or `None` for a conversation that does not exist (or expired).
    pub async fn read(&self) -> worker::Result<Option<Transcript>> {
        let reply: ReadReply = self.call_transcript(Method::Get).await?;
        Ok(reply.transcript)
    }

    /// Erases the conversation now; false if nothing was stored.
    pub async fn erase(&self) -> worker::Result<bool> {
        let reply: EraseReply = self.call_transcript(Method::Delete).await?;
        Ok(reply.erased)
    }

    async fn call_transcript<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
    ) -> worker::Result<T> {
        let init = web_sys::RequestInit::new();
        init.set_method(method.as_ref());
        let url = format!("https://conversation{TRANSCRIPT_PATH}");
        let request = crate::upstream::request(&url, &init)?;
        let mut response = self.stub.fetch_with_request(request).await?;
        if response.status_code() != 200 {
            let detail = response.text().await.unwrap_or_default();
            return Err(worker::Error::RustError(format!(
                "conversation store answered {}: {detail}",
                response.status_code()
            )));
        }
        let text = response.text().await?;
        // `from_slice`, not `from_str` (here and below): the wasm then holds one copy of
        // serde_json's parser, not a second one for `StrRead` (about 2 KB gzipped).
        serde_json::from_slice(text.as_bytes()).map_err(|_| unreadable_transcript())
    }
}

/// serde's message can quote a value, here a caller's words: it must not reach the log.
fn unreadable_transcript() -> worker::Error {
    worker::Error::RustError("the conversation store's transcript did not parse".into())
}

// ---------------------------------------------------------------------------------------------
// Object side: the Durable Object and its SQL.

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    turn_id TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
    text TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    UNIQUE (turn_id, role)
);
CREATE TABLE IF NOT EXISTS activity (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    last_active_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    session_id TEXT PRIMARY KEY,
    transcript_messages INTEGER NOT NULL,
    duration_ms REAL,
    transcription_seconds REAL,
    tts_seconds REAL,
    latency REAL,
    recording_status TEXT,
    started_at TEXT,
    ended_at TEXT,
    recorded_at_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS tool_calls (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    turn_id TEXT NOT NULL,
    call TEXT NOT NULL
);";

/// One conversation: its rows, and the turns that read and write them.
#[durable_object]
pub struct Conversation {
    /// Shared with the retention alarm, which every `Store` clone can arm.
    state: Rc<State>,
    store: Store,
    /// Read once per object instance: settings do not change while it lives.
    config: Rc<Config>,
}

impl DurableObject for Conversation {
    fn new(state: State, env: Env) -> Self {
        // No schema here: the tables are created by the first write (`Store::ensure_schema`).
        let sql = state.storage().sql();
        let state = Rc::new(state);
        let config = Config::from_env(&env);
        let alarm = Rc::new(RetentionAlarm {
            state: Rc::clone(&state),
            ttl_ms: config.conversation_ttl_ms,
            armed: Cell::new(false),
        });
        Conversation {
            state,
            store: Store {
                sql,
                in_flight: Rc::default(),
                schema_ready: Rc::new(Cell::new(false)),
                alarm,
            },
            config,
        }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        if req.path() == TRANSCRIPT_PATH {
            return match req.method() {
                Method::Get => self.read_response(),
                Method::Delete => self.erase_response().await,
                _ => Response::error("method not allowed", 405),
            };
        }
        let Some(route) = Route::from_path(&req.path()) else {
            return Response::error("unknown conversation route", 404);
        };
        // Read the body before answering: workerd cannot read it once a response was sent.
        let raw = req.bytes().await?;
        // Aborts when the Worker's request is cancelled: Layercode hung up (barge-in).
        let signal = req.inner().signal();
        let event = match events::parse(&raw) {
            Ok(event) => event,
            Err(e) => return Response::error(format!("bad event: {e}"), 400),
        };
        // Schema problems surface from the first write, as that write's storage error.
        let store = self.store.clone();
        match (route, event) {
            (Route::Message, WebhookEvent::Message(message)) => {
                turn::start_message(store, self.config.clone(), message, signal)
            }
            (Route::SessionStart, WebhookEvent::SessionStart(start)) => {
                turn::start_welcome(store, self.config.clone(), start, signal)
            }
            (Route::SessionEnd, WebhookEvent::SessionEnd(end)) => {
                match store.end_session(&SessionRecord::from_event(&end, unix_ms())) {
                    Ok(()) => Response::from_json(&serde_json::json!({ "status": "ok" })),
                    Err(e) => Response::error(format!("storage error: {e}"), 500),
                }
            }
            _ => Response::error("event does not match the route", 400),
        }
    }

    async fn alarm(&self) -> worker::Result<Response> {
        let activity = self.store.activity()?;
        let decision = retention::decide(unix_ms(), self.config.conversation_ttl_ms, activity);
        let action = match decision {
            Decision::KeepForever => {
                self.store.alarm.armed.set(false);
                "kept"
            }
            Decision::Erase if activity.last_active_ms.is_none() => {
                self.store.alarm.armed.set(false);
                "nothing_stored"
            }
            Decision::Erase => {
                self.erase().await?;
                "expired"
            }
            Decision::CheckAgainIn(ms) => {
                self.state.storage().set_alarm(ms).await?;
                "rearmed"
            }
        };
        self.log_retention(action);
        Response::ok("")
    }
}

impl Conversation {
    fn read_response(&self) -> worker::Result<Response> {
        match self.store.read() {
            Ok(transcript) => Response::from_json(&ReadReply { transcript }),
            Err(e) => Response::error(format!("storage error: {e}"), 500),
        }
    }

    async fn erase_response(&self) -> worker::Result<Response> {
        match self.erase().await {
            Ok(erased) => Response::from_json(&EraseReply { erased }),
            Err(e) => Response::error(format!("storage error: {e}"), 500),
        }
    }

    /// Deletes every row and the alarm; false when nothing was stored. Repeating it is
    /// harmless, which matters because alarms are delivered at least once.
    async fn erase(&self) -> worker::Result<bool> {
        if !self.store.has_schema()? {
            return Ok(false);
        }
        let storage = self.state.storage();
        // First, with no await since the caller's decision, so no write can slip in between.
        storage.delete_all().await?;
        // The live instance has no tables now: the next write recreates them and re-arms.
        self.store.schema_ready.set(false);
        self.store.alarm.armed.set(false);
        // `delete_all` removes the alarm too since compatibility date 2026-02-24; this keeps
        // erasure complete under an older date.
        storage.delete_alarm().await?;
        Ok(true)
    }

    /// One line per alarm: the conversation and what happened, never its content.
    fn log_retention(&self, action: &str) {
        let id = self.state.id();
        let line = serde_json::json!({
            "event": "retention",
            "conversation_id": id.name(),
            "object_id": id.to_string(),
            "action": action,
        });
        console_log!("{line}");
    }
}

/// The retention alarm of one object instance, shared by the object and every `Store` clone.
struct RetentionAlarm {
    state: Rc<State>,
    /// The retention period in milliseconds; `0` sets no alarm.
    ttl_ms: u64,
    /// This instance has armed the alarm: later writes leave it be, and the alarm handler
    /// re-arms it for as long as the conversation stays in use.
    armed: Cell<bool>,
}

impl RetentionAlarm {
    /// Arms the alarm once per instance, so a turn never waits on an alarm write. Spawned, so
    /// it is set after the write that asked for it, never ahead of the turn's Gemini request
    /// (a write holds back the object's later outgoing requests until it is durable).
    fn arm_once(self: &Rc<Self>) {
        if self.ttl_ms == 0 || self.armed.get() {
            return;
        }
        self.armed.set(true);
        let alarm = Rc::clone(self);
        spawn_local(async move {
            let ttl_ms = i64::try_from(alarm.ttl_ms).unwrap_or(i64::MAX);
            if let Err(e) = alarm.state.storage().set_alarm(ttl_ms).await {
                // The next write tries again.
                alarm.armed.set(false);
                console_error!("conversation: arming the retention alarm failed: {e}");
            }
        });
    }
}

/// The conversation's SQL, and what its running turns have sent so far. Cloning is cheap
/// (handles), so a turn can own one.
#[derive(Clone)]
pub struct Store {
    sql: SqlStorage,
    /// Text sent so far by each turn still running in this object, by `turn_id`: what an
    /// interruption context is checked against while the reply's row is still pending.
    in_flight: Rc<RefCell<HashMap<String, Rc<RefCell<String>>>>>,
    /// The tables exist. Shared by every clone: created lazily, gone again after an erase.
    schema_ready: Rc<Cell<bool>>,
    alarm: Rc<RetentionAlarm>,
}

/// The key a welcome is stored under: its own namespace, so a `message` that reuses the
/// `session.start` turn id (or a second session without one) never collides with it.
pub fn welcome_key(turn_id: Option<&str>, session_id: Option<&str>) -> String {
    fn non_empty(id: Option<&str>) -> Option<&str> {
        id.map(str::trim).filter(|id| !id.is_empty())
    }
    match (non_empty(turn_id), non_empty(session_id)) {
        (Some(turn_id), _) => format!("welcome:{turn_id}"),
        (None, Some(session_id)) => format!("welcome:session:{session_id}"),
        // Nothing identifies this delivery, so nothing can tell a redelivery apart.
        (None, None) => format!("welcome:at:{}", unix_ms()),
    }
}

#[derive(Deserialize)]
struct AssistantRow {
    seq: i64,
    turn_id: String,
    text: String,
}

#[derive(Deserialize)]
struct Count {
    n: i64,
}

#[derive(Deserialize)]
struct JsonRows {
    rows: String,
}

#[derive(Deserialize)]
struct TextRow {
    text: String,
}

#[derive(Deserialize)]
struct OptionalTime {
    ms: Option<i64>,
}

#[derive(Deserialize)]
struct MessageRow {
    seq: i64,
    role: String,
    text: String,
}

impl Store {
    /// Reads everything a turn needs before the model is asked: skips a duplicate delivery,
    /// works out what the caller heard of the reply they cut off, and returns the history
    /// window ending with the new user message. Writes nothing: see [`Store::commit`].
    pub fn begin_turn(
        &self,
        turn_id: &str,
        user_text: &str,
        interruption: Option<&InterruptionContext>,
    ) -> worker::Result<Begun> {
        if !self.has_schema()? {
            // A new (or erased) conversation: nothing to read, and nothing created yet.
            return Ok(Begun::Ready(TurnStart {
                history: vec![HistoryMessage::user(user_text)],
                writes: StartWrites {
                    turn_id: turn_id.to_string(),
                    user_text: user_text.to_string(),
                    interrupted: None,
                },
            }));
        }
        let earlier: Vec<TextRow> = self
            .sql
            .exec(
                "SELECT text FROM messages WHERE turn_id = ? AND role = 'user'",
                vec![turn_id.into()],
            )?
            .rows()?;
        if let Some(earlier) = earlier.into_iter().next() {
            // The first delivery already applied its interruption context; applying it again
            // could rewrite a newer reply (the "latest assistant turn" has moved on since).
            return Ok(Begun::Redelivered {
                same_text: earlier.text == user_text,
            });
        }
        // So the model sees what the user heard of the turn they cut off.
        let interrupted = match interruption.filter(|c| c.applies()) {
            Some(context) => self.heard_of(context)?,
            None => None,
        };
        let mut messages = self.recent_messages(interrupted.as_ref())?;
        messages.push(HistoryMessage::user(user_text));
        Ok(Begun::Ready(TurnStart {
            history: bounded_window(messages, WINDOW_MAX_MESSAGES, WINDOW_MAX_CHARS),
            writes: StartWrites {
                turn_id: turn_id.to_string(),
                user_text: user_text.to_string(),
                interrupted,
            },
        }))
    }

    /// Stores what [`Store::begin_turn`] decided: the interrupted reply as heard, the user
    /// message and an empty assistant placeholder. Called once the model's request is on its
    /// way, because a write holds back the object's later outgoing requests until it is durable
    /// (the output gate); nothing can run in between, so a redelivery still finds the turn.
    pub fn commit(&self, writes: &StartWrites) -> worker::Result<()> {
        self.ensure_schema()?;
        if let Some((seq, heard)) = &writes.interrupted {
            self.sql.exec(
                "UPDATE messages SET text = ?, status = ? WHERE seq = ?",
                vec![
                    heard.as_str().into(),
                    ReplyStatus::Interrupted.as_str().into(),
                    (*seq).into(),
                ],
            )?;
        }
        let now = unix_ms();
        self.sql.exec(
            "INSERT INTO messages (turn_id, role, text, status, created_at_ms) \
             VALUES (?, 'user', ?, 'complete', ?), (?, 'assistant', '', 'pending', ?)",
            vec![
                writes.turn_id.as_str().into(),
                writes.user_text.as_str().into(),
                now.into(),
                writes.turn_id.as_str().into(),
                now.into(),
            ],
        )?;
        self.record_activity(now)
    }

    /// The row of the interrupted reply and what the caller heard of it, clamped to what was
    /// sent; `None` when nothing of ours matches (for example it was never stored).
    fn heard_of(&self, context: &InterruptionContext) -> worker::Result<Option<(i64, String)>> {
        let rows: Vec<AssistantRow> = match &context.assistant_turn_id {
            Some(turn_id) => self.sql.exec(
                "SELECT seq, turn_id, text FROM messages WHERE role = 'assistant' \
                 AND turn_id IN (?, ?)",
                vec![turn_id.as_str().into(), format!("welcome:{turn_id}").into()],
            )?,
            // No id given: the interrupted turn is the latest assistant turn.
            None => self.sql.exec(
                "SELECT seq, turn_id, text FROM messages WHERE role = 'assistant' \
                 ORDER BY seq DESC LIMIT 1",
                None,
            )?,
        }
        .rows()?;
        let Some(row) = rows.into_iter().next() else {
            return Ok(None);
        };
        // A reply still running here has sent more than its pending row says.
        let running = self.in_flight.borrow().get(&row.turn_id).cloned();
        let sent = running.map_or(row.text, |sent| sent.borrow().clone());
        let heard = heard_prefix(&sent, context.text_heard.as_deref(), context.words_heard);
        // Without an id, only the text ties the context to this reply: contexts that arrive out
        // of order would otherwise cut a reply the caller never heard them about.
        if context.assistant_turn_id.is_none()
            && !text_confirms(context.text_heard.as_deref(), &heard)
        {
            return Ok(None);
        }
        Ok(Some((row.seq, heard)))
    }

    /// Starts recording what a running turn sends (see `in_flight`).
    pub fn track(&self, turn_id: &str) -> Rc<RefCell<String>> {
        let sent = Rc::<RefCell<String>>::default();
        self.in_flight
            .borrow_mut()
            .insert(turn_id.to_string(), sent.clone());
        sent
    }

    pub fn untrack(&self, turn_id: &str) {
        self.in_flight.borrow_mut().remove(turn_id);
    }

    /// Stores what the caller heard of a turn, unless its reply is no longer pending: a later
    /// message's interruption context may have stored it already, and wins (it says what was
    /// really heard).
    pub fn finish_turn(
        &self,
        turn_id: &str,
        text: &str,
        status: ReplyStatus,
    ) -> worker::Result<()> {
        if !self.has_schema()? {
            // Erased (or expired) while the turn ran: a late reply must not bring it back.
            return Ok(());
        }
        // Only a pending placeholder is written here: if the next message already applied
        // its interruption context, what the user heard wins over what we sent.
        let cursor = self.sql.exec(
            "UPDATE messages SET text = ?, status = ? \
             WHERE turn_id = ? AND role = 'assistant' AND status = 'pending'",
            vec![text.into(), status.as_str().into(), turn_id.into()],
        )?;
        // Drain the cursor so the statement has run.
        let _ = cursor.rows::<serde_json::Value>()?;
        self.record_activity(unix_ms())
    }

    /// The latest tool calls of earlier turns, oldest first (see `tools::memory`).
    pub fn past_tool_calls(&self) -> worker::Result<Vec<PastCall>> {
        if !self.has_schema()? {
            return Ok(Vec::new());
        }
        let limit = i64::try_from(REMEMBERED_CALLS).unwrap_or(i64::MAX);
        let mut calls: Vec<PastCall> = self.json_rows(
            "SELECT json_group_array(json(call)) AS rows FROM \
             (SELECT call FROM tool_calls ORDER BY seq DESC LIMIT ?)",
            vec![limit.into()],
        )?;
        calls.reverse();
        Ok(calls)
    }

    /// Keeps a finished turn's tool calls for later turns; only the latest few are ever read,
    /// so older ones are dropped.
    pub fn remember_tool_calls(&self, turn_id: &str, calls: &[PastCall]) -> worker::Result<()> {
        if calls.is_empty() || !self.has_schema()? {
            // Nothing to keep, or erased while the turn ran.
            return Ok(());
        }
        for call in calls {
            self.sql.exec(
                "INSERT INTO tool_calls (turn_id, call) VALUES (?, ?)",
                vec![turn_id.into(), serde_json::to_string(call)?.into()],
            )?;
        }
        let keep = i64::try_from(REMEMBERED_CALLS).unwrap_or(i64::MAX);
        self.sql.exec(
            "DELETE FROM tool_calls WHERE seq <= (SELECT MAX(seq) FROM tool_calls) - ?",
            vec![keep.into()],
        )?;
        Ok(())
    }

    /// Stores the greeting spoken at `session.start` as an assistant turn; false if this
    /// `turn_id` was already greeted (a redelivery).
    pub fn record_welcome(&self, turn_id: &str, text: &str) -> worker::Result<bool> {
        self.ensure_schema()?;
        let duplicate = self.count(
            "SELECT COUNT(*) AS n FROM messages WHERE turn_id = ? AND role = 'assistant'",
            turn_id,
        )? > 0;
        if !duplicate {
            self.sql.exec(
                "INSERT INTO messages (turn_id, role, text, status, created_at_ms) \
                 VALUES (?, 'assistant', ?, 'complete', ?)",
                vec![turn_id.into(), text.into(), unix_ms().into()],
            )?;
            self.record_activity(unix_ms())?;
        }
        Ok(!duplicate)
    }

    /// Records that a session (connection) ended, with its metrics.
    pub fn end_session(&self, s: &SessionRecord) -> worker::Result<()> {
        self.ensure_schema()?;
        self.sql.exec(
            "INSERT OR REPLACE INTO sessions (session_id, transcript_messages, duration_ms, \
             transcription_seconds, tts_seconds, latency, recording_status, started_at, ended_at, \
             recorded_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            vec![
                s.session_id.as_str().into(),
                s.transcript_messages.into(),
                s.duration_ms.into(),
                s.transcription_seconds.into(),
                s.tts_seconds.into(),
                s.latency.into(),
                s.recording_status.clone().into(),
                s.started_at.clone().into(),
                s.ended_at.clone().into(),
                s.recorded_at_ms.into(),
            ],
        )?;
        self.record_activity(s.recorded_at_ms)
    }

    /// Creates the tables unless this instance already knows they exist.
    fn ensure_schema(&self) -> worker::Result<()> {
        if !self.schema_ready.get() {
            self.sql.exec(SCHEMA, None)?;
            self.schema_ready.set(true);
        }
        Ok(())
    }

    /// Whether anything is stored, without creating storage when nothing is.
    fn has_schema(&self) -> worker::Result<bool> {
        if self.schema_ready.get() {
            return Ok(true);
        }
        let rows: Vec<Count> = self
            .sql
            .exec(
                "SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'messages'",
                None,
            )?
            .rows()?;
        let exists = rows.first().is_some_and(|row| row.n > 0);
        if exists {
            // A conversation stored before retention existed lacks the `activity` table.
            self.ensure_schema()?;
        }
        Ok(exists)
    }

    /// Notes that the conversation is in use, in the same synchronous run as the write that
    /// made it so (one small statement, no await), and arms the alarm if this instance has not.
    fn record_activity(&self, now: i64) -> worker::Result<()> {
        self.sql.exec(
            "INSERT OR REPLACE INTO activity (id, last_active_ms) VALUES (1, ?)",
            vec![now.into()],
        )?;
        self.alarm.arm_once();
        Ok(())
    }

    /// The last activity (the latest of every time stored) and any turn still in flight.
    fn activity(&self) -> worker::Result<Activity> {
        if !self.has_schema()? {
            return Ok(Activity {
                last_active_ms: None,
                pending_since_ms: None,
            });
        }
        let last_active_ms = self.optional_time(
            "SELECT MAX(t) AS ms FROM (SELECT last_active_ms AS t FROM activity \
             UNION ALL SELECT MAX(created_at_ms) FROM messages \
             UNION ALL SELECT MAX(recorded_at_ms) FROM sessions)",
        )?;
        let pending_since_ms = self.optional_time(
            "SELECT MAX(created_at_ms) AS ms FROM messages WHERE status = 'pending'",
        )?;
        Ok(Activity {
            last_active_ms,
            pending_since_ms,
        })
    }

    fn optional_time(&self, query: &str) -> worker::Result<Option<i64>> {
        let rows: Vec<OptionalTime> = self.sql.exec(query, None)?.rows()?;
        Ok(rows.into_iter().next().and_then(|row| row.ms))
    }

    /// Everything stored, or `None` when nothing is.
    fn read(&self) -> worker::Result<Option<Transcript>> {
        if !self.has_schema()? {
            return Ok(None);
        }
        let messages: Vec<StoredMessage> = self
            .sql
            .exec(
                "SELECT turn_id, role, text, status, created_at_ms FROM messages \
                 WHERE status != 'pending' ORDER BY seq",
                None,
            )?
            .rows()?;
        let sessions: Vec<SessionRecord> = self
            .sql
            .exec(
                "SELECT session_id, transcript_messages, duration_ms, transcription_seconds, \
                 tts_seconds, latency, recording_status, started_at, ended_at, recorded_at_ms \
                 FROM sessions ORDER BY recorded_at_ms, session_id",
                None,
            )?
            .rows()?;
        Ok(Some(Transcript { messages, sessions }))
    }

    /// The newest stored messages, oldest first, with the interrupted reply (`seq`, text heard)
    /// as heard; empty ones are skipped. One more than the window, so `bounded_window` can tell
    /// that older messages exist.
    fn recent_messages(
        &self,
        heard: Option<&(i64, String)>,
    ) -> worker::Result<Vec<HistoryMessage>> {
        let limit = i64::try_from(WINDOW_MAX_MESSAGES + 1).unwrap_or(i64::MAX);
        let heard_seq = heard.map_or(-1, |(seq, _)| *seq);
        let mut rows: Vec<MessageRow> = self.json_rows(
            "SELECT json_group_array(json_object('seq', seq, 'role', role, 'text', text)) \
             AS rows FROM (SELECT seq, role, text FROM messages \
             WHERE text != '' OR seq = ? ORDER BY seq DESC LIMIT ?)",
            vec![heard_seq.into(), limit.into()],
        )?;
        rows.sort_by_key(|row| row.seq);
        let messages = rows
            .into_iter()
            .map(|row| {
                let text = match heard {
                    Some((seq, heard)) if *seq == row.seq => heard.as_str(),
                    _ => row.text.as_str(),
                };
                match row.role.as_str() {
                    "user" => HistoryMessage::user(text),
                    _ => HistoryMessage::assistant(text),
                }
            })
            .collect();
        Ok(messages)
    }

    /// The stored reply of a turn (what the caller heard of it), if any.
    pub fn stored_reply(&self, turn_id: &str) -> worker::Result<Option<String>> {
        if !self.has_schema()? {
            return Ok(None); // erased since the turn was found
        }
        let rows: Vec<TextRow> = self
            .sql
            .exec(
                "SELECT text FROM messages WHERE turn_id = ? AND role = 'assistant'",
                vec![turn_id.into()],
            )?
            .rows()?;
        Ok(rows.into_iter().next().map(|row| row.text))
    }

    /// Whether a turn is still running in this object.
    pub fn is_running(&self, turn_id: &str) -> bool {
        self.in_flight.borrow().contains_key(turn_id)
    }

    /// The rows of a query that builds them as one JSON array in a column `rows`
    /// (`json_group_array`): one value to cross into wasm and one serde_json parse, instead of
    /// a JS object per row converted field by field.
    fn json_rows<T: serde::de::DeserializeOwned>(
        &self,
        query: &str,
        bindings: Vec<SqlStorageValue>,
    ) -> worker::Result<Vec<T>> {
        let json: Vec<JsonRows> = self.sql.exec(query, bindings)?.rows()?;
        match json.first() {
            Some(json) => Ok(serde_json::from_slice(json.rows.as_bytes())?),
            None => Ok(Vec::new()),
        }
    }

    fn count(&self, query: &str, turn_id: &str) -> worker::Result<i64> {
        // `rows` rather than `one`: `one` on zero rows hangs the request.
        let rows: Vec<Count> = self.sql.exec(query, vec![turn_id.into()])?.rows()?;
        Ok(rows.first().map_or(0, |row| row.n))
    }
}

/// Milliseconds since the Unix epoch, as stored (SQLite integers are `i64`). Not the engine's
/// `Clock::now_ms`, which is on any monotonic origin.
fn unix_ms() -> i64 {
    // `Date.now()`, not `new Date()`: no object per call.
    worker::js_sys::Date::now() as i64
}

/// A cursor's rows as `T`, through JSON: `JSON.stringify` in JS, then serde_json, which the wasm
/// has anyway. `SqlCursor::to_array` would convert them with serde_wasm_bindgen, a second
/// deserialiser with its own copy of each row type's `Deserialize` (about 5 KB of the gzipped
/// wasm). SQLite values are numbers, strings and nulls, which JSON carries as they are; a REAL
/// goes through its shortest decimal form, read back exactly when that has at most 15
/// significant digits and a power of ten within ±22 (as when the Worker parses this object's
/// JSON replies).
trait Rows {
    fn rows<T: serde::de::DeserializeOwned>(self) -> worker::Result<Vec<T>>;
}

impl Rows for worker::SqlCursor {
    fn rows<T: serde::de::DeserializeOwned>(self) -> worker::Result<Vec<T>> {
        let rows = worker::js_sys::Array::new();
        for row in self {
            rows.push(&row?);
        }
        let json = String::from(worker::js_sys::JSON::stringify(&rows)?);
        Ok(serde_json::from_slice(json.as_bytes())?)
    }
}
