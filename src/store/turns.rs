//! A turn's rows: begin (dedupe, what an interruption context says was heard, the history
//! window), commit the start once the model's request has left, and store what was heard.

use std::cell::RefCell;
use std::rc::Rc;

use serde::Deserialize;

use super::{unix_ms, MessageRow, Rows, Store, TextRow};
use crate::history::{
    bounded_window, heard_prefix, reply_heard, HistoryMessage, ReplyStatus, RECENT_REPLIES,
    WINDOW_MAX_CHARS, WINDOW_MAX_MESSAGES,
};
use crate::layercode::events::InterruptionContext;

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
    /// The running summary of the call so far (`summary`), once there is one.
    pub summary: Option<String>,
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

impl Store {
    /// Reads everything a turn needs before the model is asked: skips a duplicate delivery,
    /// works out what the caller heard of the reply they cut off, and returns the history
    /// window ending with the new user message, and the summary of what came before. Writes nothing: see [`Store::commit`].
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
                summary: None,
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
            summary: self.stored_summary()?.0,
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
    /// sent; `None` when nothing of ours matches (for example it was never stored). Without an
    /// id, only the text ties a context to a reply: contexts that arrive out of order must cut
    /// the reply they are about, not the latest one (`history::reply_heard`).
    fn heard_of(&self, context: &InterruptionContext) -> worker::Result<Option<(i64, String)>> {
        let rows: Vec<AssistantRow> = match &context.assistant_turn_id {
            Some(turn_id) => self.sql.exec(
                "SELECT seq, turn_id, text FROM messages WHERE role = 'assistant' \
                 AND turn_id IN (?, ?)",
                vec![turn_id.as_str().into(), format!("welcome:{turn_id}").into()],
            )?,
            None => self.sql.exec(
                "SELECT seq, turn_id, text FROM messages WHERE role = 'assistant' \
                 ORDER BY seq DESC LIMIT ?",
                vec![i64::try_from(RECENT_REPLIES).unwrap_or(1).into()],
            )?,
        }
        .rows()?;
        // A reply still running here has sent more than its pending row says.
        let sent: Vec<(i64, String)> = rows
            .into_iter()
            .map(|row| {
                let running = self.in_flight.borrow().get(&row.turn_id).cloned();
                (
                    row.seq,
                    running.map_or(row.text, |sent| sent.borrow().clone()),
                )
            })
            .collect();
        let index = match context.assistant_turn_id {
            Some(_) => 0,
            None => {
                let replies: Vec<&str> = sent.iter().map(|(_, text)| text.as_str()).collect();
                match reply_heard(&replies, context.text_heard.as_deref()) {
                    Some(index) => index,
                    None => return Ok(None),
                }
            }
        };
        let Some((seq, sent)) = sent.get(index) else {
            return Ok(None);
        };
        let heard = heard_prefix(sent, context.text_heard.as_deref(), context.words_heard);
        Ok(Some((*seq, heard)))
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

    /// The newest stored messages, oldest first, with the interrupted reply (`seq`, text heard)
    /// as heard, and a reply still running here as what it has sent so far (its row is still
    /// an empty placeholder, but the caller has heard that much: a message can come while the
    /// reply still streams, or while its end waits to be taken); empty ones are skipped. One
    /// more than the window, so `bounded_window` can tell that older messages exist.
    fn recent_messages(
        &self,
        heard: Option<&(i64, String)>,
    ) -> worker::Result<Vec<HistoryMessage>> {
        let limit = i64::try_from(WINDOW_MAX_MESSAGES + 1).unwrap_or(i64::MAX);
        let heard_seq = heard.map_or(-1, |(seq, _)| *seq);
        let in_flight = self.in_flight.borrow();
        let running: Vec<&str> = in_flight
            .iter()
            .filter(|(_, sent)| !sent.borrow().is_empty())
            .map(|(turn_id, _)| turn_id.as_str())
            .collect();
        let rows = self.message_rows(
            "SELECT json_group_array(json_object('seq', seq, 'turn_id', turn_id, 'role', role, \
             'text', text)) AS rows FROM (SELECT seq, turn_id, role, text FROM messages \
             WHERE text != '' OR seq = ? OR (status = 'pending' \
             AND turn_id IN (SELECT value FROM json_each(?))) ORDER BY seq DESC LIMIT ?)",
            vec![
                heard_seq.into(),
                serde_json::to_string(&running)?.into(),
                limit.into(),
            ],
        )?;
        let messages = rows
            .into_iter()
            .map(|row| {
                let running = in_flight.get(&row.turn_id).filter(|_| row.text.is_empty());
                let text = match (heard, running) {
                    (Some((seq, heard)), _) if *seq == row.seq => heard.clone(),
                    (_, Some(sent)) => sent.borrow().clone(),
                    _ => row.text,
                };
                HistoryMessage {
                    role: MessageRow::role_of(&row.role),
                    text,
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
}

#[derive(Deserialize)]
struct AssistantRow {
    seq: i64,
    turn_id: String,
    text: String,
}
