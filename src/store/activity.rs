//! When the conversation was last in use, the retention alarm that every write arms once per
//! object instance, and erasure. What a firing alarm decides is `retention::decide`; the alarm
//! handler is the conversation's.

use std::cell::Cell;
use std::rc::Rc;

use serde::Deserialize;
use worker::wasm_bindgen_futures::spawn_local;
use worker::{console_error, State};

use super::{Rows, Store};
use crate::retention::Activity;

impl Store {
    /// Notes that the conversation is in use, in the same synchronous run as the write that
    /// made it so (one small statement, no await), and arms the alarm if this instance has not.
    pub(super) fn record_activity(&self, now: i64) -> worker::Result<()> {
        self.sql.exec(
            "INSERT OR REPLACE INTO activity (id, last_active_ms) VALUES (1, ?)",
            vec![now.into()],
        )?;
        self.alarm.arm_once();
        Ok(())
    }

    /// The last activity (the latest of every time stored) and any turn still in flight.
    pub fn activity(&self) -> worker::Result<Activity> {
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

    /// Deletes every row and the alarm; false when nothing was stored. Repeating it is
    /// harmless, which matters because alarms are delivered at least once.
    pub async fn erase(&self) -> worker::Result<bool> {
        if !self.has_schema()? {
            return Ok(false);
        }
        let storage = self.alarm.state.storage();
        // First, with no await since the caller's decision, so no write can slip in between.
        storage.delete_all().await?;
        // The live instance has no tables now: the next write recreates them and re-arms.
        self.schema_ready.set(false);
        self.forget_summary();
        self.alarm.armed.set(false);
        // `delete_all` removes the alarm too since compatibility date 2026-02-24; this keeps
        // erasure complete under an older date.
        storage.delete_alarm().await?;
        Ok(true)
    }

    /// The alarm has fired and is not set again: the next write arms it.
    pub fn alarm_spent(&self) {
        self.alarm.armed.set(false);
    }
}

#[derive(Deserialize)]
struct OptionalTime {
    ms: Option<i64>,
}

/// The retention alarm of one object instance, shared by the object and every `Store` clone.
pub(super) struct RetentionAlarm {
    state: Rc<State>,
    /// The retention period in milliseconds; `0` sets no alarm.
    ttl_ms: u64,
    /// This instance has armed the alarm: later writes leave it be, and the alarm handler
    /// re-arms it for as long as the conversation stays in use.
    armed: Cell<bool>,
}

impl RetentionAlarm {
    pub(super) fn new(state: Rc<State>, ttl_ms: u64) -> Self {
        RetentionAlarm {
            state,
            ttl_ms,
            armed: Cell::new(false),
        }
    }

    /// Arms the alarm once per instance, so a turn never waits on an alarm write. Spawned, so
    /// it is set after the write that asked for it, never ahead of the turn's Gemini request
    /// (a write holds back the object's later outgoing requests until it is durable).
    pub(super) fn arm_once(self: &Rc<Self>) {
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
