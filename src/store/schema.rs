//! The tables, created by a conversation's first write. A table added later (`activity`,
//! `tool_calls`, `summary`) is created in a conversation stored before it the first time an
//! object instance finds that conversation's tables (`has_schema`): new tables, never new
//! columns, so no stored row ever needs migrating.

use super::{Count, Rows, Store};

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
CREATE TABLE IF NOT EXISTS owner (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    digest TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tool_calls (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    turn_id TEXT NOT NULL,
    call TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS summary (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    text TEXT NOT NULL,
    through_seq INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL
);";

impl Store {
    /// Creates the tables unless this instance already knows they exist.
    pub(super) fn ensure_schema(&self) -> worker::Result<()> {
        if !self.schema_ready.get() {
            self.sql.exec(SCHEMA, None)?;
            self.schema_ready.set(true);
        }
        Ok(())
    }

    /// Whether anything is stored, without creating storage when nothing is.
    pub(super) fn has_schema(&self) -> worker::Result<bool> {
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
            // A conversation stored before a table existed (`activity`, `summary`) lacks it.
            self.ensure_schema()?;
        }
        Ok(exists)
    }
}
