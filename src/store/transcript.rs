//! Everything stored, as the conversations API returns it, and the `session.end` records.

use serde::{Deserialize, Serialize};

use super::{Rows, Store};
use crate::history::{ReplyStatus, Role};
use crate::layercode::events::SessionEnd;

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
    /// The running summary of a long call once there is one, as JSON text of `{text,
    /// through_turn_id, updated_at_ms}` (see `Store::summary_json`).
    #[serde(default)]
    pub summary_json: Option<String>,
}

impl Store {
    /// Everything stored, or `None` when nothing is.
    pub fn read(&self) -> worker::Result<Option<Transcript>> {
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
        Ok(Some(Transcript {
            messages,
            sessions,
            summary_json: self.summary_json()?,
        }))
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
}
