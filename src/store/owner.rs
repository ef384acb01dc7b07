//! The user a conversation belongs to, when the deployment has its own login
//! (`CONVERSATION_OWNER_HEADER`): a keyed digest of them, never who they are.

use serde::Deserialize;

use super::{unix_ms, Rows, Store};

impl Store {
    /// Whether `digest` owns the conversation. With `claim`, a conversation without an owner
    /// becomes its first (a new conversation), which counts as activity for retention.
    pub fn owned_by(&self, digest: &str, claim: bool) -> worker::Result<bool> {
        if claim {
            self.ensure_schema()?;
            self.sql.exec(
                "INSERT OR IGNORE INTO owner (id, digest) VALUES (1, ?)",
                vec![digest.into()],
            )?;
            self.record_activity(unix_ms())?;
        } else if !self.has_schema()? {
            return Ok(false);
        }
        let rows: Vec<OwnerRow> = self
            .sql
            .exec("SELECT digest FROM owner WHERE id = 1", None)?
            .rows()?;
        Ok(rows.first().is_some_and(|row| row.digest == digest))
    }
}

#[derive(Deserialize)]
struct OwnerRow {
    digest: String,
}
