//! The greeting spoken at `session.start`, stored as an assistant turn of its own.

use super::{unix_ms, Store};

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

impl Store {
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
}
