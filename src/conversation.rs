//! The conversation store: one SQLite-backed Durable Object per `conversation_id`.
//!
//! The object only runs SQL. Its interface is a small set of typed commands sent as JSON over
//! the stub; `ConversationClient` is the Worker-side caller, so call sites read like functions
//! and the wire shape lives in this file only. Each command is a run of synchronous `exec` calls
//! with no `.await` between them, which the runtime applies atomically.

use serde::{Deserialize, Serialize};
use worker::{
    durable_object, DurableObject, Env, Method, Request, RequestInit, Response, SqlStorage, State,
};

use crate::events::{InterruptionContext, SessionEnd};
use crate::history::{bounded_window, HistoryMessage, WINDOW_MAX_CHARS, WINDOW_MAX_MESSAGES};

/// The Durable Object binding in `wrangler.toml`.
const BINDING: &str = "CONVERSATIONS";

/// How a stored assistant reply ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplyStatus {
    /// The reply is still being generated (its text is empty until then).
    Pending,
    /// Spoken to the end.
    Complete,
    /// The user talked over it; the text is what was sent, or what they heard.
    Interrupted,
    /// The model failed; the text is whatever was spoken before the failure.
    Failed,
}

impl ReplyStatus {
    fn as_str(self) -> &'static str {
        match self {
            ReplyStatus::Pending => "pending",
            ReplyStatus::Complete => "complete",
            ReplyStatus::Interrupted => "interrupted",
            ReplyStatus::Failed => "failed",
        }
    }
}

/// What the Worker asks of a conversation.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Command {
    /// Applies the previous turn's interruption, skips a duplicate delivery, stores the user
    /// message with an empty assistant placeholder, and returns the history window.
    BeginTurn {
        turn_id: String,
        user_text: String,
        interruption: Option<InterruptionContext>,
    },
    /// Stores what was actually sent for a turn, unless the turn was already settled (for
    /// example by a later message's interruption context).
    FinishTurn {
        turn_id: String,
        text: String,
        status: ReplyStatus,
    },
    /// Stores the greeting spoken at `session.start` as an assistant turn.
    RecordWelcome { turn_id: String, text: String },
    /// Records that a session (connection) ended, with its metrics.
    EndSession(SessionSummary),
}

/// The answer to `BeginTurn`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BeginTurnReply {
    /// The `turn_id` was already recorded: do not answer it again.
    pub duplicate: bool,
    /// Recent history, oldest first, ending with the new user message (empty for a duplicate).
    pub history: Vec<HistoryMessage>,
}

/// The answer to `RecordWelcome`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordWelcomeReply {
    pub duplicate: bool,
}

/// What is kept of a `session.end` event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionSummary {
    pub session_id: String,
    pub transcript_messages: i64,
    pub duration_ms: Option<f64>,
    pub transcription_seconds: Option<f64>,
    pub tts_seconds: Option<f64>,
    pub latency: Option<f64>,
    pub recording_status: Option<String>,
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
}

impl SessionSummary {
    pub fn from_event(event: &SessionEnd) -> Self {
        let as_text = |v: &Option<serde_json::Value>| {
            v.as_ref().map(|v| match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            })
        };
        SessionSummary {
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
        }
    }
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

    pub async fn begin_turn(
        &self,
        turn_id: &str,
        user_text: &str,
        interruption: Option<InterruptionContext>,
    ) -> worker::Result<BeginTurnReply> {
        self.call(&Command::BeginTurn {
            turn_id: turn_id.to_string(),
            user_text: user_text.to_string(),
            interruption,
        })
        .await
    }

    pub async fn finish_turn(
        &self,
        turn_id: &str,
        text: &str,
        status: ReplyStatus,
    ) -> worker::Result<()> {
        let _: serde_json::Value = self
            .call(&Command::FinishTurn {
                turn_id: turn_id.to_string(),
                text: text.to_string(),
                status,
            })
            .await?;
        Ok(())
    }

    pub async fn record_welcome(
        &self,
        turn_id: &str,
        text: &str,
    ) -> worker::Result<RecordWelcomeReply> {
        self.call(&Command::RecordWelcome {
            turn_id: turn_id.to_string(),
            text: text.to_string(),
        })
        .await
    }

    pub async fn end_session(&self, summary: SessionSummary) -> worker::Result<()> {
        let _: serde_json::Value = self.call(&Command::EndSession(summary)).await?;
        Ok(())
    }

    async fn call<T: serde::de::DeserializeOwned>(&self, command: &Command) -> worker::Result<T> {
        let body = serde_json::to_string(command)?;
        let mut init = RequestInit::new();
        init.with_method(Method::Post).with_body(Some(body.into()));
        // The host is never resolved; the stub routes the request to the object.
        let request = Request::new_with_init("https://conversation/command", &init)?;
        let mut response = self.stub.fetch_with_request(request).await?;
        if response.status_code() != 200 {
            let detail = response.text().await.unwrap_or_default();
            return Err(worker::Error::RustError(format!(
                "conversation store answered {}: {detail}",
                response.status_code()
            )));
        }
        response.json().await
    }
}

// ---------------------------------------------------------------------------------------------
// Object side: SQL only.

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
);";

/// One conversation's history and sessions.
#[durable_object]
pub struct Conversation {
    sql: SqlStorage,
    /// A schema failure is kept and reported per request: panicking in `new` hangs requests.
    init_error: Option<String>,
}

impl DurableObject for Conversation {
    fn new(state: State, _env: Env) -> Self {
        let sql = state.storage().sql();
        let init_error = sql.exec(SCHEMA, None).err().map(|e| e.to_string());
        Conversation { sql, init_error }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        if let Some(error) = &self.init_error {
            return Response::error(format!("schema setup failed: {error}"), 500);
        }
        let command: Command = match req.json().await {
            Ok(command) => command,
            Err(e) => return Response::error(format!("bad command: {e}"), 400),
        };
        let result = match command {
            Command::BeginTurn {
                turn_id,
                user_text,
                interruption,
            } => self
                .begin_turn(&turn_id, &user_text, interruption.as_ref())
                .and_then(|reply| Response::from_json(&reply)),
            Command::FinishTurn {
                turn_id,
                text,
                status,
            } => self
                .finish_turn(&turn_id, &text, status)
                .and_then(|updated| {
                    Response::from_json(&serde_json::json!({ "updated": updated }))
                }),
            Command::RecordWelcome { turn_id, text } => self
                .record_welcome(&turn_id, &text)
                .and_then(|reply| Response::from_json(&reply)),
            Command::EndSession(summary) => self
                .end_session(&summary)
                .and_then(|()| Response::from_json(&serde_json::json!({ "ok": true }))),
        };
        result.or_else(|e| Response::error(format!("storage error: {e}"), 500))
    }
}

#[derive(Deserialize)]
struct Count {
    n: i64,
}

#[derive(Deserialize)]
struct MessageRow {
    role: String,
    text: String,
}

impl Conversation {
    fn begin_turn(
        &self,
        turn_id: &str,
        user_text: &str,
        interruption: Option<&InterruptionContext>,
    ) -> worker::Result<BeginTurnReply> {
        let duplicate = self.count(
            "SELECT COUNT(*) AS n FROM messages WHERE turn_id = ? AND role = 'user'",
            turn_id,
        )? > 0;
        if duplicate {
            // The first delivery already applied its interruption context; applying it again
            // could rewrite a newer reply (the "latest assistant turn" has moved on since).
            return Ok(BeginTurnReply {
                duplicate,
                history: Vec::new(),
            });
        }
        // Before the model is asked, so it sees what the user heard of the turn they cut off.
        if let Some(context) = interruption.filter(|c| c.applies()) {
            self.apply_interruption(context)?;
        }
        let now = now_ms();
        self.sql.exec(
            "INSERT INTO messages (turn_id, role, text, status, created_at_ms) \
             VALUES (?, 'user', ?, 'complete', ?), (?, 'assistant', '', 'pending', ?)",
            vec![
                turn_id.into(),
                user_text.into(),
                now.into(),
                turn_id.into(),
                now.into(),
            ],
        )?;
        Ok(BeginTurnReply {
            duplicate: false,
            history: self.recent_history()?,
        })
    }

    fn apply_interruption(&self, context: &InterruptionContext) -> worker::Result<()> {
        let heard = context.text_heard.clone().unwrap_or_default();
        let interrupted = ReplyStatus::Interrupted.as_str();
        match &context.assistant_turn_id {
            Some(turn_id) => self.sql.exec(
                "UPDATE messages SET text = ?, status = ? WHERE turn_id = ? AND role = 'assistant'",
                vec![heard.into(), interrupted.into(), turn_id.as_str().into()],
            )?,
            // No id given: the interrupted turn is the latest assistant turn.
            None => self.sql.exec(
                "UPDATE messages SET text = ?, status = ? WHERE seq = \
                 (SELECT MAX(seq) FROM messages WHERE role = 'assistant')",
                vec![heard.into(), interrupted.into()],
            )?,
        };
        Ok(())
    }

    fn finish_turn(&self, turn_id: &str, text: &str, status: ReplyStatus) -> worker::Result<bool> {
        // Only a pending placeholder is settled here: if the next message already applied
        // its interruption context, what the user heard wins over what we sent.
        let cursor = self.sql.exec(
            "UPDATE messages SET text = ?, status = ? \
             WHERE turn_id = ? AND role = 'assistant' AND status = 'pending'",
            vec![text.into(), status.as_str().into(), turn_id.into()],
        )?;
        // Drain the cursor so the statement has run before counting.
        let _ = cursor.to_array::<serde_json::Value>()?;
        Ok(cursor.rows_written() > 0)
    }

    fn record_welcome(&self, turn_id: &str, text: &str) -> worker::Result<RecordWelcomeReply> {
        let duplicate = self.count(
            "SELECT COUNT(*) AS n FROM messages WHERE turn_id = ? AND role = 'assistant'",
            turn_id,
        )? > 0;
        if !duplicate {
            self.sql.exec(
                "INSERT INTO messages (turn_id, role, text, status, created_at_ms) \
                 VALUES (?, 'assistant', ?, 'complete', ?)",
                vec![turn_id.into(), text.into(), now_ms().into()],
            )?;
        }
        Ok(RecordWelcomeReply { duplicate })
    }

    fn end_session(&self, s: &SessionSummary) -> worker::Result<()> {
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
                now_ms().into(),
            ],
        )?;
        Ok(())
    }

    /// The newest messages within the window bounds, oldest first; empty ones are skipped.
    fn recent_history(&self) -> worker::Result<Vec<HistoryMessage>> {
        // One more than the window, so `bounded_window` can tell that older messages exist.
        let limit = i64::try_from(WINDOW_MAX_MESSAGES + 1).unwrap_or(i64::MAX);
        let rows: Vec<MessageRow> = self
            .sql
            .exec(
                "SELECT role, text FROM (SELECT seq, role, text FROM messages \
                 WHERE text != '' ORDER BY seq DESC LIMIT ?) ORDER BY seq",
                vec![limit.into()],
            )?
            .to_array()?;
        let messages = rows
            .into_iter()
            .map(|row| match row.role.as_str() {
                "user" => HistoryMessage::user(&row.text),
                _ => HistoryMessage::assistant(&row.text),
            })
            .collect();
        Ok(bounded_window(
            messages,
            WINDOW_MAX_MESSAGES,
            WINDOW_MAX_CHARS,
        ))
    }

    fn count(&self, query: &str, turn_id: &str) -> worker::Result<i64> {
        // `to_array` rather than `one`: `one` on zero rows hangs the request.
        let rows: Vec<Count> = self.sql.exec(query, vec![turn_id.into()])?.to_array()?;
        Ok(rows.first().map_or(0, |row| row.n))
    }
}

fn now_ms() -> i64 {
    i64::try_from(worker::Date::now().as_millis()).unwrap_or(i64::MAX)
}
