//! The running summary of a long call (`summary`): read for a turn's request, planned at a
//! turn's end, and written when its call returns, unless the conversation was erased or
//! summarised meanwhile. At most one call at a time per conversation: the flag is this object
//! instance's, so an instance evicted mid-call takes its call with it and the next turn plans
//! again from what is stored.

use super::{unix_ms, JsonRows, MessageRow, Rows, Store};
use crate::history::HistoryMessage;
use crate::summary::{plan, retry_due, Row, MESSAGE_MAX_CHARS, READ_LIMIT};

/// One summary call to make: the summary it extends and the messages it folds.
#[derive(Debug)]
pub struct SummaryJob {
    pub previous: Option<String>,
    /// Oldest first, as stored (what the caller heard).
    pub messages: Vec<HistoryMessage>,
    through_seq: i64,
    /// The stored summary's `through_seq` when the job was planned: still so when it is written.
    base_seq: i64,
    /// The object's erasures when the job was planned: a summary never outlives an erasure.
    erasures: u32,
}

/// What became of a summary call's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Saved {
    Stored,
    /// Written when the turns running now have ended.
    Deferred,
    /// The conversation was erased (or summarised by another call) meanwhile.
    Dropped,
    /// The call failed: nothing changes, a later turn tries again.
    Failed,
}

impl Saved {
    pub fn label(self) -> &'static str {
        match self {
            Saved::Stored => "stored",
            Saved::Deferred => "deferred",
            Saved::Dropped => "dropped",
            Saved::Failed => "failed",
        }
    }
}

/// The summary calls of this object instance.
#[derive(Default)]
pub(super) struct SummaryState {
    /// A call is running, or its result waits for the running turns to end.
    busy: bool,
    waiting: Option<(SummaryJob, String)>,
    /// Failed calls in a row, and turns ended since the last one (`summary::retry_due`).
    failures: u32,
    turns_since_failure: u32,
}

impl Store {
    /// The stored summary's text and the last message folded into it (`None` and `0` before
    /// the first); the tables exist. Read in the shape of a message row, `seq` standing for
    /// `through_seq`, whose code is already there.
    pub(super) fn stored_summary(&self) -> worker::Result<(Option<String>, i64)> {
        let rows = self.message_rows(
            "SELECT json_group_array(json_object('seq', through_seq, 'role', 'assistant', \
             'text', text)) AS rows FROM summary",
            Vec::new(),
        )?;
        Ok(match rows.into_iter().next() {
            Some(row) => (Some(row.text), row.seq),
            None => (None, 0),
        })
    }

    /// The summary as the conversations API shows it (the tables exist), as JSON text: `text`,
    /// `through_turn_id` (the turn of the last message folded into it) and `updated_at_ms`.
    /// Built by SQLite and passed through as it is: a typed struct's serde code would cost the
    /// wasm a few KB for a value no code here reads.
    pub(super) fn summary_json(&self) -> worker::Result<Option<String>> {
        let rows: Vec<JsonRows> = self
            .sql
            .exec(
                "SELECT json_object('text', s.text, 'through_turn_id', m.turn_id, \
                 'updated_at_ms', s.updated_at_ms) AS rows FROM summary s \
                 LEFT JOIN messages m ON m.seq = s.through_seq WHERE s.id = 1",
                None,
            )?
            .rows()?;
        Ok(rows.into_iter().next().map(|row| row.rows))
    }

    /// At a turn's end, once its rows are stored: writes a summary that waited for the running
    /// turns, then returns the call to make if one is due, none is running, and a failed one
    /// may be tried again. The caller must hand the job back to [`Store::finish_summary`].
    pub fn summary_due(&self) -> worker::Result<Option<SummaryJob>> {
        let mut state = self.summary.borrow_mut();
        state.turns_since_failure = state.turns_since_failure.saturating_add(1);
        if self.in_flight.borrow().is_empty() {
            if let Some((job, text)) = state.waiting.take() {
                state.busy = false;
                self.write_summary(&job, &text)?;
            }
        }
        if state.busy
            || !retry_due(state.failures, state.turns_since_failure)
            || !self.has_schema()?
        {
            return Ok(None);
        }
        let job = self.plan_summary()?;
        state.busy = job.is_some();
        Ok(job)
    }

    fn plan_summary(&self) -> worker::Result<Option<SummaryJob>> {
        let (previous, base_seq) = self.stored_summary()?;
        let (max_chars, limit) = (
            i64::try_from(MESSAGE_MAX_CHARS).unwrap_or(i64::MAX),
            i64::try_from(READ_LIMIT + 1).unwrap_or(i64::MAX),
        );
        // Each message cut to what the summariser is given: a backlog costs at most
        // READ_LIMIT × MESSAGE_MAX_CHARS characters to read.
        let mut rows = self.message_rows(
            "SELECT json_group_array(json_object('seq', seq, 'role', role, \
             'text', substr(text, 1, ?))) AS rows FROM \
             (SELECT seq, role, text FROM messages WHERE seq > ? ORDER BY seq LIMIT ?)",
            vec![max_chars.into(), base_seq.into(), limit.into()],
        )?;
        let more = rows.len() > READ_LIMIT;
        rows.truncate(READ_LIMIT);
        let rows = rows
            .into_iter()
            .map(|row| Row {
                seq: row.seq,
                message: HistoryMessage {
                    role: MessageRow::role_of(&row.role),
                    text: row.text,
                },
            })
            .collect();
        let Some(batch) = plan(rows, more) else {
            return Ok(None);
        };
        Ok(Some(SummaryJob {
            previous,
            messages: batch.messages,
            through_seq: batch.through_seq,
            base_seq,
            erasures: self.erasures.get(),
        }))
    }

    /// Stores the summary `written` for `job` (`None`: the call failed), unless the
    /// conversation was erased or summarised since. While turns are running the write waits
    /// for the last of them to end: a write holds back the object's outgoing words until it is
    /// durable, and a summary is never worth a pause in a reply.
    pub fn finish_summary(
        &self,
        job: SummaryJob,
        written: Option<String>,
    ) -> worker::Result<Saved> {
        let mut state = self.summary.borrow_mut();
        let Some(text) = written else {
            state.busy = false;
            state.failures = state.failures.saturating_add(1);
            state.turns_since_failure = 0;
            return Ok(Saved::Failed);
        };
        state.failures = 0;
        if job.erasures != self.erasures.get() {
            state.busy = false;
            return Ok(Saved::Dropped);
        }
        if !self.in_flight.borrow().is_empty() {
            state.waiting = Some((job, text));
            return Ok(Saved::Deferred);
        }
        state.busy = false;
        self.write_summary(&job, &text)
    }

    fn write_summary(&self, job: &SummaryJob, text: &str) -> worker::Result<Saved> {
        if job.erasures != self.erasures.get() || !self.has_schema()? {
            return Ok(Saved::Dropped);
        }
        if self.stored_summary()?.1 != job.base_seq {
            return Ok(Saved::Dropped);
        }
        self.sql.exec(
            "INSERT OR REPLACE INTO summary (id, text, through_seq, updated_at_ms) \
             VALUES (1, ?, ?, ?)",
            vec![text.into(), job.through_seq.into(), unix_ms().into()],
        )?;
        Ok(Saved::Stored)
    }

    /// An erasure drops a summary still waiting to be written (one still being written is
    /// dropped when it returns).
    pub(super) fn forget_summary(&self) {
        self.erasures.set(self.erasures.get().wrapping_add(1));
        let mut state = self.summary.borrow_mut();
        if state.waiting.take().is_some() {
            state.busy = false;
        }
    }
}
