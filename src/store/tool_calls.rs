//! The tool calls of finished turns, of which later turns are reminded (`tools::memory`).

use super::Store;
use crate::tools::memory::{PastCall, REMEMBERED_CALLS};

impl Store {
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
}
